package topology

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/eos-runner/eos-runner/serde"
)

// sendCtx captures what a foreign-key join's registration node forwards.
type sendCtx struct {
	ProcessorContext
	out     []Record
	dropped []string
}

func (c *sendCtx) ApplicationID() string                { return "app" }
func (c *sendCtx) Forward(r Record) error               { c.out = append(c.out, r); return nil }
func (c *sendCtx) RecordDropped(reason string, _ error) { c.dropped = append(c.dropped, reason) }

// TestSubscriptionInstructions transcribes Kafka Streams'
// SubscriptionSendProcessorSupplierTest: which subscriptions a left change
// sends, for the left and the inner join. Left values are "<fk>" or
// "null-fk" (a nil foreign key); every forwarded subscription is listed,
// including those KS's test leaves unasserted (it checks one of two).
func TestSubscriptionInstructions(t *testing.T) {
	fkOf := func(v any) (any, error) {
		if v == "null-fk" {
			return nil, nil
		}
		return v, nil
	}
	const n = "new"
	for _, tc := range []struct {
		ks       string
		left     bool
		new, old any
		want     []string // "<fk>:<instruction>:<hash of new|null>"
	}{
		{"leftJoinShouldPropagateNewPrimaryKeyWithNonNullFK", true, "fk1", nil, []string{"fk1:PROPAGATE_NULL_IF_NO_FK_VAL_AVAILABLE:" + n}},
		{"leftJoinShouldPropagateNewPrimaryKeyWithNullFK", true, "null-fk", nil, []string{"<nil>:PROPAGATE_NULL_IF_NO_FK_VAL_AVAILABLE:" + n}},
		{"leftJoinShouldPropagateChangeOfFKFromNonNullToNonNullValue", true, "fk2", "fk1", []string{"fk1:DELETE_KEY_AND_PROPAGATE:" + n, "fk2:PROPAGATE_NULL_IF_NO_FK_VAL_AVAILABLE:" + n}},
		{"leftJoinShouldPropagateNewRecordOfUnchangedFK", true, "fk1", "fk1", []string{"fk1:PROPAGATE_NULL_IF_NO_FK_VAL_AVAILABLE:" + n}},
		{"leftJoinShouldPropagateChangeOfFKFromNonNullToNullValue", true, "null-fk", "fk1", []string{"fk1:DELETE_KEY_AND_PROPAGATE:" + n, "<nil>:PROPAGATE_NULL_IF_NO_FK_VAL_AVAILABLE:" + n}},
		{"leftJoinShouldPropagateChangeFromNullFKToNonNullFKValue", true, "fk1", "null-fk", []string{"fk1:PROPAGATE_NULL_IF_NO_FK_VAL_AVAILABLE:" + n}},
		{"leftJoinShouldPropagateChangeFromNullFKToNullFKValue", true, "null-fk", "null-fk", []string{"<nil>:PROPAGATE_NULL_IF_NO_FK_VAL_AVAILABLE:" + n}},
		{"leftJoinShouldPropagateDeletionOfAPrimaryKey", true, nil, "fk1", []string{"fk1:DELETE_KEY_AND_PROPAGATE:null", "<nil>:PROPAGATE_NULL_IF_NO_FK_VAL_AVAILABLE:null"}},
		{"leftJoinShouldPropagateDeletionOfAPrimaryKeyThatHadNullFK", true, nil, "null-fk", []string{"<nil>:PROPAGATE_NULL_IF_NO_FK_VAL_AVAILABLE:null"}},
		{"leftJoinShouldPropagateNothingWhenOldAndNewLeftValueIsNull", true, nil, nil, nil},
		{"innerJoinShouldPropagateNewPrimaryKey", false, "fk1", nil, []string{"fk1:PROPAGATE_ONLY_IF_FK_VAL_AVAILABLE:" + n}},
		{"innerJoinShouldNotPropagateNewPrimaryKeyWithNullFK", false, "null-fk", nil, nil},
		{"innerJoinShouldDeleteOldAndPropagateNewFK", false, "fk2", "fk1", []string{"fk1:DELETE_KEY_NO_PROPAGATE:" + n, "fk2:PROPAGATE_NULL_IF_NO_FK_VAL_AVAILABLE:" + n}},
		{"innerJoinShouldPropagateNothingWhenOldAndNewFKIsNull", false, "null-fk", "null-fk", nil},
		{"innerJoinShouldPropagateDeletionOfPrimaryKey", false, nil, "fk1", []string{"fk1:DELETE_KEY_AND_PROPAGATE:null"}},
		{"innerJoinShouldPropagateNothingWhenOldAndNewLeftValueIsNull", false, nil, nil, nil},
	} {
		t.Run(tc.ks, func(t *testing.T) {
			str := serde.String{}
			j := &fkJoin{name: "fk", subTopic: "fk-subscription-registration-topic", respTopic: "fk-subscription-response-topic",
				fk: fkOf, fkSerde: str, leftKey: str, leftValue: str, left: tc.left}
			ctx := &sendCtx{}
			p := &fkSendProcessor{j: j}
			if err := p.Init(ctx); err != nil {
				t.Fatal(err)
			}
			if err := p.Process(Record{Key: "pk", Value: change{New: tc.new, Old: tc.old}}); err != nil {
				t.Fatal(err)
			}
			newHash := valueHash{}
			if tc.new != nil {
				newHash = hashBytes([]byte(tc.new.(string)))
			}
			var got []string
			for _, r := range ctx.out {
				s := r.Value.(subscription)
				if string(s.pk) != "pk" {
					t.Errorf("primary key %q", s.pk)
				}
				h := "null"
				switch {
				case s.hash == newHash && s.hash.ok:
					h = n
				case s.hash.ok:
					h = fmt.Sprintf("%x%x", s.hash.h1, s.hash.h2)
				}
				got = append(got, fmt.Sprintf("%v:%v:%s", r.Key, s.instruction, h))
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("forwarded\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
			if !tc.left && tc.new == "null-fk" && len(ctx.dropped) != 1 {
				t.Errorf("inner join, nil foreign key: dropped %v", ctx.dropped)
			}
		})
	}
}

// TestForeignKeyJoinBuildErrors: a missing result serde or nil arguments
// are reported at Build, each naming the join.
func TestForeignKeyJoinBuildErrors(t *testing.T) {
	str := serde.String{}
	b := NewBuilder()
	left := b.Table("l", Consumed{Key: str, Value: str}, Materialized{})
	right := b.Table("r", Consumed{Key: str, Value: str}, Materialized{})
	fk := func(v any) (any, error) { return v, nil }
	joiner := func(_, l, r any) (any, error) { return l, nil }
	left.JoinForeignKey(right, fk, joiner, ForeignKeyJoined{Name: "no-result"}).ToStream().To("o1", Produced{Key: str, Value: str})
	left.LeftJoinForeignKey(right, nil, joiner, ForeignKeyJoined{Name: "no-fk", Result: str})
	_, err := b.Build()
	if err == nil {
		t.Fatal("built")
	}
	for _, want := range []string{`"no-result": ForeignKeyJoined.Result`, "nil table, foreign-key extractor or joiner"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
}
