package integration

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eos-runner/eos-runner/internal/certs"
	"github.com/eos-runner/eos-runner/internal/kafkasec"
)

// The secured stack: `eos-runner broker` requiring SASL/SCRAM-SHA-512 over
// TLS, `eos-runner registry` requiring basic auth over TLS, certificates
// generated for the test. The passwords reach every process through
// ${env:...} and ${file:...} references only, never a command line, and
// must never show in any output.
const (
	secureKafkaPW    = "kafka-it-pw-6ea1f0"
	secureRegistryPW = "registry-it-pw-93b2c4"
)

type secureStack struct {
	dir      string
	tls      certs.Files
	brokers  string
	registry string
	config   string // the clients' YAML config file
}

// startSecureStack starts the secured broker and registry and writes the
// clients' config: security settings under Kafka's and Confluent's names.
func startSecureStack(t *testing.T) *secureStack {
	t.Helper()
	if externalBrokers() != "" {
		t.Skip("the secured stack is the embedded one")
	}
	t.Setenv("EOS_IT_KAFKA_PW", secureKafkaPW) // inherited by every process started below
	s := &secureStack{dir: t.TempDir()}
	var err error
	if s.tls, err = certs.Generate(filepath.Join(s.dir, "tls")); err != nil {
		t.Fatal(err)
	}
	users := filepath.Join(s.dir, "kafka-users")
	write(t, users, "SCRAM-SHA-512:alice:${env:EOS_IT_KAFKA_PW}\n")
	s.brokers = startProc(t, "broker", "bootstrap: ", brokerBinary, "broker", "--listen", "127.0.0.1:0",
		"--data-dir", filepath.Join(s.dir, "broker"), "--tls-dir", filepath.Join(s.dir, "tls"), "--sasl-users-file", users)
	regUsers := filepath.Join(s.dir, "registry-users")
	write(t, regUsers, "reg:"+secureRegistryPW+"\n")
	s.registry = startProc(t, "registry", "registry: ", binary, "registry", "--listen", "127.0.0.1:0",
		"--tls-dir", filepath.Join(s.dir, "tls"), "--basic-auth-users-file", regUsers)
	regPWFile := filepath.Join(s.dir, "registry-pw")
	write(t, regPWFile, secureRegistryPW+"\n")
	s.config = filepath.Join(s.dir, "secure.yaml")
	write(t, s.config, fmt.Sprintf(`kafka:
  security.protocol: SASL_SSL
  sasl.mechanism: SCRAM-SHA-512
  sasl.username: alice
  sasl.password: ${env:EOS_IT_KAFKA_PW}
  ssl.ca.location: %s
schema.registry.url: %s
basic.auth.credentials.source: USER_INFO
basic.auth.user.info: reg:${file:%s}
schema.registry.ssl.ca.location: %s
`, s.tls.CA, s.registry, regPWFile, s.tls.CA))
	return s
}

func write(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// startProc starts a long-running eos-runner command and returns what it
// prints after prefix on its first stdout line.
func startProc(t *testing.T, name, prefix, bin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, append(args, "--log-level", "warn")...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = logFile(t, name)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("%s did not print its address: %v", name, err)
	}
	v, ok := strings.CutPrefix(strings.TrimSpace(line), prefix)
	if !ok {
		t.Fatalf("%s printed %q", name, line)
	}
	go io.Copy(io.Discard, stdout)
	return v
}

// kafka is a franz-go client with the stack's security settings.
func (s *secureStack) kafka(t *testing.T) *kafka {
	t.Helper()
	opts, err := kafkasec.FranzOpts(kafkasec.Settings{"security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512",
		"sasl.username": "alice", "sasl.password": secureKafkaPW, "ssl.ca.location": s.tls.CA})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(append(opts, kgo.SeedBrokers(s.brokers))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &kafka{cl: cl, adm: kadm.NewClient(cl)}
}

// cli runs a short eos-runner command to its end and returns its combined
// output and exit error.
func cli(t *testing.T, timeout time.Duration, args ...string) (string, error, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	out, err := exec.CommandContext(ctx, binary, args...).CombinedOutput()
	return string(out), err, time.Since(start)
}

func assertNoSecret(t *testing.T, where, text string) {
	t.Helper()
	for _, s := range []string{secureKafkaPW, secureRegistryPW} {
		if strings.Contains(text, s) {
			t.Errorf("%s shows a password:\n%s", where, text)
		}
	}
}

// TestSecureVerifyExactlyOnce: the verify workload end to end against the
// SCRAM-SHA-512 + TLS broker, every client (the CLI's franz-go generate and
// check, the runner's librdkafka consumer, producer, admin and restore
// consumer) configured once by the same file; exactly once is checked. Then
// the pageviews topology registers its Avro sink schemas in the basic-auth
// TLS registry, and `schema check` reads them back. No password shows in
// any output.
func TestSecureVerifyExactlyOnce(t *testing.T) {
	const records = 20_000
	s := startSecureStack(t)
	topic := uniqueTopic("secure")
	out, err, took := cli(t, time.Minute, "verify", "generate", "--brokers", s.brokers, "--config", s.config,
		"--topic", topic, "--records", fmt.Sprint(records), "--keys", "500", "--partitions", "4")
	if err != nil {
		t.Fatalf("verify generate: %v\n%s", err, out)
	}
	t.Logf("generated %d records over SASL_SSL in %v", records, took.Round(time.Millisecond))

	k := s.kafka(t)
	ctx := context.Background()
	start := time.Now()
	r := startRunner(t, append(processArgs(s.brokers, topic, "a", t.TempDir(), 100*time.Millisecond), "--config", s.config)...)
	waitFor(t, 3*time.Minute, "all input committed", func() bool { return k.committed(ctx, topic+"-verify", topic) == records })
	t.Logf("processed %d records exactly once over SASL_SSL in %v", records, time.Since(start).Round(time.Millisecond))
	if err := r.stop(); err != nil {
		t.Fatalf("runner exit: %v", err)
	}
	out, err, _ = cli(t, 2*time.Minute, "verify", "check", "--brokers", s.brokers, "--config", s.config, "--input", topic)
	if err != nil || !strings.Contains(out, "PASS") {
		t.Fatalf("verify check: %v\n%s", err, out)
	}
	t.Log(strings.SplitN(out, "\n", 2)[0])
	assertNoSecret(t, "verify check", out)
	r.mu.Lock()
	for _, l := range r.logs {
		assertNoSecret(t, "runner log", fmt.Sprint(l))
	}
	assertNoSecret(t, "runner stderr", strings.Join(r.plain, "\n"))
	r.mu.Unlock()

	// The registry: a topology with Avro sinks registers its schemas
	// through basic auth over TLS, and schema check sees them.
	if _, err := k.adm.CreateTopics(ctx, 2, 1, nil, "pageviews"); err != nil {
		t.Fatal(err)
	}
	pv := startRunner(t, "run", "--topology", "pageviews", "--auto-register", "--config", s.config,
		"--set", "application.id=secure-pv", "--set", "bootstrap.servers="+s.brokers, "--set", "state.dir="+t.TempDir(),
		"--set", "create.topics=true", "--set", "session.timeout.ms=6000", "--set", "transaction.timeout.ms=5000")
	waitFor(t, time.Minute, "the pageviews runner to start", func() bool { return len(pv.find("runner started")) > 0 })
	if err := pv.stop(); err != nil {
		t.Fatalf("pageviews runner exit: %v", err)
	}
	out, err, _ = cli(t, time.Minute, "schema", "check", "--topology", "pageviews", "--config", s.config, "--set", "application.id=secure-pv")
	if err != nil || !strings.Contains(out, "registered") {
		t.Fatalf("schema check: %v\n%s", err, out)
	}
	t.Logf("schema check over basic auth + TLS:\n%s", out)
	assertNoSecret(t, "schema check", out)
	out, _, _ = cli(t, time.Minute, "config", "print", "--config", s.config, "--set", "kafka.ssl.key.password=literal-"+secureKafkaPW)
	assertNoSecret(t, "config print", out)
	if !strings.Contains(out, "kafka.ssl.key.password=[redacted]") {
		t.Errorf("config print:\n%s", out)
	}
}

// TestSecureClearErrors: each misconfiguration stops the runner within
// seconds with one error line naming the setting and the broker (or
// registry), and no password.
func TestSecureClearErrors(t *testing.T) {
	s := startSecureStack(t)
	other, err := certs.Generate(filepath.Join(t.TempDir(), "other-ca"))
	if err != nil {
		t.Fatal(err)
	}
	topic := uniqueTopic("secure-err")
	if _, err := s.kafka(t).adm.CreateTopics(context.Background(), 4, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		args  []string
		wants []string
	}{
		{"wrong password", []string{"--set", "kafka.sasl.password=wrong-" + secureKafkaPW},
			[]string{"kafka.sasl.password:", "rejected the credentials", s.brokers}},
		{"unknown mechanism", []string{"--set", "kafka.sasl.mechanism=SCRAM-SHA-1"},
			[]string{"kafka.sasl.mechanism:", "unknown mechanism", "SCRAM-SHA-1"}},
		{"untrusted certificate", []string{"--set", "kafka.ssl.ca.location=" + other.CA},
			[]string{"kafka.ssl.ca.location:", "not trusted", s.brokers}},
		{"missing CA file", []string{"--set", "kafka.ssl.ca.location=" + filepath.Join(t.TempDir(), "nope.pem")},
			[]string{"kafka.ssl.ca.location:", "no such file"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := append(processArgs(s.brokers, topic, "e", t.TempDir(), 100*time.Millisecond), "--config", s.config)
			out, err, took := cli(t, time.Minute, append(args, c.args...)...)
			checkClearError(t, out, err, took, c.wants)
		})
	}
	t.Run("registry wrong password", func(t *testing.T) {
		out, err, took := cli(t, time.Minute, "run", "--topology", "pageviews", "--config", s.config,
			"--set", "application.id=secure-err", "--set", "bootstrap.servers="+s.brokers,
			"--set", "basic.auth.user.info=reg:wrong-"+secureRegistryPW)
		checkClearError(t, out, err, took, []string{"basic.auth.user.info:", "rejected the credentials", s.registry})
	})
	t.Run("registry untrusted certificate", func(t *testing.T) {
		out, err, took := cli(t, time.Minute, "schema", "check", "--topology", "pageviews", "--config", s.config,
			"--set", "application.id=secure-err", "--set", "schema.registry.ssl.ca.location="+other.CA)
		checkClearError(t, out, err, took, []string{"schema.registry.ssl.ca.location:", "not trusted", s.registry})
	})
}

// checkClearError: a non-zero exit within 15s, one "eos-runner:" error line
// holding every want, no librdkafka retry storm, no password.
func checkClearError(t *testing.T, out string, err error, took time.Duration, wants []string) {
	t.Helper()
	t.Logf("exit after %v: %s", took.Round(time.Millisecond), strings.TrimSpace(out))
	if err == nil {
		t.Fatalf("exited 0")
	}
	if took > 15*time.Second {
		t.Errorf("took %v to fail, want seconds", took)
	}
	var errLines, rdkafka int
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "eos-runner:") {
			errLines++
			for _, w := range wants {
				if !strings.Contains(l, w) {
					t.Errorf("error line lacks %q: %s", w, l)
				}
			}
		}
		if strings.Contains(l, "librdkafka") || strings.HasPrefix(l, "%") {
			rdkafka++
		}
	}
	if errLines != 1 {
		t.Errorf("%d error lines, want 1", errLines)
	}
	if rdkafka > 3 {
		t.Errorf("%d librdkafka lines: a retry storm", rdkafka)
	}
	assertNoSecret(t, "output", out)
}
