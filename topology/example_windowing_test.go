package topology_test

import (
	"fmt"
	"slices"
	"time"

	"github.com/eos-runner/eos-runner/serde"
	"github.com/eos-runner/eos-runner/topology"
)

// Views per page per minute, final results only: one record per page and
// minute, once stream time passes the minute's end plus the grace.
func ExampleWindowedStream_Emit() {
	size := time.Minute
	b := topology.NewBuilder()
	b.Stream([]string{"pageviews"}, topology.Consumed{Key: serde.String{}, Value: serde.String{}}).
		GroupByKey(topology.Grouped{Key: serde.String{}, Value: serde.String{}}).
		WindowedBy(topology.TimeWindows{Size: size, Grace: 10 * time.Second}).
		Emit(topology.EmitOnWindowClose). // the default, EmitOnWindowUpdate, emits every change
		Count(topology.Materialized{Name: "views-per-minute"}).
		ToStream().
		To("views-per-page-per-minute", topology.Produced{
			Key:   serde.TimeWindowed{Inner: serde.String{}, Size: size}, // Kafka Streams' windowed key bytes
			Value: serde.Int64{},
		})
	topo, err := b.Build()
	if err != nil {
		panic(err)
	}
	var stores []string
	for name := range topo.Stores {
		stores = append(stores, name)
	}
	slices.Sort(stores)
	fmt.Println(stores)
	// Output: [views-per-minute views-per-minute-emit-final]
}

// Tumbling windows (Advance zero) give each record one window; hopping
// windows (Advance below Size) several.
func ExampleTimeWindows_WindowsFor() {
	ts := time.UnixMilli(95_000) // 1m35s after the epoch
	tumbling := topology.TimeWindows{Size: time.Minute}
	hopping := topology.TimeWindows{Size: time.Minute, Advance: 30 * time.Second}
	for _, w := range tumbling.WindowsFor(ts) {
		fmt.Println("tumbling", w.Start.UnixMilli(), w.End.UnixMilli())
	}
	for _, w := range hopping.WindowsFor(ts) {
		fmt.Println("hopping", w.Start.UnixMilli(), w.End.UnixMilli())
	}
	// Output:
	// tumbling 60000 120000
	// hopping 60000 120000
	// hopping 90000 150000
}

// Grace: a window [0, 1m) with 10s of grace stays open until stream time
// (the largest record timestamp its task has seen) reaches 1m10s. A record
// for it that arrives later is late: dropped and counted in
// eos_dropped_records_total{reason="late"}, or dead-lettered with class
// "late" under late.records=dlq.
func ExampleTimeWindows_IsClosed() {
	w := topology.TimeWindows{Size: time.Minute, Grace: 10 * time.Second}
	end := time.UnixMilli(60_000)
	for _, st := range []int64{65_000, 69_999, 70_000} {
		fmt.Printf("stream time %5d: closed %v\n", st, w.IsClosed(end, time.UnixMilli(st)))
	}
	// Output:
	// stream time 65000: closed false
	// stream time 69999: closed false
	// stream time 70000: closed true
}
