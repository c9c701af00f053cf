package bench

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	// Fields after the command: state ppid pgrp session tty_nr tpgid flags
	// minflt cminflt majflt cmajflt utime stime ...
	tail := " S 1 2 3 4 5 6 7 8 9 10 %s %s 0 0 20 0 12 0 100 200 300\n"
	tests := []struct {
		name    string
		stat    string
		want    time.Duration
		wantErr string
	}{
		{"plain", "1234 (eos-runner)" + sprintf(tail, "250", "50"), 3 * time.Second, ""},
		{"command with spaces and parens", "42 (a) b (c))" + sprintf(tail, "1", "2"), 30 * time.Millisecond, ""},
		{"zero", "7 (x)" + sprintf(tail, "0", "0"), 0, ""},
		{"no parenthesis", "7 x S 1 2", 0, "no ')'"},
		{"truncated", "7 (x) S 1 2 3", 0, "fields after the command name"},
		{"not a number", "7 (x)" + sprintf(tail, "abc", "0"), 0, "field 14"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStatCPU([]byte(tt.stat))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("CPU = %v, want %v", got, tt.want)
			}
		})
	}
}

func sprintf(format, a, b string) string {
	return strings.Replace(strings.Replace(format, "%s", a, 1), "%s", b, 1)
}

func TestParseStatusMemory(t *testing.T) {
	status, err := os.ReadFile(filepath.Join("testdata", "status"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := parseStatusMemory(status)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]int64{"VmHWM": 183_456 << 10, "VmRSS": 170_112 << 10, "RssAnon": 120_000 << 10} {
		if got[name] != want {
			t.Errorf("%s = %d, want %d", name, got[name], want)
		}
	}
	if _, ok := got["Threads"]; ok {
		t.Errorf("Threads is not a memory line, got it: %v", got)
	}

	for _, tt := range []struct{ name, status, wantErr string }{
		{"no unit", "VmHWM:\t 12\n", `want "N kB"`},
		{"not a number", "VmHWM:\t x kB\n", "VmHWM"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := parseStatusMemory([]byte(tt.status)); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
	// A zombie's status has no Vm lines: no error, VmHWM reads as 0.
	got, err = parseStatusMemory([]byte("Name:\tx\nState:\tZ (zombie)\n"))
	if err != nil || got["VmHWM"] != 0 {
		t.Errorf("zombie: %v, %v; want no lines, no error", got, err)
	}
}

// TestSampleSelf reads this test process's own /proc entry: the parsers
// agree with the kernel's format.
func TestSampleSelf(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	s, err := sampleProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.PeakRSS <= 0 || s.RSS <= 0 || s.PeakRSS < s.RSS {
		t.Errorf("sample %+v: want 0 < RSS <= peak RSS", s)
	}
}

func TestParseProcStatBusy(t *testing.T) {
	tests := []struct {
		name    string
		stat    string
		want    time.Duration
		wantErr bool
	}{
		// user nice system idle iowait irq softirq steal guest guest_nice
		{"busy excludes idle and iowait", "cpu  100 20 30 5000 70 1 2 3 50 0\ncpu0 1 2 3 4 5 6 7 8 9 0\n", (100 + 20 + 30 + 1 + 2 + 3) * 10 * time.Millisecond, false},
		{"all idle", "cpu  0 0 0 9999 0 0 0 0 0 0\n", 0, false},
		{"per-cpu line first", "cpu0 1 2 3 4 5 6 7 8\n", 0, true},
		{"too few counters", "cpu  1 2 3\n", 0, true},
		{"not a number", "cpu  1 2 x 4 5 6 7 8\n", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseProcStatBusy([]byte(tt.stat))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("busy = %v, want %v", got, tt.want)
			}
		})
	}
}
