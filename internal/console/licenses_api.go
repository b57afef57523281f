package console

import "net/http"

// licenseRoutes adds the license endpoints: license codes with their
// devices and history, the release of a device, generated licenses with
// their upload attempts, and the retry of a grant that gave up.
func (a *api) licenseRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /admin/api/licenses", a.listLicenses)
	mux.HandleFunc("GET /admin/api/licenses/{code}", a.getLicense)
	mux.HandleFunc("DELETE /admin/api/licenses/{code}/devices/{device}", a.releaseDeviceHandler)
	mux.HandleFunc("GET /admin/api/license-grants", a.listGrants)
	mux.HandleFunc("GET /admin/api/license-grants/{id}", a.getGrant)
	mux.HandleFunc("POST /admin/api/license-grants/{id}/retry", a.retryGrantHandler)
}

func (a *api) listLicenses(w http.ResponseWriter, r *http.Request) {
	list, next, err := a.licenses(r.Context(), r.URL.Query())
	if err != nil {
		fail(w, err)
		return
	}
	out := struct {
		Licenses []licenseView `json:"licenses"`
		Next     string        `json:"next,omitempty"`
	}{Licenses: make([]licenseView, 0, len(list)), Next: next}
	for _, c := range list {
		out.Licenses = append(out.Licenses, viewLicense(c))
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *api) getLicense(w http.ResponseWriter, r *http.Request) {
	d, err := a.license(r.Context(), r.PathValue("code"), r.URL.Query())
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, viewLicenseDetail(d))
}

func (a *api) releaseDeviceHandler(w http.ResponseWriter, r *http.Request) {
	if _, err := a.releaseDevice(r.Context(), r.PathValue("code"), r.PathValue("device"), r.URL.Query()); err != nil {
		fail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *api) listGrants(w http.ResponseWriter, r *http.Request) {
	list, next, err := a.grants(r.Context(), r.URL.Query())
	if err != nil {
		fail(w, err)
		return
	}
	out := struct {
		Grants []grantView `json:"grants"`
		Next   string      `json:"next,omitempty"`
	}{Grants: make([]grantView, 0, len(list)), Next: next}
	for _, g := range list {
		out.Grants = append(out.Grants, viewGrant(g))
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *api) getGrant(w http.ResponseWriter, r *http.Request) {
	g, ups, err := a.grant(r.Context(), r.PathValue("id"))
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, viewGrantDetail(g, ups))
}

func (a *api) retryGrantHandler(w http.ResponseWriter, r *http.Request) {
	g, err := a.retryGrant(r.Context(), r.PathValue("id"))
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, viewGrant(g))
}
