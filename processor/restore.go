package processor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/eos-runner/eos-runner/changelog"
)

// restorer restores tasks' stores off the poll loop, so that the poll loop
// keeps the group membership alive: a long restore inside it would exceed
// max.poll.interval.ms and the member would be thrown out. Every store
// partition restores concurrently through the one restore consumer. It
// answers every job on restoreDone, unless ctx is done first (the runner is
// stopping and reads no more outcomes).
func (tm *taskManager) restorer(ctx context.Context, c *kafka.Consumer, done chan struct{}) {
	defer close(done)
	mux, muxErr := newRestoreMux(c, tm.log)
	var wg sync.WaitGroup
	if muxErr == nil {
		defer mux.close()
		wg.Add(1)
		go func() { defer wg.Done(); mux.run(ctx) }()
	}
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case job := <-tm.restoreReq:
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := muxErr
				if err == nil {
					jctx, cancel := context.WithCancel(ctx)
					stop := context.AfterFunc(job.ctx, cancel)
					err = tm.restoreTask(jctx, mux, job)
					stop()
					cancel()
				}
				select {
				case tm.restoreDone <- restoreOutcome{t: job.t, err: err}:
				case <-ctx.Done():
				}
			}()
		case job := <-tm.standbyReq:
			if muxErr != nil {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				jctx, cancel := context.WithCancel(ctx)
				stop := context.AfterFunc(job.ctx, cancel)
				tm.runStandby(jctx, mux, job.sb)
				stop()
				cancel()
			}()
		}
	}
}

// restoreTask restores every store of a task, concurrently.
func (tm *taskManager) restoreTask(ctx context.Context, mux *restoreMux, job restoreJob) error {
	t := job.t
	stores := t.changelogStores()
	errs := make([]error, len(stores))
	var wg sync.WaitGroup
	for i, s := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := tm.restoreStore(ctx, mux, t.id, s, job)
			if err != nil {
				errs[i] = fmt.Errorf("restore %s[%d]: %w", s.changelogTopic(), s.changelogPartition(), err)
				return
			}
			tm.m.restored.Add(float64(n)) // changelog.Restore logs the outcome
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// restoreStore restores one store partition of a task and returns the number
// of records it replayed. It holds the changelog partition's claim
// throughout, so a restore of the same store partition for a newer task
// (revoked, then assigned again) waits for this one to return.
//
// The job's committed stream time lets window and session stores leave the
// windows expired at it out; its source ends bound the restore of a store
// whose changelog is its table's source topic (sourcetopic.go).
func (tm *taskManager) restoreStore(ctx context.Context, mux *restoreMux, taskID string, s stateStore, job restoreJob) (int64, error) {
	cs, err := mux.open(ctx, s.changelogTopic(), s.changelogPartition())
	if err != nil {
		return 0, err
	}
	defer cs.close()
	var src changelog.Source = cs
	if spec := s.storeSpec(); spec.SourceTopic != "" {
		convert, err := sourceRecordConverter(tm.topo, spec, s.changelogTopic())
		if err != nil {
			return 0, err
		}
		src = &sourceStoreSource{inner: cs, until: job.sourceEnds[partitionKey{s.changelogTopic(), s.changelogPartition()}], convert: convert}
	}
	streamTime := job.streamTime
	retention, err := mux.deleteRetention(ctx, s.changelogTopic())
	if err != nil {
		return 0, err
	}
	var st int64
	if !streamTime.IsZero() {
		st = streamTime.UnixMilli()
	}
	res, err := s.restore(ctx, src, changelog.RestoreOptions{
		MaxStateAge: maxStateAge(retention, tm.cfg.TransactionTimeout),
		StreamTime:  st,
		Report: func(p changelog.Progress) {
			tm.m.restore.report(p) // eos_restore_remaining_records
			tm.log.Info("restoring", "task", taskID, "store", p.Store, "partition", p.Partition, "restored", p.Restored,
				"percent", strconv.FormatFloat(p.Percent, 'f', 1, 64), "records_per_sec", int64(p.RecordsPerSec))
		},
	})
	if err != nil {
		return 0, err
	}
	return res.Restored, nil
}

// maxStateAge is changelog.RestoreOptions.MaxStateAge for a changelog topic's
// delete.retention.ms: less one transaction, since a checkpoint time can be
// that much later than the records after its checkpoint. Not above zero:
// every checkpoint is too old (-1; 0 would mean the default).
func maxStateAge(deleteRetention, transactionTimeout time.Duration) time.Duration {
	if age := deleteRetention - transactionTimeout; age > 0 {
		return age
	}
	return -1
}

// defaultDeleteRetention is Kafka's default delete.retention.ms, for a topic
// whose configuration does not list it.
const defaultDeleteRetention = 24 * time.Hour

// restoreQueryTimeout bounds each broker query of a restore (offsets, topic
// configuration).
const restoreQueryTimeout = 10 * time.Second

// restoreMux shares the runner's one restore consumer among concurrent
// restores, as Kafka Streams' restore consumer serves every changelog
// partition being restored: each restore claims its changelog partition
// (open), adds it to the assignment at its checkpoint (Seek:
// IncrementalAssign), reads the events a dispatcher goroutine (run) polls and
// routes to it, and removes and releases the partition when done (close).
//
// The consumer reads with read_committed (or aborted state would come back),
// by explicit assignment (not through the group), with partition EOF events:
// the end is reached when the consumer's position reaches the end offset, not
// when a record at end-1 arrives, since transaction markers take offsets
// (docs/exactly-once.md, "Restore").
//
// Invariants:
//
//  1. One restore at a time per changelog partition. A claim is held from
//     open to close, and a second open of the partition waits for it (or
//     for its own ctx). A revoked task's restore may still be returning
//     when the task is assigned again; without the claim the two would
//     share the consumer's one assignment of the partition, and the old
//     one's unassign would strand the new one, or its wipe would land in the
//     middle of the new one's writes.
//  2. A route belongs to one Seek of one restore and is never reused: the
//     dispatcher sends to the route it found, and a route's removal closes
//     its done channel, so the dispatcher never blocks on a route nobody
//     reads (a full channel of a restore that was cancelled mid-way blocked
//     it forever, and with it every other restore of the runner).
//  3. No event of an old assignment reaches a new route: removing a route
//     unassigns the partition (librdkafka drops what it fetched for the old
//     assignment) and then waits for the dispatcher to finish routing the
//     event it holds, before the claim is released.
//
// The dispatcher blocking on the full channel of a restore that is still
// reading is intended: back pressure from the slowest restore is what
// bounds memory.
type restoreMux struct {
	c     *kafka.Consumer
	admin *kafka.AdminClient // derived from c: offsets and topic configs
	log   *slog.Logger

	// pollMu is held by the dispatcher from each Poll until the event it
	// returned is routed (invariant 3).
	pollMu sync.Mutex
	// assignMu serializes changes of the consumer's assignment: concurrent
	// restores assign and unassign their partitions, and confluent-kafka-go's
	// IncrementalAssign/IncrementalUnassign write the consumer's fields
	// unguarded (the race detector caught it under crash churn).
	assignMu sync.Mutex

	// mu guards routes and claims; it is never held across a channel send
	// or a client call.
	mu sync.Mutex
	// routes: the current route of each partition being read.
	routes map[partitionKey]*route
	// claims: each claimed partition, with a channel closed on release.
	claims map[partitionKey]chan struct{}
}

// route carries one restore's events from the dispatcher.
type route struct {
	ch chan kafka.Event
	// done is closed when the route is removed: the dispatcher stops
	// sending to it.
	done chan struct{}
}

// routeBuffer is the capacity of a route's channel, in events.
const routeBuffer = 4096

func newRestoreMux(c *kafka.Consumer, log *slog.Logger) (*restoreMux, error) {
	admin, err := kafka.NewAdminClientFromConsumer(c)
	if err != nil {
		return nil, fmt.Errorf("restore: admin client: %w", err)
	}
	return &restoreMux{c: c, admin: admin, log: log,
		routes: map[partitionKey]*route{}, claims: map[partitionKey]chan struct{}{}}, nil
}

// close releases the admin client (the consumer stays open: it is the
// runner's).
func (m *restoreMux) close() { m.admin.Close() }

// run dispatches the consumer's events until ctx is done.
func (m *restoreMux) run(ctx context.Context) {
	for ctx.Err() == nil {
		m.pollMu.Lock()
		m.dispatch(ctx, m.c.Poll(100))
		m.pollMu.Unlock()
	}
}

// dispatch routes one event to the route of its partition, if there is one.
func (m *restoreMux) dispatch(ctx context.Context, ev kafka.Event) {
	var tp kafka.TopicPartition
	switch e := ev.(type) {
	case *kafka.Message:
		tp = e.TopicPartition
	case kafka.PartitionEOF:
		tp = kafka.TopicPartition(e)
	default:
		return
	}
	if tp.Topic == nil {
		return
	}
	m.mu.Lock()
	rt := m.routes[partitionKey{*tp.Topic, tp.Partition}]
	m.mu.Unlock()
	if rt == nil {
		return // a partition whose restore ended or was cancelled
	}
	select {
	case rt.ch <- ev:
	case <-rt.done:
	case <-ctx.Done():
	}
}

// open claims a changelog partition for one restore and returns its source,
// waiting while an earlier restore of the partition holds it (invariant 1).
// The caller must close the source.
func (m *restoreMux) open(ctx context.Context, topic string, partition int32) (*changelogSource, error) {
	key := partitionKey{topic, partition}
	for {
		m.mu.Lock()
		held, busy := m.claims[key]
		if !busy {
			m.claims[key] = make(chan struct{})
			m.mu.Unlock()
			return &changelogSource{m: m, key: key}, nil
		}
		m.mu.Unlock()
		select {
		case <-held:
		case <-ctx.Done():
			return nil, fmt.Errorf("changelog %s[%d]: waiting for an earlier restore of it to return: %w", topic, partition, ctx.Err())
		}
	}
}

// deleteRetention returns the delete.retention.ms of a changelog topic.
func (m *restoreMux) deleteRetention(ctx context.Context, topic string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, restoreQueryTimeout)
	defer cancel()
	res, err := m.admin.DescribeConfigs(ctx, []kafka.ConfigResource{{Type: kafka.ResourceTopic, Name: topic}})
	if err != nil {
		return 0, fmt.Errorf("changelog %s: describe configs: %w", topic, err)
	}
	if len(res) != 1 {
		return 0, fmt.Errorf("changelog %s: describe configs: %d results for one topic", topic, len(res))
	}
	if res[0].Error.Code() != kafka.ErrNoError {
		return 0, fmt.Errorf("changelog %s: describe configs: %w", topic, res[0].Error)
	}
	e, ok := res[0].Config["delete.retention.ms"]
	if !ok || e.Value == "" {
		return defaultDeleteRetention, nil
	}
	ms, err := strconv.ParseInt(e.Value, 10, 64)
	if err != nil || ms < 0 {
		return 0, fmt.Errorf("changelog %s: delete.retention.ms %q is not a duration in milliseconds", topic, e.Value)
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// changelogSource reads one changelog partition for changelog.Restore, under
// the partition's claim.
type changelogSource struct {
	m   *restoreMux
	key partitionKey
	// rt is the route of the last Seek; nil before it and after close.
	rt  *route
	pos int64
}

var _ changelog.Source = (*changelogSource)(nil)

func (s *changelogSource) tp(offset int64) []kafka.TopicPartition {
	topic := s.key.Topic
	return []kafka.TopicPartition{{Topic: &topic, Partition: s.key.Partition, Offset: kafka.Offset(offset)}}
}

// Bounds implements changelog.Source: the log start offset, then the last
// stable offset (a read_committed ListOffsets), then the high watermark (a
// read_uncommitted one), in that order so that stable <= high.
func (s *changelogSource) Bounds(ctx context.Context) (changelog.Bounds, error) {
	lo, _, err := s.m.c.QueryWatermarkOffsets(s.key.Topic, s.key.Partition, int(restoreQueryTimeout.Milliseconds()))
	if err != nil {
		return changelog.Bounds{}, fmt.Errorf("changelog %s[%d]: watermarks: %w", s.key.Topic, s.key.Partition, err)
	}
	stable, err := s.latest(ctx, kafka.IsolationLevelReadCommitted)
	if err != nil {
		return changelog.Bounds{}, err
	}
	high, err := s.latest(ctx, kafka.IsolationLevelReadUncommitted)
	if err != nil {
		return changelog.Bounds{}, err
	}
	return changelog.Bounds{LogStart: lo, Stable: stable, High: high}, nil
}

// latest lists the partition's end offset at an isolation level: the last
// stable offset under read_committed, the high watermark under
// read_uncommitted.
func (s *changelogSource) latest(ctx context.Context, level kafka.IsolationLevel) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, restoreQueryTimeout)
	defer cancel()
	topic := s.key.Topic
	res, err := s.m.admin.ListOffsets(ctx,
		map[kafka.TopicPartition]kafka.OffsetSpec{{Topic: &topic, Partition: s.key.Partition}: kafka.LatestOffsetSpec},
		kafka.SetAdminIsolationLevel(level))
	if err != nil {
		return 0, fmt.Errorf("changelog %s[%d]: list offsets (isolation %d): %w", s.key.Topic, s.key.Partition, level, err)
	}
	for tp, info := range res.ResultInfos {
		if tp.Topic == nil || *tp.Topic != s.key.Topic || tp.Partition != s.key.Partition {
			continue
		}
		if info.Error.Code() != kafka.ErrNoError {
			return 0, fmt.Errorf("changelog %s[%d]: list offsets (isolation %d): %w", s.key.Topic, s.key.Partition, level, info.Error)
		}
		return int64(info.Offset), nil
	}
	return 0, fmt.Errorf("changelog %s[%d]: list offsets (isolation %d): no result for the partition", s.key.Topic, s.key.Partition, level)
}

// Seek implements changelog.Source: it (re)assigns the partition at offset,
// on a new route.
func (s *changelogSource) Seek(ctx context.Context, offset int64) error {
	s.unroute()
	rt := &route{ch: make(chan kafka.Event, routeBuffer), done: make(chan struct{})}
	s.m.mu.Lock()
	if other := s.m.routes[s.key]; other != nil {
		s.m.mu.Unlock()
		// Invariant 1 makes this unreachable.
		return fmt.Errorf("changelog %s[%d]: another restore is reading it", s.key.Topic, s.key.Partition)
	}
	s.m.routes[s.key] = rt
	s.m.mu.Unlock()
	s.rt = rt
	s.m.assignMu.Lock()
	err := s.m.c.IncrementalAssign(s.tp(offset))
	s.m.assignMu.Unlock()
	if err != nil {
		s.unroute()
		return fmt.Errorf("changelog %s[%d]: assign at %d: %w", s.key.Topic, s.key.Partition, offset, err)
	}
	s.pos = offset
	return nil
}

// Next implements changelog.Source: it returns the records routed so far (up
// to a batch) and the position, which jumps to the end offset on partition
// EOF.
func (s *changelogSource) Next(ctx context.Context) ([]changelog.ChangelogRecord, int64, error) {
	const maxBatch = 10000
	if s.rt == nil {
		return nil, s.pos, fmt.Errorf("changelog %s[%d]: Next before Seek", s.key.Topic, s.key.Partition)
	}
	var recs []changelog.ChangelogRecord
	wait := time.NewTimer(100 * time.Millisecond)
	defer wait.Stop()
	for len(recs) < maxBatch {
		var ev kafka.Event
		if len(recs) == 0 {
			select {
			case ev = <-s.rt.ch:
			case <-wait.C:
				return nil, s.pos, nil
			case <-ctx.Done():
				return nil, s.pos, ctx.Err()
			}
		} else {
			select {
			case ev = <-s.rt.ch:
			default:
				return recs, s.pos, nil
			}
		}
		switch e := ev.(type) {
		case *kafka.Message:
			if e.TopicPartition.Error != nil {
				return recs, s.pos, fmt.Errorf("changelog %s[%d]: %w", s.key.Topic, s.key.Partition, e.TopicPartition.Error)
			}
			off := int64(e.TopicPartition.Offset)
			if off < s.pos {
				continue // fetched before the last seek
			}
			recs = append(recs, changelog.ChangelogRecord{Key: e.Key, Value: e.Value, Offset: off, Timestamp: e.Timestamp})
			s.pos = off + 1
		case kafka.PartitionEOF:
			if off := int64(e.Offset); off > s.pos {
				s.pos = off
			}
			return recs, s.pos, nil
		}
	}
	return recs, s.pos, nil
}

// unroute removes the source's route, if any (invariants 2 and 3): the
// dispatcher stops sending to it, the partition leaves the assignment, and
// the event the dispatcher holds, possibly of that assignment, is routed
// (to nowhere) before unroute returns.
func (s *changelogSource) unroute() {
	if s.rt == nil {
		return
	}
	s.m.mu.Lock()
	if s.m.routes[s.key] == s.rt {
		delete(s.m.routes, s.key)
	}
	close(s.rt.done)
	s.m.mu.Unlock()
	s.rt = nil
	s.m.assignMu.Lock()
	err := s.m.c.IncrementalUnassign(s.tp(int64(kafka.OffsetInvalid)))
	s.m.assignMu.Unlock()
	if err != nil {
		s.m.log.Warn("restore consumer: unassign failed", "topic", s.key.Topic, "partition", s.key.Partition, "err", err)
	}
	// A barrier, not a critical section: once the dispatcher lets go of
	// pollMu, the event it held is routed.
	s.m.pollMu.Lock()
	s.m.pollMu.Unlock()
}

// close stops reading and releases the partition's claim. Call it once,
// when the restore has returned.
func (s *changelogSource) close() {
	s.unroute()
	s.m.mu.Lock()
	if held, ok := s.m.claims[s.key]; ok {
		close(held)
		delete(s.m.claims, s.key)
	}
	s.m.mu.Unlock()
}
