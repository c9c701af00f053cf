package verify

import (
	"errors"
	"fmt"

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
)

// Output topic suffixes, appended to the input topic's name with a dash.
const (
	suffixEcho = "echo"
	suffixSum  = StoreSum
	suffixMin  = StoreMin
	suffixMax  = StoreMax
	suffixCnt  = StoreCnt
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

// Topology builds the verification topology for input topic input: one
// sub-topology whose source (string key, decimal-string value) feeds T-echo
// unchanged and four per-key aggregations (Reduce for sum, min and max, Count
// for cnt), each emitting every update to its topic with the key unchanged
// and the aggregate as a decimal string. The stores are named sum, min, max
// and cnt; their values are int64 (serde.Int64, as Kafka Streams' Long serde).
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

	t, err := b.Build()
	if err != nil {
		return nil, fmt.Errorf("verify: topology for %q: %w", input, err)
	}
	return t, nil
}
