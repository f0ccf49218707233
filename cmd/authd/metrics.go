package main

import (
	"github.com/authd/authd/events"
	"github.com/authd/authd/server"
	"github.com/authd/authd/storage/redis"
)

// watch exports the gauges of what serve runs: the in-memory denylist
// (PostgreSQL), the signing keys, the Redis breakers (with Redis), the
// outbox backlog and relay (with Kafka). limiter and relay may be nil.
func (d *deps) watch(m *server.Metrics, limiter *redis.Limiter, relay *events.Relay) error {
	if err := m.WatchKeys(func() server.KeyStatus {
		s := d.keys.Status()
		return server.KeyStatus{ActivatedAt: s.ActivatedAt, RotationDue: s.RotationDue}
	}); err != nil {
		return err
	}
	if d.pgDeny != nil {
		if err := m.WatchDenylist(func() server.DenylistStats {
			s := d.pgDeny.Stats()
			return server.DenylistStats{Entries: s.Entries, MaxEntries: s.MaxEntries, InMemory: s.InMemory, SQLAnswers: s.SQLAnswers}
		}); err != nil {
			return err
		}
	}
	breakers := map[string]interface{ Stats() redis.BreakerStats }{}
	if limiter != nil {
		breakers["ratelimit"] = limiter
	}
	if d.redisDPoP != nil {
		breakers["dpop"] = d.redisDPoP
	}
	for name, b := range breakers {
		if err := m.WatchRedisBreaker(name, func() server.BreakerStats {
			s := b.Stats()
			return server.BreakerStats{State: s.State, Failures: s.Failures, Rejected: s.Rejected}
		}); err != nil {
			return err
		}
	}
	if relay != nil {
		if err := m.WatchOutbox(d.store.OutboxBacklog, relay.Stats, d.log); err != nil {
			return err
		}
	}
	return nil
}
