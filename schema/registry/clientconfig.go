package registry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/riferrei/srclient"

	"github.com/eos-runner/eos-runner/internal/certs"
	"github.com/eos-runner/eos-runner/internal/secret"
)

// ClientConfig is how to reach a schema registry, under the names
// Confluent's serializers take, so a properties file written for them works
// here. Every value may be a ${env:NAME} or ${file:PATH} reference (package
// internal/secret); Resolve replaces them.
type ClientConfig struct {
	// URL is the registry's base URL; schema.registry.url (the CLI's
	// --registry sets it too). User info in the URL
	// (https://user:pass@host) is used with basic.auth.credentials.source=URL.
	URL string `yaml:"schema.registry.url"`
	// BasicAuthCredentialsSource is USER_INFO (the default once
	// basic.auth.user.info is set) or URL. basic.auth.credentials.source.
	BasicAuthCredentialsSource string `yaml:"basic.auth.credentials.source"`
	// BasicAuthUserInfo is "user:password"; basic.auth.user.info. A secret.
	BasicAuthUserInfo string `yaml:"basic.auth.user.info"`
	// BearerAuthCredentialsSource is STATIC_TOKEN (the default once
	// bearer.auth.token is set); bearer.auth.credentials.source.
	BearerAuthCredentialsSource string `yaml:"bearer.auth.credentials.source"`
	// BearerAuthToken is sent as "Authorization: Bearer <token>"; it wins
	// over basic auth, as in Confluent's client. bearer.auth.token. A secret.
	BearerAuthToken string `yaml:"bearer.auth.token"`
	// SSLCALocation is a PEM file of the CAs to trust (default: the
	// system's); schema.registry.ssl.ca.location.
	SSLCALocation string `yaml:"schema.registry.ssl.ca.location"`
	// SSLCertificateLocation and SSLKeyLocation are a client certificate
	// and its key (PEM) for mutual TLS; schema.registry.ssl.certificate.location,
	// schema.registry.ssl.key.location.
	SSLCertificateLocation string `yaml:"schema.registry.ssl.certificate.location"`
	SSLKeyLocation         string `yaml:"schema.registry.ssl.key.location"`
	// SSLEndpointIdentificationAlgorithm is https (default: verify the host
	// name) or none; schema.registry.ssl.endpoint.identification.algorithm.
	SSLEndpointIdentificationAlgorithm string `yaml:"schema.registry.ssl.endpoint.identification.algorithm"`
}

// settings lists the fields by setting name, in a fixed order.
func (c *ClientConfig) settings() []struct {
	name string
	v    *string
} {
	return []struct {
		name string
		v    *string
	}{
		{"schema.registry.url", &c.URL},
		{"basic.auth.credentials.source", &c.BasicAuthCredentialsSource},
		{"basic.auth.user.info", &c.BasicAuthUserInfo},
		{"bearer.auth.credentials.source", &c.BearerAuthCredentialsSource},
		{"bearer.auth.token", &c.BearerAuthToken},
		{"schema.registry.ssl.ca.location", &c.SSLCALocation},
		{"schema.registry.ssl.certificate.location", &c.SSLCertificateLocation},
		{"schema.registry.ssl.key.location", &c.SSLKeyLocation},
		{"schema.registry.ssl.endpoint.identification.algorithm", &c.SSLEndpointIdentificationAlgorithm},
	}
}

// Set assigns the setting named key and reports whether key is one of
// ClientConfig's.
func (c *ClientConfig) Set(key, value string) bool {
	for _, s := range c.settings() {
		if s.name == key {
			*s.v = value
			return true
		}
	}
	return false
}

// Settings returns every non-empty setting as name, value pairs, secrets
// redacted (for printing).
func (c ClientConfig) Settings() [][2]string {
	var out [][2]string
	for _, s := range c.settings() {
		if *s.v != "" {
			out = append(out, [2]string{s.name, secret.Redact(s.name, *s.v)})
		}
	}
	return out
}

// Resolve returns c with every ${env:...} and ${file:...} reference replaced.
func (c ClientConfig) Resolve() (ClientConfig, error) {
	var errs []error
	for _, s := range c.settings() {
		v, err := secret.Resolve(s.name, *s.v)
		if err != nil {
			errs = append(errs, err)
		}
		*s.v = v
	}
	if u, err := url.Parse(c.URL); err == nil && u.User != nil {
		if p, ok := u.User.Password(); ok {
			secret.Remember(p)
		}
	}
	return c, errors.Join(errs...)
}

// Validate reports every problem of a resolved c, each naming its setting:
// unknown credential sources, user info without a colon, and TLS files that
// cannot be read.
func (c ClientConfig) Validate() error {
	var errs []error
	bad := func(f string, a ...any) { errs = append(errs, fmt.Errorf(f, a...)) }
	switch strings.ToUpper(c.BasicAuthCredentialsSource) {
	case "", "USER_INFO":
		if c.BasicAuthUserInfo != "" && !strings.Contains(c.BasicAuthUserInfo, ":") {
			bad("basic.auth.user.info: want user:password")
		}
	case "URL":
	default:
		bad("basic.auth.credentials.source: %q is not USER_INFO or URL", c.BasicAuthCredentialsSource)
	}
	switch strings.ToUpper(c.BearerAuthCredentialsSource) {
	case "", "STATIC_TOKEN":
	default:
		bad("bearer.auth.credentials.source: %q is not STATIC_TOKEN (the only one supported)", c.BearerAuthCredentialsSource)
	}
	switch strings.ToLower(c.SSLEndpointIdentificationAlgorithm) {
	case "", "https", "none":
	default:
		bad("schema.registry.ssl.endpoint.identification.algorithm: %q is not https or none", c.SSLEndpointIdentificationAlgorithm)
	}
	for _, f := range []struct{ name, path string }{
		{"schema.registry.ssl.ca.location", c.SSLCALocation},
		{"schema.registry.ssl.certificate.location", c.SSLCertificateLocation},
		{"schema.registry.ssl.key.location", c.SSLKeyLocation},
	} {
		if f.path == "" {
			continue
		}
		if _, err := os.ReadFile(f.path); err != nil {
			bad("%s: %v", f.name, err)
		}
	}
	if (c.SSLCertificateLocation == "") != (c.SSLKeyLocation == "") {
		bad("schema.registry.ssl.certificate.location and schema.registry.ssl.key.location: give both or neither")
	}
	return errors.Join(errs...)
}

// NewClientFromConfig resolves and validates cfg and returns a client with
// its credentials and TLS settings. Nothing connects; see Ping.
func NewClientFromConfig(cfg ClientConfig) (*Client, error) {
	cfg, err := cfg.Resolve()
	if err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.URL == "" {
		return nil, errors.New("schema.registry.url: required")
	}
	u, err := url.Parse(strings.TrimRight(cfg.URL, "/"))
	if err != nil {
		return nil, fmt.Errorf("schema.registry.url: %w", err)
	}
	var urlUser, urlPass string
	if u.User != nil {
		urlUser = u.User.Username()
		urlPass, _ = u.User.Password()
		u.User = nil // never in an error message
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	if cfg.SSLCALocation != "" || cfg.SSLCertificateLocation != "" || strings.EqualFold(cfg.SSLEndpointIdentificationAlgorithm, "none") {
		tc, err := certs.ClientConfig(cfg.SSLCALocation, cfg.SSLCertificateLocation, cfg.SSLKeyLocation,
			strings.EqualFold(cfg.SSLEndpointIdentificationAlgorithm, "none"))
		if err != nil {
			return nil, fmt.Errorf("schema.registry.ssl.*: %w", err)
		}
		transport.TLSClientConfig = tc
	}
	sr := srclient.NewSchemaRegistryClient(u.String(), srclient.WithClient(&http.Client{Transport: transport, Timeout: 5 * time.Second}))
	sr.CachingEnabled(false)
	switch {
	case cfg.BearerAuthToken != "":
		sr.SetBearerToken(cfg.BearerAuthToken)
	case strings.EqualFold(cfg.BasicAuthCredentialsSource, "URL"):
		sr.SetCredentials(urlUser, urlPass)
	case cfg.BasicAuthUserInfo != "":
		user, pass, _ := strings.Cut(cfg.BasicAuthUserInfo, ":")
		sr.SetCredentials(user, pass)
	}
	c := &Client{url: u.String(), sr: sr, byID: make(map[int]*cachedSchema)}
	c.auth = authSetting(cfg)
	return c, nil
}

// authSetting names the setting that carries c's credentials, for errors.
func authSetting(cfg ClientConfig) string {
	switch {
	case cfg.BearerAuthToken != "":
		return "bearer.auth.token"
	case strings.EqualFold(cfg.BasicAuthCredentialsSource, "URL"):
		return "schema.registry.url (user info)"
	case cfg.BasicAuthUserInfo != "":
		return "basic.auth.user.info"
	}
	return ""
}

// Ping asks the registry for its global compatibility level, so that a
// wrong credential or an untrusted certificate stops a command at startup
// with one error naming the setting and the registry, not at its first
// schema look-up.
func (c *Client) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	_, err := c.sr.GetGlobalCompatibilityLevel()
	if err == nil {
		return nil
	}
	var se srclient.Error
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	var rh tls.RecordHeaderError
	switch {
	case errors.As(err, &se) && (se.Code == http.StatusUnauthorized || se.Code == http.StatusForbidden):
		setting := c.auth
		if setting == "" {
			setting = "basic.auth.user.info or bearer.auth.token"
			return fmt.Errorf("%s: schema registry %s requires credentials and none are set (%d %s)", setting, c.url, se.Code, se.Message)
		}
		return fmt.Errorf("%s: schema registry %s rejected the credentials (%d %s)", setting, c.url, se.Code, se.Message)
	case errors.As(err, &ua), errors.As(err, &ci):
		return fmt.Errorf("schema.registry.ssl.ca.location: the certificate of schema registry %s is not trusted: %v", c.url, err)
	case errors.As(err, &hn):
		return fmt.Errorf("schema.registry.url: the certificate of schema registry %s is not valid for its host name (or set schema.registry.ssl.endpoint.identification.algorithm=none): %v", c.url, err)
	case errors.As(err, &rh):
		return fmt.Errorf("schema.registry.url: schema registry %s does not speak TLS (use http://): %v", c.url, err)
	}
	return fmt.Errorf("schema.registry.url: schema registry %s: %v", c.url, secret.Scrub(err.Error()))
}
