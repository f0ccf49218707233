package events

import (
	"context"
	"sync"

	"github.com/authd/authd/storage"
)

// Observer is told of the security events a Recorder records, to count them
// (server.Metrics). It is called once per event after the event's transaction
// committed (see CommitStore), must return quickly and must not modify e.Data.
type Observer interface {
	ObserveEvent(e Event)
}

// RecorderOption configures NewRecorder.
type RecorderOption func(*Recorder)

// WithObserver has the Recorder tell o of every event it records. An event
// recorded in a transaction begun through a CommitStore is observed once
// that transaction has committed, and never if it rolls back or its commit
// fails; an event recorded outside such a transaction (in a transaction
// begun on the bare store, or in none) is observed when Record returns nil,
// so a rolled-back event may be counted then.
func WithObserver(o Observer) RecorderOption {
	return func(r *Recorder) { r.obs = o }
}

// observe hands e to the observer: after the commit of ctx's transaction when
// it was begun through a CommitStore, else now.
func (r *Recorder) observe(ctx context.Context, e Event) {
	if r.obs == nil {
		return
	}
	if p := pendingFrom(ctx); p != nil && p.hold(r.obs, e) {
		return
	}
	r.obs.ObserveEvent(e)
}

// CommitStore is a storage.Store whose transactions remember the events a
// Recorder observes in them and hand them to its Observer once the
// transaction has committed: a rolled-back event is never counted. Everything
// else passes through. Begin every transaction that records events through
// it (wrap it in other stores, such as the client cache, not the other way
// round) for the counts to wait for commits.
type CommitStore struct {
	storage.Store
}

// NewCommitStore wraps st.
func NewCommitStore(st storage.Store) *CommitStore { return &CommitStore{Store: st} }

// Unwrap returns the wrapped store.
func (s *CommitStore) Unwrap() storage.Store { return s.Store }

type pendingKey struct{}

// pending holds the events observed in one transaction until it ends.
type pending struct {
	mu    sync.Mutex
	ended bool
	evs   []observed
}

type observed struct {
	obs Observer
	e   Event
}

// hold queues e for the commit; false once the transaction has ended (the
// caller observes at once).
func (p *pending) hold(o Observer, e Event) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ended {
		return false
	}
	p.evs = append(p.evs, observed{o, e})
	return true
}

// end closes the transaction; when committed, the queued events are observed.
func (p *pending) end(committed bool) {
	p.mu.Lock()
	evs := p.evs
	p.ended, p.evs = true, nil
	p.mu.Unlock()
	if !committed {
		return
	}
	for _, x := range evs {
		x.obs.ObserveEvent(x.e)
	}
}

func pendingFrom(ctx context.Context) *pending {
	p, _ := ctx.Value(pendingKey{}).(*pending)
	return p
}

// InTx runs fn in a transaction of the wrapped store; the events recorded in
// it are observed after it commits. Inside a transaction begun through s it
// just runs fn in that transaction.
func (s *CommitStore) InTx(ctx context.Context, fn func(ctx context.Context) error) error {
	if pendingFrom(ctx) != nil {
		return s.Store.InTx(ctx, fn)
	}
	p := &pending{}
	err := s.Store.InTx(context.WithValue(ctx, pendingKey{}, p), fn)
	p.end(err == nil)
	return err
}
