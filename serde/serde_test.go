package serde

import (
	"errors"
	"reflect"
	"testing"
)

type stringer struct{}

func (stringer) String() string { return "stringer" }

// TestRoundTrip checks that each simple serde encodes to the documented bytes
// and decodes them back to the documented Go value.
func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name  string
		s     Serde
		in    any
		bytes []byte
		out   any // what Deserialize returns for bytes
	}{
		{"string", String{}, "héllo", []byte("héllo"), "héllo"},
		{"string empty", String{}, "", []byte{}, ""},
		{"string from bytes", String{}, []byte("ab"), []byte("ab"), "ab"},
		{"string from Stringer", String{}, stringer{}, []byte("stringer"), "stringer"},
		{"bytes", Bytes{}, []byte{0, 1, 0xff}, []byte{0, 1, 0xff}, []byte{0, 1, 0xff}},
		{"bytes from string", Bytes{}, "ab", []byte("ab"), []byte("ab")},
		{"int64", Int64{}, int64(-2), []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe}, int64(-2)},
		{"int64 from int", Int64{}, 258, []byte{0, 0, 0, 0, 0, 0, 1, 2}, int64(258)},
		{"int64 from int32", Int64{}, int32(1), []byte{0, 0, 0, 0, 0, 0, 0, 1}, int64(1)},
		{"json object", JSON{}, map[string]any{"a": 1, "b": []any{"x", true, nil}}, []byte(`{"a":1,"b":["x",true,null]}`),
			map[string]any{"a": float64(1), "b": []any{"x", true, nil}}},
		{"json string", JSON{}, "x", []byte(`"x"`), "x"},
		{"decimal", DecimalString{}, int64(-42), []byte("-42"), int64(-42)},
		{"decimal from int", DecimalString{}, 7, []byte("7"), int64(7)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.s.Serialize("t", tc.in)
			if err != nil {
				t.Fatalf("Serialize(%#v): %v", tc.in, err)
			}
			if string(b) != string(tc.bytes) {
				t.Fatalf("Serialize(%#v) = %q, want %q", tc.in, b, tc.bytes)
			}
			got, err := tc.s.Deserialize("t", b)
			if err != nil {
				t.Fatalf("Deserialize(%q): %v", b, err)
			}
			if !reflect.DeepEqual(got, tc.out) {
				t.Fatalf("Deserialize(%q) = %#v, want %#v", b, got, tc.out)
			}
		})
	}
}

// TestNil checks the package-wide rule: nil value <-> nil bytes (tombstones).
func TestNil(t *testing.T) {
	for name, s := range map[string]Serde{
		"string": String{}, "bytes": Bytes{}, "int64": Int64{}, "json": JSON{}, "decimal": DecimalString{},
	} {
		b, err := s.Serialize("t", nil)
		if err != nil || b != nil {
			t.Errorf("%s: Serialize(nil) = %v, %v; want nil, nil", name, b, err)
		}
		v, err := s.Deserialize("t", nil)
		if err != nil || v != nil {
			t.Errorf("%s: Deserialize(nil) = %#v, %v; want nil, nil", name, v, err)
		}
	}
}

// TestTypeErrors checks that unsupported Go types wrap ErrType and encode
// nothing.
func TestTypeErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    Serde
		in   any
	}{
		{"string int", String{}, 1},
		{"string float", String{}, 1.5},
		{"bytes int", Bytes{}, 1},
		{"bytes stringer", Bytes{}, stringer{}},
		{"int64 string", Int64{}, "1"},
		{"int64 uint64", Int64{}, uint64(1)},
		{"int64 float", Int64{}, 1.0},
		{"decimal string", DecimalString{}, "1"},
		{"decimal int32", DecimalString{}, int32(1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.s.Serialize("t", tc.in)
			if !errors.Is(err, ErrType) {
				t.Fatalf("Serialize(%#v) error = %v, want ErrType", tc.in, err)
			}
			if b != nil {
				t.Fatalf("Serialize(%#v) returned bytes %q with the error", tc.in, b)
			}
		})
	}
	// JSON cannot encode channels or NaN; the error is encoding/json's, wrapped.
	for _, in := range []any{make(chan int), map[string]any{"x": func() {}}} {
		if _, err := (JSON{}).Serialize("t", in); err == nil {
			t.Errorf("JSON Serialize(%T): no error", in)
		}
	}
}

// TestBadInput checks that malformed bytes are errors, not panics or zero
// values.
func TestBadInput(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    Serde
		in   []byte
	}{
		{"int64 empty", Int64{}, []byte{}},
		{"int64 short", Int64{}, []byte{1, 2, 3}},
		{"int64 long", Int64{}, make([]byte, 9)},
		{"json truncated", JSON{}, []byte(`{"a":`)},
		{"json garbage", JSON{}, []byte{0xff, 0x00}},
		{"json empty", JSON{}, []byte{}},
		{"decimal empty", DecimalString{}, []byte{}},
		{"decimal text", DecimalString{}, []byte("forty-two")},
		{"decimal float", DecimalString{}, []byte("4.2")},
		{"decimal overflow", DecimalString{}, []byte("9223372036854775808")},
		{"decimal space", DecimalString{}, []byte(" 1")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := tc.s.Deserialize("t", tc.in)
			if err == nil {
				t.Fatalf("Deserialize(%q) = %#v, want an error", tc.in, v)
			}
		})
	}
	// Empty but non-nil bytes are a value, not a tombstone, for the text serdes.
	if v, err := (String{}).Deserialize("t", []byte{}); err != nil || v != "" {
		t.Errorf(`String Deserialize(empty) = %#v, %v; want "", nil`, v, err)
	}
	if v, err := (Bytes{}).Deserialize("t", []byte{}); err != nil || v == nil {
		t.Errorf("Bytes Deserialize(empty) = %#v, %v; want non-nil empty slice", v, err)
	}
}
