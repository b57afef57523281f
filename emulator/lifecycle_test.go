package emulator

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/testseller"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
)

// interceptor stands in front of a seller: it answers 503 to the next
// calls of an activity set with failNext, lets answer reply to a call
// itself (signed with testKey), and passes everything else to next.
type interceptor struct {
	next http.Handler
	// answer, when set, sees the activity, how many calls of it came so
	// far (this one included) and the request; status 0 passes it on.
	answer func(activity string, n int, req []byte) (status int, reply []byte)

	mu    sync.Mutex
	fail  map[string]int
	calls map[string]int
}

func intercept(next http.Handler) *interceptor {
	return &interceptor{next: next, fail: map[string]int{}, calls: map[string]int{}}
}

// failNext makes the next n calls of activity fail with HTTP 503.
func (h *interceptor) failNext(activity string, n int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.fail[activity] = n
}

func (h *interceptor) count(activity string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.calls[activity]
}

func (h *interceptor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	var req struct {
		Activity string `json:"activity"`
	}
	_ = json.Unmarshal(b, &req)
	h.mu.Lock()
	h.calls[req.Activity]++
	n := h.calls[req.Activity]
	fail := h.fail[req.Activity] > 0
	if fail {
		h.fail[req.Activity]--
	}
	h.mu.Unlock()
	if fail {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	if h.answer != nil {
		if status, reply := h.answer(req.Activity, n, b); status != 0 {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set(sign.BodySignHeader, sign.BodySign(testKey, reply))
			w.WriteHeader(status)
			_, _ = w.Write(reply)
			return
		}
	}
	r.Body = io.NopCloser(bytes.NewReader(b))
	h.next.ServeHTTP(w, r)
}

// goodSeller is a correct test seller.
func goodSeller() http.Handler { return testseller.New(testKey, testseller.Faults{}) }

// Finding 1: a retry pending on a subscription blocks other scenarios
// (409 from the API), so a late FREEZE cannot land on a released
// subscription.
func TestPlayRefusedWhileRetrying(t *testing.T) {
	s := intercept(goodSeller())
	v := start(t, s, nil) // TimeScale 1: the FREEZE retry is 10 min away
	_, sub := v.purchase(PurchaseRequest{ProductID: onDemandID})
	s.failNext(protocol.ActivityUpdateInstanceStatus, 1)
	run, _ := v.play(sub.ID, "arrears-freeze")
	freeze, _ := v.e.Message(run.Messages[0])
	if run.OK || freeze.Status != MessageRetrying {
		t.Fatalf("arrears-freeze: run %+v, message %s; want a failure with a retry pending", run, freeze.Status)
	}

	_, err := v.e.Play(context.Background(), sub.ID, "unsubscribe")
	if err == nil || !strings.Contains(err.Error(), freeze.ID) {
		t.Fatalf("unsubscribe while the FREEZE retries: error %v, want a refusal naming %s", err, freeze.ID)
	}
	api := httptest.NewServer(v.e.Handler())
	defer api.Close()
	resp, err := http.Post(api.URL+"/api/emulator/subscriptions/"+sub.ID+"/play", "application/json", strings.NewReader(`{"scenario":"unsubscribe"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict {
		t.Errorf("API play while retrying: %d, want 409", resp.StatusCode)
	}

	if err := v.e.Advance(11 * time.Minute); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the FREEZE retry", func() bool { s, _ := v.e.Subscription(sub.ID); return s.Status == StatusFrozen })
	if got, _ := v.e.Subscription(sub.ID); len(got.Orders) != 1 || s.count(protocol.ActivityReleaseInstance) != 0 {
		t.Errorf("orders %v, releases %d: the refused unsubscribe went through", got.Orders, s.count(protocol.ActivityReleaseInstance))
	}
}

// Finding 1: a release cancels the subscription's pending retries.
func TestReleaseCancelsRetries(t *testing.T) {
	s := intercept(goodSeller())
	v := start(t, s, func(c *Config) {
		c.Retry = map[string]RetryPolicy{protocol.ActivityReleaseInstance: {}} // one attempt
	})
	_, sub := v.purchase(PurchaseRequest{ProductID: onDemandID})
	s.failNext(protocol.ActivityReleaseInstance, 1)
	unsub, _ := v.play(sub.ID, "unsubscribe")
	if m, _ := v.e.Message(unsub.Messages[0]); unsub.OK || m.Status != MessageFailed {
		t.Fatalf("unsubscribe: run %+v, message %s; want a failure without retry", unsub, m.Status)
	}
	s.failNext(protocol.ActivityUpdateInstanceStatus, 1)
	freeze, _ := v.play(sub.ID, "arrears-freeze")
	if m, _ := v.e.Message(freeze.Messages[0]); m.Status != MessageRetrying {
		t.Fatalf("arrears-freeze message %s, want retrying", m.Status)
	}

	if m, err := v.e.Redrive(context.Background(), unsub.Messages[0]); err != nil || m.Status != MessageSuccess {
		t.Fatalf("redrive of the release: %v, %+v", err, m)
	}
	m, _ := v.e.Message(freeze.Messages[0])
	if m.Status != MessageFailed || m.LastError != "subscription released" || !m.NextAttempt.IsZero() {
		t.Errorf("FREEZE after the release: %s %q next %v; want failed, \"subscription released\"", m.Status, m.LastError, m.NextAttempt)
	}
	v.e.mu.Lock()
	timers := len(v.e.timers)
	v.e.mu.Unlock()
	if timers != 0 {
		t.Errorf("%d timers left after the release", timers)
	}
	if got, _ := v.e.Subscription(sub.ID); got.Status != StatusReleased {
		t.Errorf("status %s, want released", got.Status)
	}
}

// Finding 1: a success that comes after another change was applied (a
// re-drive of an old renewal after an upgrade) changes nothing.
func TestStaleRedriveChangesNothing(t *testing.T) {
	s := intercept(goodSeller())
	v := start(t, s, func(c *Config) { c.Retry = map[string]RetryPolicy{protocol.ActivityRefreshInstance: {}} })
	_, sub := v.purchase(PurchaseRequest{ProductID: periodID})
	s.failNext(protocol.ActivityRefreshInstance, 1)
	renewal, _ := v.play(sub.ID, "renewal")
	if renewal.OK {
		t.Fatal("renewal succeeded against a failing seller")
	}
	if r, _ := v.play(sub.ID, "upgrade"); !r.OK {
		t.Fatalf("upgrade: %s", r.Err)
	}
	before, _ := v.e.Subscription(sub.ID)
	m, err := v.e.Redrive(context.Background(), renewal.Messages[0])
	if err != nil || m.Status != MessageSuccess {
		t.Fatalf("redrive: %v %+v", err, m)
	}
	after, _ := v.e.Subscription(sub.ID)
	if !after.ExpireTime.Equal(before.ExpireTime) || after.RenewedPeriods != 0 {
		t.Errorf("stale renewal moved the expiry %v → %v (renewed %d)", before.ExpireTime, after.ExpireTime, after.RenewedPeriods)
	}
	if !strings.Contains(m.LastError, "not applied") {
		t.Errorf("LastError %q, want a note that the change was not applied", m.LastError)
	}
}

// Finding 2: when unfreeze's first step succeeds on a retry, the UNFREEZE
// step is played too.
func TestUnfreezeContinuesAfterRetry(t *testing.T) {
	s := intercept(goodSeller())
	v := start(t, s, nil)
	_, sub := v.purchase(PurchaseRequest{ProductID: periodID})
	if r, _ := v.play(sub.ID, "expire"); !r.OK {
		t.Fatal(r.Err)
	}
	frozen, _ := v.e.Subscription(sub.ID)
	s.failNext(protocol.ActivityRefreshInstance, 1)
	run, _ := v.play(sub.ID, "unfreeze")
	if run.OK || len(run.Messages) != 1 {
		t.Fatalf("unfreeze run %+v, want a stop at step 1", run)
	}
	if err := v.e.Advance(10 * time.Minute); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the unfreeze to finish", func() bool { s, _ := v.e.Subscription(sub.ID); return s.Status == StatusActive })
	got, _ := v.e.Subscription(sub.ID)
	if want := frozen.ExpireTime.AddDate(0, 1, 0); !got.ExpireTime.Equal(want) || got.RenewedPeriods != 1 {
		t.Errorf("expiry %v renewed %d, want %v and 1", got.ExpireTime, got.RenewedPeriods, want)
	}
	msgs := v.e.Messages(MessageFilter{SubscriptionID: sub.ID, Interface: protocol.ActivityUpdateInstanceStatus})
	if len(msgs) != 2 || msgs[0].Scenario != "unfreeze" || body(t, msgs[0])["status"] != protocol.StatusUnfreeze || msgs[0].Status != MessageSuccess {
		t.Errorf("updateInstanceStatus messages %+v, want the FREEZE and then the unfreeze's UNFREEZE", msgs)
	}
	waitFor(t, "the subscription to be free", func() bool {
		_, err := v.e.Play(context.Background(), sub.ID, "query")
		return err == nil
	})
}

// Finding 2: when renewal-change's check succeeds on a re-drive, the
// refreshInstance is played too.
func TestRenewalChangeContinuesAfterRedrive(t *testing.T) {
	s := intercept(goodSeller())
	v := start(t, s, nil)
	_, sub := v.purchase(PurchaseRequest{ProductID: periodID})
	s.failNext(protocol.ActivityChangeInstanceCheck, 1)
	run, _ := v.play(sub.ID, "renewal-change")
	if m, _ := v.e.Message(run.Messages[0]); run.OK || m.Status != MessageFailed {
		t.Fatalf("renewal-change: run %+v, check %s; want a failed check (it is not retried)", run, m.Status)
	}
	if _, err := v.e.Redrive(context.Background(), run.Messages[0]); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the change", func() bool { s, _ := v.e.Subscription(sub.ID); return s.PeriodType == "year" })
	got, _ := v.e.Subscription(sub.ID)
	if want := sub.ExpireTime.AddDate(1, 0, 0); !got.ExpireTime.Equal(want) {
		t.Errorf("expiry %v, want %v", got.ExpireTime, want)
	}
	if n := s.count(protocol.ActivityRefreshInstance); n != 1 {
		t.Errorf("seller saw %d refreshInstance calls, want 1", n)
	}
}

// Finding 3: a second scenario on a subscription whose first is still
// running is refused.
func TestConcurrentPlayRefused(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	s := intercept(goodSeller())
	s.answer = func(activity string, n int, _ []byte) (int, []byte) {
		if activity == protocol.ActivityRefreshInstance && n == 1 {
			close(entered)
			<-release
		}
		return 0, nil
	}
	v := start(t, s, nil)
	_, sub := v.purchase(PurchaseRequest{ProductID: periodID})
	done := make(chan Run)
	go func() {
		run, _ := v.e.Play(context.Background(), sub.ID, "renewal")
		done <- run
	}()
	<-entered
	_, err := v.e.Play(context.Background(), sub.ID, "renewal")
	close(release)
	first := <-done
	if err == nil || !strings.Contains(err.Error(), "another scenario") {
		t.Errorf("second renewal while the first runs: %v, want a refusal", err)
	}
	got, _ := v.e.Subscription(sub.ID)
	if !first.OK || len(got.Orders) != 2 || !got.ExpireTime.Equal(sub.ExpireTime.AddDate(0, 1, 0)) {
		t.Errorf("first renewal OK %v, orders %v, expiry %v; want one renewal", first.OK, got.Orders, got.ExpireTime)
	}
	if _, err := v.e.Play(context.Background(), sub.ID, "renewal"); err != nil {
		t.Errorf("renewal after the first ended: %v", err)
	}
}

// Finding 6: unsubscribe-renewal needs a renewed period.
func TestUnsubscribeRenewalNeedsARenewal(t *testing.T) {
	v, _ := startSeller(t, testseller.Faults{}, nil)
	_, sub := v.purchase(PurchaseRequest{ProductID: periodID})
	if _, err := v.e.Play(context.Background(), sub.ID, "unsubscribe-renewal"); err == nil || !strings.Contains(err.Error(), "no renewed period") {
		t.Fatalf("unsubscribe-renewal without a renewal: %v, want a refusal", err)
	}
	if _, s := v.play(sub.ID, "renewal"); s.RenewedPeriods != 1 {
		t.Errorf("renewed periods after a renewal: %d", s.RenewedPeriods)
	}
	if r, s := v.play(sub.ID, "unsubscribe-renewal"); !r.OK || s.RenewedPeriods != 0 || !s.ExpireTime.Equal(sub.ExpireTime) {
		t.Errorf("unsubscribe-renewal: %+v, renewed %d, expiry %v want %v", r, s.RenewedPeriods, s.ExpireTime, sub.ExpireTime)
	}
	if _, err := v.e.Play(context.Background(), sub.ID, "unsubscribe-renewal"); err == nil {
		t.Error("a second unsubscribe-renewal was played")
	}
	s, _ := v.e.Subscription(sub.ID)
	if why := findScenario("unsubscribe-renewal", "").refusal(&s); !strings.Contains(why, "no renewed period") {
		t.Errorf("refusal of unsubscribe-renewal with nothing to undo: %q", why)
	}
}

// Finding 7: a debug purchase's expiry and its MOCK order agree after the
// clock was advanced.
func TestTestPurchaseOrderOnEmulatedClock(t *testing.T) {
	v, _ := startSeller(t, testseller.Faults{}, nil)
	if err := v.e.Advance(48 * time.Hour); err != nil {
		t.Fatal(err)
	}
	run, sub := v.purchase(PurchaseRequest{ProductID: periodID, Test: true})
	if !run.OK || sub.ExpireTime.IsZero() {
		t.Fatalf("run %+v, subscription %+v", run, sub)
	}
	info := queryOrder(t, v.e, sub.OrderID)
	if got, want := string(info.OrderLine[0].ExpireTime), protocol.FormatTime14(sub.ExpireTime); got != want {
		t.Errorf("Query Order expireTime %s, subscription expiry %s", got, want)
	}
	if d := sub.ExpireTime.Sub(v.e.Now()); d < 364*24*time.Hour || d > 367*24*time.Hour {
		t.Errorf("expiry %v away from the emulated now, want about a year", d)
	}
}

// Finding 12: a poll answered 000000 without appInfo breaks a rule and
// polling goes on.
func TestPollingWantsAppInfo(t *testing.T) {
	s := intercept(testseller.New(testKey, testseller.Faults{Async: true}))
	s.answer = func(activity string, n int, req []byte) (int, []byte) {
		if activity != protocol.ActivityQueryInstance || n != 1 {
			return 0, nil
		}
		var q protocol.QueryInstanceRequest
		_ = json.Unmarshal(req, &q)
		return 200, []byte(`{"resultCode":"000000","resultMsg":"ok","info":[{"instanceId":"` + q.InstanceID + `"}]}`)
	}
	v := start(t, s, func(c *Config) { c.TimeScale = 3600; c.NoRetry = true })
	run, sub := v.purchase(PurchaseRequest{ProductID: periodID})
	if !run.OK || sub.Status != StatusActive || sub.AppInfo == nil {
		t.Fatalf("run %+v, subscription %+v; want active with appInfo", run, sub)
	}
	if len(run.Messages) != 3 {
		t.Fatalf("messages %v, want newInstance, the poll without appInfo, the later polls", run.Messages)
	}
	m, _ := v.e.Message(run.Messages[1])
	a := m.Attempts[0]
	if m.Status != MessageFailed || len(a.Violations) != 1 || a.Violations[0].Rule != RuleRequiredField ||
		a.Violations[0].Message != "调测失败,接口响应缺少appInfo" || a.Violations[0].Spec != "saas-v2.md §6.3" {
		t.Errorf("poll without appInfo: %s %+v", m.Status, a.Violations)
	}
	if later, _ := v.e.Message(run.Messages[2]); len(later.Attempts) != 3 || later.Status != MessageSuccess {
		t.Errorf("later polls: %d attempts, %s; want 000004, 000004, 000000", len(later.Attempts), later.Status)
	}
}

// Finding 11: the clock moves at most MaxAdvance at once and
// MaxTotalAdvance in all.
func TestAdvanceLimits(t *testing.T) {
	v, _ := startSeller(t, testseller.Faults{}, nil)
	start := v.e.Now()
	if err := v.e.Advance(MaxAdvance + time.Nanosecond); err == nil {
		t.Error("an advance beyond MaxAdvance was accepted")
	}
	for i := range MaxTotalAdvance / MaxAdvance {
		if err := v.e.Advance(MaxAdvance); err != nil {
			t.Fatalf("advance %d: %v", i+1, err)
		}
	}
	if err := v.e.Advance(time.Hour); err == nil {
		t.Error("an advance beyond MaxTotalAdvance was accepted")
	}
	if d := v.e.Now().Sub(start); d < MaxTotalAdvance || d > MaxTotalAdvance+time.Minute {
		t.Errorf("clock moved %v, want %v", d, MaxTotalAdvance)
	}
}
