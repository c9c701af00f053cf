package processor

import (
	"errors"
	"fmt"
	"testing"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

func TestAuthorizationError(t *testing.T) {
	r := &Runner{cfg: Config{ApplicationID: "app", InstanceID: "i1", Kafka: map[string]string{"sasl.username": "alice"}}}
	groupDenied := kafka.NewError(kafka.ErrGroupAuthorizationFailed, "Group authorization failed", false)
	for _, c := range []struct {
		err  error
		want string
	}{
		{r.groupAuthorization(fmt.Errorf("join: %w", groupDenied)),
			`not authorized (GROUP_AUTHORIZATION_FAILED): grant User:alice ALLOW READ on group "app"; docs/security.md lists the ACLs a runner needs`},
		{r.txnAuthorization(kafka.NewError(kafka.ErrTransactionalIDAuthorizationFailed, "", true)),
			`not authorized (TRANSACTIONAL_ID_AUTHORIZATION_FAILED): grant User:alice ALLOW WRITE on transactional id "app-i1" (or on every transactional id prefixed "app-": a PREFIXED ACL); docs/security.md lists the ACLs a runner needs`},
		{r.authorization(kafka.NewError(kafka.ErrTopicAuthorizationFailed, "", false), "topic", "in", "READ", "DESCRIBE_CONFIGS"),
			`not authorized (TOPIC_AUTHORIZATION_FAILED): grant User:alice ALLOW READ, DESCRIBE_CONFIGS on topic "in"; docs/security.md lists the ACLs a runner needs`},
	} {
		if got := c.err.Error(); got != c.want {
			t.Errorf("got  %s\nwant %s", got, c.want)
		}
		if !errors.Is(c.err, ErrAuthorization) || !errors.Is(c.err, ErrFatal) {
			t.Errorf("%v: not ErrAuthorization and ErrFatal", c.err)
		}
	}
	// An error of another resource, or no authorization error, is left as it is.
	if err := r.txnAuthorization(groupDenied); err != error(groupDenied) {
		t.Errorf("group error mapped as a transactional id's: %v", err)
	}
	other := kafka.NewError(kafka.ErrTimedOut, "", false)
	if err := r.groupAuthorization(other); isAuthorization(err) {
		t.Errorf("timeout mapped: %v", err)
	}
}

func TestHasAuthorizationCode(t *testing.T) {
	denied := kafka.NewError(kafka.ErrTopicAuthorizationFailed, "", false)
	invalid := kafka.NewError(kafka.ErrInvalidTxnState, "", true)
	// An abort that failed, after a cause: both wrapped.
	abort := fmt.Errorf("%w: abort transaction: %w (aborting after: %w)", ErrFatal, invalid, fmt.Errorf("send offsets: %w", denied))
	if !hasAuthorizationCode(abort) {
		t.Errorf("not found in %v", abort)
	}
	if hasAuthorizationCode(fmt.Errorf("x: %w", invalid)) || hasAuthorizationCode(nil) {
		t.Error("found where there is none")
	}
}
