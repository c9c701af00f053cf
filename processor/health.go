package processor

import (
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/eos-runner/eos-runner/changelog"
)

// health is what the poll loop publishes about itself for the HTTP
// endpoints (/healthz, /readyz) and for the metrics computed when scraped
// (consumer lag). The poll loop owns the task manager and the consumer's
// bookkeeping; HTTP handlers run on their own goroutines and must not touch
// either, so the loop copies what they need here: counts and flags as
// atomics, written every iteration or at each rebalance, and the owned
// partitions' committed offsets as a map replaced, under mu, after every
// commit and rebalance.
type health struct {
	// started is when the poll loop first ran (unix nanos, 0: not yet);
	// loopAt when it last began an iteration. A loop stuck past
	// livenessBound is not alive.
	started, loopAt atomic.Int64
	livenessBound   time.Duration
	// assigned: the group has handed this member a first assignment (an
	// empty one counts). rebalancing: partitions were revoked and the
	// assignment that ends the rebalance has not come yet.
	assigned, rebalancing atomic.Bool
	// tasks, running, restoring: the task manager's counts, as of the
	// loop's last iteration.
	tasks, running, restoring atomic.Int64
	// down says why the runner stopped or is stopping; nil while it runs.
	down atomic.Pointer[error]

	mu sync.Mutex
	// consumer reads the cached watermarks for lag; nil once it is closed
	// (a closed librdkafka handle must not be called).
	consumer *kafka.Consumer
	// committed is the next offset committed per owned partition, -1 when
	// the group has none (the partition started at its log start).
	committed map[partitionKey]int64
}

func newHealth(cfg Config) *health {
	return &health{livenessBound: max(cfg.SessionTimeout, 3*cfg.TransactionTimeout)}
}

// loopTick marks an iteration of the poll loop and publishes the task
// manager's counts (map lengths: cheap enough for every iteration).
func (h *health) loopTick(now time.Time, tm *taskManager) {
	n := now.UnixNano()
	h.started.CompareAndSwap(0, n)
	h.loopAt.Store(n)
	h.tasks.Store(int64(len(tm.tasks)))
	h.running.Store(int64(len(tm.ready)))
	h.restoring.Store(int64(len(tm.restoring)))
}

// stop records why the runner is stopping; it is then neither healthy nor
// ready.
func (h *health) stop(err error) {
	if err == nil {
		err = errors.New("stopping")
	}
	h.down.CompareAndSwap(nil, &err)
}

// attach and detach bracket the consumer's life for the lag collector.
func (h *health) attach(c *kafka.Consumer) {
	h.mu.Lock()
	h.consumer = c
	h.mu.Unlock()
}

func (h *health) detach() {
	h.mu.Lock()
	h.consumer = nil
	h.committed = nil
	h.mu.Unlock()
}

// publishOwned replaces the owned partitions and their committed offsets.
// Poll loop only (it reads the task manager).
func (h *health) publishOwned(tm *taskManager) {
	m := make(map[partitionKey]int64, len(tm.taskOf))
	for tp := range tm.taskOf {
		m[tp] = -1
		if next, ok := tm.committed[tp]; ok {
			m[tp] = next
		}
	}
	h.mu.Lock()
	h.committed = m
	h.mu.Unlock()
}

// liveness is nil when the runner is alive: its poll loop has run within
// livenessBound (or has not started yet: startup is the readiness probe's
// business) and its producer has hit no fatal error.
func (h *health) liveness(now time.Time, producerFatal *error) error {
	if p := h.down.Load(); p != nil {
		return *p
	}
	if producerFatal != nil {
		return errors.New("producer: " + (*producerFatal).Error())
	}
	if at := h.loopAt.Load(); at != 0 {
		if stuck := now.Sub(time.Unix(0, at)); stuck > h.livenessBound {
			return errors.New("the poll loop has not run for " + stuck.Round(time.Second).String())
		}
	}
	return nil
}

// readiness is what /readyz answers.
type readiness struct {
	Ready       bool   `json:"ready"`
	Reason      string `json:"reason,omitempty"`
	Assigned    bool   `json:"assigned"`
	Rebalancing bool   `json:"rebalancing"`
	Tasks       int64  `json:"tasks"`
	Running     int64  `json:"running"`
	Restoring   int64  `json:"restoring"`
}

// readiness: ready once every assigned task is restored and running, not
// while a restore or a rebalance is under way, nor before the first
// assignment, nor once the runner stops.
func (h *health) readiness(now time.Time, producerFatal *error) readiness {
	r := readiness{Assigned: h.assigned.Load(), Rebalancing: h.rebalancing.Load(),
		Tasks: h.tasks.Load(), Running: h.running.Load(), Restoring: h.restoring.Load()}
	switch err := h.liveness(now, producerFatal); {
	case err != nil:
		r.Reason = "not alive: " + err.Error()
	case h.started.Load() == 0:
		r.Reason = "starting"
	case !r.Assigned:
		r.Reason = "waiting for the first assignment"
	case r.Rebalancing:
		r.Reason = "rebalancing"
	case r.Restoring > 0 || r.Running < r.Tasks:
		r.Reason = "restoring"
	default:
		r.Ready = true
	}
	return r
}

// lagCollector computes eos_records_lag when scraped, so a stuck poll loop
// shows lag growing instead of a frozen value.
type lagCollector struct {
	h    *health
	desc *prometheus.Desc
}

func newLagCollector(h *health, labels prometheus.Labels) lagCollector {
	return lagCollector{h: h, desc: prometheus.NewDesc("eos_records_lag",
		"Consumer lag per owned input partition: the log end offset (high watermark, from the consumer's cached fetch state) minus the group's committed offset (the log start when none).",
		[]string{"topic", "partition"}, labels)}
}

func (c lagCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c lagCollector) Collect(ch chan<- prometheus.Metric) {
	c.h.mu.Lock()
	defer c.h.mu.Unlock()
	if c.h.consumer == nil {
		return
	}
	for tp, next := range c.h.committed {
		// Cached: no broker request (the fetcher keeps them current).
		lo, hi, err := c.h.consumer.GetWatermarkOffsets(tp.Topic, tp.Partition)
		if err != nil || hi < 0 {
			continue // not fetched yet
		}
		if next < 0 {
			if lo < 0 {
				continue
			}
			next = lo
		}
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(max(0, hi-next)),
			tp.Topic, strconv.Itoa(int(tp.Partition)))
	}
}

// restoreProgress holds the last progress report of each store partition
// being restored. Restores report from their own goroutines; the poll loop
// forgets the partitions no task is restoring any more.
type restoreProgress struct {
	remaining, restored *prometheus.Desc

	mu sync.Mutex
	m  map[changelog.StorePartition]changelog.Progress
}

func newRestoreProgress(labels prometheus.Labels) *restoreProgress {
	return &restoreProgress{
		remaining: prometheus.NewDesc("eos_restore_remaining_records",
			"Changelog offsets left to restore per store partition being restored (Kafka Streams' restore-remaining-records-total); 0 once done, absent when no restore runs.",
			[]string{"store", "partition"}, labels),
		restored: prometheus.NewDesc("eos_restore_restored_records",
			"Changelog records restored so far per store partition being restored.",
			[]string{"store", "partition"}, labels),
	}
}

func (r *restoreProgress) report(p changelog.Progress) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[changelog.StorePartition]changelog.Progress{}
	}
	r.m[changelog.StorePartition{Store: p.Store, Partition: p.Partition}] = p
}

// keepOnly forgets every store partition not in restoring.
func (r *restoreProgress) keepOnly(restoring map[changelog.StorePartition]bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for sp := range r.m {
		if !restoring[sp] {
			delete(r.m, sp)
		}
	}
}

func (r *restoreProgress) Describe(ch chan<- *prometheus.Desc) {
	ch <- r.remaining
	ch <- r.restored
}

func (r *restoreProgress) Collect(ch chan<- prometheus.Metric) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for sp, p := range r.m {
		part := strconv.Itoa(int(sp.Partition))
		ch <- prometheus.MustNewConstMetric(r.remaining, prometheus.GaugeValue, float64(max(0, p.End-p.Position)), sp.Store, part)
		ch <- prometheus.MustNewConstMetric(r.restored, prometheus.GaugeValue, float64(p.Restored), sp.Store, part)
	}
}

// restoringStores lists the store partitions of the tasks still restoring.
// Poll loop only.
func restoringStores(tm *taskManager) map[changelog.StorePartition]bool {
	out := map[changelog.StorePartition]bool{}
	for id, t := range tm.tasks {
		if tm.ready[id] {
			continue
		}
		for name := range t.stores {
			out[changelog.StorePartition{Store: name, Partition: t.partition}] = true
		}
	}
	return out
}
