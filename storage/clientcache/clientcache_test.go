package clientcache_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/authd/authd/storage"
	"github.com/authd/authd/storage/clientcache"
	"github.com/authd/authd/storage/sqlite"
)

func openSQLite(t *testing.T) storage.Store {
	t.Helper()
	st, err := sqlite.New(context.Background(), filepath.Join(t.TempDir(), "authd.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// The cache answers from memory, drops a client changed through it at once,
// remembers unknown ids for the TTL too, and reads the store inside a transaction.
func TestClientCache(t *testing.T) {
	ctx := t.Context()
	base := openSQLite(t)
	if err := base.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_700_000_000, 0)
	cc := clientcache.New(base, 5*time.Second, func() time.Time { return now })
	if err := cc.CreateClient(ctx, storage.Client{ID: "c1", Name: "one", GrantTypes: []string{"client_credentials"}}); err != nil {
		t.Fatal(err)
	}
	get := func(ctx context.Context, st storage.Store, id string) storage.Client {
		t.Helper()
		c, err := st.GetClient(ctx, id)
		if err != nil {
			t.Fatalf("GetClient(%s): %v", id, err)
		}
		return c
	}
	if c := get(ctx, cc, "c1"); c.Name != "one" {
		t.Fatalf("GetClient = %+v", c)
	}
	// Another process renames it: the cache keeps the old record until the TTL.
	if _, err := base.UpdateClient(ctx, "c1", func(c *storage.Client) error { c.Name = "two"; return nil }); err != nil {
		t.Fatal(err)
	}
	if c := get(ctx, cc, "c1"); c.Name != "one" {
		t.Errorf("within the TTL: name %q; want the cached one", c.Name)
	}
	if err := cc.InTx(ctx, func(tctx context.Context) error {
		if c := get(tctx, cc, "c1"); c.Name != "two" {
			t.Errorf("inside a transaction: name %q; want the store's", c.Name)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	now = now.Add(5 * time.Second)
	if c := get(ctx, cc, "c1"); c.Name != "two" {
		t.Errorf("after the TTL: name %q; want two", c.Name)
	}
	// Changes through the cache apply at once.
	if _, err := cc.UpdateClient(ctx, "c1", func(c *storage.Client) error { c.Name = "three"; return nil }); err != nil {
		t.Fatal(err)
	}
	if c := get(ctx, cc, "c1"); c.Name != "three" {
		t.Errorf("after UpdateClient: name %q; want three", c.Name)
	}
	// A change inside a transaction is dropped again when it ends, whatever
	// was read outside it meanwhile.
	err := cc.InTx(ctx, func(tctx context.Context) error {
		if _, err := cc.UpdateClient(tctx, "c1", func(c *storage.Client) error { c.Name = "four"; return nil }); err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if c := get(ctx, cc, "c1"); c.Name != "four" {
		t.Errorf("after an update in a transaction: name %q; want four", c.Name)
	}
	if err := cc.DeleteClient(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if _, err := cc.GetClient(ctx, "c1"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("after DeleteClient: %v; want ErrNotFound", err)
	}
	// Unknown ids are cached as unknown (so that their answer costs what a
	// known client's costs): a client created by another process is seen
	// within the TTL.
	if _, err := cc.GetClient(ctx, "c2"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("GetClient(unknown) = %v", err)
	}
	if err := base.CreateClient(ctx, storage.Client{ID: "c2", Name: "new"}); err != nil {
		t.Fatal(err)
	}
	if _, err := cc.GetClient(ctx, "c2"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("client created elsewhere, within the TTL: %v; want the cached ErrNotFound", err)
	}
	now = now.Add(5 * time.Second)
	if c := get(ctx, cc, "c2"); c.Name != "new" {
		t.Errorf("client created elsewhere, after the TTL: %+v", c)
	}
}
