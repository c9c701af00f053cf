package bench

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestGokaSpecs: Config.Runs selects the goka peer like the other
// configurations, it gets no baseline copy, and without its binary it is
// skipped with a warning that says how to build it.
func TestGokaSpecs(t *testing.T) {
	ids := func(specs []runSpec) []string {
		var out []string
		for _, s := range specs {
			out = append(out, s.id())
		}
		return out
	}
	for _, c := range []struct {
		runs []string
		want []string
	}{
		{[]string{RunGoka}, []string{"goka-at_least_once", "goka-at_least_once-zipf"}},
		{[]string{"goka-at_least_once"}, []string{"goka-at_least_once", "goka-at_least_once-zipf"}},
		{[]string{"goka-at_least_once-zipf"}, []string{"goka-at_least_once-zipf"}},
		{[]string{"stateful-exactly_once_v2", RunGoka}, []string{"stateful-exactly_once_v2", "stateful-exactly_once_v2-cache",
			"stateful-exactly_once_v2-zipf", "stateful-exactly_once_v2-zipf-cache", "goka-at_least_once", "goka-at_least_once-zipf"}},
		{[]string{"stateful-exactly_once_v2-uniform"}, []string{"stateful-exactly_once_v2"}},
		{[]string{RunRawCopy2x}, []string{"raw-copy-2x-none"}},
		{[]string{"stateful-exactly_once_v2-uniform-cache", "stateless-exactly_once_v2"}, []string{"stateless-exactly_once_v2",
			"stateful-exactly_once_v2-cache"}},
		{[]string{RunStateful}, []string{"stateful-at_least_once", "stateful-exactly_once_v2", "stateful-exactly_once_v2-cache",
			"stateful-exactly_once_v2-zipf", "stateful-exactly_once_v2-zipf-cache"}},
	} {
		b := &bench{cfg: Config{Runs: c.runs, GokaBinary: "/bin/goka-count", BaselineBinary: "/old/eos-runner", CacheBytes: 1},
			log: slog.New(slog.DiscardHandler)}
		specs := b.specs()
		var got []string
		for _, s := range specs {
			if s.binary == "" { // the baseline copies are not at issue here
				got = append(got, s.id())
			}
			if s.name == RunGoka && (!s.peer || s.binary != "" || s.guarantee != "at_least_once" || s.output == nil) {
				t.Errorf("runs %v: goka spec %+v", c.runs, s)
			}
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("runs %v: %v, want %v", c.runs, got, c.want)
		}
	}

	var logs bytes.Buffer
	b := &bench{cfg: Config{Runs: []string{RunGoka, RunStateless}}, log: slog.New(slog.NewTextHandler(&logs, nil))}
	if got := ids(b.specs()); !slices.Equal(got, []string{"stateless-at_least_once", "stateless-exactly_once_v2"}) {
		t.Errorf("without a goka binary: %v, want the stateless runs only", got)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "go build -o ../../bin/goka-count") {
		t.Errorf("want a warning saying how to build goka-count, got %q", logs.String())
	}
}

// TestResolveGokaBinary: the default is used only if it exists; a path
// given explicitly must exist; both come back absolute.
func TestResolveGokaBinary(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if got, err := resolveGokaBinary(""); err != nil || got != "" {
		t.Errorf("no default binary: %q, %v; want \"\", nil", got, err)
	}
	if _, err := resolveGokaBinary("missing/goka-count"); err == nil {
		t.Error("an explicit path that does not exist: want an error")
	}
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := resolveGokaBinary("bin"); err == nil {
		t.Error("a directory: want an error")
	}
	if err := os.WriteFile(filepath.Join(dir, DefaultGokaBinary), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(dir, DefaultGokaBinary)
	for _, path := range []string{"", DefaultGokaBinary} {
		if got, err := resolveGokaBinary(path); err != nil || got != want {
			t.Errorf("resolveGokaBinary(%q) = %q, %v; want %q", path, got, err, want)
		}
	}
	c, err := Config{Binary: "eos-runner"}.withDefaults()
	if err != nil || c.GokaBinary != want {
		t.Errorf("withDefaults: GokaBinary %q, %v; want %q", c.GokaBinary, err, want)
	}
}

// TestGokaRow: goka's runs are a row of their own, labelled as a peer's.
func TestGokaRow(t *testing.T) {
	r := &Results{Runs: []RunResult{
		{Name: RunRawCopy, Guarantee: GuaranteeNone, Keys: KeysUniform, Pair: 0, RecordsPerSec: 200_000, CPUMicrosPerRecord: 2},
		{Name: RunStateful, Guarantee: "at_least_once", Keys: KeysUniform, Pair: 0, RecordsPerSec: 100_000, CPUMicrosPerRecord: 8},
		{Name: RunRawCopy, Guarantee: GuaranteeNone, Keys: KeysUniform, Pair: 2, RecordsPerSec: 200_000, CPUMicrosPerRecord: 2},
		{Name: RunGoka, Guarantee: "at_least_once", Keys: KeysUniform, Binary: BinaryPeer, Pair: 2, RecordsPerSec: 50_000, CPUMicrosPerRecord: 16},
	}}
	r.setRatios()
	if len(r.Summary) != 3 {
		t.Fatalf("summary: %+v, want raw copy, stateful and goka rows", r.Summary)
	}
	if g := r.Summary[2]; g.Name != RunGoka || g.Binary != BinaryPeer || g.Ratio != 0.25 || g.CPURatio != 8 {
		t.Errorf("goka row: %+v", g)
	}
	var buf bytes.Buffer
	if err := r.WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "goka  at_least_once  uniform          0    peer") {
		t.Errorf("table:\n%s", buf.String())
	}
}
