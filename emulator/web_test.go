package emulator

import (
	"html"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
)

// page GETs a web page and returns its status and HTML.
func (w *webEnv) page(path string) (int, string) {
	w.t.Helper()
	resp, err := w.client.Get(w.srv.URL + path)
	if err != nil {
		w.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		w.t.Fatalf("GET %s: read: %v", path, err)
	}
	return resp.StatusCode, string(raw)
}

// form posts a form as a browser on the same origin would (unless header
// says otherwise) and returns the status and the redirect target.
func (w *webEnv) form(path string, v url.Values, header ...string) (int, string) {
	w.t.Helper()
	req, err := http.NewRequest("POST", w.srv.URL+path, strings.NewReader(v.Encode()))
	if err != nil {
		w.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", w.srv.URL)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := w.client.Do(req)
	if err != nil {
		w.t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("Location")
}

// formPage posts a form like form and returns the page answered.
func (w *webEnv) formPage(path string, v url.Values) (int, string) {
	w.t.Helper()
	req, err := http.NewRequest("POST", w.srv.URL+path, strings.NewReader(v.Encode()))
	if err != nil {
		w.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", w.srv.URL)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := w.client.Do(req)
	if err != nil {
		w.t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		w.t.Fatalf("POST %s: read: %v", path, err)
	}
	return resp.StatusCode, string(b)
}

// flash returns the text of the #flash element on the page a redirect
// target names, "" when there is none.
func (w *webEnv) flash(location string) string {
	w.t.Helper()
	if _, err := url.Parse(location); err != nil {
		w.t.Fatalf("Location %q: %v", location, err)
	}
	_, body := w.page(location)
	const open = `<p id="flash" role="status">`
	i := strings.Index(body, open)
	if i < 0 {
		return ""
	}
	text := body[i+len(open):]
	if j := strings.Index(text, "</p>"); j >= 0 {
		text = text[:j]
	}
	return html.UnescapeString(text)
}

// rowHTML returns the table row that carries attr.
func rowHTML(body, attr string) string {
	i := strings.Index(body, attr)
	if i < 0 {
		return ""
	}
	row := body[i:]
	if j := strings.Index(row, "</tr>"); j >= 0 {
		row = row[:j]
	}
	return row
}

func TestWebDashboard(t *testing.T) {
	w := startWeb(t)
	resp, err := w.client.Get(w.srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if csp := resp.Header.Get("Content-Security-Policy"); csp != "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'" {
		t.Errorf("Content-Security-Policy = %q", csp)
	}
	if xfo := resp.Header.Get("X-Frame-Options"); xfo != "DENY" {
		t.Errorf("X-Frame-Options = %q, want DENY", xfo)
	}

	status, body := w.page("/")
	if status != http.StatusOK {
		t.Fatalf("GET /: %d", status)
	}
	for _, p := range w.e.Products() {
		for _, want := range []string{`id="purchase-` + p.ID + `"`, `data-product-id="` + p.ID + `"`, `id="test-` + p.ID + `"`} {
			if !strings.Contains(body, want) {
				t.Errorf("dashboard lacks %s", want)
			}
		}
		if trial := strings.Contains(body, `id="trial-`+p.ID+`"`); trial != (p.TrialDays > 0) {
			t.Errorf("product %s (TrialDays %d): trial checkbox shown = %v", p.ID, p.TrialDays, trial)
		}
	}
	for _, want := range []string{`id="subscriptions"`, `id="messages"`, `id="advance"`, `id="clock-now"`} {
		if !strings.Contains(body, want) {
			t.Errorf("dashboard lacks %s", want)
		}
	}
	if strings.Contains(body, "<script") {
		t.Error("dashboard carries a script")
	}
}

func TestWebPurchaseAndPlay(t *testing.T) {
	w := startWeb(t)
	prod := w.product(protocol.ChargingPeriod)
	status, loc := w.form("/purchase", url.Values{"product": {prod.ID}})
	if status != http.StatusSeeOther || !strings.HasPrefix(loc, "/?") {
		t.Fatalf("purchase form: %d Location %q, want 303 to /", status, loc)
	}
	subs := w.e.Subscriptions()
	if len(subs) != 1 {
		t.Fatalf("subscriptions after the form: %+v, want 1", subs)
	}
	sub := subs[0]
	if msg := w.flash(loc); !strings.HasPrefix(msg, "purchase "+sub.ID+":") || !strings.Contains(msg, "newInstance 000000") || !strings.Contains(msg, sub.InstanceID) {
		t.Errorf("flash = %q, want the purchase of %s with newInstance 000000 and instance %s", msg, sub.ID, sub.InstanceID)
	}

	_, body := w.page(loc)
	for _, want := range []string{`id="flash"`, `data-subscription-id="` + sub.ID + `"`, sub.InstanceID, `id="play-` + sub.ID + `"`, `<option value="renewal">`} {
		if !strings.Contains(body, want) {
			t.Errorf("dashboard after purchase lacks %s", want)
		}
	}
	if strings.Contains(body, `<option value="arrears-freeze">`) {
		t.Error("a PERIOD subscription offers arrears-freeze")
	}

	status, loc = w.form("/subscriptions/"+sub.ID+"/play", url.Values{"scenario": {"renewal"}})
	if status != http.StatusSeeOther || !strings.HasPrefix(w.flash(loc), "renewal "+sub.ID+":") {
		t.Fatalf("play form: %d Location %q, want 303 with the renewal", status, loc)
	}
	if after, _ := w.e.Subscription(sub.ID); !after.ExpireTime.After(sub.ExpireTime) {
		t.Errorf("expiry after renewal %v, want after %v", after.ExpireTime, sub.ExpireTime)
	}

	if status, _ := w.form("/subscriptions/"+sub.ID+"/play", url.Values{"scenario": {"arrears-freeze"}}); status != http.StatusConflict {
		t.Errorf("play of a misfit scenario: %d, want 409", status)
	}
	// A trial is offered the conversion, not the paid-only renewal.
	if prod.TrialDays > 0 {
		status, loc := w.form("/purchase", url.Values{"product": {prod.ID}, "trial": {"1"}, "test": {"1"}})
		subs := w.e.Subscriptions()
		trial := subs[len(subs)-1]
		if status != http.StatusSeeOther || !trial.Trial || !trial.Test || !strings.HasPrefix(w.flash(loc), "trial "+trial.ID+":") {
			t.Fatalf("trial purchase form: %d %q, subscription %+v", status, loc, trial)
		}
		_, body := w.page("/")
		row := rowHTML(body, `data-subscription-id="`+trial.ID+`"`)
		if !strings.Contains(row, `<option value="trial-to-formal">`) || strings.Contains(row, `<option value="renewal">`) {
			t.Errorf("trial row offers the wrong scenarios: %s", row)
		}
	}
	if status, _ := w.form("/purchase", url.Values{"product": {"NOPE"}}); status != http.StatusNotFound {
		t.Errorf("purchase of an unknown product: %d, want 404", status)
	}
}

func TestWebMessagePage(t *testing.T) {
	w := startWeb(t)
	run := w.buy(PurchaseRequest{ProductID: w.product(protocol.ChargingPeriod).ID})
	id := run.Messages[0]
	m, _ := w.e.Message(id)
	a := m.Attempts[0]

	_, dash := w.page("/")
	if !strings.Contains(dash, `data-message-id="`+id+`"`) || !strings.Contains(dash, `href="/messages/`+id+`"`) {
		t.Errorf("dashboard does not list message %s with a link", id)
	}

	status, body := w.page("/messages/" + id)
	if status != http.StatusOK {
		t.Fatalf("GET /messages/%s: %d", id, status)
	}
	text := html.UnescapeString(body)
	bodySign := a.Response.Header[sign.BodySignHeader]
	if bodySign == "" {
		t.Fatalf("the seller's answer has no Body-Sign: %+v", a.Response)
	}
	for _, want := range []string{a.Request.Body, a.Request.URL, a.Response.Body, sign.BodySignHeader + ": " + bodySign, `id="redrive"`, "重新启动"} {
		if !strings.Contains(text, want) {
			t.Errorf("message page lacks %q", want)
		}
	}

	status, loc := w.form("/messages/"+id+"/redrive", nil)
	if status != http.StatusSeeOther || !strings.HasPrefix(loc, "/messages/"+id+"?") || !strings.Contains(w.flash(loc), "attempt 2") {
		t.Fatalf("re-drive form: %d Location %q, want 303 back to the message", status, loc)
	}
	if m, _ := w.e.Message(id); len(m.Attempts) != 2 {
		t.Errorf("after re-drive: %d attempts, want 2", len(m.Attempts))
	}
	if _, body := w.page(loc); !strings.Contains(body, `data-attempt="2"`) {
		t.Error("message page after re-drive lacks the second attempt")
	}

	if status, _ := w.page("/messages/NOPE"); status != http.StatusNotFound {
		t.Errorf("GET /messages/NOPE: %d, want 404", status)
	}
	if status, _ := w.page("/no/such/page"); status != http.StatusNotFound {
		t.Errorf("GET /no/such/page: %d, want 404", status)
	}
}

func TestWebAdvanceClock(t *testing.T) {
	w := startWeb(t)
	before := w.e.Now()
	status, loc := w.form("/clock/advance", url.Values{"duration": {"48h"}})
	if status != http.StatusSeeOther || !strings.Contains(w.flash(loc), "clock advanced by 2 d to ") {
		t.Fatalf("advance form: %d Location %q", status, loc)
	}
	if d := w.e.Now().Sub(before); d < 48*time.Hour {
		t.Errorf("clock moved %v, want at least 48h", d)
	}
	// Review of issue 16, item 2: the form says what the parser found
	// (it said "want a duration like …" of every refusal).
	for _, tt := range []struct{ duration, want string }{
		{"-1h", "duration must be positive, e.g. 24h"},
		{"soon", `duration: &#34;soon&#34; is not a duration like 2 s or 1 min 30 s`},
		{"2562048h", `duration: &#34;2562048h&#34; is too long a duration (at most 292 years)`},
		{"30 s 1 min", `duration: &#34;30 s 1 min&#34; is ambiguous: write each unit once, largest first, like 1 h 30 min`},
	} {
		if status, page := w.formPage("/clock/advance", url.Values{"duration": {tt.duration}}); status != http.StatusBadRequest || !strings.Contains(page, tt.want) {
			t.Errorf("advance by %s: %d, want 400 with %q in\n%s", tt.duration, status, tt.want, page)
		}
	}
}

func TestWebFaults(t *testing.T) {
	w := startWeb(t)
	status, loc := w.form("/faults", url.Values{
		"openapiLatency": {"1.5s"}, "openapiStatus": {"503"}, "openapiCount": {"3"},
		"duplicates": {"2"}, "clockSkew": {"-2m"}, "openapiTimeout": {"1"},
		"oneaccessTokenLatency": {"20s"}, "oneaccessTokenFail": {"1"},
	})
	if status != http.StatusSeeOther || w.flash(loc) != "faults saved" {
		t.Fatalf("faults form: %d Location %q", status, loc)
	}
	want := Faults{OpenAPILatency: 1500 * time.Millisecond, OpenAPIStatus: 503, OpenAPITimeout: true, OpenAPICount: 3, Duplicates: 2, ClockSkew: -2 * time.Minute,
		OneAccessTokenLatency: 20 * time.Second, OneAccessTokenFail: true}
	if got := w.e.Faults(); got != want {
		t.Errorf("Faults() = %+v, want %+v", got, want)
	}
	_, body := w.page("/faults")
	for _, want := range []string{`id="faults"`, `value="1.5 s"`, `value="-2 min"`, `value="503"`, `id="openapiTimeout" value="1" checked`, `value="20 s"`, `id="oneaccessTokenFail" value="1" checked`} {
		if !strings.Contains(body, want) {
			t.Errorf("faults page lacks %s", want)
		}
	}
	if status, _ := w.form("/faults", url.Values{"duplicates": {"many"}}); status != http.StatusBadRequest {
		t.Errorf("duplicates=many: %d, want 400", status)
	}
	if got := w.e.Faults(); got != want {
		t.Errorf("a refused form changed the faults to %+v", got)
	}
	if status, loc := w.form("/faults", url.Values{}); status != http.StatusSeeOther || w.flash(loc) != "faults switched off" || w.e.Faults() != (Faults{}) {
		t.Errorf("empty faults form: %d %q, faults %+v; want all off", status, loc, w.e.Faults())
	}
}

func TestWebUsagePage(t *testing.T) {
	w := startWeb(t)
	if status, _ := w.do("GET", "/api/mkp-openapi-public/global/v1/order/query?orderId=CS1", nil); status != http.StatusUnauthorized {
		t.Fatalf("unsigned Query Order: %d, want 401", status)
	}
	status, body := w.page("/usage")
	if status != http.StatusOK {
		t.Fatalf("GET /usage: %d", status)
	}
	for _, want := range []string{`id="usage"`, `id="openapi-requests"`, "/api/mkp-openapi-public/global/v1/order/query", "APIGW.0301"} {
		if !strings.Contains(body, want) {
			t.Errorf("usage page lacks %s", want)
		}
	}
}

func TestWebCrossSitePost(t *testing.T) {
	w := startWeb(t)
	prod := w.product(protocol.ChargingPeriod)
	tests := []struct {
		name   string
		header []string
	}{
		{"Sec-Fetch-Site cross-site", []string{"Sec-Fetch-Site", "cross-site", "Origin", ""}},
		{"Origin of another host", []string{"Sec-Fetch-Site", "", "Origin", "https://evil.example"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if status, _ := w.form("/purchase", url.Values{"product": {prod.ID}}, tt.header...); status != http.StatusForbidden {
				t.Errorf("cross-site purchase form: %d, want 403", status)
			}
			if status, _ := w.do("PUT", "/api/emulator/faults", `{"duplicates":1}`, tt.header...); status != http.StatusForbidden {
				t.Errorf("cross-site PUT faults: %d, want 403", status)
			}
		})
	}
	if n := len(w.e.Subscriptions()); n != 0 {
		t.Errorf("%d subscriptions after cross-site posts, want 0", n)
	}
	if f := w.e.Faults(); f != (Faults{}) {
		t.Errorf("faults after cross-site PUTs: %+v", f)
	}
	// The same form from the same origin goes through.
	if status, _ := w.form("/purchase", url.Values{"product": {prod.ID}}); status != http.StatusSeeOther {
		t.Errorf("same-origin purchase form: %d, want 303", status)
	}
}

// Finding 9: the flash is the emulator's own text; a link cannot make the
// page say anything.
func TestWebFlashNotFromURL(t *testing.T) {
	w := startWeb(t)
	for _, q := range []string{"?flash=Your+account+is+locked", "?flash=0123456789abcdef01234567"} {
		if _, body := w.page("/" + q); strings.Contains(body, `id="flash"`) {
			t.Errorf("GET /%s shows a flash", q)
		}
	}
	_, loc := w.form("/purchase", url.Values{"product": {w.product(protocol.ChargingOneTime).ID}})
	sub := w.e.Subscriptions()[0]
	if strings.Contains(loc, "purchase") || strings.Contains(loc, sub.ID) {
		t.Errorf("the redirect %q carries the flash text", loc)
	}
	if msg := w.flash(loc); !strings.HasPrefix(msg, "purchase "+sub.ID+":") {
		t.Errorf("flash %q, want the purchase of %s", msg, sub.ID)
	}
}
