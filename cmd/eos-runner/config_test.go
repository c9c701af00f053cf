package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigPrintSources: config print shows every effective setting with
// the source of its value, later sources winning: default < file < env < flag.
func TestConfigPrintSources(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.yaml")
	if err := os.WriteFile(path, []byte("application.id: app\nbootstrap.servers: file:9092\ninstance.id: from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("EOS_RUNNER_BOOTSTRAP_SERVERS", "env:9092")
	t.Setenv("EOS_RUNNER_KAFKA_SASL_PASSWORD", "hunter2")
	var out, errb bytes.Buffer
	if code := run([]string{"config", "print", "--config", path, "--set", "instance.id=from-flag"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	t.Logf("\n%s", out.String())
	for _, want := range []string{"application.id=app", "bootstrap.servers=env:9092", "instance.id=from-flag", "commit.interval.ms=100", "kafka.sasl.password=[redacted]"} {
		src := map[string]string{"application.id=app": "# file", "bootstrap.servers=env:9092": "# env", "instance.id=from-flag": "# flag",
			"commit.interval.ms=100": "# default", "kafka.sasl.password=[redacted]": "# env"}[want]
		found := false
		for _, line := range strings.Split(out.String(), "\n") {
			if strings.HasPrefix(line, want+" ") && strings.HasSuffix(line, src) {
				found = true
			}
		}
		if !found {
			t.Errorf("no line %q ... %q", want, src)
		}
	}
	if strings.Contains(out.String(), "hunter2") {
		t.Error("the secret is printed")
	}
}

// TestRunListsEveryProblem: `run` with an unknown key in the file, a bad
// value, a bad --set and settings that disagree reports them all at once.
func TestRunListsEveryProblem(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.yaml")
	if err := os.WriteFile(path, []byte("bootstrap.servers: b:9092\ncommit.interval: 100\nnum.stream.threads: many\ntransaction.timeout.ms: 60000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := run([]string{"run", "--topology", "verify", "--config", path, "--set", "bogus.setting=1", "--set", "on.error=ignore"}, &out, &errb)
	if code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
	t.Logf("\n%s", errb.String())
	for _, want := range []string{`"commit.interval"`, `"many"`, `"bogus.setting"`, "application.id: required", `on.error: "ignore"`,
		"transaction.timeout.ms (60000) must be below session.timeout.ms"} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("stderr lacks %q", want)
		}
	}
}
