package server

import (
	"errors"
	"net/http"
	"strings"

	"github.com/authd/authd/clients"
	"github.com/authd/authd/identity"
	"github.com/authd/authd/storage"
)

// takenError says which input member a conflict is about: the store only
// knows that a unique value exists, the handler knows which one it was
// (a username or an email).
type takenError struct {
	field string
	err   error
}

func (e *takenError) Error() string { return e.field + " is already taken: " + e.err.Error() }
func (e *takenError) Unwrap() error { return e.err }

// taken marks err, a conflict, as being about field.
func taken(field string, err error) error { return &takenError{field: field, err: err} }

// apiAnswer is how the JSON API answers an error: a status, the problem's
// detail, and the input member it names, if any.
type apiAnswer struct {
	status int
	detail string
	field  string
}

// answerFor is the one table from the domain errors the JSON API's handlers
// meet to their answers; the first case that matches wins. An outage of a
// store is 503 (with Retry-After); anything it does not know is a bug: 500,
// without detail.
func answerFor(err error) apiAnswer {
	var (
		ve   *identity.ValidationError
		spec *clients.SpecError
		tk   *takenError
	)
	switch {
	case errors.As(err, &ve):
		return apiAnswer{http.StatusBadRequest, ve.Field + " " + ve.Reason + ".", ve.Field}
	case errors.As(err, &spec):
		return apiAnswer{http.StatusBadRequest, "Invalid client: " + strings.Join(spec.Problems, "; ") + ".", ""}
	case errors.Is(err, identity.ErrWrongPassword):
		return apiAnswer{http.StatusBadRequest, "current_password is wrong.", "current_password"}
	case errors.Is(err, identity.ErrOwnAccount):
		return apiAnswer{http.StatusConflict, "An admin cannot disable their own account.", "disabled"}
	case errors.Is(err, identity.ErrDeleteOwnAccount):
		return apiAnswer{http.StatusConflict, "An admin cannot delete their own account.", ""}
	case errors.Is(err, clients.ErrIDTaken):
		return apiAnswer{http.StatusConflict, "client_id is already taken.", "client_id"}
	case errors.As(err, &tk):
		return apiAnswer{http.StatusConflict, tk.field + " is already taken.", tk.field}
	case errors.Is(err, storage.ErrConflict):
		return apiAnswer{http.StatusConflict, "The resource already exists.", ""}
	case errors.Is(err, storage.ErrNotFound):
		return apiAnswer{http.StatusNotFound, "No such resource.", ""}
	case identity.Unavailable(err):
		return apiAnswer{http.StatusServiceUnavailable, "The service is temporarily unavailable; retry shortly.", ""}
	default:
		return apiAnswer{http.StatusInternalServerError, "The server could not complete the request.", ""}
	}
}

// writeError answers err as problem+json (answerFor), logs what an operator
// must see, and counts store outages.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	a := answerFor(err)
	switch a.status {
	case http.StatusServiceUnavailable:
		if storage.Retryable(err) {
			s.metrics.DatabaseUnavailable(err)
		}
		s.log.WarnContext(r.Context(), "store unavailable", "path", r.URL.Path, "error", err)
		w.Header().Set("Retry-After", "1")
	case http.StatusInternalServerError:
		s.log.ErrorContext(r.Context(), "request failed", "path", r.URL.Path, "error", err)
	}
	writeProblemField(w, r, a.status, a.detail, a.field)
}
