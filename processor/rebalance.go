package processor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/eos-runner/eos-runner/changelog"
)

// rebalance is the consumer's rebalance callback. librdkafka calls it from
// Poll, on the poll loop's goroutine, so it may use everything the poll loop
// owns; the workers are drained before any task is touched.
//
// Revoke: finish the open transaction first (commit; abort if the partitions
// were lost rather than revoked), then close the revoked tasks, then
// unassign. Assign: create the tasks and pause their partitions until their
// stores are restored (DESIGN.md section 4).
func (r *Runner) rebalance(c *kafka.Consumer, ev kafka.Event) error {
	r.m.rebalances.Inc()
	switch e := ev.(type) {
	case kafka.AssignedPartitions:
		r.onAssigned(c, e.Partitions)
	case kafka.RevokedPartitions:
		r.onRevoked(c, e.Partitions, c.AssignmentLost())
	}
	return nil
}

func (r *Runner) onAssigned(c *kafka.Consumer, parts []kafka.TopicPartition) {
	r.log.Info("partitions assigned", "partitions", fmtParts(parts))
	if err := c.IncrementalAssign(parts); err != nil {
		r.fatal = fmt.Errorf("%w: incremental assign: %w", ErrFatal, err)
		return
	}
	var pause []kafka.TopicPartition
	for _, p := range parts {
		tp := partitionKey{*p.Topic, p.Partition}
		sub, ok := r.plan.subOf[tp.Topic]
		if !ok {
			continue
		}
		id := taskID(sub, int(tp.Partition))
		t, ok := r.tasks[id]
		if !ok {
			st := r.topo.SubTopologies[sub]
			t = newTask(r.topo, st, tp.Partition, r.cfg.ApplicationID, r.db,
				&collector{p: r.producer, tracker: r.tracker}, r.cfg.OnError, r.cfg.DLQTopic, r.log, r.m)
			r.tasks[id] = t
			for name := range t.stores {
				r.db.MarkOwned(changelog.StorePartition{Store: name, Partition: tp.Partition}, time.Now())
			}
			if len(t.stores) == 0 {
				if err := t.init(); err != nil {
					r.fatal = fmt.Errorf("%w: %w", ErrFatal, err)
					return
				}
				r.ready[id] = true
			} else {
				ctx, cancel := context.WithCancel(context.Background())
				r.restoring[id] = cancel
				r.restoreReq <- restoreJob{ctx: ctx, t: t}
			}
		}
		r.taskOf[tp] = t
		if !r.ready[id] {
			pause = append(pause, p)
		}
	}
	r.m.tasks.Set(float64(len(r.tasks)))
	if len(pause) > 0 {
		if err := c.Pause(pause); err != nil {
			r.fatal = fmt.Errorf("%w: pause restoring partitions: %w", ErrFatal, err)
		}
	}
}

func (r *Runner) onRevoked(c *kafka.Consumer, parts []kafka.TopicPartition, lost bool) {
	r.log.Info("partitions revoked", "partitions", fmtParts(parts), "lost", lost)
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.TransactionTimeout)
	defer cancel()
	// Forget the partitions first, so an abort does not rewind them; the
	// offsets processed in them stay in the transaction and commit with it.
	closing := map[string]*task{}
	for _, p := range parts {
		tp := partitionKey{*p.Topic, p.Partition}
		if t, ok := r.taskOf[tp]; ok {
			closing[t.id] = t
			delete(r.taskOf, tp)
			delete(r.resumeAt, tp)
			delete(r.position, tp)
		}
	}
	if r.com != nil {
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
		if f := r.failed.Load(); f != nil && r.fatal == nil {
			if err := r.handleFailure(ctx, *f); err != nil {
				r.fatal = err
			}
		}
	}
	for id, t := range closing {
		still := false
		for _, other := range r.taskOf {
			if other == t {
				still = true
			}
		}
		if still {
			continue
		}
		if cancel, ok := r.restoring[id]; ok {
			cancel()
			delete(r.restoring, id)
		}
		t.close()
		delete(r.tasks, id)
		delete(r.ready, id)
		for name := range t.stores {
			r.db.MarkUnowned(changelog.StorePartition{Store: name, Partition: t.partition}, time.Now())
		}
	}
	r.m.tasks.Set(float64(len(r.tasks)))
	if err := c.IncrementalUnassign(parts); err != nil && r.fatal == nil {
		r.fatal = fmt.Errorf("%w: incremental unassign: %w", ErrFatal, err)
	}
}

// handleRestores initializes tasks whose restore finished and resumes their
// partitions.
func (r *Runner) handleRestores() error {
	for {
		select {
		case out := <-r.restoreDone:
			t := out.t
			delete(r.restoring, t.id)
			if r.tasks[t.id] != t {
				continue // revoked while restoring
			}
			if out.err != nil {
				if errors.Is(out.err, context.Canceled) {
					continue
				}
				return fmt.Errorf("%w: task %s: %w", ErrFatal, t.id, out.err)
			}
			if err := t.init(); err != nil {
				return fmt.Errorf("%w: %w", ErrFatal, err)
			}
			r.ready[t.id] = true
			var resume []kafka.TopicPartition
			for tp, owner := range r.taskOf {
				if owner != t {
					continue
				}
				topic := tp.Topic
				p := kafka.TopicPartition{Topic: &topic, Partition: tp.Partition}
				if off, ok := r.resumeAt[tp]; ok {
					p.Offset = kafka.Offset(off)
					if err := r.consumer.Seek(p, 0); err != nil {
						return fmt.Errorf("%w: seek %s[%d] to %d: %w", ErrFatal, tp.Topic, tp.Partition, off, err)
					}
					delete(r.resumeAt, tp)
					delete(r.position, tp)
				}
				resume = append(resume, p)
			}
			if err := r.consumer.Resume(resume); err != nil {
				return fmt.Errorf("%w: resume: %w", ErrFatal, err)
			}
			r.log.Info("task running", "task", t.id)
		default:
			return nil
		}
	}
}

func fmtParts(parts []kafka.TopicPartition) []string {
	out := make([]string, len(parts))
	for i, p := range parts {
		out[i] = fmt.Sprintf("%s[%d]", *p.Topic, p.Partition)
	}
	return out
}

// kafkaTxn is the txnEnv over the real consumer, producer and stores.
type kafkaTxn struct{ r *Runner }

func (k *kafkaTxn) barrier() { k.r.inflight.Wait() }

func (k *kafkaTxn) begin() error { return k.r.producer.BeginTransaction() }

func offsetsList(next map[partitionKey]int64) []kafka.TopicPartition {
	out := make([]kafka.TopicPartition, 0, len(next))
	for tp, off := range next {
		topic := tp.Topic
		out = append(out, kafka.TopicPartition{Topic: &topic, Partition: tp.Partition, Offset: kafka.Offset(off)})
	}
	return out
}

func (k *kafkaTxn) sendOffsets(ctx context.Context, next map[partitionKey]int64) error {
	if len(next) == 0 {
		return nil
	}
	md, err := k.r.consumer.GetConsumerGroupMetadata()
	if err != nil {
		return fmt.Errorf("group metadata: %w", err)
	}
	return k.r.producer.SendOffsetsToTransaction(ctx, offsetsList(next), md)
}

func (k *kafkaTxn) commit(ctx context.Context) error { return k.r.producer.CommitTransaction(ctx) }
func (k *kafkaTxn) abort(ctx context.Context) error  { return k.r.producer.AbortTransaction(ctx) }

func (k *kafkaTxn) commitOffsets(ctx context.Context, next map[partitionKey]int64) error {
	if len(next) == 0 {
		return nil
	}
	_, err := k.r.consumer.CommitOffsets(offsetsList(next))
	return err
}

func (k *kafkaTxn) awaitDeliveries(ctx context.Context) (map[partitionKey]int64, error) {
	// Under at_least_once this is what makes outputs acknowledged before
	// offsets commit; under exactly_once_v2 CommitTransaction has flushed.
	return k.r.tracker.await(ctx)
}

func (k *kafkaTxn) applyState(changelogNext map[partitionKey]int64) error {
	var commits []changelog.Commit
	for _, t := range k.r.tasks {
		for _, s := range t.stores {
			cp := int64(-1)
			if off, ok := changelogNext[partitionKey{s.topic, s.partition}]; ok {
				cp = off
			}
			if cp >= 0 || s.cs.PendingCount() > 0 {
				commits = append(commits, changelog.Commit{Store: s.cs, Checkpoint: cp})
			}
		}
	}
	if len(commits) == 0 {
		return nil
	}
	return k.r.db.Commit(commits)
}

func (k *kafkaTxn) dropState() {
	for _, t := range k.r.tasks {
		for _, s := range t.stores {
			s.discard()
			s.cs.Abort()
		}
		t.coll.discard()
	}
}

func (k *kafkaTxn) rewind(first map[partitionKey]int64) error {
	for tp, off := range first {
		if _, owned := k.r.taskOf[tp]; !owned {
			continue
		}
		topic := tp.Topic
		if err := k.r.consumer.Seek(kafka.TopicPartition{Topic: &topic, Partition: tp.Partition, Offset: kafka.Offset(off)}, 0); err != nil {
			return fmt.Errorf("seek %s[%d] to %d: %w", tp.Topic, tp.Partition, off, err)
		}
		k.r.position[tp] = off
	}
	return nil
}
