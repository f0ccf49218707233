package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/authd/authd/clients"
	"github.com/authd/authd/config"
	"github.com/authd/authd/events"
	"github.com/authd/authd/identity"
	"github.com/authd/authd/identity/blocklist"
	"github.com/authd/authd/keys"
	"github.com/authd/authd/server"
	"github.com/authd/authd/server/oauth"
	"github.com/authd/authd/storage"
	"github.com/authd/authd/storage/clientcache"
	"github.com/authd/authd/storage/postgres"
	"github.com/authd/authd/storage/redis"
	"github.com/authd/authd/storage/sqlite"
)

// devSecret returns the dev-mode secret kept in dataDir, creating it once.
func devSecret(dataDir string) (string, error) {
	path := filepath.Join(dataDir, "secret")
	b, err := os.ReadFile(path)
	if err == nil {
		if s := strings.TrimSpace(string(b)); len(s) >= config.MinSecretLen {
			return s, nil
		}
		return "", fmt.Errorf("dev secret in %s is too short; delete it to regenerate", path)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("read dev secret: %w", err)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", fmt.Errorf("create data folder: %w", err)
	}
	var raw [32]byte
	_, _ = rand.Read(raw[:])
	s := hex.EncodeToString(raw[:])
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) { // another process created it first
		return devSecret(dataDir)
	} else if err != nil {
		return "", fmt.Errorf("create dev secret: %w", err)
	}
	if _, err := f.WriteString(s + "\n"); err != nil {
		f.Close()
		return "", fmt.Errorf("write dev secret: %w", err)
	}
	return s, f.Close()
}

// openStore opens the SQL store named by the database URL; the store logs
// its migrations and, on PostgreSQL, a denylist wake-up it could not send,
// to log.
func openStore(ctx context.Context, cfg config.Config, log *slog.Logger) (storage.Store, error) {
	if p, ok := cfg.SQLitePath(); ok {
		return sqlite.New(ctx, p, sqlite.WithLogger(log))
	}
	return postgres.New(ctx, cfg.DatabaseURL, postgres.WithLogger(log))
}

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: cfg.SlogLevel()}))
}

func secretBytes(cfg config.Config) (current []byte, old [][]byte) {
	for _, s := range cfg.SecretOld {
		old = append(old, []byte(s))
	}
	return []byte(cfg.Secret), old
}

// deps are the wired layers every command may need.
type deps struct {
	cfg       config.Config
	log       *slog.Logger
	store     storage.Store
	redis     *goredis.Client    // nil without AUTHD_REDIS_URL
	pgDeny    *postgres.Denylist // in-memory denylist on PostgreSQL; nil on SQLite
	denylist  storage.Denylist
	keys      *keys.Manager
	hasher    *oauth.SecretHasher
	recorder  *events.Recorder
	identity  *identity.Service
	federate  *identity.Federation // sign-in through connectors, account links
	clients   *clients.Service
	metrics   *server.Metrics    // serve's; nil for the other verbs
	redisDPoP *redis.ProofReplay // set by provider when Redis remembers DPoP proofs
	phases    *phases            // serve's start-up timing; nil for the other verbs
}

// open wires the store (migrating it when migrate is set), keys, hashing and
// identity. Close releases what it opened.
func open(ctx context.Context, cfg config.Config, log *slog.Logger, migrate bool) (*deps, error) {
	return openObserved(ctx, cfg, log, migrate, nil, nil)
}

// openObserved is open whose events, password hashing and database outages
// are counted in m (when not nil).
func openObserved(ctx context.Context, cfg config.Config, log *slog.Logger, migrate bool, m *server.Metrics, ph *phases) (*deps, error) {
	d := &deps{cfg: cfg, log: log, metrics: m, phases: ph}
	st, err := openStore(ctx, cfg, log)
	if err != nil {
		return nil, fmt.Errorf("AUTHD_DATABASE_URL: %w", err)
	}
	ph.done("open store")
	// Events are counted once their transaction committed: every
	// transaction begins through the CommitStore.
	tx := storage.Store(st)
	var recOpts []events.RecorderOption
	idOpts := identity.Options{
		LockoutThreshold: cfg.LockoutThreshold, LockoutDuration: cfg.LockoutDuration, Logger: log,
		Blocklist: blocklist.Common(),
		// Collect after each hash only under a soft memory limit
		// (AUTHD_MEMORY_LIMIT or GOMEMLIMIT; serve sets it before this):
		// without one, the operator chose login throughput over memory.
		NoCollection: debug.SetMemoryLimit(-1) == math.MaxInt64,
	}
	if m != nil {
		tx = events.NewCommitStore(st)
		recOpts = append(recOpts, events.WithObserver(m))
		idOpts.HashObserver = m
	}
	// Every OAuth request authenticates a client: keep client records in
	// memory for a few seconds (changes through d.store apply at once).
	d.store = clientcache.New(tx, clientcache.DefaultTTL, nil)
	if migrate {
		if err := st.Migrate(ctx); err != nil {
			d.Close()
			return nil, fmt.Errorf("AUTHD_DATABASE_URL: %w", err)
		}
		ph.done("migrate")
	}
	secret, old := secretBytes(cfg)
	d.keys, err = keys.NewManager(ctx, st, keys.Options{
		Alg: cfg.SigningAlg, Secret: secret, OldSecrets: old, TokenTTL: cfg.AccessTokenTTL,
		ReloadInterval: 30 * time.Second, Logger: log,
	})
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("signing keys: %w", err)
	}
	ph.done("signing keys")
	if d.hasher, err = oauth.NewSecretHasher(secret, old...); err != nil {
		d.Close()
		return nil, err
	}
	// The denylist is SQL, the truth. On PostgreSQL every replica keeps a
	// copy in memory, read from SQL on a NOTIFY after each revoking commit
	// and every second (serve runs it): a revocation any replica
	// acknowledged is honoured by every replica within milliseconds, and no
	// Redis outage or partition can hide it. Until the copy is loaded, and
	// whenever its connection fails, answers come from SQL.
	d.denylist = st
	if pg, ok := st.(*postgres.Store); ok {
		d.pgDeny = pg.NewDenylist(postgres.WithDenylistLogger(log))
		d.denylist = d.pgDeny
	}
	if cfg.RedisURL != "" {
		opts, err := goredis.ParseURL(cfg.RedisURL)
		if err != nil {
			d.Close()
			return nil, fmt.Errorf("redis url: invalid")
		}
		d.redis = goredis.NewClient(redis.ClientOptions(opts))
	}
	d.recorder = events.NewRecorder(tx, nil, recOpts...)
	d.identity = identity.NewService(tx, d.recorder, idOpts)
	d.federate = d.identity.NewFederation(tx)
	// Clients are changed through d.store, so that the cache drops them.
	if d.clients, err = clients.NewService(d.store, d.recorder, clients.Options{Hasher: d.hasher, GrantTypes: oauth.SupportedGrantTypes()}); err != nil {
		d.Close()
		return nil, err
	}
	ph.done("identity")
	return d, nil
}

// provider builds the OAuth layer on the wired dependencies; clientIP and
// pages (the authorize endpoint's) may be nil outside serve.
func (d *deps) provider(clientIP func(*http.Request) string, pages oauth.Pages) (*oauth.Provider, error) {
	secret, old := secretBytes(d.cfg)
	var unavailable func(error)
	if d.metrics != nil {
		unavailable = d.metrics.DatabaseUnavailable
	}
	return oauth.New(oauth.Options{
		Issuer: d.cfg.Issuer, AccessTokenTTL: d.cfg.AccessTokenTTL, RefreshTokenTTL: d.cfg.RefreshTokenTTL,
		RefreshFamilyTTL: d.cfg.RefreshFamilyTTL, RefreshReuseInterval: d.cfg.RefreshReuseInterval,
		Secret: secret, OldSecrets: old,
		Store: d.store, Denylist: d.denylist, ProofReplay: d.proofReplay(), DPoPNonces: d.cfg.DPoPNonce,
		Signer: d.keys, Auth: d.identity, Recorder: d.recorder, Hasher: d.hasher, Logger: d.log, ClientIP: clientIP,
		StoreUnavailable: unavailable, Pages: pages,
	})
}

// proofReplay is where DPoP proof ids are remembered: Redis when configured
// (every replica shares it), over the SQL store, which every replica shares
// too and which answers while Redis does not.
func (d *deps) proofReplay() storage.ProofReplay {
	if d.redis == nil {
		return d.store
	}
	d.redisDPoP = redis.NewProofReplay(d.redis, d.cfg.RedisKeyPrefix, d.store, d.log)
	return d.redisDPoP
}

// Close releases the store and Redis client.
func (d *deps) Close() {
	if d.redis != nil {
		_ = d.redis.Close()
	}
	if d.store != nil {
		_ = d.store.Close()
	}
}
