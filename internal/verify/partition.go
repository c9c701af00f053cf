package verify

import (
	"fmt"
	"hash/crc32"
	"strings"

	"github.com/eos-runner/eos-runner/internal/murmur2"
)

// Partitioners Generate can write the input with. Check accepts input written
// with any of them, or with any other producer: it never assumes where a key's
// input records are.
const (
	// PartitionMurmur2 is Java's default partitioner (and Kafka Streams'):
	// murmur2 of the key, masked positive, modulo the partition count. The
	// runner partitions its outputs this way.
	PartitionMurmur2 = "murmur2"
	// PartitionCRC32 is librdkafka's default, consistent_random, for keyed
	// records: CRC-32 of the key modulo the partition count. kcat and
	// Confluent's Python, Go and .NET clients partition this way.
	PartitionCRC32 = "crc32"
	// PartitionRandom sends each record to a partition drawn from the seed,
	// as librdkafka's "random" partitioner or a keyless sticky partitioner
	// would: a key's records are spread over several partitions.
	PartitionRandom = "random"
)

// partitioners lists the accepted Partitioner values, default first.
var partitioners = []string{PartitionMurmur2, PartitionCRC32, PartitionRandom}

// keyPartitioner returns the partition function of a key-hashing
// partitioner; ok is false for PartitionRandom and unknown names.
func keyPartitioner(name string) (fn func(key []byte, partitions int32) int32, ok bool) {
	switch name {
	case PartitionMurmur2:
		return murmur2Partition, true
	case PartitionCRC32:
		return crc32Partition, true
	}
	return nil, false
}

func checkPartitioner(name string) error {
	for _, p := range partitioners {
		if name == p {
			return nil
		}
	}
	return fmt.Errorf("partitioner %q: want one of %s", name, strings.Join(partitioners, ", "))
}

// murmur2Partition is Java's default partition of a keyed record (and
// librdkafka's murmur2 and murmur2_random): (murmur2(key) & 0x7fffffff) % n.
func murmur2Partition(key []byte, partitions int32) int32 {
	return murmur2.Partition(key, partitions)
}

// crc32Partition is librdkafka's consistent and consistent_random partition of
// a keyed record: rd_crc32(key) % n, the unsigned CRC-32 (IEEE) reduced
// without masking.
func crc32Partition(key []byte, partitions int32) int32 {
	return int32(crc32.ChecksumIEEE(key) % uint32(partitions))
}
