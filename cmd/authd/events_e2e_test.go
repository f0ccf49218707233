package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestEventsReachKafka: with AUTHD_KAFKA_BROKERS set, security events
// recorded with a change (signup, failed and successful logins) arrive on
// their topics, keyed by user id, and /readyz reports Kafka.
func TestEventsReachKafka(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	brokers := strings.Join(cluster.ListenAddrs(), ",")
	f := newFixture(t, backends()[0], map[string]string{"AUTHD_KAFKA_BROKERS": brokers})

	id, user, pass := f.signup("kafka")
	f.passwordGrant(f.app, user, "not the password at all", nil)
	f.login(f.app, user, pass)

	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...),
		kgo.ConsumeTopics("auth.user_created", "auth.login.failed", "auth.login.success"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	want := map[string]bool{"auth.user_created": false, "auth.login.failed": false, "auth.login.success": false}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for missing := len(want); missing > 0; {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("events not received: %v", want)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			var ev struct {
				ID, Type, Subject string
			}
			if err := json.Unmarshal(r.Value, &ev); err != nil {
				t.Errorf("record on %s is not JSON: %v", r.Topic, err)
				return
			}
			if ev.Subject != id || string(r.Key) != id {
				return // another user's event (the fixture's)
			}
			if ev.Type != r.Topic || ev.ID == "" {
				t.Errorf("record on %s: %+v", r.Topic, ev)
			}
			if seen, ok := want[r.Topic]; ok && !seen {
				want[r.Topic] = true
				missing--
			}
		})
	}
	req, _ := http.NewRequest("GET", f.base+"/readyz", nil)
	code, _, m := f.do(req)
	if code != http.StatusOK || !strings.Contains(strings.ToLower(jsonString(m)), `"kafka":"up"`) {
		t.Errorf("/readyz: %d %v", code, m)
	}
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
