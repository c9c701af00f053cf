// Package secret resolves credentials from the environment or from files and
// keeps them out of everything eos-runner prints.
//
// A setting's value may be, or contain, a reference:
//
//	${env:NAME}    the environment variable NAME (an unset variable is an error)
//	${file:PATH}   the contents of the file PATH, one trailing newline removed
//
// so that a password need not be on the command line, where ps shows it, nor
// in a config file checked in with the rest. References are resolved once,
// when a runner or command builds its clients (Resolve); the value stored in
// a Config keeps the reference.
//
// Redaction has two halves. Redact is the one function that decides, by a
// setting's name alone, whether its value is a secret: what `config print`
// shows. And every value that Resolve returns for a secret setting is
// remembered for the life of the process; Scrub replaces each remembered
// value in any text, and Handler does so for every log record (librdkafka's
// forwarded lines included) and the CLI for every error it prints. The set
// is process-wide because the secret must stay out of lines written by code
// that never saw the config, e.g. a client library's error text.
package secret

import (
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
)

// Redacted replaces a secret wherever one would be shown.
const Redacted = "[redacted]"

// secretNames are the settings whose values are secrets, by their own name
// (librdkafka's, Confluent's schema registry client's, and ours for the
// runner's HTTP endpoints), after any client prefix is removed (see base).
var secretNames = map[string]bool{
	"sasl.password":                                     true,
	"sasl.jaas.config":                                  true,
	"sasl.oauthbearer.client.secret":                    true,
	"sasl.oauthbearer.config":                           true, // may hold a principal's secret
	"sasl.oauthbearer.assertion.private.key.passphrase": true,
	"sasl.oauthbearer.assertion.private.key.pem":        true,
	"ssl.key.password":                                  true,
	"ssl.key.pem":                                       true,
	"ssl_key":                                           true,
	"ssl.keystore.password":                             true,
	"ssl.truststore.password":                           true,
	"basic.auth.user.info":                              true, // user:password
	"bearer.auth.token":                                 true,
	"bearer.auth.client.secret":                         true,
}

// prefixes are removed from a setting's name before it is looked up: the
// config file's kafka. pass-through, its per-client scopes, and the schema
// registry's and HTTP server's namespaces.
var prefixes = []string{"kafka.", "consumer.", "producer.", "admin.", "schema.registry.", "http."}

func base(name string) string {
	name = strings.ToLower(strings.TrimSpace(name))
	for changed := true; changed; {
		changed = false
		for _, p := range prefixes {
			if s, ok := strings.CutPrefix(name, p); ok {
				name, changed = s, true
			}
		}
	}
	return name
}

// IsSecret reports whether the setting's value is a secret: a name listed
// above, or one ending in .password, .secret or .token.
func IsSecret(name string) bool {
	b := base(name)
	return secretNames[b] || strings.HasSuffix(b, ".password") || strings.HasSuffix(b, ".secret") || strings.HasSuffix(b, ".token")
}

// Redact returns value, or Redacted when the setting is a secret and its
// value is not empty. A secret's unresolved reference is shown as it is: it
// names where the secret comes from, not the secret.
func Redact(name, value string) string {
	if value == "" || !IsSecret(name) || isReference(value) {
		return value
	}
	return Redacted
}

var refRE = regexp.MustCompile(`\$\{(env|file):([^}]*)\}`)

func isReference(v string) bool {
	m := refRE.FindStringIndex(v)
	return m != nil && m[0] == 0 && m[1] == len(v)
}

// Resolve replaces every ${env:NAME} and ${file:PATH} reference in value. An
// error names the setting and the variable or file, never the value. When
// the setting is a secret, the result is remembered for Scrub.
func Resolve(name, value string) (string, error) {
	var errs []string
	out := refRE.ReplaceAllStringFunc(value, func(ref string) string {
		m := refRE.FindStringSubmatch(ref)
		switch m[1] {
		case "env":
			v, ok := os.LookupEnv(m[2])
			if !ok {
				errs = append(errs, fmt.Sprintf("environment variable %s is not set", m[2]))
			}
			return v
		default:
			b, err := os.ReadFile(m[2])
			if err != nil {
				errs = append(errs, fmt.Sprintf("secret file: %v", err))
			}
			s := strings.TrimSuffix(string(b), "\n")
			return strings.TrimSuffix(s, "\r")
		}
	})
	if len(errs) > 0 {
		return "", fmt.Errorf("%s: %s", name, strings.Join(errs, "; "))
	}
	if IsSecret(name) {
		Remember(out)
		if b := base(name); b == "basic.auth.user.info" || b == "user.info" {
			if _, pass, ok := strings.Cut(out, ":"); ok {
				Remember(pass)
			}
		}
	}
	return out, nil
}

// minLen is the shortest value Remember keeps: scrubbing a one- or
// two-character "secret" would mangle every line without hiding anything.
const minLen = 3

var (
	// mu guards known, the remembered secrets, longest first (so that a
	// secret containing another is replaced whole).
	mu    sync.RWMutex
	known []string
)

// Remember adds v to the values Scrub replaces.
func Remember(v string) {
	if len(v) < minLen {
		return
	}
	mu.Lock()
	defer mu.Unlock()
	for _, k := range known {
		if k == v {
			return
		}
	}
	known = append(known, v)
	sort.Slice(known, func(i, j int) bool { return len(known[i]) > len(known[j]) })
}

// Scrub replaces every remembered secret in s with Redacted.
func Scrub(s string) string {
	mu.RLock()
	defer mu.RUnlock()
	for _, k := range known {
		if strings.Contains(s, k) {
			s = strings.ReplaceAll(s, k, Redacted)
		}
	}
	return s
}

// ScrubError returns err, or an error with the same text scrubbed when its
// text holds a secret. The scrubbed error no longer unwraps: it is for
// printing.
func ScrubError(err error) error {
	if err == nil {
		return nil
	}
	if s := Scrub(err.Error()); s != err.Error() {
		return scrubbed(s)
	}
	return err
}

type scrubbed string

func (s scrubbed) Error() string { return string(s) }
