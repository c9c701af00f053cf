package changelog

import (
	"context"
	"fmt"
	"log/slog"
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
	// Timestamp is the record's timestamp (zero when the source does not
	// give it). Restore does not use it; a source that turns a table's
	// input topic into store records does.
	Timestamp time.Time
}

// Bounds are the offsets of a changelog partition that Restore decides by.
// A valid Bounds has 0 <= LogStart <= High and Stable <= High.
type Bounds struct {
	// LogStart is the log start offset: the first offset still in the log.
	LogStart int64
	// Stable is the last stable offset: the first offset of the oldest
	// transaction not yet settled (open, or committed or aborted but its
	// marker not yet written to this partition), or High when there is
	// none. A read_committed reader reads up to it and no further.
	Stable int64
	// High is the high watermark: the offset after the last record
	// appended, committed or not (a read_uncommitted reader's end).
	High int64
}

// Source reads one changelog partition for Restore. The runner implements it
// with a read_committed consumer assigned the partition directly (not through
// the group): reading uncommitted would bring aborted state back.
type Source interface {
	// Bounds returns the changelog partition's offsets. Restore calls it
	// again while it waits for the stable offset to move, and reads the
	// stable offset first: a Stable above High means the two were read
	// at different times and is an error.
	Bounds(ctx context.Context) (Bounds, error)
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
	// Expired counts the records of a window or session store left out
	// because their segment had expired (see RestoreWindows); 0 for a
	// key-value store.
	Expired int64
	// From is the offset the restore started at; To is the position reached,
	// which is the new checkpoint (>= the stable offset Restore waited for).
	From, To int64
	// Full is true when the store partition was wiped and restored from the
	// log start; Reason then says why (see Restore).
	Full    bool
	Reason  string
	Elapsed time.Duration
}

// RestoreOptions configures Restore. The zero value is usable.
type RestoreOptions struct {
	// Report, if not nil, is called on the calling goroutine at most about
	// once a second and once at the end. Default (nil) none.
	Report func(Progress)
	// MaxStateAge is the oldest a checkpoint time (keys.go) may be for
	// Restore to replay only the tail after the checkpoint. Compaction
	// removes a tombstone delete.retention.ms after it was appended, at the
	// earliest; once that may have happened to a tombstone after the
	// checkpoint, a tail replay would leave its key alive, so older state is
	// wiped and restored in full. A checkpoint time can be up to one
	// transaction later than the records after its checkpoint (DB.Commit),
	// so MaxStateAge must be at most the changelog topic's
	// delete.retention.ms less transaction.timeout.ms; the runner passes
	// exactly that. Default (0) DefaultMaxStateAge; negative: every
	// checkpoint is too old (always restore in full).
	MaxStateAge time.Duration
	// StreamTime, for a window or session store (RestoreWindows,
	// RestoreSessions), is the task's committed stream time, if known:
	// records of segments expired at it are not restored. Expiry during a
	// restore runs by the larger of it and the largest window start
	// (session end) restored or on disk. Default (0) none: by the records
	// alone. Ignored by Restore.
	StreamTime int64
	// Quiet logs the outcome ("restored store partition") at debug level
	// instead of info: a standby (processor/standby.go) restores its store
	// partitions again and again to follow their changelogs, and its
	// catch-ups are not restores an operator (or a test counting restored
	// records) should read as such. Wipes are logged as always.
	// Default false.
	Quiet bool
}

// DefaultMaxStateAge is RestoreOptions.MaxStateAge's default: Kafka's default
// delete.retention.ms (24h) less Kafka's default transaction.max.timeout.ms
// (15 minutes), which caps every producer's transaction.timeout.ms.
const DefaultMaxStateAge = 24*time.Hour - 15*time.Minute

// Restore bounds, tuned for throughput: few large synced writes.
const (
	restoreBatchRecords = 10_000
	restoreBatchBytes   = 4 << 20
	reportInterval      = time.Second
	// settleBackoffMin and settleBackoffMax bound the pause between two
	// Bounds calls while Restore waits for the stable offset.
	settleBackoffMin = 10 * time.Millisecond
	settleBackoffMax = time.Second
)

// restoreConfig holds Restore's knobs, small in tests.
type restoreConfig struct {
	batchRecords   int
	batchBytes     int
	reportInterval time.Duration
	maxStateAge    time.Duration
	quiet          bool // RestoreOptions.Quiet
	now            func() time.Time
	// sleep pauses for d, or returns ctx's error when ctx is done first.
	sleep func(ctx context.Context, d time.Duration) error
	// applier turns records into writes; nil: a key-value store's
	// (kvApplier).
	applier recordApplier
}

// recordApplier is what Restore does with the records of one kind of store:
// key-value stores write each record's key as is (kvApplier); window and
// session stores decode it into their two indexes and leave out expired
// segments (restoreApplier).
type recordApplier interface {
	// wipeReason says why the local state cannot be kept whatever its
	// checkpoint (its layout changed), or "" when it can.
	wipeReason() (string, error)
	// begin is called once, after any wipe, with the first batch.
	begin(b *pebble.Batch) error
	// apply adds rec's writes to b; false when rec was left out.
	apply(b *pebble.Batch, rec ChangelogRecord) (bool, error)
	// flushing adds the applier's own keys to each batch before it is
	// written.
	flushing(b *pebble.Batch) error
}

// kvApplier is the recordApplier of a key-value Store.
type kvApplier struct{ s *Store }

func (kvApplier) wipeReason() (string, error)  { return "", nil }
func (kvApplier) begin(*pebble.Batch) error    { return nil }
func (kvApplier) flushing(*pebble.Batch) error { return nil }

// apply adds one record to the batch: a tombstone deletes.
func (a kvApplier) apply(b *pebble.Batch, rec ChangelogRecord) (bool, error) {
	k := dataKey(a.s.prefix, rec.Key)
	if rec.Value == nil {
		return true, b.Delete(k, nil)
	}
	return true, b.Set(k, rec.Value, nil)
}

// Restore brings a store partition up to date with its changelog
// partition. The runner calls it after the partition is assigned and before
// any record of it is processed (the store has no pending writes; that is
// checked: ErrPendingWrites).
//
// It first reads the Bounds and decides where to start. From the committed
// checkpoint, replaying only the tail after it, when the checkpoint lies
// within [LogStart, High] and its checkpoint time is younger than
// MaxStateAge. Otherwise the store partition is wiped and restored from the
// log start, and RestoreResult.Reason says why: no checkpoint; a checkpoint
// below the log start (records after it were deleted, or the topic was
// recreated); above the high watermark (the topic was recreated, shorter);
// or too old, or of unknown age (compaction may have removed tombstones
// after it). A checkpoint between Stable and High is valid: the stable
// offset sits below committed records while another producer's transaction
// is open or its markers are in flight, so it is no sign of recreation.
//
// Then it waits until Stable reaches the High it decided by, reading the
// Bounds again with a growing pause (logging while it waits, until ctx is
// done): every record appended before the restore began is then committed
// or aborted for good. Restoring only to a lower stable offset would miss a
// transaction that commits later, such as the previous owner's last one
// whose markers are in flight, or a checkpoint's own records. Should High
// fall below that mark meanwhile (the topic was recreated), it decides
// again.
//
// Records are written straight to Pebble in large batches, each carrying
// the checkpoint of the position it reaches, so a crash mid-restore resumes
// there. Restore is finished when the reader's position reaches the stable
// offset, not when a record at end-1 arrives: transaction markers take
// offsets, and an empty or marker-only partition is already restored. The
// final batch also records the checkpoint time: the time the restore began,
// before which no record after the new checkpoint was appended.
//
// Restore returns ctx's error when cancelled; what it applied until then is
// kept, with its checkpoint.
func Restore(ctx context.Context, s *Store, src Source, opts RestoreOptions) (RestoreResult, error) {
	return restore(ctx, s, src, opts.Report, defaultRestoreConfig(s, opts))
}

// defaultRestoreConfig is the restoreConfig of opts, with a key-value
// store's applier.
func defaultRestoreConfig(s *Store, opts RestoreOptions) restoreConfig {
	return restoreConfig{
		batchRecords:   restoreBatchRecords,
		batchBytes:     restoreBatchBytes,
		reportInterval: reportInterval,
		maxStateAge:    opts.MaxStateAge,
		quiet:          opts.Quiet,
		now:            s.db.now,
		sleep:          sleepCtx,
	}
}

// sleepCtx pauses for d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func restore(ctx context.Context, s *Store, src Source, report func(Progress), cfg restoreConfig) (RestoreResult, error) {
	if s.db.closed.Load() {
		return RestoreResult{}, ErrClosed
	}
	if n := s.PendingCount(); n > 0 {
		return RestoreResult{}, fmt.Errorf("changelog: restore %s: %w (%d)", s.sp, ErrPendingWrites, n)
	}
	if cfg.applier == nil {
		cfg.applier = kvApplier{s}
	}
	switch {
	case cfg.maxStateAge == 0:
		cfg.maxStateAge = DefaultMaxStateAge
	case cfg.maxStateAge < 0:
		cfg.maxStateAge = 0
	}
	// Restore writes Pebble directly, under the cache of committed values.
	s.slots, s.last = nil, nil
	defer func() { s.slots, s.last = nil, nil }()
	began := cfg.now()
	p, err := settle(ctx, s, src, cfg, began)
	if err != nil {
		return RestoreResult{}, err
	}
	res := RestoreResult{From: p.from, Full: p.reason != "", Reason: p.reason}
	if res.Full {
		if p.hasCheckpoint {
			// Not an error, but worth an operator's attention: state was
			// lost, is too old, or the topic was recreated under us.
			s.db.logger.Warn("wiping store partition for a full restore: "+p.reason,
				"store", s.sp.Store, "partition", s.sp.Partition, "checkpoint", p.checkpoint,
				"log_start", p.bounds.LogStart, "stable", p.bounds.Stable, "high", p.bounds.High)
		} else {
			s.db.logger.Info("no checkpoint: full restore",
				"store", s.sp.Store, "partition", s.sp.Partition, "log_start", p.bounds.LogStart, "end", p.bounds.Stable)
		}
		if err := s.db.Drop(s.sp.Store, s.sp.Partition); err != nil {
			return RestoreResult{}, fmt.Errorf("changelog: restore: %w", err)
		}
	}

	r := restorer{s: s, cfg: cfg, report: report, began: began, lastReport: began,
		pos: p.from, start: p.from, end: p.bounds.Stable, full: res.Full}
	defer r.closeBatch()
	if err := r.run(ctx, src); err != nil {
		return RestoreResult{}, err
	}
	res.Restored, res.Expired, res.To, res.Elapsed = r.restored, r.expired, r.pos, cfg.now().Sub(began)
	r.progress(true)
	attrs := []any{"store", s.sp.Store, "partition", s.sp.Partition, "records", res.Restored}
	if res.Expired > 0 {
		attrs = append(attrs, "expired", res.Expired)
	}
	attrs = append(attrs, "from", res.From, "to", res.To, "full", res.Full, "elapsed", res.Elapsed.String())
	level := slog.LevelInfo
	if cfg.quiet {
		level = slog.LevelDebug
	}
	s.db.logger.Log(ctx, level, "restored store partition", attrs...)
	return res, nil
}

// restorePlan is what settle decided.
type restorePlan struct {
	// bounds: the last Bounds read; Stable is at or above the High the
	// decision was made by.
	bounds Bounds
	// checkpoint, hasCheckpoint: the committed checkpoint.
	checkpoint    int64
	hasCheckpoint bool
	// reason is why the store partition must be wiped; "" to replay the
	// tail from the checkpoint.
	reason string
	// from is the offset to restore from: the checkpoint, or the log start.
	from int64
}

// settle decides where to restore from and waits until the changelog's
// stable offset reaches the high watermark the decision was made by.
func settle(ctx context.Context, s *Store, src Source, cfg restoreConfig, began time.Time) (restorePlan, error) {
	for {
		b, err := readBounds(ctx, s, src)
		if err != nil {
			return restorePlan{}, err
		}
		p := restorePlan{bounds: b}
		p.checkpoint, p.hasCheckpoint, err = s.Checkpoint()
		if err != nil {
			return restorePlan{}, fmt.Errorf("changelog: restore: %w", err)
		}
		at, hasTime, err := s.checkpointTime()
		if err != nil {
			return restorePlan{}, fmt.Errorf("changelog: restore: %w", err)
		}
		p.reason = wipeReason(p.checkpoint, p.hasCheckpoint, at, hasTime, b, cfg.now(), cfg.maxStateAge)
		if p.reason == "" {
			if p.reason, err = cfg.applier.wipeReason(); err != nil {
				return restorePlan{}, fmt.Errorf("changelog: restore %s: %w", s.sp, err)
			}
		}
		p.from = p.checkpoint
		if p.reason != "" {
			p.from = b.LogStart
		}
		target := b.High
		backoff, lastLog := settleBackoffMin, began
		for p.bounds.Stable < target {
			if now := cfg.now(); now.Sub(lastLog) >= cfg.reportInterval {
				lastLog = now
				s.db.logger.Info("waiting for the changelog's open transactions to settle before restoring",
					"store", s.sp.Store, "partition", s.sp.Partition, "checkpoint", p.checkpoint,
					"stable", p.bounds.Stable, "until", target, "waited", now.Sub(began).String())
			}
			if err := cfg.sleep(ctx, backoff); err != nil {
				return restorePlan{}, fmt.Errorf("changelog: restore %s: waiting for the stable offset %d to reach %d: %w",
					s.sp, p.bounds.Stable, target, err)
			}
			backoff = min(2*backoff, settleBackoffMax)
			if p.bounds, err = readBounds(ctx, s, src); err != nil {
				return restorePlan{}, err
			}
			if p.bounds.High < target {
				s.db.logger.Warn("changelog high watermark went back while waiting for the stable offset (topic recreated?): deciding again",
					"store", s.sp.Store, "partition", s.sp.Partition, "high", p.bounds.High, "was", target)
				break
			}
		}
		if p.bounds.Stable >= target {
			return p, nil
		}
	}
}

// readBounds calls src.Bounds and checks the answer.
func readBounds(ctx context.Context, s *Store, src Source) (Bounds, error) {
	b, err := src.Bounds(ctx)
	if err != nil {
		return Bounds{}, fmt.Errorf("changelog: restore %s: bounds: %w", s.sp, err)
	}
	if b.LogStart < 0 || b.Stable < 0 || b.LogStart > b.High || b.Stable > b.High {
		return Bounds{}, fmt.Errorf("changelog: restore %s: invalid bounds: log start %d, stable %d, high %d",
			s.sp, b.LogStart, b.Stable, b.High)
	}
	return b, nil
}

// wipeReason says why a store partition's local state cannot be brought up
// to date by replaying the changelog after its checkpoint, or "" when it
// can. at is the checkpoint time (hasTime false: none recorded).
func wipeReason(cp int64, hasCP bool, at time.Time, hasTime bool, b Bounds, now time.Time, maxAge time.Duration) string {
	switch {
	case !hasCP:
		return "no checkpoint"
	case cp < b.LogStart:
		return "checkpoint below the log start offset (records after it were deleted, or the topic was recreated)"
	case cp > b.High:
		return "checkpoint above the high watermark (the topic was recreated)"
	case !hasTime:
		return "checkpoint of unknown age (written without a checkpoint time)"
	case maxAge <= 0:
		return "no checkpoint is young enough (the changelog's delete.retention.ms is not above transaction.timeout.ms)"
	case now.Sub(at) >= maxAge:
		// A checkpoint time in the future (the clock went back) counts as
		// young: the clock's error is far below delete.retention.ms.
		return fmt.Sprintf("checkpoint older than the changelog's delete.retention.ms allows (%v, at most %v): compaction may have removed tombstones after it",
			now.Sub(at).Round(time.Second), maxAge)
	}
	return ""
}

// restorer is the state of one Restore call; its goroutine only.
type restorer struct {
	s      *Store
	cfg    restoreConfig
	report func(Progress)

	began, lastReport time.Time
	start, end        int64
	// full: the store partition was wiped; every key in it was read by this
	// restore.
	full bool
	// pos is the source's position: every record before it is in batch or
	// in Pebble.
	pos      int64
	restored int64
	// expired counts the records the applier left out.
	expired int64
	// batch holds the records read since the last write to Pebble.
	batch *pebble.Batch
}

// run seeks (if there is anything to read) and applies records until the
// position reaches end, then writes the final batch with its checkpoint and
// checkpoint time, synced. The store partition gets its checkpoint and a new
// checkpoint time even when there is nothing to read.
func (r *restorer) run(ctx context.Context, src Source) error {
	if err := r.s.db.settled(); err != nil {
		return fmt.Errorf("changelog: restore %s: %w", r.s.sp, err)
	}
	r.batch = r.s.db.pdb.NewBatch()
	if err := r.cfg.applier.begin(r.batch); err != nil {
		return fmt.Errorf("changelog: restore %s: %w", r.s.sp, err)
	}
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
			if err := r.flush(pebble.NoSync, false); err != nil {
				return err
			}
		}
		r.progress(false)
	}
	return r.flush(pebble.Sync, true)
}

// apply adds one record to the batch, through the applier.
func (r *restorer) apply(rec ChangelogRecord) error {
	applied, err := r.cfg.applier.apply(r.batch, rec)
	if err != nil {
		return fmt.Errorf("changelog: restore %s at offset %d: %w", r.s.sp, rec.Offset, err)
	}
	if applied {
		r.restored++
	} else {
		r.expired++
	}
	return nil
}

// flush writes the batch with the checkpoint pos. Intermediate flushes need
// no sync: Pebble's WAL replays a prefix of them after a crash, each with
// its own checkpoint, and the final flush (Sync) makes them all durable.
//
// The checkpoint time written with it is the time the restore began, which
// no record after the checkpoint predates once final (settle waited for
// every record appended before that to settle, and the position passed
// them). An intermediate checkpoint has older records after it; its time
// stays valid as the deadline of their tombstones: compaction removes a
// tombstone only delete.retention.ms after removing the puts it deletes,
// and those were still in the log when this restore read them, after it
// began. So a full restore writes that time from its first flush, and a tail
// restore, whose older keys were not read now, keeps the old one until the
// final flush.
func (r *restorer) flush(opts *pebble.WriteOptions, final bool) error {
	if err := r.cfg.applier.flushing(r.batch); err != nil {
		return fmt.Errorf("changelog: restore %s: %w", r.s.sp, err)
	}
	if err := r.batch.Set(r.s.cpKey, encodeCheckpoint(r.pos), nil); err != nil {
		return fmt.Errorf("changelog: restore %s: %w", r.s.sp, err)
	}
	if final || r.full {
		if err := r.batch.Set(r.s.cpTimeKey, encodeCheckpointTime(r.began), nil); err != nil {
			return fmt.Errorf("changelog: restore %s: %w", r.s.sp, err)
		}
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
