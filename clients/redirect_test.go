package clients

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/authd/authd/events"
	"github.com/authd/authd/storage"
)

func TestValidRedirectURI(t *testing.T) {
	long := "https://app.example/" + strings.Repeat("p", MaxURILen-len("https://app.example/"))
	for _, c := range []struct {
		uri  string
		want string // a part of the problem; empty when valid
	}{
		{"https://app.example/callback", ""},
		{"https://app.example:8443/cb?tenant=a", ""},
		{"HTTPS://App.Example/cb", ""},
		{long, ""},
		{"http://127.0.0.1/callback", ""},
		{"http://127.0.0.1:51004/callback", ""},
		{"http://[::1]:8080/cb", ""},
		{"http://localhost:3000/cb", ""},
		{"com.example.app:/oauth2redirect/example-provider", ""},
		{"com.example.app://callback", ""},

		{"", "printable ASCII"},
		{long + "x", "printable ASCII"},
		{"https://app.example/a b", "printable ASCII"},
		{"https://app.example/caf\u00e9", "printable ASCII"},
		{"https://app.example/\x00", "printable ASCII"},
		{"/callback", "absolute"},
		{"app.example/callback", "absolute"},
		{"https://app.example/cb#frag", "fragment"},
		{"https://app.example/cb#", "fragment"},
		{"https://user:pw@app.example/cb", "user information"},
		{"https:///cb", "host"},
		{"https:app.example", "host"},
		{"https://*.app.example/cb", "host"},
		{"http://app.example/cb", "loopback"},
		{"http://localhost.evil.example/cb", "loopback"},
		{"http://127.0.0.2/cb", "loopback"},
		{"javascript:alert(1)", "scheme"},
		{"data:text/html,hi", "scheme"},
		{"myapp:/callback", "scheme"},
		{"com.example.app:", "path"},
		{"https://app.example/%zz", "not a URI"},
	} {
		err := ValidRedirectURI(c.uri)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("ValidRedirectURI(%q) = %v; want nil", c.uri, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("ValidRedirectURI(%q) = %v; want a problem naming %q", c.uri, err, c.want)
		}
	}
}

func TestCreateWithRedirectURIs(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			f := newFixtureOn(t, backend)
			ctx := t.Context()
			// Repeats are kept once, in order.
			c, _, err := f.svc.Create(ctx, Spec{
				ID: "web", Public: true, GrantTypes: []string{"refresh_token"},
				RedirectURIs:           []string{"https://app.example/cb", "http://127.0.0.1/cb", "https://app.example/cb"},
				PostLogoutRedirectURIs: []string{"https://app.example/", "https://app.example/"},
				FirstParty:             true,
			}, adminID, meta)
			if err != nil {
				t.Fatalf("Create(web) = %v", err)
			}
			stored, err := f.store.GetClient(ctx, "web")
			if err != nil {
				t.Fatalf("GetClient(web) = %v", err)
			}
			for _, got := range []storage.Client{c, stored} {
				if !slices.Equal(got.RedirectURIs, []string{"https://app.example/cb", "http://127.0.0.1/cb"}) ||
					!slices.Equal(got.PostLogoutRedirectURIs, []string{"https://app.example/"}) || !got.FirstParty {
					t.Errorf("client web = %+v; want its redirect URIs once each and first-party", got)
				}
			}
			// Without them: none, not first-party.
			plain, _, err := f.svc.Create(ctx, Spec{ID: "svc", GrantTypes: []string{"client_credentials"}}, adminID, meta)
			if err != nil || len(plain.RedirectURIs) != 0 || len(plain.PostLogoutRedirectURIs) != 0 || plain.FirstParty {
				t.Errorf("Create(svc) = %+v, %v; want no redirect URIs, not first-party", plain, err)
			}
		})
	}
}

func TestCreateRefusesBadRedirectURIs(t *testing.T) {
	f := newFixture(t)
	many := make([]string, MaxURIs+1)
	for i := range many {
		many[i] = fmt.Sprintf("https://app.example/cb%d", i)
	}
	repeated := append(slices.Repeat([]string{"https://app.example/cb"}, MaxURIs+5), many[:MaxURIs-1]...)
	for _, c := range []struct {
		name string
		spec Spec
		want []string // the problems, in order; none when accepted
	}{
		{"http to a remote host", Spec{RedirectURIs: []string{"http://app.example/cb"}},
			[]string{`redirect URI "http://app.example/cb" may use http only with a loopback host`}},
		{"fragment in a logout URI", Spec{PostLogoutRedirectURIs: []string{"https://app.example/#x"}},
			[]string{`post-logout redirect URI "https://app.example/#x" must not have a fragment`}},
		{"too long", Spec{RedirectURIs: []string{"https://app.example/" + strings.Repeat("p", MaxURILen)}},
			[]string{"a redirect URI must be 1 to 512 bytes"}},
		{"too many", Spec{RedirectURIs: many}, []string{"at most 20 redirect URIs (21 given)"}},
		{"20 once repeats are dropped", Spec{RedirectURIs: repeated}, nil},
		{"too many logout URIs", Spec{PostLogoutRedirectURIs: many}, []string{"at most 20 post-logout redirect URIs (21 given)"}},
		{"every problem at once", Spec{
			RedirectURIs:           []string{"https://ok.example/cb", "relative/cb", "javascript:alert(1)"},
			PostLogoutRedirectURIs: []string{"http://app.example/"},
		}, []string{
			`redirect URI "relative/cb" must be absolute`,
			`redirect URI "javascript:alert(1)" scheme "javascript"`,
			`post-logout redirect URI "http://app.example/" may use http only`,
		}},
	} {
		spec := c.spec
		spec.ID, spec.Public, spec.GrantTypes = "app", true, []string{"refresh_token"}
		_, _, err := f.svc.Create(t.Context(), spec, adminID, meta)
		if c.want == nil {
			if err != nil {
				t.Errorf("Create(%s) = %v; want it accepted", c.name, err)
			}
			if err := f.store.DeleteClient(t.Context(), "app"); err != nil {
				t.Fatal(err)
			}
			continue
		}
		var se *SpecError
		if !errors.As(err, &se) || len(se.Problems) != len(c.want) {
			t.Errorf("Create(%s) = %v; want %d problems %q", c.name, err, len(c.want), c.want)
			continue
		}
		for i, w := range c.want {
			if !strings.HasPrefix(se.Problems[i], w) {
				t.Errorf("Create(%s) problem %d = %q; want %q", c.name, i, se.Problems[i], w)
			}
		}
	}
	if cs, err := f.store.ListClients(t.Context()); err != nil || len(cs) != 0 {
		t.Errorf("ListClients after refused creates = %d clients, %v; want none", len(cs), err)
	}
}

// A client with the authorization_code grant, once the token endpoint
// offers it, needs a redirect URI.
func TestAuthorizationCodeNeedsARedirectURI(t *testing.T) {
	f := newFixture(t)
	svc, err := NewService(f.store, events.NewRecorder(f.store, nil),
		Options{Hasher: hmacHasher{}, GrantTypes: append(slices.Clone(grants), GrantAuthorizationCode)})
	if err != nil {
		t.Fatal(err)
	}
	spec := Spec{ID: "web", Public: true, GrantTypes: []string{GrantAuthorizationCode, "refresh_token"}}
	var se *SpecError
	if _, _, err := svc.Create(t.Context(), spec, adminID, meta); !errors.As(err, &se) ||
		!slices.Equal(se.Problems, []string{"a client with the authorization_code grant needs at least one redirect URI"}) {
		t.Fatalf("Create(authorization_code, no redirect URI) = %v; want that one problem", err)
	}
	spec.RedirectURIs = []string{"https://app.example/cb"}
	if _, _, err := svc.Create(t.Context(), spec, adminID, meta); err != nil {
		t.Fatalf("Create(authorization_code, a redirect URI) = %v", err)
	}
	if _, err := svc.Update(t.Context(), "web", Change{RedirectURIs: &[]string{}}, adminID, meta); !errors.As(err, &se) {
		t.Errorf("Update(no redirect URI left) = %v; want a SpecError", err)
	}
	// The token endpoint of today does not offer the grant: refused.
	spec.ID = "web2"
	if _, _, err := f.svc.Create(t.Context(), spec, adminID, meta); !errors.As(err, &se) ||
		!strings.Contains(err.Error(), `unsupported grant type "authorization_code"`) {
		t.Errorf("Create(authorization_code) on today's grants = %v; want it unsupported", err)
	}
}

func TestUpdateRedirectURIs(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			f := newFixtureOn(t, backend)
			ctx := t.Context()
			if _, _, err := f.svc.Create(ctx, Spec{ID: "web", Public: true, GrantTypes: []string{"refresh_token"},
				RedirectURIs: []string{"https://app.example/cb"}, PostLogoutRedirectURIs: []string{"https://app.example/"}}, adminID, meta); err != nil {
				t.Fatal(err)
			}
			c, err := f.svc.Update(ctx, "web", Change{
				RedirectURIs: &[]string{"com.example.app:/cb", "http://[::1]/cb", "com.example.app:/cb"},
				FirstParty:   ptr(true),
			}, adminID, meta)
			if err != nil {
				t.Fatalf("Update = %v", err)
			}
			want := []string{"com.example.app:/cb", "http://[::1]/cb"}
			if !slices.Equal(c.RedirectURIs, want) || !slices.Equal(c.PostLogoutRedirectURIs, []string{"https://app.example/"}) || !c.FirstParty {
				t.Errorf("Update = %+v; want redirect URIs %q once each, the logout URI kept, first-party", c, want)
			}
			var se *SpecError
			if _, err := f.svc.Update(ctx, "web", Change{PostLogoutRedirectURIs: &[]string{"http://app.example/"}}, adminID, meta); !errors.As(err, &se) {
				t.Errorf("Update(bad logout URI) = %v; want a SpecError", err)
			}
			if c, err = f.svc.Update(ctx, "web", Change{PostLogoutRedirectURIs: &[]string{}, FirstParty: ptr(false)}, adminID, meta); err != nil ||
				len(c.PostLogoutRedirectURIs) != 0 || c.FirstParty || !slices.Equal(c.RedirectURIs, want) {
				t.Errorf("Update(clear logout URIs, not first-party) = %+v, %v", c, err)
			}
			got, err := f.store.GetClient(ctx, "web")
			if err != nil || !slices.Equal(got.RedirectURIs, want) || len(got.PostLogoutRedirectURIs) != 0 || got.FirstParty {
				t.Errorf("stored client = %+v, %v; want the last update", got, err)
			}
		})
	}
}

func TestDocumentShowsRedirectURIs(t *testing.T) {
	for _, c := range []struct {
		client storage.Client
		want   string
	}{
		{storage.Client{ID: "svc"}, `"redirect_uris":[],"post_logout_redirect_uris":[],"first_party":false`},
		{storage.Client{ID: "web", RedirectURIs: []string{"https://app.example/cb"},
			PostLogoutRedirectURIs: []string{"https://app.example/"}, FirstParty: true},
			`"redirect_uris":["https://app.example/cb"],"post_logout_redirect_uris":["https://app.example/"],"first_party":true`},
	} {
		b, err := json.Marshal(DocumentOf(c.client, ""))
		if err != nil || !strings.Contains(string(b), c.want) {
			t.Errorf("DocumentOf(%s) = %s, %v; want it to hold %s", c.client.ID, b, err, c.want)
		}
	}
}
