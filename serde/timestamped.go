package serde

import (
	"encoding/binary"
	"fmt"
	"time"
)

// ValueAndTimestamp is a value with the timestamp of the record that last
// changed it, Kafka Streams' state.ValueAndTimestamp. Window stores of
// windowed aggregations hold these: the timestamp becomes the event time of
// the results they forward.
type ValueAndTimestamp struct {
	Value     any
	Timestamp time.Time
}

// Timestamped encodes a ValueAndTimestamp as Kafka Streams'
// ValueAndTimestampSerializer does: the timestamp in epoch milliseconds,
// 8 bytes big endian, then the inner value's bytes. A nil value (or a
// ValueAndTimestamp with a nil Value) encodes to nil, a tombstone.
type Timestamped struct {
	Inner Serde
}

// Serialize implements Serde. It accepts a ValueAndTimestamp or a pointer to one.
func (s Timestamped) Serialize(topic string, v any) ([]byte, error) {
	var vt ValueAndTimestamp
	switch x := v.(type) {
	case nil:
		return nil, nil
	case ValueAndTimestamp:
		vt = x
	case *ValueAndTimestamp:
		if x == nil {
			return nil, nil
		}
		vt = *x
	default:
		return nil, fmt.Errorf("%w: timestamped serde got %T", ErrType, v)
	}
	if vt.Value == nil {
		return nil, nil
	}
	vb, err := s.Inner.Serialize(topic, vt.Value)
	if err != nil {
		return nil, fmt.Errorf("serde: timestamped inner value: %w", err)
	}
	out := binary.BigEndian.AppendUint64(make([]byte, 0, tsLen+len(vb)), uint64(vt.Timestamp.UnixMilli()))
	return append(out, vb...), nil
}

// Deserialize implements Serde.
func (s Timestamped) Deserialize(topic string, b []byte) (any, error) {
	if b == nil {
		return nil, nil
	}
	if len(b) < tsLen {
		return nil, fmt.Errorf("serde: timestamped value needs at least %d bytes, got %d", tsLen, len(b))
	}
	v, err := s.Inner.Deserialize(topic, b[tsLen:])
	if err != nil {
		return nil, fmt.Errorf("serde: timestamped inner value: %w", err)
	}
	return ValueAndTimestamp{Value: v, Timestamp: millis(int64(binary.BigEndian.Uint64(b[:tsLen])))}, nil
}
