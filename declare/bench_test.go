package declare

import (
	"fmt"
	"testing"
	"time"

	"github.com/eos-runner/eos-runner/internal/bench"
	"github.com/eos-runner/eos-runner/processor"
	"github.com/eos-runner/eos-runner/serde"
	"github.com/eos-runner/eos-runner/topology"
)

// Declared against Go, through the test driver (the runner's record path
// without Kafka), in one run:
//
//	go test ./declare -run XXX -bench . -benchtime 20000x
//
// stateful is the bench's stateful topology (count per key); expressions is
// a filter and a mapValues, where expressions replace Go functions.

const statefulYAML = `application: {id: bench}
sources:
  in: {topic: in, key: string, value: bytes}
streams:
  counts:
    from: in
    steps:
      - groupByKey: true
      - count: {store: ` + bench.StoreCounts + `}
      - toStream: true
      - to: {topic: in-counts, value: int64}
`

const exprYAML = `application: {id: bench}
sources:
  in: {topic: in, key: string, value: json}
streams:
  s:
    from: in
    steps:
      - filter: int(value.n) % 10 != 0
      - mapValues: "{'n': value.n, 'double': value.n * 2}"
      - to: {topic: out}
`

func benchDriver(b *testing.B, topo *topology.Topology, value func(i int) any) {
	d, err := processor.NewTestDriver(topo, processor.TestDriverConfig{ApplicationID: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = fmt.Sprintf("key-%d", i)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := d.PipeInput("in", keys[i%len(keys)], value(i), time.UnixMilli(int64(i))); err != nil {
			b.Fatal(err)
		}
		if i%1000 == 999 {
			d.ReadOutput("in-counts")
			d.ReadOutput("out")
		}
	}
}

func declared(b *testing.B, text string) *topology.Topology {
	f, err := Parse("bench.yaml", []byte(text))
	if err != nil {
		b.Fatal(err)
	}
	topo, err := Compile(f, Options{})
	if err != nil {
		b.Fatal(err)
	}
	return topo
}

func BenchmarkStateful(b *testing.B) {
	value := func(int) any { return []byte("0123456789abcdef") }
	b.Run("go", func(b *testing.B) {
		topo, err := bench.StatefulTopology("in")
		if err != nil {
			b.Fatal(err)
		}
		benchDriver(b, topo, value)
	})
	b.Run("declared", func(b *testing.B) { benchDriver(b, declared(b, statefulYAML), value) })
}

func BenchmarkExpressions(b *testing.B) {
	value := func(i int) any { return map[string]any{"n": int64(i)} }
	b.Run("go", func(b *testing.B) {
		bl := topology.NewBuilder()
		bl.Stream([]string{"in"}, topology.Consumed{Key: serde.String{}, Value: serde.JSON{}}).
			Filter(func(_, v any) bool { return int64(num(m(v)["n"]))%10 != 0 }).
			MapValues(func(v any) (any, error) {
				n := num(m(v)["n"])
				return map[string]any{"n": n, "double": n * 2}, nil
			}).
			To("out", topology.Produced{Key: serde.String{}, Value: serde.JSON{}})
		topo, err := bl.Build()
		if err != nil {
			b.Fatal(err)
		}
		benchDriver(b, topo, value)
	})
	b.Run("declared", func(b *testing.B) { benchDriver(b, declared(b, exprYAML), value) })
}
