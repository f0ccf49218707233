// Package storage holds authd's records, the sentinel errors every backend
// returns, and the small interfaces the layers above use. Backends live in
// subpackages (postgres, sqlite, redis) and all pass storage/storagetest.
package storage

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. Backends wrap them with %w; callers test with errors.Is.
var (
	// ErrNotFound: no row matched (also returned by conditional writes that changed nothing).
	ErrNotFound = errors.New("storage: not found")
	// ErrConflict: a unique constraint was violated (username, email, client id, key id...).
	ErrConflict = errors.New("storage: conflict")
	// ErrSerialization: the database aborted the transaction because of a concurrent one
	// (PostgreSQL 40001/40P01, SQLite busy); the caller may retry.
	ErrSerialization = errors.New("storage: serialization failure")
	// ErrUnavailable: the database cannot be reached or cannot serve now
	// (connection refused or lost, shutting down, too many connections, a
	// timeout); the request may be repeated later.
	ErrUnavailable = errors.New("storage: unavailable")
)

// Retryable reports whether err says the store could not serve the request
// now (ErrUnavailable, ErrSerialization): an HTTP layer answers 503 with
// Retry-After, not 500.
func Retryable(err error) bool {
	return errors.Is(err, ErrUnavailable) || errors.Is(err, ErrSerialization)
}

// Role names carried in tokens.
const (
	RoleUser  = "user"
	RoleAdmin = "admin"
)

// User is an account that can sign in with a password.
type User struct {
	ID           string // opaque, stable; the "sub" of the user's tokens
	Username     string // lowercased
	Email        string // as given; unique case-insensitively
	PasswordHash string // PHC string (argon2id) or an imported bcrypt hash
	Roles        []string
	Disabled     bool
	// FailedLogins counts the failed password checks since the last success
	// (or the last expired lock, or an unlock).
	FailedLogins int
	// PendingLogins counts the password checks in flight, admitted while
	// FailedLogins+PendingLogins is below the lockout threshold (see
	// identity.Authenticate).
	PendingLogins int
	LockedUntil   time.Time // zero when not locked
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// Client is a registered OAuth 2.0 client.
type Client struct {
	ID         string
	Name       string
	SecretHash []byte // keyed hash of the secret; empty for public clients
	Public     bool   // token_endpoint_auth_method "none"
	GrantTypes []string
	Scopes     []string
	Audience   []string
	Introspect bool // may introspect any token (a resource server)
	DPoPBound  bool // must bind its tokens to a key with DPoP (RFC 9449)
	// RedirectURIs are where authorization responses may go (matched
	// exactly; RFC 6749 §3.1.2); PostLogoutRedirectURIs where RP-initiated
	// logout may send the browser back.
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	FirstParty             bool // skips the consent page
	CreatedAt              time.Time
}

// RefreshToken is one link of a refresh-token family. Only a hash of the
// token's signature is stored.
type RefreshToken struct {
	SignatureHash string // primary key
	FamilyID      string // the id of the first request; every rotation keeps it
	ClientID      string
	Subject       string
	Active        bool   // false once rotated or revoked
	Request       []byte // serialised request and session, owned by server/oauth
	RequestedAt   time.Time
	ExpiresAt     time.Time
}

// BrowserSession is a signed-in browser (single sign-on). Only a hash of the
// cookie value is stored.
type BrowserSession struct {
	IDHash     string // primary key: hex SHA-256 of the cookie value; the value itself is never stored
	ID         string // public id, the `sid` claim of id_tokens (random, not derived from the cookie)
	UserID     string
	AuthTime   time.Time // when the user last proved who they are in it
	AMR        []string  // how: ["pwd"], or an upstream's
	CreatedAt  time.Time
	LastSeenAt time.Time // for the idle lifetime (AUTHD_SESSION_IDLE_TTL)
	ExpiresAt  time.Time // absolute end (AUTHD_SESSION_TTL after creation)
}

// AuthorizationCode is an authorization code (RFC 6749 §4.1) between the
// authorize response and its exchange. Only a hash of the code's signature is stored.
type AuthorizationCode struct {
	SignatureHash string // primary key
	RequestID     string // fosite's request id: the family of the tokens it is exchanged for
	ClientID      string
	Subject       string
	SessionID     string // the BrowserSession.ID that approved it
	Active        bool   // false once exchanged
	Request       []byte // serialised request (PKCE challenge, nonce, redirect_uri, session); owned by server/oauth
	RequestedAt   time.Time
	ExpiresAt     time.Time // 60 s after issue
}

// Consent is what a user allowed a client that is not first-party.
type Consent struct {
	UserID    string
	ClientID  string
	Scopes    []string // the union of every scope allowed so far
	GrantedAt time.Time
}

// Link ties an upstream identity (a connector's subject) to a local user.
// (ConnectorID, Subject) is unique, and so is (UserID, ConnectorID): a user
// has at most one link per connector. Deleting the user deletes its links.
type Link struct {
	ConnectorID string
	Subject     string // the upstream's stable id for the person
	UserID      string
	Email       string // the upstream's email when the link was made, only when it said it verified it ("" otherwise)
	CreatedAt   time.Time
	LastLoginAt time.Time // the last sign-in through the link (CreatedAt at first)
}

// UpstreamLogin is a sign-in through a connector in progress, from the
// redirect to the upstream to its callback, and then, when the identity must
// be linked to a local account by its password, until that form is sent.
// It is single-use: taking it deletes it.
type UpstreamLogin struct {
	IDHash      string // primary key: hex SHA-256 of the value that names it (the state parameter, the link form's token)
	BindingHash string // hex SHA-256 of the browser's binding cookie
	ConnectorID string
	Data        []byte // serialised flow state, owned by server/web
	CreatedAt   time.Time
	ExpiresAt   time.Time
}

// KeyState is where a signing key is in its life.
type KeyState string

// Key states: next is published before use, current signs, retired is only
// published until every token it signed has expired.
const (
	KeyNext    KeyState = "next"
	KeyCurrent KeyState = "current"
	KeyRetired KeyState = "retired"
)

// SigningKey is a token signing key. The private part is encrypted by keys/.
type SigningKey struct {
	ID          string // kid
	Alg         string // ES256, RS256, EdDSA
	State       KeyState
	PrivateKey  []byte // encrypted, opaque to storage
	PublicKey   []byte // public JWK JSON
	CreatedAt   time.Time
	ActivatedAt time.Time // when it became current; zero before
	RetiredAt   time.Time // when it stopped signing; zero before
	ExpiresAt   time.Time // retired keys may be dropped after this; zero otherwise
}

// RevocationKind tells what a denylist entry names.
type RevocationKind string

// Revocation kinds.
const (
	RevokedJTI    RevocationKind = "jti"    // one access token
	RevokedFamily RevocationKind = "family" // every access token issued from a refresh family
	// RevokedSubject marks a user: every access token of that user issued at
	// or before the entry's Cutoff (logout, password change, disable, delete).
	RevokedSubject RevocationKind = "subject"
	// RevokedClient marks a client: every access token issued to it at or
	// before the entry's Cutoff (the client was deleted).
	RevokedClient RevocationKind = "client"
)

// Revocation is a denylist entry; it is kept until ExpiresAt, after which every
// token it names has expired anyway.
type Revocation struct {
	Kind  RevocationKind
	Value string
	// Cutoff is the instant of a subject or client mark: tokens issued at or
	// before it are revoked, later ones are not. Zero for jti and family.
	Cutoff    time.Time
	ExpiresAt time.Time
}

// Marks reports whether the kind is a time mark (subject or client).
func (k RevocationKind) Marks() bool { return k == RevokedSubject || k == RevokedClient }

// Valid checks an entry before it is stored.
func (e Revocation) Valid() error {
	switch {
	case e.Kind != RevokedJTI && e.Kind != RevokedFamily && !e.Kind.Marks():
		return fmt.Errorf("storage: unknown revocation kind %q", e.Kind)
	case e.Value == "" || e.ExpiresAt.IsZero():
		return errors.New("storage: a revocation needs a value and an expiry")
	case e.Kind.Marks() != !e.Cutoff.IsZero():
		return errors.New("storage: subject and client revocations, and only they, need a cutoff")
	}
	return nil
}

// TokenRef is what a denylist entry can match in an access token.
type TokenRef struct {
	JTI      string
	Family   string
	Subject  string
	ClientID string
	// IssuedAt is when the token was issued, as precisely as the token
	// tells it (rounded down: a token is never judged younger than it is).
	IssuedAt time.Time
}

// Matches reports whether the entry, unexpired at now, revokes the token.
func (e Revocation) Matches(t TokenRef, now time.Time) bool {
	if !now.Before(e.ExpiresAt) {
		return false
	}
	switch e.Kind {
	case RevokedJTI:
		return t.JTI != "" && t.JTI == e.Value
	case RevokedFamily:
		return t.Family != "" && t.Family == e.Value
	case RevokedSubject:
		return t.Subject != "" && t.Subject == e.Value && !t.IssuedAt.After(e.Cutoff)
	case RevokedClient:
		return t.ClientID != "" && t.ClientID == e.Value && !t.IssuedAt.After(e.Cutoff)
	}
	return false
}

// Merge combines two entries of one (kind, value): the later expiry and the
// later cutoff win, so a mark only ever widens.
func (e Revocation) Merge(o Revocation) Revocation {
	if o.ExpiresAt.After(e.ExpiresAt) {
		e.ExpiresAt = o.ExpiresAt
	}
	if o.Cutoff.After(e.Cutoff) {
		e.Cutoff = o.Cutoff
	}
	return e
}

// AuditEntry is one line of the audit trail.
type AuditEntry struct {
	ID       int64 // assigned by the store
	Time     time.Time
	Type     string // event type, e.g. auth.login.failed
	UserID   string
	ClientID string
	IP       string
	Data     []byte // JSON object, never secrets
}

// AuditFilter selects audit entries, newest first.
type AuditFilter struct {
	UserID string
	Type   string
	Since  time.Time
	Limit  int
}

// OutboxEvent is a security event waiting to be published.
type OutboxEvent struct {
	ID        string // event id (unique)
	Type      string
	Key       string // partition key (user id)
	Payload   []byte // JSON body as published
	CreatedAt time.Time
	SentAt    time.Time // zero while pending
}

// Users stores accounts.
type Users interface {
	CreateUser(ctx context.Context, u User) error
	GetUser(ctx context.Context, id string) (User, error)
	// GetUserByLogin finds a user by username or email, case-insensitively.
	GetUserByLogin(ctx context.Context, login string) (User, error)
	// UpdateUser reads the user, applies fn and writes the result in one
	// transaction with the row locked, so concurrent updates never lose one.
	// When no user has id it returns ErrNotFound without calling fn, after
	// running the same statements as a hit (the write then touches no row),
	// so that a miss costs the round trips a hit costs: the login path uses
	// it for unknown users. Inside a transaction a miss leaves it usable.
	UpdateUser(ctx context.Context, id string, fn func(*User) error) (User, error)
	// UpdateUserAsyncCommit is UpdateUser whose own transaction commits
	// without waiting for the write to reach the disk (PostgreSQL's
	// asynchronous commit; SQLite in WAL mode never waits). The change is
	// visible at once; a database crash may lose it, until any later commit
	// that does wait makes it durable. Inside a caller's transaction it is
	// UpdateUser. The login path counts attempts with it: the transaction
	// that settles an attempt waits, so every path pays one disk flush.
	UpdateUserAsyncCommit(ctx context.Context, id string, fn func(*User) error) (User, error)
	DeleteUser(ctx context.Context, id string) error
	// ListUsers pages through users ordered by id; Query matches a substring
	// of username or email, case-insensitively.
	ListUsers(ctx context.Context, q UserQuery) (users []User, next string, err error)
}

// UserQuery selects a page of users.
type UserQuery struct {
	Query  string
	Cursor string // the next value of the previous page; empty for the first
	Limit  int
}

// Clients stores OAuth clients.
type Clients interface {
	CreateClient(ctx context.Context, c Client) error
	GetClient(ctx context.Context, id string) (Client, error)
	ListClients(ctx context.Context) ([]Client, error)
	// UpdateClient reads, applies fn and writes in one transaction.
	UpdateClient(ctx context.Context, id string, fn func(*Client) error) (Client, error)
	DeleteClient(ctx context.Context, id string) error
}

// RefreshTokens stores refresh-token families.
type RefreshTokens interface {
	CreateRefreshToken(ctx context.Context, t RefreshToken) error
	// GetRefreshToken returns the token whatever its state; callers check Active.
	GetRefreshToken(ctx context.Context, signatureHash string) (RefreshToken, error)
	// GetRefreshTokenWithUser returns the token, as GetRefreshToken does,
	// and in the same read the user it was issued to: nil when that user no
	// longer exists. (A refresh needs both; one round trip, not two.)
	GetRefreshTokenWithUser(ctx context.Context, signatureHash string) (RefreshToken, *User, error)
	// RotateRefreshToken replaces the active token oldHash by next in one
	// atomic step: oldHash is deactivated, remembering next as its successor
	// and the database's time, and next is stored. Of concurrent calls for one
	// token one rotates. Any other call succeeds without writing only when
	// grace > 0, it names the same successor, the rotation happened less than
	// grace ago (database clock) and the successor is still active: rotation
	// is idempotent. Otherwise it writes nothing and returns ErrNotFound.
	RotateRefreshToken(ctx context.Context, oldHash string, next RefreshToken, grace time.Duration) error
	// InRotationGrace reports whether the token was rotated less than grace
	// ago (database clock) and its successor is still active.
	InRotationGrace(ctx context.Context, signatureHash string, grace time.Duration) (bool, error)
	DeleteRefreshToken(ctx context.Context, signatureHash string) error
	// RevokeRefreshFamily deactivates every token of the family.
	RevokeRefreshFamily(ctx context.Context, familyID string) error
	// RevokeSubjectRefreshTokens deactivates every active token of subject,
	// except those of exceptFamily (may be empty), and returns the families it touched.
	RevokeSubjectRefreshTokens(ctx context.Context, subject, exceptFamily string) ([]string, error)
}

// BrowserSessions stores browser sessions.
type BrowserSessions interface {
	CreateBrowserSession(ctx context.Context, s BrowserSession) error
	GetBrowserSession(ctx context.Context, idHash string) (BrowserSession, error) // ErrNotFound
	// TouchBrowserSession sets LastSeenAt (and AuthTime/AMR when the
	// session re-authenticated: zero/nil keep them); ErrNotFound when gone.
	TouchBrowserSession(ctx context.Context, idHash string, lastSeen, authTime time.Time, amr []string) error
	DeleteBrowserSession(ctx context.Context, idHash string) error // ErrNotFound when none
	// DeleteUserBrowserSessions ends every session of the user (disable,
	// delete, password change) and returns how many it ended.
	DeleteUserBrowserSessions(ctx context.Context, userID string) (int64, error)
}

// AuthorizationCodes stores authorization codes.
type AuthorizationCodes interface {
	CreateAuthorizationCode(ctx context.Context, c AuthorizationCode) error                    // ErrConflict on a repeated hash
	GetAuthorizationCode(ctx context.Context, signatureHash string) (AuthorizationCode, error) // whatever its state; ErrNotFound
	// UseAuthorizationCode marks an active code used, in one conditional
	// statement: of concurrent uses exactly one succeeds; the others, and any
	// use of an unknown or already used code, get ErrNotFound.
	UseAuthorizationCode(ctx context.Context, signatureHash string) error
}

// Consents stores consents.
type Consents interface {
	GetConsent(ctx context.Context, userID, clientID string) (Consent, error) // ErrNotFound
	SaveConsent(ctx context.Context, c Consent) error                         // insert or replace
	DeleteConsents(ctx context.Context, userID string) (int64, error)
}

// Links stores account links to upstream identities.
type Links interface {
	// CreateLink stores l; ErrConflict when its (ConnectorID, Subject) or its
	// (UserID, ConnectorID) is taken, ErrNotFound when the user does not exist.
	CreateLink(ctx context.Context, l Link) error
	GetLink(ctx context.Context, connectorID, subject string) (Link, error) // ErrNotFound
	// ListUserLinks lists the user's links ordered by connector id (empty,
	// not an error, for a user without any or an unknown user).
	ListUserLinks(ctx context.Context, userID string) ([]Link, error)
	// TouchLink sets the link's LastLoginAt; ErrNotFound when it is gone.
	TouchLink(ctx context.Context, connectorID, subject string, at time.Time) error
	// DeleteLink removes the user's link to the connector; ErrNotFound when none.
	DeleteLink(ctx context.Context, userID, connectorID string) error
}

// UpstreamLogins stores sign-ins through connectors in progress.
type UpstreamLogins interface {
	CreateUpstreamLogin(ctx context.Context, l UpstreamLogin) error // ErrConflict on a repeated IDHash
	// TakeUpstreamLogin deletes the sign-in and returns it, in one statement:
	// of concurrent takes of one sign-in exactly one gets it; the others, and
	// a take of an unknown sign-in or of one expired at now, get ErrNotFound.
	TakeUpstreamLogin(ctx context.Context, idHash string, now time.Time) (UpstreamLogin, error)
}

// Keys stores signing keys.
type Keys interface {
	ListKeys(ctx context.Context) ([]SigningKey, error)
	// UpdateKeys replaces the key set with fn's result in one transaction that
	// only one caller (across replicas) runs at a time.
	UpdateKeys(ctx context.Context, fn func(old []SigningKey) ([]SigningKey, error)) error
}

// Denylist records early revocations of access tokens.
type Denylist interface {
	Revoke(ctx context.Context, entries ...Revocation) error
	// IsRevoked reports whether an unexpired entry matches the token: its
	// jti, its family, or a subject or client mark at or after its issue time.
	IsRevoked(ctx context.Context, t TokenRef) (bool, error)
}

// ProofReplay remembers DPoP proof ids for their window.
type ProofReplay interface {
	// RememberProof records key until expires; fresh is false when key was
	// recorded before and has not expired.
	RememberProof(ctx context.Context, key string, expires time.Time) (fresh bool, err error)
}

// Audit is the append-only audit trail.
type Audit interface {
	AppendAudit(ctx context.Context, e AuditEntry) error
	ListAudit(ctx context.Context, f AuditFilter) ([]AuditEntry, error)
}

// Outbox holds events until the relay has published them.
type Outbox interface {
	AppendOutbox(ctx context.Context, e OutboxEvent) error
	// PendingOutbox lists up to limit unsent events, oldest first, claimed or not.
	PendingOutbox(ctx context.Context, limit int) ([]OutboxEvent, error)
	// ClaimOutbox claims up to limit unsent events that no one holds a live
	// claim on, for lease (database clock), and returns them oldest first.
	// Concurrent callers never get the same event while a claim lasts.
	ClaimOutbox(ctx context.Context, limit int, lease time.Duration) ([]OutboxEvent, error)
	// ReleaseOutbox drops the claims on events not published, for a retry.
	ReleaseOutbox(ctx context.Context, ids []string) error
	MarkOutboxSent(ctx context.Context, ids []string, at time.Time) error
	// OutboxBacklog counts the unsent events, claimed or not, and returns
	// the creation time of the oldest (zero when there is none).
	OutboxBacklog(ctx context.Context) (count int, oldest time.Time, err error)
}

// Transactor runs work in one database transaction. Every store method picks
// the transaction up from the context it is given.
type Transactor interface {
	// InTx runs fn in a transaction, committing when it returns nil. Inside an
	// existing transaction it just runs fn.
	InTx(ctx context.Context, fn func(ctx context.Context) error) error
}

// Store is everything a SQL backend provides.
type Store interface {
	Users
	Clients
	RefreshTokens
	BrowserSessions
	AuthorizationCodes
	Consents
	Links
	UpstreamLogins
	Keys
	Denylist
	Audit
	Outbox
	ProofReplay
	Transactor
	// ActiveRevocations lists denylist entries not yet expired (to warm a cache).
	ActiveRevocations(ctx context.Context, now time.Time) ([]Revocation, error)
	// Purge deletes expired refresh tokens, authorization codes (used ones
	// too, only once expired: a second use must find the row to be told
	// apart as reuse), browser sessions past their absolute end, denylist
	// entries, DPoP proof ids, dropped keys and expired upstream sign-ins
	// in progress, and what r says has been
	// kept long enough. (A session's idle end is its reader's to check: the
	// idle lifetime is configuration.)
	Purge(ctx context.Context, now time.Time, r Retention) (int64, error)
	Migrate(ctx context.Context) error
	MigrationStatus(ctx context.Context) ([]MigrationState, error)
	Ping(ctx context.Context) error
	Close() error
}

// OutboxRetention is how long a published event stays in the outbox.
const OutboxRetention = 7 * 24 * time.Hour

// Retention says how long Purge keeps history; a zero duration keeps it forever.
type Retention struct {
	Audit        time.Duration // audit entries, by their time
	SentOutbox   time.Duration // outbox events, from when they were published
	UnsentOutbox time.Duration // outbox events never published, from when they were written (no broker configured)
}

// MigrationState reports one migration.
type MigrationState struct {
	Version   int64
	Name      string
	Applied   bool
	AppliedAt time.Time
}

// OrderKeyWrites checks the key set an UpdateKeys callback returned and puts
// it in the order a backend must write it: ids are unique (ErrConflict
// otherwise), a zero CreatedAt becomes now, and keys leaving the current
// state come before the one entering it, so that at most one key is current
// at any moment. It returns the ids to keep and the keys to upsert.
func OrderKeyWrites(keys []SigningKey, now time.Time) ([]string, []SigningKey, error) {
	ids := make([]string, 0, len(keys))
	seen := make(map[string]bool, len(keys))
	ordered := make([]SigningKey, 0, len(keys))
	var current []SigningKey
	for _, k := range keys {
		if seen[k.ID] {
			return nil, nil, fmt.Errorf("storage: duplicate key id %q: %w", k.ID, ErrConflict)
		}
		seen[k.ID] = true
		ids = append(ids, k.ID)
		if k.CreatedAt.IsZero() {
			k.CreatedAt = now
		}
		if k.State == KeyCurrent {
			current = append(current, k)
		} else {
			ordered = append(ordered, k)
		}
	}
	return ids, append(ordered, current...), nil
}

// PurgeBefore is the instant before which rows kept for keep are purged at
// now; the zero time, before every row, when keep is zero (keep forever).
func PurgeBefore(now time.Time, keep time.Duration) time.Time {
	if keep <= 0 {
		return time.Time{}
	}
	return now.Add(-keep)
}
