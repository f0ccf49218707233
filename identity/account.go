package identity

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"golang.org/x/crypto/bcrypt"

	"github.com/authd/authd/events"
	"github.com/authd/authd/storage"
)

// ErrWrongPassword is returned by ChangePassword when the current password
// does not match.
var ErrWrongPassword = errors.New("identity: current password is wrong")

// ChangePassword checks current against the user's hash, validates next and,
// in one transaction, stores next's hash, records auth.password.changed,
// ends every browser session of the user and runs also (which revokes the
// user's other token families; may be nil). Both
// hashes are computed before the transaction, so no row stays locked while
// argon2id runs.
func (s *Service) ChangePassword(ctx context.Context, userID, current, next string, m Meta, also func(ctx context.Context) error) error {
	u, err := s.store.GetUser(ctx, userID)
	if err != nil {
		return fmt.Errorf("identity: change password: %w", err)
	}
	ok, _, err := s.verify(ctx, current, u.PasswordHash)
	if err != nil && ctx.Err() != nil {
		return err
	}
	if !ok {
		return ErrWrongPassword
	}
	if err := ValidatePassword(next, u.Username, u.Email, s.blocklist); err != nil {
		return err
	}
	if current == next {
		return invalid(FieldPassword, "must differ from the current password")
	}
	hash, err := s.hash(ctx, next)
	if err != nil {
		return fmt.Errorf("identity: change password: %w", err)
	}
	err = s.store.InTx(ctx, func(ctx context.Context) error {
		if _, err := s.store.UpdateUser(ctx, userID, func(x *storage.User) error {
			if x.PasswordHash != u.PasswordHash {
				return ErrWrongPassword // changed meanwhile: the current password checked is stale
			}
			x.PasswordHash = hash
			return nil
		}); err != nil {
			return err
		}
		if err := s.rec.Record(ctx, events.Event{
			Type: events.PasswordChanged, Subject: userID, ClientID: m.ClientID, IP: m.IP,
		}); err != nil {
			return err
		}
		if err := s.endBrowserSessions(ctx, userID); err != nil {
			return err
		}
		if also != nil {
			return also(ctx)
		}
		return nil
	})
	if errors.Is(err, ErrWrongPassword) {
		return ErrWrongPassword
	} else if err != nil {
		return fmt.Errorf("identity: change password: %w", err)
	}
	return nil
}

// Imported is a user brought from another system with its password hash.
type Imported struct {
	Username     string   `json:"username"`
	Email        string   `json:"email"`
	PasswordHash string   `json:"password_hash"` // bcrypt ($2a$/$2b$/$2y$) or argon2id PHC
	Roles        []string `json:"roles"`
}

// ImportUser stores a user with a hash made elsewhere; the hash is kept and
// replaced by argon2id at the user's next successful login. The password
// policy cannot be applied (the password is unknown); the hash must parse.
func (s *Service) ImportUser(ctx context.Context, in Imported, m Meta) (storage.User, error) {
	username, err := ValidateUsername(in.Username)
	if err != nil {
		return storage.User{}, err
	}
	if err := ValidateEmail(in.Email); err != nil {
		return storage.User{}, err
	}
	roles, err := normalizeRoles(in.Roles, storage.RoleUser)
	if err != nil {
		return storage.User{}, err
	}
	if err := s.hasher.CheckEncoded(in.PasswordHash); err != nil {
		return storage.User{}, invalid(FieldPassword, "password_hash is not a usable bcrypt or argon2id hash")
	}
	id, err := uuid.NewV7()
	if err != nil {
		return storage.User{}, fmt.Errorf("identity: import user: id: %w", err)
	}
	now := s.now().UTC()
	u := storage.User{ID: id.String(), Username: username, Email: in.Email, PasswordHash: in.PasswordHash,
		Roles: roles, CreatedAt: now, UpdatedAt: now}
	err = s.store.InTx(ctx, func(ctx context.Context) error {
		if err := s.store.CreateUser(ctx, u); err != nil {
			return err
		}
		return s.rec.Record(ctx, events.Event{
			Type: events.UserCreated, Subject: u.ID, ClientID: m.ClientID, IP: m.IP,
			Data: map[string]any{"username": u.Username, "roles": u.Roles, "imported": true},
		})
	})
	if err != nil {
		return storage.User{}, fmt.Errorf("identity: import user: %w", err)
	}
	if isBcrypt(u.PasswordHash) {
		cost, _ := bcrypt.Cost([]byte(u.PasswordHash)) // checked above
		s.noteBcryptCost(cost)                         // every check now pads to it (see check)
	}
	return u, nil
}

// Unlock clears a lockout and the login counters (failed and in flight),
// recording auth.user_unlocked. Attempts still in flight then settle
// against the cleared counters.
func (s *Service) Unlock(ctx context.Context, userID string, m Meta) (storage.User, error) {
	var u storage.User
	err := s.store.InTx(ctx, func(ctx context.Context) error {
		var err error
		u, err = s.store.UpdateUser(ctx, userID, func(x *storage.User) error {
			x.FailedLogins, x.PendingLogins, x.LockedUntil = 0, 0, time.Time{}
			return nil
		})
		if err != nil {
			return err
		}
		return s.rec.Record(ctx, events.Event{Type: events.UserUnlocked, Subject: userID, ClientID: m.ClientID, IP: m.IP})
	})
	if err != nil {
		return storage.User{}, fmt.Errorf("identity: unlock: %w", err)
	}
	return u, nil
}

// NormalizeRoles validates roles and returns them with "user" first.
func NormalizeRoles(roles []string) ([]string, error) {
	return normalizeRoles(roles, storage.RoleUser)
}
