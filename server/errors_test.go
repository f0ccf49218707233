package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/authd/authd/clients"
	"github.com/authd/authd/identity"
	"github.com/authd/authd/storage"
)

// Every domain error the JSON API meets has one answer, wrapped or not.
func TestAnswerFor(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("server: op: %w", err) }
	for _, c := range []struct {
		err    error
		status int
		detail string
		field  string
	}{
		{&identity.ValidationError{Field: "email", Reason: "is not an email address"}, http.StatusBadRequest, "email is not an email address.", "email"},
		{&clients.SpecError{Problems: []string{"a", "b"}}, http.StatusBadRequest, "Invalid client: a; b.", ""},
		{identity.ErrWrongPassword, http.StatusBadRequest, "current_password is wrong.", "current_password"},
		{identity.ErrOwnAccount, http.StatusConflict, "An admin cannot disable their own account.", "disabled"},
		{identity.ErrDeleteOwnAccount, http.StatusConflict, "An admin cannot delete their own account.", ""},
		{fmt.Errorf("%w: %w", clients.ErrIDTaken, storage.ErrConflict), http.StatusConflict, "client_id is already taken.", "client_id"},
		{taken("email", storage.ErrConflict), http.StatusConflict, "email is already taken.", "email"},
		{storage.ErrConflict, http.StatusConflict, "The resource already exists.", ""},
		{storage.ErrNotFound, http.StatusNotFound, "No such resource.", ""},
		{storage.ErrUnavailable, http.StatusServiceUnavailable, "The service is temporarily unavailable; retry shortly.", ""},
		{storage.ErrSerialization, http.StatusServiceUnavailable, "The service is temporarily unavailable; retry shortly.", ""},
		{identity.ErrBusy, http.StatusServiceUnavailable, "The service is temporarily unavailable; retry shortly.", ""},
		{context.Canceled, http.StatusInternalServerError, "The server could not complete the request.", ""},
		{errors.New("a bug"), http.StatusInternalServerError, "The server could not complete the request.", ""},
	} {
		for _, err := range []error{c.err, wrap(c.err)} {
			got := answerFor(err)
			if got.status != c.status || got.detail != c.detail || got.field != c.field {
				t.Errorf("answerFor(%v) = %d %q %q; want %d %q %q", err, got.status, got.detail, got.field, c.status, c.detail, c.field)
			}
		}
	}
}
