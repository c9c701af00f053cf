package topology_test

import (
	"fmt"
	"time"

	"github.com/eos-runner/eos-runner/processor"
	"github.com/eos-runner/eos-runner/serde"
	"github.com/eos-runner/eos-runner/topology"
)

// driveExample builds b and pipes each record through processor.TestDriver (the
// runner's tasks and stores, without a broker); it returns the driver for
// the caller to read outputs from, and to close.
func driveExample(b *topology.Builder, in func(d *processor.TestDriver) error) *processor.TestDriver {
	topo, err := b.Build()
	if err != nil {
		panic(err)
	}
	d, err := processor.NewTestDriver(topo, processor.TestDriverConfig{ApplicationID: "app"})
	if err != nil {
		panic(err)
	}
	if err := in(d); err != nil {
		panic(err)
	}
	return d
}

// Payments deduplicated by record key for an hour: a producer's retry of
// p-1 is dropped (and counted in eos_dropped_records_total{reason="duplicate"}),
// p-1 a day later is new again.
func ExampleStream_Dedup() {
	b := topology.NewBuilder()
	b.Stream([]string{"payments"}, topology.Consumed{Key: serde.String{}, Value: serde.String{}}).
		Dedup(topology.ByRecordKey(), time.Hour).
		To("payments-once", topology.Produced{Key: serde.String{}, Value: serde.String{}})

	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	d := driveExample(b, func(d *processor.TestDriver) error {
		for _, r := range []struct {
			key, value string
			at         time.Duration
		}{
			{"p-1", "10.00 EUR", 0},
			{"p-2", "5.00 EUR", time.Minute},
			{"p-1", "10.00 EUR (retried)", 2 * time.Minute},
			{"p-1", "10.00 EUR (next day)", 24 * time.Hour},
		} {
			if err := d.PipeInput("payments", r.key, r.value, t0.Add(r.at)); err != nil {
				return err
			}
		}
		return nil
	})
	defer d.Close()
	out, _ := d.ReadRecords("payments-once", serde.String{}, serde.String{})
	for _, r := range out {
		fmt.Println(r.Key, r.Value)
	}
	fmt.Println("duplicates dropped:", d.Dropped("duplicate"))
	// Output:
	// p-1 10.00 EUR
	// p-2 5.00 EUR
	// p-1 10.00 EUR (next day)
	// duplicates dropped: 1
}

// An idempotency key in a header; records without the header pass through.
func ExampleByHeader() {
	b := topology.NewBuilder()
	b.Stream([]string{"orders"}, topology.Consumed{Key: serde.String{}, Value: serde.String{}}).
		Dedup(topology.ByHeader("idempotency-key"), 10*time.Minute).
		To("orders-once", topology.Produced{Key: serde.String{}, Value: serde.String{}})

	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	d := driveExample(b, func(d *processor.TestDriver) error {
		for i, idem := range []string{"a1", "a1", "", ""} {
			r := processor.TestRecord{Topic: "orders", Partition: processor.AnyPartition,
				Key: []byte("cart-7"), Value: fmt.Appendf(nil, "order %d", i), Timestamp: t0}
			if idem != "" {
				r.Headers = []topology.Header{{Key: "idempotency-key", Value: []byte(idem)}}
			}
			if err := d.PipeRecord(r); err != nil {
				return err
			}
		}
		return nil
	})
	defer d.Close()
	out, _ := d.ReadRecords("orders-once", serde.String{}, serde.String{})
	for _, r := range out {
		fmt.Println(r.Value)
	}
	// Output:
	// order 0
	// order 2
	// order 3
}

// An idempotency key in the value: a JSON event's id.
func ExampleByField() {
	b := topology.NewBuilder()
	b.Stream([]string{"events"}, topology.Consumed{Key: serde.String{}, Value: serde.JSON{}}).
		Dedup(topology.ByField("event.id"), time.Hour).
		To("events-once", topology.Produced{Key: serde.String{}, Value: serde.JSON{}})

	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	d := driveExample(b, func(d *processor.TestDriver) error {
		for i, id := range []string{"e-1", "e-2", "e-1"} {
			v := map[string]any{"event": map[string]any{"id": id}, "n": i}
			if err := d.PipeInput("events", "device-3", v, t0.Add(time.Duration(i)*time.Second)); err != nil {
				return err
			}
		}
		return nil
	})
	defer d.Close()
	out, _ := d.ReadRecords("events-once", serde.String{}, serde.JSON{})
	for _, r := range out {
		fmt.Println(r.Value)
	}
	// Output:
	// map[event:map[id:e-1] n:0]
	// map[event:map[id:e-2] n:1]
}

// Event time from a field of the value: a count per minute of when the
// reading was taken, not of when it reached Kafka. A record without the
// field goes to the error policy with class "timestamp" (here the default,
// the dead-letter topic).
func ExampleTimestampFromField() {
	b := topology.NewBuilder()
	b.Stream([]string{"readings"}, topology.Consumed{Key: serde.String{}, Value: serde.JSON{},
		Timestamp: topology.TimestampFromField("taken_at")}). // epoch millis or RFC 3339
		GroupByKey(topology.Grouped{Key: serde.String{}, Value: serde.JSON{}}).
		WindowedBy(topology.TimeWindows{Size: time.Minute}).
		Count(topology.Materialized{Name: "readings-per-minute"}).
		ToStream().
		To("readings-per-minute", topology.Produced{
			Key: serde.TimeWindowed{Inner: serde.String{}, Size: time.Minute}, Value: serde.Int64{}})

	arrived := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) // the records' own timestamp
	d := driveExample(b, func(d *processor.TestDriver) error {
		for _, v := range []map[string]any{
			{"taken_at": "2026-03-01T10:00:30Z"},
			{"taken_at": "2026-03-01T10:00:45Z"},
			{"taken_at": 1772359260000}, // 10:01:00 in epoch millis
			{"value": 7},                // no taken_at
		} {
			if err := d.PipeInput("readings", "sensor-1", v, arrived); err != nil {
				return err
			}
		}
		return nil
	})
	defer d.Close()
	out, _ := d.ReadRecords("readings-per-minute", serde.TimeWindowed{Inner: serde.String{}, Size: time.Minute}, serde.Int64{})
	for _, r := range out {
		w := r.Key.(topology.Windowed)
		fmt.Println(w.Key, w.Window.Start.UTC().Format("15:04"), r.Value)
	}
	for _, r := range d.ReadOutput("app-dlq") {
		for _, h := range r.Headers {
			if h.Key == "eos.error.class" {
				fmt.Println("dead-lettered:", string(h.Value))
			}
		}
	}
	// Output:
	// sensor-1 10:00 1
	// sensor-1 10:00 2
	// sensor-1 10:01 1
	// dead-lettered: timestamp
}
