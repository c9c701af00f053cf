package topology

import (
	"bytes"
	"errors"
	"testing"

	"github.com/eos-runner/eos-runner/serde"
)

func TestChangeSerdeRoundTrip(t *testing.T) {
	s := changeSerde{inner: serde.String{}}
	for _, tc := range []struct {
		name string
		c    change
		want []byte // Kafka Streams' ChangedSerializer bytes
	}{
		{"new and old", change{New: "new", Old: "ab"}, []byte{6, 'n', 'e', 'w', 'a', 'b', 2}},
		{"nil new", change{Old: "ab"}, []byte{'a', 'b', 0}},
		{"nil old", change{New: "new"}, []byte{'n', 'e', 'w', 1}},
		{"empty values", change{New: "", Old: ""}, []byte{0, 2}},
		{"empty new only", change{New: ""}, []byte{1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := s.Serialize("t", tc.c)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b, tc.want) {
				t.Fatalf("Serialize(%#v) = %v, want %v", tc.c, b, tc.want)
			}
			got, err := s.Deserialize("t", b)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.c {
				t.Fatalf("Deserialize(%v) = %#v, want %#v", b, got, tc.c)
			}
		})
	}
}

func TestChangeSerdeLongNewValue(t *testing.T) {
	// A new value of 300 bytes needs a two-byte varint (zig-zag 600).
	s := changeSerde{inner: serde.String{}}
	c := change{New: string(bytes.Repeat([]byte{'x'}, 300)), Old: "o"}
	b, err := s.Serialize("t", c)
	if err != nil {
		t.Fatal(err)
	}
	if b[0] != 0xd8 || b[1] != 0x04 {
		t.Fatalf("length prefix %x, want d8 04", b[:2])
	}
	got, err := s.Deserialize("t", b)
	if err != nil || got != c {
		t.Fatalf("round trip: %v, %v", got, err)
	}
}

func TestChangeSerdeRejects(t *testing.T) {
	s := changeSerde{inner: serde.String{}}
	if _, err := s.Serialize("t", change{}); err == nil {
		t.Error("Serialize(change{}): no error")
	}
	if _, err := s.Serialize("t", "plain"); !errors.Is(err, serde.ErrType) {
		t.Errorf("Serialize(string): %v, want ErrType", err)
	}
	for _, b := range [][]byte{nil, {}, {'a', 3}, {'a', 5}, {20, 'a', 2}, {0x80, 2}} {
		if _, err := s.Deserialize("t", b); !errors.Is(err, errChangeEncoding) {
			t.Errorf("Deserialize(%v): %v, want errChangeEncoding", b, err)
		}
	}
}
