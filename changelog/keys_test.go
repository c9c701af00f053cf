package changelog

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

// TestKeyEncodingIsStable pins the on-disk format: if this test fails, a
// change to keys.go would make existing state directories unreadable.
func TestKeyEncodingIsStable(t *testing.T) {
	tests := []struct {
		name string
		got  []byte
		want []byte
	}{
		{"data prefix", dataPrefix("ab", 1), []byte{0x01, 0x02, 'a', 'b', 0, 0, 0, 1}},
		{"data key", dataKey(dataPrefix("ab", 258), []byte("k")), []byte{0x01, 0x02, 'a', 'b', 0, 0, 1, 2, 'k'}},
		{"checkpoint key", checkpointKey("ab", 1), []byte{0x00, 0x02, 'a', 'b', 0, 0, 0, 1}},
		{"long store name", dataPrefix(string(bytes.Repeat([]byte("s"), 200)), 0)[:3], []byte{0x01, 0xc8, 0x01}},
		{"checkpoint value", encodeCheckpoint(0x0102), []byte{0, 0, 0, 0, 0, 0, 1, 2}},
		{"checkpoint time key", checkpointTimeKey("ab", 1), []byte{0x02, 0x02, 'a', 'b', 0, 0, 0, 1}},
		{"checkpoint time value", encodeCheckpointTime(time.UnixMilli(0x0102)), []byte{0, 0, 0, 0, 0, 0, 1, 2}},
		{"format version key", formatVersionKey, []byte("\xffformat-version")},
		{"format version value", encodeFormatVersion(1), []byte{0, 0, 0, 0, 0, 0, 0, 1}},
	}
	for _, tt := range tests {
		if !bytes.Equal(tt.got, tt.want) {
			t.Errorf("%s = %x, want %x", tt.name, tt.got, tt.want)
		}
	}
	if formatVersion != 1 {
		t.Errorf("formatVersion = %d: a new version needs a migration path in Open and an update here", formatVersion)
	}
}

func TestDecodeStorePartition(t *testing.T) {
	for _, sp := range []StorePartition{{"a", 0}, {"", 7}, {"store-with-long-name", 1 << 30}, {"x", -1}} {
		for _, key := range [][]byte{dataKey(dataPrefix(sp.Store, sp.Partition), []byte("user")), checkpointKey(sp.Store, sp.Partition),
			checkpointTimeKey(sp.Store, sp.Partition)} {
			got, n, err := decodeStorePartition(key)
			if err != nil || got != sp || n != len(dataPrefix(sp.Store, sp.Partition)) {
				t.Errorf("decode %x = %v, %d, %v; want %v, %d", key, got, n, err, sp, len(dataPrefix(sp.Store, sp.Partition)))
			}
		}
	}
	for _, bad := range [][]byte{{}, {0x01}, {0x01, 0x05, 'a'}, {0x01, 0x01, 'a', 0, 0}, {0x01, 0xff}} {
		if _, _, err := decodeStorePartition(bad); !errors.Is(err, ErrCorrupt) {
			t.Errorf("decode %x = %v, want ErrCorrupt", bad, err)
		}
	}
	if _, err := decodeCheckpoint([]byte{1, 2}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("decodeCheckpoint of 2 bytes = %v, want ErrCorrupt", err)
	}
	if _, err := decodeCheckpointTime([]byte{1, 2}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("decodeCheckpointTime of 2 bytes = %v, want ErrCorrupt", err)
	}
	at := time.UnixMilli(1_700_000_000_123)
	if got, err := decodeCheckpointTime(encodeCheckpointTime(at)); err != nil || !got.Equal(at) {
		t.Errorf("checkpoint time round trip = %v, %v; want %v", got, err, at)
	}
}

func TestPrefixEnd(t *testing.T) {
	tests := []struct{ in, want []byte }{
		{[]byte{0x01, 0x02}, []byte{0x01, 0x03}},
		{[]byte{0x01, 0xff}, []byte{0x02}},
		{[]byte{0x00, 0xff, 0xff}, []byte{0x01}},
	}
	for _, tt := range tests {
		if got := prefixEnd(tt.in); !bytes.Equal(got, tt.want) {
			t.Errorf("prefixEnd(%x) = %x, want %x", tt.in, got, tt.want)
		}
	}
	// Every key with the prefix sorts below prefixEnd; prefixEnd's input is untouched.
	p := dataPrefix("s", -1) // partition bytes ff ff ff ff
	end := prefixEnd(p)
	if !bytes.Equal(p, dataPrefix("s", -1)) {
		t.Fatal("prefixEnd modified its argument")
	}
	for _, k := range [][]byte{p, dataKey(p, []byte{0xff, 0xff, 0xff})} {
		if bytes.Compare(k, end) >= 0 {
			t.Errorf("key %x not below prefixEnd %x", k, end)
		}
	}
}
