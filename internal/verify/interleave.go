package verify

import (
	"encoding/binary"
	"slices"
)

// Interleavings: the order Check can prove for a key spread over several input
// partitions.
//
// Each input partition is processed in order by one task at a time, so the
// outputs a key gets from one input partition keep that partition's order;
// nothing orders the outputs of two partitions against each other. A key's
// observed records are correct if they are an interleaving (a shuffle) of one
// expected sequence per input partition: every sequence appears in order, and
// nothing else.
//
// Deciding that is a search: when several sequences' next records equal the
// observed one (every count starts 1, 2, 3, ...; min and max repeat), either
// may have produced it, and a wrong guess shows only later. The search tries
// the candidates in turn and remembers the states (a position in every
// sequence) from which no interleaving exists, so a state is explored once;
// candidates whose remaining sequences are equal are interchangeable and
// tried once. The states are bounded by the product of the sequences'
// lengths, but ties are rare in real data (sums and echoes carry the
// values), and the count's states are at most the permutations of the
// partitions. interleaveBudget bounds the search all the same; past it the
// order is reported as not proven, never as proven.

// interleaveBudget is the most branching states one key's search explores.
const interleaveBudget = 1 << 20

// interleaving is the outcome of interleave.
type interleaving struct {
	ok        bool
	exhausted bool // the budget ran out before an answer
	// at is the position in got where the deepest attempt stopped: no
	// sequence's next record (next[j] is sequence j's position then) was
	// got[at]. Set when neither ok nor exhausted.
	at   int
	next []int
}

// interleave reports whether got is an interleaving of the sequences in want.
// The caller has checked that got and want hold the same multiset, so got is
// as long as the sequences together.
func interleave(got []string, want [][]string, budget int) interleaving {
	x := &interleaver{got: got, want: want, idx: make([]int, len(want)), failed: map[string]struct{}{}, budget: budget, deepest: -1}
	if x.search(0) {
		return interleaving{ok: true}
	}
	if x.exhausted {
		return interleaving{exhausted: true}
	}
	return interleaving{at: x.deepest, next: x.deepestIdx}
}

type interleaver struct {
	got        []string
	want       [][]string
	idx        []int // next position in each sequence
	failed     map[string]struct{}
	steps      int
	budget     int
	exhausted  bool
	deepest    int
	deepestIdx []int
}

// search extends the interleaving from got[pos:], with idx consumed so far;
// it restores idx before returning false.
func (x *interleaver) search(pos int) bool {
	var forced []int // sequences advanced without a choice, to undo on failure
	undo := func() {
		for _, j := range forced {
			x.idx[j]--
		}
	}
	var cands []int
	for {
		if pos == len(x.got) {
			return true // the lengths agree: every sequence is consumed
		}
		cands = x.candidates(pos, cands[:0])
		if len(cands) == 0 {
			if pos > x.deepest {
				x.deepest, x.deepestIdx = pos, slices.Clone(x.idx)
			}
			undo()
			return false
		}
		if len(cands) > 1 {
			break
		}
		x.idx[cands[0]]++
		forced = append(forced, cands[0])
		pos++
	}
	state := x.stateKey()
	if _, ok := x.failed[state]; ok {
		undo()
		return false
	}
	if x.steps++; x.steps > x.budget {
		x.exhausted = true
		undo()
		return false
	}
	for _, j := range cands {
		x.idx[j]++
		ok := x.search(pos + 1)
		x.idx[j]--
		if ok {
			return true
		}
		if x.exhausted {
			undo()
			return false
		}
	}
	x.failed[state] = struct{}{}
	undo()
	return false
}

// candidates appends to dst the sequences whose next record is got[pos],
// leaving out any whose remainder equals an earlier candidate's (choosing
// either leads to the same states up to renaming).
func (x *interleaver) candidates(pos int, dst []int) []int {
	for j, seq := range x.want {
		i := x.idx[j]
		if i >= len(seq) || seq[i] != x.got[pos] {
			continue
		}
		dup := false
		for _, c := range dst {
			if slices.Equal(x.want[c][x.idx[c]:], seq[i:]) {
				dup = true
				break
			}
		}
		if !dup {
			dst = append(dst, j)
		}
	}
	return dst
}

// stateKey encodes idx as a map key.
func (x *interleaver) stateKey() string {
	b := make([]byte, 0, 4*len(x.idx))
	for _, i := range x.idx {
		b = binary.LittleEndian.AppendUint32(b, uint32(i))
	}
	return string(b)
}
