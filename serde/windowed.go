package serde

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"
)

// Window is a time interval a windowed aggregation groups records into,
// Kafka Streams' kstream.Window. Times have millisecond precision, as Kafka
// record timestamps do.
//
// Whether End belongs to the window depends on the window type, as in Kafka
// Streams: a time window (tumbling, hopping, and the windows sliding
// aggregations produce) is [Start, End) for tumbling and hopping windows and
// [Start, End] for sliding windows; a session window is [Start, End], and a
// session of a single record has Start == End.
type Window struct {
	Start, End time.Time
}

// String renders the window as [startMs,endMs] in epoch milliseconds.
func (w Window) String() string {
	return fmt.Sprintf("[%d,%d]", w.Start.UnixMilli(), w.End.UnixMilli())
}

// Windowed is the key of a windowed aggregation's results: the record key and
// the window it was aggregated in (Kafka Streams' kstream.Windowed).
type Windowed struct {
	Key    any
	Window Window
}

// String renders the key as key@startMs/endMs, as Kafka Streams' Windowed does.
func (w Windowed) String() string {
	return fmt.Sprintf("%v@%d/%d", w.Key, w.Window.Start.UnixMilli(), w.Window.End.UnixMilli())
}

// TimeWindowed encodes a Windowed key of a time window (tumbling, hopping or
// sliding) as Kafka Streams' TimeWindowedSerializer does: the inner key's
// bytes followed by the window start in epoch milliseconds, 8 bytes big
// endian. The end is not written; deserializing computes it as start + Size,
// as TimeWindowedDeserializer does (an overflowing end is capped at the
// largest millisecond, as KS's WindowKeySchema.timeWindowForSize does), so
// Size must be the window size (the time difference for sliding windows).
// The largest Duration (math.MaxInt64) stands for Kafka Streams' size
// Long.MAX_VALUE, the default of WindowedSerdes.TimeWindowedSerde: every end
// is then the largest millisecond.
//
// On-wire format shared with Java consumers: never change it.
type TimeWindowed struct {
	Inner Serde
	Size  time.Duration
}

// SessionWindowed encodes a Windowed key of a session window as Kafka
// Streams' SessionWindowedSerializer does (SessionKeySchema.toBinary): the
// inner key's bytes, then the window end, then the window start, each in
// epoch milliseconds, 8 bytes big endian.
//
// On-wire format shared with Java consumers: never change it.
type SessionWindowed struct {
	Inner Serde
}

const tsLen = 8

// Serialize implements Serde. It accepts a Windowed or a *Windowed.
func (s TimeWindowed) Serialize(topic string, v any) ([]byte, error) {
	w, ok, err := asWindowed("time-windowed", v)
	if !ok || err != nil {
		return nil, err
	}
	kb, err := s.Inner.Serialize(topic, w.Key)
	if err != nil {
		return nil, fmt.Errorf("serde: time-windowed inner key: %w", err)
	}
	out := make([]byte, 0, len(kb)+tsLen)
	out = append(out, kb...)
	return binary.BigEndian.AppendUint64(out, uint64(w.Window.Start.UnixMilli())), nil
}

// Deserialize implements Serde. Empty bytes decode to nil, as in Kafka
// Streams' WindowKeySchema.from.
func (s TimeWindowed) Deserialize(topic string, b []byte) (any, error) {
	if len(b) == 0 {
		return nil, nil
	}
	if len(b) < tsLen {
		return nil, fmt.Errorf("serde: time-windowed key needs at least %d bytes, got %d", tsLen, len(b))
	}
	if s.Size <= 0 {
		return nil, fmt.Errorf("serde: time-windowed deserializer needs the window size (Size), got %v", s.Size)
	}
	n := len(b) - tsLen
	k, err := s.Inner.Deserialize(topic, b[:n:n])
	if err != nil {
		return nil, fmt.Errorf("serde: time-windowed inner key: %w", err)
	}
	start := int64(binary.BigEndian.Uint64(b[n:]))
	end := start + s.Size.Milliseconds()
	if s.Size == math.MaxInt64 || end < start { // overflow: KS caps the end at Long.MAX_VALUE
		end = maxMillis
	}
	return Windowed{Key: k, Window: Window{Start: millis(start), End: millis(end)}}, nil
}

// Serialize implements Serde. It accepts a Windowed or a *Windowed.
func (s SessionWindowed) Serialize(topic string, v any) ([]byte, error) {
	w, ok, err := asWindowed("session-windowed", v)
	if !ok || err != nil {
		return nil, err
	}
	kb, err := s.Inner.Serialize(topic, w.Key)
	if err != nil {
		return nil, fmt.Errorf("serde: session-windowed inner key: %w", err)
	}
	out := make([]byte, 0, len(kb)+2*tsLen)
	out = append(out, kb...)
	out = binary.BigEndian.AppendUint64(out, uint64(w.Window.End.UnixMilli()))
	return binary.BigEndian.AppendUint64(out, uint64(w.Window.Start.UnixMilli())), nil
}

// Deserialize implements Serde. Empty bytes decode to nil, as in Kafka
// Streams' SessionKeySchema.from.
func (s SessionWindowed) Deserialize(topic string, b []byte) (any, error) {
	if len(b) == 0 {
		return nil, nil
	}
	if len(b) < 2*tsLen {
		return nil, fmt.Errorf("serde: session-windowed key needs at least %d bytes, got %d", 2*tsLen, len(b))
	}
	n := len(b) - 2*tsLen
	k, err := s.Inner.Deserialize(topic, b[:n:n])
	if err != nil {
		return nil, fmt.Errorf("serde: session-windowed inner key: %w", err)
	}
	end := int64(binary.BigEndian.Uint64(b[n:]))
	start := int64(binary.BigEndian.Uint64(b[n+tsLen:]))
	return Windowed{Key: k, Window: Window{Start: millis(start), End: millis(end)}}, nil
}

// asWindowed returns v as a Windowed; ok is false for nil (nil bytes).
func asWindowed(what string, v any) (Windowed, bool, error) {
	switch x := v.(type) {
	case nil:
		return Windowed{}, false, nil
	case Windowed:
		return x, true, nil
	case *Windowed:
		if x == nil {
			return Windowed{}, false, nil
		}
		return *x, true, nil
	}
	return Windowed{}, false, fmt.Errorf("%w: %s serde got %T", ErrType, what, v)
}

const maxMillis = math.MaxInt64

// millis is the UTC time of an epoch-millisecond timestamp.
func millis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }
