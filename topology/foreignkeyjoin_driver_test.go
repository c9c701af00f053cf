package topology_test

import (
	"encoding/binary"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/eos-runner/eos-runner/internal/murmur2"
	"github.com/eos-runner/eos-runner/processor"
	"github.com/eos-runner/eos-runner/serde"
	"github.com/eos-runner/eos-runner/topology"
)

// fkPartitionings are the partition counts each foreign-key join script
// runs with: one partition everywhere, and left and right tables of
// different counts, so that the subscription topic (the right table's
// count) and the response topic (the left's) differ and every record
// crosses partitions.
var fkPartitionings = []struct {
	name  string
	parts map[string]int
}{
	{"partitions=1", nil},
	{"left=3,right=2", map[string]int{"left": 3, "right": 2}},
}

// TestForeignKeyJoinDatadriven runs the scripts in testdata/fkjoin on
// processor.TestDriver, each with every partitioning of fkPartitionings
// and the same expected outputs. The scripts transcribe Kafka Streams'
// KTableKTableForeignKeyJoinIntegrationTest (and the unit tests of its
// foreignkeyjoin package), each case citing its KS test method; the left
// table's values are "<value>|<foreign key>", as KS's are.
//
//	init kind=inner|left [fk=null|returnNull] [rejoin]
//	    builds left.JoinForeignKey(right) (or LeftJoinForeignKey), with the
//	    joiner "(<left>,<right>)", result to "out"; fk=null extracts a nil
//	    foreign key always, fk=returnNull where the foreign key is
//	    "returnNull" (KS's shouldEmitRecordWhenOldAndNewFkDiffer); rejoin
//	    also joins the result with the left table on the primary key
//	    (inner or left, as kind; joiner "rejoin(<result>,<left>)") to
//	    "rejoin-out", as KS's rejoin parameter does.
//	pipe
//	<ts-millis> left|right <key> <value|null>
//	    pipes the records, then prints what "out" received since the last
//	    read collapsed per key (KS's readKeyValuesToMap: the last value of
//	    each key, sorted by key), and the same for "rejoin-out" prefixed
//	    "rejoin ".
//	pipe records
//	    the same, but every record in order, with its timestamp (where the
//	    order is the same for every partitioning).
//	store
//	    the result store's contents (KS's asMap(store)).
//	subscriptions
//	    the subscription store's entries as <foreign key>/<primary key>,
//	    read from its documented key layout.
//	replay-response key=<left key> [index=<n>]
//	    pipes again the n-th (default 0) response-topic record for the key
//	    seen so far, as a response delayed past later changes of the left
//	    value would arrive, then prints "out" as pipe does.
func TestForeignKeyJoinDatadriven(t *testing.T) {
	paths, err := filepath.Glob("testdata/fkjoin/*")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	for _, path := range paths {
		for _, p := range fkPartitionings {
			t.Run(filepath.Base(path)+"/"+p.name, func(t *testing.T) {
				var s *fkScript
				defer func() {
					if s != nil {
						s.close()
					}
				}()
				datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
					if d.Cmd == "init" {
						if s != nil {
							s.close()
						}
						s = newFKScript(t, d, p.parts)
						return ""
					}
					if s == nil {
						t.Fatalf("%s: %s before init", d.Pos, d.Cmd)
					}
					return s.run(t, d)
				})
			})
		}
	}
}

const fkJoinName = "fk"

type fkScript struct {
	drv       *processor.TestDriver
	rejoin    bool
	responses map[string][]processor.TestRecord // response-topic records by left key
}

func fkArgs(d *datadriven.TestData) map[string]string {
	args := map[string]string{}
	for _, a := range d.CmdArgs {
		args[a.Key] = strings.Join(a.Vals, ",")
	}
	return args
}

func nullable(v any) string {
	if v == nil {
		return "null"
	}
	return fmt.Sprint(v)
}

func newFKScript(t *testing.T, d *datadriven.TestData, parts map[string]int) *fkScript {
	args := fkArgs(d)
	str := serde.String{}
	extract := func(v any) (any, error) {
		_, fk, ok := strings.Cut(v.(string), "|")
		if !ok {
			return nil, fmt.Errorf("left value %q has no foreign key", v)
		}
		return fk, nil
	}
	switch args["fk"] {
	case "":
	case "null":
		extract = func(any) (any, error) { return nil, nil }
	case "returnNull":
		split := extract
		extract = func(v any) (any, error) {
			fk, err := split(v)
			if fk == "returnNull" {
				return nil, err
			}
			return fk, err
		}
	default:
		t.Fatalf("%s: fk=%q", d.Pos, args["fk"])
	}
	joiner := func(_, l, r any) (any, error) { return "(" + nullable(l) + "," + nullable(r) + ")", nil }
	b := topology.NewBuilder()
	left := b.Table("left", topology.Consumed{Key: str, Value: str}, topology.Materialized{Name: "left-store"})
	right := b.Table("right", topology.Consumed{Key: str, Value: str}, topology.Materialized{Name: "right-store"})
	fj := topology.ForeignKeyJoined{Name: fkJoinName, Result: str, Store: "store"}
	var joined *topology.Table
	switch args["kind"] {
	case "inner":
		joined = left.JoinForeignKey(right, extract, joiner, fj)
	case "left":
		joined = left.LeftJoinForeignKey(right, extract, joiner, fj)
	default:
		t.Fatalf("%s: kind=%q", d.Pos, args["kind"])
	}
	joined.ToStream().To("out", topology.Produced{Key: str, Value: str})
	_, rejoin := args["rejoin"]
	if rejoin {
		rejoiner := func(_, l, r any) (any, error) { return "rejoin(" + nullable(l) + "," + nullable(r) + ")", nil }
		var rj *topology.Table
		if args["kind"] == "inner" {
			rj = joined.Join(left, rejoiner)
		} else {
			rj = joined.LeftJoin(left, rejoiner)
		}
		rj.ToStream().To("rejoin-out", topology.Produced{Key: str, Value: str})
	}
	topo, err := b.Build()
	if err != nil {
		t.Fatalf("%s: %v", d.Pos, err)
	}
	drv, err := processor.NewTestDriver(topo, processor.TestDriverConfig{Partitions: parts})
	if err != nil {
		t.Fatal(err)
	}
	return &fkScript{drv: drv, rejoin: rejoin, responses: map[string][]processor.TestRecord{}}
}

func (s *fkScript) close() { s.drv.Close() }

func (s *fkScript) run(t *testing.T, d *datadriven.TestData) string {
	switch d.Cmd {
	case "pipe":
		for _, line := range strings.Split(strings.TrimSpace(d.Input), "\n") {
			f := strings.Fields(line)
			if len(f) != 4 {
				t.Fatalf("%s: line %q: want <ts> left|right <key> <value|null>", d.Pos, line)
			}
			ts, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				t.Fatalf("%s: line %q: %v", d.Pos, line, err)
			}
			var v any = f[3]
			if f[3] == "null" {
				v = nil
			}
			if err := s.drv.PipeInput(f[1], f[2], v, time.UnixMilli(ts)); err != nil {
				t.Fatalf("%s: line %q: %v", d.Pos, line, err)
			}
		}
		_, all := fkArgs(d)["records"]
		return s.outputs(t, all)
	case "store":
		kv, err := s.drv.KeyValueStore("store")
		if err != nil {
			t.Fatal(err)
		}
		var sb strings.Builder
		if err := kv.Range(nil, nil, func(k, v any) error {
			fmt.Fprintf(&sb, "%v=%v\n", k, v.(serde.ValueAndTimestamp).Value)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return sb.String()
	case "subscriptions":
		kv, err := s.drv.KeyValueStore(fkJoinName + "-subscription-store")
		if err != nil {
			t.Fatal(err)
		}
		var sb strings.Builder
		if err := kv.Range(nil, nil, func(k, _ any) error {
			b := k.([]byte)
			n := binary.BigEndian.Uint32(b)
			fmt.Fprintf(&sb, "%s/%s\n", b[4:4+n], b[4+n:])
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return sb.String()
	case "replay-response":
		args := fkArgs(d)
		s.capture()
		i, _ := strconv.Atoi(args["index"])
		recs := s.responses[args["key"]]
		if i >= len(recs) {
			t.Fatalf("%s: %d response records for %q", d.Pos, len(recs), args["key"])
		}
		if err := s.drv.PipeRecord(recs[i]); err != nil {
			t.Fatal(err)
		}
		return s.outputs(t, false)
	}
	t.Fatalf("%s: unknown command %q", d.Pos, d.Cmd)
	return ""
}

// capture keeps the response-topic records produced since the last call.
func (s *fkScript) capture() {
	for _, r := range s.drv.ReadOutput(fkJoinName + "-subscription-response-topic") {
		s.responses[string(r.Key)] = append(s.responses[string(r.Key)], r)
	}
}

func (s *fkScript) outputs(t *testing.T, all bool) string {
	s.capture()
	str := serde.String{}
	topics := []string{"out"}
	if s.rejoin {
		topics = append(topics, "rejoin-out")
	}
	var sb strings.Builder
	for _, topic := range topics {
		prefix := ""
		if topic == "rejoin-out" {
			prefix = "rejoin "
		}
		recs, err := s.drv.ReadRecords(topic, str, str)
		if err != nil {
			t.Fatal(err)
		}
		if all {
			for _, r := range recs {
				fmt.Fprintf(&sb, "%s%v=%s @%d\n", prefix, r.Key, nullable(r.Value), r.Timestamp.UnixMilli())
			}
			continue
		}
		last := map[string]string{}
		for _, r := range recs {
			last[r.Key.(string)] = nullable(r.Value)
		}
		keys := make([]string, 0, len(last))
		for k := range last {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&sb, "%s%s=%s\n", prefix, k, last[k])
		}
	}
	return sb.String()
}

// TestForeignKeyJoinChainedMultiPartition transcribes Kafka Streams'
// KTableKTableForeignKeyInnerJoinMultiIntegrationTest
// .shouldInnerJoinMultiPartitionQueryable: three tables of 3, 5 and 7
// partitions, table1 joined with table2 on a foreign key, the result
// joined with table3 on another; the one result is
// 1 -> "value1=1.33,value2=10,value3=waffle". The internal topics take
// their readers' counts (5 and 3 for the first join, 7 and 3 for the
// second).
func TestForeignKeyJoinChainedMultiPartition(t *testing.T) {
	str, i64 := serde.String{}, serde.Int64{}
	b := topology.NewBuilder()
	table1 := b.Table("table1", topology.Consumed{Key: i64, Value: str}, topology.Materialized{Name: "t1"})
	table2 := b.Table("table2", topology.Consumed{Key: str, Value: i64}, topology.Materialized{Name: "t2"})
	table3 := b.Table("table3", topology.Consumed{Key: i64, Value: str}, topology.Materialized{Name: "t3"})
	tableOneKeyExtractor := func(v any) (any, error) {
		f, err := strconv.ParseFloat(v.(string), 32)
		return strconv.Itoa(int(f)), err
	}
	joinedTableKeyExtractor := func(v any) (any, error) {
		if strings.Contains(v.(string), "value2=10") {
			return int64(10), nil
		}
		return int64(0), nil
	}
	joiner := func(_, l, r any) (any, error) { return fmt.Sprintf("value1=%v,value2=%v", l, r), nil }
	joinerTwo := func(_, l, r any) (any, error) { return fmt.Sprintf("%v,value3=%v", l, r), nil }
	table1.JoinForeignKey(table2, tableOneKeyExtractor, joiner, topology.ForeignKeyJoined{Name: "one", Result: str, Store: "INNER-store1"}).
		JoinForeignKey(table3, joinedTableKeyExtractor, joinerTwo, topology.ForeignKeyJoined{Name: "two", Result: str, Store: "INNER-store2"}).
		ToStream().
		To("output", topology.Produced{Key: i64, Value: str})
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	drv, err := processor.NewTestDriver(topo, processor.TestDriverConfig{
		Partitions: map[string]int{"table1": 3, "table2": 5, "table3": 7, "output": 11}})
	if err != nil {
		t.Fatal(err)
	}
	defer drv.Close()
	for _, kv := range []struct{ k, v any }{{int64(1), "1.33"}, {int64(2), "2.22"}, {int64(3), "-1.22"}, {int64(4), "-2.22"}} {
		if err := drv.PipeInput("table1", kv.k, kv.v, time.UnixMilli(0)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 10 {
		if err := drv.PipeInput("table2", strconv.Itoa(i), int64(10*i), time.UnixMilli(1)); err != nil {
			t.Fatal(err)
		}
	}
	if err := drv.PipeInput("table3", int64(10), "waffle", time.UnixMilli(2)); err != nil {
		t.Fatal(err)
	}
	recs, err := drv.ReadRecords("output", i64, str)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		got = append(got, fmt.Sprintf("%v=%v", r.Key, r.Value))
	}
	if want := []string{"1=value1=1.33,value2=10,value3=waffle"}; !slices.Equal(got, want) {
		t.Errorf("output %q, want %q", got, want)
	}
	// Each internal record sits in the partition its key hashes to among
	// the topic's reader's count of partitions.
	for topic, want := range map[string]int32{
		"one-subscription-registration-topic": 5, "one-subscription-response-topic": 3,
		"two-subscription-registration-topic": 7, "two-subscription-response-topic": 3,
	} {
		recs := drv.ReadOutput(topic)
		if len(recs) == 0 {
			t.Errorf("%s: no records", topic)
		}
		for _, r := range recs {
			if p := murmur2.Partition(r.Key, want); r.Partition != p {
				t.Errorf("%s: key %x in partition %d, want %d of %d", topic, r.Key, r.Partition, p, want)
			}
		}
	}
}
