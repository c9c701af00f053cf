package enrichment

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/eos-runner/eos-runner/processor"
	"github.com/eos-runner/eos-runner/serde"
)

// TestEnrichment runs the example on processor.TestDriver, with the topics
// on different partition counts where the joins allow it: orders arrive
// keyed by order id and are repartitioned by customer to meet the
// customers table (3 partitions), then by order id to meet payments. One
// partition of payments: stream time, which closes an unpaid order's
// window, is per task, so with several, o2's window would close only when
// its own partition moved on.
func TestEnrichment(t *testing.T) {
	topo, err := Topology()
	if err != nil {
		t.Fatal(err)
	}
	d, err := processor.NewTestDriver(topo, processor.TestDriverConfig{ApplicationID: "shop",
		Partitions: map[string]int{Customers: 3, Orders: 2, Payments: 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	at := func(min int) time.Time { return time.UnixMilli(0).Add(time.Duration(min) * time.Minute) }
	pipe := func(topic, key, value string, ts time.Time) {
		t.Helper()
		var v any
		if err := json.Unmarshal([]byte(value), &v); err != nil {
			t.Fatal(err)
		}
		if err := d.PipeInput(topic, key, v, ts); err != nil {
			t.Fatal(err)
		}
	}
	pipe(Customers, "c1", `{"name":"Ada","tier":"gold"}`, at(0))
	pipe(Customers, "c2", `{"name":"Bo","tier":"basic"}`, at(0))
	pipe(Orders, "o1", `{"order":"o1","customer":"c1","amount":30}`, at(1))
	pipe(Orders, "o2", `{"order":"o2","customer":"c2","amount":12}`, at(2))
	pipe(Orders, "o3", `{"order":"o3","customer":"c9","amount":5}`, at(3)) // unknown customer
	pipe(Payments, "o1", `{"order":"o1","amount":30}`, at(4))
	pipe(Customers, "c2", `{"name":"Bo","tier":"gold"}`, at(5)) // no effect on o2
	pipe(Payments, "o3", `{"order":"o3","amount":5}`, at(9))
	// o2 is never paid: its window closes at 2+10+1 minutes of stream time.
	pipe(Payments, "o9", `{"order":"o9","amount":1}`, at(14))

	read := func(topic string) []string {
		recs, err := d.ReadRecords(topic, serde.String{}, serde.JSON{})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range recs {
			b, _ := json.Marshal(r.Value)
			out = append(out, r.Key.(string)+" "+string(b))
		}
		slices.Sort(out)
		return out
	}
	wantEnriched := []string{
		`c1 {"amount":30,"customer":"c1","customer_name":"Ada","order":"o1","tier":"gold"}`,
		`c2 {"amount":12,"customer":"c2","customer_name":"Bo","order":"o2","tier":"basic"}`,
		`c9 {"amount":5,"customer":"c9","order":"o3"}`,
	}
	if got := read(EnrichedOrders); !slices.Equal(got, wantEnriched) {
		t.Errorf("enriched orders:\n got %q\nwant %q", got, wantEnriched)
	}
	wantPayments := []string{
		`o1 {"amount":30,"customer":"c1","customer_name":"Ada","order":"o1","paid":30,"tier":"gold"}`,
		`o2 {"amount":12,"customer":"c2","customer_name":"Bo","order":"o2","paid":null,"tier":"basic"}`,
		`o3 {"amount":5,"customer":"c9","order":"o3","paid":5}`,
	}
	if got := read(OrderPayments); !slices.Equal(got, wantPayments) {
		t.Errorf("order payments:\n got %q\nwant %q", got, wantPayments)
	}
}
