package declare

import (
	"fmt"
	"sort"
	"strings"
)

// Pos is a place in a topology file: 1-based line and column.
type Pos struct {
	File         string
	Line, Column int
}

func (p Pos) String() string {
	if p.Line == 0 {
		return p.File
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Column)
}

// Problem is one thing wrong with a file: where, what is wrong and, where it
// helps, what was expected.
type Problem struct {
	Pos Pos
	Msg string
}

func (p Problem) String() string { return p.Pos.String() + ": " + p.Msg }

// Errors is every problem found in a file, in file order. Load returns it
// (as error) when there is at least one; nothing should run then.
type Errors []Problem

func (e Errors) Error() string {
	var sb strings.Builder
	for i, p := range e {
		if i > 0 {
			sb.WriteByte('\n')
		}
		sb.WriteString(p.String())
	}
	return sb.String()
}

// problems collects Problems while a file is read.
type problems struct{ list Errors }

func (ps *problems) add(pos Pos, format string, args ...any) {
	ps.list = append(ps.list, Problem{Pos: pos, Msg: fmt.Sprintf(format, args...)})
}

// err returns the problems sorted by position (stable for one position), or
// nil.
func (ps *problems) err() error {
	if len(ps.list) == 0 {
		return nil
	}
	sort.SliceStable(ps.list, func(i, j int) bool {
		a, b := ps.list[i].Pos, ps.list[j].Pos
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
	return ps.list
}
