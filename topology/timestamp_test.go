package topology

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestTimestampFromField(t *testing.T) {
	at := time.UnixMilli(1_700_000_000_123)
	for _, c := range []struct {
		name  string
		field string
		value any
		want  time.Time
		err   string
	}{
		{"int64 millis", "ts", map[string]any{"ts": int64(1_700_000_000_123)}, at, ""},
		{"float64 millis (JSON)", "ts", map[string]any{"ts": float64(1_700_000_000_123)}, at, ""},
		{"json.Number", "ts", map[string]any{"ts": json.Number("1700000000123")}, at, ""},
		{"RFC 3339", "ts", map[string]any{"ts": "2023-11-14T22:13:20.123Z"}, at, ""},
		{"Avro timestamp-millis", "ts", map[string]any{"ts": at}, at, ""},
		{"nested", "meta.ts", map[string]any{"meta": map[string]any{"ts": int64(1_700_000_000_123)}}, at, ""},
		{"missing", "ts", map[string]any{"other": 1}, time.Time{}, `timestamp field "ts": missing`},
		{"null", "ts", map[string]any{"ts": nil}, time.Time{}, `timestamp field "ts": missing`},
		{"not a record", "ts", "a string value", time.Time{}, "not a record"},
		{"bad string", "ts", map[string]any{"ts": "yesterday"}, time.Time{}, "not RFC 3339"},
		{"bool", "ts", map[string]any{"ts": true}, time.Time{}, "a bool is not a time"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := TimestampFromField(c.field)(Record{Value: c.value})
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want one containing %q", err, c.err)
				}
				return
			}
			if err != nil || !got.Equal(c.want) {
				t.Fatalf("= %v, %v; want %v", got, err, c.want)
			}
		})
	}
}
