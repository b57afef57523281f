package sso_test

import (
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// fakeOneAccess is a OneAccess identity center as Part C describes it:
// authorize (the signed-in user is whoever the test says, as an enterprise
// directory signs in every user of the tenant), token (both grants,
// single-use codes, form client authentication, the documented error
// bodies), userinfo (Bearer, the documented 401), logout, and CAS 3.0
// (Part C.4): login (302 to the service with a ticket) and
// p3/serviceValidate (single-use tickets bound to their service; XML by
// default, JSON with format=JSON).
type fakeOneAccess struct {
	srv          *httptest.Server
	clientID     string
	clientSecret string
	tenantID     string

	mu        sync.Mutex
	user      string            // who signs in at authorize
	users     map[string]string // userName → name
	codes     map[string]string // code → userName
	access    map[string]string // access token → userName
	refresh   map[string]string // refresh token → userName
	n         int
	authorize int // authorize requests seen
	refreshes int // refresh grants answered
	logouts   []string
	failToken bool // answer invalid_grant to every code
	downToken bool // answer 500 server_error to every token request
	rotate    bool // a refresh spends its refresh token
	// refreshGate, when set, holds each refresh grant until the test
	// receives from it and closes refreshGo.
	refreshGate chan struct{}
	refreshGo   chan struct{}

	tickets    map[string]casTicket // ticket → who, for which service
	casLogins  []string             // the service of each CAS login
	validated  []string             // the service of each validation
	casXML     bool                 // answer XML even to format=JSON, as OneAccess's own reference shows
	failTicket bool                 // answer INVALID_TICKET to every ticket
	casTenant  string               // the tenant attribute; "" means tenantID
}

type casTicket struct{ user, service string }

func newFakeOneAccess(t *testing.T, clientID, clientSecret, tenantID string) *fakeOneAccess {
	f := &fakeOneAccess{clientID: clientID, clientSecret: clientSecret, tenantID: tenantID,
		users: map[string]string{}, codes: map[string]string{}, access: map[string]string{}, refresh: map[string]string{},
		tickets: map[string]casTicket{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/oauth2/authorize", f.handleAuthorize)
	mux.HandleFunc("POST /api/v1/oauth2/token", f.handleToken)
	mux.HandleFunc("GET /api/v1/oauth2/userinfo", f.handleUserInfo)
	mux.HandleFunc("GET /api/v1/logout", f.handleLogout)
	mux.HandleFunc("GET /api/v1/cas/login", f.handleCASLogin)
	mux.HandleFunc("GET /api/v1/cas/p3/serviceValidate", f.handleServiceValidate)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeOneAccess) set(fn func(f *fakeOneAccess)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fakeOneAccess) next(prefix string) string {
	f.n++
	return fmt.Sprintf("%s-%d", prefix, f.n)
}

func (f *fakeOneAccess) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.authorize++
	q := r.URL.Query()
	if q.Get("client_id") != f.clientID || q.Get("response_type") != "code" || q.Get("redirect_uri") == "" {
		http.Error(w, "bad authorize request", http.StatusBadRequest)
		return
	}
	code := f.next("code")
	f.codes[code] = f.user
	u, _ := url.Parse(q.Get("redirect_uri"))
	v := u.Query()
	v.Set("code", code)
	if s := q.Get("state"); s != "" {
		v.Set("state", s)
	}
	u.RawQuery = v.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeOneAccess) handleToken(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	gate, goOn := f.refreshGate, f.refreshGo
	f.mu.Unlock()
	if gate != nil && r.PostFormValue("grant_type") == "refresh_token" {
		gate <- struct{}{}
		<-goOn
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := r.ParseForm(); err != nil {
		writeJSON(w, 400, map[string]string{"error": "invalid_request"})
		return
	}
	if r.PostForm.Get("client_id") != f.clientID || r.PostForm.Get("client_secret") != f.clientSecret {
		writeJSON(w, 401, map[string]string{"error": "invalid_client", "error_description": "Bad client credentials"})
		return
	}
	if f.downToken {
		writeJSON(w, 500, map[string]string{"error": "server_error", "error_description": "Service unavailable"})
		return
	}
	var user string
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		code := r.PostForm.Get("code")
		u, ok := f.codes[code]
		delete(f.codes, code)
		if !ok || f.failToken {
			writeJSON(w, 400, map[string]string{"error": "invalid_grant", "error_description": "Invalid authorization code"})
			return
		}
		user = u
	case "refresh_token":
		rt := r.PostForm.Get("refresh_token")
		u, ok := f.refresh[rt]
		if !ok {
			writeJSON(w, 400, map[string]string{"error": "invalid_grant", "error_description": "Invalid refresh token"})
			return
		}
		if f.rotate {
			delete(f.refresh, rt)
		}
		f.refreshes++
		user = u
	default:
		writeJSON(w, 400, map[string]string{"error": "unsupported_grant_type"})
		return
	}
	at, rt := f.next("at"), f.next("rt")
	f.access[at], f.refresh[rt] = user, user
	writeJSON(w, 200, map[string]any{"access_token": at, "token_type": "Bearer", "expires_in": 7200,
		"scope": "get_user_info", "refresh_token": rt})
}

func (f *fakeOneAccess) handleUserInfo(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	user, ok := f.access[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
	if !ok {
		writeJSON(w, 401, map[string]string{"error": "unauthorized",
			"error_description": "Full authentication is required to access this resource"})
		return
	}
	writeJSON(w, 200, map[string]string{"id": "id-" + user, "userName": user, "name": "OneAccess " + user,
		"role": "user", "organizationCode": "oa-org", "tenant": f.tenantID})
}

func (f *fakeOneAccess) handleLogout(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	to := r.URL.Query().Get("redirect_url")
	f.logouts = append(f.logouts, to)
	http.Redirect(w, r, to, http.StatusFound)
}

func (f *fakeOneAccess) handleCASLogin(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	service := r.URL.Query().Get("service")
	u, err := url.Parse(service)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		http.Error(w, "bad service", http.StatusBadRequest)
		return
	}
	f.casLogins = append(f.casLogins, service)
	ticket := f.next("ST")
	f.tickets[ticket] = casTicket{user: f.user, service: service}
	v := u.Query()
	v.Set("ticket", ticket)
	u.RawQuery = v.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

// casAttributeNames are the attributes Part C.4 lists, in its order.
var casAttributeNames = []string{"authenticationDate", "longTermAuthenticationRequestTokenUsed", "isFromNewLogin",
	"role", "organizationCode", "name", "userName", "tenant"}

func (f *fakeOneAccess) handleServiceValidate(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	q := r.URL.Query()
	service, ticket := q.Get("service"), q.Get("ticket")
	f.validated = append(f.validated, service)
	t, ok := f.tickets[ticket]
	delete(f.tickets, ticket) // single use
	var code, desc string
	switch {
	case service == "" || ticket == "":
		code, desc = "INVALID_REQUEST", "service and ticket are required"
	case !ok || f.failTicket:
		code, desc = "INVALID_TICKET", "Ticket "+ticket+" not recognized"
	case t.service != service:
		code, desc = "INVALID_SERVICE", "Ticket "+ticket+" does not match the service"
	}
	tenant := f.tenantID
	if f.casTenant != "" {
		tenant = f.casTenant
	}
	attrs := map[string]string{"authenticationDate": "2024-05-01T08:00:00Z", "longTermAuthenticationRequestTokenUsed": "false",
		"isFromNewLogin": "true", "role": "user", "organizationCode": "oa-org", "name": "OneAccess " + t.user,
		"userName": t.user, "tenant": tenant}
	if q.Get("format") == "JSON" && !f.casXML {
		if code != "" {
			writeJSON(w, 200, map[string]any{"serviceResponse": map[string]any{
				"authenticationFailure": map[string]string{"code": code, "description": desc}}})
			return
		}
		writeJSON(w, 200, map[string]any{"serviceResponse": map[string]any{
			"authenticationSuccess": map[string]any{"user": "id-" + t.user, "attributes": attrs}}})
		return
	}
	var b strings.Builder
	b.WriteString("<cas:serviceResponse xmlns:cas=\"http://www.yale.edu/tp/cas\">\n")
	if code != "" {
		fmt.Fprintf(&b, "  <cas:authenticationFailure code=\"%s\">%s</cas:authenticationFailure>\n", code, html.EscapeString(desc))
	} else {
		fmt.Fprintf(&b, "  <cas:authenticationSuccess>\n    <cas:user>id-%s</cas:user>\n    <cas:attributes>\n", html.EscapeString(t.user))
		for _, k := range casAttributeNames {
			fmt.Fprintf(&b, "      <cas:%s>%s</cas:%s>\n", k, html.EscapeString(attrs[k]), k)
		}
		b.WriteString("    </cas:attributes>\n  </cas:authenticationSuccess>\n")
	}
	b.WriteString("</cas:serviceResponse>\n")
	w.Header().Set("Content-Type", "application/xml;charset=UTF-8")
	_, _ = io.WriteString(w, b.String())
}
