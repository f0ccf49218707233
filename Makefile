# authd — the two commands a new user runs: `make run` and `make test`.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)

# Test services: PostgreSQL and Redis on this machine (see .ci/run). Each test
# makes its own schema / key prefix, so runs never collide.
AUTHD_TEST_POSTGRES_URL ?= postgres://postgres@127.0.0.1:5432/test?sslmode=disable
AUTHD_TEST_REDIS_URL    ?= redis://127.0.0.1:6379/0
export AUTHD_TEST_POSTGRES_URL AUTHD_TEST_REDIS_URL

# The race detector where concurrency lives; the load tool (cmd/authbench)
# is run without it: its own loops are not what the tests are about, and its
# race build costs minutes on a 2-core machine.
RACE_PKGS = ./storage/... ./server/... ./keys/... ./verify/... ./cmd/authd/... ./internal/...
OTHER_PKGS = $(shell $(GO) list ./... | grep -v -e /storage -e /server -e /keys -e /verify -e /cmd/authd -e /internal/)

.PHONY: all build run test vet fuzz bench clean image check-deploy

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/authd ./cmd/authd

# Dev mode on the embedded SQLite store in ./data: no other service needed.
run: build
	AUTHD_DEV=true ./bin/authd serve

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

test: vet
	$(GO) test -race -count=1 -timeout 8m $(RACE_PKGS)
	$(GO) test -count=1 -timeout 8m $(OTHER_PKGS)

# The container image, with the version in the binary (authd --version).
IMAGE ?= authd
image:
	docker build --build-arg VERSION=$(VERSION) -t $(IMAGE):$(VERSION) .

# Deployment files, without Docker or a cluster: docker-compose.yml's wiring
# (also part of make test), and deploy/kubernetes decoded into k8s.io/api
# types (a module of its own, so that authd's go.mod stays small).
check-deploy:
	$(GO) test -count=1 ./deploy/compose/
	cd deploy/kubernetes && $(GO) test -count=1 ./...

# Short fuzzing runs of every fuzz target (FUZZTIME per target).
FUZZTIME ?= 20s
fuzz:
	@for spec in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do \
	  for f in $$(grep -h '^func Fuzz' $$spec/*_test.go | sed 's/func \(Fuzz[A-Za-z0-9_]*\).*/\1/'); do \
	    echo "== $$spec $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$spec || exit 1; \
	  done; \
	done

# Micro-benchmarks, then authbench against a fresh authd on SQLite and on
# PostgreSQL (see docs/performance.md; BENCH_* variables tune it).
bench:
	GO=$(GO) scripts/bench.sh all

clean:
	rm -rf bin
