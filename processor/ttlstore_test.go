package processor

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/eos-runner/eos-runner/serde"
	"github.com/eos-runner/eos-runner/topology"
)

// ttlCount is `in` grouped by key and counted into store "counts" whose
// entries expire after ttl of stream time without an update.
func ttlCount(ttl time.Duration) *topology.Builder {
	b := topology.NewBuilder()
	b.Stream([]string{"in"}, strIn).
		GroupByKey(topology.Grouped{Key: strSerde, Value: strSerde}).
		Count(topology.Materialized{Name: "counts", TTL: ttl}).
		ToStream().To("out", topology.Produced{Key: strSerde, Value: serde.Int64{}})
	return b
}

// storeContents lists key=value of a key-value store, in key order.
func storeContents(t *testing.T, d *TestDriver, name string) []string {
	t.Helper()
	kv, err := d.KeyValueStore(name)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	if err := kv.Range(nil, nil, func(k, v any) error {
		out = append(out, k.(string)+"="+fmtAny(v))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func fmtAny(v any) string {
	if n, ok := v.(int64); ok {
		return strconv.FormatInt(n, 10)
	}
	return "?"
}

// TestTTLStoreExpiresByStreamTime: an entry not updated within the TTL of
// stream time is gone (reads never see it, and its count starts over), with
// a tombstone on the changelog; an entry updated in time lives on. A restart
// over the same state directory keeps what is live and what has expired.
func TestTTLStoreExpiresByStreamTime(t *testing.T) {
	dir := t.TempDir()
	d := newDriver(t, ttlCount(10*time.Second), TestDriverConfig{StateDir: dir})
	pipe(t, d, "in", "a", "x", 1000)
	pipe(t, d, "in", "b", "x", 2000)
	pipe(t, d, "in", "a", "x", 9000)   // a updated at 9s: lives to 19s
	pipe(t, d, "in", "c", "x", 12_500) // stream time 12.5s: b (2s) is due, a is not
	if got, want := storeContents(t, d, "counts"), []string{"a=2", "c=1"}; !slices.Equal(got, want) {
		t.Fatalf("store at 12.5s: %q, want %q", got, want)
	}
	var tombstones int
	for _, r := range d.ReadOutput("test-driver-counts-changelog") {
		if r.Value == nil && len(r.Key) > 0 && r.Key[0] == 'd' && string(r.Key[1:]) == "b" {
			tombstones++
		}
	}
	if tombstones != 1 {
		t.Fatalf("%d changelog tombstones for b's entry, want 1", tombstones)
	}
	pipe(t, d, "in", "b", "x", 13_000) // b starts over
	var bs []string
	for _, o := range readKVs(t, d, "out", strSerde, serde.Int64{}) {
		if o[0] == 'b' {
			bs = append(bs, o)
		}
	}
	if !slices.Equal(bs, []string{"b=1", "b=1"}) {
		t.Fatalf("b's outputs %q, want its count to start over after it expired", bs)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}

	// A restart over the state: a (9s) is due at 20s; c (12.5s) and b (13s) are not.
	d2 := newDriver(t, ttlCount(10*time.Second), TestDriverConfig{StateDir: dir})
	pipe(t, d2, "in", "c", "x", 20_000)
	if got, want := storeContents(t, d2, "counts"), []string{"b=1", "c=2"}; !slices.Equal(got, want) {
		t.Fatalf("store after the restart at 20s: %q, want %q", got, want)
	}
}
