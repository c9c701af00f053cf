package processor

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/eos-runner/eos-runner/schema/registry"
)

// Processing guarantees, named as Kafka Streams' processing.guarantee values.
const (
	ExactlyOnceV2 = "exactly_once_v2"
	AtLeastOnce   = "at_least_once"
)

// Error policies for records that fail to deserialize or to process
// (docs/architecture.md, section 7).
// What happens to late records (Config.LateRecords).
const (
	LateRecordsDrop = "drop"
	LateRecordsDLQ  = "dlq"
)

const (
	OnErrorDLQ  = "dlq"
	OnErrorSkip = "skip"
	OnErrorFail = "fail"
)

// Config configures a Runner. Names follow Kafka Streams where one exists;
// the zero value of a field means its default. Kafka holds librdkafka
// properties passed through to every client (`consumer.`, `producer.` and
// `admin.` prefixes restrict one to one client); the
// runner's own settings (group.id, transactional.id, isolation.level,
// enable.auto.commit, partition.assignment.strategy) cannot be overridden
// there.
type Config struct {
	// ApplicationID names the consumer group, prefixes internal topics and the
	// state directory. Required. Kafka Streams' application.id.
	ApplicationID string `yaml:"application.id"`
	// BootstrapServers is the Kafka bootstrap list. Required.
	// Kafka Streams' bootstrap.servers.
	BootstrapServers string `yaml:"bootstrap.servers"`
	// ProcessingGuarantee is exactly_once_v2 (default) or at_least_once.
	ProcessingGuarantee string `yaml:"processing.guarantee"`
	// CommitInterval is how often the open transaction commits; default 100ms
	// (Kafka Streams' default under exactly-once). commit.interval.ms.
	CommitInterval   time.Duration `yaml:"-"`
	CommitIntervalMs int           `yaml:"commit.interval.ms"`
	// CommitMaxRecords commits early once this many input records are in the
	// open transaction; default 50000. Bounds the memory of pending batches.
	CommitMaxRecords int `yaml:"commit.max.records"`
	// StateStoreCacheMaxBytes is the record cache's budget for the whole
	// instance, split evenly over its active tasks; default 0: no cache,
	// every update of a stream aggregation is written and forwarded as it
	// happens. Above 0, an aggregation's repeated updates of a key within a
	// commit are merged and only the last is written to the changelog and
	// forwarded, at the commit or when the task's share is full (emit on
	// flush; processor/recordcache.go). Kafka Streams'
	// statestore.cache.max.bytes, whose default is 10 MiB: ours is 0 so
	// that an aggregation emits one output per input unless asked.
	StateStoreCacheMaxBytes int64 `yaml:"statestore.cache.max.bytes"`
	// StateDir holds `<application.id>/`, the Pebble DB; default
	// $TMPDIR/eos-runner. state.dir.
	StateDir string `yaml:"state.dir"`
	// StateCleanupDelay keeps state of partitions no longer owned this long
	// before deleting it; default 10m. state.cleanup.delay.ms.
	StateCleanupDelay   time.Duration `yaml:"-"`
	StateCleanupDelayMs int           `yaml:"state.cleanup.delay.ms"`
	// NumStreamThreads sizes the pool of task workers; default the number of
	// CPUs. num.stream.threads.
	NumStreamThreads int `yaml:"num.stream.threads"`
	// InstanceID identifies this instance; the transactional.id is
	// `<application.id>-<instance.id>` and must be stable across restarts of the
	// same instance and unique among live ones. Default: the host name.
	InstanceID string `yaml:"instance.id"`
	// OnError is dlq (default), skip or fail.
	OnError string `yaml:"on.error"`
	// LateRecords is what happens to a record a windowed operation drops
	// because its windows have closed: drop (default; counted in
	// eos_dropped_records_total{reason="late"} and logged at debug) or dlq
	// (dead-lettered with class "late"). Never the error policy. late.records.
	LateRecords string `yaml:"late.records"`
	// WindowChangelogAdditionalRetention is added to a window or session
	// store's retention for its changelog topic's retention.ms; default 24h.
	// Kafka Streams' windowstore.changelog.additional.retention.ms.
	WindowChangelogAdditionalRetention   time.Duration `yaml:"-"`
	WindowChangelogAdditionalRetentionMs int           `yaml:"windowstore.changelog.additional.retention.ms"`
	// DLQTopic is the dead-letter topic; default `<application.id>-dlq`.
	DLQTopic string `yaml:"dlq.topic"`
	// CreateTopics creates missing sink topics with the partition count of the
	// sources; default false (true under `eos-runner dev`). Internal topics
	// (changelogs, repartition, DLQ) are always created.
	CreateTopics bool `yaml:"create.topics"`
	// SessionTimeout is the consumer's session.timeout.ms; default 45s.
	SessionTimeout   time.Duration `yaml:"-"`
	SessionTimeoutMs int           `yaml:"session.timeout.ms"`
	// TransactionTimeout is the producer's transaction.timeout.ms; default 30s.
	// Must be below SessionTimeout, so that the broker aborts a stuck
	// transaction before the group hands its partitions away.
	TransactionTimeout   time.Duration `yaml:"-"`
	TransactionTimeoutMs int           `yaml:"transaction.timeout.ms"`
	// RepartitionPurgeInterval is how often records of repartition topics
	// below the committed offsets are deleted (DeleteRecords); default 30s.
	// Repartition topics keep records forever otherwise (retention.ms=-1, so
	// that none is lost before it is processed). Kafka Streams'
	// repartition.purge.interval.ms.
	RepartitionPurgeInterval   time.Duration `yaml:"-"`
	RepartitionPurgeIntervalMs int           `yaml:"repartition.purge.interval.ms"`
	// MaxTaskIdle is Kafka Streams' max.task.idle.ms, for tasks with several
	// input partitions (a join, a merge): how long a task waits, once a
	// partition of it has no buffered record and is caught up, before it
	// processes the other partitions' records without it. A partition whose
	// fetch is still pending (the broker has records past the task's
	// position) is always waited for. Default 0: never wait for a caught-up
	// partition; negative (-1): never wait at all, even for pending
	// fetches, trading the deterministic order for latency
	// (partitiongroup.go).
	MaxTaskIdle   time.Duration `yaml:"-"`
	MaxTaskIdleMs int           `yaml:"max.task.idle.ms"`
	// MetricsAddr serves the HTTP endpoints (/metrics, /healthz, /readyz,
	// /topology) when set; a host-less address (":9090") binds loopback
	// only (httpserver.go).
	MetricsAddr string `yaml:"metrics.addr"`
	// ApplicationServer is this instance's host:port as other instances and
	// clients reach it (Kafka Streams' application.server), for
	// interactive queries (query.go): published to the other instances in
	// the consumer's client.id, so that a query for a key another instance
	// owns names that instance's. When set, the HTTP endpoints listen there
	// too (on both, when metrics.addr names another address).
	ApplicationServer string `yaml:"application.server"`
	// NumStandbyReplicas is how many other instances keep a warm copy of
	// each task's stores by tailing its changelogs, so that a failover
	// replays only the gap (standby.go); default 0. Kafka Streams'
	// num.standby.replicas. Instances find each other through the group
	// (DescribeConsumerGroups), so it needs no other setting.
	NumStandbyReplicas int `yaml:"num.standby.replicas"`
	// StaticMembership makes the consumer a static group member
	// (KIP-345): librdkafka's group.instance.id is instance.id, so a
	// restart within session.timeout.ms gets its partitions back without a
	// rebalance, and a crash is noticed only when the session times out.
	// Default false. instance.id must then be unique among live instances
	// (it already must be, for the transactional.id).
	StaticMembership bool `yaml:"static.membership"`
	// FromTime, when set, is where a partition without a committed offset
	// starts: the first record at or after it (ListOffsets by timestamp),
	// instead of the log start. Only external stream sources: repartition
	// topics and tables' source topics still start at the log start, so
	// that a table holds every key. `eos-runner run --from-datetime`; no
	// config file name (a backfill is a one-off decision, not a setting).
	FromTime time.Time `yaml:"-"`
	// HTTP secures the runner's HTTP endpoints: http.ssl.*, http.basic.auth.user.info,
	// http.bearer.auth.token (httpserver.go).
	HTTP HTTPConfig `yaml:",inline"`
	// SchemaRegistry is how the topology's Avro serdes reach the schema
	// registry, under Confluent's names (schema.registry.url,
	// basic.auth.user.info, ...). The runner does not use it itself: the
	// CLI builds the serdes' registry client from it.
	SchemaRegistry registry.ClientConfig `yaml:",inline"`
	// Kafka holds librdkafka properties passed through (see above), the
	// security settings too (security.protocol, sasl.*, ssl.*: security.go).
	// Any value may be a ${env:NAME} or ${file:PATH} reference.
	Kafka map[string]string `yaml:"kafka"`
}

// reserved are librdkafka properties the runner sets itself: overriding them
// would break the exactly-once protocol.
var reserved = []string{"group.id", "transactional.id", "isolation.level", "enable.auto.commit",
	"enable.auto.offset.store", "partition.assignment.strategy", "enable.idempotence", "bootstrap.servers",
	"session.timeout.ms", "transaction.timeout.ms", "group.instance.id"}

// LoadConfig reads a YAML file of Kafka Streams-style keys (see Config). An
// unknown key is an error naming it.
func LoadConfig(path string) (Config, error) {
	var c Config
	err := LoadConfigInto(path, &c)
	return c, err
}

// LoadConfigInto reads a YAML file as LoadConfig does, over c: settings the
// file does not name keep their values in c (kafka.* properties merge).
// Every problem of the file is reported at once, each with its line: an
// unknown key does not hide a bad value further down.
func LoadConfigInto(path string, c *Config) error {
	return loadFile(path, c, nil)
}

// loadFile is LoadConfigInto, recording each setting it sets in origins
// (nil: none) as SourceFile.
func loadFile(path string, c *Config, origins Origins) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	if len(doc.Content) == 0 { // empty, or only comments
		return nil
	}
	top := doc.Content[0]
	if top.Kind != yaml.MappingNode {
		return fmt.Errorf("config %s: line %d: want a mapping of settings", path, top.Line)
	}
	var errs []error
	set := func(key string, v *yaml.Node) {
		if v.Kind != yaml.ScalarNode {
			errs = append(errs, fmt.Errorf("config %s: line %d: %s: want a single value", path, v.Line, key))
			return
		}
		if err := c.Set(key, v.Value); err != nil {
			errs = append(errs, fmt.Errorf("config %s: line %d: %w", path, v.Line, err))
			return
		}
		origins.set(key, SourceFile)
	}
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, v := top.Content[i], top.Content[i+1]
		if k.Value == "kafka" && v.Kind == yaml.MappingNode {
			for j := 0; j+1 < len(v.Content); j += 2 {
				set("kafka."+v.Content[j].Value, v.Content[j+1])
			}
			continue
		}
		set(k.Value, v)
	}
	return errors.Join(errs...)
}

// Set assigns one setting by its Kafka Streams name (as in a YAML file or a
// --set flag); names with a `kafka.` prefix pass through to librdkafka.
func (c *Config) Set(key, value string) error {
	atoi := func() (int, error) {
		n, err := strconv.Atoi(value)
		if err != nil {
			return 0, fmt.Errorf("config %s: %q is not an integer", key, value)
		}
		return n, nil
	}
	var err error
	switch key {
	case "application.id":
		c.ApplicationID = value
	case "bootstrap.servers":
		c.BootstrapServers = value
	case "processing.guarantee":
		c.ProcessingGuarantee = value
	case "commit.interval.ms":
		c.CommitIntervalMs, err = atoi()
	case "commit.max.records":
		c.CommitMaxRecords, err = atoi()
	case "statestore.cache.max.bytes":
		var n int64
		n, err = strconv.ParseInt(value, 10, 64)
		if err != nil {
			err = fmt.Errorf("config %s: %q is not an integer", key, value)
		}
		c.StateStoreCacheMaxBytes = n
	case "state.dir":
		c.StateDir = value
	case "state.cleanup.delay.ms":
		c.StateCleanupDelayMs, err = atoi()
	case "num.stream.threads":
		c.NumStreamThreads, err = atoi()
	case "instance.id":
		c.InstanceID = value
	case "on.error":
		c.OnError = value
	case "dlq.topic":
		c.DLQTopic = value
	case "late.records":
		c.LateRecords = value
	case "windowstore.changelog.additional.retention.ms":
		c.WindowChangelogAdditionalRetentionMs, err = atoi()
	case "create.topics":
		if c.CreateTopics, err = strconv.ParseBool(value); err != nil {
			err = fmt.Errorf("config %s: %q is not a boolean", key, value)
		}
	case "session.timeout.ms":
		c.SessionTimeoutMs, err = atoi()
	case "transaction.timeout.ms":
		c.TransactionTimeoutMs, err = atoi()
	case "repartition.purge.interval.ms":
		c.RepartitionPurgeIntervalMs, err = atoi()
	case "max.task.idle.ms":
		c.MaxTaskIdleMs, err = atoi()
	case "metrics.addr":
		c.MetricsAddr = value
	case "application.server":
		c.ApplicationServer = value
	case "num.standby.replicas":
		c.NumStandbyReplicas, err = atoi()
	case "static.membership":
		if c.StaticMembership, err = strconv.ParseBool(value); err != nil {
			err = fmt.Errorf("config %s: %q is not a boolean", key, value)
		}
	default:
		if c.SchemaRegistry.Set(key, value) || c.HTTP.set(key, value) {
			return nil
		}
		k, ok := strings.CutPrefix(key, "kafka.")
		if !ok {
			return fmt.Errorf("config: unknown setting %q (librdkafka properties take a kafka. prefix)", key)
		}
		if c.Kafka == nil {
			c.Kafka = map[string]string{}
		}
		c.Kafka[k] = value
	}
	return err
}

// withDefaults returns c with every zero field at its default.
func (c Config) withDefaults() Config {
	ms := func(d *time.Duration, v int, def time.Duration) {
		switch {
		case *d != 0:
		case v != 0:
			*d = time.Duration(v) * time.Millisecond
		default:
			*d = def
		}
	}
	if c.ProcessingGuarantee == "" {
		c.ProcessingGuarantee = ExactlyOnceV2
	}
	ms(&c.CommitInterval, c.CommitIntervalMs, 100*time.Millisecond)
	ms(&c.StateCleanupDelay, c.StateCleanupDelayMs, 10*time.Minute)
	ms(&c.SessionTimeout, c.SessionTimeoutMs, 45*time.Second)
	ms(&c.TransactionTimeout, c.TransactionTimeoutMs, 30*time.Second)
	ms(&c.RepartitionPurgeInterval, c.RepartitionPurgeIntervalMs, 30*time.Second)
	ms(&c.MaxTaskIdle, c.MaxTaskIdleMs, 0)
	ms(&c.WindowChangelogAdditionalRetention, c.WindowChangelogAdditionalRetentionMs, 24*time.Hour)
	if c.LateRecords == "" {
		c.LateRecords = LateRecordsDrop
	}
	if c.CommitMaxRecords == 0 {
		c.CommitMaxRecords = 50000
	}
	if c.StateDir == "" {
		c.StateDir = os.TempDir() + "/eos-runner"
	}
	if c.NumStreamThreads == 0 {
		c.NumStreamThreads = runtime.NumCPU()
	}
	if c.InstanceID == "" {
		c.InstanceID, _ = os.Hostname()
	}
	if c.OnError == "" {
		c.OnError = OnErrorDLQ
	}
	if c.DLQTopic == "" && c.ApplicationID != "" {
		c.DLQTopic = c.ApplicationID + "-dlq"
	}
	return c
}

// Validate reports every problem of c at once, each naming its setting (and
// both values where two settings must agree).
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.ApplicationID == "" {
		bad("application.id: required")
	} else if strings.ContainsAny(c.ApplicationID, " /\\:") {
		bad("application.id: %q may not contain spaces, slashes or colons", c.ApplicationID)
	}
	if c.BootstrapServers == "" {
		bad("bootstrap.servers: required")
	}
	switch c.ProcessingGuarantee {
	case ExactlyOnceV2, AtLeastOnce:
	default:
		bad("processing.guarantee: %q is not %s or %s", c.ProcessingGuarantee, ExactlyOnceV2, AtLeastOnce)
	}
	switch c.OnError {
	case OnErrorDLQ, OnErrorSkip, OnErrorFail:
	default:
		bad("on.error: %q is not dlq, skip or fail", c.OnError)
	}
	if c.CommitInterval < 0 {
		bad("commit.interval.ms: %v is negative", c.CommitInterval)
	}
	if c.CommitMaxRecords < 0 {
		bad("commit.max.records: %d is negative", c.CommitMaxRecords)
	}
	if c.StateStoreCacheMaxBytes < 0 {
		bad("statestore.cache.max.bytes: %d is negative", c.StateStoreCacheMaxBytes)
	}
	if c.NumStreamThreads < 0 {
		bad("num.stream.threads: %d is negative", c.NumStreamThreads)
	}
	switch c.LateRecords {
	case LateRecordsDrop, LateRecordsDLQ:
	default:
		bad("late.records: %q is not %s or %s", c.LateRecords, LateRecordsDrop, LateRecordsDLQ)
	}
	if c.WindowChangelogAdditionalRetention < 0 {
		bad("windowstore.changelog.additional.retention.ms: %v is negative", c.WindowChangelogAdditionalRetention)
	}
	if c.RepartitionPurgeInterval < 0 {
		bad("repartition.purge.interval.ms: %v is negative", c.RepartitionPurgeInterval)
	}
	if c.InstanceID == "" {
		bad("instance.id: required (no host name to default to)")
	}
	if c.NumStandbyReplicas < 0 {
		bad("num.standby.replicas: %d is negative", c.NumStandbyReplicas)
	}
	if c.ApplicationServer != "" {
		if _, _, err := net.SplitHostPort(c.ApplicationServer); err != nil {
			bad("application.server: %q is not host:port", c.ApplicationServer)
		}
	}
	if c.ProcessingGuarantee == ExactlyOnceV2 && c.TransactionTimeout >= c.SessionTimeout {
		bad("transaction.timeout.ms (%d) must be below session.timeout.ms (%d)",
			c.TransactionTimeout.Milliseconds(), c.SessionTimeout.Milliseconds())
	}
	if c.ProcessingGuarantee == ExactlyOnceV2 && c.CommitInterval >= c.TransactionTimeout {
		bad("commit.interval.ms (%d) must be below transaction.timeout.ms (%d)",
			c.CommitInterval.Milliseconds(), c.TransactionTimeout.Milliseconds())
	}
	for _, k := range []string{"message.timeout.ms", "producer.message.timeout.ms"} {
		v, ok := c.Kafka[k]
		if !ok || c.ProcessingGuarantee != ExactlyOnceV2 {
			continue
		}
		if n, err := strconv.Atoi(v); err != nil {
			bad("kafka.%s: %q is not an integer", k, v)
		} else if time.Duration(n)*time.Millisecond > c.TransactionTimeout {
			bad("kafka.%s (%d) must not exceed transaction.timeout.ms (%d)", k, n, c.TransactionTimeout.Milliseconds())
		}
	}
	errs = append(errs, c.validateSecurity()...)
	keys := make([]string, 0, len(c.Kafka))
	for k := range c.Kafka {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		base := strings.TrimPrefix(strings.TrimPrefix(k, "consumer."), "producer.")
		for _, r := range reserved {
			if base == r {
				bad("kafka.%s: set by the runner; use the runner's own setting instead", k)
			}
		}
	}
	return errors.Join(errs...)
}
