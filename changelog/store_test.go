package changelog

import (
	"bytes"
	"errors"
	"slices"
	"testing"
)

func TestStoreReadYourWrites(t *testing.T) {
	str := func(s string) *string { return &s }
	tests := []struct {
		name      string
		committed []op
		pending   []op
		want      map[string]*string // nil: absent
	}{
		{
			name: "empty",
			want: map[string]*string{"a": nil},
		},
		{
			name:      "committed only",
			committed: []op{put("a", "1")},
			want:      map[string]*string{"a": str("1"), "b": nil},
		},
		{
			name:    "pending only",
			pending: []op{put("a", "1")},
			want:    map[string]*string{"a": str("1"), "b": nil},
		},
		{
			name:      "pending overwrites committed",
			committed: []op{put("a", "1"), put("b", "2")},
			pending:   []op{put("a", "9")},
			want:      map[string]*string{"a": str("9"), "b": str("2")},
		},
		{
			name:      "pending delete hides committed",
			committed: []op{put("a", "1")},
			pending:   []op{del("a")},
			want:      map[string]*string{"a": nil},
		},
		{
			name:      "pending delete then put",
			committed: []op{put("a", "1")},
			pending:   []op{del("a"), put("a", "3")},
			want:      map[string]*string{"a": str("3")},
		},
		{
			name:    "last pending write wins",
			pending: []op{put("a", "1"), put("a", "2"), del("a"), put("a", "4")},
			want:    map[string]*string{"a": str("4")},
		},
		{
			name:    "empty value is present",
			pending: []op{put("a", "")},
			want:    map[string]*string{"a": str("")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := openTest(t, "")
			s := db.Store("s", 0)
			commitOps(t, s, tt.committed, 1)
			apply(t, s, tt.pending)
			if got := s.PendingCount(); got != len(tt.pending) {
				t.Errorf("PendingCount = %d, want %d", got, len(tt.pending))
			}
			for k, want := range tt.want {
				got, err := s.Get([]byte(k))
				if err != nil {
					t.Fatalf("get %q: %v", k, err)
				}
				switch {
				case want == nil && got != nil:
					t.Errorf("get %q = %q, want absent", k, got)
				case want != nil && got == nil:
					t.Errorf("get %q absent, want %q", k, *want)
				case want != nil && string(got) != *want:
					t.Errorf("get %q = %q, want %q", k, got, *want)
				}
			}
		})
	}
}

func TestStoreGetReturnsCopy(t *testing.T) {
	db := openTest(t, "")
	s := db.Store("s", 0)
	commitOps(t, s, []op{put("a", "committed")}, 1)
	apply(t, s, []op{put("b", "pending")})
	for _, k := range []string{"a", "b"} {
		v, err := s.Get([]byte(k))
		if err != nil {
			t.Fatal(err)
		}
		for i := range v {
			v[i] = 'x'
		}
		again, err := s.Get([]byte(k))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(again, v) {
			t.Errorf("get %q: modifying the returned slice changed the store", k)
		}
	}
}

func TestStorePutArgumentsReusable(t *testing.T) {
	db := openTest(t, "")
	s := db.Store("s", 0)
	k, v := []byte("k"), []byte("v")
	if err := s.Put(k, v); err != nil {
		t.Fatal(err)
	}
	k[0], v[0] = 'x', 'x'
	got, err := s.Get([]byte("k"))
	if err != nil || string(got) != "v" {
		t.Fatalf("get after reusing Put's arguments = %q, %v; want \"v\"", got, err)
	}
}

func TestStorePutNil(t *testing.T) {
	db := openTest(t, "")
	s := db.Store("s", 0)
	if err := s.Put([]byte("a"), nil); !errors.Is(err, ErrNilValue) {
		t.Fatalf("Put(nil) = %v, want ErrNilValue", err)
	}
	if n := s.PendingCount(); n != 0 {
		t.Fatalf("PendingCount after a refused Put = %d", n)
	}
}

func TestStoreRange(t *testing.T) {
	committed := []op{put("a", "1"), put("c", "3"), put("e", "5"), put("g", "7")}
	pending := []op{put("b", "20"), del("c"), put("e", "50"), put("h", "80"), del("z")}
	tests := []struct {
		name       string
		committed  []op
		pending    []op
		start, end []byte
		want       []string
	}{
		{name: "empty store", want: nil},
		{name: "committed only", committed: committed, want: []string{"a=1", "c=3", "e=5", "g=7"}},
		{name: "pending only", pending: pending, want: []string{"b=20", "e=50", "h=80"}},
		{name: "merged", committed: committed, pending: pending,
			want: []string{"a=1", "b=20", "e=50", "g=7", "h=80"}},
		{name: "bounded", committed: committed, pending: pending, start: []byte("b"), end: []byte("g"),
			want: []string{"b=20", "e=50"}},
		{name: "from start key inclusive", committed: committed, pending: pending, start: []byte("e"),
			want: []string{"e=50", "g=7", "h=80"}},
		{name: "to end key exclusive", committed: committed, pending: pending, end: []byte("e"),
			want: []string{"a=1", "b=20"}},
		{name: "empty range", committed: committed, start: []byte("c"), end: []byte("c"), want: nil},
		{name: "inverted range", committed: committed, start: []byte("g"), end: []byte("a"), want: nil},
		{name: "binary keys", committed: []op{put("\x00", "lo"), put("\xff\xff", "hi")},
			want: []string{"\x00=lo", "\xff\xff=hi"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := openTest(t, "")
			s := db.Store("s", 0)
			commitOps(t, s, tt.committed, 1)
			apply(t, s, tt.pending)
			// Neighbours sharing a name prefix must not leak in.
			commitOps(t, db.Store("s", 1), []op{put("a", "other partition")}, 1)
			commitOps(t, db.Store("ss", 0), []op{put("a", "other store")}, 1)
			if got := contents(t, s, tt.start, tt.end); !slices.Equal(got, tt.want) {
				t.Errorf("range = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestStoreRangeStopsOnError(t *testing.T) {
	db := openTest(t, "")
	s := db.Store("s", 0)
	commitOps(t, s, []op{put("a", "1"), put("b", "2"), put("c", "3")}, 1)
	stop := errors.New("stop")
	var seen []string
	err := s.Range(nil, nil, func(k, _ []byte) error {
		seen = append(seen, string(k))
		if string(k) == "b" {
			return stop
		}
		return nil
	})
	if err != stop {
		t.Fatalf("Range = %v, want fn's error as is", err)
	}
	if !slices.Equal(seen, []string{"a", "b"}) {
		t.Fatalf("seen %q, want [a b]", seen)
	}
}

func TestStoreRangeWriteDuringIteration(t *testing.T) {
	for _, withPending := range []bool{false, true} {
		db := openTest(t, "")
		s := db.Store("s", 0)
		commitOps(t, s, []op{put("a", "1"), put("b", "2"), put("c", "3")}, 1)
		if withPending {
			apply(t, s, []op{put("d", "4")})
		}
		var seen []string
		err := s.Range(nil, nil, func(k, v []byte) error {
			seen = append(seen, string(k))
			// Write past the cursor and overwrite the current key; also
			// enough writes to grow the batch's buffer.
			for i := range 200 {
				if err := s.Put(append([]byte("z"), byte(i)), bytes.Repeat([]byte("x"), 100)); err != nil {
					return err
				}
			}
			return s.Put(k, append([]byte("new-"), v...))
		})
		if err != nil {
			t.Fatalf("withPending=%v: %v", withPending, err)
		}
		want := []string{"a", "b", "c"}
		if withPending {
			want = append(want, "d")
		}
		if !slices.Equal(seen, want) {
			t.Errorf("withPending=%v: seen %q, want %q (writes during iteration are not seen)", withPending, seen, want)
		}
		if v, _ := s.Get([]byte("a")); string(v) != "new-1" {
			t.Errorf("withPending=%v: a = %q after iteration, want new-1", withPending, v)
		}
	}
}

func TestStoreAbort(t *testing.T) {
	db := openTest(t, "")
	s := db.Store("s", 0)
	commitOps(t, s, []op{put("a", "1"), put("b", "2")}, 7)
	apply(t, s, []op{put("a", "9"), del("b"), put("c", "3")})
	s.Abort()
	if n := s.PendingCount(); n != 0 {
		t.Errorf("PendingCount after Abort = %d", n)
	}
	if got, want := contents(t, s, nil, nil), []string{"a=1", "b=2"}; !slices.Equal(got, want) {
		t.Errorf("after Abort: %q, want %q", got, want)
	}
	// A commit after Abort applies nothing of the aborted writes.
	if err := db.Commit([]Commit{{Store: s, Checkpoint: 8}}); err != nil {
		t.Fatal(err)
	}
	if got, want := contents(t, s, nil, nil), []string{"a=1", "b=2"}; !slices.Equal(got, want) {
		t.Errorf("after Abort and Commit: %q, want %q", got, want)
	}
	// The store is usable after Abort.
	apply(t, s, []op{put("d", "4")})
	if v, _ := s.Get([]byte("d")); string(v) != "4" {
		t.Errorf("get d after Abort and Put = %q", v)
	}
}

func TestStoresAreIsolated(t *testing.T) {
	db := openTest(t, "")
	// "a" and "ab" would collide without the length prefix; so would
	// partitions whose bytes look like key bytes.
	stores := []*Store{db.Store("a", 0), db.Store("ab", 0), db.Store("a", 1), db.Store("", 0), db.Store("a", -1)}
	for i, s := range stores {
		commitOps(t, s, []op{put("k", string(rune('0'+i)))}, int64(i))
	}
	for i, s := range stores {
		want := []string{"k=" + string(rune('0'+i))}
		if got := contents(t, s, nil, nil); !slices.Equal(got, want) {
			t.Errorf("store %s: %q, want %q", s.StorePartition(), got, want)
		}
		if cp, ok, err := s.Checkpoint(); err != nil || !ok || cp != int64(i) {
			t.Errorf("store %s: checkpoint = %d, %v, %v; want %d", s.StorePartition(), cp, ok, err, i)
		}
	}
}

func TestStoreAccessors(t *testing.T) {
	db := openTest(t, "")
	s := db.Store("counts", 3)
	if s.Name() != "counts" || s.Partition() != 3 || s.StorePartition() != (StorePartition{"counts", 3}) {
		t.Fatalf("accessors = %q, %d, %v", s.Name(), s.Partition(), s.StorePartition())
	}
	if s.PendingBytes() != 0 {
		t.Fatalf("PendingBytes of a fresh store = %d", s.PendingBytes())
	}
	apply(t, s, []op{put("k", "v")})
	if s.PendingBytes() == 0 {
		t.Fatal("PendingBytes = 0 after a Put")
	}
}

func TestUseAfterClose(t *testing.T) {
	db := openTest(t, "")
	s := db.Store("s", 0)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	checks := map[string]error{
		"Close":      db.Close(),
		"Get":        func() error { _, err := s.Get([]byte("k")); return err }(),
		"Put":        s.Put([]byte("k"), []byte("v")),
		"Delete":     s.Delete([]byte("k")),
		"Range":      s.Range(nil, nil, func(_, _ []byte) error { return nil }),
		"Checkpoint": func() error { _, _, err := s.Checkpoint(); return err }(),
		"Commit":     db.Commit([]Commit{{Store: s, Checkpoint: 1}}),
		"Drop":       db.Drop("s", 0),
		"Partitions": func() error { _, err := db.Partitions(); return err }(),
	}
	for name, err := range checks {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
}
