package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat. The
// kernel exports 100 on every architecture Go supports on Linux (it is fixed
// for userspace ABI, whatever the kernel's internal HZ); reading it properly
// needs sysconf(_SC_CLK_TCK), which needs cgo.
const clockTicks = 100

// procSample is one look at a process in /proc.
type procSample struct {
	// CPU is utime + stime: user and system CPU time of all its threads.
	CPU time.Duration
	// PeakRSS is VmHWM, the peak resident set size, in bytes.
	PeakRSS int64
	// RSS is VmRSS, the current resident set size, in bytes.
	RSS int64
}

// sampleProc reads /proc/PID/stat and /proc/PID/status.
func sampleProc(pid int) (procSample, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procSample{}, fmt.Errorf("bench: sample process %d: %w", pid, err)
	}
	cpu, err := parseStatCPU(stat)
	if err != nil {
		return procSample{}, fmt.Errorf("bench: sample process %d: %w", pid, err)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return procSample{}, fmt.Errorf("bench: sample process %d: %w", pid, err)
	}
	mem, err := parseStatusMemory(status)
	if err != nil {
		return procSample{}, fmt.Errorf("bench: sample process %d: %w", pid, err)
	}
	return procSample{CPU: cpu, PeakRSS: mem["VmHWM"], RSS: mem["VmRSS"]}, nil
}

// parseStatCPU returns utime + stime (fields 14 and 15 of proc(5)'s
// /proc/PID/stat) as a duration. The command name, field 2, is in
// parentheses and may itself hold spaces and parentheses, so fields are
// counted from the last ')'.
func parseStatCPU(stat []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("stat: no ')' after the command name in %q", truncateBytes(stat, 80))
	}
	fields := bytes.Fields(stat[i+1:])
	// fields[0] is field 3 (state); utime is field 14, stime field 15.
	const utime, stime = 14 - 3, 15 - 3
	if len(fields) <= stime {
		return 0, fmt.Errorf("stat: %d fields after the command name, want more than %d", len(fields), stime)
	}
	var ticks uint64
	for _, f := range []int{utime, stime} {
		n, err := strconv.ParseUint(string(fields[f]), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("stat: field %d: %w", f+3, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// parseStatusMemory returns the "Vm*" and "Rss*" lines of /proc/PID/status
// (given in kB) in bytes. A kernel thread or zombie has none; VmHWM is then
// absent and reads as 0.
func parseStatusMemory(status []byte) (map[string]int64, error) {
	out := map[string]int64{}
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		name, rest, ok := bytes.Cut(sc.Bytes(), []byte(":"))
		if !ok || !(bytes.HasPrefix(name, []byte("Vm")) || bytes.HasPrefix(name, []byte("Rss"))) {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 2 || string(f[1]) != "kB" {
			return nil, fmt.Errorf("status: %s: want \"N kB\", got %q", name, bytes.TrimSpace(rest))
		}
		n, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("status: %s: %w", name, err)
		}
		out[string(name)] = n << 10
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	return out, nil
}

func truncateBytes(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// machineBusy returns the CPU time all CPUs spent not idle (the first line
// of /proc/stat: user, nice, system, irq, softirq and steal; idle and
// iowait excluded), to tell how much of the machine other processes used
// during a run.
func machineBusy() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, fmt.Errorf("bench: machine CPU: %w", err)
	}
	return parseProcStatBusy(b)
}

// parseProcStatBusy parses the aggregate "cpu" line of /proc/stat (proc(5):
// user nice system idle iowait irq softirq steal guest guest_nice, in
// USER_HZ ticks; guest time is already in user).
func parseProcStatBusy(stat []byte) (time.Duration, error) {
	line, _, _ := bytes.Cut(stat, []byte("\n"))
	f := bytes.Fields(line)
	if len(f) < 9 || string(f[0]) != "cpu" {
		return 0, fmt.Errorf("/proc/stat: first line %q: want \"cpu\" and at least 8 counters", truncateBytes(line, 80))
	}
	var busy uint64
	for i, v := range f[1:9] {
		n, err := strconv.ParseUint(string(v), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat: counter %d: %w", i+1, err)
		}
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		busy += n
	}
	return time.Duration(busy) * time.Second / clockTicks, nil
}

// loadAverage returns the 1-minute load average from /proc/loadavg, or "" if
// it cannot be read.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := bytes.Fields(b)
	if len(f) == 0 {
		return ""
	}
	return string(f[0])
}
