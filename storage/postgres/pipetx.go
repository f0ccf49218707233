package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// pipeTx is a transaction that sends its statements in as few round trips
// as it can. A write whose result nobody reads (an audit row, an outbox
// event, a denylist entry: deferExec) is queued, not sent; it goes out with
// the next statement that needs an answer, or with COMMIT. BEGIN goes with
// the first statement. A transaction made only of queued writes is sent at
// commit as one pipeline without BEGIN: PostgreSQL runs the statements
// before a Sync as one implicit transaction, all or nothing. So revoking a
// token (two denylist entries, the family's refresh tokens, the audit row,
// the outbox event) is one round trip, not seven.
//
// A queued write's error (there are none but a broken connection or a
// server failing) is the error of the statement that sends it, or of
// Commit; nothing is acknowledged before Commit returns nil.
//
// Not safe for concurrent use, like pgx.Tx.
type pipeTx struct {
	pool   *pgxpool.Pool
	begin  []string      // the statements that open an explicit transaction
	conn   *pgxpool.Conn // acquired with the first statement sent
	begun  bool          // begin was sent
	queued []queuedExec
	after  []func() // run once the transaction has committed
	err    error    // the transaction failed; it can only be rolled back
	done   bool
}

type queuedExec struct {
	sql  string
	args []any
}

var errTxDone = errors.New("postgres: transaction already committed or rolled back")

func newPipeTx(pool *pgxpool.Pool, begin ...string) *pipeTx {
	if len(begin) == 0 {
		begin = []string{"BEGIN"}
	}
	return &pipeTx{pool: pool, begin: begin}
}

// deferExec queues a write whose result is not needed.
func (t *pipeTx) deferExec(sql string, args ...any) {
	t.queued = append(t.queued, queuedExec{sql, args})
}

// onCommit registers fn to run after the transaction commits (not after a
// rollback or a failed commit).
func (t *pipeTx) onCommit(fn func()) { t.after = append(t.after, fn) }

func (t *pipeTx) committed() {
	after := t.after
	t.finish()
	for _, fn := range after {
		fn()
	}
}

// batch returns BEGIN (the first time) and the queued writes, and empties
// the queue.
func (t *pipeTx) batch() *pgx.Batch {
	b := &pgx.Batch{}
	if !t.begun {
		for _, s := range t.begin {
			b.Queue(s)
		}
		t.begun = true
	}
	for _, q := range t.queued {
		b.Queue(q.sql, q.args...)
	}
	t.queued = t.queued[:0]
	return b
}

// send sends b on the transaction's connection and reads every answer.
func (t *pipeTx) send(ctx context.Context, b *pgx.Batch) error {
	if t.done {
		return errTxDone
	}
	if t.err != nil {
		return t.err
	}
	if t.conn == nil {
		c, err := t.pool.Acquire(ctx)
		if err != nil {
			t.err = err
			return err
		}
		t.conn = c
	}
	if err := t.conn.SendBatch(ctx, b).Close(); err != nil {
		t.err = err
		return err
	}
	return nil
}

// Exec runs sql after the queued writes, in the same round trip.
func (t *pipeTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	var tag pgconn.CommandTag
	b := t.batch()
	b.Queue(sql, args...).Exec(func(ct pgconn.CommandTag) error { tag = ct; return nil })
	return tag, t.send(ctx, b)
}

// QueryRow runs sql after the queued writes, in the same round trip, when
// the row is scanned.
func (t *pipeTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return &pipeRow{t: t, ctx: ctx, sql: sql, args: args}
}

type pipeRow struct {
	t    *pipeTx
	ctx  context.Context
	sql  string
	args []any
}

func (r *pipeRow) Scan(dest ...any) error {
	var scanErr error
	b := r.t.batch()
	// The callback's error would end the batch as a failure; pgx.ErrNoRows
	// is an answer, not a failed transaction.
	b.Queue(r.sql, r.args...).QueryRow(func(row pgx.Row) error { scanErr = row.Scan(dest...); return nil })
	if err := r.t.send(r.ctx, b); err != nil {
		return err
	}
	return scanErr
}

// Query sends the queued writes, then runs sql (two round trips when
// writes were queued: the rows are read as they come).
func (t *pipeTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if err := t.send(ctx, t.batch()); err != nil {
		return nil, err
	}
	rows, err := t.conn.Query(ctx, sql, args...)
	if err != nil {
		t.err = err
	}
	return rows, err
}

// Commit sends the queued writes and COMMIT in one round trip; without an
// explicit transaction, the queued writes alone, as one implicit one.
func (t *pipeTx) Commit(ctx context.Context) error {
	if t.done {
		return errTxDone
	}
	if t.err != nil {
		t.Rollback(ctx)
		return t.err
	}
	if !t.begun {
		if len(t.queued) == 0 {
			t.committed()
			return nil
		}
		b := &pgx.Batch{}
		for _, q := range t.queued {
			b.Queue(q.sql, q.args...)
		}
		// Nothing was sent yet, so no connection is held: the pool lends one.
		if err := t.pool.SendBatch(ctx, b).Close(); err != nil {
			t.finish()
			return err
		}
		t.committed()
		return nil
	}
	b := t.batch()
	b.Queue("COMMIT")
	if err := t.send(ctx, b); err != nil {
		// A failed statement aborts the transaction; PostgreSQL skipped
		// COMMIT and waits for the ROLLBACK.
		t.Rollback(ctx)
		return err
	}
	t.committed()
	return nil
}

// Rollback ends the transaction without committing; after Commit it does
// nothing.
func (t *pipeTx) Rollback(ctx context.Context) {
	if t.done {
		return
	}
	defer t.finish()
	if t.begun && t.conn != nil && !t.conn.Conn().PgConn().IsClosed() {
		// A connection left in a transaction is closed by the pool on
		// Release; ROLLBACK keeps it.
		_, _ = t.conn.Exec(context.WithoutCancel(ctx), "ROLLBACK")
	}
}

func (t *pipeTx) finish() {
	t.done = true
	t.queued, t.after = nil, nil
	if t.conn != nil {
		t.conn.Release()
		t.conn = nil
	}
}
