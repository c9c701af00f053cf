package processor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// RawCopyConfig configures RawCopy. Zero values mean the defaults given per
// field.
type RawCopyConfig struct {
	// Brokers is the bootstrap list. Required.
	Brokers string
	// Input and Output are the topics; Output must exist with at least as
	// many partitions as Input (record n of input partition p goes to output
	// partition p). Required.
	Input, Output string
	// Group is the consumer group. Required.
	Group string
	// CommitInterval is librdkafka's auto.commit.interval.ms; default 100ms,
	// the runner's default commit.interval.ms, so both commit as often.
	CommitInterval time.Duration
	// Kafka holds librdkafka properties passed to both clients, after the
	// defaults below and before the settings RawCopy needs (group.id,
	// bootstrap.servers).
	Kafka map[string]string
	// Logger receives start, progress (every 10s) and stop; nil discards.
	Logger *slog.Logger
	// Copies is how many times each record is produced; default 1. Two
	// measure what the client costs a stateful record, which produces an
	// output and a changelog record.
	Copies int
}

// RawCopyResult is what a RawCopy did.
type RawCopyResult struct {
	// Consumed and Produced count records; Delivered those acknowledged;
	// Failed those whose delivery failed.
	Consumed, Produced, Delivered, Failed int64
	Elapsed                               time.Duration
}

// RawCopy is the baseline eos-runner's benchmark measures the runner
// against: the plainest librdkafka consume-then-produce loop, with no
// processing, no serdes, no state and no transactions. It consumes Input in
// Group (read_uncommitted, auto commit every CommitInterval with offsets
// stored as records are polled) and produces each record's key, value and
// timestamp unchanged to the same partition of Output, until ctx is
// cancelled; then it flushes the producer, commits the offsets and leaves
// the group.
//
// It lives here because processor is the only package that talks to
// confluent-kafka-go. The producer is tuned as the runner's is (acks=all,
// idempotence, linger.ms=5), so that the ratio of a topology's throughput to
// RawCopy's is the cost of the runner, not of different client settings.
// Offsets are committed when records are polled, before their copies are
// acknowledged: this is at-most-once, the cheapest loop there is, which is
// what a ceiling should be. Its consumer sets fetch.queue.backoff.ms=10
// (see below); pass the same to a runner (kafka.consumer.fetch.queue.backoff.ms)
// to compare like with like.
func RawCopy(ctx context.Context, cfg RawCopyConfig) (RawCopyResult, error) {
	var errs []error
	for name, v := range map[string]string{"brokers": cfg.Brokers, "input": cfg.Input, "output": cfg.Output, "group": cfg.Group} {
		if v == "" {
			errs = append(errs, fmt.Errorf("raw copy: %s: required", name))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return RawCopyResult{}, err
	}
	if cfg.CommitInterval == 0 {
		cfg.CommitInterval = 100 * time.Millisecond
	}
	cfg.Copies = max(cfg.Copies, 1)
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	config := func(defaults, own kafka.ConfigMap) *kafka.ConfigMap {
		cm := kafka.ConfigMap{}
		for k, v := range defaults {
			cm[k] = v
		}
		for k, v := range cfg.Kafka {
			cm[k] = v
		}
		for k, v := range own {
			cm[k] = v
		}
		cm["bootstrap.servers"] = cfg.Brokers
		return &cm
	}
	producer, err := kafka.NewProducer(config(kafka.ConfigMap{
		"go.logs.channel.enable":    true,
		"enable.idempotence":        true,
		"acks":                      "all",
		"linger.ms":                 5,
		"go.delivery.report.fields": "none",
		"go.events.channel.size":    producerEventsChannelSize,
		"go.produce.channel.size":   producerProduceChannelSize,
	}, nil))
	if err != nil {
		return RawCopyResult{}, fmt.Errorf("raw copy: producer: %w", err)
	}
	go forwardLogs(log, "raw-copy-producer", producer.Logs())
	var res RawCopyResult
	var delivered, failed atomic.Int64
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		for ev := range producer.Events() {
			switch e := ev.(type) {
			case *kafka.Message:
				if e.TopicPartition.Error != nil {
					if failed.Add(1) == 1 {
						log.Error("raw copy: delivery failed", "err", e.TopicPartition.Error)
					}
				} else {
					delivered.Add(1)
				}
			case kafka.Error:
				log.Warn("raw copy: producer error", "err", e, "fatal", e.IsFatal())
			}
		}
	}()
	defer func() {
		producer.Close()
		<-drained
	}()
	consumer, err := kafka.NewConsumer(config(kafka.ConfigMap{
		"go.logs.channel.enable": true,
		"auto.offset.reset":      "earliest",
		// librdkafka's default (1000ms) postpones a partition's next fetch by
		// a whole second once its prefetch queue passes queued.min.messages
		// (100000, shared by the partitions); with 8 partitions that capped
		// this loop at ~130k records/s on an idle CPU. 10ms keeps the
		// prefetch flowing at no measurable CPU cost.
		"fetch.queue.backoff.ms": 10,
	}, kafka.ConfigMap{
		"group.id":                 cfg.Group,
		"enable.auto.commit":       true,
		"enable.auto.offset.store": true,
		"auto.commit.interval.ms":  int(cfg.CommitInterval.Milliseconds()),
	}))
	if err != nil {
		return res, fmt.Errorf("raw copy: consumer: %w", err)
	}
	go forwardLogs(log, "raw-copy-consumer", consumer.Logs())
	if err := consumer.Subscribe(cfg.Input, nil); err != nil {
		consumer.Close()
		return res, fmt.Errorf("raw copy: subscribe %s: %w", cfg.Input, err)
	}
	log.Info("raw copy started", "input", cfg.Input, "output", cfg.Output, "group", cfg.Group)
	start, lastReport := time.Now(), time.Now()
	output := cfg.Output
	var loopErr error
	for ctx.Err() == nil && loopErr == nil {
		if now := time.Now(); now.Sub(lastReport) >= 10*time.Second {
			lastReport = now
			log.Info("raw copy progress", "consumed", res.Consumed, "delivered", delivered.Load())
		}
		switch e := consumer.Poll(100).(type) {
		case *kafka.Message:
			if e.TopicPartition.Error != nil {
				log.Warn("raw copy: consume error", "err", e.TopicPartition.Error)
				continue
			}
			res.Consumed++
			for range cfg.Copies {
				m := &kafka.Message{
					TopicPartition: kafka.TopicPartition{Topic: &output, Partition: e.TopicPartition.Partition},
					Key:            e.Key, Value: e.Value, Timestamp: e.Timestamp,
				}
				if loopErr = produceWaiting(ctx, producer, m); loopErr != nil {
					break
				}
				res.Produced++
			}
		case kafka.Error:
			if e.IsFatal() {
				loopErr = fmt.Errorf("raw copy: consumer: %w", e)
			} else {
				log.Warn("raw copy: consumer error", "err", e)
			}
		}
	}
	if errors.Is(loopErr, context.Canceled) && ctx.Err() != nil {
		loopErr = nil // stopped while waiting for queue space: a clean stop
	}
	// Flush before the final commit, so that a clean stop leaves every
	// committed record copied.
	if remaining := producer.Flush(30_000); remaining > 0 {
		loopErr = errors.Join(loopErr, fmt.Errorf("raw copy: %d records not delivered after 30s", remaining))
	}
	if _, err := consumer.Commit(); err != nil && !isNoOffset(err) {
		loopErr = errors.Join(loopErr, fmt.Errorf("raw copy: final commit: %w", err))
	}
	if err := consumer.Close(); err != nil {
		loopErr = errors.Join(loopErr, fmt.Errorf("raw copy: consumer close: %w", err))
	}
	res.Elapsed = time.Since(start)
	res.Delivered, res.Failed = delivered.Load(), failed.Load()
	log.Info("raw copy stopped", "consumed", res.Consumed, "delivered", res.Delivered, "failed", res.Failed,
		"elapsed", res.Elapsed.Round(time.Millisecond).String())
	if res.Failed > 0 {
		loopErr = errors.Join(loopErr, fmt.Errorf("raw copy: %d deliveries failed", res.Failed))
	}
	return res, loopErr
}

// produceWaiting produces m, waiting while librdkafka's queue is full.
func produceWaiting(ctx context.Context, p *kafka.Producer, m *kafka.Message) error {
	for {
		err := p.Produce(m, nil)
		var ke kafka.Error
		if err == nil || !errors.As(err, &ke) || ke.Code() != kafka.ErrQueueFull {
			if err != nil {
				return fmt.Errorf("raw copy: produce to %s[%d]: %w", *m.TopicPartition.Topic, m.TopicPartition.Partition, err)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
}

// isNoOffset reports librdkafka's "nothing to commit".
func isNoOffset(err error) bool {
	var ke kafka.Error
	return errors.As(err, &ke) && ke.Code() == kafka.ErrNoOffset || strings.Contains(err.Error(), "No offset stored")
}
