package topology

import (
	"encoding/json"
	"fmt"
	"math"
	"time"
)

// TimestampExtractor returns a record's event time, as Kafka Streams'
// TimestampExtractor: rec holds the deserialized key and value and the
// record's own timestamp (CreateTime or LogAppendTime). It runs in the
// source node, before the record reaches any other node, so stream time,
// windows and punctuators all use what it returns. An error or a negative
// time sends the record to the error policy with class "timestamp".
type TimestampExtractor func(rec Record) (time.Time, error)

// TimestampFromField extracts event time from a field of a record's value: a
// map (as JSON and Avro values decode) whose field holds epoch milliseconds
// (any integer or float type, or a json.Number), or a string in RFC 3339. A
// missing field, a nil value or another type is an error naming the field.
// A dotted name ("meta.ts") reads a nested map.
func TimestampFromField(field string) TimestampExtractor {
	return func(rec Record) (time.Time, error) {
		v, err := lookupField(rec.Value, field)
		if err != nil {
			return time.Time{}, fmt.Errorf("timestamp %w", err)
		}
		return timeOf(field, v)
	}
}

func lookupField(value any, field string) (any, error) {
	cur := value
	start := 0
	for i := 0; i <= len(field); i++ {
		if i < len(field) && field[i] != '.' {
			continue
		}
		name := field[start:i]
		start = i + 1
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("field %q: value is %T, not a record", field, cur)
		}
		v, ok := m[name]
		if !ok || v == nil {
			return nil, fmt.Errorf("field %q: missing", field)
		}
		cur = v
	}
	return cur, nil
}

func timeOf(field string, v any) (time.Time, error) {
	var ms int64
	switch x := v.(type) {
	case int64:
		ms = x
	case int32:
		ms = int64(x)
	case int:
		ms = int64(x)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return time.Time{}, fmt.Errorf("timestamp field %q: %v is not a time", field, x)
		}
		ms = int64(x)
	case float32:
		ms = int64(x)
	case json.Number:
		n, err := x.Int64()
		if err != nil {
			return time.Time{}, fmt.Errorf("timestamp field %q: %q is not epoch milliseconds", field, x)
		}
		ms = n
	case string:
		t, err := time.Parse(time.RFC3339Nano, x)
		if err != nil {
			return time.Time{}, fmt.Errorf("timestamp field %q: %q is not RFC 3339: %w", field, x, err)
		}
		return t, nil
	case time.Time:
		return x, nil
	default:
		return time.Time{}, fmt.Errorf("timestamp field %q: a %T is not a time", field, v)
	}
	return time.UnixMilli(ms), nil
}
