package console

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/koobridge/koobridge/internal/jobs"
	"github.com/koobridge/koobridge/internal/license"
	"github.com/koobridge/koobridge/internal/openapi"
	"github.com/koobridge/koobridge/internal/openapi/openapitest"
	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/provision"
)

// newLicenseService returns the real license service over st, the
// console's DeviceReleaser, with a job runner that is never started.
func newLicenseService(t *testing.T, st store.Store) *license.Service {
	t.Helper()
	api := openapitest.NewServer(t, "AK", "SK")
	client, err := openapi.New(openapi.Config{BaseURL: api.URL(), AK: "AK", SK: "SK"})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := license.New(license.Config{
		Store: st, OpenAPI: client, Provisioner: provision.NewDemo(""), Jobs: jobs.NewRunner(jobs.Config{Store: st}),
		DeviceKey: bytes.Repeat([]byte("k"), license.MinDeviceKey), Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// releaserFunc is a DeviceReleaser for the failures the real one cannot
// be made to give on demand; it records what it was asked for.
type releaserFunc struct {
	mu    sync.Mutex
	calls []string
	f     func() error
}

func (r *releaserFunc) ReleaseDevice(_ context.Context, code string, test bool, device string) error {
	r.mu.Lock()
	r.calls = append(r.calls, fmt.Sprintf("%s/%t/%s", code, test, device))
	r.mu.Unlock()
	return r.f()
}

// deleteReq sends DELETE path with the token and returns the status, the
// Content-Type and the body.
func deleteReq(t *testing.T, base, path string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodDelete, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

// deviceHashes lists the device hashes of a code.
func deviceHashes(t *testing.T, st store.Store, code string, test bool) []string {
	t.Helper()
	devs, err := st.LicenseDevices(context.Background(), code, test)
	if err != nil {
		t.Fatal(err)
	}
	out := []string{}
	for _, d := range devs {
		out = append(out, d.Device)
	}
	return out
}

func TestReleaseLicenseDevice(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			st := d.open(t)
			s := seedLicenses(t, st)
			// The test twin of LC-A has a device of the same hash as
			// the real code's first: a release of one keeps the other.
			if err := st.Tx(context.Background(), func(ctx context.Context, tx store.Tx) error {
				_, err := tx.UpsertLicenseDevice(ctx, store.LicenseDevice{Code: "LC-A", Test: true, Device: s.dev1})
				return err
			}); err != nil {
				t.Fatal(err)
			}
			logs := &logBuffer{}
			srv := httptest.NewServer(NewAPI(APIConfig{Store: st, Devices: newLicenseService(t, st), Token: token,
				Logger: slog.New(slog.NewTextHandler(logs, nil))}))
			defer srv.Close()
			dev := func(code, device, query string) string {
				return "/admin/api/licenses/" + url.PathEscape(code) + "/devices/" + device + query
			}
			for _, tc := range []struct {
				name, path string
				status     int
				msg        string // the error; "" for 204
			}{
				{"release", dev("LC-A", s.dev2, ""), http.StatusNoContent, ""},
				{"release again", dev("LC-A", s.dev2, ""), http.StatusNotFound, "device " + s.dev2 + ` of license code "LC-A" not found`},
				{"release of the test twin", dev("LC-A", s.dev1, "?test=true"), http.StatusNoContent, ""},
				{"device only the real code has", dev("LC-A", s.dev2, "?test=true"), http.StatusNotFound,
					"device " + s.dev2 + ` of test license code "LC-A" not found`},
				{"code without devices", dev("LC-E/1 é", s.dev1, ""), http.StatusNotFound, "device " + s.dev1 + ` of license code "LC-E/1 é" not found`},
				{"unknown code", dev("nope", s.dev1, ""), http.StatusNotFound, `license code "nope" not found`},
				{"unknown test code", dev("LC-B", s.dev1, "?test=true"), http.StatusNotFound, `test license code "LC-B" not found`},
				{"not a device hash", dev("LC-A", "fp-1", ""), http.StatusBadRequest, "device: want the 64 hexadecimal digits of a device hash, as the license code lists them"},
				{"upper-case hash", dev("LC-A", strings.ToUpper(s.dev1), ""), http.StatusBadRequest, "device: want the 64 hexadecimal digits of a device hash, as the license code lists them"},
				{"test not a boolean", dev("LC-A", s.dev1, "?test=maybe"), http.StatusBadRequest, "test: want true or false"},
				{"test twice", dev("LC-A", s.dev1, "?test=true&test=false"), http.StatusBadRequest, "test: given more than once"},
				{"control character in the code", dev("LC\x01A", s.dev1, ""), http.StatusBadRequest, "license code: invalid UTF-8 or control characters"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					status, ct, body := deleteReq(t, srv.URL, tc.path)
					if status != tc.status {
						t.Fatalf("DELETE %s: %d %s, want %d", tc.path, status, body, tc.status)
					}
					if tc.msg == "" {
						if body != "" {
							t.Errorf("204 with a body %q", body)
						}
						return
					}
					if !strings.HasPrefix(ct, "application/json") || body == "" || !strings.Contains(body, `"error": `+jsonString(t, tc.msg)) {
						t.Errorf("DELETE %s: %s %s, want the error %q", tc.path, ct, body, tc.msg)
					}
				})
			}
			// Exactly the two releases took effect: the real code keeps its
			// first device, the test twin has none.
			if got := deviceHashes(t, st, "LC-A", false); fmt.Sprint(got) != "["+s.dev1+"]" {
				t.Errorf("devices of LC-A %v, want [%s]", got, s.dev1)
			}
			if got := deviceHashes(t, st, "LC-A", true); len(got) != 0 {
				t.Errorf("devices of the test LC-A %v, want none", got)
			}
			if got := logs.String(); strings.Count(got, "admin released license device") != 2 ||
				!strings.Contains(got, "license=LC-A test=false device="+s.dev2+` via="admin api"`) {
				t.Errorf("want one audit line per release:\n%s", got)
			}
			// The route is DELETE only.
			var e errorBody
			f := &fixture{srv: srv}
			if code := f.do(t, http.MethodGet, dev("LC-A", s.dev1, ""), &e); code != http.StatusMethodNotAllowed && code != http.StatusNotFound {
				t.Errorf("GET of a device: %d", code)
			}
			if got := deviceHashes(t, st, "LC-A", false); len(got) != 1 {
				t.Errorf("a GET changed the devices: %v", got)
			}
		})
	}
}

// jsonString is s as the API writes it in a JSON string.
func jsonString(t *testing.T, s string) string {
	t.Helper()
	return mustJSON(t, s)
}

// TestReleaseLicenseDeviceFailures: without a releaser the API answers 500
// and releases nothing; a releaser that fails otherwise is a 500 whose
// cause stays in the log; one that lost the device meanwhile a 404.
// Without the token, nothing is released.
func TestReleaseLicenseDeviceFailures(t *testing.T) {
	f := newFixture(t)
	s := seedLicenses(t, f.st)
	path := "/admin/api/licenses/LC-A/devices/" + s.dev1
	if status, _, body := deleteReq(t, f.srv.URL, path); status != http.StatusInternalServerError || !strings.Contains(body, "license device release is not available") {
		t.Errorf("no releaser: %d %s", status, body)
	}
	logs := &logBuffer{}
	for _, tc := range []struct {
		err    error
		status int
		msg    string
	}{
		{errors.New("license: release device: database is locked at /var/lib/koobridge/k.db"), http.StatusInternalServerError, "internal error: release license device"},
		{fmt.Errorf("license: release device: %w", store.ErrNotFound), http.StatusNotFound, "device " + s.dev1 + ` of license code "LC-A" not found`},
	} {
		r := &releaserFunc{f: func() error { return tc.err }}
		srv := httptest.NewServer(NewAPI(APIConfig{Store: f.st, Devices: r, Token: token, Logger: slog.New(slog.NewTextHandler(logs, nil))}))
		status, _, body := deleteReq(t, srv.URL, path)
		if status != tc.status || !strings.Contains(body, jsonString(t, tc.msg)) {
			t.Errorf("releaser failing with %v: %d %s, want %d %q", tc.err, status, body, tc.status, tc.msg)
		}
		if fmt.Sprint(r.calls) != "[LC-A/false/"+s.dev1+"]" {
			t.Errorf("releaser called for %v", r.calls)
		}
		// Without the token the releaser is not reached.
		req, _ := http.NewRequest(http.MethodDelete, srv.URL+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || len(r.calls) != 1 {
			t.Errorf("DELETE without the token: %d, releaser called %v", resp.StatusCode, r.calls)
		}
		srv.Close()
	}
	if got := logs.String(); !strings.Contains(got, "database is locked") || strings.Contains(got, "admin released license device") {
		t.Errorf("want the cause logged and no audit line:\n%s", got)
	}
	if got := deviceHashes(t, f.st, "LC-A", false); len(got) != 2 {
		t.Errorf("devices of LC-A after failed releases %v, want both", got)
	}
}

// TestWebReleaseLicenseDevice: the license page offers Release seat on
// each device when the console has a releaser; the form needs the CSRF
// token and a session, releases through the real license service and
// returns with the notice; a test code keeps ?test=true. Without a
// releaser there is no button and a forced post is a 500.
func TestWebReleaseLicenseDevice(t *testing.T) {
	f := newWebFixture(t, nil)
	s := seedLicenses(t, f.st)
	if err := f.st.Tx(context.Background(), func(ctx context.Context, tx store.Tx) error {
		_, err := tx.UpsertLicenseDevice(ctx, store.LicenseDevice{Code: "LC-A", Test: true, Device: s.dev2})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	web := httptest.NewServer(NewWeb(WebConfig{Store: f.st, Devices: newLicenseService(t, f.st), Token: token,
		Logger: slog.New(slog.NewTextHandler(logs, nil)), Now: f.clock.Now}))
	defer web.Close()
	wf := &webFixture{fixture: f.fixture, web: web, clock: f.clock}
	cookie := wf.login(t)

	page := wf.get(t, cookie, "/admin/licenses/LC-A")
	for _, dev := range []string{s.dev1, s.dev2} {
		want := `<form method="post" action="/admin/licenses/LC-A/devices/` + dev + `/release" data-testid="device-release">`
		if !strings.Contains(page, want) {
			t.Errorf("license page lacks %q", want)
		}
	}
	if n := strings.Count(page, `data-testid="device-release"`); n != 2 {
		t.Errorf("license page has %d Release seat forms, want 2", n)
	}
	// The devices table keeps its cells.
	if got := rowsOf(page, "data-device"); len(got) != 2 || !strings.HasSuffix(got[1], "|not yet") {
		t.Errorf("devices table %v", got)
	}
	csrf := csrfOf(t, page)
	release := "/admin/licenses/LC-A/devices/" + s.dev2 + "/release"

	// No or a wrong CSRF token, or no session: refused, nothing released.
	for _, tc := range []struct {
		name, cookie string
		form         url.Values
	}{
		{"no CSRF", cookie, url.Values{}},
		{"forged CSRF", cookie, url.Values{"csrf": {"forged"}}},
		{"no session", "", url.Values{"csrf": {csrf}}},
	} {
		if resp := send(t, web.URL, "POST", release, tc.cookie, tc.form); resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", tc.name, resp.StatusCode)
		}
	}
	if got := deviceHashes(t, f.st, "LC-A", false); len(got) != 2 {
		t.Fatalf("refused posts released a device: %v", got)
	}

	resp := send(t, web.URL, "POST", release, cookie, url.Values{"csrf": {csrf}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/admin/licenses/LC-A?done=device-release" {
		t.Fatalf("release: %d to %q\n%s", resp.StatusCode, resp.Header.Get("Location"), resp.body)
	}
	after := wf.get(t, cookie, resp.Header.Get("Location"))
	if !strings.Contains(after, `<p class="notice" id="notice">Device released: its seat is free, and the device must activate again to be served.</p>`) ||
		strings.Contains(after, `data-device="`+s.dev2+`"`) || !strings.Contains(after, `data-device="`+s.dev1+`"`) {
		t.Errorf("after the release the page must show the notice and only the other device\n%s", after)
	}
	if got := deviceHashes(t, f.st, "LC-A", true); fmt.Sprint(got) != "["+s.dev2+"]" {
		t.Errorf("the release touched the test twin: %v", got)
	}

	// A test code: the form and the redirect keep ?test=true.
	testPage := wf.get(t, cookie, "/admin/licenses/LC-A?test=true")
	testRelease := "/admin/licenses/LC-A/devices/" + s.dev2 + "/release?test=true"
	if !strings.Contains(testPage, `action="`+testRelease+`"`) {
		t.Errorf("test license page lacks the form to %s\n%s", testRelease, testPage)
	}
	resp = send(t, web.URL, "POST", testRelease, cookie, url.Values{"csrf": {csrf}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/admin/licenses/LC-A?test=true&done=device-release" {
		t.Fatalf("release of a test device: %d to %q\n%s", resp.StatusCode, resp.Header.Get("Location"), resp.body)
	}
	if got := deviceHashes(t, f.st, "LC-A", true); len(got) != 0 {
		t.Errorf("devices of the test LC-A %v, want none", got)
	}
	if emptied := wf.get(t, cookie, "/admin/licenses/LC-A?test=true"); !strings.Contains(emptied, `<td colspan="5" class="muted">No devices.</td>`) {
		t.Errorf("an emptied devices table spans the button column too\n%s", emptied)
	}

	// Released already, unknown code, bad hash: the error page.
	for _, tc := range []struct {
		path   string
		status int
		msg    string
	}{
		{release, http.StatusNotFound, "device " + s.dev2 + ` of license code &#34;LC-A&#34; not found`},
		{"/admin/licenses/nope/devices/" + s.dev1 + "/release", http.StatusNotFound, `license code &#34;nope&#34; not found`},
		{"/admin/licenses/LC-A/devices/xyz/release", http.StatusBadRequest, "device: want the 64 hexadecimal digits"},
	} {
		resp := send(t, web.URL, "POST", tc.path, cookie, url.Values{"csrf": {csrf}})
		if resp.StatusCode != tc.status || !strings.Contains(resp.body, `id="error"`) || !strings.Contains(resp.body, tc.msg) {
			t.Errorf("POST %s: %d, want %d with %q\n%s", tc.path, resp.StatusCode, tc.status, tc.msg, resp.body)
		}
	}
	if got := logs.String(); strings.Count(got, "admin released license device") != 2 || !strings.Contains(got, `via="admin console"`) {
		t.Errorf("want one audit line per release:\n%s", got)
	}

	// The console without a releaser (f.web): no button, a forced post is a 500.
	cookie2 := f.login(t)
	page2 := f.get(t, cookie2, "/admin/licenses/LC-A")
	if strings.Contains(page2, `data-testid="device-release"`) || strings.Contains(page2, "Release seat") {
		t.Error("a console without a releaser offers Release seat")
	}
	resp = send(t, f.web.URL, "POST", "/admin/licenses/LC-A/devices/"+s.dev1+"/release", cookie2, url.Values{"csrf": {csrfOf(t, page2)}})
	if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(resp.body, "license device release is not available") {
		t.Errorf("release without a releaser: %d\n%s", resp.StatusCode, resp.body)
	}
	if got := deviceHashes(t, f.st, "LC-A", false); fmt.Sprint(got) != "["+s.dev1+"]" {
		t.Errorf("devices of LC-A %v, want [%s]", got, s.dev1)
	}
}
