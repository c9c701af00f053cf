package schema

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand"
	"reflect"
	"testing"

	"github.com/linkedin/goavro/v2"
)

// The property test: random writer schemas, reader schemas derived from them
// by random evolutions that the specification allows, each evolution with
// its own value transform (the oracle). For every pair CheckCompatibility must
// say compatible, and for random data encoded by goavro with the writer,
// decoded, projected and re-encoded with the reader, the result must equal
// the oracle's value: defaults where missing, promoted values, renamed
// fields, mapped enum symbols, matched union branches. Then one breaking edit
// is applied to the reader and CheckCompatibility and Resolve must reject it.

// gnode is a generated schema node.
type gnode struct {
	kind     Kind
	name     string // full name, for named kinds
	aliases  []string
	fields   []gfield
	symbols  []string
	enumDef  string
	size     int
	items    *gnode // array items or map values
	branches []*gnode
}

type gfield struct {
	name    string
	aliases []string
	t       *gnode
	def     any // JSON default
	hasDef  bool
}

func (n *gnode) json() any {
	switch n.kind {
	case KindRecord:
		fs := make([]any, len(n.fields))
		for i, f := range n.fields {
			m := map[string]any{"name": f.name, "type": f.t.json()}
			if len(f.aliases) > 0 {
				m["aliases"] = f.aliases
			}
			if f.hasDef {
				m["default"] = f.def
			}
			fs[i] = m
		}
		m := map[string]any{"type": "record", "name": n.name, "fields": fs}
		if len(n.aliases) > 0 {
			m["aliases"] = n.aliases
		}
		return m
	case KindEnum:
		m := map[string]any{"type": "enum", "name": n.name, "symbols": n.symbols}
		if n.enumDef != "" {
			m["default"] = n.enumDef
		}
		return m
	case KindFixed:
		return map[string]any{"type": "fixed", "name": n.name, "size": n.size}
	case KindArray:
		return map[string]any{"type": "array", "items": n.items.json()}
	case KindMap:
		return map[string]any{"type": "map", "values": n.items.json()}
	case KindUnion:
		bs := make([]any, len(n.branches))
		for i, b := range n.branches {
			bs[i] = b.json()
		}
		return bs
	}
	return string(n.kind)
}

// key is goavro's union branch name for n.
func (n *gnode) key() string {
	if n.kind.IsNamed() {
		return n.name
	}
	return string(n.kind)
}

type gen struct {
	rnd *rand.Rand
	seq int
}

func (g *gen) name(prefix string) string {
	g.seq++
	return fmt.Sprintf("p.%s%d", prefix, g.seq)
}

// schema generates a non-union, non-null writer node.
func (g *gen) schema(depth int) *gnode {
	primKinds := []Kind{KindBoolean, KindInt, KindLong, KindFloat, KindDouble, KindString, KindBytes}
	k := g.rnd.Intn(12)
	if depth <= 0 && k >= 7 {
		k = g.rnd.Intn(7)
	}
	switch {
	case k < 7:
		return &gnode{kind: primKinds[k]}
	case k == 7:
		n := 2 + g.rnd.Intn(3)
		syms := make([]string, n)
		for i := range syms {
			syms[i] = fmt.Sprintf("S%d", i)
		}
		return &gnode{kind: KindEnum, name: g.name("E"), symbols: syms}
	case k == 8:
		return &gnode{kind: KindFixed, name: g.name("F"), size: 1 + g.rnd.Intn(4)}
	case k == 9:
		return &gnode{kind: KindArray, items: g.schema(depth - 1)}
	case k == 10:
		return &gnode{kind: KindMap, items: g.schema(depth - 1)}
	}
	return g.record(depth - 1)
}

func (g *gen) record(depth int) *gnode {
	r := &gnode{kind: KindRecord, name: g.name("R")}
	n := 1 + g.rnd.Intn(4)
	for i := range n {
		t := g.schema(depth)
		if g.rnd.Intn(4) == 0 {
			t = &gnode{kind: KindUnion, branches: []*gnode{{kind: KindNull}, t}}
		}
		r.fields = append(r.fields, gfield{name: fmt.Sprintf("f%d", i), t: t})
	}
	return r
}

// value generates goavro's native value for n.
func (g *gen) value(n *gnode) any {
	switch n.kind {
	case KindNull:
		return nil
	case KindBoolean:
		return g.rnd.Intn(2) == 0
	case KindInt:
		return []int32{0, 1, -1, math.MaxInt32, math.MinInt32, g.rnd.Int31()}[g.rnd.Intn(6)]
	case KindLong:
		return []int64{0, -1, math.MaxInt64, math.MinInt64, g.rnd.Int63()}[g.rnd.Intn(5)]
	case KindFloat:
		return float32(g.rnd.NormFloat64() * 1e3)
	case KindDouble:
		return g.rnd.NormFloat64() * 1e9
	case KindString:
		return fmt.Sprintf("s%d", g.rnd.Intn(1000))
	case KindBytes:
		b := make([]byte, g.rnd.Intn(4))
		g.rnd.Read(b)
		return b
	case KindFixed:
		b := make([]byte, n.size)
		g.rnd.Read(b)
		return b
	case KindEnum:
		return n.symbols[g.rnd.Intn(len(n.symbols))]
	case KindArray:
		out := make([]any, g.rnd.Intn(3))
		for i := range out {
			out[i] = g.value(n.items)
		}
		return out
	case KindMap:
		out := map[string]any{}
		for i := range g.rnd.Intn(3) {
			out[fmt.Sprintf("k%d", i)] = g.value(n.items)
		}
		return out
	case KindRecord:
		out := map[string]any{}
		for _, f := range n.fields {
			out[f.name] = g.value(f.t)
		}
		return out
	case KindUnion:
		b := n.branches[g.rnd.Intn(len(n.branches))]
		if b.kind == KindNull {
			return nil
		}
		return map[string]any{b.key(): g.value(b)}
	}
	panic("unreachable")
}

type transform func(any) any

func identity(v any) any { return v }

// promotions lists, per writer primitive, the reader kinds it may become and
// how a value changes.
func promotions(k Kind) map[Kind]transform {
	switch k {
	case KindInt:
		return map[Kind]transform{
			KindLong:   func(v any) any { return int64(v.(int32)) },
			KindFloat:  func(v any) any { return float32(v.(int32)) },
			KindDouble: func(v any) any { return float64(v.(int32)) },
		}
	case KindLong:
		return map[Kind]transform{
			KindFloat:  func(v any) any { return float32(v.(int64)) },
			KindDouble: func(v any) any { return float64(v.(int64)) },
		}
	case KindFloat:
		return map[Kind]transform{KindDouble: func(v any) any { return float64(v.(float32)) }}
	case KindString:
		return map[Kind]transform{KindBytes: func(v any) any { return []byte(v.(string)) }}
	case KindBytes:
		return map[Kind]transform{KindString: func(v any) any { return string(v.([]byte)) }}
	}
	return nil
}

// evolve derives a reader node from writer node w by allowed changes and
// returns the value transform. inUnion forbids wrapping into a union.
func (g *gen) evolve(w *gnode, inUnion bool) (*gnode, transform) {
	if !inUnion && w.kind != KindUnion && g.rnd.Intn(8) == 0 {
		r, f := g.evolve(w, true)
		u := &gnode{kind: KindUnion, branches: []*gnode{{kind: KindNull}, r}}
		if g.rnd.Intn(2) == 0 {
			u.branches = []*gnode{r, {kind: KindNull}}
		}
		return u, func(v any) any { return map[string]any{r.key(): f(v)} }
	}
	switch w.kind {
	case KindRecord:
		r := &gnode{kind: KindRecord, name: w.name}
		if g.rnd.Intn(6) == 0 {
			r.name = g.name("Renamed")
			r.aliases = []string{w.name}
		}
		type fmap struct {
			from, to string
			f        transform
		}
		var maps []fmap
		type fdef struct {
			name string
			val  any
		}
		var defs []fdef
		for _, wf := range w.fields {
			switch g.rnd.Intn(6) {
			case 0: // dropped by the reader
				continue
			case 1: // renamed, with an alias
				t, f := g.evolve(wf.t, false)
				rf := gfield{name: wf.name + "_new", aliases: []string{wf.name}, t: t}
				r.fields = append(r.fields, rf)
				maps = append(maps, fmap{wf.name, rf.name, f})
			default:
				t, f := g.evolve(wf.t, false)
				r.fields = append(r.fields, gfield{name: wf.name, t: t})
				maps = append(maps, fmap{wf.name, wf.name, f})
			}
		}
		if g.rnd.Intn(2) == 0 {
			name := fmt.Sprintf("added%d", g.rnd.Intn(100))
			t, def, val := g.defaulted()
			r.fields = append(r.fields, gfield{name: name, t: t, def: def, hasDef: true})
			defs = append(defs, fdef{name, val})
		}
		g.rnd.Shuffle(len(r.fields), func(i, j int) { r.fields[i], r.fields[j] = r.fields[j], r.fields[i] })
		return r, func(v any) any {
			in := v.(map[string]any)
			out := map[string]any{}
			for _, m := range maps {
				out[m.to] = m.f(in[m.from])
			}
			for _, d := range defs {
				out[d.name] = d.val
			}
			return out
		}
	case KindEnum:
		r := &gnode{kind: KindEnum, name: w.name, symbols: append([]string(nil), w.symbols...)}
		switch g.rnd.Intn(3) {
		case 0:
			r.symbols = append([]string{"NEW"}, r.symbols...)
		case 1:
			removed := r.symbols[len(r.symbols)-1]
			r.symbols = r.symbols[:len(r.symbols)-1]
			r.enumDef = r.symbols[0]
			return r, func(v any) any {
				if v == removed {
					return r.enumDef
				}
				return v
			}
		}
		return r, identity
	case KindArray, KindMap:
		items, f := g.evolve(w.items, false)
		r := &gnode{kind: w.kind, items: items}
		if w.kind == KindArray {
			return r, func(v any) any {
				in := v.([]any)
				out := make([]any, len(in))
				for i, x := range in {
					out[i] = f(x)
				}
				return out
			}
		}
		return r, func(v any) any {
			out := map[string]any{}
			for k, x := range v.(map[string]any) {
				out[k] = f(x)
			}
			return out
		}
	case KindUnion:
		// ["null", X] -> ["null", X'] (+ a boolean branch), X' not a union.
		x := w.branches[1]
		rx, f := g.evolve(x, true)
		r := &gnode{kind: KindUnion, branches: []*gnode{{kind: KindNull}, rx}}
		if rx.kind != KindBoolean && g.rnd.Intn(3) == 0 {
			r.branches = append(r.branches, &gnode{kind: KindBoolean})
		}
		return r, func(v any) any {
			if v == nil {
				return nil
			}
			return map[string]any{rx.key(): f(v.(map[string]any)[x.key()])}
		}
	case KindFixed:
		return &gnode{kind: KindFixed, name: w.name, size: w.size}, identity
	}
	if ps := promotions(w.kind); len(ps) > 0 && g.rnd.Intn(2) == 0 {
		for k, f := range ps {
			return &gnode{kind: k}, f
		}
	}
	return &gnode{kind: w.kind}, identity
}

// defaulted returns a reader-only field type, its JSON default and the
// native value the reader must see.
func (g *gen) defaulted() (*gnode, any, any) {
	switch g.rnd.Intn(5) {
	case 0:
		return &gnode{kind: KindInt}, 7, int32(7)
	case 1:
		return &gnode{kind: KindString}, "d", "d"
	case 2:
		return &gnode{kind: KindUnion, branches: []*gnode{{kind: KindNull}, {kind: KindLong}}}, nil, nil
	case 3:
		return &gnode{kind: KindArray, items: &gnode{kind: KindDouble}}, []any{1.5}, []any{1.5}
	}
	return &gnode{kind: KindBytes}, "\u00ff", []byte{0xff}
}

func mustJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestPropertyEvolutionRoundTrip(t *testing.T) {
	const seeds = 400
	var pairs, values int
	for seed := int64(1); seed <= seeds; seed++ {
		g := &gen{rnd: rand.New(rand.NewSource(seed))}
		wn := g.record(3)
		rn, f := g.evolve(wn, true)
		wText, rText := mustJSON(t, wn.json()), mustJSON(t, rn.json())
		ws, err := Parse(wText)
		if err != nil {
			t.Fatalf("seed %d: writer: %v\n%s", seed, err, wText)
		}
		rs, err := Parse(rText)
		if err != nil {
			t.Fatalf("seed %d: reader: %v\n%s", seed, err, rText)
		}
		if ps := CheckCompatibility(rs, ws); len(ps) > 0 {
			t.Fatalf("seed %d: allowed evolution judged incompatible: %v\nwriter %s\nreader %s", seed, ps, wText, rText)
		}
		res, err := Resolve(rs, ws)
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		wc, err := goavro.NewCodec(wText)
		if err != nil {
			t.Fatalf("seed %d: goavro writer: %v", seed, err)
		}
		rc, err := goavro.NewCodec(rText)
		if err != nil {
			t.Fatalf("seed %d: goavro reader: %v", seed, err)
		}
		pairs++
		for range 5 {
			v := g.value(wn)
			bin, err := wc.BinaryFromNative(nil, v)
			if err != nil {
				t.Fatalf("seed %d: encode writer: %v", seed, err)
			}
			decoded, _, err := wc.NativeFromBinary(bin)
			if err != nil {
				t.Fatalf("seed %d: decode writer: %v", seed, err)
			}
			got, err := res.Project(decoded)
			if err != nil {
				t.Fatalf("seed %d: project: %v\nwriter %s\nreader %s", seed, err, wText, rText)
			}
			want := f(v)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("seed %d: projected\n got %#v\nwant %#v\nwriter %s\nreader %s", seed, got, want, wText, rText)
			}
			rbin, err := rc.BinaryFromNative(nil, got)
			if err != nil {
				t.Fatalf("seed %d: reader cannot encode projection: %v", seed, err)
			}
			back, _, err := rc.NativeFromBinary(rbin)
			if err != nil {
				t.Fatalf("seed %d: decode reader: %v", seed, err)
			}
			if !reflect.DeepEqual(back, want) {
				t.Fatalf("seed %d: after reader round trip\n got %#v\nwant %#v", seed, back, want)
			}
			values++
		}

		// One breaking edit at the reader's root must be caught.
		broken := *rn
		broken.fields = append([]gfield(nil), rn.fields...)
		switch seed % 3 {
		case 0:
			broken.fields = append(broken.fields, gfield{name: "required_new", t: &gnode{kind: KindInt}})
		case 1:
			broken.name, broken.aliases = "p.Other", nil
		case 2:
			kept := -1
			for i, fl := range broken.fields {
				if !fl.hasDef {
					kept = i
				}
			}
			if kept < 0 {
				broken.fields = append(broken.fields, gfield{name: "required_new", t: &gnode{kind: KindInt}})
			} else {
				broken.fields[kept].t = &gnode{kind: KindNull}
			}
		}
		bText := mustJSON(t, broken.json())
		bs, err := Parse(bText)
		if err != nil {
			t.Fatalf("seed %d: broken reader: %v\n%s", seed, err, bText)
		}
		if ps := CheckCompatibility(bs, ws); len(ps) == 0 {
			t.Fatalf("seed %d: breaking edit %d not caught\nwriter %s\nreader %s", seed, seed%3, wText, bText)
		}
		if _, err := Resolve(bs, ws); err == nil {
			t.Fatalf("seed %d: Resolve accepted an incompatible pair", seed)
		}
	}
	t.Logf("%d schema pairs, %d values", pairs, values)
}
