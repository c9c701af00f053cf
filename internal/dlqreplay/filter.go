package dlqreplay

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/eos-runner/eos-runner/processor"
	"github.com/eos-runner/eos-runner/serde"
	"github.com/eos-runner/eos-runner/topology"
)

// RunnerHeaderPrefix starts the names of the headers the runner adds to a
// dead-lettered record (processor.HeaderErrorClass and the others). A replay
// strips every header with this prefix and keeps the rest.
const RunnerHeaderPrefix = "eos."

// Open marks an open end of the offset range (FromOffset, ToOffset).
const Open int64 = -1

// Config says which DLQ records a replay takes and where it writes them.
type Config struct {
	// DLQ is the dead-letter topic to read. Required.
	DLQ string
	// To is the topic the matching records are written to. Required; usually
	// the records' eos.source.topic, so that the fixed application sees them
	// again, or a separate topic to look at first.
	To string
	// Classes keeps records whose eos.error.class is one of these
	// ("deserialization", "processing", "panic"); empty keeps every class.
	Classes []string
	// Source keeps records whose eos.source.topic equals it; empty keeps all.
	Source string
	// FromOffset and ToOffset keep records whose eos.source.offset lies in
	// [FromOffset, ToOffset], both inclusive; a negative bound (Open) is open.
	// Note that the zero value 0 is a bound: ToOffset 0 keeps offset 0 only.
	FromOffset, ToOffset int64
}

// Validate reports every mistake in c at once.
func (c Config) Validate() error {
	var errs []error
	if c.DLQ == "" {
		errs = append(errs, errors.New("dlq replay: no DLQ topic"))
	}
	if c.To == "" {
		errs = append(errs, errors.New("dlq replay: no target topic (usually the records' eos.source.topic)"))
	}
	if c.DLQ != "" && c.To == c.DLQ {
		errs = append(errs, fmt.Errorf("dlq replay: target topic %q is the DLQ itself", c.To))
	}
	if c.FromOffset >= 0 && c.ToOffset >= 0 && c.FromOffset > c.ToOffset {
		errs = append(errs, fmt.Errorf("dlq replay: from offset %d is past to offset %d", c.FromOffset, c.ToOffset))
	}
	for _, cl := range c.Classes {
		if cl == "" {
			errs = append(errs, errors.New("dlq replay: empty error class"))
		}
	}
	return errors.Join(errs...)
}

// header returns the value of the last header named key, as the runner
// appends its headers after the original ones.
func header(hs []topology.Header, key string) ([]byte, bool) {
	for i := len(hs) - 1; i >= 0; i-- {
		if hs[i].Key == key {
			return hs[i].Value, true
		}
	}
	return nil, false
}

// Match reports whether a DLQ record with these headers is to be replayed. A
// record without eos.error.class was not written by the runner's error
// policy and never matches; one whose eos.source.offset does not parse never
// matches an offset range.
func (c Config) Match(hs []topology.Header) bool {
	class, ok := header(hs, processor.HeaderErrorClass)
	if !ok {
		return false
	}
	if len(c.Classes) > 0 && !slices.Contains(c.Classes, string(class)) {
		return false
	}
	if c.Source != "" {
		src, _ := header(hs, processor.HeaderSourceTopic)
		if string(src) != c.Source {
			return false
		}
	}
	if c.FromOffset >= 0 || c.ToOffset >= 0 {
		raw, _ := header(hs, processor.HeaderSourceOffset)
		off, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil || (c.FromOffset >= 0 && off < c.FromOffset) || (c.ToOffset >= 0 && off > c.ToOffset) {
			return false
		}
	}
	return true
}

// StripRunnerHeaders returns hs without the headers the runner added
// (RunnerHeaderPrefix), in a new slice; hs is not modified.
func StripRunnerHeaders(hs []topology.Header) []topology.Header {
	var out []topology.Header
	for _, h := range hs {
		if !strings.HasPrefix(h.Key, RunnerHeaderPrefix) {
			out = append(out, h)
		}
	}
	return out
}

// Node names of the replay topology.
const (
	SourceNode = "dlq-source"
	FilterNode = "replay-filter"
	SinkNode   = "replay-sink"
)

// Topology returns the replay topology: source cfg.DLQ, a filter that
// forwards matching records with the runner's headers stripped, sink cfg.To.
// Both ends use serde.Bytes, so keys and values go back untouched.
func Topology(cfg Config) (*topology.Topology, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	raw := serde.Bytes{}
	b := topology.NewBuilder()
	b.Stream([]string{cfg.DLQ}, topology.Consumed{Key: raw, Value: raw}, topology.Named(SourceNode)).
		Process(func() topology.Processor { return &filter{cfg: cfg} }, topology.Named(FilterNode)).
		To(cfg.To, topology.Produced{Key: raw, Value: raw}, topology.Named(SinkNode))
	topo, err := b.Build()
	if err != nil {
		return nil, fmt.Errorf("dlq replay: %w", err)
	}
	return topo, nil
}

// filter is the replay's processor: one per task, on its task's worker.
type filter struct {
	cfg Config
	ctx topology.ProcessorContext
}

func (f *filter) Init(ctx topology.ProcessorContext) error { f.ctx = ctx; return nil }

func (f *filter) Process(r topology.Record) error {
	if !f.cfg.Match(r.Headers) {
		return nil
	}
	r.Headers = StripRunnerHeaders(r.Headers)
	return f.ctx.Forward(r)
}

func (f *filter) Close() error { return nil }
