package processor

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// validateChangelogConfigs checks the configuration of changelog topics that
// already exist against what the runner would create (changelogConfig), with
// Kafka Streams' rules (InternalTopicManager): a key-value store's changelog
// must not delete by time or size (cleanup.policy without "delete"), since a
// deleted record would be missing from every later restore; a window or
// session store's changelog that deletes must keep records at least as long
// as the store does (retention.ms >= the configured one, or -1) and must not
// delete by size (retention.bytes = -1). Every violation is reported at once,
// naming the topic, the setting, its value and what is needed.
func validateChangelogConfigs(ctx context.Context, admin *kafka.AdminClient, want []kafka.TopicSpecification) error {
	res := make([]kafka.ConfigResource, len(want))
	for i, spec := range want {
		res[i] = kafka.ConfigResource{Type: kafka.ResourceTopic, Name: spec.Topic}
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	got, err := admin.DescribeConfigs(cctx, res)
	if err != nil {
		return fmt.Errorf("describe changelog topic configs: %w", err)
	}
	byTopic := map[string]map[string]string{}
	var errs []error
	for _, r := range got {
		if r.Error.Code() != kafka.ErrNoError {
			errs = append(errs, fmt.Errorf("describe config of changelog topic %q: %w", r.Name, r.Error))
			continue
		}
		m := map[string]string{}
		for name, e := range r.Config {
			m[name] = e.Value
		}
		byTopic[r.Name] = m
	}
	for _, spec := range want {
		if have, ok := byTopic[spec.Topic]; ok {
			errs = append(errs, checkChangelogConfig(spec.Topic, have, spec.Config)...)
		}
	}
	return errors.Join(errs...)
}

// checkChangelogConfig compares one changelog topic's configuration (have)
// with the one the runner creates it with (want); see
// validateChangelogConfigs for the rules.
func checkChangelogConfig(topic string, have, want map[string]string) []error {
	deletes := func(policy string) bool {
		for _, p := range strings.Split(policy, ",") {
			if strings.TrimSpace(p) == "delete" {
				return true
			}
		}
		return false
	}
	policy := have["cleanup.policy"]
	if !deletes(policy) {
		return nil // compacted only: nothing expires by time or size
	}
	var errs []error
	if !deletes(want["cleanup.policy"]) {
		return []error{fmt.Errorf("changelog topic %q of a key-value store has cleanup.policy=%s: it must be compact (a deleted record would be missing from every restore)", topic, policy)}
	}
	if b := have["retention.bytes"]; b != "" && b != "-1" {
		errs = append(errs, fmt.Errorf("changelog topic %q of a window or session store has retention.bytes=%s: it must be -1 (deleting by size loses windows still in the store)", topic, b))
	}
	need, _ := strconv.ParseInt(want["retention.ms"], 10, 64)
	if v, ok := have["retention.ms"]; ok && v != "-1" {
		got, err := strconv.ParseInt(v, 10, 64)
		if err != nil || got < need {
			errs = append(errs, fmt.Errorf("changelog topic %q of a window or session store has retention.ms=%s: it must be at least %d (the store's retention plus windowstore.changelog.additional.retention.ms), or -1", topic, v, need))
		}
	}
	return errs
}
