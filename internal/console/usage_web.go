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
// period, the pushes to KooGallery, one push with its attempts, and the
// Retry form of a pending push.
func (w *web) usageRoutes(mux *http.ServeMux) {
	mux.Handle("GET /admin/usage", w.page(w.usagePage))
	mux.Handle("GET /admin/usage/instances/{id}", w.page(w.usageInstancePage))
	mux.Handle("GET /admin/usage/pushes", w.page(w.usagePushesPage))
	mux.Handle("GET /admin/usage/pushes/{id}", w.page(w.usagePushPage))
	mux.Handle("POST /admin/usage/pushes/{id}/retry", w.post(w.usagePushRetryForm))
}

// The notice a retried push's page shows; the shared notices map keeps the
// console's fixed messages.
func init() {
	notices["usage-retry"] = "Usage push queued to be sent now: a worker picks it up at once."
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
	Periods        []usagePeriodView
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
		Periods:        viewUsagePeriods(list),
	}
	if !sum.oldestUnpushed.IsZero() {
		p.OldestAge = w.now().Sub(sum.oldestUnpushed).Truncate(time.Second).String()
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
	Periods []usagePeriodView
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
		base:    w.base(r, s, "Usage of "+id),
		Usage:   v,
		Counts:  usageCountRows(path, q, d.counts),
		States:  filterLinks(path, q, "state", periodStateLabels()...),
		Periods: v.Periods,
	}
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
}

func (w *web) usagePushPage(rw http.ResponseWriter, r *http.Request, s session) {
	d, err := w.usagePush(r.Context(), r.PathValue("id"))
	if err != nil {
		w.fail(rw, s, err)
		return
	}
	w.render(rw, http.StatusOK, "usagepush", usagePushPage{
		base: w.base(r, s, "Usage push "+strconv.FormatInt(d.push.ID, 10)), Push: viewUsagePushDetail(d),
		CanRetry: w.pushRetrier != nil,
	})
}

func (w *web) usagePushRetryForm(rw http.ResponseWriter, r *http.Request, s session) {
	p, err := w.retryUsagePush(r.Context(), r.PathValue("id"))
	if err != nil {
		w.fail(rw, s, err)
		return
	}
	http.Redirect(rw, r, usagePushPath(p.ID)+"?done=usage-retry", http.StatusSeeOther)
}
