// Command dpopproof prints a DPoP proof (RFC 9449), to try the orders
// example's -dpop mode with curl. It keeps the client's ES256 key in a file
// (a private JWK, created on first use, mode 0600) and signs a fresh proof
// for one request each time it runs:
//
//	dpopproof -key alice.jwk -method POST -url http://localhost:8080/oauth2/token
//	dpopproof -key alice.jwk -method GET -url http://localhost:8081/orders -token "$TOKEN"
//	dpopproof -key alice.jwk -jkt    # the key's RFC 7638 thumbprint (the token's cnf.jkt)
//
// A proof is good once, within a minute: make one per request.
package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr, time.Now); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "dpopproof:", err)
		}
		os.Exit(2)
	}
}

func run(args []string, stdout, stderr io.Writer, now func() time.Time) error {
	fl := flag.NewFlagSet("dpopproof", flag.ContinueOnError)
	fl.SetOutput(stderr)
	keyFile := fl.String("key", "dpop-key.jwk", "the client's private key (ES256 JWK), created if missing")
	method := fl.String("method", "GET", "the request's method (htm)")
	target := fl.String("url", "", "the request's URL (htu); query and fragment are left out")
	token := fl.String("token", "", "the access token sent with the request, hashed into ath")
	nonce := fl.String("nonce", "", "the server's DPoP-Nonce, when it asks for one")
	jkt := fl.Bool("jkt", false, "print the key's thumbprint instead of a proof")
	if err := fl.Parse(args); err != nil {
		return err
	}
	key, err := loadOrCreate(*keyFile)
	if err != nil {
		return err
	}
	if *jkt {
		tp, err := (&jose.JSONWebKey{Key: key.Public()}).Thumbprint(crypto.SHA256)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(stdout, base64.RawURLEncoding.EncodeToString(tp))
		return err
	}
	if *target == "" {
		return errors.New("-url is required")
	}
	proof, err := sign(key, *method, *target, *token, *nonce, now())
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, proof)
	return err
}

// sign makes a proof: typ dpop+jwt, the public key as jwk, a random jti.
func sign(key *ecdsa.PrivateKey, method, target, token, nonce string, now time.Time) (string, error) {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt"))
	if err != nil {
		return "", err
	}
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", err
	}
	claims := map[string]any{
		"jti": base64.RawURLEncoding.EncodeToString(jti[:]),
		"htm": method,
		"htu": target,
		"iat": now.Unix(),
	}
	if token != "" {
		sum := sha256.Sum256([]byte(token))
		claims["ath"] = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	if nonce != "" {
		claims["nonce"] = nonce
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

// loadOrCreate reads the key file, or creates it with a new P-256 key.
func loadOrCreate(path string) (*ecdsa.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		out, err := json.Marshal(jose.JSONWebKey{Key: key, Algorithm: "ES256", Use: "sig"})
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(path, append(out, '\n'), 0o600); err != nil {
			return nil, err
		}
		return key, nil
	}
	if err != nil {
		return nil, err
	}
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(b); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	key, ok := jwk.Key.(*ecdsa.PrivateKey)
	if !ok || key.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%s: not a P-256 private key", path)
	}
	return key, nil
}
