package main

import (
	"context"
	"crypto/tls"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/authd/authd/config"
	"github.com/authd/authd/events/kafka"
	"github.com/authd/authd/internal/testcert"
)

// TestEventsReachKafkaOverSASLAndTLS: serve publishes to a broker that takes
// only TLS and SCRAM-SHA-512, configured through AUTHD_KAFKA_*; the password
// never reaches the log.
func TestEventsReachKafkaOverSASLAndTLS(t *testing.T) {
	const user, password = "authd-relay", "kafka-password-for-the-e2e-test"
	tc := testcert.New(t)
	caFile, cert := tc.CertFile, tc.TLS
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(),
		kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", user, password),
		kfake.TLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	f := newFixture(t, backends()[0], map[string]string{
		"AUTHD_KAFKA_BROKERS": strings.Join(cluster.ListenAddrs(), ","), "AUTHD_KAFKA_TLS_CA": caFile,
		"AUTHD_KAFKA_SASL_MECHANISM": "scram-sha-512", "AUTHD_KAFKA_SASL_USER": user, "AUTHD_KAFKA_SASL_PASSWORD": password,
		"AUTHD_LOG_LEVEL": "debug",
	})
	id, _, _ := f.signup("kafkasasl")

	sec, err := kafka.Security{CAFile: caFile, SASLMechanism: "SCRAM-SHA-512", SASLUser: user, SASLPassword: password}.Options()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(append(sec, kgo.SeedBrokers(cluster.ListenAddrs()...),
		kgo.ConsumeTopics("auth.user_created"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for found := false; !found; {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("auth.user_created of %s not received over SASL/TLS", id)
		}
		fetches.EachRecord(func(r *kgo.Record) { found = found || string(r.Key) == id })
	}
	req, _ := http.NewRequest("GET", f.base+"/readyz", nil)
	if code, _, m := f.do(req); code != http.StatusOK || !strings.Contains(strings.ToLower(jsonString(m)), `"kafka":"up"`) {
		t.Errorf("/readyz: %d %v", code, m)
	}
	f.stop()
	if strings.Contains(f.logs.String(), password) {
		t.Error("the Kafka password appears in the logs")
	}
	// serve --help lists it among the settings without a flag.
	out, _, _ := runCLI(t, nil, "", "serve", "--help")
	if !strings.Contains(out, "AUTHD_KAFKA_SASL_PASSWORD") || strings.Contains(out, "--kafka-sasl-password") {
		t.Errorf("serve --help: want AUTHD_KAFKA_SASL_PASSWORD as a variable, never a flag")
	}
}

// TestKafkaSettingsAgree: config accepts the SASL mechanisms the publisher speaks.
func TestKafkaSettingsAgree(t *testing.T) {
	if !slices.Equal(config.KafkaSASLMechanisms, kafka.Mechanisms()) {
		t.Errorf("config.KafkaSASLMechanisms = %v; events/kafka speaks %v", config.KafkaSASLMechanisms, kafka.Mechanisms())
	}
}
