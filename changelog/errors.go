package changelog

import (
	"errors"
	"fmt"
)

// ErrClosed is returned by every operation on a DB (or one of its stores)
// after Close. The caller has shut down in the wrong order: a bug, not a
// condition to retry.
var ErrClosed = errors.New("changelog: db closed")

// ErrCorrupt is returned (wrapped) when a key or value on disk does not
// decode. The state directory is damaged or was written by something else;
// wiping it (and restoring from the changelogs) is the way out.
var ErrCorrupt = errors.New("changelog: corrupt state")

// ErrNilValue is returned by Store.Put for a nil value. A nil value is a
// tombstone on the changelog (see ChangelogRecord), so storing it as an
// empty value would make the local store and its changelog disagree after a
// restore. Use Delete to delete, or a non-nil empty slice for "empty".
var ErrNilValue = errors.New("changelog: nil value (use Delete, or []byte{} for an empty value)")

// ErrPendingWrites is returned by Restore when the store has pending
// writes: restore runs before any processing of its partition, so pending
// writes there mean the caller broke that order.
var ErrPendingWrites = errors.New("changelog: store has pending writes")

// FormatError is returned by Open when the state directory was written in an
// on-disk format this binary does not know (a newer binary wrote it).
// Downgrading needs the state wiped; it is then restored from the changelogs.
type FormatError struct {
	Dir   string
	Found uint64 // format version stamped in the directory
	Known uint64 // newest format version this binary reads
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("changelog: state dir %s has on-disk format version %d, this binary knows up to %d: wipe the directory to restore it from the changelogs",
		e.Dir, e.Found, e.Known)
}

// ErrBadWindowedKey is returned (wrapped) by DecodeWindowKey and
// DecodeSessionKey, and so by RestoreWindows and RestoreSessions, for a
// changelog record key that is not a window (session) key: too short, or a
// session ending before it starts. The changelog holds records of another
// kind of store (a store renamed or retyped without a new changelog topic).
var ErrBadWindowedKey = errors.New("changelog: bad windowed key")

// ErrExpired is returned (wrapped) by WindowStore.Put and SessionStore.Put
// and Remove for an entry in a segment the store has expired: the write
// would be dropped at the next expiry and is never restored. The caller
// writes no changelog record for it either; a runner that closes windows
// at size + grace and keeps them for a retention at least that long never
// gets it.
var ErrExpired = errors.New("changelog: window or session expired")
