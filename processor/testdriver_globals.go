package processor

import (
	"fmt"
	"time"

	"github.com/eos-runner/eos-runner/changelog"
	"github.com/eos-runner/eos-runner/serde"
)

// Global tables in the test driver: a record piped to a global table's topic
// updates the table at once, before PipeInput returns, as the runner's
// global updater would once it reads the record (Kafka Streams'
// TopologyTestDriver does the same). Nothing is processed by a task.

// globalOf returns the view of the global table reading topic (full name),
// or nil.
func (d *TestDriver) globalOf(topic string) *globalView {
	for _, v := range d.globals.views {
		if v.topic == topic {
			return v
		}
	}
	return nil
}

// pipeGlobal writes one record to a global table's topic and applies it to
// the table, committed with its checkpoint.
func (d *TestDriver) pipeGlobal(v *globalView, key, value any, ts time.Time) error {
	inner := v.spec.ValueSerde.(serde.Timestamped).Inner
	kb, err := v.spec.KeySerde.Serialize(v.topic, key)
	if err != nil {
		return fmt.Errorf("test driver: serialize key for %s: %w", v.topic, err)
	}
	vb, err := inner.Serialize(v.topic, value)
	if err != nil {
		return fmt.Errorf("test driver: serialize value for %s: %w", v.topic, err)
	}
	p := d.partitionFor(v.topic, kb)
	off := d.prod.append(v.topic, p)
	rec, ok := v.converter()(changelog.ChangelogRecord{Key: kb, Value: vb, Offset: off, Timestamp: time.UnixMilli(ts.UnixMilli())})
	if !ok {
		return nil // skipped, as the updater skips it
	}
	store := d.db.Store(v.spec.Name, p)
	if rec.Value == nil {
		err = store.Delete(rec.Key)
	} else {
		err = store.Put(rec.Key, rec.Value)
	}
	if err != nil {
		return fmt.Errorf("test driver: global table %s: %w", v.spec.Name, err)
	}
	return d.db.Commit([]changelog.Commit{store.CommitAt(off + 1)})
}
