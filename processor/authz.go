package processor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/eos-runner/eos-runner/topology"
)

// Authorization: a broker that enforces ACLs answers a request the runner's
// principal may not make with TOPIC_, GROUP_ or
// TRANSACTIONAL_ID_AUTHORIZATION_FAILED. None of these can improve by
// retrying (an ACL must be granted), but librdkafka retries some of them
// for ever (a group it may not join: the consumer waits, logging one
// error) or turns them into aborts (a topic it may not write: every
// transaction aborts and the records are processed again). The runner
// instead stops on the first one, with an *AuthorizationError naming the
// resource and the ACL it lacks; docs/security.md lists them all.

// ErrAuthorization is wrapped by the error that stops the runner because
// the cluster refused an operation for lack of an ACL (an
// *AuthorizationError). It is never retriable.
var ErrAuthorization = errors.New("kafka authorization")

// AuthorizationError is an operation the cluster refused to the runner's
// principal: the ACL to grant, and the broker's error code.
type AuthorizationError struct {
	// Principal is User:<sasl.username>, or empty when the runner does not
	// know it (OAUTHBEARER, mutual TLS).
	Principal string
	// Resource is "topic", "group" or "transactional id"; Name its name.
	Resource, Name string
	// Operations are the ACL operations the runner needs on it (any one of
	// them is not enough when several are listed).
	Operations []string
	// Prefix, for the application's internal topics and transactional ids,
	// is the prefix a PREFIXED ACL can name instead.
	Prefix string
	// Code is the broker's error, e.g. GROUP_AUTHORIZATION_FAILED.
	Code string
}

func (e *AuthorizationError) Error() string {
	who := e.Principal
	if who == "" {
		who = "the runner's principal"
	}
	also := ""
	if e.Prefix != "" {
		also = fmt.Sprintf(" (or on every %s prefixed %q: a PREFIXED ACL)", e.Resource, e.Prefix)
	}
	return fmt.Sprintf("not authorized (%s): grant %s ALLOW %s on %s %q%s; docs/security.md lists the ACLs a runner needs",
		e.Code, who, strings.Join(e.Operations, ", "), e.Resource, e.Name, also)
}

// Is makes errors.Is(err, ErrAuthorization) and errors.Is(err, ErrFatal) hold.
func (e *AuthorizationError) Is(target error) bool {
	return target == ErrAuthorization || target == ErrFatal
}

// authorizationCode is the name of err's code when it is an authorization
// failure, else "".
func authorizationCode(err error) string {
	var ke kafka.Error
	if !errors.As(err, &ke) {
		return ""
	}
	switch ke.Code() {
	case kafka.ErrTopicAuthorizationFailed:
		return "TOPIC_AUTHORIZATION_FAILED"
	case kafka.ErrGroupAuthorizationFailed:
		return "GROUP_AUTHORIZATION_FAILED"
	case kafka.ErrTransactionalIDAuthorizationFailed:
		return "TRANSACTIONAL_ID_AUTHORIZATION_FAILED"
	case kafka.ErrClusterAuthorizationFailed:
		return "CLUSTER_AUTHORIZATION_FAILED"
	}
	return ""
}

// authorization returns err as an *AuthorizationError about the resource
// the failed call was about, when err is an authorization failure; else
// err. The resource's code must match err's (a group call may fail on its
// topics too; that one is left as it is).
func (r *Runner) authorization(err error, resource, name string, ops ...string) error {
	code := authorizationCode(err)
	want := map[string]string{"topic": "TOPIC_AUTHORIZATION_FAILED", "group": "GROUP_AUTHORIZATION_FAILED",
		"transactional id": "TRANSACTIONAL_ID_AUTHORIZATION_FAILED"}[resource]
	if code == "" || code != want {
		return err
	}
	e := &AuthorizationError{Resource: resource, Name: name, Operations: ops, Code: code}
	if u := scopeSettings(r.cfg.Kafka, "")["sasl.username"]; u != "" {
		e.Principal = "User:" + u
	}
	if p := r.cfg.ApplicationID + "-"; strings.HasPrefix(name, p) && resource != "group" {
		e.Prefix = p
	}
	return e
}

func isAuthorization(err error) bool {
	var ae *AuthorizationError
	return errors.As(err, &ae)
}

// groupAuthorization maps a consumer error about the group: the runner's
// group (application.id) needs READ.
func (r *Runner) groupAuthorization(err error) error {
	return r.authorization(err, "group", r.cfg.ApplicationID, "READ")
}

// txnAuthorization maps a producer error about the transactional id.
func (r *Runner) txnAuthorization(err error) error {
	return r.authorization(err, "transactional id", r.cfg.ApplicationID+"-"+r.cfg.InstanceID, "WRITE")
}

// aclOps are the topic ACL operations the runner checks, by their Kafka names.
var aclOps = map[string]kafka.ACLOperation{
	"READ":             kafka.ACLOperationRead,
	"WRITE":            kafka.ACLOperationWrite,
	"DESCRIBE_CONFIGS": kafka.ACLOperationDescribeConfigs,
}

// externalTopicNeeds are the topics the topology reads or writes that the
// runner does not create under its prefix, with the ACL operations it
// needs on each.
func (r *Runner) externalTopicNeeds() map[string][]string {
	need := map[string][]string{}
	app := r.cfg.ApplicationID
	for _, n := range r.topo.Nodes {
		if n.Internal {
			continue
		}
		switch n.Kind {
		case topology.SourceNode:
			for _, t := range n.Topics {
				need[topology.TopicName(app, t, false)] = []string{"READ"}
			}
		case topology.SinkNode:
			need[topology.TopicName(app, n.Topics[0], false)] = []string{"WRITE"}
		}
	}
	// A table's or global table's source topic is restored from, and its
	// delete.retention.ms described, at every restore.
	for _, s := range r.topo.Stores {
		if s.SourceTopic != "" {
			need[topology.TopicName(app, s.SourceTopic, false)] = []string{"READ", "DESCRIBE_CONFIGS"}
		}
	}
	return need
}

// topicNeeds are externalTopicNeeds and the runner's internal topics:
// changelogs (written in transactions, read and described at restore),
// repartition topics (written and read) and the dead-letter topic.
func (r *Runner) topicNeeds(plan *topicPlan) map[string][]string {
	need := r.externalTopicNeeds()
	for t := range plan.changelogs {
		need[t] = []string{"READ", "WRITE", "DESCRIBE_CONFIGS"}
	}
	for t := range plan.repartition {
		need[t] = []string{"READ", "WRITE"}
	}
	if r.dlqUsed() {
		need[r.cfg.DLQTopic] = append(need[r.cfg.DLQTopic], "WRITE")
	}
	return need
}

// checkTopicACLs describes topics by name, with the operations the
// principal may perform on each (KIP-430), and reports every topic it may
// not describe (TOPIC_AUTHORIZATION_FAILED) or lacks a needed operation
// on, before anything is processed: a missing WRITE would otherwise show
// only as aborted transactions. A broker that does not report authorized
// operations, or a topic it does not know yet, is not checked; an error of
// the request itself is ignored (the calls that follow report it).
func (r *Runner) checkTopicACLs(ctx context.Context, admin *kafka.AdminClient, need map[string][]string) error {
	names := make([]string, 0, len(need))
	for t := range need {
		names = append(names, t)
	}
	if len(names) == 0 {
		return nil
	}
	sort.Strings(names)
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	res, err := admin.DescribeTopics(dctx, kafka.NewTopicCollectionOfTopicNames(names),
		kafka.SetAdminOptionIncludeAuthorizedOperations(true))
	if err != nil {
		return nil
	}
	var errs []error
	for _, d := range res.TopicDescriptions {
		if e := r.authorization(d.Error, "topic", d.Name, need[d.Name]...); isAuthorization(e) {
			errs = append(errs, e)
			continue
		}
		// A topic described without DESCRIBE among its operations means a
		// broker that does not really report them (Kafka, with or without
		// an authorizer, includes DESCRIBE, implied by any other).
		if d.Error.Code() != kafka.ErrNoError || !slices.Contains(d.AuthorizedOperations, kafka.ACLOperationDescribe) {
			continue
		}
		var missing []string
		for _, op := range need[d.Name] {
			if !slices.Contains(d.AuthorizedOperations, aclOps[op]) {
				missing = append(missing, op)
			}
		}
		if len(missing) > 0 {
			errs = append(errs, r.authorization(kafka.NewError(kafka.ErrTopicAuthorizationFailed, "", false),
				"topic", d.Name, missing...))
		}
	}
	return errors.Join(errs...)
}

// missingTopicACLs is checkTopicACLs for every topic of the running
// plan, with an admin client of the producer's; nil when nothing is found
// missing. It explains aborted transactions: librdkafka reports a topic it
// may not write only in its log and in an abort's cause, and the records
// fail with "Erroneous state".
func (r *Runner) missingTopicACLs(ctx context.Context) error {
	admin, err := kafka.NewAdminClientFromProducer(r.producer)
	if err != nil {
		return nil
	}
	defer admin.Close()
	return r.checkTopicACLs(ctx, admin, r.topicNeeds(r.plan))
}

// hasAuthorizationCode reports whether any error in err's tree (an abort
// wraps its cause and its own failure) is an authorization failure.
func hasAuthorizationCode(err error) bool {
	if err == nil {
		return false
	}
	if ke, ok := err.(kafka.Error); ok && authorizationCode(ke) != "" {
		return true
	}
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		return hasAuthorizationCode(u.Unwrap())
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			if hasAuthorizationCode(e) {
				return true
			}
		}
	}
	return false
}
