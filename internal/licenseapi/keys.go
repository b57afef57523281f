package licenseapi

import (
	"net/http"
)

// keysMaxAge is how long a client may cache the JWK set: short against
// Retention (a replaced key stays published far longer), so a client
// learns a new key within minutes of a rotation. A client that meets an
// unknown kid fetches the set again.
const keysMaxAge = "300"

// serveKeys answers GET PathKeys with the JWK set.
func (h *handler) serveKeys(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, codeMethod, r.Method+" is not allowed: the keys are read with GET")
		return
	}
	jwks, err := h.cfg.Tokens.JWKS(r.Context())
	if err != nil {
		h.log.ErrorContext(r.Context(), "license service: keys", "error", err)
		writeRetry(w, http.StatusServiceUnavailable, codeUnavailable, "the token keys cannot be read now", unavailableRetry)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Cache-Control", "public, max-age="+keysMaxAge)
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(append(jwks, '\n'))
	}
}
