package processor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/eos-runner/eos-runner/changelog"
	"github.com/eos-runner/eos-runner/internal/murmur2"
	"github.com/eos-runner/eos-runner/topology"
)

// Interactive queries, Kafka Streams' IQ: read a store's committed state
// from outside the topology, by key, key range, or key and time range for
// window stores; over HTTP (queryhttp.go) or from Go (Runner.Query,
// QueryRange, QueryWindows) for programs that embed the runner.
//
//   - Only committed state is answered: reads go through changelog.Reader
//     (or a fresh window store handle with no pending writes), which see
//     what DB.Commit applied after a Kafka commit, never a task's pending
//     writes, and are safe beside the task's worker.
//   - Only tasks running here answer: a store partition restoring, or kept
//     by a standby, or left over from a revoked task, is not queried. The
//     set of running tasks is published by the poll loop
//     (taskManager.running).
//   - The partition of a key is the one the runner's producer would give
//     it on the store's sub-topology's input: murmur2 of the key's bytes
//     (the store's key serde) modulo the sub-topology's partition count,
//     Java's and librdkafka's murmur2_random. That holds for a store fed
//     through a repartition topic (the runner wrote it) and for a source
//     topic written with the default partitioner; a source topic
//     partitioned by another rule puts keys where queries do not look.
//   - A key of a partition another instance runs gets a *NotLocalError
//     naming that instance and its application.server, from the group's
//     description (membership.go).
//
// Window stores are queried by key and window start range; session stores
// are not queryable yet. A key-value store with a TTL answers an entry until
// its task has expired it (the query does not know the task's stream time).

// ErrNotQueryable is returned for a store that cannot be queried: unknown,
// global, a session store, or the runner not running yet.
var ErrNotQueryable = errors.New("store not queryable")

// ErrNotRunning is returned while the key's task is assigned here but not
// running (its stores are restoring): retry later.
var ErrNotRunning = errors.New("task restoring")

// NotLocalError says which instance runs the task a queried key belongs
// to. Instance and Server are empty when the group's view does not know
// (the partition is being reassigned, or the group has not been described
// yet).
type NotLocalError struct {
	Store     string
	Partition int32
	Instance  string
	// Server is the instance's application.server ("" if it has none).
	Server string
}

func (e *NotLocalError) Error() string {
	if e.Instance == "" {
		return fmt.Sprintf("store %s partition %d: not running here, owner unknown", e.Store, e.Partition)
	}
	return fmt.Sprintf("store %s partition %d: runs on instance %s (application.server %q)", e.Store, e.Partition, e.Instance, e.Server)
}

// QueryResult is the answer of Runner.Query.
type QueryResult struct {
	Store     string
	Partition int32
	Key       any
	Found     bool
	Value     any // deserialized with the store's value serde
}

// KeyValue is one entry of a range query.
type KeyValue struct {
	Partition  int32
	Key, Value any
}

// RangeResult is the answer of Runner.QueryRange: the entries of the
// partitions running here, by partition then key bytes, and the partitions
// that run elsewhere.
type RangeResult struct {
	Store     string
	Entries   []KeyValue
	Elsewhere []*NotLocalError
}

// WindowValue is one window of a window query.
type WindowValue struct {
	Start time.Time
	Value any
}

// WindowsResult is the answer of Runner.QueryWindows.
type WindowsResult struct {
	Store     string
	Partition int32
	Key       any
	Windows   []WindowValue
}

// queryState is what queries and standbys need of a running runner,
// published once Run has planned its topics (Runner.startSharing).
// Read-only once published.
type queryState struct {
	db      *changelog.DB
	topo    *topology.Topology
	app     string
	self    string
	server  string
	subOf   map[string]*topology.SubTopology // store name -> its sub-topology
	leader  map[int]string                   // sub-topology -> leader topic
	parts   map[int]int                      // sub-topology -> partitions
	running *taskManager                     // only its published running set is read
	group   *groupWatch                      // nil without standbys and application.server
}

// startSharing publishes what queries need and starts the group watch
// when standbys or application.server need it. Call after the task
// manager exists, before the poll loop. The returned function stops the
// watch.
func (r *Runner) startSharing(ctx context.Context) (stop func(), err error) {
	qs := &queryState{db: r.db, topo: r.topo, app: r.cfg.ApplicationID, self: r.cfg.InstanceID, server: r.cfg.ApplicationServer,
		subOf: map[string]*topology.SubTopology{}, leader: map[int]string{}, parts: r.plan.partitions, running: r.tm}
	for _, sub := range r.topo.SubTopologies {
		for _, name := range sub.Stores {
			qs.subOf[name] = sub
		}
	}
	for _, topic := range r.plan.copart.group {
		qs.leader[r.plan.subOf[topic]] = topic
	}
	stop = func() {}
	if r.cfg.NumStandbyReplicas > 0 || r.cfg.ApplicationServer != "" {
		admin, err := kafka.NewAdminClient(r.kafkaConfig("admin", kafka.ConfigMap{"log_level": 3}))
		if err != nil {
			return nil, fmt.Errorf("admin client (group watch): %w", err)
		}
		qs.group = newGroupWatch(admin, r.cfg.ApplicationID, r.log)
		wctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); qs.group.run(wctx) }()
		stop = func() { cancel(); <-done; admin.Close() }
	}
	if r.cfg.NumStandbyReplicas > 0 {
		r.tm.standbys = newStandbys(r.cfg.NumStandbyReplicas, r.cfg.InstanceID, r.cfg.ApplicationID, r.topo, r.plan, r.m)
	}
	r.qs.Store(qs)
	return stop, nil
}

// groupView is the group's last description, nil if none.
func (r *Runner) groupView() *groupView {
	if qs := r.qs.Load(); qs != nil {
		return qs.group.current()
	}
	return nil
}

// kickGroupWatch has the group described again (after a rebalance).
func (r *Runner) kickGroupWatch() {
	if qs := r.qs.Load(); qs != nil {
		qs.group.kick()
	}
}

// queryTarget is a located store partition.
type queryTarget struct {
	spec      topology.StoreSpec
	topic     string // the topic the store's serdes are called with
	partition int32
}

// store returns the spec and serde topic of a queryable store.
func (qs *queryState) store(name string) (topology.StoreSpec, *topology.SubTopology, string, error) {
	spec, ok := qs.topo.Stores[name]
	sub := qs.subOf[name]
	switch {
	case !ok || sub == nil:
		return spec, nil, "", fmt.Errorf("store %q: %w: no such store in a sub-topology", name, ErrNotQueryable)
	case spec.Kind == topology.SessionStoreKind:
		return spec, nil, "", fmt.Errorf("store %q: %w: session stores are not queryable", name, ErrNotQueryable)
	}
	topic := topology.ChangelogTopic(qs.app, name)
	if spec.SourceTopic != "" {
		topic = topology.TopicName(qs.app, spec.SourceTopic, false)
	}
	return spec, sub, topic, nil
}

// locate returns the partition of key in a store, and its key bytes.
func (qs *queryState) locate(name string, key any) (queryTarget, *topology.SubTopology, []byte, error) {
	spec, sub, topic, err := qs.store(name)
	if err != nil {
		return queryTarget{}, nil, nil, err
	}
	kb, err := storeKeyBytes(spec, topic, key)
	if err != nil {
		return queryTarget{}, nil, nil, err
	}
	n := qs.parts[sub.ID]
	if n <= 0 {
		return queryTarget{}, nil, nil, fmt.Errorf("store %q: %w: partition count unknown", name, ErrNotQueryable)
	}
	return queryTarget{spec: spec, topic: topic, partition: murmur2.Partition(kb, int32(n))}, sub, kb, nil
}

// check says whether partition p of sub runs here: nil, ErrNotRunning
// (assigned here, restoring) or a *NotLocalError.
func (qs *queryState) check(store string, sub *topology.SubTopology, p int32) error {
	id := taskID(sub.ID, int(p))
	if run := qs.running.running.Load(); run != nil && (*run)[id] {
		return nil
	}
	nl := &NotLocalError{Store: store, Partition: p}
	if v := qs.group.current(); v != nil {
		if inst, ok := v.owner[partitionKey{qs.leader[sub.ID], p}]; ok {
			nl.Instance, nl.Server = inst, v.servers[inst]
		}
	}
	if nl.Instance == qs.self {
		return fmt.Errorf("store %s partition %d: %w", store, p, ErrNotRunning)
	}
	return nl
}

func (r *Runner) queryState() (*queryState, error) {
	qs := r.qs.Load()
	if qs == nil {
		return nil, fmt.Errorf("%w: the runner is not running", ErrNotQueryable)
	}
	return qs, nil
}

// Query returns the committed value of key in a key-value store, if the
// key's task runs here; otherwise a *NotLocalError (errors.As) naming the
// instance that runs it, or an error wrapping ErrNotRunning while it
// restores here. Safe for concurrent use, once Run has started.
func (r *Runner) Query(ctx context.Context, store string, key any) (QueryResult, error) {
	qs, err := r.queryState()
	if err != nil {
		return QueryResult{}, err
	}
	tgt, sub, kb, err := qs.locate(store, key)
	if err != nil {
		return QueryResult{}, err
	}
	res := QueryResult{Store: store, Partition: tgt.partition, Key: key}
	if tgt.spec.Kind != topology.KeyValueStoreKind {
		return res, fmt.Errorf("store %q: %w: a window store is queried by key and time range", store, ErrNotQueryable)
	}
	if err := qs.check(store, sub, tgt.partition); err != nil {
		return res, err
	}
	vb, err := qs.getKV(tgt, kb)
	if err != nil || vb == nil {
		return res, err
	}
	if res.Value, err = tgt.spec.ValueSerde.Deserialize(tgt.topic, vb); err != nil {
		return res, fmt.Errorf("store %s: value: %w", store, err)
	}
	res.Found = true
	return res, ctx.Err()
}

// getKV reads one committed value of a key-value store partition, nil when
// absent; a TTL store's entry without its update time.
func (qs *queryState) getKV(tgt queryTarget, kb []byte) ([]byte, error) {
	rd := qs.db.Reader(tgt.spec.Name, tgt.partition)
	if tgt.spec.TTL <= 0 {
		return rd.Get(kb)
	}
	b, err := rd.Get(ttlDataKey(kb))
	if err != nil || len(b) < 8 {
		return nil, err
	}
	return b[8:], nil // after the update time
}

// QueryRange returns the committed entries with from <= key < to (nil
// bounds are open; key-byte order, as Store.Range) of a key-value store, in
// every partition running here, and names the partitions that run
// elsewhere. Keys are spread over partitions by hash, so a range touches
// every partition.
func (r *Runner) QueryRange(ctx context.Context, store string, from, to any) (RangeResult, error) {
	qs, err := r.queryState()
	if err != nil {
		return RangeResult{}, err
	}
	spec, sub, topic, err := qs.store(store)
	if err != nil {
		return RangeResult{}, err
	}
	if spec.Kind != topology.KeyValueStoreKind {
		return RangeResult{}, fmt.Errorf("store %q: %w: a window store is queried by key and time range", store, ErrNotQueryable)
	}
	var lo, hi []byte
	if from != nil {
		if lo, err = storeKeyBytes(spec, topic, from); err != nil {
			return RangeResult{}, err
		}
	}
	if to != nil {
		if hi, err = storeKeyBytes(spec, topic, to); err != nil {
			return RangeResult{}, err
		}
	}
	if spec.TTL > 0 {
		lo, hi = ttlDataKey(lo), ttlDataKey(hi)
		if to == nil {
			hi = []byte{ttlData + 1}
		}
	}
	res := RangeResult{Store: store}
	for p := range int32(qs.parts[sub.ID]) {
		if err := qs.check(store, sub, p); err != nil {
			var nl *NotLocalError
			if errors.As(err, &nl) {
				res.Elsewhere = append(res.Elsewhere, nl)
				continue
			}
			return res, err
		}
		err := qs.db.Reader(store, p).Range(lo, hi, func(k, v []byte) error {
			if spec.TTL > 0 {
				if len(k) == 0 || k[0] != ttlData || len(v) < 8 {
					return nil
				}
				k, v = k[1:], v[8:]
			}
			key, err := spec.KeySerde.Deserialize(topic, k)
			if err != nil {
				return fmt.Errorf("store %s: key: %w", store, err)
			}
			val, err := spec.ValueSerde.Deserialize(topic, v)
			if err != nil {
				return fmt.Errorf("store %s: value: %w", store, err)
			}
			res.Entries = append(res.Entries, KeyValue{Partition: p, Key: key, Value: val})
			return ctx.Err()
		})
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

// QueryWindows returns the committed windows of key in a window store
// with a start in [from, to], ascending, if the key's task runs here;
// otherwise as Query.
func (r *Runner) QueryWindows(ctx context.Context, store string, key any, from, to time.Time) (WindowsResult, error) {
	qs, err := r.queryState()
	if err != nil {
		return WindowsResult{}, err
	}
	tgt, sub, kb, err := qs.locate(store, key)
	if err != nil {
		return WindowsResult{}, err
	}
	res := WindowsResult{Store: store, Partition: tgt.partition, Key: key}
	if tgt.spec.Kind != topology.WindowStoreKind {
		return res, fmt.Errorf("store %q: %w: not a window store", store, ErrNotQueryable)
	}
	if err := qs.check(store, sub, tgt.partition); err != nil {
		return res, err
	}
	// A handle of our own, never written: it reads committed state only,
	// and no one else uses it.
	ws, err := qs.db.WindowStore(store, tgt.partition, changelog.WindowOptions{Retention: tgt.spec.Retention})
	if err != nil {
		return res, err
	}
	err = ws.Fetch(kb, from.UnixMilli(), to.UnixMilli(), func(start int64, vb []byte) error {
		v, err := tgt.spec.ValueSerde.Deserialize(tgt.topic, vb)
		if err != nil {
			return fmt.Errorf("store %s: value: %w", store, err)
		}
		res.Windows = append(res.Windows, WindowValue{Start: time.UnixMilli(start), Value: v})
		return ctx.Err()
	})
	return res, err
}
