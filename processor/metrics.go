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
	m.reg.MustRegister(m.dropped, m.redelivered, m.processed, m.skipped, m.dlq, m.commits, m.aborts, m.commitSeconds, m.restored, m.tasks, m.rebalances)
	return m
}
