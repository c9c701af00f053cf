package bench

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eos-runner/eos-runner/processor"
	"github.com/eos-runner/eos-runner/serde"
)

func TestTopologies(t *testing.T) {
	tests := []struct {
		name  string
		build func(string) (describer, error)
		want  []string // in Describe()
	}{
		{"stateless", func(in string) (describer, error) { return StatelessTopology(in) },
			[]string{"in", StatelessOutput("in"), "FILTER", "MAPVALUES"}},
		{"stateful", func(in string) (describer, error) { return StatefulTopology(in) },
			[]string{"in", StatefulOutput("in"), StoreCounts, "COUNT"}},
		{"windowed", func(in string) (describer, error) { return WindowedTopology(in) },
			[]string{"in", WindowedOutput("in"), StoreWindowed}},
		{"dedup", func(in string) (describer, error) { return DedupTopology(in) },
			[]string{"in", DedupOutput("in"), "Processor: dedup", "dedup-store"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			topo, err := tt.build("in")
			if err != nil {
				t.Fatal(err)
			}
			d := topo.Describe()
			for _, w := range tt.want {
				if !strings.Contains(d, w) {
					t.Errorf("Describe() lacks %q:\n%s", w, d)
				}
			}
			if _, err := tt.build(""); err == nil {
				t.Error("empty input topic: want an error")
			}
		})
	}
	if got := ChangelogTopic("app"); got != "app-counts-changelog" {
		t.Errorf("ChangelogTopic = %q", got)
	}
	w, err := WindowedTopology("in")
	if err != nil {
		t.Fatal(err)
	}
	if got := changelogTopics(w, "app"); !slices.Equal(got, []string{WindowedChangelogTopic("app")}) {
		t.Errorf("changelogTopics(windowed) = %q", got)
	}
}

type describer interface{ Describe() string }

func TestInputValues(t *testing.T) {
	seen := map[string]bool{}
	for i := range 1000 {
		v := value(i, 100)
		if len(v) != 100 {
			t.Fatalf("value(%d) has %d bytes, want 100", i, len(v))
		}
		for _, c := range v {
			if c < 'a' || c > 'z' {
				t.Fatalf("value(%d) = %q: want lowercase letters only (the stateless filter keeps values not starting with '#')", i, v)
			}
		}
		seen[string(v)] = true
	}
	if len(seen) != 1000 {
		t.Errorf("%d distinct values of 1000", len(seen))
	}
	if string(value(7, 100)) != string(value(7, 100)) {
		t.Error("value is not deterministic")
	}
}

func TestKeys(t *testing.T) {
	keys := randomKeys(10)
	seen := map[string]bool{}
	for i := range 1000 {
		k := keys(i)
		if k != keys(i) {
			t.Fatalf("randomKeys is not deterministic at %d", i)
		}
		seen[k] = true
	}
	if len(seen) != 10 {
		t.Errorf("randomKeys(10) drew %d distinct keys in 1000 records, want all 10", len(seen))
	}
	u := uniqueKeys(5)
	if u(0) != "k5" || u(3) != "k8" {
		t.Errorf("uniqueKeys(5): %q, %q", u(0), u(3))
	}
}

func TestConfigDefaults(t *testing.T) {
	c, err := Config{Binary: "eos-runner"}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if c.Records != 1_000_000 || c.Partitions != 8 || c.Keys != 100_000 || c.ValueBytes != 100 ||
		c.LatencyRate != 20_000 || c.RestoreKeys != 1_000_000 || len(c.CommitIntervals) != 2 || len(c.Phases) != 4 {
		t.Errorf("defaults: %+v", c)
	}
	_, err = Config{Binary: "x", Records: -1, Phases: []string{"throughput", "warp"}}.withDefaults()
	if err == nil || !strings.Contains(err.Error(), "records") || !strings.Contains(err.Error(), `"warp"`) {
		t.Errorf("err = %v, want both problems named", err)
	}
}

// TestDedupTopologyKeepsFirstPerKey runs the dedup topology on the test
// driver: within the TTL each key's first record is kept, the rest dropped
// and counted; past the TTL a key is new again.
func TestDedupTopologyKeepsFirstPerKey(t *testing.T) {
	topo, err := DedupTopology("in")
	if err != nil {
		t.Fatal(err)
	}
	d, err := processor.NewTestDriver(topo, processor.TestDriverConfig{Partitions: map[string]int{"in": 4}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	t0 := time.UnixMilli(1_700_000_000_000)
	for i, k := range []string{"a", "b", "a", "c", "b", "a"} {
		if err := d.PipeInput("in", k, []byte(fmt.Sprint(i)), t0.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.PipeInput("in", "a", []byte("late"), t0.Add(DedupTTL+time.Second)); err != nil {
		t.Fatal(err)
	}
	out, err := d.ReadRecords(DedupOutput("in"), serde.String{}, serde.Bytes{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, r := range out {
		got[r.Key.(string)] = append(got[r.Key.(string)], string(r.Value.([]byte)))
	}
	want := map[string][]string{"a": {"0", "late"}, "b": {"1"}, "c": {"3"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("kept %v, want %v", got, want)
	}
	if n := d.Dropped("duplicate"); n != 3 {
		t.Errorf("dropped as duplicates: %d, want 3", n)
	}
}
