package oauth

import (
	"context"
	"errors"
	"testing"

	"github.com/ory/fosite"
)

// grantHandler is a token endpoint handler of one grant that counts the
// responses it was asked to populate.
type grantHandler struct {
	grant     string
	populated int
}

func (h *grantHandler) HandleTokenEndpointRequest(context.Context, fosite.AccessRequester) error {
	return nil
}

func (h *grantHandler) PopulateTokenEndpointResponse(context.Context, fosite.AccessRequester, fosite.AccessResponder) error {
	h.populated++
	return nil
}

func (h *grantHandler) CanSkipClientAuth(context.Context, fosite.AccessRequester) bool { return false }

func (h *grantHandler) CanHandleTokenEndpointRequest(_ context.Context, r fosite.AccessRequester) bool {
	return r.GetGrantTypes().ExactOne(h.grant)
}

// ownGrantOnly asks a handler to populate only the responses of its own
// grant, and answers ErrUnknownRequest (which fosite's response loop
// skips, as it skips nil) for the others.
func TestOwnGrantOnly(t *testing.T) {
	h := &grantHandler{grant: "client_credentials"}
	w := ownGrantOnly{h}
	other := fosite.NewAccessRequest(nil)
	other.GrantTypes = fosite.Arguments{"refresh_token"}
	if err := w.PopulateTokenEndpointResponse(t.Context(), other, fosite.NewAccessResponse()); !errors.Is(err, fosite.ErrUnknownRequest) || h.populated != 0 {
		t.Fatalf("another grant: %v, populated %d times; want ErrUnknownRequest, never", err, h.populated)
	}
	own := fosite.NewAccessRequest(nil)
	own.GrantTypes = fosite.Arguments{"client_credentials"}
	if err := w.PopulateTokenEndpointResponse(t.Context(), own, fosite.NewAccessResponse()); err != nil || h.populated != 1 {
		t.Fatalf("its own grant: %v, populated %d times; want nil, once", err, h.populated)
	}
	if !w.CanHandleTokenEndpointRequest(t.Context(), own) || w.CanHandleTokenEndpointRequest(t.Context(), other) {
		t.Fatal("the wrapper changed CanHandleTokenEndpointRequest")
	}
}
