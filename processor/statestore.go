package processor

import (
	"context"

	"github.com/eos-runner/eos-runner/changelog"
	"github.com/eos-runner/eos-runner/topology"
)

// stateStore is a task's store of any kind (key-value, window, session): a
// typed view over one changelog store partition. Every kind keeps the same
// discipline: the writes of the record being processed stay in an overlay
// that reads see; flush moves them to the store partition's pending batch and
// their changelog records to the collector once the record succeeded;
// discard drops them when it failed. Owned by its task's worker; the poll
// loop uses commitAt and abort with the workers drained, the restorer uses
// restore before the task runs.
type stateStore interface {
	storeSpec() topology.StoreSpec
	// changelogTopic and changelogPartition name the store's changelog partition.
	changelogTopic() string
	changelogPartition() int32
	// flush moves this record's writes to the pending batch and queues their
	// changelog records; discard drops them.
	flush() error
	discard()
	// pendingCount is the number of writes in the pending batch.
	pendingCount() int
	// commitAt is the store partition's part of DB.Commit, with its new
	// checkpoint (-1: unchanged).
	commitAt(checkpoint int64) changelog.Commit
	// abort drops this record's writes and the pending batch.
	abort()
	// restore brings the store partition up to its changelog's end;
	// streamTime is the task's committed stream time (window and session
	// stores leave expired windows out).
	restore(ctx context.Context, src changelog.Source, opts changelog.RestoreOptions) (changelog.RestoreResult, error)
}

var (
	_ stateStore = (*kvStore)(nil)
	_ stateStore = (*windowStore)(nil)
	_ stateStore = (*sessionStore)(nil)
	_ stateStore = (*ttlStore)(nil)
)

func (s *kvStore) collector() *collector                      { return s.coll }
func (s *kvStore) storeSpec() topology.StoreSpec              { return s.spec }
func (s *kvStore) changelogTopic() string                     { return s.topic }
func (s *kvStore) changelogPartition() int32                  { return s.partition }
func (s *kvStore) pendingCount() int                          { return s.cs.PendingCount() }
func (s *kvStore) commitAt(checkpoint int64) changelog.Commit { return s.cs.CommitAt(checkpoint) }
func (s *kvStore) abort()                                     { s.discard(); s.dropCache(); s.cs.Abort() }
func (s *kvStore) restore(ctx context.Context, src changelog.Source, opts changelog.RestoreOptions) (changelog.RestoreResult, error) {
	return changelog.Restore(ctx, s.cs, src, opts)
}
