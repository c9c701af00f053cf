package processor

import (
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
)

// validConfig is the smallest config that passes Validate (the instance id
// is set so that the host name does not matter).
func validConfig() Config {
	return Config{ApplicationID: "app", BootstrapServers: "localhost:9092", InstanceID: "i1"}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(c *Config)
		want []string // substrings, each of a separate problem; none: valid
	}{
		{"valid", func(c *Config) {}, nil},
		{"valid at_least_once", func(c *Config) { c.ProcessingGuarantee = AtLeastOnce }, nil},
		{"missing application.id", func(c *Config) { c.ApplicationID = "" }, []string{"application.id: required"}},
		{"application.id with a slash", func(c *Config) { c.ApplicationID = "a/b" }, []string{`application.id: "a/b" may not contain`}},
		{"application.id with a space", func(c *Config) { c.ApplicationID = "a b" }, []string{`application.id: "a b"`}},
		{"missing bootstrap.servers", func(c *Config) { c.BootstrapServers = "" }, []string{"bootstrap.servers: required"}},
		{"bad processing.guarantee", func(c *Config) { c.ProcessingGuarantee = "exactly_once" },
			[]string{`processing.guarantee: "exactly_once" is not exactly_once_v2 or at_least_once`}},
		{"bad on.error", func(c *Config) { c.OnError = "retry" }, []string{`on.error: "retry" is not dlq, skip or fail`}},
		{"on.error fail", func(c *Config) { c.OnError = OnErrorFail }, nil},
		{"on.error skip", func(c *Config) { c.OnError = OnErrorSkip }, nil},
		{"negative commit.interval.ms", func(c *Config) { c.CommitIntervalMs = -5 }, []string{"commit.interval.ms: -5ms is negative"}},
		{"negative commit.max.records", func(c *Config) { c.CommitMaxRecords = -1 }, []string{"commit.max.records: -1 is negative"}},
		{"negative num.stream.threads", func(c *Config) { c.NumStreamThreads = -2 }, []string{"num.stream.threads: -2 is negative"}},
		{"transaction timeout equal to session timeout", func(c *Config) {
			c.TransactionTimeoutMs, c.SessionTimeoutMs = 45000, 45000
		}, []string{"transaction.timeout.ms (45000) must be below session.timeout.ms (45000)"}},
		{"transaction timeout above session timeout", func(c *Config) {
			c.TransactionTimeoutMs, c.SessionTimeoutMs = 60000, 10000
		}, []string{"transaction.timeout.ms (60000) must be below session.timeout.ms (10000)"}},
		{"transaction timeout above the default session timeout", func(c *Config) { c.TransactionTimeoutMs = 50000 },
			[]string{"transaction.timeout.ms (50000) must be below session.timeout.ms (45000)"}},
		{"transaction timeout unchecked under at_least_once", func(c *Config) {
			c.ProcessingGuarantee = AtLeastOnce
			c.TransactionTimeoutMs, c.SessionTimeoutMs = 60000, 10000
		}, nil},
		{"Duration fields too", func(c *Config) { c.TransactionTimeout, c.SessionTimeout = time.Minute, time.Second },
			[]string{"transaction.timeout.ms (60000) must be below session.timeout.ms (1000)"}},
		{"commit interval equal to transaction timeout", func(c *Config) { c.CommitIntervalMs = 30000 },
			[]string{"commit.interval.ms (30000) must be below transaction.timeout.ms (30000)"}},
		{"commit interval above transaction timeout", func(c *Config) {
			c.CommitIntervalMs, c.TransactionTimeoutMs = 20000, 10000
		}, []string{"commit.interval.ms (20000) must be below transaction.timeout.ms (10000)"}},
		{"kafka.message.timeout.ms above transaction timeout", func(c *Config) {
			c.Kafka = map[string]string{"message.timeout.ms": "60000"}
		}, []string{"kafka.message.timeout.ms (60000) must not exceed transaction.timeout.ms (30000)"}},
		{"kafka.message.timeout.ms equal to transaction timeout", func(c *Config) {
			c.Kafka = map[string]string{"message.timeout.ms": "30000"}
		}, nil},
		{"kafka.message.timeout.ms not an integer", func(c *Config) {
			c.Kafka = map[string]string{"message.timeout.ms": "1m"}
		}, []string{`kafka.message.timeout.ms: "1m" is not an integer`}},
		{"kafka.message.timeout.ms unchecked under at_least_once", func(c *Config) {
			c.ProcessingGuarantee = AtLeastOnce
			c.Kafka = map[string]string{"message.timeout.ms": "600000"}
		}, nil},
		{"kafka pass-through", func(c *Config) {
			c.Kafka = map[string]string{"security.protocol": "SASL_SSL", "consumer.fetch.min.bytes": "1", "producer.linger.ms": "20"}
		}, nil},
		{"reserved kafka.group.id", func(c *Config) { c.Kafka = map[string]string{"group.id": "other"} },
			[]string{"kafka.group.id: set by the runner"}},
		{"reserved kafka.consumer.isolation.level", func(c *Config) {
			c.Kafka = map[string]string{"consumer.isolation.level": "read_uncommitted"}
		}, []string{"kafka.consumer.isolation.level: set by the runner"}},
		{"reserved kafka.producer.transactional.id", func(c *Config) {
			c.Kafka = map[string]string{"producer.transactional.id": "x"}
		}, []string{"kafka.producer.transactional.id: set by the runner"}},
		{"every reserved key", func(c *Config) {
			c.Kafka = map[string]string{}
			for _, k := range reserved {
				c.Kafka[k] = "x"
			}
		}, []string{"kafka.group.id:", "kafka.transactional.id:", "kafka.isolation.level:", "kafka.enable.auto.commit:",
			"kafka.enable.auto.offset.store:", "kafka.partition.assignment.strategy:", "kafka.enable.idempotence:",
			"kafka.bootstrap.servers:", "kafka.session.timeout.ms:", "kafka.transaction.timeout.ms:", "kafka.group.instance.id:"}},
		{"several problems at once", func(c *Config) {
			c.ApplicationID = ""
			c.BootstrapServers = ""
			c.ProcessingGuarantee = "eos"
			c.OnError = "ignore"
			c.TransactionTimeoutMs = 50000
			c.Kafka = map[string]string{"group.id": "g", "consumer.enable.auto.commit": "true"}
		}, []string{"application.id: required", "bootstrap.servers: required", `processing.guarantee: "eos"`,
			`on.error: "ignore"`, "kafka.group.id:", "kafka.consumer.enable.auto.commit:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig()
			tc.edit(&c)
			err := c.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate = nil, want %q", tc.want)
			}
			// errors.Join: one problem per line.
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tc.want) {
				t.Errorf("Validate reported %d problems, want %d:\n%v", len(lines), len(tc.want), err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate = %q\nwant it to contain %q", err, w)
				}
			}
		})
	}
}

// TestConfigValidateRejectsRunnerOwnedKafkaSettings documents a finding: the runner
// sets session.timeout.ms (consumer), transaction.timeout.ms and
// message.timeout.ms (producer) itself, after the pass-through properties
// (Runner.kafkaConfig applies its own map last), so these kafka.* settings
// are silently ignored, and Validate neither rejects them as it does the
// reserved keys nor checks them against each other. A user who tunes
// kafka.session.timeout.ms believes the transaction timeout is checked
// against it; it is not. Each case here is wrong however the fix goes
// (reject as reserved, or honor and check): a value that breaks
// transaction < session, or message <= transaction.
func TestConfigValidateRejectsRunnerOwnedKafkaSettings(t *testing.T) {
	for _, kv := range [][2]string{
		{"session.timeout.ms", "20000"},          // below the default transaction timeout
		{"consumer.session.timeout.ms", "20000"}, // the same, client-prefixed
		{"transaction.timeout.ms", "50000"},      // above the default session timeout
		{"producer.transaction.timeout.ms", "50000"},
		{"producer.message.timeout.ms", "600000"}, // above the transaction timeout; only the unprefixed key is checked
	} {
		t.Run(kv[0], func(t *testing.T) {
			c := validConfig()
			c.Kafka = map[string]string{kv[0]: kv[1]}
			if err := c.Validate(); err == nil {
				t.Errorf("Validate accepted kafka.%s=%s, which the runner silently overrides", kv[0], kv[1])
			}
		})
	}
}

func TestConfigSet(t *testing.T) {
	for _, tc := range []struct {
		key, value string
		want       func(c Config) any
		wantValue  any
	}{
		{"application.id", "app", func(c Config) any { return c.ApplicationID }, "app"},
		{"bootstrap.servers", "a:1,b:2", func(c Config) any { return c.BootstrapServers }, "a:1,b:2"},
		{"processing.guarantee", "at_least_once", func(c Config) any { return c.ProcessingGuarantee }, AtLeastOnce},
		{"commit.interval.ms", "250", func(c Config) any { return c.CommitIntervalMs }, 250},
		{"commit.max.records", "1000", func(c Config) any { return c.CommitMaxRecords }, 1000},
		{"state.dir", "/var/lib/x", func(c Config) any { return c.StateDir }, "/var/lib/x"},
		{"state.cleanup.delay.ms", "60000", func(c Config) any { return c.StateCleanupDelayMs }, 60000},
		{"num.stream.threads", "8", func(c Config) any { return c.NumStreamThreads }, 8},
		{"instance.id", "host-a", func(c Config) any { return c.InstanceID }, "host-a"},
		{"on.error", "fail", func(c Config) any { return c.OnError }, OnErrorFail},
		{"dlq.topic", "dead", func(c Config) any { return c.DLQTopic }, "dead"},
		{"create.topics", "true", func(c Config) any { return c.CreateTopics }, true},
		{"create.topics", "false", func(c Config) any { return c.CreateTopics }, false},
		{"session.timeout.ms", "30000", func(c Config) any { return c.SessionTimeoutMs }, 30000},
		{"transaction.timeout.ms", "20000", func(c Config) any { return c.TransactionTimeoutMs }, 20000},
		{"metrics.addr", ":9100", func(c Config) any { return c.MetricsAddr }, ":9100"},
		{"kafka.security.protocol", "SSL", func(c Config) any { return c.Kafka["security.protocol"] }, "SSL"},
		{"kafka.consumer.fetch.min.bytes", "1", func(c Config) any { return c.Kafka["consumer.fetch.min.bytes"] }, "1"},
	} {
		t.Run(tc.key+"="+tc.value, func(t *testing.T) {
			c := Config{CreateTopics: tc.wantValue == false}
			if err := c.Set(tc.key, tc.value); err != nil {
				t.Fatalf("Set: %v", err)
			}
			if got := tc.want(c); got != tc.wantValue {
				t.Errorf("after Set(%q, %q): %v, want %v", tc.key, tc.value, got, tc.wantValue)
			}
		})
	}
}

// TestConfigSetCoversEveryYAMLKey: every key a YAML file accepts can be set
// with --set too.
func TestConfigSetCoversEveryYAMLKey(t *testing.T) {
	typ := reflect.TypeFor[Config]()
	for i := range typ.NumField() {
		key := typ.Field(i).Tag.Get("yaml")
		if key == "" || key == "-" || key == "kafka" {
			continue
		}
		if key == ",inline" { // a struct of settings, each a string
			inner := typ.Field(i).Type
			for j := range inner.NumField() {
				key := inner.Field(j).Tag.Get("yaml")
				var c Config
				if err := c.Set(key, "x"); err != nil {
					t.Errorf("Set(%q): %v", key, err)
				} else if reflect.ValueOf(c).Field(i).Field(j).IsZero() {
					t.Errorf("Set(%q) did not set field %s.%s", key, typ.Field(i).Name, inner.Field(j).Name)
				}
			}
			continue
		}
		value := "1"
		if typ.Field(i).Type.Kind() == reflect.String {
			value = "x"
		}
		var c Config
		if err := c.Set(key, value); err != nil {
			t.Errorf("Set(%q): %v", key, err)
			continue
		}
		if reflect.ValueOf(c).Field(i).IsZero() {
			t.Errorf("Set(%q, %q) did not set field %s", key, value, typ.Field(i).Name)
		}
	}
}

func TestConfigSetErrors(t *testing.T) {
	for _, tc := range []struct{ key, value, want string }{
		{"comit.interval.ms", "100", `"comit.interval.ms"`},
		{"group.id", "x", `"group.id"`},
		{"commit.interval.ms", "1s", `config commit.interval.ms: "1s" is not an integer`},
		{"num.stream.threads", "", `config num.stream.threads: "" is not an integer`},
		{"session.timeout.ms", "4.5", "session.timeout.ms"},
	} {
		var c Config
		err := c.Set(tc.key, tc.value)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Set(%q, %q) = %v, want an error containing %q", tc.key, tc.value, err, tc.want)
		}
	}
}

// TestConfigSetBadBoolNamesKey documents a finding: every other bad value
// names its setting, but create.topics returns strconv's bare error
// (`strconv.ParseBool: parsing "yes": invalid syntax`), so a --set flag's
// user is not told which setting was wrong.
func TestConfigSetBadBoolNamesKey(t *testing.T) {
	var c Config
	err := c.Set("create.topics", "yes")
	if err == nil || !strings.Contains(err.Error(), "create.topics") {
		t.Errorf("Set(create.topics, yes) = %v, want an error naming create.topics", err)
	}
}

func TestLoadConfig(t *testing.T) {
	c, err := LoadConfig(filepath.Join("testdata", "config", "good.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		ApplicationID:        "orders-app",
		BootstrapServers:     "broker-1:9092,broker-2:9092",
		ProcessingGuarantee:  AtLeastOnce,
		CommitIntervalMs:     250,
		CommitMaxRecords:     1000,
		StateDir:             "/var/lib/eos",
		StateCleanupDelayMs:  60000,
		NumStreamThreads:     3,
		InstanceID:           "host-a",
		OnError:              OnErrorSkip,
		DLQTopic:             "orders-dead",
		CreateTopics:         true,
		SessionTimeoutMs:     30000,
		TransactionTimeoutMs: 20000,
		MetricsAddr:          ":9100",
		Kafka: map[string]string{
			"security.protocol":        "SASL_SSL",
			"consumer.fetch.min.bytes": "1024",
			"producer.linger.ms":       "20",
		},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("LoadConfig:\n got %+v\nwant %+v", c, want)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	d := c.withDefaults()
	if d.CommitInterval != 250*time.Millisecond || d.SessionTimeout != 30*time.Second ||
		d.TransactionTimeout != 20*time.Second || d.StateCleanupDelay != time.Minute {
		t.Errorf("durations from the file: %+v", d)
	}
}

func TestLoadConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		file string
		want []string
	}{
		{"unknown_key.yaml", []string{"unknown_key.yaml", "commit.interval", "line 3"}},
		{"bad_type.yaml", []string{"bad_type.yaml", "line 3", "many"}},
		{"does_not_exist.yaml", []string{"does_not_exist.yaml"}},
	} {
		_, err := LoadConfig(filepath.Join("testdata", "config", tc.file))
		if err == nil {
			t.Errorf("%s: LoadConfig = nil, want an error", tc.file)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: LoadConfig = %q, want it to contain %q", tc.file, err, w)
			}
		}
	}
	if _, err := LoadConfig(filepath.Join("testdata", "config", "does_not_exist.yaml")); !os.IsNotExist(unwrapAll(err)) {
		t.Errorf("a missing file: %v, want it to wrap fs.ErrNotExist", err)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}

// TestLoadConfigCommentsOnly documents a finding: a file with nothing set
// (only comments, or empty: a fresh template) fails with a bare "EOF" from
// the YAML decoder instead of loading as all defaults.
func TestLoadConfigCommentsOnly(t *testing.T) {
	c, err := LoadConfig(filepath.Join("testdata", "config", "comments_only.yaml"))
	if err != nil {
		t.Fatalf("LoadConfig = %v, want an empty Config", err)
	}
	if !reflect.DeepEqual(c, Config{}) {
		t.Errorf("LoadConfig = %+v, want an empty Config", c)
	}
}

func TestConfigWithDefaults(t *testing.T) {
	host, _ := os.Hostname()
	d := Config{ApplicationID: "app"}.withDefaults()
	want := Config{
		ApplicationID:       "app",
		ProcessingGuarantee: ExactlyOnceV2,
		CommitInterval:      100 * time.Millisecond,
		CommitMaxRecords:    50000,
		StateDir:            os.TempDir() + "/eos-runner",
		StateCleanupDelay:   10 * time.Minute,
		NumStreamThreads:    runtime.NumCPU(),
		InstanceID:          host,
		OnError:             OnErrorDLQ,
		DLQTopic:            "app-dlq",
		SessionTimeout:      45 * time.Second,
		TransactionTimeout:  30 * time.Second,

		RepartitionPurgeInterval:           30 * time.Second,
		WindowChangelogAdditionalRetention: 24 * time.Hour,
		LateRecords:                        LateRecordsDrop,
	}
	if !reflect.DeepEqual(d, want) {
		t.Errorf("withDefaults:\n got %+v\nwant %+v", d, want)
	}
	// No application.id: no DLQ topic to derive.
	if d := (Config{}).withDefaults(); d.DLQTopic != "" {
		t.Errorf("DLQTopic without application.id = %q", d.DLQTopic)
	}
	// Set values are kept; a Duration field wins over its *Ms twin.
	set := Config{
		ApplicationID: "app", ProcessingGuarantee: AtLeastOnce, CommitInterval: 2 * time.Second, CommitIntervalMs: 5,
		CommitMaxRecords: 7, StateDir: "/s", StateCleanupDelayMs: 1000, NumStreamThreads: 2, InstanceID: "i",
		OnError: OnErrorFail, DLQTopic: "d", SessionTimeoutMs: 9000, TransactionTimeout: time.Second,
	}
	d = set.withDefaults()
	if d.ProcessingGuarantee != AtLeastOnce || d.CommitInterval != 2*time.Second || d.CommitMaxRecords != 7 ||
		d.StateDir != "/s" || d.StateCleanupDelay != time.Second || d.NumStreamThreads != 2 || d.InstanceID != "i" ||
		d.OnError != OnErrorFail || d.DLQTopic != "d" || d.SessionTimeout != 9*time.Second || d.TransactionTimeout != time.Second {
		t.Errorf("withDefaults changed set values: %+v", d)
	}
	// withDefaults has a value receiver: the caller's Config is untouched.
	if set.CommitMaxRecords != 7 || set.SessionTimeout != 0 {
		t.Errorf("withDefaults modified its receiver: %+v", set)
	}
}

// TestConfigSourcesEveryProblemAtOnce: an unknown key in the file hides
// neither a bad value below it, nor a bad environment variable, nor a bad
// --set; each names its line, variable or setting.
func TestConfigSourcesEveryProblemAtOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.yaml")
	if err := os.WriteFile(path, []byte("application.id: a\ncommit.interval: 100\nnum.stream.threads: many\nkafka:\n  linger.ms: 5\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := NewConfigSources(Config{})
	s.File(path)
	s.Env([]string{"EOS_RUNNER_SESSION_TIMEOUT_MS=soon", "EOS_RUNNER_BOOTSTRAP_SERVERS=b:9092", "HOME=/root"})
	s.Set("bogus.setting", "1")
	s.Set("instance.id", "i")
	err := s.Err()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"line 2", `"commit.interval"`, "line 3", `"many"`, "EOS_RUNNER_SESSION_TIMEOUT_MS", `"bogus.setting"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if n := len(strings.Split(err.Error(), "\n")); n != 4 {
		t.Errorf("%d problems, want 4:\n%v", n, err)
	}
	want := map[string]string{"application.id": SourceFile, "kafka.linger.ms": SourceFile, "bootstrap.servers": SourceEnv, "instance.id": SourceFlag}
	for k, v := range want {
		if s.Origins[k] != v {
			t.Errorf("origin of %s = %q, want %q", k, s.Origins[k], v)
		}
	}
}

func TestConfigEffectiveSettings(t *testing.T) {
	s := NewConfigSources(Config{})
	s.Env([]string{"EOS_RUNNER_APPLICATION_ID=from-env", "EOS_RUNNER_KAFKA_SASL_PASSWORD=hunter2", "EOS_RUNNER_KAFKA_LOG__LEVEL=7"})
	s.Set("application.id", "from-flag")
	s.Set("commit.interval.ms", "250")
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	got := map[string]Setting{}
	for _, st := range s.Config.EffectiveSettings(s.Origins) {
		got[st.Name] = st
	}
	for _, want := range []Setting{
		{"application.id", "from-flag", SourceFlag},
		{"commit.interval.ms", "250", SourceFlag},
		{"transaction.timeout.ms", "30000", SourceDefault},
		{"static.membership", "false", SourceDefault},
		{"kafka.sasl.password", "[redacted]", SourceEnv},
		{"kafka.log_level", "7", SourceEnv},
		{"dlq.topic", "from-flag-dlq", SourceDefault},
	} {
		if got[want.Name] != want {
			t.Errorf("%s: got %+v, want %+v", want.Name, got[want.Name], want)
		}
	}
	if _, ok := got["metrics.addr"]; ok {
		t.Error("an unset setting without a default is listed")
	}
}
