package declare

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the examples' expected.jsonl from their outputs (review the diff)")

// TestExamples runs every declared example's test files (input.jsonl,
// expected.jsonl beside topology.yaml), as `eos-runner test` does.
func TestExamples(t *testing.T) {
	files, err := filepath.Glob("../examples/declared/*/topology.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no declared examples: %v", err)
	}
	for _, path := range files {
		dir := filepath.Dir(path)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			f, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			in, err := ReadTestRecords(filepath.Join(dir, "input.jsonl"))
			if err != nil {
				t.Fatal(err)
			}
			want, err := ReadTestRecords(filepath.Join(dir, "expected.jsonl"))
			if err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			res, err := RunTest(f, in, want)
			if err != nil {
				t.Fatal(err)
			}
			if *update {
				var buf bytes.Buffer
				if err := WriteTestRecords(&buf, res.Actual); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, "expected.jsonl"), buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if !res.Passed {
				t.Fatalf("outputs differ from expected.jsonl:\n%s", res.Diff)
			}
			if res.Outputs == 0 {
				t.Fatal("no outputs compared")
			}
		})
	}
}
