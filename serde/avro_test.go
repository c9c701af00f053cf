package serde

import (
	"context"
	"encoding/binary"
	"errors"
	"maps"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eos-runner/eos-runner/internal/registrytest"
	"github.com/eos-runner/eos-runner/schema"
	"github.com/eos-runner/eos-runner/schema/registry"
)

// testRegistry serves an in-memory embedded registry.
func testRegistry(tb testing.TB) *registry.Client {
	c, _ := registrytest.Serve(tb)
	return c
}

func readSchema(tb testing.TB, name string) string {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

func newAvro(tb testing.TB, c *registry.Client, text string, side Side, opts ...AvroOption) *Avro {
	tb.Helper()
	a, err := NewAvro(c, text, side, opts...)
	if err != nil {
		tb.Fatalf("NewAvro: %v", err)
	}
	return a
}

// register puts the schema text under subject and returns its id.
func register(tb testing.TB, c *registry.Client, subject, text string) int {
	tb.Helper()
	s, err := schema.Parse(text)
	if err != nil {
		tb.Fatal(err)
	}
	id, err := c.EnsureSchema(context.Background(), subject, s, true)
	if err != nil {
		tb.Fatalf("register under %s: %v", subject, err)
	}
	return id
}

func orderV1() map[string]any {
	return map[string]any{"id": "o-1", "amount": int64(1250), "status": "PAID", "tags": []any{"a", "b"}}
}

func TestAvroRoundTrip(t *testing.T) {
	c := testRegistry(t)
	a := newAvro(t, c, readSchema(t, "order_v1.avsc"), Value, AutoRegister(true))
	ctx := context.Background()
	if err := a.Prepare(ctx, "orders"); err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	b, err := a.Serialize("orders", orderV1())
	if err != nil {
		t.Fatalf("Serialize: %v", err)
	}
	id := register(t, c, "orders-value", readSchema(t, "order_v1.avsc")) // already there: same id
	if b[0] != 0 || int(binary.BigEndian.Uint32(b[1:5])) != id {
		t.Fatalf("header % x, want 00 and id %d", b[:5], id)
	}
	got, err := a.Deserialize("orders", b)
	if err != nil {
		t.Fatalf("Deserialize: %v", err)
	}
	if !reflect.DeepEqual(got, orderV1()) {
		t.Fatalf("round trip: got %#v, want %#v", got, orderV1())
	}
	// Tombstones.
	if b, err := a.Serialize("orders", nil); b != nil || err != nil {
		t.Fatalf("Serialize(nil) = %v, %v", b, err)
	}
	if v, err := a.Deserialize("orders", nil); v != nil || err != nil {
		t.Fatalf("Deserialize(nil) = %v, %v", v, err)
	}
}

// TestAvroWireFormat checks the bytes exactly: magic, big-endian id, Avro.
func TestAvroWireFormat(t *testing.T) {
	c := testRegistry(t)
	// Fill a few ids first so the id is not trivially 1.
	for i, s := range []string{`"int"`, `"long"`, `"double"`} {
		register(t, c, "other-"+string(rune('a'+i)), s)
	}
	k := newAvro(t, c, `"string"`, Key, AutoRegister(true))
	b, err := k.Serialize("t", "hi")
	if err != nil {
		t.Fatal(err)
	}
	id := register(t, c, "t-key", `"string"`)
	if id < 2 {
		t.Fatalf("id %d: want the registry to have assigned earlier ids", id)
	}
	want := []byte{0x00, byte(id >> 24), byte(id >> 16), byte(id >> 8), byte(id), 0x04, 'h', 'i'}
	if string(b) != string(want) {
		t.Fatalf("Serialize = % x, want % x", b, want)
	}
	if got := k.Subject("t"); got != "t-key" {
		t.Fatalf("Subject = %q, want t-key", got)
	}
	if k.Side() != Key || k.Schema().Kind != schema.KindString || !k.AutoRegistering() {
		t.Fatalf("accessors: side %v kind %v auto %v", k.Side(), k.Schema().Kind, k.AutoRegistering())
	}
}

// TestAvroEvolution reads v1-written data with a v2 reader (new fields get
// their defaults) and v2-written data with a v1 reader (extra fields dropped).
func TestAvroEvolution(t *testing.T) {
	c := testRegistry(t)
	v1, v2 := readSchema(t, "order_v1.avsc"), readSchema(t, "order_v2.avsc")
	w1 := newAvro(t, c, v1, Value, AutoRegister(true))
	w2 := newAvro(t, c, v2, Value, AutoRegister(true))
	r1 := newAvro(t, c, v1, Value)
	r2 := newAvro(t, c, v2, Value)

	old, err := w1.Serialize("orders", orderV1())
	if err != nil {
		t.Fatal(err)
	}
	newer := orderV1()
	newer["coupon"] = map[string]any{"string": "SPRING"}
	newer["currency"] = "USD"
	// v2 is BACKWARD compatible with v1 (its new fields have defaults), so it
	// registers as version 2 of the same subject.
	cur, err := w2.Serialize("orders", newer)
	if err != nil {
		t.Fatal(err)
	}
	if string(old[:5]) == string(cur[:5]) {
		t.Fatalf("v1 and v2 written with the same id % x", old[:5])
	}

	got, err := r2.Deserialize("orders", old)
	if err != nil {
		t.Fatalf("v2 reads v1: %v", err)
	}
	want := orderV1()
	want["coupon"] = nil
	want["currency"] = "EUR"
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("v2 reads v1: got %#v, want %#v", got, want)
	}

	got, err = r1.Deserialize("orders", cur)
	if err != nil {
		t.Fatalf("v1 reads v2: %v", err)
	}
	if !reflect.DeepEqual(got, orderV1()) {
		t.Fatalf("v1 reads v2: got %#v, want %#v", got, orderV1())
	}

	// Reading again uses the cached plan and gives the same answer.
	got2, err := r1.Deserialize("orders", cur)
	if err != nil || !reflect.DeepEqual(got2, got) {
		t.Fatalf("second read: %#v, %v", got2, err)
	}
}

// TestAvroIncompatibleWriter: data written with a schema the declared one
// cannot read is an error naming the problem, every time.
func TestAvroIncompatibleWriter(t *testing.T) {
	c := testRegistry(t)
	w := newAvro(t, c, `{"type":"record","name":"Order","namespace":"com.example","fields":[{"name":"id","type":"long"}]}`, Value, AutoRegister(true))
	b, err := w.Serialize("elsewhere", map[string]any{"id": int64(1)})
	if err != nil {
		t.Fatal(err)
	}
	r := newAvro(t, c, readSchema(t, "order_v1.avsc"), Value)
	for range 2 {
		_, err = r.Deserialize("orders", b)
		if !errors.Is(err, schema.ErrIncompatible) {
			t.Fatalf("Deserialize = %v, want ErrIncompatible", err)
		}
		for _, s := range []string{"cannot read", "/fields/amount", "READER_FIELD_MISSING_DEFAULT_VALUE"} {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("error %q lacks %q", err, s)
			}
		}
	}
}

// TestAvroBadPayloads: every malformed payload is an error naming what is
// wrong, never a panic or a value.
func TestAvroBadPayloads(t *testing.T) {
	c := testRegistry(t)
	ctx := context.Background()
	order := newAvro(t, c, readSchema(t, "order_v1.avsc"), Value, AutoRegister(true))
	good, err := order.Serialize("orders", orderV1())
	if err != nil {
		t.Fatal(err)
	}
	// Schemas whose data can claim huge sizes in a few bytes.
	nulls := newAvro(t, c, `{"type":"array","items":"null"}`, Value, AutoRegister(true))
	longs := newAvro(t, c, `{"type":"array","items":"long"}`, Value, AutoRegister(true))
	dict := newAvro(t, c, `{"type":"map","values":"null"}`, Value, AutoRegister(true))
	list := newAvro(t, c, readSchema(t, "list.avsc"), Value, AutoRegister(true))
	union := newAvro(t, c, `["null","string"]`, Value, AutoRegister(true))
	topic := map[*Avro]string{order: "orders", nulls: "nulls", longs: "longs", dict: "dict", list: "list", union: "union"}
	for a, tp := range topic {
		if err := a.Prepare(ctx, tp); err != nil {
			t.Fatal(err)
		}
	}
	header := func(a *Avro) []byte {
		b, err := a.Serialize(topic[a], placeholder(a))
		if err != nil {
			t.Fatal(err)
		}
		return append([]byte(nil), b[:5]...)
	}
	cat := func(parts ...[]byte) []byte {
		var out []byte
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	zigzag := func(n int64) []byte { return binary.AppendUvarint(nil, uint64(n<<1^(n>>63))) }
	deep := header(list)
	for range 2000 {
		deep = append(deep, 0x02, 0x02) // v=1, next: branch 1 (Node)
	}
	deep = append(deep, 0x02, 0x00)

	for _, tc := range []struct {
		name string
		a    *Avro
		in   []byte
		want string
	}{
		{"empty", order, []byte{}, "truncated"},
		{"bad magic", order, append([]byte{0x01}, good[1:]...), "wrong magic byte 0x01 (not Confluent wire format)"},
		{"json not avro", order, []byte(`{"id":"x"}`), "wrong magic byte 0x7b"},
		{"short header", order, good[:3], "truncated: 3 bytes"},
		{"unknown id", order, cat([]byte{0, 0, 0, 0x30, 0x39}, good[5:]), "fetch schema id 12345"},
		{"id zero", order, cat([]byte{0, 0, 0, 0, 0}, good[5:]), "schema id not found"},
		{"header only", order, good[:5], "truncated"},
		{"truncated value", order, good[:len(good)-2], "truncated"},
		{"trailing garbage", order, cat(good, []byte{0xde, 0xad}), "2 bytes left after the value"},
		{"string length past end", order, cat(good[:5], zigzag(1000), []byte("ab")), "exceeds"},
		{"negative string length", order, cat(good[:5], zigzag(-5)), "negative"},
		{"enum index out of range", order, cat(good[:5], zigzag(1), []byte("x"), zigzag(1), zigzag(7), zigzag(0)), "enum com.example.Status index 7"},
		{"varint overflow", order, cat(good[:5], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}), "overflows"},
		{"union index out of range", union, cat(header(union), zigzag(2)), "union branch index 2"},
		{"union index negative", union, cat(header(union), zigzag(-1)), "union branch index -1"},
		{"huge array of longs", longs, cat(header(longs), zigzag(1<<30), []byte{0, 0}), "cannot fit"},
		{"huge negative-count block", longs, cat(header(longs), zigzag(-(1 << 30)), zigzag(2), []byte{0, 0}), "cannot fit"},
		{"block size past end", longs, cat(header(longs), zigzag(-1), zigzag(99), []byte{0, 0}), "block size 99"},
		{"huge array of nulls", nulls, cat(header(nulls), zigzag(1<<31-1), zigzag(0)), "items of zero size"},
		{"huge map", dict, cat(header(dict), zigzag(1<<31-1), []byte{0, 0}), "cannot fit"},
		{"nested too deep", list, deep, "nested more than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := tc.a.Deserialize(topic[tc.a], tc.in)
			if err == nil {
				t.Fatalf("Deserialize(% x) = %#v, want an error", tc.in, v)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Deserialize(% x) error %q, want it to mention %q", tc.in, err, tc.want)
			}
		})
	}
	// The limits leave ordinary data alone.
	ok := [][2]any{
		{nulls, cat(header(nulls), zigzag(1000), zigzag(0))},
		{longs, cat(header(longs), zigzag(-2), zigzag(2), zigzag(5), zigzag(6), zigzag(0))},
	}
	for _, tc := range ok {
		a, in := tc[0].(*Avro), tc[1].([]byte)
		if _, err := a.Deserialize(topic[a], in); err != nil {
			t.Errorf("Deserialize(% x): %v", in, err)
		}
	}
	shallow := header(list)
	for range 100 {
		shallow = append(shallow, 0x02, 0x02)
	}
	shallow = append(shallow, 0x02, 0x00)
	if _, err := list.Deserialize("list", shallow); err != nil {
		t.Errorf("100-deep list: %v", err)
	}
}

// placeholder returns some value of a's schema, to get a header from.
func placeholder(a *Avro) any {
	switch a.Schema().Kind {
	case schema.KindArray:
		return []any{}
	case schema.KindMap:
		return map[string]any{}
	case schema.KindRecord:
		return map[string]any{"v": int64(0), "next": nil}
	}
	return map[string]any{"string": "s"}
}

func TestAvroSerializeErrors(t *testing.T) {
	c := testRegistry(t)
	a := newAvro(t, c, readSchema(t, "order_v1.avsc"), Value, AutoRegister(true))
	dec := newAvro(t, c, `{"type":"bytes","logicalType":"decimal","precision":4,"scale":2}`, Value, AutoRegister(true))
	var nilRat *big.Rat
	for _, tc := range []struct {
		a     *Avro
		topic string
		v     any
	}{
		{a, "orders", "a string"},
		{a, "orders", map[string]any{"id": "x"}}, // fields missing
		{a, "orders", map[string]any{"id": "x", "amount": "ten", "status": "NEW", "tags": []any{}}},
		{a, "orders", map[string]any{"id": "x", "amount": int64(1), "status": "LOST", "tags": []any{}}},
		{dec, "prices", 1.5},
		{dec, "prices", nilRat}, // goavro panics on this one
	} {
		v := tc.v
		b, err := tc.a.Serialize(tc.topic, v)
		if !errors.Is(err, ErrType) || b != nil {
			t.Errorf("Serialize(%#v) = %v, %v; want ErrType", v, b, err)
		} else if !strings.Contains(err.Error(), tc.topic+"-value") {
			t.Errorf("error %q does not name the subject", err)
		}
	}
}

// TestAvroPrepareIncompatible: the error the runner refuses to start with.
func TestAvroPrepareIncompatible(t *testing.T) {
	c := testRegistry(t)
	register(t, c, "orders-value", readSchema(t, "order_v1.avsc"))
	bad := newAvro(t, c, readSchema(t, "order_bad.avsc"), Value, AutoRegister(true))
	err := bad.Prepare(context.Background(), "orders")
	var ie *schema.IncompatibilityError
	if !errors.As(err, &ie) {
		t.Fatalf("Prepare = %v, want a *schema.IncompatibilityError", err)
	}
	if ie.Subject != "orders-value" || ie.Level != schema.Backward {
		t.Fatalf("subject %q level %q", ie.Subject, ie.Level)
	}
	for _, s := range []string{`"orders-value"`, "BACKWARD", "/fields/amount/type", "TYPE_MISMATCH"} {
		if !strings.Contains(ie.Error(), s) {
			t.Errorf("error %q lacks %q", ie.Error(), s)
		}
	}
	// Serialize does not write around a failed check.
	if _, err := bad.Serialize("orders", orderV1()); !errors.As(err, &ie) {
		t.Fatalf("Serialize after failed Prepare = %v, want the incompatibility", err)
	}
}

func TestAvroAutoRegisterOff(t *testing.T) {
	c := testRegistry(t)
	a := newAvro(t, c, readSchema(t, "order_v1.avsc"), Value)
	err := a.Prepare(context.Background(), "orders")
	if !errors.Is(err, registry.ErrNotRegistered) || !strings.Contains(err.Error(), "auto.register.schemas") {
		t.Fatalf("Prepare = %v, want ErrNotRegistered mentioning auto.register.schemas", err)
	}
	if _, err := a.Serialize("orders", orderV1()); !errors.Is(err, registry.ErrNotRegistered) {
		t.Fatalf("lazy Serialize = %v, want ErrNotRegistered", err)
	}
	// Once registered by someone else, the same serde may write.
	id := register(t, c, "orders-value", readSchema(t, "order_v1.avsc"))
	b, err := a.Serialize("orders", orderV1())
	if err != nil {
		t.Fatalf("Serialize after registration: %v", err)
	}
	if got := int(binary.BigEndian.Uint32(b[1:5])); got != id {
		t.Fatalf("id %d, want %d", got, id)
	}
}

func TestNewAvroErrors(t *testing.T) {
	c := testRegistry(t)
	for _, tc := range []struct {
		name   string
		client *registry.Client
		text   string
		side   Side
		want   string
	}{
		{"nil client", nil, `"string"`, Value, "nil registry client"},
		{"no side", c, `"string"`, 0, "want serde.Key or serde.Value"},
		{"bad json", c, `{"type":`, Value, "schema"},
		{"unknown type", c, `{"type":"record","name":"R","fields":[{"name":"a","type":"Nope"}]}`, Key, "key schema"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewAvro(tc.client, tc.text, tc.side)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewAvro = %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
}

// TestAvroConcurrent runs several workers through one serde: prepare lazily,
// write with two schemas, read back (run with -race).
func TestAvroConcurrent(t *testing.T) {
	c := testRegistry(t)
	v1, v2 := readSchema(t, "order_v1.avsc"), readSchema(t, "order_v2.avsc")
	w1 := newAvro(t, c, v1, Value, AutoRegister(true))
	w2 := newAvro(t, c, v2, Value, AutoRegister(true))
	r := newAvro(t, c, v2, Value)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := w1
			if i%2 == 1 {
				w = w2
			}
			for range 20 {
				v := orderV1()
				if w == w2 {
					v["coupon"], v["currency"] = nil, "EUR"
				}
				b, err := w.Serialize("orders", v)
				if err != nil {
					errs <- err
					return
				}
				got, err := r.Deserialize("orders", b)
				if err != nil {
					errs <- err
					return
				}
				if got.(map[string]any)["currency"] != "EUR" {
					errs <- errors.New("currency not EUR")
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// FuzzAvroDeserialize feeds arbitrary payloads to readers whose writer
// schemas are registered (the payload's id picks the writer): anything is an
// error or a value, never a panic, and a value read is one the reader's
// schema can write again.
func FuzzAvroDeserialize(f *testing.F) {
	c := testRegistry(f)
	orders := newAvro(f, c, readSchema(f, "order_v1.avsc"), Value, AutoRegister(true))
	orders2 := newAvro(f, c, readSchema(f, "order_v2.avsc"), Value, AutoRegister(true))
	list := newAvro(f, c, readSchema(f, "list.avsc"), Value, AutoRegister(true))
	kitchen := newAvro(f, c, readSchema(f, "kitchen.avsc"), Value, AutoRegister(true))
	readers := map[string]*Avro{"orders": orders, "list": list, "kitchen": kitchen}
	seed := func(w *Avro, topic string, v any) {
		b, err := w.Serialize(topic, v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	seed(orders, "orders", orderV1())
	v := orderV1()
	v["coupon"], v["currency"] = map[string]any{"string": "C"}, "USD"
	seed(orders2, "orders", v)
	seed(list, "list", map[string]any{"v": int64(1), "next": map[string]any{"Node": map[string]any{"v": int64(2), "next": nil}}})
	k := map[string]any{
		"b": true, "i": int32(-3), "f": float32(1.5), "d": 2.25, "by": []byte{0, 1}, "fx": []byte("abcd"), "e": "GREEN",
		"nulls": []any{nil, nil}, "m": map[string]any{"a": nil, "b": map[string]any{"long": int64(7)}, "c": map[string]any{"string": "x"}},
		"price": big.NewRat(12345, 100), "at": time.UnixMilli(1700000000000).UTC(), "day": time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC),
		"next": nil,
	}
	outer := maps.Clone(k)
	outer["next"] = map[string]any{"test.Kitchen": k}
	seed(kitchen, "kitchen", outer)
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 0, 1})
	f.Add([]byte{1, 2, 3, 4, 5, 6})
	f.Fuzz(func(t *testing.T, b []byte) {
		for topic, r := range readers {
			v, err := r.Deserialize(topic, b)
			if err != nil || v == nil {
				continue
			}
			if _, err := r.Serialize(topic, v); err != nil {
				t.Fatalf("%s: decoded %#v from % x but cannot encode it again: %v", topic, v, b, err)
			}
		}
	})
}

// BenchmarkAvro measures the hot paths: Serialize of a prepared topic, and
// Deserialize with the same schema (no projection) and with v1 data read as
// v2 (projection with defaults).
func BenchmarkAvro(b *testing.B) {
	c := testRegistry(b)
	w1 := newAvro(b, c, readSchema(b, "order_v1.avsc"), Value, AutoRegister(true))
	r2 := newAvro(b, c, readSchema(b, "order_v2.avsc"), Value)
	v := orderV1()
	payload, err := w1.Serialize("orders", v)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("serialize", func(b *testing.B) {
		for b.Loop() {
			if _, err := w1.Serialize("orders", v); err != nil {
				b.Fatal(err)
			}
		}
	})
	for name, r := range map[string]*Avro{"deserialize-same": w1, "deserialize-v1-as-v2": r2} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if _, err := r.Deserialize("orders", payload); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("check-payload-only", func(b *testing.B) {
		plan, err := w1.writerPlan(int(binary.BigEndian.Uint32(payload[1:5])))
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if err := checkPayload(plan, payload[5:]); err != nil {
				b.Fatal(err)
			}
		}
	})
}
