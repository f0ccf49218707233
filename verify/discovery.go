package verify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

const wellKnown = "/.well-known/oauth-authorization-server"

// metadata is the part of RFC 8414 authorization server metadata that
// verify reads.
type metadata struct {
	Issuer                string `json:"issuer"`
	JWKSURI               string `json:"jwks_uri"`
	IntrospectionEndpoint string `json:"introspection_endpoint"`
}

// discover reads the issuer's metadata. Per RFC 8414 §3.1 the well-known
// segment goes between the host and the issuer's path; an issuer with a path
// that is not found there is also tried at <issuer>/.well-known/..., where
// servers behind a path prefix usually answer.
func discover(ctx context.Context, client *http.Client, issuer string) (*metadata, error) {
	u, err := checkURL(issuer, "")
	if err != nil {
		return nil, fmt.Errorf("verify: issuer: %w", err)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("verify: issuer must not have a query or fragment")
	}
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	candidates := []string{u.Scheme + "://" + u.Host + wellKnown + path}
	if path != "" {
		candidates = append(candidates, u.Scheme+"://"+u.Host+path+wellKnown)
	}
	var resp *response
	for _, c := range candidates {
		resp, err = get(ctx, client, c, "", maxMetadataBytes)
		if err != nil {
			return nil, fmt.Errorf("verify: discovery: %w", err)
		}
		if resp.status != http.StatusNotFound {
			break
		}
	}
	if resp.status != http.StatusOK {
		return nil, fmt.Errorf("verify: discovery: %w: status %d", ErrUnavailable, resp.status)
	}
	var md metadata
	if err := json.Unmarshal(resp.body, &md); err != nil {
		return nil, fmt.Errorf("verify: discovery: metadata is not JSON: %w", err)
	}
	// RFC 8414 §3.3: the metadata must name the issuer it was asked for.
	if md.Issuer != issuer {
		return nil, fmt.Errorf("verify: discovery: metadata names issuer %q, want %q", short(md.Issuer), issuer)
	}
	if md.JWKSURI == "" {
		return nil, errors.New("verify: discovery: metadata has no jwks_uri")
	}
	if _, err := checkURL(md.JWKSURI, u.Scheme); err != nil {
		return nil, fmt.Errorf("verify: discovery: jwks_uri: %w", err)
	}
	if md.IntrospectionEndpoint != "" {
		if _, err := checkURL(md.IntrospectionEndpoint, u.Scheme); err != nil {
			return nil, fmt.Errorf("verify: discovery: introspection_endpoint: %w", err)
		}
	}
	return &md, nil
}

// checkURL accepts absolute http and https URLs; when base is https, only
// https.
func checkURL(raw, base string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%q is not a URL: %w", short(raw), err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%q is not an http or https URL", short(raw))
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%q has no host", short(raw))
	}
	if base == "https" && u.Scheme != "https" {
		return nil, fmt.Errorf("%q downgrades from https", short(raw))
	}
	return u, nil
}

// response is a fully read, size-bounded HTTP response.
type response struct {
	status int
	header http.Header
	body   []byte
}

// get fetches url with a deadline of its own and reads at most limit bytes
// of the body; a longer body is an error.
func get(ctx context.Context, client *http.Client, rawURL, etag string, limit int64) (*response, error) {
	ctx, cancel := context.WithTimeout(ctx, httpTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	return do(client, req, limit)
}

func do(client *http.Client, req *http.Request, limit int64) (*response, error) {
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read %s: %w", ErrUnavailable, req.URL.Redacted(), err)
	}
	if int64(len(body)) > limit {
		return nil, fmt.Errorf("verify: response from %s is larger than %d bytes", req.URL.Redacted(), limit)
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: body}, nil
}

// defaultHTTPClient follows at most 3 redirects, to http(s) only and never
// from https down to http.
func defaultHTTPClient() *http.Client {
	return &http.Client{
		Timeout: httpTimeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 3 {
				return errors.New("verify: too many redirects")
			}
			if _, err := checkURL(req.URL.String(), via[0].URL.Scheme); err != nil {
				return fmt.Errorf("verify: redirect: %w", err)
			}
			return nil
		},
	}
}
