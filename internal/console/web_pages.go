package console

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"

	"github.com/koobridge/koobridge/internal/store"
)

// notices are the fixed messages a redirect after an action may show; the
// query names one, so no text from the URL reaches the page.
var notices = map[string]string{
	"reprovision":    "Provisioning re-run: the instance is provisioning again.",
	"retry":          "Job queued again: a worker picks it up now.",
	"redeliver":      "Event queued for re-delivery: it reaches the vendor before any later pending event of this tenant.",
	"grant-retry":    "License grant queued again: a worker picks it up now.",
	"device-release": "Device released: its seat is free, and the device must activate again to be served.",
}

func (w *web) base(r *http.Request, s session, title string) base {
	return base{Title: title, LoggedIn: true, CSRF: w.csrfToken(s), Notice: notices[r.URL.Query().Get("done")]}
}

// filterLink is one choice of a filter: its label, the URL that applies it
// and whether it is the current one.
type filterLink struct {
	Label, URL string
	Active     bool
}

// withQuery returns path with q, changed by the name/value pairs (an empty
// value removes the parameter) and without any paging cursor.
func withQuery(path string, q url.Values, pairs ...string) string {
	c := url.Values{}
	for k, v := range q {
		if k != "after" && k != "before" && k != "done" {
			c[k] = v
		}
	}
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] == "" {
			c.Del(pairs[i])
		} else {
			c.Set(pairs[i], pairs[i+1])
		}
	}
	if len(c) == 0 {
		return path
	}
	return path + "?" + c.Encode()
}

func filterLinks(path string, q url.Values, name string, values ...string) []filterLink {
	cur := q.Get(name)
	links := []filterLink{{Label: "all", URL: withQuery(path, q, name, ""), Active: cur == ""}}
	for _, v := range values {
		links = append(links, filterLink{Label: v, URL: withQuery(path, q, name, v), Active: cur == v})
	}
	return links
}

type instancesPage struct {
	base
	Instances []instanceView
	Statuses  []filterLink
	Tests     []filterLink
	Next      string
}

func (w *web) instancesPage(rw http.ResponseWriter, r *http.Request, s session) {
	q := r.URL.Query()
	list, next, err := w.instances(r.Context(), q)
	if err != nil {
		w.fail(rw, s, err)
		return
	}
	p := instancesPage{
		base:     w.base(r, s, "Instances"),
		Statuses: filterLinks("/admin/", q, "status", "provisioning", "active", "frozen", "failed", "released"),
		Tests:    filterLinks("/admin/", q, "test", "true", "false"),
	}
	for _, inst := range list {
		p.Instances = append(p.Instances, viewInstance(inst))
	}
	if next != "" {
		p.Next = withQuery("/admin/", q, "after", next)
	}
	w.render(rw, http.StatusOK, "instances", p)
}

type instancePage struct {
	base
	Inst           instanceView
	Calls          []callView
	Jobs           []jobView
	JobsComplete   bool
	CanReprovision bool
}

func (w *web) instancePage(rw http.ResponseWriter, r *http.Request, s session) {
	id := r.PathValue("id")
	inst, calls, err := w.instance(r.Context(), id)
	if err != nil {
		w.fail(rw, s, err)
		return
	}
	jobs, complete, err := w.instanceJobs(r.Context(), id)
	if err != nil {
		w.fail(rw, s, err)
		return
	}
	p := instancePage{
		base: w.base(r, s, "Instance "+id), Inst: viewInstance(inst), Calls: viewCalls(calls),
		JobsComplete: complete,
	}
	if w.service != nil {
		// The service decides with the rule Reprovision applies, over every
		// provision job, not over the jobs listed below.
		if p.CanReprovision, err = w.service.CanReprovision(r.Context(), id); err != nil {
			w.fail(rw, s, w.internal("check reprovision", err))
			return
		}
	}
	for _, j := range jobs {
		p.Jobs = append(p.Jobs, viewJob(j))
	}
	w.render(rw, http.StatusOK, "instance", p)
}

// Jobs have no instance column: the page scans the newest jobs' payloads,
// at most jobScanPages pages, and says so when it stopped early.
const jobScanPages = 10

// instanceJobs returns the jobs whose payload names instance id, newest
// first, and whether every job was scanned. It only lists: it looks at the
// newest jobScanPages*maxLimit (10,000) jobs of every kind, so whether the
// instance can be re-run is the service's to say (CanReprovision).
func (w *web) instanceJobs(ctx context.Context, id string) ([]store.Job, bool, error) {
	var out []store.Job
	f := store.JobFilter{Limit: maxLimit}
	for range jobScanPages {
		js, err := w.store.Jobs(ctx, f)
		if err != nil {
			return nil, false, w.internal("list jobs of instance", err)
		}
		for _, j := range js {
			var p struct {
				InstanceID string `json:"instanceId"`
			}
			if json.Unmarshal(j.Payload, &p) == nil && p.InstanceID == id {
				out = append(out, j)
			}
		}
		if len(js) < maxLimit {
			return out, true, nil
		}
		f.BeforeID = js[len(js)-1].ID
	}
	return out, false, nil
}

func (w *web) reprovisionForm(rw http.ResponseWriter, r *http.Request, s session) {
	id := r.PathValue("id")
	if _, err := w.reprovision(r.Context(), id); err != nil {
		w.fail(rw, s, err)
		return
	}
	http.Redirect(rw, r, "/admin/instances/"+url.PathEscape(id)+"?done=reprovision", http.StatusSeeOther)
}

// callFilter is the calls page's filter form, filled with the current
// query.
type callFilter struct {
	Activity, Instance, Order, Tenant, Code, Since, Until, Limit string
}

type callsPage struct {
	base
	Filter callFilter
	Calls  []callView
	Next   string
}

func (w *web) callsPage(rw http.ResponseWriter, r *http.Request, s session) {
	q := r.URL.Query()
	calls, next, err := w.calls(r.Context(), q)
	if err != nil {
		w.fail(rw, s, err)
		return
	}
	p := callsPage{
		base: w.base(r, s, "Calls"),
		Filter: callFilter{
			Activity: q.Get("activity"), Instance: q.Get("instance"), Order: q.Get("order"), Tenant: q.Get("tenant"), Code: q.Get("code"),
			Since: q.Get("since"), Until: q.Get("until"), Limit: q.Get("limit"),
		},
		Calls: viewCalls(calls),
	}
	if next != "" {
		p.Next = withQuery("/admin/calls", q, "before", next)
	}
	w.render(rw, http.StatusOK, "calls", p)
}

type jobsPage struct {
	base
	Kind   string
	States []filterLink
	Jobs   []jobView
	Next   string
}

func (w *web) jobsPage(rw http.ResponseWriter, r *http.Request, s session) {
	q := r.URL.Query()
	jobs, next, err := w.jobs(r.Context(), q)
	if err != nil {
		w.fail(rw, s, err)
		return
	}
	p := jobsPage{
		base:   w.base(r, s, "Jobs"),
		Kind:   q.Get("kind"),
		States: filterLinks("/admin/jobs", q, "state", "available", "running", "done", "dead"),
	}
	for _, j := range jobs {
		p.Jobs = append(p.Jobs, viewJob(j))
	}
	if next != "" {
		p.Next = withQuery("/admin/jobs", q, "before", next)
	}
	w.render(rw, http.StatusOK, "jobs", p)
}

type ordersPage struct {
	base
	Order    string
	Statuses []filterLink
	Orders   []orderView
	Next     string
}

func (w *web) ordersPage(rw http.ResponseWriter, r *http.Request, s session) {
	q := r.URL.Query()
	list, next, err := w.orders(r.Context(), q)
	if err != nil {
		w.fail(rw, s, err)
		return
	}
	p := ordersPage{
		base:     w.base(r, s, "Orders"),
		Order:    q.Get("order"),
		Statuses: filterLinks("/admin/orders", q, "status", "pending", "delivered", "failed"),
	}
	for _, n := range list {
		p.Orders = append(p.Orders, viewOrder(n))
	}
	if next != "" {
		p.Next = withQuery("/admin/orders", q, "before", next)
	}
	w.render(rw, http.StatusOK, "orders", p)
}

func (w *web) retryForm(rw http.ResponseWriter, r *http.Request, s session) {
	if _, err := w.retryJob(r.Context(), r.PathValue("id")); err != nil {
		w.fail(rw, s, err)
		return
	}
	http.Redirect(rw, r, "/admin/jobs?done=retry", http.StatusSeeOther)
}

type tenantsPage struct {
	base
	Statuses []filterLink
	Tenants  []tenantView
	Next     string
}

func (w *web) tenantsPage(rw http.ResponseWriter, r *http.Request, s session) {
	q := r.URL.Query()
	list, next, err := w.tenants(r.Context(), q)
	if err != nil {
		w.fail(rw, s, err)
		return
	}
	p := tenantsPage{
		base:     w.base(r, s, "Tenants"),
		Statuses: filterLinks("/admin/tenants", q, "status", "active", "deleted"),
	}
	for _, t := range list {
		p.Tenants = append(p.Tenants, viewTenant(t))
	}
	if next != "" {
		p.Next = withQuery("/admin/tenants", q, "after", next)
	}
	w.render(rw, http.StatusOK, "tenants", p)
}

// tenantUserRow is a user with the name of its department; OrgKnown is
// false when the user's OrgCode names no department of the tenant.
type tenantUserRow struct {
	tenantUserView
	OrgName  string
	OrgKnown bool
}

type tenantPage struct {
	base
	Tenant tenantView
	Apps   []tenantAppView
	Tree   []*orgNode
	Users  []tenantUserRow
	Events []tenantEventView
	Calls  []callView
	// CanRedeliver offers the re-delivery of failed events: the console
	// has the tenant service.
	CanRedeliver bool
}

func (w *web) tenantPage(rw http.ResponseWriter, r *http.Request, s session) {
	id := r.PathValue("tenantId")
	d, err := w.tenant(r.Context(), id)
	if err != nil {
		w.fail(rw, s, err)
		return
	}
	calls, err := w.tenantCalls(r.Context(), id)
	if err != nil {
		w.fail(rw, s, err)
		return
	}
	v := viewTenantDetail(d)
	p := tenantPage{
		base: w.base(r, s, "Tenant "+id), Tenant: v.tenantView, Apps: v.Apps, Tree: orgTree(v.Orgs),
		Events: v.Events, Calls: viewCalls(calls), CanRedeliver: w.tenantSvc != nil,
	}
	names := make(map[string]string, len(v.Orgs))
	for _, o := range v.Orgs {
		names[o.OrgCode] = o.Name
	}
	for _, u := range v.Users {
		name, known := names[u.OrgCode]
		p.Users = append(p.Users, tenantUserRow{tenantUserView: u, OrgName: name, OrgKnown: known})
	}
	w.render(rw, http.StatusOK, "tenant", p)
}

func (w *web) redeliverForm(rw http.ResponseWriter, r *http.Request, s session) {
	id := r.PathValue("tenantId")
	if _, err := w.redeliver(r.Context(), id, r.PathValue("seq")); err != nil {
		w.fail(rw, s, err)
		return
	}
	http.Redirect(rw, r, "/admin/tenants/"+url.PathEscape(id)+"?done=redeliver", http.StatusSeeOther)
}
