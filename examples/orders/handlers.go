package main

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/authd/authd/verify"
)

const maxBodyBytes = 16 << 10

// app holds what the handlers need.
type app struct {
	store *store
	log   *slog.Logger
}

// routes wires the endpoints. Every /orders route needs a valid access token
// for this service's audience; auth is v.Middleware (local checks) or
// v.OnlineMiddleware (also asks authd, so a revoked token fails at once).
func (a *app) routes(auth func(http.Handler) http.Handler) http.Handler {
	// Every authd user has the role user; admins have user and admin.
	member := verify.RequireRole("user", "admin")
	admin := verify.RequireRole("admin")

	mux := http.NewServeMux()
	mux.Handle("POST /orders", auth(member(http.HandlerFunc(a.createOrder))))
	mux.Handle("GET /orders", auth(member(http.HandlerFunc(a.listOrders))))
	mux.Handle("GET /orders/{id}", auth(member(http.HandlerFunc(a.getOrder))))
	mux.Handle("DELETE /orders/{id}", auth(admin(http.HandlerFunc(a.deleteOrder))))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	return mux
}

type createRequest struct {
	Item     string `json:"item"`
	Quantity int    `json:"quantity"`
}

func (a *app) createOrder(w http.ResponseWriter, r *http.Request) {
	claims := mustClaims(r)
	var req createRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", "the body must be a JSON object {\"item\", \"quantity\"}")
		return
	}
	req.Item = strings.TrimSpace(req.Item)
	if n := utf8.RuneCountInString(req.Item); n == 0 || n > 200 || !utf8.ValidString(req.Item) {
		writeError(w, http.StatusBadRequest, "invalid_request", "item must be 1 to 200 characters")
		return
	}
	if req.Quantity < 1 || req.Quantity > 1000 {
		writeError(w, http.StatusBadRequest, "invalid_request", "quantity must be between 1 and 1000")
		return
	}
	o := a.store.create(claims.Subject, claims.Username, req.Item, req.Quantity)
	a.log.InfoContext(r.Context(), "order created", slog.String("order_id", o.ID), slog.String("owner", o.Owner))
	w.Header().Set("Location", "/orders/"+o.ID)
	writeJSON(w, http.StatusCreated, o)
}

// listOrders answers the caller's own orders; an admin sees every order.
func (a *app) listOrders(w http.ResponseWriter, r *http.Request) {
	claims := mustClaims(r)
	owner := claims.Subject
	if claims.HasRole("admin") {
		owner = ""
	}
	writeJSON(w, http.StatusOK, map[string][]Order{"orders": a.store.list(owner)})
}

// getOrder answers an order of the caller's, or any order to an admin.
// Another user's order answers 404, as if it did not exist.
func (a *app) getOrder(w http.ResponseWriter, r *http.Request) {
	claims := mustClaims(r)
	o, err := a.store.get(r.PathValue("id"))
	if errors.Is(err, errNotFound) || (err == nil && o.Owner != claims.Subject && !claims.HasRole("admin")) {
		writeError(w, http.StatusNotFound, "not_found", "no such order")
		return
	}
	writeJSON(w, http.StatusOK, o)
}

// deleteOrder is for admins only (RequireRole("admin") in routes).
func (a *app) deleteOrder(w http.ResponseWriter, r *http.Request) {
	claims := mustClaims(r)
	id := r.PathValue("id")
	if err := a.store.delete(id); errors.Is(err, errNotFound) {
		writeError(w, http.StatusNotFound, "not_found", "no such order")
		return
	}
	a.log.InfoContext(r.Context(), "order deleted", slog.String("order_id", id), slog.String("by", claims.Subject))
	w.WriteHeader(http.StatusNoContent)
}

// mustClaims returns the claims that the verify middleware put in the
// context; routes never reach a handler without them.
func mustClaims(r *http.Request) *verify.Claims {
	c, ok := verify.ClaimsFromContext(r.Context())
	if !ok {
		panic("orders: handler reached without verify middleware")
	}
	return c
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}
