package topology

import (
	"bytes"
	"reflect"
	"sort"
	"testing"

	"github.com/spaolacci/murmur3"

	"github.com/eos-runner/eos-runner/serde"
)

// TestMurmur3MatchesKafkaStreams: the hash is Kafka Streams'
// Murmur3.hash128, checked on the vectors of its Murmur3Test.testMurmur3_128
// (seed 123; the join uses KS's default seed 104729).
func TestMurmur3MatchesKafkaStreams(t *testing.T) {
	for in, want := range map[string][2]int64{
		"21":                         {5857341059704281894, -5288187638297930763},
		"foobar":                     {-351361463397418609, 8959716011862540668},
		"a-little-bit-long-string":   {8836256500583638442, -198172363548498523},
		"a-little-bit-longer-string": {1838346159335108511, 8794688210320490705},
		"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": {-4024021876037397259, -1482317706335141238},
		"abc": {1489494923063836066, -5440978547625122829},
	} {
		h1, h2 := murmur3.Sum128WithSeed([]byte(in), 123)
		if int64(h1) != want[0] || int64(h2) != want[1] {
			t.Errorf("hash128(%q) = [%d, %d], want %v", in, int64(h1), int64(h2), want)
		}
	}
	if h := hashBytes(nil); h.ok {
		t.Error("a deleted value has a hash")
	}
	if hashBytes([]byte("a")) == hashBytes([]byte("b")) || hashBytes([]byte{}) == hashBytes(nil) {
		t.Error("distinct values hash alike")
	}
}

func TestSubscriptionRoundTrip(t *testing.T) {
	for _, s := range []subscription{
		{hash: hashBytes([]byte("v")), instruction: propagateOnlyIfFKValue, pk: []byte("lhs1")},
		{instruction: deleteKeyAndPropagate, pk: []byte("lhs1")},
		{hash: hashBytes([]byte("w")), instruction: deleteKeyNoPropagate, pk: []byte{}},
		{hash: hashBytes([]byte("x")), instruction: propagateNullIfNoFKValue, pk: []byte{0, 0xff, 1}},
	} {
		b, err := subscriptionSerde{}.Serialize("t", s)
		if err != nil {
			t.Fatal(err)
		}
		if b[0] != 0 || b[1] != byte(s.instruction) {
			t.Errorf("%v: header % x", s, b[:3])
		}
		want := 3 + len(s.pk)
		if s.hash.ok {
			want += 16
		}
		if len(b) != want {
			t.Errorf("%v: %d bytes, want %d", s, len(b), want)
		}
		got, err := subscriptionSerde{}.Deserialize("t", b)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, s) {
			t.Errorf("round trip %+v, got %+v", s, got)
		}
	}
	for _, bad := range [][]byte{{0}, {1, 0, 0}, {0, 9, 0}, {0, 0, 1, 1, 2}} {
		if _, err := (subscriptionSerde{}).Deserialize("t", bad); err == nil {
			t.Errorf("% x decoded", bad)
		}
	}
	if v, err := (subscriptionSerde{}).Deserialize("t", nil); v != nil || err != nil {
		t.Errorf("nil: %v, %v", v, err)
	}
}

func TestResponseRoundTrip(t *testing.T) {
	s := responseSerde{value: serde.String{}}
	for _, r := range []response{
		{hash: hashBytes([]byte("v")), foreign: "rhsValue1"},
		{hash: hashBytes([]byte("v")), foreign: ""}, // present and empty
		{hash: hashBytes([]byte("v"))},              // no foreign value
		{},                                          // a deletion's answer
		{foreign: "x"},
	} {
		b, err := s.Serialize("t", r)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.Deserialize("t", b)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, r) {
			t.Errorf("round trip %+v, got %+v", r, got)
		}
	}
	for _, bad := range [][]byte{{0}, {1, 0}, {0, 1, 1}, {0, 0, 'x'}} {
		if _, err := s.Deserialize("t", bad); err == nil {
			t.Errorf("% x decoded", bad)
		}
	}
}

// TestCombinedKeyPrefixScanIsExact: the subscribers range of a foreign key
// holds its subscriptions and nothing else, in particular not those of a
// foreign key it is a byte prefix of, nor of one that is its prefix.
func TestCombinedKeyPrefixScanIsExact(t *testing.T) {
	type sub struct{ fk, pk string }
	subs := []sub{{"a", "bc"}, {"ab", "c"}, {"a", ""}, {"a", "z"}, {"", "a"}, {"b", "a"}, {"a\xff", "q"}, {"a\xff\xff", ""}}
	var keys [][]byte
	for _, s := range subs {
		k := combinedKey([]byte(s.fk), []byte(s.pk))
		fk, pk, err := splitCombinedKey(k)
		if err != nil || string(fk) != s.fk || string(pk) != s.pk {
			t.Errorf("split(combined(%q, %q)) = %q, %q, %v", s.fk, s.pk, fk, pk, err)
		}
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return bytes.Compare(keys[i], keys[j]) < 0 })
	for _, fk := range []string{"a", "ab", "", "b", "a\xff", "a\xff\xff", "c"} {
		from, to := subscribersRange([]byte(fk))
		var got, want []string
		for _, k := range keys {
			if bytes.Compare(k, from) >= 0 && (to == nil || bytes.Compare(k, to) < 0) {
				_, pk, _ := splitCombinedKey(k)
				got = append(got, string(pk))
			}
		}
		for _, s := range subs {
			if s.fk == fk {
				want = append(want, s.pk)
			}
		}
		sort.Strings(want)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("subscribers of %q: %q, want %q", fk, got, want)
		}
	}
	for _, bad := range [][]byte{{0, 0}, {0, 0, 0, 5, 'a'}} {
		if _, _, err := splitCombinedKey(bad); err == nil {
			t.Errorf("% x split", bad)
		}
	}
}
