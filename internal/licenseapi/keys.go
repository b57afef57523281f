package licenseapi

import (
	"net/http"
	"strconv"

	"github.com/koobridge/koobridge/internal/licensetoken"
)

// keysMaxAge is how long a client or proxy may cache the JWK set, in
// seconds: the token keys' KeySetMaxAge, which their staging waits out
// before a new key signs, so a client that meets an unknown kid and
// fetches the set again finds it.
var keysMaxAge = strconv.Itoa(int(licensetoken.KeySetMaxAge.Seconds()))

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
