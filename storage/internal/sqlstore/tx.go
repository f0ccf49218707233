package sqlstore

import "context"

// txKey is the context key of a transaction of type T.
type txKey[T any] struct{}

type txState[T any] struct {
	store any // a transaction only serves the store that began it
	tx    T
}

// WithTx returns a context carrying tx, a transaction that store began.
func WithTx[T any](ctx context.Context, store any, tx T) context.Context {
	return context.WithValue(ctx, txKey[T]{}, txState[T]{store: store, tx: tx})
}

// TxFrom returns the transaction of store that ctx carries, if any: one
// that another store began is not store's.
func TxFrom[T any](ctx context.Context, store any) (T, bool) {
	st, ok := ctx.Value(txKey[T]{}).(txState[T])
	if !ok || st.store != store {
		var zero T
		return zero, false
	}
	return st.tx, true
}
