package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/authd/authd/events"
)

func TestSignup(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			h := newHarness(t, backend)
			h.createUser("taken", alicePassword)
			b := h.browser()
			form := b.get("/signup?" + url.Values{"return_to": {returnTo}}.Encode())
			checkLeavingPageHeaders(t, "GET /signup", form.header)
			for _, want := range []string{`autocomplete="username"`, `autocomplete="email"`, `autocomplete="new-password"`, `href="/login?return_to=`} {
				if !strings.Contains(form.body, want) {
					t.Errorf("signup page lacks %s", want)
				}
			}
			post := func(username, email, password string) page {
				return b.post("/signup", url.Values{"csrf_token": {form.token(t)}, "username": {username}, "email": {email},
					"password": {password}, "return_to": {returnTo}})
			}
			// Every field wrong: every field's message, beside it and in the summary.
			p := post("X", "not-an-email", "short secret")
			if p.status != http.StatusBadRequest {
				t.Errorf("invalid signup = %d; want 400", p.status)
			}
			checkLeavingPageHeaders(t, "invalid signup", p.header)
			for _, want := range []string{
				`id="username-error"`, "Username must be 3 to 64 characters.",
				`id="email-error"`, "Email address must be a single address such as name@example.com.",
				`id="password-error"`, "Password must be at least 15 characters.",
				`href="#username"`, `href="#email"`, `href="#password"`, `role="alert"`,
				`value="X"`, `value="not-an-email"`,
			} {
				if !strings.Contains(p.body, want) {
					t.Errorf("invalid signup page lacks %q", want)
				}
			}
			if strings.Contains(p.body, "short secret") {
				t.Error("the signup page shows the password back")
			}
			// Taken: the username, then the email.
			if p := post("Taken", "new@example.com", alicePassword); p.status != http.StatusConflict || !strings.Contains(p.body, "This username is already taken.") {
				t.Errorf("taken username = %d:\n%s", p.status, p.body)
			}
			if p := post("fresh", "TAKEN@example.com", alicePassword); p.status != http.StatusConflict || !strings.Contains(p.body, "An account with this email address already exists.") {
				t.Errorf("taken email = %d:\n%s", p.status, p.body)
			}
			// Success: the account, a session, and back to return_to.
			p = post("Carol", "carol@example.com", alicePassword)
			if p.status != http.StatusSeeOther || p.header.Get("Location") != returnTo || b.cookie("authd_session") == "" {
				t.Fatalf("signup = %d to %q; want 303 to return_to with a session\n%s", p.status, p.header.Get("Location"), p.body)
			}
			u, err := h.store.GetUserByLogin(t.Context(), "carol")
			if err != nil {
				t.Fatal(err)
			}
			if _, user, err := h.sessions.CheckSession(t.Context(), b.cookie("authd_session"), u.CreatedAt); err != nil || user.ID != u.ID {
				t.Errorf("the new session = %v, %v; want carol's", user.ID, err)
			}
			if got := h.audit(events.UserCreated); len(got) != 2 || got[0].UserID != u.ID {
				t.Errorf("auth.user_created = %+v; want carol's last", got)
			}
		})
	}
}
