package console

import (
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/koobridge/koobridge/internal/store"
)

// usageRoutes adds the metering pages: the periods counted by state with
// the list of periods, one instance's usage with the records of a chosen
// period, the pushes to KooGallery, one push with its attempts, the
// Retry form of a pending push, and the Push again form of a rejected
// period.
func (w *web) usageRoutes(mux *http.ServeMux) {
	mux.Handle("GET /admin/usage", w.page(w.usagePage))
	mux.Handle("GET /admin/usage/instances/{id}", w.page(w.usageInstancePage))
	mux.Handle("GET /admin/usage/pushes", w.page(w.usagePushesPage))
	mux.Handle("GET /admin/usage/pushes/{id}", w.page(w.usagePushPage))
	mux.Handle("POST /admin/usage/pushes/{id}/retry", w.post(w.usagePushRetryForm))
	mux.Handle("POST /admin/usage/instances/{id}/periods/{start}/repush", w.post(w.usagePeriodRepushForm))
}

// The notices a retried push's page and a pushed-again period's instance
// page show; the shared notices map keeps the console's fixed messages.
func init() {
	notices["usage-retry"] = "Usage push queued to be sent now: a worker picks it up at once."
	notices["usage-repush"] = "Usage period back to open: the next seal pushes it to KooGallery again, with the same metering_sn."
}

// usageInstancePath is the console page of an instance's usage.
func usageInstancePath(id string) string { return "/admin/usage/instances/" + url.PathEscape(id) }

// usageRecordsPath is an instance's usage page showing the records of its
// period starting at start.
func usageRecordsPath(id string, start time.Time) string {
	return usageInstancePath(id) + "?" + url.Values{"periodStart": {start.UTC().Format(time.RFC3339)}}.Encode() + "#records"
}

// usagePushPath is the console page of a usage push.
func usagePushPath(id int64) string { return "/admin/usage/pushes/" + strconv.FormatInt(id, 10) }

// usageRepushPath is where the Push again form of the period of instance
// id starting at start posts.
func usageRepushPath(id string, start time.Time) string {
	return usageInstancePath(id) + "/periods/" + url.PathEscape(start.UTC().Format(time.RFC3339)) + "/repush"
}

// usagePeriodsTable is what the usageperiods template shows: the periods
// and, when the console has the usage service, the way to push a rejected
// one again: the form itself on the instance's page (Form), elsewhere a
// link to the period on that page.
type usagePeriodsTable struct {
	Rows []usagePeriodRow
	CSRF string
	Form bool
}

// usagePeriodRow is one period of the table with its Push again paths,
// both "" unless it is rejected and the console can push it again.
type usagePeriodRow struct {
	usagePeriodView
	RepushPath string // the form's action
	RepushLink string // the period on its instance's page, where the form is
}

// periodsTable returns the table of periods; form says the page is the
// instance's, which carries the Push again forms.
func (w *web) periodsTable(periods []usagePeriodView, csrf string, form bool) usagePeriodsTable {
	t := usagePeriodsTable{Rows: make([]usagePeriodRow, 0, len(periods)), CSRF: csrf, Form: form}
	for _, p := range periods {
		r := usagePeriodRow{usagePeriodView: p}
		if w.pushRetrier != nil && p.State == string(store.UsageRejected) {
			r.RepushPath = usageRepushPath(p.InstanceID, p.Start)
			r.RepushLink = usageInstancePath(p.InstanceID) + "?state=rejected#period-" + strconv.FormatInt(p.ID, 10)
		}
		t.Rows = append(t.Rows, r)
	}
	return t
}

// withCursor returns path with q, its paging cursor name set to value,
// keeping every other parameter (another list's cursor too) but done.
func withCursor(path string, q url.Values, name, value string) string {
	c := url.Values{}
	for k, v := range q {
		if k != "done" {
			c[k] = v
		}
	}
	c.Set(name, value)
	return path + "?" + c.Encode()
}

// usageCountRow is one state's count of periods, with the link to the
// periods in that state.
type usageCountRow struct {
	State string
	Count int64
	URL   string
}

func usageCountRows(path string, q url.Values, n map[store.UsagePeriodState]int64) []usageCountRow {
	rows := make([]usageCountRow, 0, len(usagePeriodStates))
	for _, s := range usagePeriodStates {
		rows = append(rows, usageCountRow{State: string(s), Count: n[s], URL: withQuery(path, q, "state", string(s))})
	}
	return rows
}

func periodStateLabels() []string {
	out := make([]string, 0, len(usagePeriodStates))
	for _, s := range usagePeriodStates {
		out = append(out, string(s))
	}
	return out
}

type usagePage struct {
	base
	Counts []usageCountRow
	// OldestUnpushed is the End of the oldest open or pushing period and
	// OldestAge how long ago that was; zero and "" when there is none.
	OldestUnpushed time.Time
	OldestAge      string
	Instance       string
	States         []filterLink
	Periods        usagePeriodsTable
	Next           string
}

func (w *web) usagePage(rw http.ResponseWriter, r *http.Request, s session) {
	q := r.URL.Query()
	sum, err := w.usageSummary(r.Context())
	if err != nil {
		w.fail(rw, s, err)
		return
	}
	list, next, err := w.usagePeriods(r.Context(), q)
	if err != nil {
		w.fail(rw, s, err)
		return
	}
	p := usagePage{
		base:           w.base(r, s, "Usage"),
		Counts:         usageCountRows("/admin/usage", q, sum.counts),
		OldestUnpushed: sum.oldestUnpushed,
		Instance:       q.Get("instanceId"),
		States:         filterLinks("/admin/usage", q, "state", periodStateLabels()...),
	}
	p.Periods = w.periodsTable(viewUsagePeriods(list), p.CSRF, false)
	if !sum.oldestUnpushed.IsZero() {
		// The current period is open until it ends: nothing is late yet.
		if age := w.now().Sub(sum.oldestUnpushed); age > 0 {
			p.OldestAge = age.Truncate(time.Second).String() + " ago"
		} else {
			p.OldestAge = "not ended yet"
		}
	}
	if next != "" {
		p.Next = withQuery("/admin/usage", q, "before", next)
	}
	w.render(rw, http.StatusOK, "usage", p)
}

type usageInstancePage struct {
	base
	Usage   usageInstanceView
	Counts  []usageCountRow
	States  []filterLink
	Periods usagePeriodsTable
	Next    string
	// PeriodStart is the chosen period's start as the query gave it ("":
	// none chosen, no records shown); Records its records, newest first.
	PeriodStart string
	Records     []usageRecordView
	RecordsNext string
}

func (w *web) usageInstancePage(rw http.ResponseWriter, r *http.Request, s session) {
	id := r.PathValue("id")
	q := r.URL.Query()
	// The records have a cursor of their own; the periods' parameters
	// must not carry it.
	pq := url.Values{}
	for k, v := range q {
		if k != "periodStart" && k != "recordsBefore" {
			pq[k] = v
		}
	}
	d, err := w.usageInstance(r.Context(), id, pq)
	if err != nil {
		w.fail(rw, s, err)
		return
	}
	path := usageInstancePath(id)
	v := viewUsageInstance(d)
	p := usageInstancePage{
		base:   w.base(r, s, "Usage of "+id),
		Usage:  v,
		Counts: usageCountRows(path, q, d.counts),
		States: filterLinks(path, q, "state", periodStateLabels()...),
	}
	p.Periods = w.periodsTable(v.Periods, p.CSRF, true)
	if v.Next != "" {
		p.Next = withQuery(path, q, "before", v.Next)
	}
	if p.PeriodStart = q.Get("periodStart"); p.PeriodStart != "" {
		rq := url.Values{"periodStart": q["periodStart"], "recordsBefore": q["recordsBefore"]}
		list, next, err := w.usageRecordsOf(r.Context(), id, rq, "recordsBefore", "recordsLimit")
		if err != nil {
			w.fail(rw, s, err)
			return
		}
		p.Records = viewUsageRecords(list)
		if next != "" {
			p.RecordsNext = withCursor(path, q, "recordsBefore", next) + "#records"
		}
	}
	w.render(rw, http.StatusOK, "usageinstance", p)
}

type usagePushesPage struct {
	base
	States []filterLink
	Pushes []usagePushView
	Next   string
	// CanRetry offers Retry on pending pushes: the console has the usage
	// service.
	CanRetry bool
}

func (w *web) usagePushesPage(rw http.ResponseWriter, r *http.Request, s session) {
	q := r.URL.Query()
	list, next, err := w.usagePushes(r.Context(), q)
	if err != nil {
		w.fail(rw, s, err)
		return
	}
	states := make([]string, 0, len(usagePushStates))
	for _, st := range usagePushStates {
		states = append(states, string(st))
	}
	p := usagePushesPage{
		base:     w.base(r, s, "Usage pushes"),
		States:   filterLinks("/admin/usage/pushes", q, "state", states...),
		CanRetry: w.pushRetrier != nil,
	}
	for _, u := range list {
		p.Pushes = append(p.Pushes, viewUsagePush(u))
	}
	if next != "" {
		p.Next = withQuery("/admin/usage/pushes", q, "before", next)
	}
	w.render(rw, http.StatusOK, "usagepushes", p)
}

type usagePushPage struct {
	base
	Push     usagePushDetailView
	CanRetry bool
	// Periods are the push's periods, a rejected one linking to its
	// Push again form.
	Periods usagePeriodsTable
}

func (w *web) usagePushPage(rw http.ResponseWriter, r *http.Request, s session) {
	d, err := w.usagePush(r.Context(), r.PathValue("id"))
	if err != nil {
		w.fail(rw, s, err)
		return
	}
	p := usagePushPage{
		base: w.base(r, s, "Usage push "+strconv.FormatInt(d.push.ID, 10)), Push: viewUsagePushDetail(d),
		CanRetry: w.pushRetrier != nil,
	}
	p.Periods = w.periodsTable(p.Push.Periods, p.CSRF, false)
	w.render(rw, http.StatusOK, "usagepush", p)
}

func (w *web) usagePushRetryForm(rw http.ResponseWriter, r *http.Request, s session) {
	p, err := w.retryUsagePush(r.Context(), r.PathValue("id"))
	if err != nil {
		w.fail(rw, s, err)
		return
	}
	http.Redirect(rw, r, usagePushPath(p.ID)+"?done=usage-retry", http.StatusSeeOther)
}

func (w *web) usagePeriodRepushForm(rw http.ResponseWriter, r *http.Request, s session) {
	p, err := w.repushUsagePeriod(r.Context(), r.PathValue("id"), r.PathValue("start"))
	if err != nil {
		w.fail(rw, s, err)
		return
	}
	http.Redirect(rw, r, usageInstancePath(p.InstanceID)+"?done=usage-repush", http.StatusSeeOther)
}
