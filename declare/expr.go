package declare

import (
	"errors"
	"fmt"
	"math/big"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
	"gopkg.in/yaml.v3"

	"github.com/eos-runner/eos-runner/schema"
)

// Expr is one expression of the file: its text, where it is, and, once
// checked, its program. Programs are safe for concurrent use; each
// evaluation takes a VM and an environment from a pool, so tasks on several
// workers share an Expr.
type Expr struct {
	Text  string
	Pos   Pos
	style yaml.Style
	prog  *vm.Program
	env   envKind
	pool  sync.Pool
}

func newExpr(n *yaml.Node, pos Pos) *Expr {
	return &Expr{Text: n.Value, Pos: pos, style: n.Style}
}

// envKind is which variables an expression sees.
type envKind int

const (
	recordEnv envKind = iota // key, value
	aggEnv                   // key, value, agg
	joinEnv                  // key, left, right
	initEnv                  // nothing
	valueEnv                 // value
)

// The run-time environments: fields of type any, named by their expr tag.
// A struct (not a map) is what makes evaluation cheap: the VM reads fields
// by index, and one pooled environment serves every record.
type (
	recordVars struct {
		Key   any `expr:"key"`
		Value any `expr:"value"`
	}
	aggVars struct {
		Key   any `expr:"key"`
		Value any `expr:"value"`
		Agg   any `expr:"agg"`
	}
	joinVars struct {
		Key   any `expr:"key"`
		Left  any `expr:"left"`
		Right any `expr:"right"`
	}
	initVars  struct{}
	valueVars struct {
		Value any `expr:"value"`
	}
)

var envNames = map[envKind][]string{
	recordEnv: {"key", "value"},
	aggEnv:    {"key", "value", "agg"},
	joinEnv:   {"key", "left", "right"},
	initEnv:   nil,
	valueEnv:  {"value"},
}

// want is what an expression must return.
type want int

const (
	wantAny want = iota
	wantBool
)

// types are the static types of an environment's variables, by name; a
// missing or nil one is any.
type types map[string]reflect.Type

var anyType = reflect.TypeOf((*any)(nil)).Elem()

// options every expression is compiled with. now() is disabled: a result
// must not depend on when a record is processed, or a replay after a crash
// could compute something else than the first attempt.
func baseOptions() []expr.Option {
	return []expr.Option{expr.DisableBuiltin("now"), expr.Function("merge", mergeMaps)}
}

// mergeMaps is the merge(a, b, ...) function: a new map with the entries of
// every argument, later ones winning; nil arguments are skipped.
func mergeMaps(args ...any) (any, error) {
	out := map[string]any{}
	for i, a := range args {
		switch m := a.(type) {
		case nil:
		case map[string]any:
			for k, v := range m {
				out[k] = v
			}
		default:
			return nil, fmt.Errorf("merge: argument %d is %T, not a record", i+1, a)
		}
	}
	return out, nil
}

// compile compiles e for env, checks it against ts (types known from Avro
// schemas), and notes problems at e's position.
func (e *Expr) compile(env envKind, ts types, w want, names map[reflect.Type]string, ps *problems) {
	if e == nil {
		return
	}
	e.env = env
	opts := baseOptions()
	if w == wantBool {
		opts = append(opts, expr.AsBool())
	}
	var runEnv any
	switch env {
	case recordEnv:
		runEnv = recordVars{}
	case aggEnv:
		runEnv = aggVars{}
	case joinEnv:
		runEnv = joinVars{}
	case valueEnv:
		runEnv = valueVars{}
	default:
		runEnv = initVars{}
	}
	prog, err := expr.Compile(e.Text, append(opts, expr.Env(runEnv))...)
	if err != nil {
		e.report(err, env, names, ps)
		return
	}
	if typed := typedEnv(env, ts); typed != nil {
		if _, err := expr.Compile(e.Text, append(opts, expr.Env(typed))...); err != nil {
			e.report(err, env, names, ps)
			return
		}
	}
	e.prog = prog
	e.pool.New = func() any { return &evaluator{env: reflect.New(reflect.TypeOf(runEnv)).Interface()} }
}

// typedEnv is env's struct with the known types, or nil if none is known.
func typedEnv(env envKind, ts types) any {
	known := false
	var fields []reflect.StructField
	for _, n := range envNames[env] {
		t := ts[n]
		if t == nil {
			t = anyType
		} else {
			known = true
		}
		fields = append(fields, reflect.StructField{Name: strings.ToUpper(n[:1]) + n[1:], Type: t, Tag: reflect.StructTag(`expr:"` + n + `"`)})
	}
	if !known {
		return nil
	}
	return reflect.New(reflect.StructOf(fields)).Elem().Interface()
}

var noField = regexp.MustCompile(`^type (.*) has no field (.*)$`)

// report turns a compile error into a Problem at the expression's place in
// the file, naming Avro records instead of Go types.
func (e *Expr) report(err error, env envKind, names map[reflect.Type]string, ps *problems) {
	pos := e.Pos
	msg := err.Error()
	var fe *file.Error
	if errors.As(err, &fe) {
		msg = fe.Message
		pos = e.at(fe.Line, fe.Column)
	}
	if m := noField.FindStringSubmatch(msg); m != nil {
		rec := m[1]
		for t, n := range names {
			if t.String() == rec {
				rec = n
			}
		}
		msg = fmt.Sprintf("field %s is not in %s", m[2], rec)
	} else {
		for t, n := range names {
			msg = strings.ReplaceAll(msg, t.String(), n)
		}
	}
	if strings.HasPrefix(msg, "unknown name ") {
		vars := envNames[env]
		if len(vars) == 0 {
			msg += " (this expression sees no variables)"
		} else {
			msg += "; expected " + strings.Join(vars, ", ")
		}
	}
	ps.add(pos, "expression %q: %s", e.Text, msg)
}

// at is the file position of the expression's line (1-based) and column
// (0-based).
func (e *Expr) at(line, col int) Pos {
	p := e.Pos
	switch e.style {
	case yaml.LiteralStyle, yaml.FoldedStyle:
		// The text starts on the line after the indicator, indented; the
		// column is the indicator's (an approximation).
		p.Line += line
		p.Column += col
	case yaml.DoubleQuotedStyle, yaml.SingleQuotedStyle:
		p.Line += line - 1
		p.Column += col + 1
	default:
		p.Line += line - 1
		p.Column += col
	}
	return p
}

// evaluator is a pooled VM with its environment.
type evaluator struct {
	vm  vm.VM
	env any // *recordVars, *aggVars, *joinVars or *initVars
}

// ExprError is a run-time failure of an expression: the record goes to the
// step's error policy, with the expression's text and place in the reason.
type ExprError struct {
	Text string
	Pos  Pos
	Err  error
}

func (e *ExprError) Error() string {
	return fmt.Sprintf("expression %q (%s): %v", e.Text, e.Pos, e.Err)
}

func (e *ExprError) Unwrap() error { return e.Err }

func (e *Expr) runRecord(k, v any) (any, error) {
	ev := e.pool.Get().(*evaluator)
	r := ev.env.(*recordVars)
	r.Key, r.Value = k, v
	out, err := ev.vm.Run(e.prog, r)
	r.Key, r.Value = nil, nil
	e.pool.Put(ev)
	return out, e.wrap(err)
}

func (e *Expr) runValue(v any) (any, error) {
	ev := e.pool.Get().(*evaluator)
	r := ev.env.(*valueVars)
	r.Value = v
	out, err := ev.vm.Run(e.prog, r)
	r.Value = nil
	e.pool.Put(ev)
	return out, e.wrap(err)
}

func (e *Expr) runAgg(k, v, agg any) (any, error) {
	ev := e.pool.Get().(*evaluator)
	r := ev.env.(*aggVars)
	r.Key, r.Value, r.Agg = k, v, agg
	out, err := ev.vm.Run(e.prog, r)
	r.Key, r.Value, r.Agg = nil, nil, nil
	e.pool.Put(ev)
	return out, e.wrap(err)
}

func (e *Expr) runJoin(k, l, rt any) (any, error) {
	ev := e.pool.Get().(*evaluator)
	r := ev.env.(*joinVars)
	r.Key, r.Left, r.Right = k, l, rt
	out, err := ev.vm.Run(e.prog, r)
	r.Key, r.Left, r.Right = nil, nil, nil
	e.pool.Put(ev)
	return out, e.wrap(err)
}

func (e *Expr) runInit() (any, error) {
	ev := e.pool.Get().(*evaluator)
	out, err := ev.vm.Run(e.prog, ev.env)
	e.pool.Put(ev)
	return out, e.wrap(err)
}

func (e *Expr) wrap(err error) error {
	if err == nil {
		return nil
	}
	var fe *file.Error
	if errors.As(err, &fe) {
		err = errors.New(fe.Message)
	}
	return &ExprError{Text: e.Text, Pos: e.Pos, Err: err}
}

// predicate evaluates a boolean expression (compiled with AsBool).
func (e *Expr) predicate(k, v any) (bool, error) {
	out, err := e.runRecord(k, v)
	if err != nil {
		return false, err
	}
	b, _ := out.(bool)
	return b, nil
}

// avroType is the Go type goavro decodes an Avro schema's data into, for
// type-checking expressions; names maps each record's struct type to
// "Avro record NAME (fields: ...)" for messages. Unions (nullable fields
// among them) are any: goavro gives nil or a one-entry map.
func avroType(s *schema.Schema, names map[reflect.Type]string, seen map[*schema.Schema]bool) reflect.Type {
	switch s.LogicalType {
	case "timestamp-millis", "timestamp-micros", "date", "time-millis", "time-micros", "local-timestamp-millis", "local-timestamp-micros":
		if s.LogicalType == "time-millis" || s.LogicalType == "time-micros" {
			return reflect.TypeOf(time.Duration(0))
		}
		return reflect.TypeOf(time.Time{})
	case "decimal":
		return reflect.TypeOf((*big.Rat)(nil))
	}
	switch s.Kind {
	case schema.KindBoolean:
		return reflect.TypeOf(false)
	case schema.KindInt:
		return reflect.TypeOf(int32(0))
	case schema.KindLong:
		return reflect.TypeOf(int64(0))
	case schema.KindFloat:
		return reflect.TypeOf(float32(0))
	case schema.KindDouble:
		return reflect.TypeOf(float64(0))
	case schema.KindString, schema.KindEnum:
		return reflect.TypeOf("")
	case schema.KindBytes, schema.KindFixed:
		return reflect.TypeOf([]byte(nil))
	case schema.KindArray:
		return reflect.SliceOf(avroType(s.Items, names, seen))
	case schema.KindMap:
		return reflect.MapOf(reflect.TypeOf(""), avroType(s.Values, names, seen))
	case schema.KindRecord:
		if seen[s] {
			return anyType // recursive: not checked below here
		}
		seen[s] = true
		defer delete(seen, s)
		var fields []reflect.StructField
		var fnames []string
		for i, f := range s.Fields {
			fields = append(fields, reflect.StructField{Name: fmt.Sprintf("F%d", i), Type: avroType(f.Type, names, seen),
				Tag: reflect.StructTag(`expr:"` + f.Name + `"`)})
			fnames = append(fnames, f.Name)
		}
		t := reflect.StructOf(fields)
		names[t] = fmt.Sprintf("Avro record %s (fields: %s)", s.Name, strings.Join(fnames, ", "))
		return t
	}
	return anyType
}

// formatType is the static type of a format's values, or nil (any).
func formatType(f Format, names map[reflect.Type]string) reflect.Type {
	switch f.Kind {
	case "string":
		return reflect.TypeOf("")
	case "int64", "decimal":
		return reflect.TypeOf(int64(0))
	case "bytes":
		return reflect.TypeOf([]byte(nil))
	case "avro":
		if f.SchemaText == "" {
			return nil
		}
		s, err := schema.Parse(f.SchemaText)
		if err != nil {
			return nil
		}
		return avroType(s, names, map[*schema.Schema]bool{})
	}
	return nil
}
