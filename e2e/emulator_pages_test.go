package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestEmulatorPages reads, in Chromium, what issue 16 found wrong on the
// emulator's pages during a trial of "koobridge demo": raw Go durations,
// the Faults page's status box cutting its own hint, a subscription's
// state and clock after another subscription's expire and release, order
// IDs dated by another subscription's clock, and a purchase during an
// Open API outage answered ok while it was still provisioning.
func TestEmulatorPages(t *testing.T) {
	emu := startDemoEmulator(t)
	ctx := NewBrowser(t)

	t.Run("faults hints fully visible", func(t *testing.T) { faultsHintsVisible(ctx, t, emu) })
	t.Run("durations formatted", func(t *testing.T) { durationsFormatted(ctx, t, emu) })
	t.Run("clocks and order IDs", func(t *testing.T) { clocksAndOrders(ctx, t, emu) })
	t.Run("purchase during an Open API outage", func(t *testing.T) { pendingDuringOutage(ctx, t, emu) })
}

// startDemoEmulator runs "koobridge demo" and returns the emulator's URL
// once the demo's lifecycles have ended.
func startDemoEmulator(t *testing.T) string {
	t.Helper()
	k := StartKoobridge(t, "demo", "--emulator-listen", "127.0.0.1:0", "--app-listen", "127.0.0.1:0", "--dir", t.TempDir())
	emuRE := regexp.MustCompile(`emulator page +(http://\S+)/`)
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if m := emuRE.FindStringSubmatch(k.Stderr()); m != nil {
			if out := k.Stderr(); strings.Contains(out, "stopped early") || !strings.Contains(out, "releaseInstance") {
				t.Fatalf("demo lifecycle did not finish:\n%s", out)
			}
			return m[1]
		}
	}
	t.Fatalf("demo printed no emulator URL:\n%s", k.Stderr())
	return ""
}

// faultsHintsVisible: every field on the Faults page is wide enough for
// its hint (placeholder) or value. The HTTP status boxes were as narrow
// as their min and max allow, three digits, and cut "e.g. 503, or 200".
func faultsHintsVisible(ctx context.Context, t *testing.T, emu string) {
	Do(ctx, t, "open the faults page", chromedp.Navigate(emu+"/faults"), chromedp.WaitVisible(chromedp.ID("faults")))
	// The text's width in the field's font, against the room inside the
	// field: its width less the padding, and for a number box less 20 px
	// for the spin buttons Chromium draws at its end.
	cut := Get(ctx, t, "measure the hints", chromedp.Evaluate[[]string](`(() => {
		const c = document.createElement('canvas').getContext('2d');
		const out = [];
		for (const i of document.querySelectorAll('#faults input[type=text], #faults input[type=number]')) {
			const st = getComputedStyle(i);
			c.font = st.font;
			const text = i.value || i.placeholder;
			const room = i.clientWidth - parseFloat(st.paddingLeft) - parseFloat(st.paddingRight) - (i.type === 'number' ? 20 : 0);
			const need = c.measureText(text).width;
			if (need > room) out.push(i.id + ': ' + JSON.stringify(text) + ' needs ' + need.toFixed(1) + ' px, has ' + room.toFixed(1));
		}
		return out;
	})()`))
	for _, c := range cut {
		t.Errorf("faults page cuts a hint: %s", c)
	}
	if n := Get(ctx, t, "count the fields", chromedp.Evaluate[int](`document.querySelectorAll('#faults input[type=text], #faults input[type=number]').length`)); n < 12 {
		t.Errorf("measured %d fields on the faults page, want every text and number field (12 or more)", n)
	}
}

// shownDuration is how the pages write a duration: a number, a space and
// a unit; above a minute two such parts.
var shownDuration = regexp.MustCompile(`^-?\d+(\.\d+)? (ns|µs|ms|s|min|h|d)( \d+ (s|min|h))?$`)

// durationsFormatted: a message's attempts and the Open API request log
// write their durations as a person reads them, never as Go does.
func durationsFormatted(ctx context.Context, t *testing.T, emu string) {
	Do(ctx, t, "open the first message", chromedp.Navigate(emu+"/messages/msg-000001"), chromedp.WaitVisible(chromedp.ID("attempts")))
	shown := Get(ctx, t, "attempt durations", chromedp.Evaluate[[]string](`[...document.querySelectorAll('[data-testid=attempt-duration]')].map(e => e.textContent)`))
	Do(ctx, t, "open the usage page", chromedp.Navigate(emu+"/usage"), chromedp.WaitVisible(chromedp.ID("openapi-requests")))
	requests := Get(ctx, t, "Open API request durations", chromedp.Evaluate[[]string](`[...document.querySelectorAll('[data-testid=openapi-duration]')].map(e => e.textContent)`))
	if len(shown) == 0 || len(requests) == 0 {
		t.Fatalf("no durations to read: %d attempts, %d Open API requests (the demo's server queries its orders)", len(shown), len(requests))
	}
	for _, d := range append(shown, requests...) {
		if !shownDuration.MatchString(d) {
			t.Errorf("duration shown as %q, want e.g. \"1.96 ms\" or \"850 µs\"", d)
		}
	}
}

// subRow is the CSS selector of a subscription's row on the dashboard.
func subRow(id string) string { return `#subscriptions tr[data-subscription-id="` + id + `"]` }

// subCell reads one cell of a subscription's row.
func subCell(ctx context.Context, t *testing.T, id, testid string) string {
	t.Helper()
	return strings.TrimSpace(Get(ctx, t, id+" "+testid, chromedp.Text(chromedp.CSS(subRow(id)+` [data-testid="`+testid+`"]`))))
}

// parseShown reads a time as the pages write it: with its seconds and
// UTC, or, in the dashboard's subscriptions, whose header says UTC, to the
// minute.
func parseShown(t *testing.T, what, s string) time.Time {
	t.Helper()
	v, err := time.Parse("2006-01-02 15:04:05 UTC", s)
	if err != nil {
		v, err = time.Parse("2006-01-02 15:04", s)
	}
	if err != nil {
		t.Fatalf("%s: %q is not a time as the pages write it: %v", what, s, err)
	}
	return v
}

// orderDate reads the yyMMddHHmm of an emulator order ID (CS…).
func orderDate(t *testing.T, id string) time.Time {
	t.Helper()
	if len(id) < 12 || !strings.HasPrefix(id, "CS") {
		t.Fatalf("order ID %q: want CS and yyMMddHHmm", id)
	}
	v, err := time.Parse("0601021504", id[2:12])
	if err != nil {
		t.Fatalf("order ID %q: %v", id, err)
	}
	return v
}

// flashSub is the subscription a purchase's flash names.
var flashSub = regexp.MustCompile(`^\S+ (sub-\d+):`)

// buy presses a product's Buy button (with its trial box ticked when
// trial) and returns the new subscription's ID and the page's URL, whose
// flash says what the purchase did.
func buy(ctx context.Context, t *testing.T, emu, product string, trial bool) (string, string) {
	t.Helper()
	steps := []chromedp.Action[chromedp.Void]{chromedp.Navigate(emu + "/"), chromedp.WaitVisible(chromedp.ID("subscriptions"))}
	if trial {
		steps = append(steps, chromedp.Click(chromedp.ID("trial-"+product)))
	}
	steps = append(steps, markStale(), chromedp.Click(chromedp.ID("buy-"+product)), chromedp.WaitNotPresent(chromedp.CSS(staleBody)), chromedp.WaitVisible(chromedp.ID("flash")))
	Do(ctx, t, "buy "+product, steps...)
	flash := Get(ctx, t, "flash", chromedp.Text(chromedp.ID("flash")))
	m := flashSub.FindStringSubmatch(flash)
	if m == nil {
		t.Fatalf("the flash after buying %s names no subscription: %q", product, flash)
	}
	return m[1], Get(ctx, t, "location", chromedp.Location())
}

// clocksAndOrders: the demo expired and released its first two
// subscriptions, which moved their clocks six weeks ahead. A trial bought
// now runs on its own clock, at the emulator's, and its order ID is dated
// by it; once an advance takes its clock past the trial's end, its row
// says expired. Every subscription's orders are dated on its own clock.
func clocksAndOrders(ctx context.Context, t *testing.T, emu string) {
	const product = "OFFI-EMU-PERIOD"
	trial, _ := buy(ctx, t, emu, product, true)

	// The released subscriptions' clocks are ahead; the trial's is not.
	if note := Get(ctx, t, "clocks note", chromedp.Text(chromedp.ID("clocks-note"))); !strings.Contains(note, "own emulated clock") || !strings.Contains(note, "order ID's date") {
		t.Errorf("the dashboard does not say how the clocks work: %q", note)
	}
	released := subCell(ctx, t, "sub-000001", "sub-clock-ahead")
	if !regexp.MustCompile(`^\+\d+ d( \d+ h)? ahead$`).MatchString(released) {
		t.Errorf("sub-000001 (expired and released by the demo) shows its clock %q, want days ahead of the emulator's", released)
	}
	emuNow := parseShown(t, "the emulator's clock", Get(ctx, t, "header clock", chromedp.Text(chromedp.ID("clock-now"))))
	trialClock := parseShown(t, "the trial's clock", subCell(ctx, t, trial, "sub-clock-time"))
	if ahead := subCell(ctx, t, trial, "sub-clock-ahead"); ahead != "the emulator's" || trialClock.Sub(emuNow).Abs() > time.Minute {
		t.Errorf("the new trial's clock %v %s, the emulator's %v: want the emulator's", trialClock, ahead, emuNow)
	}
	if status := subCell(ctx, t, trial, "sub-status"); status != "active" {
		t.Errorf("the new trial is %q after the others' expire and release, want active", status)
	}
	if d := orderDate(t, subCell(ctx, t, trial, "sub-order")); d.Sub(trialClock.Truncate(time.Minute)).Abs() > time.Minute {
		t.Errorf("the trial's order is dated %v, its clock says %v", d, trialClock)
	}

	// Eight days on, the 7-day trial has ended on its clock.
	Do(ctx, t, "advance the clock 8 days",
		chromedp.SetValue(chromedp.ID("advance-duration"), "8 d"), markStale(), chromedp.Click(chromedp.ID("advance-button")),
		chromedp.WaitNotPresent(chromedp.CSS(staleBody)), chromedp.WaitVisible(chromedp.ID("subscriptions")))
	if flash := Get(ctx, t, "advance flash", chromedp.Text(chromedp.ID("flash"))); !strings.HasPrefix(flash, "clock advanced by 8 d to ") {
		t.Errorf("flash after the advance: %q", flash)
	}
	status := subCell(ctx, t, trial, "sub-status")
	if !strings.HasPrefix(status, "expired") || !strings.Contains(subCell(ctx, t, trial, "sub-lapsed"), "the seller was last told active: play expire") {
		t.Errorf("the trial 8 days on shows %q, want expired, the seller told active", status)
	}
	if c := parseShown(t, "the trial's clock", subCell(ctx, t, trial, "sub-clock-time")); c.Sub(trialClock) < 8*24*time.Hour {
		t.Errorf("the trial's clock %v after an 8-day advance from %v", c, trialClock)
	}

	// Every order of every subscription is dated on its own clock: from
	// its start, in order, up to its clock now.
	var subs []struct {
		ID        string    `json:"id"`
		Orders    []string  `json:"orders"`
		StartTime time.Time `json:"startTime"`
		Clock     time.Time `json:"clock"`
	}
	getJSON(t, emu+"/api/emulator/subscriptions", &subs)
	for _, s := range subs {
		prev := s.StartTime.Truncate(time.Minute)
		for _, id := range s.Orders {
			if !strings.HasPrefix(id, "CS") {
				continue // a debug order (MOCK…) carries no date
			}
			d := orderDate(t, id)
			if d.Before(prev) || d.After(s.Clock) {
				t.Errorf("%s: order %s dated %v, outside its clock's %v to %v", s.ID, id, d, prev, s.Clock)
			}
			prev = d
		}
	}
}

// pendingDuringOutage: with the Open API down, the demo's server answers
// newInstance 000004 and the subscription stays provisioning. The
// purchase is pending, not ok, in the flash and in the JSON API, and ok
// once the Open API is back and the polling finds the instance.
func pendingDuringOutage(ctx context.Context, t *testing.T, emu string) {
	Do(ctx, t, "take the Open API down",
		chromedp.Navigate(emu+"/faults"), chromedp.WaitVisible(chromedp.ID("faults")),
		chromedp.SetValue(chromedp.ID("openapiStatus"), "503"), markStale(), chromedp.Click(chromedp.ID("faults-save")),
		chromedp.WaitNotPresent(chromedp.CSS(staleBody)), chromedp.WaitVisible(chromedp.ID("flash")))
	sub, page := buy(ctx, t, emu, "OFFI-EMU-ONETIME", false)
	flash := Get(ctx, t, "flash", chromedp.Text(chromedp.ID("flash")))
	if !strings.Contains(flash, "newInstance 000004") || !strings.Contains(flash, "PENDING, not ok yet: waiting for "+sub+" is provisioning") || strings.Contains(flash, "FAILED") {
		t.Errorf("flash of a purchase during the outage: %q; want pending, waiting for the polling", flash)
	}
	if status := subCell(ctx, t, sub, "sub-status"); status != "provisioning" {
		t.Errorf("%s is %q during the outage, want provisioning", sub, status)
	}

	// The JSON API says the same.
	var run struct {
		ID             string `json:"id"`
		SubscriptionID string `json:"subscriptionId"`
		OK             *bool  `json:"ok"`
		Pending        bool   `json:"pending"`
		Waiting        string `json:"waiting"`
	}
	postJSON(t, emu+"/api/emulator/purchases", `{"productId":"OFFI-EMU-ONETIME"}`, http.StatusCreated, &run)
	if run.OK == nil || *run.OK || !run.Pending || !strings.Contains(run.Waiting, "is provisioning") {
		t.Errorf("POST purchases during the outage: %+v; want \"ok\": false, \"pending\": true", run)
	}

	// The Open API back, the server provisions; the next polls find both.
	Do(ctx, t, "bring the Open API back",
		chromedp.Navigate(emu+"/faults"), chromedp.WaitVisible(chromedp.ID("faults")),
		chromedp.SetValue(chromedp.ID("openapiStatus"), ""), markStale(), chromedp.Click(chromedp.ID("faults-save")),
		chromedp.WaitNotPresent(chromedp.CSS(staleBody)), chromedp.WaitVisible(chromedp.ID("flash")))
	var settled struct {
		OK      bool   `json:"ok"`
		Pending bool   `json:"pending"`
		Err     string `json:"error"`
	}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		settled.OK, settled.Pending, settled.Err = false, false, "" // absent when false
		getJSON(t, emu+"/api/emulator/runs/"+url.PathEscape(run.ID), &settled)
		if !settled.Pending || time.Now().After(deadline) {
			break
		}
	}
	if !settled.OK || settled.Pending {
		t.Errorf("GET runs/%s after the outage: %+v; want ok", run.ID, settled)
	}
	Do(ctx, t, "show the purchase's flash again", chromedp.Navigate(page), chromedp.WaitVisible(chromedp.ID("flash")))
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		flash = Get(ctx, t, "flash", chromedp.Text(chromedp.ID("flash")))
		if !strings.Contains(flash, "PENDING") || time.Now().After(deadline) {
			break
		}
		Do(ctx, t, "reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("flash")))
	}
	if strings.Contains(flash, "PENDING") || strings.Contains(flash, "FAILED") || !strings.Contains(flash, "queryInstance 000000") || !strings.Contains(flash, "status active") {
		t.Errorf("flash of the purchase once the Open API is back: %q; want it ok and active", flash)
	}
}

// getJSON GETs url and decodes its JSON answer into v.
func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || json.Unmarshal(raw, v) != nil {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, raw)
	}
}

// postJSON POSTs body to url and decodes the answer, which must have the
// status want.
func postJSON(t *testing.T, url, body string, want int, v any) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want || json.Unmarshal(raw, v) != nil {
		t.Fatalf("POST %s: %d %s", url, resp.StatusCode, raw)
	}
}
