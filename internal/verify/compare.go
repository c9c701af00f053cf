package verify

import "slices"

// mismatchKind classifies how an observed sequence of output records departs
// from the expected one, so that a violation names the fault (a duplicate, a
// lost record, a wrong value) instead of only the first index that differs.
type mismatchKind int

const (
	// extra: got has one record more than want, at index at of got.
	extra mismatchKind = iota + 1
	// duplicate: an extra record equal to the one before it (index at of got).
	duplicate
	// missing: got lacks want[at] and is otherwise equal.
	missing
	// swapped: got[at] and got[at+1] are want[at+1] and want[at].
	swapped
	// duplicateRun: got[at:at+d] repeats the d records before it, d =
	// len(got)-len(want) > 1, and got is otherwise equal to want: a batch
	// written twice.
	duplicateRun
	// extraRun: d = len(got)-len(want) > 1 records inserted at at.
	extraRun
	// missingRun: d = len(want)-len(got) > 1 records of want, from at, are
	// absent: a batch lost.
	missingRun
	// different: got[at] != want[at], and none of the above explains it.
	different
)

// mismatch is the first departure of got from want.
type mismatch struct {
	kind mismatchKind
	at   int
}

// compare returns how got departs from want, or ok == false when they are
// equal. Single faults are recognized exactly: one record extra or
// duplicated, one run of records extra, duplicated or missing, or two adjacent
// records swapped. Anything else is reported at the first index that differs.
func compare[T comparable](got, want []T) (m mismatch, differs bool) {
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	if i == len(got) && i == len(want) {
		return mismatch{}, false
	}
	d := len(got) - len(want)
	switch {
	case d == 1 && slices.Equal(got[i+1:], want[i:]):
		if i > 0 && got[i] == got[i-1] {
			return mismatch{duplicate, i}, true
		}
		return mismatch{extra, i}, true
	case d == -1 && slices.Equal(got[i:], want[i+1:]):
		return mismatch{missing, i}, true
	case d == 0 && i+1 < len(got) &&
		got[i] == want[i+1] && got[i+1] == want[i] && slices.Equal(got[i+2:], want[i+2:]):
		return mismatch{swapped, i}, true
	case d > 1 && slices.Equal(got[i+d:], want[i:]):
		if i >= d && slices.Equal(got[i:i+d], got[i-d:i]) {
			return mismatch{duplicateRun, i}, true
		}
		return mismatch{extraRun, i}, true
	case d < -1 && slices.Equal(got[i:], want[i-d:]):
		return mismatch{missingRun, i}, true
	}
	return mismatch{different, i}, true
}
