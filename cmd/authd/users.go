package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/authd/authd/identity"
	"github.com/authd/authd/server"
	"github.com/authd/authd/storage"
)

// The operator's account verbs. Each goes through the identity functions the
// admin API uses (identity.Service.UpdateUser, Unlock, SetPassword), so a
// change has the same checks, the same event (naming the admin "cli") and,
// for a disable or a password reset, the same revocation of the user's
// tokens, in the same transaction.

// readPassword reads the first line of stdin (at most 4 KiB).
func (e *env) readPassword() (string, error) {
	line, err := bufio.NewReader(io.LimitReader(e.stdin, 4<<10)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// findUser finds the user named by ref (id, username or email).
func findUser(ctx context.Context, d *deps, ref string) (storage.User, error) {
	u, err := d.identity.FindUser(ctx, ref)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.User{}, fmt.Errorf("user %q not found (give an id, a username or an email)", ref)
	}
	return u, err
}

// withUser finds the user named by ref (id, username or email), runs fn and
// prints the user it returns.
func (e *env) withUser(ctx context.Context, ref string, fn func(d *deps, u storage.User) (storage.User, error)) error {
	return e.withDeps(ctx, false, func(d *deps) error {
		u, err := findUser(ctx, d, ref)
		if err != nil {
			return err
		}
		if u, err = fn(d, u); err != nil {
			var ve *identity.ValidationError
			if errors.As(err, &ve) {
				return fmt.Errorf("%s %s", ve.Field, ve.Reason)
			}
			return err
		}
		return printJSON(e.stdout, server.AdminUser(u, time.Now()))
	})
}

// userAdminCommands are `users list|disable|enable|unlock|set-roles|set-password|links|unlink`.
func (e *env) userAdminCommands() []*cobra.Command {
	var query, cursor string
	var limit int
	list := &cobra.Command{
		Use: "list", Short: "list users as JSON, a page at a time (as GET /api/v1/admin/users)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 1 || limit > 500 {
				return errors.New("--limit must be from 1 to 500")
			}
			return e.withDeps(cmd.Context(), false, func(d *deps) error {
				users, next, err := d.store.ListUsers(cmd.Context(), storage.UserQuery{Query: query, Cursor: cursor, Limit: limit})
				if err != nil {
					return err
				}
				now := time.Now()
				out := make([]any, 0, len(users))
				for _, u := range users {
					out = append(out, server.AdminUser(u, now))
				}
				return printJSON(e.stdout, map[string]any{"users": out, "next_cursor": next})
			})
		},
	}
	list.Flags().StringVarP(&query, "query", "q", "", "only users whose username or email contains this")
	list.Flags().IntVar(&limit, "limit", 50, "users per page (1-500)")
	list.Flags().StringVar(&cursor, "cursor", "", "next_cursor of the previous page")

	disabled := func(use, short string, to bool) *cobra.Command {
		return &cobra.Command{
			Use: use + " USER", Short: short, Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return e.withUser(cmd.Context(), args[0], func(d *deps, u storage.User) (storage.User, error) {
					p, err := d.provider(nil, nil)
					if err != nil {
						return u, err
					}
					return d.identity.SetDisabled(cmd.Context(), u.ID, to, identity.CLIAdmin, identity.Meta{}, p)
				})
			},
		}
	}
	disable := disabled("disable", "disable an account and revoke its tokens (as PATCH {\"disabled\":true})", true)
	enable := disabled("enable", "enable a disabled account (as PATCH {\"disabled\":false})", false)

	unlock := &cobra.Command{
		Use: "unlock USER", Short: "clear a lockout and the failed-login counter", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.withUser(cmd.Context(), args[0], func(d *deps, u storage.User) (storage.User, error) {
				return d.identity.Unlock(cmd.Context(), u.ID, identity.Meta{})
			})
		},
	}

	var roles []string
	setRoles := &cobra.Command{
		Use: "set-roles USER --role R...", Short: "replace a user's roles; every user keeps 'user' (as PATCH {\"roles\":[...]})",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("role") {
				return errors.New("give the roles with --role (repeatable); --role user leaves only the user role")
			}
			return e.withUser(cmd.Context(), args[0], func(d *deps, u storage.User) (storage.User, error) {
				return d.identity.SetRoles(cmd.Context(), u.ID, roles, identity.CLIAdmin, identity.Meta{})
			})
		},
	}
	setRoles.Flags().StringArrayVar(&roles, "role", nil, "a role (repeatable); 'user' is always kept")

	var passwordStdin bool
	setPassword := &cobra.Command{
		Use:   "set-password USER --password-stdin",
		Short: "set a user's password (read from stdin) and revoke every token of the user",
		Long: "Sets the password of USER (an id, a username or an email) from the first line of stdin. The\n" +
			"password policy applies as at signup. Every refresh token and every access token of the user\n" +
			"issued until now is revoked; a lockout stays (see users unlock).",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !passwordStdin {
				return errors.New("--password-stdin is required: passwords are never taken as arguments")
			}
			pw, err := e.readPassword()
			if err != nil {
				return err
			}
			return e.withUser(cmd.Context(), args[0], func(d *deps, u storage.User) (storage.User, error) {
				p, err := d.provider(nil, nil)
				if err != nil {
					return u, err
				}
				return d.identity.SetPassword(cmd.Context(), u.ID, pw, identity.CLIAdmin, identity.Meta{}, p)
			})
		},
	}
	setPassword.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the password from the first line of stdin")

	return append([]*cobra.Command{list, disable, enable, unlock, setRoles, setPassword}, e.userLinkCommands()...)
}

// userLinkCommands are `users links|unlink`: a user's links to upstream
// identities (connectors), through identity.Federation as the admin API.
func (e *env) userLinkCommands() []*cobra.Command {
	links := &cobra.Command{
		Use: "links USER", Short: "list a user's links to upstream identities as JSON (as GET /api/v1/admin/users/{id}/links)",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.withDeps(cmd.Context(), false, func(d *deps) error {
				u, err := findUser(cmd.Context(), d, args[0])
				if err != nil {
					return err
				}
				ls, err := d.federate.Links(cmd.Context(), u.ID)
				if err != nil {
					return err
				}
				return printJSON(e.stdout, server.LinksDocument(ls))
			})
		},
	}
	unlink := &cobra.Command{
		Use:   "unlink USER CONNECTOR",
		Short: "remove a user's link to a connector's identity (as DELETE /api/v1/admin/users/{id}/links/{connector_id})",
		Long: "Removes the link of USER (an id, a username or an email) to their identity at the connector\n" +
			"CONNECTOR (its id): that identity no longer signs in as USER. The user's sessions and tokens stay.",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.withDeps(cmd.Context(), false, func(d *deps) error {
				u, err := findUser(cmd.Context(), d, args[0])
				if err != nil {
					return err
				}
				err = d.federate.Unlink(cmd.Context(), u.ID, args[1], identity.CLIAdmin, identity.Meta{})
				if errors.Is(err, storage.ErrNotFound) {
					return fmt.Errorf("user %q has no link to connector %q", args[0], args[1])
				} else if err != nil {
					return err
				}
				_, err = fmt.Fprintf(e.stdout, "unlinked user %s from connector %s\n", u.ID, args[1])
				return err
			})
		},
	}
	return []*cobra.Command{links, unlink}
}
