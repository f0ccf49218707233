// Package templates holds the pages a person sees during a browser sign-in
// (login, signup, consent, logout, error, signed in), written with
// html/template, and their one stylesheet. The defaults are embedded; an
// operator may point AUTHD_TEMPLATES_DIR at a folder of their own copies.
//
// Every page is parsed together with layout.html, which defines the
// template "layout"; a page defines "title" and "content". The data each
// page gets is the view type of the same name below (Login for
// login.html, ...): an operator's copy may use every field documented there.
package templates

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"os"
)

//go:embed *.html authd.css
var embedded embed.FS

// Page names a page: its file name.
type Page string

// The pages.
const (
	PageLogin    Page = "login.html"
	PageSignup   Page = "signup.html"
	PageConsent  Page = "consent.html"
	PageLogout   Page = "logout.html"
	PageError    Page = "error.html"
	PageSignedIn Page = "signed_in.html"
	PageLink     Page = "link.html"
)

// laterPages were added after the template folder's format was set: a
// folder without its own copy of one gets the embedded default.
var laterPages = map[string]bool{string(PageLink): true}

// Layout is the file every page is parsed with.
const Layout = "layout.html"

// StylesheetFile is the stylesheet's file name; a template folder may hold
// its own, which replaces the default.
const StylesheetFile = "authd.css"

// Pages lists every page a template set holds.
func Pages() []Page {
	return []Page{PageLogin, PageSignup, PageConsent, PageLogout, PageError, PageSignedIn, PageLink}
}

// Base is in every page's data.
type Base struct {
	SiteName   string // the name shown above each page's heading
	Stylesheet string // URL of the stylesheet (with its content hash)
	CSRFToken  string // value of the form's hidden csrf_token field
}

// Login is login.html's data.
type Login struct {
	Base
	Action    string // where the form posts
	ReturnTo  string // hidden return_to field; empty for none
	Username  string // kept after a failure
	Error     string // one message for every failed sign-in; empty for none
	SignupURL string
	// Connectors are the other identity providers offered ("Continue with
	// <Name>"), each a link that starts a sign-in there and comes back to
	// return_to; empty when none is configured.
	Connectors []ConnectorButton
}

// ConnectorButton is one "Continue with <Name>" link of the login page.
type ConnectorButton struct {
	Name string
	URL  string
}

// Link is link.html's data: after a sign-in through a connector whose
// identity is linked to no local account yet, the form that proves a local
// account's password to link it.
type Link struct {
	Base
	Action        string
	Token         string // hidden link_token field
	ReturnTo      string // hidden return_to field; empty for none
	ConnectorName string // the provider's display name
	Email         string // the provider's email when a local account has it; empty otherwise
	Username      string // kept after a failure
	Error         string // empty for none
	CancelURL     string // the login page, to sign in another way
}

// FieldError is a problem with one input of a form; Field is the input's
// id (empty when the problem is about no one input).
type FieldError struct {
	Field   string
	Message string
}

// Signup is signup.html's data.
type Signup struct {
	Base
	Action   string
	ReturnTo string
	Username string
	Email    string
	Errors   []FieldError // empty when there is none
	LoginURL string
}

// FieldError returns the message about field, or "".
func (s Signup) FieldError(field string) string {
	for _, e := range s.Errors {
		if e.Field == field {
			return e.Message
		}
	}
	return ""
}

// Hidden is a hidden form field.
type Hidden struct {
	Name  string
	Value string
}

// Consent is consent.html's data. Its form submits decision=allow or
// decision=deny.
type Consent struct {
	Base
	Action     string
	ClientID   string
	ClientName string   // the client's name, or its id when it has none
	Username   string   // who is signed in
	Scopes     []string // what the client asks for, in plain words
	Hidden     []Hidden // the request's parameters, sent back with the decision
}

// Logout is logout.html's data: the confirmation (Done false) or the page
// after signing out (Done true).
type Logout struct {
	Base
	Action   string
	Username string // who is signed in; empty when unknown
	Hidden   []Hidden
	Done     bool
}

// Error is error.html's data.
type Error struct {
	Base
	Heading    string
	Message    string
	RetryAfter bool // the request may succeed if repeated shortly
}

// SignedIn is signed_in.html's data: the page a sign-in without a place to
// return to ends on.
type SignedIn struct {
	Base
	Username  string
	SwitchURL string // the login form, to sign in as someone else
}

// Set is a parsed set of pages and the stylesheet.
type Set struct {
	pages   map[Page]*template.Template
	css     []byte
	cssHash string
}

// Embedded returns the default pages.
func Embedded() (*Set, error) {
	return parse(embedded, "embedded templates")
}

// Dir parses the pages in dir, which must hold layout.html and every page
// of Pages but link.html; authd.css and link.html are optional (the
// defaults otherwise). Each
// page is executed once on sample data, so that a template referring to a
// field its view lacks fails here, naming the file, not at a sign-in.
func Dir(dir string) (*Set, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("templates: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("templates: %s is not a folder", dir)
	}
	return parse(overlay{os.DirFS(dir), embedded}, dir)
}

// overlay reads the stylesheet and the later pages from the operator's
// folder when it holds them and from the embedded defaults otherwise; the
// other pages only from the folder.
type overlay struct {
	dir, defaults fs.FS
}

func (o overlay) Open(name string) (fs.File, error) {
	f, err := o.dir.Open(name)
	if errors.Is(err, fs.ErrNotExist) && (name == StylesheetFile || laterPages[name]) {
		return o.defaults.Open(name)
	}
	return f, err
}

func parse(fsys fs.FS, where string) (*Set, error) {
	layout, err := fs.ReadFile(fsys, Layout)
	if err != nil {
		return nil, fmt.Errorf("templates: %s: %w", where, err)
	}
	s := &Set{pages: make(map[Page]*template.Template)}
	for _, p := range Pages() {
		body, err := fs.ReadFile(fsys, string(p))
		if err != nil {
			return nil, fmt.Errorf("templates: %s: %w", where, err)
		}
		t, err := template.New(Layout).Parse(string(layout))
		if err != nil {
			return nil, fmt.Errorf("templates: %s: %s: %w", where, Layout, err)
		}
		if t, err = t.New(string(p)).Parse(string(body)); err != nil {
			return nil, fmt.Errorf("templates: %s: %s: %w", where, p, err)
		}
		s.pages[p] = t
		for _, data := range samples(p) {
			if err := s.Execute(io.Discard, p, data); err != nil {
				return nil, fmt.Errorf("templates: %s: %w", where, err)
			}
		}
	}
	if s.css, err = fs.ReadFile(fsys, StylesheetFile); err != nil {
		return nil, fmt.Errorf("templates: %s: %w", where, err)
	}
	h := sha256.Sum256(s.css)
	s.cssHash = hex.EncodeToString(h[:8])
	return s, nil
}

// samples are data that take every branch of the default pages.
func samples(p Page) []any {
	b := Base{SiteName: "authd", Stylesheet: "/assets/authd.css", CSRFToken: "t"}
	hidden := []Hidden{{Name: "client_id", Value: "app"}}
	switch p {
	case PageLogin:
		return []any{Login{Base: b, Action: "/login", ReturnTo: "/oauth2/authorize?x=1", Username: "u", Error: "e", SignupURL: "/signup",
			Connectors: []ConnectorButton{{Name: "Example", URL: "/connectors/example/login?return_to=x"}}}}
	case PageSignup:
		return []any{Signup{Base: b, Action: "/signup", ReturnTo: "/oauth2/authorize?x=1", Username: "u", Email: "e@example.com",
			Errors: []FieldError{{"username", "m"}, {"email", "m"}, {"password", "m"}, {"", "m"}}, LoginURL: "/login"}}
	case PageConsent:
		return []any{Consent{Base: b, Action: "/oauth2/authorize", ClientID: "app", ClientName: "App", Username: "u", Scopes: []string{"s"}, Hidden: hidden}}
	case PageLogout:
		return []any{Logout{Base: b, Action: "/oauth2/logout", Username: "u", Hidden: hidden}, Logout{Base: b, Done: true}}
	case PageError:
		return []any{Error{Base: b, Heading: "h", Message: "m", RetryAfter: true}}
	case PageSignedIn:
		return []any{SignedIn{Base: b, Username: "u", SwitchURL: "/login?switch=1"}}
	case PageLink:
		return []any{
			Link{Base: b, Action: "/login/link", Token: "t", ReturnTo: "/oauth2/authorize?x=1", ConnectorName: "Example",
				Email: "e@example.com", Username: "u", Error: "e", CancelURL: "/login"},
			Link{Base: b, Action: "/login/link", Token: "t", ConnectorName: "Example", CancelURL: "/login"},
		}
	}
	return nil
}

// Execute renders page p with data into w. The page is rendered into a
// buffer first, so that a failure writes nothing.
func (s *Set) Execute(w io.Writer, p Page, data any) error {
	t, ok := s.pages[p]
	if !ok {
		return fmt.Errorf("templates: no page %q", p)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", data); err != nil {
		return fmt.Errorf("templates: %s: %w", p, err)
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// Stylesheet returns the stylesheet and a hash of its content, for its URL
// and ETag.
func (s *Set) Stylesheet() (css []byte, hash string) { return s.css, s.cssHash }
