package bench

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Run names and guarantees as they appear in results.json.
const (
	RunRawCopy   = "raw-copy"
	RunStateless = "stateless"
	RunStateful  = "stateful"
	RunWindowed  = "windowed"
	RunDedup     = "dedup"
	RunJoin      = "join"
	RunGoka      = "goka" // the goka peer (goka.go), not eos-runner
	// RunRawCopy2x is the raw copy producing every record twice: the
	// client's own cost of what a stateful record needs at least (an
	// output and a changelog record), with no state, transaction or
	// processing. A reference row, paired with a plain raw copy like the
	// rest.
	RunRawCopy2x = "raw-copy-2x"

	GuaranteeNone = "none"

	// KeysUniform and KeysZipf name the key distribution of an input.
	KeysUniform = "uniform"
	KeysZipf    = "zipf"

	// BinaryBaseline labels the runs of Config.BaselineBinary.
	BinaryBaseline = "baseline"
	// BinaryPeer labels the runs of another stream processor (RunGoka).
	BinaryPeer = "peer"

	// MaxRatioSpread is the widest spread of a configuration's pair ratios
	// (max - min over the median) the table shows unflagged.
	MaxRatioSpread = 0.10
)

// Results is what `eos-runner bench` writes to bench/results.json. Every
// figure is measured, none is asserted: see docs/BENCHMARKS.md for what
// limits each.
type Results struct {
	// Command is the command line that produced the results.
	Command   string    `json:"command"`
	StartedAt time.Time `json:"started_at"`
	// Seconds is the wall time of the whole bench.
	Seconds     float64     `json:"seconds"`
	Environment Environment `json:"environment"`
	Workload    Workload    `json:"workload"`
	// Runs are every throughput run, in the order they ran: rounds of
	// pairs, a raw copy and then the configuration it is the baseline of
	// (raw, A, raw, B, ..., then the next round).
	Runs []RunResult `json:"runs"`
	// Summary is one row per configuration: the medians of its runs and
	// of its pairs' ratios, with their spread.
	Summary []Summary `json:"summary"`
	// Latency is keyed by commit interval, "<ms>ms".
	Latency map[string]LatencyResult `json:"latency"`
	Restore RestoreResult            `json:"restore"`
	// Failover is with and without a standby replica (failover.go).
	Failover FailoverResult `json:"failover"`
}

// Environment says where the figures were taken.
type Environment struct {
	GoVersion string `json:"go_version"`
	CPUs      int    `json:"cpus"`
	// Broker is "embedded" (eos-runner broker, kfake, in memory, its own
	// process) or "external" (BENCH_BROKERS).
	Broker string `json:"broker"`
	// LoadAvgStart and LoadAvgEnd are the 1-minute load averages before and
	// after: on a shared machine, a sign of how much else was running.
	LoadAvgStart string `json:"load_avg_start"`
	LoadAvgEnd   string `json:"load_avg_end"`
}

// Workload is the input of the throughput runs.
type Workload struct {
	Records    int `json:"records"`
	Partitions int `json:"partitions"`
	Keys       int `json:"keys"`
	ValueBytes int `json:"value_bytes"`
	// ZipfS is the exponent of the Zipf key distribution (KeysZipf).
	ZipfS float64 `json:"zipf_s"`
	// Repeats is the number of rounds: runs per configuration.
	Repeats int `json:"repeats"`
	// CacheBytes is statestore.cache.max.bytes of the cached runs.
	CacheBytes int64 `json:"cache_max_bytes"`
}

// RunResult is one throughput run. RecordsPerSec and CPUMicrosPerRecord are
// taken over the measurement window (first committed offset seen to the
// input's end committed); see the package documentation.
type RunResult struct {
	Name      string `json:"name"`
	Guarantee string `json:"guarantee"`
	// Keys is the input's key distribution: KeysUniform or KeysZipf.
	Keys string `json:"keys"`
	// CacheBytes is the runner's statestore.cache.max.bytes (0: no cache).
	CacheBytes int64 `json:"cache_max_bytes"`
	// Binary is "" for the bench's own binary, BinaryBaseline for
	// Config.BaselineBinary, BinaryPeer for a peer's (Config.GokaBinary).
	Binary string `json:"binary,omitempty"`
	// Round is the repetition (from 0); Pair is the index in Runs of the
	// raw copy this run is paired with (its own index for a raw copy).
	Round int `json:"round"`
	Pair  int `json:"pair"`
	// Records is the input records the run processed.
	Records       int64   `json:"records"`
	RecordsPerSec float64 `json:"records_per_sec"`
	// CPUMicrosPerRecord is the runner process's CPU (utime+stime, all
	// threads) per record, in µs; equal to CPU seconds per million records.
	CPUMicrosPerRecord float64 `json:"cpu_us_per_record"`
	// PeakRSSBytes is the runner's VmHWM when the run was done.
	PeakRSSBytes int64 `json:"peak_rss_bytes"`
	// RatioToRaw is RecordsPerSec over that of the raw copy run just
	// before it (its pair).
	RatioToRaw float64 `json:"ratio_to_raw"`
	// CPURatioToRaw is CPUMicrosPerRecord over its pair's.
	CPURatioToRaw float64 `json:"cpu_ratio_to_raw"`
	// BrokerCPUMicrosPerRecord is the embedded broker's CPU per record in the
	// same window (0 with an external broker): on a 2-core machine the broker
	// and the runner compete, and this shows for how much.
	BrokerCPUMicrosPerRecord float64 `json:"broker_cpu_us_per_record"`
	// OtherCores is the average number of cores busy with anything but the
	// runner and the broker in the window (the bench itself, other users of
	// the machine): a run with a high figure competed for CPU.
	OtherCores float64 `json:"other_cores"`
	// WindowSeconds is the measurement window; WallSeconds is process start
	// to done (startup, group join and restore included).
	WindowSeconds float64 `json:"window_sec"`
	WallSeconds   float64 `json:"wall_sec"`
}

// LatencyResult is the latency of one commit interval: input record
// timestamp (stamped by the bench's producer) to the output's arrival at a
// read_committed consumer in the bench process.
type LatencyResult struct {
	CommitIntervalMs int `json:"commit_interval_ms"`
	// CacheBytes is the runner's statestore.cache.max.bytes (0: no record
	// cache; outputs are produced as records are processed, not at commit).
	CacheBytes int64   `json:"cache_max_bytes"`
	InputRate  int     `json:"input_rate_per_sec"`
	Records    int     `json:"records"`
	P50Ms      float64 `json:"p50_ms"`
	P99Ms      float64 `json:"p99_ms"`
	MaxMs      float64 `json:"max_ms"`
}

// RestoreResult is the restore phase.
type RestoreResult struct {
	// Keys is the number of keys in the store (and records in the changelog).
	Keys int `json:"keys"`
	// Records were restored into an empty state dir, in Seconds (the sum of
	// the partitions' restore times: the runner restores one at a time).
	Records       int64   `json:"records"`
	Seconds       float64 `json:"seconds"`
	RecordsPerSec float64 `json:"records_per_sec"`
	// CleanRestartRestored is what a restart after SIGTERM restored (expected 0).
	CleanRestartRestored int64 `json:"clean_restart_restored"`
	// CrashRestartRestored is what a restart after SIGKILL restored (expected:
	// only the tail committed to Kafka but not yet applied to Pebble).
	CrashRestartRestored int64 `json:"crash_restart_restored"`
	// CrashCommittedBeforeKill is the input records committed when SIGKILL
	// was sent, for scale.
	CrashCommittedBeforeKill int64 `json:"crash_committed_before_kill"`
	// BuildRecordsPerSec and BuildPeakRSSBytes are those of the run that
	// built the store: stateful exactly_once_v2 counting Keys distinct keys,
	// the runner's memory at that many keys.
	BuildRecordsPerSec float64 `json:"build_records_per_sec"`
	BuildPeakRSSBytes  int64   `json:"build_peak_rss_bytes"`
	// RestorePeakRSSBytes is the peak RSS of the runner restoring into an
	// empty state dir.
	RestorePeakRSSBytes int64 `json:"restore_peak_rss_bytes"`
}

// latencyKey names a commit interval, and the record cache if on, in
// Results.Latency: "100ms", "100ms-cache".
func latencyKey(interval time.Duration, cache int64) string {
	k := strconv.FormatInt(interval.Milliseconds(), 10) + "ms"
	if cache > 0 {
		k += "-cache"
	}
	return k
}

// setRatios fills each run's ratios from its pair, and Summary.
func (r *Results) setRatios() {
	for i := range r.Runs {
		run := &r.Runs[i]
		if run.Pair < 0 || run.Pair >= len(r.Runs) || r.Runs[run.Pair].Name != RunRawCopy {
			continue
		}
		raw := r.Runs[run.Pair]
		if raw.RecordsPerSec > 0 {
			run.RatioToRaw = round(run.RecordsPerSec/raw.RecordsPerSec, 3)
		}
		if raw.CPUMicrosPerRecord > 0 {
			run.CPURatioToRaw = round(run.CPUMicrosPerRecord/raw.CPUMicrosPerRecord, 3)
		}
	}
	r.Summary = summarize(r.Runs)
}

// ReadJSON reads results WriteJSON wrote, recomputing the summary from the
// runs.
func ReadJSON(path string) (*Results, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("bench: results: %w", err)
	}
	var r Results
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("bench: results %s: %w", path, err)
	}
	r.setRatios()
	return &r, nil
}

// WriteJSON writes r, indented, to path, creating its directory.
func (r *Results) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("bench: results: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("bench: results: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("bench: results: %w", err)
	}
	return nil
}

// WriteTable prints r as the tables docs/BENCHMARKS.md shows; a phase that
// did not run is left out.
func (r *Results) WriteTable(w io.Writer) error {
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', tabwriter.AlignRight)
	sep := ""
	if len(r.Summary) > 0 {
		fmt.Fprintf(tw, "run\tguarantee\tkeys\tcache MiB\tbinary\truns\trecords/s\tCPU µs/rec\tpeak RSS MiB\tratio to raw\tspread\tCPU × raw\tother cores\t\t\n")
		for _, s := range r.Summary {
			flag := ""
			if s.Flagged {
				flag = "!"
			}
			bin := s.Binary
			if bin == "" {
				bin = "this"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%g\t%s\t%d\t%.0f\t%.2f\t%.0f\t%.3f\t%.1f%%\t%.2f\t%.2f\t%s\t\n", s.Name, s.Guarantee, s.Keys,
				float64(s.CacheBytes)/(1<<20), bin, s.Runs, s.RecordsPerSec, s.CPUMicrosPerRecord,
				float64(s.PeakRSSBytes)/(1<<20), s.Ratio, s.RatioSpread*100, s.CPURatio, s.OtherCores, flag)
		}
		sep = "\n"
	}
	if len(r.Latency) > 0 {
		fmt.Fprint(tw, sep)
		fmt.Fprintf(tw, "latency\tcommit interval\tcache MiB\trecords\tinput/s\tp50 ms\tp99 ms\tmax ms\tp99 × interval\t\t\n")
		for _, k := range sortedLatencyKeys(r.Latency) {
			l := r.Latency[k]
			fmt.Fprintf(tw, "stateful exactly_once_v2\t%d ms\t%g\t%d\t%d\t%.1f\t%.1f\t%.1f\t%.2f\t\t\n", l.CommitIntervalMs,
				float64(l.CacheBytes)/(1<<20), l.Records, l.InputRate, l.P50Ms, l.P99Ms, l.MaxMs, l.P99Ms/float64(max(l.CommitIntervalMs, 1)))
		}
		sep = "\n"
	}
	if rs := r.Restore; rs.Keys > 0 {
		fmt.Fprint(tw, sep)
		fmt.Fprintf(tw, "restore\tkeys\trecords\trecords/s\tseconds\tclean restart\tcrash restart\tpeak RSS MiB\t\t\n")
		fmt.Fprintf(tw, "empty state dir\t%d\t%d\t%.0f\t%.2f\t%d\t%d\t%.0f\t\t\n", rs.Keys, rs.Records, rs.RecordsPerSec,
			rs.Seconds, rs.CleanRestartRestored, rs.CrashRestartRestored, float64(rs.RestorePeakRSSBytes)/(1<<20))
		fmt.Fprintf(tw, "building the store (stateful exactly_once_v2)\t%d\t%d\t%.0f\t\t\t\t%.0f\t\t\n", rs.Keys, rs.Keys,
			rs.BuildRecordsPerSec, float64(rs.BuildPeakRSSBytes)/(1<<20))
		sep = "\n"
	}
	if fo := r.Failover; fo.Keys > 0 {
		fmt.Fprint(tw, sep)
		fmt.Fprintf(tw, "failover (SIGKILL)\tkeys\tseconds\trestored\tsession timeout ms\t\t\t\t\t\n")
		for _, c := range []struct {
			name string
			run  FailoverRun
		}{{"without standby", fo.WithoutStandby}, {"with 1 standby", fo.WithStandby}} {
			fmt.Fprintf(tw, "%s\t%d\t%.2f\t%d\t%d\t\t\t\t\t\n", c.name, fo.Keys, c.run.Seconds, c.run.Restored, c.run.SessionTimeoutMs)
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("bench: table: %w", err)
	}
	for line := range strings.Lines(buf.String()) {
		if _, err := io.WriteString(w, strings.TrimRight(line, " \n")+"\n"); err != nil {
			return fmt.Errorf("bench: table: %w", err)
		}
	}
	return nil
}

// sortedLatencyKeys orders latency keys by commit interval.
func sortedLatencyKeys(m map[string]LatencyResult) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		return cmp.Or(cmp.Compare(m[a].CommitIntervalMs, m[b].CommitIntervalMs), cmp.Compare(m[a].CacheBytes, m[b].CacheBytes))
	})
	return keys
}
