package main

import "testing"

// TestMurmur2 checks the hash against Kafka's Utils.murmur2 test vectors
// (UtilsTest.testMurmur2, made positive) and the bench's keys against the
// partitions franz-go's murmur2 partitioner (the bench's producer) picks
// out of 8.
func TestMurmur2(t *testing.T) {
	for _, c := range []struct {
		key       string
		sum       uint32
		partition int32
	}{
		{"21", 1173551340, 4},
		{"foobar", 1357151166, 6},
		{"a-little-bit-long-string", 1161502112, 0},
		{"a-little-bit-longer-string", 661178819, 3},
		{"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", 2088585677, 5},
		{"abc", 479470107, 3},
		{"k0", 1442945345, 1},
		{"k99999", 1989236454, 6},
	} {
		h := newMurmur2()
		h.Write([]byte("stale"))
		h.Reset() // sarama reuses one hasher
		h.Write([]byte(c.key))
		if got := h.Sum32(); got != c.sum {
			t.Errorf("murmur2(%q) = %d, want %d", c.key, got, c.sum)
		}
		if got := int32(h.Sum32()) % 8; got != c.partition {
			t.Errorf("partition of %q = %d, want %d", c.key, got, c.partition)
		}
	}
}
