// Package serde turns record keys and values into bytes and back.
//
// A Serde is bound to one side of a record (key or value) when it is built, so
// that serdes which depend on the side, such as Avro with its `<topic>-key` and
// `<topic>-value` subjects, need no extra argument on the hot path. Source and
// sink nodes are the only callers.
//
// Errors returned by Deserialize are deserialization errors: the runner hands
// the record to the topology's error policy (dead-letter, skip or fail); they
// never panic.
package serde

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// Serde converts between a Go value and the bytes of a record key or value.
//
// A nil value serializes to nil bytes (a tombstone for compacted topics) and
// nil bytes deserialize to a nil value, for every serde in this package.
type Serde interface {
	// Serialize encodes v for the given topic.
	Serialize(topic string, v any) ([]byte, error)
	// Deserialize decodes b read from the given topic.
	Deserialize(topic string, b []byte) (any, error)
}

// Preparer is implemented by serdes that must talk to something before the
// first record is written, such as checking a sink schema against the schema
// registry. The runner calls Prepare for every sink serde at startup and
// refuses to start when it fails.
type Preparer interface {
	Prepare(ctx context.Context, topic string) error
}

// ErrType is wrapped by Serialize when the value has a Go type the serde does
// not encode.
var ErrType = errors.New("serde: unsupported value type")

// String encodes Go strings as UTF-8. It also accepts []byte and fmt.Stringer.
type String struct{}

// Bytes passes []byte through unchanged (a string is accepted too).
type Bytes struct{}

// Int64 encodes integers as 8 big-endian bytes, as Kafka's LongSerializer does.
type Int64 struct{}

// JSON encodes any value with encoding/json and decodes into map[string]any,
// []any, float64, string, bool or nil.
type JSON struct{}

// Serialize implements Serde.
func (String) Serialize(topic string, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case string:
		return []byte(x), nil
	case []byte:
		return x, nil
	case fmt.Stringer:
		return []byte(x.String()), nil
	}
	return nil, fmt.Errorf("%w: string serde got %T", ErrType, v)
}

// Deserialize implements Serde.
func (String) Deserialize(topic string, b []byte) (any, error) {
	if b == nil {
		return nil, nil
	}
	return string(b), nil
}

// Serialize implements Serde.
func (Bytes) Serialize(topic string, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case []byte:
		return x, nil
	case string:
		return []byte(x), nil
	}
	return nil, fmt.Errorf("%w: bytes serde got %T", ErrType, v)
}

// Deserialize implements Serde.
func (Bytes) Deserialize(topic string, b []byte) (any, error) {
	if b == nil {
		return nil, nil
	}
	return b, nil
}

// Serialize implements Serde.
func (Int64) Serialize(topic string, v any) ([]byte, error) {
	var n int64
	switch x := v.(type) {
	case nil:
		return nil, nil
	case int64:
		n = x
	case int:
		n = int64(x)
	case int32:
		n = int64(x)
	default:
		return nil, fmt.Errorf("%w: int64 serde got %T", ErrType, v)
	}
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), uint64(n)), nil
}

// Deserialize implements Serde.
func (Int64) Deserialize(topic string, b []byte) (any, error) {
	if b == nil {
		return nil, nil
	}
	if len(b) != 8 {
		return nil, fmt.Errorf("serde: int64 needs 8 bytes, got %d", len(b))
	}
	return int64(binary.BigEndian.Uint64(b)), nil
}

// Serialize implements Serde.
func (JSON) Serialize(topic string, v any) ([]byte, error) {
	if v == nil {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("serde: json: %w", err)
	}
	return b, nil
}

// Deserialize implements Serde.
func (JSON) Deserialize(topic string, b []byte) (any, error) {
	if b == nil {
		return nil, nil
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("serde: json: %w", err)
	}
	return v, nil
}

// DecimalString encodes integers as their UTF-8 decimal text ("42"), the
// format the verification workload uses. It decodes to int64.
type DecimalString struct{}

// Serialize implements Serde.
func (DecimalString) Serialize(topic string, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case int64:
		return strconv.AppendInt(nil, x, 10), nil
	case int:
		return strconv.AppendInt(nil, int64(x), 10), nil
	}
	return nil, fmt.Errorf("%w: decimal serde got %T", ErrType, v)
}

// Deserialize implements Serde.
func (DecimalString) Deserialize(topic string, b []byte) (any, error) {
	if b == nil {
		return nil, nil
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("serde: decimal: %w", err)
	}
	return n, nil
}
