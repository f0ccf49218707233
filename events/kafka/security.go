package kafka

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// SASL mechanisms the publisher speaks.
const (
	MechanismPlain       = "PLAIN"
	MechanismSCRAMSHA256 = "SCRAM-SHA-256"
	MechanismSCRAMSHA512 = "SCRAM-SHA-512"
)

// Mechanisms lists the SASL mechanisms Security accepts.
func Mechanisms() []string {
	return []string{MechanismPlain, MechanismSCRAMSHA256, MechanismSCRAMSHA512}
}

// Security is how the publisher reaches the brokers: TLS, SASL, or both
// (SASL_SSL). The zero value is plaintext without authentication.
type Security struct {
	TLS    bool   // dial with TLS 1.2 or later, verifying the brokers against the system roots
	CAFile string // PEM file of the CA that signed the brokers' certificates, instead of the system roots; implies TLS

	SASLMechanism string // "", PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (any case)
	SASLUser      string
	SASLPassword  string // a secret: never in errors or logs
}

// UsesTLS reports whether the connection is TLS.
func (s Security) UsesTLS() bool { return s.TLS || s.CAFile != "" }

// WithSecurity sets how the publisher reaches the brokers (see Security).
// New fails when s is incomplete or its CA file does not load.
func WithSecurity(s Security) Option { return func(c *config) { c.security = s } }

// Options returns the franz-go options that implement s: kgo.DialTLSConfig
// and kgo.SASL. Errors never contain the password.
func (s Security) Options() ([]kgo.Opt, error) {
	var opts []kgo.Opt
	if s.UsesTLS() {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if s.CAFile != "" {
			pem, err := os.ReadFile(s.CAFile)
			if err != nil {
				return nil, fmt.Errorf("kafka: TLS CA file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("kafka: TLS CA file %s: no PEM certificate in it", s.CAFile)
			}
			tc.RootCAs = pool
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	m, err := s.mechanism()
	if err != nil {
		return nil, err
	}
	if m != nil {
		opts = append(opts, kgo.SASL(m))
	}
	return opts, nil
}

func (s Security) mechanism() (sasl.Mechanism, error) {
	name := strings.ToUpper(strings.TrimSpace(s.SASLMechanism))
	if name == "" {
		if s.SASLUser != "" || s.SASLPassword != "" {
			return nil, errors.New("kafka: a SASL user or password without a SASL mechanism")
		}
		return nil, nil
	}
	if s.SASLUser == "" || s.SASLPassword == "" {
		return nil, fmt.Errorf("kafka: SASL %s needs a user and a password", name)
	}
	switch name {
	case MechanismPlain:
		return plain.Auth{User: s.SASLUser, Pass: s.SASLPassword}.AsMechanism(), nil
	case MechanismSCRAMSHA256:
		return scram.Auth{User: s.SASLUser, Pass: s.SASLPassword}.AsSha256Mechanism(), nil
	case MechanismSCRAMSHA512:
		return scram.Auth{User: s.SASLUser, Pass: s.SASLPassword}.AsSha512Mechanism(), nil
	}
	return nil, fmt.Errorf("kafka: SASL mechanism %q is not one of %s", s.SASLMechanism, strings.Join(Mechanisms(), ", "))
}
