package topology

import (
	"errors"
	"fmt"
	"time"

	"github.com/eos-runner/eos-runner/serde"
)

// ValueJoiner computes a join result from the record key and the two sides'
// values, Kafka Streams' ValueJoinerWithKey. In a left or outer join the
// missing side is nil. A returned error fails the record under the error
// policy, as any processor error does.
type ValueJoiner func(key, left, right any) (any, error)

// JoinWindows bound a windowed stream-stream join, Kafka Streams'
// JoinWindows: a left record at t joins the right records in
// [t-Before, t+After] (so a right record at t joins the left records in
// [t-After, t+Before]). Both bounds are inclusive. Grace is how long after a
// window's end records are still accepted; a record later than that is
// dropped as late (counted, or dead-lettered under late.records=dlq).
//
// Left and outer joins emit a record's non-joined result (the other side
// nil) only once its window has closed (stream time past t+After+Grace for
// a left record), and only if no record joined it (KS 3.1+, KIP-633): a
// non-joined result is never contradicted by a later join.
//
// The join keeps each side's records in a window store retained for
// Before+After+Grace, changelogged as window stores are.
type JoinWindows struct {
	Before, After time.Duration // >= 0; TimeDifference sets both
	Grace         time.Duration // >= 0
}

// JoinTimeDifference is KS's JoinWindows.ofTimeDifferenceAndGrace: records
// within d of each other, either way, join.
func JoinTimeDifference(d, grace time.Duration) JoinWindows {
	return JoinWindows{Before: d, After: d, Grace: grace}
}

// Validate reports a definition Kafka Streams would refuse, naming the
// field.
func (w JoinWindows) Validate() error {
	var errs []error
	if w.Before < 0 {
		errs = append(errs, fmt.Errorf("JoinWindows.Before %v: must not be negative", w.Before))
	}
	if w.After < 0 {
		errs = append(errs, fmt.Errorf("JoinWindows.After %v: must not be negative", w.After))
	}
	if w.Grace < 0 {
		errs = append(errs, fmt.Errorf("JoinWindows.Grace %v: must not be negative", w.Grace))
	}
	for _, f := range []struct {
		name string
		d    time.Duration
	}{{"Before", w.Before}, {"After", w.After}, {"Grace", w.Grace}} {
		if err := wholeMillis("JoinWindows", f.name, f.d); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Joined gives a stream-table join its serdes, Kafka Streams' Joined: the
// stream's key and value serdes, used when the stream must be repartitioned
// before the join (its key was changed upstream), and a name for that
// repartition topic.
type Joined struct {
	Key, Value serde.Serde
	// Name names the repartition topic, `<application.id>-<Name>-repartition`;
	// empty: generated from the join node's name.
	Name string
}

// StreamJoined gives a stream-stream join its serdes and names, Kafka
// Streams' StreamJoined: the key serde, both sides' value serdes (for the
// join's window stores and for repartitioning a side whose key changed), and
// the name the stores and repartition topics derive from.
type StreamJoined struct {
	Key        serde.Serde
	Value      serde.Serde // this (left) side's value serde
	OtherValue serde.Serde // the other (right) side's value serde
	Name       string      // prefix of the stores and repartition topics (Stream.Join lists each kind's); empty: generated
}
