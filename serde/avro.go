package serde

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/linkedin/goavro/v2"

	"github.com/eos-runner/eos-runner/schema"
	"github.com/eos-runner/eos-runner/schema/registry"
)

// Side is the part of a record a serde encodes: its key or its value. It
// picks the subject under the TopicNameStrategy.
type Side int

// The two sides. The zero Side is neither, so a forgotten side is an error
// rather than a silent "key".
const (
	Key Side = iota + 1
	Value
)

// String returns "key" or "value", the subject suffix.
func (s Side) String() string {
	switch s {
	case Key:
		return "key"
	case Value:
		return "value"
	}
	return fmt.Sprintf("Side(%d)", int(s))
}

// Confluent wire format: byte 0 is the magic byte 0x00, bytes 1 to 4 the
// schema id (big-endian), then the Avro binary encoding of the value.
const (
	wireMagic     = 0x00
	wireHeaderLen = 5
)

// Limits that bound what a hostile or corrupt payload can cost to decode;
// goavro trusts block counts (it preallocates up to MaxInt32 items) and
// recurses once per nesting level, so they are checked before it runs.
const (
	// maxNesting bounds how deeply values may nest (records in unions in
	// arrays...), as Jackson's default maxNestingDepth does for JSON: beyond
	// it a recursive schema's data could exhaust the goroutine stack.
	maxNesting = 1000
	// maxZeroSizeItems bounds the items of zero encoded size (null, empty
	// records) a payload may declare, since no byte count bounds them.
	maxZeroSizeItems = 1 << 16
)

// Avro is a serde for Avro in the Confluent wire format, with subjects named
// by the TopicNameStrategy (`<topic>-key`, `<topic>-value`). It is bound to
// one side and one declared schema: the schema the sink writes with, and the
// reader schema a source's values are projected into.
//
// Write path: Prepare(ctx, topic) asks the registry, through
// Client.EnsureSchema, for the id of the declared schema under the topic's
// subject. That checks the schema against the subject at the subject's
// compatibility level and registers it if allowed (AutoRegister); an
// incompatible schema fails with a *schema.IncompatibilityError naming
// subject, level, field path and rule, which is how the runner refuses to
// start. Serialize for a topic that was never prepared prepares it first,
// with context.Background() (bounded by the client's HTTP timeout), doing the
// very same check: store changelogs and user code serialize to topics the
// runner does not prepare at startup, and an error there would make Avro
// unusable for them. A failed lazy preparation is not remembered: the next
// Serialize asks again.
//
// Read path: Deserialize reads the schema id, fetches the writer schema by id
// (cached by the client), checks the payload's structure against it, decodes
// with goavro and projects the value into the declared schema by Avro's
// resolution rules (defaults for missing fields, extra fields dropped,
// promotions, ...). Payloads that are not the wire format, name an unknown
// id, are truncated, malformed or have bytes left over, or were written with
// a schema the declared one cannot read, are errors, never panics.
//
// Values are goavro's native forms: records map[string]any, unions nil or
// map[string]any{"branch": v}, int int32, long int64, and so on (see
// schema.Resolution). A nil value is a nil payload (a tombstone).
//
// As a key serde, mind that the bytes carry the schema id: Kafka partitions
// by the key bytes and compaction keeps the last record per key bytes, so a
// key schema registered anew (even an equivalent one with another id) sends
// equal keys to other partitions and leaves old ones uncompacted. Key schemas
// should not evolve.
//
// An Avro is safe for concurrent use by several task workers.
type Avro struct {
	client       *registry.Client
	side         Side
	declared     *schema.Schema
	codec        *goavro.Codec // of declared; goavro codecs are safe for concurrent use
	autoRegister bool
	resolver     *schema.Resolver

	// mu guards ids and writers; never held across a registry call.
	mu sync.Mutex
	// ids maps a topic to the id its subject gave the declared schema.
	ids map[string]int
	// writers maps a writer schema id to how to read its data; incompatible
	// writers are kept too (with err), since ids are immutable.
	writers map[int]*writerPlan
}

// writerPlan is how to read data written with one registry schema id.
type writerPlan struct {
	writer *schema.Schema
	codec  *goavro.Codec
	// res projects writer values into the declared schema; nil when the
	// writer's text is the declared schema's, and values pass unchanged.
	res *schema.Resolution
	// minSize is each writer node's smallest encoded size, for checkPayload.
	minSize map[*schema.Schema]int
	// err is why the declared schema cannot read this writer, if it cannot.
	err error
}

// AvroOption configures NewAvro.
type AvroOption func(*Avro)

// AutoRegister sets whether Prepare may register the declared schema under
// its subject when it is compatible but not yet there. Default false, as
// Confluent serializers' `auto.register.schemas` should be outside
// development: schemas are then registered by a deliberate step (CI, the
// `eos-runner schema` commands), and a runner never changes a subject.
func AutoRegister(on bool) AvroOption {
	return func(a *Avro) { a.autoRegister = on }
}

// WithResolver shares a resolution cache between serdes (default: one per
// serde). Useful when many serdes read the same schemas.
func WithResolver(r *schema.Resolver) AvroOption {
	return func(a *Avro) {
		if r != nil {
			a.resolver = r
		}
	}
}

// NewAvro returns an Avro serde for one side of records, declaring
// schemaText (Avro schema JSON) as the schema it writes with and reads into.
// It fails if the schema does not parse, or if goavro cannot build a codec
// for it. It does not talk to the registry; Prepare does.
func NewAvro(client *registry.Client, schemaText string, side Side, opts ...AvroOption) (*Avro, error) {
	if client == nil {
		return nil, errors.New("serde: avro: nil registry client")
	}
	if side != Key && side != Value {
		return nil, fmt.Errorf("serde: avro: side %v: want serde.Key or serde.Value", side)
	}
	declared, err := schema.Parse(schemaText)
	if err != nil {
		return nil, fmt.Errorf("serde: avro %s schema: %w", side, err)
	}
	codec, err := goavro.NewCodec(schemaText)
	if err != nil {
		return nil, fmt.Errorf("serde: avro %s schema: goavro codec: %w", side, err)
	}
	a := &Avro{
		client:   client,
		side:     side,
		declared: declared,
		codec:    codec,
		resolver: schema.NewResolver(),
		ids:      make(map[string]int),
		writers:  make(map[int]*writerPlan),
	}
	for _, o := range opts {
		o(a)
	}
	return a, nil
}

// Schema returns the declared schema: the one Serialize writes with and
// Deserialize reads into.
func (a *Avro) Schema() *schema.Schema { return a.declared }

// Side returns the side of the record the serde is bound to.
func (a *Avro) Side() Side { return a.side }

// AutoRegistering reports whether Prepare may register the schema.
func (a *Avro) AutoRegistering() bool { return a.autoRegister }

// Subject returns the subject of topic for this serde's side, by the
// TopicNameStrategy: "<topic>-key" or "<topic>-value".
func (a *Avro) Subject(topic string) string { return topic + "-" + a.side.String() }

// Prepare implements Preparer: it makes sure the declared schema may be
// written under topic's subject and remembers its id (see Avro). The error is
// a *schema.IncompatibilityError (wrapped) when the schema is incompatible at
// the subject's level, and wraps registry.ErrNotRegistered when it is
// compatible but absent and AutoRegister is off.
func (a *Avro) Prepare(ctx context.Context, topic string) error {
	_, err := a.prepare(ctx, topic)
	return err
}

// prepare is Prepare, returning the id.
func (a *Avro) prepare(ctx context.Context, topic string) (int, error) {
	subject := a.Subject(topic)
	id, err := a.client.EnsureSchema(ctx, subject, a.declared, a.autoRegister)
	if err != nil {
		return 0, fmt.Errorf("serde: avro: prepare topic %q: %w", topic, err)
	}
	if id < 0 || id > math.MaxInt32 {
		// Confluent's clients read the id as a signed 32-bit int.
		return 0, fmt.Errorf("serde: avro: prepare topic %q: registry gave schema id %d, outside the wire format's int32", topic, id)
	}
	a.mu.Lock()
	a.ids[topic] = id
	a.mu.Unlock()
	return id, nil
}

// Serialize implements Serde: the Confluent wire format of v encoded with the
// declared schema. A topic not yet prepared is prepared first (see Avro). A v
// that does not fit the schema wraps ErrType.
func (a *Avro) Serialize(topic string, v any) ([]byte, error) {
	if v == nil {
		return nil, nil
	}
	a.mu.Lock()
	id, ok := a.ids[topic]
	a.mu.Unlock()
	if !ok {
		var err error
		if id, err = a.prepare(context.Background(), topic); err != nil {
			return nil, err
		}
	}
	buf := make([]byte, wireHeaderLen, 64)
	buf[0] = wireMagic
	binary.BigEndian.PutUint32(buf[1:], uint32(id))
	out, err := encode(a.codec, buf, v)
	if err != nil {
		return nil, fmt.Errorf("%w: avro serde, subject %q: %w", ErrType, a.Subject(topic), err)
	}
	return out, nil
}

// encode appends v's Avro binary form to buf. goavro panics on some values
// (a nil *big.Rat for a decimal, for one); that is the caller's bad value, an
// error like any other type mismatch, not a reason to kill the process.
func encode(codec *goavro.Codec, buf []byte, v any) (out []byte, err error) {
	defer func() {
		if p := recover(); p != nil {
			out, err = nil, fmt.Errorf("goavro panicked encoding a %T: %v", v, p)
		}
	}()
	return codec.BinaryFromNative(buf, v)
}

// Deserialize implements Serde: it decodes a Confluent wire format payload
// with its writer schema and projects the value into the declared schema.
// Registry look-ups use context.Background(), bounded by the client's HTTP
// timeout; ids found are cached, an unknown id is asked again next time.
func (a *Avro) Deserialize(topic string, b []byte) (any, error) {
	if b == nil {
		return nil, nil
	}
	if len(b) > 0 && b[0] != wireMagic {
		return nil, fmt.Errorf("serde: avro: topic %q %s: wrong magic byte 0x%02x (not Confluent wire format)", topic, a.side, b[0])
	}
	if len(b) < wireHeaderLen {
		return nil, fmt.Errorf("serde: avro: topic %q %s: truncated: %d bytes, the Confluent wire format needs at least %d (magic byte and schema id)", topic, a.side, len(b), wireHeaderLen)
	}
	id := int(binary.BigEndian.Uint32(b[1:wireHeaderLen]))
	plan, err := a.writerPlan(id)
	if err != nil {
		return nil, fmt.Errorf("serde: avro: topic %q %s: %w", topic, a.side, err)
	}
	body := b[wireHeaderLen:]
	if err := checkPayload(plan, body); err != nil {
		return nil, fmt.Errorf("serde: avro: topic %q %s: schema id %d: malformed data: %w", topic, a.side, id, err)
	}
	native, err := decode(plan.codec, body)
	if err != nil {
		return nil, fmt.Errorf("serde: avro: topic %q %s: schema id %d: %w", topic, a.side, id, err)
	}
	if plan.res == nil {
		return native, nil
	}
	out, err := plan.res.Project(native)
	if err != nil {
		return nil, fmt.Errorf("serde: avro: topic %q %s: schema id %d: %w", topic, a.side, id, err)
	}
	return out, nil
}

// decode runs goavro on a payload checkPayload accepted. The recover is a
// last line of defence: goavro is third-party code fed untrusted bytes, and a
// panic would kill every task of the process rather than send one record to
// the error policy.
func decode(codec *goavro.Codec, body []byte) (v any, err error) {
	defer func() {
		if p := recover(); p != nil {
			v, err = nil, fmt.Errorf("goavro panicked decoding the payload: %v", p)
		}
	}()
	native, rest, err := codec.NativeFromBinary(body)
	if err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if len(rest) > 0 {
		return nil, fmt.Errorf("decode: %d bytes left after the value", len(rest))
	}
	return native, nil
}

// writerPlan returns how to read data written with schema id, fetching the
// schema on first use.
func (a *Avro) writerPlan(id int) (*writerPlan, error) {
	a.mu.Lock()
	p := a.writers[id]
	a.mu.Unlock()
	if p == nil {
		ctx := context.Background()
		writer, err := a.client.SchemaByID(ctx, id)
		if err != nil {
			return nil, err
		}
		codec, err := a.client.CodecByID(ctx, id)
		if err != nil {
			return nil, err
		}
		p = &writerPlan{writer: writer, codec: codec, minSize: minSizes(writer)}
		if writer.String() != a.declared.String() {
			p.res, err = a.resolver.Resolve(a.declared, writer)
			if err != nil {
				p.err = fmt.Errorf("schema id %d: the declared %s schema cannot read data written with it: %w", id, a.side, err)
			}
		}
		a.mu.Lock()
		if prev := a.writers[id]; prev != nil {
			p = prev
		} else {
			a.writers[id] = p
		}
		a.mu.Unlock()
	}
	if p.err != nil {
		return nil, p.err
	}
	return p, nil
}

// minSizes returns the smallest encoded size of every node of s: what bounds
// how many items a block of a given byte length can hold.
func minSizes(s *schema.Schema) map[*schema.Schema]int {
	m := make(map[*schema.Schema]int)
	minSize(s, m)
	return m
}

func minSize(s *schema.Schema, m map[*schema.Schema]int) int {
	if n, ok := m[s]; ok {
		return n // done, or in progress (a recursive record: counted as 0)
	}
	m[s] = 0
	n := 0
	switch s.Kind {
	case schema.KindNull:
	case schema.KindFloat:
		n = 4
	case schema.KindDouble:
		n = 8
	case schema.KindFixed:
		n = s.Size
	case schema.KindRecord:
		for _, f := range s.Fields {
			n += minSize(f.Type, m)
		}
	case schema.KindArray:
		minSize(s.Items, m)
		n = 1
	case schema.KindMap:
		minSize(s.Values, m)
		n = 1
	case schema.KindUnion:
		n = 1
		for _, br := range s.Branches {
			minSize(br, m)
		}
	default: // boolean, int, long, bytes, string, enum: one byte at least
		n = 1
	}
	m[s] = n
	return n
}

// checkPayload walks body by the writer schema without decoding it: every
// length, count, union index and enum index must be in range and the value
// must end exactly at the end of body. goavro would preallocate a block's
// declared count of items before reading any, so an array or map block may
// declare no more items than the bytes left could hold.
func checkPayload(p *writerPlan, body []byte) error {
	w := &walker{buf: body, minSize: p.minSize}
	if err := w.value(p.writer, 0); err != nil {
		return err
	}
	if len(w.buf) > 0 {
		return fmt.Errorf("%d bytes left after the value", len(w.buf))
	}
	return nil
}

// walker is one checkPayload pass: buf is what is left to read.
type walker struct {
	buf       []byte
	minSize   map[*schema.Schema]int
	zeroItems int
}

func (w *walker) value(s *schema.Schema, depth int) error {
	if depth > maxNesting {
		return fmt.Errorf("values nested more than %d deep", maxNesting)
	}
	switch s.Kind {
	case schema.KindNull:
		return nil
	case schema.KindBoolean:
		return w.skip(1, "boolean")
	case schema.KindInt, schema.KindLong:
		_, err := w.long("int or long")
		return err
	case schema.KindFloat:
		return w.skip(4, "float")
	case schema.KindDouble:
		return w.skip(8, "double")
	case schema.KindFixed:
		return w.skip(s.Size, "fixed")
	case schema.KindBytes:
		return w.lengthPrefixed("bytes")
	case schema.KindString:
		return w.lengthPrefixed("string")
	case schema.KindEnum:
		i, err := w.long("enum index")
		if err != nil {
			return err
		}
		if i < 0 || i >= int64(len(s.Symbols)) {
			return fmt.Errorf("enum %s index %d out of range [0,%d)", s.Name, i, len(s.Symbols))
		}
		return nil
	case schema.KindUnion:
		i, err := w.long("union branch index")
		if err != nil {
			return err
		}
		if i < 0 || i >= int64(len(s.Branches)) {
			return fmt.Errorf("union branch index %d out of range [0,%d)", i, len(s.Branches))
		}
		return w.value(s.Branches[i], depth+1)
	case schema.KindRecord:
		for _, f := range s.Fields {
			if err := w.value(f.Type, depth+1); err != nil {
				return fmt.Errorf("record %s field %q: %w", s.Name, f.Name, err)
			}
		}
		return nil
	case schema.KindArray:
		return w.blocks(false, s.Items, depth)
	case schema.KindMap:
		return w.blocks(true, s.Values, depth)
	}
	return fmt.Errorf("unexpected schema kind %q", s.Kind)
}

// blocks walks an array's or map's blocks: a count (negative: followed by a
// byte size), that many items (each a string key and a value in a map), ...,
// a zero count.
func (w *walker) blocks(isMap bool, item *schema.Schema, depth int) error {
	what, itemMin := "array", w.minSize[item]
	if isMap {
		what, itemMin = "map", itemMin+1 // a key is a string: one byte at least
	}
	for {
		count, err := w.long("block count")
		if err != nil {
			return err
		}
		if count == 0 {
			return nil
		}
		if count < 0 {
			if count == math.MinInt64 {
				return fmt.Errorf("%s block count %d", what, count)
			}
			count = -count
			size, err := w.long("block size")
			if err != nil {
				return err
			}
			if size < 0 || size > int64(len(w.buf)) {
				return fmt.Errorf("%s block size %d out of range [0,%d]", what, size, len(w.buf))
			}
		}
		if itemMin > 0 {
			if count > int64(len(w.buf)/itemMin) {
				return fmt.Errorf("%s block of %d items cannot fit in the %d bytes left", what, count, len(w.buf))
			}
		} else {
			if count > int64(maxZeroSizeItems-w.zeroItems) {
				return fmt.Errorf("%s declares more than %d items of zero size", what, maxZeroSizeItems)
			}
			w.zeroItems += int(count)
		}
		for i := int64(0); i < count; i++ {
			if isMap {
				if err := w.lengthPrefixed("map key"); err != nil {
					return fmt.Errorf("%s key %d: %w", what, i, err)
				}
			}
			if err := w.value(item, depth+1); err != nil {
				return fmt.Errorf("%s item %d: %w", what, i, err)
			}
		}
	}
}

// lengthPrefixed skips a bytes or string value: a long length, then as many
// bytes.
func (w *walker) lengthPrefixed(what string) error {
	n, err := w.long("length")
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if n < 0 {
		return fmt.Errorf("%s length %d is negative", what, n)
	}
	if n > int64(len(w.buf)) {
		return fmt.Errorf("truncated: %s length %d exceeds the %d bytes left", what, n, len(w.buf))
	}
	w.buf = w.buf[n:]
	return nil
}

// long reads one zig-zag varint, as Avro encodes int and long.
func (w *walker) long(what string) (int64, error) {
	u, n := binary.Uvarint(w.buf)
	switch {
	case n == 0:
		return 0, fmt.Errorf("truncated: %s missing", what)
	case n < 0:
		return 0, fmt.Errorf("%s: varint overflows 64 bits", what)
	}
	w.buf = w.buf[n:]
	return int64(u>>1) ^ -int64(u&1), nil
}

func (w *walker) skip(n int, what string) error {
	if n > len(w.buf) {
		return fmt.Errorf("truncated: %s needs %d bytes, %d left", what, n, len(w.buf))
	}
	w.buf = w.buf[n:]
	return nil
}
