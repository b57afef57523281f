package console

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/jobs"
	"github.com/koobridge/koobridge/internal/seal"
	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/internal/tenant"
	"github.com/koobridge/koobridge/provision"
)

// redeliverAt is the tenant service's clock in these tests: the
// re-delivered event's UpdatedAt and its job's RunAt.
var redeliverAt = t0.Add(time.Hour)

// newTenantService returns the real tenant service over st with a job
// runner that is never started: a re-delivery's job stays queued, where
// the test can see it (internal/tenant tests the delivery itself).
func newTenantService(t *testing.T, st store.Store) *tenant.Service {
	t.Helper()
	key, err := seal.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := seal.ParseKey(key)
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := seal.NewSealer(raw)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := tenant.New(tenant.Config{
		Store: st, Sealer: sealer, Provisioner: provision.NewDemo(""), Jobs: jobs.NewRunner(jobs.Config{Store: st}),
		MaxAttempts: 7, Now: func() time.Time { return redeliverAt },
	})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// eventState reads tenant-a's event with seq: its state and attempts, and
// the delivery jobs queued for it.
func eventState(t *testing.T, st store.Store, seq int64) (store.TenantEvent, []store.Job) {
	t.Helper()
	ctx := context.Background()
	evs, err := st.TenantEvents(ctx, "tenant-a", 0)
	if err != nil {
		t.Fatal(err)
	}
	var ev store.TenantEvent
	for _, e := range evs {
		if e.Seq == seq {
			ev = e
		}
	}
	if ev.ID == 0 {
		t.Fatalf("tenant-a has no event %d", seq)
	}
	all, err := st.Jobs(ctx, store.JobFilter{Kind: tenant.KindEvent})
	if err != nil {
		t.Fatal(err)
	}
	var js []store.Job
	for _, j := range all {
		var p struct {
			TenantID string `json:"tenantId"`
			EventID  int64  `json:"eventId"`
		}
		if err := json.Unmarshal(j.Payload, &p); err != nil {
			t.Fatalf("job %d payload %s: %v", j.ID, j.Payload, err)
		}
		if p.TenantID == "tenant-a" && p.EventID == ev.ID {
			js = append(js, j)
		}
	}
	return ev, js
}

// TestAPIRedeliver: bad input and unknown events change nothing; the
// failed event is put back to pending with one fresh delivery job and
// answered 202 with its view; then it, and the delivered one, are
// conflicts. Both dialects.
func TestAPIRedeliver(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			st := d.open(t)
			secrets := seedTenants(t, st)
			logs := &logBuffer{}
			srv := httptest.NewServer(NewAPI(APIConfig{Store: st, Tenants: newTenantService(t, st), Token: token,
				Logger: slog.New(slog.NewTextHandler(logs, nil))}))
			t.Cleanup(srv.Close)
			f := &fixture{st: st, srv: srv}

			refused := []struct {
				name, path string
				status     int
				msg        string
			}{
				{"seq zero", "/admin/api/tenants/tenant-a/events/0/redeliver", http.StatusBadRequest, `seq: want a positive integer, got "0"`},
				{"negative seq", "/admin/api/tenants/tenant-a/events/-2/redeliver", http.StatusBadRequest, `seq: want a positive integer, got "-2"`},
				{"seq not a number", "/admin/api/tenants/tenant-a/events/two/redeliver", http.StatusBadRequest, `seq: want a positive integer, got "two"`},
				{"seq with a fraction", "/admin/api/tenants/tenant-a/events/2.0/redeliver", http.StatusBadRequest, `seq: want a positive integer, got "2.0"`},
				{"seq too large", "/admin/api/tenants/tenant-a/events/9223372036854775808/redeliver", http.StatusBadRequest, `seq: want a positive integer, got "9223372036854775808"`},
				{"unknown seq", "/admin/api/tenants/tenant-a/events/3/redeliver", http.StatusNotFound, `event 3 of tenant "tenant-a" not found`},
				{"unknown tenant", "/admin/api/tenants/nope/events/2/redeliver", http.StatusNotFound, `event 2 of tenant "nope" not found`},
				{"tenant without events", "/admin/api/tenants/tenant-c/events/1/redeliver", http.StatusNotFound, `event 1 of tenant "tenant-c" not found`},
				{"delivered", "/admin/api/tenants/tenant-a/events/1/redeliver", http.StatusConflict, `event 1 of tenant "tenant-a" is not failed: only a failed event can be re-delivered`},
			}
			for _, tc := range refused {
				t.Run(tc.name, func(t *testing.T) {
					var e errorBody
					if code := f.do(t, "POST", tc.path, &e); code != tc.status || e.Error != tc.msg {
						t.Errorf("POST %s: %d %q, want %d %q", tc.path, code, e.Error, tc.status, tc.msg)
					}
				})
			}
			ev, js := eventState(t, st, 2)
			if ev.State != store.TenantEventFailed || len(js) != 0 {
				t.Fatalf("after refused re-deliveries: event 2 %s with %d jobs, want failed with none", ev.State, len(js))
			}

			var body json.RawMessage
			if code := f.do(t, "POST", "/admin/api/tenants/tenant-a/events/2/redeliver", &body); code != http.StatusAccepted {
				t.Fatalf("redeliver failed event: %d %s", code, body)
			}
			want := fmt.Sprintf(`{"seq":2,"eventId":"evt-2","type":"users.authorized","state":"pending","attempts":0,"createdAt":%q,"updatedAt":%q}`,
				t0.Add(5*time.Minute).Format(time.RFC3339Nano), redeliverAt.Format(time.RFC3339Nano))
			if got := compact(t, body); got != want {
				t.Errorf("redeliver answered\n  %s\nwant\n  %s", got, want)
			}
			if l := secrets.leaks(string(body)); len(l) != 0 {
				t.Errorf("redeliver answer leaks %q", l)
			}
			ev, js = eventState(t, st, 2)
			if ev.State != store.TenantEventPending || ev.Attempts != 0 || ev.LastError != "" || !ev.UpdatedAt.Equal(redeliverAt) {
				t.Errorf("event 2 after re-delivery: %+v, want pending, 0 attempts, no error, updated %v", ev, redeliverAt)
			}
			if len(js) != 1 || js[0].State != store.JobAvailable || js[0].MaxAttempts != 7 || !js[0].RunAt.Equal(redeliverAt) {
				t.Errorf("delivery jobs of event 2: %+v, want one available, 7 attempts, due %v", js, redeliverAt)
			}
			got := logs.String()
			if !strings.Contains(got, "admin re-delivered tenant event") || !strings.Contains(got, "tenant=tenant-a seq=2 type=users.authorized") ||
				!strings.Contains(got, `via="admin api"`) {
				t.Errorf("no audit line for the re-delivery:\n%s", got)
			}

			// Pending now: a second re-delivery is a conflict and queues nothing.
			var e errorBody
			if code := f.do(t, "POST", "/admin/api/tenants/tenant-a/events/2/redeliver", &e); code != http.StatusConflict ||
				e.Error != `event 2 of tenant "tenant-a" is not failed: only a failed event can be re-delivered` {
				t.Errorf("second re-delivery: %d %q, want 409", code, e.Error)
			}
			if _, js := eventState(t, st, 2); len(js) != 1 {
				t.Errorf("%d delivery jobs after a refused second re-delivery, want 1", len(js))
			}
		})
	}
}

// TestAPIRedeliverWithoutService: without the tenant service the API
// answers 500 and changes nothing.
func TestAPIRedeliverWithoutService(t *testing.T) {
	forDialects(t, func(t *testing.T, f *fixture, _ tenantSecrets) {
		var e errorBody
		if code := f.do(t, "POST", "/admin/api/tenants/tenant-a/events/2/redeliver", &e); code != http.StatusInternalServerError ||
			e.Error != "re-delivery is not available" {
			t.Errorf("no tenant service: %d %q", code, e.Error)
		}
		if ev, js := eventState(t, f.st, 2); ev.State != store.TenantEventFailed || len(js) != 0 {
			t.Errorf("event 2 %s with %d jobs, want failed with none", ev.State, len(js))
		}
	})
}

// TestWebRedeliver: the tenant page offers "Re-deliver" next to the failed
// event only; the form needs the CSRF token, re-delivers the event and
// redirects back with the notice; the event is pending then, without the
// button, and a forced second post is a conflict on the error page.
// Without the tenant service no button is offered and a forced post is a
// 500.
func TestWebRedeliver(t *testing.T) {
	f := newWebFixture(t, nil)
	seedTenants(t, f.st)
	logs := &logBuffer{}
	web := httptest.NewServer(NewWeb(WebConfig{Store: f.st, Tenants: newTenantService(t, f.st), Token: token,
		Logger: slog.New(slog.NewTextHandler(logs, nil))}))
	defer web.Close()
	cookie := (&webFixture{fixture: f.fixture, web: web}).login(t)
	get := func(path string) string {
		t.Helper()
		r := send(t, web.URL, "GET", path, cookie, nil)
		if r.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d\n%s", path, r.StatusCode, r.body)
		}
		return r.body
	}

	page := get("/admin/tenants/tenant-a")
	form := `<form method="post" action="/admin/tenants/tenant-a/events/2/redeliver" data-testid="redeliver">`
	if !strings.Contains(page, form) || !strings.Contains(page, `<button type="submit" id="redeliver-2">Re-deliver</button>`) {
		t.Fatalf("tenant page offers no re-delivery of the failed event 2\n%s", page)
	}
	if strings.Contains(page, `id="redeliver-1"`) || strings.Count(page, `data-testid="redeliver"`) != 1 {
		t.Errorf("tenant page offers re-delivery of an event that is not failed")
	}
	csrf := csrfOf(t, page)

	// No or a wrong CSRF token: refused, nothing changes.
	for _, token := range []string{"", "forged"} {
		form := url.Values{}
		if token != "" {
			form.Set("csrf", token)
		}
		if r := send(t, web.URL, "POST", "/admin/tenants/tenant-a/events/2/redeliver", cookie, form); r.StatusCode != http.StatusForbidden {
			t.Errorf("re-deliver with CSRF %q: %d, want 403", token, r.StatusCode)
		}
	}
	if ev, js := eventState(t, f.st, 2); ev.State != store.TenantEventFailed || len(js) != 0 {
		t.Fatalf("after refused posts: event 2 %s with %d jobs, want failed with none", ev.State, len(js))
	}

	r := send(t, web.URL, "POST", "/admin/tenants/tenant-a/events/2/redeliver", cookie, url.Values{"csrf": {csrf}})
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/admin/tenants/tenant-a?done=redeliver" {
		t.Fatalf("re-deliver: %d to %q\n%s", r.StatusCode, r.Header.Get("Location"), r.body)
	}
	if ev, js := eventState(t, f.st, 2); ev.State != store.TenantEventPending || ev.LastError != "" || len(js) != 1 {
		t.Fatalf("after the re-delivery: event 2 %s (%q) with %d jobs, want pending, no error, one job", ev.State, ev.LastError, len(js))
	}
	after := get(r.Header.Get("Location"))
	if !strings.Contains(after, `<p class="notice" id="notice">Event queued for re-delivery: it reaches the vendor before any later pending event of this tenant.</p>`) {
		t.Errorf("no re-delivery notice on the tenant page\n%s", after)
	}
	if !strings.Contains(after, `<tr data-seq="2" data-state="pending">`) || strings.Contains(after, `data-testid="redeliver"`) {
		t.Errorf("after the re-delivery the page must show event 2 pending and offer no button\n%s", after)
	}
	if got := logs.String(); !strings.Contains(got, "admin re-delivered tenant event") || !strings.Contains(got, "tenant=tenant-a seq=2") ||
		!strings.Contains(got, `via="admin console"`) {
		t.Errorf("no audit line for the console re-delivery:\n%s", logs.String())
	}

	for _, tc := range []struct {
		path   string
		status int
		msg    string
	}{
		{"/admin/tenants/tenant-a/events/2/redeliver", http.StatusConflict, `event 2 of tenant &#34;tenant-a&#34; is not failed: only a failed event can be re-delivered`},
		{"/admin/tenants/tenant-a/events/9/redeliver", http.StatusNotFound, `event 9 of tenant &#34;tenant-a&#34; not found`},
		{"/admin/tenants/tenant-a/events/x/redeliver", http.StatusBadRequest, `seq: want a positive integer, got &#34;x&#34;`},
	} {
		r := send(t, web.URL, "POST", tc.path, cookie, url.Values{"csrf": {csrf}})
		if r.StatusCode != tc.status || !strings.Contains(r.body, `id="error"`) || !strings.Contains(r.body, tc.msg) {
			t.Errorf("POST %s: %d, want %d with %q\n%s", tc.path, r.StatusCode, tc.status, tc.msg, r.body)
		}
	}

	// The console without the tenant service.
	f2 := newWebFixture(t, nil)
	seedTenants(t, f2.st)
	cookie2 := f2.login(t)
	page2 := f2.get(t, cookie2, "/admin/tenants/tenant-a")
	if strings.Contains(page2, `data-testid="redeliver"`) {
		t.Error("tenant page without the tenant service offers re-delivery")
	}
	r = send(t, f2.web.URL, "POST", "/admin/tenants/tenant-a/events/2/redeliver", cookie2, url.Values{"csrf": {csrfOf(t, page2)}})
	if r.StatusCode != http.StatusInternalServerError || !strings.Contains(r.body, "re-delivery is not available") {
		t.Errorf("re-deliver without the tenant service: %d\n%s", r.StatusCode, r.body)
	}
}
