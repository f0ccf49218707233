package sqlite

import (
	"context"
	"database/sql"

	"github.com/authd/authd/storage"
	"github.com/authd/authd/storage/internal/sqlstore"
)

const keyColumns = `id, alg, state, private_key, public_key, created_at, activated_at, retired_at, expires_at`

const (
	qListKeys  = `SELECT ` + keyColumns + ` FROM signing_keys ORDER BY created_at, id`
	qUpsertKey = `INSERT INTO signing_keys (` + keyColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET alg = excluded.alg, state = excluded.state, private_key = excluded.private_key,
public_key = excluded.public_key, created_at = excluded.created_at, activated_at = excluded.activated_at,
retired_at = excluded.retired_at, expires_at = excluded.expires_at`
)

func scanKey(row scanner) (storage.SigningKey, error) {
	var (
		k                           storage.SigningKey
		created                     int64
		activated, retired, expires sql.NullInt64
	)
	if err := row.Scan(&k.ID, &k.Alg, &k.State, &k.PrivateKey, &k.PublicKey, &created,
		&activated, &retired, &expires); err != nil {
		return storage.SigningKey{}, err
	}
	k.CreatedAt = fromNanos(created)
	k.ActivatedAt, k.RetiredAt, k.ExpiresAt = fromNullNanos(activated), fromNullNanos(retired), fromNullNanos(expires)
	return k, nil
}

// ListKeys returns every signing key, oldest first.
func (s *Store) ListKeys(ctx context.Context) ([]storage.SigningKey, error) {
	rows, err := s.q(ctx).QueryContext(ctx, qListKeys)
	if err != nil {
		return nil, wrap("list keys", err)
	}
	keys, err := collect(rows, scanKey)
	return keys, wrap("list keys", err)
}

// UpdateKeys replaces the key set with fn's result in one transaction. The
// transaction begins IMMEDIATE, so it holds the database's write lock from its
// first statement: concurrent callers, in any process, run one after the other.
func (s *Store) UpdateKeys(ctx context.Context, fn func(old []storage.SigningKey) ([]storage.SigningKey, error)) error {
	err := s.withTx(ctx, func(q querier) error {
		rows, err := q.QueryContext(ctx, qListKeys)
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
		keep, ordered, err := storage.OrderKeyWrites(keys, s.now())
		if err != nil {
			return err
		}
		ids := make([]any, len(keep))
		for i, id := range keep {
			ids[i] = id
		}
		del := `DELETE FROM signing_keys`
		if len(ids) > 0 {
			del += ` WHERE id NOT IN (` + placeholders(len(ids)) + `)`
		}
		if _, err := q.ExecContext(ctx, del, ids...); err != nil {
			return err
		}
		for _, k := range ordered {
			if _, err := q.ExecContext(ctx, qUpsertKey, k.ID, k.Alg, string(k.State), sqlstore.NotNil(k.PrivateKey),
				sqlstore.NotNil(k.PublicKey), nanos(k.CreatedAt), nullNanos(k.ActivatedAt), nullNanos(k.RetiredAt),
				nullNanos(k.ExpiresAt)); err != nil {
				return err
			}
		}
		return nil
	})
	return wrap("update keys", err)
}
