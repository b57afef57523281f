// Package pagehdr sets the response headers every server-rendered page of
// koobridge sends: the console's and the emulator's.
package pagehdr

import "net/http"

// Secure wraps next so that every response forbids caching, framing, MIME
// sniffing and cross-origin referrers, and carries the Content-Security-
// Policy csp. The pages need no scripts and no foreign resources, so csp
// should allow none.
func Secure(csp string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}
