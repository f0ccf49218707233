package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// metadata is the part of RFC 8414 / OIDC discovery authbench uses.
type metadata struct {
	Issuer                string   `json:"issuer"`
	AuthorizationEndpoint string   `json:"authorization_endpoint"`
	TokenEndpoint         string   `json:"token_endpoint"`
	IntrospectionEndpoint string   `json:"introspection_endpoint"`
	RevocationEndpoint    string   `json:"revocation_endpoint"`
	JWKSURI               string   `json:"jwks_uri"`
	DPoPAlgs              []string `json:"dpop_signing_alg_values_supported"`
}

// newHTTPClient is a keep-alive client with an idle connection for every worker.
func newHTTPClient(conns int, timeout time.Duration) *http.Client {
	tr := &http.Transport{
		Proxy:                 nil, // a load test never goes through a proxy
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          2 * conns,
		MaxIdleConnsPerHost:   2 * conns,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: timeout,
		DisableCompression:    true,
		ForceAttemptHTTP2:     false,
	}
	return &http.Client{
		Transport:     tr,
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// discover reads the server's metadata: RFC 8414 first, then OIDC discovery.
func discover(ctx context.Context, hc *http.Client, issuer string, allowRemote bool) (metadata, error) {
	base := strings.TrimSuffix(issuer, "/")
	var errs []error
	for _, p := range []string{"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"} {
		m, err := fetchMetadata(ctx, hc, base+p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if m.TokenEndpoint == "" {
			errs = append(errs, fmt.Errorf("%s: no token_endpoint", p))
			continue
		}
		for _, ep := range []string{m.TokenEndpoint, m.IntrospectionEndpoint, m.RevocationEndpoint, m.JWKSURI, m.AuthorizationEndpoint} {
			if ep == "" {
				continue
			}
			if err := checkTarget(ep, allowRemote); err != nil {
				return metadata{}, fmt.Errorf("metadata %s: %w", p, err)
			}
		}
		return m, nil
	}
	return metadata{}, fmt.Errorf("discovery: %w", errors.Join(errs...))
}

func fetchMetadata(ctx context.Context, hc *http.Client, u string) (metadata, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return metadata{}, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return metadata{}, fmt.Errorf("GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return metadata{}, fmt.Errorf("GET %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return metadata{}, fmt.Errorf("GET %s: status %d", u, resp.StatusCode)
	}
	var m metadata
	if err := json.Unmarshal(body, &m); err != nil {
		return metadata{}, fmt.Errorf("GET %s: %w", u, err)
	}
	return m, nil
}

// credential is a client id and secret, with the HTTP Basic header precomputed
// (RFC 6749 §2.3.1: both form-encoded first).
type credential struct {
	id, secret string
	basic      string
}

func newCredential(id, secret string) credential {
	raw := url.QueryEscape(id) + ":" + url.QueryEscape(secret)
	return credential{id: id, secret: secret, basic: "Basic " + base64.StdEncoding.EncodeToString([]byte(raw))}
}

// user is a resource owner for the password grant.
type user struct{ name, password string }

// creds is what the scenarios authenticate with.
type creds struct {
	app   credential // password and refresh_token grants
	svc   credential // client_credentials; revokes its own tokens
	intro credential // introspects the tokens of svc and app
	web   credential // authorization_code, at redirectURI (the authorize scenario)
	users []user

	redirectURI string
}

// authdCLI runs the authd binary's operator verbs with the given environment.
type authdCLI struct {
	bin     string
	environ []string
}

func (a authdCLI) run(ctx context.Context, stdin string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, a.bin, args...)
	cmd.Env = a.environ
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		// authd never prints a secret to stderr; keep the first line only.
		msg, _, _ := strings.Cut(strings.TrimSpace(errb.String()), "\n")
		return nil, fmt.Errorf("authd %s %s: %w: %s", args[0], args[1], err, msg)
	}
	return out.Bytes(), nil
}

// provisionAuthd creates three clients (four with web: a first-party
// client of the authorization code grant for the authorize scenario) and
// cfg.users users with the authd CLI, named with a random run id so that
// runs never collide.
func provisionAuthd(ctx context.Context, cli authdCLI, users int, web bool) (creds, []string, error) {
	var rb [4]byte
	_, _ = rand.Read(rb[:])
	runID := "authbench-" + hex.EncodeToString(rb[:])
	var (
		c       creds
		created []string
	)
	mk := func(suffix string, args ...string) (credential, error) {
		id := runID + "-" + suffix
		out, err := cli.run(ctx, "", append([]string{"clients", "create", "--id", id, "--name", "authbench"}, args...)...)
		if err != nil {
			return credential{}, err
		}
		var cj struct {
			ID     string `json:"client_id"`
			Secret string `json:"client_secret"`
		}
		if err := json.Unmarshal(out, &cj); err != nil || cj.ID != id || cj.Secret == "" {
			return credential{}, fmt.Errorf("authd clients create: unexpected output")
		}
		created = append(created, id)
		return newCredential(cj.ID, cj.Secret), nil
	}
	var err error
	if c.app, err = mk("app", "--grant-types", "password,refresh_token", "--scopes", "openid profile"); err != nil {
		return c, created, err
	}
	if c.svc, err = mk("svc", "--grant-types", "client_credentials", "--scopes", "bench.read"); err != nil {
		return c, created, err
	}
	if c.intro, err = mk("rs", "--grant-types", "client_credentials", "--introspect"); err != nil {
		return c, created, err
	}
	if web {
		if c.web, err = mk("web", "--grant-types", "authorization_code", "--scopes", "openid", "--redirect-uris", defaultRedirectURI, "--first-party"); err != nil {
			return c, created, err
		}
		c.redirectURI = defaultRedirectURI
	}
	for i := range users {
		name := runID + "-u" + strconv.Itoa(i)
		var pb [24]byte
		_, _ = rand.Read(pb[:])
		pw := base64.RawURLEncoding.EncodeToString(pb[:])
		if _, err := cli.run(ctx, pw+"\n", "users", "create", "--username", name, "--email", name+"@example.com", "--password-stdin"); err != nil {
			return c, created, err
		}
		c.users = append(c.users, user{name: name, password: pw})
	}
	return c, created, nil
}
