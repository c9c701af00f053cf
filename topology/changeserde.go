package topology

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/eos-runner/eos-runner/serde"
)

// changeSerde writes a table change (both of its values) to a repartition
// topic and reads it back: the values of a grouped table's repartition topic
// (Table.GroupBy), each value in the inner serde. The layout is Kafka
// Streams' ChangedSerializer's, so the bytes mean the same to both:
//
//	old only:  old bytes | 0x00
//	new only:  new bytes | 0x01
//	both:      varint(len(new bytes)) | new bytes | old bytes | 0x02
//
// The last byte is the encoding flag; the varint is zig-zag encoded, as
// Kafka's ByteUtils.writeVarint (and Go's binary.AppendVarint) write it. A
// change with neither value is an error, as in Kafka Streams (the grouping
// node never forwards one). Flags 3 to 5, which Kafka Streams reads but
// does not write (a trailing is-latest byte, for versioned tables), are
// refused.
//
// On-the-wire format of an internal topic: a record written by one version
// must be readable by the next, so never change it.
type changeSerde struct {
	inner serde.Serde
}

const (
	changeOldOnly byte = 0
	changeNewOnly byte = 1
	changeBoth    byte = 2
)

var errChangeEncoding = errors.New("change serde: malformed change")

// Serialize implements serde.Serde: v must be a change.
func (s changeSerde) Serialize(topic string, v any) ([]byte, error) {
	c, ok := v.(change)
	if !ok {
		return nil, fmt.Errorf("%w: change serde got %T", serde.ErrType, v)
	}
	enc := func(x any) ([]byte, error) { return s.inner.Serialize(topic, x) }
	switch {
	case c.New != nil && c.Old != nil:
		nb, err := enc(c.New)
		if err != nil {
			return nil, err
		}
		ob, err := enc(c.Old)
		if err != nil {
			return nil, err
		}
		out := binary.AppendVarint(make([]byte, 0, binary.MaxVarintLen32+len(nb)+len(ob)+1), int64(len(nb)))
		out = append(append(out, nb...), ob...)
		return append(out, changeBoth), nil
	case c.New != nil:
		nb, err := enc(c.New)
		if err != nil {
			return nil, err
		}
		return append(append(make([]byte, 0, len(nb)+1), nb...), changeNewOnly), nil
	case c.Old != nil:
		ob, err := enc(c.Old)
		if err != nil {
			return nil, err
		}
		return append(append(make([]byte, 0, len(ob)+1), ob...), changeOldOnly), nil
	}
	return nil, fmt.Errorf("change serde: a change with neither a new nor an old value")
}

// Deserialize implements serde.Serde: it returns a change.
func (s changeSerde) Deserialize(topic string, b []byte) (any, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: empty record value", errChangeEncoding)
	}
	body := b[:len(b)-1] // non-nil even when empty: an empty value is a value
	var newB, oldB []byte
	switch flag := b[len(b)-1]; flag {
	case changeOldOnly:
		oldB = body
	case changeNewOnly:
		newB = body
	case changeBoth:
		n, w := binary.Varint(body)
		if w <= 0 || n < 0 || n > int64(len(body)-w) {
			return nil, fmt.Errorf("%w: new value length %d does not fit in %d bytes", errChangeEncoding, n, len(body))
		}
		newB, oldB = body[w:w+int(n)], body[w+int(n):]
	default:
		return nil, fmt.Errorf("%w: unknown encoding flag %d", errChangeEncoding, flag)
	}
	var c change
	var err error
	if newB != nil {
		if c.New, err = s.inner.Deserialize(topic, newB); err != nil {
			return nil, err
		}
	}
	if oldB != nil {
		if c.Old, err = s.inner.Deserialize(topic, oldB); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Prepare implements serde.Preparer for an inner serde that needs it (an
// Avro serde checks and registers the repartition topic's schema).
func (s changeSerde) Prepare(ctx context.Context, topic string) error {
	if p, ok := s.inner.(serde.Preparer); ok {
		return p.Prepare(ctx, topic)
	}
	return nil
}
