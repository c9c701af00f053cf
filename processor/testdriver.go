package processor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cockroachdb/pebble/vfs"
	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/eos-runner/eos-runner/changelog"
	"github.com/eos-runner/eos-runner/internal/murmur2"
	"github.com/eos-runner/eos-runner/serde"
	"github.com/eos-runner/eos-runner/topology"
)

// TestDriver runs a topology without a broker, for users' unit tests (Kafka
// Streams' TopologyTestDriver). It runs the runner's own record path: one
// task per partition of each sub-topology, as the runner creates them, with
// the same processors, stores (Pebble, through changelog.DB), record
// collector and error policy. Only Kafka is replaced: a producer that keeps
// what the collector produces (sink outputs, changelog and dead-letter
// records) in in-memory topics, and the poll loop, which the driver's calls
// play.
//
// What a call does, in order:
//
//  1. PipeInput writes one record to a source topic, into the partition the
//     runner's producer would choose (murmur2 of the key bytes, Java's
//     default; a nil key goes to partition 0), and hands it to that
//     partition's task, which processes it (stream-time punctuators fire as
//     its stream time advances).
//  2. The record is committed at once, as if commit.interval.ms were zero:
//     its outputs become readable, its store writes and their changelog
//     checkpoints go to Pebble in one DB.Commit, and the tasks' stream time
//     and punctuation schedules become their committed point. (With
//     TestDriverConfig.ManualCommit the commit waits for Commit, and Abort
//     can drop it instead, as the runner's transaction spans every record of
//     a commit interval.)
//  3. Records the commit made visible in a topic the topology reads itself
//     (a repartition topic, or a sink topic that is also a source) are
//     processed next, one at a time, each committed in turn, in the order
//     they were produced, before the call returns. So GroupBy and
//     Repartition topologies run to completion within one PipeInput.
//
// AdvanceWallClockTime moves the driver's own wall clock (the one the tasks
// schedule wall-clock punctuators on) and fires every due wall-clock
// punctuator once per task, then commits as above. The wall clock never
// moves by itself.
//
// Errors follow the on.error policy: under dlq (the default) a failed record
// goes to the dead-letter topic, readable with ReadOutput; under skip it is
// dropped; under fail PipeInput returns its *ProcessingError. A returned
// error (also a punctuator's, or a runtime failure) leaves nothing of the
// failed record or punctuation behind: the failing task is rolled back to
// its last commit and its processors rebuilt, as a restart of the runner
// would; the driver stays usable, and records still waiting in internal
// topics are processed by the next call.
//
// A TestDriver is not safe for concurrent use. Close it to close the
// processors and the Pebble DB.
type TestDriver struct {
	topo *topology.Topology
	cfg  TestDriverConfig
	ctx  context.Context

	db      *changelog.DB
	metrics *metrics
	globals *globalStores // global tables, written by PipeInput to their topics
	tracker *deliveryTracker
	prod    *driverProducer

	tasks      []*task                 // by sub-topology, then partition
	taskOf     map[partitionKey]*task  // source topic partition (full name) -> task
	partitions map[string]int32        // full topic name -> partition count
	internal   map[string]string       // internal topic as the topology names it -> full name
	storeParts map[string][]stateStore // store -> its partitions, by partition
	now        time.Time               // the wall clock
	closed     bool
}

// TestDriverConfig configures a TestDriver. The zero value is ready to use.
type TestDriverConfig struct {
	// ApplicationID prefixes internal topics (repartition and changelog
	// topics, `<application.id>-<name>`) as the runner's application.id
	// does. Default "test-driver".
	ApplicationID string
	// Partitions is the partition count of external topics, by name; a
	// topic not listed has 1. The sources of one sub-topology must agree
	// (co-partitioning), as the runner checks at startup. Repartition and
	// changelog topics get the partition count of the sub-topology writing
	// or owning them, and an unlisted sink topic that of its sub-topology, as
	// the runner creates them.
	Partitions map[string]int
	// OnError is the error policy, as Config.OnError: dlq (default), skip
	// or fail.
	OnError string
	// LateRecords is what happens to records a window has closed for, as
	// Config.LateRecords: drop (default; counted, see Dropped) or dlq.
	LateRecords string
	// DLQTopic is the dead-letter topic, as Config.DLQTopic; default
	// `<application.id>-dlq`.
	DLQTopic string
	// StateDir holds the Pebble DB. Default: none, the DB lives in memory
	// (Pebble's vfs.NewMem: the same code without files or fsyncs, so a
	// driver opens in about a millisecond) and is gone at Close. A directory
	// given here is kept, and a driver opened on it again starts from the
	// stores' committed contents (its stream time starts afresh: the runner
	// keeps that with the committed offsets).
	StateDir string
	// WallClock is where the driver's wall clock starts; default the Unix
	// epoch, so that tests are reproducible.
	WallClock time.Time
	// Logger receives the tasks' logs (dead-lettered records and such).
	// Default: discarded.
	Logger *slog.Logger
	// ManualCommit leaves what PipeInput, PipeRecord and
	// AdvanceWallClockTime do (outputs, store writes, stream time,
	// punctuation schedules) in one open transaction until Commit commits it
	// or Abort rolls it back, as the runner's transaction spans every record
	// of a commit.interval.ms and an abortable failure drops it whole.
	// Records written to internal topics become readable, and are processed,
	// at Commit, into the next open transaction, as the runner's read_committed
	// consumer sees them. An error a call returns aborts the open
	// transaction, not just the failed record; a store view's write commits
	// it. Default false: every call commits (commit.interval.ms zero).
	ManualCommit bool
}

// AnyPartition in TestRecord.Partition asks PipeRecord to choose the
// partition from the key, as PipeInput does.
const AnyPartition int32 = -1

// TestRecord is one record of a driver's topic: what PipeRecord writes and
// ReadOutput returns, with serialized key and value.
type TestRecord struct {
	Topic string
	// Partition and Offset locate the record in its topic. For PipeRecord,
	// AnyPartition chooses the partition by key; Offset is assigned.
	Partition int32
	Offset    int64
	Key       []byte
	Value     []byte
	Headers   []topology.Header
	Timestamp time.Time
}

// Decode deserializes the record's key and value with the given serdes.
func (r TestRecord) Decode(key, value serde.Serde) (topology.Record, error) {
	k, err := key.Deserialize(r.Topic, r.Key)
	if err != nil {
		return topology.Record{}, fmt.Errorf("%s[%d]@%d: key: %w", r.Topic, r.Partition, r.Offset, err)
	}
	v, err := value.Deserialize(r.Topic, r.Value)
	if err != nil {
		return topology.Record{}, fmt.Errorf("%s[%d]@%d: value: %w", r.Topic, r.Partition, r.Offset, err)
	}
	return topology.Record{Key: k, Value: v, Headers: r.Headers, Timestamp: r.Timestamp}, nil
}

// NewTestDriver creates the tasks of every partition of every sub-topology of
// topo, opens their stores and initializes their processors. Sink serdes that
// implement serde.Preparer are prepared first, as the runner does.
func NewTestDriver(topo *topology.Topology, cfg TestDriverConfig) (_ *TestDriver, err error) {
	if cfg.ApplicationID == "" {
		cfg.ApplicationID = "test-driver"
	}
	if cfg.OnError == "" {
		cfg.OnError = OnErrorDLQ
	}
	if cfg.LateRecords == "" {
		cfg.LateRecords = LateRecordsDrop
	}
	if cfg.DLQTopic == "" {
		cfg.DLQTopic = cfg.ApplicationID + "-dlq"
	}
	if cfg.WallClock.IsZero() {
		cfg.WallClock = time.Unix(0, 0).UTC()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	switch cfg.OnError {
	case OnErrorDLQ, OnErrorSkip, OnErrorFail:
	default:
		return nil, fmt.Errorf("test driver: on.error %q is not dlq, skip or fail", cfg.OnError)
	}
	switch cfg.LateRecords {
	case LateRecordsDrop, LateRecordsDLQ:
	default:
		return nil, fmt.Errorf("test driver: late.records %q is not drop or dlq", cfg.LateRecords)
	}
	d := &TestDriver{topo: topo, cfg: cfg, ctx: context.Background(), now: cfg.WallClock,
		metrics: newMetrics(cfg.ApplicationID), taskOf: map[partitionKey]*task{},
		internal: map[string]string{}, storeParts: map[string][]stateStore{}}
	subParts, err := d.planTopics()
	if err != nil {
		return nil, err
	}
	if err := d.prepareSerdes(); err != nil {
		return nil, err
	}
	dir := cfg.StateDir
	var fs vfs.FS // the operating system's
	if dir == "" {
		dir, fs = "state", vfs.NewMem()
	}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	d.db, err = changelog.Open(dir, changelog.Options{CacheSize: 8 << 20, Logger: cfg.Logger, FS: fs})
	if err != nil {
		return nil, fmt.Errorf("test driver: %w", err)
	}
	changelogs := map[string]bool{}
	for name := range topo.Stores {
		changelogs[topology.ChangelogTopic(cfg.ApplicationID, name)] = true
	}
	d.tracker = newDeliveryTracker(changelogs)
	d.prod = &driverProducer{d: d, next: map[partitionKey]int64{}, out: map[string][]TestRecord{}}
	clock := func() time.Time { return d.now }
	if d.globals, err = newGlobalStores(d.db, topo, cfg.ApplicationID, func(topic string) (int, bool) {
		return int(d.partitionCount(topic)), true
	}, cfg.Logger); err != nil {
		return nil, fmt.Errorf("test driver: %w", err)
	}
	for _, sub := range topo.SubTopologies {
		for p := range int32(subParts[sub.ID]) {
			t, err := newTask(topo, sub, p, cfg.ApplicationID, d.db, &collector{p: d.prod, tracker: d.tracker},
				cfg.OnError, cfg.DLQTopic, cfg.Logger, d.metrics)
			if err != nil {
				return nil, err
			}
			t.lateToDLQ = cfg.LateRecords == LateRecordsDLQ
			t.clock = clock
			t.globals = d.globals.stores()
			d.tasks = append(d.tasks, t)
			for topic := range t.sources {
				d.taskOf[partitionKey{topic, p}] = t
			}
			for _, name := range sub.Stores {
				d.storeParts[name] = append(d.storeParts[name], t.stores[name])
			}
		}
	}
	for _, t := range d.tasks {
		if err := t.init(); err != nil {
			return nil, err
		}
	}
	// Stores written by Init (and punctuators scheduled there) commit as the
	// runner's first commit would.
	if err := d.commit(); err != nil {
		return nil, err
	}
	return d, nil
}

// planTopics derives the partition count of every sub-topology and topic as
// the runner's prepareTopics does, from the configured counts of external
// topics: sub-topologies and repartition topics as planPartitions derives
// them, changelogs and unlisted sinks that of their sub-topology, the
// dead-letter topic the largest.
func (d *TestDriver) planTopics() (map[int]int, error) {
	app := d.cfg.ApplicationID
	d.partitions = map[string]int32{}
	for name, n := range d.cfg.Partitions {
		if n < 1 {
			return nil, fmt.Errorf("test driver: topic %q: %d partitions", name, n)
		}
		d.partitions[name] = int32(n)
	}
	var errs []error
	pp, err := planPartitions(d.topo, app, func(full string) (int, bool) {
		if n, ok := d.partitions[full]; ok {
			return int(n), true
		}
		return 1, true
	})
	if err != nil {
		errs = append(errs, err)
	}
	subParts := pp.sub
	for full, n := range pp.repartition {
		if _, ok := d.partitions[full]; !ok {
			d.partitions[full] = int32(n)
		}
	}
	for _, n := range d.topo.Nodes {
		if n.Internal {
			for _, tp := range n.Topics {
				d.internal[tp] = topology.TopicName(app, tp, true)
			}
		}
	}
	maxParts := 1
	for _, st := range d.topo.SubTopologies {
		n, ok := subParts[st.ID]
		if !ok {
			continue // planPartitions reported it
		}
		maxParts = max(maxParts, n)
		for _, s := range st.Stores {
			d.partitions[topology.ChangelogTopic(app, s)] = int32(n)
		}
		for _, sink := range st.Sinks {
			if _, ok := d.partitions[sink.Topics[0]]; !ok && !sink.Internal {
				d.partitions[sink.Topics[0]] = int32(n)
			}
		}
	}
	if _, ok := d.partitions[d.cfg.DLQTopic]; !ok {
		d.partitions[d.cfg.DLQTopic] = int32(maxParts)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("test driver: %w", errors.Join(errs...))
	}
	return subParts, nil
}

// prepareSerdes lets sink serdes check their schemas, as the runner does at
// startup.
func (d *TestDriver) prepareSerdes() error {
	var errs []error
	for _, n := range d.topo.Nodes {
		if n.Kind != topology.SinkNode {
			continue
		}
		topic := topology.TopicName(d.cfg.ApplicationID, n.Topics[0], n.Internal)
		for _, s := range []serde.Serde{n.KeySerde, n.ValueSerde} {
			if p, ok := s.(serde.Preparer); ok {
				if err := p.Prepare(d.ctx, topic); err != nil {
					errs = append(errs, fmt.Errorf("sink %s (topic %s): %w", n.Name, topic, err))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// topicName resolves a topic as the caller names it: an internal topic may
// be named as the topology names it (unprefixed) or in full.
func (d *TestDriver) topicName(topic string) string {
	if full, ok := d.internal[topic]; ok {
		return full
	}
	return topic
}

func (d *TestDriver) partitionCount(topic string) int32 {
	if n := d.partitions[topic]; n > 0 {
		return n
	}
	return 1
}

// partitionFor is the partition the runner's producer (librdkafka's
// murmur2_random) gives a record: Java's default partitioner for a key, and
// partition 0 (deterministic, unlike a producer's) without one.
func (d *TestDriver) partitionFor(topic string, key []byte) int32 {
	if key == nil {
		return 0
	}
	return murmur2Partition(key, d.partitionCount(topic))
}

// source returns the source node reading topic (full name).
func (d *TestDriver) source(topic string) (*topology.Node, error) {
	for _, t := range d.tasks {
		if rt, ok := t.sources[topic]; ok {
			return rt.node, nil
		}
	}
	return nil, fmt.Errorf("test driver: no source reads topic %q", topic)
}

// PipeInput serializes key and value with the serdes of the source reading
// topic, writes the record with timestamp ts (truncated to milliseconds, as
// Kafka keeps it) to the partition the key hashes to, and processes and
// commits it and everything it leads to through internal topics (see
// TestDriver). It returns the first error the error policy does not absorb.
func (d *TestDriver) PipeInput(topic string, key, value any, ts time.Time) error {
	full := d.topicName(topic)
	if g := d.globalOf(full); g != nil {
		return d.pipeGlobal(g, key, value, ts)
	}
	src, err := d.source(full)
	if err != nil {
		return err
	}
	kb, err := src.KeySerde.Serialize(full, key)
	if err != nil {
		return fmt.Errorf("test driver: serialize key for %s: %w", full, err)
	}
	vb, err := src.ValueSerde.Serialize(full, value)
	if err != nil {
		return fmt.Errorf("test driver: serialize value for %s: %w", full, err)
	}
	return d.PipeRecord(TestRecord{Topic: full, Partition: AnyPartition, Key: kb, Value: vb, Timestamp: ts})
}

// PipeRecord is PipeInput for a serialized record with headers, written to
// r.Partition (AnyPartition: by key); a zero Timestamp is the Unix epoch.
// Bytes a source cannot deserialize go to the error policy, as in the
// runner.
func (d *TestDriver) PipeRecord(r TestRecord) error {
	if d.closed {
		return errors.New("test driver: closed")
	}
	r.Topic = d.topicName(r.Topic)
	if _, err := d.source(r.Topic); err != nil {
		return err
	}
	n := d.partitionCount(r.Topic)
	if r.Partition == AnyPartition {
		r.Partition = d.partitionFor(r.Topic, r.Key)
	}
	if r.Partition < 0 || r.Partition >= n {
		return fmt.Errorf("test driver: topic %q has %d partitions, no partition %d", r.Topic, n, r.Partition)
	}
	if r.Timestamp.IsZero() {
		r.Timestamp = time.UnixMilli(0)
	}
	r.Timestamp = time.UnixMilli(r.Timestamp.UnixMilli())
	r.Offset = d.prod.append(r.Topic, r.Partition)
	if err := d.processRecord(r, false); err != nil {
		return err
	}
	return d.drain()
}

// AdvanceWallClockTime moves the wall clock by by, then fires every
// wall-clock punctuator due at the new time, task by task (a punctuator more
// than one interval late fires once, as in the runner), committing after
// each task and processing what its punctuators wrote to internal topics.
func (d *TestDriver) AdvanceWallClockTime(by time.Duration) error {
	if d.closed {
		return errors.New("test driver: closed")
	}
	if by < 0 {
		return fmt.Errorf("test driver: the wall clock does not go back (%v)", by)
	}
	d.now = d.now.Add(by)
	for _, t := range d.tasks {
		if err := t.punctuate(d.ctx, topology.WallClockTime, d.now); err != nil {
			d.abort()
			return err
		}
		if err := d.settle(); err != nil {
			return err
		}
		if err := d.drain(); err != nil {
			return err
		}
	}
	return nil
}

// WallClockTime is the driver's wall clock.
func (d *TestDriver) WallClockTime() time.Time { return d.now }

// processRecord processes one record of a source topic in its partition's
// task and commits (see settle). fed: r is a record of an internal topic,
// taken from the feed.
func (d *TestDriver) processRecord(r TestRecord, fed bool) error {
	t, ok := d.taskOf[partitionKey{r.Topic, r.Partition}]
	if !ok {
		return fmt.Errorf("test driver: no task reads %s[%d]", r.Topic, r.Partition)
	}
	topic := r.Topic
	msg := &kafka.Message{
		TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: r.Partition, Offset: kafka.Offset(r.Offset)},
		Key:            r.Key, Value: r.Value, Timestamp: r.Timestamp,
	}
	if len(r.Headers) > 0 {
		msg.Headers = make([]kafka.Header, len(r.Headers))
		for i, h := range r.Headers {
			msg.Headers[i] = kafka.Header{Key: h.Key, Value: h.Value}
		}
	}
	d.metrics.processed.Inc()
	if err := t.process(d.ctx, msg); err != nil {
		d.abort()
		return err
	}
	if fed {
		d.prod.inflight = append(d.prod.inflight, r)
	}
	return d.settle()
}

// settle ends what a call processed: it commits, unless ManualCommit leaves
// that to Commit.
func (d *TestDriver) settle() error {
	if d.cfg.ManualCommit {
		return nil
	}
	return d.commit()
}

// Commit commits the open transaction (TestDriverConfig.ManualCommit): its
// outputs become readable and its store writes go to Pebble, then the
// records it made visible in internal topics are processed, into the next
// open transaction. Without ManualCommit every call has committed already
// and Commit has nothing to do.
func (d *TestDriver) Commit() error {
	if d.closed {
		return errors.New("test driver: closed")
	}
	if err := d.commit(); err != nil {
		return err
	}
	return d.drain()
}

// Abort rolls the open transaction back (TestDriverConfig.ManualCommit), as
// the runner does on an abortable failure: every task returns to its last
// commit (stores, stream time, punctuation schedules, processors rebuilt),
// the records of internal topics it processed are processed again by the
// next call (the runner rewinds to the committed offsets; input the caller
// piped is the caller's to pipe again), and the records it produced are
// dropped. Abort returns them (sink, internal, changelog and dead-letter
// records, in the order they were produced): in Kafka they would sit in the
// log as aborted, unseen by read_committed consumers, which lets a test play
// what a reader without exactly-once would see.
func (d *TestDriver) Abort() []TestRecord {
	if d.closed {
		return nil
	}
	return d.abort()
}

// drain processes the committed records of internal topics, oldest first,
// until none is left.
func (d *TestDriver) drain() error {
	for len(d.prod.feed) > 0 {
		r := d.prod.feed[0]
		d.prod.feed = d.prod.feed[1:]
		if err := d.processRecord(r, true); err != nil {
			return err
		}
	}
	return nil
}

// commit is the runner's commit with the Kafka half played by the driver's
// producer: the records produced since the last commit become readable (and
// those of topics the topology reads are queued to be processed), then the
// pending batches and changelog checkpoints go to Pebble in one DB.Commit,
// then every task's current point becomes its committed point (as
// kafkaTxn.applyState).
func (d *TestDriver) commit() error {
	changelogNext, err := d.tracker.await(d.ctx)
	if err != nil {
		return err
	}
	d.prod.commit()
	var commits []changelog.Commit
	for _, t := range d.tasks {
		commits = t.appendCommits(commits, changelogNext)
	}
	if len(commits) > 0 {
		if err := d.db.Commit(commits); err != nil {
			return err
		}
	}
	for _, t := range d.tasks {
		t.markCommitted()
	}
	d.metrics.commits.Inc()
	return nil
}

// abort drops what was produced since the last commit, returning it, and
// rolls every task back to its committed point (kafkaTxn.dropState).
func (d *TestDriver) abort() []TestRecord {
	_, _ = d.tracker.await(d.ctx) // forget the aborted changelog offsets
	dropped := d.prod.pending
	d.prod.pending = nil
	d.prod.feed = append(d.prod.inflight, d.prod.feed...)
	d.prod.inflight = nil
	for _, t := range d.tasks {
		if err := t.rollback(); err != nil {
			t.log.Error("rollback failed", "err", err)
		}
	}
	d.metrics.aborts.Inc()
	return dropped
}

// ReadOutput returns the records written to topic since it was last read,
// in the order they were produced, and forgets them (Kafka Streams'
// TestOutputTopic.readRecordsToList). Any topic can be read: sink topics,
// internal topics by their topology name or full name, changelogs
// (`<application.id>-<store>-changelog`) and the dead-letter topic.
func (d *TestDriver) ReadOutput(topic string) []TestRecord {
	full := d.topicName(topic)
	out := d.prod.out[full]
	delete(d.prod.out, full)
	return out
}

// ReadRecords is ReadOutput with keys and values deserialized.
func (d *TestDriver) ReadRecords(topic string, key, value serde.Serde) ([]topology.Record, error) {
	raw := d.ReadOutput(topic)
	out := make([]topology.Record, 0, len(raw))
	for _, r := range raw {
		rec, err := r.Decode(key, value)
		if err != nil {
			return out, err
		}
		out = append(out, rec)
	}
	return out, nil
}

// Dropped is the number of records dropped without an error, by reason:
// "late" (every window of the record had closed) or "expired-window" (a
// write to a window past retention); Kafka Streams' dropped-records metric,
// eos_dropped_records_total in the runner.
func (d *TestDriver) Dropped(reason string) int {
	return int(counterValue(d.metrics.dropped.WithLabelValues(reason)))
}

// Close closes the processors and the Pebble DB (an in-memory one is gone
// with it; a caller-given StateDir is kept).
func (d *TestDriver) Close() error {
	if d.closed {
		return nil
	}
	d.closed = true
	for _, t := range d.tasks {
		t.close()
	}
	if d.db == nil {
		return nil
	}
	return d.db.Close()
}

// driverProducer stands in for the transactional producer behind every
// task's collector: it assigns each record its partition (as the runner's
// producer would) and offset, and reports its delivery at once. Records stay
// pending until the driver commits; then they become readable, and those of
// topics the topology reads are queued for processing.
type driverProducer struct {
	d       *TestDriver
	next    map[partitionKey]int64 // next offset per topic partition
	pending []TestRecord           // produced since the last commit
	out     map[string][]TestRecord
	feed    []TestRecord // committed records of source topics, not processed yet
	// inflight: records of feed processed in the open transaction (under
	// ManualCommit), fed again if it aborts, as the runner rewinds to the
	// committed offsets. (A record whose processing fails is not among
	// them: it is dropped, so that the driver stays usable.)
	inflight []TestRecord
}

var _ producer = (*driverProducer)(nil)

// Produce implements producer.
func (p *driverProducer) Produce(m *kafka.Message, _ chan kafka.Event) error {
	topic := *m.TopicPartition.Topic
	part := m.TopicPartition.Partition
	if part == kafka.PartitionAny {
		part = p.d.partitionFor(topic, m.Key)
	}
	r := TestRecord{Topic: topic, Partition: part, Offset: p.append(topic, part),
		Key: m.Key, Value: m.Value, Timestamp: time.UnixMilli(m.Timestamp.UnixMilli())}
	for _, h := range m.Headers {
		r.Headers = append(r.Headers, topology.Header{Key: h.Key, Value: h.Value})
	}
	p.pending = append(p.pending, r)
	p.d.tracker.report(&kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: part, Offset: kafka.Offset(r.Offset)}})
	return nil
}

// append takes the next offset of a topic partition.
func (p *driverProducer) append(topic string, part int32) int64 {
	k := partitionKey{topic, part}
	off := p.next[k]
	p.next[k] = off + 1
	return off
}

// commit makes the pending records readable and queues those of topics the
// topology reads.
func (p *driverProducer) commit() {
	for _, r := range p.pending {
		p.out[r.Topic] = append(p.out[r.Topic], r)
		if _, ok := p.d.taskOf[partitionKey{r.Topic, r.Partition}]; ok {
			p.feed = append(p.feed, r)
		}
	}
	p.pending = nil
	p.inflight = nil
}

// murmur2Partition is Java's default partition of a keyed record (and
// librdkafka's murmur2_random, the runner's partitioner).
func murmur2Partition(key []byte, partitions int32) int32 { return murmur2.Partition(key, partitions) }
