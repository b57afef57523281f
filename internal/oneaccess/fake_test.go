package oneaccess_test

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// fakeOneAccess is a tenant's identity center written from Part C of
// saas-v1-joint-login.md: authorize (signing in, without a form, the user
// the test names), token (both grants, single-use codes, the documented
// error bodies), userinfo (the documented 401 body), CAS login and
// p3/serviceValidate (XML by default, JSON on format=JSON) and logout.
type fakeOneAccess struct {
	srv          *httptest.Server
	clientID     string
	clientSecret string
	basic        bool // expect HTTP Basic client authentication
	// casXMLOnly answers XML even when JSON is asked, as a server that
	// ignores format does.
	casXMLOnly bool

	mu       sync.Mutex
	signedIn string // the userName authorize signs in
	users    map[string]map[string]string
	codes    map[string]codeGrant
	access   map[string]string // access token → userName
	refresh  map[string]string // refresh token → userName
	tickets  map[string]codeGrant
	// the last token request, as received
	tokenForm   url.Values
	tokenAuthz  string
	tokenCType  string
	userAuthz   string
	casQuery    url.Values
	tokenIssued int
}

type codeGrant struct{ userName, redirect string }

// fakeUsers are the identity center's users, with their userinfo fields.
var fakeUsers = map[string]map[string]string{
	"zhangsan": {
		"id": "20220413000001", "userName": "zhangsan", "name": "Zhang San",
		"email": "zhangsan@acme.example", "mobile": "13800000001", "role": "admin",
		"organizationCode": "10000", "organizationName": "R&D", "tenant": "68cbc86abc2018ab880d92f36422fa0e",
	},
}

func newFakeOneAccess(t *testing.T, clientID, clientSecret string, basic bool) *fakeOneAccess {
	t.Helper()
	f := &fakeOneAccess{
		clientID: clientID, clientSecret: clientSecret, basic: basic,
		signedIn: "zhangsan", users: fakeUsers,
		codes: map[string]codeGrant{}, access: map[string]string{},
		refresh: map[string]string{}, tickets: map[string]codeGrant{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/oauth2/authorize", f.authorize)
	mux.HandleFunc("POST /api/v1/oauth2/token", f.token)
	mux.HandleFunc("GET /api/v1/oauth2/userinfo", f.userinfo)
	mux.HandleFunc("GET /api/v1/cas/login", f.casLogin)
	mux.HandleFunc("GET /api/v1/cas/p3/serviceValidate", f.casValidate)
	mux.HandleFunc("GET /api/v1/logout", f.logout)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func randomToken(prefix string) string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func oauthError(w http.ResponseWriter, status int, code, descr string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": descr})
}

func (f *fakeOneAccess) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("client_id") != f.clientID || q.Get("response_type") != "code" || q.Get("scope") != "get_user_info" {
		http.Error(w, "bad authorize request", http.StatusBadRequest)
		return
	}
	redirect, err := url.Parse(q.Get("redirect_uri"))
	if err != nil || !redirect.IsAbs() {
		http.Error(w, "bad redirect_uri", http.StatusBadRequest)
		return
	}
	code := randomToken("code-")
	f.mu.Lock()
	f.codes[code] = codeGrant{userName: f.signedIn, redirect: redirect.String()}
	f.mu.Unlock()
	back := redirect.Query()
	back.Set("code", code)
	if s := q.Get("state"); s != "" {
		back.Set("state", s)
	}
	redirect.RawQuery = back.Encode()
	http.Redirect(w, r, redirect.String(), http.StatusFound)
}

func (f *fakeOneAccess) token(w http.ResponseWriter, r *http.Request) {
	ctype, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ctype != "application/x-www-form-urlencoded" || r.ParseForm() != nil || len(r.URL.Query()) != 0 {
		oauthError(w, http.StatusBadRequest, "invalid_request", "form expected")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokenForm, f.tokenAuthz, f.tokenCType = r.PostForm, r.Header.Get("Authorization"), r.Header.Get("Content-Type")
	id, secret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if f.basic {
		u, p, ok := r.BasicAuth()
		id, _ = url.QueryUnescape(u)
		secret, _ = url.QueryUnescape(p)
		if !ok || r.PostForm.Has("client_secret") {
			id, secret = "", ""
		}
	}
	if id != f.clientID {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "Client ID mismatch")
		return
	}
	if secret != f.clientSecret {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "Bad client credentials")
		return
	}
	var userName string
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		g, ok := f.codes[r.PostForm.Get("code")]
		delete(f.codes, r.PostForm.Get("code")) // single use
		if !ok || g.redirect != r.PostForm.Get("redirect_uri") {
			oauthError(w, http.StatusBadRequest, "invalid_grant", "Invalid authorization code")
			return
		}
		userName = g.userName
	case "refresh_token":
		u, ok := f.refresh[r.PostForm.Get("refresh_token")]
		if !ok {
			oauthError(w, http.StatusBadRequest, "invalid_grant", "Invalid refresh token")
			return
		}
		delete(f.refresh, r.PostForm.Get("refresh_token"))
		userName = u
	default:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "Unsupported grant type")
		return
	}
	at, rt := randomToken("at-"), randomToken("rt-")
	f.access[at], f.refresh[rt] = userName, userName
	f.tokenIssued++
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": at, "token_type": "Bearer", "expires_in": 7200,
		"scope": "get_user_info", "refresh_token": rt,
	})
}

func (f *fakeOneAccess) userinfo(w http.ResponseWriter, r *http.Request) {
	authz := r.Header.Get("Authorization")
	f.mu.Lock()
	f.userAuthz = authz
	userName, ok := f.access[strings.TrimPrefix(authz, "Bearer ")]
	f.mu.Unlock()
	if !ok || !strings.HasPrefix(authz, "Bearer ") {
		oauthError(w, http.StatusUnauthorized, "unauthorized", "Full authentication is required to access this resource")
		return
	}
	writeJSON(w, http.StatusOK, f.users[userName])
}

func (f *fakeOneAccess) casLogin(w http.ResponseWriter, r *http.Request) {
	service, err := url.Parse(r.URL.Query().Get("service"))
	if err != nil || !service.IsAbs() {
		http.Error(w, "bad service", http.StatusBadRequest)
		return
	}
	ticket := randomToken("ST-")
	f.mu.Lock()
	f.tickets[ticket] = codeGrant{userName: f.signedIn, redirect: service.String()}
	f.mu.Unlock()
	q := service.Query()
	q.Set("ticket", ticket)
	service.RawQuery = q.Encode()
	http.Redirect(w, r, service.String(), http.StatusFound)
}

func (f *fakeOneAccess) casValidate(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f.mu.Lock()
	f.casQuery = q
	ticket := q.Get("ticket")
	g, ok := f.tickets[ticket]
	delete(f.tickets, ticket) // single use
	f.mu.Unlock()
	asJSON := strings.EqualFold(q.Get("format"), "JSON") && !f.casXMLOnly
	if !ok || g.redirect != q.Get("service") {
		descr := fmt.Sprintf("Ticket '%s' not recognized", ticket)
		if asJSON {
			writeJSON(w, http.StatusOK, map[string]any{"serviceResponse": map[string]any{
				"authenticationFailure": map[string]string{"code": "INVALID_TICKET", "description": descr}}})
			return
		}
		w.Header().Set("Content-Type", "application/xml;charset=UTF-8")
		var b strings.Builder
		_ = xml.EscapeText(&b, []byte(descr))
		fmt.Fprintf(w, "<cas:serviceResponse xmlns:cas=\"http://www.yale.edu/tp/cas\">\n"+
			"  <cas:authenticationFailure code=\"INVALID_TICKET\">%s</cas:authenticationFailure>\n</cas:serviceResponse>\n", b.String())
		return
	}
	u := f.users[g.userName]
	attrs := map[string]string{
		"authenticationDate": "2026-01-02T03:04:05Z", "longTermAuthenticationRequestTokenUsed": "false",
		"isFromNewLogin": "true", "role": u["role"], "organizationCode": u["organizationCode"],
		"name": u["name"], "userName": u["userName"], "tenant": u["tenant"],
	}
	if asJSON {
		writeJSON(w, http.StatusOK, map[string]any{"serviceResponse": map[string]any{
			"authenticationSuccess": map[string]any{"user": u["id"], "attributes": attrs}}})
		return
	}
	w.Header().Set("Content-Type", "application/xml;charset=UTF-8")
	var b strings.Builder
	b.WriteString("<cas:serviceResponse xmlns:cas=\"http://www.yale.edu/tp/cas\">\n <cas:authenticationSuccess>\n  <cas:user>")
	_ = xml.EscapeText(&b, []byte(u["id"]))
	b.WriteString("</cas:user>\n  <cas:attributes>\n")
	for _, k := range []string{"authenticationDate", "longTermAuthenticationRequestTokenUsed", "isFromNewLogin", "role", "organizationCode", "name", "userName", "tenant"} {
		fmt.Fprintf(&b, "   <cas:%s>", k)
		_ = xml.EscapeText(&b, []byte(attrs[k]))
		fmt.Fprintf(&b, "</cas:%s>\n", k)
	}
	b.WriteString("  </cas:attributes>\n </cas:authenticationSuccess>\n</cas:serviceResponse>\n")
	_, _ = w.Write([]byte(b.String()))
}

func (f *fakeOneAccess) logout(w http.ResponseWriter, r *http.Request) {
	to, err := url.Parse(r.URL.Query().Get("redirect_url"))
	if err != nil || !to.IsAbs() {
		http.Error(w, "bad redirect_url", http.StatusBadRequest)
		return
	}
	http.Redirect(w, r, to.String(), http.StatusFound)
}
