package schema

import (
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

func mustParse(t testing.TB, text string) *Schema {
	t.Helper()
	s, err := Parse(text)
	if err != nil {
		t.Fatalf("Parse(%s): %v", text, err)
	}
	return s
}

func TestStringIsOriginalText(t *testing.T) {
	text := `{ "type": "record", "name": "R", "doc": "kept", "fields": [ {"name":"a","type":"int"} ] }`
	s := mustParse(t, text)
	if s.String() != text {
		t.Fatalf("String() = %q, want the original text", s.String())
	}
	if got, want := s.Fields[0].Type.String(), `"int"`; got != want {
		t.Fatalf("nested String() = %q, want canonical %q", got, want)
	}
}

func TestModel(t *testing.T) {
	s := mustParse(t, `{"type":"record","name":"R","namespace":"a.b","aliases":["Old","x.Y"],"fields":[
		{"name":"e","type":{"type":"enum","name":"E","symbols":["A","B"],"default":"B"},"aliases":["ee"],"order":"descending"},
		{"name":"t","type":{"type":"long","logicalType":"timestamp-micros"},"default":5},
		{"name":"d","type":{"type":"fixed","name":"D","size":4,"logicalType":"decimal","precision":9,"scale":2}},
		{"name":"self","type":["null","R"],"default":null}]}`)
	checks := []struct {
		name      string
		got, want any
	}{
		{"name", s.Name, "a.b.R"},
		{"short", s.ShortName(), "R"},
		{"namespace", s.Namespace(), "a.b"},
		{"aliases", s.Aliases, []string{"a.b.Old", "x.Y"}},
		{"enum name", s.Field("e").Type.Name, "a.b.E"},
		{"enum default", s.Field("e").Type.EnumDefault, "B"},
		{"field aliases", s.Field("e").Aliases, []string{"ee"}},
		{"order", s.Field("e").Order, "descending"},
		{"logical", s.Field("t").Type.LogicalType, "timestamp-micros"},
		{"has default", s.Field("t").HasDefault, true},
		{"decimal", [3]any{s.Field("d").Type.LogicalType, s.Field("d").Type.Precision, s.Field("d").Type.Scale}, [3]any{"decimal", 9, 2}},
		{"recursion is the same node", s.Field("self").Type.Branches[1] == s, true},
		{"missing field", s.Field("nope") == nil, true},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestParseErrorType(t *testing.T) {
	_, err := Parse(`{"type":"record","name":"R","fields":[{"name":"a","type":"nope"}]}`)
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v is not a *ParseError", err)
	}
	if pe.Path != "/fields/a/type" {
		t.Fatalf("path %q", pe.Path)
	}
}

func TestFingerprintMatchesCanonical(t *testing.T) {
	a := mustParse(t, `{"type":"record","name":"R","doc":"x","fields":[{"name":"a","type":"int","default":1}]}`)
	b := mustParse(t, `{"name":"R","fields":[{"type":{"type":"int"},"name":"a"}],"type":"record"}`)
	if a.Fingerprint() != b.Fingerprint() || a.Canonical() != b.Canonical() {
		t.Fatalf("equivalent schemas differ: %s vs %s", a.Canonical(), b.Canonical())
	}
	// The nested node's standalone fingerprint is computed on demand.
	n := a.Fields[0].Type
	if n.Fingerprint() != mustParse(t, `"int"`).Fingerprint() {
		t.Fatalf("nested fingerprint differs")
	}
}

func TestParseLevel(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Level
		err  bool
	}{
		{"BACKWARD", Backward, false},
		{"backward_transitive", BackwardTransitive, false},
		{" Full ", Full, false},
		{"none", None, false},
		{"FORWARD", Forward, false},
		{"forward_TRANSITIVE", ForwardTransitive, false},
		{"full_transitive", FullTransitive, false},
		{"sideways", "", true},
		{"", "", true},
	} {
		got, err := ParseLevel(c.in)
		if (err != nil) != c.err || got != c.want {
			t.Errorf("ParseLevel(%q) = %q, %v", c.in, got, err)
		}
		if err != nil && !strings.Contains(err.Error(), "FULL_TRANSITIVE") {
			t.Errorf("error %q does not name the valid levels", err)
		}
	}
}

func TestIncompatibilityError(t *testing.T) {
	e := &IncompatibilityError{Subject: "orders-value", Level: Backward, Problems: []Incompatibility{
		{Path: "/fields/amount/type", Rule: RuleTypeMismatch, Message: "reader int cannot read writer long"},
		{Path: "/fields/x", Rule: RuleMissingDefault, Message: "no default"},
	}}
	msg := e.Error()
	for _, want := range []string{`"orders-value"`, "BACKWARD", "/fields/amount/type", "TYPE_MISMATCH", "/fields/x", "READER_FIELD_MISSING_DEFAULT_VALUE"} {
		if !strings.Contains(msg, want) {
			t.Errorf("Error() = %q lacks %q", msg, want)
		}
	}
	if !errors.Is(e, ErrIncompatible) {
		t.Error("IncompatibilityError does not match ErrIncompatible")
	}
	if got, want := e.Problems[0].String(), "/fields/amount/type: reader int cannot read writer long (TYPE_MISMATCH)"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	_, err := Resolve(mustParse(t, `"int"`), mustParse(t, `"long"`))
	var re *ResolveError
	if !errors.As(err, &re) || !errors.Is(err, ErrIncompatible) || len(re.Problems) != 1 {
		t.Errorf("Resolve error %v: want a *ResolveError matching ErrIncompatible", err)
	}
}

func TestResolverCache(t *testing.T) {
	w := mustParse(t, `{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}`)
	r1 := mustParse(t, `{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"b","type":"int","default":1}]}`)
	// Same canonical form and fingerprint as r1, different default.
	r2 := mustParse(t, `{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"b","type":"int","default":2}]}`)
	if r1.Fingerprint() != r2.Fingerprint() {
		t.Fatal("test premise: fingerprints should be equal")
	}
	rv := NewResolver()
	var wg sync.WaitGroup
	got := make([]*Resolution, 16)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := rv.Resolve(r1, w)
			if err != nil {
				t.Error(err)
			}
			got[i] = res
		}()
	}
	wg.Wait()
	for _, res := range got {
		if res != got[0] {
			t.Fatal("concurrent Resolve of one pair returned different Resolutions")
		}
	}
	again, _ := rv.Resolve(mustParse(t, r1.String()), w)
	if again != got[0] {
		t.Fatal("same reader text did not hit the cache")
	}
	res2, err := rv.Resolve(r2, w)
	if err != nil {
		t.Fatal(err)
	}
	if res2 == got[0] {
		t.Fatal("a reader with other defaults reused the cached Resolution")
	}
	v, _ := res2.Project(map[string]any{"a": int32(1)})
	if v.(map[string]any)["b"] != int32(2) {
		t.Fatalf("got %v, want b=2", v)
	}
	if _, err := rv.Resolve(mustParse(t, `"string"`), w); err == nil {
		t.Fatal("incompatible pair resolved")
	}
}

func TestProjectLogicalTypes(t *testing.T) {
	ts := time.Date(2024, 5, 6, 7, 8, 9, 123000000, time.UTC)
	day := time.Date(2024, 5, 6, 0, 0, 0, 0, time.UTC)
	dec, _ := new(big.Rat).SetString("-12.34")
	cases := []struct {
		name           string
		reader, writer string
		in, want       any
	}{
		{"timestamp-millis to long", `"long"`, `{"type":"long","logicalType":"timestamp-millis"}`, ts, ts.UnixMilli()},
		{"long to timestamp-millis", `{"type":"long","logicalType":"timestamp-millis"}`, `"long"`, ts.UnixMilli(), ts},
		{"int to timestamp-millis", `{"type":"long","logicalType":"timestamp-millis"}`, `"int"`, int32(1000), time.UnixMilli(1000).UTC()},
		{"date to int", `"int"`, `{"type":"int","logicalType":"date"}`, day, int32(day.Unix() / 86400)},
		{"int to date", `{"type":"int","logicalType":"date"}`, `"int"`, int32(day.Unix() / 86400), day},
		{"time-millis to double", `"double"`, `{"type":"int","logicalType":"time-millis"}`, 1500 * time.Millisecond, float64(1500)},
		{"time-micros kept", `{"type":"long","logicalType":"time-micros"}`, `{"type":"long","logicalType":"time-micros"}`, 3 * time.Microsecond, 3 * time.Microsecond},
		{"decimal kept", `{"type":"bytes","logicalType":"decimal","precision":4,"scale":2}`, `{"type":"bytes","logicalType":"decimal","precision":4,"scale":2}`, dec, dec},
		{"decimal to bytes", `"bytes"`, `{"type":"bytes","logicalType":"decimal","precision":4,"scale":2}`, dec, []byte{0xFB, 0x2E}},
		{"bytes to decimal", `{"type":"bytes","logicalType":"decimal","precision":4,"scale":2}`, `"bytes"`, []byte{0xFB, 0x2E}, dec},
		{"fixed decimal to fixed", `{"type":"fixed","name":"F","size":4}`, `{"type":"fixed","name":"F","size":4,"logicalType":"decimal","precision":4,"scale":2}`, dec, []byte{0xFF, 0xFF, 0xFB, 0x2E}},
		{"string to bytes", `"bytes"`, `"string"`, "hé", []byte("hé")},
		{"uuid is a string", `{"type":"string","logicalType":"uuid"}`, `"string"`, "u", "u"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := Resolve(mustParse(t, c.reader), mustParse(t, c.writer))
			if err != nil {
				t.Fatal(err)
			}
			got, err := res.Project(c.in)
			if err != nil {
				t.Fatal(err)
			}
			if r, ok := got.(*big.Rat); ok {
				if r.Cmp(c.want.(*big.Rat)) != 0 {
					t.Fatalf("got %v, want %v", r, c.want)
				}
				return
			}
			if tm, ok := got.(time.Time); ok {
				if !tm.Equal(c.want.(time.Time)) {
					t.Fatalf("got %v, want %v", tm, c.want)
				}
				return
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %#v, want %#v", got, c.want)
			}
		})
	}
}

func TestProjectRejectsNonWriterValues(t *testing.T) {
	w := mustParse(t, `{"type":"record","name":"R","fields":[{"name":"a","type":["null","int"]},{"name":"e","type":{"type":"enum","name":"E","symbols":["A"]}}]}`)
	res, err := Resolve(w, w)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []any{
		"not a record",
		map[string]any{"e": "A"},
		map[string]any{"a": map[string]any{"string": "x"}, "e": "A"},
		map[string]any{"a": map[string]any{"int": "x"}, "e": "A"},
		map[string]any{"a": nil, "e": "B"},
		map[string]any{"a": nil, "e": 1},
	} {
		if _, err := res.Project(v); err == nil {
			t.Errorf("Project(%#v) succeeded", v)
		}
	}
}

func TestDefaultsAreFreshCopies(t *testing.T) {
	w := mustParse(t, `{"type":"record","name":"R","fields":[]}`)
	r := mustParse(t, `{"type":"record","name":"R","fields":[{"name":"l","type":{"type":"array","items":"int"},"default":[1]}]}`)
	res, err := Resolve(r, w)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := res.Project(map[string]any{})
	a.(map[string]any)["l"].([]any)[0] = int32(99)
	b, _ := res.Project(map[string]any{})
	if got := b.(map[string]any)["l"].([]any)[0]; got != int32(1) {
		t.Fatalf("mutating one result changed the default: %v", got)
	}
}

func TestCheckLevelMessages(t *testing.T) {
	v1 := mustParse(t, `{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}`)
	v2 := mustParse(t, `{"type":"record","name":"R","fields":[{"name":"a","type":"long"}]}`)
	ps := CheckLevel(FullTransitive, []*Schema{v1, v2}, v1)
	if len(ps) != 1 || !strings.Contains(ps[0].Message, "version 2") || !strings.Contains(ps[0].Message, "backward") {
		t.Fatalf("got %v", ps)
	}
	if ps := CheckLevel(Backward, []*Schema{v1}, nil); len(ps) != 1 || ps[0].Rule != RuleMissingSchema {
		t.Fatalf("nil candidate: %v", ps)
	}
}

// FuzzParse: Parse never panics, and a parsed schema's canonical form parses
// to the same canonical form and fingerprint (idempotence), and a schema
// always reads itself.
func FuzzParse(f *testing.F) {
	for _, s := range []string{`"int"`, `["null","string"]`, `{"type":"record","name":"R","fields":[{"name":"a","type":["null","R"],"default":null}]}`,
		`{"type":"enum","name":"E","symbols":["A"],"default":"A"}`, `{"type":"fixed","name":"F","size":16,"logicalType":"decimal","precision":20}`,
		`{"type":"map","values":{"type":"array","items":"bytes"}}`} {
		f.Add(s)
	}
	files, _ := filepath.Glob("testdata/*")
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "{") || strings.HasPrefix(line, "[") || strings.HasPrefix(line, `"`) {
				f.Add(line)
			}
		}
	}
	f.Fuzz(func(t *testing.T, text string) {
		s, err := Parse(text)
		if err != nil {
			return
		}
		c := s.Canonical()
		if nullNamespaceNested(s, "", map[*Schema]bool{}) {
			// The canonical form drops namespace attributes, so a type in the
			// null namespace nested in a namespaced one reads back in the
			// enclosing namespace: a known limit of the specification's
			// Parsing Canonical Form, shared by Avro's Java implementation
			// (whose fingerprints we must match).
			return
		}
		s2, err := Parse(c)
		if err != nil {
			t.Fatalf("canonical form %s does not parse: %v", c, err)
		}
		if s2.Canonical() != c || s2.Fingerprint() != s.Fingerprint() {
			t.Fatalf("canonical form not idempotent: %s -> %s", c, s2.Canonical())
		}
		if ps := CheckCompatibility(s, s); len(ps) > 0 {
			t.Fatalf("schema cannot read itself: %v", ps)
		}
		if _, err := Resolve(s, s); err != nil {
			t.Fatalf("schema does not resolve against itself: %v", err)
		}
	})
}

// nullNamespaceNested reports whether s mixes named types in the null
// namespace with namespaced ones, where the canonical form's bare names can
// be read back in the wrong namespace.
func nullNamespaceNested(s *Schema, _ string, seen map[*Schema]bool) bool {
	var null, spaced bool
	var walk func(*Schema)
	walk = func(s *Schema) {
		if s == nil || seen[s] {
			return
		}
		if s.Kind.IsNamed() {
			seen[s] = true
			if s.Namespace() == "" {
				null = true
			} else {
				spaced = true
			}
		}
		for _, f := range s.Fields {
			walk(f.Type)
		}
		for _, b := range s.Branches {
			walk(b)
		}
		walk(s.Items)
		walk(s.Values)
	}
	walk(s)
	return null && spaced
}
