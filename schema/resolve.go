package schema

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"sync"
	"time"
)

// Resolution turns values decoded with a writer schema into values of a
// reader schema, by the specification's resolution rules. goavro encodes and
// decodes one schema at a time and does not resolve, so this is where
// schema evolution happens on the read path:
//
//	writer bytes --goavro(writer)--> writer native --Project--> reader native
//
// Values are goavro's native forms throughout: records map[string]any,
// unions nil or map[string]any{"<branch>": v} (the branch named as goavro
// names it: a named type's full name, "array", "map", a primitive's name, or
// "long.timestamp-millis" and the like for the logical types goavro decodes),
// enums string, bytes and fixed []byte, int int32, long int64, float
// float32, double float64, timestamp-millis/-micros and date time.Time,
// time-millis/-micros time.Duration, decimal *big.Rat.
//
// A Resolution is immutable and safe for concurrent use. Project's result
// may share []byte values with its input; defaults are fresh copies each
// time.
type Resolution struct {
	reader, writer *Schema
	root           projector
}

// Reader returns the reader schema.
func (r *Resolution) Reader() *Schema { return r.reader }

// Writer returns the writer schema.
func (r *Resolution) Writer() *Schema { return r.writer }

// Project converts v, a value in goavro's native form for the writer schema,
// into goavro's native form for the reader schema: reader fields the writer
// lacks get their defaults, writer-only fields are dropped, numbers are
// promoted, string and bytes converted, union branches matched and enum
// symbols unknown to the reader replaced by the reader's enum default. It
// fails only on a v that is not a value of the writer schema.
func (r *Resolution) Project(v any) (any, error) {
	out, err := r.root.project(v)
	if err != nil {
		return nil, fmt.Errorf("schema: project: %w", err)
	}
	return out, nil
}

// Resolve builds the projection from writer to reader, or returns a
// *ResolveError (matching ErrIncompatible) listing every incompatibility.
// It does the compatibility analysis once; use a Resolver to also build each
// pair once.
func Resolve(reader, writer *Schema) (*Resolution, error) {
	c := newChecker()
	if ps := c.check(reader, writer); len(ps) > 0 {
		return nil, &ResolveError{Reader: reader.Canonical(), Writer: writer.Canonical(), Problems: ps}
	}
	b := &builder{c: c, records: map[pair]*recordProj{}}
	root, err := b.build(reader, writer)
	if err != nil {
		return nil, fmt.Errorf("schema: resolve: %w", err)
	}
	return &Resolution{reader: reader, writer: writer, root: root}, nil
}

// Resolver caches Resolutions per (reader, writer) pair. It is safe for
// concurrent use; the zero value is not ready, use NewResolver.
//
// The cache is keyed by the two fingerprints. The canonical form leaves out
// what resolution also depends on (the reader's defaults, aliases and enum
// default), so an entry is reused only for a reader with the same original
// text (or the same *Schema) and a writer with the same canonical form.
type Resolver struct {
	mu sync.Mutex
	// cache is guarded by mu. Entries are never evicted: a process meets few
	// schema pairs.
	cache map[resolverKey][]*Resolution
}

type resolverKey struct{ reader, writer uint64 }

// NewResolver returns an empty Resolver.
func NewResolver() *Resolver {
	return &Resolver{cache: map[resolverKey][]*Resolution{}}
}

// Resolve returns the cached Resolution for the pair, building it on first
// use. Errors (incompatible pairs) are not cached.
func (r *Resolver) Resolve(reader, writer *Schema) (*Resolution, error) {
	key := resolverKey{reader.Fingerprint(), writer.Fingerprint()}
	r.mu.Lock()
	if res := r.lookupLocked(key, reader, writer); res != nil {
		r.mu.Unlock()
		return res, nil
	}
	r.mu.Unlock()
	// Built outside the lock: a slow pair does not block others. Two
	// goroutines may build the same pair; the first stored wins.
	res, err := Resolve(reader, writer)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if prev := r.lookupLocked(key, reader, writer); prev != nil {
		return prev, nil
	}
	r.cache[key] = append(r.cache[key], res)
	return res, nil
}

func (r *Resolver) lookupLocked(key resolverKey, reader, writer *Schema) *Resolution {
	for _, res := range r.cache[key] {
		sameReader := res.reader == reader || (reader.text != "" && res.reader.text == reader.text)
		if sameReader && res.writer.Canonical() == writer.Canonical() {
			return res
		}
	}
	return nil
}

// projector converts one writer value into a reader value.
type projector interface {
	project(v any) (any, error)
}

// builder compiles projectors for one Resolve call.
type builder struct {
	c *checker
	// records holds record projectors by pair, so that a recursive type
	// compiles to a cycle of projectors rather than forever.
	records map[pair]*recordProj
}

func (b *builder) build(r, w *Schema) (projector, error) {
	if w.Kind == KindUnion {
		wu := &writerUnionProj{branches: make(map[string]projector, len(w.Branches))}
		for _, wb := range w.Branches {
			p, err := b.build(r, wb)
			if err != nil {
				return nil, err
			}
			wu.branches[goavroName(wb)] = p
		}
		return wu, nil
	}
	if r.Kind == KindUnion {
		rb := b.pickBranch(r, w)
		if rb == nil {
			return nil, fmt.Errorf("reader union %s has no branch for writer %s", unionDesc(r), w.describe())
		}
		inner, err := b.build(rb, w)
		if err != nil {
			return nil, err
		}
		return &readerUnionProj{key: goavroName(rb), null: rb.Kind == KindNull, inner: inner}, nil
	}
	if r.Kind != w.Kind {
		if !promotable(w.Kind, r.Kind) {
			return nil, fmt.Errorf("reader %s cannot read writer %s", r.describe(), w.describe())
		}
		return &scalarProj{r: r, w: w}, nil
	}
	switch r.Kind {
	case KindArray:
		items, err := b.build(r.Items, w.Items)
		if err != nil {
			return nil, err
		}
		return &arrayProj{items: items}, nil
	case KindMap:
		values, err := b.build(r.Values, w.Values)
		if err != nil {
			return nil, err
		}
		return &mapProj{values: values}, nil
	case KindEnum:
		return &enumProj{r: r}, nil
	case KindRecord:
		return b.record(r, w)
	}
	return &scalarProj{r: r, w: w}, nil
}

func (b *builder) record(r, w *Schema) (projector, error) {
	p := pair{r, w}
	if rp, ok := b.records[p]; ok {
		return rp, nil
	}
	rp := &recordProj{name: r.Name, fields: make([]fieldProj, 0, len(r.Fields))}
	b.records[p] = rp
	for _, rf := range r.Fields {
		fp := fieldProj{name: rf.Name}
		if wf := writerField(rf, w); wf != nil {
			inner, err := b.build(rf.Type, wf.Type)
			if err != nil {
				return nil, fmt.Errorf("field %q: %w", rf.Name, err)
			}
			fp.from, fp.proj = wf.Name, inner
		} else {
			if !rf.HasDefault {
				return nil, fmt.Errorf("field %q: no default and not in writer", rf.Name)
			}
			def, err := nativeDefault(rf.Type, rf.Default)
			if err != nil {
				return nil, fmt.Errorf("field %q: default: %w", rf.Name, err)
			}
			fp.def = def
		}
		rp.fields = append(rp.fields, fp)
	}
	return rp, nil
}

// pickBranch chooses the reader union branch that reads non-union writer w,
// as Avro's Java resolver does but only among branches that can read w (so
// that a compatible pair always resolves): first a branch of the same kind
// (and, for a named type, the same full name), then a compatible branch of
// the same kind (a named type matched by unqualified name or alias), then
// the first branch w promotes to.
func (b *builder) pickBranch(r, w *Schema) *Schema {
	for _, rb := range r.Branches {
		if rb.Kind == w.Kind && (!w.Kind.IsNamed() || rb.Name == w.Name) && b.c.compatible(rb, w) {
			return rb
		}
	}
	for _, rb := range r.Branches {
		if rb.Kind == w.Kind && b.c.compatible(rb, w) {
			return rb
		}
	}
	for _, rb := range r.Branches {
		if b.c.compatible(rb, w) {
			return rb
		}
	}
	return nil
}

// goavroName is the key goavro uses for a union branch of schema s.
func goavroName(s *Schema) string {
	if s.Kind.IsNamed() {
		return s.Name
	}
	switch rep := repOf(s); rep {
	case repTimestampMillis, repTimestampMicros, repTimeMillis, repTimeMicros, repDate:
		return string(s.Kind) + "." + s.LogicalType
	case repDecimal:
		return "bytes.decimal"
	}
	return string(s.Kind)
}

// rep is how goavro represents a value of a schema node natively.
type rep int

const (
	repPlain           rep = iota // the kind's own Go type
	repTimestampMillis            // time.Time over long
	repTimestampMicros            // time.Time over long
	repDate                       // time.Time over int
	repTimeMillis                 // time.Duration over int
	repTimeMicros                 // time.Duration over long
	repDecimal                    // *big.Rat over bytes or fixed
)

// repOf returns goavro's native representation of s: goavro decodes only
// these logical types; others (uuid, local-timestamp-*, duration) stay in
// their underlying type's form.
func repOf(s *Schema) rep {
	switch {
	case s.Kind == KindLong && s.LogicalType == "timestamp-millis":
		return repTimestampMillis
	case s.Kind == KindLong && s.LogicalType == "timestamp-micros":
		return repTimestampMicros
	case s.Kind == KindInt && s.LogicalType == "date":
		return repDate
	case s.Kind == KindInt && s.LogicalType == "time-millis":
		return repTimeMillis
	case s.Kind == KindLong && s.LogicalType == "time-micros":
		return repTimeMicros
	case (s.Kind == KindBytes || s.Kind == KindFixed) && s.LogicalType == "decimal":
		return repDecimal
	}
	return repPlain
}

// scalarProj converts a primitive or fixed value: from the writer's native
// form to the raw Avro value, through the promotion, to the reader's native
// form. The raw step is what makes logical types resolve by their underlying
// types (a timestamp-millis read as a plain long, and back).
type scalarProj struct{ r, w *Schema }

func (p *scalarProj) project(v any) (any, error) {
	raw, err := toRaw(p.w, v)
	if err != nil {
		return nil, err
	}
	raw, err = promote(raw, p.r.Kind)
	if err != nil {
		return nil, err
	}
	return fromRaw(p.r, raw)
}

// toRaw turns goavro's native value for s into the raw value of s's kind:
// nil, bool, int32, int64, float32, float64, string or []byte.
func toRaw(s *Schema, v any) (any, error) {
	bad := func() (any, error) { return nil, fmt.Errorf("writer %s: unexpected Go value %T", s.describe(), v) }
	switch s.Kind {
	case KindNull:
		if v != nil {
			return bad()
		}
		return nil, nil
	case KindBoolean:
		if _, ok := v.(bool); !ok {
			return bad()
		}
		return v, nil
	case KindInt:
		switch x := v.(type) {
		case int32:
			return x, nil
		case int:
			return int32(x), nil
		case int64:
			return int32(x), nil
		case time.Time:
			return int32(x.Unix() / 86400), nil
		case time.Duration:
			return int32(x / time.Millisecond), nil
		}
		return bad()
	case KindLong:
		switch x := v.(type) {
		case int64:
			return x, nil
		case int:
			return int64(x), nil
		case int32:
			return int64(x), nil
		case time.Time:
			if s.LogicalType == "timestamp-micros" {
				return x.UnixMicro(), nil
			}
			return x.UnixMilli(), nil
		case time.Duration:
			if s.LogicalType == "time-micros" {
				return int64(x / time.Microsecond), nil
			}
			return int64(x / time.Millisecond), nil
		}
		return bad()
	case KindFloat:
		if _, ok := v.(float32); !ok {
			return bad()
		}
		return v, nil
	case KindDouble:
		if _, ok := v.(float64); !ok {
			return bad()
		}
		return v, nil
	case KindString:
		switch x := v.(type) {
		case string:
			return x, nil
		case []byte:
			return string(x), nil
		}
		return bad()
	case KindBytes, KindFixed:
		switch x := v.(type) {
		case []byte:
			return x, nil
		case string:
			return []byte(x), nil
		case *big.Rat:
			return decimalBytes(x, s)
		}
		return bad()
	}
	return bad()
}

// promote converts a raw value to the raw form of kind to, by the
// specification's promotions; other values pass unchanged.
func promote(raw any, to Kind) (any, error) {
	switch to {
	case KindLong:
		if x, ok := raw.(int32); ok {
			return int64(x), nil
		}
	case KindFloat:
		switch x := raw.(type) {
		case int32:
			return float32(x), nil
		case int64:
			return float32(x), nil
		}
	case KindDouble:
		switch x := raw.(type) {
		case int32:
			return float64(x), nil
		case int64:
			return float64(x), nil
		case float32:
			return float64(x), nil
		}
	case KindBytes:
		if x, ok := raw.(string); ok {
			return []byte(x), nil
		}
	case KindString:
		if x, ok := raw.([]byte); ok {
			return string(x), nil
		}
	}
	return raw, nil
}

// fromRaw turns a raw value of s's kind into goavro's native form for s.
func fromRaw(s *Schema, raw any) (any, error) {
	switch repOf(s) {
	case repTimestampMillis:
		return time.UnixMilli(raw.(int64)).UTC(), nil
	case repTimestampMicros:
		return time.UnixMicro(raw.(int64)).UTC(), nil
	case repDate:
		return time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, int(raw.(int32))).UTC(), nil
	case repTimeMillis:
		return time.Duration(raw.(int32)) * time.Millisecond, nil
	case repTimeMicros:
		return time.Duration(raw.(int64)) * time.Microsecond, nil
	case repDecimal:
		b := raw.([]byte)
		num := twosComplementInt(b)
		den := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(s.Scale)), nil)
		return new(big.Rat).SetFrac(num, den), nil
	}
	return raw, nil
}

// decimalBytes encodes a decimal as the two's-complement big-endian bytes of
// its unscaled value (truncated to s's scale, as goavro does), sign-extended
// to the size of a fixed.
func decimalBytes(x *big.Rat, s *Schema) ([]byte, error) {
	scale := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(s.Scale)), nil)
	n := new(big.Int).Mul(x.Num(), scale)
	n.Quo(n, x.Denom())
	b := twosComplementBytes(n)
	if s.Kind == KindFixed {
		if len(b) > s.Size {
			return nil, fmt.Errorf("decimal %s does not fit fixed %s of size %d", x.FloatString(s.Scale), s.Name, s.Size)
		}
		pad := byte(0)
		if n.Sign() < 0 {
			pad = 0xFF
		}
		out := make([]byte, s.Size)
		for i := range out[:s.Size-len(b)] {
			out[i] = pad
		}
		copy(out[s.Size-len(b):], b)
		b = out
	}
	return b, nil
}

// twosComplementBytes returns the shortest big-endian two's-complement form
// of n.
func twosComplementBytes(n *big.Int) []byte {
	if n.Sign() >= 0 {
		b := n.Bytes()
		if len(b) == 0 || b[0]&0x80 != 0 {
			b = append([]byte{0}, b...)
		}
		return b
	}
	// -n-1 has the same bits as n, inverted.
	m := new(big.Int).Neg(n)
	m.Sub(m, big.NewInt(1))
	b := m.Bytes()
	if len(b) == 0 || b[0]&0x80 != 0 {
		b = append([]byte{0}, b...)
	}
	for i := range b {
		b[i] = ^b[i]
	}
	return b
}

// twosComplementInt decodes big-endian two's-complement bytes.
func twosComplementInt(b []byte) *big.Int {
	n := new(big.Int).SetBytes(b)
	if len(b) > 0 && b[0]&0x80 != 0 {
		n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
	}
	return n
}

type enumProj struct{ r *Schema }

func (p *enumProj) project(v any) (any, error) {
	sym, ok := v.(string)
	if !ok {
		return nil, fmt.Errorf("enum %s: unexpected Go value %T", p.r.Name, v)
	}
	if contains(p.r.Symbols, sym) {
		return sym, nil
	}
	if p.r.EnumDefault != "" {
		return p.r.EnumDefault, nil
	}
	return nil, fmt.Errorf("enum %s: symbol %q unknown to the reader, which has no default", p.r.Name, sym)
}

type arrayProj struct{ items projector }

func (p *arrayProj) project(v any) (any, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("array: unexpected Go value %T", v)
	}
	out := make([]any, len(list))
	for i, it := range list {
		x, err := p.items.project(it)
		if err != nil {
			return nil, fmt.Errorf("item %d: %w", i, err)
		}
		out[i] = x
	}
	return out, nil
}

type mapProj struct{ values projector }

func (p *mapProj) project(v any) (any, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("map: unexpected Go value %T", v)
	}
	out := make(map[string]any, len(m))
	for k, it := range m {
		x, err := p.values.project(it)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", k, err)
		}
		out[k] = x
	}
	return out, nil
}

// fieldProj fills one reader field: from writer field `from` through proj,
// or, when proj is nil, with a copy of the default def.
type fieldProj struct {
	name string
	from string
	proj projector
	def  any
}

type recordProj struct {
	name   string
	fields []fieldProj
}

func (p *recordProj) project(v any) (any, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("record %s: unexpected Go value %T", p.name, v)
	}
	out := make(map[string]any, len(p.fields))
	for _, f := range p.fields {
		if f.proj == nil {
			out[f.name] = cloneNative(f.def)
			continue
		}
		x, ok := m[f.from]
		if !ok {
			return nil, fmt.Errorf("record %s: writer value lacks field %q", p.name, f.from)
		}
		y, err := f.proj.project(x)
		if err != nil {
			return nil, fmt.Errorf("record %s: field %q: %w", p.name, f.from, err)
		}
		out[f.name] = y
	}
	return out, nil
}

// writerUnionProj dispatches on the writer's branch.
type writerUnionProj struct {
	branches map[string]projector
}

func (p *writerUnionProj) project(v any) (any, error) {
	key, val := "null", any(nil)
	if v != nil {
		m, ok := v.(map[string]any)
		if !ok || len(m) != 1 {
			return nil, fmt.Errorf("union: want nil or a one-key map[string]any, got %T", v)
		}
		for k, x := range m {
			key, val = k, x
		}
	}
	bp, ok := p.branches[key]
	if !ok {
		return nil, fmt.Errorf("union: writer has no branch %q", key)
	}
	return bp.project(val)
}

// readerUnionProj wraps a value in the reader's chosen union branch.
type readerUnionProj struct {
	key   string
	null  bool
	inner projector
}

func (p *readerUnionProj) project(v any) (any, error) {
	x, err := p.inner.project(v)
	if err != nil {
		return nil, err
	}
	if p.null {
		return nil, nil
	}
	return map[string]any{p.key: x}, nil
}

// nativeDefault converts a field default (decoded JSON, validated by Parse)
// into goavro's native form for s.
func nativeDefault(s *Schema, v any) (any, error) {
	switch s.Kind {
	case KindNull:
		return nil, nil
	case KindBoolean:
		return v, nil
	case KindInt:
		n, err := jsonInt(v)
		if err != nil {
			return nil, err
		}
		return fromRaw(s, int32(n))
	case KindLong:
		n, err := jsonInt(v)
		if err != nil {
			return nil, err
		}
		return fromRaw(s, n)
	case KindFloat:
		f, err := jsonFloat(v)
		return float32(f), err
	case KindDouble:
		return jsonFloat(v)
	case KindString, KindEnum:
		return v, nil
	case KindBytes, KindFixed:
		str, _ := v.(string)
		b := make([]byte, 0, len(str))
		for _, r := range str {
			b = append(b, byte(r))
		}
		return fromRaw(s, b)
	case KindArray:
		list, _ := v.([]any)
		out := make([]any, len(list))
		for i, it := range list {
			x, err := nativeDefault(s.Items, it)
			if err != nil {
				return nil, err
			}
			out[i] = x
		}
		return out, nil
	case KindMap:
		m, _ := v.(map[string]any)
		out := make(map[string]any, len(m))
		for k, it := range m {
			x, err := nativeDefault(s.Values, it)
			if err != nil {
				return nil, err
			}
			out[k] = x
		}
		return out, nil
	case KindRecord:
		m, _ := v.(map[string]any)
		out := make(map[string]any, len(s.Fields))
		for _, f := range s.Fields {
			fv, ok := m[f.Name]
			if !ok {
				if !f.HasDefault {
					return nil, fmt.Errorf("record %s default lacks field %q", s.Name, f.Name)
				}
				fv = f.Default
			}
			x, err := nativeDefault(f.Type, fv)
			if err != nil {
				return nil, err
			}
			out[f.Name] = x
		}
		return out, nil
	case KindUnion:
		if len(s.Branches) == 0 {
			return nil, fmt.Errorf("empty union has no default")
		}
		b := s.Branches[0]
		if b.Kind == KindNull {
			return nil, nil
		}
		x, err := nativeDefault(b, v)
		if err != nil {
			return nil, err
		}
		return map[string]any{goavroName(b): x}, nil
	}
	return nil, fmt.Errorf("no default for %s", s.describe())
}

func jsonInt(v any) (int64, error) {
	switch x := v.(type) {
	case json.Number:
		return strconv.ParseInt(string(x), 10, 64)
	case float64:
		if x != math.Trunc(x) {
			return 0, fmt.Errorf("default %v is not an integer", x)
		}
		return int64(x), nil
	case int:
		return int64(x), nil
	case int64:
		return x, nil
	}
	return 0, fmt.Errorf("default %v is not a number", v)
}

func jsonFloat(v any) (float64, error) {
	switch x := v.(type) {
	case json.Number:
		return strconv.ParseFloat(string(x), 64)
	case float64:
		return x, nil
	case int:
		return float64(x), nil
	}
	return 0, fmt.Errorf("default %v is not a number", v)
}

// cloneNative deep-copies the mutable parts (maps, slices, byte slices,
// decimals) of a native value, so callers may modify what Project returns.
func cloneNative(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, it := range x {
			out[k] = cloneNative(it)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, it := range x {
			out[i] = cloneNative(it)
		}
		return out
	case []byte:
		return append([]byte(nil), x...)
	case *big.Rat:
		return new(big.Rat).Set(x)
	}
	return v
}
