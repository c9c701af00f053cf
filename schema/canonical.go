package schema

import (
	"strconv"
	"strings"
)

// Canonical returns the schema's Parsing Canonical Form, as the Avro
// specification defines it: primitives in their simple form ("int", never
// {"type":"int"}, logical-type annotations dropped) [PRIMITIVES]; full names
// in every "name" and every reference, namespace attributes removed
// [FULLNAMES]; only type, name, fields, symbols, items, values and size kept
// (doc, aliases, defaults, order, logicalType and custom attributes dropped)
// [STRIP]; keys in the order name, type, fields, symbols, items, values, size
// [ORDER]; strings unescaped [STRINGS]; integers without quotes or leading
// zeros [INTEGERS]; no whitespace [WHITESPACE]. A named type is written out
// at its first occurrence and by full name after.
//
// Two schemas with the same canonical form read and write the same bytes.
func (s *Schema) Canonical() string {
	if s.canonical != "" {
		return s.canonical
	}
	return canonical(s)
}

// Fingerprint returns the CRC-64-AVRO fingerprint (the specification's
// 64-bit Rabin fingerprint) of the canonical form. Avro's published test
// vectors print it as a signed int64: "int" is 8247732601305521295.
func (s *Schema) Fingerprint() uint64 {
	if s.canonical != "" {
		return s.fingerprint
	}
	return fingerprint64([]byte(canonical(s)))
}

func canonical(s *Schema) string {
	var b strings.Builder
	writeCanonical(&b, s, map[*Schema]bool{})
	return b.String()
}

func writeCanonical(b *strings.Builder, s *Schema, seen map[*Schema]bool) {
	if s.Kind.IsNamed() {
		if seen[s] {
			writeString(b, s.Name)
			return
		}
		seen[s] = true
	}
	switch s.Kind {
	case KindRecord:
		b.WriteString(`{"name":`)
		writeString(b, s.Name)
		b.WriteString(`,"type":"record","fields":[`)
		for i, f := range s.Fields {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(`{"name":`)
			writeString(b, f.Name)
			b.WriteString(`,"type":`)
			writeCanonical(b, f.Type, seen)
			b.WriteByte('}')
		}
		b.WriteString("]}")
	case KindEnum:
		b.WriteString(`{"name":`)
		writeString(b, s.Name)
		b.WriteString(`,"type":"enum","symbols":[`)
		for i, sym := range s.Symbols {
			if i > 0 {
				b.WriteByte(',')
			}
			writeString(b, sym)
		}
		b.WriteString("]}")
	case KindFixed:
		b.WriteString(`{"name":`)
		writeString(b, s.Name)
		b.WriteString(`,"type":"fixed","size":`)
		b.WriteString(strconv.Itoa(s.Size))
		b.WriteByte('}')
	case KindArray:
		b.WriteString(`{"type":"array","items":`)
		writeCanonical(b, s.Items, seen)
		b.WriteByte('}')
	case KindMap:
		b.WriteString(`{"type":"map","values":`)
		writeCanonical(b, s.Values, seen)
		b.WriteByte('}')
	case KindUnion:
		b.WriteByte('[')
		for i, br := range s.Branches {
			if i > 0 {
				b.WriteByte(',')
			}
			writeCanonical(b, br, seen)
		}
		b.WriteByte(']')
	default:
		writeString(b, string(s.Kind))
	}
}

// writeString writes a JSON string literal. Names and symbols are validated
// identifiers, so no escaping is ever needed; the quoting stays correct for
// any text regardless, escaping only what JSON requires.
func writeString(b *strings.Builder, s string) {
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20:
			b.WriteString(`\u00`)
			b.WriteByte("0123456789abcdef"[r>>4])
			b.WriteByte("0123456789abcdef"[r&0xF])
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
}

// crc64Empty is the CRC-64-AVRO initial value and polynomial, from the
// specification's "Schema Fingerprints" section.
const crc64Empty uint64 = 0xc15d213aa4d7a795

// fingerprint64 computes CRC-64-AVRO bit by bit. The specification's version
// looks each byte up in a 256-entry table built from the same recurrence;
// doing the eight steps inline gives the same result without a package-level
// table, and Parse computes it once per schema.
func fingerprint64(buf []byte) uint64 {
	fp := crc64Empty
	for _, c := range buf {
		fp ^= uint64(c)
		for range 8 {
			fp = (fp >> 1) ^ (crc64Empty & -(fp & 1))
		}
	}
	return fp
}
