package declare

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/eos-runner/eos-runner/processor"
	"github.com/eos-runner/eos-runner/schema"
)

// Load reads, parses and checks a topology file: its shape (keys, types),
// its references, its windows and joins, and its expressions (compiled and
// type-checked, against Avro schemas where the file names them). It reports
// every problem at once, as Errors, each with file:line:column. It reads the
// schema files the file names and nothing else: no broker, no registry.
func Load(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, b)
}

// Parse is Load of a file's contents; path names it in positions and
// locates its schema files.
func Parse(path string, data []byte) (*File, error) {
	r := &reader{file: path, ps: &problems{}}
	f := &File{Path: path, Dir: filepath.Dir(path)}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		r.ps.add(yamlErrorPos(path, err), "%s", strings.TrimPrefix(yamlErrorMsg(err), "yaml: "))
		return nil, r.ps.err()
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		r.ps.add(Pos{File: path, Line: 1, Column: 1}, "empty file: expected application, sources and streams")
		return nil, r.ps.err()
	}
	r.file_(f, doc.Content[0])
	if err := r.ps.err(); err != nil {
		return nil, err // shape problems first: references on a broken file mislead
	}
	check(f, r.ps)
	if err := r.ps.err(); err != nil {
		return nil, err
	}
	return f, nil
}

var yamlLine = regexp.MustCompile(`line (\d+): `)

func yamlErrorPos(path string, err error) Pos {
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		n, _ := strconv.Atoi(m[1])
		return Pos{File: path, Line: n, Column: 1}
	}
	return Pos{File: path, Line: 1, Column: 1}
}

func yamlErrorMsg(err error) string { return yamlLine.ReplaceAllString(err.Error(), "") }

// reader turns YAML nodes into a File, noting problems.
type reader struct {
	file string
	ps   *problems
}

func (r *reader) pos(n *yaml.Node) Pos { return Pos{File: r.file, Line: n.Line, Column: n.Column} }

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	if n.Tag == "!!null" {
		return "nothing (null)"
	}
	return fmt.Sprintf("%q", n.Value)
}

// mapping is a YAML mapping's keys, checked against the allowed ones.
type mapping struct {
	r      *reader
	node   *yaml.Node
	values map[string]*yaml.Node
	keys   map[string]*yaml.Node
	order  []string
}

// mapping reads n as a mapping of the allowed keys, reporting others
// (unknown, duplicated) and a node that is no mapping (nil then).
func (r *reader) mapping(n *yaml.Node, what string, allowed ...string) *mapping {
	if n.Kind != yaml.MappingNode {
		r.ps.add(r.pos(n), "%s: got %s, expected a mapping", what, kindName(n))
		return nil
	}
	m := &mapping{r: r, node: n, values: map[string]*yaml.Node{}, keys: map[string]*yaml.Node{}}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if _, dup := m.values[k.Value]; dup {
			r.ps.add(r.pos(k), "%s: key %q given twice", what, k.Value)
			continue
		}
		if allowed != nil && !contains(allowed, k.Value) {
			r.ps.add(r.pos(k), "%s: unknown key %q; expected one of %s", what, k.Value, strings.Join(allowed, ", "))
			continue
		}
		m.values[k.Value], m.keys[k.Value] = v, k
		m.order = append(m.order, k.Value)
	}
	return m
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func (m *mapping) get(key string) *yaml.Node {
	if m == nil {
		return nil
	}
	return m.values[key]
}

func (m *mapping) has(key string) bool { return m.get(key) != nil }

// required reports a missing key.
func (m *mapping) required(what string, keys ...string) bool {
	if m == nil {
		return false
	}
	ok := true
	for _, k := range keys {
		if !m.has(k) {
			m.r.ps.add(m.r.pos(m.node), "%s: missing %q", what, k)
			ok = false
		}
	}
	return ok
}

// str reads a scalar string.
func (r *reader) str(n *yaml.Node, what string) string {
	if n == nil {
		return ""
	}
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		r.ps.add(r.pos(n), "%s: got %s, expected a string", what, kindName(n))
		return ""
	}
	return n.Value
}

// name reads a name: letters, digits, '.', '_' and '-'.
func (r *reader) name(n *yaml.Node, what string) string {
	s := r.str(n, what)
	if s != "" && !validName.MatchString(s) {
		r.ps.add(r.pos(n), "%s: %q is not a valid name; expected letters, digits, '.', '_' and '-'", what, s)
	}
	return s
}

var validName = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

func (r *reader) boolean(n *yaml.Node, what string) bool {
	if n == nil {
		return false
	}
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
		r.ps.add(r.pos(n), "%s: got %s, expected true or false", what, kindName(n))
		return false
	}
	return n.Value == "true"
}

func (r *reader) integer(n *yaml.Node, what string) int {
	if n == nil {
		return 0
	}
	v, err := strconv.Atoi(n.Value)
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || err != nil || v < 1 {
		r.ps.add(r.pos(n), "%s: got %s, expected a positive integer", what, kindName(n))
		return 0
	}
	return v
}

// duration reads a Go duration ("10s", "1m30s", "1h") or whole
// milliseconds; it must be whole milliseconds and not negative.
func (r *reader) duration(n *yaml.Node, what string) time.Duration {
	if n == nil {
		return 0
	}
	if n.Kind != yaml.ScalarNode {
		r.ps.add(r.pos(n), "%s: got %s, expected a duration such as 10s, 5m or 1h", what, kindName(n))
		return 0
	}
	var d time.Duration
	if ms, err := strconv.ParseInt(n.Value, 10, 64); err == nil {
		d = time.Duration(ms) * time.Millisecond
	} else if d, err = time.ParseDuration(n.Value); err != nil {
		r.ps.add(r.pos(n), "%s: %q is not a duration; expected one such as 10s, 5m or 1h (or milliseconds)", what, n.Value)
		return 0
	}
	switch {
	case d < 0:
		r.ps.add(r.pos(n), "%s: %q is negative", what, n.Value)
	case d%time.Millisecond != 0:
		r.ps.add(r.pos(n), "%s: %q is not whole milliseconds", what, n.Value)
	}
	return d
}

func (r *reader) expr(n *yaml.Node, what string) *Expr {
	if n == nil {
		return nil
	}
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		r.ps.add(r.pos(n), "%s: got %s, expected an expression", what, kindName(n))
		return nil
	}
	return newExpr(n, r.pos(n))
}

// file_ reads the top level.
func (r *reader) file_(f *File, n *yaml.Node) {
	top := r.mapping(n, "file", "application", "sources", "tables", "sinks", "streams")
	if top == nil {
		return
	}
	if a := top.get("application"); a != nil {
		r.application(f, a)
	} else {
		r.ps.add(r.pos(n), "file: missing \"application\" (with id)")
	}
	if s := top.get("sources"); s != nil {
		r.named(s, "sources", func(name string, pos Pos, v *yaml.Node) { f.Sources = append(f.Sources, r.source(name, pos, v)) })
	}
	if s := top.get("tables"); s != nil {
		r.named(s, "tables", func(name string, pos Pos, v *yaml.Node) { f.Tables = append(f.Tables, r.table(name, pos, v)) })
	}
	if s := top.get("sinks"); s != nil {
		r.named(s, "sinks", func(name string, pos Pos, v *yaml.Node) {
			sk := r.sink(v, "sink "+name)
			if sk != nil {
				sk.Name, sk.Pos = name, pos
				f.Sinks = append(f.Sinks, sk)
			}
		})
	}
	if s := top.get("streams"); s != nil {
		r.named(s, "streams", func(name string, pos Pos, v *yaml.Node) { f.Streams = append(f.Streams, r.stream(name, pos, v)) })
	} else {
		r.ps.add(r.pos(n), "file: missing \"streams\": nothing to compute")
	}
}

// named reads a mapping of name -> declaration.
func (r *reader) named(n *yaml.Node, what string, fn func(name string, pos Pos, v *yaml.Node)) {
	m := r.mapping(n, what)
	if m == nil {
		return
	}
	for _, k := range m.order {
		key := m.keys[k]
		name := r.name(key, what+" name")
		if name != "" {
			fn(name, r.pos(key), m.values[k])
		}
	}
}

func (r *reader) application(f *File, n *yaml.Node) {
	m := r.mapping(n, "application", "id", "settings")
	if m == nil {
		return
	}
	if m.required("application", "id") {
		f.AppID, f.AppIDPos = r.name(m.get("id"), "application id"), r.pos(m.get("id"))
	}
	s := m.get("settings")
	if s == nil {
		return
	}
	sm := r.mapping(s, "application settings")
	if sm == nil {
		return
	}
	var scratch processor.Config
	for _, k := range sm.order {
		v := sm.values[k]
		pos := r.pos(sm.keys[k])
		if v.Kind != yaml.ScalarNode {
			r.ps.add(r.pos(v), "setting %s: got %s, expected a scalar", k, kindName(v))
			continue
		}
		if k == "application.id" {
			r.ps.add(pos, "setting application.id: give it as application.id's id, not a setting")
			continue
		}
		if err := scratch.Set(k, v.Value); err != nil {
			msg := strings.TrimPrefix(strings.TrimPrefix(err.Error(), "config "+k+": "), "config: ")
			r.ps.add(pos, "setting %s: %s", k, msg)
			continue
		}
		f.Settings = append(f.Settings, Setting{Key: k, Value: v.Value, Pos: pos})
	}
}

var formats = []string{"string", "json", "bytes", "int64", "decimal", "avro"}

// format reads a format: a name (string, json, bytes, int64) or a mapping
// {format: avro, schema: FILE} / {format: avro, subject: latest}.
func (r *reader) format(n *yaml.Node, what string) Format {
	f := Format{Pos: r.pos(n)}
	if n.Kind == yaml.ScalarNode {
		f.Kind = n.Value
		if !contains(formats, f.Kind) {
			r.ps.add(r.pos(n), "%s: unknown format %q; expected one of %s", what, n.Value, strings.Join(formats, ", "))
		} else if f.Kind == "avro" {
			r.ps.add(r.pos(n), "%s: avro needs a schema: {format: avro, schema: FILE.avsc} or {format: avro, subject: latest}", what)
		}
		return f
	}
	m := r.mapping(n, what, "format", "schema", "subject")
	if m == nil || !m.required(what, "format") {
		return f
	}
	f.Kind = r.str(m.get("format"), what+" format")
	if !contains(formats, f.Kind) {
		r.ps.add(r.pos(m.get("format")), "%s: unknown format %q; expected one of %s", what, f.Kind, strings.Join(formats, ", "))
		return f
	}
	if f.Kind != "avro" {
		if m.has("schema") || m.has("subject") {
			r.ps.add(r.pos(n), "%s: schema and subject are for the avro format, not %s", what, f.Kind)
		}
		return f
	}
	switch {
	case m.has("schema") && m.has("subject"):
		r.ps.add(r.pos(n), "%s: give schema or subject, not both", what)
	case m.has("schema"):
		f.Schema = r.str(m.get("schema"), what+" schema")
		r.readSchema(&f, m.get("schema"), what)
	case m.has("subject"):
		if s := r.str(m.get("subject"), what+" subject"); s != "latest" {
			r.ps.add(r.pos(m.get("subject")), "%s subject: got %q, expected latest (the subject's latest schema, read from the registry at startup)", what, s)
		}
		f.Latest = true
	default:
		r.ps.add(r.pos(n), "%s: avro needs schema: FILE.avsc or subject: latest", what)
	}
	return f
}

func (r *reader) readSchema(f *Format, n *yaml.Node, what string) {
	if f.Schema == "" {
		return
	}
	path := f.Schema
	if !filepath.IsAbs(path) {
		path = filepath.Join(filepath.Dir(r.file), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		r.ps.add(r.pos(n), "%s schema: %v", what, unwrapPath(err))
		return
	}
	if _, err := schema.Parse(string(b)); err != nil {
		r.ps.add(r.pos(n), "%s schema %s: %v", what, f.Schema, err)
		return
	}
	f.SchemaText = string(b)
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("cannot read %s: %w", pe.Path, pe.Err)
	}
	return err
}

func (r *reader) source(name string, pos Pos, n *yaml.Node) *Source {
	s := &Source{Name: name, Pos: pos}
	what := "source " + name
	m := r.mapping(n, what, "topic", "topics", "key", "value", "timestamp", "partitions")
	if m == nil {
		return s
	}
	switch {
	case m.has("topic") && m.has("topics"):
		r.ps.add(r.pos(n), "%s: give topic or topics, not both", what)
	case m.has("topic"):
		s.Topics = []string{r.name(m.get("topic"), what+" topic")}
	case m.has("topics"):
		t := m.get("topics")
		if t.Kind != yaml.SequenceNode || len(t.Content) == 0 {
			r.ps.add(r.pos(t), "%s topics: got %s, expected a list of topics", what, kindName(t))
		} else {
			for _, c := range t.Content {
				s.Topics = append(s.Topics, r.name(c, what+" topic"))
			}
		}
	default:
		r.ps.add(r.pos(n), "%s: missing \"topic\"", what)
	}
	if m.required(what, "key", "value") {
		s.Key = r.format(m.get("key"), what+" key")
		s.Value = r.format(m.get("value"), what+" value")
	}
	if t := m.get("timestamp"); t != nil {
		s.Timestamp = r.str(t, what+" timestamp")
	}
	s.Partitions = r.integer(m.get("partitions"), what+" partitions")
	return s
}

func (r *reader) table(name string, pos Pos, n *yaml.Node) *Table {
	t := &Table{Name: name, Pos: pos}
	what := "table " + name
	m := r.mapping(n, what, "topic", "key", "value", "store", "global", "partitions")
	if m == nil || !m.required(what, "topic", "key", "value") {
		return t
	}
	t.Topic = r.name(m.get("topic"), what+" topic")
	t.Key = r.format(m.get("key"), what+" key")
	t.Value = r.format(m.get("value"), what+" value")
	t.Store = r.name(m.get("store"), what+" store")
	t.Global = r.boolean(m.get("global"), what+" global")
	t.Partitions = r.integer(m.get("partitions"), what+" partitions")
	return t
}

// sink reads a sink: a name of one in sinks (as a Ref, Topic empty) or an
// inline {topic, key, value}.
func (r *reader) sink(n *yaml.Node, what string) *Sink {
	if n.Kind == yaml.ScalarNode {
		return &Sink{Name: r.name(n, what), Pos: r.pos(n)}
	}
	m := r.mapping(n, what, "topic", "key", "value")
	if m == nil || !m.required(what, "topic") {
		return nil
	}
	s := &Sink{Pos: r.pos(n), Topic: r.name(m.get("topic"), what+" topic")}
	if k := m.get("key"); k != nil {
		f := r.format(k, what+" key")
		s.Key = &f
	}
	if v := m.get("value"); v != nil {
		f := r.format(v, what+" value")
		s.Value = &f
	}
	return s
}

func (r *reader) refs(n *yaml.Node, what string) []Ref {
	if n.Kind == yaml.SequenceNode {
		var out []Ref
		for _, c := range n.Content {
			out = append(out, Ref{Name: r.name(c, what), Pos: r.pos(c)})
		}
		if len(out) == 0 {
			r.ps.add(r.pos(n), "%s: empty list, expected a name", what)
		}
		return out
	}
	return []Ref{{Name: r.name(n, what), Pos: r.pos(n)}}
}

func (r *reader) stream(name string, pos Pos, n *yaml.Node) *Stream {
	s := &Stream{Name: name, Pos: pos}
	what := "stream " + name
	m := r.mapping(n, what, "from", "steps")
	if m == nil || !m.required(what, "from") {
		return s
	}
	s.From = r.refs(m.get("from"), what+" from")
	if st := m.get("steps"); st != nil {
		if st.Kind != yaml.SequenceNode {
			r.ps.add(r.pos(st), "%s steps: got %s, expected a list of steps", what, kindName(st))
			return s
		}
		for i, c := range st.Content {
			if step := r.step(c, fmt.Sprintf("%s step %d", what, i+1)); step != nil {
				s.Steps = append(s.Steps, step)
			}
		}
	}
	return s
}

// ops are the step operations; common are the keys any step may add.
var (
	ops = []string{"filter", "filterNot", "map", "mapValues", "selectKey", "flatMap", "flatMapValues",
		"project", "rename", "merge", "branch", "groupByKey", "groupBy", "windowedBy",
		"count", "sum", "min", "max", "avg", "reduce", "aggregate", "toStream", "join", "dedup", "repartition", "to"}
	common = []string{"name", "store", "onError", "keyFormat", "valueFormat"}
)

func (r *reader) step(n *yaml.Node, what string) *Step {
	m := r.mapping(n, what, append(append([]string(nil), ops...), common...)...)
	if m == nil {
		return nil
	}
	var op string
	for _, k := range m.order {
		if contains(ops, k) {
			if op != "" {
				r.ps.add(r.pos(m.keys[k]), "%s: two operations, %s and %s; give one step each", what, op, k)
				continue
			}
			op = k
		}
	}
	if op == "" {
		r.ps.add(r.pos(n), "%s: no operation; expected one of %s", what, strings.Join(ops, ", "))
		return nil
	}
	s := &Step{Op: op, Pos: r.pos(m.keys[op])}
	what = what + " (" + op + ")"
	s.Name = r.name(m.get("name"), what+" name")
	s.Store = r.name(m.get("store"), what+" store")
	if e := m.get("onError"); e != nil {
		s.OnError = r.str(e, what+" onError")
		switch s.OnError {
		case "skip", "dlq", "fail", "default":
		default:
			r.ps.add(r.pos(e), "%s onError: got %q, expected skip (drop the record), dlq (to the dead-letter topic), fail (stop) or default (the application's on.error)", what, s.OnError)
		}
		if s.OnError == "default" {
			s.OnError = ""
		}
	}
	if k := m.get("keyFormat"); k != nil {
		f := r.format(k, what+" keyFormat")
		s.KeyFormat = &f
	}
	if v := m.get("valueFormat"); v != nil {
		f := r.format(v, what+" valueFormat")
		s.ValueFormat = &f
	}
	v := m.get(op)
	switch op {
	case "filter", "filterNot", "mapValues", "selectKey", "flatMap", "flatMapValues", "sum", "min", "max", "avg":
		s.Expr = r.expr(v, what)
	case "map":
		mm := r.mapping(v, what, "key", "value")
		if mm.required(what, "key", "value") {
			s.Key, s.Value = r.expr(mm.get("key"), what+" key"), r.expr(mm.get("value"), what+" value")
		}
	case "groupBy":
		if v.Kind == yaml.MappingNode { // a table's: {key, value}
			mm := r.mapping(v, what, "key", "value")
			if mm.required(what, "key", "value") {
				s.Key, s.Value = r.expr(mm.get("key"), what+" key"), r.expr(mm.get("value"), what+" value")
			}
		} else {
			s.Expr = r.expr(v, what)
		}
	case "groupByKey", "toStream":
		if !(v.Kind == yaml.ScalarNode && (v.Value == "true" || v.Tag == "!!null")) && !(v.Kind == yaml.MappingNode && len(v.Content) == 0) {
			r.ps.add(r.pos(v), "%s: got %s, expected true or {}", what, kindName(v))
		}
	case "project":
		if v.Kind != yaml.SequenceNode || len(v.Content) == 0 {
			r.ps.add(r.pos(v), "%s: got %s, expected a list of fields", what, kindName(v))
			break
		}
		for _, c := range v.Content {
			s.Fields = append(s.Fields, r.str(c, what+" field"))
		}
	case "rename":
		mm := r.mapping(v, what)
		if mm == nil {
			break
		}
		if len(mm.order) == 0 {
			r.ps.add(r.pos(v), "%s: expected old: new pairs", what)
		}
		for _, k := range mm.order {
			s.Renames = append(s.Renames, [2]string{k, r.str(mm.values[k], what+" "+k)})
		}
	case "merge":
		s.Refs = r.refs(v, what)
	case "branch":
		if v.Kind != yaml.SequenceNode || len(v.Content) == 0 {
			r.ps.add(r.pos(v), "%s: got %s, expected a list of {when, to} or {when, as}", what, kindName(v))
			break
		}
		for i, c := range v.Content {
			bw := fmt.Sprintf("%s arm %d", what, i+1)
			bm := r.mapping(c, bw, "when", "to", "as")
			if bm == nil {
				continue
			}
			b := &Branch{Pos: r.pos(c), When: r.expr(bm.get("when"), bw+" when")}
			switch {
			case bm.has("to") == bm.has("as"):
				r.ps.add(r.pos(c), "%s: give to (a sink) or as (a stream name), one of them", bw)
			case bm.has("to"):
				b.To = r.sink(bm.get("to"), bw+" to")
			default:
				b.As = r.name(bm.get("as"), bw+" as")
			}
			s.Branches = append(s.Branches, b)
		}
	case "windowedBy":
		s.Window = r.window(v, what)
	case "count":
		if v.Kind == yaml.MappingNode {
			r.storeOpts(s, r.mapping(v, what, "store", "ttl", "retention"), what)
		} else if !(v.Kind == yaml.ScalarNode && (v.Value == "true" || v.Tag == "!!null")) {
			r.ps.add(r.pos(v), "%s: got %s, expected true or {store, ttl, retention}", what, kindName(v))
		}
	case "reduce":
		if v.Kind == yaml.MappingNode {
			mm := r.mapping(v, what, "add", "subtract", "store", "ttl", "retention")
			if mm.required(what, "add") {
				s.Agg = &Aggregate{Add: r.expr(mm.get("add"), what+" add"), Subtract: r.expr(mm.get("subtract"), what+" subtract")}
			}
			r.storeOpts(s, mm, what)
		} else {
			s.Agg = &Aggregate{Add: r.expr(v, what)}
		}
	case "aggregate":
		mm := r.mapping(v, what, "init", "add", "subtract", "merge", "store", "ttl", "retention")
		if mm.required(what, "init", "add") {
			s.Agg = &Aggregate{Init: r.expr(mm.get("init"), what+" init"), Add: r.expr(mm.get("add"), what+" add"),
				Subtract: r.expr(mm.get("subtract"), what+" subtract"), Merge: r.expr(mm.get("merge"), what+" merge")}
		}
		r.storeOpts(s, mm, what)
	case "join":
		s.Join = r.join(v, what)
	case "dedup":
		mm := r.mapping(v, what, "key", "field", "header", "ttl")
		if mm.required(what, "ttl") {
			d := &Dedup{Key: r.expr(mm.get("key"), what+" key"), Field: r.str(mm.get("field"), what+" field"),
				Header: r.str(mm.get("header"), what+" header"), TTL: r.duration(mm.get("ttl"), what+" ttl")}
			given := 0
			for _, k := range []string{"key", "field", "header"} {
				if mm.has(k) {
					given++
				}
			}
			if given > 1 {
				r.ps.add(r.pos(v), "%s: give one of key, field and header (none: the record key)", what)
			}
			if d.TTL == 0 && mm.has("ttl") {
				r.ps.add(r.pos(mm.get("ttl")), "%s ttl: must be positive", what)
			}
			s.Dedup = d
		}
	case "repartition":
		s.Repartition = r.name(v, what)
	case "to":
		s.To = r.sink(v, what)
	}
	return s
}

func (r *reader) storeOpts(s *Step, m *mapping, what string) {
	if m == nil {
		return
	}
	if m.has("store") {
		s.Store = r.name(m.get("store"), what+" store")
	}
	s.TTL = r.duration(m.get("ttl"), what+" ttl")
	s.Retention = r.duration(m.get("retention"), what+" retention")
}

var windowTypes = []string{"tumbling", "hopping", "sliding", "session"}

func (r *reader) window(n *yaml.Node, what string) *Window {
	m := r.mapping(n, what, "type", "size", "advance", "grace", "gap", "emit")
	if m == nil || !m.required(what, "type") {
		return nil
	}
	w := &Window{Pos: r.pos(n), Type: r.str(m.get("type"), what+" type")}
	w.Size = r.duration(m.get("size"), what+" size")
	w.Advance = r.duration(m.get("advance"), what+" advance")
	w.Grace = r.duration(m.get("grace"), what+" grace")
	w.Gap = r.duration(m.get("gap"), what+" gap")
	w.Emit = r.str(m.get("emit"), what+" emit")
	if w.Emit != "" && w.Emit != "update" && w.Emit != "final" {
		r.ps.add(r.pos(m.get("emit")), "%s emit: got %q, expected update (every change) or final (once, when the window closes)", what, w.Emit)
	}
	need := func(key string, d time.Duration) {
		if d == 0 && !m.has(key) {
			r.ps.add(r.pos(n), "%s: a %s window needs a %s", what, w.Type, key)
		} else if d == 0 {
			r.ps.add(r.pos(m.get(key)), "%s %s: must be positive", what, key)
		}
	}
	refuse := func(keys ...string) {
		for _, k := range keys {
			if m.has(k) {
				r.ps.add(r.pos(m.keys[k]), "%s: a %s window has no %s", what, w.Type, k)
			}
		}
	}
	switch w.Type {
	case "tumbling":
		need("size", w.Size)
		refuse("advance", "gap")
	case "hopping":
		need("size", w.Size)
		need("advance", w.Advance)
		refuse("gap")
		if w.Advance > w.Size {
			r.ps.add(r.pos(m.get("advance")), "%s advance: %v is larger than the size %v", what, w.Advance, w.Size)
		}
	case "sliding":
		need("size", w.Size) // the time difference
		refuse("advance", "gap")
	case "session":
		need("gap", w.Gap)
		refuse("size", "advance")
	default:
		r.ps.add(r.pos(m.get("type")), "%s type: got %q, expected one of %s", what, w.Type, strings.Join(windowTypes, ", "))
	}
	return w
}

var joinTypes = []string{"inner", "left", "outer"}

func (r *reader) join(n *yaml.Node, what string) *Join {
	m := r.mapping(n, what, "with", "type", "key", "foreignKey", "value", "within", "before", "after", "grace")
	if m == nil || !m.required(what, "with", "value") {
		return nil
	}
	j := &Join{With: Ref{Name: r.name(m.get("with"), what+" with"), Pos: r.pos(m.get("with"))}}
	j.Type = r.str(m.get("type"), what+" type")
	if j.Type == "" {
		j.Type = "inner"
	} else if !contains(joinTypes, j.Type) {
		r.ps.add(r.pos(m.get("type")), "%s type: got %q, expected one of %s", what, j.Type, strings.Join(joinTypes, ", "))
	}
	j.Key = r.expr(m.get("key"), what+" key")
	j.FK = r.expr(m.get("foreignKey"), what+" foreignKey")
	j.Value = r.expr(m.get("value"), what+" value")
	j.Within = r.duration(m.get("within"), what+" within")
	j.Before = r.duration(m.get("before"), what+" before")
	j.After = r.duration(m.get("after"), what+" after")
	j.Grace = r.duration(m.get("grace"), what+" grace")
	j.Windowed = m.has("within") || m.has("before") || m.has("after")
	if m.has("within") && (m.has("before") || m.has("after")) {
		r.ps.add(r.pos(n), "%s: give within, or before and after, not both", what)
	}
	if j.Key != nil && j.FK != nil {
		r.ps.add(r.pos(n), "%s: key (a global table's) and foreignKey (a table's) do not go together", what)
	}
	return j
}
