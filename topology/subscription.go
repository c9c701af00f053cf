package topology

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/spaolacci/murmur3"

	"github.com/eos-runner/eos-runner/serde"
)

// The foreign-key join's wire formats: the values of its subscription and
// response topics and the keys of its subscription store (Kafka Streams'
// SubscriptionWrapper, SubscriptionResponseWrapper and CombinedKeySchema).
// Only this package writes and reads them, so the layouts are our own, not
// Kafka Streams' bytes. They are on-disk formats all the same (the topics
// and the store's changelog outlive a deploy): never change a layout
// without a new version byte that the reader still accepts.
//
// Subscription (value of `<app>-<name>-subscription-registration-topic`,
// keyed by the foreign key):
//
//	byte 0        version, 0
//	byte 1        instruction (fkInstruction)
//	byte 2        flags: bit 0 set = hash present (absent: the left value was deleted)
//	bytes 3..18   hash, if present: h1 then h2, 8 bytes big endian each
//	rest          the left primary key, serialized by the left key serde
//
// Response (value of `<app>-<name>-subscription-response-topic`, keyed by
// the left primary key):
//
//	byte 0        version, 0
//	byte 1        flags: bit 0 = hash present, bit 1 = foreign value present
//	bytes 2..17   hash, if present, as above
//	rest          the right (foreign) value, serialized by the right value
//	              serde, if present (present and empty differ: bit 1)
//
// Subscription store key (`<name>-subscription-store`):
//
//	bytes 0..3    length of the foreign key bytes, 4 bytes big endian
//	              (never past 2^31-1: a record is far smaller)
//	then          the foreign key bytes, then the primary key bytes
//
// The length prefix makes a scan of one foreign key's subscribers exact:
// the keys with foreign key F are exactly those starting with len(F)|F,
// and no other foreign key G can share that prefix (F = "a" and G = "ab"
// with primary keys "bc" and "c" would collide without it).

// fkInstruction tells the right side what to do with a subscription (KS's
// SubscriptionWrapper.Instruction).
type fkInstruction byte

const (
	// deleteKeyNoPropagate: unsubscribe, send nothing back (inner join, the
	// foreign key changed: the subscription to the new one answers).
	deleteKeyNoPropagate fkInstruction = 0
	// deleteKeyAndPropagate: unsubscribe and send back a nil foreign value
	// (the left value was deleted, or a left join's foreign key changed).
	deleteKeyAndPropagate fkInstruction = 1
	// propagateNullIfNoFKValue: subscribe and send back the foreign value,
	// nil if there is none (the foreign key changed, so any earlier result
	// must be overwritten).
	propagateNullIfNoFKValue fkInstruction = 2
	// propagateOnlyIfFKValue: subscribe and send back the foreign value
	// only if there is one (a new left key in an inner join).
	propagateOnlyIfFKValue fkInstruction = 3
)

func (i fkInstruction) String() string {
	switch i {
	case deleteKeyNoPropagate:
		return "DELETE_KEY_NO_PROPAGATE"
	case deleteKeyAndPropagate:
		return "DELETE_KEY_AND_PROPAGATE"
	case propagateNullIfNoFKValue:
		return "PROPAGATE_NULL_IF_NO_FK_VAL_AVAILABLE"
	case propagateOnlyIfFKValue:
		return "PROPAGATE_ONLY_IF_FK_VAL_AVAILABLE"
	}
	return fmt.Sprintf("instruction(%d)", byte(i))
}

// valueHash is the 128-bit murmur3 hash (x64 variant, Kafka Streams'
// Murmur3.hash128 with its seed 104729) of a left value's bytes; the zero
// valueHash with ok false stands for a deleted value (KS's null hash).
// A response is current when it carries the hash of the left value the
// left table holds when it arrives; equal values give equal hashes, and a
// 128-bit hash makes two different values that collide vanishingly rare.
type valueHash struct {
	h1, h2 uint64
	ok     bool
}

// murmur3Seed is Kafka Streams' Murmur3.DEFAULT_SEED.
const murmur3Seed = 104729

// hashBytes hashes a serialized value; nil bytes are a deleted value.
func hashBytes(b []byte) valueHash {
	if b == nil {
		return valueHash{}
	}
	h1, h2 := murmur3.Sum128WithSeed(b, murmur3Seed)
	return valueHash{h1: h1, h2: h2, ok: true}
}

const (
	wireVersion = 0
	hashLen     = 16
	flagHash    = 1 << 0
	flagForeign = 1 << 1
)

func appendHash(b []byte, h valueHash) []byte {
	if !h.ok {
		return b
	}
	b = binary.BigEndian.AppendUint64(b, h.h1)
	return binary.BigEndian.AppendUint64(b, h.h2)
}

func readHash(b []byte) (valueHash, []byte, error) {
	if len(b) < hashLen {
		return valueHash{}, nil, fmt.Errorf("hash needs %d bytes, got %d", hashLen, len(b))
	}
	return valueHash{h1: binary.BigEndian.Uint64(b), h2: binary.BigEndian.Uint64(b[8:]), ok: true}, b[hashLen:], nil
}

// subscription is a left record's subscription to a foreign key (KS's
// SubscriptionWrapper): the hash of the left value it was sent for, what
// to do, and the left primary key's bytes.
type subscription struct {
	hash        valueHash
	instruction fkInstruction
	pk          []byte
}

// subscriptionSerde encodes subscriptions (layout above).
type subscriptionSerde struct{}

// Serialize implements serde.Serde.
func (subscriptionSerde) Serialize(_ string, v any) ([]byte, error) {
	switch s := v.(type) {
	case nil:
		return nil, nil
	case subscription:
		flags := byte(0)
		if s.hash.ok {
			flags |= flagHash
		}
		b := make([]byte, 0, 3+hashLen+len(s.pk))
		b = append(b, wireVersion, byte(s.instruction), flags)
		return append(appendHash(b, s.hash), s.pk...), nil
	}
	return nil, fmt.Errorf("%w: subscription serde got %T", serde.ErrType, v)
}

// Deserialize implements serde.Serde.
func (subscriptionSerde) Deserialize(_ string, b []byte) (any, error) {
	if b == nil {
		return nil, nil
	}
	if len(b) < 3 {
		return nil, fmt.Errorf("foreign-key subscription: %d bytes, need at least 3", len(b))
	}
	if b[0] != wireVersion {
		return nil, fmt.Errorf("foreign-key subscription: unknown version %d", b[0])
	}
	s := subscription{instruction: fkInstruction(b[1])}
	if s.instruction > propagateOnlyIfFKValue {
		return nil, fmt.Errorf("foreign-key subscription: unknown instruction %d", b[1])
	}
	rest := b[3:]
	if b[2]&flagHash != 0 {
		var err error
		if s.hash, rest, err = readHash(rest); err != nil {
			return nil, fmt.Errorf("foreign-key subscription: %w", err)
		}
	}
	s.pk = append([]byte{}, rest...)
	return s, nil
}

// response is the right side's answer to a subscription (KS's
// SubscriptionResponseWrapper): the hash the subscription carried, and
// the foreign value (nil: none).
type response struct {
	hash    valueHash
	foreign any
}

// responseSerde encodes responses (layout above); value is the right
// table's value serde.
type responseSerde struct{ value serde.Serde }

// Serialize implements serde.Serde.
func (s responseSerde) Serialize(topic string, v any) ([]byte, error) {
	switch r := v.(type) {
	case nil:
		return nil, nil
	case response:
		flags := byte(0)
		if r.hash.ok {
			flags |= flagHash
		}
		var fb []byte
		if r.foreign != nil {
			flags |= flagForeign
			var err error
			if fb, err = s.value.Serialize(topic, r.foreign); err != nil {
				return nil, fmt.Errorf("foreign-key response: foreign value: %w", err)
			}
		}
		b := make([]byte, 0, 2+hashLen+len(fb))
		b = append(b, wireVersion, flags)
		return append(appendHash(b, r.hash), fb...), nil
	}
	return nil, fmt.Errorf("%w: foreign-key response serde got %T", serde.ErrType, v)
}

// Deserialize implements serde.Serde.
func (s responseSerde) Deserialize(topic string, b []byte) (any, error) {
	if b == nil {
		return nil, nil
	}
	if len(b) < 2 {
		return nil, fmt.Errorf("foreign-key response: %d bytes, need at least 2", len(b))
	}
	if b[0] != wireVersion {
		return nil, fmt.Errorf("foreign-key response: unknown version %d", b[0])
	}
	var r response
	rest := b[2:]
	if b[1]&flagHash != 0 {
		var err error
		if r.hash, rest, err = readHash(rest); err != nil {
			return nil, fmt.Errorf("foreign-key response: %w", err)
		}
	}
	if b[1]&flagForeign != 0 {
		v, err := s.value.Deserialize(topic, append([]byte{}, rest...))
		if err != nil {
			return nil, fmt.Errorf("foreign-key response: foreign value: %w", err)
		}
		r.foreign = v
	} else if len(rest) > 0 {
		return nil, fmt.Errorf("foreign-key response: %d trailing bytes without a foreign value", len(rest))
	}
	return r, nil
}

// combinedKey is a subscription store key: the foreign key's bytes with
// their length, then the primary key's.
func combinedKey(fk, pk []byte) []byte {
	b := make([]byte, 0, 4+len(fk)+len(pk))
	b = binary.BigEndian.AppendUint32(b, uint32(len(fk)))
	return append(append(b, fk...), pk...)
}

var errCombinedKey = errors.New("foreign-key subscription store: malformed key")

// splitCombinedKey returns a subscription store key's foreign and primary
// key bytes.
func splitCombinedKey(b []byte) (fk, pk []byte, err error) {
	if len(b) < 4 {
		return nil, nil, errCombinedKey
	}
	n := binary.BigEndian.Uint32(b)
	if uint64(n) > uint64(len(b)-4) {
		return nil, nil, errCombinedKey
	}
	return b[4 : 4+n], b[4+n:], nil
}

// subscribersRange is the store key range [from, to) holding exactly the
// subscriptions to foreign key fk: from is the prefix len(fk)|fk, to the
// smallest key above every key with that prefix.
func subscribersRange(fk []byte) (from, to []byte) {
	from = combinedKey(fk, nil)
	to = append([]byte{}, from...)
	for i := len(to) - 1; i >= 0; i-- {
		if to[i] != 0xff {
			to[i]++
			return from, to[:i+1]
		}
	}
	return from, nil // unreachable: the length's first byte is below 0xff
}
