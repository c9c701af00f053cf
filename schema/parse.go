package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"strconv"
	"strings"
)

// Parse parses and validates an Avro schema written in JSON, per the Avro
// 1.11 specification. Errors are *ParseError values naming the JSON path of
// the offending node (field names stand for their index where known, e.g.
// "/fields/address/type/items").
//
// What is checked: every type name is a primitive, a complex type or a named
// type defined before its use (including the enclosing one, for recursion);
// names, namespaces, aliases and enum symbols are well formed; no named type
// is defined twice and none is called like a primitive; record field names
// and enum symbols are unique; a union holds no union directly and no two
// branches of the same unnamed kind or the same name; fixed sizes are
// non-negative integers; the enum default is one of its symbols; every field
// default matches its type (a union default matches the first branch).
func Parse(text string) (*Schema, error) {
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, &ParseError{Path: "/", Msg: "invalid JSON: " + err.Error()}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, &ParseError{Path: "/", Msg: "invalid JSON: trailing data after the schema"}
	}
	p := parser{names: map[string]*Schema{}}
	s, err := p.parse(v, "", "")
	if err != nil {
		return nil, err
	}
	// The root is a node of its own: a primitive by name is a fresh node, and
	// a named root may be referenced inside itself, where its standalone
	// canonical form is the right one too.
	root := s
	root.text = text
	root.canonical = canonical(root)
	root.fingerprint = fingerprint64([]byte(root.canonical))
	return root, nil
}

// parser holds the names defined so far while one schema text is parsed.
type parser struct {
	// names maps full names to their definitions.
	names map[string]*Schema
}

// join appends a path segment.
func join(path, seg string) string { return path + "/" + seg }

func perr(path, format string, args ...any) error {
	if path == "" {
		path = "/"
	}
	return &ParseError{Path: path, Msg: fmt.Sprintf(format, args...)}
}

// parse turns one decoded JSON schema into a node. ns is the enclosing
// namespace (that of the nearest enclosing named type).
func (p *parser) parse(v any, ns, path string) (*Schema, error) {
	switch t := v.(type) {
	case string:
		return p.reference(t, ns, path)
	case []any:
		return p.union(t, ns, path)
	case map[string]any:
		return p.object(t, ns, path)
	case nil:
		return nil, perr(path, "schema is JSON null; want a type name, an object or an array")
	default:
		return nil, perr(path, "schema is a JSON %s; want a type name, an object or an array", jsonKind(v))
	}
}

// reference resolves a type name: a primitive, or a named type defined
// earlier. An unqualified name is looked up in the enclosing namespace first,
// then in the null namespace (as Avro's Java implementation does).
func (p *parser) reference(name, ns, path string) (*Schema, error) {
	if k, ok := primitiveKind(name); ok {
		return &Schema{Kind: k}, nil
	}
	if !strings.Contains(name, ".") && ns != "" {
		if s, ok := p.names[ns+"."+name]; ok {
			return s, nil
		}
	}
	if s, ok := p.names[name]; ok {
		return s, nil
	}
	switch name {
	case "record", "error", "enum", "fixed", "array", "map":
		return nil, perr(path, "complex type %q must be written as an object with its attributes", name)
	}
	return nil, perr(path, "unknown type %q", name)
}

func (p *parser) union(items []any, ns, path string) (*Schema, error) {
	u := &Schema{Kind: KindUnion, Branches: make([]*Schema, 0, len(items))}
	seen := map[string]int{}
	for i, it := range items {
		bp := join(path, strconv.Itoa(i))
		b, err := p.parse(it, ns, bp)
		if err != nil {
			return nil, err
		}
		if b.Kind == KindUnion {
			return nil, perr(bp, "a union may not immediately contain another union")
		}
		key := string(b.Kind)
		if b.Kind.IsNamed() {
			key = b.Name
		}
		if j, dup := seen[key]; dup {
			return nil, perr(bp, "union branches %d and %d are both %s", j, i, key)
		}
		seen[key] = i
		u.Branches = append(u.Branches, b)
	}
	return u, nil
}

func (p *parser) object(m map[string]any, ns, path string) (*Schema, error) {
	tv, ok := m["type"]
	if !ok {
		return nil, perr(path, `schema object has no "type"`)
	}
	tname, ok := tv.(string)
	if !ok {
		// {"type": {...}} or {"type": [...]}: the attribute is itself a schema.
		return p.parse(tv, ns, join(path, "type"))
	}
	var s *Schema
	var err error
	switch tname {
	case "record", "error":
		return p.record(m, ns, path)
	case "enum":
		return p.enum(m, ns, path)
	case "fixed":
		s, err = p.fixed(m, ns, path)
	case "array":
		items, ok := m["items"]
		if !ok {
			return nil, perr(path, `array has no "items"`)
		}
		it, err := p.parse(items, ns, join(path, "items"))
		if err != nil {
			return nil, err
		}
		return &Schema{Kind: KindArray, Items: it}, nil
	case "map":
		values, ok := m["values"]
		if !ok {
			return nil, perr(path, `map has no "values"`)
		}
		vs, err := p.parse(values, ns, join(path, "values"))
		if err != nil {
			return nil, err
		}
		return &Schema{Kind: KindMap, Values: vs}, nil
	default:
		k, prim := primitiveKind(tname)
		if !prim {
			// {"type": "com.example.Name"}: a reference written as an object.
			return p.reference(tname, ns, join(path, "type"))
		}
		s = &Schema{Kind: k}
	}
	if err != nil {
		return nil, err
	}
	applyLogicalType(s, m)
	return s, nil
}

// named reads and registers the name, namespace and aliases of a named type.
// It registers the node before its children are parsed so that they may
// refer to it (recursion).
func (p *parser) named(s *Schema, m map[string]any, ns, path string) (string, error) {
	nv, ok := m["name"]
	if !ok {
		return "", perr(path, `%s has no "name"`, s.Kind)
	}
	name, ok := nv.(string)
	if !ok {
		return "", perr(join(path, "name"), "name is a JSON %s; want a string", jsonKind(nv))
	}
	space := ns
	if nsv, ok := m["namespace"]; ok {
		nss, ok := nsv.(string)
		if !ok && nsv != nil {
			return "", perr(join(path, "namespace"), "namespace is a JSON %s; want a string", jsonKind(nsv))
		}
		space = nss
	}
	full := name
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		space = name[:i]
		name = name[i+1:]
	} else if space != "" {
		full = space + "." + name
	}
	if !validName(name) {
		return "", perr(join(path, "name"), "invalid name %q: want [A-Za-z_][A-Za-z0-9_]*", name)
	}
	if space != "" && !validFullName(space) {
		return "", perr(join(path, "namespace"), "invalid namespace %q: want dot-separated names", space)
	}
	if _, prim := primitiveKind(name); prim {
		return "", perr(join(path, "name"), "named type may not be called like the primitive type %q", name)
	}
	if _, dup := p.names[full]; dup {
		return "", perr(join(path, "name"), "named type %q redefined", full)
	}
	s.Name = full
	p.names[full] = s
	if av, ok := m["aliases"]; ok {
		list, ok := av.([]any)
		if !ok {
			return "", perr(join(path, "aliases"), "aliases is a JSON %s; want an array of strings", jsonKind(av))
		}
		for i, a := range list {
			as, ok := a.(string)
			if !ok || !validFullName(as) {
				return "", perr(join(join(path, "aliases"), strconv.Itoa(i)), "invalid alias %v", a)
			}
			if !strings.Contains(as, ".") && space != "" {
				as = space + "." + as
			}
			s.Aliases = append(s.Aliases, as)
		}
	}
	if d, ok := m["doc"].(string); ok {
		s.Doc = d
	}
	return space, nil
}

func (p *parser) record(m map[string]any, ns, path string) (*Schema, error) {
	s := &Schema{Kind: KindRecord}
	space, err := p.named(s, m, ns, path)
	if err != nil {
		return nil, err
	}
	fv, ok := m["fields"]
	if !ok {
		return nil, perr(path, `record %s has no "fields"`, s.Name)
	}
	list, ok := fv.([]any)
	if !ok {
		return nil, perr(join(path, "fields"), "fields is a JSON %s; want an array", jsonKind(fv))
	}
	s.Fields = make([]*Field, 0, len(list))
	seen := map[string]bool{}
	for i, raw := range list {
		fp := join(join(path, "fields"), strconv.Itoa(i))
		fm, ok := raw.(map[string]any)
		if !ok {
			return nil, perr(fp, "field is a JSON %s; want an object", jsonKind(raw))
		}
		fname, ok := fm["name"].(string)
		if !ok {
			return nil, perr(fp, `field has no string "name"`)
		}
		fp = join(join(path, "fields"), fname)
		if !validName(fname) {
			return nil, perr(fp, "invalid field name %q: want [A-Za-z_][A-Za-z0-9_]*", fname)
		}
		if seen[fname] {
			return nil, perr(fp, "duplicate field %q in record %s", fname, s.Name)
		}
		seen[fname] = true
		tv, ok := fm["type"]
		if !ok {
			return nil, perr(fp, `field %q has no "type"`, fname)
		}
		ft, err := p.parse(tv, space, join(fp, "type"))
		if err != nil {
			return nil, err
		}
		f := &Field{Name: fname, Type: ft, Order: "ascending"}
		if d, ok := fm["doc"].(string); ok {
			f.Doc = d
		}
		if ov, ok := fm["order"]; ok {
			o, _ := ov.(string)
			switch o {
			case "ascending", "descending", "ignore":
				f.Order = o
			default:
				return nil, perr(join(fp, "order"), `order %v is not "ascending", "descending" or "ignore"`, ov)
			}
		}
		if av, ok := fm["aliases"]; ok {
			al, ok := av.([]any)
			if !ok {
				return nil, perr(join(fp, "aliases"), "aliases is a JSON %s; want an array of strings", jsonKind(av))
			}
			for j, a := range al {
				as, ok := a.(string)
				if !ok || !validName(as) {
					return nil, perr(join(join(fp, "aliases"), strconv.Itoa(j)), "invalid field alias %v", a)
				}
				f.Aliases = append(f.Aliases, as)
			}
		}
		if dv, ok := fm["default"]; ok {
			if err := validateDefault(ft, dv, join(fp, "default")); err != nil {
				return nil, err
			}
			f.HasDefault, f.Default = true, dv
		}
		s.Fields = append(s.Fields, f)
	}
	return s, nil
}

func (p *parser) enum(m map[string]any, ns, path string) (*Schema, error) {
	s := &Schema{Kind: KindEnum}
	if _, err := p.named(s, m, ns, path); err != nil {
		return nil, err
	}
	sv, ok := m["symbols"]
	if !ok {
		return nil, perr(path, `enum %s has no "symbols"`, s.Name)
	}
	list, ok := sv.([]any)
	if !ok {
		return nil, perr(join(path, "symbols"), "symbols is a JSON %s; want an array of strings", jsonKind(sv))
	}
	seen := map[string]bool{}
	for i, raw := range list {
		sym, ok := raw.(string)
		sp := join(join(path, "symbols"), strconv.Itoa(i))
		if !ok || !validName(sym) {
			return nil, perr(sp, "invalid enum symbol %v: want [A-Za-z_][A-Za-z0-9_]*", raw)
		}
		if seen[sym] {
			return nil, perr(sp, "duplicate enum symbol %q", sym)
		}
		seen[sym] = true
		s.Symbols = append(s.Symbols, sym)
	}
	if dv, ok := m["default"]; ok {
		d, ok := dv.(string)
		if !ok || !seen[d] {
			return nil, perr(join(path, "default"), "enum default %v is not one of the symbols", dv)
		}
		s.EnumDefault = d
	}
	return s, nil
}

func (p *parser) fixed(m map[string]any, ns, path string) (*Schema, error) {
	s := &Schema{Kind: KindFixed}
	if _, err := p.named(s, m, ns, path); err != nil {
		return nil, err
	}
	sv, ok := m["size"]
	if !ok {
		return nil, perr(path, `fixed %s has no "size"`, s.Name)
	}
	n, ok := sv.(json.Number)
	if !ok {
		return nil, perr(join(path, "size"), "size is a JSON %s; want a non-negative integer", jsonKind(sv))
	}
	size, err := strconv.ParseInt(string(n), 10, 32)
	if err != nil || size < 0 {
		return nil, perr(join(path, "size"), "size %s is not a non-negative integer", n)
	}
	s.Size = int(size)
	return s, nil
}

// applyLogicalType records m's logicalType on s when the specification
// defines it for s's kind with valid attributes; otherwise it is ignored, as
// the specification requires of readers.
func applyLogicalType(s *Schema, m map[string]any) {
	lt, _ := m["logicalType"].(string)
	switch lt {
	case "decimal":
		if s.Kind != KindBytes && s.Kind != KindFixed {
			return
		}
		prec, ok := intAttr(m, "precision")
		if !ok || prec <= 0 {
			return
		}
		scale := 0
		if _, has := m["scale"]; has {
			if scale, ok = intAttr(m, "scale"); !ok || scale < 0 {
				return
			}
		}
		if scale > prec {
			return
		}
		if s.Kind == KindFixed && prec > maxFixedPrecision(s.Size) {
			return
		}
		s.Precision, s.Scale = prec, scale
	case "uuid":
		if s.Kind != KindString {
			return
		}
	case "date", "time-millis":
		if s.Kind != KindInt {
			return
		}
	case "time-micros", "timestamp-millis", "timestamp-micros", "local-timestamp-millis", "local-timestamp-micros":
		if s.Kind != KindLong {
			return
		}
	case "duration":
		if s.Kind != KindFixed || s.Size != 12 {
			return
		}
	default:
		return
	}
	s.LogicalType = lt
}

// maxFixedPrecision is the number of base-10 digits a two's-complement
// integer of size bytes can always hold: floor(log10(2^(8*size-1) - 1)).
func maxFixedPrecision(size int) int {
	if size <= 0 {
		return 0
	}
	if size > 1024 {
		size = 1024 // keeps the computation bounded; such sizes are absurd anyway
	}
	v := new(big.Int).Lsh(big.NewInt(1), uint(8*size-1))
	v.Sub(v, big.NewInt(1))
	return len(v.String()) - 1
}

func intAttr(m map[string]any, key string) (int, bool) {
	n, ok := m[key].(json.Number)
	if !ok {
		return 0, false
	}
	i, err := strconv.ParseInt(string(n), 10, 32)
	if err != nil {
		return 0, false
	}
	return int(i), true
}

// validateDefault checks a field default against the field's schema, as the
// specification's table of default values says: a union's default belongs to
// its first branch; bytes and fixed defaults are strings of code points
// 0-255; a record default is an object giving every field without a default.
func validateDefault(s *Schema, v any, path string) error {
	bad := func(want string) error {
		return perr(path, "default %s does not match type %s: want %s", short(v), s.describe(), want)
	}
	switch s.Kind {
	case KindNull:
		if v != nil {
			return bad("null")
		}
	case KindBoolean:
		if _, ok := v.(bool); !ok {
			return bad("true or false")
		}
	case KindInt:
		n, ok := v.(json.Number)
		if !ok {
			return bad("an integer")
		}
		if !isIntLiteral(n) {
			return bad("an integer")
		}
		if _, err := strconv.ParseInt(string(n), 10, 32); err != nil {
			return bad("an integer in the 32-bit range")
		}
	case KindLong:
		n, ok := v.(json.Number)
		if !ok {
			return bad("an integer")
		}
		if !isIntLiteral(n) {
			return bad("an integer")
		}
		if _, err := strconv.ParseInt(string(n), 10, 64); err != nil {
			return bad("an integer in the 64-bit range")
		}
	case KindFloat, KindDouble:
		n, ok := v.(json.Number)
		if !ok {
			return bad("a number")
		}
		f, err := strconv.ParseFloat(string(n), 64)
		if err != nil || (s.Kind == KindFloat && math.Abs(f) > math.MaxFloat32) {
			return bad("a number in range")
		}
	case KindString:
		if _, ok := v.(string); !ok {
			return bad("a string")
		}
	case KindBytes, KindFixed:
		str, ok := v.(string)
		if !ok {
			return bad("a string of code points 0-255")
		}
		n := 0
		for _, r := range str {
			if r > 0xFF {
				return bad("a string of code points 0-255")
			}
			n++
		}
		if s.Kind == KindFixed && n != s.Size {
			return bad(fmt.Sprintf("a string of exactly %d code points", s.Size))
		}
	case KindEnum:
		str, ok := v.(string)
		if !ok || !contains(s.Symbols, str) {
			return bad("one of the symbols " + strings.Join(s.Symbols, ", "))
		}
	case KindArray:
		list, ok := v.([]any)
		if !ok {
			return bad("an array")
		}
		for i, it := range list {
			if err := validateDefault(s.Items, it, join(path, strconv.Itoa(i))); err != nil {
				return err
			}
		}
	case KindMap:
		obj, ok := v.(map[string]any)
		if !ok {
			return bad("an object")
		}
		for k, it := range obj {
			if err := validateDefault(s.Values, it, join(path, k)); err != nil {
				return err
			}
		}
	case KindRecord:
		obj, ok := v.(map[string]any)
		if !ok {
			return bad("an object")
		}
		for _, f := range s.Fields {
			fv, ok := obj[f.Name]
			if !ok {
				if !f.HasDefault {
					return perr(join(path, f.Name), "default for record %s lacks field %q, which has no default", s.Name, f.Name)
				}
				continue
			}
			if err := validateDefault(f.Type, fv, join(path, f.Name)); err != nil {
				return err
			}
		}
	case KindUnion:
		if len(s.Branches) == 0 {
			return bad("nothing: an empty union has no values")
		}
		if err := validateDefault(s.Branches[0], v, path); err != nil {
			return perr(path, "default %s does not match the union's first branch %s (a union default must)", short(v), s.Branches[0].describe())
		}
	}
	return nil
}

// isIntLiteral reports whether a JSON number has no fraction or exponent.
func isIntLiteral(n json.Number) bool { return !strings.ContainsAny(string(n), ".eE") }

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// validName reports whether s matches [A-Za-z_][A-Za-z0-9_]*.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// validFullName reports whether s is dot-separated valid names.
func validFullName(s string) bool {
	for _, part := range strings.Split(s, ".") {
		if !validName(part) {
			return false
		}
	}
	return true
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case json.Number, float64:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

// short renders a JSON value for an error message, truncated.
func short(v any) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Sprint(v)
	}
	s := strings.TrimSpace(buf.String())
	if len(s) > 40 {
		s = s[:37] + "..."
	}
	return s
}

func itoa(i int) string { return strconv.Itoa(i) }
