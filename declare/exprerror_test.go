package declare

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExpressionRuntimeError: an expression that fails on a record (here a
// division of nil by nil: the field is missing) takes the record to the
// error policy: under the default on.error=dlq it is dead-lettered with the
// expression's text and place in the reason, and the records around it are
// processed. With onError: skip on the step, it is dropped instead.
func TestExpressionRuntimeError(t *testing.T) {
	for _, tc := range []struct {
		app     string // the application's settings
		onError string
		dlq     int
	}{
		{"", "", 1},
		{"", "\n        onError: skip", 0},
		// The step's own policy wins over the application's on.error.
		{", settings: {on.error: skip}", "\n        onError: dlq", 1},
		{", settings: {on.error: skip}", "", 0},
	} {
		yaml := `application: {id: app` + tc.app + `}
sources:
  in: {topic: in, key: string, value: json}
streams:
  ratio:
    from: in
    steps:
      - mapValues: value.a / value.b` + tc.onError + `
      - to: {topic: out}
`
		dir := t.TempDir()
		path := filepath.Join(dir, "topology.yaml")
		if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		in := []TestRecord{
			{Topic: "in", Key: "k1", Value: map[string]any{"a": int64(6), "b": int64(3)}},
			{Topic: "in", Key: "k2", Value: map[string]any{"a": int64(1)}},
			{Topic: "in", Key: "k3", Value: map[string]any{"a": int64(1), "b": int64(4)}},
		}
		res, err := RunTest(f, in, nil)
		if err != nil {
			t.Fatal(err)
		}
		var outs, dlq []TestRecord
		for _, r := range res.Actual {
			switch r.Topic {
			case "out":
				outs = append(outs, r)
			case "app-dlq":
				dlq = append(dlq, r)
			}
		}
		if len(outs) != 2 || canonical(outs[0].Value) != "2" || canonical(outs[1].Value) != "0.25" {
			t.Fatalf("onError %q: outputs %+v, want 2 and 0.25", tc.onError, outs)
		}
		if len(dlq) != tc.dlq {
			t.Fatalf("onError %q: %d dead letters, want %d", tc.onError, len(dlq), tc.dlq)
		}
		if tc.dlq == 1 {
			reason := dlq[0].Error
			for _, want := range []string{`expression "value.a / value.b"`, "topology.yaml:8:20", "invalid operation"} {
				if !strings.Contains(reason, want) {
					t.Errorf("dead-letter reason %q lacks %q", reason, want)
				}
			}
			if dlq[0].Key != "k2" {
				t.Errorf("dead letter %+v, want the record of k2", dlq[0])
			}
		}
	}
}
