package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/authd/authd/config"
)

// healthcheckCommand is `authd healthcheck`: GET /healthz of the server this
// configuration describes, exit 0 when it answers 200 and 1 otherwise. It is
// the HEALTHCHECK of images without a shell or curl (distroless): it reads
// the configuration but neither validates the rest of it nor touches the
// store, the secret or the data folder.
func (e *env) healthcheckCommand() *cobra.Command {
	var target string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "healthcheck",
		Short: "GET /healthz of the configured server (AUTHD_HTTP_ADDR); exit 0 when it answers 200, 1 otherwise",
		Long: "Asks the server at AUTHD_HTTP_ADDR (on this host: an unspecified or empty host becomes\n" +
			"127.0.0.1; https when AUTHD_TLS_CERT is set, certificate not verified) for /healthz and\n" +
			"exits 0 when it answers 200 OK, 1 otherwise. --url checks another address. Meant for\n" +
			"container health checks: it opens no store and writes nothing.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			url := target
			insecure := false
			if url == "" {
				// Only the listener's settings matter here: a problem
				// elsewhere is serve's to report, not the health check's.
				cfg, err := config.Load(e.root.PersistentFlags(), e.lookupEnv)
				var fe *config.FileError
				if errors.As(err, &fe) {
					return err
				}
				if url, err = healthURL(cfg); err != nil {
					return err
				}
				insecure = cfg.TLS() // our own certificate, named for the public host, not 127.0.0.1
			}
			return checkHealth(cmd.Context(), url, timeout, insecure)
		},
	}
	cmd.Flags().StringVar(&target, "url", "", "URL to check instead of http(s)://AUTHD_HTTP_ADDR/healthz")
	cmd.Flags().DurationVar(&timeout, "timeout", 3*time.Second, "give up after this long")
	return cmd
}

// healthURL is the /healthz URL of the listener cfg describes, seen from
// this host.
func healthURL(cfg config.Config) (string, error) {
	host, port, err := net.SplitHostPort(cfg.HTTPAddr)
	if err != nil {
		return "", fmt.Errorf("AUTHD_HTTP_ADDR: must be host:port or :port, got %q", cfg.HTTPAddr)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	scheme := "http"
	if cfg.TLS() {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, port) + "/healthz", nil
}

func checkHealth(ctx context.Context, url string, timeout time.Duration, insecure bool) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	tr := &http.Transport{Proxy: nil, DisableKeepAlives: true}
	if insecure {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // our own listener on this host
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("healthcheck: %s: no answer within %s", url, timeout)
		}
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %s", url, resp.Status)
	}
	return nil
}
