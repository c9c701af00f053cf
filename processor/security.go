package processor

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/eos-runner/eos-runner/internal/kafkasec"
	"github.com/eos-runner/eos-runner/internal/secret"
)

// Security settings reach Kafka under librdkafka's own names through
// kafka.*: security.protocol, sasl.mechanism, sasl.username, sasl.password,
// sasl.oauthbearer.*, ssl.ca.location, ssl.certificate.location,
// ssl.key.location, ssl.key.password, ssl.endpoint.identification.algorithm,
// ... . Unprefixed, they apply to every client the runner makes (consumer,
// producer, admin, restore consumer: kafkaConfig); the CLI gives the same
// map to its franz-go clients (internal/kafkasec). Any value, of these and
// of every other setting, may be a ${env:NAME} or ${file:PATH} reference
// (internal/secret), resolved by New; a secret setting's value never reaches
// a log line or an error.

// Resolve returns c with every ${env:NAME} and ${file:PATH} reference in
// kafka.*, the schema registry and the HTTP settings replaced. An error
// names each setting that could not be resolved (never a value).
func (c Config) Resolve() (Config, error) {
	var errs []error
	if len(c.Kafka) > 0 {
		kafka := make(map[string]string, len(c.Kafka))
		for k, v := range c.Kafka {
			r, err := secret.Resolve("kafka."+k, v)
			if err != nil {
				errs = append(errs, err)
			}
			kafka[k] = r
		}
		c.Kafka = kafka
	}
	reg, err := c.SchemaRegistry.Resolve()
	if err != nil {
		errs = append(errs, err)
	}
	c.SchemaRegistry = reg
	if c.HTTP, err = c.HTTP.resolve(); err != nil {
		errs = append(errs, err)
	}
	sortErrs(errs)
	return c, errors.Join(errs...)
}

func sortErrs(errs []error) {
	sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
}

// validateSecurity checks the resolved security settings of every client
// scope (unprefixed, consumer., producer., admin.): protocol, mechanism,
// credentials, readable files; and the HTTP settings.
func (c Config) validateSecurity() []error {
	rc, err := c.Resolve()
	if err != nil {
		return []error{err}
	}
	var errs []error
	for _, scope := range []string{"", "consumer.", "producer.", "admin."} {
		for _, e := range kafkasec.Check(scopeSettings(rc.Kafka, scope)) {
			if scope != "" {
				e = errors.New(strings.Replace(e.Error(), "kafka.", "kafka."+scope, 1))
			}
			if !containsErr(errs, e) {
				errs = append(errs, e)
			}
		}
	}
	errs = append(errs, rc.HTTP.validate()...)
	return errs
}

func containsErr(errs []error, e error) bool {
	for _, x := range errs {
		if x.Error() == e.Error() || strings.HasSuffix(e.Error(), strings.TrimPrefix(x.Error(), "kafka.")) {
			return true
		}
	}
	return false
}

// scopeSettings are the librdkafka properties one client scope sees: the
// unprefixed ones, overridden by those with the scope's prefix (as
// kafkaConfig builds them).
func scopeSettings(kafka map[string]string, scope string) kafkasec.Settings {
	s := kafkasec.Settings{}
	for k, v := range kafka {
		if !strings.HasPrefix(k, "consumer.") && !strings.HasPrefix(k, "producer.") && !strings.HasPrefix(k, "admin.") {
			s[k] = v
		}
	}
	if scope != "" {
		for k, v := range kafka {
			if rest, ok := strings.CutPrefix(k, scope); ok {
				s[rest] = v
			}
		}
	}
	return s
}

// KafkaSecurity returns the resolved librdkafka properties every client
// sees (kafka.* without a client prefix), for the CLI's franz-go clients.
func (c Config) KafkaSecurity() (kafkasec.Settings, error) {
	rc, err := c.Resolve()
	if err != nil {
		return nil, err
	}
	return scopeSettings(rc.Kafka, ""), nil
}

// Settings returns every setting of c that is set, by its config name, with
// secrets redacted (secret.Redact) and references shown as written: what
// `eos-runner config print` prints. Kafka properties carry their kafka.
// prefix.
func (c Config) Settings() [][2]string {
	b, err := yaml.Marshal(c)
	var m map[string]any
	if err == nil {
		err = yaml.Unmarshal(b, &m)
	}
	if err != nil {
		return [][2]string{{"error", err.Error()}}
	}
	var out [][2]string
	for k, v := range m {
		if k == "kafka" {
			continue
		}
		s := fmt.Sprint(v)
		if v == nil || s == "" || s == "0" || s == "false" {
			continue
		}
		out = append(out, [2]string{k, secret.Redact(k, s)})
	}
	for k, v := range c.Kafka {
		out = append(out, [2]string{"kafka." + k, secret.Redact("kafka."+k, v)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out
}

// String prints c's settings one "name=value" a line, secrets redacted, so a
// Config formatted with %v or logged shows no secret either.
func (c Config) String() string {
	var b strings.Builder
	for _, kv := range c.Settings() {
		b.WriteString(kv[0] + "=" + kv[1] + "\n")
	}
	return b.String()
}
