package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// The baseline answers what authbench's jwks and client-credentials
// scenarios ask, with a token its JWKS verifies, and refuses a wrong secret.
func TestBareServer(t *testing.T) {
	h, err := newHandler("http://bare.test", "bare", "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()

	var set jose.JSONWebKeySet
	get(t, srv.URL+"/.well-known/jwks.json", &set)
	if len(set.Keys) != 1 || set.Keys[0].Algorithm != "ES256" {
		t.Fatalf("JWKS %+v; want one ES256 key", set)
	}
	token := func(secret string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/oauth2/token", strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("bare", secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	if resp := token("wrong"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong secret: %d; want 401", resp.StatusCode)
	}
	resp := token("s3cret")
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("token: %d, %v", resp.StatusCode, err)
	}
	jws, err := jose.ParseSigned(body.AccessToken, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	payload, err := jws.Verify(set.Keys[0])
	if err != nil {
		t.Fatalf("token does not verify against the JWKS: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil || claims["client_id"] != "bare" || claims["iss"] != "http://bare.test" {
		t.Errorf("claims %v, %v", claims, err)
	}
}

func get(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}
