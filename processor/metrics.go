package processor

import (
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// counterValue reads a counter's current value.
func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return 0
	}
	return m.GetCounter().GetValue()
}

// metrics are the runner's Prometheus metrics, registered on its own registry
// (no global state), served at /metrics when metrics.addr is set.
type metrics struct {
	reg           *prometheus.Registry
	processed     prometheus.Counter
	skipped       *prometheus.CounterVec
	dlq           *prometheus.CounterVec
	commits       prometheus.Counter
	aborts        prometheus.Counter
	commitSeconds prometheus.Histogram
	restored      prometheus.Counter
	tasks         prometheus.Gauge
	rebalances    prometheus.Counter
	redelivered   prometheus.Counter
	dropped       *prometheus.CounterVec
	recoveries    *prometheus.CounterVec // in-process recoveries from a lost producer (recover.go)

	// Kafka Streams' names where it has one (docs/operations.md lists them).
	consumed       *prometheus.CounterVec // records-consumed-total, per topic
	produced       *prometheus.CounterVec // record-send-total, per topic, on delivery
	processLatency prometheus.Histogram   // process-latency-*, process-rate (its _count)
	e2eLatency     prometheus.Histogram   // record-e2e-latency, to the commit
	punctuations   prometheus.Counter     // punctuate-total
	cacheEvictions prometheus.Counter     // record cache flushes before a commit
	restore        *restoreProgress       // restore-remaining-records-total
}

func newMetrics(appID string) *metrics {
	labels := prometheus.Labels{"application_id": appID}
	m := &metrics{
		reg: prometheus.NewRegistry(),
		processed: prometheus.NewCounter(prometheus.CounterOpts{Name: "eos_records_processed_total",
			Help: "Input records processed (including failed ones).", ConstLabels: labels}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eos_records_skipped_total",
			Help: "Input records skipped by on.error=skip, by error class.", ConstLabels: labels}, []string{"class"}),
		dlq: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eos_records_dead_lettered_total",
			Help: "Input records sent to the dead-letter topic, by error class.", ConstLabels: labels}, []string{"class"}),
		commits: prometheus.NewCounter(prometheus.CounterOpts{Name: "eos_commits_total",
			Help: "Transactions (or offset commits) completed.", ConstLabels: labels}),
		aborts: prometheus.NewCounter(prometheus.CounterOpts{Name: "eos_aborts_total",
			Help: "Transactions aborted and rewound.", ConstLabels: labels}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "eos_commit_seconds",
			Help: "Duration of the commit protocol.", ConstLabels: labels, Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
		restored: prometheus.NewCounter(prometheus.CounterOpts{Name: "eos_restored_records_total",
			Help: "Changelog records replayed into local stores.", ConstLabels: labels}),
		tasks: prometheus.NewGauge(prometheus.GaugeOpts{Name: "eos_active_tasks",
			Help: "Tasks currently assigned.", ConstLabels: labels}),
		rebalances: prometheus.NewCounter(prometheus.CounterOpts{Name: "eos_rebalances_total",
			Help: "Partition assignments and revocations handled.", ConstLabels: labels}),
	}
	m.redelivered = prometheus.NewCounter(prometheus.CounterOpts{Name: "eos_records_redelivered_total",
		Help: "Records the consumer delivered again below the position already processed; dropped.", ConstLabels: labels})
	m.dropped = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eos_dropped_records_total",
		Help:        "Records dropped without an error by reason: late (a window already closed), expired-window (a write to a window past retention).",
		ConstLabels: labels}, []string{"reason"})
	m.recoveries = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eos_producer_recoveries_total",
		Help: "In-process recoveries from a lost transactional producer (tasks closed dirty, a new producer with the same " +
			"transactional.id, the group rejoined), by reason: fenced (the broker bumped the epoch), unknown-producer " +
			"(the broker forgot the producer id), unfinished (a transactional call still failing at its deadline).",
		ConstLabels: labels}, []string{"reason"})
	m.reg.MustRegister(m.recoveries, m.dropped, m.redelivered, m.processed, m.skipped, m.dlq, m.commits, m.aborts, m.commitSeconds, m.restored, m.tasks, m.rebalances)
	m.consumed = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eos_records_consumed_total",
		Help: "Records the consumer delivered, per topic (Kafka's records-consumed-total).", ConstLabels: labels}, []string{"topic"})
	m.produced = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eos_records_produced_total",
		Help:        "Records the broker acknowledged, per topic: sinks, changelogs, repartition and dead-letter topics (Kafka's record-send-total). Records of an aborted transaction count too.",
		ConstLabels: labels}, []string{"topic"})
	m.processLatency = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "eos_process_latency_seconds",
		Help:        "Time to process one input record through its sub-topology (Kafka Streams' process-latency; the rate of _count is its process-rate).",
		ConstLabels: labels, Buckets: prometheus.ExponentialBuckets(0.000_005, 4, 12)})
	m.e2eLatency = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "eos_record_e2e_latency_seconds",
		Help:        "From an input record's timestamp to the commit of the transaction that processed it (Kafka Streams' record-e2e-latency, taken at the commit).",
		ConstLabels: labels, Buckets: prometheus.ExponentialBuckets(0.001, 2, 22)})
	m.punctuations = prometheus.NewCounter(prometheus.CounterOpts{Name: "eos_punctuations_total",
		Help: "Punctuators run, stream time and wall clock (Kafka Streams' punctuate-total).", ConstLabels: labels})
	m.cacheEvictions = prometheus.NewCounter(prometheus.CounterOpts{Name: "eos_record_cache_evictions_total",
		Help: "Record cache flushes forced by a full cache (statestore.cache.max.bytes) between commits.", ConstLabels: labels})
	m.restore = newRestoreProgress(labels)
	m.reg.MustRegister(m.consumed, m.produced, m.processLatency, m.e2eLatency, m.punctuations, m.cacheEvictions, m.restore)
	return m
}
