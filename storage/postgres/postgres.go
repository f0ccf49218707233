// Package postgres is authd's production store on PostgreSQL, through pgx v5.
//
// Every method picks up the transaction started by InTx from its
// context. Errors are wrapped with storage's sentinels: no row is
// storage.ErrNotFound, a unique violation storage.ErrConflict, a serialization
// failure or deadlock storage.ErrSerialization.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/crc64"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/authd/authd/migrations"
	"github.com/authd/authd/storage"
	"github.com/authd/authd/storage/internal/sqlstore"
)

var _ storage.Store = (*Store)(nil)

// Store is a storage.Store on a PostgreSQL connection pool.
type Store struct {
	pool    *pgxpool.Pool
	dialect sqlstore.Dialect
	now     func() time.Time
	log     *slog.Logger
	ann     *announcer // wakes the replicas' denylists after a revocation commits
}

// Option configures New.
type Option func(*options)

type options struct {
	maxConns int32
	now      func() time.Time
	log      *slog.Logger
}

// WithMaxConns sets the size of the connection pool (default max(4, 4*GOMAXPROCS),
// unless the DSN sets pool_max_conns).
func WithMaxConns(n int32) Option { return func(o *options) { o.maxConns = n } }

// WithClock replaces time.Now, for the times the store fills in itself.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithLogger sets the logger of migrations and of the denylist's wake-ups (default: discard).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// New connects to PostgreSQL. The DSN is a pgx connection string; it may set
// runtime parameters such as search_path, which every query and the
// migrations' version table honour (nothing is schema-qualified).
func New(ctx context.Context, dsn string, opts ...Option) (*Store, error) {
	o := options{now: time.Now, log: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		opt(&o)
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse dsn: %w", err)
	}
	switch {
	case o.maxConns > 0:
		cfg.MaxConns = o.maxConns
	case !strings.Contains(dsn, "pool_max_conns"):
		cfg.MaxConns = int32(max(4, 4*runtime.GOMAXPROCS(0)))
	}
	// Session times in UTC (goose's version table uses timestamp without time zone).
	if _, ok := cfg.ConnConfig.RuntimeParams["timezone"]; !ok {
		cfg.ConnConfig.RuntimeParams["timezone"] = "UTC"
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	return &Store{pool: pool, dialect: dialect(), now: o.now, log: o.log, ann: newAnnouncer(pool, o.log)}, nil
}

// dialect is how PostgreSQL spells the queries sqlstore assembles: numbered
// parameters, timestamptz, and a search with ILIKE, which ignores case
// beyond ASCII too (the search string is not lowercased).
func dialect() sqlstore.Dialect {
	return sqlstore.Dialect{
		Placeholder: sqlstore.Numbered,
		Time:        func(t time.Time) any { return t.UTC() },
		UserSearch:  `username ILIKE ? OR email ILIKE ?`,
	}
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: ping: %w", err)
	}
	return nil
}

// Close sends the pending denylist wake-up, if any, and closes the pool.
func (s *Store) Close() error {
	s.ann.close()
	s.pool.Close()
	return nil
}

// querier is what both the pool and a transaction offer.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// tx returns the transaction of s in ctx, or nil.
func (s *Store) tx(ctx context.Context) *pipeTx {
	tx, _ := sqlstore.TxFrom[*pipeTx](ctx, s)
	return tx
}

// q returns the transaction in ctx, or the pool.
func (s *Store) q(ctx context.Context) querier {
	if tx := s.tx(ctx); tx != nil {
		return tx
	}
	return s.pool
}

// deferExec runs a write whose result is not needed: in a transaction it is
// queued and sent with the transaction's next statement or its commit (see
// pipeTx); outside one it runs now.
func (s *Store) deferExec(ctx context.Context, sql string, args ...any) error {
	if tx := s.tx(ctx); tx != nil {
		tx.deferExec(sql, args...)
		return nil
	}
	_, err := s.pool.Exec(ctx, sql, args...)
	return err
}

func (s *Store) withTxState(ctx context.Context, tx *pipeTx) context.Context {
	return sqlstore.WithTx(ctx, s, tx)
}

// InTx runs fn in a transaction, committing when fn returns nil and rolling
// back otherwise. Inside a transaction already in ctx it just runs fn. fn's
// error is returned as is.
func (s *Store) InTx(ctx context.Context, fn func(ctx context.Context) error) error {
	if s.tx(ctx) != nil {
		return fn(ctx)
	}
	tx := newPipeTx(s.pool)
	defer tx.Rollback(ctx) // no-op after Commit
	if err := fn(s.withTxState(ctx, tx)); err != nil {
		return err
	}
	return wrap("commit", tx.Commit(ctx))
}

// withTx is InTx for the store's own methods: errors come back unwrapped.
func (s *Store) withTx(ctx context.Context, fn func(q *pipeTx) error) error {
	if tx := s.tx(ctx); tx != nil {
		return fn(tx)
	}
	tx := newPipeTx(s.pool)
	defer tx.Rollback(ctx) // no-op after Commit
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// wrap prefixes err with the operation and maps it onto storage's sentinels.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("postgres: %s: %w", op, storage.ErrNotFound)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch code := pgErr.Code; {
		case code == "23505": // unique_violation
			return fmt.Errorf("postgres: %s: %w: %w", op, storage.ErrConflict, err)
		case code == "40001" || code == "40P01": // serialization_failure, deadlock_detected
			return fmt.Errorf("postgres: %s: %w: %w", op, storage.ErrSerialization, err)
		case strings.HasPrefix(code, "08"), // connection exception
			code == "57P01" || code == "57P02" || code == "57P03", // admin or crash shutdown, cannot connect now
			code == "53300", code == "53400": // too many connections, configuration limit exceeded
			return fmt.Errorf("postgres: %s: %w: %w", op, storage.ErrUnavailable, err)
		}
		return fmt.Errorf("postgres: %s: %w", op, err)
	}
	if unreachable(err) {
		return fmt.Errorf("postgres: %s: %w: %w", op, storage.ErrUnavailable, err)
	}
	return fmt.Errorf("postgres: %s: %w", op, err)
}

// unreachable reports whether err (not a PostgreSQL error) says the server
// could not be reached or the connection was lost or timed out.
func unreachable(err error) bool {
	var (
		connectErr *pgconn.ConnectError
		netErr     net.Error
	)
	return errors.As(err, &connectErr) || errors.As(err, &netErr) || pgconn.Timeout(err) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, context.DeadlineExceeded) || pgconn.SafeToRetry(err)
}

// Migrate applies pending migrations, each in a transaction, holding a
// session advisory lock (one per schema) so that replicas starting together
// take turns.
func (s *Store) Migrate(ctx context.Context) error {
	// Start-up on an up-to-date schema (every start but the first after an
	// upgrade) asks one question, without goose and its lock.
	if s.upToDate(ctx) {
		return nil
	}
	p, closeDB, err := s.provider(ctx)
	if err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	defer closeDB()
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	return nil
}

// MigrationStatus lists every known migration and whether it is applied.
func (s *Store) MigrationStatus(ctx context.Context) ([]storage.MigrationState, error) {
	p, closeDB, err := s.provider(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres: migration status: %w", err)
	}
	defer closeDB()
	st, err := p.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres: migration status: %w", err)
	}
	return sqlstore.MigrationStates(st), nil
}

// upToDate reports whether every embedded migration is applied, from goose's
// version table in one query; any doubt (no table yet, an error) is false,
// and goose decides.
func (s *Store) upToDate(ctx context.Context) bool {
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT ON (version_id) version_id, is_applied
FROM goose_db_version ORDER BY version_id, id DESC`)
	if err != nil {
		return false
	}
	applied := map[int64]bool{}
	var (
		v  int64
		ok bool
	)
	_, err = pgx.ForEachRow(rows, []any{&v, &ok}, func() error { applied[v] = ok; return nil })
	if err != nil {
		return false
	}
	done, err := migrations.UpToDate(migrations.Postgres(), applied)
	return err == nil && done
}

func (s *Store) provider(ctx context.Context) (*goose.Provider, func(), error) {
	// Lock per schema: tests (and tenants) migrating other schemas do not wait.
	var schema string
	if err := s.pool.QueryRow(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
		return nil, nil, fmt.Errorf("current schema: %w", err)
	}
	lockID := int64(crc64.Checksum([]byte("authd-migrate:"+schema), crc64.MakeTable(crc64.ECMA)) >> 1)
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(lockID), lock.WithLockTimeout(1, 600))
	if err != nil {
		return nil, nil, err
	}
	db := stdlib.OpenDBFromPool(s.pool)
	var fsys fs.FS = migrations.Postgres()
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys,
		goose.WithSessionLocker(locker),
		goose.WithDisableGlobalRegistry(true),
		goose.WithSlog(s.log),
	)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return p, func() { db.Close() }, nil
}

// utc returns t in UTC, and the zero time for NULL.
func utc(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

// nullTime maps the zero time to NULL.
func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC()
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
