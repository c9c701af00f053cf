package processor

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"time"
)

// Stream time travels with the committed offsets, as Kafka Streams keeps a
// partition's time in its committed offset's metadata: so it rolls back with
// an aborted transaction, survives a restart, and moves with the task to
// whichever instance owns it next. The encoding is Kafka Streams' (base64 of
// a version byte and a big-endian int64 of epoch milliseconds), so either can
// read the other's committed offsets. On-disk (on-broker) format: never
// change in place.

// streamTimeMagic is Kafka Streams' LATEST_MAGIC_BYTE for partition time.
const streamTimeMagic = 1

// encodeStreamTime returns the offset metadata for a stream time; the zero
// time (no record seen) encodes as empty metadata, as Kafka Streams writes
// none for an unknown partition time.
func encodeStreamTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	var b [9]byte
	b[0] = streamTimeMagic
	binary.BigEndian.PutUint64(b[1:], uint64(t.UnixMilli()))
	return base64.StdEncoding.EncodeToString(b[:])
}

// decodeStreamTime reads offset metadata written by encodeStreamTime or by
// Kafka Streams (versions 1 and 2 start with the partition time). Empty
// metadata is the zero time.
func decodeStreamTime(md string) (time.Time, error) {
	if md == "" {
		return time.Time{}, nil
	}
	b, err := base64.StdEncoding.DecodeString(md)
	if err != nil {
		return time.Time{}, fmt.Errorf("stream time metadata %q: %w", md, err)
	}
	if len(b) < 9 || (b[0] != 1 && b[0] != 2) {
		return time.Time{}, fmt.Errorf("stream time metadata %q: unknown version or length", md)
	}
	ms := int64(binary.BigEndian.Uint64(b[1:9]))
	if ms < 0 {
		return time.Time{}, nil // Kafka Streams' UNKNOWN (-1)
	}
	return time.UnixMilli(ms), nil
}
