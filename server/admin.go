package server

import (
	"context"
	"net/http"
	"strconv"

	"github.com/authd/authd/events"
	"github.com/authd/authd/identity"
)

// Admin event types (audit trail and outbox), beside those of API.md.
const (
	eventUserUpdated = events.UserUpdated
)

func (s *Server) adminMeta(r *http.Request) (string, identity.Meta) {
	c := claimsFrom(r.Context())
	return c.Subject, identity.Meta{ClientID: c.ClientID, IP: s.clientIP(r)}
}

// record writes an admin action's event; data names the acting admin.
func (s *Server) record(ctx context.Context, r *http.Request, t events.Type, subject string, data map[string]any) error {
	admin, m := s.adminMeta(r)
	if data == nil {
		data = map[string]any{}
	}
	data["admin"] = admin
	return s.cfg.Recorder.Record(ctx, events.Event{Type: t, Subject: subject, ClientID: m.ClientID, IP: m.IP, Data: data})
}

func queryInt(r *http.Request, name string, def, max int) (int, bool) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > max {
		return 0, false
	}
	return n, true
}
