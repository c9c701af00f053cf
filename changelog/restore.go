package changelog

import (
	"context"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble"
)

// ChangelogRecord is one committed record of a changelog partition.
type ChangelogRecord struct {
	Key []byte
	// Value is the new value of Key; nil is a tombstone: delete Key.
	Value []byte
	// Offset is the record's offset in its changelog partition.
	Offset int64
}

// Source reads one changelog partition for Restore. The runner implements it
// with a read_committed consumer assigned the partition directly (not through
// the group): reading uncommitted would bring aborted state back.
type Source interface {
	// Bounds returns the log start offset and the end offset to restore to
	// (for a read_committed reader: the last stable offset) of the
	// changelog partition.
	Bounds(ctx context.Context) (start, end int64, err error)
	// Seek positions the reader at offset.
	Seek(ctx context.Context, offset int64) error
	// Next returns the next committed records (possibly none) and the
	// reader's position after them (the next offset it will read; it can
	// jump past transaction markers and aborted records, so a position >=
	// end with no records at all is normal).
	Next(ctx context.Context) (recs []ChangelogRecord, position int64, err error)
}

// Progress is a snapshot of a running restore, for logs and metrics.
type Progress struct {
	Store     string
	Partition int32
	// Restored counts the records applied so far (tombstones included).
	Restored int64
	// Position is the next changelog offset to read; Start is where this
	// restore started (the checkpoint, or the log start offset after a
	// wipe); End is the offset it restores to.
	Position, Start, End int64
	// Percent is (Position-Start)/(End-Start) in percent, 100 when done.
	Percent       float64
	RecordsPerSec float64
	Elapsed       time.Duration
}

// RestoreResult describes a finished restore.
type RestoreResult struct {
	// Restored counts the records applied (tombstones included).
	Restored int64
	// From is the offset the restore started at; To is the position reached,
	// which is the new checkpoint (>= the end offset of Source.Bounds).
	From, To int64
	// Full is true when the store partition was wiped and restored from the
	// log start: no checkpoint, or a checkpoint outside [start, end].
	Full    bool
	Elapsed time.Duration
}

// Restore bounds, tuned for throughput: few large synced writes.
const (
	restoreBatchRecords = 10_000
	restoreBatchBytes   = 4 << 20
	reportInterval      = time.Second
)

// restoreConfig holds Restore's knobs, small in tests.
type restoreConfig struct {
	batchRecords   int
	batchBytes     int
	reportInterval time.Duration
	now            func() time.Time
}

// Restore brings a store partition up to the end of its changelog
// partition. The runner calls it after the partition is assigned and before
// any record of it is processed (the store has no pending writes; that is
// checked: ErrPendingWrites).
//
// From the committed checkpoint when it lies within [start, end] of the
// changelog partition; otherwise (no checkpoint, or the topic was recreated
// or its data expired) the store partition is wiped and restored from the
// log start. Records are written straight to Pebble in large batches, each
// carrying the checkpoint of the position it reaches, so a crash mid-restore
// resumes there. Restore is finished when the reader's position reaches the
// end offset, not when a record at end-1 arrives: transaction markers take
// offsets, and an empty or marker-only partition is already restored.
//
// report, if not nil, is called on the calling goroutine at most about once
// a second and once at the end. Restore returns ctx's error when cancelled;
// what it applied until then is kept, with its checkpoint.
func Restore(ctx context.Context, s *Store, src Source, report func(Progress)) (RestoreResult, error) {
	return restore(ctx, s, src, report, restoreConfig{
		batchRecords:   restoreBatchRecords,
		batchBytes:     restoreBatchBytes,
		reportInterval: reportInterval,
		now:            time.Now,
	})
}

func restore(ctx context.Context, s *Store, src Source, report func(Progress), cfg restoreConfig) (RestoreResult, error) {
	if s.db.closed.Load() {
		return RestoreResult{}, ErrClosed
	}
	if n := s.PendingCount(); n > 0 {
		return RestoreResult{}, fmt.Errorf("changelog: restore %s: %w (%d)", s.sp, ErrPendingWrites, n)
	}
	// Restore writes Pebble directly, under the cache of committed values.
	s.committed = nil
	defer func() { s.committed = nil }()
	began := cfg.now()
	start, end, err := src.Bounds(ctx)
	if err != nil {
		return RestoreResult{}, fmt.Errorf("changelog: restore %s: bounds: %w", s.sp, err)
	}
	if start < 0 || end < start {
		return RestoreResult{}, fmt.Errorf("changelog: restore %s: invalid bounds [%d, %d)", s.sp, start, end)
	}
	cp, ok, err := s.Checkpoint()
	if err != nil {
		return RestoreResult{}, fmt.Errorf("changelog: restore: %w", err)
	}
	res := RestoreResult{From: cp}
	if !ok || cp < start || cp > end {
		if ok {
			// Not an error, but worth an operator's attention: state was lost
			// or the topic was recreated under us.
			s.db.logger.Warn("checkpoint outside the changelog (topic recreated or data expired): wiping store partition for a full restore",
				"store", s.sp.Store, "partition", s.sp.Partition, "checkpoint", cp, "log_start", start, "end", end)
		} else {
			s.db.logger.Info("no checkpoint: full restore",
				"store", s.sp.Store, "partition", s.sp.Partition, "log_start", start, "end", end)
		}
		if err := s.db.Drop(s.sp.Store, s.sp.Partition); err != nil {
			return RestoreResult{}, fmt.Errorf("changelog: restore: %w", err)
		}
		res.From, res.Full = start, true
	}

	r := restorer{s: s, cfg: cfg, report: report, began: began, lastReport: began,
		pos: res.From, start: res.From, end: end}
	defer r.closeBatch()
	if r.pos < end || res.Full {
		if err := r.run(ctx, src); err != nil {
			return RestoreResult{}, err
		}
	}
	res.Restored, res.To, res.Elapsed = r.restored, r.pos, cfg.now().Sub(began)
	r.progress(true)
	s.db.logger.Info("restored store partition",
		"store", s.sp.Store, "partition", s.sp.Partition, "records", res.Restored,
		"from", res.From, "to", res.To, "full", res.Full, "elapsed", res.Elapsed.String())
	return res, nil
}

// restorer is the state of one Restore call; its goroutine only.
type restorer struct {
	s      *Store
	cfg    restoreConfig
	report func(Progress)

	began, lastReport time.Time
	start, end        int64
	// pos is the source's position: every record before it is in batch or
	// in Pebble.
	pos      int64
	restored int64
	// batch holds the records read since the last write to Pebble.
	batch *pebble.Batch
}

// run seeks (if there is anything to read) and applies records until the
// position reaches end, then writes the final batch with its checkpoint
// synced. A fresh or wiped store partition gets its checkpoint even when
// there is nothing to read.
func (r *restorer) run(ctx context.Context, src Source) error {
	r.batch = r.s.db.pdb.NewBatch()
	if r.pos < r.end {
		if err := src.Seek(ctx, r.pos); err != nil {
			return fmt.Errorf("changelog: restore %s: seek %d: %w", r.s.sp, r.pos, err)
		}
	}
	for r.pos < r.end {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("changelog: restore %s at offset %d: %w", r.s.sp, r.pos, err)
		}
		recs, next, err := src.Next(ctx)
		if err != nil {
			return fmt.Errorf("changelog: restore %s at offset %d: %w", r.s.sp, r.pos, err)
		}
		if next < r.pos {
			return fmt.Errorf("changelog: restore %s: source position went back from %d to %d", r.s.sp, r.pos, next)
		}
		for _, rec := range recs {
			if rec.Offset < r.pos || rec.Offset >= next {
				return fmt.Errorf("changelog: restore %s: source returned offset %d outside [%d, %d)", r.s.sp, rec.Offset, r.pos, next)
			}
			if err := r.apply(rec); err != nil {
				return err
			}
		}
		r.pos = next
		if int(r.batch.Count()) >= r.cfg.batchRecords || r.batch.Len() >= r.cfg.batchBytes {
			if err := r.flush(pebble.NoSync); err != nil {
				return err
			}
		}
		r.progress(false)
	}
	return r.flush(pebble.Sync)
}

// apply adds one record to the batch: a tombstone deletes.
func (r *restorer) apply(rec ChangelogRecord) error {
	k := dataKey(r.s.prefix, rec.Key)
	var err error
	if rec.Value == nil {
		err = r.batch.Delete(k, nil)
	} else {
		err = r.batch.Set(k, rec.Value, nil)
	}
	if err != nil {
		return fmt.Errorf("changelog: restore %s at offset %d: %w", r.s.sp, rec.Offset, err)
	}
	r.restored++
	return nil
}

// flush writes the batch with the checkpoint pos. Intermediate flushes need
// no sync: Pebble's WAL replays a prefix of them after a crash, each with
// its own checkpoint, and the final flush (Sync) makes them all durable.
func (r *restorer) flush(opts *pebble.WriteOptions) error {
	if err := r.batch.Set(r.s.cpKey, encodeCheckpoint(r.pos), nil); err != nil {
		return fmt.Errorf("changelog: restore %s: %w", r.s.sp, err)
	}
	if err := r.batch.Commit(opts); err != nil {
		return fmt.Errorf("changelog: restore %s at offset %d: write: %w", r.s.sp, r.pos, err)
	}
	r.batch.Reset()
	return nil
}

// closeBatch releases the batch, dropping what was not flushed.
func (r *restorer) closeBatch() {
	if r.batch != nil {
		r.batch.Close()
		r.batch = nil
	}
}

// progress calls report if the interval has passed, or always when final.
func (r *restorer) progress(final bool) {
	if r.report == nil {
		return
	}
	now := r.cfg.now()
	if !final && now.Sub(r.lastReport) < r.cfg.reportInterval {
		return
	}
	r.lastReport = now
	p := Progress{
		Store: r.s.sp.Store, Partition: r.s.sp.Partition, Restored: r.restored,
		Position: r.pos, Start: r.start, End: r.end, Elapsed: now.Sub(r.began),
		Percent: 100,
	}
	if r.end > r.start && r.pos < r.end {
		p.Percent = float64(r.pos-r.start) / float64(r.end-r.start) * 100
	}
	if secs := p.Elapsed.Seconds(); secs > 0 {
		p.RecordsPerSec = float64(r.restored) / secs
	}
	r.report(p)
}
