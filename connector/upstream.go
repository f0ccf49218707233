package connector

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	"golang.org/x/oauth2"
)

// ExchangeError classifies a failed token endpoint call (code exchange or
// refresh) as ErrUpstream. It keeps the HTTP status and the OAuth error code but
// never the response body, which can echo what was sent.
func ExchangeError(what string, err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		if re.ErrorCode != "" {
			return fmt.Errorf("%w: %s: token endpoint answered %d %s", ErrUpstream, what, status, Printable(re.ErrorCode, 64))
		}
		return fmt.Errorf("%w: %s: token endpoint answered %d", ErrUpstream, what, status)
	}
	return fmt.Errorf("%w: %s failed: %s", ErrUpstream, what, TransportReason(err))
}

// TransportReason describes err for an error message without any upstream
// response body: the network error (*url.Error names the URL and the cause)
// when there is one, the context's error, otherwise a generic phrase.
func TransportReason(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Error()
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return err.Error()
	}
	return "unexpected answer"
}
