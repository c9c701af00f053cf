package processor

import (
	"context"
	"log/slog"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// purger deletes the records of repartition topics that committed
// transactions have consumed (Kafka Streams' repartition purge): repartition
// topics keep records forever (retention.ms=-1) so that none expires before
// it is processed, and this keeps them small.
//
// Only committed offsets are purged: a record below the group's committed
// offset is never read again by this application, whichever instance owns
// the partition next. The purge runs off the poll loop (one DeleteRecords in
// flight at a time) and its failure is only logged: the next one covers it.
type purger struct {
	admin    *kafka.AdminClient
	interval time.Duration
	log      *slog.Logger
	topics   map[string]bool

	// Poll loop only.
	last time.Time
	// busy holds a token while a DeleteRecords runs; its goroutine takes it
	// out when done.
	busy chan struct{}
}

func newPurger(admin *kafka.AdminClient, topics map[string]bool, interval time.Duration, log *slog.Logger) *purger {
	return &purger{admin: admin, interval: interval, log: log, topics: topics, busy: make(chan struct{}, 1)}
}

// afterCommit purges, at most once per interval, the repartition partitions
// among committed (the committed positions of owned partitions). Poll loop.
func (p *purger) afterCommit(ctx context.Context, now time.Time, committed map[partitionKey]int64) {
	if p == nil || len(p.topics) == 0 || now.Sub(p.last) < p.interval {
		return
	}
	var parts []kafka.TopicPartition
	for tp, off := range committed {
		if p.topics[tp.Topic] && off > 0 {
			topic := tp.Topic
			parts = append(parts, kafka.TopicPartition{Topic: &topic, Partition: tp.Partition, Offset: kafka.Offset(off)})
		}
	}
	if len(parts) == 0 {
		return
	}
	select {
	case p.busy <- struct{}{}:
	default:
		return // the previous purge still runs
	}
	p.last = now
	go func() {
		defer func() { <-p.busy }()
		dctx, cancel := context.WithTimeout(ctx, p.interval)
		defer cancel()
		res, err := p.admin.DeleteRecords(dctx, parts)
		if err != nil {
			p.log.Warn("repartition purge failed; the next one covers it", "err", err)
			return
		}
		for _, r := range res.DeleteRecordsResults {
			if r.TopicPartition.Error != nil {
				p.log.Warn("repartition purge failed for a partition", "topic", *r.TopicPartition.Topic,
					"partition", r.TopicPartition.Partition, "err", r.TopicPartition.Error)
			}
		}
	}()
}

// wait waits for a purge in flight (at shutdown, before the admin client closes).
func (p *purger) wait() {
	if p == nil {
		return
	}
	p.busy <- struct{}{}
	<-p.busy
}
