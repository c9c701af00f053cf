package verify

import "testing"

func TestCompare(t *testing.T) {
	tests := []struct {
		name      string
		got, want []int
		kind      mismatchKind // 0: equal
		at        int
	}{
		{"equal", []int{1, 2, 3}, []int{1, 2, 3}, 0, 0},
		{"both empty", nil, nil, 0, 0},
		{"duplicate", []int{1, 2, 2, 3}, []int{1, 2, 3}, duplicate, 2},
		{"duplicate of the last", []int{1, 2, 3, 3}, []int{1, 2, 3}, duplicate, 3},
		{"duplicate in a run of equal values", []int{5, 5, 5, 6}, []int{5, 5, 6}, duplicate, 2},
		{"extra in the middle", []int{1, 9, 2, 3}, []int{1, 2, 3}, extra, 1},
		{"extra first", []int{9, 1, 2}, []int{1, 2}, extra, 0},
		{"extra last", []int{1, 2, 9}, []int{1, 2}, extra, 2},
		{"missing in the middle", []int{1, 3}, []int{1, 2, 3}, missing, 1},
		{"missing first", []int{2, 3}, []int{1, 2, 3}, missing, 0},
		{"missing last", []int{1, 2}, []int{1, 2, 3}, missing, 2},
		{"missing only", nil, []int{1}, missing, 0},
		{"swapped", []int{1, 3, 2, 4}, []int{1, 2, 3, 4}, swapped, 1},
		{"swapped last two", []int{2, 1}, []int{1, 2}, swapped, 0},
		{"extra tail", []int{1, 2, 3, 4}, []int{1, 2}, extraRun, 2},
		{"extra tail, nothing wanted", []int{1, 2}, nil, extraRun, 0},
		{"extra run in the middle", []int{1, 8, 9, 2}, []int{1, 2}, extraRun, 1},
		{"duplicated run", []int{1, 2, 3, 2, 3, 4}, []int{1, 2, 3, 4}, duplicateRun, 3},
		{"duplicated run at the end", []int{1, 2, 3, 2, 3}, []int{1, 2, 3}, duplicateRun, 3},
		{"missing tail", []int{1}, []int{1, 2, 3}, missingRun, 1},
		{"missing run in the middle", []int{1, 4}, []int{1, 2, 3, 4}, missingRun, 1},
		{"nothing got", nil, []int{1, 2}, missingRun, 0},
		{"different", []int{1, 7, 3}, []int{1, 2, 3}, different, 1},
		{"different and longer", []int{1, 7, 8, 9, 10}, []int{1, 2, 3}, different, 1},
		{"rotated", []int{2, 3, 1}, []int{1, 2, 3}, different, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, differs := compare(tt.got, tt.want)
			if differs != (tt.kind != 0) {
				t.Fatalf("compare(%v, %v) differs = %v, want %v", tt.got, tt.want, differs, tt.kind != 0)
			}
			if differs && (m.kind != tt.kind || m.at != tt.at) {
				t.Errorf("compare(%v, %v) = kind %d at %d, want kind %d at %d", tt.got, tt.want, m.kind, m.at, tt.kind, tt.at)
			}
		})
	}
}
