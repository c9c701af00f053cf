package topology

import (
	"fmt"
	"time"

	"github.com/eos-runner/eos-runner/serde"
)

// Windowed stream-stream joins (Kafka Streams' KStream#join, #leftJoin and
// #outerJoin with JoinWindows, 3.1+ semantics from KIP-633).
//
// The graph is Kafka Streams' (KStreamImplJoin):
//
//	this   -> WINDOWED(this store)  -> JOINTHIS  (other store, outer store) -> MERGE
//	other  -> WINDOWED(other store) -> JOINOTHER (this store, outer store)  -> MERGE
//
// Each WINDOWED node buffers its side's records in its side's window store
// and passes them on; each JOIN node looks the record up in the other side's
// store and forwards the joined results; MERGE interleaves both. The stores
// connect both sides, so both sources (or repartition sources) land in one
// sub-topology and every task sees partition p of both: co-partitioning by
// construction (the runner checks the partition counts at startup).
//
// The runtime is in streamjoinproc.go, the store layout in
// streamjoinstore.go.

// joinKind (inner, left, outer) is tablejoin.go's, shared with the table joins.

// Join joins this stream with other over a window: a record of this stream
// at t joins every record of other with the same key and a timestamp in
// [t-w.Before, t+w.After] (both inclusive), whichever arrives first. Each
// result is keyed by the key, valued j(key, thisValue, otherValue), and
// timestamped with the later of the two records. Records with a nil key or
// nil value are dropped and counted (eos_dropped_records_total{reason=
// "null-key-or-value"}), as in Kafka Streams. A record whose window has
// closed is not dropped: as in Kafka Streams it joins what the other side's
// buffer still holds (see streamjoinproc.go on late records).
//
// If either side's key was changed upstream, that side is repartitioned
// first, through `<application.id>-<name>-left-repartition` (this side) or
// `-right-repartition` (other side), where name is sj.Name, else the Named
// option, else the upstream node's name.
//
// Stores (each a window store retained w.Before+w.After+w.Grace+1ms, with a
// compact,delete changelog `<application.id>-<store>-changelog`; processing
// waits for their restore): `<sj.Name>-this-join-store` and
// `<sj.Name>-other-join-store`, or names generated from the join nodes'
// (KSTREAM-JOINTHIS-n-store, KSTREAM-JOINOTHER-n-store) when sj.Name is
// empty. sj.Key, sj.Value and sj.OtherValue are required.
func (s *Stream) Join(other *Stream, j ValueJoiner, w JoinWindows, sj StreamJoined, opts ...Option) *Stream {
	return s.streamJoin(innerJoin, other, j, w, sj, opts)
}

// LeftJoin is Join that also emits each record of this stream that joined
// nothing, as j(key, thisValue, nil) at the record's timestamp, once its
// window has closed (stream time past t+w.After+w.Grace) and only if no
// record of other joined it meanwhile (KS 3.1+: no spurious left results).
// An out-of-order record of this stream whose window has already ended
// (t+w.After before stream time) and that joins nothing is emitted at once,
// as Kafka Streams does. A record with a nil key and a value is emitted at
// once as j(nil, thisValue, nil) (KIP-962, KS 3.7+).
//
// The records waiting for their window to close live in a third store,
// `<sj.Name>-left-shared-join-store` (generated:
// KSTREAM-OUTERSHARED-n-store), a changelogged window store that holds only
// records not yet joined and deletes each once it is emitted or joined.
func (s *Stream) LeftJoin(other *Stream, j ValueJoiner, w JoinWindows, sj StreamJoined, opts ...Option) *Stream {
	return s.streamJoin(leftJoin, other, j, w, sj, opts)
}

// OuterJoin is LeftJoin on both sides: records of other that joined nothing
// are emitted too, as j(key, nil, otherValue), once their window (stream
// time past t+w.Before+w.Grace) has closed. Stores as for LeftJoin, with
// Kafka Streams' outer names: `<sj.Name>-outer-this-join-store`,
// `<sj.Name>-outer-other-join-store` and `<sj.Name>-outer-shared-join-store`
// (generated: KSTREAM-OUTERTHIS-n-store, KSTREAM-OUTEROTHER-n-store,
// KSTREAM-OUTERSHARED-n-store).
func (s *Stream) OuterJoin(other *Stream, j ValueJoiner, w JoinWindows, sj StreamJoined, opts ...Option) *Stream {
	return s.streamJoin(outerJoin, other, j, w, sj, opts)
}

// streamJoin builds the join graph of KStreamImplJoin.join, naming nodes
// and stores as Kafka Streams does.
func (s *Stream) streamJoin(kind joinKind, other *Stream, j ValueJoiner, w JoinWindows, sj StreamJoined, opts []Option) *Stream {
	b := s.b
	var o nodeOptions
	for _, opt := range opts {
		opt(&o)
	}
	what := fmt.Sprintf("%v after %q", kind, s.node.Name)
	switch {
	case other == nil:
		b.errorf("%s: no other stream", what)
		return s
	case other.b != b:
		b.errorf("%s: the other stream %q belongs to another Builder", what, other.node.Name)
		return s
	}
	if j == nil {
		b.errorf("%s: no value joiner", what)
	}
	if err := w.Validate(); err != nil {
		b.errorf("%s: %w", what, err)
	}
	if sj.Key == nil || sj.Value == nil || sj.OtherValue == nil {
		b.errorf("%s: StreamJoined needs Key, Value and OtherValue serdes (for the join stores)", what)
	}

	// KStreamImpl.doJoin: a side whose key changed is repartitioned first.
	this := s
	if this.keyChanged {
		this = this.Repartition(repartitionName(sj.Name, o.name, this.node.Name, "-left"), Produced{Key: sj.Key, Value: sj.Value})
	}
	if other.keyChanged {
		other = other.Repartition(repartitionName(sj.Name, o.name, other.node.Name, "-right"), Produced{Key: sj.Key, Value: sj.OtherValue})
	}

	leftOuter, rightOuter := kind != innerJoin, kind == outerJoin
	thisSuffix, otherSuffix := "-this-join", "-other-join"
	thisPrefix, otherPrefix := "JOINTHIS", "JOINOTHER"
	if rightOuter {
		thisSuffix, thisPrefix = "-outer-this-join", "OUTERTHIS"
	}
	if leftOuter {
		otherSuffix, otherPrefix = "-outer-other-join", "OUTEROTHER"
	}
	named := func(suffix string) []Option {
		if o.name == "" {
			return nil
		}
		return []Option{Named(o.name + suffix)}
	}
	thisWin, _ := b.newNode(ProcessorNode, "WINDOWED", named("-this-windowed"))
	otherWin, _ := b.newNode(ProcessorNode, "WINDOWED", named("-other-windowed"))
	joinThis, _ := b.newNode(ProcessorNode, thisPrefix, named(thisSuffix))
	joinThisSeq := b.seq - 1 // the number KS's generated names share
	joinOther, _ := b.newNode(ProcessorNode, otherPrefix, named(otherSuffix))
	merge, _ := b.newNode(ProcessorNode, "MERGE", named("-merge"))

	// Store names: StreamJoinedStoreFactory (`<storeName><suffix>-store`, or
	// the generated join node name + "-store") and
	// OuterStreamJoinStoreFactory.
	genThis := fmt.Sprintf("KSTREAM-%s-%010d", thisPrefix, joinThisSeq)
	genOther := fmt.Sprintf("KSTREAM-%s-%010d", otherPrefix, joinThisSeq+1)
	thisStore, otherStore := genThis+"-store", genOther+"-store"
	outerStore := fmt.Sprintf("KSTREAM-OUTERSHARED-%010d-store", joinThisSeq)
	sharedSuffix := "-left-shared-join"
	if rightOuter {
		sharedSuffix = "-outer-shared-join"
	}
	if sj.Name != "" {
		thisStore, otherStore = sj.Name+thisSuffix+"-store", sj.Name+otherSuffix+"-store"
		outerStore = sj.Name + sharedSuffix + "-store"
	}
	if !leftOuter {
		outerStore = ""
	}
	thisSpec, otherSpec, outerSpec := joinStoreSpecs(w, sj, thisStore, otherStore, outerStore)
	b.AddStore(thisSpec)
	b.AddStore(otherSpec)
	if leftOuter {
		b.AddStore(outerSpec)
	}

	shared := newJoinTrackers()
	thisWin.Supplier = func() Processor {
		return &joinWindowProcessor{store: thisStore}
	}
	thisWin.StoreNames = []string{thisStore}
	otherWin.Supplier = func() Processor {
		return &joinWindowProcessor{store: otherStore}
	}
	otherWin.StoreNames = []string{otherStore}
	joinThis.Supplier = func() Processor {
		return &streamJoinProcessor{left: true, w: w, joiner: j, outer: leftOuter,
			otherStore: otherStore, outerStore: outerStore, trackers: shared}
	}
	joinThis.StoreNames = withOuter([]string{otherStore}, outerStore)
	joinOther.Supplier = func() Processor {
		return &streamJoinProcessor{left: false, w: w, joiner: j, outer: rightOuter,
			otherStore: thisStore, outerStore: outerStore, trackers: shared}
	}
	joinOther.StoreNames = withOuter([]string{thisStore}, outerStore)
	merge.Supplier = stateless(func(ctx ProcessorContext, r Record) error { return ctx.Forward(r) })

	connect(this.node, thisWin)
	connect(other.node, otherWin)
	connect(thisWin, joinThis)
	connect(otherWin, joinOther)
	connect(joinThis, merge)
	connect(joinOther, merge)
	return &Stream{b: b, node: merge}
}

// repartitionName is the repartition topic base name of a join side whose
// key changed (KStreamImpl.doJoin: `<name>-left` / `<name>-right`, else the
// upstream node's name).
func repartitionName(storeName, nodeName, upstream, side string) string {
	switch {
	case storeName != "":
		return storeName + side
	case nodeName != "":
		return nodeName + side
	}
	return upstream
}

func withOuter(stores []string, outer string) []string {
	if outer != "" {
		stores = append(stores, outer)
	}
	return stores
}

// joinStoreSpecs declares the join's stores: both sides' buffers with Kafka
// Streams' window size (StreamJoinedStoreFactory: Before+After) and its
// retention (size + grace) plus one millisecond and the shared outer store, which keeps what it
// holds until it is emitted or joined.
func joinStoreSpecs(w JoinWindows, sj StreamJoined, thisName, otherName, outerName string) (this, other, outer StoreSpec) {
	size := w.Before + w.After
	if size <= 0 {
		size = time.Millisecond // a window store needs a positive size; [t, t] joins equal timestamps
	}
	// KS retains before+after+grace, and its buffers expire by their own
	// largest timestamp, which lags the join's stream time whenever the
	// other side is ahead. Ours expire by the task's stream time, under
	// which a record at exactly stream time - (before+after+grace) would be
	// gone while a record that is not late can still join it (a left record
	// at t arriving at stream time t+grace joins right records down to
	// t-before). One millisecond more keeps every record a record that is
	// not late can join.
	retention := w.Before + w.After + w.Grace + time.Millisecond
	buffer := func(name string, v serde.Serde) StoreSpec {
		spec := StoreSpec{Name: name, KeySerde: sj.Key, Kind: WindowStoreKind,
			Retention: retention, WindowSize: size, Grace: w.Grace}
		if sj.Key != nil && v != nil {
			spec.ValueSerde = joinBufferSerde{Inner: v}
		}
		return spec
	}
	this, other = buffer(thisName, sj.Value), buffer(otherName, sj.OtherValue)
	outer = StoreSpec{Name: outerName, Kind: WindowStoreKind, Retention: RetainForever, WindowSize: time.Millisecond, Grace: w.Grace}
	if sj.Key != nil && sj.Value != nil && sj.OtherValue != nil {
		outer.KeySerde = outerJoinKeySerde{Inner: sj.Key}
		outer.ValueSerde = outerJoinValueSerde{Left: sj.Value, Right: sj.OtherValue}
	}
	return this, other, outer
}
