package processor

import (
	"context"
	"fmt"
	"maps"
	"sort"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/eos-runner/eos-runner/changelog"
	"github.com/eos-runner/eos-runner/serde"
	"github.com/eos-runner/eos-runner/topology"
)

// Source-topic stores (topology.StoreSpec.SourceTopic): the store of a table
// read from a compacted topic has no changelog of its own; the topic is its
// changelog (Kafka Streams' source-topic optimisation). What that changes,
// and the invariants it keeps:
//
//   - The store writes no changelog records (kvStore.fromSource): the input
//     record that caused a write is already in the topic.
//   - Its checkpoint is the task's committed position in the source
//     partition (task.appendCommits), written in the same Pebble commit as
//     the store's writes after the transaction that committed that position.
//     So the store never holds the effect of a record past its checkpoint,
//     as for any changelog.
//   - A restore reads the source partition from the checkpoint up to the
//     committed offset of the consumer group, never further
//     (sourceStoreSource): the records after it will be processed, and
//     restoring them too would apply them twice.
//   - A restore turns each source record into the store's own record:
//     key and value deserialized with the source's serdes and serialized
//     with the store's, the value with the record's timestamp
//     (serde.Timestamped), exactly as the table's source node writes it
//     when processing. A record the source serdes cannot read (the one the
//     error policy dead-lettered while processing) or with a nil key is
//     skipped, as processing skipped it.
//   - Only a compacted topic may serve: on a topic that deletes by time or
//     size, records still needed would be missing from a restore, so the
//     runner gives such a store a changelog of its own instead
//     (Runner.prepareTopics).

// sourceStoreSource reads a table's source partition for changelog.Restore:
// bounded by the committed offset, and converted to store records.
type sourceStoreSource struct {
	inner   changelog.Source
	until   int64 // the source partition's committed offset; -1: none
	end     int64 // the offset the restore stops at, known after Bounds
	convert func(changelog.ChangelogRecord) (changelog.ChangelogRecord, bool)
}

var _ changelog.Source = (*sourceStoreSource)(nil)

// Bounds implements changelog.Source: the source partition's bounds, capped
// at the committed offset (at the log start when nothing is committed: then
// the task processes the partition from its start, and nothing is
// restored).
func (s *sourceStoreSource) Bounds(ctx context.Context) (changelog.Bounds, error) {
	b, err := s.inner.Bounds(ctx)
	if err != nil {
		return b, err
	}
	s.end = max(s.until, b.LogStart)
	b.High = min(b.High, s.end)
	b.Stable = min(b.Stable, s.end)
	return b, nil
}

// Seek implements changelog.Source.
func (s *sourceStoreSource) Seek(ctx context.Context, offset int64) error {
	return s.inner.Seek(ctx, offset)
}

// Next implements changelog.Source: the converted records below the end,
// and a position no further than it.
func (s *sourceStoreSource) Next(ctx context.Context) ([]changelog.ChangelogRecord, int64, error) {
	recs, pos, err := s.inner.Next(ctx)
	out := recs[:0]
	for _, r := range recs {
		if r.Offset >= s.end {
			break
		}
		if c, ok := s.convert(r); ok {
			out = append(out, c)
		}
	}
	return out, min(pos, s.end), err
}

// sourceRecordConverter turns a record of a table's source topic into the
// record its source node writes to the table's store (see the invariants
// above). topic is the source topic's full name.
func sourceRecordConverter(topo *topology.Topology, spec topology.StoreSpec, topic string) (func(changelog.ChangelogRecord) (changelog.ChangelogRecord, bool), error) {
	var src *topology.Node
	for _, n := range topo.Nodes {
		if n.Kind == topology.SourceNode && !n.Internal && len(n.Topics) == 1 && n.Topics[0] == spec.SourceTopic {
			src = n
		}
	}
	if src == nil {
		return nil, fmt.Errorf("store %s: no table source reads %q", spec.Name, spec.SourceTopic)
	}
	return recordConverter(spec, src.KeySerde, src.ValueSerde, src.Timestamp, topic), nil
}

// recordConverter is sourceRecordConverter with the source's serdes and
// timestamp extractor (nil: the record's timestamp) given; a global table
// (globalstore.go) has no source node.
func recordConverter(spec topology.StoreSpec, keySerde, valueSerde serde.Serde, extract topology.TimestampExtractor,
	topic string) func(changelog.ChangelogRecord) (changelog.ChangelogRecord, bool) {
	ts := spec.ValueSerde.(serde.Timestamped)
	return func(r changelog.ChangelogRecord) (changelog.ChangelogRecord, bool) {
		k, err := keySerde.Deserialize(topic, r.Key)
		if err != nil || k == nil {
			return r, false
		}
		kb, err := spec.KeySerde.Serialize(topic, k)
		if err != nil || kb == nil {
			return r, false
		}
		out := changelog.ChangelogRecord{Key: kb, Offset: r.Offset, Timestamp: r.Timestamp}
		if r.Value == nil {
			return out, true
		}
		v, err := valueSerde.Deserialize(topic, r.Value)
		if err != nil {
			return r, false
		}
		rec := topology.Record{Key: k, Value: v, Timestamp: r.Timestamp}
		if extract != nil {
			if rec.Timestamp, err = extract(rec); err != nil {
				return r, false
			}
		}
		if v != nil {
			if out.Value, err = ts.Serialize(topic, serde.ValueAndTimestamp{Value: v, Timestamp: rec.Timestamp}); err != nil {
				return r, false
			}
		}
		return out, true
	}
}

// chooseSourceChangelogs decides, for every store of a table read from a
// topic, whether that topic can be its changelog: only if it is compacted
// (cleanup.policy=compact, without delete). For a store whose topic cannot
// serve, the runner's topology gets a copy of the store's spec without
// SourceTopic, so that the store gets a changelog of its own and writes to
// it like any store; a warning says so. Called before topics are created and
// tasks exist. A source topic that does not exist is left to prepareTopics
// to report.
func (r *Runner) chooseSourceChangelogs(ctx context.Context, admin *kafka.AdminClient, existing map[string]int) error {
	var names []string
	for _, spec := range r.topo.Stores {
		if full := topology.TopicName(r.cfg.ApplicationID, spec.SourceTopic, false); spec.SourceTopic != "" && !spec.Global && existing[full] > 0 {
			names = append(names, spec.Name)
		}
	}
	if len(names) == 0 {
		return nil
	}
	sort.Strings(names)
	res := make([]kafka.ConfigResource, len(names))
	for i, n := range names {
		res[i] = kafka.ConfigResource{Type: kafka.ResourceTopic, Name: topology.TopicName(r.cfg.ApplicationID, r.topo.Stores[n].SourceTopic, false)}
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	got, err := admin.DescribeConfigs(cctx, res)
	if err != nil {
		return fmt.Errorf("describe table source topics: %w", err)
	}
	policy := map[string]string{}
	for _, c := range got {
		if c.Error.Code() != kafka.ErrNoError {
			return fmt.Errorf("describe config of table source topic %q: %w", c.Name, c.Error)
		}
		policy[c.Name] = c.Config["cleanup.policy"].Value
	}
	topo := *r.topo
	topo.Stores = maps.Clone(r.topo.Stores)
	changed := false
	for i, n := range names {
		p := policy[res[i].Name]
		if p == "compact" {
			continue
		}
		spec := topo.Stores[n]
		spec.SourceTopic = ""
		topo.Stores[n] = spec
		changed = true
		r.log.Warn("table source topic is not compacted: the table's store gets a changelog of its own",
			"store", n, "topic", res[i].Name, "cleanup.policy", p, "changelog", topology.ChangelogTopic(r.cfg.ApplicationID, n))
	}
	if changed {
		r.topo = &topo
	}
	return nil
}
