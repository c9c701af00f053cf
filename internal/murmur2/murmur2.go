// Package murmur2 is Kafka's default partitioner hash (Java's
// Utils.murmur2, seed 0x9747b28c), written out from the Java source rather
// than taken from a client, so that what the verifier and the test driver
// expect of partitioning is Java's (and librdkafka's murmur2_random, the
// runner's partitioner), not a client library's.
package murmur2

// Sum is Kafka's Utils.murmur2 of data.
func Sum(data []byte) int32 {
	const (
		seed = 0x9747b28c
		m    = 0x5bd1e995
		r    = 24
	)
	n := len(data)
	h := uint32(seed) ^ uint32(n)
	for i := 0; i+4 <= n; i += 4 {
		k := uint32(data[i]) | uint32(data[i+1])<<8 | uint32(data[i+2])<<16 | uint32(data[i+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	tail := data[n&^3:]
	switch len(tail) {
	case 3:
		h ^= uint32(tail[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(tail[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(tail[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return int32(h)
}

// Partition is Java's default partition of a keyed record among n:
// (murmur2(key) & 0x7fffffff) % n.
func Partition(key []byte, n int32) int32 {
	return (Sum(key) & 0x7fffffff) % n
}
