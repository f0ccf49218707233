package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/authd/authd/storage"
)

// problem is an RFC 9457 problem details body; Field names the offending
// input member when there is one.
type problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
	Field    string `json:"field,omitempty"`
}

// Media types of authd's JSON answers; every one names its charset.
const (
	contentTypeJSON    = "application/json; charset=utf-8"
	contentTypeProblem = "application/problem+json; charset=utf-8"
)

func writeProblemField(w http.ResponseWriter, r *http.Request, status int, detail, field string) {
	w.Header().Set("Content-Type", contentTypeProblem)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(problem{
		Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: detail,
		Instance: r.URL.Path, Field: field,
	})
}

// writeProblem writes an RFC 9457 problem+json body.
func writeProblem(w http.ResponseWriter, r *http.Request, status int, detail string) {
	writeProblemField(w, r, status, detail, "")
}

func writeJSONStatus(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", contentTypeJSON)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// decodeJSON reads a JSON object body into v; it writes the problem itself
// and reports whether decoding succeeded. Unknown members are ignored (a
// "roles" member in a signup is not an error, just not honoured). Refused
// with 400: a body that is not valid UTF-8 (encoding/json would silently
// replace the bad bytes), a string holding a NUL (PostgreSQL refuses it in
// text), a member given twice in one object at any depth (encoding/json
// keeps the last one silently, and matches names case-insensitively, so
// "Username" repeats "username"), nesting deeper than maxJSONDepth.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		writeProblem(w, r, http.StatusUnsupportedMediaType, "The body must be application/json.")
		return false
	}
	body, err := io.ReadAll(r.Body) // bounded by the secure middleware's MaxBytesReader
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeTooLarge(w, r)
		} else {
			writeProblem(w, r, http.StatusBadRequest, "The body could not be read.")
		}
		return false
	}
	if !utf8.Valid(body) {
		writeProblem(w, r, http.StatusBadRequest, "The body is not valid UTF-8.")
		return false
	}
	if detail, field := checkJSON(body); detail != "" {
		writeProblemField(w, r, http.StatusBadRequest, detail, field)
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		var typeErr *json.UnmarshalTypeError
		var syntaxErr *json.SyntaxError
		switch {
		case errors.As(err, &tooBig):
			writeTooLarge(w, r)
		case errors.As(err, &typeErr):
			writeProblemField(w, r, http.StatusBadRequest, fmt.Sprintf("%s must be a JSON %s.", typeErr.Field, jsonKind(typeErr)), typeErr.Field)
		case errors.As(err, &syntaxErr), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
			writeProblem(w, r, http.StatusBadRequest, "The body is not valid JSON.")
		default:
			writeProblem(w, r, http.StatusBadRequest, "The body is not a valid JSON object.")
		}
		return false
	}
	if dec.More() {
		writeProblem(w, r, http.StatusBadRequest, "The body holds more than one JSON value.")
		return false
	}
	return true
}

// maxJSONDepth bounds the nesting of a JSON body; authd's bodies nest two deep.
const maxJSONDepth = 32

// checkJSON scans the first JSON value of body and returns a problem detail
// (and the member it names) for a duplicated member, a NUL in a string or
// too deep a nesting; "" when there is none. Syntax errors are left to the
// decoder, which describes them.
func checkJSON(body []byte) (detail, field string) {
	type frame struct {
		object  bool
		wantKey bool                // in an object: the next token is a member name
		keys    map[string]struct{} // folded member names seen
	}
	var stack []*frame
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err != nil {
			return "", ""
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if s, ok := tok.(string); ok {
			if strings.IndexByte(s, 0) >= 0 {
				return "The body holds a NUL character.", ""
			}
			if top != nil && top.object && top.wantKey {
				k := foldJSONName(s)
				if _, dup := top.keys[k]; dup {
					name := safeText(s, 64)
					return fmt.Sprintf("The member %q is given more than once.", name), name
				}
				top.keys[k] = struct{}{}
				top.wantKey = false
				continue
			}
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			if len(stack) == 0 {
				return "", "" // the first value is complete
			}
			continue
		}
		// A value (scalar or the start of an object or array).
		if top == nil {
			if _, ok := tok.(json.Delim); !ok {
				return "", "" // a scalar body: the decoder refuses it
			}
		} else if top.object {
			top.wantKey = true
		}
		if d, ok := tok.(json.Delim); ok {
			if len(stack) >= maxJSONDepth {
				return "The body nests too deeply.", ""
			}
			stack = append(stack, &frame{object: d == '{', wantKey: d == '{', keys: map[string]struct{}{}})
		}
	}
}

// foldJSONName maps each rune of s to the smallest rune of its Unicode
// simple case-folding orbit: two names encoding/json would match to the same
// field (it folds case, "K" and the Kelvin sign alike) fold to one string.
func foldJSONName(s string) string {
	return strings.Map(func(r rune) rune {
		m := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			m = min(m, f)
		}
		return m
	}, s)
}

// textOK reports whether s is at most max bytes of valid UTF-8 holding no
// control character (C0, DEL or C1), NUL included: text that may be handed
// to a store.
func textOK(s string, max int) bool {
	if len(s) > max || !utf8.ValidString(s) {
		return false
	}
	return !strings.ContainsFunc(s, unicode.IsControl)
}

// safeText keeps attacker-chosen text short and printable in messages.
func safeText(s string, max int) string {
	s = strings.ToValidUTF8(s, "?")
	if len(s) > max {
		s = strings.ToValidUTF8(s[:max], "")
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '?'
		}
		return r
	}, s)
}

func jsonKind(e *json.UnmarshalTypeError) string {
	switch e.Type.Kind().String() {
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "slice", "array":
		return "array"
	case "map", "struct", "ptr":
		return "object"
	default:
		return "number"
	}
}

// userDocument is a user as the APIs show it: never the hash.
type userDocument struct {
	ID           string     `json:"id"`
	Username     string     `json:"username"`
	Email        string     `json:"email"`
	Roles        []string   `json:"roles"`
	CreatedAt    time.Time  `json:"created_at"`
	UpdatedAt    *time.Time `json:"updated_at,omitempty"`
	Disabled     *bool      `json:"disabled,omitempty"`
	FailedLogins *int       `json:"failed_logins,omitempty"`
	LockedUntil  *time.Time `json:"locked_until,omitempty"`
}

// publicUser is what a user sees of themself.
func publicUser(u storage.User) userDocument {
	roles := u.Roles
	if roles == nil {
		roles = []string{}
	}
	return userDocument{ID: u.ID, Username: u.Username, Email: u.Email, Roles: roles, CreatedAt: u.CreatedAt.UTC()}
}

// AdminUser is u as the admin API shows it (never the hash); the operator
// CLI prints the same document.
func AdminUser(u storage.User, now time.Time) any { return adminUser(u, now) }

// adminUser adds the account state admins manage.
func adminUser(u storage.User, now time.Time) userDocument {
	d := publicUser(u)
	up := u.UpdatedAt.UTC()
	d.UpdatedAt, d.Disabled, d.FailedLogins = &up, &u.Disabled, &u.FailedLogins
	if u.LockedUntil.After(now) {
		lu := u.LockedUntil.UTC()
		d.LockedUntil = &lu
	}
	return d
}
