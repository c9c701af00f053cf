// Package kafkasec reads a Kafka client's security settings under
// librdkafka's names (security.protocol, sasl.*, ssl.*: what `kafka.*` in a
// runner's config passes through) and gives them to the other Kafka client
// in the binary, franz-go, which the verify, dlq, dev and bench tooling
// use. One set of settings, under Kafka's own names, secures both.
//
// Supported: security.protocol PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL;
// sasl.mechanism (or sasl.mechanisms) PLAIN, SCRAM-SHA-256, SCRAM-SHA-512
// with sasl.username and sasl.password, and OAUTHBEARER with
// sasl.oauthbearer.method=oidc (client credentials:
// sasl.oauthbearer.client.id, .client.secret, .token.endpoint.url, .scope,
// .extensions); ssl.ca.location, ssl.certificate.location,
// ssl.key.location, ssl.endpoint.identification.algorithm (https or none),
// enable.ssl.certificate.verification. GSSAPI works in the runner
// (librdkafka) only.
package kafkasec

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/eos-runner/eos-runner/internal/certs"
)

// Protocols and mechanisms, as librdkafka spells them.
const (
	Plaintext     = "PLAINTEXT"
	SSL           = "SSL"
	SASLPlaintext = "SASL_PLAINTEXT"
	SASLSSL       = "SASL_SSL"
)

// Mechanisms are the SASL mechanisms librdkafka knows.
var Mechanisms = []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER", "GSSAPI"}

// Settings are a client's librdkafka properties (without the kafka. prefix).
type Settings map[string]string

// Protocol is security.protocol, upper case; PLAINTEXT when unset.
func (s Settings) Protocol() string {
	if p := s["security.protocol"]; p != "" {
		return strings.ToUpper(p)
	}
	return Plaintext
}

// Mechanism is sasl.mechanism (librdkafka's alias sasl.mechanisms), upper
// case; librdkafka's default GSSAPI when unset.
func (s Settings) Mechanism() string {
	m := s["sasl.mechanism"]
	if m == "" {
		m = s["sasl.mechanisms"]
	}
	if m == "" {
		return "GSSAPI"
	}
	return strings.ToUpper(m)
}

// TLS reports whether the protocol is SSL or SASL_SSL.
func (s Settings) TLS() bool { p := s.Protocol(); return p == SSL || p == SASLSSL }

// SASL reports whether the protocol is SASL_PLAINTEXT or SASL_SSL.
func (s Settings) SASL() bool { p := s.Protocol(); return p == SASLPlaintext || p == SASLSSL }

// fileSettings must name readable files when set.
var fileSettings = []string{"ssl.ca.location", "ssl.certificate.location", "ssl.key.location",
	"ssl.keystore.location", "ssl.crl.location"}

// Check reports every problem of resolved settings at once, each naming its
// setting with the kafka. prefix: an unknown protocol or mechanism, a SASL
// mechanism without its credentials, a file that cannot be read. It catches
// at startup, in milliseconds, what librdkafka would otherwise retry
// against every broker.
func Check(s Settings) []error {
	var errs []error
	bad := func(f string, a ...any) { errs = append(errs, fmt.Errorf(f, a...)) }
	switch s.Protocol() {
	case Plaintext, SSL, SASLPlaintext, SASLSSL:
	default:
		bad("kafka.security.protocol: %q is not PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL", s["security.protocol"])
	}
	mechKey := "sasl.mechanism"
	if s["sasl.mechanism"] == "" && s["sasl.mechanisms"] != "" {
		mechKey = "sasl.mechanisms"
	}
	if s[mechKey] != "" && !s.SASL() {
		bad("kafka.%s: set, but security.protocol is %s: use SASL_SSL (or SASL_PLAINTEXT) for SASL", mechKey, s.Protocol())
	}
	if s.SASL() {
		switch m := s.Mechanism(); m {
		case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
			for _, k := range []string{"sasl.username", "sasl.password"} {
				if s[k] == "" {
					bad("kafka.%s: required by sasl.mechanism %s", k, m)
				}
			}
		case "OAUTHBEARER", "GSSAPI":
		default:
			bad("kafka.%s: unknown mechanism %q (want one of %s)", mechKey, s[mechKey], strings.Join(Mechanisms, ", "))
		}
	}
	for _, k := range fileSettings {
		p := s[k]
		if p == "" || (k == "ssl.ca.location" && p == "probe") {
			continue
		}
		if fi, err := os.Stat(p); err != nil {
			bad("kafka.%s: %v", k, err)
		} else if !fi.IsDir() {
			if f, err := os.Open(p); err != nil {
				bad("kafka.%s: %v", k, err)
			} else {
				f.Close()
			}
		}
	}
	switch a := strings.ToLower(s["ssl.endpoint.identification.algorithm"]); a {
	case "", "https", "none":
	default:
		bad("kafka.ssl.endpoint.identification.algorithm: %q is not https or none", a)
	}
	return errs
}

// FranzOpts are the franz-go options for resolved settings: TLS, SASL, or
// both. An error names the setting franz-go cannot honour.
func FranzOpts(s Settings) ([]kgo.Opt, error) {
	if err := errors.Join(Check(s)...); err != nil {
		return nil, err
	}
	var opts []kgo.Opt
	if s.TLS() {
		tc, err := certs.ClientConfig(s["ssl.ca.location"], s["ssl.certificate.location"], s["ssl.key.location"],
			strings.EqualFold(s["ssl.endpoint.identification.algorithm"], "none"))
		if err != nil {
			return nil, fmt.Errorf("kafka.ssl.*: %w", err)
		}
		if s["ssl.key.password"] != "" {
			return nil, errors.New("kafka.ssl.key.password: encrypted keys are not supported by the franz-go tooling; give an unencrypted key file")
		}
		if strings.EqualFold(s["enable.ssl.certificate.verification"], "false") {
			tc.InsecureSkipVerify, tc.VerifyPeerCertificate = true, nil
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	if s.SASL() {
		m, err := mechanism(s)
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.SASL(m))
	}
	return opts, nil
}

func mechanism(s Settings) (sasl.Mechanism, error) {
	user, pass := s["sasl.username"], s["sasl.password"]
	switch s.Mechanism() {
	case "PLAIN":
		return plain.Auth{User: user, Pass: pass}.AsMechanism(), nil
	case "SCRAM-SHA-256":
		return scram.Auth{User: user, Pass: pass}.AsSha256Mechanism(), nil
	case "SCRAM-SHA-512":
		return scram.Auth{User: user, Pass: pass}.AsSha512Mechanism(), nil
	case "OAUTHBEARER":
		if !strings.EqualFold(s["sasl.oauthbearer.method"], "oidc") {
			return nil, errors.New("kafka.sasl.oauthbearer.method: the franz-go tooling supports OAUTHBEARER with method oidc (client credentials) only")
		}
		return oauth.Oauth(func(ctx context.Context) (oauth.Auth, error) { return oidcToken(ctx, s) }), nil
	}
	return nil, fmt.Errorf("kafka.sasl.mechanism: %s is supported by the runner (librdkafka) only, not by the franz-go tooling", s.Mechanism())
}

// oidcToken fetches a token with the OAuth 2 client credentials grant, as
// librdkafka does with sasl.oauthbearer.method=oidc: client id and secret
// in a basic auth header, scope and grant type in the form.
func oidcToken(ctx context.Context, s Settings) (oauth.Auth, error) {
	endpoint := s["sasl.oauthbearer.token.endpoint.url"]
	if endpoint == "" {
		return oauth.Auth{}, errors.New("kafka.sasl.oauthbearer.token.endpoint.url: required by sasl.oauthbearer.method=oidc")
	}
	form := url.Values{"grant_type": {"client_credentials"}}
	if sc := s["sasl.oauthbearer.scope"]; sc != "" {
		form.Set("scope", sc)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return oauth.Auth{}, fmt.Errorf("kafka.sasl.oauthbearer.token.endpoint.url: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(s["sasl.oauthbearer.client.id"]), url.QueryEscape(s["sasl.oauthbearer.client.secret"]))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return oauth.Auth{}, fmt.Errorf("kafka.sasl.oauthbearer.token.endpoint.url %s: %w", endpoint, err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if resp.StatusCode != http.StatusOK {
		return oauth.Auth{}, fmt.Errorf("kafka.sasl.oauthbearer.client.id/client.secret: token endpoint %s answered %s", endpoint, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
		return oauth.Auth{}, fmt.Errorf("kafka.sasl.oauthbearer.token.endpoint.url %s: no access_token in the answer", endpoint)
	}
	a := oauth.Auth{Token: tok.AccessToken}
	if ext := s["sasl.oauthbearer.extensions"]; ext != "" {
		a.Extensions = map[string]string{}
		for _, kv := range strings.Split(ext, ",") {
			k, v, _ := strings.Cut(kv, "=")
			a.Extensions[strings.TrimSpace(k)] = v
		}
	}
	return a, nil
}
