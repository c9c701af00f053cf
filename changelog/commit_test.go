package changelog

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/cockroachdb/pebble"
)

// TestCommitAndCrash: pending state and checkpoints land together in one
// commit; a crash (Close without Commit, reopen) loses only what was pending.
func TestCommitAndCrash(t *testing.T) {
	type storeWant struct {
		state []string
		cp    int64 // -1: none
	}
	tests := []struct {
		name string
		// commits run in order, each over stores "a"/0 and "b"/0 with the given
		// writes and checkpoints.
		commits []map[string]struct {
			ops []op
			cp  int64
		}
		// pendingAtCrash is written and never committed.
		pendingAtCrash map[string][]op
		want           map[string]storeWant
	}{
		{
			name: "two stores in one commit",
			commits: []map[string]struct {
				ops []op
				cp  int64
			}{
				{"a": {ops: []op{put("x", "1")}, cp: 5}, "b": {ops: []op{put("y", "2")}, cp: 9}},
			},
			want: map[string]storeWant{"a": {[]string{"x=1"}, 5}, "b": {[]string{"y=2"}, 9}},
		},
		{
			name: "crash loses only pending",
			commits: []map[string]struct {
				ops []op
				cp  int64
			}{
				{"a": {ops: []op{put("x", "1")}, cp: 5}},
			},
			pendingAtCrash: map[string][]op{"a": {put("x", "lost"), put("z", "lost")}, "b": {put("y", "lost")}},
			want:           map[string]storeWant{"a": {[]string{"x=1"}, 5}, "b": {nil, -1}},
		},
		{
			name: "checkpoint -1 leaves it unchanged",
			commits: []map[string]struct {
				ops []op
				cp  int64
			}{
				{"a": {ops: []op{put("x", "1")}, cp: 5}},
				{"a": {ops: []op{put("x", "2")}, cp: -1}, "b": {ops: []op{put("y", "1")}, cp: -1}},
			},
			want: map[string]storeWant{"a": {[]string{"x=2"}, 5}, "b": {[]string{"y=1"}, -1}},
		},
		{
			name: "checkpoint without writes",
			commits: []map[string]struct {
				ops []op
				cp  int64
			}{
				{"a": {ops: []op{put("x", "1")}, cp: 5}},
				{"a": {cp: 7}},
			},
			want: map[string]storeWant{"a": {[]string{"x=1"}, 7}, "b": {nil, -1}},
		},
		{
			name: "deletes commit",
			commits: []map[string]struct {
				ops []op
				cp  int64
			}{
				{"a": {ops: []op{put("x", "1"), put("w", "0")}, cp: 2}},
				{"a": {ops: []op{del("x")}, cp: 3}},
			},
			want: map[string]storeWant{"a": {[]string{"w=0"}, 3}, "b": {nil, -1}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			db := openTest(t, dir)
			stores := map[string]*Store{"a": db.Store("a", 0), "b": db.Store("b", 0)}
			for _, round := range tt.commits {
				var cs []Commit
				for name, c := range round {
					apply(t, stores[name], c.ops)
					cs = append(cs, Commit{Store: stores[name], Checkpoint: c.cp})
				}
				if err := db.Commit(cs); err != nil {
					t.Fatal(err)
				}
				for name := range round {
					if n := stores[name].PendingCount(); n != 0 {
						t.Fatalf("store %s: PendingCount after Commit = %d", name, n)
					}
				}
			}
			for name, ops := range tt.pendingAtCrash {
				apply(t, stores[name], ops)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			db = openTest(t, dir)
			for name, want := range tt.want {
				s := db.Store(name, 0)
				if got := contents(t, s, nil, nil); !slices.Equal(got, want.state) {
					t.Errorf("store %s after reopen: %q, want %q", name, got, want.state)
				}
				cp, ok, err := s.Checkpoint()
				if err != nil {
					t.Fatal(err)
				}
				if want.cp == -1 && ok {
					t.Errorf("store %s: checkpoint %d, want none", name, cp)
				}
				if want.cp >= 0 && (!ok || cp != want.cp) {
					t.Errorf("store %s: checkpoint %d (ok=%v), want %d", name, cp, ok, want.cp)
				}
			}
		})
	}
}

func TestCommitRefusesBadArguments(t *testing.T) {
	db := openTest(t, "")
	other := openTest(t, "")
	s := db.Store("s", 0)
	tests := []struct {
		name    string
		commits []Commit
	}{
		{"nil store", []Commit{{Store: s, Checkpoint: 1}, {Store: nil, Checkpoint: 1}}},
		{"same store twice", []Commit{{Store: s, Checkpoint: 1}, {Store: s, Checkpoint: 2}}},
		{"store of another db", []Commit{{Store: s, Checkpoint: 1}, {Store: other.Store("s", 0), Checkpoint: 1}}},
		{"checkpoint below -1", []Commit{{Store: s, Checkpoint: -2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			apply(t, s, []op{put("k", "v")})
			if err := db.Commit(tt.commits); err == nil {
				t.Fatal("Commit succeeded")
			}
			// Nothing landed, and the pending write is still there.
			if _, ok, _ := s.Checkpoint(); ok {
				t.Error("a checkpoint landed")
			}
			if n := s.PendingCount(); n == 0 {
				t.Error("pending writes dropped by a refused commit")
			}
			s.Abort()
			if got := contents(t, s, nil, nil); got != nil {
				t.Errorf("state landed: %q", got)
			}
		})
	}
}

func TestCommitEmpty(t *testing.T) {
	db := openTest(t, "")
	s := db.Store("s", 0)
	for _, cs := range [][]Commit{nil, {{Store: s, Checkpoint: -1}}} {
		if err := db.Commit(cs); err != nil {
			t.Fatalf("Commit(%v) = %v", cs, err)
		}
	}
	if sps, err := db.Partitions(); err != nil || len(sps) != 0 {
		t.Fatalf("Partitions after empty commits = %v, %v", sps, err)
	}
}

func TestDropAndPartitions(t *testing.T) {
	db := openTest(t, "")
	all := []StorePartition{{"a", 0}, {"a", 1}, {"ab", 0}, {"b", 2}, {"c", 0}}
	for i, sp := range all {
		s := db.Store(sp.Store, sp.Partition)
		apply(t, s, []op{put("k1", "v"), put("k2", "v")})
		cp := int64(i + 1)
		if sp.Store == "b" {
			cp = -1 // state without a checkpoint is listed too
		}
		if err := db.Commit([]Commit{{Store: s, Checkpoint: cp}}); err != nil {
			t.Fatal(err)
		}
	}
	// A checkpoint without state is listed too.
	if err := db.Commit([]Commit{{Store: db.Store("d", 5), Checkpoint: 3}}); err != nil {
		t.Fatal(err)
	}
	got, err := db.Partitions()
	if err != nil {
		t.Fatal(err)
	}
	want := append(slices.Clone(all), StorePartition{"d", 5})
	if !slices.Equal(got, want) {
		t.Fatalf("Partitions = %v, want %v", got, want)
	}

	// Pending writes of a live handle survive a Drop of its committed state.
	live := db.Store("a", 0)
	apply(t, live, []op{put("p", "pending")})
	if err := db.Drop("a", 0); err != nil {
		t.Fatal(err)
	}
	if got := contents(t, live, nil, nil); !slices.Equal(got, []string{"p=pending"}) {
		t.Errorf("a/0 after Drop: %q, want only the pending write", got)
	}
	live.Abort()
	if _, ok, _ := live.Checkpoint(); ok {
		t.Error("a/0 checkpoint survived Drop")
	}
	if _, ok, _ := live.checkpointTime(); ok {
		t.Error("a/0 checkpoint time survived Drop")
	}
	for _, sp := range all[1:] {
		if got := contents(t, db.Store(sp.Store, sp.Partition), nil, nil); len(got) != 2 {
			t.Errorf("%v after dropping a/0: %q, want its 2 keys", sp, got)
		}
	}
	if got, _ := db.Partitions(); slices.Contains(got, StorePartition{"a", 0}) {
		t.Errorf("Partitions after Drop still lists a/0: %v", got)
	}
	// Dropping what does not exist is fine.
	if err := db.Drop("nope", 9); err != nil {
		t.Errorf("Drop of an absent store partition: %v", err)
	}
}

// TestCommitCheckpointTime: every checkpoint Commit writes gets the commit's
// time as its checkpoint time, in the same batch; a commit that leaves the
// checkpoint unchanged leaves its time unchanged too.
func TestCommitCheckpointTime(t *testing.T) {
	db := openTest(t, "")
	clock := &fakeClock{t: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), step: time.Hour}
	db.now = clock.now
	a, b := db.Store("a", 0), db.Store("b", 0)
	checkTime := func(s *Store, want time.Time, wantOK bool) {
		t.Helper()
		got, ok, err := s.checkpointTime()
		if err != nil || ok != wantOK || !got.Equal(want) {
			t.Errorf("%v checkpoint time = %v, %v, %v; want %v, %v", s.sp, got, ok, err, want, wantOK)
		}
	}
	apply(t, a, []op{put("x", "1")})
	apply(t, b, []op{put("y", "1")})
	if err := db.Commit([]Commit{{Store: a, Checkpoint: 3}, {Store: b, Checkpoint: -1}}); err != nil {
		t.Fatal(err)
	}
	first := clock.t
	checkTime(a, first, true)
	checkTime(b, time.Time{}, false)

	apply(t, a, []op{put("x", "2")})
	if err := db.Commit([]Commit{{Store: a, Checkpoint: -1}}); err != nil {
		t.Fatal(err)
	}
	checkTime(a, first, true)
	if err := db.Commit([]Commit{{Store: a, Checkpoint: 5}}); err != nil {
		t.Fatal(err)
	}
	checkTime(a, clock.t, true)
}

func TestOpenFormatVersion(t *testing.T) {
	t.Run("fresh dir is stamped and reopens", func(t *testing.T) {
		dir := t.TempDir()
		db := openTest(t, dir)
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		openTest(t, dir)
	})
	t.Run("newer format is refused", func(t *testing.T) {
		dir := t.TempDir()
		raw, err := pebble.Open(dir, &pebble.Options{FormatMajorVersion: pebbleFormat})
		if err != nil {
			t.Fatal(err)
		}
		if err := raw.Set(formatVersionKey, encodeFormatVersion(formatVersion+1), pebble.Sync); err != nil {
			t.Fatal(err)
		}
		if err := raw.Close(); err != nil {
			t.Fatal(err)
		}
		_, err = Open(dir, Options{Logger: discardLogger()})
		var fe *FormatError
		if !errors.As(err, &fe) || fe.Found != formatVersion+1 || fe.Known != formatVersion {
			t.Fatalf("Open = %v, want *FormatError{Found: %d, Known: %d}", err, formatVersion+1, formatVersion)
		}
		// The refused open released the directory lock.
		raw, err = pebble.Open(dir, &pebble.Options{})
		if err != nil {
			t.Fatalf("reopen after refused Open: %v", err)
		}
		raw.Close()
	})
	t.Run("foreign database is refused", func(t *testing.T) {
		dir := t.TempDir()
		raw, err := pebble.Open(dir, &pebble.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := raw.Set([]byte("someone else's"), []byte("data"), pebble.Sync); err != nil {
			t.Fatal(err)
		}
		raw.Close()
		if _, err := Open(dir, Options{Logger: discardLogger()}); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Open = %v, want ErrCorrupt", err)
		}
	})
	t.Run("second open of the same dir fails", func(t *testing.T) {
		dir := t.TempDir()
		openTest(t, dir)
		if db, err := Open(dir, Options{Logger: discardLogger()}); err == nil {
			db.Close()
			t.Fatal("second Open of a locked dir succeeded")
		}
	})
	t.Run("negative cache size", func(t *testing.T) {
		if _, err := Open(t.TempDir(), Options{CacheSize: -1}); err == nil {
			t.Fatal("Open with CacheSize -1 succeeded")
		}
	})
}
