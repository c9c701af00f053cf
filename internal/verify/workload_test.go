package verify

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eos-runner/eos-runner/topology"
	"github.com/twmb/franz-go/pkg/kgo"
)

// memTask runs one task of a topology in memory, as package processor does
// for one input partition: records pushed depth first from the source, keys
// and values through the nodes' serdes, store writes kept pending (reads see
// them) until commit applies them or abort drops them, sink records collected
// for the open transaction. It lets the workload test run Topology() end to
// end without the runner, so that the topology and Check are proven to agree.
type memTask struct {
	topo      *topology.Topology
	partition int32
	procs     map[*topology.Node]topology.Processor
	committed map[string]map[string][]byte // store -> serialized key -> value
	pending   map[string]map[string][]byte // nil value: deleted
	out       []*kgo.Record                // sink records since the last commit
	md        topology.RecordMetadata
	// streamTime is the largest timestamp processed; committedStreamTime
	// its value at the last commit, to which an abort rolls it back.
	streamTime, committedStreamTime time.Time
}

func newMemTask(t *testing.T, topo *topology.Topology, partition int32) *memTask {
	t.Helper()
	m := &memTask{
		topo: topo, partition: partition,
		procs:     map[*topology.Node]topology.Processor{},
		committed: map[string]map[string][]byte{},
		pending:   map[string]map[string][]byte{},
	}
	for name := range topo.Stores {
		m.committed[name] = map[string][]byte{}
		m.pending[name] = map[string][]byte{}
	}
	if err := m.initProcessors(); err != nil {
		t.Fatal(err)
	}
	return m
}

// initProcessors builds the task's processors afresh, as the runner
// rebuilds a task after an abort: their fields (a windowed aggregation's
// observed stream time) roll back with the stores.
func (m *memTask) initProcessors() error {
	for _, n := range m.topo.Nodes {
		if n.Kind != topology.ProcessorNode {
			continue
		}
		p := n.Supplier()
		if err := p.Init(&memCtx{m: m, node: n}); err != nil {
			return fmt.Errorf("init %s: %w", n.Name, err)
		}
		m.procs[n] = p
	}
	return nil
}

// process pushes one input record through the topology.
func (m *memTask) process(r *kgo.Record) error {
	for _, n := range m.topo.Nodes {
		if n.Kind != topology.SourceNode || n.Topics[0] != r.Topic {
			continue
		}
		k, err := n.KeySerde.Deserialize(r.Topic, r.Key)
		if err != nil {
			return err
		}
		v, err := n.ValueSerde.Deserialize(r.Topic, r.Value)
		if err != nil {
			return err
		}
		m.md = topology.RecordMetadata{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset}
		rec := topology.Record{Key: k, Value: v, Timestamp: r.Timestamp}
		if r.Timestamp.After(m.streamTime) {
			m.streamTime = r.Timestamp
		}
		for _, c := range n.Children {
			if err := m.push(c, rec); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("no source reads %s", r.Topic)
}

func (m *memTask) push(n *topology.Node, r topology.Record) error {
	switch n.Kind {
	case topology.ProcessorNode:
		return m.procs[n].Process(r)
	case topology.SinkNode:
		topic := n.Topics[0]
		k, err := n.KeySerde.Serialize(topic, r.Key)
		if err != nil {
			return err
		}
		v, err := n.ValueSerde.Serialize(topic, r.Value)
		if err != nil {
			return err
		}
		// The runner's producer partitions by murmur2 of the key, whatever
		// partition the input record came from.
		m.out = append(m.out, &kgo.Record{Topic: topic, Partition: murmur2Partition(k, testPartitions), Key: k, Value: v})
	}
	return nil
}

// commit applies the pending store writes and returns the transaction's
// output records.
func (m *memTask) commit() []*kgo.Record {
	for store, kv := range m.pending {
		for k, v := range kv {
			if v == nil {
				delete(m.committed[store], k)
			} else {
				m.committed[store][k] = v
			}
		}
		m.pending[store] = map[string][]byte{}
	}
	m.committedStreamTime = m.streamTime
	out := m.out
	m.out = nil
	return out
}

// abort drops the pending store writes, rolls back stream time and the
// processors, and returns the outputs it drops.
func (m *memTask) abort() []*kgo.Record {
	for store := range m.pending {
		m.pending[store] = map[string][]byte{}
	}
	m.streamTime = m.committedStreamTime
	if err := m.initProcessors(); err != nil {
		panic(err) // they initialized once already
	}
	out := m.out
	m.out = nil
	return out
}

// memCtx is a processor node's ProcessorContext in a memTask.
type memCtx struct {
	m    *memTask
	node *topology.Node
}

// RecordDropped implements topology.DropRecorder, as the runner's context
// does: a late record is dropped by the windowed node alone.
func (c *memCtx) RecordDropped(string, error) {}

func (c *memCtx) TaskID() string        { return fmt.Sprintf("0_%d", c.m.partition) }
func (c *memCtx) Partition() int32      { return c.m.partition }
func (c *memCtx) ApplicationID() string { return testGroup }
func (c *memCtx) Forward(r topology.Record) error {
	for _, ch := range c.node.Children {
		if err := c.m.push(ch, r); err != nil {
			return err
		}
	}
	return nil
}
func (c *memCtx) ForwardTo(child string, r topology.Record) error {
	for _, ch := range c.node.Children {
		if ch.Name == child {
			return c.m.push(ch, r)
		}
	}
	return fmt.Errorf("%s has no child %s", c.node.Name, child)
}
func (c *memCtx) Store(name string) topology.KeyValueStore {
	return &memStore{m: c.m, name: name, spec: c.m.topo.Stores[name]}
}
func (c *memCtx) WindowStore(name string) topology.WindowStore {
	return &memWindowStore{memStore{m: c.m, name: name, spec: c.m.topo.Stores[name]}}
}
func (c *memCtx) SessionStore(name string) topology.SessionStore {
	panic("verify workload: no session stores")
}
func (c *memCtx) Schedule(time.Duration, topology.PunctuationType, topology.Punctuator) topology.Cancellable {
	return noCancel{}
}
func (c *memCtx) RecordMetadata() (topology.RecordMetadata, bool) { return c.m.md, true }
func (c *memCtx) StreamTime() time.Time                           { return c.m.streamTime }

type noCancel struct{}

func (noCancel) Cancel() {}

// memStore is a store partition of a memTask: reads see pending writes.
type memStore struct {
	m    *memTask
	name string
	spec topology.StoreSpec
}

func (s *memStore) Name() string { return s.name }

func (s *memStore) Get(key any) (any, error) {
	k, err := s.spec.KeySerde.Serialize(s.name, key)
	if err != nil {
		return nil, err
	}
	v, ok := s.m.pending[s.name][string(k)]
	if !ok {
		v = s.m.committed[s.name][string(k)]
	}
	if v == nil {
		return nil, nil
	}
	return s.spec.ValueSerde.Deserialize(s.name, v)
}

func (s *memStore) Put(key, value any) error {
	k, err := s.spec.KeySerde.Serialize(s.name, key)
	if err != nil {
		return err
	}
	v, err := s.spec.ValueSerde.Serialize(s.name, value)
	if err != nil {
		return err
	}
	s.m.pending[s.name][string(k)] = v
	return nil
}

func (s *memStore) Delete(key any) error {
	k, err := s.spec.KeySerde.Serialize(s.name, key)
	if err != nil {
		return err
	}
	s.m.pending[s.name][string(k)] = nil
	return nil
}

func (s *memStore) Range(from, to any, fn func(key, value any) error) error {
	return errors.New("memStore: Range is not used by the verification topology")
}

// memWindowStore is a window store partition of a memTask: entries keyed by
// the serialized key and the 8-byte window start; reads see pending writes.
// Nothing expires: the workload's input is small.
type memWindowStore struct{ memStore }

func (s *memWindowStore) entry(key any, start time.Time) (string, error) {
	k, err := s.spec.KeySerde.Serialize(s.name, key)
	if err != nil {
		return "", err
	}
	return string(binary.BigEndian.AppendUint64(k, uint64(start.UnixMilli()))), nil
}

func (s *memWindowStore) Get(key any, start time.Time) (any, error) {
	e, err := s.entry(key, start)
	if err != nil {
		return nil, err
	}
	v, ok := s.m.pending[s.name][e]
	if !ok {
		v = s.m.committed[s.name][e]
	}
	if v == nil {
		return nil, nil
	}
	return s.spec.ValueSerde.Deserialize(s.name, v)
}

func (s *memWindowStore) Put(key any, start time.Time, value any) error {
	e, err := s.entry(key, start)
	if err != nil {
		return err
	}
	var v []byte
	if value != nil {
		if v, err = s.spec.ValueSerde.Serialize(s.name, value); err != nil {
			return err
		}
	}
	s.m.pending[s.name][e] = v
	return nil
}

func (s *memWindowStore) Fetch(key any, from, to time.Time, fn func(start time.Time, value any) error) error {
	k, err := s.spec.KeySerde.Serialize(s.name, key)
	if err != nil {
		return err
	}
	return s.FetchAll(from, to, func(kk any, start time.Time, v any) error {
		if b, _ := s.spec.KeySerde.Serialize(s.name, kk); string(b) == string(k) {
			return fn(start, v)
		}
		return nil
	})
}

func (s *memWindowStore) FetchAll(from, to time.Time, fn func(key any, start time.Time, value any) error) error {
	merged := maps.Clone(s.m.committed[s.name])
	maps.Copy(merged, s.m.pending[s.name])
	type ent struct {
		key   string
		start int64
		v     []byte
	}
	var es []ent
	for e, v := range merged {
		start := int64(binary.BigEndian.Uint64([]byte(e[len(e)-8:])))
		if v != nil && start >= from.UnixMilli() && start <= to.UnixMilli() {
			es = append(es, ent{e[:len(e)-8], start, v})
		}
	}
	slices.SortFunc(es, func(a, b ent) int {
		return cmp.Or(cmp.Compare(a.start, b.start), strings.Compare(a.key, b.key))
	})
	for _, e := range es {
		k, err := s.spec.KeySerde.Deserialize(s.name, []byte(e.key))
		if err != nil {
			return err
		}
		v, err := s.spec.ValueSerde.Deserialize(s.name, e.v)
		if err != nil {
			return err
		}
		if err := fn(k, time.UnixMilli(e.start).UTC(), v); err != nil {
			return err
		}
	}
	return nil
}

// TestWorkload runs the whole workload against kfake: Generate writes the
// input, Topology() runs in memTasks that write their outputs in
// transactions, and Check judges. The runs differ in how the input is
// partitioned (murmur2 as Java's producer, crc32 as librdkafka's default, at
// random so that keys are spread over partitions) and in what happens when a
// transaction fails halfway: the exactly-once path passes with any input,
// the classic failures fail with any input.
func TestWorkload(t *testing.T) {
	const (
		n     = 1200
		keys  = 30
		chunk = 100 // input records per transaction
	)
	type onFailure int
	const (
		none          onFailure = iota
		exactlyOnce             // abort the transaction, drop pending state, reprocess
		atLeastOnce             // outputs already committed, state and offsets rolled back, reprocess
		stateTooEarly           // outputs aborted but state already applied, reprocess
		lost                    // outputs and state aborted, offsets committed past them: no reprocess
	)
	tests := []struct {
		name string
		fail onFailure
		// want are the output topics with violations; nil expects a pass.
		want []string
	}{
		{"no failure", none, nil},
		{"exactly once: abort and replay", exactlyOnce, nil},
		{"at least once: outputs committed, replay", atLeastOnce, OutputTopics(testInput)},
		{"state applied before the commit, replay", stateTooEarly, []string{"T-sum", "T-cnt"}},
		{"outputs aborted, offsets committed: lost", lost, OutputTopics(testInput)},
	}
	for _, partitioner := range partitioners {
		for _, tt := range tests {
			t.Run(partitioner+"/"+tt.name, func(t *testing.T) {
				brokers := newCluster(t, testPartitions, append(OutputTopics(testInput), WindowedOutputTopic(testInput))...)
				ctx := testContext(t)
				if _, err := Generate(ctx, GenerateConfig{Brokers: brokers, Topic: testInput, Records: n, Keys: keys,
					Partitions: testPartitions, Seed: 11, Partitioner: partitioner,
					// 12s of event time: windows close, and a late record.
					EventRate: n / 12, LateEvery: 100}); err != nil {
					t.Fatal(err)
				}
				topo, err := Topology(testInput)
				if err != nil {
					t.Fatal(err)
				}
				prod := newClient(t, brokers, kgo.TransactionalID("workload"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
				txn := func(recs []*kgo.Record, commit kgo.TransactionEndTry) {
					t.Helper()
					if err := prod.BeginTransaction(); err != nil {
						t.Fatal(err)
					}
					if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
						t.Fatal(err)
					}
					if err := prod.EndTransaction(ctx, commit); err != nil {
						t.Fatal(err)
					}
				}

				commits := map[int32]int64{}
				failed := false
				input := consumeN(t, brokers, testInput, n)
				for p := range int32(testPartitions) {
					recs := input[p]
					task := newMemTask(t, topo, p)
					for from := 0; from < len(recs); from += chunk {
						batch := recs[from:min(from+chunk, len(recs))]
						run := func() {
							for _, r := range batch {
								if err := task.process(r); err != nil {
									t.Fatal(err)
								}
							}
						}
						run()
						if !failed && tt.fail != none && from > 0 {
							// The transaction fails once, in the middle of the input.
							failed = true
							switch tt.fail {
							case exactlyOnce:
								txn(task.abort(), kgo.TryAbort)
								run()
							case atLeastOnce:
								txn(task.abort(), kgo.TryCommit)
								run()
							case stateTooEarly:
								txn(task.commit(), kgo.TryAbort)
								run()
							case lost:
								txn(task.abort(), kgo.TryAbort)
							}
						}
						txn(task.commit(), kgo.TryCommit)
						commits[p] = batch[len(batch)-1].Offset + 1
					}
				}
				if tt.fail != none && !failed {
					t.Fatal("no partition had two transactions: no failure injected")
				}
				commitOffsets(t, brokers, testGroup, testInput, commits)

				r, err := Check(ctx, CheckConfig{Brokers: brokers, Input: testInput, Group: testGroup})
				if err != nil {
					t.Fatal(err)
				}
				if spread := r.SpreadKeys > 0; spread != (partitioner == PartitionRandom) {
					t.Errorf("SpreadKeys = %d with the %s partitioner", r.SpreadKeys, partitioner)
				}
				if tt.want == nil {
					if !r.OK {
						t.Fatalf("%s\n  %s", r.Verdict(), strings.Join(r.Violations, "\n  "))
					}
					if r.InputRecords != n || r.Keys != keys {
						t.Errorf("%s; want %d records, %d keys", r.Verdict(), n, keys)
					}
					if w := r.Windowed; w == nil || w.Closed < keys || w.Late == 0 {
						t.Errorf("%s; want closed windows for every key and late records", r.Verdict())
					}
					return
				}
				t.Logf("%s\n  %s", r.Verdict(), strings.Join(r.Violations[:min(len(r.Violations), 5)], "\n  "))
				if r.OK {
					t.Fatalf("want violations in %v, got %s", tt.want, r.Verdict())
				}
				seen := map[string]bool{}
				for _, v := range r.Violations {
					subj, _, _ := strings.Cut(v, ":")
					subj, _, _ = strings.Cut(subj, "[")
					seen[subj] = true
				}
				for _, topic := range tt.want {
					if !seen[topic] {
						t.Errorf("no violation on %s", topic)
					}
				}
				if tt.fail == stateTooEarly && seen["T-echo"] {
					t.Errorf("violations on T-echo, whose records are right: %v", r.Violations)
				}
			})
		}
	}
}
