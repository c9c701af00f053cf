package topology

import (
	"fmt"
	"time"
)

// Windowed aggregation, store-independent: the step functions in
// timewindowagg.go, slidingwindowagg.go and sessionwindowagg.go fold one
// record into the aggregates held by a WindowStore or SessionStore and return
// the results to forward, exactly as Kafka Streams' KStreamWindowAggregate,
// KStreamSlidingWindowAggregate and KStreamSessionWindowAggregate do; this
// file holds what they share, including the emit-final buffer.
//
// Stream time. Each step takes the stream time st (including the record's
// own timestamp). The DSL's processor passes the larger of the task's stream
// time (ProcessorContext.StreamTime, committed with the offsets and restored
// on assignment, so a replay after a crash decides lateness exactly as the
// first attempt did) and the largest timestamp the processor has seen. Kafka
// Streams uses the processor's own observed time only, which starts afresh
// after a restart and ignores null-key records; with a single input to the
// aggregation the two agree.

// WindowResult is one record a windowed aggregation forwards: Kafka Streams'
// Record<Windowed<K>, Change<V>> with its timestamp.
type WindowResult struct {
	Key Windowed
	// Value is the window's new aggregate; nil for the tombstone of a
	// session that was merged away.
	Value any
	// Old is the aggregate before this record, which Kafka Streams forwards
	// when a downstream table operation asks for old values
	// (sendOldValues): the initializer's value for a new time window, the
	// merged session's aggregate for a tombstone, nil for a new session and
	// for every final result.
	Old any
	// Timestamp is the result's event time: the largest timestamp of the
	// window's records for time and sliding windows, the session's end for
	// session windows (as in KS).
	Timestamp time.Time
}

// aggregation is what Count, Reduce and Aggregate plug in: Kafka Streams'
// Initializer, Aggregator and (sessions only) Merger.
type aggregation struct {
	init  func() any
	add   func(key, value, agg any) (any, error)
	merge func(key, agg1, agg2 any) (any, error)
}

// asTimestamped reads a time or sliding window store entry.
func asTimestamped(store string, v any) (ValueAndTimestamp, error) {
	vt, ok := v.(ValueAndTimestamp)
	if !ok {
		return ValueAndTimestamp{}, fmt.Errorf("window store %q holds %T, want topology.ValueAndTimestamp", store, v)
	}
	return vt, nil
}

// windowOf builds a Window from milliseconds.
func windowOf(start, end int64) Window { return Window{Start: fromMillis(start), End: fromMillis(end)} }

// lateError is the error a step returns for a late record.
func lateError(ts, st int64, w Window) error {
	return &LateRecordError{Timestamp: fromMillis(ts), StreamTime: fromMillis(st), Window: w}
}

// The emit-final buffer (EmitOnWindowClose).
//
// Stored: one entry per window that has results not yet emitted, in a window
// store keyed by (the Windowed key, the window's end), holding the window's
// latest aggregate and timestamp (ValueAndTimestamp). Every update a step
// returns is written there (a tombstone deletes); once stream time closes a
// window its entry is forwarded and deleted in the same transaction, so each
// closed window is emitted exactly once across crashes and rebalances: either
// the output and the deletion commit together or neither does. Kafka Streams
// instead scans the aggregation's own store between the last and the current
// close time, keeping the last close time in processor metadata committed
// with the offsets (AbstractKStreamTimeWindowAggregateProcessor,
// KStreamSessionWindowAggregate), and throttles the scan by wall-clock time;
// the buffer needs no metadata, emits on every record (so output does not
// depend on the wall clock) and costs one more write per update.

// bufferUpdates records the pending results of ups.
func bufferUpdates(buf WindowStore, ups []WindowResult) error {
	for _, u := range ups {
		var v any
		if u.Value != nil {
			v = ValueAndTimestamp{Value: u.Value, Timestamp: u.Timestamp}
		}
		if err := buf.Put(u.Key, u.Key.Window.End, v); err != nil {
			return err
		}
	}
	return nil
}

// emitClosed removes and returns the pending results of every window ending
// in [from, closedThrough] (epoch milliseconds), by ascending end, then key
// order. Nothing has closed while closedThrough is negative.
//
// The caller passes the lowest end that may still be pending: the buffer
// holds no entry ending before it (every one was emitted and deleted), so
// the scan does not walk the deleted entries of every window ever closed,
// which would make each record cost as much as the history.
func emitClosed(buf WindowStore, from, closedThrough int64) ([]WindowResult, error) {
	if closedThrough < 0 || closedThrough < from {
		return nil, nil
	}
	var out []WindowResult
	err := buf.FetchAll(fromMillis(max(from, 0)), fromMillis(closedThrough), func(key any, _ time.Time, v any) error {
		wk, ok := key.(Windowed)
		if !ok {
			return fmt.Errorf("emit-final buffer %q holds key %T, want topology.Windowed", buf.Name(), key)
		}
		vt, err := asTimestamped(buf.Name(), v)
		if err != nil {
			return err
		}
		out = append(out, WindowResult{Key: wk, Value: vt.Value, Timestamp: vt.Timestamp})
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, r := range out {
		if err := buf.Put(r.Key, r.Key.Window.End, nil); err != nil {
			return nil, err
		}
	}
	return out, nil
}
