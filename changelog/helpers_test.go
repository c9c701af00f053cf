package changelog

import (
	"io"
	"log/slog"
	"testing"
)

// discardLogger keeps test output to failures.
func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// openTest opens a DB in dir (a fresh temp dir when empty) and closes it at
// the end of the test unless the test closed it.
func openTest(t testing.TB, dir string) *DB {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	db, err := Open(dir, Options{CacheSize: 8 << 20, Logger: discardLogger()})
	if err != nil {
		t.Fatalf("open %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if !db.closed.Load() {
			if err := db.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
		}
	})
	return db
}

// op is one write in a table-driven test: a nil val deletes.
type op struct {
	key string
	val *string
}

func put(k, v string) op { return op{key: k, val: &v} }
func del(k string) op    { return op{key: k} }

// apply writes ops to s's pending batch.
func apply(t testing.TB, s *Store, ops []op) {
	t.Helper()
	for _, o := range ops {
		var err error
		if o.val == nil {
			err = s.Delete([]byte(o.key))
		} else {
			err = s.Put([]byte(o.key), []byte(*o.val))
		}
		if err != nil {
			t.Fatalf("write %q: %v", o.key, err)
		}
	}
}

// commitOps writes ops and commits them with checkpoint cp.
func commitOps(t testing.TB, s *Store, ops []op, cp int64) {
	t.Helper()
	apply(t, s, ops)
	if err := s.db.Commit([]Commit{{Store: s, Checkpoint: cp}}); err != nil {
		t.Fatalf("commit: %v", err)
	}
}

// contents renders a store as "k=v" lines in key order.
func contents(t testing.TB, s *Store, start, end []byte) []string {
	t.Helper()
	var out []string
	err := s.Range(start, end, func(k, v []byte) error {
		out = append(out, string(k)+"="+string(v))
		return nil
	})
	if err != nil {
		t.Fatalf("range: %v", err)
	}
	return out
}
