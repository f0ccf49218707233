// Command authbench-bare is the baseline authbench measures authd against:
// a bare net/http server that does the least work an authorization server
// can do for the same answers. It serves its metadata, a JWKS of one P-256
// key (bytes computed once, as authd does), and client_credentials tokens:
// HTTP Basic checked against one client, the claims authd puts in an access
// token, signed ES256 with go-jose. No store, no rate limit, no logging, no
// metrics, no input checks beyond the form: authd's ratio to it is what all
// of those cost (issue 10: JWKS at least 0.85x, client_credentials 0.8x).
//
//	authbench-bare -addr 127.0.0.1:18200 -client-id bare -client-secret SECRET
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/go-jose/go-jose/v4"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18200", "listen address")
	clientID := flag.String("client-id", "bare", "the one client")
	secret := flag.String("client-secret", os.Getenv("AUTHBENCH_BARE_SECRET"), "its secret (or AUTHBENCH_BARE_SECRET)")
	flag.Parse()
	if *secret == "" {
		log.Fatal("authbench-bare: -client-secret or AUTHBENCH_BARE_SECRET is required")
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	h, err := newHandler("http://"+ln.Addr().String(), *clientID, *secret)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("authbench-bare: listening on", ln.Addr())
	log.Fatal((&http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}).Serve(ln))
}

type handler struct {
	issuer         string
	clientID       string
	secret         []byte
	signer         jose.Signer
	metadata, jwks []byte
}

func newHandler(issuer, clientID, secret string) (http.Handler, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	kid := "bare-1"
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("at+jwt"))
	if err != nil {
		return nil, err
	}
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: kid, Algorithm: "ES256", Use: "sig"}}})
	if err != nil {
		return nil, err
	}
	metadata, err := json.Marshal(map[string]any{
		"issuer": issuer, "token_endpoint": issuer + "/oauth2/token", "jwks_uri": issuer + "/.well-known/jwks.json",
		"grant_types_supported": []string{"client_credentials"},
	})
	if err != nil {
		return nil, err
	}
	h := &handler{issuer: issuer, clientID: clientID, secret: []byte(secret), signer: signer, metadata: metadata, jwks: jwks}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", h.static(h.metadata))
	mux.HandleFunc("GET /.well-known/jwks.json", h.static(h.jwks))
	mux.HandleFunc("POST /oauth2/token", h.token)
	return mux, nil
}

func (h *handler) static(body []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		_, _ = w.Write(body)
	}
}

func (h *handler) token(w http.ResponseWriter, r *http.Request) {
	id, secret, ok := r.BasicAuth()
	if !ok || id != h.clientID || subtle.ConstantTimeCompare([]byte(secret), h.secret) != 1 {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
		return
	}
	if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "client_credentials" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "unsupported_grant_type"})
		return
	}
	var jti [16]byte
	_, _ = rand.Read(jti[:])
	now := time.Now()
	claims, err := json.Marshal(map[string]any{
		"iss": h.issuer, "sub": id, "aud": []string{"bench"}, "client_id": id, "jti": base64.RawURLEncoding.EncodeToString(jti[:]),
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(15 * time.Minute).Unix(), "scope": r.PostForm.Get("scope"),
	})
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "server_error"})
		return
	}
	jws, err := h.signer.Sign(claims)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "server_error"})
		return
	}
	token, err := jws.CompactSerialize()
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "server_error"})
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{"access_token": token, "token_type": "Bearer", "expires_in": 900})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
