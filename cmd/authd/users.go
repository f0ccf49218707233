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

// withUser finds the user named by ref (id, username or email) and runs fn.
func (e *env) withUser(ctx context.Context, ref string, fn func(d *deps, u storage.User) (storage.User, error)) error {
	return e.withDeps(ctx, false, func(d *deps) error {
		u, err := d.identity.FindUser(ctx, ref)
		if errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("user %q not found (give an id, a username or an email)", ref)
		} else if err != nil {
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

// userAdminCommands are `users list|disable|enable|unlock|set-roles|set-password`.
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

	return []*cobra.Command{list, disable, enable, unlock, setRoles, setPassword}
}
