package schema

import (
	"fmt"
	"strings"
)

// Level is a subject's compatibility level, with Confluent Schema Registry's
// names and meanings.
type Level string

// The seven levels. "Latest" is the last schema of the subject's history;
// "reads" means CheckCompatibility(reader, writer) is empty.
const (
	// None: any schema may follow any other.
	None Level = "NONE"
	// Backward: the candidate reads data written with the latest schema, so
	// consumers can upgrade first. Confluent's default.
	Backward Level = "BACKWARD"
	// BackwardTransitive: the candidate reads data written with every
	// earlier schema.
	BackwardTransitive Level = "BACKWARD_TRANSITIVE"
	// Forward: the latest schema reads data written with the candidate, so
	// producers can upgrade first.
	Forward Level = "FORWARD"
	// ForwardTransitive: every earlier schema reads the candidate's data.
	ForwardTransitive Level = "FORWARD_TRANSITIVE"
	// Full: both Backward and Forward against the latest.
	Full Level = "FULL"
	// FullTransitive: both directions against every earlier schema.
	FullTransitive Level = "FULL_TRANSITIVE"
)

// Levels lists the seven levels, from the loosest.
func Levels() []Level {
	return []Level{None, Backward, BackwardTransitive, Forward, ForwardTransitive, Full, FullTransitive}
}

// ParseLevel parses a level name, case-insensitively and ignoring
// surrounding space; the error names the valid levels.
func ParseLevel(s string) (Level, error) {
	want := Level(strings.ToUpper(strings.TrimSpace(s)))
	for _, l := range Levels() {
		if l == want {
			return l, nil
		}
	}
	names := make([]string, 0, 7)
	for _, l := range Levels() {
		names = append(names, string(l))
	}
	return "", fmt.Errorf("schema: unknown compatibility level %q: want one of %s", s, strings.Join(names, ", "))
}

// backward and forward report which directions a level checks; transitive
// whether against every earlier schema rather than the latest only.
func (l Level) directions() (backward, forward, transitive, ok bool) {
	switch l {
	case None:
		return false, false, false, true
	case Backward:
		return true, false, false, true
	case BackwardTransitive:
		return true, false, true, true
	case Forward:
		return false, true, false, true
	case ForwardTransitive:
		return false, true, true, true
	case Full:
		return true, true, false, true
	case FullTransitive:
		return true, true, true, true
	}
	return false, false, false, false
}

// CheckLevel checks candidate against a subject's history, existing, oldest
// first, with Confluent Schema Registry's meaning of level: BACKWARD, the
// candidate (reader) reads data written with the latest; FORWARD, the latest
// (reader) reads data written with the candidate; FULL, both; the
// _TRANSITIVE levels check every earlier schema, not only the latest; NONE
// always passes, as does an empty history.
//
// Each problem's Message starts with the version it concerns (its 1-based
// index in existing) and the direction; backward problems have paths into the
// candidate, forward problems paths into that existing version. Problems come
// in version order, backward before forward for each. An unknown level yields
// one INVALID_LEVEL problem and a nil schema one MISSING_SCHEMA problem, so
// that misuse fails closed.
func CheckLevel(level Level, existing []*Schema, candidate *Schema) []Incompatibility {
	backward, forward, transitive, ok := level.directions()
	if !ok {
		return []Incompatibility{problem("", RuleInvalidLevel, "unknown compatibility level %q", string(level))}
	}
	if level == None || len(existing) == 0 {
		return nil
	}
	if candidate == nil {
		return []Incompatibility{problem("", RuleMissingSchema, "no candidate schema")}
	}
	first := len(existing) - 1
	if transitive {
		first = 0
	}
	var out []Incompatibility
	for i := first; i < len(existing); i++ {
		old := existing[i]
		v := i + 1
		if old == nil {
			out = append(out, problem("", RuleMissingSchema, "version %d: no schema", v))
			continue
		}
		if backward {
			for _, p := range CheckCompatibility(candidate, old) {
				p.Message = fmt.Sprintf("version %d, backward (new schema reads data written with version %d): %s", v, v, p.Message)
				out = append(out, p)
			}
		}
		if forward {
			for _, p := range CheckCompatibility(old, candidate) {
				p.Message = fmt.Sprintf("version %d, forward (version %d reads data written with new schema): %s", v, v, p.Message)
				out = append(out, p)
			}
		}
	}
	return out
}
