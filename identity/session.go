package identity

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/authd/authd/storage"
)

// Browser sessions (single sign-on). A browser that signed in holds a
// cookie whose value is 32 random bytes; the store keeps only the value's
// SHA-256, so that a copy of the database signs no one in. A session ends
// at its absolute end (TTL after it started), after IdleTTL unused, when
// its user is disabled or deleted or changes password, and on logout.

// ErrNoSession is CheckSession's answer when the cookie names no live
// session: unknown, ended, expired, idle too long, or its user disabled or
// deleted. (The session is deleted then.)
var ErrNoSession = errors.New("identity: no live browser session")

// Browser session defaults (AUTHD_SESSION_TTL, AUTHD_SESSION_IDLE_TTL).
const (
	DefaultSessionTTL     = 720 * time.Hour
	DefaultSessionIdleTTL = 72 * time.Hour
)

// sessionTouchEvery is how stale LastSeenAt may get before a check writes
// it again: once a minute at most, so that a page load costs a read, not a
// write, while the idle lifetime (hours) stays exact to a minute.
const sessionTouchEvery = time.Minute

// cookieBytes is the entropy of a session cookie value.
const cookieBytes = 32

// SessionStore is what Sessions needs from storage.
type SessionStore interface {
	storage.BrowserSessions
	GetUser(ctx context.Context, id string) (storage.User, error)
}

// SessionOptions configure Sessions. Zero values pick defaults.
type SessionOptions struct {
	TTL     time.Duration // absolute lifetime; DefaultSessionTTL when 0
	IdleTTL time.Duration // ends a session unused this long; DefaultSessionIdleTTL when 0
	Now     func() time.Time
	Logger  *slog.Logger
}

// Sessions starts, checks and ends browser sessions.
type Sessions struct {
	store SessionStore
	ttl   time.Duration
	idle  time.Duration
	now   func() time.Time
	log   *slog.Logger
}

// NewSessions returns the browser sessions kept in store.
func NewSessions(store SessionStore, opts SessionOptions) *Sessions {
	s := &Sessions{store: store, ttl: opts.TTL, idle: opts.IdleTTL, now: opts.Now, log: opts.Logger}
	if s.ttl <= 0 {
		s.ttl = DefaultSessionTTL
	}
	if s.idle <= 0 {
		s.idle = DefaultSessionIdleTTL
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s
}

// TTL is the sessions' absolute lifetime (the cookie's Max-Age).
func (s *Sessions) TTL() time.Duration { return s.ttl }

// HashSessionCookie is what the store keeps of a cookie value: its SHA-256
// in hex (BrowserSession.IDHash).
func HashSessionCookie(value string) string {
	h := sha256.Sum256([]byte(value))
	return hex.EncodeToString(h[:])
}

// validCookie reports whether value has the shape of a cookie this package
// issued (43 characters of unpadded base64url), so that junk costs no read.
func validCookie(value string) bool {
	if len(value) != base64.RawURLEncoding.EncodedLen(cookieBytes) {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(value)
	return err == nil
}

// StartSession starts a session for the user who just proved who they are
// by amr (["pwd"] for a password) and returns the cookie value (to hand to
// the browser, never to store or log) and the session as stored.
func (s *Sessions) StartSession(ctx context.Context, userID string, amr []string) (string, storage.BrowserSession, error) {
	var raw [cookieBytes]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", storage.BrowserSession{}, fmt.Errorf("identity: start session: %w", err)
	}
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return "", storage.BrowserSession{}, fmt.Errorf("identity: start session: %w", err)
	}
	value := base64.RawURLEncoding.EncodeToString(raw[:])
	now := s.now().UTC().Truncate(time.Microsecond) // PostgreSQL keeps microseconds
	bs := storage.BrowserSession{
		IDHash:     HashSessionCookie(value),
		ID:         base64.RawURLEncoding.EncodeToString(id[:]),
		UserID:     userID,
		AuthTime:   now,
		AMR:        append([]string(nil), amr...),
		CreatedAt:  now,
		LastSeenAt: now,
		ExpiresAt:  now.Add(s.ttl),
	}
	if err := s.store.CreateBrowserSession(ctx, bs); err != nil {
		return "", storage.BrowserSession{}, fmt.Errorf("identity: start session: %w", err)
	}
	return value, bs, nil
}

// CheckSession returns the live session the cookie value names, and its
// user, as of now; ErrNoSession when there is none. A session past its
// absolute end or idle longer than IdleTTL, or whose user is disabled or
// gone, is deleted. LastSeenAt is written when it is a minute or more
// behind now.
func (s *Sessions) CheckSession(ctx context.Context, value string, now time.Time) (storage.BrowserSession, storage.User, error) {
	if !validCookie(value) {
		return storage.BrowserSession{}, storage.User{}, ErrNoSession
	}
	hash := HashSessionCookie(value)
	bs, err := s.store.GetBrowserSession(ctx, hash)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.BrowserSession{}, storage.User{}, ErrNoSession
	} else if err != nil {
		return storage.BrowserSession{}, storage.User{}, fmt.Errorf("identity: check session: %w", err)
	}
	ended := ""
	switch {
	case !now.Before(bs.ExpiresAt):
		ended = "expired"
	case now.Sub(bs.LastSeenAt) >= s.idle:
		ended = "idle"
	}
	var u storage.User
	if ended == "" {
		u, err = s.store.GetUser(ctx, bs.UserID)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			ended = "user_deleted"
		case err != nil:
			return storage.BrowserSession{}, storage.User{}, fmt.Errorf("identity: check session: %w", err)
		case u.Disabled:
			ended = "user_disabled"
		}
	}
	if ended != "" {
		if err := s.store.DeleteBrowserSession(ctx, hash); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return storage.BrowserSession{}, storage.User{}, fmt.Errorf("identity: end session: %w", err)
		}
		s.log.DebugContext(ctx, "identity: browser session ended", "sid", bs.ID, "user_id", bs.UserID, "reason", ended)
		return storage.BrowserSession{}, storage.User{}, ErrNoSession
	}
	if now.Sub(bs.LastSeenAt) >= sessionTouchEvery {
		seen := now.UTC().Truncate(time.Microsecond)
		err := s.store.TouchBrowserSession(ctx, hash, seen, time.Time{}, nil)
		if errors.Is(err, storage.ErrNotFound) { // ended meanwhile
			return storage.BrowserSession{}, storage.User{}, ErrNoSession
		} else if err != nil {
			return storage.BrowserSession{}, storage.User{}, fmt.Errorf("identity: check session: %w", err)
		}
		bs.LastSeenAt = seen
	}
	return bs, u, nil
}

// EndSession ends the session the cookie value names (logout) and reports
// whether there was one.
func (s *Sessions) EndSession(ctx context.Context, value string) (bool, error) {
	if !validCookie(value) {
		return false, nil
	}
	err := s.store.DeleteBrowserSession(ctx, HashSessionCookie(value))
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("identity: end session: %w", err)
	}
	return true, nil
}
