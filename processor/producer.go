package processor

import (
	"context"
	"fmt"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/prometheus/client_golang/prometheus"
)

// The producer's life: built from one configuration, started with its own
// delivery tracker and delivery drainer, initialized for transactions, and
// closed. Run builds the first one; the in-process recovery from a lost
// producer (recover.go) closes it and builds the next from the same
// configuration, with the same transactional.id.
//
// Invariants:
//
//   - Each producer has its own deliveryTracker and drainer (a generation).
//     A report of an older producer, arriving late or never, is counted
//     against that producer's tracker only, never against the current one's,
//     so a commit never waits for, nor takes a changelog offset from, a
//     record of a dead producer.
//   - producerFatal only ever holds the current producer's fatal error: a
//     drainer records one only while its generation is current (genMu), and
//     a new generation clears it.
//   - r.producer, r.tracker and r.drained change only on the poll loop, with
//     the workers drained and no task left that could produce through the
//     old producer (tasks keep their collector's producer for life).

// producerConfig is the librdkafka configuration of every producer the
// runner builds.
func (r *Runner) producerConfig() *kafka.ConfigMap {
	pcfg := kafka.ConfigMap{
		"go.logs.channel.enable":    true,
		"enable.idempotence":        true,
		"acks":                      "all",
		"partitioner":               "murmur2_random", // Java's default, so keys land where Kafka Streams would put them
		"go.delivery.report.fields": "none",
		"message.timeout.ms":        int(r.cfg.TransactionTimeout.Milliseconds()),
		"linger.ms":                 5,
		"go.batch.producer":         false,
		"go.events.channel.size":    producerEventsChannelSize,
		"go.produce.channel.size":   producerProduceChannelSize,
	}
	for _, k := range []string{"message.timeout.ms", "producer.message.timeout.ms"} {
		if v, ok := r.cfg.Kafka[k]; ok {
			pcfg["message.timeout.ms"] = v
		}
	}
	if r.eos() {
		pcfg["transactional.id"] = r.transactionalID()
		pcfg["transaction.timeout.ms"] = int(r.cfg.TransactionTimeout.Milliseconds())
	}
	return r.kafkaConfig("producer", pcfg)
}

// transactionalID is the producer's transactional.id under exactly_once_v2:
// one per instance, the same across restarts and producer recoveries.
func (r *Runner) transactionalID() string { return r.cfg.ApplicationID + "-" + r.cfg.InstanceID }

// startProducer builds a producer from producerConfig and makes it the
// current generation: r.producer, with a fresh r.tracker, a delivery
// drainer (done: r.drained) and a log forwarder. Any earlier producer must
// be closed or being closed (closeProducer). Poll loop, workers drained.
func (r *Runner) startProducer() error {
	p, err := kafka.NewProducer(r.producerConfig())
	if err != nil {
		return fmt.Errorf("producer: %w", err)
	}
	gen := r.newProducerGeneration()
	tracker := newDeliveryTracker(r.plan.changelogs)
	drained := make(chan struct{})
	go r.drainDeliveries(p, tracker, gen, drained)
	go r.drainLogs("producer", p.Logs())
	r.producer, r.tracker, r.drained = p, tracker, drained
	return nil
}

// newProducerGeneration starts a new producer generation: from now on the
// fatal errors of earlier producers' drainers are ignored, and the one
// recorded so far is forgotten.
func (r *Runner) newProducerGeneration() uint64 {
	r.genMu.Lock()
	defer r.genMu.Unlock()
	r.producerGen++
	r.producerFatal.Store(nil)
	return r.producerGen
}

// setProducerFatal records the fatal error of generation gen's producer,
// if gen is current and none is recorded yet.
func (r *Runner) setProducerFatal(gen uint64, err error) {
	r.genMu.Lock()
	defer r.genMu.Unlock()
	if gen == r.producerGen {
		r.producerFatal.CompareAndSwap(nil, &err)
	}
}

// initTransactions initializes the current producer for transactions,
// waiting at most timeout: it fences any older producer with our
// transactional.id, and (on Kafka) aborts the transaction it left open. A
// refused transactional id is an *AuthorizationError.
func (r *Runner) initTransactions(ctx context.Context, timeout time.Duration) error {
	ictx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := r.producer.InitTransactions(ictx); err != nil {
		if ae := r.txnAuthorization(err); isAuthorization(ae) {
			return ae
		}
		return fmt.Errorf("init transactions: %w", err)
	}
	return nil
}

// closeProducer closes the current producer, waiting at most bound for the
// close and for its delivery drainer to end; a close still running then is
// left to finish in the background (its drainer's reports and errors go to
// its own generation, see above). bound 0: wait as long as it takes.
func (r *Runner) closeProducer(bound time.Duration) {
	p, drained := r.producer, r.drained
	closed := make(chan struct{})
	go func() {
		p.Close()
		close(closed)
	}()
	if bound == 0 {
		<-closed
		<-drained
		return
	}
	timer := time.NewTimer(bound)
	defer timer.Stop()
	for _, ch := range []chan struct{}{closed, drained} {
		select {
		case <-ch:
		case <-timer.C:
			r.log.Warn("the old producer did not close in time; leaving it to close in the background", "bound", bound)
			return
		}
	}
}

// drainDeliveries reads producer p's event channel until it closes: it
// records delivery reports in p's tracker and nothing else (STYLE lesson
// 6), and p's fatal error for generation gen.
func (r *Runner) drainDeliveries(p *kafka.Producer, tracker *deliveryTracker, gen uint64, done chan struct{}) {
	defer close(done)
	produced := map[string]prometheus.Counter{} // the drainer's own cache
	for ev := range p.Events() {
		switch e := ev.(type) {
		case *kafka.Message:
			tracker.report(e)
			if e.TopicPartition.Error == nil && e.TopicPartition.Topic != nil {
				c, ok := produced[*e.TopicPartition.Topic]
				if !ok {
					c = r.m.produced.WithLabelValues(*e.TopicPartition.Topic)
					produced[*e.TopicPartition.Topic] = c
				}
				c.Inc()
			}
		case kafka.Error:
			if e.IsFatal() {
				r.setProducerFatal(gen, r.txnAuthorization(e))
			}
			r.log.Warn("producer error", "err", e, "fatal", e.IsFatal())
		}
	}
}
