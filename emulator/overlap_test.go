package emulator

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/testseller"
	"github.com/koobridge/koobridge/protocol"
)

// gate passes calls to next, except calls of activity: those numbered in
// fail answer 503, and call number hold waits (after closing held) until
// release is closed or the caller gives up, then passes on.
type gate struct {
	next          http.Handler
	activity      string
	fail          map[int]bool
	hold          int
	held, release chan struct{}

	mu sync.Mutex
	n  int
}

func newGate(next http.Handler, activity string, hold int, fail ...int) *gate {
	g := &gate{next: next, activity: activity, hold: hold, fail: map[int]bool{},
		held: make(chan struct{}), release: make(chan struct{})}
	for _, n := range fail {
		g.fail[n] = true
	}
	return g
}

func (g *gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(b))
	var req struct {
		Activity string `json:"activity"`
	}
	_ = json.Unmarshal(b, &req)
	if req.Activity != g.activity {
		g.next.ServeHTTP(w, r)
		return
	}
	g.mu.Lock()
	g.n++
	n := g.n
	g.mu.Unlock()
	switch {
	case g.fail[n]:
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	case n == g.hold:
		close(g.held)
		select {
		case <-g.release:
		case <-r.Context().Done():
			return
		}
	}
	g.next.ServeHTTP(w, r)
}

// A re-driven newInstance that answers 000004 after a NoRetry purchase
// gave up is polled in the background until the subscription is active.
func TestRedriveProcessingPollsWithNoRetry(t *testing.T) {
	g := newGate(testseller.New(testKey, testseller.Faults{Async: true}), protocol.ActivityNewInstance, 0, 1)
	v := start(t, g, func(c *Config) { c.TimeScale = 3600; c.NoRetry = true })
	run, sub := v.purchase(PurchaseRequest{ProductID: periodID})
	if run.OK || sub.Status != StatusFailed {
		t.Fatalf("purchase %+v, status %s; want a failure", run, sub.Status)
	}
	m, err := v.e.Redrive(context.Background(), run.Messages[0])
	if err != nil || m.Status != MessageSuccess || m.Attempts[1].ResultCode != protocol.CodeProcessing {
		t.Fatalf("redrive: %v, %+v; want success with 000004", err, m)
	}
	waitFor(t, "polling to make the subscription active", func() bool {
		s, _ := v.e.Subscription(sub.ID)
		return s.Status == StatusActive && s.AppInfo != nil
	})
}

// A re-drive that fails while a retry is in flight leaves the message
// retrying and runs no failure path; the retry decides.
func TestRedriveFailsDuringRetry(t *testing.T) {
	g := newGate(goodSeller(), protocol.ActivityNewInstance, 2, 1, 3)
	v := start(t, g, nil) // the retry is an hour away until Advance
	run, sub := v.purchase(PurchaseRequest{ProductID: periodID})
	if run.OK {
		t.Fatal("first attempt succeeded against a failing seller")
	}
	if err := v.e.Advance(time.Hour); err != nil {
		t.Fatal(err)
	}
	<-g.held // the retry is in flight
	m, err := v.e.Redrive(context.Background(), run.Messages[0])
	if err != nil {
		t.Fatal(err)
	}
	s, _ := v.e.Subscription(sub.ID)
	close(g.release)
	if m.Status != MessageRetrying || s.Status != StatusPending {
		t.Errorf("failed re-drive during a retry: message %s, subscription %s; want retrying and pending", m.Status, s.Status)
	}
	waitFor(t, "the retry to succeed", func() bool { m, _ := v.e.Message(run.Messages[0]); return m.Status == MessageSuccess })
	if s, _ := v.e.Subscription(sub.ID); s.Status != StatusActive {
		t.Errorf("subscription %s after the retry succeeded, want active", s.Status)
	}
}

// A full log keeps a message whose retry is in flight.
func TestEvictionKeepsRetryInFlight(t *testing.T) {
	g := newGate(goodSeller(), protocol.ActivityNewInstance, 2, 1)
	v := start(t, g, nil)
	v.e.logCap = 5
	run, sub := v.purchase(PurchaseRequest{ProductID: periodID})
	if err := v.e.Advance(time.Hour); err != nil {
		t.Fatal(err)
	}
	<-g.held
	fillLog(v, 10)
	_, kept := v.e.Message(run.Messages[0])
	close(g.release)
	if !kept {
		t.Error("the message whose retry is in flight was dropped from the log")
	}
	waitFor(t, "the retry to succeed", func() bool { s, _ := v.e.Subscription(sub.ID); return s.Status == StatusActive })
}

// A message dropped while its attempt is in flight (every message was
// unfinished) changes nothing when the answer comes.
func TestDroppedInFlightChangesNothing(t *testing.T) {
	g := newGate(goodSeller(), protocol.ActivityNewInstance, 1)
	v := start(t, g, nil)
	v.e.logCap = 1
	done := make(chan Run)
	go func() {
		run, _ := v.e.Purchase(context.Background(), PurchaseRequest{ProductID: periodID})
		done <- run
	}()
	<-g.held
	v.e.mu.Lock()
	d := &delivery{fam: V2}
	d.msg.Interface = protocol.ActivityQueryInstance
	v.e.addLocked(d, nil) // nothing finished: the purchase's message goes
	v.e.mu.Unlock()
	close(g.release)
	run := <-done
	s, _ := v.e.Subscription(run.SubscriptionID)
	if _, ok := v.e.Message(run.Messages[0]); ok || run.OK || s.Status != StatusFailed || s.InstanceID != "" {
		t.Errorf("run %+v, subscription %s %q; want the message gone, the run and subscription failed", run, s.Status, s.InstanceID)
	}
}

// A retry that succeeds right after a run stopped plays the rest of the
// scenario: run frees the subscription itself, however late its caller
// would have (here never).
func TestContinuationAfterRunReturns(t *testing.T) {
	s := intercept(goodSeller())
	v := start(t, s, nil)
	_, sub := v.purchase(PurchaseRequest{ProductID: periodID})
	if r, _ := v.play(sub.ID, "expire"); !r.OK {
		t.Fatal(r.Err)
	}
	s.failNext(protocol.ActivityRefreshInstance, 1)
	v.e.mu.Lock()
	live := v.e.subByID[sub.ID]
	live.busy = true // as Play does
	v.e.mu.Unlock()
	run, _, _ := v.e.run(context.Background(), findScenario("unfreeze", ""), live, 0, false, nil)
	if run.OK {
		t.Fatal("unfreeze succeeded against a failing seller")
	}
	if err := v.e.Advance(10 * time.Minute); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the unfreeze to finish", func() bool { s, _ := v.e.Subscription(sub.ID); return s.Status == StatusActive })
}

// A retry in flight when Close comes records nothing after Close.
func TestCloseDuringRetryRecordsNothing(t *testing.T) {
	g := newGate(goodSeller(), protocol.ActivityNewInstance, 2, 1)
	v := start(t, g, nil)
	run, _ := v.purchase(PurchaseRequest{ProductID: periodID})
	if err := v.e.Advance(time.Hour); err != nil {
		t.Fatal(err)
	}
	<-g.held
	if err := v.e.Close(); err != nil {
		t.Fatal(err)
	}
	m, _ := v.e.Message(run.Messages[0])
	if len(m.Attempts) != 1 || m.Status != MessageFailed {
		t.Errorf("after Close: %d attempts (%+v), status %s; want the first only, failed", len(m.Attempts), m.Attempts, m.Status)
	}
}
