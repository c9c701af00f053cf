package integration

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eos-runner/eos-runner/serde"
	"github.com/eos-runner/eos-runner/topology"
)

// tickingProcessor forwards every record with its metadata and headers, and
// schedules a stream-time punctuator (every second of event time) and a
// wall-clock one (every 50ms) that forward marker records.
type tickingProcessor struct {
	ctx      topology.ProcessorContext
	wallOnce bool
}

func (p *tickingProcessor) Init(ctx topology.ProcessorContext) error {
	p.ctx = ctx
	ctx.Schedule(time.Second, topology.StreamTime, func(ts time.Time) error {
		return ctx.Forward(topology.Record{Key: "stream-time", Value: strconv.FormatInt(ts.UnixMilli(), 10), Timestamp: ts})
	})
	ctx.Schedule(50*time.Millisecond, topology.WallClockTime, func(ts time.Time) error {
		if p.wallOnce {
			return nil
		}
		p.wallOnce = true
		return ctx.Forward(topology.Record{Key: "wall-clock", Value: ctx.TaskID(), Timestamp: ts})
	})
	return nil
}

func (p *tickingProcessor) Process(r topology.Record) error {
	md, ok := p.ctx.RecordMetadata()
	if !ok {
		return nil
	}
	v := r.Value.(string) + "@" + strconv.FormatInt(md.Offset, 10) + "/" + string(r.Header("trace"))
	return p.ctx.Forward(r.WithValue(v))
}

func (p *tickingProcessor) Close() error { return nil }

// TestProcessorAPIPunctuators: a Processor API node sees record metadata and
// headers; its stream-time punctuator fires as event time advances (once per
// second of it, never on the wall clock), its wall-clock punctuator fires
// without input, and their outputs commit exactly once like records'.
func TestProcessorAPIPunctuators(t *testing.T) {
	const records = 100 // event time 0.0s .. 9.9s, 100ms apart, one partition
	b := startBroker(t)
	k := newKafka(t, b.addr)
	ctx := context.Background()
	topic := uniqueTopic("punct")
	if _, err := k.adm.CreateTopics(ctx, 1, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	base := time.UnixMilli(1_700_000_000_000)
	for i := range records {
		k.cl.Produce(ctx, &kgo.Record{Topic: topic, Key: []byte("k"), Value: []byte("v" + strconv.Itoa(i)),
			Timestamp: base.Add(time.Duration(i) * 100 * time.Millisecond),
			Headers:   []kgo.RecordHeader{{Key: "trace", Value: []byte("t" + strconv.Itoa(i))}}}, nil)
	}
	if err := k.cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	bld := topology.NewBuilder()
	bld.Stream([]string{topic}, topology.Consumed{Key: serde.String{}, Value: serde.String{}}).
		Process(func() topology.Processor { return &tickingProcessor{} }, topology.Named("ticker")).
		To(topic+"-out", topology.Produced{Key: serde.String{}, Value: serde.String{}})
	topo, err := bld.Build()
	if err != nil {
		t.Fatal(err)
	}
	cfg := baseConfig(b.addr, topic+"-app", t)
	_, stop := runInProcess(t, cfg, topo)
	waitFor(t, 2*time.Minute, "all input committed", func() bool { return k.committed(ctx, cfg.ApplicationID, topic) == records })
	waitFor(t, time.Minute, "a wall-clock punctuation committed", func() bool {
		return k.endOffsets(ctx, topic+"-out") > records+10
	})
	if err := stop(); err != nil {
		t.Fatalf("runner: %v", err)
	}
	var data, streamTicks, wallTicks []string
	for _, r := range k.readCommitted(t, ctx, topic+"-out") {
		switch string(r.Key) {
		case "stream-time":
			streamTicks = append(streamTicks, string(r.Value))
		case "wall-clock":
			wallTicks = append(wallTicks, string(r.Value))
		default:
			data = append(data, string(r.Value))
		}
	}
	if len(data) != records {
		t.Fatalf("%d data records, want %d", len(data), records)
	}
	for i, v := range data {
		if want := "v" + strconv.Itoa(i) + "@" + strconv.Itoa(i) + "/t" + strconv.Itoa(i); v != want {
			t.Fatalf("record %d = %q, want %q (value@offset/header)", i, v, want)
		}
	}
	// Stream time runs from 0s to 9.9s: the punctuator is armed by the first
	// record and fires at 1s, 2s, ..., 9s of event time.
	if len(streamTicks) != 9 {
		t.Errorf("stream-time punctuations %v, want 9", streamTicks)
	}
	for i, v := range streamTicks {
		if want := strconv.FormatInt(base.Add(time.Duration(i+1)*time.Second).UnixMilli(), 10); v != want {
			t.Errorf("stream-time punctuation %d at %s, want %s", i, v, want)
		}
	}
	if len(wallTicks) != 1 || !strings.HasPrefix(wallTicks[0], "0_") {
		t.Errorf("wall-clock punctuations %v, want one from task 0_0", wallTicks)
	}
	t.Logf("%d records, %d stream-time and %d wall-clock punctuations committed", len(data), len(streamTicks), len(wallTicks))
}
