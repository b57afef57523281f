package emulator

import (
	"net/http"
	"time"
)

// routeLicenseAPI adds the license endpoints of the JSON API under p: the
// license codes the mocked Open API holds, test license codes
// (license-openapi.md §A.7), and what the seller's license calls left
// (activations, queries, usage, uploads, applications).
func (h *site) routeLicenseAPI(mux *http.ServeMux, p string) {
	mux.HandleFunc("GET "+p+"license-codes", h.apiLicenses)
	mux.HandleFunc("GET "+p+"license-codes/{code}", h.apiLicense)
	mux.HandleFunc("GET "+p+"test-license-codes", h.apiTestLicenses)
	mux.HandleFunc("POST "+p+"test-license-codes", h.apiCreateTestLicenses)
	mux.HandleFunc("PUT "+p+"test-license-codes/{code}", h.apiSetTestLicense)
	mux.HandleFunc("GET "+p+"license-activations", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, list(h.e.LicenseActivations()))
	})
	mux.HandleFunc("GET "+p+"license-queries", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, list(h.e.LicenseQueries()))
	})
	mux.HandleFunc("GET "+p+"license-usage", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, list(h.e.LicenseUsage()))
	})
	mux.HandleFunc("GET "+p+"license-uploads", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, list(h.e.LicenseUploads()))
	})
	mux.HandleFunc("GET "+p+"license-events", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, list(h.e.LicenseEvents()))
	})
}

func (h *site) apiLicenses(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, list(h.e.Licenses()))
}

func (h *site) apiLicense(w http.ResponseWriter, r *http.Request) {
	c, ok := h.e.License(r.PathValue("code"))
	if !ok {
		writeError(w, notFound("no such license code: %q", r.PathValue("code")))
		return
	}
	writeJSON(w, http.StatusOK, c)
}

// testLicenses lists the test codes.
func (h *site) testLicenses() []License {
	var out []License
	for _, c := range h.e.Licenses() {
		if c.Test {
			out = append(out, c)
		}
	}
	return list(out)
}

func (h *site) apiTestLicenses(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, h.testLicenses())
}

// validityJSON is a test code's validity on the wire: a duration from now
// (emulated) or an RFC 3339 expiry, not both.
type validityJSON struct {
	Validity   duration   `json:"validity"`
	ExpireTime *time.Time `json:"expireTime"`
}

// expiry returns the expiry v asks for, or zero for none; required
// refuses none.
func (v validityJSON) expiry(now time.Time, required bool) (time.Time, error) {
	switch {
	case v.Validity != 0 && v.ExpireTime != nil:
		return time.Time{}, badRequest("give validity or expireTime, not both")
	case v.Validity < 0:
		return time.Time{}, badRequest("validity must be positive, e.g. \"720h\"")
	case v.Validity > 0:
		return now.Add(time.Duration(v.Validity)), nil
	case v.ExpireTime != nil && v.ExpireTime.IsZero():
		return time.Time{}, badRequest("expireTime must be a time, e.g. \"2030-01-01T00:00:00Z\"")
	case v.ExpireTime != nil:
		return *v.ExpireTime, nil
	case required:
		return time.Time{}, badRequest("validity (e.g. \"720h\") or expireTime (RFC 3339) is required")
	}
	return time.Time{}, nil
}

// testLicenseJSON is the body of POST test-license-codes.
type testLicenseJSON struct {
	validityJSON
	Count       int    `json:"count"`
	ProductID   string `json:"productId"`
	Amount      int    `json:"amount"`
	Undelivered bool   `json:"undelivered"`
}

func (h *site) apiCreateTestLicenses(w http.ResponseWriter, r *http.Request) {
	var req testLicenseJSON
	if err := decodeJSON(w, r, &req); err != nil {
		writeError(w, err)
		return
	}
	cs, err := h.createTestLicenses(req)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, cs)
}

// createTestLicenses creates the codes req asks for; what
// CreateTestLicenses refuses is a 400.
func (h *site) createTestLicenses(req testLicenseJSON) ([]License, error) {
	exp, err := req.expiry(h.e.Now(), false)
	if err != nil {
		return nil, err
	}
	cs, err := h.e.CreateTestLicenses(TestLicenseRequest{
		Count: req.Count, ProductID: req.ProductID, Amount: req.Amount, Expire: exp, Undelivered: req.Undelivered,
	})
	if err != nil {
		return nil, badRequest("%v", err)
	}
	return cs, nil
}

func (h *site) apiSetTestLicense(w http.ResponseWriter, r *http.Request) {
	var req validityJSON
	if err := decodeJSON(w, r, &req); err != nil {
		writeError(w, err)
		return
	}
	c, err := h.setTestLicense(r.PathValue("code"), req)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

// setTestLicense edits a test code's validity.
func (h *site) setTestLicense(code string, req validityJSON) (License, error) {
	exp, err := req.expiry(h.e.Now(), true)
	if err != nil {
		return License{}, err
	}
	c, err := h.e.SetTestLicenseExpiry(code, exp)
	return c, stateError(err)
}
