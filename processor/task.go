package processor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/eos-runner/eos-runner/changelog"
	"github.com/eos-runner/eos-runner/topology"
)

// task runs one sub-topology on one partition of its source topics
// (Kafka Streams' StreamTask). Its worker owns every field after start: the
// node instances, the stores and their pending batches, stream time and
// punctuators. The poll loop touches a task only while the workers are
// drained (at a commit barrier, on rebalance) or before it is started; the
// one exception is wallDue, published for it atomically.
//
// A task has a committed point (stream time, punctuation schedule) taken
// after every commit. An abort rolls the task back to it and rebuilds its
// processors, so that the records processed again see exactly what the first
// attempt saw.
type task struct {
	id        string
	sub       *topology.SubTopology
	partition int32
	appID     string
	policy    string
	dlqTopic  string
	lateToDLQ bool // late.records=dlq
	// inputs orders the records of a task with several input partitions
	// (partitiongroup.go); nil for a task with one. Poll loop only.
	inputs *partitionGroup
	// globals are the global tables' views by store name (globalstore.go).
	globals map[string]topology.KeyValueStore
	log     *slog.Logger
	metrics *metrics

	nodes   map[string]*nodeRT
	sources map[string]*nodeRT // by full topic name
	stores  map[string]stateStore
	coll    *collector

	streamTime time.Time
	// before: while a record is processed, the stream time before it, by
	// which window and session stores hide expired entries (see newStore);
	// nil otherwise.
	before     *time.Time
	puncts     []*punctuation
	current    *topology.RecordMetadata // input record being processed; nil in a punctuator
	currentMsg *kafka.Message           // its original bytes, for the dead-letter topic
	// curMD and beforeVal are what current and before point at while a
	// record is processed (fields, so that a record allocates neither).
	curMD     topology.RecordMetadata
	beforeVal time.Time

	// processed is the next offset per input partition processed in the
	// open transaction (last processed + 1): what the commit sends. A record
	// that stopped the runner (on.error=fail) or that was skipped after a
	// failure is not in it.
	processed map[partitionKey]int64
	// dirty: the task did work (a record or a punctuation) in the open
	// transaction, so an abort must roll it back.
	dirty bool
	// The committed point: stream time and punctuation schedule as of the
	// last commit (or the assignment, from the committed offsets' metadata).
	committedStreamTime time.Time
	committedPuncts     []punctState
	// wallDue is the earliest due time of a wall-clock punctuator (unix
	// nanoseconds; 0: none). The worker publishes it; the poll loop reads it
	// to decide when to dispatch wall-clock punctuation, and must not read
	// puncts, which belong to the worker.
	wallDue atomic.Int64

	initialized bool

	// rc is the task's share of the record cache (recordcache.go).
	rc recordCache

	// clock is the wall clock wall-clock punctuators are scheduled on; nil
	// means time.Now (the runner). The test driver sets its own, which
	// AdvanceWallClockTime moves.
	clock func() time.Time
}

// now reads the task's wall clock.
func (t *task) now() time.Time {
	if t.clock != nil {
		return t.clock()
	}
	return time.Now()
}

// punctState is one punctuator's schedule at a committed point.
type punctState struct {
	next      time.Time
	cancelled bool
}

// nodeRT is one node's instance in a task.
type nodeRT struct {
	node     *topology.Node
	proc     topology.Processor
	children []*nodeRT
	byName   map[string]*nodeRT
	topic    string  // full topic name of a sink
	topicPtr *string // &topic, shared by every record to it (no allocation per record)
	ctx      *nodeContext
}

// taskID formats Kafka Streams' TaskId.
func taskID(sub, partition int) string { return strconv.Itoa(sub) + "_" + strconv.Itoa(partition) }

// newTask instantiates the sub-topology's nodes for one partition. Stores are
// connected but the processors are not initialized until init, after restore.
func newTask(topo *topology.Topology, sub *topology.SubTopology, partition int32, appID string, db *changelog.DB,
	coll *collector, policy, dlqTopic string, log *slog.Logger, m *metrics) (*task, error) {
	t := &task{
		id: taskID(sub.ID, int(partition)), sub: sub, partition: partition, appID: appID,
		policy: policy, dlqTopic: dlqTopic, metrics: m,
		nodes: map[string]*nodeRT{}, sources: map[string]*nodeRT{}, stores: map[string]stateStore{}, coll: coll,
		processed: map[partitionKey]int64{},
	}
	t.rc.current = &t.current
	t.log = log.With("task", t.id)
	for _, name := range sub.Stores {
		spec := topo.Stores[name]
		topic := topology.ChangelogTopic(appID, name)
		if spec.SourceTopic != "" {
			topic = topology.TopicName(appID, spec.SourceTopic, false) // sourcetopic.go
		}
		st, err := t.newStore(spec, db, topic, coll)
		if err != nil {
			return nil, err
		}
		t.stores[name] = st
	}
	for _, n := range sub.Nodes {
		rt := &nodeRT{node: n, byName: map[string]*nodeRT{}}
		rt.ctx = &nodeContext{t: t, n: rt}
		switch n.Kind {
		case topology.SourceNode:
			for _, tp := range n.Topics {
				t.sources[topology.TopicName(appID, tp, n.Internal)] = rt
			}
		case topology.SinkNode:
			rt.topic = topology.TopicName(appID, n.Topics[0], n.Internal)
			rt.topicPtr = &rt.topic
		case topology.ProcessorNode:
			rt.proc = n.Supplier()
		}
		t.nodes[n.Name] = rt
	}
	for _, n := range sub.Nodes {
		rt := t.nodes[n.Name]
		for _, c := range n.Children {
			child := t.nodes[c.Name]
			rt.children = append(rt.children, child)
			rt.byName[c.Name] = child
		}
	}
	return t, nil
}

// newStore opens the task's partition of one store, of the kind its spec
// declares.
func (t *task) newStore(spec topology.StoreSpec, db *changelog.DB, topic string, coll *collector) (stateStore, error) {
	streamTime := func() time.Time { return t.streamTime }
	// Window and session stores hide the entries expired by the stream time
	// before the record being processed, as Kafka Streams' segmented stores
	// do by the largest timestamp written before it: so a record at a new
	// stream time still sees (and merges with) the session a gap before it,
	// as in KS's SuppressScenarioTest.shouldSupportFinalResultsForSessionWindows.
	// Segments are still dropped by the stream time after it, at flush.
	visible := func() time.Time {
		if t.before != nil {
			return *t.before
		}
		return t.streamTime
	}
	dropped := func(reason string) { t.metrics.dropped.WithLabelValues(reason).Inc() }
	switch spec.Kind {
	case topology.WindowStoreKind:
		ws, err := db.WindowStore(spec.Name, t.partition, changelog.WindowOptions{Retention: spec.Retention})
		if err != nil {
			return nil, fmt.Errorf("task %s: window store %s: %w", t.id, spec.Name, err)
		}
		return newWindowStore(spec, ws, topic, t.partition, coll, streamTime, visible, dropped), nil
	case topology.SessionStoreKind:
		ss, err := db.SessionStore(spec.Name, t.partition, changelog.SessionOptions{Retention: spec.Retention})
		if err != nil {
			return nil, fmt.Errorf("task %s: session store %s: %w", t.id, spec.Name, err)
		}
		return newSessionStore(spec, ss, topic, t.partition, coll, streamTime, visible, dropped), nil
	}
	if spec.TTL > 0 {
		return newTTLStore(spec, db.Store(spec.Name, t.partition), topic, t.partition, coll, streamTime), nil
	}
	kv := newKVStore(spec, db.Store(spec.Name, t.partition), topic, t.partition, coll)
	kv.fromSource = spec.SourceTopic != ""
	kv.rc = &t.rc
	return kv, nil
}

// init initializes the processors; called once the stores are restored.
func (t *task) init() error {
	for _, n := range t.sub.Nodes {
		rt := t.nodes[n.Name]
		if rt.proc != nil {
			if err := rt.proc.Init(rt.ctx); err != nil {
				return fmt.Errorf("task %s: init %s: %w", t.id, n.Name, err)
			}
		}
	}
	t.initialized = true
	t.publishWallDue()
	return nil
}

// closeProcessors closes every initialized processor.
func (t *task) closeProcessors() {
	if !t.initialized {
		return
	}
	for _, rt := range t.nodes {
		if rt.proc != nil {
			if err := rt.proc.Close(); err != nil {
				t.log.Warn("processor close failed", "node", rt.node.Name, "err", err)
			}
		}
	}
	t.initialized = false
}

// close closes the processors and drops uncommitted store writes.
func (t *task) close() {
	t.closeProcessors()
	for _, s := range t.stores {
		s.abort()
	}
}

// setCommittedStreamTime sets stream time at assignment, from the committed
// offsets' metadata, before the task runs.
func (t *task) setCommittedStreamTime(st time.Time) {
	if st.After(t.streamTime) {
		t.streamTime = st
		t.committedStreamTime = st
	}
}

// markCommitted makes the task's current point its committed point. Called
// by the poll loop after a commit, workers drained.
func (t *task) markCommitted() {
	clear(t.processed)
	if !t.dirty {
		return
	}
	t.dirty = false
	t.committedStreamTime = t.streamTime
	t.committedPuncts = t.committedPuncts[:0]
	for _, p := range t.puncts {
		t.committedPuncts = append(t.committedPuncts, punctState{next: p.next, cancelled: p.cancelled})
	}
}

// rollback returns the task to its committed point after an abort: pending
// store writes and buffered records dropped, and, if it did any work in the
// transaction, its processors closed, rebuilt from their suppliers and
// initialized again, with stream time and punctuation schedules as they were
// committed (a punctuation that fired in the aborted transaction fires
// again). Kafka Streams closes and revives the task the same way. Called by
// the poll loop, workers drained.
func (t *task) rollback() error {
	for _, s := range t.stores {
		s.abort()
	}
	t.coll.discard()
	clear(t.processed)
	if !t.dirty {
		return nil
	}
	t.dirty = false
	t.streamTime = t.committedStreamTime
	if !t.initialized {
		return nil
	}
	t.closeProcessors()
	for _, rt := range t.nodes {
		if rt.node.Kind == topology.ProcessorNode {
			rt.proc = rt.node.Supplier()
		}
	}
	t.puncts = nil
	if err := t.init(); err != nil {
		return fmt.Errorf("task %s: re-initialize after abort: %w", t.id, err)
	}
	// Init schedules its punctuators again, in the same order; give them the
	// committed schedule. (Punctuators scheduled later, while processing, are
	// gone with the processor instance that scheduled them, as in Kafka
	// Streams.)
	for i, p := range t.puncts {
		if i < len(t.committedPuncts) {
			p.next, p.cancelled = t.committedPuncts[i].next, t.committedPuncts[i].cancelled
		}
	}
	t.publishWallDue()
	return nil
}

// publishWallDue publishes the earliest due wall-clock punctuation for the
// poll loop. The task's worker (or the poll loop with workers drained) only.
func (t *task) publishWallDue() {
	var due int64
	for _, p := range t.puncts {
		if p.typ == topology.WallClockTime && !p.cancelled {
			if n := p.next.UnixNano(); due == 0 || n < due {
				due = n
			}
		}
	}
	t.wallDue.Store(due)
}

// appendCommits appends the task's part of DB.Commit after a transaction
// committed: every store with pending writes or a new checkpoint (the next
// offset after its last changelog record in changelogNext; for a
// source-topic store, the committed position in its source partition).
// Called before markCommitted, which clears the positions.
func (t *task) appendCommits(commits []changelog.Commit, changelogNext map[partitionKey]int64) []changelog.Commit {
	for _, s := range t.stores {
		cp := int64(-1)
		if off, ok := changelogNext[partitionKey{s.changelogTopic(), s.changelogPartition()}]; ok {
			cp = off
		}
		if s.storeSpec().SourceTopic != "" {
			// The source partition is the changelog: checkpoint at the
			// committed position (sourcetopic.go).
			if off, ok := t.processed[partitionKey{s.changelogTopic(), s.changelogPartition()}]; ok {
				cp = off
			}
		}
		if cp >= 0 || s.pendingCount() > 0 {
			commits = append(commits, s.commitAt(cp))
		}
	}
	return commits
}

// changelogStores lists the task's changelog stores for commit.
func (t *task) changelogStores() []stateStore {
	out := make([]stateStore, 0, len(t.stores))
	for _, s := range t.stores {
		out = append(out, s)
	}
	return out
}

// process runs one input record through the sub-topology. A record that fails
// (deserialization, a processor error or panic, serialization at a sink) is
// handed to the error policy and its partial effects are dropped. The error
// returned is one the runner must act on: a runtime failure (abort) or a
// *ProcessingError under on.error=fail.
func (t *task) process(ctx context.Context, m *kafka.Message) error {
	t.dirty = true
	topic := *m.TopicPartition.Topic
	md := topology.RecordMetadata{Topic: topic, Partition: m.TopicPartition.Partition, Offset: int64(m.TopicPartition.Offset)}
	src, ok := t.sources[topic]
	if !ok {
		return &runtimeError{fmt.Errorf("task %s: no source for topic %s", t.id, topic)}
	}
	if err := t.runRecord(src, m, md); err != nil {
		t.discard()
		var pe *ProcessingError
		if !errors.As(err, &pe) {
			return err // a runtime failure: the transaction aborts
		}
		if errors.Is(pe, topology.ErrLateRecord) {
			t.onLate(m, pe)
		} else if err := t.onError(m, pe); err != nil {
			return err
		}
	} else if err := t.commitRecord(); err != nil {
		return err
	} else if err := t.maybeEvict(ctx); err != nil {
		return err
	}
	if err := t.coll.flush(ctx); err != nil {
		return err
	}
	t.processed[partitionKey{topic, md.Partition}] = md.Offset + 1
	return t.punctuateStreamTime(ctx)
}

// runRecord deserializes and forwards one record, turning panics into errors.
func (t *task) runRecord(src *nodeRT, m *kafka.Message, md topology.RecordMetadata) (err error) {
	t.curMD = md
	t.current, t.currentMsg = &t.curMD, m
	defer func() {
		t.current, t.currentMsg = nil, nil
		if r := recover(); r != nil {
			err = &ProcessingError{Class: "panic", Topic: md.Topic, Partition: md.Partition, Offset: md.Offset,
				Err: fmt.Errorf("%v\n%s", r, debug.Stack())}
		}
	}()
	perr := func(class string, e error) error {
		var rte *runtimeError
		if errors.As(e, &rte) {
			return e
		}
		pe := &ProcessingError{Class: class, Topic: md.Topic, Partition: md.Partition, Offset: md.Offset, Err: e}
		var ne *nodeError
		if errors.As(e, &ne) {
			pe.Node, pe.Err = ne.node, ne.err
		}
		return pe
	}
	key, err := src.node.KeySerde.Deserialize(md.Topic, m.Key)
	if err != nil {
		return perr("deserialization", fmt.Errorf("key: %w", err))
	}
	val, err := src.node.ValueSerde.Deserialize(md.Topic, m.Value)
	if err != nil {
		return perr("deserialization", fmt.Errorf("value: %w", err))
	}
	rec := topology.Record{Key: key, Value: val, Timestamp: m.Timestamp}
	if len(m.Headers) > 0 {
		rec.Headers = make([]topology.Header, len(m.Headers))
		for i, h := range m.Headers {
			rec.Headers[i] = topology.Header{Key: h.Key, Value: h.Value}
		}
	}
	// Event time: the source's extractor, else the record's timestamp. A
	// record without a usable one goes to the error policy before it can
	// move stream time.
	if src.node.Timestamp != nil {
		ts, err := src.node.Timestamp(rec)
		if err != nil {
			return perr("timestamp", err)
		}
		rec.Timestamp = ts
	}
	if ms := rec.Timestamp.UnixMilli(); ms < 0 {
		return perr("timestamp", fmt.Errorf("%w: %d", topology.ErrNegativeTimestamp, ms))
	}
	t.beforeVal = t.streamTime
	t.before = &t.beforeVal
	defer func() { t.before = nil }()
	if rec.Timestamp.After(t.streamTime) {
		t.streamTime = rec.Timestamp
	}
	if err := src.ctx.Forward(rec); err != nil {
		return perr("processing", err)
	}
	return nil
}

// commitRecord moves the record's store writes to the pending batches.
func (t *task) commitRecord() error {
	for _, s := range t.stores {
		if err := s.flush(); err != nil {
			return err
		}
	}
	return nil
}

func (t *task) discard() {
	for _, s := range t.stores {
		s.discard()
	}
	t.coll.discard()
}

// DLQ header names (docs/architecture.md, section 7).
const (
	HeaderErrorClass    = "eos.error.class"
	HeaderErrorMessage  = "eos.error.message"
	HeaderErrorNode     = "eos.error.node"
	HeaderSourceTopic   = "eos.source.topic"
	HeaderSourcePart    = "eos.source.partition"
	HeaderSourceOffset  = "eos.source.offset"
	HeaderSourceTime    = "eos.source.timestamp"
	HeaderApplicationID = "eos.application.id"
)

// onLate handles a record a windowed operation dropped because every window
// it belongs to had closed (stream time past the window's end plus grace):
// it is counted (eos_dropped_records_total{reason="late"}) and logged at
// debug, or, with late.records=dlq, dead-lettered with class "late". Never
// the error policy: a late record is expected input, not a failure, and must
// not stop the application under on.error=fail.
func (t *task) onLate(m *kafka.Message, pe *ProcessingError) {
	t.metrics.dropped.WithLabelValues("late").Inc()
	t.log.Debug("late record dropped", "topic", pe.Topic, "partition", pe.Partition, "offset", pe.Offset, "node", pe.Node, "err", pe.Err)
	if t.lateToDLQ {
		late := *pe
		late.Class = "late"
		t.deadLetter(m, &late)
	}
}

// onError applies the error policy to a failed record: the failing node's
// own, if it has one, else the application's on.error.
func (t *task) onError(m *kafka.Message, pe *ProcessingError) error {
	attrs := []any{"class", pe.Class, "topic", pe.Topic, "partition", pe.Partition, "offset", pe.Offset, "node", pe.Node, "err", pe.Err}
	policy := t.policy
	if n, ok := t.nodes[pe.Node]; ok && n.node.OnError != "" {
		policy = n.node.OnError // the failing node's own (topology.OnError)
	}
	switch policy {
	case OnErrorFail:
		t.log.Error("record failed; stopping (on.error=fail)", attrs...)
		return pe
	case OnErrorSkip:
		t.metrics.skipped.WithLabelValues(pe.Class).Inc()
		t.log.Warn("record skipped", attrs...)
		return nil
	}
	t.log.Warn("record dead-lettered", append(attrs, "dlq", t.dlqTopic)...)
	t.deadLetter(m, pe)
	return nil
}

// deadLetter queues the original record, with headers naming why and where
// it failed, for the dead-letter topic, in the same transaction.
func (t *task) deadLetter(m *kafka.Message, pe *ProcessingError) {
	t.metrics.dlq.WithLabelValues(pe.Class).Inc()
	headers := append([]kafka.Header(nil), m.Headers...)
	headers = append(headers,
		kafka.Header{Key: HeaderErrorClass, Value: []byte(pe.Class)},
		kafka.Header{Key: HeaderErrorMessage, Value: []byte(truncate(pe.Err.Error(), 4096))},
		kafka.Header{Key: HeaderErrorNode, Value: []byte(pe.Node)},
		kafka.Header{Key: HeaderSourceTopic, Value: []byte(pe.Topic)},
		kafka.Header{Key: HeaderSourcePart, Value: []byte(strconv.Itoa(int(pe.Partition)))},
		kafka.Header{Key: HeaderSourceOffset, Value: []byte(strconv.FormatInt(pe.Offset, 10))},
		kafka.Header{Key: HeaderSourceTime, Value: []byte(strconv.FormatInt(m.Timestamp.UnixMilli(), 10))},
		kafka.Header{Key: HeaderApplicationID, Value: []byte(t.appID)},
	)
	dlq := t.dlqTopic
	t.coll.send(&kafka.Message{
		TopicPartition: kafka.TopicPartition{Topic: &dlq, Partition: kafka.PartitionAny},
		Key:            m.Key, Value: m.Value, Headers: headers, Timestamp: m.Timestamp,
	})
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// nodeError remembers the innermost node an error came from.
type nodeError struct {
	node string
	err  error
}

func (e *nodeError) Error() string { return "node " + e.node + ": " + e.err.Error() }
func (e *nodeError) Unwrap() error { return e.err }

// deliver runs rec through one node.
func (t *task) deliver(n *nodeRT, rec topology.Record) error {
	var err error
	if n.node.Kind == topology.SinkNode {
		err = t.sink(n, rec)
	} else {
		err = n.proc.Process(rec)
	}
	if err == nil {
		return nil
	}
	var ne *nodeError
	var rte *runtimeError
	if errors.As(err, &ne) || errors.As(err, &rte) {
		return err
	}
	return &nodeError{node: n.node.Name, err: err}
}

// sink serializes rec and queues it for n's topic.
func (t *task) sink(n *nodeRT, rec topology.Record) error {
	kb, err := n.node.KeySerde.Serialize(n.topic, rec.Key)
	if err != nil {
		return fmt.Errorf("serialize key for %s: %w", n.topic, err)
	}
	vb, err := n.node.ValueSerde.Serialize(n.topic, rec.Value)
	if err != nil {
		return fmt.Errorf("serialize value for %s: %w", n.topic, err)
	}
	var hs []kafka.Header
	if len(rec.Headers) > 0 {
		hs = make([]kafka.Header, len(rec.Headers))
		for i, h := range rec.Headers {
			hs[i] = kafka.Header{Key: h.Key, Value: h.Value}
		}
	}
	m := t.coll.message()
	m.TopicPartition = kafka.TopicPartition{Topic: n.topicPtr, Partition: kafka.PartitionAny}
	m.Key, m.Value, m.Headers, m.Timestamp = kb, vb, hs, rec.Timestamp
	t.coll.send(m)
	return nil
}

// punctuation is one scheduled punctuator.
type punctuation struct {
	interval  time.Duration
	typ       topology.PunctuationType
	fn        topology.Punctuator
	next      time.Time
	cancelled bool
	node      string
}

func (p *punctuation) Cancel() { p.cancelled = true }

// punctuateStreamTime fires stream-time punctuators due at the current stream time.
func (t *task) punctuateStreamTime(ctx context.Context) error {
	return t.punctuate(ctx, topology.StreamTime, t.streamTime)
}

// punctuate fires the due punctuators of one type. Their outputs and store
// writes are committed like a record's; an error stops the runner, since
// there is no input record to dead-letter.
func (t *task) punctuate(ctx context.Context, typ topology.PunctuationType, now time.Time) error {
	if now.IsZero() {
		return nil
	}
	if typ == topology.WallClockTime {
		t.dirty = true
		defer t.publishWallDue()
	}
	for _, p := range t.puncts {
		if p.cancelled || p.typ != typ {
			continue
		}
		if p.next.IsZero() {
			p.next = now.Add(p.interval)
			continue
		}
		if now.Before(p.next) {
			continue
		}
		t.dirty = true
		for !now.Before(p.next) {
			p.next = p.next.Add(p.interval)
		}
		t.metrics.punctuations.Inc()
		if err := t.runPunctuator(p, now); err != nil {
			t.discard()
			return fmt.Errorf("task %s: %s punctuator of %s: %w", t.id, p.typ, p.node, err)
		}
		if err := t.commitRecord(); err != nil {
			return err
		}
		if err := t.maybeEvict(ctx); err != nil {
			return err
		}
		if err := t.coll.flush(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (t *task) runPunctuator(p *punctuation, now time.Time) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v\n%s", r, debug.Stack())
		}
	}()
	return p.fn(now)
}

// nodeContext is topology.ProcessorContext for one node of one task.
type nodeContext struct {
	t *task
	n *nodeRT
}

func (c *nodeContext) TaskID() string        { return c.t.id }
func (c *nodeContext) Partition() int32      { return c.t.partition }
func (c *nodeContext) ApplicationID() string { return c.t.appID }
func (c *nodeContext) StreamTime() time.Time { return c.t.streamTime }

func (c *nodeContext) Forward(rec topology.Record) error {
	for _, child := range c.n.children {
		if err := c.t.deliver(child, rec); err != nil {
			return err
		}
	}
	return nil
}

func (c *nodeContext) ForwardTo(name string, rec topology.Record) error {
	child, ok := c.n.byName[name]
	if !ok {
		return fmt.Errorf("node %s has no child %q", c.n.node.Name, name)
	}
	return c.t.deliver(child, rec)
}

// connected returns the node's store name of the wanted kind; it panics for
// a store the node is not connected to or of another kind, which Build and
// the DSL rule out before anything runs.
func (c *nodeContext) connected(name string, kind topology.StoreKind) stateStore {
	for _, s := range c.n.node.StoreNames {
		if s == name {
			st := c.t.stores[name]
			if got := st.storeSpec().Kind; got != kind {
				panic(fmt.Sprintf("node %s: store %q is a %v store, not a %v store", c.n.node.Name, name, got, kind))
			}
			return st
		}
	}
	panic(fmt.Sprintf("node %s: store %q is not connected (topology.WithStores)", c.n.node.Name, name))
}

func (c *nodeContext) Store(name string) topology.KeyValueStore {
	if g, ok := c.t.globals[name]; ok && slices.Contains(c.n.node.StoreNames, name) {
		return g // a global table's read-only view (globalstore.go)
	}
	return c.connected(name, topology.KeyValueStoreKind).(topology.KeyValueStore)
}

func (c *nodeContext) WindowStore(name string) topology.WindowStore {
	return c.connected(name, topology.WindowStoreKind).(*windowStore)
}

func (c *nodeContext) SessionStore(name string) topology.SessionStore {
	return c.connected(name, topology.SessionStoreKind).(*sessionStore)
}

// RecordDropped implements topology.DropRecorder: a node dropped the current
// record on purpose (a late record in a windowed aggregation, a duplicate).
// It is counted by reason and logged at debug; a late record goes to the
// dead-letter topic too under late.records=dlq. The record's effects on other
// nodes stand.
func (c *nodeContext) RecordDropped(reason string, why error) {
	t := c.t
	if reason == "late" && t.current != nil && t.currentMsg != nil {
		md := t.current
		t.onLate(t.currentMsg, &ProcessingError{Class: "late", Topic: md.Topic, Partition: md.Partition, Offset: md.Offset,
			Node: c.n.node.Name, Err: why})
		return
	}
	t.metrics.dropped.WithLabelValues(reason).Inc()
	t.log.Debug("record dropped", "reason", reason, "node", c.n.node.Name, "why", why)
}

func (c *nodeContext) Schedule(interval time.Duration, typ topology.PunctuationType, fn topology.Punctuator) topology.Cancellable {
	p := &punctuation{interval: interval, typ: typ, fn: fn, node: c.n.node.Name}
	if typ == topology.WallClockTime {
		p.next = c.t.now().Add(interval)
	}
	c.t.puncts = append(c.t.puncts, p)
	c.t.publishWallDue()
	return p
}

func (c *nodeContext) RecordMetadata() (topology.RecordMetadata, bool) {
	if c.t.current == nil {
		return topology.RecordMetadata{}, false
	}
	return *c.t.current, true
}
