package demo

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/riferrei/srclient"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eos-runner/eos-runner/examples/pageviews"
	"github.com/eos-runner/eos-runner/schema/registry"
	"github.com/eos-runner/eos-runner/serde"
)

// DashboardConfig configures Dashboard.
type DashboardConfig struct {
	Brokers []string
	// Registry decodes the Avro outputs and names the input's schema ids
	// by subject version.
	Registry *registry.Client
	// DLQTopic is the topology's dead-letter topic (<application.id>-dlq).
	DLQTopic string
	Out      io.Writer
	// Interval between redraws (default 1s).
	Interval time.Duration
}

// Dashboard reads the input, the outputs and the dead-letter topic with
// read_committed and redraws a compact table every interval until ctx is
// done, then draws a last frame and returns nil.
func Dashboard(ctx context.Context, cfg DashboardConfig) error {
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.Registry == nil {
		return errors.New("demo: dashboard: no schema registry")
	}
	counts, err := serde.NewAvro(cfg.Registry, pageviews.CountSchema, serde.Value)
	if err != nil {
		return fmt.Errorf("demo: dashboard: %w", err)
	}
	minutes, err := serde.NewAvro(cfg.Registry, pageviews.MinuteSchema, serde.Value)
	if err != nil {
		return fmt.Errorf("demo: dashboard: %w", err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...),
		kgo.ConsumeTopics(pageviews.PerPage, pageviews.PerPagePerMinute, pageviews.PerUser, cfg.DLQTopic, pageviews.Input),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.AllowAutoTopicCreation())
	if err != nil {
		return fmt.Errorf("demo: dashboard: %w", err)
	}
	defer cl.Close()
	b := newBoard(cfg.DLQTopic, counts, minutes, func(id int) string { return versionLabel(cfg.Registry, id) })
	start, last := time.Now(), time.Now()
	var prevInput, frames int64
	for ctx.Err() == nil {
		fctx, cancel := context.WithTimeout(ctx, cfg.Interval/2)
		fs := cl.PollFetches(fctx)
		cancel()
		fs.EachRecord(b.observe)
		if time.Since(last) >= cfg.Interval {
			// The first frame reads the input's history (all of it on a
			// resumed run): no rate to show yet.
			b.rate = -1
			if frames > 0 {
				b.rate = float64(b.input-prevInput) / time.Since(last).Seconds()
			}
			frames++
			prevInput, last = b.input, time.Now()
			b.up = time.Since(start)
			_, _ = io.WriteString(cfg.Out, b.render())
		}
	}
	b.up = time.Since(start)
	_, _ = io.WriteString(cfg.Out, b.render())
	return nil
}

// versionLabel names a schema id by its versions under the input's subject
// ("v1"), else by any subject's ("other-subject v3"); "unregistered" when
// the registry does not know it, "" when the registry could not be asked.
func versionLabel(c *registry.Client, id int) string {
	pairs, err := c.SRClient().GetSubjectVersionsById(id)
	if err != nil {
		if e := (srclient.Error{}); errors.As(err, &e) && e.Code == 40403 {
			return "unregistered"
		}
		return ""
	}
	var other string
	for _, p := range pairs {
		if p.Subject == pageviews.InputSubject {
			return "v" + strconv.Itoa(p.Version)
		}
		other = p.Subject + " v" + strconv.Itoa(p.Version)
	}
	if other == "" {
		return "unregistered"
	}
	return other
}

// board is the dashboard's state; Dashboard's goroutine only.
type board struct {
	dlqTopic string
	counts   serde.Serde                // decodes pageviews-per-page values
	minuteV  serde.Serde                // decodes pageviews-per-page-per-minute values
	label    func(id int) string        // names a schema id; "" means ask again later
	labels   map[int]string             // schema id -> label, once known
	byID     map[int]int64              // input records by the schema id they name
	notWire  int64                      // input records without the wire format's header
	pages    map[string]int64           // latest count per page
	users    map[string]int64           // latest count per user
	minutes  map[int64]map[string]int64 // minute start (Unix ms) -> page -> final views; the minuteColumns latest
	reasons  map[string]int64           // DLQ records by "class: reason"
	bad      map[string]int64           // outputs the dashboard could not decode, by topic
	input    int64
	dlq      int64
	rate     float64 // input records per second; negative: not known yet
	up       time.Duration
}

// minuteColumns is how many closed minutes the table shows; minuteRows how
// many pages.
const (
	minuteColumns = 3
	minuteRows    = 8
)

func newBoard(dlqTopic string, counts, minutes serde.Serde, label func(int) string) *board {
	return &board{dlqTopic: dlqTopic, counts: counts, minuteV: minutes, label: label, labels: map[int]string{}, byID: map[int]int64{},
		pages: map[string]int64{}, users: map[string]int64{}, minutes: map[int64]map[string]int64{},
		reasons: map[string]int64{}, bad: map[string]int64{}}
}

// observeMinute folds one final per-minute count into the board, keeping
// the minuteColumns latest minutes.
func (b *board) observeMinute(r *kgo.Record) {
	v, err := b.minuteV.Deserialize(r.Topic, r.Value)
	m, _ := v.(map[string]any)
	page, okPage := m["page"].(string)
	start, okStart := m["window_start"].(time.Time)
	n, okViews := m["views"].(int64)
	if err != nil || !okPage || !okStart || !okViews {
		b.bad[r.Topic]++
		return
	}
	ms := start.UnixMilli()
	if b.minutes[ms] == nil {
		b.minutes[ms] = map[string]int64{}
	}
	b.minutes[ms][page] = n
	for starts := b.minuteStarts(); len(starts) > minuteColumns; starts = starts[1:] {
		delete(b.minutes, starts[0])
	}
}

// minuteStarts returns the minutes held, oldest first.
func (b *board) minuteStarts() []int64 {
	starts := make([]int64, 0, len(b.minutes))
	for ms := range b.minutes {
		starts = append(starts, ms)
	}
	sort.Slice(starts, func(i, j int) bool { return starts[i] < starts[j] })
	return starts
}

// observe folds one committed record into the board.
func (b *board) observe(r *kgo.Record) {
	switch r.Topic {
	case pageviews.Input:
		b.input++
		if len(r.Value) < 5 || r.Value[0] != 0 {
			b.notWire++
			return
		}
		b.byID[int(binary.BigEndian.Uint32(r.Value[1:5]))]++
	case pageviews.PerPage:
		v, err := b.counts.Deserialize(r.Topic, r.Value)
		m, _ := v.(map[string]any)
		n, ok := m["views"].(int64)
		if err != nil || !ok {
			b.bad[r.Topic]++
			return
		}
		b.pages[string(r.Key)] = n
	case pageviews.PerPagePerMinute:
		b.observeMinute(r)
	case pageviews.PerUser:
		n, err := strconv.ParseInt(string(r.Value), 10, 64)
		if err != nil {
			b.bad[r.Topic]++
			return
		}
		b.users[string(r.Key)] = n
	case b.dlqTopic:
		b.dlq++
		var class, msg string
		for _, h := range r.Headers {
			switch h.Key {
			case "eos.error.class":
				class = string(h.Value)
			case "eos.error.message":
				msg = string(h.Value)
			}
		}
		b.reasons[class+": "+Reason(msg)]++
	}
}

// Reason shortens a dead-letter record's eos.error.message to the cause a
// reader of the table cares about.
func Reason(msg string) string {
	switch {
	case strings.Contains(msg, "wrong magic byte"):
		return "not Avro wire format (wrong magic byte)"
	case strings.Contains(msg, "schema id not found"):
		return "unknown schema id"
	case strings.Contains(msg, "truncated"):
		return "truncated payload"
	case strings.Contains(msg, "malformed data"):
		return "malformed Avro data"
	case strings.Contains(msg, "cannot read data written"):
		return "writer schema incompatible with the reader"
	case strings.Contains(msg, "non-empty user and page"):
		return "empty user or page"
	case msg == "":
		return "(no message)"
	}
	if len(msg) > 60 {
		msg = msg[:60] + "…"
	}
	return msg
}

// render draws the board as one terminal frame (clearing the screen first).
func (b *board) render() string {
	var sb strings.Builder
	sb.WriteString("\033[H\033[2J")
	var counted int64
	for _, n := range b.pages {
		counted += n
	}
	fmt.Fprintf(&sb, "eos-runner dev — examples/pageviews, Avro via the embedded schema registry (committed results, read_committed)   up %s\n\n", b.up.Truncate(time.Second))
	rate := "--/s"
	if b.rate >= 0 {
		rate = fmt.Sprintf("%.0f/s", b.rate)
	}
	fmt.Fprintf(&sb, "  input records %-10d (%s)   human views counted %-10d  dead-lettered %d\n\n", b.input, rate, counted, b.dlq)

	sb.WriteString("  INPUT BY SCHEMA (" + pageviews.InputSubject + "; the topology reads every version with PageView v2, no restart)\n")
	ids := make([]int, 0, len(b.byID))
	for id := range b.byID {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	for _, id := range ids {
		l, ok := b.labels[id]
		if !ok {
			if l = b.label(id); l != "" {
				b.labels[id] = l
			}
		}
		if l == "" {
			l = "?"
		}
		fmt.Fprintf(&sb, "    schema id %-10d %-14s %10d\n", id, l, b.byID[id])
	}
	if b.notWire > 0 {
		fmt.Fprintf(&sb, "    %-36s %10d\n", "not wire format (no magic byte)", b.notWire)
	}

	sb.WriteString("\n  DEAD-LETTERED BY REASON\n")
	for _, r := range top(b.reasons, len(b.reasons)) {
		fmt.Fprintf(&sb, "    %-60s %10d\n", r, b.reasons[r])
	}
	if len(b.reasons) == 0 {
		sb.WriteString("    (none yet)\n")
	}
	for topic, n := range b.bad {
		fmt.Fprintf(&sb, "    (the dashboard could not decode %d records of %s)\n", n, topic)
	}

	fmt.Fprintf(&sb, "\n  %-22s %10s      %-14s %10s\n", "TOP PAGES", "VIEWS", "TOP USERS", "VIEWS")
	tp, tu := top(b.pages, 10), top(b.users, 10)
	for i := range 10 {
		l, r := fmt.Sprintf("%-22s %10s", "", ""), ""
		if i < len(tp) {
			l = fmt.Sprintf("%-22s %10d", tp[i], b.pages[tp[i]])
		}
		if i < len(tu) {
			r = fmt.Sprintf("%-14s %10d", tu[i], b.users[tu[i]])
		}
		fmt.Fprintf(&sb, "  %s      %s\n", l, r)
	}
	b.renderMinutes(&sb)
	fmt.Fprintf(&sb, "\n  %d pages, %d users.  Ctrl-C stops; `make run` again resumes where it stopped.\n", len(b.pages), len(b.users))
	return sb.String()
}

// renderMinutes draws the latest closed minutes per page: the pages with the
// most views over the minutes shown, one column per minute.
func (b *board) renderMinutes(sb *strings.Builder) {
	fmt.Fprintf(sb, "\n  VIEWS PER PAGE PER MINUTE (final: each minute written once, when stream time passes its end + %s grace; UTC)\n",
		pageviews.Grace)
	starts := b.minuteStarts()
	if len(starts) == 0 {
		fmt.Fprintf(sb, "    (none yet: the first minute's counts come %s after it ends)\n", pageviews.Grace)
		return
	}
	total := map[string]int64{}
	fmt.Fprintf(sb, "    %-22s", "PAGE")
	for _, ms := range starts {
		fmt.Fprintf(sb, " %10s", time.UnixMilli(ms).UTC().Format("15:04"))
		for page, n := range b.minutes[ms] {
			total[page] += n
		}
	}
	sb.WriteString("\n")
	for _, page := range top(total, minuteRows) {
		fmt.Fprintf(sb, "    %-22s", page)
		for _, ms := range starts {
			if n, ok := b.minutes[ms][page]; ok {
				fmt.Fprintf(sb, " %10d", n)
			} else {
				fmt.Fprintf(sb, " %10s", "-")
			}
		}
		sb.WriteString("\n")
	}
}

// top returns up to n keys of m, largest value first, ties by key.
func top(m map[string]int64, n int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	if len(keys) > n {
		keys = keys[:n]
	}
	return keys
}
