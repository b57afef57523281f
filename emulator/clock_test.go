package emulator

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/durationtext"
	"github.com/koobridge/koobridge/internal/testseller"
)

const day = 24 * time.Hour

// Issue 16: expire and release moved one clock shared by every
// subscription, so a trial whose end had passed in emulated time still
// showed active. Each subscription now has a clock of its own: its
// scenarios move it alone, Advance moves them all, and a subscription
// whose clock has passed its expiry says so (Lapsed).
func TestSubscriptionClocks(t *testing.T) {
	v, _ := startSeller(t, testseller.Faults{}, func(c *Config) { c.NoRetry = true })
	_, trial := v.purchase(PurchaseRequest{ProductID: periodID, Trial: true})
	_, paid := v.purchase(PurchaseRequest{ProductID: periodID})
	for _, sc := range []string{"expire", "release"} {
		if r, _ := v.play(paid.ID, sc); !r.OK {
			t.Fatalf("%s on %s: %+v", sc, paid.ID, r)
		}
	}

	// The paid subscription's clock went past its expiry and retention;
	// the trial's and the emulator's stayed where they were.
	p, _ := v.e.Subscription(paid.ID)
	if end := paid.ExpireTime.Add(retention); p.Clock.Before(end) || p.ClockAhead < 40*day || p.ReleaseTime.Before(end) {
		t.Errorf("released subscription: clock %v (ahead %v), released %v; want both past %v", p.Clock, p.ClockAhead, p.ReleaseTime, end)
	}
	tr, _ := v.e.Subscription(trial.ID)
	if tr.Status != StatusActive || tr.Lapsed != "" || tr.ClockAhead != 0 || !tr.Clock.Before(tr.ExpireTime) {
		t.Errorf("trial after the other's release: status %s, lapsed %q, clock %v (ahead %v), expiry %v; want active on its own clock, before its expiry",
			tr.Status, tr.Lapsed, tr.Clock, tr.ClockAhead, tr.ExpireTime)
	}
	if now := v.e.Now(); !now.Before(trial.ExpireTime) {
		t.Errorf("the emulator's clock %v moved past the trial's end %v", now, trial.ExpireTime)
	}
	// The release message is dated on its subscription's clock.
	if ms := v.e.Messages(MessageFilter{SubscriptionID: paid.ID, Interface: "releaseInstance"}); len(ms) != 1 || ms[0].FirstSentAt.Before(paid.ExpireTime.Add(retention)) {
		t.Errorf("release messages %+v: want one sent after the retention", ms)
	}

	// Advance moves every clock: the trial's passes its end, and the
	// trial shows expired while the seller still holds it active.
	before := p.Clock
	if err := v.e.Advance(8 * day); err != nil {
		t.Fatal(err)
	}
	tr, _ = v.e.Subscription(trial.ID)
	if tr.Status != StatusActive || tr.Lapsed != LapsedExpired || tr.ClockAhead != 0 {
		t.Errorf("trial 8 days on: status %s, lapsed %q, ahead %v; want active and lapsed expired", tr.Status, tr.Lapsed, tr.ClockAhead)
	}
	if p, _ = v.e.Subscription(paid.ID); p.Clock.Sub(before) < 8*day || p.Lapsed != "" {
		t.Errorf("released subscription after Advance: clock %v (was %v), lapsed %q; want 8 days on, nothing lapsed", p.Clock, before, p.Lapsed)
	}

	// Playing expire freezes it without moving its clock (the expiry has
	// passed); 15 days on, its retention has ended.
	if r, after := v.play(trial.ID, "expire"); !r.OK || after.Status != StatusFrozen || after.Lapsed != "" || after.ClockAhead != 0 {
		t.Errorf("expire on the lapsed trial: ok %v, status %s, lapsed %q, ahead %v", r.OK, after.Status, after.Lapsed, after.ClockAhead)
	}
	if err := v.e.Advance(15 * day); err != nil {
		t.Fatal(err)
	}
	if tr, _ = v.e.Subscription(trial.ID); tr.Lapsed != LapsedRetentionEnded {
		t.Errorf("frozen trial past its retention: lapsed %q, want %s", tr.Lapsed, LapsedRetentionEnded)
	}
}

// orderDate reads the yyMMddHHmm of an emulator order ID.
func orderDate(t *testing.T, id string) time.Time {
	t.Helper()
	if len(id) < 12 || !strings.HasPrefix(id, "CS") {
		t.Fatalf("order ID %q: want CS and yyMMddHHmm", id)
	}
	d, err := time.Parse("0601021504", id[2:12])
	if err != nil {
		t.Fatalf("order ID %q: %v", id, err)
	}
	return d
}

// Issue 16: order IDs mixed dates of one shared clock. The rule: an order
// ID's date is its subscription's clock when the order was placed.
func TestOrderIDDates(t *testing.T) {
	v, _ := startSeller(t, testseller.Faults{}, func(c *Config) { c.NoRetry = true })
	_, a := v.purchase(PurchaseRequest{ProductID: periodID})
	if r, _ := v.play(a.ID, "expire"); !r.OK {
		t.Fatalf("expire: %+v", r)
	}
	// A purchase after another subscription's expire starts at the
	// emulator's clock, a month behind the expired one's.
	_, b := v.purchase(PurchaseRequest{ProductID: periodID})
	if r, _ := v.play(a.ID, "unfreeze"); !r.OK {
		t.Fatalf("unfreeze: %+v", r)
	}
	a, _ = v.e.Subscription(a.ID)
	if len(a.Orders) != 2 {
		t.Fatalf("orders of %s: %v, want the purchase and the renewal", a.ID, a.Orders)
	}
	within := func(what string, got, want time.Time) {
		t.Helper()
		if d := got.Sub(want.UTC().Truncate(time.Minute)); d < 0 || d > time.Minute {
			t.Errorf("%s: order date %v, want the minute of %v", what, got, want)
		}
	}
	within("the purchase of "+a.ID, orderDate(t, a.Orders[0]), a.StartTime)
	within("the renewal of "+a.ID+" after its expire", orderDate(t, a.Orders[1]), a.ExpireTime.AddDate(0, -1, 0))
	within("the purchase of "+b.ID, orderDate(t, b.OrderID), b.StartTime)
	if !b.StartTime.Before(a.ExpireTime.AddDate(0, -1, 0)) {
		t.Errorf("%s started %v, not before %s's clock (past %v)", b.ID, b.StartTime, a.ID, a.ExpireTime.AddDate(0, -1, 0))
	}
	if s := b.StartTime.Sub(v.e.Now()); s > time.Second || s < -time.Minute {
		t.Errorf("%s started %v, want the emulator's clock %v", b.ID, b.StartTime, v.e.Now())
	}
}

// The dashboard shows each subscription's clock, and a lapsed one's
// state from it.
func TestWebSubscriptionClocks(t *testing.T) {
	w := startWeb(t)
	product := w.product("PERIOD").ID
	if status, _ := w.form("/purchase", map[string][]string{"product": {product}, "trial": {"1"}}); status != http.StatusSeeOther {
		t.Fatalf("buy the trial: %d", status)
	}
	if status, _ := w.form("/purchase", map[string][]string{"product": {product}}); status != http.StatusSeeOther {
		t.Fatalf("buy: %d", status)
	}
	subs := w.e.Subscriptions()
	trial, paid := subs[0], subs[1]
	if status, _ := w.form("/subscriptions/"+paid.ID+"/play", map[string][]string{"scenario": {"expire"}}); status != http.StatusSeeOther {
		t.Fatalf("expire: %d", status)
	}
	_, body := w.page("/")
	if !strings.Contains(body, `id="clocks-note"`) {
		t.Error("the dashboard does not say how the clocks work")
	}
	row := rowHTML(body, `data-subscription-id="`+paid.ID+`"`)
	p, _ := w.e.Subscription(paid.ID)
	if !strings.Contains(row, formatTime(p.Clock)[:16]) || !strings.Contains(row, "+"+durationtext.Format(p.ClockAhead)+" ahead") {
		t.Errorf("expired row shows no clock %s ahead by %s:\n%s", formatTime(p.Clock), durationtext.Format(p.ClockAhead), row)
	}
	if row := rowHTML(body, `data-subscription-id="`+trial.ID+`"`); !strings.Contains(row, `class="status-active">active`) || !strings.Contains(row, `data-testid="sub-clock-ahead">the emulator's</span>`) {
		t.Errorf("the trial's row after the other's expire:\n%s", row)
	}
	if err := w.e.Advance(8 * day); err != nil {
		t.Fatal(err)
	}
	_, body = w.page("/")
	if row := rowHTML(body, `data-subscription-id="`+trial.ID+`"`); !strings.Contains(row, `class="status-expired">expired <span`) || !strings.Contains(row, "the seller was last told active: play expire") {
		t.Errorf("the trial's row 8 days on does not show it expired:\n%s", row)
	}
}
