package bench

import (
	"strings"
	"testing"
)

func TestChildKeep(t *testing.T) {
	c := &child{name: "runner", done: make(chan struct{})}
	for _, l := range []string{
		`{"time":"2026-01-01T00:00:01Z","level":"INFO","msg":"restored store partition","records":5,"elapsed":"1ms"}`,
		`{"time":"2026-01-01T00:00:01Z","level":"INFO","msg":"librdkafka: something"}`,
		`{"time":"2026-01-01T00:00:01Z","level":"ERROR","msg":"producer error"}`,
		`not json at all`,
		`{"time":"2026-01-01T00:00:02Z","level":"INFO","msg":"restored store partition","records":7,"elapsed":"1ms"}`,
	} {
		c.keep([]byte(l))
	}
	if got := len(c.find("restored store partition")); got != 2 {
		t.Errorf("restored lines kept: %d, want 2", got)
	}
	if got := len(c.find("librdkafka: something")); got != 0 {
		t.Errorf("librdkafka info lines must not be kept, got %d", got)
	}
	if got := len(c.find("producer error")); got != 1 {
		t.Errorf("ERROR lines must be kept, got %d", got)
	}
	if len(c.tail) != 5 || !strings.Contains(c.tail[3], "not json") {
		t.Errorf("tail = %q, want every line, parsed or not", c.tail)
	}
	for range 30 {
		c.keep([]byte("x"))
	}
	if len(c.tail) != 20 {
		t.Errorf("tail has %d lines, want the last 20", len(c.tail))
	}
	if ok, _ := c.exited(); ok {
		t.Error("exited before done was closed")
	}
	close(c.done)
	if ok, err := c.exited(); !ok || err == nil || !strings.Contains(err.Error(), "runner exited") {
		t.Errorf("exited = %v, %v; want true with a description", ok, err)
	}
}
