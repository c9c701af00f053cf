package processor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/eos-runner/eos-runner/changelog"
	"github.com/eos-runner/eos-runner/internal/secret"
	"github.com/eos-runner/eos-runner/serde"
	"github.com/eos-runner/eos-runner/topology"
)

// Runner runs one topology as one instance of its application: one consumer,
// one transactional producer, a task per assigned partition and a pool of
// task workers. See the package documentation for the record path.
type Runner struct {
	cfg  Config
	topo *topology.Topology
	log  *slog.Logger
	m    *metrics

	// Owned by the poll loop (Run's goroutine, which also runs the rebalance
	// callbacks, since librdkafka calls them from Poll).
	db                *changelog.DB
	consumer          *kafka.Consumer
	producer          *kafka.Producer
	plan              *topicPlan
	com               *committer
	tm                *taskManager
	fatal             error // set by a rebalance callback; Run returns it
	consecutiveAborts int
	// stopping is set once Run has decided to stop on an error: from then
	// on, a revoke callback (librdkafka runs one inside Consumer.Close)
	// closes tasks but never commits.
	stopping bool

	// tracker counts the current producer's produces against its delivery
	// reports; drained is closed when that producer's delivery drainer
	// ends. Both are replaced with the producer (producer.go).
	tracker *deliveryTracker
	drained chan struct{}
	// disp hands work to the task workers (dispatch.go).
	disp *dispatcher
	// buffered holds the tasks whose partition group has records not yet
	// dispatched (partitiongroup.go). Poll loop only.
	buffered map[*task]bool
	// failures holds what the workers hit in the open transaction; workers
	// skip further work while any is set.
	failures workerFailures
	// producerFatal is set by the delivery drainer on a fatal error of the
	// current producer generation (producerGen, guarded by genMu; see
	// producer.go).
	producerFatal atomic.Pointer[error]
	genMu         sync.Mutex
	producerGen   uint64
	// globals keeps the global tables (globalstore.go); globalFatal is set
	// when their updater stops on an error.
	globals     *globalStores
	globalFatal atomic.Pointer[error]

	purge *purger // repartition topics' consumed records; nil without any

	// health is what the poll loop publishes for the HTTP endpoints and the
	// lag metric (health.go).
	health *health
	// consumedBy caches eos_records_consumed_total per topic. Poll loop only.
	consumedBy map[string]prometheus.Counter
	// e2eTxn is the start of the transaction e2eTimestamps belong to; the
	// timestamps (unix ms) of the records dispatched in it are observed
	// into eos_record_e2e_latency_seconds when it commits, and dropped when
	// another transaction begins (after an abort). Poll loop only.
	e2eTxn        time.Time
	e2eTimestamps []int64
	// qs is what interactive queries and standbys share (query.go),
	// published once the topics are planned; nil before.
	qs atomic.Pointer[queryState]
}

type work struct {
	t    *task
	msg  *kafka.Message
	wall time.Time // non-zero: fire wall-clock punctuators instead
	// fn, if set, is run instead, even after a failure in the transaction
	// (the commit's cache flush, whose caller collects its error).
	fn func(ctx context.Context)
}

// Option adjusts a Runner.
type Option func(*Runner)

// WithLogger sets the structured logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(r *Runner) { r.log = l } }

// New validates cfg and the topology and returns a Runner; nothing connects
// until Run.
func New(cfg Config, topo *topology.Topology, opts ...Option) (*Runner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cfg, err := cfg.Resolve()
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cfg = cfg.withDefaults()
	r := &Runner{cfg: cfg, topo: topo, log: slog.Default(), buffered: map[*task]bool{}}
	for _, o := range opts {
		o(r)
	}
	// Every line the runner logs, librdkafka's forwarded ones included,
	// passes the secret scrubber.
	r.log = slog.New(secret.Handler(r.log.Handler()))
	r.log = r.log.With("application.id", cfg.ApplicationID, "instance.id", cfg.InstanceID)
	r.m = newMetrics(cfg.ApplicationID)
	r.health = newHealth(cfg)
	r.consumedBy = map[string]prometheus.Counter{}
	labels := prometheus.Labels{"application_id": cfg.ApplicationID}
	r.m.reg.MustRegister(newLagCollector(r.health, labels),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "eos_ready", ConstLabels: labels,
			Help: "1 when /readyz answers ready: every assigned task restored and running, no rebalance under way."},
			func() float64 {
				if r.health.readiness(time.Now(), r.producerFatal.Load()).Ready {
					return 1
				}
				return 0
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "eos_restoring_tasks", ConstLabels: labels,
			Help: "Assigned tasks whose stores are still being restored."},
			func() float64 { return float64(r.health.restoring.Load()) }))
	return r, nil
}

// Metrics is the runner's Prometheus registry.
func (r *Runner) Metrics() *prometheus.Registry { return r.m.reg }

func (r *Runner) eos() bool { return r.cfg.ProcessingGuarantee == ExactlyOnceV2 }

// kafkaConfig builds a librdkafka config: pass-through settings (unprefixed
// and those with the client's prefix), then the runner's own.
func (r *Runner) kafkaConfig(client string, own kafka.ConfigMap) *kafka.ConfigMap {
	cm := kafka.ConfigMap{}
	for k, v := range r.cfg.Kafka {
		switch {
		case strings.HasPrefix(k, client+"."):
			cm[strings.TrimPrefix(k, client+".")] = v
		case strings.HasPrefix(k, "consumer.") || strings.HasPrefix(k, "producer.") || strings.HasPrefix(k, "admin."):
		default:
			if _, set := cm[k]; !set {
				cm[k] = v
			}
		}
	}
	cm["bootstrap.servers"] = r.cfg.BootstrapServers
	for k, v := range own {
		cm[k] = v
	}
	return &cm
}

// Run processes until ctx is cancelled (then it commits, closes the tasks and
// leaves the group, and returns nil) or a fatal error happens (then it stops
// at once without applying anything, and returns an error wrapping ErrFatal
// or the record's *ProcessingError under on.error=fail). A transactional
// producer lost to fencing or to a transaction that could not finish is
// replaced in process instead (recover.go).
func (r *Runner) Run(ctx context.Context) (err error) {
	start := time.Now()
	dir := filepath.Join(r.cfg.StateDir, r.cfg.ApplicationID)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("state.dir: %w", err)
	}
	r.db, err = changelog.Open(dir, changelog.Options{Logger: r.log})
	if err != nil {
		return fmt.Errorf("state.dir %s: %w", dir, err)
	}
	defer r.db.Close()

	stopHTTP, err := r.serveHTTP()
	if err != nil {
		return err
	}
	defer stopHTTP()
	// Kafka first, in seconds: a wrong password or an untrusted
	// certificate stops startup with one error naming the setting
	// (preflight.go), not a retry storm from every client.
	if err := r.preflight(ctx); err != nil {
		return err
	}

	// Schemas first: a sink whose schema its readers could not read stops
	// startup before anything, topics included, is created or written.
	if err := r.prepareSerdes(ctx); err != nil {
		return err
	}
	admin, closeAdmin, err := r.newAdminClient("admin")
	if err != nil {
		return fmt.Errorf("admin client: %w", err)
	}
	r.plan, err = r.prepareTopics(ctx, admin)
	closeAdmin()
	if err != nil {
		return fmt.Errorf("topics: %w", err)
	}
	if err := r.startProducer(); err != nil {
		return err
	}
	defer func() { r.closeProducer(0) }() // the producer current by then
	if r.eos() {
		// Fences any older producer with our transactional.id and aborts its
		// open transaction, so that restore below reads a settled changelog.
		if err := r.initTransactions(ctx, 60*time.Second); err != nil {
			if isAuthorization(err) {
				return err
			}
			return fmt.Errorf("%w: %w", ErrFatal, err)
		}
	}
	if len(r.plan.repartition) > 0 {
		padmin, err := kafka.NewAdminClientFromProducer(r.producer)
		if err != nil {
			return fmt.Errorf("admin client: %w", err)
		}
		r.purge = newPurger(padmin, r.plan.repartition, r.cfg.RepartitionPurgeInterval, r.log)
		defer func() {
			r.purge.wait()
			r.purge.admin.Close() // the current producer's (recover.go replaces it)
		}()
	}
	r.com = newCommitter(&kafkaTxn{r: r}, r.eos())
	r.com.abortTimeout = r.cfg.TransactionTimeout

	ccfg := kafka.ConfigMap{
		"go.logs.channel.enable": true,
		"group.id":               r.cfg.ApplicationID,
		// <instance.id>@<application.server>: names the instance in the
		// group's member list (eos-runner reset names the members it waits
		// for) and tells the other instances where to send queries
		// (membership.go).
		"client.id":                     memberClientID(r.cfg.InstanceID, r.cfg.ApplicationServer),
		"partition.assignment.strategy": "cooperative-sticky",
		"enable.auto.commit":            false,
		"enable.auto.offset.store":      false,
		"isolation.level":               "read_committed",
		"auto.offset.reset":             "earliest",
		"session.timeout.ms":            int(r.cfg.SessionTimeout.Milliseconds()),
		// librdkafka's default (1s) backs off fetching whenever its queue is
		// "full enough", which capped a consumer here at ~130k records/s with
		// the CPU mostly idle (measured by `eos-runner bench`).
		"fetch.queue.backoff.ms": 10,
	}
	if r.cfg.StaticMembership {
		// KIP-345: the coordinator keeps this member's assignment across a
		// restart within the session timeout, and librdkafka sends no
		// LeaveGroup on close (docs/operations.md, static membership).
		ccfg["group.instance.id"] = r.cfg.InstanceID
	}
	r.consumer, err = kafka.NewConsumer(r.kafkaConfig("consumer", ccfg))
	if err != nil {
		return fmt.Errorf("consumer: %w", err)
	}
	go r.drainLogs("consumer", r.consumer.Logs())
	r.health.attach(r.consumer)
	if r.eos() {
		if err := r.abortLeftoverTransaction(ctx); err != nil {
			r.consumer.Close()
			return err
		}
	}
	restoreConsumer, err := kafka.NewConsumer(r.kafkaConfig("consumer", kafka.ConfigMap{
		"go.logs.channel.enable": true,
		"group.id":               r.cfg.ApplicationID + "-restore",
		"enable.auto.commit":     false,
		"isolation.level":        "read_committed",
		"enable.partition.eof":   true,
		"auto.offset.reset":      "earliest",
		// Must agree with a max.poll.interval.ms passed through to consumers.
		"session.timeout.ms": int(r.cfg.SessionTimeout.Milliseconds()),
		// The end is seen on an empty fetch; don't let the broker hold it,
		// nor librdkafka back off after it.
		"fetch.wait.max.ms":      10,
		"fetch.error.backoff.ms": 10,
	}))
	if err != nil {
		r.consumer.Close()
		return fmt.Errorf("restore consumer: %w", err)
	}
	defer restoreConsumer.Close()
	go r.drainLogs("restore-consumer", restoreConsumer.Logs())

	if err := r.startGlobals(ctx); err != nil {
		r.consumer.Close()
		return err
	}
	r.tm = newTaskManager(r.cfg, r.topo, r.db, func() *collector { return &collector{p: r.producer, tracker: r.tracker} }, r.log, r.m)
	r.tm.globals = r.globals
	rctx, stopRestorer := context.WithCancel(ctx)
	restorerDone := make(chan struct{})
	go r.tm.restorer(rctx, restoreConsumer, restorerDone)
	defer func() { stopRestorer(); <-restorerDone }()
	stopSharing, err := r.startSharing(ctx) // query.go: queries, group watch, standbys
	if err != nil {
		r.consumer.Close()
		return err
	}
	defer stopSharing()

	wctx, stopWorkers := context.WithCancel(context.WithoutCancel(ctx))
	var stopDispatch func()
	r.disp, stopDispatch = startDispatcher(wctx, r.cfg.NumStreamThreads, r.runWork)
	defer func() {
		stopDispatch()
		stopWorkers()
	}()

	topics := r.plan.copart.group // copartition.go
	if err := r.consumer.SubscribeTopics(topics, r.rebalance); err != nil {
		r.consumer.Close()
		return fmt.Errorf("subscribe %v: %w", topics, err)
	}
	r.log.Info("runner started", "topics", topics, "guarantee", r.cfg.ProcessingGuarantee,
		"commit.interval", r.cfg.CommitInterval, "threads", r.cfg.NumStreamThreads, "startup", time.Since(start))

	// The poll loop, and recoveries from a lost producer (recover.go).
	err = r.process(ctx)
	r.health.stop(err) // not ready from here on: a load balancer stops sending
	if err == nil {
		// Graceful: commit what was processed. The commit's barrier may find
		// a worker's failure that the loop never saw; it settles it as in
		// the loop (txn.go), and the runner then stops on it.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		err = r.commit(cctx)
		cancel()
	}
	if err != nil {
		return r.stopOnError(err)
	}
	r.stopping = true
	r.tm.closeAll()
	cerr := r.closeConsumer()
	if cerr != nil {
		cerr = fmt.Errorf("consumer close: %w", cerr)
	}
	// A callback or the delivery drainer may have found a fatal error while
	// the consumer closed: the exit must say so.
	if r.fatal != nil {
		cerr = r.fatal
	} else if p := r.producerFatal.Load(); p != nil {
		cerr = fmt.Errorf("%w: producer: %w", ErrFatal, *p)
	}
	r.log.Info("runner stopped", "err", cerr)
	return cerr
}

// stopOnError stops the runner after err, applying and committing nothing
// more: the workers are drained, the open transaction is aborted (a producer
// that can no longer abort, e.g. fenced, leaves it to the broker, which
// aborts it at the transaction timeout or when this transactional.id is
// initialized again), the tasks are closed with their pending writes
// dropped, and the group is left. From here on no revoke callback commits.
func (r *Runner) stopOnError(err error) error {
	r.stopping = true
	r.log.Error("runner stopping on error", "err", err)
	r.disp.discard()
	if r.eos() && r.com.state.open {
		actx, cancel := context.WithTimeout(context.Background(), r.cfg.TransactionTimeout)
		if aerr := r.producer.AbortTransaction(actx); aerr != nil {
			r.log.Warn("could not abort the open transaction; the broker aborts it at its timeout", "err", aerr)
		} else {
			r.m.aborts.Inc()
		}
		cancel()
		r.com.state = newTxnState()
	}
	r.tm.closeAll()
	_ = r.closeConsumer()
	return err
}

// closeConsumer leaves the group, waiting at most the session timeout.
//
// librdkafka's close runs the final revocation through the rebalance
// callback, and its IncrementalUnassign was seen to block for minutes when
// the close lands in the middle of a rebalance. By now every task is closed
// and everything processed is committed, so giving up on a clean leave is
// safe: the group drops the member when its session runs out, as after a
// crash. The callback has no task left to touch if it wakes up later.
func (r *Runner) closeConsumer() error {
	r.health.detach()
	done := make(chan error, 1)
	go func() { done <- r.consumer.Close() }()
	select {
	case err := <-done:
		return err
	case <-time.After(r.cfg.SessionTimeout):
		r.log.Warn("consumer close did not finish within the session timeout; exiting without a clean group leave")
		return nil
	}
}

// abortLeftoverTransaction runs one empty transaction (offsets only) and
// aborts it, right after InitTransactions: at startup, before any restore or
// processing, and after a producer recovery (recover.go), before the group
// is rejoined.
//
// On Kafka, InitTransactions already aborted whatever transaction an earlier
// incarnation of this transactional.id left open, and this costs one round
// trip. It is here for brokers that bump the epoch on re-initialization but
// leave the old transaction open until it times out (kfake, the embedded
// broker, does): there, our first commit would commit the dead instance's
// half-written records too, or the late timeout abort would fence us. An
// explicit abort at the new epoch ends the old transaction at once.
func (r *Runner) abortLeftoverTransaction(ctx context.Context) error {
	md, err := r.consumer.GetConsumerGroupMetadata()
	if err != nil {
		return fmt.Errorf("%w: group metadata: %w", ErrFatal, err)
	}
	var topic string
	for t := range r.plan.subOf {
		if topic == "" || t < topic {
			topic = t
		}
	}
	if err := r.producer.BeginTransaction(); err != nil {
		return fmt.Errorf("%w: begin transaction: %w", ErrFatal, err)
	}
	tctx, cancel := context.WithTimeout(ctx, r.cfg.TransactionTimeout)
	defer cancel()
	if err := r.producer.SendOffsetsToTransaction(tctx, []kafka.TopicPartition{{Topic: &topic, Partition: 0, Offset: 0}}, md); err != nil {
		if ae := r.groupAuthorization(err); isAuthorization(ae) {
			return ae
		}
		r.log.Warn("leftover transaction: send offsets failed; aborting anyway", "err", err)
	}
	if err := r.producer.AbortTransaction(tctx); err != nil {
		return fmt.Errorf("%w: abort leftover transaction: %w", ErrFatal, err)
	}
	return nil
}

// prepareSerdes lets sink serdes check their schemas before anything is written.
func (r *Runner) prepareSerdes(ctx context.Context) error {
	var errs []error
	for _, n := range r.topo.Nodes {
		if n.Kind != topology.SinkNode {
			continue
		}
		topic := topology.TopicName(r.cfg.ApplicationID, n.Topics[0], n.Internal)
		for _, s := range []serde.Serde{n.KeySerde, n.ValueSerde} {
			if p, ok := s.(serde.Preparer); ok {
				if err := p.Prepare(ctx, topic); err != nil {
					errs = append(errs, fmt.Errorf("sink %s (topic %s): %w", n.Name, topic, err))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// drainLogs forwards librdkafka's log lines to slog (forwardLogs), until
// the client closes.
func (r *Runner) drainLogs(client string, logs chan kafka.LogEvent) { forwardLogs(r.log, client, logs) }

// forwardLogs forwards librdkafka's log lines to log (syslog levels: 0-3
// error, 4 warning, 5-6 info, 7 debug) with the client's name, until the
// channel closes (its client closed). Every librdkafka client of the
// program needs go.logs.channel.enable and this, or librdkafka prints its
// lines raw on stderr (clientlogs.go).
func forwardLogs(log *slog.Logger, client string, logs chan kafka.LogEvent) {
	for l := range logs {
		level := slog.LevelDebug
		switch {
		case l.Level <= 3:
			level = slog.LevelError
		case l.Level == 4:
			level = slog.LevelWarn
		case l.Level <= 6 && l.Tag != "GETSUBSCRIPTIONS":
			level = slog.LevelInfo
		}
		log.Log(context.Background(), level, "librdkafka: "+l.Message, "client", client, "tag", l.Tag)
	}
}
