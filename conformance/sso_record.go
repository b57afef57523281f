package conformance

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/koobridge/koobridge/emulator"
)

// oneAccessCookie is the session cookie of the emulated OneAccess
// (docs/emulator.md, "Session").
const oneAccessCookie = "emu_oneaccess_session"

// maxRecordedForm is how much of a token request's body the recorder
// reads to learn its code (the emulator reads at most as much).
const maxRecordedForm = 1 << 20

// tokenRecord is one request to a tenant's token endpoint: the code it
// asked to exchange and how the identity center answered. Neither the
// client secret nor any token is kept.
type tokenRecord struct {
	tenantCode, grantType, code string
	status                      int
	oauthError                  string // the answer's "error", if any
}

// logoutRecord is one request to a tenant's logout: the session cookie
// it carried.
type logoutRecord struct {
	tenantCode, session string
}

// oaRecorder records the requests the tenants' OneAccess served that the
// sso cases judge: token requests and logouts.
type oaRecorder struct {
	mu      sync.Mutex
	tokens  []tokenRecord
	logouts []logoutRecord
}

// handler serves the tenants' OneAccess of e under
// emulator.OneAccessPath, recording what it served, and everything else
// with next (the mocked Open API).
func (rec *oaRecorder) handler(e *emulator.Emulator, next http.Handler) http.Handler {
	oa := e.OneAccessHandler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest, ok := strings.CutPrefix(r.URL.Path, emulator.OneAccessPath)
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		code, endpoint, _ := strings.Cut(rest, "/")
		switch {
		case endpoint == "api/v1/oauth2/token" && r.Method == http.MethodPost:
			rec.token(oa, w, r, code)
		case endpoint == "api/v1/logout" && r.Method == http.MethodGet:
			session := ""
			if c, err := r.Cookie(oneAccessCookie); err == nil {
				session = c.Value
			}
			rec.mu.Lock()
			rec.logouts = append(rec.logouts, logoutRecord{tenantCode: code, session: session})
			rec.mu.Unlock()
			oa.ServeHTTP(w, r)
		default:
			oa.ServeHTTP(w, r)
		}
	})
}

// token serves a token request with oa and records its code and answer.
func (rec *oaRecorder) token(oa http.Handler, w http.ResponseWriter, r *http.Request, tenantCode string) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRecordedForm+1))
	_ = r.Body.Close()
	if err != nil {
		http.Error(w, "unreadable body", http.StatusBadRequest)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	t := tokenRecord{tenantCode: tenantCode}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err == nil && mt == "application/x-www-form-urlencoded" {
		if form, err := url.ParseQuery(string(body)); err == nil {
			t.grantType, t.code = form.Get("grant_type"), form.Get("code")
		}
	}
	cw := &captureWriter{ResponseWriter: w, status: http.StatusOK}
	oa.ServeHTTP(cw, r)
	t.status = cw.status
	var answer struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(cw.body.Bytes(), &answer) == nil {
		t.oauthError = answer.Error
	}
	rec.mu.Lock()
	rec.tokens = append(rec.tokens, t)
	rec.mu.Unlock()
}

// tokenRequests returns the authorization-code requests for code at the
// tenant's token endpoint.
func (rec *oaRecorder) tokenRequests(tenantCode, code string) []tokenRecord {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var out []tokenRecord
	for _, t := range rec.tokens {
		if t.tenantCode == tenantCode && t.grantType == "authorization_code" && t.code == code && code != "" {
			out = append(out, t)
		}
	}
	return out
}

// logoutCount is how many logouts were recorded so far.
func (rec *oaRecorder) logoutCount() int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return len(rec.logouts)
}

// loggedOut reports whether a logout of the tenant carrying session
// was recorded after the first n.
func (rec *oaRecorder) loggedOut(n int, tenantCode, session string) bool {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return session != "" && slices.ContainsFunc(rec.logouts[n:], func(l logoutRecord) bool {
		return l.tenantCode == tenantCode && l.session == session
	})
}

// captureWriter keeps the status and, for an error, the start of the
// body of an answer while it is written (a success, which carries
// tokens, is not kept).
type captureWriter struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

// maxCaptured is how much of an answer captureWriter keeps: enough for an
// OAuth error body.
const maxCaptured = 4 << 10

func (c *captureWriter) WriteHeader(status int) {
	c.status = status
	c.ResponseWriter.WriteHeader(status)
}

func (c *captureWriter) Write(b []byte) (int, error) {
	if room := maxCaptured - c.body.Len(); room > 0 && c.status >= http.StatusBadRequest {
		c.body.Write(b[:min(room, len(b))])
	}
	return c.ResponseWriter.Write(b)
}
