package processor

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/eos-runner/eos-runner/changelog"
)

// kafkaTxn is the txnEnv over the real consumer, producer, tasks and stores:
// the Kafka half of the commit protocol in txn.go. Every method runs on the
// poll loop; those that touch tasks run after barrier, workers drained.
type kafkaTxn struct{ r *Runner }

func (k *kafkaTxn) barrier() { k.r.disp.drain() }

func (k *kafkaTxn) flushCaches() error {
	var (
		mu   sync.Mutex
		errs []error
	)
	for _, t := range k.r.tm.tasks {
		if !t.cacheDirty() {
			continue
		}
		k.r.disp.dispatch(work{t: t, fn: func(ctx context.Context) {
			if err := t.flushCaches(ctx); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}})
	}
	k.r.disp.drain()
	return errors.Join(errs...)
}

func (k *kafkaTxn) failure() error { return k.r.failures.err() }

func (k *kafkaTxn) clearFailure() { k.r.failures.clear() }

func (k *kafkaTxn) begin() error { return k.r.producer.BeginTransaction() }

// positions: partitions processed in the transaction (including those of
// tasks revoked meanwhile but not yet closed, whose offsets commit with it),
// then every other owned partition whose committed position is known. The
// latter makes a transaction that carries only punctuator output carry
// offsets too, so the group coordinator fences it when this member is stale.
func (k *kafkaTxn) positions() map[partitionKey]position {
	out := map[partitionKey]position{}
	for _, t := range k.r.tm.tasks {
		for tp, next := range t.processed {
			out[tp] = position{Next: next, StreamTime: t.streamTime}
		}
	}
	for tp, t := range k.r.tm.taskOf {
		if _, ok := out[tp]; ok {
			continue
		}
		if next, ok := k.r.tm.committed[tp]; ok {
			out[tp] = position{Next: next, StreamTime: t.streamTime}
		}
	}
	return out
}

func offsetsList(pos map[partitionKey]position) []kafka.TopicPartition {
	out := make([]kafka.TopicPartition, 0, len(pos))
	for tp, p := range pos {
		topic := tp.Topic
		md := encodeStreamTime(p.StreamTime)
		out = append(out, kafka.TopicPartition{Topic: &topic, Partition: tp.Partition, Offset: kafka.Offset(p.Next), Metadata: &md})
	}
	return out
}

func (k *kafkaTxn) sendOffsets(ctx context.Context, pos map[partitionKey]position) error {
	if len(pos) == 0 {
		return nil
	}
	md, err := k.r.consumer.GetConsumerGroupMetadata()
	if err != nil {
		return fmt.Errorf("group metadata: %w", err)
	}
	return k.r.producer.SendOffsetsToTransaction(ctx, offsetsList(pos), md)
}

func (k *kafkaTxn) commit(ctx context.Context) error { return k.r.producer.CommitTransaction(ctx) }
func (k *kafkaTxn) abort(ctx context.Context) error  { return k.r.producer.AbortTransaction(ctx) }

func (k *kafkaTxn) commitOffsets(ctx context.Context, pos map[partitionKey]position) error {
	if len(pos) == 0 {
		return nil
	}
	_, err := k.r.consumer.CommitOffsets(offsetsList(pos))
	return err
}

func (k *kafkaTxn) awaitDeliveries(ctx context.Context) (map[partitionKey]int64, error) {
	// Under at_least_once this is what makes outputs acknowledged before
	// offsets commit; under exactly_once_v2 CommitTransaction has flushed.
	return k.r.tracker.await(ctx)
}

// applyState writes the pending batches with their checkpoints, then makes
// the committed offsets and every task's stream time and punctuation
// schedule the committed point.
func (k *kafkaTxn) applyState(changelogNext map[partitionKey]int64, pos map[partitionKey]position) error {
	var commits []changelog.Commit
	for _, t := range k.r.tm.tasks {
		commits = t.appendCommits(commits, changelogNext)
	}
	if len(commits) > 0 {
		// The write to Pebble lands in the background, while the next
		// transaction runs (changelog.DB.CommitAsync says why that is safe).
		if err := k.r.db.CommitAsync(commits); err != nil {
			return err
		}
	}
	for tp, p := range pos {
		if _, owned := k.r.tm.taskOf[tp]; owned {
			k.r.tm.committed[tp] = p.Next
		}
	}
	for _, t := range k.r.tm.tasks {
		t.markCommitted()
	}
	return nil
}

// dropState rolls every task back to its committed point.
func (k *kafkaTxn) dropState() error {
	var first error
	for _, t := range k.r.tm.tasks {
		if err := t.rollback(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

func (k *kafkaTxn) rewind(first map[partitionKey]int64) error {
	for tp, off := range first {
		t, owned := k.r.tm.taskOf[tp]
		if !owned {
			continue
		}
		if t.inputs != nil {
			t.inputs.drop(tp) // delivered again from off
		}
		topic := tp.Topic
		if err := k.r.consumer.Seek(kafka.TopicPartition{Topic: &topic, Partition: tp.Partition, Offset: kafka.Offset(off)}, 0); err != nil {
			return fmt.Errorf("seek %s[%d] to %d: %w", tp.Topic, tp.Partition, off, err)
		}
		k.r.tm.position[tp] = off
	}
	return nil
}
