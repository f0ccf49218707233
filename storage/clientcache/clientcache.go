// Package clientcache keeps the store's client records in memory for a few
// seconds: every token, introspection and revocation request authenticates
// a client, and a database round trip for a record that almost never
// changes is most of the cost of a client_credentials grant.
package clientcache

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/authd/authd/storage"
)

// DefaultTTL is how long a replica may keep using a client record
// that another process (another replica, the CLI) changed or deleted.
const DefaultTTL = 5 * time.Second

// maxEntries bounds the cached clients, and separately the remembered
// unknown ids; past it that part of the cache starts over, so made-up ids
// never evict known clients.
const maxEntries = 10_000

// Store is a storage.Store whose GetClient answers from memory (a cache of
// client records); everything else passes through.
//
// Changes made through the cache (CreateClient, UpdateClient, DeleteClient,
// e.g. by the admin API of this process) drop the entry at once. Changes made
// by another process are seen within the TTL: a deleted client, or one whose
// secret was replaced, may still authenticate on another replica for that
// long. An unknown id is remembered as unknown for the TTL too (in a separate,
// equally bounded map), so that asking about it costs what asking about a
// known client costs and the answer's timing does not tell whether it
// exists; a client created by another process becomes usable on this
// replica within the TTL. The cached record is shared: callers must not
// modify its slices.
type Store struct {
	storage.Store
	ttl time.Duration
	now func() time.Time

	mu      sync.RWMutex
	clients map[string]cachedClient
	unknown map[string]time.Time // id -> when to ask the store again
}

// errUnknownClient answers an id remembered as unknown.
var errUnknownClient = fmt.Errorf("clientcache: client %w (cached)", storage.ErrNotFound)

type cachedClient struct {
	c       storage.Client
	expires time.Time
}

// New caches st's clients for ttl (DefaultTTL when zero; a negative ttl
// turns caching off). now is the clock, time.Now when nil.
func New(st storage.Store, ttl time.Duration, now func() time.Time) *Store {
	if ttl == 0 {
		ttl = DefaultTTL
	}
	if now == nil {
		now = time.Now
	}
	return &Store{Store: st, ttl: ttl, now: now, clients: map[string]cachedClient{}, unknown: map[string]time.Time{}}
}

// Unwrap returns the store the cache is in front of.
func (cc *Store) Unwrap() storage.Store { return cc.Store }

// GetClient returns the client, or storage.ErrNotFound, from memory when the
// store was asked less than the TTL ago, else from the store. Inside a
// transaction it always reads the store.
func (cc *Store) GetClient(ctx context.Context, id string) (storage.Client, error) {
	if cc.ttl < 0 || txMarkFrom(ctx) != nil {
		return cc.Store.GetClient(ctx, id)
	}
	now := cc.now()
	cc.mu.RLock()
	e, ok := cc.clients[id]
	until, gone := cc.unknown[id]
	cc.mu.RUnlock()
	switch {
	case ok && now.Before(e.expires):
		return e.c, nil
	case gone && now.Before(until):
		return storage.Client{}, errUnknownClient
	}
	c, err := cc.Store.GetClient(ctx, id)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		if ok || gone {
			cc.forget(id)
		}
		return c, err
	}
	cc.mu.Lock()
	if err != nil {
		delete(cc.clients, id)
		if len(cc.unknown) >= maxEntries {
			clear(cc.unknown)
		}
		cc.unknown[id] = now.Add(cc.ttl)
	} else {
		delete(cc.unknown, id)
		if len(cc.clients) >= maxEntries {
			clear(cc.clients)
		}
		cc.clients[id] = cachedClient{c: c, expires: now.Add(cc.ttl)}
	}
	cc.mu.Unlock()
	return c, err
}

func (cc *Store) forget(ids ...string) {
	cc.mu.Lock()
	for _, id := range ids {
		delete(cc.clients, id)
		delete(cc.unknown, id)
	}
	cc.mu.Unlock()
}

// changed drops id now and, inside a transaction, once more when it ends: a
// request outside the transaction may have cached the old record meanwhile.
func (cc *Store) changed(ctx context.Context, id string) {
	cc.forget(id)
	if m := txMarkFrom(ctx); m != nil {
		m.mu.Lock()
		m.ids = append(m.ids, id)
		m.mu.Unlock()
	}
}

// txMark rides in the context of a transaction begun through the cache.
type txMark struct {
	mu  sync.Mutex
	ids []string // clients changed in the transaction
}

type txMarkKey struct{}

func txMarkFrom(ctx context.Context) *txMark {
	m, _ := ctx.Value(txMarkKey{}).(*txMark)
	return m
}

// ended forgets the clients the transaction in ctx changed.
func (cc *Store) ended(ctx context.Context) {
	if m := txMarkFrom(ctx); m != nil {
		m.mu.Lock()
		ids := m.ids
		m.mu.Unlock()
		cc.forget(ids...)
	}
}

// InTx runs fn in the store's transaction, marked so that GetClient bypasses
// the cache inside it.
func (cc *Store) InTx(ctx context.Context, fn func(ctx context.Context) error) error {
	if txMarkFrom(ctx) != nil {
		return cc.Store.InTx(ctx, fn)
	}
	m := &txMark{}
	err := cc.Store.InTx(ctx, func(tctx context.Context) error {
		return fn(context.WithValue(tctx, txMarkKey{}, m))
	})
	cc.ended(context.WithValue(ctx, txMarkKey{}, m))
	return err
}

// CreateClient stores c and drops any cached record of its id.
func (cc *Store) CreateClient(ctx context.Context, c storage.Client) error {
	defer cc.changed(ctx, c.ID)
	return cc.Store.CreateClient(ctx, c)
}

// UpdateClient updates the client and drops its cached record.
func (cc *Store) UpdateClient(ctx context.Context, id string, fn func(*storage.Client) error) (storage.Client, error) {
	defer cc.changed(ctx, id)
	return cc.Store.UpdateClient(ctx, id, fn)
}

// DeleteClient deletes the client and drops its cached record.
func (cc *Store) DeleteClient(ctx context.Context, id string) error {
	defer cc.changed(ctx, id)
	return cc.Store.DeleteClient(ctx, id)
}
