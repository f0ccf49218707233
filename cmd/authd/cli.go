package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/authd/authd/clients"
	"github.com/authd/authd/events"
	"github.com/authd/authd/identity"
	"github.com/authd/authd/storage"
)

// withDeps loads the configuration, opens the store (migrating when asked)
// and runs fn. CLI verbs log warnings only, to stderr.
func (e *env) withDeps(ctx context.Context, migrate bool, fn func(d *deps) error) error {
	cfg, err := e.loadConfig()
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	d, err := open(ctx, cfg, log, migrate)
	if err != nil {
		return err
	}
	defer d.Close()
	return fn(d)
}

func (e *env) migrateCommand() *cobra.Command {
	// withStore opens the store without touching its schema or keys.
	withStore := func(cmd *cobra.Command, migrate bool) error {
		cfg, err := e.loadConfig()
		if err != nil {
			return err
		}
		st, err := openStore(cmd.Context(), cfg, slog.New(slog.NewJSONHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
		if err != nil {
			return err
		}
		defer st.Close()
		if migrate {
			if err := st.Migrate(cmd.Context()); err != nil {
				return err
			}
		}
		return printStatus(cmd.Context(), e.stdout, st)
	}
	cmd := &cobra.Command{Use: "migrate", Short: "schema migrations (embedded in the binary)"}
	cmd.AddCommand(
		&cobra.Command{
			Use: "up", Short: "apply pending migrations", Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error { return withStore(cmd, true) },
		},
		&cobra.Command{
			Use: "status", Short: "list migrations and whether each is applied", Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error { return withStore(cmd, false) },
		},
	)
	return cmd
}

func printStatus(ctx context.Context, w io.Writer, st storage.Store) error {
	ms, err := st.MigrationStatus(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tNAME\tSTATE\tAPPLIED AT")
	for _, m := range ms {
		state, at := "pending", ""
		if m.Applied {
			state = "applied"
			if !m.AppliedAt.IsZero() {
				at = m.AppliedAt.UTC().Format(time.RFC3339)
			}
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", m.Version, m.Name, state, at)
	}
	return tw.Flush()
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func splitFields(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' })
}

// trimFields is the values of a list flag without surrounding spaces, the
// empty ones dropped ("u1, u2," is u1 and u2).
func trimFields(l []string) []string {
	var out []string
	for _, v := range l {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

func (e *env) clientsCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "clients", Short: "OAuth clients"}
	var spec clients.Spec
	var grants, scopes, audience string
	var redirects, postLogout []string
	create := &cobra.Command{
		Use: "create", Short: "register a client; prints it as JSON, the secret only here", Args: cobra.NoArgs,
		Long: "Registers an OAuth client and prints it as JSON; a secret (given or generated) is shown only here.\n\n" +
			"Audience: a token's aud is the audience the client requested (each one allowed by --audience),\n" +
			"else every --audience value, else the client id. authd's own API (/api/v1/...) is a resource\n" +
			"server too: it accepts a token only when its aud holds the issuer URL (AUTHD_ISSUER) or the\n" +
			"client id of the client it was issued to. A client that calls authd's API (/api/v1/me,\n" +
			"/api/v1/logout, the admin API) with tokens it also sends elsewhere must list the issuer URL\n" +
			"in --audience, or request it; a token minted for another service (aud: orders) is refused\n" +
			"with 401 invalid_token, so that service cannot replay it against authd.",
		RunE: func(cmd *cobra.Command, _ []string) error {
			spec.GrantTypes, spec.Scopes, spec.Audience = splitFields(grants), splitFields(scopes), splitFields(audience)
			spec.RedirectURIs, spec.PostLogoutRedirectURIs = trimFields(redirects), trimFields(postLogout)
			return e.withDeps(cmd.Context(), false, func(d *deps) error {
				c, secret, err := d.clients.Create(cmd.Context(), spec, identity.CLIAdmin, clients.Meta{})
				if errors.Is(err, clients.ErrIDTaken) {
					return fmt.Errorf("client %q already exists", spec.ID)
				} else if err != nil {
					return err
				}
				return printJSON(e.stdout, clients.DocumentOf(c, secret))
			})
		},
	}
	f := create.Flags()
	f.StringVar(&spec.ID, "id", "", "client id (required)")
	f.StringVar(&spec.Secret, "secret", "", "client secret (>= 32 characters); generated when empty")
	f.BoolVar(&spec.Public, "public", false, "a public client (token_endpoint_auth_method none), no secret")
	f.StringVar(&grants, "grant-types", "client_credentials", "comma-separated: password, refresh_token, client_credentials")
	f.StringVar(&scopes, "scopes", "", "space- or comma-separated scopes the client may request")
	f.StringVar(&audience, "audience", "", "comma-separated audiences the client may request (add the issuer URL for tokens that also call authd's API)")
	f.BoolVar(&spec.Introspect, "introspect", false, "may introspect any token (a resource server)")
	f.BoolVar(&spec.DPoPBound, "dpop-bound", false, "must bind its tokens to a key it holds with DPoP (RFC 9449); without a DPoP proof its token requests fail")
	f.StringSliceVar(&redirects, "redirect-uris", nil, "comma-separated (or repeated) URIs the authorization responses may go to, matched exactly: "+
		"https, http only to 127.0.0.1, [::1] or localhost (any port), or a native app's scheme with a dot (com.example.app:/callback); "+
		"a URI holding a comma goes in double quotes")
	f.StringSliceVar(&postLogout, "post-logout-redirect-uris", nil, "comma-separated (or repeated) URIs a logout may send the browser back to, as --redirect-uris")
	f.BoolVar(&spec.FirstParty, "first-party", false, "skip the consent page (a client of the same operator)")
	f.StringVar(&spec.Name, "name", "", "display name")
	_ = create.MarkFlagRequired("id")
	create.MarkFlagsMutuallyExclusive("secret", "public")

	list := &cobra.Command{
		Use: "list", Short: "list clients as JSON", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return e.withDeps(cmd.Context(), false, func(d *deps) error {
				cs, err := d.clients.List(cmd.Context())
				if err != nil {
					return err
				}
				out := make([]clients.Document, 0, len(cs))
				for _, c := range cs {
					out = append(out, clients.DocumentOf(c, ""))
				}
				return printJSON(e.stdout, out)
			})
		},
	}
	del := &cobra.Command{
		Use: "delete ID", Short: "delete a client", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.withDeps(cmd.Context(), false, func(d *deps) error {
				p, err := d.provider(nil, nil)
				if err != nil {
					return err
				}
				err = d.clients.Delete(cmd.Context(), args[0], identity.CLIAdmin, clients.Meta{}, p)
				if errors.Is(err, storage.ErrNotFound) {
					return fmt.Errorf("client %q not found", args[0])
				} else if err != nil {
					return err
				}
				_, err = fmt.Fprintf(e.stdout, "deleted client %s\n", args[0])
				return err
			})
		},
	}
	cmd.AddCommand(create, list, del)
	return cmd
}

func (e *env) usersCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "users", Short: "user accounts: create, import, list, disable, enable, unlock, set-roles, set-password, links, unlink",
		Long: "User accounts. USER is a user's id, username or email. Every change goes through the functions\n" +
			"the admin API uses and is recorded (audit trail, outbox) with admin \"cli\"."}
	var nu identity.NewUser
	var passwordStdin bool
	create := &cobra.Command{
		Use: "create", Short: "create a user; the password is read from stdin", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !passwordStdin {
				return errors.New("--password-stdin is required: passwords are never taken as arguments")
			}
			var err error
			if nu.Password, err = e.readPassword(); err != nil {
				return err
			}
			return e.withDeps(cmd.Context(), false, func(d *deps) error {
				u, err := d.identity.CreateUser(cmd.Context(), nu, identity.Meta{})
				if errors.Is(err, storage.ErrConflict) {
					return errors.New("username or email already taken")
				} else if err != nil {
					return err
				}
				return printJSON(e.stdout, map[string]any{
					"id": u.ID, "username": u.Username, "email": u.Email, "roles": u.Roles, "created_at": u.CreatedAt,
				})
			})
		},
	}
	f := create.Flags()
	f.StringVar(&nu.Username, "username", "", "username (3-64 of a-z 0-9 . _ -)")
	f.StringVar(&nu.Email, "email", "", "email address")
	f.BoolVar(&passwordStdin, "password-stdin", false, "read the password from the first line of stdin")
	f.StringArrayVar(&nu.Roles, "role", nil, "extra role (repeatable); every user has 'user'")
	_ = create.MarkFlagRequired("username")
	_ = create.MarkFlagRequired("email")
	imp := &cobra.Command{
		Use:   "import",
		Short: "import users from JSON lines on stdin: {\"username\",\"email\",\"password_hash\",\"roles\"}",
		Long: "Each line is a user with a bcrypt ($2a$/$2b$/$2y$) or argon2id hash made elsewhere; the hash is kept\n" +
			"and replaced by argon2id at the user's next successful login. Lines that fail are reported by number\n" +
			"(never with their hash) and the others are still imported; the exit status is non-zero if any failed.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return e.withDeps(cmd.Context(), false, func(d *deps) error {
				sc := bufio.NewScanner(e.stdin)
				sc.Buffer(make([]byte, 64<<10), 64<<10)
				var ok, failed int
				for n := 1; sc.Scan(); n++ {
					line := strings.TrimSpace(sc.Text())
					if line == "" {
						continue
					}
					var in identity.Imported
					dec := json.NewDecoder(strings.NewReader(line))
					dec.DisallowUnknownFields()
					err := dec.Decode(&in)
					if err == nil {
						_, err = d.identity.ImportUser(cmd.Context(), in, identity.Meta{})
					}
					switch {
					case err == nil:
						ok++
					case errors.Is(err, storage.ErrConflict):
						failed++
						fmt.Fprintf(e.stderr, "line %d: username or email already taken\n", n)
					default:
						failed++
						var ve *identity.ValidationError
						if errors.As(err, &ve) {
							fmt.Fprintf(e.stderr, "line %d: %s %s\n", n, ve.Field, ve.Reason)
						} else if _, isJSON := err.(*json.SyntaxError); isJSON || strings.HasPrefix(err.Error(), "json:") {
							fmt.Fprintf(e.stderr, "line %d: not a JSON user object\n", n)
						} else {
							return fmt.Errorf("line %d: %w", n, err)
						}
					}
				}
				if err := sc.Err(); err != nil {
					return fmt.Errorf("read stdin: %w", err)
				}
				if err := printJSON(e.stdout, map[string]int{"imported": ok, "failed": failed}); err != nil {
					return err
				}
				if failed > 0 {
					return &cliError{err: fmt.Errorf("%d of %d users not imported", failed, ok+failed), printed: false}
				}
				return nil
			})
		},
	}
	cmd.AddCommand(create, imp)
	cmd.AddCommand(e.userAdminCommands()...)
	return cmd
}

func (e *env) keysCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "keys", Short: "token signing keys"}
	cmd.AddCommand(
		&cobra.Command{
			Use: "list", Short: "list signing keys (no private material)", Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return e.withDeps(cmd.Context(), false, func(d *deps) error {
					ks, err := d.keys.Keys(cmd.Context())
					if err != nil {
						return err
					}
					return printJSON(e.stdout, ks)
				})
			},
		},
		&cobra.Command{
			Use: "rotate", Short: "next key becomes current, current is retired (still published), a new next is made", Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return e.withDeps(cmd.Context(), false, func(d *deps) error {
					k, err := d.keys.Rotate(cmd.Context())
					if err != nil {
						return err
					}
					if err := d.recorder.Record(cmd.Context(), events.Event{Type: events.KeyRotated,
						Data: map[string]any{"kid": k.ID, "alg": k.Alg, "by": "cli"}}); err != nil {
						return err
					}
					_, err = fmt.Fprintf(e.stdout, "rotated: current key is %s (%s)\n", k.ID, k.Alg)
					return err
				})
			},
		},
	)
	return cmd
}
