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
	"path/filepath"
	"runtime/debug"
	"strings"
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
	e := &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, lookupEnv: os.LookupEnv, environ: os.Environ,
		setMemoryLimit: debug.SetMemoryLimit, setGCPercent: debug.SetGCPercent, releaseIdleMemory: true}
	err := e.rootCommand().ExecuteContext(ctx)
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
	// environ lists the whole environment (KEY=VALUE), to warn about
	// unknown AUTHD_* variables; nil skips the warning.
	environ func() []string
	root    *cobra.Command
	// serving is set when the command is serve: its settings are validated too.
	serving bool
	// onReady, when set, is told the listening address once serve accepts
	// connections (tests use it).
	onReady func(addr string)
	// setMemoryLimit sets the process's soft memory limit
	// (debug.SetMemoryLimit); nil leaves it alone (tests run many servers
	// in one process).
	setMemoryLimit func(int64) int64
	// setGCPercent sets the collector's percentage (debug.SetGCPercent)
	// while a memory limit is in effect; nil leaves it alone.
	setGCPercent func(int) int
	// releaseIdleMemory hands memory back to the OS when serve goes idle
	// after work (internal/idlemem); off in tests, for the same reason.
	releaseIdleMemory bool
}

func newRootCommand(stdin io.Reader, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) *cobra.Command {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr, lookupEnv: lookupEnv}
	return e.rootCommand()
}

func (e *env) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "authd",
		Short:         "authd: an OAuth 2.0 authorization server",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetVersionTemplate("authd {{.Version}}\n")
	root.SetIn(e.stdin)
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	config.Register(root.PersistentFlags())
	e.root = root
	serve := e.serveCommand()
	serve.Long = serveLong
	serve.PreRun = func(*cobra.Command, []string) { e.serving = true }
	root.AddCommand(
		serve,
		e.migrateCommand(),
		e.clientsCommand(),
		e.usersCommand(),
		e.keysCommand(),
		e.healthcheckCommand(),
		&cobra.Command{
			Use: "version", Short: "print the version", Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				_, err := fmt.Fprintln(cmd.OutOrStdout(), "authd", version)
				return err
			},
		},
	)
	rejectUnknown(root)
	return root
}

// serveLong is serve --help's text above the flags.
var serveLong = "Runs the authorization server; applies pending migrations first unless --no-migrate.\n\n" +
	"Every setting is a flag below, an AUTHD_* environment variable (named beside each flag) or a key\n" +
	"of the YAML file (--config or AUTHD_CONFIG); flags win over variables, which win over the file.\n" +
	"The secrets have no flag (a command line is visible to every local user); set them in the\n" +
	"environment (or the file):\n\n" + config.SecretsHelp() +
	"\nOutside dev mode AUTHD_SECRET is required and serve wants TLS (AUTHD_TLS_CERT and\n" +
	"AUTHD_TLS_KEY) or a proxy that terminates it (AUTHD_TLS_TERMINATED_UPSTREAM=true).\n" +
	"To rotate the secret: set the new one in AUTHD_SECRET and move the old one to\n" +
	"AUTHD_SECRET_OLD on every replica; drop the old one once every replica runs with the new one."

// rejectUnknown makes every command group (root, users, clients, ...) fail
// on an unknown subcommand instead of printing its help and exiting 0; a
// group given no subcommand still prints its help.
func rejectUnknown(c *cobra.Command) {
	for _, sub := range c.Commands() {
		rejectUnknown(sub)
	}
	if !c.HasSubCommands() || c.Runnable() {
		return
	}
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return cmd.Help()
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			msg += "; did you mean " + strings.Join(s, " or ") + "?"
		}
		return fmt.Errorf("%s (see %s --help)", msg, cmd.CommandPath())
	}
}

// loadConfig reads flags > env > YAML, warns about unknown AUTHD_*
// variables and validates the result: every setting for serve, those the
// other verbs read for them (config.ValidateCLI: no TLS, no https issuer).
// Problems in parsing and in validation are reported together.
func (e *env) loadConfig() (config.Config, error) {
	cfg, err := config.Load(e.root.PersistentFlags(), e.lookupEnv)
	var fe *config.FileError
	if errors.As(err, &fe) {
		return cfg, err
	}
	var problems []error
	if err != nil {
		problems = append(problems, err)
	}
	if e.environ != nil {
		log := newLogger(cfg, e.stderr)
		for _, u := range config.UnknownEnv(e.environ()) {
			if u.Suggest != "" {
				log.Warn("unknown configuration variable ignored", "variable", u.Name, "did_you_mean", u.Suggest)
			} else {
				log.Warn("unknown configuration variable ignored", "variable", u.Name)
			}
		}
	}
	if cfg.Dev && cfg.Secret == "" && cfg.DataDir != "" {
		s, err := devSecret(cfg.DataDir)
		if err != nil {
			return cfg, err
		}
		cfg.Secret = s
	}
	validate := cfg.ValidateCLI
	if e.serving {
		validate = cfg.Validate
	}
	if err := validate(); err != nil {
		problems = append(problems, err)
	}
	if e.serving {
		problems = append(problems, connectorProblems(cfg)...)
	}
	if len(problems) == 0 {
		return cfg, nil
	}
	if hint := devSecretHint(cfg); hint != "" {
		problems = append(problems, errors.New(hint))
	}
	return cfg, fmt.Errorf("invalid configuration:\n%w", errors.Join(problems...))
}

// devSecretHint says how to use the dev secret kept in the data folder when
// no secret is set outside dev mode (a CLI verb run against `make run`'s
// data without AUTHD_DEV=true); "" when it does not apply.
func devSecretHint(cfg config.Config) string {
	if cfg.Dev || cfg.Secret != "" || cfg.DataDir == "" {
		return ""
	}
	path := filepath.Join(cfg.DataDir, "secret")
	if _, err := os.Stat(path); err != nil {
		return ""
	}
	return fmt.Sprintf("config: AUTHD_SECRET: %[1]s holds the secret dev mode generated; add AUTHD_DEV=true to use it "+
		"(as make run does), or set AUTHD_SECRET=\"$(cat %[1]s)\" to use its data outside dev mode (never in production)", path)
}
