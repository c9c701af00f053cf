package processor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/eos-runner/eos-runner/changelog"
	"github.com/eos-runner/eos-runner/topology"
)

// taskManager owns the runner's tasks and what it knows of each assigned
// partition, as Kafka Streams' TaskManager: it creates a task when its
// partitions are assigned, has its stores restored off the poll loop
// (restore.go), marks it running once restored, closes it when its
// partitions are revoked, says which tasks are due for wall-clock
// punctuation, and deletes the state of partitions not owned any more.
//
// Poll loop only, like every field here. The tasks themselves belong to
// their workers once running (see task); the manager touches a running
// task's fields only with the workers drained (rebalance callbacks, commit
// and abort), except its published wallDue.
type taskManager struct {
	cfg          Config
	topo         *topology.Topology
	db           *changelog.DB
	globals      *globalStores // the global tables every task may read; nil: none
	newCollector func() *collector
	log          *slog.Logger
	m            *metrics

	tasks    map[string]*task
	taskOf   map[partitionKey]*task
	ready    map[string]bool        // task id -> restored and initialized
	resumeAt map[partitionKey]int64 // records seen from a restoring task's partition: seek here on resume
	// position is the next offset to dispatch per assigned partition: the
	// offset the assignment started at, then the last dispatched + 1. A
	// record below it was processed already (committed, or in the open
	// transaction) and is dropped and counted (eos_records_redelivered_total).
	// Set where the runner seeks (rewind, resume); dropped on revoke.
	position map[partitionKey]int64
	// committed is the committed position per owned partition, as read at
	// assignment and as sent with each commit since; sent again with every
	// transaction (see kafkaTxn.positions).
	committed map[partitionKey]int64
	// restoring holds the cancel function of each task whose stores are
	// being restored; restoreReq and restoreDone talk to the restorer.
	restoring   map[string]context.CancelFunc
	restoreReq  chan restoreJob
	restoreDone chan restoreOutcome
	// standbys are the standby tasks this instance keeps (standby.go); nil
	// under num.standby.replicas=0. standbyReq hands them to the restorer.
	standbys   *standbys
	standbyReq chan standbyJob
	// running is the set of running task ids, published for interactive
	// queries (query.go) whenever it changes: the one field read off the
	// poll loop. Never modified once published.
	running atomic.Pointer[map[string]bool]
}

type restoreJob struct {
	ctx        context.Context // cancelled when the task is revoked
	t          *task
	streamTime time.Time // the task's committed stream time
	// sourceEnds is the committed position of each source partition that
	// is a store's changelog (sourcetopic.go), -1 when none: a restore of
	// such a store stops there.
	sourceEnds map[partitionKey]int64
}

type restoreOutcome struct {
	t   *task
	err error
}

func newTaskManager(cfg Config, topo *topology.Topology, db *changelog.DB, newCollector func() *collector, log *slog.Logger, m *metrics) *taskManager {
	return &taskManager{cfg: cfg, topo: topo, db: db, newCollector: newCollector, log: log, m: m,
		tasks: map[string]*task{}, taskOf: map[partitionKey]*task{}, ready: map[string]bool{},
		resumeAt: map[partitionKey]int64{}, position: map[partitionKey]int64{}, committed: map[partitionKey]int64{},
		restoring: map[string]context.CancelFunc{}, restoreReq: make(chan restoreJob, 1024), restoreDone: make(chan restoreOutcome, 1024),
		standbyReq: make(chan standbyJob, 1024)}
}

// publishRunning publishes the running tasks for interactive queries.
func (tm *taskManager) publishRunning() {
	run := make(map[string]bool, len(tm.ready))
	for id, ok := range tm.ready {
		if ok {
			run[id] = true
		}
	}
	tm.running.Store(&run)
}

// assign creates the tasks of newly assigned partitions (subOf: source topic
// to sub-topology), with the committed positions and stream time read for
// them, and starts the restore of every task with stores. It returns the
// partitions to pause until their task is restored: no record of a
// partition is processed before its stores are.
func (tm *taskManager) assign(parts []kafka.TopicPartition, subOf map[string]int, committed map[partitionKey]position) ([]kafka.TopicPartition, error) {
	var pause []kafka.TopicPartition
	defer func() { tm.m.tasks.Set(float64(len(tm.tasks))); tm.publishRunning(); tm.resizeCaches() }()
	var created []*task
	for _, p := range parts {
		tp := partitionKey{*p.Topic, p.Partition}
		sub, ok := subOf[tp.Topic]
		if !ok {
			continue
		}
		id := taskID(sub, int(tp.Partition))
		t, ok := tm.tasks[id]
		if !ok {
			var err error
			t, err = newTask(tm.topo, tm.topo.SubTopologies[sub], tp.Partition, tm.cfg.ApplicationID, tm.db,
				tm.newCollector(), tm.cfg.OnError, tm.cfg.DLQTopic, tm.log, tm.m)
			if err != nil {
				return nil, err
			}
			// Before its restore is queued: the restore waits for the
			// standby's claims (standby.go, invariant 1).
			tm.stopStandby(id)
			t.globals = tm.globals.stores()
			t.lateToDLQ = tm.cfg.LateRecords == LateRecordsDLQ
			t.rc.enabled = tm.cfg.StateStoreCacheMaxBytes > 0
			if inputs := taskInputs(tm.topo.SubTopologies[sub], tm.cfg.ApplicationID, tp.Partition); len(inputs) > 1 {
				t.inputs = newPartitionGroup(inputs, tm.cfg.MaxTaskIdle)
			}
			tm.tasks[id] = t
			created = append(created, t)
			for name := range t.stores {
				tm.db.MarkOwned(changelog.StorePartition{Store: name, Partition: tp.Partition}, time.Now())
			}
		}
		tm.taskOf[tp] = t
		// The guard covers the assignment from its first record.
		tm.position[tp] = int64(p.Offset)
		if cp, ok := committed[tp]; ok {
			tm.committed[tp] = cp.Next
			if !tm.ready[id] {
				t.setCommittedStreamTime(cp.StreamTime)
			}
		}
		if len(t.stores) > 0 && !tm.ready[id] {
			pause = append(pause, p)
		}
	}
	// Restores start once every partition's committed stream time is known:
	// window stores leave out what it has expired.
	for _, t := range created {
		if len(t.stores) == 0 {
			if err := t.init(); err != nil {
				return nil, err
			}
			tm.ready[t.id] = true
			continue
		}
		ctx, cancel := context.WithCancel(context.Background())
		tm.restoring[t.id] = cancel
		ends := map[partitionKey]int64{}
		for _, s := range t.stores {
			if s.storeSpec().SourceTopic != "" {
				key := partitionKey{s.changelogTopic(), s.changelogPartition()}
				ends[key] = -1
				if off, ok := tm.committed[key]; ok {
					ends[key] = off
				}
			}
		}
		tm.restoreReq <- restoreJob{ctx: ctx, t: t, streamTime: t.committedStreamTime, sourceEnds: ends}
	}
	return pause, nil
}

// taskInputs lists a task's input partitions: partition p of every source
// topic of its sub-topology.
func taskInputs(sub *topology.SubTopology, app string, partition int32) []partitionKey {
	var out []partitionKey
	for _, src := range sub.Sources {
		for _, tp := range src.Topics {
			out = append(out, partitionKey{topology.TopicName(app, tp, src.Internal), partition})
		}
	}
	return out
}

// forget drops what is known of revoked partitions and returns their tasks,
// still open: the open transaction commits (or aborts) what they processed
// before closeRevoked closes them.
func (tm *taskManager) forget(parts []kafka.TopicPartition) map[string]*task {
	closing := map[string]*task{}
	for _, p := range parts {
		tp := partitionKey{*p.Topic, p.Partition}
		if t, ok := tm.taskOf[tp]; ok {
			closing[t.id] = t
			delete(tm.taskOf, tp)
			delete(tm.resumeAt, tp)
			delete(tm.position, tp)
			delete(tm.committed, tp)
		}
	}
	return closing
}

// closeRevoked closes the tasks forget returned that own no partition any
// more, cancelling their restores, and marks their state unowned (kept for
// state.cleanup.delay.ms).
func (tm *taskManager) closeRevoked(closing map[string]*task) {
	defer func() { tm.m.tasks.Set(float64(len(tm.tasks))); tm.publishRunning() }()
	if tm.standbys != nil {
		tm.standbys.dirty = true
	}
	for id, t := range closing {
		still := false
		for _, other := range tm.taskOf {
			if other == t {
				still = true
			}
		}
		if still {
			continue
		}
		if cancel, ok := tm.restoring[id]; ok {
			cancel()
			delete(tm.restoring, id)
		}
		t.close()
		delete(tm.tasks, id)
		delete(tm.ready, id)
		for name := range t.stores {
			tm.db.MarkUnowned(changelog.StorePartition{Store: name, Partition: t.partition}, time.Now())
		}
	}
	tm.resizeCaches()
}

// resizeCaches splits statestore.cache.max.bytes evenly over the active
// tasks (at least a byte each: a cache too small for one entry flushes
// after every record).
func (tm *taskManager) resizeCaches() {
	if tm.cfg.StateStoreCacheMaxBytes <= 0 || len(tm.tasks) == 0 {
		return
	}
	share := max(1, tm.cfg.StateStoreCacheMaxBytes/int64(len(tm.tasks)))
	for _, t := range tm.tasks {
		t.rc.max.Store(share)
	}
}

// resumer is the part of the consumer that resumes restored partitions.
type resumer interface {
	Seek(kafka.TopicPartition, int) error
	Resume([]kafka.TopicPartition) error
}

// handleRestores initializes the tasks whose restore finished and resumes
// their partitions, at the first record fetched while they were paused.
func (tm *taskManager) handleRestores(c resumer) error {
	for {
		select {
		case out := <-tm.restoreDone:
			t := out.t
			if tm.tasks[t.id] != t {
				// Revoked while restoring; a new task with the same id may be
				// restoring now, and its cancel function is not this one's.
				continue
			}
			delete(tm.restoring, t.id)
			if out.err != nil {
				if errors.Is(out.err, context.Canceled) {
					continue
				}
				return fmt.Errorf("%w: task %s: %w", ErrFatal, t.id, out.err)
			}
			if err := t.init(); err != nil {
				return fmt.Errorf("%w: %w", ErrFatal, err)
			}
			tm.ready[t.id] = true
			tm.publishRunning()
			var resume []kafka.TopicPartition
			for tp, owner := range tm.taskOf {
				if owner != t {
					continue
				}
				topic := tp.Topic
				p := kafka.TopicPartition{Topic: &topic, Partition: tp.Partition}
				if off, ok := tm.resumeAt[tp]; ok {
					p.Offset = kafka.Offset(off)
					if err := c.Seek(p, 0); err != nil {
						return fmt.Errorf("%w: seek %s[%d] to %d: %w", ErrFatal, tp.Topic, tp.Partition, off, err)
					}
					delete(tm.resumeAt, tp)
					tm.position[tp] = off
				}
				resume = append(resume, p)
			}
			if err := c.Resume(resume); err != nil {
				return fmt.Errorf("%w: resume: %w", ErrFatal, err)
			}
			tm.log.Info("task running", "task", t.id)
		default:
			return nil
		}
	}
}

// wallClockDue returns the running tasks whose wall-clock punctuation is
// due. It reads only each task's published wallDue, never its punctuators,
// which belong to the task's worker; a due task is marked not due until its
// worker publishes the next time, so a slow worker is not sent the same tick
// twice.
func (tm *taskManager) wallClockDue(now time.Time) []*task {
	var due []*task
	for id, t := range tm.tasks {
		if !tm.ready[id] {
			continue
		}
		d := t.wallDue.Load()
		if d == 0 || now.UnixNano() < d || !t.wallDue.CompareAndSwap(d, 0) {
			continue
		}
		due = append(due, t)
	}
	return due
}

// cleanup deletes state of store partitions not owned for state.cleanup.delay.ms.
func (tm *taskManager) cleanup(now time.Time) {
	owned := map[changelog.StorePartition]bool{}
	tm.globals.owned(owned)
	tm.ownedStandbys(owned)
	for _, t := range tm.tasks {
		for name := range t.stores {
			owned[changelog.StorePartition{Store: name, Partition: t.partition}] = true
		}
	}
	dropped, err := tm.db.DropUnowned(owned, tm.cfg.StateCleanupDelay, now)
	if err != nil {
		tm.log.Warn("state cleanup failed", "err", err)
		return
	}
	for _, sp := range dropped {
		tm.log.Info("deleted state of a partition no longer owned", "store", sp.Store, "partition", sp.Partition)
	}
}

// closeAll closes every task, cancelling restores and dropping pending writes.
func (tm *taskManager) closeAll() {
	tm.stopAllStandbys()
	for id, t := range tm.tasks {
		if cancel, ok := tm.restoring[id]; ok {
			cancel()
		}
		t.close()
	}
	tm.tasks, tm.taskOf, tm.ready = map[string]*task{}, map[partitionKey]*task{}, map[string]bool{}
	tm.m.tasks.Set(0)
	tm.publishRunning()
}

// counts returns the number of tasks, of running ones and of restoring ones.
func (tm *taskManager) counts() (tasks, running, restoring int) {
	for id := range tm.tasks {
		if tm.ready[id] {
			running++
		}
	}
	return len(tm.tasks), running, len(tm.restoring)
}
