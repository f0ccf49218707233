package web

import (
	"net/http"
	"strconv"
	"strings"
)

// Stylesheet serves GET /assets/authd.css. Pages link it with its content
// hash (?v=...): that URL never changes meaning, so it is cached for a
// year; any other is cached briefly and revalidated by ETag.
func (p *Pages) Stylesheet(w http.ResponseWriter, r *http.Request) {
	css, hash := p.cfg.Templates.Stylesheet()
	etag := `"` + hash + `"`
	h := w.Header()
	h.Set("Content-Type", "text/css; charset=utf-8")
	h.Set("ETag", etag)
	if r.URL.Query().Get("v") == hash {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "public, max-age=300")
	}
	if inm := r.Header.Get("If-None-Match"); inm != "" {
		for _, t := range strings.Split(inm, ",") {
			if t = strings.TrimSpace(t); t == "*" || strings.TrimPrefix(t, "W/") == etag {
				w.WriteHeader(http.StatusNotModified)
				return
			}
		}
	}
	h.Set("Content-Length", strconv.Itoa(len(css)))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(css)
}
