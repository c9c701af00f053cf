package secret

import (
	"context"
	"fmt"
	"log/slog"
)

// Handler wraps h so that no remembered secret reaches it: the message and
// every attribute of type string, error or fmt.Stringer are scrubbed, groups
// included. Attributes named as secret settings (e.g. "sasl.password") are
// redacted whatever their value.
func Handler(h slog.Handler) slog.Handler {
	if _, ok := h.(*handler); ok {
		return h
	}
	return &handler{h: h}
}

type handler struct{ h slog.Handler }

func (s *handler) Enabled(ctx context.Context, l slog.Level) bool { return s.h.Enabled(ctx, l) }

func (s *handler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, Scrub(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(scrubAttr(a))
		return true
	})
	return s.h.Handle(ctx, out)
}

func (s *handler) WithAttrs(as []slog.Attr) slog.Handler {
	clean := make([]slog.Attr, len(as))
	for i, a := range as {
		clean[i] = scrubAttr(a)
	}
	return &handler{h: s.h.WithAttrs(clean)}
}

func (s *handler) WithGroup(name string) slog.Handler { return &handler{h: s.h.WithGroup(name)} }

func scrubAttr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	if IsSecret(a.Key) && !(v.Kind() == slog.KindString && v.String() == "") {
		return slog.String(a.Key, Redacted)
	}
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, Scrub(v.String()))
	case slog.KindGroup:
		g := v.Group()
		clean := make([]any, len(g))
		for i, ga := range g {
			clean[i] = scrubAttr(ga)
		}
		return slog.Group(a.Key, clean...)
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			return slog.String(a.Key, Scrub(x.Error()))
		case fmt.Stringer:
			return slog.String(a.Key, Scrub(x.String()))
		case []string:
			clean := make([]string, len(x))
			for i, s := range x {
				clean[i] = Scrub(s)
			}
			return slog.Any(a.Key, clean)
		case map[string]string: // e.g. a client's properties
			clean := make(map[string]string, len(x))
			for k, s := range x {
				clean[k] = Scrub(Redact(k, s))
			}
			return slog.Any(a.Key, clean)
		default:
			// Anything else is shown as text if its text holds a secret.
			if s := fmt.Sprint(x); Scrub(s) != s {
				return slog.String(a.Key, Scrub(s))
			}
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}
