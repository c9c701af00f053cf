package topology

import (
	"fmt"

	"github.com/eos-runner/eos-runner/serde"
)

// GlobalTable is a table every instance holds whole, Kafka Streams'
// GlobalKTable: all partitions of its topic, restored before any task
// processes a record and kept current in the background by each instance,
// readable by key from every task. It has no tasks and no changelog (its
// topic is its changelog); it takes part in no sub-topology, so a stream can
// join it without being co-partitioned with it. Its updates are not part of
// the tasks' transactions: a join reads it as of the moment the record is
// processed, as in Kafka Streams.
type GlobalTable struct {
	store string
}

// StoreName is the name of the store holding the global table.
func (g *GlobalTable) StoreName() string { return g.store }

// GlobalTable reads topic as a global table (KS's
// StreamsBuilder.globalTable): each record is the new value of its key, a
// nil value deletes it, a nil key or a record the serdes cannot read is
// skipped. The store is named name (generated when empty); its values carry
// their record's timestamp, as a table's do. A timestamp extractor in c is
// not used: a global table keeps the record timestamps.
func (b *Builder) GlobalTable(topic string, c Consumed, name string) *GlobalTable {
	if name == "" {
		name = fmt.Sprintf("%s-STATE-STORE-%010d", topic, b.seq)
		b.seq++
	}
	if topic == "" {
		b.errorf("global table %q: no topic", name)
	}
	if c.Key == nil || c.Value == nil {
		b.errorf("global table %q: missing key or value serde", name)
	}
	for _, spec := range b.stores {
		if spec.SourceTopic == topic && topic != "" {
			b.errorf("global table %q: topic %q is already read as table %q", name, topic, spec.Name)
		}
	}
	b.AddStore(StoreSpec{Name: name, KeySerde: c.Key, ValueSerde: serde.Timestamped{Inner: c.Value}, SourceTopic: topic, Global: true})
	return &GlobalTable{store: name}
}

// JoinGlobalTable joins each stream record with the global table's current
// value under the key keyOf(key, value) returns (KS's
// KStream.join(GlobalKTable, KeyValueMapper, ValueJoinerWithKey)): a record
// whose table key is absent, or nil, produces nothing; records with a nil
// value are dropped (counted). The result has the stream record's key and
// timestamp. The stream is never repartitioned: every instance holds the
// whole table.
func (s *Stream) JoinGlobalTable(g *GlobalTable, keyOf func(key, value any) any, joiner ValueJoiner, opts ...Option) *Stream {
	return s.joinGlobal("JOIN", g, infallible(keyOf), joiner, false, opts)
}

// LeftJoinGlobalTable is JoinGlobalTable that also emits the records whose
// table key is absent from the table, joined with nil (KS's
// KStream.leftJoin(GlobalKTable, ...)). A record whose table key is nil is
// dropped (counted), unless the record's own key is nil too (KIP-962: it
// joins with nil), as in Kafka Streams.
func (s *Stream) LeftJoinGlobalTable(g *GlobalTable, keyOf func(key, value any) any, joiner ValueJoiner, opts ...Option) *Stream {
	return s.joinGlobal("LEFTJOIN", g, infallible(keyOf), joiner, true, opts)
}

func (s *Stream) joinGlobal(prefix string, g *GlobalTable, keyOf func(key, value any) (any, error), joiner ValueJoiner, left bool, opts []Option) *Stream {
	if g == nil || keyOf == nil || joiner == nil {
		s.b.errorf("%s after %q: nil global table, key selector or joiner", prefix, s.node.Name)
		return s
	}
	view := storeView(g.store, true)
	return s.add(prefix, func() Processor {
		return &streamTableJoinProcessor{view: view, joiner: joiner, left: left, keyOf: keyOf}
	}, false, append([]Option{WithStores(g.store)}, opts...))
}
