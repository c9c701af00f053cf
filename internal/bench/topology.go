package bench

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/eos-runner/eos-runner/serde"
	"github.com/eos-runner/eos-runner/topology"
)

// StoreCounts is the stateful topology's store; its changelog is
// `<application.id>-counts-changelog`.
const StoreCounts = "counts"

// StoreWindowed is the windowed topology's window store; its changelog is
// `<application.id>-windowed-counts-changelog`.
const StoreWindowed = "windowed-counts"

// WindowSize is the windowed topology's tumbling window.
const WindowSize = time.Minute

// WindowedOutput is the topic the windowed topology writes for input.
func WindowedOutput(input string) string { return input + "-windowed" }

// WindowedChangelogTopic is the changelog of the windowed topology's store
// under application id app.
func WindowedChangelogTopic(app string) string { return app + "-" + StoreWindowed + "-changelog" }

// DedupTTL is the dedup topology's TTL: a key seen within it, before or
// after in event time, is a duplicate.
const DedupTTL = time.Hour

// DedupOutput is the topic the dedup topology writes for input.
func DedupOutput(input string) string { return input + "-dedup" }

// StatelessOutput is the topic the stateless topology writes for input.
func StatelessOutput(input string) string { return input + "-stateless" }

// StatefulOutput is the topic the stateful topology writes for input.
func StatefulOutput(input string) string { return input + "-counts" }

// ChangelogTopic is the changelog of the stateful topology's store under
// application id app.
func ChangelogTopic(app string) string { return app + "-" + StoreCounts + "-changelog" }

// StatelessTopology is the "bench-stateless" built-in: string keys and byte
// values from input, a filter (it keeps every record the bench generates, so
// that the output matches raw copy record for record, but it runs on each),
// and a mapValues that returns a new, upper-cased copy of the value, to
// StatelessOutput(input). No store, so nothing waits for restore.
func StatelessTopology(input string) (*topology.Topology, error) {
	if input == "" {
		return nil, errors.New("bench: stateless topology: empty input topic")
	}
	b := topology.NewBuilder()
	b.Stream([]string{input}, topology.Consumed{Key: serde.String{}, Value: serde.Bytes{}}).
		Filter(func(_, v any) bool {
			b, ok := v.([]byte)
			return ok && (len(b) == 0 || b[0] != '#') // generated values never start with '#'
		}).
		MapValues(func(v any) (any, error) {
			b, ok := v.([]byte)
			if !ok {
				return nil, fmt.Errorf("bench: mapValues: want []byte, got %T", v)
			}
			return bytes.ToUpper(b), nil
		}).
		To(StatelessOutput(input), topology.Produced{Key: serde.String{}, Value: serde.Bytes{}})
	t, err := b.Build()
	if err != nil {
		return nil, fmt.Errorf("bench: stateless topology for %q: %w", input, err)
	}
	return t, nil
}

// StatefulTopology is the "bench-stateful" built-in: string keys and byte
// values from input, counted per key into store StoreCounts (int64 values;
// changelog `<application.id>-counts-changelog`, so processing of a partition
// waits for its restore), every update emitted to StatefulOutput(input) with
// the count as an 8-byte big-endian int64.
func StatefulTopology(input string) (*topology.Topology, error) {
	if input == "" {
		return nil, errors.New("bench: stateful topology: empty input topic")
	}
	b := topology.NewBuilder()
	b.Stream([]string{input}, topology.Consumed{Key: serde.String{}, Value: serde.Bytes{}}).
		GroupByKey(topology.Grouped{Key: serde.String{}}).
		Count(topology.Materialized{Name: StoreCounts, Key: serde.String{}, Value: serde.Int64{}}).
		ToStream().
		To(StatefulOutput(input), topology.Produced{Key: serde.String{}, Value: serde.Int64{}})
	t, err := b.Build()
	if err != nil {
		return nil, fmt.Errorf("bench: stateful topology for %q: %w", input, err)
	}
	return t, nil
}

// WindowedTopology is the "bench-windowed" built-in: string keys and byte
// values from input, counted per key per tumbling 1-minute window of event
// time (grace 1 minute) into window store StoreWindowed (changelog
// `<application.id>-windowed-counts-changelog`, compact,delete), every
// update emitted (EmitOnWindowUpdate: one output per input record) to
// WindowedOutput(input), keyed by Kafka Streams' time-windowed key, the
// count as an 8-byte big-endian int64.
func WindowedTopology(input string) (*topology.Topology, error) {
	if input == "" {
		return nil, errors.New("bench: windowed topology: empty input topic")
	}
	b := topology.NewBuilder()
	b.Stream([]string{input}, topology.Consumed{Key: serde.String{}, Value: serde.Bytes{}}).
		GroupByKey(topology.Grouped{Key: serde.String{}}).
		WindowedBy(topology.TimeWindows{Size: WindowSize, Grace: time.Minute}).
		Emit(topology.EmitOnWindowUpdate).
		Count(topology.Materialized{Name: StoreWindowed, Key: serde.String{}, Value: serde.Int64{}}).
		ToStream().
		To(WindowedOutput(input), topology.Produced{Key: serde.TimeWindowed{Inner: serde.String{}, Size: WindowSize}, Value: serde.Int64{}})
	t, err := b.Build()
	if err != nil {
		return nil, fmt.Errorf("bench: windowed topology for %q: %w", input, err)
	}
	return t, nil
}

// JoinTableTopic is the compacted topic the join topology reads as a table
// for input: one record per key of the workload, written before the input.
func JoinTableTopic(input string) string { return input + "-table" }

// JoinOutput is the topic the join topology writes for input.
func JoinOutput(input string) string { return input + "-joined" }

// StoreJoinTable is the join topology's table store; its changelog is its
// source topic, JoinTableTopic(input).
const StoreJoinTable = "join-table"

// JoinTopology is the "bench-join" built-in: input (string keys, byte
// values) left-joined with the table read from JoinTableTopic(input) (Kafka
// Streams' KStream-KTable join; the table's store restores from its compacted
// source topic, with no changelog of its own), each output the stream value
// followed by the table's, to JoinOutput(input). Both topics share one task
// per partition, which takes their records in timestamp order.
func JoinTopology(input string) (*topology.Topology, error) {
	if input == "" {
		return nil, errors.New("bench: join topology: empty input topic")
	}
	b := topology.NewBuilder()
	table := b.Table(JoinTableTopic(input), topology.Consumed{Key: serde.String{}, Value: serde.Bytes{}},
		topology.Materialized{Name: StoreJoinTable})
	b.Stream([]string{input}, topology.Consumed{Key: serde.String{}, Value: serde.Bytes{}}).
		LeftJoinTable(table, func(_, l, r any) (any, error) {
			out := append([]byte(nil), l.([]byte)...)
			if r != nil {
				out = append(out, r.([]byte)...)
			}
			return out, nil
		}, topology.Joined{}).
		To(JoinOutput(input), topology.Produced{Key: serde.String{}, Value: serde.Bytes{}})
	t, err := b.Build()
	if err != nil {
		return nil, fmt.Errorf("bench: join topology for %q: %w", input, err)
	}
	return t, nil
}

// DedupTopology is the "bench-dedup" built-in: string keys and byte values
// from input, deduplicated by record key with DedupTTL (Stream.Dedup with
// ByRecordKey: the keys seen live in a window store expiring by stream time,
// with a compact,delete changelog), the kept records (the first of each key
// within the TTL) written unchanged to DedupOutput(input). The bench's input
// spans seconds, so it keeps one record per distinct key and drops the rest
// as duplicates: a read of the store per record, a write per kept one.
func DedupTopology(input string) (*topology.Topology, error) {
	if input == "" {
		return nil, errors.New("bench: dedup topology: empty input topic")
	}
	b := topology.NewBuilder()
	b.Stream([]string{input}, topology.Consumed{Key: serde.String{}, Value: serde.Bytes{}}).
		Dedup(topology.ByRecordKey(), DedupTTL, topology.Named("dedup")).
		To(DedupOutput(input), topology.Produced{Key: serde.String{}, Value: serde.Bytes{}})
	t, err := b.Build()
	if err != nil {
		return nil, fmt.Errorf("bench: dedup topology for %q: %w", input, err)
	}
	return t, nil
}

// changelogTopics are the changelog topics of topo's stores under
// application id app, for cleanup after a run.
func changelogTopics(topo *topology.Topology, app string) []string {
	var topics []string
	for name := range topo.Stores {
		topics = append(topics, app+"-"+name+"-changelog")
	}
	slices.Sort(topics)
	return topics
}
