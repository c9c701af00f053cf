package verify

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestCRC32Partition(t *testing.T) {
	// librdkafka's consistent_random over 7 partitions, as v2.11.1 (the one
	// confluent-kafka-go v2.11.1 bundles) placed these keys. k0, k1, k42,
	// k999 and foobar have the top bit of their CRC set: masking it, as
	// murmur2's partitioner does, would give another partition.
	for key, want := range map[string]int32{"k0": 0, "k1": 0, "k2": 4, "k42": 0, "k999": 1, "foobar": 6} {
		if got := crc32Partition([]byte(key), 7); got != want {
			t.Errorf("crc32Partition(%q, 7) = %d, want %d", key, got, want)
		}
	}
}

// TestGeneratePartitioners: the partitioner decides only where records go.
// murmur2 and crc32 put a key's records in the partition their hash gives;
// random spreads them; the records themselves are the seed's.
func TestGeneratePartitioners(t *testing.T) {
	const n, keys, parts = 600, 10, 3
	brokers := newCluster(t, 0)
	var same []string
	for _, name := range partitioners {
		t.Run(name, func(t *testing.T) {
			if _, err := Generate(testContext(t), GenerateConfig{Brokers: brokers, Topic: name, Records: n, Keys: keys,
				Partitions: parts, Seed: 5, Partitioner: name}); err != nil {
				t.Fatal(err)
			}
			var all []string
			perKey := map[string][]int32{} // partitions holding the key
			for p, recs := range consumeN(t, brokers, name, n) {
				for _, r := range recs {
					all = append(all, string(r.Key)+"="+string(r.Value))
					if !slices.Contains(perKey[string(r.Key)], p) {
						perKey[string(r.Key)] = append(perKey[string(r.Key)], p)
					}
					if fn, ok := keyPartitioner(name); ok {
						if want := fn(r.Key, parts); p != want {
							t.Errorf("key %s in partition %d, %s gives %d", r.Key, p, name, want)
						}
					}
				}
			}
			spread := 0
			for _, ps := range perKey {
				if len(ps) > 1 {
					spread++
				}
			}
			if want := name == PartitionRandom; (spread > 0) != want {
				t.Errorf("%d keys in several partitions with %s", spread, name)
			}
			slices.Sort(all)
			if same == nil {
				same = all
			} else if !slices.Equal(all, same) {
				t.Errorf("%s wrote other records than %s for the same seed", name, partitioners[0])
			}
		})
	}
	if _, err := Generate(testContext(t), GenerateConfig{Brokers: brokers, Topic: "x", Records: 1, Partitioner: "sticky"}); err == nil ||
		!strings.Contains(err.Error(), `partitioner "sticky": want one of murmur2, crc32, random`) {
		t.Errorf("unknown partitioner: error %v", err)
	}
}

// syncBuffer is a bytes.Buffer safe for a logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestGenerate(t *testing.T) {
	const (
		n     = 3000
		keys  = 20
		parts = 3
	)
	brokers := newCluster(t, 0)
	var logs syncBuffer
	res, err := Generate(testContext(t), GenerateConfig{
		Brokers: brokers, Topic: "in", Records: n, Keys: keys, Partitions: parts, Seed: 42,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	if res.Records != n {
		t.Errorf("Records = %d, want %d", res.Records, n)
	}
	if got := partitionsOf(t, brokers, "in"); got != parts {
		t.Errorf("created topic has %d partitions, want %d", got, parts)
	}
	if !strings.Contains(logs.String(), "records="+strconv.Itoa(n)) || !strings.Contains(logs.String(), "verify generate: done") {
		t.Errorf("no final log line with records=%d:\n%s", n, logs.String())
	}

	perKey := map[string]int{}
	var neg, pos int
	total := 0
	for p, recs := range consumeN(t, brokers, "in", n) {
		for _, r := range recs {
			total++
			key := string(r.Key)
			i, err := strconv.Atoi(strings.TrimPrefix(key, "k"))
			if !strings.HasPrefix(key, "k") || err != nil || i < 0 || i >= keys {
				t.Fatalf("key %q is not k<i> with i in [0, %d)", key, keys)
			}
			if want := murmur2Partition(r.Key, parts); p != want {
				t.Errorf("key %q in partition %d, Java's partitioner says %d", key, p, want)
			}
			v, err := strconv.ParseInt(string(r.Value), 10, 64)
			if err != nil || v < -1000 || v > 1000 {
				t.Fatalf("value %q is not a decimal in [-1000, 1000]", r.Value)
			}
			if v < 0 {
				neg++
			} else if v > 0 {
				pos++
			}
			perKey[key]++
		}
	}
	if total != n {
		t.Errorf("read %d records, want %d", total, n)
	}
	if len(perKey) != keys {
		t.Errorf("%d distinct keys, want %d", len(perKey), keys)
	}
	for k, c := range perKey {
		// 150 expected per key; a uniform draw stays well within half to
		// double of it.
		if c < n/keys/2 || c > 2*n/keys {
			t.Errorf("key %s has %d records, want about %d", k, c, n/keys)
		}
	}
	if neg < n/3 || pos < n/3 {
		t.Errorf("%d negative and %d positive values of %d; want both about half", neg, pos, n)
	}
}

func TestGenerateDeterministic(t *testing.T) {
	const n, keys = 500, 7
	brokers := newCluster(t, 0)
	read := func(topic string, seed int64) map[int32][]string {
		t.Helper()
		if _, err := Generate(testContext(t), GenerateConfig{Brokers: brokers, Topic: topic, Records: n, Keys: keys, Seed: seed}); err != nil {
			t.Fatalf("Generate %s: %v", topic, err)
		}
		out := map[int32][]string{}
		for p, recs := range consumeN(t, brokers, topic, n) {
			for _, r := range recs {
				out[p] = append(out[p], string(r.Key)+"="+string(r.Value))
			}
		}
		return out
	}
	a, b, c := read("a", 7), read("b", 7), read("c", 8)
	if got := partitionsOf(t, brokers, "a"); got != defaultPartitions {
		t.Errorf("default partitions: %d, want %d", got, defaultPartitions)
	}
	same := func(x, y map[int32][]string) bool {
		if len(x) != len(y) {
			return false
		}
		for p := range x {
			if strings.Join(x[p], ",") != strings.Join(y[p], ",") {
				return false
			}
		}
		return true
	}
	if !same(a, b) {
		t.Errorf("seed 7 twice: different records")
	}
	if same(a, c) {
		t.Errorf("seeds 7 and 8: same records")
	}
}

func TestGenerateRate(t *testing.T) {
	const n, rate = 50, 200
	brokers := newCluster(t, 0)
	res, err := Generate(testContext(t), GenerateConfig{Brokers: brokers, Topic: "in", Records: n, Keys: 5, Rate: rate})
	if err != nil {
		t.Fatal(err)
	}
	// Record i is due i/rate after the start: the last at 245ms.
	if min := time.Duration(n-1) * time.Second / rate; res.Elapsed < min {
		t.Errorf("Elapsed = %v at %d records/s, want at least %v", res.Elapsed, rate, min)
	}
	if res.Records != n {
		t.Errorf("Records = %d, want %d", res.Records, n)
	}
}

func TestGenerateExistingTopic(t *testing.T) {
	brokers := newCluster(t, 2, "in")
	var logs syncBuffer
	res, err := Generate(testContext(t), GenerateConfig{
		Brokers: brokers, Topic: "in", Records: 10, Keys: 3, Partitions: 4,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	if err != nil || res.Records != 10 {
		t.Fatalf("Generate = %+v, %v; want 10 records", res, err)
	}
	if got := partitionsOf(t, brokers, "in"); got != 2 {
		t.Errorf("partitions = %d, want the existing 2", got)
	}
	if !strings.Contains(logs.String(), "another partition count") {
		t.Errorf("no warning about the partition count:\n%s", logs.String())
	}
}

func TestGenerateConfig(t *testing.T) {
	ok := GenerateConfig{Brokers: []string{"127.0.0.1:1"}, Topic: "t", Records: 1}
	tests := []struct {
		name   string
		change func(c *GenerateConfig)
		want   string
	}{
		{"no brokers", func(c *GenerateConfig) { c.Brokers = nil }, "no brokers"},
		{"no topic", func(c *GenerateConfig) { c.Topic = "" }, "no topic"},
		{"negative records", func(c *GenerateConfig) { c.Records = -1 }, "records -1 < 0"},
		{"negative keys", func(c *GenerateConfig) { c.Keys = -2 }, "keys -2 < 0"},
		{"negative rate", func(c *GenerateConfig) { c.Rate = -3 }, "rate -3 < 0"},
		{"two problems", func(c *GenerateConfig) { c.Topic = ""; c.Rate = -3 }, "no topic\nrate -3 < 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.change(&c)
			_, err := Generate(context.Background(), c)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Generate error = %v, want it to say %q", err, tt.want)
			}
		})
	}
}

func TestSequence(t *testing.T) {
	// The sequence is the definition of a seed's input: pin its start so a
	// change to it is a deliberate one.
	s := newSequence(1, 1000)
	var got []string
	for range 4 {
		k, v := s.next()
		got = append(got, k+"="+strconv.FormatInt(v, 10))
	}
	if want := goldenSequence; strings.Join(got, " ") != want {
		t.Errorf("sequence(seed 1) starts %q, want %q", strings.Join(got, " "), want)
	}
}

// goldenSequence is seed 1's first four records, as first generated.
const goldenSequence = "k465=819 k590=262 k761=-83 k45=-526"

func TestSplitMix64(t *testing.T) {
	// The reference outputs for seed 1234567 (Vigna's splitmix64.c).
	s := newSequence(1234567, 1)
	for i, want := range []uint64{6457827717110365317, 3203168211198807973, 9817491932198370423, 4593380528125082431, 16408922859458223821} {
		if got := s.uint64(); got != want {
			t.Errorf("output %d = %d, want %d", i, got, want)
		}
	}
}
