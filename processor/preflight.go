package processor

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/eos-runner/eos-runner/internal/kafkasec"
	"github.com/eos-runner/eos-runner/internal/secret"
)

// preflightTimeout bounds the preflight metadata request. A broker that is
// only slow or not up yet is not an error: the runner logs a warning and
// starts as before (its clients keep retrying). Only an answer that can
// never improve by retrying (rejected credentials, an untrusted
// certificate, the wrong protocol for the listener) stops startup.
const preflightTimeout = 10 * time.Second

// ErrSecurity is wrapped by the error that stops startup because the
// cluster refused the runner's security settings (a *SecurityError). It is
// never retriable: the configuration must change.
var ErrSecurity = errors.New("kafka security")

// SecurityError is a security setting the cluster refused: which one to
// fix, the brokers, why, and librdkafka's own words (secrets scrubbed).
type SecurityError struct {
	Setting, Brokers, Reason, Detail string
}

func (e *SecurityError) Error() string {
	return fmt.Sprintf("%s: %s (bootstrap.servers %s): %s", e.Setting, e.Reason, e.Brokers, e.Detail)
}

// Is makes errors.Is(err, ErrSecurity) hold.
func (e *SecurityError) Is(target error) bool { return target == ErrSecurity }

// preflight connects to the cluster once, with the settings every client
// uses, and turns librdkafka's authentication and TLS errors into one error
// naming the setting to fix and the brokers, instead of the retry storm of
// log lines every client would otherwise produce until its timeouts.
func (r *Runner) preflight(ctx context.Context) error {
	p, err := kafka.NewProducer(r.kafkaConfig("admin", kafka.ConfigMap{
		"go.logs.channel.enable": true,
		// One attempt's worth of backoff: the first failure is the answer.
		"reconnect.backoff.ms":     100,
		"reconnect.backoff.max.ms": 1000,
	}))
	if err != nil {
		return fmt.Errorf("kafka client: %w", secret.ScrubError(err))
	}
	done := make(chan error, 1)
	go func() {
		_, err := p.GetMetadata(nil, false, int(preflightTimeout.Milliseconds()))
		done <- err
	}()
	// The producer is closed once its metadata call has returned, and its
	// channels are drained until then, whichever way preflight returns.
	defer func() {
		go func() {
			for {
				select {
				case err := <-done:
					done <- err
					go func() {
						for range p.Logs() {
						}
					}()
					p.Close()
					return
				case <-p.Events():
				case <-p.Logs():
				}
			}
		}()
	}()
	s := scopeSettings(r.cfg.Kafka, "admin.")
	var last kafka.Error
	for {
		select {
		case err := <-done:
			done <- err // for the closer above
			if err == nil {
				return nil
			}
			if last.Code() != kafka.ErrNoError {
				err = last
			}
			r.log.Warn("kafka preflight: no broker answered yet; starting anyway (clients keep retrying)",
				"bootstrap.servers", r.cfg.BootstrapServers, "security.protocol", s.Protocol(), "err", err)
			return nil
		case ev := <-p.Events():
			e, ok := ev.(kafka.Error)
			if !ok {
				continue
			}
			last = e
			if err := securityError(e, r.cfg.BootstrapServers, s); err != nil {
				return err
			}
		case l := <-p.Logs():
			r.log.Debug("librdkafka: "+l.Message, "client", "preflight", "tag", l.Tag)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// securityError maps a librdkafka error event to the error that stops
// startup, or nil when retrying may help.
func securityError(e kafka.Error, brokers string, s kafkasec.Settings) error {
	msg := secret.Scrub(e.Error())
	lower := strings.ToLower(msg)
	wrap := func(setting, format string, args ...any) error {
		return &SecurityError{Setting: setting, Brokers: brokers, Reason: fmt.Sprintf(format, args...), Detail: msg}
	}
	code := e.Code()
	if strings.Contains(lower, "sasl authentication error") || strings.Contains(lower, "authentication failed") {
		code = kafka.ErrAuthentication
	}
	switch code {
	case kafka.ErrAuthentication:
		if strings.Contains(lower, "mechanism") && (strings.Contains(lower, "unsupported") || strings.Contains(lower, "not supported") || strings.Contains(lower, "not enabled")) {
			return wrap("kafka.sasl.mechanism", "the broker does not accept mechanism %s", s.Mechanism())
		}
		if s.Mechanism() == "OAUTHBEARER" {
			return wrap("kafka.sasl.oauthbearer.*", "the broker rejected the OAUTHBEARER token")
		}
		return wrap("kafka.sasl.password", "the broker rejected the credentials of user %q (sasl.mechanism %s)", s["sasl.username"], s.Mechanism())
	case kafka.ErrSsl:
		switch {
		case strings.Contains(lower, "certificate verify failed"), strings.Contains(lower, "could not be verified"):
			ca := s["ssl.ca.location"]
			if ca == "" {
				ca = "unset: the system's CAs"
			}
			return wrap("kafka.ssl.ca.location", "the broker's certificate is not trusted by ssl.ca.location (%s), or does not match the broker's host name (ssl.endpoint.identification.algorithm)", ca)
		case strings.Contains(lower, "alert"), strings.Contains(lower, "certificate required"):
			return wrap("kafka.ssl.certificate.location", "the broker refused the TLS handshake; it may require a client certificate (ssl.certificate.location, ssl.key.location)")
		}
		return wrap("kafka.security.protocol", "the TLS handshake with the broker failed")
	}
	if strings.Contains(lower, "incorrect security.protocol") {
		return wrap("kafka.security.protocol", "%s does not match the broker's listener", s.Protocol())
	}
	return nil
}
