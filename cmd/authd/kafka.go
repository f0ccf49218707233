package main

import (
	"log/slog"

	"github.com/authd/authd/config"
	"github.com/authd/authd/events/kafka"
)

// kafkaOptions are the publisher's options from the configuration: its
// logger, and TLS and SASL (AUTHD_KAFKA_TLS, AUTHD_KAFKA_TLS_CA,
// AUTHD_KAFKA_SASL_MECHANISM, AUTHD_KAFKA_SASL_USER, AUTHD_KAFKA_SASL_PASSWORD).
func kafkaOptions(cfg config.Config, log *slog.Logger) []kafka.Option {
	return []kafka.Option{
		kafka.WithLogger(log),
		kafka.WithSecurity(kafka.Security{
			TLS: cfg.KafkaTLS, CAFile: cfg.KafkaTLSCA,
			SASLMechanism: cfg.KafkaSASLMechanism, SASLUser: cfg.KafkaSASLUser, SASLPassword: cfg.KafkaSASLPassword,
		}),
	}
}
