package oneaccess_test

// The interoperability test (issue 13 item 7): koobridge's OneAccess client
// against a real identity server, LemonLDAP::NG 2.16 (Debian's
// lemonldap-ng) as scripts/llng-setup installs, configures and starts it.
// Our fake OneAccess and our client could share a misreading of the
// protocol; LemonLDAP::NG's OAuth 2.0 / OpenID Connect provider and CAS 3.0
// server were written by others from the RFCs and the CAS specification.
//
// The server is named by KOOBRIDGE_TEST_LLNG (its portal URL; default
// llngDefaultURL, the setup script's). The test fails when it cannot be
// reached and is skipped only when the variable is "off".

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/oneaccess"
)

// What scripts/llng-setup configures: the portal, its one OpenID Connect
// relying party and its one CAS service. Test credentials of a throwaway
// server, not secrets.
const (
	llngEnvVar       = "KOOBRIDGE_TEST_LLNG"
	llngDefaultURL   = "http://localhost:19480/"
	llngClientID     = "koobridge-interop"
	llngClientSecret = "koobridge-interop-secret"
	// llngRPAddr is where the test's relying party listens: the redirect
	// URI and the CAS service registered at LemonLDAP::NG are on it.
	llngRPAddr      = "127.0.0.1:19481"
	llngRedirectURI = "http://" + llngRPAddr + "/callback"
	llngCASService  = "http://" + llngRPAddr + "/cas"
	// llngScope adds openid: LemonLDAP::NG refuses an authorization
	// request without it ("No openid scope found"), OneAccess does not
	// need it.
	llngScope = "openid " + oneaccess.DefaultScope
)

// llngUsers are the Demo backend's accounts (password = user name), as
// LemonLDAP::NG describes them.
var llngUsers = map[string]oneaccess.User{
	"dwho":   {UserName: "dwho", Name: "Doctor Who", Email: "dwho@badwolf.org"},
	"rtyler": {UserName: "rtyler", Name: "Rose Tyler", Email: "rtyler@badwolf.org"},
	"msmith": {UserName: "msmith", Name: "Mickey Smith", Email: "msmith@badwolf.org"},
}

// llngPortal returns the portal's base URL (with a trailing slash) after
// checking that it serves its OpenID Connect discovery document naming
// itself as issuer. The test fails when it does not, and is skipped when
// KOOBRIDGE_TEST_LLNG is "off".
func llngPortal(t *testing.T) string {
	t.Helper()
	base := os.Getenv(llngEnvVar)
	switch base {
	case "off":
		t.Skip(llngEnvVar + "=off: the LemonLDAP::NG interop test is switched off")
	case "":
		base = llngDefaultURL
	}
	if !strings.HasSuffix(base, "/") {
		base += "/"
	}
	hint := fmt.Sprintf("Start it with scripts/llng-setup (as root; .ci/run does), point %s at its portal URL, or set %s=off to skip this test.", llngEnvVar, llngEnvVar)
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(base + ".well-known/openid-configuration")
	if err != nil {
		t.Fatalf("LemonLDAP::NG at %s is unreachable: %v\n%s", base, err, hint)
	}
	defer resp.Body.Close()
	var meta struct {
		Issuer string `json:"issuer"`
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("LemonLDAP::NG at %s: discovery answered HTTP %d\n%s", base, resp.StatusCode, hint)
	}
	if err := json.NewDecoder(resp.Body).Decode(&meta); err != nil {
		t.Fatalf("LemonLDAP::NG at %s: discovery document: %v\n%s", base, err, hint)
	}
	if want := strings.TrimSuffix(base, "/"); meta.Issuer != want {
		t.Fatalf("LemonLDAP::NG at %s names itself %q, want %q\n%s", base, meta.Issuer, want, hint)
	}
	return base
}

// llngClient is koobridge's client with every endpoint pointed at
// LemonLDAP::NG's (its OpenID Connect issuer under /oauth2/, its CAS
// server under /cas/), as a tenant's overrides would.
func llngClient(t *testing.T, base string, basic bool, secret string) *oneaccess.Client {
	t.Helper()
	c, err := oneaccess.New(oneaccess.Config{
		DomainName:     strings.TrimSuffix(base, "/"),
		ClientID:       llngClientID,
		ClientSecret:   secret,
		AuthStyleBasic: basic,
		Scope:          llngScope,
		AuthorizeURL:   base + "oauth2/authorize",
		TokenURL:       base + "oauth2/token",
		UserInfoURL:    base + "oauth2/userinfo",
		LogoutURL:      base + "oauth2/logout",
		CASLoginURL:    base + "cas/login",
		CASValidateURL: base + "cas/p3/serviceValidate",
		Now:            func() time.Time { return fixedNow },
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// llngRP is the vendor's side that the browser lands on: it records the
// query of every request to the redirect URI and the CAS service.
type llngRP struct {
	mu   sync.Mutex
	seen map[string][]url.Values // path → queries, in order
}

func (rp *llngRP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/callback" && r.URL.Path != "/cas" {
		http.NotFound(w, r)
		return
	}
	rp.mu.Lock()
	rp.seen[r.URL.Path] = append(rp.seen[r.URL.Path], r.URL.Query())
	rp.mu.Unlock()
	_, _ = io.WriteString(w, "landed")
}

// last is the query of the latest request to path.
func (rp *llngRP) last(t *testing.T, path string) url.Values {
	t.Helper()
	rp.mu.Lock()
	defer rp.mu.Unlock()
	q := rp.seen[path]
	if len(q) == 0 {
		t.Fatalf("the relying party never received %s", path)
	}
	return q[len(q)-1]
}

// startLLNGRP serves the relying party on llngRPAddr, the address
// registered at LemonLDAP::NG, for the rest of the test.
func startLLNGRP(t *testing.T) *llngRP {
	t.Helper()
	rp := &llngRP{seen: map[string][]url.Values{}}
	l, err := net.Listen("tcp", llngRPAddr)
	if err != nil {
		t.Fatalf("the relying party needs %s (its redirect URI and CAS service are registered there by scripts/llng-setup): %v", llngRPAddr, err)
	}
	srv := httptest.NewUnstartedServer(rp)
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return rp
}

// newBrowser is a browser stand-in: a cookie jar of its own, following
// every redirect.
func newBrowser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 30 * time.Second}
}

// browse GETs u and returns the final page after the redirects, read whole.
func browse(t *testing.T, b *http.Client, u string) (*http.Response, string) {
	t.Helper()
	resp, err := b.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	return readPage(t, resp)
}

func readPage(t *testing.T, resp *http.Response) (*http.Response, string) {
	t.Helper()
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading %s: %v", resp.Request.URL, err)
	}
	return resp, string(body)
}

var (
	loginFormRE = regexp.MustCompile(`(?s)<form\b([^>]*\bid="lform"[^>]*)>(.*?)</form>`)
	inputRE     = regexp.MustCompile(`<input\b([^>]*)>`)
	attrRE      = regexp.MustCompile(`([a-zA-Z_:][-a-zA-Z0-9_:.]*)\s*=\s*"([^"]*)"`)
)

// attrs reads a tag's double-quoted attributes.
func attrs(tag string) map[string]string {
	m := map[string]string{}
	for _, a := range attrRE.FindAllStringSubmatch(tag, -1) {
		m[strings.ToLower(a[1])] = html.UnescapeString(a[2])
	}
	return m
}

// signIn fills in and posts the portal's login form on page as a browser
// would (its hidden fields kept, user and password typed in, posted to its
// action resolved against the page's URL) and returns the page the
// redirects end on.
func signIn(t *testing.T, b *http.Client, page *http.Response, body, user, password string) (*http.Response, string) {
	t.Helper()
	m := loginFormRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("%s (HTTP %d) has no login form:\n%.2000s", page.Request.URL, page.StatusCode, body)
	}
	form := attrs(m[1])
	if !strings.EqualFold(form["method"], "post") {
		t.Fatalf("the login form's method is %q, want post", form["method"])
	}
	fields := url.Values{}
	for _, in := range inputRE.FindAllStringSubmatch(m[2], -1) {
		a := attrs(in[1])
		switch {
		case a["name"] == "user" || a["name"] == "password":
		case a["type"] == "hidden" && a["name"] != "":
			fields.Set(a["name"], a["value"])
		}
	}
	for _, need := range []string{"user", "password", "token"} {
		if !regexp.MustCompile(`<input\b[^>]*\bname="` + need + `"`).MatchString(m[2]) {
			t.Fatalf("the login form has no %s field", need)
		}
	}
	fields.Set("user", user)
	fields.Set("password", password)
	action, err := page.Request.URL.Parse(form["action"])
	if err != nil {
		t.Fatalf("the login form's action %q: %v", form["action"], err)
	}
	action.Fragment = ""
	resp, err := b.PostForm(action.String(), fields)
	if err != nil {
		t.Fatalf("posting the login form: %v", err)
	}
	return readPage(t, resp)
}

// landedAt checks that the browser ended on the relying party's path.
func landedAt(t *testing.T, resp *http.Response, body, path string) {
	t.Helper()
	if got := resp.Request.URL; resp.StatusCode != http.StatusOK || got.Host != llngRPAddr || got.Path != path || body != "landed" {
		t.Fatalf("the browser ended on %s (HTTP %d), want http://%s%s:\n%.2000s", got, resp.StatusCode, llngRPAddr, path, body)
	}
}

func randomState(t *testing.T) string {
	t.Helper()
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// wantError checks that err is exactly the *oneaccess.Error want and that
// its text carries none of the credentials.
func wantError(t *testing.T, what string, err error, want oneaccess.Error, credentials ...string) {
	t.Helper()
	var e *oneaccess.Error
	if !errors.As(err, &e) {
		t.Fatalf("%s: error %v (%T), want *oneaccess.Error %+v", what, err, err, want)
	}
	if *e != want {
		t.Fatalf("%s: *oneaccess.Error %+v, want %+v", what, *e, want)
	}
	for _, c := range credentials {
		if strings.Contains(err.Error(), c) {
			t.Fatalf("%s: the error %q carries a credential", what, err)
		}
	}
}

// TestLLNGInterop signs users in at LemonLDAP::NG through its login form
// and runs every call of koobridge's client on what it answers: the code
// exchange (client secret in the form and by HTTP Basic), the user info,
// the refresh, the single use of codes and tickets, and CAS 3.0 ticket
// validation in the same single sign-on session and in a fresh one.
func TestLLNGInterop(t *testing.T) {
	base := llngPortal(t)
	rp := startLLNGRP(t)
	ctx := context.Background()

	for _, tc := range []struct {
		name  string
		user  string
		basic bool
	}{
		{"client secret in the form", "dwho", false},
		{"client secret by HTTP Basic", "rtyler", true},
		{"another user", "msmith", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := llngUsers[tc.user]
			c := llngClient(t, base, tc.basic, llngClientSecret)
			b := newBrowser(t)

			// Authorization request → login form → redirect with the code.
			state := randomState(t)
			page, body := browse(t, b, c.AuthCodeURL(state, llngRedirectURI))
			resp, body := signIn(t, b, page, body, tc.user, tc.user)
			landedAt(t, resp, body, "/callback")
			q := rp.last(t, "/callback")
			if q.Get("state") != state {
				t.Fatalf("state came back as %q, want %q", q.Get("state"), state)
			}
			code := q.Get("code")
			if code == "" || q.Get("error") != "" {
				t.Fatalf("the callback got no code: error %q %q", q.Get("error"), q.Get("error_description"))
			}

			// Code → tokens.
			tok, err := c.Exchange(ctx, code, llngRedirectURI)
			if err != nil {
				t.Fatalf("Exchange: %v", err)
			}
			if tok.AccessToken == "" || tok.RefreshToken == "" {
				t.Fatalf("Exchange gave access token %t, refresh token %t; want both", tok.AccessToken != "", tok.RefreshToken != "")
			}
			if tok.TokenType != "Bearer" || !tok.Expiry.Equal(fixedNow.Add(7200*time.Second)) {
				t.Fatalf("Exchange: token type %q, expiry %v; want Bearer, %v (expires_in 7200)", tok.TokenType, tok.Expiry, fixedNow.Add(7200*time.Second))
			}

			// The user info: UserName from preferred_username / sub.
			u, err := c.UserInfo(ctx, tok.AccessToken)
			if err != nil {
				t.Fatalf("UserInfo: %v", err)
			}
			if !reflect.DeepEqual(u, want) {
				t.Fatalf("UserInfo = %+v, want %+v", u, want)
			}

			// A code is good once.
			_, err = c.Exchange(ctx, code, llngRedirectURI)
			wantError(t, "Exchange of a used code", err, oneaccess.Error{Status: 400, Code: "invalid_grant"}, code, llngClientSecret)

			// Refresh: new access token, same user.
			tok2, err := c.Refresh(ctx, tok.RefreshToken)
			if err != nil {
				t.Fatalf("Refresh: %v", err)
			}
			if tok2.AccessToken == "" || tok2.AccessToken == tok.AccessToken || tok2.TokenType != "Bearer" ||
				!tok2.Expiry.Equal(fixedNow.Add(7200*time.Second)) || tok2.RefreshToken == "" {
				t.Fatalf("Refresh: new access token %t, token type %q, expiry %v, refresh token %t",
					tok2.AccessToken != "" && tok2.AccessToken != tok.AccessToken, tok2.TokenType, tok2.Expiry, tok2.RefreshToken != "")
			}
			if u2, err := c.UserInfo(ctx, tok2.AccessToken); err != nil || !reflect.DeepEqual(u2, want) {
				t.Fatalf("UserInfo after Refresh = %+v, %v; want %+v", u2, err, want)
			}

			// CAS in the same browser: the SSO session gives a ticket
			// without a login form.
			resp, body = browse(t, b, c.CASLoginURL(llngCASService))
			landedAt(t, resp, body, "/cas")
			ticket := rp.last(t, "/cas").Get("ticket")
			if !strings.HasPrefix(ticket, "ST-") {
				t.Fatalf("the CAS service got ticket %q, want ST-…", ticket)
			}
			cu, err := c.ValidateTicket(ctx, llngCASService, ticket)
			if err != nil {
				t.Fatalf("ValidateTicket: %v", err)
			}
			wantCAS := want
			wantCAS.ID = tc.user // cas:user
			if !reflect.DeepEqual(cu, wantCAS) {
				t.Fatalf("ValidateTicket = %+v, want %+v", cu, wantCAS)
			}

			// A ticket is good once.
			_, err = c.ValidateTicket(ctx, llngCASService, ticket)
			wantError(t, "ValidateTicket of a used ticket", err, oneaccess.Error{Status: 200, Code: "INVALID_TICKET", Description: "Ticket not found"}, ticket)
		})
	}

	t.Run("CAS sign-in in a fresh browser", func(t *testing.T) {
		c := llngClient(t, base, false, llngClientSecret)
		b := newBrowser(t)
		page, body := browse(t, b, c.CASLoginURL(llngCASService))
		resp, body := signIn(t, b, page, body, "msmith", "msmith")
		landedAt(t, resp, body, "/cas")
		ticket := rp.last(t, "/cas").Get("ticket")
		cu, err := c.ValidateTicket(ctx, llngCASService, ticket)
		if err != nil {
			t.Fatalf("ValidateTicket: %v", err)
		}
		want := llngUsers["msmith"]
		want.ID = "msmith"
		if !reflect.DeepEqual(cu, want) {
			t.Fatalf("ValidateTicket = %+v, want %+v", cu, want)
		}
	})
}

// TestLLNGRefusals sends LemonLDAP::NG what it must refuse and checks that
// each refusal reaches the caller as the *oneaccess.Error with its code,
// and without the credentials of the request in its text.
func TestLLNGRefusals(t *testing.T) {
	base := llngPortal(t)
	ctx := context.Background()
	const bogus = "0123456789abcdef0123456789abcdef"

	for _, tc := range []struct {
		name string
		call func(*oneaccess.Client) error
		// secret is the client secret the client is built with.
		secret string
		want   oneaccess.Error
	}{
		{"unknown code", func(c *oneaccess.Client) error {
			_, err := c.Exchange(ctx, bogus, llngRedirectURI)
			return err
		}, llngClientSecret, oneaccess.Error{Status: 400, Code: "invalid_grant"}},
		{"wrong client secret", func(c *oneaccess.Client) error {
			_, err := c.Exchange(ctx, bogus, llngRedirectURI)
			return err
		}, "not-" + llngClientSecret, oneaccess.Error{Status: 400, Code: "invalid_client"}},
		{"unknown access token", func(c *oneaccess.Client) error {
			_, err := c.UserInfo(ctx, bogus)
			return err
		}, llngClientSecret, oneaccess.Error{Status: 401, Code: "unauthorized"}},
		// LemonLDAP::NG answers invalid_request, not RFC 6749's
		// invalid_grant, for a refresh token it does not know.
		{"unknown refresh token", func(c *oneaccess.Client) error {
			_, err := c.Refresh(ctx, bogus)
			return err
		}, llngClientSecret, oneaccess.Error{Status: 400, Code: "invalid_request"}},
		{"unknown CAS ticket", func(c *oneaccess.Client) error {
			_, err := c.ValidateTicket(ctx, llngCASService, "ST-"+bogus)
			return err
		}, llngClientSecret, oneaccess.Error{Status: 200, Code: "INVALID_TICKET", Description: "Ticket not found"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := llngClient(t, base, false, tc.secret)
			wantError(t, tc.name, tc.call(c), tc.want, bogus, tc.secret)
		})
	}
}
