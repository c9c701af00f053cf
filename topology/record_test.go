package topology

import (
	"testing"
)

func TestRecordWithKeyAndValueCopy(t *testing.T) {
	orig := Record{Key: "k", Value: "v", Headers: []Header{{Key: "h", Value: []byte("1")}}}
	v := orig.WithValue("v2")
	k := orig.WithKey("k2")
	if orig.Key != "k" || orig.Value != "v" {
		t.Errorf("original changed: %+v", orig)
	}
	if v.Key != "k" || v.Value != "v2" {
		t.Errorf("WithValue = %+v", v)
	}
	if k.Key != "k2" || k.Value != "v" {
		t.Errorf("WithKey = %+v", k)
	}
	if string(v.Header("h")) != "1" || string(k.Header("h")) != "1" {
		t.Errorf("headers not carried over")
	}
}

func TestRecordHeader(t *testing.T) {
	r := Record{Headers: []Header{
		{Key: "a", Value: []byte("first")},
		{Key: "b", Value: []byte("b")},
		{Key: "a", Value: []byte("last")},
	}}
	tests := []struct {
		key  string
		want []byte
	}{
		{"a", []byte("last")},
		{"b", []byte("b")},
		{"missing", nil},
	}
	for _, tt := range tests {
		if got := r.Header(tt.key); string(got) != string(tt.want) || (tt.want == nil) != (got == nil) {
			t.Errorf("Header(%q) = %q, want %q", tt.key, got, tt.want)
		}
	}
	if got := (Record{}).Header("a"); got != nil {
		t.Errorf("Header on no headers = %q", got)
	}
}

func TestStringers(t *testing.T) {
	tests := []struct {
		got, want string
	}{
		{SourceNode.String(), "Source"},
		{ProcessorNode.String(), "Processor"},
		{SinkNode.String(), "Sink"},
		{StreamTime.String(), "stream-time"},
		{WallClockTime.String(), "wall-clock"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("String() = %q, want %q", tt.got, tt.want)
		}
	}
}
