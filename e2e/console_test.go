package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/koobridge/koobridge/protocol/sign"
)

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// newInstance plays KooGallery's newInstance against the production
// interface, V2-signed with key, and returns the instance ID.
func newInstance(t *testing.T, base, key, orderID string) string {
	t.Helper()
	body := []byte(`{"activity":"newInstance","businessId":"` + randomHex(t, 16) + `","orderId":"` + orderID +
		`","orderLineId":"` + orderID + `-000001"}`)
	nonce := randomHex(t, 16)
	ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
	q := url.Values{"signature": {sign.V2Signature(key, nonce, ts, body)}, "timestamp": {ts}, "nonce": {nonce}}
	resp, err := http.Post(base+"/produce?"+q.Encode(), "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("newInstance: %v", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out struct {
		ResultCode string `json:"resultCode"`
		InstanceID string `json:"instanceId"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("newInstance: %d %q: %v", resp.StatusCode, raw, err)
	}
	// 000000: provisioned within the budget; 000004: still provisioning.
	if (out.ResultCode != "000000" && out.ResultCode != "000004") || out.InstanceID == "" {
		t.Fatalf("newInstance: %d %s", resp.StatusCode, raw)
	}
	return out.InstanceID
}

// orderNotify plays KooGallery's order notification against the production
// interface, V2-signed with key (serve's general key, which defaults to
// its basic key), and fails the test unless it is answered 000000.
func orderNotify(t *testing.T, base, key, orderID string) {
	t.Helper()
	body := []byte(`{"activity":"orderNotify","orderId":"` + orderID + `","orderLineId":"` + orderID + `-000001","testFlag":"0"}`)
	nonce := randomHex(t, 16)
	ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
	q := url.Values{"signature": {sign.V2Signature(key, nonce, ts, body)}, "timestamp": {ts}, "nonce": {nonce}}
	resp, err := http.Post(base+"/produce?"+q.Encode(), "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("orderNotify: %v", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if !bytes.Contains(raw, []byte(`"resultCode":"000000"`)) {
		t.Fatalf("orderNotify: %d %s", resp.StatusCode, raw)
	}
}

// TestConsole logs into the web console of a real koobridge process with
// Chromium, finds the instance a newInstance call created, reads that
// call's bodies in the instance's history and logs out.
func TestConsole(t *testing.T) {
	dir := t.TempDir()
	token, key := randomHex(t, 16), randomHex(t, 16)
	k := StartKoobridge(t, "serve", "--dev", "--db", filepath.Join(dir, "k.db"), "--admin-token", token, "--key", key)
	const order = "CS2611230800E2ECONSOLE"
	id := newInstance(t, k.URL, key, order)

	ctx := NewBrowser(t)
	Do(ctx, t, "open the console", chromedp.Navigate(k.URL+"/admin/"), chromedp.WaitVisible(chromedp.ID("login")))
	if loc := Get(ctx, t, "location", chromedp.Location()); loc != k.URL+"/admin/login" {
		t.Fatalf("unauthenticated /admin/ went to %q, want the login", loc)
	}

	// A wrong token is refused.
	Do(ctx, t, "log in with a wrong token",
		chromedp.SendKeys(chromedp.ID("token"), "not-the-token"),
		chromedp.Click(chromedp.ID("login-button")),
		chromedp.WaitVisible(chromedp.ID("login-error")),
	)
	if msg := Get(ctx, t, "login error", chromedp.Text(chromedp.ID("login-error"))); msg != "wrong token" {
		t.Errorf("wrong login says %q", msg)
	}

	row := `#instances tr[data-instance-id="` + id + `"]`
	Do(ctx, t, "log in",
		chromedp.SendKeys(chromedp.ID("token"), token),
		chromedp.Click(chromedp.ID("login-button")),
		chromedp.WaitVisible(chromedp.ID("instances")),
	)
	if text := Get(ctx, t, "instance row", chromedp.Text(chromedp.CSS(row))); !strings.Contains(text, id) || !strings.Contains(text, order) {
		t.Errorf("instance row %q lacks the id %s or order %s", text, id, order)
	}

	Do(ctx, t, "open the instance",
		chromedp.Click(chromedp.CSS(row+` a[data-testid="instance-link"]`)),
		chromedp.WaitVisible(chromedp.ID("instance")),
	)
	if loc, shown := Get(ctx, t, "location", chromedp.Location()), Get(ctx, t, "instance id", chromedp.Text(chromedp.ID("instance-id"))); loc != k.URL+"/admin/instances/"+id || shown != id {
		t.Errorf("instance page at %q shows %q, want instance %s", loc, shown, id)
	}
	if pw := Get(ctx, t, "password field", chromedp.Text(chromedp.ID("password"))); pw != "set" && pw != "not set" {
		t.Errorf("password field shows %q, want set or not set", pw)
	}
	call := `#calls tr[data-activity="newInstance"]`
	if text := Get(ctx, t, "newInstance call", chromedp.Text(chromedp.CSS(call))); !strings.Contains(text, "newInstance") || !strings.Contains(text, "00000") {
		t.Errorf("newInstance call row %q", text)
	}
	request := chromedp.CSS(call + ` pre[data-testid="call-request"]`)
	Do(ctx, t, "open the call's bodies", chromedp.Click(chromedp.CSS(call+" details summary")), chromedp.WaitVisible(request))
	open := Get(ctx, t, "details state", chromedp.JavascriptAttribute[bool](chromedp.CSS(call+" details"), "open"))
	body := Get(ctx, t, "request body", chromedp.Text(request))
	if !open || !strings.Contains(body, `"activity": "newInstance"`) || !strings.Contains(body, order) {
		t.Errorf("call details open=%v request %q: want the newInstance body of order %s", open, body, order)
	}
	// The page renders: the browser returns a PNG of it.
	if png := Get(ctx, t, "screenshot", chromedp.CaptureScreenshot()); !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		t.Errorf("screenshot: %d bytes, want a PNG", len(png))
	}

	// An order notification, delivered to the vendor in the background,
	// shows on the Orders page with its order (serve --dev answers Query
	// Order itself).
	const notified = "CS2611230800E2EORDER"
	orderNotify(t, k.URL, key, notified)
	orderRow := `#orders tr[data-order-id="` + notified + `"]`
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		Do(ctx, t, "open the orders", chromedp.Click(chromedp.ID("nav-orders")), chromedp.WaitVisible(chromedp.ID("orders")))
		status := Get(ctx, t, "order status", chromedp.JavascriptAttribute[string](chromedp.CSS(`#orders tbody tr`), "outerHTML"))
		if strings.Contains(status, `data-order-id="`+notified+`" data-status="delivered"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the order notification is not delivered on the Orders page: %s", status)
		}
	}
	orderJSON := chromedp.CSS(orderRow + ` pre[data-testid="order-json"]`)
	Do(ctx, t, "open the order", chromedp.Click(chromedp.CSS(orderRow+" details summary")), chromedp.WaitVisible(orderJSON))
	if text := Get(ctx, t, "order details", chromedp.Text(orderJSON)); !strings.Contains(text, `"orderId": "`+notified+`"`) {
		t.Errorf("order details %q lack the order", text)
	}

	Do(ctx, t, "log out",
		chromedp.Click(chromedp.ID("logout-button")),
		chromedp.WaitVisible(chromedp.ID("login")),
		chromedp.Navigate(k.URL+"/admin/instances/"+id),
		chromedp.WaitVisible(chromedp.ID("login")),
	)
	if loc := Get(ctx, t, "location", chromedp.Location()); loc != k.URL+"/admin/login" {
		t.Errorf("after logout the instance page went to %q, want the login", loc)
	}
}
