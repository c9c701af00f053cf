package schema

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// CheckCompatibility reports every way reader fails to read data written
// with writer, by the Avro 1.11 specification's schema resolution rules; an
// empty result means compatible. Paths point into the reader schema.
//
// The rules, in the specification's order ("Schema Resolution"):
//   - Both unions: every writer branch must be readable by some reader
//     branch (MISSING_UNION_BRANCH per writer branch that is not).
//     Where the reader union has a branch of the writer branch's kind (a
//     record of the same name, say), that branch's own problems are
//     reported instead, under the branch index ("/fields/x/type/1/..."),
//     since they say what to fix; Confluent reports only the missing branch.
//   - Writer union only: the reader must read every writer branch.
//   - Reader union only: some reader branch must read the writer
//     (MISSING_UNION_BRANCH).
//   - Otherwise the kinds must be equal, or the writer's promotable to the
//     reader's: int to long, float or double; long to float or double; float
//     to double; string to bytes and bytes to string (TYPE_MISMATCH).
//   - Records, enums and fixed must have the same unqualified name, or the
//     reader an alias equal to the writer's full name (NAME_MISMATCH), as
//     Avro's Java implementation and Confluent Schema Registry do.
//   - Fixed sizes must be equal (FIXED_SIZE_MISMATCH).
//   - Every writer enum symbol must be a reader symbol, unless the reader
//     enum has a default (MISSING_ENUM_SYMBOLS).
//   - Record fields are matched by name, or a reader field's alias equal to
//     a writer field's name; matched field types are checked recursively;
//     writer fields the reader lacks are ignored; a reader field the writer
//     lacks needs a default (READER_FIELD_MISSING_DEFAULT_VALUE).
//   - Arrays check items, maps check values.
//   - Logical types are resolved by their underlying types, except that two
//     decimals must have equal precision and scale (DECIMAL_MISMATCH), the
//     specification's own decimal rule, which Java's checker omits.
//
// Recursive types are checked coinductively: a (reader, writer) pair met
// again while it is being checked is assumed compatible, which is sound
// because any real difference is reported where the pair was first met.
func CheckCompatibility(reader, writer *Schema) []Incompatibility {
	c := newChecker()
	return c.check(reader, writer)
}

// pair is a (reader, writer) node pair.
type pair struct{ r, w *Schema }

// checker holds the recursion guard and memo of one compatibility check.
type checker struct {
	// active holds record pairs being checked further up the stack.
	active map[pair]bool
	// memo holds finished record pair results, paths relative to the pair.
	memo map[pair][]Incompatibility
}

func newChecker() *checker {
	return &checker{active: map[pair]bool{}, memo: map[pair][]Incompatibility{}}
}

// compatible reports whether r reads w.
func (c *checker) compatible(r, w *Schema) bool { return len(c.check(r, w)) == 0 }

// check returns the problems of reading w with r, with paths relative to r
// ("/" being r itself).
func (c *checker) check(r, w *Schema) []Incompatibility {
	if w.Kind == KindUnion {
		if r.Kind == KindUnion {
			var out []Incompatibility
			for i, wb := range w.Branches {
				if !c.compatible(r, wb) {
					out = append(out, c.noBranch(r, wb, fmt.Sprintf("writer branch %d (%s)", i, wb.describe()))...)
				}
			}
			return out
		}
		var out []Incompatibility
		for _, wb := range w.Branches {
			out = append(out, c.check(r, wb)...)
		}
		return dedupe(out)
	}
	if r.Kind == KindUnion {
		for _, rb := range r.Branches {
			if c.compatible(rb, w) {
				return nil
			}
		}
		return c.noBranch(r, w, "writer "+w.describe())
	}
	if r.Kind != w.Kind {
		if promotable(w.Kind, r.Kind) {
			return nil
		}
		return []Incompatibility{problem("", RuleTypeMismatch, "reader %s cannot read writer %s", r.describe(), w.describe())}
	}
	switch r.Kind {
	case KindArray:
		return prefix("/items", c.check(r.Items, w.Items))
	case KindMap:
		return prefix("/values", c.check(r.Values, w.Values))
	case KindFixed:
		out := checkName(r, w)
		if r.Size != w.Size {
			out = append(out, problem("/size", RuleFixedSizeMismatch,
				"reader fixed %s has size %d, writer fixed %s has size %d", r.Name, r.Size, w.Name, w.Size))
		}
		return append(out, checkDecimal(r, w)...)
	case KindEnum:
		out := checkName(r, w)
		var missing []string
		for _, sym := range w.Symbols {
			if !contains(r.Symbols, sym) {
				missing = append(missing, sym)
			}
		}
		if len(missing) > 0 && r.EnumDefault == "" {
			sort.Strings(missing)
			out = append(out, problem("/symbols", RuleMissingEnumSymbols,
				"reader enum %s lacks writer symbols [%s] and has no default", r.Name, strings.Join(missing, ", ")))
		}
		return out
	case KindRecord:
		return c.record(r, w)
	case KindBytes:
		return checkDecimal(r, w)
	}
	return nil
}

// noBranch explains why no branch of reader union r reads w (described as
// what). If r has a branch of w's kind (for a named type, one whose name
// matches, preferring the same full name) its own problems are the real
// reason and are reported, under the branch's index; otherwise it is
// MISSING_UNION_BRANCH.
func (c *checker) noBranch(r, w *Schema, what string) []Incompatibility {
	best := -1
	for i, rb := range r.Branches {
		if rb.Kind != w.Kind || (w.Kind.IsNamed() && !namesMatch(rb, w)) {
			continue
		}
		if best < 0 || rb.Name == w.Name {
			best = i
		}
	}
	if best >= 0 {
		if ps := c.check(r.Branches[best], w); len(ps) > 0 {
			return prefix("/"+strconv.Itoa(best), ps)
		}
	}
	return []Incompatibility{problem("", RuleMissingUnionBranch,
		"reader union %s has no branch that can read %s", unionDesc(r), what)}
}

func (c *checker) record(r, w *Schema) []Incompatibility {
	p := pair{r, w}
	if res, ok := c.memo[p]; ok {
		return res
	}
	if c.active[p] {
		return nil
	}
	c.active[p] = true
	out := checkName(r, w)
	for _, rf := range r.Fields {
		fp := "/fields/" + rf.Name
		wf := writerField(rf, w)
		if wf == nil {
			if !rf.HasDefault {
				out = append(out, problem(fp, RuleMissingDefault,
					"reader field %q of record %s has no default and the writer has no such field", rf.Name, r.Name))
			}
			continue
		}
		out = append(out, prefix(fp+"/type", c.check(rf.Type, wf.Type))...)
	}
	delete(c.active, p)
	c.memo[p] = out
	return out
}

// writerField finds the writer field that reader field rf reads: the one of
// the same name, else one named like an alias of rf.
func writerField(rf *Field, w *Schema) *Field {
	if f := w.Field(rf.Name); f != nil {
		return f
	}
	for _, a := range rf.Aliases {
		if f := w.Field(a); f != nil {
			return f
		}
	}
	return nil
}

// namesMatch reports whether reader named type r may read writer named type
// w: same unqualified name, or an alias of r equal to w's full name.
func namesMatch(r, w *Schema) bool {
	return r.ShortName() == w.ShortName() || contains(r.Aliases, w.Name)
}

func checkName(r, w *Schema) []Incompatibility {
	if namesMatch(r, w) {
		return nil
	}
	return []Incompatibility{problem("/name", RuleNameMismatch,
		"reader %s %s cannot read writer %s %s: names differ and no reader alias is %s", r.Kind, r.Name, w.Kind, w.Name, w.Name)}
}

// checkDecimal applies the specification's rule that two decimals match only
// if their precisions and scales do (bytes read under another scale would
// silently change value).
func checkDecimal(r, w *Schema) []Incompatibility {
	if r.LogicalType != "decimal" || w.LogicalType != "decimal" {
		return nil
	}
	if r.Precision == w.Precision && r.Scale == w.Scale {
		return nil
	}
	return []Incompatibility{problem("", RuleDecimalMismatch,
		"reader decimal(%d,%d) cannot read writer decimal(%d,%d): precision and scale must match",
		r.Precision, r.Scale, w.Precision, w.Scale)}
}

// promotable reports whether a writer value of kind w may be read as kind r.
func promotable(w, r Kind) bool {
	switch w {
	case KindInt:
		return r == KindLong || r == KindFloat || r == KindDouble
	case KindLong:
		return r == KindFloat || r == KindDouble
	case KindFloat:
		return r == KindDouble
	case KindString:
		return r == KindBytes
	case KindBytes:
		return r == KindString
	}
	return false
}

func problem(path, rule, format string, args ...any) Incompatibility {
	if path == "" {
		path = "/"
	}
	return Incompatibility{Path: path, Rule: rule, Message: fmt.Sprintf(format, args...)}
}

// prefix returns ps with seg prepended to every path.
func prefix(seg string, ps []Incompatibility) []Incompatibility {
	if len(ps) == 0 {
		return nil
	}
	out := make([]Incompatibility, len(ps))
	for i, p := range ps {
		if p.Path == "/" {
			p.Path = seg
		} else {
			p.Path = seg + p.Path
		}
		out[i] = p
	}
	return out
}

// dedupe drops repeated problems (a reader checked against several writer
// branches may fail the same way for each), keeping the first of each.
func dedupe(ps []Incompatibility) []Incompatibility {
	if len(ps) < 2 {
		return ps
	}
	seen := map[Incompatibility]bool{}
	out := ps[:0:0]
	for _, p := range ps {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

func unionDesc(u *Schema) string {
	parts := make([]string, len(u.Branches))
	for i, b := range u.Branches {
		if b.Kind.IsNamed() {
			parts[i] = b.Name
		} else {
			parts[i] = string(b.Kind)
		}
	}
	return "[" + strings.Join(parts, ",") + "]"
}
