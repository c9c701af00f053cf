package demo

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/riferrei/srclient"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eos-runner/eos-runner/examples/pageviews"
	"github.com/eos-runner/eos-runner/schema/registry"
	"github.com/eos-runner/eos-runner/serde"
)

// UnknownSchemaID is the schema id the generator's "unknown id" records
// carry: far above what a demo registry hands out, so never registered.
const UnknownSchemaID = 0x7fff_fff0

// GeneratorConfig configures the traffic generator.
type GeneratorConfig struct {
	Brokers []string
	// Registry is where the generator registers PageView v1 and v2 under
	// pageviews-value (setting the subject's level to BACKWARD) and which
	// ids it writes with. Required.
	Registry *registry.Client
	Rate     int // records per second (default 500)
	Users    int // distinct human users (default 500)
	Pages    int // distinct pages, Zipf-distributed (default 40)
	BotShare float64
	// BadShare is the share of malformed records, spread evenly over the
	// kinds of BadKinds.
	BadShare float64
	// EvolveAfter is how long the generator writes PageView v1 before it
	// registers v2 and writes v2 from then on; 0 writes v2 from the start.
	EvolveAfter time.Duration
	Seed        uint64
	Logger      *slog.Logger
}

// BadKinds are the malformed records the generator writes, by the reason the
// runner gives them: the first three fail to deserialize, the last one fails
// the topology's parse step.
var BadKinds = []string{"no magic byte (raw JSON)", "unknown schema id", "truncated Avro payload", "empty page"}

// referrers are v2's referrer values; "" is null.
var referrers = []string{"", "", "search", "social", "email", "news"}

// Generate writes page views until ctx is done, with an idempotent producer:
// Avro in the Confluent wire format, PageView v1 first, v2 after
// cfg.EvolveAfter. It returns nil when ctx ends, or the registry error that
// stops it (an incompatible v2, an unreachable registry).
func Generate(ctx context.Context, cfg GeneratorConfig) error {
	if cfg.Registry == nil {
		return errors.New("demo: generator: no schema registry")
	}
	if cfg.Rate <= 0 {
		cfg.Rate = 500
	}
	if cfg.Users <= 0 {
		cfg.Users = 500
	}
	if cfg.Pages <= 1 {
		cfg.Pages = 40
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	v1, err := serde.NewAvro(cfg.Registry, pageviews.ViewSchemaV1, serde.Value, serde.AutoRegister(true))
	if err != nil {
		return fmt.Errorf("demo: generator: %w", err)
	}
	v2, err := serde.NewAvro(cfg.Registry, pageviews.ViewSchemaV2, serde.Value, serde.AutoRegister(true))
	if err != nil {
		return fmt.Errorf("demo: generator: %w", err)
	}
	// The subject's own level, so that the evolution is checked as the demo
	// says whatever the registry's global level is.
	if _, err := cfg.Registry.SRClient().ChangeSubjectCompatibilityLevel(pageviews.InputSubject, srclient.Backward); err != nil {
		return fmt.Errorf("demo: generator: set %s to BACKWARD: %w", pageviews.InputSubject, err)
	}
	writer, version := v1, 1
	if cfg.EvolveAfter <= 0 {
		writer, version = v2, 2
	}
	if err := writer.Prepare(ctx, pageviews.Input); err != nil {
		return fmt.Errorf("demo: generator: register PageView v%d: %w", version, err)
	}
	cfg.Logger.Info("generator: writing PageView", "version", version, "subject", pageviews.InputSubject, "evolve_after", cfg.EvolveAfter)

	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...), kgo.DefaultProduceTopic(pageviews.Input))
	if err != nil {
		return fmt.Errorf("demo: generator: %w", err)
	}
	defer cl.Close()
	g := &generator{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, uint64(time.Now().UnixNano())))}
	g.zipf = rand.NewZipf(g.rng, 1.2, 1, uint64(cfg.Pages-1))
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	evolve := time.After(cfg.EvolveAfter)
	if version == 2 {
		evolve = nil
	}
	perTick := max(1, cfg.Rate/10)
	for {
		select {
		case <-ctx.Done():
			_ = cl.Flush(context.WithoutCancel(ctx))
			return nil
		case <-evolve:
			evolve = nil
			if err := v2.Prepare(ctx, pageviews.Input); err != nil {
				if ctx.Err() != nil {
					continue
				}
				return fmt.Errorf("demo: generator: register PageView v2: %w", err)
			}
			writer, version = v2, 2
			cfg.Logger.Info("generator: schema evolved; writing PageView v2 (optional referrer) from now on", "subject", pageviews.InputSubject)
			continue
		case <-tick.C:
		}
		for range perTick {
			key, value, err := g.next(writer, version)
			if err != nil {
				return fmt.Errorf("demo: generator: %w", err)
			}
			cl.Produce(ctx, &kgo.Record{Key: key, Value: value}, func(_ *kgo.Record, err error) {
				if err != nil && ctx.Err() == nil {
					cfg.Logger.Warn("generator: produce failed", "err", err)
				}
			})
		}
	}
}

// generator makes one record at a time; its goroutine only.
type generator struct {
	cfg  GeneratorConfig
	rng  *rand.Rand
	zipf *rand.Zipf
}

// next returns one record's key and value: a page view written with writer
// (PageView version), or, BadShare of the time, a malformed record.
func (g *generator) next(writer *serde.Avro, version int) (key, value []byte, err error) {
	user := "u" + strconv.Itoa(g.rng.IntN(g.cfg.Users))
	bot := g.rng.Float64() < g.cfg.BotShare
	if bot {
		user = "bot-" + strconv.Itoa(g.rng.IntN(20))
	}
	page := fmt.Sprintf("/page/%d", g.zipf.Uint64())
	if g.zipf.Uint64() == 0 {
		page = "/home"
	}
	v := pageviews.View{User: user, Page: page, Bot: bot, TS: time.Now().UnixMilli(),
		Referrer: referrers[g.rng.IntN(len(referrers))]}
	bad := -1
	if r := g.rng.Float64(); r < g.cfg.BadShare {
		bad = int(r / g.cfg.BadShare * float64(len(BadKinds)))
	}
	switch bad {
	case 0: // raw JSON: what a producer without the Avro serializer writes
		value, err = json.Marshal(v)
		return []byte(user), value, err
	case 3: // a well-formed record the topology refuses
		v.Page = ""
	}
	value, err = writer.Serialize(pageviews.Input, v.Native(version))
	if err != nil {
		return nil, nil, err
	}
	switch bad {
	case 1:
		binary.BigEndian.PutUint32(value[1:5], UnknownSchemaID)
	case 2:
		value = value[:5+(len(value)-5)/2]
	}
	return []byte(user), value, nil
}
