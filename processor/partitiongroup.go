package processor

import (
	"sort"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// partitionGroup buffers the records of a task with several input
// partitions (a join, a merge, a table beside a stream) and decides which
// one the task processes next, as Kafka Streams' PartitionGroup does, so
// that a join gives the same results on a replay as on the first run:
//
//   - The next record is the head with the lowest timestamp among the
//     partitions' buffered heads (ties: the partition first by topic name),
//     so the task sees its inputs in timestamp order wherever the broker
//     allows.
//   - While a partition has nothing buffered, the task waits for it:
//     indefinitely while its fetch is pending (its known lag is above zero,
//     or unknown before the first fetch: records exist that would come
//     first), and up to max.task.idle.ms once it is caught up (lag zero).
//     Past that wait it processes the other partitions ("enforced
//     processing") until every partition has a record again. A negative
//     max.task.idle.ms never waits.
//
// Only the poll loop uses it: records enter as they are polled and leave in
// the order they are dispatched to the task's worker. A record counts as
// processed (its offset in the transaction) only once dispatched, so
// buffered records are neither committed nor lost: after an abort the
// rewound partitions' buffers are dropped (the consumer delivers them
// again), and a revoked task's buffers go with it.
type partitionGroup struct {
	queues  []*partitionQueue // sorted by topic: the tie-break order
	byKey   map[partitionKey]*partitionQueue
	maxIdle time.Duration
	// idleStart is when the group began waiting for a caught-up empty
	// partition; zero while every partition has a record.
	idleStart time.Time
	buffered  int
}

type partitionQueue struct {
	key  partitionKey
	msgs []*kafka.Message
}

func newPartitionGroup(parts []partitionKey, maxIdle time.Duration) *partitionGroup {
	g := &partitionGroup{byKey: map[partitionKey]*partitionQueue{}, maxIdle: maxIdle}
	for _, p := range parts {
		q := &partitionQueue{key: p}
		g.queues = append(g.queues, q)
		g.byKey[p] = q
	}
	sort.Slice(g.queues, func(i, j int) bool { return g.queues[i].key.Topic < g.queues[j].key.Topic })
	return g
}

// add buffers a polled record of one of the group's partitions.
func (g *partitionGroup) add(tp partitionKey, m *kafka.Message) {
	q := g.byKey[tp]
	q.msgs = append(q.msgs, m)
	g.buffered++
}

// drop empties one partition's buffer (it is being rewound).
func (g *partitionGroup) drop(tp partitionKey) {
	if q, ok := g.byKey[tp]; ok {
		g.buffered -= len(q.msgs)
		clear(q.msgs)
		q.msgs = q.msgs[:0]
	}
}

// next removes and returns the record the task processes next, or nil when
// it must wait (or nothing is buffered). lag gives an empty partition's
// known lag, -1 when unknown.
func (g *partitionGroup) next(now time.Time, lag func(partitionKey) int64) *kafka.Message {
	if g.buffered == 0 {
		return nil
	}
	if g.maxIdle >= 0 {
		waiting := false
		for _, q := range g.queues {
			if len(q.msgs) > 0 {
				continue
			}
			if lag(q.key) != 0 {
				return nil // its records are on their way
			}
			waiting = true
		}
		if !waiting {
			g.idleStart = time.Time{}
		} else {
			if g.idleStart.IsZero() {
				g.idleStart = now
			}
			if now.Sub(g.idleStart) < g.maxIdle {
				return nil
			}
		}
	}
	var best *partitionQueue
	for _, q := range g.queues {
		if len(q.msgs) == 0 {
			continue
		}
		if best == nil || q.msgs[0].Timestamp.Before(best.msgs[0].Timestamp) {
			best = q
		}
	}
	m := best.msgs[0]
	best.msgs[0] = nil
	best.msgs = best.msgs[1:]
	g.buffered--
	return m
}

// waitUntil is when a group waiting for a caught-up partition may go on
// (zero: it is not waiting on time).
func (g *partitionGroup) waitUntil() time.Time {
	if g.buffered == 0 || g.idleStart.IsZero() || g.maxIdle <= 0 {
		return time.Time{}
	}
	return g.idleStart.Add(g.maxIdle)
}
