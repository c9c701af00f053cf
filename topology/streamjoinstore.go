package topology

import (
	"encoding/binary"
	"fmt"

	"github.com/eos-runner/eos-runner/serde"
)

// The stores of a stream-stream join, and why they look as they do.
//
// Side buffers (this-join-store, other-join-store). Kafka Streams keeps each
// side's records in a window store with retainDuplicates=true: every record
// is its own entry, even when several share a key and a timestamp (a seqnum
// is appended to the store key). Our WindowStore keeps one value per (key,
// window start), so an entry here is the list of that side's values with
// that key and timestamp, in arrival order (joinBufferSerde): a record
// appends to it with one Get and one Put.
//
// The design rejected: a sequence number in the store key, as KS does. It
// needs a per-store counter that survives restarts (KS's seqnum restarts at
// zero and only works because its changelog is cleanup.policy=delete, never
// compacted), and a Fetch by record key would become a prefix scan that
// WindowStore does not offer. The list costs a read-modify-write per
// duplicate and one changelog record holding the whole list, which is small
// since duplicates are rare; in exchange the store key stays KS's (key,
// start), the changelog can stay compact,delete (the latest list of a slot
// is the whole truth), and a Fetch returns the records in KS's order (by
// timestamp, then arrival) with no extra sort.
//
// Outer store (left-shared-join-store / outer-shared-join-store). Kafka
// Streams keeps the records not yet joined of left and outer joins in a
// key-value store keyed by (timestamp, side, key) with list values
// (TimestampedKeyAndJoinSide, LeftOrRightValue, ListValueStore), and scans
// all of it in key order to emit the ones whose window closed. Here it is a
// window store whose window start is the record's timestamp and whose key
// is (side, key) (outerJoinKeySerde: one byte, right 0 and left 1 as KS's
// boolean, then the key's bytes), so FetchAll's order (start, then key
// bytes) is exactly KS's iteration order. Values are lists as above, each
// element tagged with its side (outerJoinValueSerde). Its retention is
// RetainForever: an entry must stay until it is emitted or joined however
// far stream time jumps in one record, and both delete it, so it stays
// small without expiry; its changelog is compacted.

// joinBufferSerde encodes a side buffer entry, the []any of the values of
// one key at one timestamp in arrival order: for each value, a 4-byte
// big-endian length and the inner serde's bytes. An empty list is nil (no
// entry). On-disk and changelog format: do not change.
type joinBufferSerde struct{ Inner serde.Serde }

func (s joinBufferSerde) Serialize(topic string, v any) ([]byte, error) {
	if v == nil {
		return nil, nil
	}
	vs, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%w: join buffer serde got %T, want []any", serde.ErrType, v)
	}
	if len(vs) == 0 {
		return nil, nil
	}
	var out []byte
	for _, x := range vs {
		b, err := s.Inner.Serialize(topic, x)
		if err != nil {
			return nil, fmt.Errorf("join buffer value: %w", err)
		}
		out = binary.BigEndian.AppendUint32(out, uint32(len(b)))
		out = append(out, b...)
	}
	return out, nil
}

func (s joinBufferSerde) Deserialize(topic string, b []byte) (any, error) {
	if b == nil {
		return nil, nil
	}
	var out []any
	for len(b) > 0 {
		if len(b) < 4 {
			return nil, fmt.Errorf("join buffer: %d trailing bytes", len(b))
		}
		n := binary.BigEndian.Uint32(b)
		b = b[4:]
		if uint64(n) > uint64(len(b)) {
			return nil, fmt.Errorf("join buffer: value of %d bytes, %d left", n, len(b))
		}
		v, err := s.Inner.Deserialize(topic, b[:n:n])
		if err != nil {
			return nil, fmt.Errorf("join buffer value: %w", err)
		}
		out = append(out, v)
		b = b[n:]
	}
	return out, nil
}

// outerJoinKey is the outer store's key: a record key and the side it came
// from (KS's TimestampedKeyAndJoinSide without the timestamp, which is the
// window start).
type outerJoinKey struct {
	Left bool
	Key  any
}

// outerJoinKeySerde encodes an outerJoinKey as one side byte (0 right, 1
// left, as KS's BooleanSerializer) and the inner key's bytes, so that keys
// sort by side before key, as KS's (timestamp, side, key) layout does.
// On-disk and changelog format: do not change.
type outerJoinKeySerde struct{ Inner serde.Serde }

func (s outerJoinKeySerde) Serialize(topic string, v any) ([]byte, error) {
	k, ok := v.(outerJoinKey)
	if !ok {
		return nil, fmt.Errorf("%w: outer join key serde got %T", serde.ErrType, v)
	}
	kb, err := s.Inner.Serialize(topic, k.Key)
	if err != nil {
		return nil, err
	}
	side := byte(0)
	if k.Left {
		side = 1
	}
	return append([]byte{side}, kb...), nil
}

func (s outerJoinKeySerde) Deserialize(topic string, b []byte) (any, error) {
	if len(b) < 1 || b[0] > 1 {
		return nil, fmt.Errorf("outer join key: bad side in %x", b)
	}
	k, err := s.Inner.Deserialize(topic, b[1:])
	if err != nil {
		return nil, err
	}
	return outerJoinKey{Left: b[0] == 1, Key: k}, nil
}

// outerJoinValueSerde encodes an outer store entry, the []any of one side's
// values not yet joined (one key, one timestamp, arrival order), each as
// KS's LeftOrRightValue: a side byte (1 left, 0 right), then a 4-byte
// length and the side's serde's bytes. On-disk and changelog format: do not
// change.
type outerJoinValueSerde struct{ Left, Right serde.Serde }

// sideValue is one element of an outer store entry.
type sideValue struct {
	Left  bool
	Value any
}

func (s outerJoinValueSerde) Serialize(topic string, v any) ([]byte, error) {
	if v == nil {
		return nil, nil
	}
	vs, ok := v.([]sideValue)
	if !ok {
		return nil, fmt.Errorf("%w: outer join value serde got %T, want []sideValue", serde.ErrType, v)
	}
	if len(vs) == 0 {
		return nil, nil
	}
	var out []byte
	for _, x := range vs {
		inner, side := s.Right, byte(0)
		if x.Left {
			inner, side = s.Left, 1
		}
		b, err := inner.Serialize(topic, x.Value)
		if err != nil {
			return nil, fmt.Errorf("outer join value: %w", err)
		}
		out = append(out, side)
		out = binary.BigEndian.AppendUint32(out, uint32(len(b)))
		out = append(out, b...)
	}
	return out, nil
}

func (s outerJoinValueSerde) Deserialize(topic string, b []byte) (any, error) {
	if b == nil {
		return nil, nil
	}
	var out []sideValue
	for len(b) > 0 {
		if len(b) < 5 || b[0] > 1 {
			return nil, fmt.Errorf("outer join value: bad element header %x", b[:min(len(b), 5)])
		}
		left, n := b[0] == 1, binary.BigEndian.Uint32(b[1:])
		b = b[5:]
		if uint64(n) > uint64(len(b)) {
			return nil, fmt.Errorf("outer join value: value of %d bytes, %d left", n, len(b))
		}
		inner := s.Right
		if left {
			inner = s.Left
		}
		v, err := inner.Deserialize(topic, b[:n:n])
		if err != nil {
			return nil, fmt.Errorf("outer join value: %w", err)
		}
		out = append(out, sideValue{Left: left, Value: v})
		b = b[n:]
	}
	return out, nil
}
