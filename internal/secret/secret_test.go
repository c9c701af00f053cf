package secret

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRedactByName(t *testing.T) {
	for _, c := range []struct {
		name, value, want string
	}{
		{"kafka.sasl.password", "pw", Redacted},
		{"kafka.producer.sasl.password", "pw", Redacted},
		{"sasl.username", "alice", "alice"},
		{"kafka.ssl.key.password", "pw", Redacted},
		{"kafka.ssl.keystore.password", "pw", Redacted},
		{"kafka.sasl.oauthbearer.client.secret", "pw", Redacted},
		{"basic.auth.user.info", "u:pw", Redacted},
		{"schema.registry.basic.auth.user.info", "u:pw", Redacted},
		{"bearer.auth.token", "tok", Redacted},
		{"http.bearer.auth.token", "tok", Redacted},
		{"kafka.ssl.ca.location", "/ca.pem", "/ca.pem"},
		{"kafka.sasl.password", "${env:PW}", "${env:PW}"}, // a reference names the source, not the secret
		{"kafka.sasl.password", "x${env:PW}", Redacted},
		{"kafka.sasl.password", "", ""},
	} {
		if got := Redact(c.name, c.value); got != c.want {
			t.Errorf("Redact(%q, %q) = %q, want %q", c.name, c.value, got, c.want)
		}
	}
}

// TestKnownSecretNeverShows: a password resolved from the environment and
// one from a file are absent from log lines (message, attributes, errors,
// groups, a librdkafka-style line quoting it) and from printed errors.
func TestKnownSecretNeverShows(t *testing.T) {
	const envSecret, fileSecret = "s3cr3t-from-env-4711", "s3cr3t-from-file-0815"
	t.Setenv("EOS_TEST_PW", envSecret)
	path := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(path, []byte(fileSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := Resolve("kafka.sasl.password", "${env:EOS_TEST_PW}")
	if err != nil || got != envSecret {
		t.Fatalf("Resolve env = %q, %v", got, err)
	}
	got, err = Resolve("basic.auth.user.info", "bob:${file:"+path+"}")
	if err != nil || got != "bob:"+fileSecret {
		t.Fatalf("Resolve file = %q, %v", got, err)
	}

	var buf bytes.Buffer
	for _, h := range []slog.Handler{slog.NewTextHandler(&buf, nil), slog.NewJSONHandler(&buf, nil)} {
		log := slog.New(Handler(h)).With("conf", "sasl.password="+envSecret)
		log.Error("librdkafka: SASL auth with password "+envSecret+" failed",
			"err", errors.New("401 for bob:"+fileSecret),
			"kafka.sasl.password", "literal-in-attr",
			slog.Group("client", "secret", fileSecret),
			"list", []string{envSecret})
	}
	out := buf.String()
	for _, s := range []string{envSecret, fileSecret, "literal-in-attr"} {
		if strings.Contains(out, s) {
			t.Errorf("log output shows secret %q:\n%s", s, out)
		}
	}
	if !strings.Contains(out, Redacted) {
		t.Errorf("log output has no %s:\n%s", Redacted, out)
	}
	if e := ScrubError(fmt.Errorf("connect: %w", errors.New("bad password "+envSecret))); strings.Contains(e.Error(), envSecret) {
		t.Errorf("ScrubError kept the secret: %v", e)
	}
}

func TestResolveErrorsNameSettingNotValue(t *testing.T) {
	_, err := Resolve("kafka.sasl.password", "${env:EOS_SURELY_UNSET_VAR}")
	if err == nil || !strings.Contains(err.Error(), "kafka.sasl.password") || !strings.Contains(err.Error(), "EOS_SURELY_UNSET_VAR") {
		t.Fatalf("err = %v", err)
	}
	_, err = Resolve("kafka.sasl.password", "${file:/nonexistent/pw}")
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/pw") {
		t.Fatalf("err = %v", err)
	}
	if got, err := Resolve("kafka.sasl.username", "plain"); err != nil || got != "plain" {
		t.Fatalf("Resolve plain = %q, %v", got, err)
	}
}
