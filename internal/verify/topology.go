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

// Store names of JoinTopology's joins: the table of RefTopic (its changelog
// is the source topic itself) and the stream-stream join's two window
// stores, StreamJoinName + "-this-join-store" and "-other-join-store".
const (
	StoreRef       = "ref"
	StreamJoinName = "wjoin"
)

// JoinWindows bound JoinTopology's stream-stream join: a left record at t
// joins the right records in [t-JoinBefore, t+JoinAfter]; its buffers keep
// JoinBefore+JoinAfter+JoinGrace+1ms of stream time. Asymmetric, so that a
// side swapped anywhere shows.
const (
	JoinBefore = time.Second
	JoinAfter  = 500 * time.Millisecond
	JoinGrace  = 200 * time.Millisecond
)

// JoinStores lists the stores JoinTopology adds to Stores(): each has a
// store partition per input partition (the table's changelog is RefTopic).
func JoinStores() []string {
	return []string{StoreRef, StreamJoinName + "-this-join-store", StreamJoinName + "-other-join-store"}
}

// Output topic suffixes, appended to the input topic's name with a dash.
const (
	suffixEcho = "echo"
	suffixSum  = StoreSum
	suffixMin  = StoreMin
	suffixMax  = StoreMax
	suffixCnt  = StoreCnt
	suffixWin  = StoreWin
	suffixRef  = "ref"
	suffixJoin = "join"
	// suffixWJoin is the windowed stream-stream join's output.
	suffixWJoin = "wjoin"
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

// RefTopic is the compacted topic T-ref that JoinTopology reads as a table
// beside T: key "k<i>", a string value; Generate with Joins writes it before
// T, all at timestamp 0.
func RefTopic(input string) string { return outputTopic(input, suffixRef) }

// JoinOutputTopic is the stream-table join's output, T-join: one record per
// record of T, key unchanged, value "<value>|<ref>" or "<value>|null".
func JoinOutputTopic(input string) string { return outputTopic(input, suffixJoin) }

// WindowedJoinOutputTopic is the stream-stream join's output, T-wjoin: one
// record per joined pair, value "<left value>,<right value>".
func WindowedJoinOutputTopic(input string) string { return outputTopic(input, suffixWJoin) }

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
func Topology(input string) (*topology.Topology, error) { return build(input, false) }

// JoinTopology is Topology(input) with two joins beside the aggregates, as
// Kafka Streams' EOS system test adds them; joins.go says what Check proves
// of them.
//
//   - A stream-table left join of T with the table read from RefTopic(T)
//     (a compacted topic, store StoreRef, restored from the topic itself):
//     every record of T goes to JoinOutputTopic(T), key unchanged, value
//     "<value>|<ref>", or "<value>|null" where the key has no ref.
//   - A windowed stream-stream inner join of T (left) with its copy
//     filtered to even values and negated (right), within JoinWindows,
//     buffered in the window stores of StreamJoinName: every pair to
//     WindowedJoinOutputTopic(T), value "<left>,<right>", timestamp the
//     later of the two.
//
// RefTopic(T) must have T's partition count (a table is read beside its
// stream, partition by partition); Generate with Joins fills it.
func JoinTopology(input string) (*topology.Topology, error) { return build(input, true) }

func build(input string, joins bool) (*topology.Topology, error) {
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

	if joins {
		addJoins(b, src, input)
	}
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

// addJoins adds JoinTopology's two joins below src, T's source.
func addJoins(b *topology.Builder, src *topology.Stream, input string) {
	str, dec := serde.String{}, serde.DecimalString{}
	ref := b.Table(RefTopic(input), topology.Consumed{Key: str, Value: str}, topology.Materialized{Name: StoreRef})
	src.LeftJoinTable(ref, func(_, v, r any) (any, error) {
		x, ok := v.(int64)
		if !ok {
			return nil, fmt.Errorf("verify: stream-table join: want an int64 value, got %T", v)
		}
		if r == nil {
			return formatDecimal(x) + "|null", nil
		}
		return fmt.Sprintf("%d|%v", x, r), nil
	}, topology.Joined{}).To(JoinOutputTopic(input), topology.Produced{Key: str, Value: str})

	right := src.Filter(func(_, v any) bool { x, ok := v.(int64); return ok && joinsRight(x) }).
		MapValues(func(v any) (any, error) { return -v.(int64), nil })
	src.Join(right, func(_, l, r any) (any, error) {
		x, ok1 := l.(int64)
		y, ok2 := r.(int64)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("verify: stream-stream join: want int64 values, got %T and %T", l, r)
		}
		return formatDecimal(x) + "," + formatDecimal(y), nil
	}, topology.JoinWindows{Before: JoinBefore, After: JoinAfter, Grace: JoinGrace},
		topology.StreamJoined{Key: str, Value: dec, OtherValue: dec, Name: StreamJoinName}).
		To(WindowedJoinOutputTopic(input), topology.Produced{Key: str, Value: str})
}

// joinsRight says whether a record of T also enters the stream-stream
// join's right side: even values do.
func joinsRight(v int64) bool { return v%2 == 0 }
