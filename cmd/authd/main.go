// Command authd is the authorization server and its operator CLI. It is the
// only place that reads configuration and wires concrete backends together.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/authd/authd/config"
	"github.com/authd/authd/storage/redis"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

func main() {
	// go-redis logs through one process-wide logger: make its lines JSON on
	// the log stream, one a minute at most (a Redis outage would otherwise
	// print a plain-text line per failed dial).
	goredis.SetLogger(redis.NewLogger(slog.New(slog.NewJSONHandler(os.Stderr, nil)), time.Minute))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCommand(os.Stdin, os.Stdout, os.Stderr, os.LookupEnv).ExecuteContext(ctx)
	stop()
	if err != nil {
		var ce *cliError
		if !errors.As(err, &ce) || !ce.printed {
			fmt.Fprintln(os.Stderr, "authd:", err)
		}
		os.Exit(1)
	}
}

// cliError marks an error already reported to the user.
type cliError struct {
	err     error
	printed bool
}

func (e *cliError) Error() string { return e.err.Error() }
func (e *cliError) Unwrap() error { return e.err }

// env is what every command reads: the process's streams and environment.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	lookupEnv      func(string) (string, bool)
	root           *cobra.Command
	// onReady, when set, is told the listening address once serve accepts
	// connections (tests use it).
	onReady func(addr string)
}

func newRootCommand(stdin io.Reader, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) *cobra.Command {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr, lookupEnv: lookupEnv}
	return e.rootCommand()
}

func (e *env) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "authd",
		Short:         "authd: an OAuth 2.0 authorization server",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(e.stdin)
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	config.Register(root.PersistentFlags())
	e.root = root
	root.AddCommand(
		e.serveCommand(),
		e.migrateCommand(),
		e.clientsCommand(),
		e.usersCommand(),
		e.keysCommand(),
		&cobra.Command{
			Use: "version", Short: "print the version", Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				_, err := fmt.Fprintln(cmd.OutOrStdout(), "authd", version)
				return err
			},
		},
	)
	return root
}

// loadConfig reads flags > env > YAML and validates the result.
func (e *env) loadConfig() (config.Config, error) {
	cfg, err := config.Load(e.root.PersistentFlags(), e.lookupEnv)
	if err != nil {
		return cfg, err
	}
	if cfg.Dev && cfg.Secret == "" {
		s, err := devSecret(cfg.DataDir)
		if err != nil {
			return cfg, err
		}
		cfg.Secret = s
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("invalid configuration:\n%w", err)
	}
	return cfg, nil
}
