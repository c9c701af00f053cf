package processor

import (
	"context"
	"fmt"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// rebalance is the consumer's rebalance callback. librdkafka calls it from
// Poll, on the poll loop's goroutine, so it may use everything the poll loop
// owns; the workers are drained before any task is touched.
//
// Revoke: finish the open transaction first (commit; abort if the partitions
// were lost rather than revoked), then close the revoked tasks, then
// unassign. Assign: create the tasks and pause their partitions until their
// stores are restored (docs/architecture.md, section 4).
func (r *Runner) rebalance(c *kafka.Consumer, ev kafka.Event) error {
	r.m.rebalances.Inc()
	defer r.kickGroupWatch() // membership.go
	switch e := ev.(type) {
	case kafka.AssignedPartitions:
		// Under the cooperative protocol librdkafka calls this at the end
		// of every rebalance, with an empty list when nothing is added: it
		// ends the rebalance for /readyz.
		r.onAssigned(c, e.Partitions)
		r.health.assigned.Store(true)
		r.health.rebalancing.Store(false)
	case kafka.RevokedPartitions:
		r.health.rebalancing.Store(true)
		r.onRevoked(c, e.Partitions, c.AssignmentLost())
	}
	r.health.loopTick(time.Now(), r.tm)
	r.health.publishOwned(r.tm)
	r.m.restore.keepOnly(restoringStores(r.tm))
	return nil
}

func (r *Runner) onAssigned(c *kafka.Consumer, parts []kafka.TopicPartition) {
	parts = r.plan.copart.expand(parts) // copartition.go
	r.log.Info("partitions assigned", "partitions", fmtParts(parts))
	// Commit the open transaction first: reading the new partitions'
	// committed offsets may wait (require-stable) up to a previous owner's
	// transaction timeout, and our own transaction must not time out on the
	// broker meanwhile (it would fence this producer).
	if r.com != nil && !r.stopping && r.com.state.open {
		ctx, cancel := context.WithTimeout(context.Background(), r.cfg.TransactionTimeout)
		err := r.commit(ctx)
		cancel()
		if err != nil {
			r.fatal = err
			return
		}
	}
	// The committed offsets first, before anything of these partitions is
	// restored or processed: their positions are sent with every
	// transaction, and their metadata carries each task's stream time.
	// Under read_committed librdkafka asks for stable offsets (KIP-447's
	// require_stable), so an offset a previous owner's open transaction may
	// still move is waited for, not read stale.
	committed, err := r.fetchCommitted(c, parts)
	if err != nil {
		r.fatal = fmt.Errorf("%w: committed offsets of %v: %w", ErrFatal, fmtParts(parts), err)
		return
	}
	start, err := r.startOffsets(c, parts, committed)
	if err != nil {
		r.fatal = fmt.Errorf("%w: %w", ErrFatal, err)
		return
	}
	if err := c.IncrementalAssign(start); err != nil {
		r.fatal = fmt.Errorf("%w: incremental assign: %w", ErrFatal, err)
		return
	}
	pause, err := r.tm.assign(start, r.plan.subOf, committed)
	if err != nil {
		r.fatal = fmt.Errorf("%w: %w", ErrFatal, err)
		return
	}
	if len(pause) > 0 {
		if err := c.Pause(pause); err != nil {
			r.fatal = fmt.Errorf("%w: pause restoring partitions: %w", ErrFatal, err)
		}
	}
}

func (r *Runner) onRevoked(c *kafka.Consumer, parts []kafka.TopicPartition, lost bool) {
	parts = r.plan.copart.expand(parts) // copartition.go
	r.log.Info("partitions revoked", "partitions", fmtParts(parts), "lost", lost)
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.TransactionTimeout)
	defer cancel()
	// Forget the partitions first, so an abort does not rewind them; the
	// offsets processed in them stay in the transaction and commit with it.
	closing := r.tm.forget(parts)
	if r.com != nil && !r.stopping {
		var err error
		if lost {
			// Another member may own them already: nothing of this transaction
			// may commit.
			err = r.com.abortTxn(ctx)
		} else {
			err = r.commit(ctx)
		}
		if err != nil && r.fatal == nil {
			r.fatal = err
		}
	}
	r.tm.closeRevoked(closing)
	if err := c.IncrementalUnassign(parts); err != nil && r.fatal == nil {
		r.fatal = fmt.Errorf("%w: incremental unassign: %w", ErrFatal, err)
	}
}

// startOffsets returns parts at explicit offsets: the committed one, or else
// the log start (auto.offset.reset=earliest, resolved here). At a logical
// offset librdkafka would look the start up with ListOffsets, and a Pause or
// Resume while that lookup is in flight leaves a retry timer armed that later
// restarts the active partition at its start (docs/exactly-once.md).
func (r *Runner) startOffsets(c *kafka.Consumer, parts []kafka.TopicPartition, committed map[partitionKey]position) ([]kafka.TopicPartition, error) {
	out := make([]kafka.TopicPartition, len(parts))
	for i, p := range parts {
		var next int64
		if cp, ok := committed[partitionKey{*p.Topic, p.Partition}]; ok {
			next = cp.Next
		} else if off, ok, err := r.fromTimeOffset(c, *p.Topic, p.Partition); err != nil {
			return nil, err
		} else if ok {
			next = off
		} else {
			low, _, err := c.QueryWatermarkOffsets(*p.Topic, p.Partition, int(min(10*time.Second, r.cfg.TransactionTimeout).Milliseconds()))
			if err != nil {
				return nil, fmt.Errorf("log start of %s[%d]: %w", *p.Topic, p.Partition, err)
			}
			next = low
		}
		out[i] = kafka.TopicPartition{Topic: p.Topic, Partition: p.Partition, Offset: kafka.Offset(next)}
	}
	return out, nil
}

func fmtParts(parts []kafka.TopicPartition) []string {
	out := make([]string, len(parts))
	for i, p := range parts {
		out[i] = fmt.Sprintf("%s[%d]", *p.Topic, p.Partition)
	}
	return out
}

// fetchCommitted reads the committed offsets of parts, with their stream
// time, retrying for up to the transaction timeout (an unstable offset, a
// coordinator moving). Partitions without a committed offset are absent.
func (r *Runner) fetchCommitted(c *kafka.Consumer, parts []kafka.TopicPartition) (map[partitionKey]position, error) {
	query := make([]kafka.TopicPartition, len(parts))
	for i, p := range parts {
		query[i] = kafka.TopicPartition{Topic: p.Topic, Partition: p.Partition}
	}
	// A previous owner's open transaction holds the offsets unstable until
	// it ends, at the latest by its transaction timeout: wait past that.
	deadline := time.Now().Add(2 * r.cfg.TransactionTimeout)
	for {
		res, err := c.Committed(query, int(min(10*time.Second, r.cfg.TransactionTimeout).Milliseconds()))
		if err == nil {
			out := map[partitionKey]position{}
			for _, p := range res {
				if p.Error != nil {
					err = fmt.Errorf("%s[%d]: %w", *p.Topic, p.Partition, p.Error)
					break
				}
				if p.Offset < 0 {
					continue
				}
				cp := position{Next: int64(p.Offset)}
				if p.Metadata != nil {
					st, derr := decodeStreamTime(*p.Metadata)
					if derr != nil {
						r.log.Warn("committed offset metadata is not a stream time; starting with none", "topic", *p.Topic, "partition", p.Partition, "err", derr)
					}
					cp.StreamTime = st
				}
				out[partitionKey{*p.Topic, p.Partition}] = cp
			}
			if err == nil {
				return out, nil
			}
		}
		if time.Now().After(deadline) {
			return nil, err
		}
		r.log.Warn("committed offsets not available yet; retrying", "err", err)
		time.Sleep(200 * time.Millisecond)
	}
}

// fromTimeOffset is where a partition without a committed offset starts
// under from-datetime (Config.FromTime): the first offset at or after it,
// the log end when every record is older. ok is false without
// from-datetime, and for internal topics and tables' source topics, which
// start at the log start (a table must hold every key).
func (r *Runner) fromTimeOffset(c *kafka.Consumer, topic string, partition int32) (int64, bool, error) {
	if r.cfg.FromTime.IsZero() || !r.plan.backfilled[topic] {
		return 0, false, nil
	}
	q := []kafka.TopicPartition{{Topic: &topic, Partition: partition, Offset: kafka.Offset(r.cfg.FromTime.UnixMilli())}}
	res, err := c.OffsetsForTimes(q, int(min(10*time.Second, r.cfg.TransactionTimeout).Milliseconds()))
	if err == nil && len(res) == 1 && res[0].Error != nil {
		err = res[0].Error
	}
	if err != nil {
		return 0, false, fmt.Errorf("offset of %s[%d] at --from-datetime %s: %w", topic, partition, r.cfg.FromTime.Format(time.RFC3339), err)
	}
	off := int64(res[0].Offset)
	if off < 0 { // no record at or after the time: start at the end
		_, hi, err := c.QueryWatermarkOffsets(topic, partition, int(min(10*time.Second, r.cfg.TransactionTimeout).Milliseconds()))
		if err != nil {
			return 0, false, fmt.Errorf("log end of %s[%d]: %w", topic, partition, err)
		}
		off = hi
	}
	r.log.Info("backfill: partition without a committed offset starts at --from-datetime", "topic", topic, "partition", partition,
		"from", r.cfg.FromTime.Format(time.RFC3339Nano), "offset", off)
	return off, true, nil
}
