package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/authd/authd/events/kafka"
	"github.com/authd/authd/storage"
)

// newCluster starts an in-process broker that creates topics on demand.
func newCluster(t *testing.T) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation())
	if err != nil {
		t.Fatalf("kfake.NewCluster: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

func newPublisher(t *testing.T, brokers []string, opts ...kafka.Option) *kafka.Publisher {
	t.Helper()
	p, err := kafka.New(brokers, opts...)
	if err != nil {
		t.Fatalf("kafka.New(%v): %v", brokers, err)
	}
	t.Cleanup(p.Close)
	return p
}

// consume reads n records from the start of topics, waiting at most 10s.
func consume(t *testing.T, brokers []string, n int, topics ...string) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	if err != nil {
		t.Fatalf("consumer: %v", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for len(recs) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records from %v before the timeout", len(recs), n, topics)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Errorf("fetch %s/%d: %v", topic, p, err) })
		recs = append(recs, fs.Records()...)
	}
	return recs
}

func event(id, typ, key string) storage.OutboxEvent {
	return storage.OutboxEvent{
		ID:      id,
		Type:    typ,
		Key:     key,
		Payload: fmt.Appendf(nil, `{"id":%q,"type":%q,"subject":%q,"data":{}}`, id, typ, key),
	}
}

func header(r *kgo.Record, key string) (string, bool) {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}

func TestPublish(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	p := newPublisher(t, c.ListenAddrs())
	evs := []storage.OutboxEvent{
		event("e1", "auth.login.success", "user-1"),
		event("e2", "auth.login.failed", "user-2"),
		event("e3", "auth.login.success", "user-1"),
		event("e4", "auth.key.rotated", ""), // no user
	}
	if err := p.Publish(t.Context(), evs); err != nil {
		t.Fatalf("Publish: %v", err)
	}

	recs := consume(t, c.ListenAddrs(), len(evs), "auth.login.success", "auth.login.failed", "auth.key.rotated")
	if len(recs) != len(evs) {
		t.Fatalf("consumed %d records; want %d", len(recs), len(evs))
	}
	var order []string // event ids of auth.login.success, as consumed
	for _, r := range recs {
		id, ok := header(r, kafka.HeaderEventID)
		if !ok {
			t.Errorf("record at %s/%d/%d has no %s header", r.Topic, r.Partition, r.Offset, kafka.HeaderEventID)
			continue
		}
		i := slices.IndexFunc(evs, func(e storage.OutboxEvent) bool { return e.ID == id })
		if i < 0 {
			t.Errorf("record with unknown event id %q", id)
			continue
		}
		e := evs[i]
		if r.Topic != e.Type {
			t.Errorf("event %s: topic %q; want %q", id, r.Topic, e.Type)
		}
		if e.Key == "" {
			if r.Key != nil {
				t.Errorf("event %s: key %q; want none", id, r.Key)
			}
		} else if string(r.Key) != e.Key {
			t.Errorf("event %s: key %q; want %q", id, r.Key, e.Key)
		}
		if string(r.Value) != string(e.Payload) {
			t.Errorf("event %s: value %s; want %s", id, r.Value, e.Payload)
		}
		if r.Topic == "auth.login.success" {
			order = append(order, id)
		}
	}
	if want := []string{"e1", "e3"}; !slices.Equal(order, want) {
		t.Errorf("auth.login.success consumed in order %v; want %v", order, want)
	}
}

func TestPublishEmpty(t *testing.T) {
	t.Parallel()
	// Nothing to send needs no broker: the address is never dialled.
	p := newPublisher(t, []string{"127.0.0.1:1"})
	if err := p.Publish(t.Context(), nil); err != nil {
		t.Errorf("Publish(nil) = %v; want nil", err)
	}
}

// A record Kafka cannot take fails alone; the rest of the batch is
// acknowledged and reported so.
func TestPublishPartial(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	p := newPublisher(t, c.ListenAddrs(), kafka.WithClientOptions(kgo.ProducerBatchMaxBytes(1024)))
	big := event("big", "auth.logout", "user-2")
	big.Payload = fmt.Appendf(nil, `{"id":"big","data":{"pad":%q}}`, strings.Repeat("secret-looking-payload", 100))
	evs := []storage.OutboxEvent{
		event("a", "auth.login.success", "user-1"),
		big,
		event("b", "auth.user_created", "user-3"),
		{ID: "notype", Key: "user-4", Payload: []byte(`{}`)},
	}

	err := p.Publish(t.Context(), evs)
	var pe *kafka.PublishError
	if !errors.As(err, &pe) {
		t.Fatalf("Publish = %v; want a *kafka.PublishError", err)
	}
	if want := []string{"a", "b"}; !slices.Equal(pe.Acknowledged(), want) {
		t.Errorf("Acknowledged() = %v; want %v", pe.Acknowledged(), want)
	}
	var failed []string
	for _, f := range pe.Failed {
		failed = append(failed, f.ID)
	}
	slices.Sort(failed)
	if want := []string{"big", "notype"}; !slices.Equal(failed, want) {
		t.Errorf("failed ids %v; want %v", failed, want)
	}
	if !errors.Is(err, kerr.MessageTooLarge) {
		t.Errorf("errors.Is(%v, kerr.MessageTooLarge) = false; want true", err)
	}
	if strings.Contains(err.Error(), "secret-looking-payload") {
		t.Errorf("error %q shows a payload", err)
	}

	recs := consume(t, c.ListenAddrs(), 2, "auth.login.success", "auth.user_created")
	var got []string
	for _, r := range recs {
		id, _ := header(r, kafka.HeaderEventID)
		got = append(got, id)
	}
	slices.Sort(got)
	if want := []string{"a", "b"}; !slices.Equal(got, want) {
		t.Errorf("consumed events %v; want %v", got, want)
	}
}

func TestBrokerDown(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	addrs := c.ListenAddrs()
	c.Close()
	p := newPublisher(t, addrs, kafka.WithDeliveryTimeout(time.Second))

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := p.Ping(ctx); err == nil {
		t.Error("Ping with the broker down = nil; want an error")
	}
	evs := []storage.OutboxEvent{event("e1", "auth.logout", "user-1"), event("e2", "auth.logout", "user-2")}
	err := p.Publish(ctx, evs)
	var pe *kafka.PublishError
	if !errors.As(err, &pe) {
		t.Fatalf("Publish with the broker down = %v; want a *kafka.PublishError", err)
	}
	if len(pe.Acknowledged()) != 0 || len(pe.Failed) != len(evs) {
		t.Errorf("acknowledged %v, %d failed; want none acknowledged, %d failed",
			pe.Acknowledged(), len(pe.Failed), len(evs))
	}
}

// A record Kafka is slow to acknowledge is reported failed when Publish gives
// up, but not produced a second time: the next Publish of the same event
// waits for the first delivery.
func TestPublishWaitsForRecordInFlight(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	var produces atomic.Int32
	release := make(chan struct{})
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		if produces.Add(1) == 1 {
			c.SleepControl(func() { <-release })
		}
		return nil, nil, false // then handled as usual
	})
	p := newPublisher(t, c.ListenAddrs(), kafka.WithDeliveryTimeout(time.Second))
	evs := []storage.OutboxEvent{event("slow", "auth.logout", "user-1")}

	err := p.Publish(t.Context(), evs)
	var pe *kafka.PublishError
	if !errors.As(err, &pe) || len(pe.Acknowledged()) != 0 || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Publish with the produce request held = %v; want a *kafka.PublishError for a deadline", err)
	}
	close(release)
	if err := p.Publish(t.Context(), evs); err != nil {
		t.Fatalf("Publish after the broker answered = %v; want nil", err)
	}
	recs := consume(t, c.ListenAddrs(), 1, "auth.logout")
	if len(recs) != 1 || produces.Load() != 1 {
		t.Errorf("consumed %d records after %d produce requests; want 1 and 1", len(recs), produces.Load())
	}
}

func TestPing(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	p := newPublisher(t, c.ListenAddrs())
	if err := p.Ping(t.Context()); err != nil {
		t.Errorf("Ping = %v; want nil", err)
	}
}

func TestNewErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		brokers []string
		opts    []kafka.Option
	}{
		{"no brokers", nil, nil},
		{"zero delivery timeout", []string{"127.0.0.1:9092"}, []kafka.Option{kafka.WithDeliveryTimeout(0)}},
		{"delivery timeout under 1s", []string{"127.0.0.1:9092"}, []kafka.Option{kafka.WithDeliveryTimeout(time.Millisecond)}},
		{"bad client option", []string{"127.0.0.1:9092"}, []kafka.Option{kafka.WithClientOptions(kgo.MaxBufferedRecords(-1))}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := kafka.New(tc.brokers, tc.opts...)
			if err == nil {
				p.Close()
				t.Fatalf("New(%v) = nil error; want one", tc.brokers)
			}
			if !strings.HasPrefix(err.Error(), "kafka: ") {
				t.Errorf("New(%v) error %q lacks the package prefix", tc.brokers, err)
			}
		})
	}
}
