package verify

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestInterleave(t *testing.T) {
	split := func(s string) []string { return strings.Fields(s) }
	tests := []struct {
		name string
		got  string
		want []string
		// ok, or else the position where the deepest attempt stopped and
		// each sequence's next position then.
		ok   bool
		at   int
		next []int
	}{
		{name: "one sequence", got: "1 2 3", want: []string{"1 2 3"}, ok: true},
		{name: "one sequence out of order", got: "1 3 2", want: []string{"1 2 3"}, at: 1, next: []int{1}},
		{name: "two sequences, one after the other", got: "1 2 5 4", want: []string{"1 2", "5 4"}, ok: true},
		{name: "two sequences interleaved", got: "5 1 4 2", want: []string{"1 2", "5 4"}, ok: true},
		{name: "order within a sequence broken", got: "2 5 1 4", want: []string{"1 2", "5 4"}, at: 0, next: []int{0, 0}},
		{
			// Taking the first a from the first sequence leaves b and a
			// as heads, and c fits neither: the search must go back.
			name: "a first guess that fails later", got: "a c a b", want: []string{"a b", "a c"}, ok: true,
		},
		{
			name: "counts: every sequence starts 1, 2, 3", got: "1 1 2 1 3 2 2 3 4",
			want: []string{"1 2 3 4", "1 2", "1 2 3"}, ok: true,
		},
		{
			// 3 of the second sequence would need its 2 first.
			name: "counts: a 3 too early", got: "1 1 2 3 3 2",
			want: []string{"1 2 3", "1 2 3"}, at: 4, next: []int{3, 1},
		},
		{name: "equal sequences", got: "7 7 7 7", want: []string{"7 7", "7 7"}, ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := make([][]string, len(tt.want))
			for i, w := range tt.want {
				want[i] = split(w)
			}
			res := interleave(split(tt.got), want, 1000)
			if res.ok != tt.ok || res.exhausted {
				t.Fatalf("interleave = %+v, want ok %v", res, tt.ok)
			}
			if !tt.ok && (res.at != tt.at || !slices.Equal(res.next, tt.next)) {
				t.Errorf("stopped at %d with next %v, want %d with %v", res.at, res.next, tt.at, tt.next)
			}
		})
	}
}

// TestInterleaveCounts: the count topic of a key spread over four
// partitions, about 300 records each, every sequence 1, 2, 3, ...: the most
// ambiguous output the workload has. The search stays far below its budget
// whether the interleaving exists or not.
func TestInterleaveCounts(t *testing.T) {
	const n = 300
	lengths := []int{n, n - 20, n + 15, n - 7}
	rng := rand.New(rand.NewPCG(3, 4))
	want := make([][]string, len(lengths))
	total := 0
	for j, l := range lengths {
		for i := 1; i <= l; i++ {
			want[j] = append(want[j], strconv.Itoa(i))
		}
		total += l
	}
	var got []string
	idx := make([]int, len(want))
	for len(got) < total {
		j := rng.IntN(len(want))
		if idx[j] < len(want[j]) {
			got = append(got, want[j][idx[j]])
			idx[j]++
		}
	}
	const budget = 10000
	if res := interleave(got, want, budget); !res.ok {
		t.Fatalf("a random interleaving of four counts: %+v", res)
	}
	// Move the first n to the front: no sequence can have reached it.
	i := slices.Index(got, strconv.Itoa(n))
	bad := append([]string{got[i]}, slices.Delete(slices.Clone(got), i, i+1)...)
	if res := interleave(bad, want, budget); res.ok || res.exhausted || res.at != 0 {
		t.Fatalf("count %d first: %+v, want a failure at 0", n, res)
	}
}

// TestInterleaveBudget: an order that cannot be decided within the budget is
// reported as exhausted, never as proven.
func TestInterleaveBudget(t *testing.T) {
	// Three sequences of 40 x's, each ending in its own letter; got has one
	// x too few before a, which the search learns only after trying the
	// ways of taking the x's from the three.
	const n = 40
	xs := strings.Repeat("x ", n)
	want := [][]string{strings.Fields(xs + "a"), strings.Fields(xs + "b"), strings.Fields(xs + "c")}
	got := strings.Fields(strings.Repeat("x ", 3*n-1) + "a x b c")
	got[n-1], got[3*n-1] = got[3*n-1], got[n-1] // a after n-1 x's
	res := interleave(got, want, 100)
	if res.ok || !res.exhausted {
		t.Fatalf("interleave = %+v, want the budget exhausted", res)
	}
	if res := interleave(got, want, 1<<20); res.ok || res.exhausted {
		t.Fatalf("with a larger budget: %+v, want a decided failure", res)
	}
}
