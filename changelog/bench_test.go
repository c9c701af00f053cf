package changelog

import (
	"context"
	"encoding/binary"
	"fmt"
	"testing"
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
