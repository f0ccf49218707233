package identity

import (
	"context"
	"errors"
	"fmt"

	"github.com/authd/authd/events"
	"github.com/authd/authd/storage"
)

// Admin changes to accounts. The admin API (server/admin.go) and the operator
// CLI (authd users ...) both go through these functions, so a change made
// either way has the same checks, the same event and the same revocation.

// Revoker ends every token of a user: its refresh families and the access
// tokens issued until now. server/oauth's Provider is one (RevokeSubject).
type Revoker interface {
	RevokeSubject(ctx context.Context, subject, exceptFamily string) error
}

// ErrOwnAccount is returned when an admin tries to disable their own account.
var ErrOwnAccount = errors.New("identity: an admin cannot disable their own account")

// ErrDeleteOwnAccount is returned when an admin tries to delete their own account.
var ErrDeleteOwnAccount = errors.New("identity: an admin cannot delete their own account")

// CLIAdmin names the operator CLI as the admin of a change in the events it
// records (the admin API names the admin's user id).
const CLIAdmin = "cli"

// UserChange is an admin's change to an account; nil fields stay as they are.
type UserChange struct {
	Roles    *[]string // the user's roles; "user" is always kept
	Disabled *bool     // disabling revokes the user's tokens
}

// UpdateUser applies ch to the user in one transaction that also records
// auth.user_updated (naming admin) and, when it disables an enabled account,
// revokes the user's tokens through rv (required then) and ends their
// browser sessions. Roles are validated
// before anything is written; an admin cannot disable their own account
// (ErrOwnAccount).
func (s *Service) UpdateUser(ctx context.Context, userID string, ch UserChange, admin string, m Meta, rv Revoker) (storage.User, error) {
	var roles []string
	if ch.Roles != nil {
		var err error
		if roles, err = NormalizeRoles(*ch.Roles); err != nil {
			return storage.User{}, err
		}
	}
	disable := ch.Disabled != nil && *ch.Disabled
	if disable && admin == userID {
		return storage.User{}, ErrOwnAccount
	}
	if disable && rv == nil {
		return storage.User{}, errors.New("identity: update user: disabling needs a Revoker")
	}
	var u storage.User
	err := s.store.InTx(ctx, func(ctx context.Context) error {
		var revoke bool
		var err error
		u, err = s.store.UpdateUser(ctx, userID, func(x *storage.User) error {
			if roles != nil {
				x.Roles = roles
			}
			if ch.Disabled != nil {
				revoke = *ch.Disabled && !x.Disabled
				x.Disabled = *ch.Disabled
			}
			return nil
		})
		if err != nil {
			return err
		}
		if revoke {
			if err := rv.RevokeSubject(ctx, userID, ""); err != nil {
				return err
			}
			if err := s.endBrowserSessions(ctx, userID); err != nil {
				return err
			}
		}
		return s.rec.Record(ctx, events.Event{
			Type: events.UserUpdated, Subject: userID, ClientID: m.ClientID, IP: m.IP,
			Data: map[string]any{"roles": u.Roles, "disabled": u.Disabled, "admin": admin},
		})
	})
	if err != nil {
		return storage.User{}, fmt.Errorf("identity: update user: %w", err)
	}
	return u, nil
}

// DeleteUser deletes the account in one transaction that first revokes
// every token of the user through rv and ends their browser sessions, and
// then records auth.user_deleted
// (naming admin). An admin cannot delete their own account
// (ErrDeleteOwnAccount); an unknown id is storage.ErrNotFound.
func (s *Service) DeleteUser(ctx context.Context, userID, admin string, m Meta, rv Revoker) error {
	if admin == userID {
		return ErrDeleteOwnAccount
	}
	if rv == nil {
		return errors.New("identity: delete user: needs a Revoker")
	}
	err := s.store.InTx(ctx, func(ctx context.Context) error {
		if err := rv.RevokeSubject(ctx, userID, ""); err != nil {
			return err
		}
		if err := s.endBrowserSessions(ctx, userID); err != nil {
			return err
		}
		if err := s.store.DeleteUser(ctx, userID); err != nil {
			return err
		}
		return s.rec.Record(ctx, events.Event{
			Type: events.UserDeleted, Subject: userID, ClientID: m.ClientID, IP: m.IP,
			Data: map[string]any{"admin": admin},
		})
	})
	if err != nil {
		return fmt.Errorf("identity: delete user: %w", err)
	}
	return nil
}

// SetRoles replaces the user's roles ("user" is always kept).
func (s *Service) SetRoles(ctx context.Context, userID string, roles []string, admin string, m Meta) (storage.User, error) {
	return s.UpdateUser(ctx, userID, UserChange{Roles: &roles}, admin, m, nil)
}

// SetDisabled disables (revoking the user's tokens through rv) or enables
// the account.
func (s *Service) SetDisabled(ctx context.Context, userID string, disabled bool, admin string, m Meta, rv Revoker) (storage.User, error) {
	return s.UpdateUser(ctx, userID, UserChange{Disabled: &disabled}, admin, m, rv)
}

// SetPassword is an operator's password reset: password must pass the
// policy; in one transaction its hash replaces the user's,
// auth.password.changed is recorded (naming admin), every token of the
// user is revoked through rv (required) and their browser sessions end, as
// a password change by the user revokes their other sessions. A lockout stays (unlock clears it). The
// hash is computed before the transaction.
func (s *Service) SetPassword(ctx context.Context, userID, password, admin string, m Meta, rv Revoker) (storage.User, error) {
	if rv == nil {
		return storage.User{}, errors.New("identity: set password: needs a Revoker")
	}
	u, err := s.store.GetUser(ctx, userID)
	if err != nil {
		return storage.User{}, fmt.Errorf("identity: set password: %w", err)
	}
	if err := ValidatePassword(password, u.Username, u.Email, s.blocklist); err != nil {
		return storage.User{}, err
	}
	hash, err := s.hash(ctx, password)
	if err != nil {
		return storage.User{}, fmt.Errorf("identity: set password: %w", err)
	}
	err = s.store.InTx(ctx, func(ctx context.Context) error {
		var err error
		if u, err = s.store.UpdateUser(ctx, userID, func(x *storage.User) error {
			x.PasswordHash = hash
			return nil
		}); err != nil {
			return err
		}
		if err := rv.RevokeSubject(ctx, userID, ""); err != nil {
			return err
		}
		if err := s.endBrowserSessions(ctx, userID); err != nil {
			return err
		}
		return s.rec.Record(ctx, events.Event{
			Type: events.PasswordChanged, Subject: userID, ClientID: m.ClientID, IP: m.IP,
			Data: map[string]any{"admin": admin, "reset": true},
		})
	})
	if err != nil {
		return storage.User{}, fmt.Errorf("identity: set password: %w", err)
	}
	return u, nil
}

// FindUser returns the user whose id, username or email is ref (an id first).
func (s *Service) FindUser(ctx context.Context, ref string) (storage.User, error) {
	u, err := s.store.GetUser(ctx, ref)
	if errors.Is(err, storage.ErrNotFound) {
		u, err = s.store.GetUserByLogin(ctx, ref)
	}
	if err != nil {
		return storage.User{}, fmt.Errorf("identity: find user %q: %w", ref, err)
	}
	return u, nil
}

// endBrowserSessions ends every browser session of the user, in ctx's
// transaction.
func (s *Service) endBrowserSessions(ctx context.Context, userID string) error {
	n, err := s.store.DeleteUserBrowserSessions(ctx, userID)
	if err != nil {
		return fmt.Errorf("end browser sessions: %w", err)
	}
	if n > 0 {
		s.log.InfoContext(ctx, "identity: browser sessions ended", "user_id", userID, "sessions", n)
	}
	return nil
}
