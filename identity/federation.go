package identity

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/authd/authd/events"
	"github.com/authd/authd/storage"
)

// Sign-in through other identity providers (connectors). An upstream
// identity is linked to a local user by (connector id, upstream subject);
// the link, not the email, says who the person is here. A first sign-in
// creates the user, links to the local account that has the upstream's
// verified email, or asks the person to prove a local account's password,
// as the connector's LinkPolicy allows.

// Errors of Federation.
var (
	// ErrLinkRequired: the upstream identity is linked to no local user and
	// the policy does not let SignIn create or pick one: the person must
	// prove a local account's password (then Link). See *LinkRequiredError.
	ErrLinkRequired = errors.New("identity: the upstream identity must be linked to a local account")
	// ErrAlreadyLinked: the local user is linked to another identity of the
	// same connector (a user has at most one link per connector).
	ErrAlreadyLinked = errors.New("identity: the account is already linked to another identity of this connector")
	// ErrLinkedElsewhere: the upstream identity got linked to another user
	// meanwhile.
	ErrLinkedElsewhere = errors.New("identity: the upstream identity is linked to another account")
)

// LinkRequiredError is ErrLinkRequired with its reason: EmailTaken when a
// local account has the upstream's email (unverified upstream, or linking
// by email not enabled for the connector), else the policy creates no users.
type LinkRequiredError struct{ EmailTaken bool }

func (e *LinkRequiredError) Error() string {
	if e.EmailTaken {
		return ErrLinkRequired.Error() + ": a local account has the upstream's email"
	}
	return ErrLinkRequired.Error() + ": creating users is turned off for the connector"
}

// Is makes errors.Is(err, ErrLinkRequired) true.
func (e *LinkRequiredError) Is(target error) bool { return target == ErrLinkRequired }

// Upstream is a person as a connector vouches for them.
type Upstream struct {
	ConnectorID       string
	Subject           string
	Email             string
	EmailVerified     bool
	Name              string
	PreferredUsername string
}

// LinkPolicy is what the operator allows one connector.
type LinkPolicy struct {
	// CreateUsers lets a first sign-in create a local user (no password).
	CreateUsers bool
	// LinkVerifiedEmail lets a first sign-in link to the local account whose
	// email is the upstream's, when the upstream says it verified it.
	LinkVerifiedEmail bool
}

// ViaConnector marks a sign-in through a connector (data.via of
// auth.login.success and auth.login.failed; data.connector_id names it).
const ViaConnector = "connector"

// FederationStore is what Federation needs from storage.
type FederationStore interface {
	storage.Users
	storage.Links
	storage.Transactor
}

// Federation signs people in through connectors and keeps their links.
type Federation struct {
	store  FederationStore
	rec    *events.Recorder
	hasher *Hasher
	now    func() time.Time
	log    *slog.Logger
}

// NewFederation returns the federation rules on store, recording events with
// the service's recorder and making new users' unmatchable password hashes
// with its hasher.
func (s *Service) NewFederation(store FederationStore) *Federation {
	return &Federation{store: store, rec: s.rec, hasher: s.hasher, now: s.now, log: s.log}
}

// maxCreateAttempts bounds the usernames SignIn tries for a new user.
const maxCreateAttempts = 8

// SignIn returns the local user up signs in as, under pol:
//   - linked: the linked user (the link's LastLoginAt is updated);
//   - else, pol.LinkVerifiedEmail, a verified email that a local account
//     has, and a provider that vouched for that email as the account's
//     before (see vouched): a new link to that account;
//   - else, a local account has the email: *LinkRequiredError{EmailTaken};
//   - else, pol.CreateUsers: a new user (username derived from the
//     upstream's and made unique, the email only when verified, no
//     password) and its link, in one transaction;
//   - else *LinkRequiredError.
//
// A disabled user is ErrInvalidCredentials (auth.login.failed, reason
// disabled). Concurrent first sign-ins of one identity create one user: the
// others find its link. Every success records auth.login.success with
// data.via "connector" and data.connector_id; a new user records
// auth.user_created and a new link auth.link.created, in the transaction
// that makes them.
func (f *Federation) SignIn(ctx context.Context, up Upstream, pol LinkPolicy, m Meta) (storage.User, error) {
	if up.ConnectorID == "" || up.Subject == "" {
		return storage.User{}, errors.New("identity: sign in upstream: identity without connector or subject")
	}
	email := f.usableEmail(up)
	for attempt := 0; ; attempt++ {
		u, err := f.signInLinked(ctx, up, m)
		if !errors.Is(err, storage.ErrNotFound) {
			return u, err
		}
		owner, taken, err := f.emailOwner(ctx, up.Email)
		if err != nil {
			return storage.User{}, err
		}
		if taken {
			vouched := false
			if email != "" && pol.LinkVerifiedEmail {
				if vouched, err = f.vouched(ctx, owner.ID, email); err != nil {
					return storage.User{}, fmt.Errorf("identity: sign in upstream: %w", err)
				}
			}
			if vouched {
				u, err := f.link(ctx, owner.ID, up, m, "verified_email")
				if errors.Is(err, ErrLinkedElsewhere) && attempt < maxCreateAttempts {
					continue // linked meanwhile: sign in through that link
				}
				return u, err
			}
			// A concurrent first sign-in of up may have made the account
			// with this email (and its link) since signInLinked.
			linked, err := f.linked(ctx, up)
			if err != nil {
				return storage.User{}, err
			}
			if linked && attempt < maxCreateAttempts {
				continue
			}
			return storage.User{}, &LinkRequiredError{EmailTaken: true}
		}
		if !pol.CreateUsers {
			return storage.User{}, &LinkRequiredError{}
		}
		u, err = f.create(ctx, up, email, m)
		if errors.Is(err, ErrLinkedElsewhere) && attempt < maxCreateAttempts {
			continue // a concurrent first sign-in won: sign in through its link
		}
		if errors.Is(err, errEmailTaken) {
			return storage.User{}, &LinkRequiredError{EmailTaken: true}
		}
		return u, err
	}
}

// usableEmail is the upstream's email when it may become a local account's:
// verified by the upstream and valid by authd's rules; else "".
func (f *Federation) usableEmail(up Upstream) string {
	if !up.EmailVerified || up.Email == "" || ValidateEmail(up.Email) != nil {
		return ""
	}
	return up.Email
}

// emailOwner returns the local account whose email is email; taken is
// false when there is none (or email is empty or invalid).
func (f *Federation) emailOwner(ctx context.Context, email string) (u storage.User, taken bool, err error) {
	if email == "" || ValidateEmail(email) != nil {
		return storage.User{}, false, nil
	}
	u, err = f.store.GetUserByLogin(ctx, email)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return storage.User{}, false, nil
	case err != nil:
		return storage.User{}, false, fmt.Errorf("identity: sign in upstream: %w", err)
	}
	return u, strings.EqualFold(u.Email, email), nil
}

// vouched reports whether a provider has vouched for email as the user's:
// one of the user's links was made with it as a verified email. Local
// signups do not verify emails, so a local account's email alone proves
// nothing: linking by it would hand the account's owner-to-be to whoever
// signed up first with that address (account pre-hijacking).
func (f *Federation) vouched(ctx context.Context, userID, email string) (bool, error) {
	if email == "" {
		return false, nil
	}
	ls, err := f.store.ListUserLinks(ctx, userID)
	if err != nil {
		return false, err
	}
	return slices.ContainsFunc(ls, func(l storage.Link) bool { return strings.EqualFold(l.Email, email) }), nil
}

// recordDisabled records a refused sign-in through the connector to a
// disabled account.
func (f *Federation) recordDisabled(ctx context.Context, userID, connectorID string, m Meta) error {
	return f.rec.Record(ctx, events.Event{
		Type: events.LoginFailed, Subject: userID, ClientID: m.ClientID, IP: m.IP,
		Data: map[string]any{"reason": ReasonDisabled, "via": ViaConnector, "connector_id": connectorID},
	})
}

// linked reports whether up is linked to a user now.
func (f *Federation) linked(ctx context.Context, up Upstream) (bool, error) {
	_, err := f.store.GetLink(ctx, up.ConnectorID, up.Subject)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("identity: sign in upstream: %w", err)
	}
	return true, nil
}

// signInLinked signs up in through its link; storage.ErrNotFound when none.
func (f *Federation) signInLinked(ctx context.Context, up Upstream, m Meta) (storage.User, error) {
	l, err := f.store.GetLink(ctx, up.ConnectorID, up.Subject)
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return storage.User{}, err
		}
		return storage.User{}, fmt.Errorf("identity: sign in upstream: %w", err)
	}
	u, err := f.store.GetUser(ctx, l.UserID)
	if err != nil {
		// A user's deletion deletes its links: a miss here is a race with it.
		return storage.User{}, fmt.Errorf("identity: sign in upstream: %w", err)
	}
	if u.Disabled {
		if err := f.recordDisabled(ctx, u.ID, up.ConnectorID, m); err != nil {
			return storage.User{}, fmt.Errorf("identity: sign in upstream: %w", err)
		}
		return storage.User{}, ErrInvalidCredentials
	}
	err = f.store.InTx(ctx, func(ctx context.Context) error {
		if err := f.store.TouchLink(ctx, up.ConnectorID, up.Subject, f.now().UTC()); err != nil {
			return err
		}
		return f.recordSignIn(ctx, u.ID, up.ConnectorID, m)
	})
	if err != nil {
		return storage.User{}, fmt.Errorf("identity: sign in upstream: %w", err)
	}
	return u, nil
}

func (f *Federation) recordSignIn(ctx context.Context, userID, connectorID string, m Meta) error {
	return f.rec.Record(ctx, events.Event{
		Type: events.LoginSuccess, Subject: userID, ClientID: m.ClientID, IP: m.IP,
		Data: map[string]any{"via": ViaConnector, "connector_id": connectorID},
	})
}

// errEmailTaken: a new user's email was taken meanwhile.
var errEmailTaken = errors.New("identity: email taken")

// create makes a user for up and links it, in one transaction; it tries
// usernames until one is free. ErrLinkedElsewhere when up got linked
// meanwhile, errEmailTaken when email did.
func (f *Federation) create(ctx context.Context, up Upstream, email string, m Meta) (storage.User, error) {
	hash, err := f.hasher.Unmatchable()
	if err != nil {
		return storage.User{}, fmt.Errorf("identity: create upstream user: %w", err)
	}
	base := DeriveUsername(up)
	for i := 0; i < maxCreateAttempts; i++ {
		username := base
		if i > 0 {
			username, err = suffixed(base)
			if err != nil {
				return storage.User{}, err
			}
		}
		id, err := uuid.NewV7()
		if err != nil {
			return storage.User{}, fmt.Errorf("identity: create upstream user: id: %w", err)
		}
		now := f.now().UTC()
		u := storage.User{
			ID: id.String(), Username: username, Email: email, PasswordHash: hash,
			Roles: []string{storage.RoleUser}, CreatedAt: now, UpdatedAt: now,
		}
		err = f.store.InTx(ctx, func(ctx context.Context) error {
			if err := f.store.CreateUser(ctx, u); err != nil {
				return err
			}
			if err := f.store.CreateLink(ctx, storage.Link{
				ConnectorID: up.ConnectorID, Subject: up.Subject, UserID: u.ID, Email: email,
				CreatedAt: now, LastLoginAt: now,
			}); err != nil {
				if errors.Is(err, storage.ErrConflict) {
					return ErrLinkedElsewhere
				}
				return err
			}
			if err := f.rec.Record(ctx, events.Event{
				Type: events.UserCreated, Subject: u.ID, ClientID: m.ClientID, IP: m.IP,
				Data: map[string]any{"username": u.Username, "roles": u.Roles, "connector_id": up.ConnectorID},
			}); err != nil {
				return err
			}
			if err := f.recordLink(ctx, u.ID, up.ConnectorID, "created_user", m); err != nil {
				return err
			}
			return f.recordSignIn(ctx, u.ID, up.ConnectorID, m)
		})
		switch {
		case err == nil:
			f.log.InfoContext(ctx, "identity: user created through a connector", "user_id", u.ID, "connector_id", up.ConnectorID)
			return u, nil
		case errors.Is(err, ErrLinkedElsewhere):
			return storage.User{}, ErrLinkedElsewhere
		case errors.Is(err, storage.ErrConflict):
			// The username or the email is taken (or was, a moment ago).
			if email != "" {
				_, taken, terr := f.emailOwner(ctx, email)
				if terr != nil {
					return storage.User{}, terr
				}
				if taken {
					// Maybe by a concurrent first sign-in of up, which
					// made the user and its link at once: look for the
					// link after the email, so that it is seen then.
					linked, lerr := f.linked(ctx, up)
					if lerr != nil {
						return storage.User{}, lerr
					}
					if linked {
						return storage.User{}, ErrLinkedElsewhere
					}
					return storage.User{}, errEmailTaken
				}
			}
			continue
		default:
			return storage.User{}, fmt.Errorf("identity: create upstream user: %w", err)
		}
	}
	return storage.User{}, fmt.Errorf("identity: create upstream user: no free username after %d tries: %w", maxCreateAttempts, storage.ErrConflict)
}

// Link links up to the local user userID, who has just proved who they are
// (their password: that check recorded the sign-in), and records
// auth.link.created in the transaction that makes the link. ErrAlreadyLinked when the user has a
// link to another identity of the connector, ErrLinkedElsewhere when up is
// linked to another user; linking an identity to the user it is already
// linked to just signs in. A disabled user is ErrInvalidCredentials.
func (f *Federation) Link(ctx context.Context, userID string, up Upstream, m Meta) (storage.User, error) {
	if up.ConnectorID == "" || up.Subject == "" {
		return storage.User{}, errors.New("identity: link: identity without connector or subject")
	}
	return f.link(ctx, userID, up, m, linkByPassword)
}

// linkByPassword is data.by of a link made after a password check.
const linkByPassword = "password"

func (f *Federation) link(ctx context.Context, userID string, up Upstream, m Meta, how string) (storage.User, error) {
	u, err := f.store.GetUser(ctx, userID)
	if err != nil {
		return storage.User{}, fmt.Errorf("identity: link: %w", err)
	}
	if u.Disabled {
		if how != linkByPassword {
			// A sign-in (by verified email) to a disabled account: record it
			// as signInLinked does. A password link's check recorded its own.
			if err := f.recordDisabled(ctx, u.ID, up.ConnectorID, m); err != nil {
				return storage.User{}, fmt.Errorf("identity: link: %w", err)
			}
		}
		return storage.User{}, ErrInvalidCredentials
	}
	now := f.now().UTC()
	err = f.store.InTx(ctx, func(ctx context.Context) error {
		if err := f.store.CreateLink(ctx, storage.Link{
			ConnectorID: up.ConnectorID, Subject: up.Subject, UserID: userID, Email: f.usableEmail(up),
			CreatedAt: now, LastLoginAt: now,
		}); err != nil {
			return err
		}
		if err := f.recordLink(ctx, userID, up.ConnectorID, how, m); err != nil {
			return err
		}
		if how == linkByPassword {
			return nil // the password check recorded the sign-in
		}
		return f.recordSignIn(ctx, userID, up.ConnectorID, m)
	})
	if errors.Is(err, storage.ErrConflict) {
		l, gerr := f.store.GetLink(ctx, up.ConnectorID, up.Subject)
		switch {
		case gerr == nil && l.UserID == userID && how == linkByPassword:
			return u, nil // linked already (a second tab): the password check recorded the sign-in
		case gerr == nil && l.UserID == userID:
			return f.signInLinked(ctx, up, m)
		case gerr == nil:
			return storage.User{}, ErrLinkedElsewhere
		case errors.Is(gerr, storage.ErrNotFound):
			return storage.User{}, ErrAlreadyLinked
		default:
			return storage.User{}, fmt.Errorf("identity: link: %w", gerr)
		}
	}
	if err != nil {
		return storage.User{}, fmt.Errorf("identity: link: %w", err)
	}
	return u, nil
}

func (f *Federation) recordLink(ctx context.Context, userID, connectorID, how string, m Meta) error {
	return f.rec.Record(ctx, events.Event{
		Type: events.LinkCreated, Subject: userID, ClientID: m.ClientID, IP: m.IP,
		Data: map[string]any{"connector_id": connectorID, "by": how},
	})
}

// Links lists the user's links; storage.ErrNotFound when there is no such user.
func (f *Federation) Links(ctx context.Context, userID string) ([]storage.Link, error) {
	if _, err := f.store.GetUser(ctx, userID); err != nil {
		return nil, fmt.Errorf("identity: links: %w", err)
	}
	ls, err := f.store.ListUserLinks(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("identity: links: %w", err)
	}
	return ls, nil
}

// EmailVerified reports whether u's email address was verified: authd sends
// no confirmation mails, so only when an identity provider vouched for
// exactly this address (one of u's links was made with it as a verified
// email). An address changed since, or a user without links, is not.
func (f *Federation) EmailVerified(ctx context.Context, u storage.User) (bool, error) {
	ok, err := f.vouched(ctx, u.ID, u.Email)
	if err != nil {
		return false, fmt.Errorf("identity: email verified: %w", err)
	}
	return ok, nil
}

// Unlink removes the user's link to the connector and records
// auth.link.removed (naming admin), in one transaction;
// storage.ErrNotFound when there is none. The user's sessions and tokens
// stay: the link only decides future sign-ins.
func (f *Federation) Unlink(ctx context.Context, userID, connectorID, admin string, m Meta) error {
	err := f.store.InTx(ctx, func(ctx context.Context) error {
		if err := f.store.DeleteLink(ctx, userID, connectorID); err != nil {
			return err
		}
		return f.rec.Record(ctx, events.Event{
			Type: events.LinkRemoved, Subject: userID, ClientID: m.ClientID, IP: m.IP,
			Data: map[string]any{"connector_id": connectorID, "admin": admin},
		})
	})
	if err != nil {
		return fmt.Errorf("identity: unlink: %w", err)
	}
	return nil
}

// DeriveUsername makes a valid username from what the upstream says: its
// preferred username, else the local part of its email, else its name,
// else "user"; lowercased, other characters than a-z 0-9 . _ - dropped
// (spaces become '.'), leading and trailing '.', '_' and '-' trimmed, and
// cut to leave room for a uniqueness suffix. A candidate left shorter than
// the minimum length is skipped.
func DeriveUsername(up Upstream) string {
	local, _, _ := strings.Cut(up.Email, "@")
	for _, cand := range []string{up.PreferredUsername, local, up.Name} {
		if u := cleanUsername(cand); len(u) >= MinUsernameLen {
			return u
		}
	}
	return "user"
}

// maxDerivedLen leaves room for suffixed's "-NNNNNN".
const maxDerivedLen = MaxUsernameLen - 7

func cleanUsername(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		var c byte
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			c = byte(r)
		case r == ' ':
			c = '.'
		default:
			continue
		}
		if b.Len() == 0 && (c == '.' || c == '_' || c == '-') {
			continue // trimmed before cutting, so it does not eat the room
		}
		b.WriteByte(c)
		if b.Len() >= maxDerivedLen {
			break
		}
	}
	return strings.TrimRight(b.String(), ".-_")
}

// suffixed is base with a random 6-digit suffix.
func suffixed(base string) (string, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		return "", fmt.Errorf("identity: username suffix: %w", err)
	}
	return fmt.Sprintf("%s-%06d", base, n.Int64()), nil
}
