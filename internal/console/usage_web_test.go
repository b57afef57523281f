package console

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/jobs"
	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/internal/usage"
)

// newUsageWeb returns a web console over f's store with the given push
// retrier (nil for none), its clock at 13:30 (90 minutes after the oldest
// unpushed period ended; moved by the returned fixture's clock), logging
// to logs.
func newUsageWeb(t *testing.T, f *webFixture, r UsagePushes, logs *logBuffer) *webFixture {
	t.Helper()
	clk := &clock{t: t0.Add(90 * time.Minute)}
	cfg := WebConfig{Store: f.st, Token: token, Now: clk.Now, Logger: slog.New(slog.NewTextHandler(logs, nil))}
	if r != nil {
		cfg.Usage = r
	}
	web := httptest.NewServer(NewWeb(cfg))
	t.Cleanup(web.Close)
	return &webFixture{fixture: f.fixture, web: web, clock: clk}
}

// withoutLast drops the last cell (the wall-clock update time) of each
// row rowsOf returned.
func withoutLast(rows []string) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r[:strings.LastIndex(r, "|")]
	}
	return out
}

// TestWebUsage: the usage page counts the periods by state, says how old
// the oldest unpushed period is, lists the periods with KooGallery's code
// and message, filters and pages them; an instance's page shows its total,
// its periods and the records of a chosen period.
func TestWebUsage(t *testing.T) {
	base := newWebFixture(t, nil)
	s := seedUsage(t, base.st)
	f := newUsageWeb(t, base, nil, &logBuffer{})
	cookie := f.login(t)
	pid := func(n string) string { return fmt.Sprint(s.periods[n]) }
	push := func(n string) string { return fmt.Sprint(s.pushes[n]) }

	page := f.get(t, cookie, "/admin/usage")
	if got, want := rowsOf(page, "data-state"), []string{"open: open|1", "pushing: pushing|1", "accepted: accepted|2", "rejected: rejected|1", "dead: dead|2", "test: test|1"}; strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("counts:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, want := range []string{
		`id="nav-usage"`, `<a href="/admin/usage/pushes" id="usage-pushes-link">`,
		`<dd data-field="oldestUnpushedEnd">2026-03-01 12:00:00 UTC <span class="muted">(1h30m0s ago)</span></dd>`,
		`data-state-filter="rejected"`, `id="usage-filter"`, `href="/admin/usage?state=dead"`,
		`<a href="/admin/usage/instances/inst-U1" data-testid="usage-instance-link">`,
		`<a href="/admin/usage/pushes/` + push("C1") + `" data-testid="usage-push-link">`,
		`href="/admin/usage/instances/inst-U1?periodStart=2026-03-01T11%3A00%3A00Z#records" data-testid="usage-records-link"`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("usage page lacks %q", want)
		}
	}
	// Before the oldest unpushed period ends (the current one), nothing is
	// late: no negative age.
	f.clock.Add(-2 * time.Hour)
	if page := f.get(t, cookie, "/admin/usage"); !strings.Contains(page, `<dd data-field="oldestUnpushedEnd">2026-03-01 12:00:00 UTC <span class="muted">(not ended yet)</span></dd>`) {
		t.Error("usage page: an unpushed period that has not ended is not told as such")
	}
	f.clock.Add(2 * time.Hour)
	wantRows := []string{
		pid("U4@0") + ": inst-U4|2026-03-01 12:00:00 UTC|2026-03-01 13:00:00 UTC|0.25|1|test|—|",
		pid("U1@0") + ": inst-U1|2026-03-01 12:00:00 UTC|2026-03-01 13:00:00 UTC|3|2|open|—|",
		pid("U2@-1") + ": inst-U2|2026-03-01 11:00:00 UTC|2026-03-01 12:00:00 UTC|0.0007|1|pushing|" + push("C2") + "|",
		pid("U1@-1") + ": inst-U1|2026-03-01 11:00:00 UTC|2026-03-01 12:00:00 UTC|0.0001|1|rejected|" + push("C1") + "|MKT.0101 usage_value is invalid",
		pid("U2@-2") + ": inst-U2|2026-03-01 10:00:00 UTC|2026-03-01 11:00:00 UTC|12345.6789|1|accepted|" + push("A") + "|MKT.0000",
		pid("U1@-2") + ": inst-U1|2026-03-01 10:00:00 UTC|2026-03-01 11:00:00 UTC|1.5|2|accepted|" + push("A") + "|MKT.0000",
		pid("U3@-3") + ": inst-U3|2026-03-01 09:00:00 UTC|2026-03-01 10:00:00 UTC|5|1|dead|" + push("D") + "|MKT.9004 usage older than 21 days",
		pid("U3@-528") + ": inst-U3|2026-02-07 12:00:00 UTC|2026-02-07 13:00:00 UTC|2|1|dead|—|older than 21 days: never pushed",
	}
	if got := withoutLast(rowsOf(page, "data-period-id")); strings.Join(got, "\n") != strings.Join(wantRows, "\n") {
		t.Errorf("periods table:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantRows, "\n"))
	}
	if !strings.Contains(page, `<td data-field="answer"><span class="code-bad">MKT.0101</span> <span class="muted">usage_value is invalid</span></td>`) {
		t.Error("a rejected period's code is not marked")
	}
	for _, tt := range []struct{ path, want string }{
		{"/admin/usage?state=dead", "[" + pid("U3@-3") + " " + pid("U3@-528") + "]"},
		{"/admin/usage?instanceId=inst-U2", "[" + pid("U2@-1") + " " + pid("U2@-2") + "]"},
		{"/admin/usage?instanceId=inst-U1&state=open", "[" + pid("U1@0") + "]"},
		{"/admin/usage?pushId=" + push("A"), "[" + pid("U2@-2") + " " + pid("U1@-2") + "]"},
		{"/admin/usage?limit=2&before=" + pid("U1@-1"), "[" + pid("U2@-2") + " " + pid("U1@-2") + "]"},
		{"/admin/usage?instanceId=inst-U5", "[]"},
	} {
		if got := fmt.Sprint(rowIDs(f.get(t, cookie, tt.path), "data-period-id")); got != tt.want {
			t.Errorf("%s: periods %s, want %s", tt.path, got, tt.want)
		}
	}
	paged := f.get(t, cookie, "/admin/usage?limit=2&state=dead")
	if !strings.Contains(paged, `id="next"`) || !strings.Contains(paged, "before="+pid("U3@-528")) || !strings.Contains(paged, "state=dead") {
		t.Errorf("usage page of limit 2: no next link to before=%s keeping state=dead", pid("U3@-528"))
	}
	if empty := f.get(t, cookie, "/admin/usage?instanceId=inst-U5"); !strings.Contains(empty, `id="no-periods"`) || strings.Contains(empty, `id="next"`) {
		t.Error("empty periods page")
	}

	// One instance: its total, counts and periods; no records until a
	// period is chosen.
	inst := f.get(t, cookie, "/admin/usage/instances/inst-U1")
	for _, want := range []string{
		`<dl id="usage-instance" data-instance-id="inst-U1">`, `<span id="usage-instance-id">inst-U1</span>`,
		`<dd data-field="total">4.5001</dd>`, `<dd data-field="records">5</dd>`, `<dd data-field="lastTime">2026-03-01 12:05:00 UTC</dd>`,
		`<dd data-field="chargingMode">ON_DEMAND</dd>`, `<a href="/admin/instances/inst-U1">inst-U1</a>`, `id="records-hint"`,
	} {
		if !strings.Contains(inst, want) {
			t.Errorf("instance usage page lacks %q", want)
		}
	}
	if got, want := rowsOf(inst, "data-state"), "open: open|1 pushing: pushing|0 accepted: accepted|1 rejected: rejected|1 dead: dead|0 test: test|0"; strings.Join(got, " ") != want {
		t.Errorf("instance counts %q, want %q", strings.Join(got, " "), want)
	}
	if got, want := fmt.Sprint(rowIDs(inst, "data-period-id")), "["+pid("U1@0")+" "+pid("U1@-1")+" "+pid("U1@-2")+"]"; got != want {
		t.Errorf("instance periods %s, want %s", got, want)
	}
	if strings.Contains(inst, `id="usage-records"`) {
		t.Error("records shown without a chosen period")
	}
	recs := f.get(t, cookie, "/admin/usage/instances/inst-U1?periodStart=2026-03-01T12:00:00Z")
	if got, want := withoutLast(rowsOf(recs, "data-record-id")), []string{"k4|2|2026-03-01 11:50:00 UTC|yes, from 2026-03-01 11:50:00 UTC", "k3|1|2026-03-01 12:05:00 UTC|no"}; len(got) != 2 ||
		!strings.HasSuffix(got[0], ": "+want[0]) || !strings.HasSuffix(got[1], ": "+want[1]) {
		t.Errorf("records of period 12:00:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !strings.Contains(recs, `<span id="records-period">2026-03-01T12:00:00Z</span>`) || !strings.Contains(recs, `<td data-field="createdAt">2026-03-01 12:05:30 UTC</td>`) {
		t.Error("records section lacks its period or a record's receipt time")
	}
	if none := f.get(t, cookie, "/admin/usage/instances/inst-U1?periodStart=2026-03-01T08:00:00Z"); !strings.Contains(none, `id="no-records"`) {
		t.Error("a period without records shows records")
	}
	if empty := f.get(t, cookie, "/admin/usage/instances/inst-U5"); !strings.Contains(empty, `<dd data-field="total">0</dd>`) || !strings.Contains(empty, `id="no-periods"`) ||
		!strings.Contains(empty, `<dd data-field="lastTime">—</dd>`) {
		t.Error("instance without usage: want total 0, no periods, no last time")
	}

	for _, tt := range []struct {
		path string
		want int
		msg  string
	}{
		{"/admin/usage?state=lost", http.StatusBadRequest, "state: want open, pushing, accepted, rejected, dead or test"},
		{"/admin/usage?instanceId=a%00b", http.StatusBadRequest, "instanceId: invalid UTF-8 or control characters"},
		{"/admin/usage?limit=0", http.StatusBadRequest, "limit: want a number from 1 to 1000"},
		{"/admin/usage/instances/nope", http.StatusNotFound, `instance &#34;nope&#34; not found`},
		{"/admin/usage/instances/inst-U1?periodStart=noon", http.StatusBadRequest, "periodStart: want an RFC 3339 time"},
		{"/admin/usage/instances/inst-U1?periodStart=2026-03-01T12:00:00Z&recordsBefore=x", http.StatusBadRequest, "recordsBefore: want a positive id"},
		{"/admin/usage/pushes?state=lost", http.StatusBadRequest, "state: want pending, done or split"},
		{"/admin/usage/pushes/abc", http.StatusNotFound, `usage push &#34;abc&#34; not found`},
		{"/admin/usage/pushes/999999", http.StatusNotFound, "usage push 999999 not found"},
	} {
		if r := send(t, f.web.URL, "GET", tt.path, cookie, nil); r.StatusCode != tt.want || !strings.Contains(r.body, `id="error"`) || !strings.Contains(r.body, tt.msg) {
			t.Errorf("GET %s: %d, want %d with %q", tt.path, r.StatusCode, tt.want, tt.msg)
		}
	}
	for _, p := range []string{"/admin/usage", "/admin/usage/instances/inst-U1", "/admin/usage/pushes", "/admin/usage/pushes/1"} {
		if r := send(t, f.web.URL, "GET", p, "", nil); r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/admin/login" {
			t.Errorf("%s without a session: %d to %q, want a redirect to the login", p, r.StatusCode, r.Header.Get("Location"))
		}
	}
}

// TestWebUsageRecordsPaging: the records of a period page on a cursor of
// their own, which keeps the periods' filter and page.
func TestWebUsageRecordsPaging(t *testing.T) {
	base := newWebFixture(t, nil)
	s := seedUsage(t, base.st)
	f := newUsageWeb(t, base, nil, &logBuffer{})
	cookie := f.login(t)
	keys := func(page string) string {
		var out []string
		for _, r := range rowsOf(page, "data-record-id") {
			_, cells, _ := strings.Cut(r, ": ")
			k, _, _ := strings.Cut(cells, "|")
			out = append(out, k)
		}
		return strings.Join(out, " ")
	}
	// 101 more records in U1's open period: a page of 100, then one.
	st := base.st
	var more []store.UsageRecord
	for i := range 101 {
		more = append(more, store.UsageRecord{IdempotencyKey: fmt.Sprintf("m%03d", i), InstanceID: "inst-U1", Value: 1, Time: hour(0).Add(time.Minute), PeriodStart: hour(0)})
	}
	if err := st.Tx(t.Context(), func(ctx context.Context, tx store.Tx) error {
		_, err := tx.InsertUsageRecords(ctx, more)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	first := f.get(t, cookie, "/admin/usage/instances/inst-U1?state=open&periodStart=2026-03-01T12:00:00Z")
	if n := len(rowsOf(first, "data-record-id")); n != 100 || !strings.HasPrefix(keys(first), "m100 m099") {
		t.Fatalf("first page: %d records from %.20q", n, keys(first))
	}
	m := regexp.MustCompile(`<a href="([^"]+)" id="records-next">`).FindStringSubmatch(first)
	if m == nil {
		t.Fatal("no next records link")
	}
	next, err := url.Parse(strings.ReplaceAll(m[1], "&amp;", "&"))
	if err != nil {
		t.Fatal(err)
	}
	if q := next.Query(); q.Get("state") != "open" || q.Get("periodStart") != "2026-03-01T12:00:00Z" || q.Get("recordsBefore") == "" || next.Fragment != "records" {
		t.Errorf("next records link %q: want state, periodStart and recordsBefore kept", m[1])
	}
	second := f.get(t, cookie, next.RequestURI())
	if got := keys(second); got != "m000 k4 k3" {
		t.Errorf("second page: %q, want m000 k4 k3", got)
	}
	if !strings.Contains(second, `data-state-filter="open" class="active"`) || fmt.Sprint(rowIDs(second, "data-period-id")) != fmt.Sprintf("[%d]", s.periods["U1@0"]) {
		t.Error("the periods' filter is lost on the records' second page")
	}
}

// TestWebUsagePushes: the pushes list and a push's page show the attempts
// with their answers, the periods and the body; Send now is offered on
// the pending push only, needs the CSRF token, runs the retrier and
// returns with the notice; a push the retrier refuses is a conflict on the
// error page. Without a retrier there is no button and a forced post is a
// 500.
func TestWebUsagePushes(t *testing.T) {
	base := newWebFixture(t, nil)
	s := seedUsage(t, base.st)
	c2, a := s.pushes["C2"], s.pushes["A"]
	r := &pushRetrier{f: func(id int64) error {
		if id == c2 {
			return nil
		}
		return fmt.Errorf("usage: retry push %d: %w", id, usage.ErrNotRetryable)
	}}
	logs := &logBuffer{}
	f := newUsageWeb(t, base, r, logs)
	cookie := f.login(t)
	push := func(n string) string { return fmt.Sprint(s.pushes[n]) }

	list := f.get(t, cookie, "/admin/usage/pushes")
	wantRows := []string{
		push("C2") + ": new|pending|1|1|MKT.0999 system error|" + push("B") + "|2026-03-01 12:02:00 UTC",
		push("C1") + ": new|done|1|1|MKT.0101 usage_value is invalid|" + push("B") + "|2026-03-01 12:02:00 UTC",
		push("B") + ": new|split|2|1|MKT.0101 invalid parameter|—|2026-03-01 12:01:00 UTC",
		push("A") + ": new|done|2|2|MKT.0000 success|—|2026-03-01 11:01:00 UTC",
		push("D") + ": old|done|1|1|MKT.9004 usage older than 21 days|—|2026-03-01 10:01:00 UTC",
	}
	if got := withoutLast(rowsOf(list, "data-push-id")); strings.Join(got, "\n") != strings.Join(wantRows, "\n") {
		t.Errorf("pushes table:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantRows, "\n"))
	}
	if strings.Count(list, `data-testid="usage-push-retry"`) != 1 || !strings.Contains(list, `id="usage-push-retry-`+push("C2")+`"`) {
		t.Errorf("pushes page: want exactly one Send now button, for push %s", push("C2"))
	}
	for _, tt := range []struct{ path, want string }{
		{"/admin/usage/pushes?state=split", "[" + push("B") + "]"},
		{"/admin/usage/pushes?state=pending", "[" + push("C2") + "]"},
		{"/admin/usage/pushes?limit=2&before=" + push("B"), "[" + push("A") + " " + push("D") + "]"},
	} {
		if got := fmt.Sprint(rowIDs(f.get(t, cookie, tt.path), "data-push-id")); got != tt.want {
			t.Errorf("%s: pushes %s, want %s", tt.path, got, tt.want)
		}
	}
	if paged := f.get(t, cookie, "/admin/usage/pushes?limit=2&state=done"); !strings.Contains(paged, `id="next"`) || !strings.Contains(paged, "before="+push("A")) || !strings.Contains(paged, "state=done") {
		t.Errorf("pushes page of limit 2: no next link to before=%s keeping state=done", push("A"))
	}

	page := f.get(t, cookie, "/admin/usage/pushes/"+push("A"))
	for _, want := range []string{
		`<dl id="usage-push" data-push-id="` + push("A") + `">`, `<dd data-field="state">done</dd>`,
		`<dd data-field="answer"><span>MKT.0000</span> <span class="muted">success</span></dd>`,
		`<pre id="usage-push-body">{`, `&#34;usage_value&#34;: &#34;12345.6789&#34;`, usage.MeteringSN("inst-U2", hour(-2)),
	} {
		if !strings.Contains(page, want) {
			t.Errorf("push page lacks %q", want)
		}
	}
	if got, want := rowsOf(page, "data-attempt"), []string{
		`1: 2026-03-01 11:02:00 UTC|no answer||Post &#34;https://mkt.example/api/mkp-openapi-public/global/v1/usage&#34;: context deadline exceeded|10 s`,
		"2: 2026-03-01 11:03:00 UTC|200|MKT.0000|success|120 ms",
	}; strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("attempts:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got, want := fmt.Sprint(rowIDs(page, "data-period-id")), fmt.Sprintf("[%d %d]", s.periods["U1@-2"], s.periods["U2@-2"]); got != want {
		t.Errorf("push A's periods %s, want %s", got, want)
	}
	if strings.Contains(page, `data-testid="usage-push-retry"`) {
		t.Error("a done push offers Send now")
	}
	child := f.get(t, cookie, "/admin/usage/pushes/"+push("C1"))
	if !strings.Contains(child, `<dd data-field="parentId"><a href="/admin/usage/pushes/`+push("B")+`">push `+push("B")+`</a></dd>`) ||
		!strings.Contains(child, "MKT.0101") || !strings.Contains(child, `data-state="rejected"`) {
		t.Error("C1's page: want its parent B and its rejected period")
	}
	if split := f.get(t, cookie, "/admin/usage/pushes/"+push("B")); !strings.Contains(split, `id="no-periods"`) {
		t.Error("the split push lists periods its children carry")
	}
	pending := f.get(t, cookie, "/admin/usage/pushes/"+push("C2"))
	if !strings.Contains(pending, `<form method="post" action="/admin/usage/pushes/`+push("C2")+`/retry" id="usage-push-retry" data-testid="usage-push-retry">`) {
		t.Error("the pending push's page offers no Send now")
	}

	// No or a wrong CSRF token, or no session: refused, nothing asked.
	csrf := csrfOf(t, pending)
	for _, tok := range []string{"", "forged"} {
		form := url.Values{}
		if tok != "" {
			form.Set("csrf", tok)
		}
		if resp := send(t, f.web.URL, "POST", "/admin/usage/pushes/"+push("C2")+"/retry", cookie, form); resp.StatusCode != http.StatusForbidden {
			t.Errorf("retry with CSRF %q: %d, want 403", tok, resp.StatusCode)
		}
	}
	if resp := send(t, f.web.URL, "POST", "/admin/usage/pushes/"+push("C2")+"/retry", "", url.Values{"csrf": {csrf}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("retry without a session: %d, want 403", resp.StatusCode)
	}
	if len(r.called()) != 0 {
		t.Fatalf("refused posts asked the retrier for %v", r.called())
	}

	resp := send(t, f.web.URL, "POST", "/admin/usage/pushes/"+push("C2")+"/retry", cookie, url.Values{"csrf": {csrf}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/admin/usage/pushes/"+push("C2")+"?done=usage-retry" {
		t.Fatalf("retry: %d to %q\n%s", resp.StatusCode, resp.Header.Get("Location"), resp.body)
	}
	after := f.get(t, cookie, resp.Header.Get("Location"))
	if !strings.Contains(after, `<p class="notice" id="notice">Usage push queued to be sent now: a worker picks it up at once.</p>`) {
		t.Errorf("after the retry the page must show the notice\n%s", after)
	}
	if fmt.Sprint(r.called()) != fmt.Sprint([]int64{c2}) {
		t.Errorf("retrier asked for %v, want [%d]", r.called(), c2)
	}
	if got := logs.String(); !strings.Contains(got, "admin retried usage push") || !strings.Contains(got, fmt.Sprintf("push_id=%d", c2)) || !strings.Contains(got, `via="admin console"`) {
		t.Errorf("no audit line for the console retry:\n%s", got)
	}
	for _, tc := range []struct {
		path   string
		status int
		msg    string
	}{
		{fmt.Sprintf("/admin/usage/pushes/%d/retry", a), http.StatusConflict, fmt.Sprintf("usage push %d is done: only a pending push can be retried", a)},
		{"/admin/usage/pushes/999999/retry", http.StatusNotFound, "usage push 999999 not found"},
	} {
		resp := send(t, f.web.URL, "POST", tc.path, cookie, url.Values{"csrf": {csrf}})
		if resp.StatusCode != tc.status || !strings.Contains(resp.body, `id="error"`) || !strings.Contains(resp.body, tc.msg) {
			t.Errorf("POST %s: %d, want %d with %q\n%s", tc.path, resp.StatusCode, tc.status, tc.msg, resp.body)
		}
	}

	// The console without a retrier: no button, a forced post is a 500.
	bare := newUsageWeb(t, base, nil, &logBuffer{})
	cookie2 := bare.login(t)
	page2 := bare.get(t, cookie2, "/admin/usage/pushes/"+push("C2"))
	if strings.Contains(page2, `data-testid="usage-push-retry"`) || strings.Contains(bare.get(t, cookie2, "/admin/usage/pushes"), `data-testid="usage-push-retry"`) {
		t.Error("a console without a retrier offers Send now")
	}
	resp = send(t, bare.web.URL, "POST", "/admin/usage/pushes/"+push("C2")+"/retry", cookie2, url.Values{"csrf": {csrfOf(t, page2)}})
	if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(resp.body, "usage push retry is not available") {
		t.Errorf("retry without a retrier: %d\n%s", resp.StatusCode, resp.body)
	}
}

// TestWebUsageRepush: with the usage service, the instance's page offers
// Push again on its rejected period only, the usage and push pages link a
// rejected period to it; the post needs the CSRF token and a session,
// puts the period back to open, audits it and returns with the notice,
// after which the button is gone; a period in another state is a conflict
// and an unknown one not found, on the error page. Without the service
// there is neither button nor link and a forced post is a 500.
func TestWebUsageRepush(t *testing.T) {
	base := newWebFixture(t, nil)
	s := seedUsage(t, base.st)
	svc, err := usage.New(usage.Config{
		Store: base.st, Jobs: jobs.NewRunner(jobs.Config{Store: base.st}), Key: "basic-key",
		Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return retryAt },
	})
	if err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	f := newUsageWeb(t, base, svc, logs)
	cookie := f.login(t)
	rejected := fmt.Sprint(s.periods["U1@-1"])
	action := "/admin/usage/instances/inst-U1/periods/2026-03-01T11:00:00Z/repush"
	link := `<a href="/admin/usage/instances/inst-U1?state=rejected#period-` + rejected + `" data-testid="usage-period-repush-link"`
	periodState := func() store.UsagePeriodState {
		p, err := base.st.UsagePeriod(t.Context(), store.UsagePeriodKey{InstanceID: "inst-U1", Start: hour(-1)})
		if err != nil {
			t.Fatal(err)
		}
		return p.State
	}

	inst := f.get(t, cookie, "/admin/usage/instances/inst-U1")
	if n := strings.Count(inst, `data-testid="usage-period-repush"`); n != 1 {
		t.Errorf("instance page: %d Push again forms, want 1 (the rejected period's)", n)
	}
	var withForm []string
	for _, m := range regexp.MustCompile(`(?s)<tr data-period-id="(\d+)"[^>]*>(.*?)</tr>`).FindAllStringSubmatch(inst, -1) {
		if strings.Contains(m[2], `<form method="post" action="`+action+`" data-testid="usage-period-repush">`) {
			withForm = append(withForm, m[1])
		}
	}
	if fmt.Sprint(withForm) != "["+rejected+"]" {
		t.Errorf("Push again form posting to %s on periods %v, want on %s alone", action, withForm, rejected)
	}
	if !strings.Contains(inst, `id="usage-period-repush-`+rejected+`"`) || strings.Contains(inst, `data-testid="usage-period-repush-link"`) {
		t.Error("instance page: want the rejected period's button, no links")
	}
	if filtered := f.get(t, cookie, "/admin/usage/instances/inst-U1?state=rejected"); !strings.Contains(filtered, `id="period-`+rejected+`"`) ||
		!strings.Contains(filtered, `data-testid="usage-period-repush"`) {
		t.Error("the link's target, the instance's rejected periods, lacks the period's anchor or its button")
	}
	for _, p := range []string{"/admin/usage", "/admin/usage/pushes/" + fmt.Sprint(s.pushes["C1"])} {
		page := f.get(t, cookie, p)
		if strings.Count(page, `data-testid="usage-period-repush-link"`) != 1 || !strings.Contains(page, link) || strings.Contains(page, `data-testid="usage-period-repush"`) {
			t.Errorf("%s: want one push again link, to %s on its instance's page, and no form", p, rejected)
		}
	}
	for _, p := range []string{"/admin/usage/instances/inst-U2", "/admin/usage/instances/inst-U3", "/admin/usage/pushes/" + fmt.Sprint(s.pushes["A"])} {
		if page := f.get(t, cookie, p); strings.Contains(page, "usage-period-repush") {
			t.Errorf("%s offers Push again without a rejected period", p)
		}
	}

	// No or a wrong CSRF token, or no session: refused, the period stays.
	csrf := csrfOf(t, inst)
	for _, tok := range []string{"", "forged"} {
		form := url.Values{}
		if tok != "" {
			form.Set("csrf", tok)
		}
		if resp := send(t, f.web.URL, "POST", action, cookie, form); resp.StatusCode != http.StatusForbidden {
			t.Errorf("repush with CSRF %q: %d, want 403", tok, resp.StatusCode)
		}
	}
	if resp := send(t, f.web.URL, "POST", action, "", url.Values{"csrf": {csrf}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("repush without a session: %d, want 403", resp.StatusCode)
	}
	if got := periodState(); got != store.UsageRejected {
		t.Fatalf("refused posts left the period %s", got)
	}

	resp := send(t, f.web.URL, "POST", action, cookie, url.Values{"csrf": {csrf}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/admin/usage/instances/inst-U1?done=usage-repush" {
		t.Fatalf("repush: %d to %q\n%s", resp.StatusCode, resp.Header.Get("Location"), resp.body)
	}
	if got := periodState(); got != store.UsageOpen {
		t.Errorf("after Push again the period is %s, want open", got)
	}
	after := f.get(t, cookie, resp.Header.Get("Location"))
	if !strings.Contains(after, `<p class="notice" id="notice">Usage period back to open: the next seal pushes it to KooGallery again, with the same metering_sn.</p>`) {
		t.Errorf("after Push again the page must show the notice\n%s", after)
	}
	if strings.Contains(after, "usage-period-repush") || !strings.Contains(after, `data-period-id="`+rejected+`" data-state="open"`) {
		t.Error("after Push again: want the period open and no button")
	}
	if got := logs.String(); !strings.Contains(got, "admin put rejected usage period back to open") || !strings.Contains(got, "period_id="+rejected) ||
		!strings.Contains(got, `via="admin console"`) {
		t.Errorf("no audit line for the console's repush:\n%s", got)
	}
	for _, tc := range []struct {
		path   string
		status int
		msg    string
	}{
		{action, http.StatusConflict, `usage period of instance &#34;inst-U1&#34; starting 2026-03-01T11:00:00Z is open: only a rejected period can be pushed again`},
		{"/admin/usage/instances/inst-U1/periods/2026-03-01T10:00:00Z/repush", http.StatusConflict, "is accepted: only a rejected period can be pushed again"},
		{"/admin/usage/instances/inst-U1/periods/2026-03-01T08:00:00Z/repush", http.StatusNotFound, `usage period of instance &#34;inst-U1&#34; starting 2026-03-01T08:00:00Z not found`},
		{"/admin/usage/instances/inst-U1/periods/noon/repush", http.StatusBadRequest, "start: want an RFC 3339 time"},
	} {
		resp := send(t, f.web.URL, "POST", tc.path, cookie, url.Values{"csrf": {csrf}})
		if resp.StatusCode != tc.status || !strings.Contains(resp.body, `id="error"`) || !strings.Contains(resp.body, tc.msg) {
			t.Errorf("POST %s: %d, want %d with %q\n%s", tc.path, resp.StatusCode, tc.status, tc.msg, resp.body)
		}
	}

	// The console without the service: no button, no link, a forced post
	// is a 500 and changes nothing.
	if err := base.st.Tx(t.Context(), func(ctx context.Context, tx store.Tx) error {
		return tx.SetUsagePeriods(ctx, []store.UsagePeriodKey{{InstanceID: "inst-U1", Start: hour(-1)}}, store.UsageRejected, s.pushes["C1"], "MKT.0101", "usage_value is invalid")
	}); err != nil {
		t.Fatal(err)
	}
	bare := newUsageWeb(t, base, nil, &logBuffer{})
	cookie2 := bare.login(t)
	page2 := bare.get(t, cookie2, "/admin/usage/instances/inst-U1")
	for _, p := range []string{page2, bare.get(t, cookie2, "/admin/usage"), bare.get(t, cookie2, "/admin/usage/pushes/"+fmt.Sprint(s.pushes["C1"]))} {
		if strings.Contains(p, "usage-period-repush") {
			t.Error("a console without the usage service offers Push again")
		}
	}
	resp = send(t, bare.web.URL, "POST", action, cookie2, url.Values{"csrf": {csrfOf(t, page2)}})
	if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(resp.body, "usage period repush is not available") {
		t.Errorf("repush without the service: %d\n%s", resp.StatusCode, resp.body)
	}
	if got := periodState(); got != store.UsageRejected {
		t.Errorf("a refused post left the period %s", got)
	}
}
