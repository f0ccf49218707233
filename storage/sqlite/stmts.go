package sqlite

import (
	"context"
	"database/sql"
	"sync"
	"sync/atomic"
)

// maxPrepared bounds the statements kept prepared: the store's queries are
// constants, plus a few assembled from a bounded set of filters.
const maxPrepared = 128

// stmtCache keeps one prepared statement per query text. Without it the
// driver parses and plans the SQL at every call, which is most of the cost
// of a point lookup such as the denylist check every introspection makes.
type stmtCache struct {
	m sync.Map // query -> *sql.Stmt
	n atomic.Int32
}

// prepared returns the statement of query, preparing it on first use; nil
// when it cannot (too many statements, or the query does not prepare, in
// which case running it unprepared reports the error).
func (c *stmtCache) prepared(ctx context.Context, db *sql.DB, query string) *sql.Stmt {
	if st, ok := c.m.Load(query); ok {
		return st.(*sql.Stmt)
	}
	if c.n.Load() >= maxPrepared {
		return nil
	}
	st, err := db.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	if prev, loaded := c.m.LoadOrStore(query, st); loaded {
		st.Close()
		return prev.(*sql.Stmt)
	}
	c.n.Add(1)
	return st
}

func (c *stmtCache) close() {
	c.m.Range(func(k, v any) bool {
		v.(*sql.Stmt).Close()
		c.m.Delete(k)
		return true
	})
}

// stmtQuerier is a querier that runs queries as the cache's prepared
// statements, in the transaction tx when it is set.
type stmtQuerier struct {
	s  *Store
	tx *sql.Tx
}

func (q stmtQuerier) stmt(ctx context.Context, query string) *sql.Stmt {
	if q.tx == nil {
		return q.s.stmts.prepared(ctx, q.s.db, query)
	}
	// Inside a transaction only a statement prepared already is used (on
	// the transaction's connection): preparing one would take a second
	// connection from the pool, which other transactions, waiting for the
	// write lock this one holds, may all be holding.
	st, ok := q.s.stmts.m.Load(query)
	if !ok {
		return nil
	}
	return q.tx.StmtContext(ctx, st.(*sql.Stmt))
}

func (q stmtQuerier) raw() querier {
	if q.tx != nil {
		return q.tx
	}
	return q.s.db
}

func (q stmtQuerier) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := q.stmt(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return q.raw().ExecContext(ctx, query, args...)
}

func (q stmtQuerier) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := q.stmt(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return q.raw().QueryContext(ctx, query, args...)
}

func (q stmtQuerier) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := q.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return q.raw().QueryRowContext(ctx, query, args...)
}
