package declare

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/eos-runner/eos-runner/serde"
	"github.com/eos-runner/eos-runner/topology"
)

// aggregate compiles count, sum, min, max, avg, reduce and aggregate on a
// grouped stream, a windowed stream or a grouped table.
func (c *compiler) aggregate(fl *flow, st *Step) *flow {
	skip := st.OnError == "skip"
	n := *fl
	n.kind = tableFlow
	n.g, n.w, n.gt = nil, nil, nil
	name := st.Store
	if name == "" {
		name = st.Name
	}
	m := topology.Materialized{Name: name, TTL: st.TTL, Retention: st.Retention}
	table := fl.kind == groupedTableFlow
	if table && (st.Op == "min" || st.Op == "max") {
		c.ps.add(st.Pos, "%s of a grouped table: a table's aggregate must be able to take a value back out (subtract); use aggregate with add and subtract", st.Op)
		return nil
	}
	ts := c.recTypes(fl)
	aggTypes := types{"key": ts["key"], "value": fl.valT}
	var of func(k, v any) (any, error)
	if st.Expr != nil && st.Op != "reduce" {
		st.Expr.compile(recordEnv, ts, wantAny, c.names, c.ps)
		e := st.Expr
		of = func(k, v any) (any, error) {
			x, err := e.runRecord(k, v)
			if err != nil {
				return nil, err
			}
			if x != nil && !isNumber(x) && st.Op != "min" && st.Op != "max" {
				return nil, &ExprError{Text: e.Text, Pos: e.Pos, Err: fmt.Errorf("%s: got %T, expected a number", st.Op, x)}
			}
			return x, nil
		}
	}
	// fold wraps an adder so that, under onError: skip, a failing record
	// leaves the aggregate as it was.
	fold := func(fn func(k, v, agg any) (any, error)) func(k, v, agg any) (any, error) {
		if !skip {
			return fn
		}
		return func(k, v, agg any) (any, error) {
			out, err := fn(k, v, agg)
			if err != nil {
				return agg, nil
			}
			return out, nil
		}
	}
	var init func() any
	var add, sub, merge func(k, v, agg any) (any, error)
	switch st.Op {
	case "count":
		n.value, n.valT = Format{Kind: "int64"}, reflect.TypeOf(int64(0))
		switch fl.kind {
		case groupedFlow:
			n.t = fl.g.Count(m)
		case windowedFlow:
			n.t = fl.w.Count(m)
		default:
			n.t = fl.gt.Count(m)
		}
		return &n
	case "sum":
		m.Value = Number{}
		init = func() any { return int64(0) }
		add = func(k, v, agg any) (any, error) {
			x, err := of(k, v)
			if err != nil || x == nil {
				return agg, err
			}
			return addNumbers(agg, x), nil
		}
		sub = func(k, v, agg any) (any, error) {
			x, err := of(k, v)
			if err != nil || x == nil {
				return agg, err
			}
			return addNumbers(agg, negate(x)), nil
		}
		merge = func(_, a, b any) (any, error) { return addNumbers(a, b), nil }
	case "min", "max":
		m.Value = Number{}
		pick := func(a, b any) any {
			if a == nil {
				return b
			}
			if b == nil {
				return a
			}
			if less(b, a) == (st.Op == "min") {
				return b
			}
			return a
		}
		add = func(k, v, agg any) (any, error) {
			x, err := of(k, v)
			if err != nil {
				return agg, err
			}
			return pick(agg, x), nil
		}
		merge = func(_, a, b any) (any, error) { return pick(a, b), nil }
	case "avg":
		m.Value = serde.JSON{}
		init = func() any { return map[string]any{"sum": int64(0), "count": int64(0)} }
		step := func(sign int64) func(k, v, agg any) (any, error) {
			return func(k, v, agg any) (any, error) {
				x, err := of(k, v)
				if err != nil || x == nil {
					return agg, err
				}
				a := agg.(map[string]any)
				if sign < 0 {
					x = negate(x)
				}
				return map[string]any{"sum": addNumbers(a["sum"], x), "count": addNumbers(a["count"], sign)}, nil
			}
		}
		add, sub = step(1), step(-1)
		merge = func(_, a, b any) (any, error) {
			x, y := a.(map[string]any), b.(map[string]any)
			return map[string]any{"sum": addNumbers(x["sum"], y["sum"]), "count": addNumbers(x["count"], y["count"])}, nil
		}
	case "reduce":
		if st.Agg == nil {
			return nil
		}
		m.Value = c.serde(fl.value, serde.Value, "")
		if st.ValueFormat != nil {
			m.Value = c.serde(*st.ValueFormat, serde.Value, "")
		}
		st.Agg.Add.compile(aggEnv, types{"key": ts["key"], "value": fl.valT, "agg": fl.valT}, wantAny, c.names, c.ps)
		a := st.Agg.Add
		adder := func(agg, v any) (any, error) { return a.runAgg(nil, v, agg) }
		if skip {
			adder = func(agg, v any) (any, error) {
				out, err := a.runAgg(nil, v, agg)
				if err != nil {
					return agg, nil
				}
				return out, nil
			}
		}
		switch fl.kind {
		case groupedFlow:
			n.t = fl.g.Reduce(adder, m)
		case windowedFlow:
			n.t = fl.w.Reduce(adder, m)
		default:
			if st.Agg.Subtract == nil {
				c.ps.add(st.Pos, "reduce of a grouped table: expected {add: EXPR, subtract: EXPR}")
				return nil
			}
			st.Agg.Subtract.compile(aggEnv, types{"key": ts["key"], "value": fl.valT, "agg": fl.valT}, wantAny, c.names, c.ps)
			s := st.Agg.Subtract
			n.t = fl.gt.Reduce(adder, func(agg, v any) (any, error) { return s.runAgg(nil, v, agg) }, m)
		}
		return &n
	case "aggregate":
		if st.Agg == nil {
			return nil
		}
		n.value, n.valT = Format{Kind: "json"}, nil
		if st.ValueFormat != nil {
			n.value, n.valT = *st.ValueFormat, c.types(*st.ValueFormat)
		}
		m.Value = c.serde(n.value, serde.Value, "")
		st.Agg.Init.compile(initEnv, nil, wantAny, c.names, c.ps)
		st.Agg.Add.compile(aggEnv, aggTypes, wantAny, c.names, c.ps)
		ie, ae := st.Agg.Init, st.Agg.Add
		init = func() any { out, _ := ie.runInit(); return out }
		add = ae.runAgg
		if st.Agg.Subtract != nil {
			st.Agg.Subtract.compile(aggEnv, aggTypes, wantAny, c.names, c.ps)
			sub = st.Agg.Subtract.runAgg
		} else if table {
			c.ps.add(st.Pos, "aggregate of a grouped table: expected subtract: EXPR (how a value leaves the aggregate)")
			return nil
		}
		if st.Agg.Merge != nil {
			st.Agg.Merge.compile(aggEnv, types{"key": ts["key"]}, wantAny, c.names, c.ps)
			me := st.Agg.Merge
			merge = func(k, a, b any) (any, error) { return me.runAgg(k, b, a) }
		} else if w, ok := fl.windows.(topology.SessionWindows); ok {
			_ = w
			c.ps.add(st.Pos, "aggregate over session windows: expected merge: EXPR (agg and value are two sessions' aggregates)")
			return nil
		}
	}
	if st.Op != "aggregate" {
		n.value, n.valT = Format{Kind: "json"}, nil
	}
	add = fold(add)
	if sub != nil {
		sub = fold(sub)
	}
	if init == nil {
		init = func() any { return nil }
	}
	switch fl.kind {
	case groupedFlow:
		n.t = fl.g.Aggregate(init, add, m)
	case windowedFlow:
		n.t = fl.w.Aggregate(init, add, merge, m)
	default:
		n.t = fl.gt.Aggregate(init, add, sub, m)
	}
	if st.Op == "avg" {
		avg := func(_, v any) (any, error) { return average(v), nil }
		if fl.kind == windowedFlow {
			n.kind, n.s = streamFlow, n.t.ToStream().MapValues(func(v any) (any, error) { return average(v), nil })
			n.t = nil
		} else {
			n.t = n.t.MapValues(avg, serde.JSON{})
		}
	}
	return &n
}

func isNumber(x any) bool {
	switch x.(type) {
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, float32, float64:
		return true
	}
	return false
}

// number reads x as an int64 (isInt) or a float64.
func number(x any) (i int64, f float64, isInt bool) {
	switch v := x.(type) {
	case nil:
		return 0, 0, true
	case float32:
		return 0, float64(v), false
	case float64:
		return 0, v, false
	}
	rv := reflect.ValueOf(x)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int(), 0, true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return int64(rv.Uint()), 0, true
	}
	return 0, 0, true
}

// addNumbers adds two numbers, int64 while both are integers.
func addNumbers(a, b any) any {
	ai, af, aInt := number(a)
	bi, bf, bInt := number(b)
	if aInt && bInt {
		return ai + bi
	}
	if aInt {
		af = float64(ai)
	}
	if bInt {
		bf = float64(bi)
	}
	return af + bf
}

func negate(x any) any {
	i, f, isInt := number(x)
	if isInt {
		return -i
	}
	return -f
}

// less orders numbers by value and anything else by its text.
func less(a, b any) bool {
	if isNumber(a) && isNumber(b) {
		ai, af, aInt := number(a)
		bi, bf, bInt := number(b)
		if aInt && bInt {
			return ai < bi
		}
		if aInt {
			af = float64(ai)
		}
		if bInt {
			bf = float64(bi)
		}
		return af < bf
	}
	return fmt.Sprint(a) < fmt.Sprint(b)
}

func average(v any) any {
	m, ok := v.(map[string]any)
	if !ok {
		return nil
	}
	si, sf, sInt := number(m["sum"])
	ci, cf, cInt := number(m["count"])
	if sInt {
		sf = float64(si)
	}
	if cInt {
		cf = float64(ci)
	}
	if cf == 0 {
		return nil
	}
	return sf / cf
}

// Number is the serde of sum, min and max aggregates: a number as decimal
// text, read back as an int64 when it has no fraction or exponent, else as
// a float64, so an integer sum stays an integer across a restore. Other
// values (min and max of strings) are kept as JSON strings.
type Number struct{}

func (Number) Serialize(_ string, v any) ([]byte, error) {
	if v == nil {
		return nil, nil
	}
	if s, ok := v.(string); ok {
		return []byte(strconv.Quote(s)), nil
	}
	if !isNumber(v) {
		return nil, fmt.Errorf("%w: number serde got %T", serde.ErrType, v)
	}
	i, f, isInt := number(v)
	if isInt {
		return strconv.AppendInt(nil, i, 10), nil
	}
	return strconv.AppendFloat(nil, f, 'g', -1, 64), nil
}

func (Number) Deserialize(_ string, b []byte) (any, error) {
	if b == nil {
		return nil, nil
	}
	s := string(b)
	if strings.HasPrefix(s, `"`) {
		return strconv.Unquote(s)
	}
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return i, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return nil, fmt.Errorf("number serde: %q: %w", s, err)
	}
	return f, nil
}
