# Static authd binary on a minimal base image (no shell: the health check is
# `authd healthcheck`). Build with: make image (passes VERSION), or
#   docker build --build-arg VERSION=$(git describe --tags --always) -t authd .
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# The build context has no .git (see .dockerignore): the version comes in as an argument.
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/authd ./cmd/authd

FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
LABEL org.opencontainers.image.title="authd" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.description="OAuth 2.0 authorization server"
COPY --from=build /out/authd /authd
USER nonroot
EXPOSE 8080
# GET /healthz of AUTHD_HTTP_ADDR; exit 0 or 1. (Kubernetes ignores this and
# uses the probes in deploy/kubernetes.)
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["/authd", "healthcheck"]
ENTRYPOINT ["/authd"]
CMD ["serve"]
