// Package sqlite is authd's embedded store on SQLite, through the pure-Go
// modernc.org/sqlite driver.
//
// Write transactions begin IMMEDIATE (they take the write lock up front), so
// two transactions never deadlock upgrading a read lock; waiting writers
// retry for the busy timeout. Every method picks up the transaction started
// by InTx from its context.
package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/pressly/goose/v3"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/authd/authd/migrations"
	"github.com/authd/authd/storage"
	"github.com/authd/authd/storage/internal/sqlstore"
)

var _ storage.Store = (*Store)(nil)

// Store is a storage.Store on one SQLite database file.
type Store struct {
	db      *sql.DB
	stmts   stmtCache
	dialect sqlstore.Dialect
	now     func() time.Time
	log     *slog.Logger
}

// Option configures New.
type Option func(*options)

type options struct {
	now         func() time.Time
	log         *slog.Logger
	busyTimeout time.Duration
}

// WithClock replaces time.Now, for the times the store fills in itself.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithLogger sets the logger used for migrations (default: discard).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithBusyTimeout sets how long a writer waits for the write lock (default 10s)
// before failing with storage.ErrSerialization.
func WithBusyTimeout(d time.Duration) Option { return func(o *options) { o.busyTimeout = d } }

// New opens (creating if needed) the database file at path, and its parent
// directory. It does not migrate.
func New(ctx context.Context, path string, opts ...Option) (*Store, error) {
	o := options{now: time.Now, log: slog.New(slog.DiscardHandler), busyTimeout: 10 * time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("sqlite: create directory: %w", err)
	}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", o.busyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+filepath.ToSlash(path)+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	n := max(4, 2*runtime.GOMAXPROCS(0))
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	return &Store{db: db, dialect: dialect(), now: o.now, log: o.log}, nil
}

// dialect is how SQLite spells the queries sqlstore assembles: parameters
// bound in order, times in unix nanoseconds, and LIKE on the lowercased
// username and email (LIKE folds the case of ASCII letters only).
func dialect() sqlstore.Dialect {
	return sqlstore.Dialect{
		Placeholder: sqlstore.Positional,
		Time:        func(t time.Time) any { return nanos(t) },
		UserSearch:  `username LIKE ? ESCAPE '\' OR email_lower LIKE ? ESCAPE '\'`,
		FoldSearch:  true,
	}
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
	}
	return nil
}

// Close closes the database.
func (s *Store) Close() error {
	s.stmts.close()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("sqlite: close: %w", err)
	}
	return nil
}

// querier is what both *sql.DB and *sql.Tx offer.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// tx returns the transaction of s in ctx, or nil.
func (s *Store) tx(ctx context.Context) *sql.Tx {
	tx, _ := sqlstore.TxFrom[*sql.Tx](ctx, s)
	return tx
}

// q returns the transaction in ctx, or the database, running queries as
// prepared statements.
func (s *Store) q(ctx context.Context) querier {
	return stmtQuerier{s: s, tx: s.tx(ctx)}
}

// InTx runs fn in a transaction, committing when fn returns nil and rolling
// back otherwise. Inside a transaction already in ctx it just runs fn. fn's
// error is returned as is.
func (s *Store) InTx(ctx context.Context, fn func(ctx context.Context) error) error {
	if s.tx(ctx) != nil {
		return fn(ctx)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return wrap("begin", err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	if err := fn(sqlstore.WithTx(ctx, s, tx)); err != nil {
		return err
	}
	return wrap("commit", tx.Commit())
}

// withTx is InTx for the store's own methods: errors come back unwrapped.
func (s *Store) withTx(ctx context.Context, fn func(q querier) error) error {
	if tx := s.tx(ctx); tx != nil {
		return fn(stmtQuerier{s: s, tx: tx})
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	if err := fn(stmtQuerier{s: s, tx: tx}); err != nil {
		return err
	}
	return tx.Commit()
}

// wrap prefixes err with the operation and maps it onto storage's sentinels.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("sqlite: %s: %w", op, storage.ErrNotFound)
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch code := se.Code(); {
		case code == sqlite3.SQLITE_CONSTRAINT_UNIQUE || code == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return fmt.Errorf("sqlite: %s: %w: %w", op, storage.ErrConflict, err)
		case code&0xff == sqlite3.SQLITE_BUSY || code&0xff == sqlite3.SQLITE_LOCKED:
			return fmt.Errorf("sqlite: %s: %w: %w", op, storage.ErrSerialization, err)
		case code&0xff == sqlite3.SQLITE_IOERR || code&0xff == sqlite3.SQLITE_FULL || code&0xff == sqlite3.SQLITE_CANTOPEN:
			// The disk failed or is full: nothing this request can mend.
			return fmt.Errorf("sqlite: %s: %w: %w", op, storage.ErrUnavailable, err)
		}
	}
	return fmt.Errorf("sqlite: %s: %w", op, err)
}

// Migrate applies pending migrations, each in a transaction. SQLite lets one
// writer at a time in; when another process migrates the same file
// concurrently, a migration it already applied fails here, and Migrate runs
// again as long as the other one makes progress.
func (s *Store) Migrate(ctx context.Context) error {
	// Start-up on an up-to-date schema asks one question, without goose.
	if s.upToDate(ctx) {
		return nil
	}
	p, err := s.provider()
	if err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	for attempt := 0; ; attempt++ {
		before, err := p.GetDBVersion(ctx)
		if err != nil {
			return fmt.Errorf("sqlite: migrate: %w", err)
		}
		_, err = p.Up(ctx)
		if err == nil {
			return nil
		}
		after, verr := p.GetDBVersion(ctx)
		if verr != nil || after <= before || attempt >= 10 {
			return fmt.Errorf("sqlite: migrate: %w", err)
		}
	}
}

// MigrationStatus lists every known migration and whether it is applied.
func (s *Store) MigrationStatus(ctx context.Context) ([]storage.MigrationState, error) {
	p, err := s.provider()
	if err != nil {
		return nil, fmt.Errorf("sqlite: migration status: %w", err)
	}
	st, err := p.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("sqlite: migration status: %w", err)
	}
	return sqlstore.MigrationStates(st), nil
}

// upToDate reports whether every embedded migration is applied, from goose's
// version table in one query; any doubt (no table yet, an error) is false,
// and goose decides.
func (s *Store) upToDate(ctx context.Context) bool {
	rows, err := s.db.QueryContext(ctx, `SELECT version_id, is_applied FROM goose_db_version g
WHERE id = (SELECT max(id) FROM goose_db_version WHERE version_id = g.version_id)`)
	if err != nil {
		return false
	}
	defer rows.Close()
	applied := map[int64]bool{}
	for rows.Next() {
		var (
			v  int64
			ok bool
		)
		if err := rows.Scan(&v, &ok); err != nil {
			return false
		}
		applied[v] = ok
	}
	if rows.Err() != nil {
		return false
	}
	done, err := migrations.UpToDate(migrations.SQLite(), applied)
	return err == nil && done
}

func (s *Store) provider() (*goose.Provider, error) {
	return goose.NewProvider(goose.DialectSQLite3, s.db, migrations.SQLite(),
		goose.WithDisableGlobalRegistry(true),
		goose.WithSlog(s.log),
	)
}

// Times are unix nanoseconds in UTC; NULL is the zero time.

// nanos clamps times outside int64 nanoseconds (years 1678 to 2262), such as
// the zero time, to the ends of the range.
func nanos(t time.Time) int64 {
	const limit = math.MaxInt64 / int64(time.Second)
	switch sec := t.Unix(); {
	case sec <= -limit:
		return math.MinInt64
	case sec >= limit:
		return math.MaxInt64
	}
	return t.UnixNano()
}

func nullNanos(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

func fromNullNanos(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return fromNanos(n.Int64)
}

// jsonList encodes a string list as a JSON array ("[]" for nil).
func jsonList(l []string) string {
	if len(l) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(l) // a []string always marshals
	return string(b)
}

func parseList(s string) ([]string, error) {
	l := []string{}
	if err := json.Unmarshal([]byte(s), &l); err != nil {
		return nil, fmt.Errorf("decode list: %w", err)
	}
	return l, nil
}

// scanner is *sql.Row or *sql.Rows.
type scanner = sqlstore.Scanner

// collect scans every row with scan and closes rows.
func collect[T any](rows *sql.Rows, scan func(scanner) (T, error)) ([]T, error) {
	defer rows.Close()
	return sqlstore.Collect(rows, scan)
}

// placeholders returns "?, ?, ..." for n arguments.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}
