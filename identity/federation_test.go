package identity

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authd/authd/events"
	"github.com/authd/authd/storage"
)

// octo is an upstream identity of the "github" connector.
var octo = Upstream{
	ConnectorID: "github", Subject: "583231", Email: "octo@example.com", EmailVerified: true,
	Name: "The Octocat", PreferredUsername: "Octo.Cat",
}

// aliceUp is an upstream identity whose verified email is alice's
// (createAlice's Alice@Example.com, in another case).
var aliceUp = Upstream{
	ConnectorID: "google", Subject: "g-alice", Email: "alice@EXAMPLE.com", EmailVerified: true,
	Name: "Alice Liddell", PreferredUsername: "liddell",
}

var (
	createUsers    = LinkPolicy{CreateUsers: true}
	linkVerified   = LinkPolicy{LinkVerifiedEmail: true}
	createAndLink  = LinkPolicy{CreateUsers: true, LinkVerifiedEmail: true}
	nothingAllowed = LinkPolicy{}
)

func newFederationFixture(t *testing.T, backend string) (*fixture, *Federation) {
	t.Helper()
	f := newFixtureOn(t, backend, Options{})
	return f, f.svc.NewFederation(f.store)
}

// link stores a link of up to userID directly, made an hour before f.now.
func (f *fixture) link(t *testing.T, userID string, up Upstream) storage.Link {
	t.Helper()
	at := f.now.Add(-time.Hour)
	l := storage.Link{ConnectorID: up.ConnectorID, Subject: up.Subject, UserID: userID, Email: up.Email, CreatedAt: at, LastLoginAt: at}
	if err := f.store.CreateLink(t.Context(), l); err != nil {
		t.Fatalf("CreateLink(%s/%s) = %v", up.ConnectorID, up.Subject, err)
	}
	return l
}

// vouch gives the user a link, from another provider, made with email as
// its verified email: what lets linking by verified email pick the account.
func (f *fixture) vouch(t *testing.T, userID, email string) {
	t.Helper()
	f.link(t, userID, Upstream{ConnectorID: "vouching-idp", Subject: "v-" + userID, Email: email})
}

func (f *fixture) disable(t *testing.T, id string) {
	t.Helper()
	if _, err := f.store.UpdateUser(t.Context(), id, func(u *storage.User) error {
		u.Disabled = true
		return nil
	}); err != nil {
		t.Fatalf("disable %s: %v", id, err)
	}
}

func (f *fixture) users(t *testing.T) []storage.User {
	t.Helper()
	users, _, err := f.store.ListUsers(t.Context(), storage.UserQuery{Limit: 1000})
	if err != nil {
		t.Fatalf("ListUsers = %v", err)
	}
	return users
}

// noLink fails the test unless up is linked to nobody.
func (f *fixture) noLink(t *testing.T, up Upstream) {
	t.Helper()
	if l, err := f.store.GetLink(t.Context(), up.ConnectorID, up.Subject); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetLink(%s/%s) = %+v, %v; want ErrNotFound", up.ConnectorID, up.Subject, l, err)
	}
}

// wantConnectorLogin checks that e is a sign-in through connector for userID.
func wantConnectorLogin(t *testing.T, e auditEvent, userID, connector string) {
	t.Helper()
	if e.UserID != userID || e.ClientID != meClient || e.IP != meIP ||
		e.data["via"] != ViaConnector || e.data["connector_id"] != connector {
		t.Errorf("%s = user %q client %q ip %q data %v; want user %q via %q connector_id %q",
			e.Type, e.UserID, e.ClientID, e.IP, e.data, userID, ViaConnector, connector)
	}
}

func wantLinkRequired(t *testing.T, err error, emailTaken bool) {
	t.Helper()
	var lr *LinkRequiredError
	if !errors.As(err, &lr) || lr.EmailTaken != emailTaken || !errors.Is(err, ErrLinkRequired) {
		t.Errorf("SignIn = %v; want *LinkRequiredError{EmailTaken: %v} (ErrLinkRequired)", err, emailTaken)
	}
}

func TestFederationSignInLinked(t *testing.T) {
	f, fed := newFederationFixture(t, backendSQLite)
	alice := f.createAlice(t)
	f.link(t, alice.ID, octo) // its email is not alice's: the link decides

	// A linked identity signs in whatever the policy.
	for i, pol := range []LinkPolicy{nothingAllowed, createAndLink} {
		f.now = f.now.Add(time.Minute)
		u, err := fed.SignIn(t.Context(), octo, pol, meta)
		if err != nil || u.ID != alice.ID {
			t.Fatalf("SignIn(linked, %+v) = %s, %v; want alice %s", pol, u.ID, err, alice.ID)
		}
		l, err := f.store.GetLink(t.Context(), octo.ConnectorID, octo.Subject)
		if err != nil || !l.LastLoginAt.Equal(f.now) {
			t.Errorf("link LastLoginAt = %v, %v; want %v", l.LastLoginAt, err, f.now)
		}
		got := f.audit(t, events.LoginSuccess)
		if len(got) != i+1 {
			t.Fatalf("auth.login.success entries = %d; want %d", len(got), i+1)
		}
		wantConnectorLogin(t, got[i], alice.ID, "github")
	}
	if n := len(f.users(t)); n != 1 {
		t.Errorf("users = %d; want 1 (alice)", n)
	}
	for _, typ := range []events.Type{events.LinkCreated, events.LoginFailed} {
		if got := f.audit(t, typ); len(got) != 0 {
			t.Errorf("%s entries = %d; want none", typ, len(got))
		}
	}
	if got := f.audit(t, events.UserCreated); len(got) != 1 {
		t.Errorf("auth.user_created entries = %d; want 1 (alice's)", len(got))
	}
}

func TestFederationSignInRefusesIncompleteIdentity(t *testing.T) {
	f, fed := newFederationFixture(t, backendSQLite)
	for _, up := range []Upstream{{ConnectorID: "github"}, {Subject: "1"}} {
		if u, err := fed.SignIn(t.Context(), up, createAndLink, meta); err == nil {
			t.Errorf("SignIn(%+v) = %s, nil; want an error", up, u.ID)
		}
	}
	if n := len(f.users(t)); n != 0 {
		t.Errorf("users = %d; want none", n)
	}
}

func TestFederationSignInDisabled(t *testing.T) {
	f, fed := newFederationFixture(t, backendSQLite)
	alice := f.createAlice(t)
	before := f.link(t, alice.ID, octo)
	f.disable(t, alice.ID)
	f.now = f.now.Add(time.Minute)

	u, err := fed.SignIn(t.Context(), octo, createAndLink, meta)
	if !errors.Is(err, ErrInvalidCredentials) || u.ID != "" {
		t.Fatalf("SignIn(disabled) = %q, %v; want ErrInvalidCredentials and no user", u.ID, err)
	}
	failed := f.audit(t, events.LoginFailed)
	if len(failed) != 1 {
		t.Fatalf("auth.login.failed entries = %d; want 1", len(failed))
	}
	wantConnectorLogin(t, failed[0], alice.ID, "github")
	if failed[0].data["reason"] != ReasonDisabled {
		t.Errorf("auth.login.failed data = %v; want reason %q", failed[0].data, ReasonDisabled)
	}
	if got := f.audit(t, events.LoginSuccess); len(got) != 0 {
		t.Errorf("auth.login.success entries = %d; want none", len(got))
	}
	if l, err := f.store.GetLink(t.Context(), octo.ConnectorID, octo.Subject); err != nil || !l.LastLoginAt.Equal(before.LastLoginAt) {
		t.Errorf("link LastLoginAt = %v, %v; want unchanged %v", l.LastLoginAt, err, before.LastLoginAt)
	}
}

func TestFederationSignInLinksVerifiedEmail(t *testing.T) {
	f, fed := newFederationFixture(t, backendSQLite)
	alice := f.createAlice(t)
	f.vouch(t, alice.ID, alice.Email)

	u, err := fed.SignIn(t.Context(), aliceUp, linkVerified, meta)
	if err != nil || u.ID != alice.ID {
		t.Fatalf("SignIn(verified alice email) = %s, %v; want alice %s", u.ID, err, alice.ID)
	}
	l, err := f.store.GetLink(t.Context(), aliceUp.ConnectorID, aliceUp.Subject)
	if err != nil || l.UserID != alice.ID || l.Email != aliceUp.Email || !l.CreatedAt.Equal(f.now) || !l.LastLoginAt.Equal(f.now) {
		t.Errorf("GetLink = %+v, %v; want a link to alice made now", l, err)
	}
	created := f.audit(t, events.LinkCreated)
	if len(created) != 1 || created[0].UserID != alice.ID || created[0].data["by"] != "verified_email" ||
		created[0].data["connector_id"] != "google" || created[0].ClientID != meClient || created[0].IP != meIP {
		t.Errorf("auth.link.created = %+v; want one for alice by verified_email, connector google", created)
	}
	success := f.audit(t, events.LoginSuccess)
	if len(success) != 1 {
		t.Fatalf("auth.login.success entries = %d; want 1", len(success))
	}
	wantConnectorLogin(t, success[0], alice.ID, "google")
	if n := len(f.users(t)); n != 1 {
		t.Errorf("users = %d; want 1 (no new user)", n)
	}

	// The next sign-in goes through the link: no second link.created.
	if u, err := fed.SignIn(t.Context(), aliceUp, nothingAllowed, meta); err != nil || u.ID != alice.ID {
		t.Errorf("second SignIn = %s, %v; want alice", u.ID, err)
	}
	if got := f.audit(t, events.LinkCreated); len(got) != 1 {
		t.Errorf("auth.link.created entries after a second sign-in = %d; want 1", len(got))
	}
}

func TestFederationSignInVerifiedEmailOfDisabledAccount(t *testing.T) {
	f, fed := newFederationFixture(t, backendSQLite)
	alice := f.createAlice(t)
	f.vouch(t, alice.ID, alice.Email)
	f.disable(t, alice.ID)
	u, err := fed.SignIn(t.Context(), aliceUp, createAndLink, meta)
	if !errors.Is(err, ErrInvalidCredentials) || u.ID != "" {
		t.Fatalf("SignIn(verified email of a disabled account) = %q, %v; want ErrInvalidCredentials", u.ID, err)
	}
	f.noLink(t, aliceUp)
	failed := f.audit(t, events.LoginFailed)
	if len(failed) != 1 {
		t.Fatalf("auth.login.failed entries = %d; want 1", len(failed))
	}
	wantConnectorLogin(t, failed[0], alice.ID, "google")
	if failed[0].data["reason"] != ReasonDisabled {
		t.Errorf("auth.login.failed data = %v; want reason %q", failed[0].data, ReasonDisabled)
	}
	for _, typ := range []events.Type{events.LinkCreated, events.LoginSuccess} {
		if got := f.audit(t, typ); len(got) != 0 {
			t.Errorf("%s entries = %d; want none", typ, len(got))
		}
	}
	if n := len(f.users(t)); n != 1 {
		t.Errorf("users = %d; want 1 (alice)", n)
	}
}

func TestFederationSignInEmailTaken(t *testing.T) {
	unverified := aliceUp
	unverified.EmailVerified = false
	tests := []struct {
		name string
		up   Upstream
		pol  LinkPolicy
	}{
		// An unverified email never links, and never makes a second account with it.
		{"unverified, linking and creating on", unverified, createAndLink},
		{"unverified, linking on", unverified, linkVerified},
		// Linking by email off: the person proves the account's password.
		{"verified, linking off, creating on", aliceUp, createUsers},
		{"verified, nothing on", aliceUp, nothingAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, fed := newFederationFixture(t, backendSQLite)
			f.createAlice(t)
			u, err := fed.SignIn(t.Context(), tt.up, tt.pol, meta)
			if u.ID != "" {
				t.Errorf("SignIn returned user %s; want none", u.ID)
			}
			wantLinkRequired(t, err, true)
			f.noLink(t, tt.up)
			if n := len(f.users(t)); n != 1 {
				t.Errorf("users = %d; want 1 (alice only)", n)
			}
			for _, typ := range []events.Type{events.LinkCreated, events.LoginSuccess, events.LoginFailed} {
				if got := f.audit(t, typ); len(got) != 0 {
					t.Errorf("%s entries = %d; want none", typ, len(got))
				}
			}
		})
	}
}

func TestFederationSignInCreatesUser(t *testing.T) {
	f, fed := newFederationFixture(t, backendSQLite)
	u, err := fed.SignIn(t.Context(), octo, createUsers, meta)
	if err != nil {
		t.Fatalf("SignIn(new identity, CreateUsers) = %v", err)
	}
	if u.ID == "" || u.Username != "octo.cat" || u.Email != "octo@example.com" || !slices.Equal(u.Roles, []string{storage.RoleUser}) ||
		!u.CreatedAt.Equal(f.now) || u.Disabled {
		t.Errorf("SignIn = %+v; want a new enabled user octo.cat, octo@example.com, roles [user], created now", u)
	}
	stored := f.user(t, u.ID)
	if stored.Username != "octo.cat" || stored.Email != "octo@example.com" || !slices.Equal(stored.Roles, []string{storage.RoleUser}) {
		t.Errorf("stored user = %+v; want octo.cat, octo@example.com, [user]", stored)
	}
	if !strings.HasPrefix(stored.PasswordHash, "$argon2id$") {
		t.Errorf("stored hash = %.12q...; want an (unmatchable) argon2id hash", stored.PasswordHash)
	}
	l, err := f.store.GetLink(t.Context(), octo.ConnectorID, octo.Subject)
	if err != nil || l.UserID != u.ID || l.Email != octo.Email || !l.CreatedAt.Equal(f.now) || !l.LastLoginAt.Equal(f.now) {
		t.Errorf("GetLink = %+v, %v; want a link to %s made now", l, err, u.ID)
	}

	userCreated := f.audit(t, events.UserCreated)
	if len(userCreated) != 1 || userCreated[0].UserID != u.ID || userCreated[0].data["connector_id"] != "github" ||
		userCreated[0].data["username"] != "octo.cat" || userCreated[0].ClientID != meClient || userCreated[0].IP != meIP {
		t.Errorf("auth.user_created = %+v; want one for %s with connector_id github", userCreated, u.ID)
	}
	linkCreated := f.audit(t, events.LinkCreated)
	if len(linkCreated) != 1 || linkCreated[0].UserID != u.ID || linkCreated[0].data["by"] != "created_user" || linkCreated[0].data["connector_id"] != "github" {
		t.Errorf("auth.link.created = %+v; want one for %s by created_user", linkCreated, u.ID)
	}
	success := f.audit(t, events.LoginSuccess)
	if len(success) != 1 {
		t.Fatalf("auth.login.success entries = %d; want 1", len(success))
	}
	wantConnectorLogin(t, success[0], u.ID, "github")

	// No password signs the new user in: its hash matches none.
	for _, login := range []string{"octo.cat", "octo@example.com"} {
		for _, pw := range []string{"", alicePassword, stored.PasswordHash} {
			if got, err := f.svc.Authenticate(t.Context(), login, pw, meta); !errors.Is(err, ErrInvalidCredentials) || got.ID != "" {
				t.Errorf("Authenticate(%q, a password) = %q, %v; want ErrInvalidCredentials", login, got.ID, err)
			}
		}
	}

	// Another identity with the same preferred username gets a suffixed one,
	// and an unverified email is not kept.
	other := Upstream{ConnectorID: "gitlab", Subject: "77", Email: "someone@example.org", EmailVerified: false, PreferredUsername: "octo.cat"}
	u2, err := fed.SignIn(t.Context(), other, createUsers, meta)
	if err != nil {
		t.Fatalf("SignIn(second octo.cat) = %v", err)
	}
	if !regexp.MustCompile(`^octo\.cat-[0-9]{6}$`).MatchString(u2.Username) || u2.ID == u.ID || u2.Email != "" {
		t.Errorf("second user = %+v; want another id, username octo.cat-NNNNNN, no email", u2)
	}
	if _, err := ValidateUsername(u2.Username); err != nil {
		t.Errorf("ValidateUsername(%q) = %v", u2.Username, err)
	}
	if l, err := f.store.GetLink(t.Context(), other.ConnectorID, other.Subject); err != nil || l.UserID != u2.ID || l.Email != "" {
		t.Errorf("GetLink(second) = %+v, %v; want a link to %s without the unverified email", l, err, u2.ID)
	}
	if got := f.audit(t, events.UserCreated); len(got) != 2 || got[1].data["connector_id"] != "gitlab" {
		t.Errorf("auth.user_created = %+v; want a second one with connector_id gitlab", got)
	}
}

func TestFederationSignInDerivesUsername(t *testing.T) {
	tests := []struct {
		up   Upstream
		want string
	}{
		{Upstream{PreferredUsername: "Mona", Email: "lisa@example.com", EmailVerified: true, Name: "Mona Lisa"}, "mona"},
		{Upstream{Email: "Lisa.G@example.com", EmailVerified: true, Name: "Mona Lisa"}, "lisa.g"},
		{Upstream{Email: "li@example.com", EmailVerified: false, Name: "Mona Lisa"}, "mona.lisa"},
		{Upstream{Name: "李"}, "user"},
	}
	for i, tt := range tests {
		f, fed := newFederationFixture(t, backendSQLite)
		tt.up.ConnectorID, tt.up.Subject = "oidc", fmt.Sprint(i)
		u, err := fed.SignIn(t.Context(), tt.up, createUsers, meta)
		if err != nil || u.Username != tt.want {
			t.Errorf("SignIn(%+v) = %q, %v; want username %q", tt.up, u.Username, err, tt.want)
		}
		wantEmail := ""
		if tt.up.EmailVerified {
			wantEmail = tt.up.Email
		}
		if err == nil && (u.Email != wantEmail || f.user(t, u.ID).Email != wantEmail) {
			t.Errorf("SignIn(%+v) email = %q (stored %q); want %q", tt.up, u.Email, f.user(t, u.ID).Email, wantEmail)
		}
	}
}

func TestFederationSignInCreateIsOneTransaction(t *testing.T) {
	f, fed := newFederationFixture(t, backendSQLite)
	f.store.failOutbox = errors.New("outbox down")
	u, err := fed.SignIn(t.Context(), octo, createUsers, meta)
	if err == nil || !strings.Contains(err.Error(), "outbox down") || u.ID != "" {
		t.Fatalf("SignIn with a failing outbox = %q, %v; want that failure and no user", u.ID, err)
	}
	if users := f.users(t); len(users) != 0 {
		t.Errorf("users after a failed event = %+v; want none (rolled back)", users)
	}
	f.noLink(t, octo)
	for _, typ := range []events.Type{events.UserCreated, events.LinkCreated, events.LoginSuccess} {
		if got := f.audit(t, typ); len(got) != 0 {
			t.Errorf("%s entries = %d; want none (rolled back)", typ, len(got))
		}
	}

	// With the outbox back, the same identity signs up cleanly.
	f.store.failOutbox = nil
	if u, err := fed.SignIn(t.Context(), octo, createUsers, meta); err != nil || u.Username != "octo.cat" {
		t.Errorf("SignIn after recovery = %q, %v; want octo.cat", u.Username, err)
	}
}

func TestFederationSignInNoUserCreation(t *testing.T) {
	f, fed := newFederationFixture(t, backendSQLite)
	f.createAlice(t)
	for _, up := range []Upstream{
		octo, // verified email that nobody has
		{ConnectorID: "github", Subject: "2", Email: "nobody@example.com"},
		{ConnectorID: "github", Subject: "3"},
	} {
		u, err := fed.SignIn(t.Context(), up, linkVerified, meta)
		if u.ID != "" {
			t.Errorf("SignIn(%+v) returned user %s; want none", up, u.ID)
		}
		wantLinkRequired(t, err, false)
		f.noLink(t, up)
	}
	if n := len(f.users(t)); n != 1 {
		t.Errorf("users = %d; want 1 (alice only)", n)
	}
	if got := f.audit(t, events.LoginSuccess); len(got) != 0 {
		t.Errorf("auth.login.success entries = %d; want none", len(got))
	}
}

func TestFederationLink(t *testing.T) {
	f, fed := newFederationFixture(t, backendSQLite)
	alice := f.createAlice(t)
	bob, err := f.svc.CreateUser(t.Context(), NewUser{Username: "bob", Email: "bob@example.com", Password: alicePassword}, meta)
	if err != nil {
		t.Fatal(err)
	}

	u, err := fed.Link(t.Context(), alice.ID, octo, meta)
	if err != nil || u.ID != alice.ID {
		t.Fatalf("Link(alice, octo) = %s, %v; want alice", u.ID, err)
	}
	if l, err := f.store.GetLink(t.Context(), octo.ConnectorID, octo.Subject); err != nil || l.UserID != alice.ID || l.Email != octo.Email {
		t.Errorf("GetLink = %+v, %v; want a link to alice", l, err)
	}
	created := f.audit(t, events.LinkCreated)
	if len(created) != 1 || created[0].UserID != alice.ID || created[0].data["by"] != linkByPassword ||
		created[0].data["connector_id"] != "github" || created[0].ClientID != meClient || created[0].IP != meIP {
		t.Errorf("auth.link.created = %+v; want one for alice by password", created)
	}
	if got := f.audit(t, events.LoginSuccess); len(got) != 0 {
		t.Errorf("auth.login.success entries after Link = %d; want none (the password check records it)", len(got))
	}

	// Again (a second tab): the user, nothing new recorded.
	if u, err := fed.Link(t.Context(), alice.ID, octo, meta); err != nil || u.ID != alice.ID {
		t.Errorf("Link(alice, octo) again = %s, %v; want alice, nil", u.ID, err)
	}
	// Another identity of the same connector for alice.
	octo2 := Upstream{ConnectorID: "github", Subject: "999"}
	if u, err := fed.Link(t.Context(), alice.ID, octo2, meta); !errors.Is(err, ErrAlreadyLinked) || u.ID != "" {
		t.Errorf("Link(alice, another github identity) = %q, %v; want ErrAlreadyLinked", u.ID, err)
	}
	f.noLink(t, octo2)
	// alice's identity for bob.
	if u, err := fed.Link(t.Context(), bob.ID, octo, meta); !errors.Is(err, ErrLinkedElsewhere) || u.ID != "" {
		t.Errorf("Link(bob, alice's identity) = %q, %v; want ErrLinkedElsewhere", u.ID, err)
	}
	if l, err := f.store.GetLink(t.Context(), octo.ConnectorID, octo.Subject); err != nil || l.UserID != alice.ID {
		t.Errorf("GetLink after bob's try = %+v, %v; want still alice's", l, err)
	}
	// Unknown users, disabled users, incomplete identities.
	if _, err := fed.Link(t.Context(), "no-such-user", octo2, meta); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Link(unknown user) = %v; want ErrNotFound", err)
	}
	f.disable(t, bob.ID)
	if _, err := fed.Link(t.Context(), bob.ID, octo2, meta); !errors.Is(err, ErrInvalidCredentials) {
		t.Errorf("Link(disabled bob) = %v; want ErrInvalidCredentials", err)
	}
	if _, err := fed.Link(t.Context(), alice.ID, Upstream{ConnectorID: "gitlab"}, meta); err == nil {
		t.Error("Link(identity without subject) = nil; want an error")
	}
	f.noLink(t, octo2)
	if got := f.audit(t, events.LinkCreated); len(got) != 1 {
		t.Errorf("auth.link.created entries = %d; want 1", len(got))
	}
	if got := f.audit(t, events.LoginSuccess); len(got) != 0 {
		t.Errorf("auth.login.success entries = %d; want none", len(got))
	}

	// The link then signs alice in.
	if u, err := fed.SignIn(t.Context(), octo, nothingAllowed, meta); err != nil || u.ID != alice.ID {
		t.Errorf("SignIn(linked by password) = %s, %v; want alice", u.ID, err)
	}
}

func TestFederationLinksAndUnlink(t *testing.T) {
	f, fed := newFederationFixture(t, backendSQLite)
	alice := f.createAlice(t)
	bob, err := f.svc.CreateUser(t.Context(), NewUser{Username: "bob", Email: "bob@example.com", Password: alicePassword}, meta)
	if err != nil {
		t.Fatal(err)
	}
	gitlab := Upstream{ConnectorID: "gitlab", Subject: "42"}
	for _, up := range []Upstream{gitlab, octo} { // made out of order
		if _, err := fed.Link(t.Context(), alice.ID, up, meta); err != nil {
			t.Fatalf("Link(alice, %s) = %v", up.ConnectorID, err)
		}
	}
	ls, err := fed.Links(t.Context(), alice.ID)
	if err != nil || len(ls) != 2 || ls[0].ConnectorID != "github" || ls[1].ConnectorID != "gitlab" ||
		ls[0].Subject != octo.Subject || ls[1].Subject != gitlab.Subject || ls[0].UserID != alice.ID {
		t.Fatalf("Links(alice) = %+v, %v; want github then gitlab", ls, err)
	}
	if ls, err := fed.Links(t.Context(), bob.ID); err != nil || len(ls) != 0 {
		t.Errorf("Links(bob) = %+v, %v; want none, nil", ls, err)
	}
	if _, err := fed.Links(t.Context(), "no-such-user"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Links(unknown user) = %v; want ErrNotFound", err)
	}

	if err := fed.Unlink(t.Context(), alice.ID, "github", "admin-7", meta); err != nil {
		t.Fatalf("Unlink(alice, github) = %v", err)
	}
	if ls, err := fed.Links(t.Context(), alice.ID); err != nil || len(ls) != 1 || ls[0].ConnectorID != "gitlab" {
		t.Errorf("Links(alice) after Unlink = %+v, %v; want gitlab only", ls, err)
	}
	removed := f.audit(t, events.LinkRemoved)
	if len(removed) != 1 || removed[0].UserID != alice.ID || removed[0].data["connector_id"] != "github" ||
		removed[0].data["admin"] != "admin-7" || removed[0].ClientID != meClient || removed[0].IP != meIP {
		t.Errorf("auth.link.removed = %+v; want one for alice, connector github, admin admin-7", removed)
	}
	for _, tt := range []struct{ user, connector string }{
		{alice.ID, "github"}, // gone already
		{bob.ID, "gitlab"},   // another user's connector
		{"no-such-user", "gitlab"},
	} {
		if err := fed.Unlink(t.Context(), tt.user, tt.connector, "admin-7", meta); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Unlink(%s, %s) = %v; want ErrNotFound", tt.user, tt.connector, err)
		}
	}
	if got := f.audit(t, events.LinkRemoved); len(got) != 1 {
		t.Errorf("auth.link.removed entries = %d; want 1", len(got))
	}
	// The unlinked identity no longer signs alice in.
	noEmail := octo
	noEmail.Email = ""
	u, err := fed.SignIn(t.Context(), noEmail, nothingAllowed, meta)
	if u.ID != "" {
		t.Errorf("SignIn(unlinked) = %s; want no user", u.ID)
	}
	wantLinkRequired(t, err, false)
}

func TestFederationUnlinkIsOneTransaction(t *testing.T) {
	f, fed := newFederationFixture(t, backendSQLite)
	alice := f.createAlice(t)
	f.link(t, alice.ID, octo)
	f.store.failOutbox = errors.New("outbox down")
	if err := fed.Unlink(t.Context(), alice.ID, "github", "admin-7", meta); err == nil || !strings.Contains(err.Error(), "outbox down") {
		t.Fatalf("Unlink with a failing outbox = %v; want that failure", err)
	}
	if l, err := f.store.GetLink(t.Context(), octo.ConnectorID, octo.Subject); err != nil || l.UserID != alice.ID {
		t.Errorf("GetLink after a failed Unlink = %+v, %v; want the link kept", l, err)
	}
}

func TestDeriveUsername(t *testing.T) {
	long := strings.Repeat("abcdefghij", 8) // 80
	tests := []struct {
		name string
		up   Upstream
		want string
	}{
		{"preferred username first", Upstream{PreferredUsername: "Octo_Cat", Email: "x@example.com", Name: "Name"}, "octo_cat"},
		{"email local part", Upstream{Email: "First.Last@Example.com", Name: "Name"}, "first.last"},
		{"name", Upstream{Name: "Ada Lovelace"}, "ada.lovelace"},
		{"nothing", Upstream{}, "user"},
		{"spaces become dots", Upstream{PreferredUsername: "mary ann  lee"}, "mary.ann..lee"},
		{"unicode dropped", Upstream{PreferredUsername: "Zoë Saldaña"}, "zo.saldaa"},
		{"fullwidth dropped", Upstream{PreferredUsername: "ｏｃｔｏ", Email: "octo@example.com"}, "octo"},
		{"all unicode falls through", Upstream{PreferredUsername: "李小龍", Email: "李@example.com", Name: "Bruce Lee"}, "bruce.lee"},
		{"too short falls through", Upstream{PreferredUsername: "al", Email: "al@example.com", Name: "Al Gore"}, "al.gore"},
		{"too short everywhere", Upstream{PreferredUsername: "a", Email: "b@example.com", Name: "c"}, "user"},
		{"symbols dropped", Upstream{PreferredUsername: "o'brien+test@home"}, "obrientesthome"},
		{"leading and trailing punctuation", Upstream{PreferredUsername: "..-_bob_-.."}, "bob"},
		{"only punctuation falls through", Upstream{PreferredUsername: "._-", Email: "--@example.com", Name: "Eve"}, "eve"},
		{"short after trimming", Upstream{PreferredUsername: "-ab-", Name: "Abe"}, "abe"},
		{"too long is cut", Upstream{PreferredUsername: long}, long[:MaxUsernameLen-7]},
		{"cut then trimmed", Upstream{PreferredUsername: strings.Repeat("a", 56) + "._bcd"}, strings.Repeat("a", 56)},
		{"long leading punctuation", Upstream{PreferredUsername: strings.Repeat(".", 60) + "carol"}, "carol"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := DeriveUsername(tt.up)
			if got != tt.want {
				t.Errorf("DeriveUsername(%+v) = %q; want %q", tt.up, got, tt.want)
			}
			if len(got) > MaxUsernameLen-7 {
				t.Errorf("DeriveUsername(%+v) = %d bytes; want at most %d (room for a suffix)", tt.up, len(got), MaxUsernameLen-7)
			}
			if v, err := ValidateUsername(got); err != nil || v != got {
				t.Errorf("ValidateUsername(%q) = %q, %v; want it valid as is", got, v, err)
			}
			s, err := suffixed(got)
			if err != nil {
				t.Fatalf("suffixed(%q) = %v", got, err)
			}
			if _, err := ValidateUsername(s); err != nil || !strings.HasPrefix(s, got+"-") {
				t.Errorf("suffixed(%q) = %q, %v; want a valid username with a suffix", got, s, err)
			}
		})
	}
}

// concurrently runs fn n times at once and returns the users and errors.
func concurrently(n int, fn func() (storage.User, error)) ([]storage.User, []error) {
	users, errs := make([]storage.User, n), make([]error, n)
	start := make(chan struct{})
	done := make(chan struct{})
	for i := range n {
		go func() {
			defer func() { done <- struct{}{} }()
			<-start
			users[i], errs[i] = fn()
		}()
	}
	close(start)
	for range n {
		<-done
	}
	return users, errs
}

func TestFederationConcurrentFirstSignInCreatesOneUser(t *testing.T) {
	const n, rounds = 8, 4
	for _, tt := range []struct {
		name string
		up   Upstream
		pol  LinkPolicy
	}{
		{"verified email", octo, createUsers},
		{"verified email, linking on", octo, createAndLink},
		{"no email", Upstream{ConnectorID: "github", PreferredUsername: "octo.cat"}, createUsers},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f, fed := newFederationFixture(t, backendPostgres)
			for round := range rounds {
				up := tt.up
				up.Subject = fmt.Sprintf("s-%d", round)
				if up.Email != "" {
					up.Email = fmt.Sprintf("octo%d@example.com", round)
				}
				users, errs := concurrently(n, func() (storage.User, error) {
					return fed.SignIn(t.Context(), up, tt.pol, meta)
				})
				l, err := f.store.GetLink(t.Context(), up.ConnectorID, up.Subject)
				if err != nil {
					t.Fatalf("round %d: GetLink = %v", round, err)
				}
				for i := range n {
					if errs[i] != nil || users[i].ID != l.UserID {
						t.Errorf("round %d: concurrent SignIn %d = %s, %v; want the linked user %s", round, i, users[i].ID, errs[i], l.UserID)
					}
				}
				if got := len(f.users(t)); got != round+1 {
					t.Errorf("round %d: users = %d; want %d (exactly one per identity)", round, got, round+1)
				}
				created := f.audit(t, events.UserCreated)
				if len(created) != round+1 || created[round].UserID != l.UserID || created[round].data["connector_id"] != "github" {
					t.Fatalf("round %d: auth.user_created = %d entries (last %+v); want exactly one more, for %s", round, len(created), created[len(created)-1], l.UserID)
				}
				if got := f.audit(t, events.LinkCreated); len(got) != round+1 {
					t.Errorf("round %d: auth.link.created entries = %d; want %d", round, len(got), round+1)
				}
				if got := f.audit(t, events.LoginSuccess); len(got) != n*(round+1) {
					t.Errorf("round %d: auth.login.success entries = %d; want %d (one per sign-in)", round, len(got), n*(round+1))
				}
			}
		})
	}
}

func TestFederationConcurrentLinkByVerifiedEmail(t *testing.T) {
	const n, rounds = 8, 4
	for _, pol := range []LinkPolicy{linkVerified, createAndLink} {
		t.Run(fmt.Sprintf("%+v", pol), func(t *testing.T) {
			f, fed := newFederationFixture(t, backendPostgres)
			alice := f.createAlice(t)
			f.vouch(t, alice.ID, alice.Email)
			for round := range rounds {
				up := aliceUp
				up.ConnectorID = fmt.Sprintf("idp-%d", round) // a user has one link per connector
				users, errs := concurrently(n, func() (storage.User, error) {
					return fed.SignIn(t.Context(), up, pol, meta)
				})
				for i := range n {
					if errs[i] != nil || users[i].ID != alice.ID {
						t.Errorf("round %d: concurrent SignIn %d = %s, %v; want alice %s", round, i, users[i].ID, errs[i], alice.ID)
					}
				}
				created := f.audit(t, events.LinkCreated)
				if len(created) != round+1 || created[round].data["connector_id"] != up.ConnectorID || created[round].UserID != alice.ID {
					t.Fatalf("round %d: auth.link.created = %+v; want exactly one more, alice's for %s", round, created, up.ConnectorID)
				}
				if got := f.audit(t, events.LoginSuccess); len(got) != n*(round+1) {
					t.Errorf("round %d: auth.login.success entries = %d; want %d", round, len(got), n*(round+1))
				}
			}
			if n := len(f.users(t)); n != 1 {
				t.Errorf("users = %d; want 1 (alice)", n)
			}
			if ls, err := fed.Links(t.Context(), alice.ID); err != nil || len(ls) != rounds+1 {
				t.Errorf("Links(alice) = %d, %v; want %d (and the vouching one)", len(ls), err, rounds+1)
			}
		})
	}
}

// Account pre-hijacking: someone signs up locally with the victim's email
// (local signups do not verify emails); the victim's first sign-in through
// a provider that verified that email must not land in that account.
func TestFederationVerifiedEmailDoesNotLinkToAnUnvouchedAccount(t *testing.T) {
	for _, pol := range []LinkPolicy{linkVerified, createAndLink} {
		f, fed := newFederationFixture(t, backendSQLite)
		squatter := f.createAlice(t) // holds alice's email, with a password the squatter knows
		u, err := fed.SignIn(t.Context(), aliceUp, pol, meta)
		var lr *LinkRequiredError
		if !errors.As(err, &lr) || !lr.EmailTaken || u.ID != "" {
			t.Fatalf("%+v: SignIn(verified email of an unvouched account) = %q, %v; want LinkRequiredError{EmailTaken}", pol, u.ID, err)
		}
		f.noLink(t, aliceUp)
		if ls, err := fed.Links(t.Context(), squatter.ID); err != nil || len(ls) != 0 {
			t.Errorf("%+v: Links(squatter) = %v, %v; want none", pol, ls, err)
		}
	}
}
