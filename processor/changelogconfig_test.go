package processor

import (
	"strings"
	"testing"
)

func TestCheckChangelogConfig(t *testing.T) {
	kv := map[string]string{"cleanup.policy": "compact"}
	win := map[string]string{"cleanup.policy": "compact,delete", "retention.ms": "90000"}
	tests := []struct {
		name       string
		have, want map[string]string
		errs       []string // substrings, one per expected error
	}{
		{"kv compacted", map[string]string{"cleanup.policy": "compact"}, kv, nil},
		{"kv deleting", map[string]string{"cleanup.policy": "delete", "retention.ms": "1000"}, kv, []string{"cleanup.policy=delete: it must be compact"}},
		{"kv compact,delete", map[string]string{"cleanup.policy": "compact, delete"}, kv, []string{"must be compact"}},
		{"window compacted only", map[string]string{"cleanup.policy": "compact", "retention.ms": "10"}, win, nil},
		{"window same", map[string]string{"cleanup.policy": "compact,delete", "retention.ms": "90000", "retention.bytes": "-1"}, win, nil},
		{"window longer", map[string]string{"cleanup.policy": "compact,delete", "retention.ms": "100000"}, win, nil},
		{"window infinite", map[string]string{"cleanup.policy": "compact,delete", "retention.ms": "-1"}, win, nil},
		{"window shorter", map[string]string{"cleanup.policy": "compact,delete", "retention.ms": "89999"}, win, []string{"retention.ms=89999: it must be at least 90000"}},
		{"window by size and short", map[string]string{"cleanup.policy": "delete", "retention.ms": "5", "retention.bytes": "1024"}, win,
			[]string{"retention.bytes=1024", "retention.ms=5"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			errs := checkChangelogConfig("app-store-changelog", tc.have, tc.want)
			if len(errs) != len(tc.errs) {
				t.Fatalf("got %d errors %v, want %d (%q)", len(errs), errs, len(tc.errs), tc.errs)
			}
			for i, e := range errs {
				if !strings.Contains(e.Error(), tc.errs[i]) || !strings.Contains(e.Error(), `"app-store-changelog"`) {
					t.Errorf("error %d = %q, want it to name the topic and contain %q", i, e, tc.errs[i])
				}
			}
		})
	}
}
