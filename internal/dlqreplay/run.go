package dlqreplay

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eos-runner/eos-runner/internal/kafkasec"
	"github.com/eos-runner/eos-runner/processor"
	"github.com/eos-runner/eos-runner/topology"
)

// DefaultApplicationID is the replay's application.id when none is given:
// `<dlq>-replay`. Its group's committed offsets remember what was replayed.
func DefaultApplicationID(dlq string) string { return dlq + "-replay" }

// Entry is one committed DLQ record, with the runner's headers decoded.
type Entry struct {
	Partition int32 // in the DLQ
	Offset    int64 // in the DLQ
	Key       []byte
	Value     []byte
	Headers   []topology.Header // all of them, the runner's included
	Timestamp time.Time

	Class, Message, Node string
	SourceTopic          string
	SourcePartition      int32
	SourceOffset         int64 // -1 when the header is missing or malformed
}

func newEntry(r *kgo.Record) Entry {
	e := Entry{Partition: r.Partition, Offset: r.Offset, Key: r.Key, Value: r.Value, Timestamp: r.Timestamp, SourceOffset: -1, SourcePartition: -1}
	if len(r.Headers) > 0 {
		e.Headers = make([]topology.Header, len(r.Headers))
		for i, h := range r.Headers {
			e.Headers[i] = topology.Header{Key: h.Key, Value: h.Value}
		}
	}
	get := func(k string) string { v, _ := header(e.Headers, k); return string(v) }
	e.Class, e.Message, e.Node = get(processor.HeaderErrorClass), get(processor.HeaderErrorMessage), get(processor.HeaderErrorNode)
	e.SourceTopic = get(processor.HeaderSourceTopic)
	if p, err := strconv.ParseInt(get(processor.HeaderSourcePart), 10, 32); err == nil {
		e.SourcePartition = int32(p)
	}
	if o, err := strconv.ParseInt(get(processor.HeaderSourceOffset), 10, 64); err == nil {
		e.SourceOffset = o
	}
	return e
}

// newClient returns a kgo client for a comma-separated bootstrap list.
func newClient(brokers string, opts ...kgo.Opt) (*kgo.Client, error) {
	var seeds []string
	for _, s := range strings.Split(brokers, ",") {
		if s = strings.TrimSpace(s); s != "" {
			seeds = append(seeds, s)
		}
	}
	if len(seeds) == 0 {
		return nil, errors.New("dlq replay: no bootstrap servers")
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(seeds...)}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("dlq replay: client: %w", err)
	}
	return cl, nil
}

// Scan reads the committed records of topic dlq, read_committed, from
// from[p] (absent: the log start) up to the last stable offset each
// partition had when Scan began, and calls fn for each in partition order.
// It returns, per partition, the offset of the last record it read.
//
// It keeps the transaction markers while reading: they take offsets, so the
// last stable offset is reached on a marker, not on a record.
//
// opts are extra client options: TLS and SASL (kafkasec.FranzOpts).
func Scan(ctx context.Context, brokers, dlq string, from map[int32]int64, fn func(Entry) error, opts ...kgo.Opt) (map[int32]int64, error) {
	cl, err := newClient(brokers, opts...)
	if err != nil {
		return nil, err
	}
	adm := kadm.NewClient(cl)
	ends, err := adm.ListCommittedOffsets(ctx, dlq)
	cl.Close()
	if err != nil {
		return nil, fmt.Errorf("dlq replay: end offsets of %s: %w", dlq, err)
	}
	if err := ends.Error(); err != nil {
		return nil, fmt.Errorf("dlq replay: end offsets of %s: %w", dlq, err)
	}
	pending := map[int32]int64{}
	parts := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		start, ok := from[o.Partition]
		if !ok || start < 0 {
			start = 0
		}
		if start < o.Offset {
			pending[o.Partition] = o.Offset
			// An offset below the log start resets to the start.
			parts[o.Partition] = kgo.NewOffset().At(start)
		}
	})
	last := map[int32]int64{}
	if len(pending) == 0 {
		return last, nil
	}
	rd, err := newClient(brokers, append(slices.Clone(opts), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{dlq: parts}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())...)
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	for len(pending) > 0 {
		fs := rd.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("dlq replay: reading %s (partitions %v not at their end): %w", dlq, pending, err)
		}
		var ferr error
		fs.EachError(func(topic string, p int32, err error) {
			ferr = errors.Join(ferr, fmt.Errorf("%s[%d]: %w", topic, p, err))
		})
		if ferr != nil {
			return nil, fmt.Errorf("dlq replay: reading %s: %w", dlq, ferr)
		}
		for it := fs.RecordIter(); !it.Done(); {
			r := it.Next()
			end, ok := pending[r.Partition]
			if !ok {
				continue // read past the end snapshot
			}
			if !r.Attrs.IsControl() {
				last[r.Partition] = r.Offset
				if err := fn(newEntry(r)); err != nil {
					return nil, err
				}
			}
			if r.Offset+1 >= end {
				delete(pending, r.Partition)
			}
		}
	}
	return last, nil
}

// groupOffsets returns the committed offsets of group on topic.
func groupOffsets(ctx context.Context, adm *kadm.Client, group, topic string) (map[int32]int64, error) {
	offs, err := adm.FetchOffsets(ctx, group)
	if errors.Is(err, kerr.GroupIDNotFound) {
		return map[int32]int64{}, nil // a first run: nothing committed yet
	}
	if err != nil {
		return nil, fmt.Errorf("dlq replay: committed offsets of group %s: %w", group, err)
	}
	out := map[int32]int64{}
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic && o.Err == nil && o.At >= 0 {
			out[o.Partition] = o.At
		}
	})
	return out, nil
}

// Result counts the DLQ records one Run went through.
type Result struct {
	Replayed int // matched the filter and were written to To
	Skipped  int // did not match and were passed over (for good, under this application.id)
	// Start and Last are, per DLQ partition, the group's committed offset
	// before the run and the offset of the last record the run went through.
	Start, Last map[int32]int64
}

// Run replays cfg.DLQ into cfg.To with the runner configured by rc and
// returns once the replay's group has committed past every record the DLQ
// held when Run began (counted in Result, from a read of the DLQ from the
// group's committed offsets; records dead-lettered while Run runs may be
// replayed too but are not counted). A run with nothing to replay starts no
// runner.
//
// rc.ApplicationID defaults to DefaultApplicationID(cfg.DLQ) and
// rc.OnError to fail (a replayed record that fails stops the replay rather
// than going to another DLQ). Run needs rc.BootstrapServers to reach the
// brokers with franz-go as well, with rc.Kafka's security settings
// (security.protocol, sasl.*, ssl.*: kafkasec.FranzOpts).
func Run(ctx context.Context, cfg Config, rc processor.Config, opts ...processor.Option) (Result, error) {
	topo, err := Topology(cfg)
	if err != nil {
		return Result{}, err
	}
	if rc.ApplicationID == "" {
		rc.ApplicationID = DefaultApplicationID(cfg.DLQ)
	}
	if rc.OnError == "" {
		rc.OnError = processor.OnErrorFail
	}
	sec, err := rc.KafkaSecurity()
	if err != nil {
		return Result{}, err
	}
	kopts, err := kafkasec.FranzOpts(sec)
	if err != nil {
		return Result{}, err
	}
	cl, err := newClient(rc.BootstrapServers, kopts...)
	if err != nil {
		return Result{}, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	start, err := groupOffsets(ctx, adm, rc.ApplicationID, cfg.DLQ)
	if err != nil {
		return Result{}, err
	}
	res := Result{Start: start}
	res.Last, err = Scan(ctx, rc.BootstrapServers, cfg.DLQ, start, func(e Entry) error {
		if cfg.Match(e.Headers) {
			res.Replayed++
		} else {
			res.Skipped++
		}
		return nil
	}, kopts...)
	if err != nil {
		return res, err
	}
	if len(res.Last) == 0 {
		return res, nil
	}
	r, err := processor.New(rc, topo, opts...)
	if err != nil {
		return res, fmt.Errorf("dlq replay: %w", err)
	}
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- r.Run(rctx) }()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			if err == nil {
				err = ctx.Err()
			}
			return res, fmt.Errorf("dlq replay: the runner stopped before the replay was committed: %w", err)
		case <-tick.C:
		}
		committed, err := groupOffsets(ctx, adm, rc.ApplicationID, cfg.DLQ)
		if err != nil {
			continue // the coordinator may be moving; the runner's own errors end the loop
		}
		if caughtUp(committed, res.Last) {
			stop()
			if err := <-done; err != nil {
				return res, fmt.Errorf("dlq replay: stopping the runner: %w", err)
			}
			return res, nil
		}
	}
}

// caughtUp reports whether committed is past the last record of every
// partition: the runner commits the offset after the last record it
// processed, so committed > last means that record's output committed.
func caughtUp(committed, last map[int32]int64) bool {
	for p, off := range last {
		if committed[p] <= off {
			return false
		}
	}
	return true
}
