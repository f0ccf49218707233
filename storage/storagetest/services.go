package storagetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	goredis "github.com/redis/go-redis/v9"
)

// Environment variables naming the test services.
const (
	PostgresEnv = "AUTHD_TEST_POSTGRES_URL" // e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable
	RedisEnv    = "AUTHD_TEST_REDIS_URL"    // e.g. redis://127.0.0.1:6379/0
)

// need skips the test when the variable is unset, or fails it in CI.
func need(t testing.TB, env string) string {
	t.Helper()
	v := os.Getenv(env)
	if v == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required in CI", env)
		}
		t.Skipf("set %s to run this test", env)
	}
	return v
}

// RandomID returns a random lowercase hex string of 2n characters.
func RandomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails
	return hex.EncodeToString(b)
}

// PostgresDSN returns a DSN for a fresh, empty schema of the test database
// named by AUTHD_TEST_POSTGRES_URL (its search_path set to the schema), and
// drops the schema when the test ends. Without the variable it skips the
// test, or fails it when CI=true.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	base := need(t, PostgresEnv)
	schema := "authdtest_" + RandomID(6)
	exec := func(ctx context.Context, sql string) error {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			return err
		}
		defer conn.Close(context.WithoutCancel(ctx))
		_, err = conn.Exec(ctx, sql)
		return err
	}
	err := exec(t.Context(), "CREATE SCHEMA "+schema)
	if missingDatabase(err) {
		// The test database does not exist yet (a fresh PostgreSQL): make it
		// through the maintenance database, as `make test` promises.
		err = createDatabase(t.Context(), base)
		if err == nil {
			err = exec(t.Context(), "CREATE SCHEMA "+schema)
		}
	}
	if err != nil {
		t.Fatalf("storagetest: create schema: %v (is PostgreSQL at %s reachable? `createdb` the database it names, or point %s elsewhere)", err, PostgresEnv, PostgresEnv)
	}
	t.Cleanup(func() {
		if err := exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("storagetest: drop schema %s: %v", schema, err)
		}
	})
	if !strings.Contains(base, "://") { // keyword/value form
		return base + " search_path=" + schema
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("storagetest: %s: %v", PostgresEnv, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// RedisURL returns the test Redis named by AUTHD_TEST_REDIS_URL and a random
// key prefix, and deletes the prefix's keys when the test ends. Without the
// variable it skips the test, or fails it when CI=true.
func RedisURL(t testing.TB) (redisURL, prefix string) {
	t.Helper()
	redisURL = need(t, RedisEnv)
	opts, err := goredis.ParseURL(redisURL)
	if err != nil {
		t.Fatalf("storagetest: %s: %v", RedisEnv, err)
	}
	prefix = "authdtest:" + RandomID(6) + ":"
	t.Cleanup(func() {
		rdb := goredis.NewClient(opts)
		defer rdb.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		iter := rdb.Scan(ctx, 0, prefix+"*", 500).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if err := iter.Err(); err != nil {
			t.Errorf("storagetest: scan redis keys: %v", err)
			return
		}
		if len(keys) > 0 {
			if err := rdb.Del(ctx, keys...).Err(); err != nil {
				t.Errorf("storagetest: delete redis keys: %v", err)
			}
		}
	})
	return redisURL, prefix
}

// missingDatabase reports whether err is PostgreSQL's "database does not exist".
func missingDatabase(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "3D000"
}

// createDatabase creates the database base names, connected to the
// "postgres" maintenance database of the same server. Another test creating
// it at the same moment is fine.
func createDatabase(ctx context.Context, base string) error {
	cfg, err := pgx.ParseConfig(base)
	if err != nil {
		return err
	}
	name := cfg.Database
	cfg.Database = "postgres"
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "42P04" || pgErr.Code == "23505") { // duplicate_database, or a concurrent create
		return nil
	}
	return err
}
