package verify

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// record is one committed record as Check sees it.
type record struct {
	offset int64
	key    string
	nilKey bool
	value  string
	// nilValue: the value is null (a tombstone), not empty.
	nilValue bool
	ts       int64 // timestamp, epoch milliseconds
}

// readCommitted reads every partition of the given topics from its log start
// up to its read_committed end (the last stable offset in e) and returns the
// committed records per partition, in offset order.
//
// Transaction markers take offsets, and aborted records are skipped, so the
// last visible record of a transactionally written partition usually sits
// below end-1; waiting for a record at end-1 would hang. The client keeps
// control records (KeepControlRecords) so that the position, the offset after
// the last record or marker fetched, is known: a partition is read when its
// position reaches its end. A partition with start >= end is read already.
//
// Progress (records read, partitions left) goes to log at most once a second.
func readCommitted(ctx context.Context, cl *kgo.Client, log *slog.Logger, counts map[string]int32, e map[topicPartition]ends) (map[topicPartition][]record, error) {
	out := map[topicPartition][]record{}
	remaining := map[topicPartition]int64{} // partition -> end offset
	assign := map[string]map[int32]kgo.Offset{}
	for topic, n := range counts {
		for p := range n {
			tp := topicPartition{topic, p}
			end := e[tp]
			if end.start >= end.lso {
				continue
			}
			remaining[tp] = end.lso
			if assign[topic] == nil {
				assign[topic] = map[int32]kgo.Offset{}
			}
			assign[topic][p] = kgo.NewOffset().At(end.start)
		}
	}
	if len(remaining) == 0 {
		return out, nil
	}
	cl.AddConsumePartitions(assign)
	defer func() {
		drop := map[string][]int32{}
		for topic, ps := range assign {
			for p := range ps {
				drop[topic] = append(drop[topic], p)
			}
		}
		cl.RemoveConsumePartitions(drop)
	}()

	var read int64
	lastLog := time.Now()
	for len(remaining) > 0 {
		if time.Since(lastLog) >= progressEvery {
			lastLog = time.Now()
			log.Info("verify check: reading", "records", read, "partitions_left", len(remaining))
		}
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("reading %d partitions not yet at their end (e.g. %s): %w", len(remaining), anyKey(remaining), err)
		}
		var ferr error
		fetches.EachError(func(topic string, p int32, err error) {
			if ferr == nil {
				ferr = fmt.Errorf("fetching %s: %w", topicPartition{topic, p}, err)
			}
		})
		if ferr != nil {
			return nil, ferr
		}
		var done map[string][]int32
		fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
			tp := topicPartition{fp.Topic, fp.Partition}
			end, ok := remaining[tp]
			if !ok {
				return // already complete; a fetch buffered before we paused it
			}
			for _, r := range fp.Records {
				// A record at or past end was decided after Check looked
				// and is not part of this check, but it proves the
				// position passed end.
				if r.Offset < end && !r.Attrs.IsControl() {
					read++
					out[tp] = append(out[tp], record{
						offset:   r.Offset,
						key:      string(r.Key),
						nilKey:   r.Key == nil,
						value:    string(r.Value),
						nilValue: r.Value == nil,
						ts:       r.Timestamp.UnixMilli(),
					})
				}
				if r.Offset+1 >= end {
					delete(remaining, tp)
					if done == nil {
						done = map[string][]int32{}
					}
					done[tp.topic] = append(done[tp.topic], tp.partition)
					break
				}
			}
		})
		if done != nil {
			cl.PauseFetchPartitions(done)
		}
	}
	return out, nil
}

func anyKey[V any](m map[topicPartition]V) topicPartition {
	for k := range m {
		return k
	}
	return topicPartition{}
}
