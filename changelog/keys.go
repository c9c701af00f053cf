package changelog

// ON-DISK FORMAT. Everything in this file is persisted in every state
// directory. Never change an encoding here; add a new one under a new
// formatVersion and teach Open to read (or migrate) the old one.
//
// The key space of the one Pebble database of a runner:
//
//	0x00 | sp                 checkpoint of store partition sp: big-endian int64,
//	                          the next changelog offset to read
//	0x01 | sp | user key      state: user value, stored as is
//	0x02 | sp                 checkpoint time of sp: big-endian int64 Unix
//	                          milliseconds (added to format version 1, see below)
//	0xff | "format-version"   big-endian uint64, see formatVersion
//
// where sp = uvarint(len(store)) | store | big-endian uint32(partition).
//
// The length prefix makes sp prefix-free ("ab" never shares a prefix with
// "a"), so one store partition's state is exactly the keys that start with
// 0x01|sp: Range is one prefix scan, and Drop is one DeleteRange plus two
// Deletes. Checkpoints sort before all state, so Partitions reads them in one
// short scan.
//
// The checkpoint time was added to format version 1 without a new version,
// because it changes no existing encoding and errs only one way. It is
// written in the same batch as every checkpoint (Restore, DB.Commit) and
// deleted with it (Drop), and it is a lower bound, give or take one
// transaction, on when the changelog records after the checkpoint were
// appended (see Restore). A binary that predates it ignores it: its
// checkpoints leave an older time (or none) behind, and an older time or a
// missing one only makes Restore wipe and restore in full, never replay a
// tail it should not. So binaries of both kinds can open the same directory.
//
// # Window and session stores
//
// A window or session store partition (WindowStore, SessionStore) keeps its
// state under the same 0x01|sp prefix, with a key kind byte after sp in
// place of a user key:
//
//	0x01 | sp | 0x00                         layout: store kind (0x01 window,
//	                                         0x02 session) | big-endian uint64
//	                                         segment interval in milliseconds
//	0x01 | sp | 0x01 | seg | len | key | t   by-key index: value
//	0x01 | sp | 0x02 | t | key               by-time index: the same value
//
// where len = uvarint(len(key)), seg = floorDiv(t0, segment interval), and
// seg and times are ordered int64s (big-endian uint64(x) ^ 1<<63, so
// negative values sort before positive ones). For a window, t = t0 = start.
// For a session, t = end | start and t0 = end.
//
// Both indexes lead with time at segment granularity, so the entries of one
// segment are one contiguous range in each and expiring segments is two
// DeleteRanges. The by-key index puts the key right after the segment, so
// one key's windows in one segment are one range scan; the length prefix
// keeps a key from reading as a prefix of a longer one ("a" and "ab" differ
// in the len byte). The by-time index needs no segment (time leads) and no
// length (the key is last). Each index carries the value, so both access
// paths are plain scans, at the cost of each value written twice (Kafka
// Streams' indexed time-ordered store keeps it once and pays a point lookup
// per index entry instead).
//
// These kinds were added to format version 1 without a new version: the
// key-value encoding is unchanged, and a binary that predates them sees a
// window store partition as a key-value store partition with odd keys, which
// it only ever lists, drops or wipes as a whole (0x01|sp), as it should. The
// layout key makes a change of segment interval (which moves every by-key
// entry) a reason for Restore to wipe and restore in full.

import (
	"encoding/binary"
	"fmt"
	"time"
)

const (
	// tagCheckpoint starts every checkpoint key.
	tagCheckpoint byte = 0x00
	// tagData starts every state key.
	tagData byte = 0x01
	// tagCheckpointTime starts every checkpoint time key.
	tagCheckpointTime byte = 0x02
	// tagMeta starts keys that describe the database itself.
	tagMeta byte = 0xff

	// formatVersion is the version of the encodings in this file that this
	// code writes. Open refuses a database stamped with a newer one.
	formatVersion uint64 = 1

	// partitionLen is the width of the encoded partition.
	partitionLen = 4
	// checkpointLen is the width of an encoded checkpoint value.
	checkpointLen = 8
	// checkpointTimeLen is the width of an encoded checkpoint time value.
	checkpointTimeLen = 8

	// Key kinds after 0x01|sp in a window or session store partition.
	kindLayout byte = 0x00
	kindByKey  byte = 0x01
	kindByTime byte = 0x02

	// Store kinds in a layout value.
	layoutWindow  byte = 0x01
	layoutSession byte = 0x02

	// timeLen is the width of an encoded time or segment.
	timeLen = 8
	// layoutLen is the width of a layout value.
	layoutLen = 1 + 8
)

// formatVersionKey holds the format version (big-endian uint64).
var formatVersionKey = []byte("\xffformat-version")

// appendStorePartition appends sp = uvarint(len(store)) | store | partition.
func appendStorePartition(dst []byte, store string, partition int32) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(store)))
	dst = append(dst, store...)
	return binary.BigEndian.AppendUint32(dst, uint32(partition))
}

// dataPrefix returns 0x01|sp, the prefix of every state key of the store partition.
func dataPrefix(store string, partition int32) []byte {
	p := make([]byte, 0, 1+binary.MaxVarintLen64+len(store)+partitionLen)
	return appendStorePartition(append(p, tagData), store, partition)
}

// checkpointKey returns 0x00|sp, the key of the store partition's checkpoint.
func checkpointKey(store string, partition int32) []byte {
	p := make([]byte, 0, 1+binary.MaxVarintLen64+len(store)+partitionLen)
	return appendStorePartition(append(p, tagCheckpoint), store, partition)
}

// checkpointTimeKey returns 0x02|sp, the key of the store partition's
// checkpoint time.
func checkpointTimeKey(store string, partition int32) []byte {
	p := make([]byte, 0, 1+binary.MaxVarintLen64+len(store)+partitionLen)
	return appendStorePartition(append(p, tagCheckpointTime), store, partition)
}

// dataKey returns prefix|userKey in a new slice (prefix from dataPrefix).
func dataKey(prefix, userKey []byte) []byte {
	k := make([]byte, 0, len(prefix)+len(userKey))
	return append(append(k, prefix...), userKey...)
}

// encodeCheckpoint encodes a checkpoint value.
func encodeCheckpoint(offset int64) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, checkpointLen), uint64(offset))
}

// decodeCheckpoint decodes a checkpoint value.
func decodeCheckpoint(v []byte) (int64, error) {
	if len(v) != checkpointLen {
		return 0, fmt.Errorf("%w: checkpoint value is %d bytes, want %d", ErrCorrupt, len(v), checkpointLen)
	}
	return int64(binary.BigEndian.Uint64(v)), nil
}

// encodeCheckpointTime encodes a checkpoint time value, to the millisecond.
func encodeCheckpointTime(t time.Time) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, checkpointTimeLen), uint64(t.UnixMilli()))
}

// decodeCheckpointTime decodes a checkpoint time value.
func decodeCheckpointTime(v []byte) (time.Time, error) {
	if len(v) != checkpointTimeLen {
		return time.Time{}, fmt.Errorf("%w: checkpoint time value is %d bytes, want %d", ErrCorrupt, len(v), checkpointTimeLen)
	}
	return time.UnixMilli(int64(binary.BigEndian.Uint64(v))), nil
}

// encodeFormatVersion encodes the value under formatVersionKey.
func encodeFormatVersion(v uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, v)
}

// decodeFormatVersion decodes the value under formatVersionKey.
func decodeFormatVersion(v []byte) (uint64, error) {
	if len(v) != 8 {
		return 0, fmt.Errorf("%w: format version value is %d bytes, want 8", ErrCorrupt, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// decodeStorePartition decodes the sp that follows the tag byte of a
// checkpoint or state key, and returns the length of tag|sp.
func decodeStorePartition(key []byte) (StorePartition, int, error) {
	if len(key) < 1 {
		return StorePartition{}, 0, fmt.Errorf("%w: empty key", ErrCorrupt)
	}
	n, w := binary.Uvarint(key[1:])
	if w <= 0 || n > uint64(len(key)) {
		return StorePartition{}, 0, fmt.Errorf("%w: bad store name length in key %q", ErrCorrupt, key)
	}
	nameEnd := 1 + w + int(n)
	if len(key) < nameEnd+partitionLen {
		return StorePartition{}, 0, fmt.Errorf("%w: key %q too short for its store partition", ErrCorrupt, key)
	}
	sp := StorePartition{
		Store:     string(key[1+w : nameEnd]),
		Partition: int32(binary.BigEndian.Uint32(key[nameEnd:])),
	}
	return sp, nameEnd + partitionLen, nil
}

// prefixEnd returns the smallest key greater than every key with the given
// prefix, for use as an exclusive upper bound. prefix must contain a byte
// below 0xff (every prefix of ours starts with 0x00, 0x01 or 0x02).
func prefixEnd(prefix []byte) []byte {
	end := append([]byte(nil), prefix...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] != 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	panic("changelog: prefixEnd of an all-0xff prefix")
}

// appendTime appends t as an ordered int64: big-endian with the sign bit
// flipped, so that bytewise order is numeric order.
func appendTime(dst []byte, t int64) []byte {
	return binary.BigEndian.AppendUint64(dst, uint64(t)^(1<<63))
}

// decodeTime decodes an ordered int64 from the first timeLen bytes of b.
func decodeTime(b []byte) int64 { return int64(binary.BigEndian.Uint64(b) ^ (1 << 63)) }

// kindPrefix returns 0x01|sp|kind, from dataPrefix's 0x01|sp.
func kindPrefix(dataPrefix []byte, kind byte) []byte {
	return append(append(make([]byte, 0, len(dataPrefix)+1), dataPrefix...), kind)
}

// appendByKeyPrefix appends seg|len|key to byKey (0x01|sp|0x01): the prefix
// of every by-key entry of key in segment seg.
func appendByKeyPrefix(dst []byte, seg int64, key []byte) []byte {
	dst = appendTime(dst, seg)
	dst = binary.AppendUvarint(dst, uint64(len(key)))
	return append(dst, key...)
}

// encodeLayout encodes a layout value.
func encodeLayout(kind byte, segmentInterval int64) []byte {
	return binary.BigEndian.AppendUint64(append(make([]byte, 0, layoutLen), kind), uint64(segmentInterval))
}

// decodeLayout decodes a layout value.
func decodeLayout(v []byte) (kind byte, segmentInterval int64, err error) {
	if len(v) != layoutLen {
		return 0, 0, fmt.Errorf("%w: layout value is %d bytes, want %d", ErrCorrupt, len(v), layoutLen)
	}
	return v[0], int64(binary.BigEndian.Uint64(v[1:])), nil
}
