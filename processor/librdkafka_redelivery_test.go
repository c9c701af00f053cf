package processor

// A deterministic reproduction, against kfake, of librdkafka redelivering an
// active partition from its start: see docs/exactly-once.md.

import (
	"context"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const redeliveryRecords = 2000

// TestRedeliveryAfterPauseResumeDuringOffsetReset: assigned at an explicit
// offset, as the runner assigns every partition, the consumer never looks an
// offset up, so librdkafka's stale offset-query timer cannot exist and
// nothing is delivered twice.
//
// The other case reproduces the librdkafka bug itself (a logical start
// offset, a Pause/Resume while its ListOffsets is in flight, a rebalance's
// pause within 500ms of the outdated reply). It depends on librdkafka's
// timer firing inside a window, so it can miss under load; it runs only with
// EOS_LIBRDKAFKA_REPRO=1, to check a librdkafka upgrade.
func TestRedeliveryAfterPauseResumeDuringOffsetReset(t *testing.T) {
	t.Run("explicit start offset", func(t *testing.T) { runRedelivery(t, true) })
	t.Run("logical start (librdkafka bug)", func(t *testing.T) {
		if os.Getenv("EOS_LIBRDKAFKA_REPRO") == "" {
			t.Skip("reproduces a librdkafka bug with a timing window; EOS_LIBRDKAFKA_REPRO=1 runs it")
		}
		runRedelivery(t, false)
	})
}

func runRedelivery(t *testing.T, absolute bool) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "t"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	addr := c.ListenAddrs()[0]
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("t"))
	if err != nil {
		t.Fatal(err)
	}
	var recs []*kgo.Record
	for i := range redeliveryRecords {
		recs = append(recs, &kgo.Record{Value: []byte(strconv.Itoa(i))})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()

	// The consumer's ListOffsets requests. Under auto.offset.reset the first
	// is held until the test releases it, so that the application's Resume
	// lands while it is in flight (kfake answers one connection's requests
	// in order, so the Resume's own query is answered after it). The third
	// (the stale timer's) is held until the test has paused and resumed the
	// partition once more, whenever the timer fires.
	var listOffsets atomic.Int32
	held, release, release3 := make(chan struct{}), make(chan struct{}), make(chan struct{})
	c.ControlKey(int16(kmsg.ListOffsets), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		switch listOffsets.Add(1) {
		case 1:
			if !absolute {
				close(held)
				c.SleepControl(func() { <-release })
			}
		case 3:
			c.SleepControl(func() { <-release3 })
		}
		return nil, nil, false
	})

	logs := make(chan kafka.LogEvent, 10000)
	cons, err := kafka.NewConsumer(&kafka.ConfigMap{
		"bootstrap.servers": addr, "group.id": "g", "partition.assignment.strategy": "cooperative-sticky",
		"enable.auto.commit": false, "auto.offset.reset": "earliest", "isolation.level": "read_committed",
		"debug": "topic", "go.logs.channel.enable": true, "go.logs.channel": logs,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	var sent atomic.Int32 // ListOffsets requests the consumer logged sending
	go func() {
		for l := range logs {
			if strings.Contains(l.Message, "ListOffsetsRequest") {
				sent.Add(1)
			}
		}
	}()
	var parts []kafka.TopicPartition
	err = cons.SubscribeTopics([]string{"t"}, func(c *kafka.Consumer, ev kafka.Event) error {
		if e, ok := ev.(kafka.AssignedPartitions); ok && len(e.Partitions) > 0 {
			parts = e.Partitions
			if absolute {
				for i := range parts {
					parts[i].Offset = 0 // the log start, as the runner would look it up
				}
			}
			if err := c.IncrementalAssign(parts); err != nil {
				t.Error(err)
			}
			// Paused while its "stores restore", as the runner does.
			if err := c.Pause(parts); err != nil {
				t.Error(err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// poll consumes one event; every message goes through it, so that none
	// is missed: last is the highest offset delivered, redelivered is set
	// when an offset at or below it comes again.
	var last int64 = -1
	redelivered := false
	poll := func() {
		if m, ok := cons.Poll(50).(*kafka.Message); ok && m.TopicPartition.Error == nil {
			off := int64(m.TopicPartition.Offset)
			if off <= last {
				redelivered = true
			}
			last = max(last, off)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	wait := func(what string, cond func() bool) {
		t.Helper()
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s (ListOffsets at the broker %d, sent %d)", what, listOffsets.Load(), sent.Load())
			}
			poll()
		}
	}
	wait("assignment", func() bool { return parts != nil })
	if !absolute {
		wait("the first ListOffsets (auto.offset.reset) in flight", func() bool { return chanClosed(held) })
	}
	// Restore done: resume, as handleRestores does.
	if err := cons.Resume(parts); err != nil {
		t.Fatal(err)
	}
	if !absolute {
		// Resume found the partition waiting for an offset with no fetch
		// position and queried again; release the first query, whose
		// reply is now outdated: librdkafka arms a 500ms retry timer for
		// it, and the second reply starts the fetch at offset 0.
		wait("Resume's own ListOffsets", func() bool { return sent.Load() >= 2 })
		close(release)
	}
	wait("every record", func() bool { return last == redeliveryRecords-1 })
	// An incremental rebalance pauses and resumes the partitions a member
	// keeps (as would a rewind's seek): the fetch position becomes the
	// application's, 2000.
	if err := cons.Pause(parts); err != nil {
		t.Fatal(err)
	}
	if err := cons.Resume(parts); err != nil {
		t.Fatal(err)
	}
	close(release3)
	if absolute {
		// No offset was ever looked up, so no query timer exists to fire.
		if n := listOffsets.Load(); n != 0 || redelivered {
			t.Fatalf("%d ListOffsets requests, redelivered %v; want none", n, redelivered)
		}
		return
	}
	// The timer armed by the outdated reply fires 500ms after it, in state
	// active, queries BEGINNING again and restarts the fetch at 0.
	wait("a record delivered again", func() bool { return redelivered })
	t.Logf("offset 0 delivered again after all %d records (%d ListOffsets requests)", redeliveryRecords, listOffsets.Load())
}

func chanClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
