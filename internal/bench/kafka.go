package bench

// The bench's own Kafka client (franz-go), independent of the runner's
// librdkafka: it writes the input, watches the groups' committed offsets,
// and reads outputs with read_committed for the latency phase.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eos-runner/eos-runner/internal/progress"
)

// kafkaClient is the bench's admin and producer client.
type kafkaClient struct {
	brokers []string
	cl      *kgo.Client
	adm     *kadm.Client
}

func newKafkaClient(brokers []string) (*kafkaClient, error) {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		// Java's default partitioner (murmur2 of the key), so that keys land
		// where any Kafka producer would put them.
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
		// Uncompressed: the runner and the raw copy then pay no decompression,
		// and the runner's producer (librdkafka's default) writes uncompressed too.
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.ProducerLinger(0),
		kgo.MaxBufferedRecords(100_000),
	)
	if err != nil {
		return nil, fmt.Errorf("bench: kafka client: %w", err)
	}
	return &kafkaClient{brokers: brokers, cl: cl, adm: kadm.NewClient(cl)}, nil
}

func (k *kafkaClient) close() { k.cl.Close() }

// createTopic creates topic with partitions partitions (an existing topic is
// an error: the bench names its topics uniquely).
func (k *kafkaClient) createTopic(ctx context.Context, topic string, partitions int) error {
	return k.createTopicWith(ctx, topic, partitions, nil)
}

// createTopicWith is createTopic with topic configs.
func (k *kafkaClient) createTopicWith(ctx context.Context, topic string, partitions int, configs map[string]*string) error {
	resp, err := k.adm.CreateTopic(ctx, int32(partitions), -1, configs, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return fmt.Errorf("bench: create topic %s: %w", topic, err)
	}
	return nil
}

// deleteTopics deletes topics, ignoring those that do not exist; the bench
// deletes each run's outputs so that the broker's memory does not grow from
// run to run.
func (k *kafkaClient) deleteTopics(ctx context.Context, topics ...string) error {
	resps, err := k.adm.DeleteTopics(ctx, topics...)
	if err != nil {
		return fmt.Errorf("bench: delete topics %v: %w", topics, err)
	}
	var errs []error
	for _, r := range resps.Sorted() {
		if r.Err != nil && !errors.Is(r.Err, kerr.UnknownTopicOrPartition) {
			errs = append(errs, fmt.Errorf("bench: delete topic %s: %w", r.Topic, r.Err))
		}
	}
	return errors.Join(errs...)
}

// committed sums group's committed offsets on topic (0 where none).
func (k *kafkaClient) committed(ctx context.Context, group, topic string) (int64, error) {
	offs, err := k.adm.FetchOffsets(ctx, group)
	if err != nil {
		return 0, fmt.Errorf("bench: committed offsets of %s: %w", group, err)
	}
	var sum int64
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic && o.Err == nil && o.At > 0 {
			sum += o.At
		}
	})
	return sum, nil
}

// endOffsets sums the high watermarks of topic's partitions.
func (k *kafkaClient) endOffsets(ctx context.Context, topic string) (int64, error) {
	ends, err := k.adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return 0, fmt.Errorf("bench: end offsets of %s: %w", topic, err)
	}
	var sum int64
	ends.Each(func(o kadm.ListedOffset) { sum += o.Offset })
	return sum, nil
}

// keyFunc names the key of record i.
type keyFunc func(i int) string

// randomKeys draws keys k0 .. k<n-1> from a fixed SplitMix64 sequence.
func randomKeys(n int) keyFunc {
	return func(i int) string { return "k" + strconv.FormatUint(splitmix(uint64(i))%uint64(n), 10) }
}

// zipfKeys draws keys k0 .. k<n-1> with Zipf-distributed ranks (exponent
// s > 1; k0 the hottest), from a fixed seed: hot keys as in real traffic.
// The keys come in call order, whatever i is: call it once per record, in
// order.
func zipfKeys(n int, s float64) keyFunc {
	z := rand.NewZipf(rand.New(rand.NewSource(1)), s, 1, uint64(max(n, 1)-1))
	return func(int) string { return "k" + strconv.FormatUint(z.Uint64(), 10) }
}

// uniqueKeys gives record i the key k<offset+i>: every record a new key.
func uniqueKeys(offset int) keyFunc {
	return func(i int) string { return "k" + strconv.Itoa(offset+i) }
}

// splitmix is SplitMix64's output function for input x: a fixed, well-mixed
// sequence that does not depend on math/rand's version.
func splitmix(x uint64) uint64 {
	z := x*0x9e3779b97f4a7c15 + 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// value returns record i's value: n lowercase letters, different per record.
func value(i, n int) []byte {
	b := make([]byte, n)
	x := splitmix(uint64(i) ^ 0x5bd1e995)
	for j := range b {
		if j%12 == 0 {
			x = splitmix(x)
		}
		b[j] = 'a' + byte(x%26)
		x /= 26
	}
	return b
}

// produce writes records records to topic as fast as the broker takes them,
// logging progress every second, and returns once all are acknowledged.
func (k *kafkaClient) produce(ctx context.Context, log *slog.Logger, topic string, records, valueBytes int, key keyFunc) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		acked    atomic.Int64
		firstErr atomic.Pointer[error]
	)
	start := time.Now()
	stop := progress.Every(time.Second, func(now time.Time) {
		n := acked.Load()
		log.Info("bench: writing input", "topic", topic, "records", n, "of", records,
			"rate", progress.Rate(n, now.Sub(start)))
	})
	defer stop()
	for i := 0; i < records && ctx.Err() == nil; i++ {
		rec := &kgo.Record{Topic: topic, Key: []byte(key(i)), Value: value(i, valueBytes)}
		k.cl.Produce(ctx, rec, func(_ *kgo.Record, err error) {
			if err != nil {
				if firstErr.CompareAndSwap(nil, &err) {
					cancel()
				}
				return
			}
			acked.Add(1)
		})
	}
	flushErr := k.cl.Flush(ctx)
	if p := firstErr.Load(); p != nil {
		return fmt.Errorf("bench: write %s: %w", topic, *p)
	}
	if flushErr != nil {
		return fmt.Errorf("bench: write %s: flush: %w", topic, flushErr)
	}
	log.Info("bench: input written", "topic", topic, "records", records, "elapsed", time.Since(start).Round(time.Millisecond).String(),
		"rate", progress.Rate(int64(records), time.Since(start)))
	return nil
}

// produceAtRate writes records to topic at rate records per second for d,
// each stamped with the time it is handed to the client (millisecond
// precision, Kafka's), and returns how many it wrote once all are
// acknowledged. It paces against the schedule from its start, in steps of
// about a millisecond, so that a late step is caught up and the average
// rate holds.
func (k *kafkaClient) produceAtRate(ctx context.Context, topic string, rate int, d time.Duration, valueBytes int, key keyFunc) (int, error) {
	var firstErr atomic.Pointer[error]
	start := time.Now()
	sent := 0
	val := value(0, valueBytes)
	for {
		now := time.Now()
		elapsed := now.Sub(start)
		if elapsed >= d || ctx.Err() != nil {
			break
		}
		due := int(elapsed.Seconds() * float64(rate))
		for ; sent < due; sent++ {
			rec := &kgo.Record{Topic: topic, Key: []byte(key(sent)), Value: val, Timestamp: now}
			k.cl.Produce(ctx, rec, func(_ *kgo.Record, err error) {
				if err != nil {
					firstErr.CompareAndSwap(nil, &err)
				}
			})
		}
		time.Sleep(time.Millisecond)
	}
	flushErr := k.cl.Flush(ctx)
	if p := firstErr.Load(); p != nil {
		return sent, fmt.Errorf("bench: write %s at %d/s: %w", topic, rate, *p)
	}
	if flushErr != nil {
		return sent, fmt.Errorf("bench: write %s at %d/s: flush: %w", topic, rate, flushErr)
	}
	return sent, nil
}

// readCommitted consumes topic from the start with read_committed and calls
// fn with each record and the time it was received, until ctx ends. The
// consumer is its own client so that its fetches do not queue behind the
// producer's requests.
func readCommitted(ctx context.Context, brokers []string, topic string, fn func(r *kgo.Record, received time.Time)) error {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(500*time.Millisecond),
	)
	if err != nil {
		return fmt.Errorf("bench: reader of %s: %w", topic, err)
	}
	defer cl.Close()
	for ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		now := time.Now()
		fs.EachRecord(func(r *kgo.Record) { fn(r, now) })
		for _, e := range fs.Errors() {
			if !errors.Is(e.Err, context.Canceled) {
				return fmt.Errorf("bench: read %s[%d]: %w", e.Topic, e.Partition, e.Err)
			}
		}
	}
	return nil
}
