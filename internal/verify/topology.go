package verify

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/eos-runner/eos-runner/serde"
	"github.com/eos-runner/eos-runner/topology"
)

// Store names of the verification topology. Each is backed by the changelog
// `<application.id>-<store>-changelog`.
const (
	StoreSum = "sum"
	StoreMin = "min"
	StoreMax = "max"
	StoreCnt = "cnt"
	// StoreWin holds the windowed count and sum; its emit-final buffer is
	// StoreWin + "-emit-final".
	StoreWin = "win"
)

// The windowed aggregate: tumbling windows of event time (the record
// timestamps), final results only. Generate's default disorder stays within
// WindowGrace, so only the records it writes late on purpose are dropped.
const (
	WindowSize  = 5 * time.Second
	WindowGrace = time.Second
)

// Stores lists every store of the verification topology, the emit-final
// buffer included: each has a changelog partition per input partition.
func Stores() []string {
	return []string{StoreSum, StoreMin, StoreMax, StoreCnt, StoreWin, StoreWin + "-emit-final"}
}

// Output topic suffixes, appended to the input topic's name with a dash.
const (
	suffixEcho = "echo"
	suffixSum  = StoreSum
	suffixMin  = StoreMin
	suffixMax  = StoreMax
	suffixCnt  = StoreCnt
	suffixWin  = StoreWin
)

// OutputTopics lists the topics the verification topology writes for input
// topic input, echo first: T-echo, T-sum, T-min, T-max, T-cnt.
func OutputTopics(input string) []string {
	return []string{
		outputTopic(input, suffixEcho),
		outputTopic(input, suffixSum),
		outputTopic(input, suffixMin),
		outputTopic(input, suffixMax),
		outputTopic(input, suffixCnt),
	}
}

func outputTopic(input, suffix string) string { return input + "-" + suffix }

// WindowedOutputTopic is where the topology writes each closed window's final
// count and sum, T-win: key serde.TimeWindowed (the input key and the
// window's start, Kafka Streams' layout), value "<count>,<sum>" in decimal.
// It is not among OutputTopics, whose records answer input records one for
// one.
func WindowedOutputTopic(input string) string { return outputTopic(input, suffixWin) }

// Topology builds the verification topology for input topic input: one
// sub-topology whose source (string key, decimal-string value) feeds T-echo
// unchanged and four per-key aggregations (Reduce for sum, min and max, Count
// for cnt), each emitting every update to its topic with the key unchanged
// and the aggregate as a decimal string. The stores are named sum, min, max
// and cnt; their values are int64 (serde.Int64, as Kafka Streams' Long serde).
//
// A fifth aggregation counts and sums each key's values per tumbling window
// of WindowSize with WindowGrace, final results only (EmitOnWindowClose),
// into store win (and its emit-final buffer) and WindowedOutputTopic.
// Late records (beyond grace) are dropped by the aggregation alone (the
// runner counts them in eos_dropped_records_total{reason="late"}); the other
// outputs still see them, and Check proves that none is counted in a window.
func Topology(input string) (*topology.Topology, error) {
	if input == "" {
		return nil, errors.New("verify: topology: empty input topic")
	}
	var (
		str = serde.String{}
		dec = serde.DecimalString{}
		out = topology.Produced{Key: str, Value: dec}
		b   = topology.NewBuilder()
	)
	src := b.Stream([]string{input}, topology.Consumed{Key: str, Value: dec})
	src.To(outputTopic(input, suffixEcho), out)

	grouped := src.GroupByKey(topology.Grouped{Key: str, Value: dec})
	reduce := func(store string, fn func(agg, v int64) int64) {
		grouped.Reduce(func(agg, v any) (any, error) {
			a, ok1 := agg.(int64)
			x, ok2 := v.(int64)
			if !ok1 || !ok2 {
				return nil, fmt.Errorf("verify: %s: want int64 aggregate and value, got %T and %T", store, agg, v)
			}
			return fn(a, x), nil
		}, topology.Materialized{Name: store, Key: str, Value: serde.Int64{}}).
			ToStream().To(outputTopic(input, store), out)
	}
	reduce(StoreSum, func(a, x int64) int64 { return a + x })
	reduce(StoreMin, func(a, x int64) int64 { return min(a, x) })
	reduce(StoreMax, func(a, x int64) int64 { return max(a, x) })
	grouped.Count(topology.Materialized{Name: StoreCnt, Key: str, Value: serde.Int64{}}).
		ToStream().To(outputTopic(input, suffixCnt), out)

	grouped.
		WindowedBy(topology.TimeWindows{Size: WindowSize, Grace: WindowGrace}).
		Emit(topology.EmitOnWindowClose).
		Aggregate(func() any { return CountSum{} }, func(_, v, agg any) (any, error) {
			a, ok1 := agg.(CountSum)
			x, ok2 := v.(int64)
			if !ok1 || !ok2 {
				return nil, fmt.Errorf("verify: %s: want CountSum aggregate and int64 value, got %T and %T", StoreWin, agg, v)
			}
			return CountSum{Count: a.Count + 1, Sum: a.Sum + x}, nil
		}, nil, topology.Materialized{Name: StoreWin, Key: str, Value: countSumSerde{}}).
		ToStream().To(WindowedOutputTopic(input), topology.Produced{
		Key: serde.TimeWindowed{Inner: str, Size: WindowSize}, Value: countSumSerde{}})

	t, err := b.Build()
	if err != nil {
		return nil, fmt.Errorf("verify: topology for %q: %w", input, err)
	}
	return t, nil
}

// CountSum is a window's aggregate: how many records, and their sum.
type CountSum struct{ Count, Sum int64 }

func (c CountSum) String() string { return formatDecimal(c.Count) + "," + formatDecimal(c.Sum) }

func parseCountSum(s string) (CountSum, error) {
	n, sum, ok := strings.Cut(s, ",")
	c, err1 := strconv.ParseInt(n, 10, 64)
	x, err2 := strconv.ParseInt(sum, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		return CountSum{}, fmt.Errorf("%q is not <count>,<sum>", s)
	}
	return CountSum{c, x}, nil
}

// countSumSerde writes a CountSum as "<count>,<sum>" in decimal, readable
// with any console consumer.
type countSumSerde struct{}

func (countSumSerde) Serialize(_ string, v any) ([]byte, error) {
	switch c := v.(type) {
	case nil:
		return nil, nil
	case CountSum:
		return []byte(c.String()), nil
	}
	return nil, fmt.Errorf("verify: count-sum serde: want CountSum, got %T", v)
}

func (countSumSerde) Deserialize(_ string, b []byte) (any, error) {
	if b == nil {
		return nil, nil
	}
	c, err := parseCountSum(string(b))
	if err != nil {
		return nil, fmt.Errorf("verify: count-sum serde: %w", err)
	}
	return c, nil
}
