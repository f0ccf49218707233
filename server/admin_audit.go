package server

import (
	"net/http"
	"slices"
	"time"

	"github.com/authd/authd/storage"
)

// audit serves GET /api/v1/admin/audit?user_id=&type=&since=&limit=, newest first.
func (s *Server) audit(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, ok := queryInt(r, "limit", 100, 1000)
	if !ok {
		writeProblemField(w, r, http.StatusBadRequest, "limit must be an integer from 1 to 1000.", "limit")
		return
	}
	f := storage.AuditFilter{UserID: q.Get("user_id"), Type: q.Get("type"), Limit: limit}
	if v := q.Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			writeProblemField(w, r, http.StatusBadRequest, "since must be an RFC 3339 time.", "since")
			return
		}
		f.Since = t
	}
	entries, err := s.cfg.Store.ListAudit(r.Context(), f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	type entry struct {
		ID       int64     `json:"id"`
		Time     time.Time `json:"time"`
		Type     string    `json:"type"`
		UserID   string    `json:"user_id,omitempty"`
		ClientID string    `json:"client_id,omitempty"`
		IP       string    `json:"ip,omitempty"`
		Data     rawJSON   `json:"data"`
	}
	out := make([]entry, 0, len(entries))
	for _, e := range entries {
		out = append(out, entry{e.ID, e.Time.UTC(), e.Type, e.UserID, e.ClientID, e.IP, rawJSON(e.Data)})
	}
	writeJSONStatus(w, http.StatusOK, map[string]any{"entries": out})
}

// rawJSON embeds stored JSON as is ({} when empty).
type rawJSON []byte

func (j rawJSON) MarshalJSON() ([]byte, error) {
	if len(j) == 0 {
		return []byte("{}"), nil
	}
	return slices.Clone(j), nil
}
