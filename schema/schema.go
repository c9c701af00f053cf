package schema

import (
	"strings"
)

// Kind is the Avro type of a schema node: one of the eight primitive types
// or the six complex types.
type Kind string

// The Avro 1.11 kinds. KindRecord also covers the protocol-only "error" type,
// which the specification defines as a record.
const (
	KindNull    Kind = "null"
	KindBoolean Kind = "boolean"
	KindInt     Kind = "int"
	KindLong    Kind = "long"
	KindFloat   Kind = "float"
	KindDouble  Kind = "double"
	KindBytes   Kind = "bytes"
	KindString  Kind = "string"
	KindRecord  Kind = "record"
	KindEnum    Kind = "enum"
	KindArray   Kind = "array"
	KindMap     Kind = "map"
	KindUnion   Kind = "union"
	KindFixed   Kind = "fixed"
)

// primitiveKind returns the primitive kind named by s, if s names one.
func primitiveKind(s string) (Kind, bool) {
	switch Kind(s) {
	case KindNull, KindBoolean, KindInt, KindLong, KindFloat, KindDouble, KindBytes, KindString:
		return Kind(s), true
	}
	return "", false
}

// IsNamed reports whether k is a named type (record, enum or fixed): the
// kinds that have a full name, aliases, and may be referenced by name.
func (k Kind) IsNamed() bool {
	return k == KindRecord || k == KindEnum || k == KindFixed
}

// Schema is one node of a parsed Avro schema. The value Parse returns is the
// root; Fields, Items, Values and Branches lead to the nested nodes.
//
// A named type (record, enum, fixed) is one node however often it is
// referenced: a reference by name yields the same *Schema as its definition,
// so a recursive type (a linked list) is a cycle in the graph. Walk it with a
// visited set.
//
// A Schema is immutable after Parse and safe for concurrent use.
type Schema struct {
	// Kind is the Avro type of this node.
	Kind Kind
	// Name is the full name (namespace.name) of a named type; empty otherwise.
	Name string
	// Aliases are the full names of a named type's aliases, already resolved
	// against its namespace as the specification says.
	Aliases []string
	// Doc is the documentation attribute, if any.
	Doc string
	// Fields are a record's fields, in order.
	Fields []*Field
	// Symbols are an enum's symbols, in order.
	Symbols []string
	// EnumDefault is the enum's default symbol (used by a reader when the
	// writer's symbol is unknown to it); empty when there is none.
	EnumDefault string
	// Size is a fixed's size in bytes.
	Size int
	// Items is an array's element schema.
	Items *Schema
	// Values is a map's value schema.
	Values *Schema
	// Branches are a union's member schemas, in order.
	Branches []*Schema
	// LogicalType is the logical type annotating this node when it is one the
	// specification defines and is valid for the node (decimal with a valid
	// precision and scale on bytes or fixed, uuid on string, date and
	// time-millis on int, time-micros, timestamp-* and local-timestamp-* on
	// long, duration on fixed(12)). Invalid or unknown logical types are
	// ignored, as the specification requires, and leave this empty.
	LogicalType string
	// Precision and Scale are a decimal's attributes.
	Precision, Scale int

	// text is the JSON given to Parse; set on the root only.
	text string
	// canonical and fingerprint are computed once by Parse for the root.
	canonical   string
	fingerprint uint64
}

// Field is one field of a record schema.
type Field struct {
	// Name is the field name.
	Name string
	// Aliases are alternative names a reader accepts for a writer's field.
	Aliases []string
	// Doc is the documentation attribute, if any.
	Doc string
	// Type is the field's schema.
	Type *Schema
	// HasDefault reports whether the field declares a default value.
	HasDefault bool
	// Default is the declared default as decoded JSON (numbers as
	// json.Number), already validated against Type. Meaningful only when
	// HasDefault is true; a JSON null default is nil.
	Default any
	// Order is the sort order attribute: "ascending" (the default),
	// "descending" or "ignore".
	Order string
}

// ShortName returns the unqualified name of a named type: the part of Name
// after the last dot.
func (s *Schema) ShortName() string {
	if i := strings.LastIndexByte(s.Name, '.'); i >= 0 {
		return s.Name[i+1:]
	}
	return s.Name
}

// Namespace returns the namespace of a named type: the part of Name before
// the last dot, or "" for the null namespace.
func (s *Schema) Namespace() string {
	if i := strings.LastIndexByte(s.Name, '.'); i >= 0 {
		return s.Name[:i]
	}
	return ""
}

// Field returns the record field called name, or nil.
func (s *Schema) Field(name string) *Field {
	for _, f := range s.Fields {
		if f.Name == name {
			return f
		}
	}
	return nil
}

// String returns the JSON text given to Parse, unchanged. For a nested node,
// which has no text of its own, it returns the node's canonical form.
func (s *Schema) String() string {
	if s.text != "" {
		return s.text
	}
	return s.Canonical()
}

// describe names a node for messages: the kind, with the full name of a named
// type and the logical type of an annotated one.
func (s *Schema) describe() string {
	switch {
	case s.Kind.IsNamed():
		return string(s.Kind) + " " + s.Name
	case s.LogicalType == "decimal":
		return string(s.Kind) + " (decimal(" + itoa(s.Precision) + "," + itoa(s.Scale) + "))"
	case s.LogicalType != "":
		return string(s.Kind) + " (" + s.LogicalType + ")"
	}
	return string(s.Kind)
}
