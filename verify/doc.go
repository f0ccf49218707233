// Package verify checks authd's access tokens in the services that receive
// them (resource servers), locally and without a call to authd per request.
//
// New reads the issuer's metadata (RFC 8414) and its JWKS, keeps the keys in
// memory, refreshes them as the JWKS response's Cache-Control says, and
// refetches them, rate-limited, when a token names an unknown kid. Verify
// checks a token per RFC 9068: size, alg against an allowlist and the key's
// own alg, typ at+jwt, the signature, iss, aud, exp, nbf and iat with a small
// leeway. The header must hold alg, kid and typ and nothing else, as authd
// writes it: a header that points at other keys (jku, x5u, jwk, x5c), crit,
// or any other parameter is refused.
//
//	v, err := verify.New(ctx, verify.Config{
//		Issuer:   "https://auth.example.com",
//		Audience: "orders",
//	})
//	if err != nil {
//		return err
//	}
//	defer v.Close()
//	mux.Handle("GET /orders", v.Middleware(verify.RequireRole("user")(listOrders)))
//	mux.Handle("DELETE /orders/{id}", v.Middleware(verify.RequireRole("admin")(deleteOrder)))
//	// in a handler: claims, _ := verify.ClaimsFromContext(r.Context())
//
// Access tokens stay valid until they expire, even when authd revokes them.
// Endpoints that must see a revocation at once use online mode:
// OnlineMiddleware (or Introspect) verifies locally, then asks authd's
// introspection endpoint (RFC 7662) and caches the answer for a few seconds.
// It needs Config.IntrospectionClientID and IntrospectionClientSecret of a
// client registered with --introspect.
//
// DPoP (RFC 9449): authd binds an access token to a key the client holds
// when the client asks with a DPoP proof; such a token carries cnf.jkt, the
// key's thumbprint, and is good only with a fresh proof signed by that key.
// Config.DPoP chooses what the middleware takes: DPoPOff (the default:
// Bearer only, and a bound token is refused), DPoPAccept (Bearer for
// unbound tokens, "Authorization: DPoP <token>" plus a DPoP header for bound
// ones) or DPoPRequire (bound tokens only). The middleware checks the
// proof's signature, typ, alg, htm, htu (Config.PublicURL behind a proxy),
// iat, ath, that its key is the token's, and that it was not used before
// (Config.DPoPReplayCache; in memory by default, one per process). Verify
// and Introspect refuse bound tokens (ErrDPoPBinding); VerifyDPoP checks a
// token with its proof outside the middleware.
//
//	v, err := verify.New(ctx, verify.Config{
//		Issuer:    "https://auth.example.com",
//		Audience:  "orders",
//		DPoP:      verify.DPoPRequire,
//		PublicURL: "https://api.example.com", // what clients call, for htu
//	})
//
// Errors match the package's sentinel errors with errors.Is. The middleware
// answers as RFC 6750 §3 describes: 401 with a WWW-Authenticate Bearer
// challenge, 403 with error="insufficient_scope", and a JSON body
// {"error", "error_description"} that tells the client what to do, never why
// a signature failed. On the DPoP scheme the challenge is DPoP's (RFC 9449
// §7.1), with error="invalid_token" for the token and
// error="invalid_dpop_proof" for the proof.
package verify
