package e2e

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestDemoPages is the newcomer's path: run "koobridge demo" as a real
// process, watch its lifecycle end, then click through both web pages in
// Chromium. On the emulator page: buy a product, renew it, read a message
// with its signed answer and re-drive it. On the server's console: log in
// with the printed token and find the instance the purchase created, with
// the renewal in its call history.
func TestDemoPages(t *testing.T) {
	// Port 0: the demo picks a free port for the emulator and prints its URL.
	k := StartKoobridge(t, "demo", "--emulator-listen", "127.0.0.1:0", "--app-listen", "127.0.0.1:0", "--dir", t.TempDir())

	// The lifecycle runs after the server is healthy; the URLs come last.
	tokenRE := regexp.MustCompile(`admin token: ([0-9a-f]+)`)
	emuRE := regexp.MustCompile(`emulator page +(http://\S+)/`)
	var token, emu string
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		out := k.Stderr()
		if m := tokenRE.FindStringSubmatch(out); m != nil {
			token = m[1]
		}
		if m := emuRE.FindStringSubmatch(out); m != nil {
			emu = m[1]
		}
		if token != "" && emu != "" {
			break
		}
	}
	out := k.Stderr()
	if token == "" || emu == "" {
		t.Fatalf("demo printed no admin token or emulator URL:\n%s", out)
	}
	if strings.Contains(out, "stopped early") || !strings.Contains(out, "releaseInstance") {
		t.Fatalf("demo lifecycle did not finish:\n%s", out)
	}

	ctx := NewBrowser(t)

	// The emulator page shows the demo's two subscriptions, both released.
	Do(ctx, t, "open the emulator", chromedp.Navigate(emu+"/"), chromedp.WaitVisible(chromedp.ID("subscriptions")))
	for _, sub := range []string{"sub-000001", "sub-000002"} {
		status := Get(ctx, t, sub+" status", chromedp.Text(chromedp.CSS(`tr[data-subscription-id="`+sub+`"] [data-testid="sub-status"]`)))
		if status != "released" {
			t.Errorf("%s is %q after the demo, want released", sub, status)
		}
	}

	// Buy the monthly product.
	const product = "OFFI-EMU-PERIOD"
	// The demo made five: two lifecycles, the joint-operation product and
	// the two license products.
	const sub = "sub-000006"
	row := `tr[data-subscription-id="` + sub + `"]`
	Do(ctx, t, "buy", markStale(), chromedp.Click(chromedp.ID("buy-"+product)), chromedp.WaitNotPresent(chromedp.CSS(staleBody)), chromedp.WaitVisible(chromedp.CSS(row)))
	if flash := Get(ctx, t, "flash", chromedp.Text(chromedp.ID("flash"))); !strings.Contains(flash, sub) {
		t.Errorf("flash after buying says %q, want it to name %s", flash, sub)
	}
	status := Get(ctx, t, "status", chromedp.Text(chromedp.CSS(row+` [data-testid="sub-status"]`)))
	instance := Get(ctx, t, "instance", chromedp.Text(chromedp.CSS(row+` [data-testid="sub-instance"]`)))
	expiry := Get(ctx, t, "expiry", chromedp.Text(chromedp.CSS(row+` [data-testid="sub-expiry"]`)))
	if status != "active" || instance == "" || instance == "—" {
		t.Fatalf("after buying: status %q instance %q", status, instance)
	}

	// Renew it.
	Do(ctx, t, "renew",
		chromedp.SetValue(chromedp.ID("scenario-"+sub), "renewal"),
		markStale(),
		chromedp.Click(chromedp.ID("play-button-"+sub)),
		chromedp.WaitNotPresent(chromedp.CSS(staleBody)), chromedp.WaitVisible(chromedp.ID("messages")),
	)
	if flash := Get(ctx, t, "flash", chromedp.Text(chromedp.ID("flash"))); !strings.Contains(flash, "renewal") {
		t.Errorf("flash after renewal says %q", flash)
	}
	if after := Get(ctx, t, "expiry", chromedp.Text(chromedp.CSS(row+` [data-testid="sub-expiry"]`))); after == expiry {
		t.Errorf("renewal left the expiry at %q", after)
	}

	// The newest message is the renewal's refreshInstance: open it.
	newest := `#messages tr[data-message-id]:first-child`
	if iface := Get(ctx, t, "newest message", chromedp.Text(chromedp.CSS(newest+` [data-testid="msg-interface"]`))); iface != "refreshInstance" {
		t.Fatalf("newest message is %q, want refreshInstance", iface)
	}
	Do(ctx, t, "open the message",
		chromedp.Click(chromedp.CSS(newest+` a[data-testid="msg-link"]`)),
		chromedp.WaitVisible(chromedp.ID("attempts")),
	)
	first := `#attempts section[data-attempt="1"]`
	reqBody := Get(ctx, t, "request body", chromedp.Text(chromedp.CSS(first+` [data-testid="request-body"]`)))
	respHeaders := Get(ctx, t, "response headers", chromedp.Text(chromedp.CSS(first+` [data-testid="response-headers"]`)))
	if !strings.Contains(reqBody, `"scene":"RENEWAL"`) || !strings.Contains(reqBody, instance) {
		t.Errorf("request body %q: want a RENEWAL of %s", reqBody, instance)
	}
	if !strings.Contains(respHeaders, "Body-Sign") {
		t.Errorf("response headers lack Body-Sign: %q", respHeaders)
	}
	Do(ctx, t, "re-drive", markStale(), chromedp.Click(chromedp.ID("redrive-button")),
		chromedp.WaitNotPresent(chromedp.CSS(staleBody)), chromedp.WaitVisible(chromedp.CSS(`#attempts section[data-attempt="2"]`)))
	if s := Get(ctx, t, "message status", chromedp.Text(chromedp.CSS(`[data-testid="message-status"]`))); s != "success" {
		t.Errorf("message status after re-drive %q", s)
	}

	// Notify an order: a new order, orderNotify to the server, which
	// answers 000000 (the demo's server shares its key for every type).
	const notified = "sub-000007"
	nrow := `tr[data-subscription-id="` + notified + `"]`
	Do(ctx, t, "notify an order", chromedp.Navigate(emu+"/"), chromedp.WaitVisible(chromedp.ID("subscriptions")),
		markStale(), chromedp.Click(chromedp.ID("notify-"+product)), chromedp.WaitNotPresent(chromedp.CSS(staleBody)), chromedp.WaitVisible(chromedp.CSS(nrow)))
	if status := Get(ctx, t, "notified status", chromedp.Text(chromedp.CSS(nrow+` [data-testid="sub-status"]`))); status != "notified" {
		t.Errorf("after notifying an order the subscription is %q, want notified", status)
	}

	// The server's console shows the instance the emulator bought, with the
	// renewal (and the re-drive) in its history.
	Do(ctx, t, "log in to the console",
		chromedp.Navigate(k.URL+"/admin/"),
		chromedp.WaitVisible(chromedp.ID("login")),
		chromedp.SendKeys(chromedp.ID("token"), token),
		chromedp.Click(chromedp.ID("login-button")),
		chromedp.WaitVisible(chromedp.ID("instances")),
	)
	irow := `#instances tr[data-instance-id="` + instance + `"]`
	Do(ctx, t, "open the instance",
		chromedp.Click(chromedp.CSS(irow+` a[data-testid="instance-link"]`)),
		chromedp.WaitVisible(chromedp.ID("instance")),
	)
	refreshes := Get(ctx, t, "refreshInstance calls", chromedp.Text(chromedp.ID("calls")))
	if n := strings.Count(refreshes, "refreshInstance"); n < 2 {
		t.Errorf("instance history shows %d refreshInstance calls, want the renewal and its re-drive:\n%s", n, refreshes)
	}
}

// markStale tags the current page, so a test can tell the page a form
// post leads to from the page it was posted from.
func markStale() chromedp.Action[chromedp.Void] {
	return chromedp.SetAttributeValue(chromedp.CSS("body"), "data-stale", "1")
}

// staleBody matches a page markStale tagged: wait for it to be gone, then
// for what the new page should show.
const staleBody = "body[data-stale]"
