package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// consoleDuration is how every console page writes a duration
// (internal/durationtext): three significant digits below a minute ("420 µs",
// "1.34 ms", "2.35 s"), whole minutes and seconds above. "0.0 ms" does not
// match, nor does Go's "1.956098ms".
var consoleDuration = regexp.MustCompile(`^([1-9][0-9]{0,2}(\.[0-9]{1,2})? (ns|µs|ms|s)|[1-9][0-9]* min( [1-9][0-9]? s)?)$`)

// consoleTime is the layout of the times the console shows.
const consoleTime = "2006-01-02 15:04:05 UTC"

// TestConsolePagesTell plays "koobridge demo" (real server and emulator
// processes: a subscription frozen then released, provisioning run by the
// newInstance calls themselves, dozens of calls) and reads in Chromium
// what the console says about it: a released instance's status is
// "released" on the list, on its page and in the admin API, although it
// was frozen when it was released; no done job shows Run at after its
// Updated time; every call's duration is in the console's format, and
// none reads "0.0 ms".
func TestConsolePagesTell(t *testing.T) {
	k := StartKoobridge(t, "demo", "--emulator-listen", "127.0.0.1:0", "--app-listen", "127.0.0.1:0", "--dir", t.TempDir())
	token := demoAdminToken(t, k)
	ctx := NewBrowser(t)
	Do(ctx, t, "log in",
		chromedp.Navigate(k.URL+"/admin/"),
		chromedp.WaitVisible(chromedp.ID("login")),
		chromedp.SendKeys(chromedp.ID("token"), token),
		chromedp.Click(chromedp.ID("login-button")),
		chromedp.WaitVisible(chromedp.ID("instances")),
	)

	// Released instances: one was frozen (updateInstanceStatus FREEZE)
	// when KooGallery released it.
	type instanceRow struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	}
	rows := Get(ctx, t, "instance rows", chromedp.Evaluate[[]instanceRow](`[...document.querySelectorAll('#instances tr[data-instance-id]')]
		.map(r => ({id: r.dataset.instanceId, status: r.querySelector('[data-field="status"]').textContent}))`))
	releasedWhileFrozen := 0
	for _, r := range rows {
		if !strings.HasPrefix(r.Status, "released") {
			continue
		}
		if r.Status != "released" {
			t.Errorf("instance list: %s reads %q, want released", r.ID, r.Status)
		}
		Do(ctx, t, "open released instance "+r.ID,
			chromedp.Navigate(k.URL+"/admin/instances/"+r.ID), chromedp.WaitVisible(chromedp.ID("instance")))
		if status := Get(ctx, t, "status of "+r.ID, chromedp.Text(chromedp.CSS(`#instance [data-field="status"]`))); status != "released" {
			t.Errorf("instance page of %s: status reads %q, want released", r.ID, status)
		}
		type callRow struct {
			Activity string `json:"activity"`
			Request  string `json:"request"`
		}
		calls := Get(ctx, t, "calls of "+r.ID, chromedp.Evaluate[[]callRow](`[...document.querySelectorAll('#calls tr[data-call-id]')]
			.map(r => ({activity: r.dataset.activity, request: r.querySelector('pre[data-testid="call-request"]').textContent}))`))
		if len(calls) >= 2 && calls[0].Activity == "releaseInstance" && calls[1].Activity == "updateInstanceStatus" &&
			strings.Contains(calls[1].Request, `"FREEZE"`) {
			releasedWhileFrozen++
		}
		checkCallDurations(ctx, t, "instance page of "+r.ID)
		var api map[string]any
		adminAPIGet(t, k.URL+"/admin/api/instances/"+r.ID, token, &api)
		if frozenBy, ok := api["frozenBy"]; api["status"] != "released" || ok {
			t.Errorf("admin API: instance %s has status %v, frozenBy %v; want released and no frozenBy", r.ID, api["status"], frozenBy)
		}
	}
	if releasedWhileFrozen == 0 {
		t.Errorf("no released instance was frozen when it was released (instances %+v): the demo no longer plays the case", rows)
	}

	// Done jobs: Run at is when the job last ran, so never after Updated.
	// The demo's provision jobs are run by the newInstance calls at once.
	Do(ctx, t, "open the done jobs",
		chromedp.Navigate(k.URL+"/admin/jobs?state=done&limit=1000"), chromedp.WaitVisible(chromedp.ID("jobs")))
	type jobRow struct {
		ID      string `json:"id"`
		Kind    string `json:"kind"`
		RunAt   string `json:"runAt"`
		Updated string `json:"updated"`
	}
	jobs := Get(ctx, t, "job rows", chromedp.Evaluate[[]jobRow](`[...document.querySelectorAll('#jobs tr[data-job-id]')]
		.map(r => ({id: r.dataset.jobId, kind: r.querySelector('[data-field="kind"]').textContent,
			runAt: r.querySelector('[data-field="runAt"]').textContent, updated: r.querySelector('[data-field="updatedAt"]').textContent}))`))
	provisions := 0
	for _, j := range jobs {
		runAt, err1 := time.Parse(consoleTime, j.RunAt)
		updated, err2 := time.Parse(consoleTime, j.Updated)
		if err1 != nil || err2 != nil {
			t.Errorf("done job %s (%s): Run at %q, Updated %q: %v %v", j.ID, j.Kind, j.RunAt, j.Updated, err1, err2)
			continue
		}
		if runAt.After(updated) {
			t.Errorf("done job %s (%s): Run at %s is after Updated %s", j.ID, j.Kind, j.RunAt, j.Updated)
		}
		if j.Kind == "provision" {
			provisions++
		}
	}
	if provisions == 0 {
		t.Errorf("no done provision job among %d done jobs: the demo no longer plays the case", len(jobs))
	}

	// Calls: every duration in the console's format.
	Do(ctx, t, "open the calls",
		chromedp.Navigate(k.URL+"/admin/calls?limit=1000"), chromedp.WaitVisible(chromedp.ID("calls")))
	if n := checkCallDurations(ctx, t, "calls page"); n < 20 {
		t.Errorf("calls page shows %d calls, want the demo's lifecycle (at least 20)", n)
	}
}

// checkCallDurations reads the duration of every call in the page's calls
// table, fails the test for one not in the console's format, and returns
// how many there are.
func checkCallDurations(ctx context.Context, t *testing.T, page string) int {
	t.Helper()
	type durationRow struct {
		ID       string `json:"id"`
		Activity string `json:"activity"`
		Duration string `json:"duration"`
	}
	rows := Get(ctx, t, "durations on the "+page, chromedp.Evaluate[[]durationRow](`[...document.querySelectorAll('#calls tr[data-call-id]')]
		.map(r => ({id: r.dataset.callId, activity: r.dataset.activity, duration: r.querySelector('[data-field="duration"]').textContent}))`))
	for _, r := range rows {
		if !consoleDuration.MatchString(r.Duration) {
			t.Errorf("%s: call %s (%s) took %q, want a duration like \"420 µs\", \"1.34 ms\" or \"2.35 s\"", page, r.ID, r.Activity, r.Duration)
		}
	}
	return len(rows)
}

// demoAdminToken waits for "koobridge demo" to finish its lifecycle and print
// the console's admin token, and returns it.
func demoAdminToken(t *testing.T, k *Koobridge) string {
	t.Helper()
	tokenRE := regexp.MustCompile(`admin token: ([0-9a-f]+)`)
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if m := tokenRE.FindStringSubmatch(k.Stderr()); m != nil {
			out := k.Stderr()
			if strings.Contains(out, "stopped early") || !strings.Contains(out, "releaseInstance") {
				t.Fatalf("demo lifecycle did not finish:\n%s", out)
			}
			return m[1]
		}
	}
	t.Fatalf("demo printed no admin token:\n%s", k.Stderr())
	return ""
}

// adminAPIGet reads an admin API resource as JSON.
func adminAPIGet(t *testing.T, url, token string, out any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}
