package server

import (
	"net/http"

	"github.com/authd/authd/events"
)

func (s *Server) listKeys(w http.ResponseWriter, r *http.Request) {
	ks, err := s.cfg.Keys.Keys(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSONStatus(w, http.StatusOK, map[string]any{"keys": ks})
}

func (s *Server) rotateKeys(w http.ResponseWriter, r *http.Request) {
	k, err := s.cfg.Keys.Rotate(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.record(r.Context(), r, events.KeyRotated, "", map[string]any{"kid": k.ID, "alg": k.Alg}); err != nil {
		s.log.ErrorContext(r.Context(), "record key rotation", "error", err)
	}
	writeJSONStatus(w, http.StatusOK, map[string]any{"kid": k.ID, "alg": k.Alg, "state": k.State})
}
