package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/koobridge/koobridge/internal/lockbuf"
)

// callJSON sends body (nil: none) as JSON with the bearer token (""
// for none), decodes the answer into out (nil: not decoded) and returns
// the status and the raw answer.
func callJSON(t *testing.T, method, url, token string, body, out any) (int, string) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %d %q: %v", method, url, resp.StatusCode, raw, err)
		}
	}
	return resp.StatusCode, string(raw)
}

// startEmulator runs "koobridge emulate" on listen with args, waits until
// its JSON API answers and stops it with SIGTERM when the test ends. Its
// output is logged if the test fails.
func startEmulator(t *testing.T, listen string, args ...string) string {
	t.Helper()
	e := &Koobridge{URL: "http://" + listen, stderr: &lockbuf.Buffer{}, exited: make(chan struct{})}
	e.cmd = exec.Command(Binary(t), append([]string{"emulate", "--listen", listen}, args...)...)
	e.cmd.Stdout, e.cmd.Stderr = e.stderr, e.stderr
	if err := e.cmd.Start(); err != nil {
		t.Fatalf("start the emulator: %v", err)
	}
	go func() { _ = e.cmd.Wait(); close(e.exited) }()
	t.Cleanup(func() {
		e.stop()
		if t.Failed() {
			t.Logf("emulator output:\n%s", e.Stderr())
		}
	})
	for deadline := time.Now().Add(startTimeout); ; time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get(e.URL + "/api/emulator/clock"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return e.URL
			}
		}
		select {
		case <-e.exited:
			t.Fatalf("the emulator exited (%v):\n%s", e.cmd.ProcessState, e.Stderr())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the emulator did not answer within %v:\n%s", startTimeout, e.Stderr())
		}
	}
}

// TestConsoleUsage is pay-per-use metering seen by an operator: "koobridge
// serve" pushes usage to "koobridge emulate" (KooGallery and its Open
// API) every second; the emulator sells a pay-per-use product ordered
// three hours ago, the vendor's product reports usage two hours ago and
// now through the usage API, and the server pushes the closed period,
// which the emulator accepts. In Chromium the operator opens Usage, finds
// the accepted period, opens its push (the attempt answered 200 MKT.0000,
// the body naming the instance), then the instance's usage (total, the
// open period) and the records of the accepted period.
func TestConsoleUsage(t *testing.T) {
	dir := t.TempDir()
	token, usageToken, key, ak, sk := randomHex(t, 16), randomHex(t, 16), randomHex(t, 16), randomHex(t, 8), randomHex(t, 16)
	dataKey := make([]byte, 32)
	if _, err := rand.Read(dataKey); err != nil {
		t.Fatal(err)
	}
	emuAddr, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	k := StartKoobridge(t, "serve", "--db", filepath.Join(dir, "k.db"), "--key", key, "--ak", ak, "--sk", sk,
		"--openapi-url", "http://"+emuAddr, "--data-key", base64.StdEncoding.EncodeToString(dataKey), "--admin-token", token,
		"--usage-token", usageToken, "--usage-push-interval", "1s", "--usage-settle", "0s")
	emu := startEmulator(t, emuAddr, "--target", k.URL+"/produce", "--key", key, "--ak", ak, "--sk", sk)

	// Buy the pay-per-use product, ordered three hours ago.
	now := time.Now().UTC()
	var run struct {
		SubscriptionID string `json:"subscriptionId"`
		OK             bool   `json:"ok"`
	}
	if code, raw := emulatorPurchase(t, emu, map[string]any{
		"productId": "OFFI-EMU-ONDEMAND", "orderTime": now.Add(-3 * time.Hour).Format(time.RFC3339),
	}, &run); code != http.StatusCreated || !run.OK {
		t.Fatalf("purchase: %d %s", code, raw)
	}
	var sub struct {
		InstanceID string `json:"instanceId"`
	}
	if code, raw := callJSON(t, "GET", emu+"/api/emulator/subscriptions/"+run.SubscriptionID, "", nil, &sub); code != http.StatusOK || sub.InstanceID == "" {
		t.Fatalf("subscription %s: %d %s", run.SubscriptionID, code, raw)
	}
	inst := sub.InstanceID

	// Usage two hours ago (a period closed long since) and now (the open
	// period). The server learns the order's charging mode from Query
	// Order after newInstance: until then a record is refused, so retry.
	old := now.Truncate(time.Hour).Add(-2 * time.Hour)
	records := []map[string]any{
		{"idempotencyKey": "e2e-usage-1", "instanceId": inst, "value": 1.5, "time": old.Add(10 * time.Minute).Format(time.RFC3339)},
		{"idempotencyKey": "e2e-usage-2", "instanceId": inst, "value": 0.25, "time": old.Add(20 * time.Minute).Format(time.RFC3339)},
		{"idempotencyKey": "e2e-usage-3", "instanceId": inst, "value": 2, "time": now.Format(time.RFC3339)},
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		var out struct {
			Results []struct {
				Status string `json:"status"`
				Error  string `json:"error"`
			} `json:"results"`
		}
		code, raw := callJSON(t, "POST", k.URL+"/api/v1/usage", usageToken, map[string]any{"records": records}, &out)
		taken := code == http.StatusOK && len(out.Results) == len(records)
		for _, r := range out.Results {
			taken = taken && (r.Status == "accepted" || r.Status == "duplicate")
		}
		if taken {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("usage report: %d %s", code, raw)
		}
	}

	// The closed period is sealed and pushed at the next push interval
	// (a second); the emulator accepts it.
	var accepted struct {
		Periods []struct {
			ID     int64  `json:"id"`
			PushID int64  `json:"pushId"`
			Total  string `json:"total"`
		} `json:"periods"`
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		code, raw := callJSON(t, "GET", k.URL+"/admin/api/usage/periods?state=accepted&instanceId="+inst, token, nil, &accepted)
		if code != http.StatusOK {
			t.Fatalf("periods: %d %s", code, raw)
		}
		if len(accepted.Periods) > 0 {
			break
		}
		if time.Now().After(deadline) {
			_, all := callJSON(t, "GET", k.URL+"/admin/api/usage/periods?instanceId="+inst, token, nil, nil)
			t.Fatalf("no period of %s accepted within a minute:\n%s", inst, all)
		}
	}
	if len(accepted.Periods) != 1 || accepted.Periods[0].Total != "1.75" {
		t.Fatalf("accepted periods %+v, want one of 1.75", accepted.Periods)
	}
	period := accepted.Periods[0]

	ctx := NewBrowser(t)
	Do(ctx, t, "log in",
		chromedp.Navigate(k.URL+"/admin/login"),
		chromedp.WaitVisible(chromedp.ID("login")),
		chromedp.SendKeys(chromedp.ID("token"), token),
		chromedp.Click(chromedp.ID("login-button")),
		chromedp.WaitVisible(chromedp.ID("instances")),
	)
	Do(ctx, t, "open usage", chromedp.Click(chromedp.ID("nav-usage")), chromedp.WaitVisible(chromedp.ID("usage-counts")))
	row := `#periods tr[data-instance-id="` + inst + `"][data-state="accepted"]`
	cell := func(sel, field string) string {
		return Get(ctx, t, sel+" "+field, chromedp.Text(chromedp.CSS(sel+` [data-field="`+field+`"]`)))
	}
	if got := []string{cell(row, "start"), cell(row, "total"), cell(row, "records")}; strings.Join(got, "|") != old.Format("2006-01-02 15:04:05 UTC")+"|1.75|2" {
		t.Errorf("accepted period's row %q, want it starting %s, 1.75 of 2 records", got, old.Format(time.RFC3339))
	}
	if got := cell(row, "answer"); !strings.HasPrefix(got, "MKT.0000") {
		t.Errorf("accepted period's answer %q, want MKT.0000", got)
	}
	if got := cell(`#usage-counts tr[data-state="accepted"]`, "count"); got == "0" || got == "" {
		t.Errorf("accepted periods counted %q", got)
	}

	Do(ctx, t, "open the push",
		chromedp.Click(chromedp.CSS(row+` a[data-testid="usage-push-link"]`)),
		chromedp.WaitVisible(chromedp.ID("usage-push")),
	)
	if loc := Get(ctx, t, "location", chromedp.Location()); loc != fmt.Sprintf("%s/admin/usage/pushes/%d", k.URL, period.PushID) {
		t.Errorf("push page at %q, want push %d", loc, period.PushID)
	}
	if got := cell("#usage-push", "state"); got != "done" {
		t.Errorf("push state %q, want done", got)
	}
	send1 := `#usage-sends tr[data-attempt="1"]`
	if got := cell(send1, "httpStatus") + " " + cell(send1, "code"); got != "200 MKT.0000" {
		t.Errorf("the push's first attempt %q, want 200 MKT.0000", got)
	}
	if body := Get(ctx, t, "body", chromedp.Text(chromedp.ID("usage-push-body"))); !strings.Contains(body, inst) || !strings.Contains(body, `"1.75"`) {
		t.Errorf("push body does not carry %s's 1.75:\n%s", inst, body)
	}

	Do(ctx, t, "open the instance's usage",
		chromedp.Click(chromedp.CSS(`#periods tr[data-period-id] a[data-testid="usage-instance-link"]`)),
		chromedp.WaitVisible(chromedp.ID("usage-instance")),
	)
	if got := cell("#usage-instance", "total") + " " + cell("#usage-instance", "records"); got != "3.75 3" {
		t.Errorf("instance total %q, want 3.75 of 3 records", got)
	}
	if got := cell(`#usage-counts tr[data-state="open"]`, "count"); got != "1" {
		t.Errorf("instance's open periods %q, want 1 (this hour's)", got)
	}
	Do(ctx, t, "open the accepted period's records",
		chromedp.Click(chromedp.CSS(`#periods tr[data-state="accepted"] a[data-testid="usage-records-link"]`)),
		chromedp.WaitVisible(chromedp.ID("usage-records")),
	)
	keys := Get(ctx, t, "records", chromedp.Evaluate[[]string](
		`Array.from(document.querySelectorAll('#usage-records [data-field="idempotencyKey"]')).map(function (td) { return td.textContent.trim(); })`))
	if strings.Join(keys, " ") != "e2e-usage-2 e2e-usage-1" {
		t.Errorf("records of the accepted period %q, want e2e-usage-2 then e2e-usage-1", keys)
	}
}
