package topology

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

const msec = time.Millisecond

func at(ms int64) time.Time { return fromMillis(ms) }

// TestTimeWindowsFor transcribes Kafka Streams' TimeWindowsTest
// (streams/src/test/java/org/apache/kafka/streams/kstream/TimeWindowsTest.java:
// shouldComputeWindowsForHoppingWindows, ...BarelyOverlappingHoppingWindows,
// ...TumblingWindows) and adds the epoch edge.
func TestTimeWindowsFor(t *testing.T) {
	for _, tc := range []struct {
		name string
		w    TimeWindows
		ts   int64
		want string
	}{
		{"KS hopping", TimeWindows{Size: 12 * msec, Advance: 5 * msec}, 21, "[10,22] [15,27] [20,32]"},
		{"KS barely overlapping hopping", TimeWindows{Size: 6 * msec, Advance: 5 * msec}, 7, "[5,11]"},
		{"KS tumbling", TimeWindows{Size: 12 * msec}, 21, "[12,24]"},
		{"tumbling, advance = size", TimeWindows{Size: 12 * msec, Advance: 12 * msec}, 24, "[24,36]"},
		{"hopping near the epoch leaves out negative starts", TimeWindows{Size: 10 * msec, Advance: 5 * msec}, 3, "[0,10]"},
		{"hopping at a start boundary", TimeWindows{Size: 10 * msec, Advance: 5 * msec}, 10, "[5,15] [10,20]"},
		{"at the epoch", TimeWindows{Size: 10 * msec, Advance: 3 * msec}, 0, "[0,10]"},
	} {
		var got []string
		for _, w := range tc.w.WindowsFor(at(tc.ts)) {
			got = append(got, w.String())
		}
		if g := strings.Join(got, " "); g != tc.want {
			t.Errorf("%s: WindowsFor(%d) = %s, want %s", tc.name, tc.ts, g, tc.want)
		}
	}
}

// TestIsClosed pins each window type's boundary, one millisecond either side.
func TestIsClosed(t *testing.T) {
	type closer interface{ IsClosed(end, st time.Time) bool }
	for _, tc := range []struct {
		name     string
		w        closer
		end      int64
		lastOpen int64 // the largest stream time at which the window is open
	}{
		// KStreamWindowAggregate: open while end > st - grace.
		{"time, no grace", TimeWindows{Size: 10 * msec}, 10, 9},
		{"time, grace", TimeWindows{Size: 10 * msec, Grace: 5 * msec}, 10, 14},
		// KStreamSlidingWindowAggregate: open while end >= st - grace.
		{"sliding, no grace", SlidingWindows{TimeDifference: 10 * msec}, 10, 10},
		{"sliding, grace", SlidingWindows{TimeDifference: 10 * msec, Grace: 5 * msec}, 10, 15},
		// KStreamSessionWindowAggregate: open while end >= st - grace - gap.
		{"session, no grace", SessionWindows{Gap: 5 * msec}, 10, 15},
		{"session, grace", SessionWindows{Gap: 5 * msec, Grace: 3 * msec}, 10, 18},
	} {
		if tc.w.IsClosed(at(tc.end), at(tc.lastOpen)) {
			t.Errorf("%s: closed at stream time %d, want open", tc.name, tc.lastOpen)
		}
		if !tc.w.IsClosed(at(tc.end), at(tc.lastOpen+1)) {
			t.Errorf("%s: open at stream time %d, want closed", tc.name, tc.lastOpen+1)
		}
	}
}

func TestWindowsValidate(t *testing.T) {
	for _, tc := range []struct {
		w    Windows
		want string // "" for valid
	}{
		{TimeWindows{Size: 10 * msec}, ""},
		{TimeWindows{Size: 10 * msec, Advance: 10 * msec, Grace: time.Hour}, ""},
		{TimeWindows{}, "TimeWindows: Size must be positive"},
		{TimeWindows{Size: 10 * msec, Advance: 11 * msec}, "TimeWindows: Advance must be in (0, Size=10ms]"},
		{TimeWindows{Size: 10 * msec, Advance: -1}, "TimeWindows: Advance"},
		{TimeWindows{Size: 10 * msec, Grace: -msec}, "TimeWindows: Grace must not be negative"},
		{TimeWindows{Size: 1500 * time.Microsecond}, "TimeWindows: Size must be whole milliseconds"},
		{SlidingWindows{TimeDifference: msec}, ""},
		{SlidingWindows{}, "SlidingWindows: TimeDifference must be positive"},
		{SlidingWindows{TimeDifference: msec, Grace: -msec}, "SlidingWindows: Grace must not be negative"},
		{SessionWindows{Gap: msec}, ""},
		{SessionWindows{}, "SessionWindows: Gap must be positive"},
		{SessionWindows{Gap: msec, Grace: -msec}, "SessionWindows: Grace must not be negative"},
	} {
		err := tc.w.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: %v", tc.w, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%+v: err = %v, want %q", tc.w, err, tc.want)
		}
	}
}

func TestCheckTimestamp(t *testing.T) {
	if err := CheckTimestamp(at(0)); err != nil {
		t.Errorf("epoch: %v", err)
	}
	if err := CheckTimestamp(at(-1)); !errors.Is(err, ErrNegativeTimestamp) {
		t.Errorf("-1ms: err = %v, want ErrNegativeTimestamp", err)
	}
	late := fmt.Errorf("wrapped: %w", &LateRecordError{Timestamp: at(1), StreamTime: at(20), Window: Window{Start: at(0), End: at(10)}})
	if !errors.Is(late, ErrLateRecord) {
		t.Errorf("LateRecordError does not wrap ErrLateRecord: %v", late)
	}
}

// TestMaterializedRetention: a windowed store's retention is the windows'
// need (KS's defaults) unless Materialized.Retention asks for more; less,
// or negative, fails Build (KS's Materialized.withRetention checks).
func TestMaterializedRetention(t *testing.T) {
	for _, tc := range []struct {
		name      string
		w         Windows
		retention time.Duration
		want      time.Duration // 0: Build fails
	}{
		{"time default", TimeWindows{Size: 10 * msec, Grace: 5 * msec}, 0, 15 * msec},
		{"time longer", TimeWindows{Size: 10 * msec, Grace: 5 * msec}, time.Hour, time.Hour},
		{"time too short", TimeWindows{Size: 10 * msec, Grace: 5 * msec}, 14 * msec, 0},
		{"sliding default", SlidingWindows{TimeDifference: 10 * msec, Grace: 5 * msec}, 0, 25 * msec},
		{"sliding too short", SlidingWindows{TimeDifference: 10 * msec, Grace: 5 * msec}, 24 * msec, 0},
		{"session default", SessionWindows{Gap: 10 * msec, Grace: 5 * msec}, 0, 15 * msec},
		{"session longer", SessionWindows{Gap: 10 * msec}, 30 * msec, 30 * msec},
		{"negative", SessionWindows{Gap: 10 * msec}, -msec, 0},
	} {
		b := NewBuilder()
		b.Stream([]string{"in"}, inStr).GroupByKey(grpStr).WindowedBy(tc.w).
			Count(Materialized{Name: "c", Retention: tc.retention})
		topo, err := b.Build()
		if tc.want == 0 {
			if err == nil || !strings.Contains(err.Error(), "retention") {
				t.Errorf("%s: Build error %v, want one about the retention", tc.name, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got := topo.Stores["c"].Retention; got != tc.want {
			t.Errorf("%s: retention %v, want %v", tc.name, got, tc.want)
		}
	}
}
