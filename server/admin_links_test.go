package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/authd/authd/events"
	"github.com/authd/authd/identity"
	"github.com/authd/authd/storage"
)

// withLinks rebuilds ts's server with the link routes served by
// identity.Federation on ts's store (the tokens stay valid: same keys).
func withLinks(t *testing.T, ts *testServer, links Links) {
	t.Helper()
	cfg := ts.srv.cfg
	if links == nil {
		links = cfg.Identity.(*identity.Service).NewFederation(ts.store)
	}
	cfg.Links = links
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts.srv = srv
}

func decodeProblem(t *testing.T, body []byte) problem {
	t.Helper()
	var p problem
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("decode problem %s: %v", body, err)
	}
	return p
}

// The admin API lists a user's links and removes one; the removal is
// recorded naming the admin; unknown users and links are 404; only admins
// may call either route.
func TestAdminLinkRoutes(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			ts := newTestServer(t, be.open(t))
			withLinks(t, ts, nil)
			ctx := t.Context()
			listPath := "/api/v1/admin/users/" + ts.userID + "/links"

			type linkDoc struct {
				ConnectorID string  `json:"connector_id"`
				Subject     string  `json:"subject"`
				Email       *string `json:"email"`
				CreatedAt   string  `json:"created_at"`
				LastLoginAt string  `json:"last_login_at"`
			}
			list := func() []linkDoc {
				t.Helper()
				rr := ts.json(http.MethodGet, listPath, ts.admin, "")
				if rr.Code != http.StatusOK || rr.Header().Get("Content-Type") != contentTypeJSON {
					t.Fatalf("GET links = %d %q %s; want 200 JSON", rr.Code, rr.Header().Get("Content-Type"), rr.Body)
				}
				var out struct {
					Links []linkDoc `json:"links"`
				}
				if err := json.Unmarshal(rr.Body.Bytes(), &out); err != nil || out.Links == nil {
					t.Fatalf("GET links body %s: %v; want {\"links\":[...]}", rr.Body, err)
				}
				return out.Links
			}

			if ls := list(); len(ls) != 0 {
				t.Fatalf("links of a user without links = %+v; want []", ls)
			}

			created := time.Date(2025, 3, 1, 10, 0, 0, 0, time.FixedZone("CET", 3600))
			last := time.Date(2025, 3, 2, 11, 30, 0, 0, time.UTC)
			for _, l := range []storage.Link{
				{ConnectorID: "google", Subject: "g-123", UserID: ts.userID, Email: "alice@gmail.example", CreatedAt: created, LastLoginAt: last},
				{ConnectorID: "github", Subject: "4242", UserID: ts.userID, CreatedAt: created, LastLoginAt: created},
				{ConnectorID: "github", Subject: "7", UserID: ts.adminID, CreatedAt: created, LastLoginAt: created},
			} {
				if err := ts.store.CreateLink(ctx, l); err != nil {
					t.Fatalf("CreateLink(%+v): %v", l, err)
				}
			}
			ls := list()
			email := "alice@gmail.example"
			want := []linkDoc{
				{ConnectorID: "github", Subject: "4242", CreatedAt: "2025-03-01T09:00:00Z", LastLoginAt: "2025-03-01T09:00:00Z"},
				{ConnectorID: "google", Subject: "g-123", Email: &email, CreatedAt: "2025-03-01T09:00:00Z", LastLoginAt: "2025-03-02T11:30:00Z"},
			}
			if !reflect.DeepEqual(ls, want) {
				t.Fatalf("GET links = %s; want %s", mustJSON(t, ls), mustJSON(t, want))
			}

			delPath := listPath + "/google"
			for _, c := range []struct {
				name, method, target, token string
				status                      int
			}{
				{"no token, list", http.MethodGet, listPath, "", http.StatusUnauthorized},
				{"no token, delete", http.MethodDelete, delPath, "", http.StatusUnauthorized},
				{"not an admin, list", http.MethodGet, listPath, ts.user, http.StatusForbidden},
				{"not an admin, delete", http.MethodDelete, delPath, ts.user, http.StatusForbidden},
				{"unknown user, list", http.MethodGet, "/api/v1/admin/users/nobody/links", ts.admin, http.StatusNotFound},
				{"unknown user, delete", http.MethodDelete, "/api/v1/admin/users/nobody/links/google", ts.admin, http.StatusNotFound},
				{"no such link", http.MethodDelete, listPath + "/gitlab", ts.admin, http.StatusNotFound},
			} {
				rr := ts.json(c.method, c.target, c.token, "")
				if rr.Code != c.status || rr.Header().Get("Content-Type") != contentTypeProblem {
					t.Errorf("%s: %s %s = %d %q %s; want %d problem+json", c.name, c.method, c.target, rr.Code, rr.Header().Get("Content-Type"), rr.Body, c.status)
				}
			}
			if n := len(list()); n != 2 {
				t.Fatalf("links after refused calls = %d; want 2", n)
			}

			if rr := ts.json(http.MethodDelete, delPath, ts.admin, ""); rr.Code != http.StatusNoContent || rr.Body.Len() != 0 {
				t.Fatalf("DELETE link = %d %s; want 204", rr.Code, rr.Body)
			}
			if ls := list(); len(ls) != 1 || ls[0].ConnectorID != "github" {
				t.Errorf("links after DELETE google = %+v; want github only", ls)
			}
			if _, err := ts.store.GetLink(ctx, "google", "g-123"); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("GetLink(google, g-123) after DELETE = %v; want ErrNotFound", err)
			}
			if _, err := ts.store.GetLink(ctx, "github", "7"); err != nil {
				t.Errorf("the admin's own link after DELETE of alice's: %v; want kept", err)
			}
			rr := ts.json(http.MethodDelete, delPath, ts.admin, "")
			if p := decodeProblem(t, rr.Body.Bytes()); rr.Code != http.StatusNotFound || p.Detail != "No such resource." {
				t.Errorf("DELETE link again = %d %+v; want 404", rr.Code, p)
			}

			es, err := ts.store.ListAudit(ctx, storage.AuditFilter{Type: string(events.LinkRemoved), Limit: 10})
			if err != nil {
				t.Fatal(err)
			}
			if len(es) != 1 {
				t.Fatalf("%s events = %d; want exactly 1", events.LinkRemoved, len(es))
			}
			var d map[string]any
			if err := json.Unmarshal(es[0].Data, &d); err != nil || d["connector_id"] != "google" || d["admin"] != ts.adminID ||
				es[0].UserID != ts.userID || es[0].ClientID != "app" {
				t.Errorf("%s = %+v %v; want user %s, connector google, admin %s, from app", events.LinkRemoved, es[0], d, ts.userID, ts.adminID)
			}
		})
	}
}

// failingLinks fails every call as an unreachable store would.
type failingLinks struct{}

func (failingLinks) Links(context.Context, string) ([]storage.Link, error) {
	return nil, fmt.Errorf("identity: links: %w", storage.ErrUnavailable)
}

func (failingLinks) Unlink(context.Context, string, string, string, identity.Meta) error {
	return fmt.Errorf("identity: unlink: %w", storage.ErrUnavailable)
}

func (failingLinks) EmailVerified(context.Context, storage.User) (bool, error) {
	return false, fmt.Errorf("identity: email verified: %w", storage.ErrUnavailable)
}

// A store outage is 503 with Retry-After, as on the other admin routes.
func TestAdminLinksUnavailable(t *testing.T) {
	ts := newTestServer(t, openSQLite(t))
	withLinks(t, ts, failingLinks{})
	for _, method := range []string{http.MethodGet, http.MethodDelete} {
		target := "/api/v1/admin/users/" + ts.userID + "/links"
		if method == http.MethodDelete {
			target += "/google"
		}
		rr := ts.json(method, target, ts.admin, "")
		if rr.Code != http.StatusServiceUnavailable || rr.Header().Get("Retry-After") == "" {
			t.Errorf("%s %s with the store down = %d Retry-After %q; want 503 with Retry-After", method, target, rr.Code, rr.Header().Get("Retry-After"))
		}
	}
}

// Without Links the routes are not served.
func TestAdminLinksNotServedWithoutLinks(t *testing.T) {
	ts := newTestServer(t, openSQLite(t))
	for _, c := range []struct{ method, target string }{
		{http.MethodGet, "/api/v1/admin/users/" + ts.userID + "/links"},
		{http.MethodDelete, "/api/v1/admin/users/" + ts.userID + "/links/google"},
	} {
		if rr := ts.json(c.method, c.target, ts.admin, ""); rr.Code != http.StatusNotFound {
			t.Errorf("%s %s without Links = %d; want 404", c.method, c.target, rr.Code)
		}
	}
}
