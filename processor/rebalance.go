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
		if cp, ok := committed[tp]; ok {
			r.committed[tp] = cp.Next
			t.setCommittedStreamTime(cp.StreamTime)
		}
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
			delete(r.committed, tp)
		}
	}
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
			if r.tasks[t.id] != t {
				// Revoked while restoring; a new task with the same id may be
				// restoring now, and its cancel function is not this one's.
				continue
			}
			delete(r.restoring, t.id)
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

// fetchCommitted reads the committed offsets of parts, with their stream
// time, retrying for up to the transaction timeout (an unstable offset, a
// coordinator moving). Partitions without a committed offset are absent.
func (r *Runner) fetchCommitted(c *kafka.Consumer, parts []kafka.TopicPartition) (map[partitionKey]position, error) {
	query := make([]kafka.TopicPartition, len(parts))
	for i, p := range parts {
		query[i] = kafka.TopicPartition{Topic: p.Topic, Partition: p.Partition}
	}
	deadline := time.Now().Add(r.cfg.TransactionTimeout)
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
