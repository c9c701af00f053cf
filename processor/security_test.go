package processor

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/eos-runner/eos-runner/topology"
)

// TestSecurityKnownSecretNeverShows: secrets given by reference (env, file)
// and literally are absent from config printing, validation errors, the
// runner's own log lines and librdkafka's forwarded ones.
func TestSecurityKnownSecretNeverShows(t *testing.T) {
	const kafkaPW, regPW, httpTok = "kafka-pw-31337", "registry-pw-27182", "http-token-16180"
	t.Setenv("EOS_TEST_KAFKA_PW", kafkaPW)
	pwFile := filepath.Join(t.TempDir(), "reg")
	if err := os.WriteFile(pwFile, []byte(regPW+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var c Config
	for k, v := range map[string]string{
		"application.id": "app", "bootstrap.servers": "127.0.0.1:1",
		"kafka.security.protocol": "SASL_PLAINTEXT", "kafka.sasl.mechanism": "SCRAM-SHA-512",
		"kafka.sasl.username": "alice", "kafka.sasl.password": "${env:EOS_TEST_KAFKA_PW}",
		"basic.auth.user.info":   "bob:${file:" + pwFile + "}",
		"http.bearer.auth.token": httpTok,
		"metrics.addr":           "127.0.0.1:0",
	} {
		if err := c.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	rc, err := c.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	if rc.Kafka["sasl.password"] != kafkaPW || rc.SchemaRegistry.BasicAuthUserInfo != "bob:"+regPW {
		t.Fatalf("resolved %q, %q", rc.Kafka["sasl.password"], rc.SchemaRegistry.BasicAuthUserInfo)
	}
	var logs bytes.Buffer
	r, err := New(rc, &topology.Topology{}, WithLogger(slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	if err != nil {
		t.Fatal(err)
	}
	r.log.Info("connecting", "password", kafkaPW, "conf", rc.Kafka)
	ch := make(chan kafka.LogEvent, 1)
	ch <- kafka.LogEvent{Level: 3, Tag: "SASL", Message: "auth failed for alice with " + kafkaPW}
	close(ch)
	r.drainLogs("consumer", ch)

	bad := rc
	bad.Kafka = map[string]string{"security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-1", "sasl.password": kafkaPW,
		"ssl.ca.location": "/nonexistent/ca.pem"}
	verr := bad.Validate()
	if verr == nil {
		t.Fatal("Validate passed an unknown mechanism and a missing CA file")
	}
	for _, want := range []string{"kafka.sasl.mechanism: unknown mechanism", "kafka.ssl.ca.location:"} {
		if !strings.Contains(verr.Error(), want) {
			t.Errorf("Validate error lacks %q: %v", want, verr)
		}
	}

	shown := map[string]string{
		"Settings (unresolved)": c.String(), "Settings (resolved)": rc.String(),
		"validation error": verr.Error(), "logs": logs.String(),
	}
	for where, text := range shown {
		for _, s := range []string{kafkaPW, regPW, httpTok} {
			if strings.Contains(text, s) {
				t.Errorf("%s shows secret %q:\n%s", where, s, text)
			}
		}
	}
	if !strings.Contains(rc.String(), "kafka.sasl.password=[redacted]") || !strings.Contains(c.String(), "kafka.sasl.password=${env:EOS_TEST_KAFKA_PW}") {
		t.Errorf("settings:\n%s\n%s", c.String(), rc.String())
	}
	if !strings.Contains(logs.String(), "auth failed for alice with [redacted]") {
		t.Errorf("librdkafka line not forwarded scrubbed:\n%s", logs.String())
	}
}

func TestSecurityHTTPLoopbackDefault(t *testing.T) {
	for in, want := range map[string]string{":9090": "127.0.0.1:9090", "0.0.0.0:9090": "0.0.0.0:9090", "[::1]:1": "[::1]:1"} {
		if got := loopbackDefault(in); got != want {
			t.Errorf("loopbackDefault(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestSecurityHTTPAuth: with basic auth and a bearer token configured, a
// request needs one of them.
func TestSecurityHTTPAuth(t *testing.T) {
	h := HTTPConfig{BasicAuthUserInfo: "ops:ops-pw", BearerAuthToken: "tok-123"}
	srv := httptest.NewServer(h.guard(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok")) })))
	defer srv.Close()
	for _, c := range []struct {
		name string
		set  func(*http.Request)
		want int
	}{
		{"none", func(*http.Request) {}, 401},
		{"basic", func(r *http.Request) { r.SetBasicAuth("ops", "ops-pw") }, 200},
		{"basic wrong", func(r *http.Request) { r.SetBasicAuth("ops", "nope") }, 401},
		{"bearer", func(r *http.Request) { r.Header.Set("Authorization", "Bearer tok-123") }, 200},
		{"bearer wrong", func(r *http.Request) { r.Header.Set("Authorization", "Bearer tok-124") }, 401},
	} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/metrics", nil)
		c.set(req)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%s: %d, want %d", c.name, resp.StatusCode, c.want)
		}
	}
}
