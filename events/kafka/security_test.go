package kafka_test

import (
	"context"
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/authd/authd/events/kafka"
	"github.com/authd/authd/internal/testcert"
	"github.com/authd/authd/storage"
)

const saslPassword = "kafka-sasl-password-never-shown"

func TestSecurityOptions(t *testing.T) {
	ca := testcert.New(t).CertFile
	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		s       kafka.Security
		opts    int    // franz-go options built
		wantErr string // "" for none
	}{
		{"plaintext", kafka.Security{}, 0, ""},
		{"tls, system roots", kafka.Security{TLS: true}, 1, ""},
		{"tls, CA file", kafka.Security{CAFile: ca}, 1, ""},
		{"CA file missing", kafka.Security{TLS: true, CAFile: "/nonexistent/ca.pem"}, 0, "TLS CA file"},
		{"CA file not PEM", kafka.Security{CAFile: garbage}, 0, "no PEM certificate"},
		{"plain", kafka.Security{TLS: true, SASLMechanism: "PLAIN", SASLUser: "authd", SASLPassword: saslPassword}, 2, ""},
		{"scram-sha-256, any case", kafka.Security{SASLMechanism: "scram-sha-256", SASLUser: "authd", SASLPassword: saslPassword}, 1, ""},
		{"scram-sha-512", kafka.Security{TLS: true, SASLMechanism: "SCRAM-SHA-512", SASLUser: "authd", SASLPassword: saslPassword}, 2, ""},
		{"unknown mechanism", kafka.Security{SASLMechanism: "GSSAPI", SASLUser: "authd", SASLPassword: saslPassword}, 0, "not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512"},
		{"mechanism without password", kafka.Security{SASLMechanism: "PLAIN", SASLUser: "authd"}, 0, "needs a user and a password"},
		{"mechanism without user", kafka.Security{SASLMechanism: "SCRAM-SHA-256", SASLPassword: saslPassword}, 0, "needs a user and a password"},
		{"credentials without mechanism", kafka.Security{SASLUser: "authd", SASLPassword: saslPassword}, 0, "without a SASL mechanism"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts, err := tt.s.Options()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Options() = %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Options() = %v; want an error containing %q", err, tt.wantErr)
			case err != nil && strings.Contains(err.Error(), saslPassword):
				t.Fatalf("Options() error shows the password: %v", err)
			}
			if len(opts) != tt.opts {
				t.Errorf("Options() built %d franz-go options; want %d", len(opts), tt.opts)
			}
			// New refuses what Options refuses.
			if _, err := kafka.New([]string{"127.0.0.1:1"}, kafka.WithSecurity(tt.s)); (err != nil) != (tt.wantErr != "") {
				t.Errorf("New() = %v; want an error: %v", err, tt.wantErr != "")
			}
		})
	}
}

// TestSecurityAgainstBroker publishes through an in-process broker that
// takes only TLS with the given SASL mechanism, and is refused with a wrong
// password or without TLS.
func TestSecurityAgainstBroker(t *testing.T) {
	tc := testcert.New(t)
	caFile, cert := tc.CertFile, tc.TLS
	for _, mech := range kafka.Mechanisms() {
		t.Run(mech, func(t *testing.T) {
			c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(),
				kfake.EnableSASL(), kfake.Superuser(mech, "authd", saslPassword),
				kfake.TLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}))
			if err != nil {
				t.Fatalf("kfake.NewCluster: %v", err)
			}
			t.Cleanup(c.Close)
			good := kafka.Security{CAFile: caFile, SASLMechanism: mech, SASLUser: "authd", SASLPassword: saslPassword}

			p := newPublisher(t, c.ListenAddrs(), kafka.WithSecurity(good), kafka.WithDeliveryTimeout(5*time.Second))
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			if err := p.Ping(ctx); err != nil {
				t.Fatalf("Ping with %s over TLS = %v", mech, err)
			}
			if err := p.Publish(ctx, []storage.OutboxEvent{event("e1", "auth.login.success", "user-1")}); err != nil {
				t.Fatalf("Publish with %s over TLS = %v", mech, err)
			}

			bad := good
			bad.SASLPassword = "wrong password"
			noTLS := good
			noTLS.CAFile = ""
			for name, s := range map[string]kafka.Security{"a wrong password": bad, "no TLS": noTLS} {
				p := newPublisher(t, c.ListenAddrs(), kafka.WithSecurity(s), kafka.WithDeliveryTimeout(2*time.Second))
				ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
				err := p.Ping(ctx)
				cancel()
				if err == nil {
					t.Errorf("Ping with %s succeeded", name)
				} else if strings.Contains(err.Error(), saslPassword) {
					t.Errorf("Ping error shows the password: %v", err)
				}
			}
		})
	}
}
