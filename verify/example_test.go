package verify_test

import (
	"context"
	"fmt"
	"log"
	"net/http"

	"github.com/authd/authd/verify"
)

func Example() {
	ctx := context.Background()
	v, err := verify.New(ctx, verify.Config{
		Issuer:   "https://auth.example.com",
		Audience: "orders",
	})
	if err != nil {
		log.Fatal(err)
	}
	defer v.Close()

	mux := http.NewServeMux()
	mux.Handle("GET /orders", v.Middleware(verify.RequireRole("user")(http.HandlerFunc(
		func(w http.ResponseWriter, r *http.Request) {
			claims, _ := verify.ClaimsFromContext(r.Context())
			fmt.Fprintf(w, "orders of %s\n", claims.Subject)
		}))))
	// Deleting must see a revocation at once: ask authd (online mode needs
	// IntrospectionClientID and IntrospectionClientSecret in the Config).
	mux.Handle("DELETE /orders/{id}", v.OnlineMiddleware(verify.RequireRole("admin")(http.HandlerFunc(
		func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))))
	log.Fatal(http.ListenAndServe(":8081", mux))
}

// A service that takes only DPoP-bound tokens, behind a proxy that serves it
// at https://api.example.com/shop/ (and removes /shop): proofs name that URL.
func Example_dpop() {
	v, err := verify.New(context.Background(), verify.Config{
		Issuer:    "https://auth.example.com",
		Audience:  "orders",
		DPoP:      verify.DPoPRequire,
		PublicURL: "https://api.example.com/shop",
		// Replicas share the proofs they saw, e.g. in Redis:
		// DPoPReplayCache: redisReplayCache{client},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer v.Close()
	http.Handle("GET /orders", v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		claims, _ := verify.ClaimsFromContext(r.Context())
		fmt.Fprintf(w, "orders of %s, key %s\n", claims.Subject, claims.Confirmation.JKT)
	})))
}
