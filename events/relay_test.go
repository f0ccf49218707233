package events_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authd/authd/events"
	"github.com/authd/authd/storage"
	"github.com/authd/authd/storage/sqlite"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newSQLite(t *testing.T) storage.Store {
	t.Helper()
	st, err := sqlite.New(t.Context(), filepath.Join(t.TempDir(), "authd.db"))
	if err != nil {
		t.Fatalf("sqlite.New: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return st
}

// record writes one event per id through the Recorder, in one transaction as
// the callers of Recorder do, a second apart from start so the outbox's order
// is the ids' order. Each event's type cycles through types.
func record(t *testing.T, st storage.Store, start time.Time, types []events.Type, ids ...string) {
	t.Helper()
	rec := events.NewRecorder(st, nil)
	err := st.InTx(t.Context(), func(ctx context.Context) error {
		for i, id := range ids {
			err := rec.Record(ctx, events.Event{
				ID:       id,
				Type:     types[i%len(types)],
				Time:     start.Add(time.Duration(i) * time.Second),
				Subject:  "user-" + id,
				ClientID: "web",
				IP:       "192.0.2.1",
				Data:     map[string]any{"note": "payload-of-" + id},
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("record %v: %v", ids, err)
	}
}

func pending(t *testing.T, st storage.Outbox) []string {
	t.Helper()
	evs, err := st.PendingOutbox(t.Context(), 1000)
	if err != nil {
		t.Fatalf("PendingOutbox: %v", err)
	}
	ids := make([]string, len(evs))
	for i, e := range evs {
		ids[i] = e.ID
	}
	return ids
}

// fakePublisher acknowledges what it is told to, and remembers every batch.
type fakePublisher struct {
	mu      sync.Mutex
	err     error           // returned for a whole batch when set
	reject  map[string]bool // ids not acknowledged (a partial failure)
	extra   []string        // ids a partial failure claims besides the batch's
	batches [][]string
	sent    chan string // receives every acknowledged id when non-nil
}

var errDown = errors.New("fake: broker down")

func (f *fakePublisher) Publish(ctx context.Context, evs []storage.OutboxEvent) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids, acked []string
	for _, e := range evs {
		ids = append(ids, e.ID)
		if !f.reject[e.ID] {
			acked = append(acked, e.ID)
		}
	}
	f.batches = append(f.batches, ids)
	if f.err != nil {
		return f.err
	}
	for _, id := range acked {
		if f.sent != nil {
			f.sent <- id
		}
	}
	if len(acked) < len(ids) {
		return &partialError{acked: append(acked, f.extra...)}
	}
	return nil
}

func (f *fakePublisher) set(err error, reject ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
	f.reject = map[string]bool{}
	for _, id := range reject {
		f.reject[id] = true
	}
}

func (f *fakePublisher) calls() [][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.batches)
}

type partialError struct{ acked []string }

func (e *partialError) Error() string          { return fmt.Sprintf("fake: only %v acknowledged", e.acked) }
func (e *partialError) Acknowledged() []string { return e.acked }

// markSpy records MarkOutboxSent calls and can fail them.
type markSpy struct {
	storage.Outbox
	mu    sync.Mutex
	fail  error
	marks [][]string
	ats   []time.Time
}

func (s *markSpy) MarkOutboxSent(ctx context.Context, ids []string, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	s.marks = append(s.marks, slices.Clone(ids))
	s.ats = append(s.ats, at)
	return s.Outbox.MarkOutboxSent(ctx, ids, at)
}

var loginTypes = []events.Type{events.LoginSuccess, events.LoginFailed}

func TestRelayFlush(t *testing.T) {
	t.Parallel()
	st := newSQLite(t)
	spy := &markSpy{Outbox: st}
	pub := &fakePublisher{}
	now := t0.Add(time.Hour)
	r := events.NewRelay(spy, pub, events.RelayOptions{Batch: 2, Now: func() time.Time { return now }})
	ids := []string{"e1", "e2", "e3", "e4", "e5"}
	record(t, st, t0, loginTypes, ids...)

	n, err := r.Flush(t.Context())
	if n != len(ids) || err != nil {
		t.Fatalf("Flush = %d, %v; want %d, nil", n, err, len(ids))
	}
	want := [][]string{{"e1", "e2"}, {"e3", "e4"}, {"e5"}}
	if got := pub.calls(); !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("published batches %v; want %v", got, want)
	}
	if !slices.EqualFunc(spy.marks, want, slices.Equal) {
		t.Errorf("marked batches %v; want %v", spy.marks, want)
	}
	for _, at := range spy.ats {
		if !at.Equal(now) {
			t.Errorf("marked sent at %v; want %v (RelayOptions.Now)", at, now)
		}
	}
	if p := pending(t, st); len(p) != 0 {
		t.Errorf("pending after Flush: %v; want none", p)
	}

	n, err = r.Flush(t.Context())
	if n != 0 || err != nil {
		t.Errorf("second Flush = %d, %v; want 0, nil", n, err)
	}
	if got := len(pub.calls()); got != len(want) {
		t.Errorf("Publish called %d times in all; want %d (nothing left to publish)", got, len(want))
	}
}

// With the broker down nothing is marked sent; everything goes out once it is back.
func TestRelayPublisherDown(t *testing.T) {
	t.Parallel()
	st := newSQLite(t)
	pub := &fakePublisher{}
	pub.set(errDown)
	r := events.NewRelay(st, pub, events.RelayOptions{})
	ids := []string{"e1", "e2", "e3"}
	record(t, st, t0, loginTypes, ids...)

	n, err := r.Flush(t.Context())
	if n != 0 || !errors.Is(err, errDown) {
		t.Fatalf("Flush with the broker down = %d, %v; want 0, %v", n, err, errDown)
	}
	if !strings.HasPrefix(err.Error(), "events: ") {
		t.Errorf("error %q lacks the package prefix", err)
	}
	if p := pending(t, st); !slices.Equal(p, ids) {
		t.Fatalf("pending after a failed Flush: %v; want %v", p, ids)
	}

	pub.set(nil)
	n, err = r.Flush(t.Context())
	if n != len(ids) || err != nil {
		t.Fatalf("Flush after recovery = %d, %v; want %d, nil", n, err, len(ids))
	}
	if p := pending(t, st); len(p) != 0 {
		t.Errorf("pending after recovery: %v; want none", p)
	}
}

// Only what the publisher acknowledged is marked sent, and only ids of the batch.
func TestRelayPartialFailure(t *testing.T) {
	t.Parallel()
	st := newSQLite(t)
	spy := &markSpy{Outbox: st}
	// The publisher also claims an event outside the batch, and one twice.
	pub := &fakePublisher{extra: []string{"ghost", "e1"}}
	pub.set(nil, "e2")
	r := events.NewRelay(spy, pub, events.RelayOptions{Batch: 3})
	record(t, st, t0, loginTypes, "e1", "e2", "e3")
	record(t, st, t0.Add(time.Hour), loginTypes, "ghost") // pending, but after the first batch

	n, err := r.Flush(t.Context())
	var pe events.PartialPublishError
	if n != 2 || !errors.As(err, &pe) {
		t.Fatalf("Flush = %d, %v; want 2 and a PartialPublishError", n, err)
	}
	if want := [][]string{{"e1", "e3"}}; !slices.EqualFunc(spy.marks, want, slices.Equal) {
		t.Errorf("marked %v; want %v", spy.marks, want)
	}
	if p, want := pending(t, st), []string{"e2", "ghost"}; !slices.Equal(p, want) {
		t.Errorf("pending %v; want %v", p, want)
	}

	pub.set(nil)
	if n, err := r.Flush(t.Context()); n != 2 || err != nil {
		t.Errorf("Flush after recovery = %d, %v; want 2, nil", n, err)
	}
}

// A mark that fails after a publish leaves the events pending: they are
// published again (at least once), never lost.
func TestRelayMarkFails(t *testing.T) {
	t.Parallel()
	st := newSQLite(t)
	errMark := errors.New("fake: database gone")
	spy := &markSpy{Outbox: st, fail: errMark}
	pub := &fakePublisher{}
	r := events.NewRelay(spy, pub, events.RelayOptions{})
	record(t, st, t0, loginTypes, "e1")

	if n, err := r.Flush(t.Context()); n != 0 || !errors.Is(err, errMark) {
		t.Fatalf("Flush = %d, %v; want 0, %v", n, err, errMark)
	}
	if p := pending(t, st); !slices.Equal(p, []string{"e1"}) {
		t.Fatalf("pending %v; want [e1]", p)
	}
	spy.fail = nil
	if n, err := r.Flush(t.Context()); n != 1 || err != nil {
		t.Fatalf("Flush = %d, %v; want 1, nil", n, err)
	}
	if want := [][]string{{"e1"}, {"e1"}}; !slices.EqualFunc(pub.calls(), want, slices.Equal) {
		t.Errorf("published %v; want %v", pub.calls(), want)
	}
}

// cancelPublisher acknowledges the batch, then cancels the caller's context,
// as a shutdown arriving during Publish would.
type cancelPublisher struct{ cancel context.CancelFunc }

func (p cancelPublisher) Publish(context.Context, []storage.OutboxEvent) error {
	p.cancel()
	return nil
}

// Events the broker acknowledged are marked sent even if the context ends
// meanwhile, so a shutdown does not cause a duplicate.
func TestRelayMarksAfterCancel(t *testing.T) {
	t.Parallel()
	st := newSQLite(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	r := events.NewRelay(st, cancelPublisher{cancel}, events.RelayOptions{})
	record(t, st, t0, loginTypes, "e1", "e2")

	if n, err := r.Flush(ctx); n != 2 || err != nil {
		t.Errorf("Flush = %d, %v; want 2, nil", n, err)
	}
	if p := pending(t, st); len(p) != 0 {
		t.Errorf("pending %v; want none", p)
	}
}

// receive waits (at most 10s) for n ids on ch.
func receive(t *testing.T, ch <-chan string, n int) []string {
	t.Helper()
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	var got []string
	for len(got) < n {
		select {
		case id := <-ch:
			got = append(got, id)
		case <-timeout.C:
			t.Fatalf("received %v; want %d ids", got, n)
		}
	}
	return got
}

// syncBuffer is a log destination safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Run keeps relaying, backs off while the broker is down, logs that at warn
// without payloads, recovers, and returns nil once its context is done.
func TestRelayRun(t *testing.T) {
	t.Parallel()
	st := newSQLite(t)
	pub := &fakePublisher{sent: make(chan string, 100)}
	pub.set(errDown)
	var logs syncBuffer
	r := events.NewRelay(st, pub, events.RelayOptions{
		Interval:   time.Millisecond,
		MaxBackoff: 4 * time.Millisecond,
		Logger:     slog.New(slog.NewJSONHandler(&logs, nil)),
	})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()

	record(t, st, t0, loginTypes, "e1", "e2")
	// Let Run fail a few times: each failure is one Publish call.
	deadline := time.After(10 * time.Second)
	for len(pub.calls()) < 3 {
		select {
		case err := <-done:
			t.Fatalf("Run returned %v before its context was done", err)
		case <-deadline:
			t.Fatalf("Run published %d times in 10s; want 3 attempts", len(pub.calls()))
		case <-time.After(time.Millisecond):
		}
	}
	if p := pending(t, st); !slices.Equal(p, []string{"e1", "e2"}) {
		t.Errorf("pending while the broker is down: %v; want [e1 e2]", p)
	}
	pub.set(nil)
	if got := receive(t, pub.sent, 2); !slices.Equal(got, []string{"e1", "e2"}) {
		t.Errorf("published %v; want [e1 e2]", got)
	}
	record(t, st, t0.Add(time.Minute), loginTypes, "e3")
	if got := receive(t, pub.sent, 1); !slices.Equal(got, []string{"e3"}) {
		t.Errorf("published %v; want [e3]", got)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v; want nil after cancel", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
	}
	out := logs.String()
	if !strings.Contains(out, `"level":"WARN","msg":"events: outbox relay failed`) ||
		!strings.Contains(out, errDown.Error()) {
		t.Errorf("logs lack a warning with the cause:\n%s", out)
	}
	if !strings.Contains(out, "outbox relay recovered") {
		t.Errorf("logs lack the recovery:\n%s", out)
	}
	if strings.Contains(out, "payload-of-") {
		t.Errorf("logs show a payload:\n%s", out)
	}
}

func TestRelayFlushCancelled(t *testing.T) {
	t.Parallel()
	st := newSQLite(t)
	pub := &fakePublisher{}
	r := events.NewRelay(st, pub, events.RelayOptions{})
	record(t, st, t0, loginTypes, "e1")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if n, err := r.Flush(ctx); n != 0 || !errors.Is(err, context.Canceled) {
		t.Errorf("Flush(cancelled) = %d, %v; want 0, context.Canceled", n, err)
	}
	if len(pub.calls()) != 0 {
		t.Errorf("Publish called with a cancelled context: %v", pub.calls())
	}
}
