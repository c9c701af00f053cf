// Package demo drives `eos-runner dev`: a generator of realistic page-view
// traffic for examples/pageviews, in Avro through the schema registry (with
// bots, a few malformed records, and a schema evolution partway through), and
// a live table of the committed results, read with read_committed through an
// independent client (franz-go), so what it shows is what downstream
// consumers see.
//
// The story the demo tells: the generator writes PageView v1, then switches
// to v2 (a new optional field, registered under pageviews-value at BACKWARD)
// while the topology keeps running; the table shows the input by schema
// version, the counts going on across the switch, the final views per page
// of the latest closed minutes (one result per page and minute, written when
// the minute closes), and every malformed record in the dead-letter topic
// with its reason.
package demo

import (
	"context"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eos-runner/eos-runner/examples/pageviews"
)

// EnsureTopics creates the example's input and output topics if missing.
func EnsureTopics(ctx context.Context, brokers []string, partitions int32) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return fmt.Errorf("demo: topics: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	resp, err := adm.CreateTopics(ctx, partitions, 1, nil, pageviews.Input, pageviews.PerPage, pageviews.PerPagePerMinute, pageviews.PerUser)
	if err != nil {
		return fmt.Errorf("demo: create topics: %w", err)
	}
	for _, r := range resp {
		if r.Err != nil && !strings.Contains(r.Err.Error(), "TOPIC_ALREADY_EXISTS") {
			return fmt.Errorf("demo: create topic %s: %w", r.Topic, r.Err)
		}
	}
	return nil
}
