package console

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/instance"
	"github.com/koobridge/koobridge/internal/store"
)

// clock is a settable time source shared with the server's goroutines.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// webFixture is the admin fixture's store behind a real web console.
type webFixture struct {
	*fixture
	web   *httptest.Server
	clock *clock
}

func newWebFixture(t *testing.T, svc *instance.Service) *webFixture {
	t.Helper()
	f := &webFixture{fixture: newFixture(t), clock: &clock{t: t0}}
	f.web = httptest.NewServer(NewWeb(WebConfig{Store: f.st, Service: svc, Token: token, Now: f.clock.Now}))
	t.Cleanup(f.web.Close)
	return f
}

// reply is a response with its body read.
type reply struct {
	*http.Response
	body string
}

// send makes one request without following redirects. cookie is the
// session cookie's value ("" for none); form, when not nil, is posted.
func send(t *testing.T, base, method, path, cookie string, form url.Values) reply {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, base+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: sessionCookie, Value: cookie})
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if strings.HasPrefix(base, "https:") {
		client.Transport = http.DefaultTransport.(*http.Transport).Clone()
		client.Transport.(*http.Transport).TLSClientConfig.InsecureSkipVerify = true //nolint:gosec // httptest certificate
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp, string(b)}
}

// login posts the token and returns the session cookie.
func (f *webFixture) login(t *testing.T) string {
	t.Helper()
	r := send(t, f.web.URL, "POST", "/admin/login", "", url.Values{"token": {token}})
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/admin/" {
		t.Fatalf("login: %d to %q", r.StatusCode, r.Header.Get("Location"))
	}
	for _, c := range r.Cookies() {
		if c.Name == sessionCookie {
			return c.Value
		}
	}
	t.Fatal("login set no session cookie")
	return ""
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// get fetches a page with the session and fails unless it is 200.
func (f *webFixture) get(t *testing.T, cookie, path string) string {
	t.Helper()
	r := send(t, f.web.URL, "GET", path, cookie, nil)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d\n%s", path, r.StatusCode, r.body)
	}
	return r.body
}

func csrfOf(t *testing.T, page string) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF field in page:\n%s", page)
	}
	return m[1]
}

func TestWebLogin(t *testing.T) {
	f := newWebFixture(t, nil)

	r := send(t, f.web.URL, "GET", "/admin/", "", nil)
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/admin/login" {
		t.Fatalf("unauthenticated GET /admin/: %d to %q", r.StatusCode, r.Header.Get("Location"))
	}
	r = send(t, f.web.URL, "GET", "/admin/login", "", nil)
	if r.StatusCode != http.StatusOK || !strings.Contains(r.body, `type="password" name="token"`) {
		t.Fatalf("login form: %d\n%s", r.StatusCode, r.body)
	}

	for _, wrong := range []string{"", "wrong", token[:10], token + "x"} {
		r = send(t, f.web.URL, "POST", "/admin/login", "", url.Values{"token": {wrong}})
		if r.StatusCode != http.StatusUnauthorized || !strings.Contains(r.body, "wrong token") || len(r.Cookies()) != 0 {
			t.Errorf("token %q: %d cookies %v, want 401 with \"wrong token\" and no cookie", wrong, r.StatusCode, r.Cookies())
		}
	}

	r = send(t, f.web.URL, "POST", "/admin/login", "", url.Values{"token": {token}})
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/admin/" {
		t.Fatalf("good login: %d to %q", r.StatusCode, r.Header.Get("Location"))
	}
	if len(r.Cookies()) != 1 {
		t.Fatalf("cookies %v", r.Cookies())
	}
	c := r.Cookies()[0]
	if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/admin/" || c.Secure {
		t.Errorf("cookie attributes %+v: want HttpOnly, SameSite=Strict, Path=/admin/, not Secure over plain HTTP", c)
	}
	if strings.Contains(c.Value, token) || strings.Count(c.Value, ".") != 1 {
		t.Errorf("cookie value %q: want sessionid.mac without the token", c.Value)
	}
	if body := f.get(t, c.Value, "/admin/"); !strings.Contains(body, `id="instances"`) {
		t.Errorf("after login: no instances table\n%s", body)
	}
	// A logged-in visit to the login form goes to the console.
	if r := send(t, f.web.URL, "GET", "/admin/login", c.Value, nil); r.StatusCode != http.StatusSeeOther {
		t.Errorf("login form while logged in: %d", r.StatusCode)
	}

	// Logout needs the CSRF token, then the cookie is dead for good.
	csrf := csrfOf(t, f.get(t, c.Value, "/admin/"))
	r = send(t, f.web.URL, "POST", "/admin/logout", c.Value, url.Values{"csrf": {csrf}})
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/admin/login" {
		t.Fatalf("logout: %d to %q", r.StatusCode, r.Header.Get("Location"))
	}
	if len(r.Cookies()) != 1 || r.Cookies()[0].MaxAge >= 0 {
		t.Errorf("logout cookies %v: want the session cookie deleted", r.Cookies())
	}
	if r := send(t, f.web.URL, "GET", "/admin/", c.Value, nil); r.StatusCode != http.StatusSeeOther {
		t.Errorf("cookie after logout: %d, want a redirect to the login", r.StatusCode)
	}
}

func TestWebSecureCookieOverTLS(t *testing.T) {
	f := newFixture(t)
	srv := httptest.NewTLSServer(NewWeb(WebConfig{Store: f.st, Token: token}))
	defer srv.Close()
	r := send(t, srv.URL, "POST", "/admin/login", "", url.Values{"token": {token}})
	if r.StatusCode != http.StatusSeeOther || len(r.Cookies()) != 1 || !r.Cookies()[0].Secure {
		t.Fatalf("login over TLS: %d cookies %+v, want a Secure cookie", r.StatusCode, r.Cookies())
	}
}

// forge signs a session id the way the console does, with key.
func forge(key, id string) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(sessionLabel + id))
	return id + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func TestWebRejectsForgedCookies(t *testing.T) {
	f := newWebFixture(t, nil)
	good := f.login(t)
	id, _, _ := strings.Cut(good, ".")
	rnd, exp, _ := strings.Cut(id, "-")
	later := fmt.Sprint(t0.Add(100 * 24 * time.Hour).Unix())

	for _, tt := range []struct{ name, cookie string }{
		{"garbage", "garbage"},
		{"id without mac", id},
		{"id with empty mac", id + "."},
		{"mac of another id", "0123456789abcdef0123456789abcdef-" + exp + "." + strings.SplitN(good, ".", 2)[1]},
		{"extended expiry, old mac", rnd + "-" + later + "." + strings.SplitN(good, ".", 2)[1]},
		{"signed with another key", forge("some-other-token-000000", id)},
		{"signed with an empty key", forge("", id)},
		{"token as cookie", token},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if r := send(t, f.web.URL, "GET", "/admin/jobs", tt.cookie, nil); r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/admin/login" {
				t.Errorf("GET with forged cookie: %d to %q, want a redirect to the login", r.StatusCode, r.Header.Get("Location"))
			}
			if r := send(t, f.web.URL, "POST", "/admin/logout", tt.cookie, url.Values{"csrf": {"x"}}); r.StatusCode != http.StatusForbidden {
				t.Errorf("POST with forged cookie: %d, want 403", r.StatusCode)
			}
		})
	}
	// The real cookie still works, and stops at its expiry.
	f.get(t, good, "/admin/jobs")
	f.clock.Add(sessionTTL)
	if r := send(t, f.web.URL, "GET", "/admin/jobs", good, nil); r.StatusCode != http.StatusSeeOther {
		t.Errorf("expired session: %d, want a redirect to the login", r.StatusCode)
	}
}

func TestWebEmptyTokenFailsClosed(t *testing.T) {
	f := newFixture(t)
	srv := httptest.NewServer(NewWeb(WebConfig{Store: f.st}))
	defer srv.Close()
	if r := send(t, srv.URL, "POST", "/admin/login", "", url.Values{"token": {""}}); r.StatusCode != http.StatusUnauthorized || len(r.Cookies()) != 0 {
		t.Errorf("empty token login: %d %v", r.StatusCode, r.Cookies())
	}
	cookie := forge("", "0123456789abcdef0123456789abcdef-"+fmt.Sprint(time.Now().Add(time.Hour).Unix()))
	if r := send(t, srv.URL, "GET", "/admin/", cookie, nil); r.StatusCode != http.StatusSeeOther {
		t.Errorf("cookie signed with the empty token: %d, want a redirect to the login", r.StatusCode)
	}
}

func TestWebCSRF(t *testing.T) {
	f := newWebFixture(t, nil)
	cookie := f.login(t)
	other := f.login(t)
	otherCSRF := csrfOf(t, f.get(t, other, "/admin/jobs"))
	ownCSRF := csrfOf(t, f.get(t, cookie, "/admin/jobs"))
	path := fmt.Sprintf("/admin/jobs/%d/retry", f.jobs["job-b"])

	for _, tt := range []struct {
		name, cookie string
		form         url.Values
	}{
		{"no session", "", url.Values{"csrf": {otherCSRF}}},
		{"no csrf field", cookie, url.Values{}},
		{"empty csrf", cookie, url.Values{"csrf": {""}}},
		{"wrong csrf", cookie, url.Values{"csrf": {"AAAA"}}},
		{"csrf of another session", cookie, url.Values{"csrf": {otherCSRF}}},
		{"csrf in the query only", cookie, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := path
			if tt.form == nil {
				// The session's own token, but in the URL: only the
				// form body counts (a URL leaks through logs and Referer).
				p += "?csrf=" + url.QueryEscape(ownCSRF)
				tt.form = url.Values{}
			}
			if r := send(t, f.web.URL, "POST", p, tt.cookie, tt.form); r.StatusCode != http.StatusForbidden {
				t.Errorf("status %d, want 403", r.StatusCode)
			}
		})
	}
	j, err := f.st.Job(context.Background(), f.jobs["job-b"])
	if err != nil || j.State != store.JobDead {
		t.Fatalf("after rejected posts the job is %q (%v), want dead", j.State, err)
	}
}

func TestWebSecurityHeaders(t *testing.T) {
	f := newWebFixture(t, nil)
	cookie := f.login(t)
	for _, tt := range []struct{ method, path, cookie string }{
		{"GET", "/admin/login", ""},
		{"GET", "/admin/", ""},
		{"POST", "/admin/logout", ""},
		{"GET", "/admin/", cookie},
		{"GET", "/admin/instances/inst-1", cookie},
		{"GET", "/admin/calls", cookie},
		{"GET", "/admin/jobs", cookie},
		{"GET", "/admin/nothing", cookie},
	} {
		r := send(t, f.web.URL, tt.method, tt.path, tt.cookie, nil)
		h := r.Header
		if h.Get("Cache-Control") != "no-store" || h.Get("X-Frame-Options") != "DENY" ||
			h.Get("Content-Security-Policy") != "default-src 'self'; style-src 'unsafe-inline'" {
			t.Errorf("%s %s (%d): headers %v", tt.method, tt.path, r.StatusCode, h)
		}
	}
}

// rowIDs returns the values of attr in page order.
func rowIDs(page, attr string) []string {
	var ids []string
	for _, m := range regexp.MustCompile(attr+`="([^"]*)"`).FindAllStringSubmatch(page, -1) {
		ids = append(ids, m[1])
	}
	return ids
}

func TestWebPages(t *testing.T) {
	f := newWebFixture(t, nil)
	cookie := f.login(t)

	lists := []struct {
		path, attr, want string
	}{
		{"/admin/", "data-instance-id", "[inst-1 inst-2 inst-3 inst-4 inst-5]"},
		{"/admin/?status=failed", "data-instance-id", "[inst-3]"},
		{"/admin/?test=true", "data-instance-id", "[inst-2 inst-4]"},
		{"/admin/?limit=2&after=inst-2", "data-instance-id", "[inst-3 inst-4]"},
		{"/admin/calls", "data-call-id", fmt.Sprint(f.callIDs(t, ""))},
		{"/admin/calls?activity=queryInstance&instance=inst-1", "data-call-id", fmt.Sprint(f.callIDs(t, "?activity=queryInstance&instance=inst-1"))},
		{"/admin/jobs?state=dead", "data-job-id", fmt.Sprintf("[%d]", f.jobs["job-b"])},
		{"/admin/jobs", "data-job-id", fmt.Sprintf("[%d %d %d]", f.jobs["job-c"], f.jobs["job-b"], f.jobs["job-a"])},
		{"/admin/orders", "data-order-id", "[NOTIFIED3 NOTIFIED2 NOTIFIED1]"},
		{"/admin/orders?status=delivered", "data-order-id", "[NOTIFIED1]"},
		{"/admin/orders?order=NOTIFIED2", "data-order-id", "[NOTIFIED2]"},
	}
	for _, tt := range lists {
		t.Run(tt.path, func(t *testing.T) {
			if got := fmt.Sprint(rowIDs(f.get(t, cookie, tt.path), tt.attr)); got != tt.want {
				t.Errorf("%s: %s %s, want %s", tt.path, tt.attr, got, tt.want)
			}
		})
	}

	// Paging: a full page links to the next one, keeping the filters.
	page := f.get(t, cookie, "/admin/?limit=2&test=false")
	if !strings.Contains(page, `id="next"`) || !strings.Contains(page, "after=inst-3") || !strings.Contains(page, "test=false") {
		t.Errorf("instances page 1 of limit 2: no next link to after=inst-3 with test=false\n%s", page)
	}
	if page := f.get(t, cookie, "/admin/calls?limit=3"); !strings.Contains(page, `id="next"`) {
		t.Errorf("calls page of limit 3: no next link")
	}

	// The instance page: fields, password as "set", its calls with
	// expandable bodies, its jobs; the sealed password nowhere.
	page = f.get(t, cookie, "/admin/instances/inst-1")
	for _, want := range []string{`data-instance-id="inst-1"`, `id="password">set<`, "https://app/1", `data-testid="call-bodies"`, `data-testid="call-request"`} {
		if !strings.Contains(page, want) {
			t.Errorf("instance page lacks %q", want)
		}
	}
	if got := len(rowIDs(page, "data-call-id")); got != 4 {
		t.Errorf("instance page shows %d calls, want 4", got)
	}
	page3 := f.get(t, cookie, "/admin/instances/inst-3")
	if got := fmt.Sprint(rowIDs(page3, "data-job-id")); got != fmt.Sprintf("[%d %d %d]", f.jobs["job-c"], f.jobs["job-b"], f.jobs["job-a"]) {
		t.Errorf("inst-3 jobs %s", got)
	}
	for _, p := range []string{page, page3, f.get(t, cookie, "/admin/"), f.get(t, cookie, "/admin/calls"), f.get(t, cookie, "/admin/jobs")} {
		if strings.Contains(p, "SEALEDSECRET") || strings.Contains(p, token) {
			t.Fatalf("a secret is on a page:\n%s", p)
		}
	}
	// The orders page shows the masked order and the failure.
	orders := f.get(t, cookie, "/admin/orders")
	for _, want := range []string{"139****5678", "vendor rejected the event", `data-testid="order-json"`} {
		if !strings.Contains(orders, want) {
			t.Errorf("orders page lacks %q", want)
		}
	}
	// Without an instance service there is no re-run button.
	if strings.Contains(page3, `id="reprovision"`) {
		t.Error("reprovision form without a service")
	}
	// Only dead jobs get a Retry button.
	jobs := f.get(t, cookie, "/admin/jobs")
	if !strings.Contains(jobs, fmt.Sprintf(`id="retry-%d"`, f.jobs["job-b"])) || strings.Count(jobs, `data-testid="retry"`) != 1 {
		t.Errorf("jobs page: want exactly one Retry button, for job %d\n%s", f.jobs["job-b"], jobs)
	}

	for _, tt := range []struct {
		path string
		want int
	}{
		{"/admin/instances/nope", http.StatusNotFound},
		{"/admin/?status=paused", http.StatusBadRequest},
		{"/admin/calls?since=yesterday", http.StatusBadRequest},
		{"/admin/jobs?state=zombie", http.StatusBadRequest},
		{"/admin/orders?status=lost", http.StatusBadRequest},
		{"/admin/nothing", http.StatusNotFound},
	} {
		if r := send(t, f.web.URL, "GET", tt.path, cookie, nil); r.StatusCode != tt.want || !strings.Contains(r.body, `id="error"`) {
			t.Errorf("GET %s: %d, want %d with an error message", tt.path, r.StatusCode, tt.want)
		}
	}
}

// callIDs asks the JSON API for the ledger ids of query, as the console
// must show them.
func (f *webFixture) callIDs(t *testing.T, query string) []string {
	t.Helper()
	var out struct {
		Calls []struct {
			ID int64 `json:"id"`
		} `json:"calls"`
	}
	f.do(t, "GET", "/admin/api/calls"+query, &out)
	var ids []string
	for _, c := range out.Calls {
		ids = append(ids, fmt.Sprint(c.ID))
	}
	if len(ids) == 0 {
		t.Fatalf("no calls for %q", query)
	}
	return ids
}

func TestWebRetryJob(t *testing.T) {
	f := newWebFixture(t, nil)
	cookie := f.login(t)
	csrf := csrfOf(t, f.get(t, cookie, "/admin/jobs?state=dead"))
	r := send(t, f.web.URL, "POST", fmt.Sprintf("/admin/jobs/%d/retry", f.jobs["job-b"]), cookie, url.Values{"csrf": {csrf}})
	if r.StatusCode != http.StatusSeeOther {
		t.Fatalf("retry: %d\n%s", r.StatusCode, r.body)
	}
	j, err := f.st.Job(context.Background(), f.jobs["job-b"])
	if err != nil || j.State != store.JobAvailable || j.Attempts != 0 {
		t.Fatalf("job after retry: %+v %v, want available with fresh attempts", j, err)
	}
	if page := f.get(t, cookie, r.Header.Get("Location")); !strings.Contains(page, `id="notice"`) {
		t.Errorf("no notice after retry")
	}
	// A queued job is a conflict, shown as such.
	r = send(t, f.web.URL, "POST", fmt.Sprintf("/admin/jobs/%d/retry", f.jobs["job-a"]), cookie, url.Values{"csrf": {csrf}})
	if r.StatusCode != http.StatusConflict || !strings.Contains(r.body, "still queued or running") {
		t.Errorf("retry queued job: %d", r.StatusCode)
	}
}

// TestWebReprovision runs the real lifecycle service, as TestReprovision
// does: the failed instance offers the button, the form re-runs it and it
// becomes active; an active instance offers no button and a forced post is
// a conflict.
func TestWebReprovision(t *testing.T) {
	f := newWebFixture(t, nil)
	svc := runService(t, f.st)
	web := httptest.NewServer(NewWeb(WebConfig{Store: f.st, Service: svc, Token: token}))
	defer web.Close()
	f.web = web
	cookie := f.login(t)

	if page := f.get(t, cookie, "/admin/instances/inst-1"); strings.Contains(page, `id="reprovision"`) {
		t.Error("active instance offers a re-run")
	}
	page := f.get(t, cookie, "/admin/instances/inst-3")
	if !strings.Contains(page, `id="reprovision"`) {
		t.Fatalf("failed instance offers no re-run\n%s", page)
	}
	csrf := csrfOf(t, page)
	r := send(t, web.URL, "POST", "/admin/instances/inst-3/reprovision", cookie, url.Values{"csrf": {csrf}})
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/admin/instances/inst-3?done=reprovision" {
		t.Fatalf("reprovision: %d to %q\n%s", r.StatusCode, r.Header.Get("Location"), r.body)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		got, err := f.st.Instance(context.Background(), "inst-3")
		if err == nil && got.Status == store.StatusActive {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("inst-3 not active after reprovision: %+v %v", got, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	r = send(t, web.URL, "POST", "/admin/instances/inst-1/reprovision", cookie, url.Values{"csrf": {csrf}})
	if r.StatusCode != http.StatusConflict || !strings.Contains(r.body, "cannot be reprovisioned") {
		t.Errorf("reprovision active instance: %d", r.StatusCode)
	}
}

// TestWebSecureCookieBehindProxy: TLS ends at a proxy, koobridge sees plain
// HTTP, and SecureCookie still marks the cookie Secure.
func TestWebSecureCookieBehindProxy(t *testing.T) {
	f := newFixture(t)
	srv := httptest.NewServer(NewWeb(WebConfig{Store: f.st, Token: token, SecureCookie: true}))
	defer srv.Close()
	r := send(t, srv.URL, "POST", "/admin/login", "", url.Values{"token": {token}})
	if r.StatusCode != http.StatusSeeOther || len(r.Cookies()) != 1 || !r.Cookies()[0].Secure {
		t.Fatalf("login behind a TLS proxy: %d cookies %+v, want a Secure cookie", r.StatusCode, r.Cookies())
	}
}
