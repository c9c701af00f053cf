package verify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eos-runner/eos-runner/internal/progress"
)

// GenerateConfig says what Generate writes. Zero values mean the defaults
// given per field.
type GenerateConfig struct {
	// Brokers are the bootstrap servers.
	Brokers []string
	// ClientOpts are extra client options: TLS and SASL (kafkasec.FranzOpts).
	ClientOpts []kgo.Opt
	// Topic is the input topic; it is created if it does not exist.
	Topic string
	// Records is the number of records to write.
	Records int
	// Keys is the number of distinct keys, k0 .. k<Keys-1>; default 1000.
	Keys int
	// Partitions of the topic when Generate creates it; default 4. An
	// existing topic keeps its count (a warning is logged if it differs).
	Partitions int
	// Seed selects the sequence of keys and values: the same seed, Records
	// and Keys give the same records, partitions and order.
	Seed int64
	// Partitioner spreads the records over the partitions: PartitionMurmur2
	// (default; Java's producer), PartitionCRC32 (librdkafka's default, as
	// kcat and Confluent's Python client write) or PartitionRandom (a key's
	// records land in several partitions). The records themselves, keys and
	// values in order, depend on Seed only.
	Partitioner string
	// Rate limits the writes to this many records per second; 0 means
	// unlimited.
	Rate int
	// EventStart is the event time (record timestamp) of record 0; default
	// the wall clock when Generate starts, in whole milliseconds.
	EventStart time.Time
	// EventRate is how many records make one second of event time: record
	// i's nominal time is EventStart + i/EventRate seconds, whatever the
	// write Rate. Default 1000.
	EventRate int
	// Disorder bounds how far a record's timestamp lies before its nominal
	// time: drawn from [0, Disorder] in whole milliseconds. Default 500ms,
	// within WindowGrace, so that disorder alone makes no record late; -1
	// means none.
	Disorder time.Duration
	// LateEvery makes about one record in LateEvery (never among the first
	// lateWarmup) late on purpose: its timestamp lies 2*WindowSize +
	// WindowGrace + Disorder before its nominal time, so its window has
	// closed when it arrives and the windowed aggregation drops it. Default
	// 2000; -1 means none.
	LateEvery int
	// Joins writes RefTopic(Topic) first, for JoinTopology's stream-table
	// join: created compacted with the same partition count, and filled
	// (when Generate creates it) before the first record of Topic, every
	// record at timestamp 0, below every record of Topic, so that each
	// record of Topic joins its key's final ref. The refs depend on Seed
	// and Keys only (refRecords): about a quarter of the keys have none,
	// a quarter a value then a tombstone, a quarter two values (the
	// second holds) and a quarter one.
	Joins bool
	// Logger receives progress at most once a second; nil discards it.
	Logger *slog.Logger
}

// GenerateResult is what Generate wrote.
type GenerateResult struct {
	// Records is the number of records acknowledged by the brokers.
	Records int
	// Elapsed is the time from the first write to the last acknowledgement.
	Elapsed time.Duration
}

const (
	defaultKeys       = 1000
	defaultPartitions = 4
	// valueBound bounds the generated values: they are in [-valueBound,
	// valueBound], negative and positive so that min and max both move.
	valueBound = 1000
	// progressEvery is the least time between two progress log lines.
	progressEvery = time.Second

	defaultEventRate = 1000
	defaultDisorder  = 500 * time.Millisecond
	defaultLateEvery = 2000
	// lateWarmup records come before the first late one, so that every
	// partition's stream time has moved past the start.
	lateWarmup = 200
)

func (c GenerateConfig) withDefaults() (GenerateConfig, error) {
	if c.Keys == 0 {
		c.Keys = defaultKeys
	}
	if c.Partitions == 0 {
		c.Partitions = defaultPartitions
	}
	if c.Partitioner == "" {
		c.Partitioner = PartitionMurmur2
	}
	if c.EventRate == 0 {
		c.EventRate = defaultEventRate
	}
	if c.Disorder == 0 {
		c.Disorder = defaultDisorder
	}
	if c.LateEvery == 0 {
		c.LateEvery = defaultLateEvery
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("no brokers"))
	}
	if c.Topic == "" {
		errs = append(errs, errors.New("no topic"))
	}
	if c.Records < 0 {
		errs = append(errs, fmt.Errorf("records %d < 0", c.Records))
	}
	if c.Keys < 0 {
		errs = append(errs, fmt.Errorf("keys %d < 0", c.Keys))
	}
	if c.Partitions < 0 || c.Partitions > 1<<20 {
		errs = append(errs, fmt.Errorf("partitions %d out of range", c.Partitions))
	}
	if c.Rate < 0 {
		errs = append(errs, fmt.Errorf("rate %d < 0", c.Rate))
	}
	if c.EventRate < 0 {
		errs = append(errs, fmt.Errorf("event rate %d < 0", c.EventRate))
	}
	if c.Disorder < -1 || c.Disorder%time.Millisecond != 0 && c.Disorder != -1 {
		errs = append(errs, fmt.Errorf("disorder %v: want whole milliseconds, or -1 for none", c.Disorder))
	}
	if c.LateEvery < -1 {
		errs = append(errs, fmt.Errorf("late every %d: want > 0, or -1 for none", c.LateEvery))
	}
	if !c.EventStart.IsZero() && c.EventStart.UnixMilli() < 0 {
		errs = append(errs, fmt.Errorf("event start %v is before the epoch", c.EventStart))
	}
	if err := checkPartitioner(c.Partitioner); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return c, fmt.Errorf("verify: generate: invalid config: %w", errors.Join(errs...))
	}
	return c, nil
}

// Generate creates cfg.Topic if needed and writes cfg.Records records to it
// with an idempotent producer (kgo's default: retries cannot duplicate or
// reorder records within a partition, so the input itself is exact). Record i
// has key "k<j>", j drawn from [0, Keys), and a decimal value drawn from
// [-1000, 1000], both from the seeded sequence, and a timestamp that
// advances with i (EventRate) less a bounded disorder, a few of them late on
// purpose (LateEvery); given EventStart, the seed names them too. Keys are partitioned by
// cfg.Partitioner: with murmur2 (the default, as Java's producer) or crc32 (as
// librdkafka's default) a key's records are in one partition, in generation
// order; with random they are spread over the partitions, each partition
// holding the key's records in generation order.
//
// Progress (records acknowledged, percent, rate) is logged at most once a
// second. Generate returns once every record is acknowledged, or the first
// produce error.
func Generate(ctx context.Context, cfg GenerateConfig) (GenerateResult, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return GenerateResult{}, err
	}
	log := cfg.Logger.With("topic", cfg.Topic)
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.DefaultProduceTopic(cfg.Topic),
		// Each record's partition is computed here (partition.go), so that
		// it is the named partitioner's and not a client's approximation.
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()), // idempotence requires acks=all
	}, cfg.ClientOpts...)...)
	if err != nil {
		return GenerateResult{}, fmt.Errorf("verify: generate: client: %w", err)
	}
	defer cl.Close()

	if cfg.Joins {
		if err := generateRefs(ctx, cl, cfg, log); err != nil {
			return GenerateResult{}, fmt.Errorf("verify: generate: %w", err)
		}
	}
	created, count, err := createTopic(ctx, cl, cfg.Topic, int32(cfg.Partitions), nil)
	switch {
	case err != nil:
		return GenerateResult{}, fmt.Errorf("verify: generate: %w", err)
	case created:
		log.Info("verify generate: created topic", "partitions", count)
	case int(count) != cfg.Partitions:
		log.Warn("verify generate: topic exists with another partition count; keeping it",
			"partitions", count, "configured", cfg.Partitions)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		acked    atomic.Int64
		mu       sync.Mutex // guards firstErr: produce callbacks run on the client's goroutines
		firstErr error
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if firstErr == nil {
			firstErr = err
			cancel() // stop writing: later records would fail too
		}
	}
	start := time.Now()
	stopProgress := startProgress(log, cfg.Records, start, &acked)

	partition := recordPartitioner(cfg.Partitioner, cfg.Seed, count)
	seq := newSequence(cfg.Seed, cfg.Keys)
	if cfg.EventStart.IsZero() {
		cfg.EventStart = start
	}
	times := newEventTimes(cfg)
	for i := 0; i < cfg.Records && ctx.Err() == nil; i++ {
		if cfg.Rate > 0 {
			// Pace against the schedule from the start, not per record, so
			// that slow writes are caught up and the average holds.
			due := start.Add(time.Duration(float64(i) / float64(cfg.Rate) * float64(time.Second)))
			if err := sleepUntil(ctx, due); err != nil {
				break
			}
		}
		key, value := seq.next()
		rec := &kgo.Record{Key: []byte(key), Value: strconv.AppendInt(nil, value, 10), Timestamp: time.UnixMilli(times.next(i))}
		rec.Partition = partition(rec.Key)
		cl.Produce(ctx, rec, func(r *kgo.Record, err error) {
			if err != nil {
				fail(fmt.Errorf("record %d (key %s) to partition %d: %w", i, r.Key, r.Partition, err))
				return
			}
			acked.Add(1)
		})
	}
	flushErr := cl.Flush(ctx)
	elapsed := time.Since(start)
	stopProgress()
	res := GenerateResult{Records: int(acked.Load()), Elapsed: elapsed}
	mu.Lock()
	defer mu.Unlock()
	switch {
	case firstErr != nil:
		return res, fmt.Errorf("verify: generate: %w", firstErr)
	case flushErr != nil:
		return res, fmt.Errorf("verify: generate: flush: %w", flushErr)
	case ctx.Err() != nil:
		return res, fmt.Errorf("verify: generate: %w", ctx.Err())
	}
	log.Info("verify generate: done", "records", res.Records, "keys", cfg.Keys, "seed", cfg.Seed, "partitioner", cfg.Partitioner,
		"elapsed", elapsed.Round(time.Millisecond), "rate", progress.Rate(int64(res.Records), elapsed))
	return res, nil
}

// generateRefs creates RefTopic(cfg.Topic), compacted, and writes
// refRecords to it if it created it (an existing one is kept as it is, so a
// second Generate into the same topic does not change the table the first
// one's records joined), partitioned as cfg.Topic's records are.
func generateRefs(ctx context.Context, cl *kgo.Client, cfg GenerateConfig, log *slog.Logger) error {
	topic := RefTopic(cfg.Topic)
	created, count, err := createTopic(ctx, cl, topic, int32(cfg.Partitions), map[string]string{"cleanup.policy": "compact"})
	if err != nil {
		return err
	}
	if !created {
		log.Info("verify generate: ref topic exists; keeping its records", "ref_topic", topic, "partitions", count)
		return nil
	}
	partition := recordPartitioner(cfg.Partitioner, cfg.Seed^refPartitionSalt, count)
	refs := refRecords(cfg.Seed, cfg.Keys)
	var (
		mu       sync.Mutex
		firstErr error
	)
	for _, r := range refs {
		rec := &kgo.Record{Topic: topic, Key: []byte(r.key), Timestamp: time.UnixMilli(0)}
		if r.value != nil {
			rec.Value = []byte(*r.value)
		}
		rec.Partition = partition(rec.Key)
		// The idempotent producer keeps a partition's records in order, so
		// a key's later ref follows its earlier one.
		cl.Produce(ctx, rec, func(r *kgo.Record, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = fmt.Errorf("ref record for key %s to %s[%d]: %w", r.Key, topic, r.Partition, err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return fmt.Errorf("flush refs: %w", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if firstErr != nil {
		return firstErr
	}
	log.Info("verify generate: wrote refs", "ref_topic", topic, "records", len(refs), "partitions", count)
	return nil
}

// ref is one record of the ref topic: a nil value is a tombstone.
type ref struct {
	key   string
	value *string
}

// refRecords are the ref topic's records for a seed and key count, in write
// order: for key k<i>, by a draw from the seed's own sequence, nothing, a
// value then a tombstone, two values, or one value. A value is
// "r<i>.<draw>".
func refRecords(seed int64, keys int) []ref {
	seq := newSequence(seed^refSalt, 1)
	var out []ref
	val := func(i int, d uint64) *string {
		s := "r" + strconv.Itoa(i) + "." + strconv.FormatUint(d%1000, 10)
		return &s
	}
	for i := range keys {
		key := "k" + strconv.Itoa(i)
		switch d := seq.uint64(); d % 4 {
		case 1:
			out = append(out, ref{key, val(i, d>>2)}, ref{key, nil})
		case 2:
			out = append(out, ref{key, val(i, d>>2)}, ref{key, val(i, d>>12)})
		case 3:
			out = append(out, ref{key, val(i, d>>2)})
		}
	}
	return out
}

// refSalt and refPartitionSalt separate the refs' sequences from the
// records'.
const (
	refSalt          = 0x7f4a7c159e3779b9
	refPartitionSalt = 0x1ce4e5b9bf584761
)

// recordPartitioner returns the partition of each next record for the named
// partitioner (validated) over partitions partitions. The random one draws
// from its own sequence, seeded from seed, so that the keys and values do not
// depend on the partitioner.
func recordPartitioner(name string, seed int64, partitions int32) func(key []byte) int32 {
	if fn, ok := keyPartitioner(name); ok {
		return func(key []byte) int32 { return fn(key, partitions) }
	}
	draws := newSequence(seed^randomPartitionSalt, 1)
	return func([]byte) int32 { return int32(draws.uint64() % uint64(partitions)) }
}

// eventTimes draws the records' timestamps from their own sequence (seeded
// from Seed), so that the keys and values of a seed do not depend on them.
type eventTimes struct {
	seq                           *sequence
	start, rate, disorder, lateBy int64 // ms, records/s, ms, ms
	lateEvery                     uint64
}

func newEventTimes(cfg GenerateConfig) *eventTimes {
	e := &eventTimes{seq: newSequence(cfg.Seed^eventTimeSalt, 1), start: cfg.EventStart.UnixMilli(), rate: int64(cfg.EventRate)}
	if cfg.Disorder > 0 {
		e.disorder = cfg.Disorder.Milliseconds()
	}
	if cfg.LateEvery > 0 {
		e.lateEvery = uint64(cfg.LateEvery)
	}
	e.lateBy = (2*WindowSize + WindowGrace).Milliseconds() + e.disorder
	return e
}

// next is record i's timestamp in epoch milliseconds, never negative.
func (e *eventTimes) next(i int) int64 {
	ts := e.start + int64(i)*1000/e.rate
	ts -= int64(e.seq.uint64() % uint64(e.disorder+1))
	if late := e.seq.uint64(); e.lateEvery > 0 && i >= lateWarmup && late%e.lateEvery == 0 {
		ts -= e.lateBy
	}
	return max(ts, 0)
}

// eventTimeSalt separates the timestamps' sequence from the records'.
const eventTimeSalt = 0x2545f4914f6cdd1d

// randomPartitionSalt separates the random partitioner's sequence from the
// records' sequence of the same seed.
const randomPartitionSalt = 0x5deece66d

// startProgress logs acknowledged records, percent and rate every
// progressEvery until the returned stop is called; stop waits for the logger
// goroutine to end.
func startProgress(log *slog.Logger, total int, start time.Time, acked *atomic.Int64) (stop func()) {
	return progress.Every(progressEvery, func(now time.Time) {
		n := int(acked.Load())
		pct := 100.0
		if total > 0 {
			pct = float64(n) * 100 / float64(total)
		}
		log.Info("verify generate: progress", "records", n, "of", total,
			"percent", fmt.Sprintf("%.1f", pct), "rate", progress.Rate(int64(n), now.Sub(start)))
	})
}

// sleepUntil waits until t or until ctx ends.
func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// sequence is the generator's deterministic source of keys and values:
// SplitMix64 (Steele, Lea and Flood, 2014) seeded with Seed. It is written out
// here rather than taken from math/rand so that a seed names the same input in
// every Go release.
type sequence struct {
	state uint64
	keys  uint64
}

func newSequence(seed int64, keys int) *sequence {
	return &sequence{state: uint64(seed), keys: uint64(keys)}
}

func (s *sequence) uint64() uint64 {
	s.state += 0x9e3779b97f4a7c15
	z := s.state
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// next returns the next record's key and value. The modulo bias is below
// 2^-50 for any key count this workload uses.
func (s *sequence) next() (key string, value int64) {
	k := s.uint64() % s.keys
	v := int64(s.uint64()%(2*valueBound+1)) - valueBound
	return "k" + strconv.FormatUint(k, 10), v
}
