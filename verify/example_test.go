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
