package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authd/authd/storage"
	"github.com/authd/authd/storage/internal/sqlstore"
)

// keysLockID is the transaction advisory lock UpdateKeys holds, so that one
// replica at a time rotates keys.
const keysLockID int64 = 0x61757468645f6b // "authd_k"

const keyColumns = `id, alg, state, private_key, public_key, created_at, activated_at, retired_at, expires_at`

const (
	qListKeys  = `SELECT ` + keyColumns + ` FROM signing_keys ORDER BY created_at, id`
	qUpsertKey = `INSERT INTO signing_keys (` + keyColumns + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (id) DO UPDATE SET alg = EXCLUDED.alg, state = EXCLUDED.state, private_key = EXCLUDED.private_key,
public_key = EXCLUDED.public_key, created_at = EXCLUDED.created_at, activated_at = EXCLUDED.activated_at,
retired_at = EXCLUDED.retired_at, expires_at = EXCLUDED.expires_at`
	qDeleteOtherKeys = `DELETE FROM signing_keys WHERE NOT (id = ANY($1))`
)

func scanKey(row pgx.Row) (storage.SigningKey, error) {
	var (
		k                           storage.SigningKey
		activated, retired, expires *time.Time
	)
	if err := row.Scan(&k.ID, &k.Alg, &k.State, &k.PrivateKey, &k.PublicKey, &k.CreatedAt,
		&activated, &retired, &expires); err != nil {
		return storage.SigningKey{}, err
	}
	k.CreatedAt = k.CreatedAt.UTC()
	k.ActivatedAt, k.RetiredAt, k.ExpiresAt = utc(activated), utc(retired), utc(expires)
	return k, nil
}

// ListKeys returns every signing key, oldest first.
func (s *Store) ListKeys(ctx context.Context) ([]storage.SigningKey, error) {
	rows, err := s.q(ctx).Query(ctx, qListKeys)
	if err != nil {
		return nil, wrap("list keys", err)
	}
	keys, err := collect(rows, scanKey)
	return keys, wrap("list keys", err)
}

// UpdateKeys replaces the key set with fn's result, in one transaction that
// holds an advisory lock: concurrent callers, on any replica, run one after
// the other and each sees the previous one's result.
func (s *Store) UpdateKeys(ctx context.Context, fn func(old []storage.SigningKey) ([]storage.SigningKey, error)) error {
	err := s.withTx(ctx, func(q *pipeTx) error {
		if _, err := q.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, keysLockID); err != nil {
			return err
		}
		rows, err := q.Query(ctx, qListKeys)
		if err != nil {
			return err
		}
		old, err := collect(rows, scanKey)
		if err != nil {
			return err
		}
		keys, err := fn(old)
		if err != nil {
			return err
		}
		ids, ordered, err := storage.OrderKeyWrites(keys, s.now())
		if err != nil {
			return err
		}
		if _, err := q.Exec(ctx, qDeleteOtherKeys, ids); err != nil {
			return err
		}
		for _, k := range ordered {
			if _, err := q.Exec(ctx, qUpsertKey, k.ID, k.Alg, string(k.State), sqlstore.NotNil(k.PrivateKey), sqlstore.NotNil(k.PublicKey),
				k.CreatedAt.UTC(), nullTime(k.ActivatedAt), nullTime(k.RetiredAt), nullTime(k.ExpiresAt)); err != nil {
				return err
			}
		}
		return nil
	})
	return wrap("update keys", err)
}
