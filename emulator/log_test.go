package emulator

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/testseller"
	"github.com/koobridge/koobridge/protocol"
)

// fillLog adds n finished messages to the log, as a busy emulator would.
func fillLog(v env, n int) {
	v.e.mu.Lock()
	defer v.e.mu.Unlock()
	for range n {
		d := &delivery{fam: V2}
		d.msg.Interface = protocol.ActivityQueryInstance
		v.e.addLocked(d, nil)
		d.msg.Status = MessageSuccess
	}
}

// Finding 4: a full log drops finished messages before one whose retry
// is pending.
func TestEvictionKeepsLiveRetries(t *testing.T) {
	v := start(t, &flaky{n: 1, next: goodSeller()}, nil) // the retry is an hour away
	v.e.logCap = 20
	run, sub := v.purchase(PurchaseRequest{ProductID: periodID})
	if run.OK {
		t.Fatal("first attempt succeeded against a failing seller")
	}
	fillLog(v, 50)
	if m, ok := v.e.Message(run.Messages[0]); !ok || m.Status != MessageRetrying {
		t.Fatalf("the retrying newInstance was dropped from the log (found %v, %s)", ok, m.Status)
	}
	if n := len(v.e.Messages(MessageFilter{})); n != 20 {
		t.Errorf("%d messages, want 20", n)
	}
	if err := v.e.Advance(time.Hour); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the retry", func() bool { s, _ := v.e.Subscription(sub.ID); return s.Status == StatusActive })
}

// Finding 4: when every message waits for a retry, the oldest is dropped
// after its failure path ran.
func TestEvictionFailsWhenAllPending(t *testing.T) {
	v := start(t, &flaky{n: 1 << 30}, nil)
	v.e.logCap = 2
	var subs []string
	for range 3 {
		run, _ := v.purchase(PurchaseRequest{ProductID: periodID})
		subs = append(subs, run.SubscriptionID)
	}
	want := []string{StatusFailed, StatusPending, StatusPending}
	for i, id := range subs {
		if s, _ := v.e.Subscription(id); s.Status != want[i] {
			t.Errorf("subscription %d: %s, want %s", i+1, s.Status, want[i])
		}
	}
	v.e.mu.Lock()
	timers := len(v.e.timers)
	v.e.mu.Unlock()
	if timers != 2 {
		t.Errorf("%d retries scheduled, want 2 (the dropped message's is cancelled)", timers)
	}
}

// Finding 5: the log keeps 16 KiB of a body, while the checks and the
// state change see all of it.
func TestLongBodiesCut(t *testing.T) {
	s := intercept(goodSeller())
	v := start(t, s, nil)
	_, sub := v.purchase(PurchaseRequest{ProductID: periodID})
	pad := strings.Repeat("x", 40<<10)
	s.answer = func(activity string, _ int, _ []byte) (int, []byte) {
		if activity != protocol.ActivityQueryInstance {
			return 0, nil
		}
		// The instance's info comes after the padding.
		return 200, fmt.Appendf(nil, `{"resultCode":"000000","padding":%q,"info":[{"instanceId":%q,"appInfo":{"frontEndUrl":"https://late.example/%s"}}]}`, pad, sub.InstanceID, sub.InstanceID)
	}
	run, got := v.play(sub.ID, "query")
	if !run.OK {
		t.Fatalf("query: %s", run.Err)
	}
	if got.AppInfo == nil || got.AppInfo.FrontEndURL != "https://late.example/"+sub.InstanceID {
		t.Errorf("appInfo %+v: the change did not see the whole answer", got.AppInfo)
	}
	m, _ := v.e.Message(run.Messages[0])
	r := m.Attempts[0].Response
	if len(r.Body) != 16<<10 || !r.Truncated || !strings.HasPrefix(r.Body, `{"resultCode":"000000","padding":"xxx`) {
		t.Errorf("stored answer: %d bytes, truncated %v", len(r.Body), r.Truncated)
	}
	if q := m.Attempts[0].Request; q.Truncated || !json.Valid([]byte(q.Body)) {
		t.Errorf("stored request cut: %+v", q)
	}
}

// Finding 5: a message keeps its first 10 and last 40 attempts.
func TestAttemptsCapped(t *testing.T) {
	s := intercept(goodSeller())
	v := start(t, s, func(c *Config) {
		c.TimeScale = 3600 * 10
		c.Retry = map[string]RetryPolicy{protocol.ActivityUpdateInstanceStatus: {Interval: time.Minute, Window: time.Hour}}
	})
	_, sub := v.purchase(PurchaseRequest{ProductID: onDemandID})
	s.failNext(protocol.ActivityUpdateInstanceStatus, 1<<30)
	run, _ := v.play(sub.ID, "arrears-freeze")
	id := run.Messages[0]
	waitFor(t, "the retries to end", func() bool { m, _ := v.e.Message(id); return m.Status == MessageFailed })
	m, _ := v.e.Message(id)
	if len(m.Attempts) != keepFirst+keepLast || m.DroppedAttempts != 11 {
		t.Fatalf("%d attempts kept, %d dropped; want 50 and 11 (61 made)", len(m.Attempts), m.DroppedAttempts)
	}
	for i, minute := range map[int]int{0: 0, 9: 9, 10: 21, 49: 60} {
		if want := m.FirstSentAt.Add(time.Duration(minute) * time.Minute); !m.Attempts[i].At.Equal(want) {
			t.Errorf("attempt %d at %v, want minute %d", i, m.Attempts[i].At, minute)
		}
	}
	if n := attemptNo(49, m); n != 61 {
		t.Errorf("the last attempt is shown as number %d, want 61", n)
	}
}

// Finding 4: polls that answer 000004 share a message (three hours of
// polling every 10 s would otherwise make about a thousand).
func TestPollsShareAMessage(t *testing.T) {
	v := start(t, stuck{testseller.New(testKey, testseller.Faults{Async: true})}, func(c *Config) {
		c.TimeScale = 3600 * 10
		c.NoRetry = true
		c.Retry = map[string]RetryPolicy{protocol.ActivityNewInstance: {Interval: time.Hour, Window: 3 * time.Hour}}
	})
	run, sub := v.purchase(PurchaseRequest{ProductID: periodID})
	if run.OK || sub.Status != StatusFailed {
		t.Fatalf("run %+v, status %s", run, sub.Status)
	}
	if len(run.Messages) != 2 || len(v.e.Messages(MessageFilter{})) != 2 {
		t.Fatalf("%d messages in the run, %d in the log; want newInstance and one poll message", len(run.Messages), len(v.e.Messages(MessageFilter{})))
	}
	if m, _ := v.e.Message(run.Messages[1]); len(m.Attempts)+m.DroppedAttempts != 1080 {
		t.Errorf("%d polls, want 1080 (every 10 s for 3 h)", len(m.Attempts)+m.DroppedAttempts)
	}
}
