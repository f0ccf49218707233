package events_test

import (
	"testing"
	"time"

	"github.com/authd/authd/events"
)

// TestRelayStats: Stats counts the events published and the failed batches,
// the lag of the last batch (age of its oldest event when marked sent) and
// the last clean pass.
func TestRelayStats(t *testing.T) {
	t.Parallel()
	st := newSQLite(t)
	pub := &fakePublisher{}
	now := t0.Add(time.Hour)
	r := events.NewRelay(st, pub, events.RelayOptions{Now: func() time.Time { return now }})
	if s := r.Stats(); s != (events.RelayStats{}) {
		t.Fatalf("Stats of a new relay = %+v; want zero", s)
	}

	pub.set(errDown)
	record(t, st, t0, loginTypes, "e1", "e2")
	if _, err := r.Flush(t.Context()); err == nil {
		t.Fatal("Flush with the broker down succeeded")
	}
	if s := r.Stats(); s.Published != 0 || s.Failures != 1 || !s.LastSuccess.IsZero() {
		t.Fatalf("after a failure: %+v; want 1 failure, nothing published", s)
	}

	pub.set(nil, "e2") // e2 not acknowledged: a partial failure
	if _, err := r.Flush(t.Context()); err == nil {
		t.Fatal("Flush with a partial failure succeeded")
	}
	pub.set(nil)
	if _, err := r.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	s := r.Stats()
	if s.Published != 2 || s.Failures != 2 {
		t.Errorf("Stats = %+v; want 2 published, 2 failures", s)
	}
	if want := now.Sub(t0.Add(time.Second)); s.Lag != want { // e2 was recorded a second after e1
		t.Errorf("Lag = %v; want %v (e2's age when marked sent)", s.Lag, want)
	}
	if !s.LastSuccess.Equal(now) {
		t.Errorf("LastSuccess = %v; want %v", s.LastSuccess, now)
	}
}
