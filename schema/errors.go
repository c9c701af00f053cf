package schema

import (
	"errors"
	"fmt"
	"strings"
)

// ParseError is returned by Parse for a schema text that is not valid JSON or
// not a valid Avro schema.
type ParseError struct {
	// Path is a JSON-pointer-like path to the offending node; record fields
	// are named, e.g. "/fields/address/type/items".
	Path string
	// Msg says what is wrong.
	Msg string
}

// Error returns "schema: <path>: <message>".
func (e *ParseError) Error() string { return "schema: " + e.Path + ": " + e.Msg }

// ErrIncompatible is matched (errors.Is) by every error that reports a
// reader schema unable to read a writer's data: *IncompatibilityError and the
// errors of Resolve.
var ErrIncompatible = errors.New("schema: incompatible")

// Incompatibility is one way a reader schema fails to read data written with
// a writer schema.
type Incompatibility struct {
	// Path is a JSON-pointer-like path into the READER schema, record fields
	// named, e.g. "/fields/address/type/fields/zip/type"; "/" is the root.
	Path string
	// Rule is a short stable id. Where Avro's Java SchemaIncompatibilityType
	// has a name for the rule it is that name: TYPE_MISMATCH,
	// READER_FIELD_MISSING_DEFAULT_VALUE, MISSING_ENUM_SYMBOLS,
	// MISSING_UNION_BRANCH, NAME_MISMATCH, FIXED_SIZE_MISMATCH. Ours:
	// DECIMAL_MISMATCH (the specification's decimal resolution rule, which
	// Java does not check), INVALID_LEVEL and MISSING_SCHEMA (CheckLevel
	// misuse).
	Rule string
	// Message is a human sentence, e.g. "reader int cannot read writer long".
	Message string
}

// The rule ids of Incompatibility.Rule.
const (
	RuleTypeMismatch       = "TYPE_MISMATCH"
	RuleMissingDefault     = "READER_FIELD_MISSING_DEFAULT_VALUE"
	RuleMissingEnumSymbols = "MISSING_ENUM_SYMBOLS"
	RuleMissingUnionBranch = "MISSING_UNION_BRANCH"
	RuleNameMismatch       = "NAME_MISMATCH"
	RuleFixedSizeMismatch  = "FIXED_SIZE_MISMATCH"
	RuleDecimalMismatch    = "DECIMAL_MISMATCH"
	RuleInvalidLevel       = "INVALID_LEVEL"
	RuleMissingSchema      = "MISSING_SCHEMA"
)

// String returns "<path>: <message> (<RULE>)".
func (i Incompatibility) String() string {
	return i.Path + ": " + i.Message + " (" + i.Rule + ")"
}

// IncompatibilityError is what the runner returns when a sink schema may not
// be registered under a subject: it names the subject, the subject's
// compatibility level and every problem found. It matches ErrIncompatible.
type IncompatibilityError struct {
	Subject  string
	Level    Level
	Problems []Incompatibility
}

// Error names the subject, the level, and every problem's path and rule.
func (e *IncompatibilityError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "schema: subject %q: candidate schema is incompatible at level %s", e.Subject, e.Level)
	writeProblems(&b, e.Problems)
	return b.String()
}

// Unwrap lets errors.Is(err, ErrIncompatible) hold.
func (e *IncompatibilityError) Unwrap() error { return ErrIncompatible }

// ResolveError is returned by Resolve when the reader cannot read the writer.
type ResolveError struct {
	Reader, Writer string // the two schemas' canonical forms
	Problems       []Incompatibility
}

// Error names both schemas and every problem.
func (e *ResolveError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "schema: reader %s cannot read writer %s", e.Reader, e.Writer)
	writeProblems(&b, e.Problems)
	return b.String()
}

// Unwrap lets errors.Is(err, ErrIncompatible) hold.
func (e *ResolveError) Unwrap() error { return ErrIncompatible }

func writeProblems(b *strings.Builder, ps []Incompatibility) {
	if len(ps) == 0 {
		return
	}
	fmt.Fprintf(b, " (%d problem", len(ps))
	if len(ps) > 1 {
		b.WriteString("s")
	}
	b.WriteString(")")
	for i, p := range ps {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(p.String())
	}
}
