package changelog

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/vfs"
)

// DefaultCacheSize is the block cache size used when Options.CacheSize is 0.
const DefaultCacheSize int64 = 64 << 20

// pebbleFormat pins Pebble's own on-disk format. Pinned rather than
// pebble.FormatNewest so that upgrading Pebble never ratchets a state
// directory to a format an older eos-runner binary cannot open; raise it
// deliberately.
const pebbleFormat = pebble.FormatVirtualSSTables

// memTableSize is Pebble's memtable size. Pebble treats a batch of at least
// half a memtable as a "large batch" and flushes it as its own L0 table; at
// Pebble's default (4 MiB) every full restore batch (restoreBatchBytes) would
// be one, piling up L0 tables that later stall writes on compaction. 16 MiB
// keeps restore batches in the memtable. Memory: up to two memtables per DB,
// on top of the block cache.
const memTableSize = 16 << 20

// Options configures Open. The zero value is usable.
type Options struct {
	// CacheSize is the size in bytes of the block cache shared by every
	// store of the DB. Default (0) DefaultCacheSize, 64 MiB.
	CacheSize int64
	// StoreCacheEntries bounds the cache of committed values each store
	// partition keeps for reads (see Store). Default (0) 16384; negative
	// disables it.
	StoreCacheEntries int
	// FS is the file system Pebble uses; default (nil) the operating
	// system's, vfs.Default.
	FS vfs.FS
	// Logger receives restore progress, wipes and Pebble's own messages
	// (Pebble's informational messages at Debug). Default (nil) slog.Default().
	Logger *slog.Logger
}

// DB is the one Pebble database of a runner, at state.dir/<application.id>/,
// holding every store partition of every task of the runner, with a shared
// block cache. Pebble's directory lock makes a second runner opening the same
// directory fail at Open.
//
// A DB is safe for concurrent use; a Store is not (see Store).
type DB struct {
	// dir, pdb, logger, storeCacheEntries, now: set by Open, read-only
	// afterwards (tests of this package replace now and logger before use).
	dir               string
	pdb               *pebble.DB
	logger            *slog.Logger
	storeCacheEntries int
	// now is the clock of checkpoint times (time.Now).
	now func() time.Time

	// closed is set once by Close; every entry point checks it so that use
	// after Close is an error instead of a Pebble panic.
	closed atomic.Bool
	// inflight is the last CommitAsync's background write (commit.go); nil
	// before the first. commitMu serializes CommitAsync (the runner's commits
	// and the global tables' goroutine share the DB), so that at most one
	// write is in flight and inflight is always the last one.
	inflight atomic.Pointer[applyOp]
	commitMu sync.Mutex

	// mu guards lastOwned only; it is never held across Pebble I/O.
	mu sync.Mutex
	// lastOwned: for store partitions with state on disk, the last time
	// this instance is known to have owned them. See cleaner.go.
	lastOwned map[StorePartition]time.Time
}

// StorePartition names one store partition: a store of the topology on one
// partition (which is also the partition of its changelog topic).
type StorePartition struct {
	Store     string
	Partition int32
}

// String returns "store/partition", the form used in logs and errors.
func (sp StorePartition) String() string { return fmt.Sprintf("%s/%d", sp.Store, sp.Partition) }

// Open opens (creating if needed) the state database in dir, which is
// state.dir/<application.id>. It refuses a directory stamped with a newer
// on-disk format (*FormatError) and a non-empty Pebble database that is not
// ours.
func Open(dir string, opts Options) (*DB, error) {
	if opts.CacheSize < 0 {
		return nil, fmt.Errorf("changelog: open %s: negative cache size %d", dir, opts.CacheSize)
	}
	if opts.CacheSize == 0 {
		opts.CacheSize = DefaultCacheSize
	}
	if opts.StoreCacheEntries == 0 {
		opts.StoreCacheEntries = 16384
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	cache := pebble.NewCache(opts.CacheSize)
	// Pebble takes its own reference on the cache; ours is dropped on return.
	defer cache.Unref()
	pdb, err := pebble.Open(dir, &pebble.Options{
		Cache:              cache,
		FormatMajorVersion: pebbleFormat,
		Logger:             pebbleLogger{opts.Logger},
		MemTableSize:       memTableSize,
		FS:                 opts.FS,
	})
	if err != nil {
		return nil, fmt.Errorf("changelog: open %s: %w", dir, err)
	}
	db := &DB{dir: dir, pdb: pdb, logger: opts.Logger, storeCacheEntries: opts.StoreCacheEntries, now: time.Now,
		lastOwned: map[StorePartition]time.Time{}}
	if err := db.checkFormat(); err != nil {
		return nil, errors.Join(err, pdb.Close())
	}
	return db, nil
}

// checkFormat reads the format version, stamping a fresh database with ours.
func (db *DB) checkFormat() error {
	v, closer, err := db.pdb.Get(formatVersionKey)
	if errors.Is(err, pebble.ErrNotFound) {
		empty, err := db.isEmpty()
		if err != nil {
			return err
		}
		if !empty {
			return fmt.Errorf("changelog: open %s: %w: keys without a format version (not an eos-runner state dir?)", db.dir, ErrCorrupt)
		}
		if err := db.pdb.Set(formatVersionKey, encodeFormatVersion(formatVersion), pebble.Sync); err != nil {
			return fmt.Errorf("changelog: open %s: stamp format version: %w", db.dir, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("changelog: open %s: read format version: %w", db.dir, err)
	}
	found, err := decodeFormatVersion(v)
	closer.Close()
	if err != nil {
		return fmt.Errorf("changelog: open %s: %w", db.dir, err)
	}
	if found > formatVersion {
		return &FormatError{Dir: db.dir, Found: found, Known: formatVersion}
	}
	return nil
}

// isEmpty reports whether the database holds no key at all.
func (db *DB) isEmpty() (bool, error) {
	it, err := db.pdb.NewIter(nil)
	if err != nil {
		return false, fmt.Errorf("changelog: open %s: %w", db.dir, err)
	}
	empty := !it.First()
	if err := it.Close(); err != nil {
		return false, fmt.Errorf("changelog: open %s: %w", db.dir, err)
	}
	return empty, nil
}

// Close closes the database. Pending writes of its stores are lost, which is
// what a crash does too: Pebble holds committed state only. Close must not
// run concurrently with other calls on the DB or its stores.
func (db *DB) Close() error {
	if db.closed.Swap(true) {
		return ErrClosed
	}
	werr := db.settled() // the last commit's write lands first
	if err := db.pdb.Close(); err != nil {
		return errors.Join(werr, fmt.Errorf("changelog: close %s: %w", db.dir, err))
	}
	return werr
}

// Store returns the handle of one store partition. It does no I/O: a store
// partition exists on disk once something is committed to it.
//
// Give each store partition one handle, owned by its task's worker: two
// handles of the same store partition have separate pending batches that
// do not see each other.
func (db *DB) Store(name string, partition int32) *Store {
	return &Store{
		db:        db,
		sp:        StorePartition{Store: name, Partition: partition},
		prefix:    dataPrefix(name, partition),
		cpKey:     checkpointKey(name, partition),
		cpTimeKey: checkpointTimeKey(name, partition),
		prefixEnd: prefixEnd(dataPrefix(name, partition)),

		slotsMax: db.storeCacheEntries,
	}
}

// Drop deletes all state, the checkpoint and the checkpoint time of a store
// partition, in one synced batch: after a crash it is either all there or
// all gone. Pending writes of a live handle are not touched (see
// Store.Abort).
func (db *DB) Drop(name string, partition int32) error {
	if db.closed.Load() {
		return ErrClosed
	}
	if err := db.settled(); err != nil {
		return err
	}
	prefix := dataPrefix(name, partition)
	b := db.pdb.NewBatch()
	defer b.Close()
	if err := b.DeleteRange(prefix, prefixEnd(prefix), nil); err != nil {
		return fmt.Errorf("changelog: drop %s/%d: %w", name, partition, err)
	}
	if err := b.Delete(checkpointKey(name, partition), nil); err != nil {
		return fmt.Errorf("changelog: drop %s/%d: %w", name, partition, err)
	}
	if err := b.Delete(checkpointTimeKey(name, partition), nil); err != nil {
		return fmt.Errorf("changelog: drop %s/%d: %w", name, partition, err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("changelog: drop %s/%d: %w", name, partition, err)
	}
	return nil
}

// Partitions lists, sorted, the store partitions that have committed state
// or a checkpoint, so that the runner can find state it no longer owns.
func (db *DB) Partitions() ([]StorePartition, error) {
	if db.closed.Load() {
		return nil, ErrClosed
	}
	if err := db.settled(); err != nil {
		return nil, err
	}
	seen := map[StorePartition]bool{}
	var out []StorePartition
	add := func(sp StorePartition) {
		if !seen[sp] {
			seen[sp] = true
			out = append(out, sp)
		}
	}
	// Checkpoints: one short scan over [0x00, 0x01).
	it, err := db.pdb.NewIter(&pebble.IterOptions{LowerBound: []byte{tagCheckpoint}, UpperBound: []byte{tagData}})
	if err != nil {
		return nil, fmt.Errorf("changelog: partitions: %w", err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		sp, n, err := decodeStorePartition(it.Key())
		if err == nil && n != len(it.Key()) {
			err = fmt.Errorf("%w: checkpoint key %q has trailing bytes", ErrCorrupt, it.Key())
		}
		if err != nil {
			return nil, errors.Join(fmt.Errorf("changelog: partitions: %w", err), it.Close())
		}
		add(sp)
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("changelog: partitions: %w", err)
	}
	// State: skip-scan over [0x01, 0x02), one seek per store partition.
	it, err = db.pdb.NewIter(&pebble.IterOptions{LowerBound: []byte{tagData}, UpperBound: []byte{tagData + 1}})
	if err != nil {
		return nil, fmt.Errorf("changelog: partitions: %w", err)
	}
	for ok := it.First(); ok; {
		sp, n, err := decodeStorePartition(it.Key())
		if err != nil {
			return nil, errors.Join(fmt.Errorf("changelog: partitions: %w", err), it.Close())
		}
		add(sp)
		ok = it.SeekGE(prefixEnd(it.Key()[:n]))
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("changelog: partitions: %w", err)
	}
	sortStorePartitions(out)
	return out, nil
}

// pebbleLogger sends Pebble's messages to slog. Pebble's Infof is chatty
// (every flush and compaction), hence Debug. Fatalf must not return: Pebble
// calls it on broken invariants and carries on otherwise.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug(fmt.Sprintf(format, args...), "component", "pebble")
}

func (p pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.l.Error(msg, "component", "pebble")
	panic("pebble: " + msg)
}
