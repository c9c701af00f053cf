package changelog

import (
	"context"
	"encoding/binary"
	"fmt"
	"testing"
	"time"
)

// BenchmarkRestore measures restore throughput into Pebble from an
// in-memory source: b.N small records (16-byte keys, 32-byte values), 500
// per Next as a consumer fetch would return them. For the 1M-record figure:
//
//	go test ./changelog -run '^$' -bench Restore -benchtime 1000000x
func BenchmarkRestore(b *testing.B) {
	recs := make([]ChangelogRecord, b.N)
	value := make([]byte, 32)
	for i := range recs {
		key := make([]byte, 16)
		// Keys repeat every 100k records, as a compacted changelog's tail does.
		binary.BigEndian.PutUint64(key[8:], uint64(i%100_000)*0x9e3779b97f4a7c15)
		recs[i] = ChangelogRecord{Key: key, Value: value, Offset: int64(i)}
	}
	db := openTest(b, "")
	s := db.Store("bench", 0)
	b.ResetTimer()
	res, err := Restore(context.Background(), s, &sliceSource{recs: recs, n: 500}, RestoreOptions{})
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	if res.Restored != int64(b.N) {
		b.Fatalf("restored %d, want %d", res.Restored, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkPutGetCommit measures the task path: Put then Get (read-your-
// writes) per record, and a synced Commit every `every` records, as the
// runner commits every commit.interval.ms. ns/op is per record.
func BenchmarkPutGetCommit(b *testing.B) {
	for _, every := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("commit-every-%d", every), func(b *testing.B) {
			db := openTest(b, "")
			s := db.Store("bench", 0)
			key := make([]byte, 16)
			value := make([]byte, 32)
			var cp int64
			b.ResetTimer()
			for i := range b.N {
				binary.BigEndian.PutUint64(key[8:], uint64(i%10_000))
				binary.BigEndian.PutUint64(value, uint64(i))
				if err := s.Put(key, value); err != nil {
					b.Fatal(err)
				}
				v, err := s.Get(key)
				if err != nil || len(v) != len(value) {
					b.Fatalf("get: %q, %v", v, err)
				}
				if (i+1)%every == 0 || i == b.N-1 {
					cp += int64(every) + 1
					if err := db.Commit([]Commit{{Store: s, Checkpoint: cp}}); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// benchWindowStore is a window store of 1-minute windows hopping by 10s,
// kept for 10 minutes in segments of 5 minutes.
func benchWindowStore(b *testing.B) (*DB, *WindowStore) {
	db := openTest(b, "")
	w, err := db.WindowStore("bench", 0, WindowOptions{Retention: 10 * time.Minute, SegmentInterval: 5 * time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	return db, w
}

// BenchmarkWindowStorePut measures a windowed aggregation's write path:
// per record (10k keys, one record per ms of stream time) the 6 hopping
// windows it falls in are put, stream time advances and Expire runs, and
// a synced Commit follows every 1000 records. ns/op is per record.
func BenchmarkWindowStorePut(b *testing.B) {
	db, w := benchWindowStore(b)
	key := make([]byte, 16)
	value := make([]byte, 32)
	b.ResetTimer()
	for i := range b.N {
		ts := int64(i)
		binary.BigEndian.PutUint64(key[8:], uint64(i%10_000)*0x9e3779b97f4a7c15)
		binary.BigEndian.PutUint64(value, uint64(i))
		for start := ts - ts%10_000 - 50_000; start <= ts; start += 10_000 {
			if err := w.Put(key, start, value); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Expire(ts); err != nil {
			b.Fatal(err)
		}
		if (i+1)%1000 == 0 || i == b.N-1 {
			if err := db.Commit([]Commit{w.CommitAt(int64(i))}); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkWindowStoreFetch measures Fetch of one key's windows over 10
// minutes (60 windows in 3 segments) from committed state of 1000 keys,
// with and without pending writes to read through.
func BenchmarkWindowStoreFetch(b *testing.B) {
	for _, pending := range []bool{false, true} {
		b.Run(fmt.Sprintf("pending=%v", pending), func(b *testing.B) {
			db, w := benchWindowStore(b)
			key := make([]byte, 16)
			value := make([]byte, 32)
			const keys, windows = 1000, 60
			for k := range keys {
				binary.BigEndian.PutUint64(key[8:], uint64(k))
				for s := range windows {
					if err := w.Put(key, int64(s)*10_000, value); err != nil {
						b.Fatal(err)
					}
				}
			}
			if err := db.Commit([]Commit{w.CommitAt(1)}); err != nil {
				b.Fatal(err)
			}
			if pending {
				for k := range 100 {
					binary.BigEndian.PutUint64(key[8:], uint64(k*10))
					if err := w.Put(key, 300_000, value); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ResetTimer()
			n := 0
			for i := range b.N {
				binary.BigEndian.PutUint64(key[8:], uint64(i%keys))
				if err := w.Fetch(key, 0, windows*10_000, func(int64, []byte) error { n++; return nil }); err != nil {
					b.Fatal(err)
				}
			}
			if n != b.N*windows {
				b.Fatalf("fetched %d windows, want %d", n, b.N*windows)
			}
		})
	}
}

// BenchmarkWindowStoreFetchAll measures FetchAll over one 10s slice of
// time (one window start, 1000 keys) from committed state.
func BenchmarkWindowStoreFetchAll(b *testing.B) {
	db, w := benchWindowStore(b)
	key := make([]byte, 16)
	value := make([]byte, 32)
	for k := range 1000 {
		binary.BigEndian.PutUint64(key[8:], uint64(k))
		for s := range 60 {
			if err := w.Put(key, int64(s)*10_000, value); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := db.Commit([]Commit{w.CommitAt(1)}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		start := int64(i%60) * 10_000
		n := 0
		if err := w.FetchAll(start, start+9_999, func([]byte, int64, []byte) error { n++; return nil }); err != nil {
			b.Fatal(err)
		}
		if n != 1000 {
			b.Fatalf("fetched %d, want 1000", n)
		}
	}
}
