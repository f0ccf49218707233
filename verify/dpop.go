package verify

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/authd/authd/internal/dpop"
)

// DPoPMode says which access tokens the middleware takes: bearer tokens
// (RFC 6750), DPoP-bound tokens with a proof (RFC 9449), or both.
type DPoPMode int

const (
	// DPoPOff, the default: "Authorization: Bearer" only. A token bound to
	// a key (one with a cnf claim) is refused, since nothing here could
	// check the binding.
	DPoPOff DPoPMode = iota
	// DPoPAccept: unbound tokens as Bearer, DPoP-bound tokens as
	// "Authorization: DPoP <token>" with a DPoP proof header. A bound token
	// presented as Bearer is refused (RFC 9449 §7.2), and so is an unbound
	// one presented as DPoP.
	DPoPAccept
	// DPoPRequire: DPoP-bound tokens with a proof only; the Bearer scheme
	// and unbound tokens are refused.
	DPoPRequire
)

func (m DPoPMode) String() string {
	switch m {
	case DPoPOff:
		return "off"
	case DPoPAccept:
		return "accept"
	case DPoPRequire:
		return "require"
	}
	return fmt.Sprintf("DPoPMode(%d)", int(m))
}

// ReplayCache remembers the DPoP proofs a Verifier accepted, so that none is
// accepted twice: Remember reports whether key is new, and keeps it at least
// until until. An error refuses the request (503): the cache fails closed.
// Keys are "<jkt>:<jti>", the proof key's thumbprint and the proof's jti.
// Services with several replicas share one (on Redis, say, SET key 1 NX
// PXAT until); the default remembers in the process's memory.
type ReplayCache interface {
	Remember(ctx context.Context, key string, until time.Time) (fresh bool, err error)
}

// NewMemoryReplayCache returns the default ReplayCache: in memory, at most
// max proofs (100,000 when max <= 0), on the clock now (time.Now when nil).
// When full it refuses new proofs until old ones expire; it never forgets
// one still in its window.
func NewMemoryReplayCache(max int, now func() time.Time) ReplayCache {
	return dpop.NewMemoryReplayCache(max, now)
}

const (
	defaultDPoPWindow = 60 * time.Second
	maxDPoPWindow     = 5 * time.Minute
)

// dpopConfig is the Verifier's DPoP setup.
type dpopConfig struct {
	mode      DPoPMode
	publicURL string // scheme://host[:port][/prefix], no trailing slash; "" from the request
	replay    ReplayCache
	window    time.Duration
	algs      string // the algs parameter of challenges
}

func newDPoPConfig(cfg Config, now func() time.Time) (dpopConfig, []error) {
	var problems []error
	d := dpopConfig{mode: cfg.DPoP, replay: cfg.DPoPReplayCache, window: cfg.DPoPWindow, algs: strings.Join(dpop.Algs, " ")}
	if d.mode < DPoPOff || d.mode > DPoPRequire {
		problems = append(problems, fmt.Errorf("verify: Config.DPoP %v is not DPoPOff, DPoPAccept or DPoPRequire", d.mode))
	}
	if d.window < 0 {
		problems = append(problems, errors.New("verify: Config.DPoPWindow must not be negative"))
	}
	if d.window == 0 {
		d.window = defaultDPoPWindow
	}
	d.window = min(d.window, maxDPoPWindow)
	if cfg.PublicURL != "" {
		u, err := url.Parse(cfg.PublicURL)
		switch {
		case err != nil:
			problems = append(problems, fmt.Errorf("verify: Config.PublicURL: %w", err))
		case (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
			problems = append(problems, fmt.Errorf("verify: Config.PublicURL %q is not http(s)://host[:port][/path]", cfg.PublicURL))
		default:
			d.publicURL = strings.TrimRight(u.Scheme+"://"+u.Host+u.EscapedPath(), "/")
		}
	}
	if d.replay == nil {
		d.replay = dpop.NewMemoryReplayCache(0, now)
	}
	return d, problems
}

// VerifyDPoP checks a DPoP-bound access token and the DPoP proof presented
// with it (RFC 9449 §7.1): the token as Verify does; then the proof's
// signature by the key in its header, its typ and alg, htm against method,
// htu against requestURL (the URL the client called, as it called it; query
// and fragment are ignored), its iat within Config.DPoPWindow, its ath
// against the token; that the proof's key is the one the token is bound to
// (cnf.jkt); and, last, that the proof was not accepted before
// (Config.DPoPReplayCache). It works whatever Config.DPoP says.
//
// A proof problem matches ErrDPoPProof; a token that is not bound, or bound
// to another key, ErrDPoPBinding; a replay cache failure ErrUnavailable.
func (v *Verifier) VerifyDPoP(ctx context.Context, token, proof, method, requestURL string) (*Claims, error) {
	c, err := v.verifyToken(ctx, token)
	if err != nil {
		return nil, err
	}
	if err := v.checkProof(ctx, c, token, proof, method, requestURL); err != nil {
		return nil, err
	}
	return c, nil
}

// checkProof checks proof for the verified claims c of token.
func (v *Verifier) checkProof(ctx context.Context, c *Claims, token, proof, method, requestURL string) error {
	if c.Confirmation.JKT == "" {
		return fmt.Errorf("%w: the access token is not bound to a DPoP key", ErrDPoPBinding)
	}
	if proof == "" {
		return errNoProof
	}
	p, err := dpop.Check(proof, dpop.Params{
		Method: method, URL: requestURL, AccessToken: token, Window: v.dpop.window, Now: v.now(),
	})
	if err != nil {
		// dpop's messages name the failed check, never the proof's content.
		return fmt.Errorf("%w: %w", ErrDPoPProof, err)
	}
	if p.JKT != c.Confirmation.JKT {
		return fmt.Errorf("%w: the proof is signed by another key than the token's", ErrDPoPProof)
	}
	// The proof is acceptable while now <= iat + window; remember it a
	// second longer.
	fresh, err := v.dpop.replay.Remember(ctx, p.JKT+":"+p.JTI, p.IssuedAt.Add(v.dpop.window+time.Second))
	if err != nil {
		return fmt.Errorf("%w: DPoP replay cache: %w", ErrUnavailable, err)
	}
	if !fresh {
		return fmt.Errorf("%w: %w", ErrDPoPProof, dpop.ErrReplayed)
	}
	return nil
}

// requestURL is the htu a proof for r must carry: Config.PublicURL, or the
// scheme and Host the request arrived with, followed by the path the client
// sent (r.RequestURI, so that http.StripPrefix in front does not change it).
func (v *Verifier) requestURL(r *http.Request) string {
	path := r.URL.EscapedPath()
	if r.RequestURI != "" {
		if u, err := url.ParseRequestURI(r.RequestURI); err == nil {
			path = u.EscapedPath()
		}
	}
	if v.dpop.publicURL != "" {
		return v.dpop.publicURL + path
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + path
}

var errNoProof = fmt.Errorf("%w: no DPoP proof", ErrDPoPProof)

// proofHeader returns the request's one DPoP header ("" when there is none).
func proofHeader(r *http.Request) (string, error) {
	switch vals := r.Header.Values("DPoP"); len(vals) {
	case 0:
		return "", nil
	case 1:
		return vals[0], nil
	default:
		return "", fmt.Errorf("%w: more than one DPoP header", ErrDPoPProof)
	}
}

// describeProof is the error_description of a refused proof: the check that
// failed (dpop names it with a fixed phrase, never the proof's content).
func describeProof(err error) string {
	if errors.Is(err, errNoProof) {
		return "a DPoP proof is required (the DPoP header)"
	}
	msg := err.Error()
	if i := strings.LastIndex(msg, "invalid proof: "); i >= 0 {
		return "the DPoP proof is invalid: " + msg[i+len("invalid proof: "):]
	}
	if i := strings.Index(msg, "invalid DPoP proof: "); i >= 0 {
		return "the DPoP proof is invalid: " + msg[i+len("invalid DPoP proof: "):]
	}
	return "the DPoP proof is invalid"
}
