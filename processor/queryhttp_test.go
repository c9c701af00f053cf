package processor

import (
	"testing"

	"github.com/eos-runner/eos-runner/serde"
)

func TestParseKeyText(t *testing.T) {
	for _, c := range []struct {
		s    serde.Serde
		text string
		want any
	}{
		{serde.String{}, "k1", "k1"},
		{serde.String{}, "42", "42"},
		{serde.Int64{}, "42", int64(42)},
		{serde.DecimalString{}, "-7", int64(-7)},
		{serde.JSON{}, `{"id":1}`, map[string]any{"id": float64(1)}},
		{serde.JSON{}, `plain`, "plain"},
	} {
		got, err := parseKeyText(c.s, c.text)
		if err != nil {
			t.Fatalf("%T %q: %v", c.s, c.text, err)
		}
		if m, ok := c.want.(map[string]any); ok {
			if gm, ok := got.(map[string]any); !ok || gm["id"] != m["id"] {
				t.Errorf("%T %q: %#v, want %#v", c.s, c.text, got, c.want)
			}
			continue
		}
		if got != c.want {
			t.Errorf("%T %q: %#v, want %#v", c.s, c.text, got, c.want)
		}
	}
	if _, err := parseKeyText(serde.Int64{}, "x"); err == nil {
		t.Error("a non-integer key for an int64 serde: no error")
	}
}
