package events_test

import (
	"context"
	"encoding/json"
	"maps"
	"net"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/authd/authd/events"
	"github.com/authd/authd/events/kafka"
	"github.com/authd/authd/storage"
	"github.com/authd/authd/storage/postgres"
	"github.com/authd/authd/storage/storagetest"
)

var (
	_ events.Publisher           = (*kafka.Publisher)(nil)
	_ events.PartialPublishError = (*kafka.PublishError)(nil)
)

var kafkaTypes = []events.Type{events.LoginSuccess, events.UserLocked, events.TokenRevoked}

func kafkaTopics() []string {
	topics := make([]string, len(kafkaTypes))
	for i, typ := range kafkaTypes {
		topics[i] = string(typ)
	}
	return topics
}

func newCluster(t *testing.T, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1), kfake.AllowAutoTopicCreation()}, opts...)...)
	if err != nil {
		t.Fatalf("kfake.NewCluster: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

func newKafkaPublisher(t *testing.T, brokers []string) *kafka.Publisher {
	t.Helper()
	p, err := kafka.New(brokers, kafka.WithDeliveryTimeout(time.Second))
	if err != nil {
		t.Fatalf("kafka.New: %v", err)
	}
	t.Cleanup(p.Close)
	return p
}

// consume reads the event topics from the start until it has seen every
// one of ids, waiting at most 10s.
func consume(t *testing.T, brokers []string, ids ...string) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.ConsumeTopics(kafkaTopics()...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	if err != nil {
		t.Fatalf("consumer: %v", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var recs []*kgo.Record
	missing := map[string]bool{}
	for _, id := range ids {
		missing[id] = true
	}
	for len(missing) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("events %v never reached Kafka", slices.Sorted(maps.Keys(missing)))
		}
		for _, r := range fs.Records() {
			recs = append(recs, r)
			delete(missing, eventID(r))
		}
	}
	return recs
}

func eventID(r *kgo.Record) string {
	for _, h := range r.Headers {
		if h.Key == kafka.HeaderEventID {
			return string(h.Value)
		}
	}
	return ""
}

// checkRecords checks that recs are the events ids, as Recorder wrote them;
// once each when exactlyOnce, else at least once.
func checkRecords(t *testing.T, recs []*kgo.Record, exactlyOnce bool, ids ...string) {
	t.Helper()
	var got []string
	for _, r := range recs {
		id := eventID(r)
		got = append(got, id)
		var body struct {
			ID       string         `json:"id"`
			Type     string         `json:"type"`
			Time     time.Time      `json:"time"`
			Subject  string         `json:"subject"`
			ClientID string         `json:"client_id"`
			IP       string         `json:"ip"`
			Data     map[string]any `json:"data"`
		}
		if err := json.Unmarshal(r.Value, &body); err != nil {
			t.Errorf("event %s: value %s: %v", id, r.Value, err)
			continue
		}
		if body.ID != id || body.Type != r.Topic || body.Subject != "user-"+id || string(r.Key) != body.Subject ||
			body.ClientID != "web" || body.IP != "192.0.2.1" || body.Data["note"] != "payload-of-"+id || body.Time.IsZero() {
			t.Errorf("record topic %q key %q header %q value %s; want the event %s of Recorder", r.Topic, r.Key, id, r.Value, id)
		}
	}
	slices.Sort(got)
	if !exactlyOnce {
		got = slices.Compact(got)
	}
	if want := slices.Sorted(slices.Values(ids)); !slices.Equal(got, want) {
		t.Errorf("consumed events %v; want %v (exactly once: %v)", got, want, exactlyOnce)
	}
}

// gate fails every batch while down, as an unreachable cluster would.
type gate struct {
	events.Publisher
	down atomic.Bool
}

func (g *gate) Publish(ctx context.Context, evs []storage.OutboxEvent) error {
	if g.down.Load() {
		return errDown
	}
	return g.Publisher.Publish(ctx, evs)
}

func testRelayKafka(t *testing.T, st storage.Store) {
	c := newCluster(t)
	g := &gate{Publisher: newKafkaPublisher(t, c.ListenAddrs())}
	r := events.NewRelay(st, g, events.RelayOptions{Batch: 2})

	record(t, st, t0, kafkaTypes, "e1", "e2", "e3", "e4")
	if n, err := r.Flush(t.Context()); n != 4 || err != nil {
		t.Fatalf("Flush = %d, %v; want 4, nil", n, err)
	}
	if p := pending(t, st); len(p) != 0 {
		t.Fatalf("pending after Flush: %v; want none", p)
	}
	checkRecords(t, consume(t, c.ListenAddrs(), "e1", "e2", "e3", "e4"), true, "e1", "e2", "e3", "e4")

	g.down.Store(true)
	record(t, st, t0.Add(time.Minute), kafkaTypes, "e5", "e6")
	if n, err := r.Flush(t.Context()); n != 0 || err == nil {
		t.Fatalf("Flush with Kafka down = %d, %v; want 0 and an error", n, err)
	}
	if p := pending(t, st); !slices.Equal(p, []string{"e5", "e6"}) {
		t.Fatalf("pending with Kafka down: %v; want [e5 e6]", p)
	}

	g.down.Store(false)
	if n, err := r.Flush(t.Context()); n != 2 || err != nil {
		t.Fatalf("Flush after recovery = %d, %v; want 2, nil", n, err)
	}
	if p := pending(t, st); len(p) != 0 {
		t.Errorf("pending after recovery: %v; want none", p)
	}
	all := []string{"e1", "e2", "e3", "e4", "e5", "e6"}
	checkRecords(t, consume(t, c.ListenAddrs(), all...), true, all...)
}

func TestRelayKafkaSQLite(t *testing.T) {
	t.Parallel()
	testRelayKafka(t, newSQLite(t))
}

func TestRelayKafkaPostgres(t *testing.T) {
	t.Parallel()
	st, err := postgres.New(t.Context(), storagetest.PostgresDSN(t))
	if err != nil {
		t.Fatalf("postgres.New: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	testRelayKafka(t, st)
}

// A real outage: the broker goes away, events wait in the outbox, and a
// broker started again at the same address receives them.
func TestRelayKafkaRestart(t *testing.T) {
	t.Parallel()
	st := newSQLite(t)
	c1 := newCluster(t)
	addrs := c1.ListenAddrs()
	_, portStr, err := net.SplitHostPort(addrs[0])
	if err != nil {
		t.Fatalf("broker address %q: %v", addrs[0], err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		t.Fatalf("broker address %q: %v", addrs[0], err)
	}
	r := events.NewRelay(st, newKafkaPublisher(t, addrs), events.RelayOptions{})

	record(t, st, t0, kafkaTypes, "e1")
	if n, err := r.Flush(t.Context()); n != 1 || err != nil {
		t.Fatalf("Flush = %d, %v; want 1, nil", n, err)
	}

	c1.Close()
	record(t, st, t0.Add(time.Minute), kafkaTypes, "e2", "e3")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if n, err := r.Flush(ctx); n != 0 || err == nil {
		t.Fatalf("Flush with the broker closed = %d, %v; want 0 and an error", n, err)
	}
	if p := pending(t, st); !slices.Equal(p, []string{"e2", "e3"}) {
		t.Fatalf("pending with the broker closed: %v; want [e2 e3]", p)
	}

	// A new kfake cluster is a new Kafka (new topic ids, no producer state):
	// the records still in the client fail, and the relay publishes them
	// afresh on a later pass. Duplicates are allowed; loss is not.
	c2 := newCluster(t, kfake.Ports(port))
	published := 0
	for published < 2 {
		n, err := r.Flush(ctx)
		published += n
		if err != nil && ctx.Err() != nil {
			t.Fatalf("Flush after the broker is back: %v; %d of 2 published in 30s", err, published)
		}
	}
	if published != 2 {
		t.Errorf("published %d events after the broker is back; want 2", published)
	}
	if p := pending(t, st); len(p) != 0 {
		t.Errorf("pending after the broker is back: %v; want none", p)
	}
	checkRecords(t, consume(t, c2.ListenAddrs(), "e2", "e3"), false, "e2", "e3")
}
