// Package kafka publishes outbox events to Kafka with franz-go: one topic per
// event type (the topic is the type, e.g. auth.login.success), the user id as
// record key, the rendered JSON event as value and the event id in the
// `event-id` header. It implements events.Publisher.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/authd/authd/storage"
)

// HeaderEventID is the record header that carries the event id, on which
// consumers dedupe (delivery is at least once).
const HeaderEventID = "event-id"

// DefaultDeliveryTimeout bounds how long Publish waits for Kafka to
// acknowledge a record before reporting it failed.
const DefaultDeliveryTimeout = 30 * time.Second

// Publisher produces outbox events to Kafka. It is safe for concurrent use.
//
// Publish never waits longer than the delivery timeout. A record Kafka has
// not acknowledged by then is reported failed, but the client may still be
// delivering it (an idempotent producer cannot drop a request it sent and got
// no answer to); the Publisher remembers it, and a later Publish of the same
// event waits for that delivery instead of producing the event a second time.
type Publisher struct {
	client  *kgo.Client
	timeout time.Duration
	log     *slog.Logger

	mu      sync.Mutex
	flights map[string]*flight // event id → its record, while in flight or until its outcome is collected
}

// flight is one produced record; err is set before done is closed.
type flight struct {
	done chan struct{}
	err  error
}

type config struct {
	log             *slog.Logger
	deliveryTimeout time.Duration
	security        Security
	clientOpts      []kgo.Opt
}

// Option configures New.
type Option func(*config)

// WithLogger sends the client's warnings and errors to l (default: discarded).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// WithDeliveryTimeout sets how long a record may wait for Kafka's
// acknowledgement before Publish reports it failed (default 30s, at least 1s
// as franz-go requires).
func WithDeliveryTimeout(d time.Duration) Option {
	return func(c *config) { c.deliveryTimeout = d }
}

// WithClientOptions adds franz-go options (TLS, SASL, client id...) after
// authd's own, so they take precedence.
func WithClientOptions(opts ...kgo.Opt) Option {
	return func(c *config) { c.clientOpts = append(c.clientOpts, opts...) }
}

// New returns a publisher on the given seed brokers. It does not connect: a
// broker that is down (or refuses the credentials of WithSecurity) makes
// Publish and Ping fail, not New. Records are
// produced with acks from all in-sync replicas and the idempotent producer;
// topics that do not exist are created if the brokers allow it.
func New(brokers []string, opts ...Option) (*Publisher, error) {
	if len(brokers) == 0 {
		return nil, errors.New("kafka: no brokers")
	}
	cfg := config{deliveryTimeout: DefaultDeliveryTimeout}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.deliveryTimeout < time.Second {
		return nil, fmt.Errorf("kafka: delivery timeout %v is under 1s", cfg.deliveryTimeout)
	}
	kopts := []kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.ClientID("authd"),
		kgo.RequiredAcks(kgo.AllISRAcks()), // idempotent writes are franz-go's default and need all acks
		kgo.AllowAutoTopicCreation(),
		kgo.RecordDeliveryTimeout(cfg.deliveryTimeout),
	}
	sec, err := cfg.security.Options()
	if err != nil {
		return nil, err
	}
	kopts = append(kopts, sec...)
	if cfg.log != nil {
		kopts = append(kopts, kgo.WithLogger(logger{cfg.log}))
	} else {
		cfg.log = slog.New(slog.DiscardHandler)
	}
	kopts = append(kopts, cfg.clientOpts...)
	client, err := kgo.NewClient(kopts...)
	if err != nil {
		return nil, fmt.Errorf("kafka: new client: %w", err)
	}
	return &Publisher{client: client, timeout: cfg.deliveryTimeout, log: cfg.log, flights: map[string]*flight{}}, nil
}

// Publish produces evs and waits for Kafka's acknowledgements, at most until
// ctx is done or the delivery timeout has passed. It returns nil when every
// event was acknowledged, and otherwise a *PublishError that names the
// acknowledged events and why the others failed.
func (p *Publisher) Publish(ctx context.Context, evs []storage.OutboxEvent) error {
	if len(evs) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	pe := &PublishError{Total: len(evs)}
	flights := make([]*flight, len(evs))
	var (
		records []*kgo.Record
		started []*flight
	)
	p.mu.Lock()
	for i, e := range evs {
		if e.Type == "" {
			continue
		}
		if f := p.flights[e.ID]; f != nil && (!f.finished() || f.err == nil) {
			flights[i] = f // still in flight, or delivered after an earlier Publish gave up on it
			continue
		}
		f := &flight{done: make(chan struct{})}
		p.flights[e.ID] = f
		flights[i] = f
		r := &kgo.Record{
			Topic:   e.Type,
			Value:   e.Payload,
			Headers: []kgo.RecordHeader{{Key: HeaderEventID, Value: []byte(e.ID)}},
		}
		if e.Key != "" { // no key (an event without a user): spread over partitions
			r.Key = []byte(e.Key)
		}
		records = append(records, r)
		started = append(started, f)
	}
	p.mu.Unlock()

	if len(records) > 0 {
		byRecord := make(map[*kgo.Record]*flight, len(records))
		for i, r := range records {
			byRecord[r] = started[i]
		}
		// The client ties each record to ctx: once ctx is done it fails the
		// records it safely can, and delivers the others when it can.
		go func() {
			for _, res := range p.client.ProduceSync(ctx, records...) {
				f := byRecord[res.Record]
				f.err = res.Err
				close(f.done)
			}
		}()
	}

	for i, e := range evs {
		f := flights[i]
		var err error
		switch {
		case f == nil:
			err = errors.New("kafka: event has no type (topic)")
		default:
			select {
			case <-f.done:
				err = f.err
			case <-ctx.Done():
				if f.finished() { // the outcome arrived with the deadline
					err = f.err
				} else {
					err = fmt.Errorf("kafka: not acknowledged in time: %w", context.Cause(ctx))
				}
			}
		}
		if err != nil {
			pe.Failed = append(pe.Failed, Failure{ID: e.ID, Type: e.Type, Err: err})
			continue
		}
		pe.Acked = append(pe.Acked, e.ID)
	}
	p.forget()
	if len(pe.Failed) == 0 {
		return nil
	}
	p.relearn(ctx, pe.Failed)
	return pe
}

// relearn makes the client forget the topics that failed with an unknown
// topic id. A topic deleted and created again (or a Kafka cluster rebuilt)
// keeps its name under a new id, and franz-go fails the old id's records until
// the topic is purged; after that, the next Publish learns the new one.
func (p *Publisher) relearn(ctx context.Context, failed []Failure) {
	var topics []string
	for _, f := range failed {
		if errors.Is(f.Err, kerr.UnknownTopicID) && !slices.Contains(topics, f.Type) {
			topics = append(topics, f.Type)
		}
	}
	if len(topics) == 0 {
		return
	}
	p.log.WarnContext(ctx, "kafka: topics recreated under a new id; relearning them", "topics", topics)
	p.client.PurgeTopicsFromProducing(topics...)
}

// forget drops the flights that have an outcome: those of the batch just
// reported, and those an earlier Publish gave up on that ended meanwhile and
// were not asked for again (the relay asks again on its next pass, or never
// if another replica published the event). The map stays about as small as a
// batch plus what is stuck in the client.
func (p *Publisher) forget() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for id, f := range p.flights {
		if f.finished() {
			delete(p.flights, id)
		}
	}
}

func (f *flight) finished() bool {
	select {
	case <-f.done:
		return true
	default:
		return false
	}
}

// Ping reports whether a broker answers, for readiness checks.
func (p *Publisher) Ping(ctx context.Context) error {
	if err := p.client.Ping(ctx); err != nil {
		return fmt.Errorf("kafka: ping: %w", err)
	}
	return nil
}

// Close closes the client's connections; a Publish still running fails. Call
// it once the relay has stopped.
func (p *Publisher) Close() { p.client.Close() }

// PublishError reports the events of a batch Kafka did not acknowledge. It
// satisfies events.PartialPublishError.
type PublishError struct {
	Total  int       // events in the batch
	Acked  []string  // ids Kafka acknowledged, in batch order
	Failed []Failure // the others
}

// Failure is one event Kafka did not acknowledge.
type Failure struct {
	ID   string
	Type string
	Err  error
}

// Acknowledged returns the ids of the events Kafka acknowledged.
func (e *PublishError) Acknowledged() []string { return e.Acked }

func (e *PublishError) Error() string {
	if len(e.Failed) == 0 {
		return fmt.Sprintf("kafka: %d of %d events acknowledged", len(e.Acked), e.Total)
	}
	first := e.Failed[0]
	return fmt.Sprintf("kafka: %d of %d events not acknowledged (first: event %s of type %q: %v)",
		len(e.Failed), e.Total, first.ID, first.Type, first.Err)
}

// Unwrap returns the failures' errors, so errors.Is finds e.g. a context
// error or a kerr code.
func (e *PublishError) Unwrap() []error {
	errs := make([]error, len(e.Failed))
	for i, f := range e.Failed {
		errs[i] = f.Err
	}
	return errs
}

// logger adapts slog to franz-go's logger, at warn and above.
type logger struct{ l *slog.Logger }

func (logger) Level() kgo.LogLevel { return kgo.LogLevelWarn }

func (g logger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	lvl := slog.LevelWarn
	if level == kgo.LogLevelError {
		lvl = slog.LevelError
	}
	g.l.Log(context.Background(), lvl, "kafka: "+msg, keyvals...)
}
