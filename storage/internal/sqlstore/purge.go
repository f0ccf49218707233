package sqlstore

import (
	"context"
	"time"

	"github.com/authd/authd/storage"
)

// Exec runs a statement and returns how many rows it changed.
type Exec func(ctx context.Context, query string, args ...any) (int64, error)

// Purge deletes with exec the refresh tokens, authorization codes, browser
// sessions, denylist entries, retired signing keys and DPoP proof ids that
// expired before now, the upstream sign-ins in progress expired at now, and
// the history r lets go, and returns how many rows went. The caller gives it a
// transaction: on an error, some statements may have run.
func (d Dialect) Purge(ctx context.Context, exec Exec, now time.Time, r storage.Retention) (int64, error) {
	var n int64
	for _, st := range []struct {
		query  string
		before time.Time
	}{
		{`DELETE FROM refresh_tokens WHERE expires_at < ?`, now},
		// Used codes too, but only once expired: until then a second use
		// must find the row to be told apart as reuse.
		{`DELETE FROM authorization_codes WHERE expires_at < ?`, now},
		// The absolute end; the idle end is configuration, checked by the reader.
		{`DELETE FROM browser_sessions WHERE expires_at < ?`, now},
		{`DELETE FROM revocations WHERE expires_at < ?`, now},
		{`DELETE FROM signing_keys WHERE state = 'retired' AND expires_at < ?`, now},
		{`DELETE FROM dpop_proofs WHERE expires_at < ?`, now},
		// Expired at now: the bound past which a take refuses them (Taken).
		{`DELETE FROM upstream_logins WHERE expires_at <= ?`, now},
		{`DELETE FROM outbox WHERE sent_at < ?`, storage.PurgeBefore(now, r.SentOutbox)},
		{`DELETE FROM outbox WHERE sent_at IS NULL AND created_at < ?`, storage.PurgeBefore(now, r.UnsentOutbox)},
		{`DELETE FROM audit WHERE time < ?`, storage.PurgeBefore(now, r.Audit)},
	} {
		k, err := exec(ctx, d.Bind(st.query), d.Time(st.before))
		if err != nil {
			return 0, err
		}
		n += k
	}
	return n, nil
}
