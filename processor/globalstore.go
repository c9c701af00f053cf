package processor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/eos-runner/eos-runner/changelog"
	"github.com/eos-runner/eos-runner/serde"
	"github.com/eos-runner/eos-runner/topology"
)

// Global tables (topology.StoreSpec.Global), Kafka Streams' GlobalKTable
// and its global stream thread. Every instance holds all partitions of a
// global table's topic, one store partition each, in its own Pebble DB.
//
//   - Before any task is created, every partition is restored from its
//     checkpoint to the end of the topic (as a source-topic store's restore
//     converts records: sourcetopic.go). The runner subscribes only after.
//   - Then one goroutine per partition tails the topic (read_committed) and
//     applies each batch with its checkpoint, the offset after it, in one
//     DB.Commit: the store and its checkpoint move together, so a crash
//     replays only the tail, as for any store.
//   - Tasks read through a globalView: committed state only
//     (changelog.Reader), safe beside the updater. A key is looked up in
//     every partition (the topic's producer may have partitioned it by any
//     rule); if several hold it, the latest timestamp wins.
//   - Updates are not part of the tasks' transactions: a task reads the
//     table as of the moment it processes a record, as in Kafka Streams. A
//     replay after an abort may see a newer value than the first attempt
//     did.
//   - Global store partitions count as owned by the runner, so the state
//     cleaner never deletes them.
type globalStores struct {
	db    *changelog.DB
	log   *slog.Logger
	views map[string]*globalView // by store name
}

// globalView is a task's read-only view of a global table.
type globalView struct {
	spec    topology.StoreSpec
	topic   string
	readers []*changelog.Reader // by partition
}

var _ topology.KeyValueStore = (*globalView)(nil)

// newGlobalStores opens the views of every global store of topo. parts
// gives each source topic's partition count (full name).
func newGlobalStores(db *changelog.DB, topo *topology.Topology, app string, parts func(topic string) (int, bool), log *slog.Logger) (*globalStores, error) {
	g := &globalStores{db: db, log: log, views: map[string]*globalView{}}
	var errs []error
	for name, spec := range topo.Stores {
		if !spec.Global {
			continue
		}
		topic := topology.TopicName(app, spec.SourceTopic, false)
		n, ok := parts(topic)
		if !ok {
			errs = append(errs, fmt.Errorf("global table %s: topic %q does not exist", name, topic))
			continue
		}
		v := &globalView{spec: spec, topic: topic}
		for p := range int32(n) {
			v.readers = append(v.readers, db.Reader(name, p))
		}
		g.views[name] = v
	}
	return g, errors.Join(errs...)
}

// owned lists the global store partitions, for the state cleaner.
func (g *globalStores) owned(into map[changelog.StorePartition]bool) {
	if g == nil {
		return
	}
	for name, v := range g.views {
		for p := range v.readers {
			into[changelog.StorePartition{Store: name, Partition: int32(p)}] = true
		}
	}
}

// stores returns the views by store name, for the tasks.
func (g *globalStores) stores() map[string]topology.KeyValueStore {
	out := map[string]topology.KeyValueStore{}
	if g == nil {
		return out
	}
	for name, v := range g.views {
		out[name] = v
	}
	return out
}

// converter returns the record conversion of a global store partition.
func (v *globalView) converter() func(changelog.ChangelogRecord) (changelog.ChangelogRecord, bool) {
	ts := v.spec.ValueSerde.(serde.Timestamped)
	return recordConverter(v.spec, v.spec.KeySerde, ts.Inner, nil, v.topic)
}

// run restores every partition of every global store, then reports ready
// (closes restored) and keeps them current until ctx is done. It returns
// the first error; restored is closed only on success.
func (g *globalStores) run(ctx context.Context, c *kafka.Consumer, txnTimeout time.Duration, restored chan<- struct{}) error {
	mux, err := newRestoreMux(c, g.log)
	if err != nil {
		return err
	}
	defer mux.close()
	mctx, stopMux := context.WithCancel(ctx)
	var muxDone sync.WaitGroup
	muxDone.Add(1)
	go func() { defer muxDone.Done(); mux.run(mctx) }()
	defer func() { stopMux(); muxDone.Wait() }()

	type part struct {
		v *globalView
		p int32
	}
	var all []part
	names := make([]string, 0, len(g.views))
	for name := range g.views {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		for p := range g.views[name].readers {
			all = append(all, part{g.views[name], int32(p)})
		}
	}
	// Restore, all partitions at once.
	errs := make([]error, len(all))
	var wg sync.WaitGroup
	for i, pt := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = g.restore(ctx, mux, pt.v, pt.p, txnTimeout)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	close(restored)
	// Keep current.
	errs = make([]error, len(all))
	for i, pt := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = g.tail(ctx, mux, pt.v, pt.p)
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return errors.Join(errs...)
}

// restore brings one global store partition to the end of its topic.
func (g *globalStores) restore(ctx context.Context, mux *restoreMux, v *globalView, p int32, txnTimeout time.Duration) error {
	cs, err := mux.open(ctx, v.topic, p)
	if err != nil {
		return err
	}
	defer cs.close()
	retention, err := mux.deleteRetention(ctx, v.topic)
	if err != nil {
		return err
	}
	src := &sourceStoreSource{inner: cs, until: math.MaxInt64, convert: v.converter()}
	_, err = changelog.Restore(ctx, g.db.Store(v.spec.Name, p), src, changelog.RestoreOptions{
		MaxStateAge: maxStateAge(retention, txnTimeout),
		Report: func(pr changelog.Progress) {
			g.log.Info("restoring global table", "store", pr.Store, "partition", pr.Partition, "restored", pr.Restored,
				"percent", strconv.FormatFloat(pr.Percent, 'f', 1, 64))
		},
	})
	if err != nil {
		return fmt.Errorf("global table %s[%d]: restore: %w", v.spec.Name, p, err)
	}
	return nil
}

// tail applies the records appended to one partition after its restore,
// each batch with its checkpoint in one DB.Commit, until ctx is done.
func (g *globalStores) tail(ctx context.Context, mux *restoreMux, v *globalView, p int32) error {
	store := g.db.Store(v.spec.Name, p)
	cp, ok, err := store.Checkpoint()
	if err != nil {
		return fmt.Errorf("global table %s[%d]: %w", v.spec.Name, p, err)
	}
	if !ok {
		cp = 0
	}
	cs, err := mux.open(ctx, v.topic, p)
	if err != nil {
		return err
	}
	defer cs.close()
	if err := cs.Seek(ctx, cp); err != nil {
		return err
	}
	convert := v.converter()
	for {
		recs, pos, err := cs.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("global table %s[%d]: %w", v.spec.Name, p, err)
		}
		for _, r := range recs {
			c, ok := convert(r)
			if !ok {
				continue
			}
			if c.Value == nil {
				err = store.Delete(c.Key)
			} else {
				err = store.Put(c.Key, c.Value)
			}
			if err != nil {
				return fmt.Errorf("global table %s[%d]: %w", v.spec.Name, p, err)
			}
		}
		if pos > cp {
			if err := g.db.Commit([]changelog.Commit{store.CommitAt(pos)}); err != nil {
				return fmt.Errorf("global table %s[%d]: commit: %w", v.spec.Name, p, err)
			}
			cp = pos
		}
	}
}

// Name implements topology.KeyValueStore.
func (v *globalView) Name() string { return v.spec.Name }

// Get implements topology.KeyValueStore: the key's value in whichever
// partition holds it (the latest, if several do).
func (v *globalView) Get(key any) (any, error) {
	kb, err := storeKeyBytes(v.spec, v.topic, key)
	if err != nil {
		return nil, err
	}
	var best any
	var bestTS time.Time
	for _, r := range v.readers {
		b, err := r.Get(kb)
		if err != nil {
			return nil, err
		}
		if b == nil {
			continue
		}
		val, err := v.spec.ValueSerde.Deserialize(v.topic, b)
		if err != nil {
			return nil, fmt.Errorf("global table %s: value: %w", v.spec.Name, err)
		}
		if vt, ok := val.(serde.ValueAndTimestamp); best == nil || (ok && vt.Timestamp.After(bestTS)) {
			best, bestTS = val, vt.Timestamp
		}
	}
	return best, nil
}

// errGlobalReadOnly: tasks never write a global table.
var errGlobalReadOnly = errors.New("a global table is read-only: it follows its topic")

// Put implements topology.KeyValueStore; a global table is read-only.
func (v *globalView) Put(_, _ any) error {
	return fmt.Errorf("global table %s: %w", v.spec.Name, errGlobalReadOnly)
}

// Delete implements topology.KeyValueStore; a global table is read-only.
func (v *globalView) Delete(_ any) error {
	return fmt.Errorf("global table %s: %w", v.spec.Name, errGlobalReadOnly)
}

// Range implements topology.KeyValueStore over every partition, in key-byte
// order.
func (v *globalView) Range(from, to any, fn func(key, value any) error) error {
	var lo, hi []byte
	var err error
	if from != nil {
		if lo, err = storeKeyBytes(v.spec, v.topic, from); err != nil {
			return err
		}
	}
	if to != nil {
		if hi, err = storeKeyBytes(v.spec, v.topic, to); err != nil {
			return err
		}
	}
	type kv struct{ k, v []byte }
	var all []kv
	for _, r := range v.readers {
		if err := r.Range(lo, hi, func(k, val []byte) error {
			all = append(all, kv{bytes.Clone(k), bytes.Clone(val)})
			return nil
		}); err != nil {
			return err
		}
	}
	sort.Slice(all, func(i, j int) bool { return bytes.Compare(all[i].k, all[j].k) < 0 })
	for _, e := range all {
		key, err := v.spec.KeySerde.Deserialize(v.topic, e.k)
		if err != nil {
			return fmt.Errorf("global table %s: key: %w", v.spec.Name, err)
		}
		val, err := v.spec.ValueSerde.Deserialize(v.topic, e.v)
		if err != nil {
			return fmt.Errorf("global table %s: value: %w", v.spec.Name, err)
		}
		if err := fn(key, val); err != nil {
			return err
		}
	}
	return nil
}

// startGlobals restores the topology's global tables and starts keeping
// them current, before any task exists; it returns once they are restored
// (or on the first error). Their updater stops with the runner's context; an
// error it meets later stops the runner (globalFatal).
func (r *Runner) startGlobals(ctx context.Context) error {
	g, err := newGlobalStores(r.db, r.topo, r.cfg.ApplicationID, func(topic string) (int, bool) {
		n, ok := r.plan.topics[topic]
		return n, ok
	}, r.log)
	if err != nil {
		return err
	}
	if len(g.views) == 0 {
		return nil
	}
	c, err := kafka.NewConsumer(r.kafkaConfig("consumer", kafka.ConfigMap{
		"go.logs.channel.enable": true,
		"group.id":               r.cfg.ApplicationID + "-global",
		"enable.auto.commit":     false,
		"isolation.level":        "read_committed",
		"enable.partition.eof":   true,
		"auto.offset.reset":      "earliest",
		"session.timeout.ms":     int(r.cfg.SessionTimeout.Milliseconds()),
		"fetch.wait.max.ms":      100,
		"fetch.error.backoff.ms": 10,
	}))
	if err != nil {
		return fmt.Errorf("global table consumer: %w", err)
	}
	go r.drainLogs("global-consumer", c.Logs())
	restored := make(chan struct{})
	failed := make(chan error, 1)
	go func() {
		defer c.Close()
		if err := g.run(ctx, c, r.cfg.TransactionTimeout, restored); err != nil {
			r.globalFatal.CompareAndSwap(nil, &err)
			failed <- err
		}
	}()
	start := time.Now()
	select {
	case <-restored:
		r.globals = g
		r.log.Info("global tables restored", "stores", len(g.views), "took", time.Since(start))
		return nil
	case err := <-failed:
		return fmt.Errorf("%w: global tables: %w", ErrFatal, err)
	case <-ctx.Done():
		return ctx.Err()
	}
}
