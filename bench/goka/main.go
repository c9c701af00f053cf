// Command goka-count is the goka peer of `eos-runner bench`: the job of the
// bench's bench-stateful topology (count the records per key into a
// persisted table, emit every updated count to an output topic) written
// with github.com/lovoo/goka, so that the bench can measure it beside
// eos-runner on the same broker and the same input.
//
// goka is at-least-once: each input offset is marked once the record's
// table write and output are acknowledged, and the marks are committed by
// sarama every --commit-interval. The table is goka's group table,
// `<group>-table` (compacted, co-partitioned with the input), backed by
// LevelDB under --storage-dir.
//
// It lives in its own module (bench/goka/go.mod) so that eos-runner does
// not depend on goka, sarama or LevelDB.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"hash"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/lovoo/goka/storage"
)

// options are the command's flags.
type options struct {
	brokers, input, output, group, storageDir, kafkaVersion string
	replication                                             int
	commitInterval                                          time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.brokers, "brokers", "127.0.0.1:9092", "bootstrap servers, comma-separated")
	flag.StringVar(&o.input, "input", "", "input topic (string keys, any values)")
	flag.StringVar(&o.output, "output", "", "output topic: every updated count (decimal int64, goka's codec.Int64)")
	flag.StringVar(&o.group, "group", "goka-count", "consumer group; the table topic is <group>-table")
	flag.StringVar(&o.storageDir, "storage-dir", "goka-state", "directory of the table's LevelDB stores")
	flag.StringVar(&o.kafkaVersion, "kafka-version", "3.6.0", "Kafka protocol version sarama speaks")
	flag.IntVar(&o.replication, "replication", 1, "replication factor of a table topic goka creates")
	flag.DurationVar(&o.commitInterval, "commit-interval", 100*time.Millisecond, "how often sarama commits the marked offsets")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, log, o); err != nil {
		log.Error("goka-count failed", "err", err)
		os.Exit(1)
	}
}

// run counts until ctx ends; a cancelled ctx is a clean stop.
func run(ctx context.Context, log *slog.Logger, o options) error {
	if o.input == "" || o.output == "" {
		return errors.New("--input and --output are required")
	}
	cfg, err := saramaConfig(o)
	if err != nil {
		return err
	}
	// goka's builders copy its global config; each builder below gets cfg
	// instead, so nothing global is replaced.
	tmc := goka.NewTopicManagerConfig()
	tmc.Table.Replication, tmc.Stream.Replication = o.replication, o.replication
	output := goka.Stream(o.output)
	g := goka.DefineGroup(goka.Group(o.group),
		goka.Input(goka.Stream(o.input), new(codec.Bytes), func(ctx goka.Context, _ any) {
			var n int64
			if v := ctx.Value(); v != nil {
				n = v.(int64)
			}
			n++
			ctx.SetValue(n)
			ctx.Emit(output, ctx.Key(), n)
		}),
		goka.Persist(new(codec.Int64)),
		goka.Output(output, new(codec.Int64)),
	)
	p, err := goka.NewProcessor(strings.Split(o.brokers, ","), g,
		goka.WithStorageBuilder(storage.DefaultBuilder(o.storageDir)),
		goka.WithTopicManagerBuilder(goka.TopicManagerBuilderWithConfig(cfg, tmc)),
		goka.WithConsumerGroupBuilder(goka.ConsumerGroupBuilderWithConfig(cfg)),
		goka.WithConsumerSaramaBuilder(goka.SaramaConsumerBuilderWithConfig(cfg)),
		goka.WithProducerBuilder(goka.ProducerBuilderWithConfig(cfg)),
		// The bench's producer partitions by murmur2, as Java's does; the
		// table (and the output) must be partitioned the same way for the
		// table to be co-partitioned with the input.
		goka.WithHasher(newMurmur2),
	)
	if err != nil {
		return fmt.Errorf("processor: %w", err)
	}
	log.Info("goka-count started", "group", o.group, "input", o.input, "output", o.output, "storage_dir", o.storageDir)
	if err := p.Run(ctx); err != nil {
		return fmt.Errorf("processor: %w", err)
	}
	log.Info("goka-count stopped")
	return nil
}

// saramaConfig is goka's default configuration with the settings of the
// runner's clients where sarama has them: read from the oldest offset,
// acks=all and idempotence, no compression, batches flushed after 5 ms
// (linger.ms=5), offsets committed every commitInterval.
//
// The default protocol version is 3.6.0, what a current cluster speaks.
// (Before the embedded broker's third patch, third_party/kfake/PATCH.md,
// anything from 2.4.0 failed on it: sarama rejects the null metadata it
// answered in OffsetFetch.)
func saramaConfig(o options) (*sarama.Config, error) {
	cfg := goka.DefaultConfig()
	v, err := sarama.ParseKafkaVersion(o.kafkaVersion)
	if err != nil {
		return nil, fmt.Errorf("--kafka-version: %w", err)
	}
	cfg.Version = v
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Interval = o.commitInterval
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Idempotent = true
	cfg.Net.MaxOpenRequests = 1 // sarama's requirement for idempotence
	cfg.Producer.Compression = sarama.CompressionNone
	cfg.Producer.Flush.Frequency = 5 * time.Millisecond
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("sarama config: %w", err)
	}
	return cfg, nil
}

// murmur2 is Kafka's default partitioner hash (Java's Utils.murmur2) as a
// hash.Hash32 for goka and sarama; Sum32 is already positive
// (Utils.toPositive), so both map it to Java's partition.
type murmur2 struct{ buf []byte }

func newMurmur2() hash.Hash32 { return &murmur2{} }

func (m *murmur2) Write(p []byte) (int, error) { m.buf = append(m.buf, p...); return len(p), nil }
func (m *murmur2) Sum(b []byte) []byte {
	s := m.Sum32()
	return append(b, byte(s>>24), byte(s>>16), byte(s>>8), byte(s))
}
func (m *murmur2) Reset()         { m.buf = m.buf[:0] }
func (m *murmur2) Size() int      { return 4 }
func (m *murmur2) BlockSize() int { return 4 }

func (m *murmur2) Sum32() uint32 {
	const (
		seed = 0x9747b28c
		mul  = 0x5bd1e995
	)
	data := m.buf
	h := uint32(seed) ^ uint32(len(data))
	for len(data) >= 4 {
		k := uint32(data[0]) | uint32(data[1])<<8 | uint32(data[2])<<16 | uint32(data[3])<<24
		k *= mul
		k ^= k >> 24
		k *= mul
		h = h*mul ^ k
		data = data[4:]
	}
	switch len(data) {
	case 3:
		h ^= uint32(data[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(data[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(data[0])
		h *= mul
	}
	h ^= h >> 13
	h *= mul
	h ^= h >> 15
	return h & 0x7fffffff
}
