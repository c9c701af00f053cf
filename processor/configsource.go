package processor

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/eos-runner/eos-runner/internal/secret"
)

// Where a setting's value came from, lowest precedence first: a later
// source overrides an earlier one.
const (
	SourceDefault = "default"
	SourceFile    = "file" // --config
	SourceEnv     = "env"  // EOS_RUNNER_* (EnvPrefix)
	SourceFlag    = "flag" // --set, or a command's own flag
)

// Origins maps a setting's name (kafka.* included) to the source that set
// it last. A nil Origins records nothing.
type Origins map[string]string

func (o Origins) set(key, source string) {
	if o != nil {
		o[key] = source
	}
}

// EnvPrefix starts the environment variables that set a setting, named by
// Confluent's container convention: the setting's name upper-cased with
// "." as "_" and "_" as "__", e.g. EOS_RUNNER_APPLICATION_ID for
// application.id, EOS_RUNNER_KAFKA_SASL_PASSWORD for kafka.sasl.password,
// EOS_RUNNER_KAFKA_LOG__LEVEL for kafka.log_level.
const EnvPrefix = "EOS_RUNNER_"

// EnvKey is the setting an EOS_RUNNER_* variable name sets ("" when name
// lacks the prefix).
func EnvKey(name string) string {
	rest, ok := strings.CutPrefix(name, EnvPrefix)
	if !ok || rest == "" {
		return ""
	}
	parts := strings.Split(strings.ToLower(rest), "__")
	for i, p := range parts {
		parts[i] = strings.ReplaceAll(p, "_", ".")
	}
	return strings.Join(parts, "_")
}

// ConfigSources builds a Config from its sources in precedence order: the
// defaults (or a command's base), a YAML file, the environment, then flags.
// It keeps going past a bad setting, so Err lists every problem at once,
// and records where each setting came from for `eos-runner config print`.
type ConfigSources struct {
	Config  Config
	Origins Origins
	errs    []error
}

// NewConfigSources starts from base; settings base sets count as flags (a
// command's own flags, e.g. verify's --brokers, fill it).
func NewConfigSources(base Config) *ConfigSources {
	s := &ConfigSources{Config: base, Origins: Origins{}}
	for _, kv := range base.rawSettings() {
		s.Origins[kv[0]] = SourceFlag
	}
	return s
}

// File applies a YAML file of settings (LoadConfigInto).
func (s *ConfigSources) File(path string) {
	if err := loadFile(path, &s.Config, s.Origins); err != nil {
		s.errs = append(s.errs, err)
	}
}

// Env applies the EOS_RUNNER_* variables of environ ("NAME=value" each, as
// os.Environ returns them), in name order.
func (s *ConfigSources) Env(environ []string) {
	sorted := append([]string(nil), environ...)
	sort.Strings(sorted)
	for _, kv := range sorted {
		name, value, _ := strings.Cut(kv, "=")
		key := EnvKey(name)
		if key == "" {
			continue
		}
		if err := s.Config.Set(key, value); err != nil {
			s.errs = append(s.errs, fmt.Errorf("environment %s: %w", name, err))
			continue
		}
		s.Origins.set(key, SourceEnv)
	}
}

// Set applies one key=value flag.
func (s *ConfigSources) Set(key, value string) {
	if err := s.Config.Set(key, value); err != nil {
		s.errs = append(s.errs, err)
		return
	}
	s.Origins.set(key, SourceFlag)
}

// Err is every problem the sources had, nil when none.
func (s *ConfigSources) Err() error { return errors.Join(s.errs...) }

// Setting is one effective setting: its name, its value (a secret
// redacted, a ${env:...} or ${file:...} reference as written) and where
// the value came from.
type Setting struct {
	Name, Value, Source string
}

// EffectiveSettings lists every setting the runner would use, defaults
// included, sorted by name, each with its source from origins (unset ones
// with an empty value are left out unless a default fills them).
func (c Config) EffectiveSettings(origins Origins) []Setting {
	d := c.withDefaults()
	ms := func(v int) string { return strconv.Itoa(v) }
	dur := func(x interface{ Milliseconds() int64 }) string { return strconv.FormatInt(x.Milliseconds(), 10) }
	vals := map[string]string{
		"application.id":             d.ApplicationID,
		"bootstrap.servers":          d.BootstrapServers,
		"processing.guarantee":       d.ProcessingGuarantee,
		"commit.interval.ms":         dur(d.CommitInterval),
		"commit.max.records":         ms(d.CommitMaxRecords),
		"statestore.cache.max.bytes": strconv.FormatInt(d.StateStoreCacheMaxBytes, 10),
		"state.dir":                  d.StateDir,
		"state.cleanup.delay.ms":     dur(d.StateCleanupDelay),
		"num.stream.threads":         ms(d.NumStreamThreads),
		"instance.id":                d.InstanceID,
		"on.error":                   d.OnError,
		"late.records":               d.LateRecords,
		"windowstore.changelog.additional.retention.ms": dur(d.WindowChangelogAdditionalRetention),
		"dlq.topic":                     d.DLQTopic,
		"create.topics":                 strconv.FormatBool(d.CreateTopics),
		"session.timeout.ms":            dur(d.SessionTimeout),
		"transaction.timeout.ms":        dur(d.TransactionTimeout),
		"repartition.purge.interval.ms": dur(d.RepartitionPurgeInterval),
		"max.task.idle.ms":              dur(d.MaxTaskIdle),
		"metrics.addr":                  d.MetricsAddr,
		"application.server":            d.ApplicationServer,
		"static.membership":             strconv.FormatBool(d.StaticMembership),
	}
	for name, p := range d.HTTP.fields() {
		vals[name] = *p
	}
	for _, kv := range d.SchemaRegistry.Settings() {
		vals[kv[0]] = kv[1]
	}
	for k, v := range d.Kafka {
		vals["kafka."+k] = v
	}
	var out []Setting
	for name, v := range vals {
		src := origins[name]
		if src == "" {
			if v == "" {
				continue
			}
			src = SourceDefault
		}
		out = append(out, Setting{Name: name, Value: secret.Redact(name, v), Source: src})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// rawSettings are the settings c sets itself (no defaults), by name.
func (c Config) rawSettings() [][2]string { return c.Settings() }
