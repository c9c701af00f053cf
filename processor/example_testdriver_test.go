package processor_test

import (
	"fmt"
	"strings"
	"time"

	"github.com/eos-runner/eos-runner/processor"
	"github.com/eos-runner/eos-runner/serde"
	"github.com/eos-runner/eos-runner/topology"
)

// A word count tested without a broker: lines are piped in, split into
// words, regrouped by word through a repartition topic and counted; the
// counts are read from the output topic and from the store.
func ExampleTestDriver() {
	b := topology.NewBuilder()
	b.Stream([]string{"lines"}, topology.Consumed{Key: serde.String{}, Value: serde.String{}}).
		FlatMapValues(func(v any) ([]any, error) {
			var words []any
			for _, w := range strings.Fields(v.(string)) {
				words = append(words, w)
			}
			return words, nil
		}).
		GroupBy(func(_, word any) any { return word }, topology.Grouped{Key: serde.String{}, Value: serde.String{}}).
		Count(topology.Materialized{Name: "word-counts"}).
		ToStream().
		To("counts", topology.Produced{Key: serde.String{}, Value: serde.Int64{}})
	topo, err := b.Build()
	if err != nil {
		panic(err)
	}
	d, err := processor.NewTestDriver(topo, processor.TestDriverConfig{Partitions: map[string]int{"lines": 2}})
	if err != nil {
		panic(err)
	}
	defer d.Close()

	t0 := time.UnixMilli(1_700_000_000_000)
	_ = d.PipeInput("lines", "l1", "to be or not to be", t0)
	_ = d.PipeInput("lines", "l2", "to go", t0.Add(time.Second))

	out, _ := d.ReadRecords("counts", serde.String{}, serde.Int64{})
	var counts []string
	for _, r := range out {
		counts = append(counts, fmt.Sprintf("%v=%v", r.Key, r.Value))
	}
	fmt.Println(strings.Join(counts, " "))
	store, _ := d.KeyValueStore("word-counts")
	n, _ := store.Get("to")
	fmt.Println("to:", n)
	// Output:
	// to=1 be=1 or=1 not=1 to=2 be=2 to=3 go=1
	// to: 3
}
