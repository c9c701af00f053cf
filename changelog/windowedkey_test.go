package changelog

import (
	"bytes"
	"errors"
	"math"
	"testing"
	"time"
)

// TestWindowedKeyLayouts pins the changelog keys to Kafka Streams' byte
// layouts: key | start for windows, key | end | start for sessions,
// big-endian two's complement.
func TestWindowedKeyLayouts(t *testing.T) {
	if got, want := EncodeWindowKey([]byte("k"), 0x0102), []byte{'k', 0, 0, 0, 0, 0, 0, 1, 2}; !bytes.Equal(got, want) {
		t.Errorf("EncodeWindowKey = %x, want %x", got, want)
	}
	if got, want := EncodeWindowKey(nil, -1), bytes.Repeat([]byte{0xff}, 8); !bytes.Equal(got, want) {
		t.Errorf("EncodeWindowKey(nil, -1) = %x, want %x", got, want)
	}
	if got, want := EncodeSessionKey([]byte("k"), 1, 2), []byte{'k', 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1}; !bytes.Equal(got, want) {
		t.Errorf("EncodeSessionKey = %x, want %x (end before start)", got, want)
	}
	for _, tt := range []struct {
		key   string
		start int64
	}{{"", 0}, {"k", -5}, {"key\x00with\xffbytes", math.MaxInt64}, {"x", math.MinInt64}} {
		k, start, err := DecodeWindowKey(EncodeWindowKey([]byte(tt.key), tt.start))
		if err != nil || string(k) != tt.key || start != tt.start {
			t.Errorf("window round trip of %q@%d = %q@%d, %v", tt.key, tt.start, k, start, err)
		}
		k, s, e, err := DecodeSessionKey(EncodeSessionKey([]byte(tt.key), tt.start, tt.start))
		if err != nil || string(k) != tt.key || s != tt.start || e != tt.start {
			t.Errorf("session round trip of %q@%d = %q@%d-%d, %v", tt.key, tt.start, k, s, e, err)
		}
	}
	if _, _, err := DecodeWindowKey([]byte("short")); !errors.Is(err, ErrBadWindowedKey) {
		t.Errorf("DecodeWindowKey(short) = %v", err)
	}
	if _, _, _, err := DecodeSessionKey(EncodeWindowKey(nil, 1)); !errors.Is(err, ErrBadWindowedKey) {
		t.Errorf("DecodeSessionKey(short) = %v", err)
	}
	if _, _, _, err := DecodeSessionKey(EncodeSessionKey([]byte("k"), 5, 4)); !errors.Is(err, ErrBadWindowedKey) {
		t.Errorf("DecodeSessionKey(end before start) = %v", err)
	}
	// The returned key is capped: appending to it never writes over the times.
	b := EncodeWindowKey([]byte("k"), 7)
	k, _, _ := DecodeWindowKey(b)
	_ = append(k, 'x')
	if _, start, _ := DecodeWindowKey(b); start != 7 {
		t.Errorf("appending to a decoded key changed the encoding")
	}
}

// TestSegmentedKeyEncodingIsStable pins the on-disk layout of window and
// session store partitions (keys.go): if it fails, existing state
// directories become unreadable.
func TestSegmentedKeyEncodingIsStable(t *testing.T) {
	db := openTest(t, "")
	w, err := db.WindowStore("ab", 1, WindowOptions{Retention: time.Second, SegmentInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	s, err := db.SessionStore("ab", 1, SessionOptions{Retention: time.Second, SegmentInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	sp := []byte{0x01, 0x02, 'a', 'b', 0, 0, 0, 1}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	wk, wt := w.windowKeys([]byte("k"), 25)
	sk, st := s.sessionKeys([]byte("k"), -1, 25)
	for _, tt := range []struct {
		name      string
		got, want []byte
	}{
		{"window by-key", wk, cat(sp, []byte{0x01}, []byte{0x80, 0, 0, 0, 0, 0, 0, 2}, []byte{1, 'k'}, []byte{0x80, 0, 0, 0, 0, 0, 0, 25})},
		{"window by-time", wt, cat(sp, []byte{0x02}, []byte{0x80, 0, 0, 0, 0, 0, 0, 25}, []byte("k"))},
		{"session by-key", sk, cat(sp, []byte{0x01}, []byte{0x80, 0, 0, 0, 0, 0, 0, 2}, []byte{1, 'k'}, []byte{0x80, 0, 0, 0, 0, 0, 0, 25},
			[]byte{0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})},
		{"session by-time", st, cat(sp, []byte{0x02}, []byte{0x80, 0, 0, 0, 0, 0, 0, 25}, []byte{0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, []byte("k"))},
		{"layout key", w.g.layoutKey, cat(sp, []byte{0x00})},
		{"window layout", w.g.layout, []byte{0x01, 0, 0, 0, 0, 0, 0, 0, 10}},
		{"session layout", s.g.layout, []byte{0x02, 0, 0, 0, 0, 0, 0, 0, 10}},
	} {
		if !bytes.Equal(tt.got, tt.want) {
			t.Errorf("%s = %x, want %x", tt.name, tt.got, tt.want)
		}
	}
	if w.g.segment(-1) != -1 || w.g.segment(-10) != -1 || w.g.segment(-11) != -2 || w.g.segment(9) != 0 {
		t.Error("segment is not floorDiv(t, interval)")
	}
}
