package processor

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/eos-runner/eos-runner/changelog"
	"github.com/eos-runner/eos-runner/topology"
)

// Standby replicas (num.standby.replicas), Kafka Streams' StandbyTask: an
// instance keeps warm copies of the stores of tasks another instance runs,
// so that when it becomes their active instance (the owner died, or a
// rebalance moved them) its restore replays only the gap.
//
// A standby of a task is its stores and nothing else: no processors, no
// input, no output. Each of its store partitions follows its changelog
// partition by restoring it again and again (changelog.Restore, quiet),
// standbyInterval apart. So a standby keeps the checkpoint protocol exactly
// as a restore does, with nothing of its own to prove: read_committed by
// explicit assignment, the stable offset waited for, every batch written
// with its checkpoint, wiped and restored in full on a checkpoint outside
// the log or too old. A store partition on disk is always the changelog
// replayed up to its checkpoint, whether a standby or a task wrote it last;
// when the task moves here, its restore starts at the standby's checkpoint.
//
// Invariants:
//
//  1. Never a standby and a restore of one store partition at once: a
//     standby holds its changelog partition's claim on the restore
//     consumer (restoreMux, invariant 1) for as long as it runs, and
//     taskManager.assign cancels the standby of a task before it queues
//     the task's restore, which waits for the claim.
//  2. Never a standby of a task this instance runs: reconcileStandbys
//     skips tasks in tm.tasks, and assign cancels the standby first.
//  3. A standby of a source-topic store (sourcetopic.go) applies its
//     source partition only up to the group's committed offset, read
//     before each catch-up, never past it: records past it are not yet
//     processed, and the active instance's restore would not replay them
//     (its checkpoint would claim they are applied), so the store would
//     hold them twice once they are processed.
//  4. Standby store partitions are owned for the state cleaner while the
//     standby runs, and marked unowned when it stops (unless the task
//     became active here), so state.cleanup.delay.ms runs from then.
//
// Placement: every instance computes the same answer from the same
// description of the group (membership.go). A task's standbys go to the
// num.standby.replicas members, other than the instance running the task,
// with the highest rendezvous hash of (task id, instance id)
// (standbyPlacement). Rendezvous hashing moves only the standbys of the
// members that come or go. Placement ignores where warm state already is;
// Kafka Streams' assignor weighs that, ours cannot (the group assigns
// active tasks without us).
//
// Rejected: tailing each changelog without end (as global tables do,
// globalstore.go). Cheaper per record, but window and session stores are
// applied only through their restore appliers, and the wipe decisions would
// need a second implementation; the repeated restore costs three offset
// queries per standbyInterval per store partition.
type standbys struct {
	n    int    // num.standby.replicas
	self string // this instance's id
	// tasks lists every task with stores, in id order.
	tasks []standbyTask
	// running holds the standbys this instance runs, by task id.
	running map[string]*standby
	// lastView is the group view reconcile last acted on; dirty is set when
	// the task manager's tasks changed since.
	lastView *groupView
	dirty    bool
	lag      *prometheus.GaugeVec
}

// standbyTask is a task standbys may be kept for.
type standbyTask struct {
	id        string
	sub       *topology.SubTopology
	partition int32
	leader    partitionKey // the group's partition that carries the task
}

// standby is one running standby task.
type standby struct {
	t      standbyTask
	stores map[string]stateStore
	cancel context.CancelFunc
}

// standbyJob asks the restorer to run a standby until ctx is done.
type standbyJob struct {
	ctx context.Context
	sb  *standby
}

// standbyInterval is the pause between two catch-ups of a standby store
// partition.
const standbyInterval = 500 * time.Millisecond

// newStandbys lists the tasks with stores: partition p of each
// sub-topology with stores, carried by partition p of its leader topic.
func newStandbys(n int, self, appID string, topo *topology.Topology, plan *topicPlan, m *metrics) *standbys {
	s := &standbys{n: n, self: self, running: map[string]*standby{}}
	leaders := map[int]string{}
	for _, topic := range plan.copart.group {
		leaders[plan.subOf[topic]] = topic
	}
	for _, sub := range topo.SubTopologies {
		leader, ok := leaders[sub.ID]
		if len(sub.Stores) == 0 || !ok {
			continue
		}
		for p := range int32(plan.partitions[sub.ID]) {
			s.tasks = append(s.tasks, standbyTask{id: taskID(sub.ID, int(p)), sub: sub, partition: p, leader: partitionKey{leader, p}})
		}
	}
	sort.Slice(s.tasks, func(i, j int) bool { return s.tasks[i].id < s.tasks[j].id })
	s.lag = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "eos_standby_lag_records",
		Help:        "Records of a standby store partition's changelog past its checkpoint, as of its last catch-up (read_committed end less checkpoint).",
		ConstLabels: prometheus.Labels{"application_id": appID}}, []string{"store", "partition"})
	if err := m.reg.Register(s.lag); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			s.lag = are.ExistingCollector.(*prometheus.GaugeVec)
		}
	}
	return s
}

// standbyPlacement returns the instances that keep standbys of task: the n
// of instances other than active with the highest rendezvous hash of (task,
// instance), best first. active may be "" (the task is not assigned).
func standbyPlacement(task, active string, instances []string, n int) []string {
	type scored struct {
		inst  string
		score uint64
	}
	var cands []scored
	for _, inst := range instances {
		if inst == active {
			continue
		}
		h := fnv.New64a()
		h.Write([]byte(task))
		h.Write([]byte{0})
		h.Write([]byte(inst))
		cands = append(cands, scored{inst, mix64(h.Sum64())})
	}
	sort.Slice(cands, func(i, j int) bool {
		if cands[i].score != cands[j].score {
			return cands[i].score > cands[j].score
		}
		return cands[i].inst < cands[j].inst
	})
	out := make([]string, 0, n)
	for i := 0; i < n && i < len(cands); i++ {
		out = append(out, cands[i].inst)
	}
	return out
}

// mix64 is a 64-bit finalizer (splitmix64's): FNV's high bits depend
// weakly on the last bytes, which here are the instance id.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// reconcileStandbys starts and stops this instance's standbys to match the
// placement of view and the tasks running here. Poll loop only; cheap when
// neither changed.
func (tm *taskManager) reconcileStandbys(view *groupView) {
	sb := tm.standbys
	if sb == nil || view == nil || (view == sb.lastView && !sb.dirty) {
		return
	}
	sb.lastView, sb.dirty = view, false
	want := map[string]standbyTask{}
	for _, st := range sb.tasks {
		if _, active := tm.tasks[st.id]; active {
			continue // invariant 2
		}
		owner := view.owner[st.leader]
		if owner == sb.self {
			continue // the view says ours, the task manager not (yet): soon active or just revoked
		}
		for _, inst := range standbyPlacement(st.id, owner, view.instances, sb.n) {
			if inst == sb.self {
				want[st.id] = st
			}
		}
	}
	now := time.Now()
	for id, s := range sb.running {
		if _, ok := want[id]; ok {
			continue
		}
		s.cancel()
		delete(sb.running, id)
		for name := range s.stores {
			tm.db.MarkUnowned(changelog.StorePartition{Store: name, Partition: s.t.partition}, now)
		}
		tm.log.Info("standby stopped", "task", id)
	}
	ids := make([]string, 0, len(want))
	for id := range want {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if _, ok := sb.running[id]; ok {
			continue
		}
		st := want[id]
		stores, err := newStandbyStores(tm.topo, st.sub, st.partition, tm.cfg.ApplicationID, tm.db, tm)
		if err != nil {
			tm.log.Warn("standby not started", "task", id, "err", err)
			continue
		}
		ctx, cancel := context.WithCancel(context.Background())
		s := &standby{t: st, stores: stores, cancel: cancel}
		sb.running[id] = s
		for name := range stores {
			tm.db.MarkOwned(changelog.StorePartition{Store: name, Partition: st.partition}, now)
		}
		tm.log.Info("standby started", "task", id, "stores", len(stores))
		tm.standbyReq <- standbyJob{ctx: ctx, sb: s}
	}
}

// stopStandby cancels the standby of a task about to run here (invariant
// 1: its restore then waits for the standby's claims). Poll loop only.
func (tm *taskManager) stopStandby(id string) {
	if tm.standbys == nil {
		return
	}
	tm.standbys.dirty = true
	if s, ok := tm.standbys.running[id]; ok {
		s.cancel()
		delete(tm.standbys.running, id)
		tm.log.Info("standby stopped: the task runs here now", "task", id)
	}
}

// stopAllStandbys cancels every standby (the runner is stopping).
func (tm *taskManager) stopAllStandbys() {
	if tm.standbys == nil {
		return
	}
	for id, s := range tm.standbys.running {
		s.cancel()
		delete(tm.standbys.running, id)
	}
}

// ownedStandbys adds the running standbys' store partitions to owned, for
// the state cleaner (invariant 4).
func (tm *taskManager) ownedStandbys(owned map[changelog.StorePartition]bool) {
	if tm.standbys == nil {
		return
	}
	for _, s := range tm.standbys.running {
		for name := range s.stores {
			owned[changelog.StorePartition{Store: name, Partition: s.t.partition}] = true
		}
	}
}

// newStandbyStores opens a standby's store partitions, of the kinds a task
// of the sub-topology would open, on a task that never runs.
func newStandbyStores(topo *topology.Topology, sub *topology.SubTopology, partition int32, appID string, db *changelog.DB, tm *taskManager) (map[string]stateStore, error) {
	shell := &task{id: taskID(sub.ID, int(partition)), sub: sub, partition: partition, appID: appID,
		metrics: tm.m, log: tm.log, stores: map[string]stateStore{}}
	for _, name := range sub.Stores {
		spec := topo.Stores[name]
		topic := topology.ChangelogTopic(appID, name)
		if spec.SourceTopic != "" {
			topic = topology.TopicName(appID, spec.SourceTopic, false)
		}
		st, err := shell.newStore(spec, db, topic, nil)
		if err != nil {
			return nil, err
		}
		shell.stores[name] = st
	}
	return shell.stores, nil
}

// runStandby follows every store partition of a standby until its ctx is
// done. On the restorer's goroutines, with its restore consumer.
func (tm *taskManager) runStandby(ctx context.Context, mux *restoreMux, sb *standby) {
	var wg sync.WaitGroup
	for _, s := range sb.stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tm.followStore(ctx, mux, sb.t.id, s)
		}()
	}
	wg.Wait()
}

// followStore catches one standby store partition up with its changelog
// every standbyInterval, under the partition's claim, until ctx is done.
// Errors are logged and retried: a standby never stops the runner.
func (tm *taskManager) followStore(ctx context.Context, mux *restoreMux, id string, s stateStore) {
	spec := s.storeSpec()
	topic, p := s.changelogTopic(), s.changelogPartition()
	cs, err := mux.open(ctx, topic, p)
	if err != nil {
		return // cancelled while an earlier reader held the claim
	}
	defer cs.close()
	lag := tm.standbys.lag.WithLabelValues(spec.Name, strconv.Itoa(int(p)))
	defer tm.standbys.lag.DeleteLabelValues(spec.Name, strconv.Itoa(int(p)))
	var convert func(changelog.ChangelogRecord) (changelog.ChangelogRecord, bool)
	if spec.SourceTopic != "" {
		if convert, err = sourceRecordConverter(tm.topo, spec, topic); err != nil {
			tm.log.Warn("standby store cannot follow its source topic", "task", id, "store", spec.Name, "err", err)
			return
		}
	}
	caughtUp := false
	for ctx.Err() == nil {
		n, err := tm.catchUp(ctx, mux, cs, s, convert, lag)
		cs.unroute() // between catch-ups the partition is not fetched
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			tm.log.Warn("standby catch-up failed; retrying", "task", id, "store", spec.Name, "partition", p, "err", err)
		case !caughtUp:
			caughtUp = true
			tm.log.Info("standby caught up", "task", id, "store", spec.Name, "partition", p, "records", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(standbyInterval):
		}
	}
}

// catchUp restores a standby store partition to its changelog's current
// end once, and returns the records it applied.
func (tm *taskManager) catchUp(ctx context.Context, mux *restoreMux, cs *changelogSource, s stateStore,
	convert func(changelog.ChangelogRecord) (changelog.ChangelogRecord, bool), lag prometheus.Gauge) (int64, error) {
	topic, p := s.changelogTopic(), s.changelogPartition()
	var src changelog.Source = cs
	if convert != nil {
		until, err := mux.committedOffset(ctx, tm.cfg.ApplicationID, topic, p)
		if err != nil {
			return 0, err
		}
		src = &sourceStoreSource{inner: cs, until: until, convert: convert} // invariant 3
	}
	b, err := src.Bounds(ctx)
	if err != nil {
		return 0, err
	}
	cp, ok, err := tm.db.Store(s.storeSpec().Name, p).Checkpoint()
	if err != nil {
		return 0, err
	}
	if !ok {
		cp = b.LogStart
	}
	lag.Set(float64(max(0, b.Stable-cp)))
	retention, err := mux.deleteRetention(ctx, topic)
	if err != nil {
		return 0, err
	}
	res, err := s.restore(ctx, src, changelog.RestoreOptions{MaxStateAge: maxStateAge(retention, tm.cfg.TransactionTimeout), Quiet: true})
	if err != nil {
		return 0, err
	}
	lag.Set(float64(max(0, b.Stable-res.To)))
	return res.Restored, nil
}

// committedOffset returns the group's committed offset of a partition, -1
// when none. Only committed offsets are returned: an offset in a pending
// transaction is not (require_stable is off, so the answer is the last
// committed one rather than an error).
func (m *restoreMux) committedOffset(ctx context.Context, group, topic string, partition int32) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, restoreQueryTimeout)
	defer cancel()
	t := topic
	res, err := m.admin.ListConsumerGroupOffsets(ctx, []kafka.ConsumerGroupTopicPartitions{{
		Group: group, Partitions: []kafka.TopicPartition{{Topic: &t, Partition: partition}}}})
	if err != nil {
		return 0, fmt.Errorf("committed offset of %s[%d]: %w", topic, partition, err)
	}
	for _, g := range res.ConsumerGroupsTopicPartitions {
		for _, tp := range g.Partitions {
			if tp.Error != nil {
				return 0, fmt.Errorf("committed offset of %s[%d]: %w", topic, partition, tp.Error)
			}
			if tp.Offset < 0 {
				return -1, nil
			}
			return int64(tp.Offset), nil
		}
	}
	return -1, nil
}
