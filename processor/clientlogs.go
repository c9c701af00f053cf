package processor

import (
	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// newAdminClient returns an admin client whose librdkafka log lines go
// through the runner's logger (drainLogs) as client's, and the function
// that closes it.
//
// confluent-kafka-go's NewAdminClient has no log channel: librdkafka then
// prints its lines itself, raw ("%3|1715...|FAIL|rdkafka#producer-1| ...")
// on stderr, past slog, the secret scrubber and --log-format json. A
// producer does have one, and an admin client derived from it shares its
// handle, so the runner's short-lived admin clients are made that way. The
// producer is neither idempotent nor transactional and sends nothing.
func (r *Runner) newAdminClient(client string) (*kafka.AdminClient, func(), error) {
	p, err := kafka.NewProducer(r.kafkaConfig("admin", kafka.ConfigMap{
		"go.logs.channel.enable": true,
		// Only the admin requests' metadata: no delivery reports to drain.
		"go.delivery.reports": false,
	}))
	if err != nil {
		return nil, nil, err
	}
	logsDone := make(chan struct{})
	go func() { defer close(logsDone); r.drainLogs(client, p.Logs()) }()
	go func() {
		for range p.Events() { // errors are the admin calls' own results too
		}
	}()
	a, err := kafka.NewAdminClientFromProducer(p)
	if err != nil {
		p.Close()
		<-logsDone
		return nil, nil, err
	}
	return a, func() {
		a.Close()
		p.Close()
		<-logsDone
	}, nil
}
