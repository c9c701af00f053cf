package serde

import (
	"bytes"
	"encoding/hex"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

func ms(n int64) time.Time { return time.UnixMilli(n).UTC() }

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestWindowedKeyBytes pins the windowed key layouts to Kafka Streams'.
// The inputs are those of KS's own tests:
//   - streams/src/test/java/org/apache/kafka/streams/state/internals/WindowKeySchemaTest.java
//     (key "key", TimeWindow(50, 100); shouldSerializeDeserialize with window
//     size Long.MAX_VALUE decodes the end as Long.MAX_VALUE,
//     shouldSerializeDeserializeExpectedWindowSize with size 50 decodes it as 100)
//   - streams/src/test/java/org/apache/kafka/streams/state/internals/SessionKeySchemaTest.java
//     (key "key", SessionWindow(50, 100), shouldSerializeDeserialize)
//
// The bytes follow TimeWindowedSerializer (WindowKeySchema.toBinary: key,
// then 8-byte big-endian start) and SessionWindowedSerializer
// (SessionKeySchema.toBinary: key, then 8-byte end, then 8-byte start).
func TestWindowedKeyBytes(t *testing.T) {
	key := Windowed{Key: "key", Window: Window{Start: ms(50), End: ms(100)}}
	for _, tc := range []struct {
		name  string
		s     Serde
		in    Windowed
		bytes string
		out   Windowed
	}{
		{"time, size = window size", TimeWindowed{Inner: String{}, Size: 50 * time.Millisecond}, key,
			"6b6579 0000000000000032", key},
		{"time, size Long.MAX_VALUE caps the end", TimeWindowed{Inner: String{}, Size: time.Duration(math.MaxInt64)}, key,
			"6b6579 0000000000000032", Windowed{Key: "key", Window: Window{Start: ms(50), End: ms(math.MaxInt64)}}},
		{"session", SessionWindowed{Inner: String{}}, key,
			"6b6579 0000000000000064 0000000000000032", key},
		{"session of one record", SessionWindowed{Inner: String{}}, Windowed{Key: "k", Window: Window{Start: ms(7), End: ms(7)}},
			"6b 0000000000000007 0000000000000007", Windowed{Key: "k", Window: Window{Start: ms(7), End: ms(7)}}},
		{"time, int64 key", TimeWindowed{Inner: Int64{}, Size: 10 * time.Millisecond},
			Windowed{Key: int64(10), Window: Window{Start: ms(0), End: ms(10)}},
			"000000000000000a 0000000000000000", Windowed{Key: int64(10), Window: Window{Start: ms(0), End: ms(10)}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := unhex(t, tc.bytes)
			b, err := tc.s.Serialize("t", tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b, want) {
				t.Fatalf("Serialize = %x, want %x", b, want)
			}
			got, err := tc.s.Deserialize("t", b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.out) {
				t.Fatalf("Deserialize = %v, want %v", got, tc.out)
			}
			if p, err := tc.s.Serialize("t", &tc.in); err != nil || !bytes.Equal(p, want) {
				t.Fatalf("Serialize(pointer) = %x, %v", p, err)
			}
		})
	}
}

// TestWindowedKeyNil: nil serializes to nil, and nil or empty bytes
// deserialize to nil (WindowKeySchemaTest.shouldDeserializeEmptyByteArrayToNull).
func TestWindowedKeyNil(t *testing.T) {
	for name, s := range map[string]Serde{
		"time":    TimeWindowed{Inner: String{}, Size: time.Second},
		"session": SessionWindowed{Inner: String{}},
	} {
		if b, err := s.Serialize("t", nil); b != nil || err != nil {
			t.Errorf("%s: Serialize(nil) = %q, %v", name, b, err)
		}
		for _, in := range [][]byte{nil, {}} {
			if v, err := s.Deserialize("t", in); v != nil || err != nil {
				t.Errorf("%s: Deserialize(%q) = %v, %v", name, in, v, err)
			}
		}
	}
}

func TestWindowedKeyErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		fn   func() error
		want string
	}{
		{"time: short", func() error {
			_, err := (TimeWindowed{Inner: String{}, Size: 1}).Deserialize("t", []byte{1})
			return err
		}, "at least 8"},
		{"time: no size", func() error {
			_, err := (TimeWindowed{Inner: String{}}).Deserialize("t", make([]byte, 9))
			return err
		}, "window size"},
		{"session: short", func() error {
			_, err := (SessionWindowed{Inner: String{}}).Deserialize("t", make([]byte, 15))
			return err
		}, "at least 16"},
		{"time: wrong type", func() error { _, err := (TimeWindowed{Inner: String{}, Size: 1}).Serialize("t", "x"); return err }, "unsupported value type"},
		{"session: inner fails", func() error {
			_, err := (SessionWindowed{Inner: Int64{}}).Serialize("t", Windowed{Key: "x"})
			return err
		}, "inner key"},
	} {
		err := tc.fn()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to mention %q", tc.name, err, tc.want)
		}
	}
}

// TestTimestampedBytes pins Kafka Streams' ValueAndTimestampSerializer
// layout: 8-byte big-endian timestamp, then the value
// (streams/src/main/java/org/apache/kafka/streams/state/internals/ValueAndTimestampSerializer.java).
func TestTimestampedBytes(t *testing.T) {
	s := Timestamped{Inner: String{}}
	in := ValueAndTimestamp{Value: "0+1", Timestamp: ms(258)}
	want := unhex(t, "0000000000000102 302b31")
	b, err := s.Serialize("t", in)
	if err != nil || !bytes.Equal(b, want) {
		t.Fatalf("Serialize = %x, %v; want %x", b, err, want)
	}
	got, err := s.Deserialize("t", b)
	if err != nil || !reflect.DeepEqual(got, in) {
		t.Fatalf("Deserialize = %#v, %v", got, err)
	}
	for _, tomb := range []any{nil, ValueAndTimestamp{Timestamp: ms(1)}, (*ValueAndTimestamp)(nil)} {
		if b, err := s.Serialize("t", tomb); b != nil || err != nil {
			t.Errorf("Serialize(%#v) = %x, %v; want a tombstone", tomb, b, err)
		}
	}
	if v, err := s.Deserialize("t", nil); v != nil || err != nil {
		t.Errorf("Deserialize(nil) = %v, %v", v, err)
	}
	if _, err := s.Deserialize("t", []byte{1, 2}); err == nil {
		t.Error("Deserialize(short) succeeded")
	}
}
