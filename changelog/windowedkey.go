package changelog

import (
	"encoding/binary"
	"fmt"
)

// Changelog record keys of window and session stores, in Kafka Streams'
// byte layouts (WindowKeySchema.toStoreKeyBinary without its sequence
// number, as TimeWindowedSerializer writes it; SessionKeySchema.toBinary),
// so that Java consumers read our changelogs and windowed outputs. Times
// are plain big-endian two's complement int64s, as Java writes a long.
// The runner writes exactly these as changelog record keys, and
// RestoreWindows and RestoreSessions read them; the value is the store's
// value, nil a tombstone. These are a wire format: never change them.

// windowSuffixLen and sessionSuffixLen are the widths of the times after
// the key.
const (
	windowSuffixLen  = 8
	sessionSuffixLen = 16
)

// EncodeWindowKey returns the changelog record key of window (key, start):
// key | big-endian int64 start.
func EncodeWindowKey(key []byte, start int64) []byte {
	b := make([]byte, 0, len(key)+windowSuffixLen)
	return binary.BigEndian.AppendUint64(append(b, key...), uint64(start))
}

// DecodeWindowKey decodes a key written by EncodeWindowKey. key aliases b.
func DecodeWindowKey(b []byte) (key []byte, start int64, err error) {
	if len(b) < windowSuffixLen {
		return nil, 0, fmt.Errorf("%w: window key %x is shorter than its %d-byte start", ErrBadWindowedKey, b, windowSuffixLen)
	}
	n := len(b) - windowSuffixLen
	return b[:n:n], int64(binary.BigEndian.Uint64(b[n:])), nil
}

// EncodeSessionKey returns the changelog record key of session (key, start,
// end): key | big-endian int64 end | big-endian int64 start (end first, as
// Kafka Streams lays it out).
func EncodeSessionKey(key []byte, start, end int64) []byte {
	b := make([]byte, 0, len(key)+sessionSuffixLen)
	b = binary.BigEndian.AppendUint64(append(b, key...), uint64(end))
	return binary.BigEndian.AppendUint64(b, uint64(start))
}

// DecodeSessionKey decodes a key written by EncodeSessionKey. key aliases b.
func DecodeSessionKey(b []byte) (key []byte, start, end int64, err error) {
	if len(b) < sessionSuffixLen {
		return nil, 0, 0, fmt.Errorf("%w: session key %x is shorter than its %d-byte end and start", ErrBadWindowedKey, b, sessionSuffixLen)
	}
	n := len(b) - sessionSuffixLen
	end = int64(binary.BigEndian.Uint64(b[n:]))
	start = int64(binary.BigEndian.Uint64(b[n+8:]))
	if end < start {
		return nil, 0, 0, fmt.Errorf("%w: session key %x ends (%d) before it starts (%d)", ErrBadWindowedKey, b, end, start)
	}
	return b[:n:n], start, end, nil
}
