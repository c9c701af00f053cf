package schema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
	"github.com/linkedin/goavro/v2"
)

// TestDataDriven runs the scripts in testdata/. Commands:
//
//	schema name=N          parse the input JSON and keep it as N (file scope)
//	parse                  parse the input JSON; print its canonical form or the error
//	canonical              parse; print canonical form and fingerprint (as a signed int64, as Avro's tests print it)
//	check reader=R writer=W  print "compatible" or the incompatibilities; either side may
//	                       instead be given as an input line "reader: <json>" / "writer: <json>"
//	level level=L existing=(A,B,...) candidate=C   CheckLevel, same output
//	resolve reader=R writer=W  each input line is a datum in goavro's textual form for W;
//	                       print the projected datum in R's textual form, or the error
//
// Regenerate with -rewrite and review the diff.
func TestDataDriven(t *testing.T) {
	entries, err := os.ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() { // testdata/fuzz holds the fuzzer's corpus
			continue
		}
		path := filepath.Join("testdata", e.Name())
		t.Run(e.Name(), func(t *testing.T) { runScript(t, path) })
	}
}

func runScript(t *testing.T, path string) {
	named := map[string]*Schema{}
	datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
		switch d.Cmd {
		case "schema":
			var name string
			d.ScanArgs(t, "name", &name)
			s, err := Parse(d.Input)
			if err != nil {
				return "error: " + err.Error()
			}
			named[name] = s
			return "ok"
		case "parse":
			s, err := Parse(d.Input)
			if err != nil {
				return "error: " + err.Error()
			}
			return s.Canonical()
		case "canonical":
			s, err := Parse(d.Input)
			if err != nil {
				return "error: " + err.Error()
			}
			fp := s.Fingerprint()
			return fmt.Sprintf("%s\nfingerprint %d", s.Canonical(), int64(fp))
		case "check":
			r, w := pairArgs(t, d, named)
			return formatProblems(CheckCompatibility(r, w))
		case "level":
			var lv, cand string
			d.ScanArgs(t, "level", &lv)
			d.ScanArgs(t, "candidate", &cand)
			arg, _ := d.Arg("existing")
			var hist []*Schema
			for _, n := range arg.Vals {
				if n == "" {
					continue
				}
				hist = append(hist, lookup(t, d, named, n))
			}
			return formatProblems(CheckLevel(Level(lv), hist, lookup(t, d, named, cand)))
		case "resolve":
			r, w := pairArgs(t, d, named)
			return resolveLines(t, r, w, d.Input)
		default:
			d.Fatalf(t, "unknown command %q", d.Cmd)
			return ""
		}
	})
}

func lookup(t *testing.T, d *datadriven.TestData, named map[string]*Schema, name string) *Schema {
	s, ok := named[name]
	if !ok {
		d.Fatalf(t, "no schema named %q", name)
	}
	return s
}

// pairArgs returns the reader and writer of a check or resolve command.
func pairArgs(t *testing.T, d *datadriven.TestData, named map[string]*Schema) (r, w *Schema) {
	for _, side := range []string{"reader", "writer"} {
		var s *Schema
		if arg, ok := d.Arg(side); ok {
			s = lookup(t, d, named, arg.Vals[0])
		} else if d.Cmd == "check" {
			if text, ok := inlineSchemas(d.Input)[side]; ok {
				var err error
				if s, err = Parse(text); err != nil {
					d.Fatalf(t, "%s: %v", side, err)
				}
			}
		}
		if s == nil {
			d.Fatalf(t, "no %s schema", side)
		}
		if side == "reader" {
			r = s
		} else {
			w = s
		}
	}
	return r, w
}

// inlineSchemas splits input into the texts after "reader:" and "writer:";
// a schema may continue over the following lines.
func inlineSchemas(input string) map[string]string {
	out := map[string]string{}
	cur := ""
	for _, line := range strings.Split(input, "\n") {
		for _, side := range []string{"reader", "writer"} {
			if text, ok := strings.CutPrefix(line, side+":"); ok {
				cur, line = side, text
			}
		}
		if cur != "" {
			out[cur] += line + "\n"
		}
	}
	return out
}

func formatProblems(ps []Incompatibility) string {
	switch len(ps) {
	case 0:
		return "compatible"
	case 1:
		return "incompatible: " + ps[0].String()
	}
	var b strings.Builder
	b.WriteString("incompatible:")
	for _, p := range ps {
		b.WriteString("\n" + p.String())
	}
	return b.String()
}

// resolveLines round-trips each textual datum: writer textual -> native ->
// binary -> native (as a consumer decodes) -> Project -> reader binary ->
// reader native -> reader textual.
func resolveLines(t *testing.T, r, w *Schema, input string) string {
	res, err := Resolve(r, w)
	if err != nil {
		return "error: " + err.Error()
	}
	wc, err := goavro.NewCodec(w.String())
	if err != nil {
		t.Fatalf("writer codec: %v", err)
	}
	rc, err := goavro.NewCodec(r.String())
	if err != nil {
		t.Fatalf("reader codec: %v", err)
	}
	var out []string
	for _, line := range strings.Split(input, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		out = append(out, resolveOne(res, wc, rc, line))
	}
	return strings.Join(out, "\n")
}

func resolveOne(res *Resolution, wc, rc *goavro.Codec, line string) string {
	native, _, err := wc.NativeFromTextual([]byte(line))
	if err != nil {
		return "bad writer datum: " + err.Error()
	}
	bin, err := wc.BinaryFromNative(nil, native)
	if err != nil {
		return "bad writer datum: " + err.Error()
	}
	decoded, _, err := wc.NativeFromBinary(bin)
	if err != nil {
		return "writer decode: " + err.Error()
	}
	projected, err := res.Project(decoded)
	if err != nil {
		return "error: " + err.Error()
	}
	rbin, err := rc.BinaryFromNative(nil, projected)
	if err != nil {
		return "reader encode: " + err.Error()
	}
	back, _, err := rc.NativeFromBinary(rbin)
	if err != nil {
		return "reader decode: " + err.Error()
	}
	text, err := rc.TextualFromNative(nil, back)
	if err != nil {
		return "reader textual: " + err.Error()
	}
	// goavro writes map keys in random order; re-encode sorted.
	dec := json.NewDecoder(bytes.NewReader(text))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return "reader textual: " + err.Error()
	}
	sorted, err := json.Marshal(v)
	if err != nil {
		return "reader textual: " + err.Error()
	}
	return string(sorted)
}
