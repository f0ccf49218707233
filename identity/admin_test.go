package identity

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/authd/authd/events"
	"github.com/authd/authd/storage"
)

// revokes records the subjects revoked, and whether a transaction was open
// (the fake cannot tell; the store's InTx calls are counted instead).
type revokes struct {
	subjects []string
	fail     error
}

func (r *revokes) RevokeSubject(_ context.Context, subject, exceptFamily string) error {
	if exceptFamily != "" {
		return errors.New("unexpected exceptFamily " + exceptFamily)
	}
	r.subjects = append(r.subjects, subject)
	return r.fail
}

func TestUpdateUserRolesAndDisabled(t *testing.T) {
	f := newFixture(t, Options{})
	alice := f.createAlice(t)
	rv := &revokes{}

	u, err := f.svc.SetRoles(t.Context(), alice.ID, []string{"admin"}, "admin-1", meta)
	if err != nil || !slices.Equal(u.Roles, []string{"user", "admin"}) {
		t.Fatalf("SetRoles = %q, %v; want [user admin]", u.Roles, err)
	}
	if _, err := f.svc.SetRoles(t.Context(), alice.ID, []string{"Bad Role"}, "admin-1", meta); !isField(err, FieldRoles) {
		t.Errorf("SetRoles(bad role) = %v; want a roles ValidationError", err)
	}
	if _, err := f.svc.SetDisabled(t.Context(), alice.ID, true, alice.ID, meta, rv); !errors.Is(err, ErrOwnAccount) {
		t.Errorf("SetDisabled(own account) = %v; want ErrOwnAccount", err)
	}
	if _, err := f.svc.SetDisabled(t.Context(), alice.ID, true, "admin-1", meta, nil); err == nil {
		t.Errorf("SetDisabled without a Revoker succeeded")
	}
	u, err = f.svc.SetDisabled(t.Context(), alice.ID, true, CLIAdmin, meta, rv)
	if err != nil || !u.Disabled || !f.user(t, alice.ID).Disabled {
		t.Fatalf("SetDisabled(true) = %+v, %v; want disabled", u, err)
	}
	if !slices.Equal(rv.subjects, []string{alice.ID}) {
		t.Errorf("revoked %q; want alice's tokens once", rv.subjects)
	}
	// Disabling again revokes nothing more; enabling revokes nothing.
	if _, err := f.svc.SetDisabled(t.Context(), alice.ID, true, CLIAdmin, meta, rv); err != nil || len(rv.subjects) != 1 {
		t.Errorf("SetDisabled(true) again = %v, revocations %d; want 1", err, len(rv.subjects))
	}
	if u, err := f.svc.SetDisabled(t.Context(), alice.ID, false, CLIAdmin, meta, nil); err != nil || u.Disabled || len(rv.subjects) != 1 {
		t.Errorf("SetDisabled(false) = %+v, %v, revocations %d", u, err, len(rv.subjects))
	}
	if _, err := f.svc.SetRoles(t.Context(), "nobody", nil, CLIAdmin, meta); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("SetRoles(unknown user) = %v; want ErrNotFound", err)
	}

	updated := f.audit(t, events.UserUpdated)
	if len(updated) != 4 {
		t.Fatalf("auth.user_updated entries = %d; want 4", len(updated))
	}
	if d := updated[0].data; d["admin"] != "admin-1" || d["disabled"] != false || updated[0].UserID != alice.ID || updated[0].IP != meIP {
		t.Errorf("first auth.user_updated = %+v %v", updated[0].AuditEntry, d)
	}
	if d := updated[1].data; d["admin"] != CLIAdmin || d["disabled"] != true {
		t.Errorf("second auth.user_updated data = %v; want admin cli, disabled", d)
	}
}

func TestUpdateUserIsOneTransaction(t *testing.T) {
	f := newFixture(t, Options{})
	alice := f.createAlice(t)
	f.store.failOutbox = errors.New("outbox down")
	if _, err := f.svc.SetDisabled(t.Context(), alice.ID, true, CLIAdmin, meta, &revokes{}); err == nil {
		t.Fatal("SetDisabled with a failing outbox succeeded")
	}
	if f.user(t, alice.ID).Disabled {
		t.Error("the user stays disabled after a failed event; want rolled back")
	}
	f.store.failOutbox = nil
	if _, err := f.svc.SetDisabled(t.Context(), alice.ID, true, CLIAdmin, meta, &revokes{fail: errors.New("denylist down")}); err == nil {
		t.Fatal("SetDisabled with a failing revocation succeeded")
	}
	if f.user(t, alice.ID).Disabled {
		t.Error("the user stays disabled after a failed revocation; want rolled back")
	}
}

func TestSetPassword(t *testing.T) {
	f := newFixture(t, Options{})
	alice := f.createAlice(t)
	rv := &revokes{}
	const next = "a brand new pass phrase"
	for _, bad := range []string{"short", "alice-in-wonderland!"} {
		if _, err := f.svc.SetPassword(t.Context(), alice.ID, bad, CLIAdmin, meta, rv); !isField(err, FieldPassword) {
			t.Errorf("SetPassword(%q) = %v; want a password ValidationError", bad, err)
		}
	}
	if _, err := f.svc.SetPassword(t.Context(), alice.ID, next, CLIAdmin, meta, nil); err == nil {
		t.Error("SetPassword without a Revoker succeeded")
	}
	if _, err := f.svc.SetPassword(t.Context(), "nobody", next, CLIAdmin, meta, rv); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("SetPassword(unknown user) = %v; want ErrNotFound", err)
	}
	if len(rv.subjects) != 0 {
		t.Fatalf("refused changes revoked %q", rv.subjects)
	}
	if _, err := f.svc.SetPassword(t.Context(), alice.ID, next, CLIAdmin, meta, rv); err != nil {
		t.Fatalf("SetPassword = %v", err)
	}
	if !slices.Equal(rv.subjects, []string{alice.ID}) {
		t.Errorf("revoked %q; want alice's tokens", rv.subjects)
	}
	if _, err := f.svc.Authenticate(t.Context(), "alice", next, meta); err != nil {
		t.Errorf("Authenticate(new password) = %v", err)
	}
	if _, err := f.svc.Authenticate(t.Context(), "alice", alicePassword, meta); !errors.Is(err, ErrInvalidCredentials) {
		t.Errorf("Authenticate(old password) = %v; want ErrInvalidCredentials", err)
	}
	changed := f.audit(t, events.PasswordChanged)
	if len(changed) != 1 || changed[0].UserID != alice.ID || changed[0].data["admin"] != CLIAdmin || changed[0].data["reset"] != true {
		t.Errorf("auth.password.changed = %+v", changed)
	}
}

func TestFindUser(t *testing.T) {
	f := newFixture(t, Options{})
	alice := f.createAlice(t)
	for _, ref := range []string{alice.ID, "alice", "ALICE", "alice@example.com"} {
		if u, err := f.svc.FindUser(t.Context(), ref); err != nil || u.ID != alice.ID {
			t.Errorf("FindUser(%q) = %s, %v; want %s", ref, u.ID, err, alice.ID)
		}
	}
	if _, err := f.svc.FindUser(t.Context(), "nobody"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("FindUser(nobody) = %v; want ErrNotFound", err)
	}
}

func isField(err error, field string) bool {
	var ve *ValidationError
	return errors.As(err, &ve) && ve.Field == field
}

// DeleteUser revokes the user's tokens, deletes the account and records
// auth.user_deleted naming the admin, all in one transaction; an admin
// cannot delete their own account.
func TestDeleteUser(t *testing.T) {
	f := newFixture(t, Options{})
	alice := f.createAlice(t)
	rv := &revokes{}
	if err := f.svc.DeleteUser(t.Context(), alice.ID, alice.ID, meta, rv); !errors.Is(err, ErrDeleteOwnAccount) {
		t.Errorf("DeleteUser(own account) = %v; want ErrDeleteOwnAccount", err)
	}
	rv.fail = errors.New("revocation failed")
	if err := f.svc.DeleteUser(t.Context(), alice.ID, CLIAdmin, meta, rv); err == nil {
		t.Error("DeleteUser with a failing revocation = nil; want its error")
	}
	f.user(t, alice.ID) // still there: nothing was deleted
	rv.fail, rv.subjects = nil, nil
	if err := f.svc.DeleteUser(t.Context(), alice.ID, "admin-1", meta, rv); err != nil {
		t.Fatalf("DeleteUser = %v", err)
	}
	if !slices.Equal(rv.subjects, []string{alice.ID}) {
		t.Errorf("revoked %q; want alice's tokens once", rv.subjects)
	}
	if _, err := f.store.GetUser(t.Context(), alice.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetUser after DeleteUser = %v; want ErrNotFound", err)
	}
	if got := f.audit(t, events.UserDeleted); len(got) != 1 || got[0].UserID != alice.ID || got[0].data["admin"] != "admin-1" {
		t.Errorf("auth.user_deleted entries = %+v; want one for alice naming admin-1", got)
	}
	if err := f.svc.DeleteUser(t.Context(), alice.ID, "admin-1", meta, rv); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("DeleteUser(deleted) = %v; want ErrNotFound", err)
	}
}
