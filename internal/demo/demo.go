// Package demo drives `eos-runner dev`: a generator of realistic page-view
// traffic for examples/pageviews (with bots and a few malformed records) and
// a live table of the committed results, read with read_committed through an
// independent client (franz-go), so what it shows is what downstream
// consumers see.
package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eos-runner/eos-runner/examples/pageviews"
)

// GeneratorConfig configures the traffic generator.
type GeneratorConfig struct {
	Brokers  []string
	Rate     int // records per second
	Users    int
	Pages    int
	BotShare float64 // share of views from bots
	BadShare float64 // share of malformed records
	Seed     uint64
	Logger   *slog.Logger
}

// EnsureTopics creates the example's input topic if missing.
func EnsureTopics(ctx context.Context, brokers []string, partitions int32) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	resp, err := adm.CreateTopics(ctx, partitions, 1, nil, pageviews.Input, pageviews.PerPage, pageviews.PerUser)
	if err != nil {
		return fmt.Errorf("create topics: %w", err)
	}
	for _, r := range resp {
		if r.Err != nil && !strings.Contains(r.Err.Error(), "TOPIC_ALREADY_EXISTS") {
			return fmt.Errorf("create topic %s: %w", r.Topic, r.Err)
		}
	}
	return nil
}

// Generate writes page views until ctx is done, with an idempotent producer.
func Generate(ctx context.Context, cfg GeneratorConfig) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...), kgo.DefaultProduceTopic(pageviews.Input))
	if err != nil {
		return err
	}
	defer cl.Close()
	rng := rand.New(rand.NewPCG(cfg.Seed, uint64(time.Now().UnixNano())))
	zipf := rand.NewZipf(rng, 1.2, 1, uint64(cfg.Pages-1))
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	perTick := max(1, cfg.Rate/10)
	var sent int64
	for {
		select {
		case <-ctx.Done():
			_ = cl.Flush(context.Background())
			return nil
		case <-tick.C:
		}
		for range perTick {
			user := "u" + strconv.Itoa(rng.IntN(cfg.Users))
			bot := rng.Float64() < cfg.BotShare
			if bot {
				user = "bot-" + strconv.Itoa(rng.IntN(20))
			}
			page := fmt.Sprintf("/page/%d", zipf.Uint64())
			if zipf.Uint64() == 0 {
				page = "/home"
			}
			var value []byte
			switch r := rng.Float64(); {
			case r < cfg.BadShare/2:
				value = []byte(`{"user":"` + user + `","page":`) // truncated JSON
			case r < cfg.BadShare:
				value = []byte(`{"user":"` + user + `"}`) // no page
			default:
				value, _ = json.Marshal(pageviews.View{User: user, Page: page, Bot: bot, TS: time.Now().UnixMilli()})
			}
			cl.Produce(ctx, &kgo.Record{Key: []byte(user), Value: value}, func(_ *kgo.Record, err error) {
				if err != nil && ctx.Err() == nil {
					cfg.Logger.Warn("generator: produce failed", "err", err)
				}
			})
			sent++
		}
	}
}

// Dashboard reads the outputs with read_committed and redraws a compact table
// every interval until ctx is done.
func Dashboard(ctx context.Context, brokers []string, dlqTopic string, out io.Writer, interval time.Duration) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...),
		kgo.ConsumeTopics(pageviews.PerPage, pageviews.PerUser, dlqTopic, pageviews.Input),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.AllowAutoTopicCreation())
	if err != nil {
		return err
	}
	defer cl.Close()
	pages, users := map[string]int64{}, map[string]int64{}
	dlqReasons := map[string]int64{}
	var dlq, input int64
	last := time.Now()
	start := time.Now()
	var prevInput int64
	for ctx.Err() == nil {
		fctx, cancel := context.WithTimeout(ctx, interval/2)
		fs := cl.PollFetches(fctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) {
			switch r.Topic {
			case pageviews.PerPage:
				pages[string(r.Key)], _ = strconv.ParseInt(string(r.Value), 10, 64)
			case pageviews.PerUser:
				users[string(r.Key)], _ = strconv.ParseInt(string(r.Value), 10, 64)
			case pageviews.Input:
				input++
			default:
				dlq++
				for _, h := range r.Headers {
					if h.Key == "eos.error.class" {
						dlqReasons[string(h.Value)]++
					}
				}
			}
		})
		if time.Since(last) >= interval {
			rate := float64(input-prevInput) / time.Since(last).Seconds()
			prevInput, last = input, time.Now()
			draw(out, pages, users, dlq, dlqReasons, input, rate, time.Since(start))
		}
	}
	return nil
}

func draw(out io.Writer, pages, users map[string]int64, dlq int64, reasons map[string]int64, input int64, rate float64, up time.Duration) {
	var sb strings.Builder
	sb.WriteString("\033[H\033[2J")
	var counted int64
	for _, n := range pages {
		counted += n
	}
	fmt.Fprintf(&sb, "eos-runner dev — examples/pageviews (committed results, read_committed)   up %s\n\n", up.Truncate(time.Second))
	fmt.Fprintf(&sb, "  input records %-10d  (%.0f/s)   human views counted %-10d  dead-lettered %d %v\n\n", input, rate, counted, dlq, reasons)
	fmt.Fprintf(&sb, "  %-22s %10s      %-14s %10s\n", "TOP PAGES", "VIEWS", "TOP USERS", "VIEWS")
	tp, tu := top(pages, 10), top(users, 10)
	for i := range 10 {
		l, r := "", ""
		if i < len(tp) {
			l = fmt.Sprintf("%-22s %10d", tp[i], pages[tp[i]])
		} else {
			l = fmt.Sprintf("%-22s %10s", "", "")
		}
		if i < len(tu) {
			r = fmt.Sprintf("%-14s %10d", tu[i], users[tu[i]])
		}
		fmt.Fprintf(&sb, "  %s      %s\n", l, r)
	}
	fmt.Fprintf(&sb, "\n  %d pages, %d users.  Ctrl-C stops; `make run` again resumes where it stopped.\n", len(pages), len(users))
	_, _ = io.WriteString(out, sb.String())
}

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
