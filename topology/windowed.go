package topology

import (
	"time"

	"github.com/eos-runner/eos-runner/serde"
)

// Window is the interval of a windowed result (Kafka Streams' kstream.Window):
// [Start, End) for tumbling and hopping windows, [Start, End] for sliding and
// session windows. It is defined in package serde, which encodes it (serde
// cannot import topology), and named here for the DSL's callers.
type Window = serde.Window

// Windowed is the key of a windowed aggregation's results: the record key and
// its window (Kafka Streams' kstream.Windowed). Write it to a topic with
// serde.TimeWindowed (time and sliding windows) or serde.SessionWindowed,
// whose bytes Java consumers read with Kafka Streams' WindowedSerdes.
type Windowed = serde.Windowed

// ValueAndTimestamp is an aggregate with the event time it carries (Kafka
// Streams' ValueAndTimestamp): the entries of a time or sliding window store
// and of an emit-final buffer.
type ValueAndTimestamp = serde.ValueAndTimestamp

// Millisecond time: Kafka timestamps and Kafka Streams' window arithmetic are
// in epoch milliseconds, so the window logic converts at its edges only.
func toMillis(t time.Time) int64 { return t.UnixMilli() }

func fromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }
