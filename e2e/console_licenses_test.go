package e2e

import (
	"bytes"
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

// licenseCall plays one license-code production call of KooGallery
// against serve's license path (--license-path, default /license),
// URL-signed with key, and fails the test unless it is answered 000000.
func licenseCall(t *testing.T, base, key string, body map[string]string) {
	t.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	nonce := randomHex(t, 16)
	ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
	q := url.Values{"signature": {sign.V2Signature(key, nonce, ts, raw)}, "timestamp": {ts}, "nonce": {nonce}}
	resp, err := http.Post(base+"/license?"+q.Encode(), "application/json", bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("%s: %v", body["activity"], err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	if !bytes.Contains(answer, []byte(`"resultCode":"000000"`)) {
		t.Fatalf("%s: %d %s", body["activity"], resp.StatusCode, answer)
	}
}

// TestConsoleLicenses records a license code through the real license-code
// production interface of a koobridge process (a renewal of a code first
// heard of, then a freeze; the same code released as a test code), then in
// Chromium opens Licenses, finds both rows, opens the real code and reads
// its status, expiry and history, opens the test code from the list, and
// opens License uploads.
func TestConsoleLicenses(t *testing.T) {
	dir := t.TempDir()
	token, key := randomHex(t, 16), randomHex(t, 16)
	k := StartKoobridge(t, "serve", "--dev", "--db", filepath.Join(dir, "k.db"), "--admin-token", token, "--key", key)
	const code, order = "PLE2ECONSOLE0001", "CS2611230800E2ELICENSE"
	licenseCall(t, k.URL, key, map[string]string{
		"activity": "refreshLicenseCode", "scene": "RENEWAL", "license": code, "orderId": order,
		"orderLineId": order + "-000001", "expireTime": "20271231000000", "testFlag": "0",
	})
	licenseCall(t, k.URL, key, map[string]string{"activity": "updateLicenseCodeStatus", "license": code, "status": "FREEZE", "testFlag": "0"})
	licenseCall(t, k.URL, key, map[string]string{"activity": "releaseLicenseCode", "license": code, "testFlag": "1"})

	ctx := NewBrowser(t)
	Do(ctx, t, "log in",
		chromedp.Navigate(k.URL+"/admin/login"),
		chromedp.WaitVisible(chromedp.ID("login")),
		chromedp.SendKeys(chromedp.ID("token"), token),
		chromedp.Click(chromedp.ID("login-button")),
		chromedp.WaitVisible(chromedp.ID("instances")),
	)
	Do(ctx, t, "open the licenses", chromedp.Click(chromedp.ID("nav-licenses")), chromedp.WaitVisible(chromedp.ID("licenses")))
	realRow := `#licenses tr[data-license-code="` + code + `"][data-test="false"]`
	testRow := `#licenses tr[data-license-code="` + code + `"][data-test="true"]`
	cell := func(row, field string) string {
		return Get(ctx, t, row+" "+field, chromedp.Text(chromedp.CSS(row+` [data-field="`+field+`"]`)))
	}
	if got := []string{cell(realRow, "status"), cell(realRow, "expireTime"), cell(realRow, "orderId"), cell(realRow, "activatedAt")}; strings.Join(got, "|") !=
		"frozen|2027-12-31 00:00:00 UTC|"+order+"|not activated" {
		t.Errorf("real code's row %q, want frozen, expiring 2027-12-31, order %s, not activated", got, order)
	}
	if got := cell(testRow, "status"); got != "released" {
		t.Errorf("test code's row status %q, want released", got)
	}

	Do(ctx, t, "open the code",
		chromedp.Click(chromedp.CSS(realRow+` a[data-testid="license-link"]`)),
		chromedp.WaitVisible(chromedp.ID("license")),
	)
	if loc, shown := Get(ctx, t, "location", chromedp.Location()), Get(ctx, t, "code", chromedp.Text(chromedp.ID("license-code"))); loc != k.URL+"/admin/licenses/"+code || shown != code {
		t.Errorf("license page at %q shows %q, want code %s", loc, shown, code)
	}
	if got := Get(ctx, t, "status", chromedp.Text(chromedp.CSS(`#license [data-field="status"]`))); got != "frozen" {
		t.Errorf("license page status %q, want frozen", got)
	}
	kinds := Get(ctx, t, "history", chromedp.Evaluate[[]string](
		`Array.from(document.querySelectorAll('#history tr[data-kind]')).map(function (tr) { return tr.dataset.kind; })`))
	if strings.Join(kinds, " ") != "frozen renewed" {
		t.Errorf("history %q, want frozen then renewed (newest first)", kinds)
	}
	if Get(ctx, t, "devices", chromedp.Text(chromedp.ID("no-devices"))) != "No devices." {
		t.Error("a code no client presented shows devices")
	}

	Do(ctx, t, "open the test code",
		chromedp.Click(chromedp.ID("nav-licenses")),
		chromedp.WaitVisible(chromedp.ID("licenses")),
		chromedp.Click(chromedp.CSS(testRow+` a[data-testid="license-link"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#license[data-test="true"]`)),
	)
	if loc := Get(ctx, t, "location", chromedp.Location()); loc != k.URL+"/admin/licenses/"+code+"?test=true" {
		t.Errorf("test code page at %q", loc)
	}

	Do(ctx, t, "open the license uploads", chromedp.Click(chromedp.ID("nav-license-grants")), chromedp.WaitVisible(chromedp.ID("grants")))
	if got := Get(ctx, t, "no grants", chromedp.Text(chromedp.ID("no-grants"))); got != "No generated licenses." {
		t.Errorf("license uploads page %q, want none", got)
	}
	if png := Get(ctx, t, "screenshot", chromedp.CaptureScreenshot()); !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		t.Errorf("screenshot: %d bytes, want a PNG", len(png))
	}
}
