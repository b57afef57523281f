package emulator

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/koobridge/koobridge/internal/durationtext"
	"github.com/koobridge/koobridge/internal/pagehdr"
)

// Handler serves the emulator on one port:
//
//   - the mocked Open API on KooGallery's paths (/api/mkp-openapi-public/
//     and /rest/marketplace/), the same as OpenAPIHandler;
//   - the JSON API under /api/emulator/ (products, scenarios,
//     subscriptions, purchases, plays, messages and re-drives, faults, the
//     clock, usage billed and received, the Open API request log, license codes, test
//     license codes and what the license Open API recorded);
//   - the web page: a server-rendered dashboard at / to buy products, play
//     scenarios on subscriptions and advance the clock, a page per message
//     at /messages/{id} with every attempt and a re-drive button, /faults,
//     /usage and /licenses (license codes, test codes, uploads). It needs
//     no JavaScript and no build step;
//   - each tenant's identity center (OneAccess) under /oneaccess/<tenantCode>/,
//     the same as OneAccessHandler, with its own login page and session
//     cookie.
//
// The emulator has no login: anyone who reaches the port can buy, play,
// re-drive and switch faults on. It is a test tool meant to listen on
// 127.0.0.1 (or inside a CI job), never on a public address. Cross-site
// form posts from other web pages are refused (http.CrossOriginProtection)
// everywhere except on the Open API paths, which sellers call server to
// server, and on the identity centers, whose login forms check it
// themselves.
func (e *Emulator) Handler() http.Handler {
	h := &site{e: e, flashes: newFlashes()}
	mux := http.NewServeMux()
	h.routeAPI(mux)
	h.routeWeb(mux)

	openAPI := e.OpenAPIHandler()
	top := http.NewServeMux()
	top.Handle("/api/mkp-openapi-public/", openAPI)
	top.Handle("/rest/marketplace/", openAPI)
	top.Handle(OneAccessPath, e.OneAccessHandler())
	top.Handle("/", http.NewCrossOriginProtection().Handler(pagehdr.Secure(pageCSP, mux)))
	return top
}

// site serves the web page and the JSON API. Its methods live apart from
// Emulator's so that the two never collide.
// pageCSP forbids scripts and foreign resources (the pages need neither)
// and lets forms post back here only.
const pageCSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"

type site struct {
	e       *Emulator
	flashes *flashes
}

// dashboardMessages is how many messages the dashboard shows.
const dashboardMessages = 50

//go:embed templates/*.html
var templateFS embed.FS

// pages are the web page's templates, each parsed with the shared layout.
var pages = func() map[string]*template.Template {
	funcs := template.FuncMap{
		"when":     formatTime,
		"dur":      durationtext.Format,
		"durInput": durationtext.Input,
		"msgPath":  func(id string) string { return "/messages/" + url.PathEscape(id) },
		"playPath": func(id string) string {
			return "/subscriptions/" + url.PathEscape(id) + "/play"
		},
		"redrivePath": func(id string) string { return "/messages/" + url.PathEscape(id) + "/redrive" },
		"testLicensePath": func(code string) string {
			return "/test-license-codes/" + url.PathEscape(code)
		},
		"inc":       func(i int) int { return i + 1 },
		"attemptNo": attemptNo,
		"attemptCount": func(m Message) int {
			return len(m.Attempts) + m.DroppedAttempts
		},
		"keepFirst": func() int { return keepFirst },
	}
	m := map[string]*template.Template{}
	for _, name := range []string{"dashboard", "message", "faults", "usage", "licenses", "error"} {
		m[name] = template.Must(template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html"))
	}
	return m
}()

func (h *site) routeWeb(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", h.dashboardPage)
	mux.HandleFunc("POST /purchase", h.purchaseForm)
	mux.HandleFunc("POST /subscriptions/{id}/play", h.playForm)
	mux.HandleFunc("POST /clock/advance", h.advanceForm)
	mux.HandleFunc("GET /messages/{id}", h.messagePage)
	mux.HandleFunc("POST /messages/{id}/redrive", h.redriveForm)
	mux.HandleFunc("GET /faults", h.faultsPage)
	mux.HandleFunc("POST /faults", h.faultsForm)
	mux.HandleFunc("GET /usage", h.usagePage)
	mux.HandleFunc("GET /licenses", h.licensesPage)
	mux.HandleFunc("POST /test-license-codes", h.testLicenseForm)
	mux.HandleFunc("POST /test-license-codes/{code}", h.testLicenseValidityForm)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.renderError(w, http.StatusNotFound, "no such page: "+r.Method+" "+r.URL.Path)
	})
}

// page is what the layout needs on every page.
type page struct {
	Title string
	Nav   string // which navigation link is current
	Flash string
	Now   time.Time
}

// newPage fills the layout; the flash is the one the ?flash= key names,
// if this site made it (a link cannot make the page say anything else).
func (h *site) newPage(r *http.Request, title, nav string) page {
	return page{Title: title, Nav: nav, Flash: h.flashes.get(r.URL.Query().Get("flash")), Now: h.e.Now()}
}

// render executes a page into a buffer first, so a template error becomes
// a clean 500 instead of half a page.
func (h *site) render(w http.ResponseWriter, status int, name string, data any) {
	var buf bytes.Buffer
	if err := pages[name].ExecuteTemplate(&buf, "layout", data); err != nil {
		h.webLog("render "+name, err)
		http.Error(w, "internal error: render page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}

func (h *site) webLog(what string, err error) {
	if l := h.e.Config().Logger; l != nil {
		l.Error("emulator web: "+what, "err", err)
	}
}

type errorPage struct {
	page
	Status  int
	Message string
}

func (h *site) renderError(w http.ResponseWriter, status int, msg string) {
	h.render(w, status, "error", errorPage{
		page:   page{Title: http.StatusText(status), Now: h.e.Now()},
		Status: status, Message: msg,
	})
}

func (h *site) fail(w http.ResponseWriter, err error) {
	var ae *apiError
	if errors.As(err, &ae) {
		h.renderError(w, ae.status, ae.msg)
		return
	}
	h.renderError(w, http.StatusInternalServerError, err.Error())
}

// redirect ends a POST with 303 See Other to path, carrying flash as the
// one-line summary the next page shows (Post/Redirect/Get). The summary
// stays here; the redirect carries a random key to it.
func (h *site) redirect(w http.ResponseWriter, r *http.Request, path, flash string) {
	if flash != "" {
		path += "?" + url.Values{"flash": {h.flashes.put(flash)}}.Encode()
	}
	http.Redirect(w, r, path, http.StatusSeeOther)
}

// attemptNo is the number of attempt i of m, counting those dropped from
// the middle of a long message.
func attemptNo(i int, m Message) int {
	if i >= keepFirst {
		return i + 1 + m.DroppedAttempts
	}
	return i + 1
}

// subscriptionRow is a subscription with the scenarios that fit it.
type subscriptionRow struct {
	Subscription
	Scenarios []Scenario
}

type dashboard struct {
	page
	TimeScale     float64
	Products      []Product
	Subscriptions []subscriptionRow
	Tenants       []Tenant
	Messages      []Message
}

func (h *site) dashboardPage(w http.ResponseWriter, r *http.Request) {
	d := dashboard{
		page:      h.newPage(r, "KooGallery emulator", "dashboard"),
		TimeScale: h.e.Config().TimeScale,
		Products:  h.e.Products(),
		Messages:  h.e.Messages(MessageFilter{Limit: dashboardMessages}),
		Tenants:   h.e.Tenants(),
	}
	for _, s := range h.e.Subscriptions() {
		row := subscriptionRow{Subscription: s}
		for _, table := range scenarioTables {
			for _, sc := range table {
				if sc.refusal(&s) == "" {
					row.Scenarios = append(row.Scenarios, sc.info())
				}
			}
		}
		d.Subscriptions = append(d.Subscriptions, row)
	}
	h.render(w, http.StatusOK, "dashboard", d)
}

func (h *site) purchaseForm(w http.ResponseWriter, r *http.Request) {
	if err := parseForm(w, r); err != nil {
		h.fail(w, err)
		return
	}
	p := PurchaseRequest{
		ProductID: r.PostForm.Get("product"),
		Trial:     r.PostForm.Get("trial") != "",
		Test:      r.PostForm.Get("test") != "",
		Scenario:  r.PostForm.Get("scenario"), // the "Notify order" button
	}
	if s := strings.TrimSpace(r.PostForm.Get("quantity")); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			h.fail(w, badRequest("quantity: %q is not a whole number", s))
			return
		}
		p.Quantity = n
	}
	run, err := h.purchase(r, p)
	if err != nil {
		h.fail(w, err)
		return
	}
	h.redirectRun(w, r, run)
}

func (h *site) playForm(w http.ResponseWriter, r *http.Request) {
	if err := parseForm(w, r); err != nil {
		h.fail(w, err)
		return
	}
	name := r.PostForm.Get("scenario")
	var opts PlayOptions
	switch name {
	case scenarioRevokeUser:
		opts.UserName = strings.TrimSpace(r.PostForm.Get("userName"))
	case scenarioRequestLicense:
		opts.DeviceFingerprint = strings.TrimSpace(r.PostForm.Get("deviceFingerprint"))
	}
	run, err := h.play(r, r.PathValue("id"), name, opts)
	if err != nil {
		h.fail(w, err)
		return
	}
	h.redirectRun(w, r, run)
}

// redirectRun ends a purchase or play at the dashboard, whose flash
// says what the run did; a pending run's says, each time the page is
// shown, what it waits for, then how it ended.
func (h *site) redirectRun(w http.ResponseWriter, r *http.Request, run Run) {
	key := h.flashes.putFunc(func() string {
		if now, ok := h.e.Outcome(run.ID); ok {
			return h.summarize(now)
		}
		return h.summarize(run)
	})
	http.Redirect(w, r, "/?"+url.Values{"flash": {key}}.Encode(), http.StatusSeeOther)
}

func (h *site) advanceForm(w http.ResponseWriter, r *http.Request) {
	if err := parseForm(w, r); err != nil {
		h.fail(w, err)
		return
	}
	d, err := parsePositive("duration", r.PostForm.Get("duration"), "24h")
	if err != nil {
		h.fail(w, err)
		return
	}
	if err := h.e.Advance(d); err != nil {
		h.fail(w, badRequest("%v", err))
		return
	}
	h.redirect(w, r, "/", fmt.Sprintf("clock advanced by %s to %s", durationtext.Format(d), formatTime(h.e.Now())))
}

type messageView struct {
	page
	Message Message
}

func (h *site) messagePage(w http.ResponseWriter, r *http.Request) {
	m, ok := h.e.Message(r.PathValue("id"))
	if !ok {
		h.renderError(w, http.StatusNotFound, "no such message: "+r.PathValue("id"))
		return
	}
	h.render(w, http.StatusOK, "message", messageView{page: h.newPage(r, "Message "+m.ID, "messages"), Message: m})
}

func (h *site) redriveForm(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	m, err := h.redrive(r, id)
	if err != nil {
		h.fail(w, err)
		return
	}
	flash := fmt.Sprintf("re-drive %s: %s, attempt %d", m.ID, m.Interface, len(m.Attempts)+m.DroppedAttempts)
	if n := len(m.Attempts); n > 0 {
		flash += " " + attemptOutcome(m.Attempts[n-1])
	}
	h.redirect(w, r, "/messages/"+url.PathEscape(id), flash)
}

type faultsView struct {
	page
	Faults Faults
}

func (h *site) faultsPage(w http.ResponseWriter, r *http.Request) {
	h.render(w, http.StatusOK, "faults", faultsView{page: h.newPage(r, "Faults", "faults"), Faults: h.e.Faults()})
}

func (h *site) faultsForm(w http.ResponseWriter, r *http.Request) {
	if err := parseForm(w, r); err != nil {
		h.fail(w, err)
		return
	}
	f, err := faultsFromForm(r.PostForm)
	if err != nil {
		h.fail(w, err)
		return
	}
	h.e.SetFaults(f)
	flash := "faults switched off"
	if f != (Faults{}) {
		flash = "faults saved"
	}
	h.redirect(w, r, "/faults", flash)
}

// faultsFromForm reads the faults form; its field names are the JSON
// names of Faults.
func faultsFromForm(v url.Values) (Faults, error) {
	var f faultsJSON
	var err error
	dur := func(name string) duration {
		s := strings.TrimSpace(v.Get(name))
		if s == "" || err != nil {
			return 0
		}
		d, perr := durationtext.Parse(s)
		if perr != nil {
			err = badRequest("%s: %q is %v", name, s, perr)
		}
		return duration(d)
	}
	frac := func(name string) float64 {
		s := strings.TrimSpace(v.Get(name))
		if s == "" || err != nil {
			return 0
		}
		x, perr := strconv.ParseFloat(s, 64)
		if perr != nil {
			err = badRequest("%s: %q is not a number like 0.3", name, s)
		}
		return x
	}
	num := func(name string) int {
		s := strings.TrimSpace(v.Get(name))
		if s == "" || err != nil {
			return 0
		}
		n, perr := strconv.Atoi(s)
		if perr != nil {
			err = badRequest("%s: %q is not a whole number", name, s)
		}
		return n
	}
	f.OpenAPILatency = dur("openapiLatency")
	f.OpenAPIStatus = num("openapiStatus")
	f.OpenAPITimeout = v.Get("openapiTimeout") != ""
	f.OpenAPICount = num("openapiCount")
	f.Duplicates = num("duplicates")
	f.ClockSkew = dur("clockSkew")
	f.OneAccessTokenLatency = dur("oneaccessTokenLatency")
	f.OneAccessTokenFail = v.Get("oneaccessTokenFail") != ""
	f.LicenseAPIStatus = num("licenseApiStatus")
	f.LicenseAPICode = strings.TrimSpace(v.Get("licenseApiCode"))
	f.LicenseAPILatency = dur("licenseApiLatency")
	f.LicenseAPICount = num("licenseApiCount")
	f.UploadFailures = num("uploadFailures")
	f.UploadFailureCode = strings.TrimSpace(v.Get("uploadFailureCode"))
	f.UsageFailRate = frac("usageFailRate")
	if err != nil {
		return Faults{}, err
	}
	return f.faults()
}

// usagePagePeriods is how many of an instance's latest periods the usage
// page shows; GET usage?instance= has them all.
const usagePagePeriods = 24

type usageView struct {
	page
	Billed     []billedView
	MaxPeriods int
	Usage      []UsageRecord
	Requests   []OpenAPIRequest
}

// billedView is one instance on the usage page: its latest periods,
// newest first, and how many are not shown.
type billedView struct {
	BilledInstance
	Latest  []BilledPeriod
	Omitted int
	Last    time.Time // when its latest kept record came
}

func (h *site) usagePage(w http.ResponseWriter, r *http.Request) {
	// Only the periods shown are copied: with a million records, copying
	// them all held up the pushes for a good part of a second.
	billed := h.e.BilledLatest(usagePagePeriods)
	views := make([]billedView, len(billed))
	for i, b := range billed {
		v := billedView{BilledInstance: b, Omitted: b.PeriodsOmitted}
		for j := len(b.Periods) - 1; j >= 0; j-- {
			v.Latest = append(v.Latest, b.Periods[j])
			v.Last = later(v.Last, b.Periods[j].Received)
		}
		v.Periods = nil // the page shows Latest only
		views[i] = v
	}
	h.render(w, http.StatusOK, "usage", usageView{
		page:       h.newPage(r, "Usage and Open API", "usage"),
		Billed:     views,
		MaxPeriods: usagePagePeriods,
		Usage:      h.e.UsageRecords(),
		Requests:   h.e.OpenAPIRequests(),
	})
}

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

type licensesView struct {
	page
	Licenses    []License
	Uploads     []LicenseUpload
	Events      []LicenseEvent
	Activations []LicenseActivation
	Queries     []LicenseQuery
	Usage       []LicenseUsage
}

func (h *site) licensesPage(w http.ResponseWriter, r *http.Request) {
	h.render(w, http.StatusOK, "licenses", licensesView{
		page:        h.newPage(r, "Licenses", "licenses"),
		Licenses:    h.e.Licenses(),
		Uploads:     h.e.LicenseUploads(),
		Events:      h.e.LicenseEvents(),
		Activations: h.e.LicenseActivations(),
		Queries:     h.e.LicenseQueries(),
		Usage:       h.e.LicenseUsage(),
	})
}

// testLicenseForm applies for test license codes (license-openapi.md
// §A.7).
func (h *site) testLicenseForm(w http.ResponseWriter, r *http.Request) {
	if err := parseForm(w, r); err != nil {
		h.fail(w, err)
		return
	}
	req := testLicenseJSON{Undelivered: r.PostForm.Get("undelivered") != ""}
	if s := strings.TrimSpace(r.PostForm.Get("count")); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			h.fail(w, badRequest("count: %q is not a whole number", s))
			return
		}
		req.Count = n
	}
	if s := strings.TrimSpace(r.PostForm.Get("validity")); s != "" {
		d, err := parsePositive("validity", s, "30 d or 720h")
		if err != nil {
			h.fail(w, err)
			return
		}
		req.Validity = duration(d)
	}
	cs, err := h.createTestLicenses(req)
	if err != nil {
		h.fail(w, err)
		return
	}
	codes := make([]string, len(cs))
	for i, c := range cs {
		codes[i] = c.Code
	}
	h.redirect(w, r, "/licenses", fmt.Sprintf("test license codes %s, valid until %s", strings.Join(codes, ", "), formatTime(cs[0].Expire)))
}

// testLicenseValidityForm edits a test code's validity.
func (h *site) testLicenseValidityForm(w http.ResponseWriter, r *http.Request) {
	if err := parseForm(w, r); err != nil {
		h.fail(w, err)
		return
	}
	s := strings.TrimSpace(r.PostForm.Get("validity"))
	d, err := parsePositive("validity", s, "2 d or 48h")
	if err != nil {
		h.fail(w, err)
		return
	}
	c, err := h.setTestLicense(r.PathValue("code"), validityJSON{Validity: duration(d)})
	if err != nil {
		h.fail(w, err)
		return
	}
	h.redirect(w, r, "/licenses", fmt.Sprintf("test license code %s valid until %s", c.Code, formatTime(c.Expire)))
}

// summarize says in one line what a run did, e.g.
// "purchase S1: newInstance 000000, instance 3f2a…, status active", and
// whether it is pending or failed.
func (h *site) summarize(run Run) string {
	var b strings.Builder
	b.WriteString(run.Scenario)
	if run.SubscriptionID != "" {
		b.WriteString(" " + run.SubscriptionID)
	}
	b.WriteString(":")
	for i, id := range run.Messages {
		if i > 0 {
			b.WriteString(",")
		}
		m, ok := h.e.Message(id)
		if !ok {
			fmt.Fprintf(&b, " %s", id)
			continue
		}
		fmt.Fprintf(&b, " %s", m.Interface)
		// The latest attempt: a retried step or the polls after 000004
		// are one message with several.
		if n := len(m.Attempts); n > 0 {
			b.WriteString(" " + attemptOutcome(m.Attempts[n-1]))
			if all := n + m.DroppedAttempts; all > 1 {
				fmt.Fprintf(&b, " (attempt %d)", all)
			}
		}
	}
	if s, ok := h.e.Subscription(run.SubscriptionID); ok {
		if s.InstanceID != "" {
			fmt.Fprintf(&b, ", instance %s", s.InstanceID)
		}
		if s.LicenseCode != "" {
			fmt.Fprintf(&b, ", license code %s", s.LicenseCode)
		}
		fmt.Fprintf(&b, ", status %s", s.Status)
	}
	switch {
	case run.Pending:
		b.WriteString(" — PENDING, not ok yet: waiting for " + run.Waiting)
		if run.Err != "" {
			b.WriteString("; so far: " + run.Err)
		}
		b.WriteString(" (reload to see how it ends)")
	case !run.OK:
		b.WriteString(" — FAILED")
		if run.Err != "" {
			b.WriteString(": " + run.Err)
		}
	}
	return b.String()
}

// attemptOutcome is an attempt's resultCode, or its first broken rule
// when no code came back.
func attemptOutcome(a Attempt) string {
	switch {
	case a.ResultCode != "" && a.OK():
		return string(a.ResultCode)
	case a.ResultCode != "":
		return fmt.Sprintf("%s (%d rules broken)", a.ResultCode, len(a.Violations))
	case len(a.Violations) > 0:
		return string(a.Violations[0].Rule)
	}
	return "no answer"
}

// parseForm reads a urlencoded form of at most maxBody bytes.
func parseForm(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if err := r.ParseForm(); err != nil {
		return badRequest("bad form: %v", err)
	}
	return nil
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}
