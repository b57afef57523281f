package console

import (
	"net/http"
	"net/url"
	"strconv"
)

// licenseRoutes adds the license pages: license codes, one code with its
// devices and history and the Release seat form of each device, generated
// licenses with their uploads, and the Retry form of a grant that gave up.
func (w *web) licenseRoutes(mux *http.ServeMux) {
	mux.Handle("GET /admin/licenses", w.page(w.licensesPage))
	mux.Handle("GET /admin/licenses/{code}", w.page(w.licensePage))
	mux.Handle("POST /admin/licenses/{code}/devices/{device}/release", w.post(w.deviceReleaseForm))
	mux.Handle("GET /admin/license-grants", w.page(w.grantsPage))
	mux.Handle("GET /admin/license-grants/{id}", w.page(w.grantPage))
	mux.Handle("POST /admin/license-grants/{id}/retry", w.post(w.grantRetryForm))
}

// licensePath is the console page of a license code; a test code is told
// apart by ?test=true.
func licensePath(code string, test bool) string {
	p := "/admin/licenses/" + url.PathEscape(code)
	if test {
		p += "?test=true"
	}
	return p
}

// deviceReleasePath is where the Release seat form of a device posts; a
// test code is told apart by ?test=true.
func deviceReleasePath(code string, test bool, device string) string {
	p := "/admin/licenses/" + url.PathEscape(code) + "/devices/" + url.PathEscape(device) + "/release"
	if test {
		p += "?test=true"
	}
	return p
}

// grantPath is the console page of a generated license.
func grantPath(id int64) string { return "/admin/license-grants/" + strconv.FormatInt(id, 10) }

type licensesPage struct {
	base
	Order    string
	Statuses []filterLink
	Tests    []filterLink
	Licenses []licenseView
	Next     string
}

func (w *web) licensesPage(rw http.ResponseWriter, r *http.Request, s session) {
	q := r.URL.Query()
	list, next, err := w.licenses(r.Context(), q)
	if err != nil {
		w.fail(rw, s, err)
		return
	}
	p := licensesPage{
		base:     w.base(r, s, "Licenses"),
		Order:    q.Get("order"),
		Statuses: filterLinks("/admin/licenses", q, "status", "active", "frozen", "released"),
		Tests:    filterLinks("/admin/licenses", q, "test", "true", "false"),
	}
	for _, c := range list {
		p.Licenses = append(p.Licenses, viewLicense(c))
	}
	if next != "" {
		p.Next = withQuery("/admin/licenses", q, "after", next)
	}
	w.render(rw, http.StatusOK, "licenses", p)
}

type licensePage struct {
	base
	License licenseView
	Devices []licenseDeviceRow
	History []licenseEventView
	// CanRelease offers Release seat on each device: the console has a
	// releaser.
	CanRelease bool
}

// licenseDeviceRow is a device as the license page lists it, with where
// its Release seat form posts.
type licenseDeviceRow struct {
	licenseDeviceView
	ReleasePath string
}

func (w *web) licensePage(rw http.ResponseWriter, r *http.Request, s session) {
	code := r.PathValue("code")
	d, err := w.license(r.Context(), code, r.URL.Query())
	if err != nil {
		w.fail(rw, s, err)
		return
	}
	v := viewLicenseDetail(d)
	title := "License " + code
	if v.Test {
		title = "Test license " + code
	}
	p := licensePage{base: w.base(r, s, title), License: v.licenseView, History: v.History, CanRelease: w.deviceReleaser != nil}
	for _, dev := range v.Devices {
		p.Devices = append(p.Devices, licenseDeviceRow{dev, deviceReleasePath(v.LicenseCode, v.Test, dev.DeviceHash)})
	}
	w.render(rw, http.StatusOK, "license", p)
}

func (w *web) deviceReleaseForm(rw http.ResponseWriter, r *http.Request, s session) {
	code := r.PathValue("code")
	test, err := w.releaseDevice(r.Context(), code, r.PathValue("device"), r.URL.Query())
	if err != nil {
		w.fail(rw, s, err)
		return
	}
	sep := "?"
	if test {
		sep = "&"
	}
	http.Redirect(rw, r, licensePath(code, test)+sep+"done=device-release", http.StatusSeeOther)
}

type grantsPage struct {
	base
	Instance string
	Kinds    []filterLink
	States   []filterLink
	Grants   []grantView
	Next     string
	// CanRetry offers Retry on failed grants: the console has a retrier.
	CanRetry bool
}

func (w *web) grantsPage(rw http.ResponseWriter, r *http.Request, s session) {
	q := r.URL.Query()
	list, next, err := w.grants(r.Context(), q)
	if err != nil {
		w.fail(rw, s, err)
		return
	}
	p := grantsPage{
		base:     w.base(r, s, "License uploads"),
		Instance: q.Get("instance"),
		Kinds:    filterLinks("/admin/license-grants", q, "kind", "online", "legacy"),
		States:   filterLinks("/admin/license-grants", q, "state", "pending", "generated", "uploaded", "failed"),
		CanRetry: w.grantRetrier != nil,
	}
	for _, g := range list {
		p.Grants = append(p.Grants, viewGrant(g))
	}
	if next != "" {
		p.Next = withQuery("/admin/license-grants", q, "before", next)
	}
	w.render(rw, http.StatusOK, "grants", p)
}

type grantPage struct {
	base
	Grant    grantView
	Uploads  []uploadView
	CanRetry bool
}

func (w *web) grantPage(rw http.ResponseWriter, r *http.Request, s session) {
	g, ups, err := w.grant(r.Context(), r.PathValue("id"))
	if err != nil {
		w.fail(rw, s, err)
		return
	}
	v := viewGrantDetail(g, ups)
	w.render(rw, http.StatusOK, "grant", grantPage{
		base: w.base(r, s, "License grant "+strconv.FormatInt(g.ID, 10)), Grant: v.grantView, Uploads: v.Uploads,
		CanRetry: w.grantRetrier != nil,
	})
}

func (w *web) grantRetryForm(rw http.ResponseWriter, r *http.Request, s session) {
	g, err := w.retryGrant(r.Context(), r.PathValue("id"))
	if err != nil {
		w.fail(rw, s, err)
		return
	}
	http.Redirect(rw, r, grantPath(g.ID)+"?done=grant-retry", http.StatusSeeOther)
}
