package declare

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/eos-runner/eos-runner/schema/registry"
	"github.com/eos-runner/eos-runner/serde"
	"github.com/eos-runner/eos-runner/topology"
)

// Options are what compiling a file needs from outside it.
type Options struct {
	// Registry is the schema registry the Avro serdes use; nil: a client for
	// DefaultRegistryURL, which is only contacted when the topology runs.
	// A format with subject: latest reads the subject's latest schema from it
	// while compiling.
	Registry *registry.Client
	// AutoRegister lets Avro sinks register their schemas
	// (auto.register.schemas).
	AutoRegister bool
}

// DefaultRegistryURL is the registry Avro serdes use without Options.Registry.
const DefaultRegistryURL = "http://localhost:8081"

// Compile turns a loaded file into a topology, through topology.Builder:
// one node per step, as the same pipeline written in Go gets.
func Compile(f *File, o Options) (*topology.Topology, error) {
	ps := &problems{}
	c := newCompiler(f, o, ps, true)
	topo := c.build()
	if err := ps.err(); err != nil {
		return nil, err
	}
	return topo, nil
}

// check is Load's semantic pass: the compiler against a builder that is
// thrown away, with no registry contact.
func check(f *File, ps *problems) {
	newCompiler(f, Options{}, ps, false).build()
}

type flowKind int

const (
	streamFlow flowKind = iota
	groupedFlow
	groupedTableFlow
	windowedFlow
	tableFlow
	globalFlow
)

var flowNames = map[flowKind]string{streamFlow: "a stream", groupedFlow: "a grouped stream", groupedTableFlow: "a grouped table",
	windowedFlow: "a windowed stream", tableFlow: "a table", globalFlow: "a global table"}

// flow is a pipeline's value between steps: the DSL object, the formats of
// its keys and values (for the serdes of topics and stores downstream) and
// their static types (for checking expressions), nil where unknown.
type flow struct {
	kind       flowKind
	s          *topology.Stream
	g          *topology.GroupedStream
	gt         *topology.GroupedTable
	w          *topology.WindowedStream
	t          *topology.Table
	gl         *topology.GlobalTable
	key, value Format
	keyT, valT reflect.Type
	windows    topology.Windows // keys are windowed by these
	emit       topology.EmitStrategy
	// partitions of the topics the records come from, while their key is
	// the topics' own (0: unknown or changed), for co-partitioning checks.
	partitions int
	topics     []string
}

type compiler struct {
	f      *File
	o      Options
	ps     *problems
	live   bool // compiling to run: resolve subject: latest
	b      *topology.Builder
	reg    *registry.Client
	names  map[reflect.Type]string
	flows  map[string]*flow
	decl   map[string]Pos // every declared name, to report duplicates
	busy   map[string]bool
	sinks  map[string]*Sink
	latest map[string]string // subject -> schema text
}

func newCompiler(f *File, o Options, ps *problems, live bool) *compiler {
	reg := o.Registry
	if reg == nil {
		reg = registry.NewClient(DefaultRegistryURL)
	}
	return &compiler{f: f, o: o, ps: ps, live: live, b: topology.NewBuilder(), reg: reg,
		names: map[reflect.Type]string{}, flows: map[string]*flow{}, decl: map[string]Pos{},
		busy: map[string]bool{}, sinks: map[string]*Sink{}, latest: map[string]string{}}
}

func (c *compiler) declare(name string, pos Pos) bool {
	if prev, ok := c.decl[name]; ok {
		c.ps.add(pos, "name %q is already declared at %s; sources, tables, sinks, streams and branches share one namespace", name, prev)
		return false
	}
	c.decl[name] = pos
	return true
}

func (c *compiler) build() *topology.Topology {
	for _, s := range c.f.Sources {
		if c.declare(s.Name, s.Pos) {
			c.source(s)
		}
	}
	for _, t := range c.f.Tables {
		if c.declare(t.Name, t.Pos) {
			c.table(t)
		}
	}
	for _, s := range c.f.Sinks {
		if c.declare(s.Name, s.Pos) {
			c.sinks[s.Name] = s
		}
	}
	streams := map[string]*Stream{}
	for _, s := range c.f.Streams {
		if c.declare(s.Name, s.Pos) {
			streams[s.Name] = s
		}
	}
	for _, s := range c.f.Streams {
		c.stream(s, streams)
	}
	if len(c.ps.list) > 0 {
		return nil
	}
	topo, err := c.b.Build()
	if err != nil {
		// The builder's own checks (names used twice, stores, ...): their
		// messages name nodes, which are the steps' names.
		for _, e := range splitJoined(err) {
			c.ps.add(Pos{File: c.f.Path, Line: 1, Column: 1}, "%v", e)
		}
		return nil
	}
	return topo
}

func splitJoined(err error) []error {
	var j interface{ Unwrap() []error }
	if errors.As(err, &j) {
		var out []error
		for _, e := range j.Unwrap() {
			if errors.Is(e, topology.ErrInvalid) && e.Error() == topology.ErrInvalid.Error() {
				continue
			}
			out = append(out, splitJoined(e)...)
		}
		return out
	}
	return []error{err}
}

// serde is the serde of a format; side is serde.Key or serde.Value.
func (c *compiler) serde(f Format, side serde.Side, topic string) serde.Serde {
	switch f.Kind {
	case "string":
		return serde.String{}
	case "json":
		return serde.JSON{}
	case "bytes":
		return serde.Bytes{}
	case "int64":
		return serde.Int64{}
	case "decimal":
		return serde.DecimalString{}
	case "avro":
		text := f.SchemaText
		if f.Latest {
			text = c.latestSchema(f, side, topic)
		}
		if text == "" {
			return serde.JSON{} // checking only: the schema comes at run time
		}
		a, err := serde.NewAvro(c.reg, text, side, serde.AutoRegister(c.o.AutoRegister))
		if err != nil {
			c.ps.add(f.Pos, "avro: %v", err)
			return serde.Bytes{}
		}
		return a
	}
	return serde.Bytes{}
}

// latestSchema reads a subject's latest schema from the registry (compiling
// to run only).
func (c *compiler) latestSchema(f Format, side serde.Side, topic string) string {
	if !c.live {
		return ""
	}
	subject := topic + "-" + side.String()
	if text, ok := c.latest[subject]; ok {
		return text
	}
	if c.o.Registry == nil {
		c.ps.add(f.Pos, "subject: latest needs a schema registry (--registry or schema.registry.url)")
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	_ = ctx
	s, err := c.o.Registry.SRClient().GetLatestSchema(subject)
	if err != nil {
		c.ps.add(f.Pos, "subject %s: latest schema: %v", subject, err)
		return ""
	}
	c.latest[subject] = s.Schema()
	return s.Schema()
}

func (c *compiler) types(f Format) reflect.Type { return formatType(f, c.names) }

func (c *compiler) source(s *Source) {
	if len(s.Topics) == 0 {
		return
	}
	cons := topology.Consumed{Key: c.serde(s.Key, serde.Key, s.Topics[0]), Value: c.serde(s.Value, serde.Value, s.Topics[0])}
	if s.Timestamp != "" {
		cons.Timestamp = topology.TimestampFromField(s.Timestamp)
		if t := c.types(s.Value); t != nil && t.Kind() == reflect.Struct {
			if _, ok := structField(t, strings.Split(s.Timestamp, ".")[0]); !ok {
				c.ps.add(s.Pos, "source %s timestamp: field %q is not in %s", s.Name, s.Timestamp, c.names[t])
			}
		}
	}
	st := c.b.Stream(s.Topics, cons, topology.Named(s.Name))
	c.flows[s.Name] = &flow{kind: streamFlow, s: st, key: s.Key, value: s.Value, keyT: c.types(s.Key), valT: c.types(s.Value),
		partitions: s.Partitions, topics: s.Topics}
}

func (c *compiler) table(t *Table) {
	if t.Topic == "" {
		return
	}
	cons := topology.Consumed{Key: c.serde(t.Key, serde.Key, t.Topic), Value: c.serde(t.Value, serde.Value, t.Topic)}
	fl := &flow{key: t.Key, value: t.Value, keyT: c.types(t.Key), valT: c.types(t.Value), partitions: t.Partitions, topics: []string{t.Topic}}
	store := t.Store
	if store == "" {
		store = t.Name
	}
	if t.Global {
		fl.kind, fl.gl = globalFlow, c.b.GlobalTable(t.Topic, cons, store)
	} else {
		fl.kind, fl.t = tableFlow, c.b.Table(t.Topic, cons, topology.Materialized{Name: store}, topology.Named(t.Name))
	}
	c.flows[t.Name] = fl
}

// ref resolves a name to its flow, compiling a stream on first use.
func (c *compiler) ref(r Ref, streams map[string]*Stream) *flow {
	if fl, ok := c.flows[r.Name]; ok {
		return fl
	}
	if s, ok := streams[r.Name]; ok {
		if c.busy[r.Name] {
			c.ps.add(r.Pos, "stream %s reads itself (a cycle through %s)", r.Name, r.Name)
			return nil
		}
		return c.stream(s, streams)
	}
	if _, ok := c.sinks[r.Name]; ok {
		c.ps.add(r.Pos, "%q is a sink; read its topic with a source", r.Name)
		return nil
	}
	if _, ok := c.decl[r.Name]; !ok {
		c.ps.add(r.Pos, "unknown name %q; expected a source, table or stream%s", r.Name, suggest(r.Name, c.decl))
	}
	return nil // declared but failed: reported where it is declared
}

func suggest(name string, decl map[string]Pos) string {
	var names []string
	for n := range decl {
		names = append(names, n)
	}
	slices.Sort(names)
	if len(names) == 0 {
		return ""
	}
	return " (declared: " + strings.Join(names, ", ") + ")"
}

func (c *compiler) stream(s *Stream, streams map[string]*Stream) *flow {
	if fl, ok := c.flows[s.Name]; ok {
		return fl
	}
	if c.busy[s.Name] {
		return nil
	}
	c.busy[s.Name] = true
	defer delete(c.busy, s.Name)
	if len(s.From) == 0 {
		return nil
	}
	fl := c.ref(s.From[0], streams)
	if fl == nil {
		return nil
	}
	if len(s.From) > 1 {
		fl = c.merge(fl, s.From[1:], streams, nil, s.From[0].Pos)
		if fl == nil {
			return nil
		}
	}
	for _, st := range s.Steps {
		next := c.step(fl, st, streams)
		if next == nil {
			c.flows[s.Name] = nil
			return nil
		}
		fl = next
	}
	c.flows[s.Name] = fl
	return fl
}

// opts are the options of a step's node: its name, and its own error
// policy (onError dlq or fail; skip is compiled into the step's functions,
// which drop the record instead of failing it).
func (c *compiler) opts(st *Step) []topology.Option {
	var out []topology.Option
	if st.Name != "" {
		out = append(out, topology.Named(st.Name))
	}
	if st.OnError == "dlq" || st.OnError == "fail" {
		out = append(out, topology.OnError(st.OnError))
	}
	return out
}

// need reports a step applied to the wrong kind of flow.
func (c *compiler) need(fl *flow, st *Step, kinds ...flowKind) bool {
	if slices.Contains(kinds, fl.kind) {
		return true
	}
	var want []string
	for _, k := range kinds {
		want = append(want, flowNames[k])
	}
	c.ps.add(st.Pos, "%s applies to %s, not %s%s", st.Op, strings.Join(want, " or "), flowNames[fl.kind], hint(fl.kind, st.Op))
	return false
}

func hint(k flowKind, op string) string {
	switch {
	case k == groupedFlow || k == windowedFlow || k == groupedTableFlow:
		return " (follow groupBy with an aggregation: count, sum, min, max, avg, reduce or aggregate)"
	case k == tableFlow && op != "to":
		return " (toStream turns a table into a stream of its changes)"
	case k == globalFlow:
		return " (a global table is only joined: join: {with: NAME, key: ...})"
	}
	return ""
}

// changed is a flow whose values changed: values are json unless the step
// says, and of unknown type.
func (c *compiler) changed(fl *flow, st *Step, keyChanged bool) *flow {
	n := *fl
	n.value, n.valT = Format{Kind: "json"}, nil
	if st.ValueFormat != nil {
		n.value = *st.ValueFormat
		n.valT = c.types(n.value)
	}
	if keyChanged {
		n.partitions, n.keyT = 0, nil
		switch {
		case st.KeyFormat != nil:
			n.key = *st.KeyFormat
			n.keyT = c.types(n.key)
		case n.key.Kind == "avro" || n.key.Kind == "":
			n.key = Format{Kind: "string"}
		}
	}
	return &n
}

func (c *compiler) recTypes(fl *flow) types {
	kt := fl.keyT
	if fl.windows != nil {
		kt = reflect.TypeOf(topology.Windowed{})
	}
	return types{"key": kt, "value": fl.valT}
}

func (c *compiler) step(fl *flow, st *Step, streams map[string]*Stream) *flow {
	skip := st.OnError == "skip"
	if skip && !slices.Contains([]string{"filter", "filterNot", "map", "mapValues", "selectKey", "flatMap", "flatMapValues",
		"groupBy", "sum", "min", "max", "avg", "reduce", "aggregate"}, st.Op) {
		c.ps.add(st.Pos, "%s: onError: skip is not available here; its errors go to the application's on.error", st.Op)
	}
	opts := c.opts(st)
	switch st.Op {
	case "filter", "filterNot":
		if !c.need(fl, st, streamFlow, tableFlow) {
			return nil
		}
		st.Expr.compile(recordEnv, c.recTypes(fl), wantBool, c.names, c.ps)
		pred := predicateOf(st.Expr, skip)
		not := st.Op == "filterNot"
		n := *fl
		if fl.kind == tableFlow {
			n.t = fl.t.FilterE(pred, not, opts...)
			return &n
		}
		if not {
			inner := pred
			pred = func(k, v any) (bool, error) { ok, err := inner(k, v); return !ok && err == nil, err }
		}
		n.s = fl.s.FilterE(pred, opts...)
		return &n
	case "mapValues":
		if !c.need(fl, st, streamFlow, tableFlow) {
			return nil
		}
		env := valueEnv
		if fl.kind == tableFlow {
			env = recordEnv // Table.MapValues sees the key
		}
		st.Expr.compile(env, c.recTypes(fl), wantAny, c.names, c.ps)
		n := c.changed(fl, st, false)
		e := st.Expr
		if fl.kind == tableFlow {
			n.t = fl.t.MapValues(func(k, v any) (any, error) {
				out, err := e.runRecord(k, v)
				if err != nil && skip {
					return nil, nil // a table entry that fails is absent
				}
				return out, err
			}, c.serde(n.value, serde.Value, ""), opts...)
			return n
		}
		if skip {
			n.s = fl.s.FlatMapValues(func(v any) ([]any, error) {
				out, err := e.runValue(v)
				if err != nil {
					return nil, nil
				}
				return []any{out}, nil
			}, opts...)
			return n
		}
		n.s = fl.s.MapValues(e.runValue, opts...)
		return n
	case "map":
		if !c.need(fl, st, streamFlow) {
			return nil
		}
		ts := c.recTypes(fl)
		st.Key.compile(recordEnv, ts, wantAny, c.names, c.ps)
		st.Value.compile(recordEnv, ts, wantAny, c.names, c.ps)
		n := c.changed(fl, st, true)
		if strings.TrimSpace(st.Key.Text) == "key" && st.KeyFormat == nil {
			// The key stays: so do its format, type and windows.
			n.key, n.keyT, n.windows = fl.key, fl.keyT, fl.windows
		} else {
			n.windows = nil
		}
		ke, ve := st.Key, st.Value
		mapper := func(k, v any) (any, any, error) {
			nk, err := ke.runRecord(k, v)
			if err != nil {
				return nil, nil, err
			}
			nv, err := ve.runRecord(k, v)
			return nk, nv, err
		}
		if skip {
			n.s = fl.s.FlatMap(func(k, v any) ([]topology.KeyValue, error) {
				nk, nv, err := mapper(k, v)
				if err != nil {
					return nil, nil
				}
				return []topology.KeyValue{{Key: nk, Value: nv}}, nil
			}, opts...)
			return n
		}
		n.s = fl.s.Map(mapper, opts...)
		return n
	case "selectKey":
		if !c.need(fl, st, streamFlow) {
			return nil
		}
		st.Expr.compile(recordEnv, c.recTypes(fl), wantAny, c.names, c.ps)
		n := c.changed(fl, st, true)
		n.value, n.valT = fl.value, fl.valT
		n.windows = nil
		n.s = c.selectKey(fl.s, st.Expr, skip, opts)
		return n
	case "flatMap", "flatMapValues":
		if !c.need(fl, st, streamFlow) {
			return nil
		}
		env := recordEnv
		if st.Op == "flatMapValues" {
			env = valueEnv
		}
		st.Expr.compile(env, c.recTypes(fl), wantAny, c.names, c.ps)
		e := st.Expr
		if st.Op == "flatMapValues" {
			n := c.changed(fl, st, false)
			n.s = fl.s.FlatMapValues(func(v any) ([]any, error) {
				out, err := e.runValue(v)
				if err != nil {
					if skip {
						return nil, nil
					}
					return nil, err
				}
				return asList(e, out)
			}, opts...)
			return n
		}
		n := c.changed(fl, st, true)
		n.windows = nil
		n.s = fl.s.FlatMap(func(k, v any) ([]topology.KeyValue, error) {
			out, err := e.runRecord(k, v)
			if err == nil {
				var kvs []topology.KeyValue
				if kvs, err = asKeyValues(e, out); err == nil {
					return kvs, nil
				}
			}
			if skip {
				return nil, nil
			}
			return nil, err
		}, opts...)
		return n
	case "project", "rename":
		if !c.need(fl, st, streamFlow, tableFlow) {
			return nil
		}
		return c.reshape(fl, st, opts)
	case "merge":
		if !c.need(fl, st, streamFlow) {
			return nil
		}
		return c.merge(fl, st.Refs, streams, opts, st.Pos)
	case "branch":
		if !c.need(fl, st, streamFlow) {
			return nil
		}
		return c.branch(fl, st, streams, opts)
	case "groupByKey":
		if !c.need(fl, st, streamFlow) {
			return nil
		}
		n := *fl
		if st.KeyFormat != nil {
			n.key, n.keyT = *st.KeyFormat, c.types(*st.KeyFormat)
		}
		if st.ValueFormat != nil {
			n.value, n.valT = *st.ValueFormat, c.types(*st.ValueFormat)
		}
		n.kind = groupedFlow
		n.g = fl.s.GroupByKey(topology.Grouped{Key: c.serde(n.key, serde.Key, ""), Value: c.serde(n.value, serde.Value, "")}, opts...)
		return &n
	case "groupBy":
		if !c.need(fl, st, streamFlow, tableFlow) {
			return nil
		}
		if fl.kind == tableFlow {
			return c.groupTable(fl, st, opts)
		}
		if st.Expr == nil {
			c.ps.add(st.Pos, "groupBy of a stream: expected a key expression (a table's takes {key, value})")
			return nil
		}
		st.Expr.compile(recordEnv, c.recTypes(fl), wantAny, c.names, c.ps)
		n := c.changed(fl, st, true)
		n.value, n.valT = fl.value, fl.valT
		if st.ValueFormat != nil {
			n.value, n.valT = *st.ValueFormat, c.types(*st.ValueFormat)
		}
		n.windows = nil
		n.kind = groupedFlow
		keyed := c.selectKey(fl.s, st.Expr, skip, nil)
		n.g = keyed.GroupByKey(topology.Grouped{Key: c.serde(n.key, serde.Key, ""), Value: c.serde(n.value, serde.Value, "")}, opts...)
		return n
	case "windowedBy":
		if !c.need(fl, st, groupedFlow) || st.Window == nil {
			return nil
		}
		w := windowsOf(st.Window)
		if err := w.Validate(); err != nil {
			c.ps.add(st.Window.Pos, "windowedBy: %v", err)
			return nil
		}
		n := *fl
		n.kind, n.windows = windowedFlow, w
		n.emit = topology.EmitOnWindowUpdate
		if st.Window.Emit == "final" {
			n.emit = topology.EmitOnWindowClose
		}
		n.w = fl.g.WindowedBy(w).Emit(n.emit)
		return &n
	case "count", "sum", "min", "max", "avg", "reduce", "aggregate":
		if !c.need(fl, st, groupedFlow, windowedFlow, groupedTableFlow) {
			return nil
		}
		return c.aggregate(fl, st)
	case "toStream":
		if !c.need(fl, st, tableFlow) {
			return nil
		}
		n := *fl
		n.kind, n.s, n.t = streamFlow, fl.t.ToStream(opts...), nil
		return &n
	case "join":
		if st.Join == nil {
			return nil
		}
		return c.join(fl, st, streams, opts)
	case "dedup":
		if !c.need(fl, st, streamFlow) || st.Dedup == nil {
			return nil
		}
		d := st.Dedup
		key := topology.ByRecordKey()
		switch {
		case d.Field != "":
			if fl.valT != nil && fl.valT.Kind() == reflect.Struct {
				if _, ok := structField(fl.valT, strings.Split(d.Field, ".")[0]); !ok {
					c.ps.add(st.Pos, "dedup field: %q is not in %s", d.Field, c.names[fl.valT])
				}
			}
			key = topology.ByField(d.Field)
		case d.Header != "":
			key = topology.ByHeader(d.Header)
		case d.Key != nil:
			d.Key.compile(recordEnv, c.recTypes(fl), wantAny, c.names, c.ps)
			e := d.Key
			key = func(rec topology.Record) (string, error) {
				out, err := e.runRecord(rec.Key, rec.Value)
				if err != nil || out == nil {
					return "", err
				}
				return fmt.Sprint(out), nil
			}
		}
		n := *fl
		n.s = fl.s.Dedup(key, d.TTL, opts...)
		return &n
	case "repartition":
		if !c.need(fl, st, streamFlow) {
			return nil
		}
		n := *fl
		n.s = fl.s.Repartition(st.Repartition, topology.Produced{Key: c.serde(fl.key, serde.Key, ""), Value: c.serde(fl.value, serde.Value, "")})
		return &n
	case "to":
		if !c.need(fl, st, streamFlow, tableFlow) || st.To == nil {
			return nil
		}
		c.to(fl, st.To, opts)
		return fl
	}
	return nil
}

// selectKey is SelectKeyE, or, with skip, a FlatMap dropping failures.
func (c *compiler) selectKey(s *topology.Stream, e *Expr, skip bool, opts []topology.Option) *topology.Stream {
	if skip {
		return s.FlatMap(func(k, v any) ([]topology.KeyValue, error) {
			nk, err := e.runRecord(k, v)
			if err != nil {
				return nil, nil
			}
			return []topology.KeyValue{{Key: nk, Value: v}}, nil
		}, opts...)
	}
	return s.SelectKeyE(e.runRecord, opts...)
}

func predicateOf(e *Expr, skip bool) func(k, v any) (bool, error) {
	if e == nil {
		return func(any, any) (bool, error) { return false, nil }
	}
	if skip {
		return func(k, v any) (bool, error) {
			ok, err := e.predicate(k, v)
			return ok && err == nil, nil
		}
	}
	return e.predicate
}

func asList(e *Expr, out any) ([]any, error) {
	switch l := out.(type) {
	case nil:
		return nil, nil
	case []any:
		return l, nil
	}
	rv := reflect.ValueOf(out)
	if rv.Kind() == reflect.Slice || rv.Kind() == reflect.Array {
		l := make([]any, rv.Len())
		for i := range l {
			l[i] = rv.Index(i).Interface()
		}
		return l, nil
	}
	return nil, &ExprError{Text: e.Text, Pos: e.Pos, Err: fmt.Errorf("got %T, expected a list", out)}
}

// asKeyValues reads flatMap's result: a list of {key, value} maps.
func asKeyValues(e *Expr, out any) ([]topology.KeyValue, error) {
	l, err := asList(e, out)
	if err != nil {
		return nil, err
	}
	kvs := make([]topology.KeyValue, 0, len(l))
	for _, item := range l {
		m, ok := item.(map[string]any)
		if !ok {
			return nil, &ExprError{Text: e.Text, Pos: e.Pos, Err: fmt.Errorf("list item %T, expected {key: ..., value: ...}", item)}
		}
		kvs = append(kvs, topology.KeyValue{Key: m["key"], Value: m["value"]})
	}
	return kvs, nil
}

func (c *compiler) merge(fl *flow, refs []Ref, streams map[string]*Stream, opts []topology.Option, pos Pos) *flow {
	if fl.kind != streamFlow {
		c.ps.add(pos, "merge: %s is %s, expected a stream", "input", flowNames[fl.kind])
		return nil
	}
	n := *fl
	for i, r := range refs {
		o := c.ref(r, streams)
		if o == nil {
			return nil
		}
		if o.kind != streamFlow {
			c.ps.add(r.Pos, "merge: %s is %s, expected a stream", r.Name, flowNames[o.kind])
			return nil
		}
		var mo []topology.Option
		if i == len(refs)-1 {
			mo = opts
		}
		n.s = n.s.Merge(o.s, mo...)
		if o.value.Kind != n.value.Kind || o.key.Kind != n.key.Kind {
			n.value, n.valT = Format{Kind: "json"}, nil
		}
		if o.valT != n.valT {
			n.valT = nil
		}
		if o.keyT != n.keyT {
			n.keyT = nil
		}
		n.partitions, n.topics = 0, append(slices.Clone(n.topics), o.topics...)
	}
	return &n
}

func (c *compiler) branch(fl *flow, st *Step, streams map[string]*Stream, opts []topology.Option) *flow {
	var arms []topology.BranchE
	ts := c.recTypes(fl)
	for i, b := range st.Branches {
		name := b.As
		if name == "" {
			name = fmt.Sprintf("%d", i+1)
		}
		if b.When != nil {
			b.When.compile(recordEnv, ts, wantBool, c.names, c.ps)
			arms = append(arms, topology.BranchE{Name: name, Predicate: predicateOf(b.When, st.OnError == "skip")})
		} else {
			if i != len(st.Branches)-1 {
				c.ps.add(b.Pos, "branch: an arm without when (the default) must be the last")
			}
			arms = append(arms, topology.BranchE{Name: name})
		}
		if b.As != "" && !c.declare(b.As, b.Pos) {
			return nil
		}
	}
	out := fl.s.SplitE(arms, opts...)
	for i, b := range st.Branches {
		n := *fl
		n.s = out[arms[i].Name]
		if b.As != "" {
			c.flows[b.As] = &n
		}
		if b.To != nil {
			c.to(&n, b.To, nil)
		}
	}
	return fl
}

func (c *compiler) to(fl *flow, sk *Sink, opts []topology.Option) {
	if sk.Topic == "" { // a reference to sinks
		named, ok := c.sinks[sk.Name]
		if !ok {
			c.ps.add(sk.Pos, "to: unknown sink %q; expected a sink name or {topic, key, value}%s", sk.Name, suggest(sk.Name, sinkNames(c.sinks)))
			return
		}
		sk = named
	}
	s := fl.s
	if fl.kind == tableFlow {
		s = fl.t.ToStream()
	}
	key, value := fl.key, fl.value
	if sk.Key != nil {
		key = *sk.Key
	}
	if sk.Value != nil {
		value = *sk.Value
	}
	ks := c.serde(key, serde.Key, sk.Topic)
	switch w := fl.windows.(type) {
	case topology.TimeWindows:
		ks = serde.TimeWindowed{Inner: ks, Size: w.Size}
	case topology.SlidingWindows:
		ks = serde.TimeWindowed{Inner: ks, Size: w.TimeDifference}
	case topology.SessionWindows:
		ks = serde.SessionWindowed{Inner: ks}
	}
	if len(opts) == 0 && sk.Name != "" {
		opts = nil // a named sink may be written by several streams: names stay generated
	}
	s.To(sk.Topic, topology.Produced{Key: ks, Value: c.serde(value, serde.Value, sk.Topic)}, opts...)
}

func sinkNames(m map[string]*Sink) map[string]Pos {
	out := map[string]Pos{}
	for n, s := range m {
		out[n] = s.Pos
	}
	return out
}

// reshape is project (keep fields) and rename (rename fields) of map values.
func (c *compiler) reshape(fl *flow, st *Step, opts []topology.Option) *flow {
	if fl.valT != nil && fl.valT.Kind() == reflect.Struct {
		names := st.Fields
		if st.Op == "rename" {
			names = nil
			for _, r := range st.Renames {
				names = append(names, r[0])
			}
		}
		for _, f := range names {
			if _, ok := structField(fl.valT, f); !ok {
				c.ps.add(st.Pos, "%s: field %q is not in %s", st.Op, f, c.names[fl.valT])
			}
		}
	}
	fields, renames := st.Fields, st.Renames
	fn := func(v any) (any, error) {
		m, ok := v.(map[string]any)
		if !ok {
			if v == nil {
				return nil, nil
			}
			return nil, fmt.Errorf("%s: value is %T, not a record", st.Op, v)
		}
		out := make(map[string]any, len(m))
		if fields != nil {
			for _, f := range fields {
				if x, ok := m[f]; ok {
					out[f] = x
				}
			}
			return out, nil
		}
		for k, x := range m {
			out[k] = x
		}
		for _, r := range renames {
			if x, ok := out[r[0]]; ok {
				delete(out, r[0])
				out[r[1]] = x
			}
		}
		return out, nil
	}
	n := c.changed(fl, st, false)
	n.valT = reshapeType(fl.valT, fields, renames, c.names)
	if fl.kind == tableFlow {
		n.t = fl.t.MapValues(func(_, v any) (any, error) { return fn(v) }, c.serde(n.value, serde.Value, ""), opts...)
		return n
	}
	n.s = fl.s.MapValues(fn, opts...)
	return n
}

func structField(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		if t.Field(i).Tag.Get("expr") == name {
			return t.Field(i), true
		}
	}
	return reflect.StructField{}, false
}

// reshapeType is the static type after project or rename, nil if unknown.
func reshapeType(t reflect.Type, fields []string, renames [][2]string, names map[reflect.Type]string) reflect.Type {
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	var out []reflect.StructField
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name := f.Tag.Get("expr")
		if fields != nil && !slices.Contains(fields, name) {
			continue
		}
		for _, r := range renames {
			if r[0] == name {
				name = r[1]
			}
		}
		f.Tag = reflect.StructTag(`expr:"` + name + `"`)
		out = append(out, f)
	}
	if len(out) == 0 {
		return nil
	}
	nt := reflect.StructOf(out)
	var fn []string
	for _, f := range out {
		fn = append(fn, f.Tag.Get("expr"))
	}
	names[nt] = fmt.Sprintf("the record (fields: %s)", strings.Join(fn, ", "))
	return nt
}

func windowsOf(w *Window) topology.Windows {
	switch w.Type {
	case "hopping":
		return topology.TimeWindows{Size: w.Size, Advance: w.Advance, Grace: w.Grace}
	case "sliding":
		return topology.SlidingWindows{TimeDifference: w.Size, Grace: w.Grace}
	case "session":
		return topology.SessionWindows{Gap: w.Gap, Grace: w.Grace}
	}
	return topology.TimeWindows{Size: w.Size, Grace: w.Grace}
}

func (c *compiler) groupTable(fl *flow, st *Step, opts []topology.Option) *flow {
	if st.Key == nil || st.Value == nil {
		c.ps.add(st.Pos, "groupBy of a table: expected {key: EXPR, value: EXPR}")
		return nil
	}
	ts := c.recTypes(fl)
	st.Key.compile(recordEnv, ts, wantAny, c.names, c.ps)
	st.Value.compile(recordEnv, ts, wantAny, c.names, c.ps)
	n := c.changed(fl, st, true)
	n.kind = groupedTableFlow
	ke, ve, skip := st.Key, st.Value, st.OnError == "skip"
	n.gt = fl.t.GroupBy(func(k, v any) (any, any, error) {
		nk, err := ke.runRecord(k, v)
		if err == nil {
			var nv any
			if nv, err = ve.runRecord(k, v); err == nil {
				return nk, nv, nil
			}
		}
		if skip {
			return nil, nil, nil // a nil key: not grouped
		}
		return nil, nil, err
	}, topology.Grouped{Key: c.serde(n.key, serde.Key, ""), Value: c.serde(n.value, serde.Value, "")}, opts...)
	return n
}

// join compiles every join: stream-table, stream-global table,
// stream-stream (windowed), table-table and foreign-key.
func (c *compiler) join(fl *flow, st *Step, streams map[string]*Stream, opts []topology.Option) *flow {
	j := st.Join
	other := c.ref(j.With, streams)
	if other == nil || !c.need(fl, st, streamFlow, tableFlow) {
		return nil
	}
	j.Value.compile(joinEnv, types{"key": fl.keyT, "left": fl.valT, "right": other.valT}, wantAny, c.names, c.ps)
	joiner := func(k, l, r any) (any, error) { return j.Value.runJoin(k, l, r) }
	n := c.changed(fl, st, false)
	left, outer := j.Type == "left", j.Type == "outer"
	copart := func() {
		if fl.partitions > 0 && other.partitions > 0 && fl.partitions != other.partitions {
			c.ps.add(st.Pos, "join of topics with different partition counts: %s (%d) and %s (%d); a co-partitioned join needs equal counts (repartition one side, or join a global table)",
				strings.Join(fl.topics, ", "), fl.partitions, strings.Join(other.topics, ", "), other.partitions)
		}
	}
	switch {
	case fl.kind == streamFlow && other.kind == globalFlow:
		if j.Key == nil {
			c.ps.add(st.Pos, "join with global table %s: expected key: EXPR (the table key of each record)", j.With.Name)
			return nil
		}
		if outer || j.Windowed || j.FK != nil {
			c.ps.add(st.Pos, "join with global table %s: type inner or left, with key and value only", j.With.Name)
			return nil
		}
		j.Key.compile(recordEnv, c.recTypes(fl), wantAny, c.names, c.ps)
		if left {
			n.s = fl.s.LeftJoinGlobalTableE(other.gl, j.Key.runRecord, joiner, opts...)
		} else {
			n.s = fl.s.JoinGlobalTableE(other.gl, j.Key.runRecord, joiner, opts...)
		}
	case fl.kind == streamFlow && other.kind == tableFlow:
		if outer || j.Windowed || j.Key != nil || j.FK != nil {
			c.ps.add(st.Pos, "join of a stream with table %s: type inner or left, with value only (tables are joined by key)", j.With.Name)
			return nil
		}
		copart()
		jn := topology.Joined{Key: c.serde(fl.key, serde.Key, ""), Value: c.serde(fl.value, serde.Value, ""), Name: st.Name}
		if st.Name != "" {
			opts = nil // Joined.Name names the repartition topic; the node gets a generated name
		}
		if left {
			n.s = fl.s.LeftJoinTable(other.t, joiner, jn, opts...)
		} else {
			n.s = fl.s.JoinTable(other.t, joiner, jn, opts...)
		}
	case fl.kind == streamFlow && other.kind == streamFlow:
		if !j.Windowed {
			c.ps.add(st.Pos, "join of two streams needs a window: within: DURATION, or before and after")
			return nil
		}
		copart()
		w := topology.JoinWindows{Before: j.Before, After: j.After, Grace: j.Grace}
		if j.Within > 0 {
			w = topology.JoinTimeDifference(j.Within, j.Grace)
		}
		sj := topology.StreamJoined{Key: c.serde(fl.key, serde.Key, ""), Value: c.serde(fl.value, serde.Value, ""),
			OtherValue: c.serde(other.value, serde.Value, ""), Name: st.Name}
		switch j.Type {
		case "left":
			n.s = fl.s.LeftJoin(other.s, joiner, w, sj)
		case "outer":
			n.s = fl.s.OuterJoin(other.s, joiner, w, sj)
		default:
			n.s = fl.s.Join(other.s, joiner, w, sj)
		}
	case fl.kind == tableFlow && other.kind == tableFlow:
		if j.Windowed || j.Key != nil {
			c.ps.add(st.Pos, "join of two tables: no window and no key (tables are joined by key, or by foreignKey)")
			return nil
		}
		if j.FK != nil {
			if outer {
				c.ps.add(st.Pos, "foreign-key join: type inner or left")
				return nil
			}
			j.FK.compile(valueEnv, types{"value": fl.valT}, wantAny, c.names, c.ps)
			fk := j.FK.runValue
			fj := topology.ForeignKeyJoined{Name: st.Name, Result: c.serde(n.value, serde.Value, "")}
			if left {
				n.t = fl.t.LeftJoinForeignKey(other.t, fk, joiner, fj)
			} else {
				n.t = fl.t.JoinForeignKey(other.t, fk, joiner, fj)
			}
			return n
		}
		copart()
		switch j.Type {
		case "left":
			n.t = fl.t.LeftJoin(other.t, joiner, opts...)
		case "outer":
			n.t = fl.t.OuterJoin(other.t, joiner, opts...)
		default:
			n.t = fl.t.Join(other.t, joiner, opts...)
		}
	default:
		c.ps.add(st.Pos, "join of %s with %s (%s) is not a join there is: expected stream with table, global table or stream, or table with table", flowNames[fl.kind], j.With.Name, flowNames[other.kind])
		return nil
	}
	return n
}
