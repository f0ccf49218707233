package oauth

import (
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"

	"github.com/authd/authd/storage"
)

// Session is authd's fosite session: who the tokens are for and until when.
// It is stored (as JSON) with each refresh token and cloned by fosite on refresh.
// It carries no JWT header: the key id is chosen at signing time.
type Session struct {
	Subject  string   `json:"sub"`
	Username string   `json:"username,omitempty"`
	Roles    []string `json:"roles,omitempty"`
	// FamilyDeadline is the absolute end of the refresh-token family started by
	// the first grant; refreshes slide the refresh expiry but never past it.
	FamilyDeadline time.Time                      `json:"family_deadline,omitzero"`
	ExpiresAt      map[fosite.TokenType]time.Time `json:"expires_at,omitempty"`
	// JKT is the thumbprint of the DPoP key the tokens are bound to (cnf.jkt);
	// stored with a refresh token, it binds a public client's refreshes.
	JKT string `json:"jkt,omitempty"`

	// What a browser sign-in (the authorization-code grant) adds, for the
	// id_token: when and how the user last proved who they are, and the
	// browser session (its public id, the sid claim) that approved the code.
	AuthTime time.Time `json:"auth_time,omitzero"`
	AMR      []string  `json:"amr,omitempty"`
	SID      string    `json:"browser_sid,omitempty"`
	// RequestedAt is when the authorization request that the user signed in
	// for began (before the login page, when it showed one): fosite's OpenID
	// Connect checks of prompt and max_age compare AuthTime with it.
	RequestedAt time.Time `json:"authorize_requested_at,omitzero"`

	origin refreshOrigin // not stored
}

// refreshOrigin is what the refresh grant read with the presented token
// (fositeStore.GetRefreshTokenSession): the token to rotate, and its user,
// nil when that user no longer exists. It rides in the session because
// fosite hands the session, and nothing else of the read, to the calls that
// follow: completeGrant and CreateRefreshTokenSession.
type refreshOrigin struct {
	hash    string // the presented token's stored hash
	subject string
	owner   *storage.User
	read    bool
}

var (
	_ fosite.Session = (*Session)(nil)
	_ openid.Session = (*Session)(nil)
)

// IDTokenClaims are the session's facts as fosite's OpenID Connect handler
// reads them (subject, auth_time, the request's time); fresh on every call.
// authd's id_token strategy (idTokens) builds the token's claims itself.
func (s *Session) IDTokenClaims() *jwt.IDTokenClaims {
	return &jwt.IDTokenClaims{
		Subject: s.Subject, AuthTime: s.AuthTime, RequestedAt: s.RequestedAt,
		AuthenticationMethodsReferences: append([]string(nil), s.AMR...),
	}
}

// IDTokenHeaders is empty: the key (kid, alg) is chosen when signing.
func (s *Session) IDTokenHeaders() *jwt.Headers { return &jwt.Headers{} }

// SetSubject is called by fosite's password grant with the authenticated subject.
func (s *Session) SetSubject(sub string) { s.Subject = sub }

// SetExpiresAt records a token's expiry; a refresh token's is clamped to the
// family deadline.
func (s *Session) SetExpiresAt(key fosite.TokenType, exp time.Time) {
	if s.ExpiresAt == nil {
		s.ExpiresAt = make(map[fosite.TokenType]time.Time, 2)
	}
	if key == fosite.RefreshToken && !s.FamilyDeadline.IsZero() && exp.After(s.FamilyDeadline) {
		exp = s.FamilyDeadline
	}
	s.ExpiresAt[key] = exp
}

// GetExpiresAt returns a token's expiry, zero when unset.
func (s *Session) GetExpiresAt(key fosite.TokenType) time.Time { return s.ExpiresAt[key] }

// GetUsername returns the user's name (empty for client tokens).
func (s *Session) GetUsername() string { return s.Username }

// GetSubject returns the subject.
func (s *Session) GetSubject() string { return s.Subject }

// Clone returns a deep copy.
func (s *Session) Clone() fosite.Session {
	if s == nil {
		return nil
	}
	c := *s
	c.Roles = append([]string(nil), s.Roles...)
	c.AMR = append([]string(nil), s.AMR...)
	if s.ExpiresAt != nil {
		c.ExpiresAt = make(map[fosite.TokenType]time.Time, len(s.ExpiresAt))
		for k, v := range s.ExpiresAt {
			c.ExpiresAt[k] = v
		}
	}
	return &c
}
