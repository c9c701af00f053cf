// Package enrichment is the tables-and-joins example: orders enriched with
// their customer from a compacted topic (a stream-table join, after the
// automatic repartition by customer), then matched with their payment
// within ten minutes (a windowed stream-stream left join: an order nobody
// paid is emitted once its window has closed, with a nil payment).
//
// Topics (JSON values, string keys):
//
//	customers         key customer id; {"name": ..., "tier": ...}; compacted
//	orders            key order id;    {"order": id, "customer": id, "amount": n}
//	payments          key order id;    {"order": id, "amount": n}
//	orders-enriched   key customer id; the order with "customer_name", "tier"
//	order-payments    key order id;    the enriched order with "paid" (nil: unpaid)
package enrichment

import (
	"fmt"
	"maps"
	"time"

	"github.com/eos-runner/eos-runner/serde"
	"github.com/eos-runner/eos-runner/topology"
)

// Topic names.
const (
	Customers      = "customers"
	Orders         = "orders"
	Payments       = "payments"
	EnrichedOrders = "orders-enriched"
	OrderPayments  = "order-payments"
)

// PaymentWindow is how long after an order its payment may come; Grace how
// much later a payment may still arrive out of order.
const (
	PaymentWindow = 10 * time.Minute
	Grace         = time.Minute
)

// Topology builds the example.
func Topology() (*topology.Topology, error) {
	str, js := serde.String{}, serde.JSON{}
	b := topology.NewBuilder()
	customers := b.Table(Customers, topology.Consumed{Key: str, Value: js}, topology.Materialized{Name: "customers"})

	// Orders are keyed by order id; the join needs them by customer, so the
	// key changes and the stream is repartitioned before the join
	// (<application.id>-orders-by-customer-repartition), co-partitioned with
	// customers.
	enriched := b.Stream([]string{Orders}, topology.Consumed{Key: str, Value: js}).
		SelectKey(func(_, v any) any { return field(v, "customer") }).
		LeftJoinTable(customers, func(_, order, customer any) (any, error) {
			out := maps.Clone(asMap(order))
			if c := asMap(customer); c != nil {
				out["customer_name"], out["tier"] = c["name"], c["tier"]
			}
			return out, nil
		}, topology.Joined{Key: str, Value: js, Name: "orders-by-customer"})
	enriched.To(EnrichedOrders, topology.Produced{Key: str, Value: js})

	// Back to the order id, to meet its payment: a left join, so that an
	// order without a payment within the window is emitted once the window
	// has closed, with "paid": null.
	payments := b.Stream([]string{Payments}, topology.Consumed{Key: str, Value: js})
	enriched.SelectKey(func(_, v any) any { return field(v, "order") }).
		LeftJoin(payments, func(_, order, payment any) (any, error) {
			out := maps.Clone(asMap(order))
			out["paid"] = nil
			if p := asMap(payment); p != nil {
				out["paid"] = p["amount"]
			}
			return out, nil
		}, topology.JoinWindows{Before: 0, After: PaymentWindow, Grace: Grace},
			topology.StreamJoined{Key: str, Value: js, OtherValue: js, Name: "order-payments"}).
		To(OrderPayments, topology.Produced{Key: str, Value: js})

	t, err := b.Build()
	if err != nil {
		return nil, fmt.Errorf("enrichment: %w", err)
	}
	return t, nil
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// field returns a value's field as a string key (nil when missing: the
// record is dropped by the join, counted).
func field(v any, name string) any {
	switch x := asMap(v)[name].(type) {
	case string:
		return x
	case float64:
		return fmt.Sprint(x)
	}
	return nil
}
