package bench

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var rewrite = flag.Bool("rewrite", false, "rewrite testdata/table.txt")

func sampleResults() *Results {
	r := &Results{
		Command:     "eos-runner bench",
		StartedAt:   time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Environment: Environment{GoVersion: "go1.26", CPUs: 2, Broker: "embedded"},
		Workload:    Workload{Records: 1000, Partitions: 8, Keys: 100, ValueBytes: 100},
		Runs: []RunResult{
			{Name: RunRawCopy, Guarantee: GuaranteeNone, Keys: KeysUniform, Pair: 0, Records: 1000, RecordsPerSec: 200_000, CPUMicrosPerRecord: 2.5, PeakRSSBytes: 100 << 20},
			{Name: RunStateful, Guarantee: "at_least_once", Keys: KeysUniform, Pair: 0, Records: 1000, RecordsPerSec: 100_000, CPUMicrosPerRecord: 8, PeakRSSBytes: 150 << 20},
			{Name: RunRawCopy, Guarantee: GuaranteeNone, Keys: KeysUniform, Pair: 2, Records: 1000, RecordsPerSec: 200_000, CPUMicrosPerRecord: 2.5, PeakRSSBytes: 100 << 20},
			{Name: RunStateful, Guarantee: "exactly_once_v2", Keys: KeysUniform, Pair: 2, Records: 1000, RecordsPerSec: 150_000, CPUMicrosPerRecord: 7.25, PeakRSSBytes: 160 << 20},
			{Name: RunRawCopy, Guarantee: GuaranteeNone, Keys: KeysUniform, Round: 1, Pair: 4, Records: 1000, RecordsPerSec: 180_000, CPUMicrosPerRecord: 2.5, PeakRSSBytes: 100 << 20},
			{Name: RunStateful, Guarantee: "at_least_once", Keys: KeysUniform, Round: 1, Pair: 4, Records: 1000, RecordsPerSec: 99_000, CPUMicrosPerRecord: 8, PeakRSSBytes: 150 << 20},
			{Name: RunRawCopy, Guarantee: GuaranteeNone, Keys: KeysUniform, Round: 1, Pair: 6, Records: 1000, RecordsPerSec: 200_000, CPUMicrosPerRecord: 2.5, PeakRSSBytes: 100 << 20},
			{Name: RunStateful, Guarantee: "exactly_once_v2", Keys: KeysUniform, Round: 1, Pair: 6, Records: 1000, RecordsPerSec: 100_000, CPUMicrosPerRecord: 7.25, PeakRSSBytes: 160 << 20},
		},
		Latency: map[string]LatencyResult{
			latencyKey(time.Second, 0):          {CommitIntervalMs: 1000, InputRate: 20000, Records: 100, P50Ms: 500, P99Ms: 1010, MaxMs: 1020},
			latencyKey(100*time.Millisecond, 0): {CommitIntervalMs: 100, InputRate: 20000, Records: 100, P50Ms: 55, P99Ms: 110, MaxMs: 130},
			latencyKey(100*time.Millisecond, 10<<20): {CommitIntervalMs: 100, CacheBytes: 10 << 20, InputRate: 20000, Records: 100,
				P50Ms: 60, P99Ms: 120, MaxMs: 140},
		},
		Restore: RestoreResult{Keys: 1000, Records: 1000, Seconds: 0.5, RecordsPerSec: 2000, CrashRestartRestored: 3,
			BuildRecordsPerSec: 5000, BuildPeakRSSBytes: 200 << 20, RestorePeakRSSBytes: 120 << 20},
	}
	r.setRatios()
	return r
}

func TestSetRatios(t *testing.T) {
	r := sampleResults()
	for i, want := range []float64{1, 0.5, 1, 0.75, 1, 0.55, 1, 0.5} {
		if got := r.Runs[i].RatioToRaw; got != want {
			t.Errorf("run %d ratio = %v, want %v", i, got, want)
		}
	}
	if got := r.Runs[1].CPURatioToRaw; got != 3.2 {
		t.Errorf("run 1 CPU ratio = %v, want 3.2", got)
	}
	want := []Summary{
		{Name: RunRawCopy, Guarantee: GuaranteeNone, Keys: KeysUniform, Runs: 4, RecordsPerSec: 200_000, CPUMicrosPerRecord: 2.5,
			PeakRSSBytes: 100 << 20, Ratio: 1, RatioMin: 0.9, RatioMax: 1, RatioSpread: 0.1, CPURatio: 1},
		{Name: RunStateful, Guarantee: "at_least_once", Keys: KeysUniform, Runs: 2, RecordsPerSec: 99_500, CPUMicrosPerRecord: 8,
			PeakRSSBytes: 150 << 20, Ratio: 0.525, RatioMin: 0.5, RatioMax: 0.55, RatioSpread: 0.095, CPURatio: 3.2},
		{Name: RunStateful, Guarantee: "exactly_once_v2", Keys: KeysUniform, Runs: 2, RecordsPerSec: 125_000, CPUMicrosPerRecord: 7.25,
			PeakRSSBytes: 160 << 20, Ratio: 0.625, RatioMin: 0.5, RatioMax: 0.75, RatioSpread: 0.4, CPURatio: 2.9, Flagged: true},
	}
	if len(r.Summary) != len(want) {
		t.Fatalf("summary = %+v, want %d rows", r.Summary, len(want))
	}
	for i := range want {
		if r.Summary[i] != want[i] {
			t.Errorf("summary[%d] = %+v\nwant %+v", i, r.Summary[i], want[i])
		}
	}
	noRaw := &Results{Runs: []RunResult{{Name: RunStateless, RecordsPerSec: 10, Pair: -1}}}
	noRaw.setRatios()
	if noRaw.Runs[0].RatioToRaw != 0 {
		t.Errorf("without a raw-copy run the ratio must stay 0, got %v", noRaw.Runs[0].RatioToRaw)
	}
}

func TestMedianSpread(t *testing.T) {
	for _, c := range []struct {
		in             []float64
		median, spread float64
	}{
		{nil, 0, 0},
		{[]float64{4}, 4, 0},
		{[]float64{3, 1, 2}, 2, 1},
		{[]float64{4, 1, 3, 2}, 2.5, 1.2},
	} {
		if m, s := Median(c.in), Spread(c.in); m != c.median || s != c.spread {
			t.Errorf("%v: median %v spread %v, want %v %v", c.in, m, s, c.median, c.spread)
		}
	}
}

// TestJSONShape checks the fields issue 5 promises readers of results.json.
func TestJSONShape(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bench", "results.json")
	if err := sampleResults().WriteJSON(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	runs, ok := doc["runs"].([]any)
	if !ok || len(runs) != 8 {
		t.Fatalf("runs = %v, want a list of 8", doc["runs"])
	}
	for i, r := range runs {
		run := r.(map[string]any)
		for _, k := range []string{"name", "guarantee"} {
			if _, ok := run[k].(string); !ok {
				t.Errorf("runs[%d].%s: want a string, got %v", i, k, run[k])
			}
		}
		for _, k := range []string{"records", "records_per_sec", "cpu_us_per_record", "peak_rss_bytes", "ratio_to_raw", "round", "pair"} {
			if _, ok := run[k].(float64); !ok {
				t.Errorf("runs[%d].%s: want a number, got %v", i, k, run[k])
			}
		}
	}
	if runs[0].(map[string]any)["name"] != "raw-copy" || runs[0].(map[string]any)["guarantee"] != "none" {
		t.Errorf("runs[0] = %v, want raw-copy/none", runs[0])
	}
	summary, ok := doc["summary"].([]any)
	if !ok || len(summary) != 3 {
		t.Fatalf("summary = %v, want a list of 3", doc["summary"])
	}
	for i, s := range summary {
		row := s.(map[string]any)
		for _, k := range []string{"records_per_sec", "ratio_to_raw", "ratio_spread", "cpu_ratio_to_raw", "runs"} {
			if _, ok := row[k].(float64); !ok {
				t.Errorf("summary[%d].%s: want a number, got %v", i, k, row[k])
			}
		}
		if _, ok := row["flagged"].(bool); !ok {
			t.Errorf("summary[%d].flagged: want a bool, got %v", i, row["flagged"])
		}
	}
	lat, ok := doc["latency"].(map[string]any)
	if !ok || len(lat) != 3 {
		t.Fatalf("latency = %v, want an object of 3 runs", doc["latency"])
	}
	for _, key := range []string{"100ms", "1000ms", "100ms-cache"} {
		l, ok := lat[key].(map[string]any)
		if !ok {
			t.Fatalf("latency[%q] missing: %v", key, lat)
		}
		for _, k := range []string{"p50_ms", "p99_ms", "max_ms", "cache_max_bytes"} {
			if _, ok := l[k].(float64); !ok {
				t.Errorf("latency[%q].%s: want a number, got %v", key, k, l[k])
			}
		}
	}
	rs, ok := doc["restore"].(map[string]any)
	if !ok {
		t.Fatalf("restore = %v, want an object", doc["restore"])
	}
	for _, k := range []string{"records_per_sec", "clean_restart_restored", "crash_restart_restored", "build_peak_rss_bytes",
		"restore_peak_rss_bytes"} {
		if _, ok := rs[k].(float64); !ok {
			t.Errorf("restore.%s: want a number, got %v", k, rs[k])
		}
	}
}

func TestWriteTable(t *testing.T) {
	var buf bytes.Buffer
	if err := sampleResults().WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "table.txt")
	if *rewrite {
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if buf.String() != string(want) {
		t.Errorf("table (rerun with -rewrite after checking):\n%s\nwant:\n%s", buf.String(), want)
	}

	buf.Reset()
	if err := (&Results{Summary: sampleResults().Summary}).WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(buf.Bytes(), []byte("latency")) || bytes.Contains(buf.Bytes(), []byte("restore")) {
		t.Errorf("phases that did not run must be left out:\n%s", buf.String())
	}
}

func TestRestoredLines(t *testing.T) {
	parse := func(lines ...string) []map[string]any {
		var out []map[string]any
		for _, l := range lines {
			var m map[string]any
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatal(err)
			}
			out = append(out, m)
		}
		return out
	}
	t.Run("parallel restores: the span, not the sum", func(t *testing.T) {
		s, err := restoredLines(parse(
			`{"time":"2026-01-01T00:00:01Z","msg":"restored store partition","records":100,"full":true,"elapsed":"1s"}`,
			`{"time":"2026-01-01T00:00:01.5Z","msg":"restored store partition","records":200,"full":true,"elapsed":"1.5s"}`,
			`{"time":"2026-01-01T00:00:02Z","msg":"restored store partition","records":0,"full":false,"elapsed":"10ms"}`,
		))
		if err != nil {
			t.Fatal(err)
		}
		want := restoreSummary{partitions: 3, records: 300, span: 2 * time.Second}
		if s != want {
			t.Errorf("got %+v, want %+v", s, want)
		}
	})
	t.Run("sequential restores", func(t *testing.T) {
		s, err := restoredLines(parse(
			`{"time":"2026-01-01T00:00:01Z","records":10,"elapsed":"1s"}`,
			`{"time":"2026-01-01T00:00:03Z","records":10,"elapsed":"2s"}`,
		))
		if err != nil || s.span != 3*time.Second || s.records != 20 {
			t.Errorf("got %+v, %v; want 20 records over 3s", s, err)
		}
	})
	for _, bad := range []string{
		`{"time":"2026-01-01T00:00:01Z","elapsed":"1s"}`,
		`{"time":"2026-01-01T00:00:01Z","records":1,"elapsed":"soon"}`,
		`{"time":"yesterday","records":1,"elapsed":"1s"}`,
	} {
		if _, err := restoredLines(parse(bad)); err == nil {
			t.Errorf("%s: want an error", bad)
		}
	}
}
