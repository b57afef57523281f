package conformance

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/koobridge/koobridge/emulator"
	"github.com/koobridge/koobridge/internal/testseller"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
)

// rpFaults make the test's relying party misbehave.
type rpFaults struct {
	AdmitAny        bool // admit every user the identity center signs in
	SkipState       bool // do not check state at the callback
	EncryptedSecret bool // send applicationSync's clientSecret as received, still encrypted
	NoExchange      bool // never exchange the code (so nobody is signed in)
	LocalLogout     bool // end the app's session only, not the identity center's
}

// rpTenant is what the relying party learnt of a tenant from the Kit.
type rpTenant struct {
	domain, clientID, secret, cipher string
	users                            map[string]bool // userName → authorised and enabled
}

// relyingParty is a seller of the test's own: testseller for the
// production interface and the Kit, plus an app that signs users in
// through the tenant's OneAccess as Part C says (or as f breaks it).
type relyingParty struct {
	f      rpFaults
	key    *rsa.PrivateKey
	seller *testseller.Seller
	url    string // the app's base URL

	mu       sync.Mutex
	tenants  map[string]*rpTenant
	sessions map[string]string // session cookie → userName@tenantId
}

var (
	rpKeyOnce sync.Once
	rpKey     *rsa.PrivateKey
)

func newRelyingParty(t *testing.T, f rpFaults) *relyingParty {
	t.Helper()
	rpKeyOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		rpKey = k
	})
	rp := &relyingParty{f: f, key: rpKey, tenants: map[string]*rpTenant{}, sessions: map[string]string{}}
	rp.seller = testseller.NewWithKeys(testseller.Keys{Basic: testKey, General: testGeneralKey, Kit: testKitKey, RSA: rpKey}, testseller.Faults{})
	return rp
}

// ServeHTTP serves the app's pages and passes every other request to
// testseller, reading the Kit calls on the way.
func (rp *relyingParty) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/app/login":
		rp.login(w, r)
	case "/app/callback":
		rp.callback(w, r)
	case "/app/whoami":
		rp.whoami(w, r)
	case "/app/logout":
		rp.logout(w, r)
	default:
		if name, _, ok := protocol.KitOperation(r.URL.Path); ok && r.Method == http.MethodPost {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			rp.kit(name, body)
		}
		rp.seller.ServeHTTP(w, r)
	}
}

// kit keeps what the relying party needs of a V2 Kit call.
func (rp *relyingParty) kit(name string, body []byte) {
	var b struct {
		TenantID     string `json:"tenantId"`
		DomainName   string `json:"domainName"`
		ClientID     string `json:"clientId"`
		ClientSecret string `json:"clientSecret"`
		Flag         int    `json:"flag"`
		UserList     []struct {
			UserName string `json:"userName"`
			Enable   any    `json:"enable"`
		} `json:"userList"`
	}
	if json.Unmarshal(body, &b) != nil {
		return
	}
	rp.mu.Lock()
	defer rp.mu.Unlock()
	tn := rp.tenants[b.TenantID]
	if tn == nil {
		tn = &rpTenant{users: map[string]bool{}}
		rp.tenants[b.TenantID] = tn
	}
	switch name {
	case protocol.KitTenantSync:
		tn.domain = b.DomainName
	case protocol.KitApplicationSync:
		secret, err := sign.DecryptClientSecret(rp.key, b.ClientSecret)
		if err == nil {
			tn.clientID, tn.secret, tn.cipher = b.ClientID, secret, b.ClientSecret
		}
	case protocol.KitAuthSync:
		for _, u := range b.UserList {
			enabled := u.Enable == true || u.Enable == "true"
			switch b.Flag {
			case protocol.KitFlagAdd, protocol.KitFlagModify:
				tn.users[u.UserName] = enabled
			default:
				delete(tn.users, u.UserName)
			}
		}
	}
}

func (rp *relyingParty) tenant(id string) *rpTenant {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	return rp.tenants[id]
}

func (rp *relyingParty) login(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("tenant")
	tn := rp.tenant(id)
	if tn == nil {
		http.Error(w, "unknown tenant", http.StatusNotFound)
		return
	}
	state := emulator.NewNonce()
	http.SetCookie(w, &http.Cookie{Name: "rp_state", Value: state, Path: "/app/"})
	http.SetCookie(w, &http.Cookie{Name: "rp_tenant", Value: id, Path: "/app/"})
	q := url.Values{"client_id": {tn.clientID}, "redirect_uri": {rp.url + "/app/callback"}, "response_type": {"code"},
		"scope": {"get_user_info"}, "state": {state}}
	http.Redirect(w, r, tn.domain+"/api/v1/oauth2/authorize?"+q.Encode(), http.StatusFound)
}

func (rp *relyingParty) callback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	c, err := r.Cookie("rp_state")
	if !rp.f.SkipState && (err != nil || c.Value != q.Get("state")) {
		http.Error(w, "state mismatch", http.StatusBadRequest)
		return
	}
	tc, err := r.Cookie("rp_tenant")
	if err != nil || rp.tenant(tc.Value) == nil {
		http.Error(w, "no tenant", http.StatusBadRequest)
		return
	}
	tn := rp.tenant(tc.Value)
	if rp.f.NoExchange {
		http.Error(w, "signed in? who knows", http.StatusOK)
		return
	}
	secret := tn.secret
	if rp.f.EncryptedSecret {
		secret = tn.cipher
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "redirect_uri": {rp.url + "/app/callback"},
		"client_id": {tn.clientID}, "client_secret": {secret}}
	resp, err := http.PostForm(tn.domain+"/api/v1/oauth2/token", form)
	if err != nil {
		http.Error(w, "token", http.StatusBadGateway)
		return
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&tok)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		http.Error(w, "token refused", http.StatusForbidden)
		return
	}
	req, _ := http.NewRequest(http.MethodGet, tn.domain+"/api/v1/oauth2/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		http.Error(w, "userinfo", http.StatusBadGateway)
		return
	}
	var ui struct {
		UserName string `json:"userName"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&ui)
	_ = resp.Body.Close()
	rp.mu.Lock()
	admitted := tn.users[ui.UserName] || rp.f.AdmitAny
	rp.mu.Unlock()
	if ui.UserName == "" || !admitted {
		http.Error(w, "not authorised", http.StatusForbidden)
		return
	}
	sid := emulator.NewNonce()
	rp.mu.Lock()
	rp.sessions[sid] = ui.UserName + "@" + tc.Value
	rp.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: "rp_session", Value: sid, Path: "/app/"})
	http.Redirect(w, r, rp.url+"/app/whoami", http.StatusFound)
}

func (rp *relyingParty) session(r *http.Request) (string, string) {
	c, err := r.Cookie("rp_session")
	if err != nil {
		return "", ""
	}
	rp.mu.Lock()
	defer rp.mu.Unlock()
	return c.Value, rp.sessions[c.Value]
}

func (rp *relyingParty) whoami(w http.ResponseWriter, r *http.Request) {
	if _, who := rp.session(r); who != "" {
		fmt.Fprintf(w, "signed in as %s\n", who)
		return
	}
	http.Error(w, "signed out", http.StatusUnauthorized)
}

func (rp *relyingParty) logout(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST", http.StatusMethodNotAllowed)
		return
	}
	sid, who := rp.session(r)
	rp.mu.Lock()
	delete(rp.sessions, sid)
	rp.mu.Unlock()
	_, tenantID, _ := strings.Cut(who, "@")
	tn := rp.tenant(tenantID)
	if tn == nil || rp.f.LocalLogout {
		http.Redirect(w, r, rp.url+"/app/whoami", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, tn.domain+"/api/v1/logout?redirect_url="+url.QueryEscape(rp.url+"/app/whoami"), http.StatusSeeOther)
}

// ssoIDs are the sso profile's cases, in run order.
var ssoIDs = []string{"sso/bind", "sso/sign-in", "sso/tampered-state", "sso/unauthorised-user", "sso/revoked-user", "sso/logout", "edge/deadline"}

// runSSO runs the sso profile against a relying party with faults f.
func runSSO(t *testing.T, f rpFaults) *Report {
	t.Helper()
	rp := newRelyingParty(t, f)
	srv := httptest.NewServer(rp)
	t.Cleanup(srv.Close)
	rp.url = srv.URL
	cfg := Config{Profile: ProfileSSO, GeneralKey: testGeneralKey, KitKey: testKitKey, RSAPublicKey: &rp.key.PublicKey,
		Target: srv.URL + "/produce", SSO: SSOConfig{
			LoginURL: srv.URL + "/app/login?tenant={tenantId}", WhoamiURL: srv.URL + "/app/whoami", LogoutURL: srv.URL + "/app/logout",
		}}
	return runHandler(t, rp, cfg)
}

// TestSSOProfile: a relying party that does what Part C says passes the
// sso profile; each fault breaks exactly the rules that name it, in the
// cases that check them.
func TestSSOProfile(t *testing.T) {
	for _, tt := range []struct {
		name string
		f    rpFaults
		want map[string][]string
	}{
		{"correct", rpFaults{}, map[string][]string{}},
		{"admits any user", rpFaults{AdmitAny: true}, map[string][]string{
			"sso/unauthorised-user": {RuleSSOUnauthorisedUser},
			"sso/revoked-user":      {RuleSSORevokedUser},
		}},
		{"skips state", rpFaults{SkipState: true}, map[string][]string{
			"sso/tampered-state": {RuleSSOState},
		}},
		{"still-encrypted secret", rpFaults{EncryptedSecret: true}, map[string][]string{
			"sso/sign-in":      {RuleSSOClientSecret, RuleSSOSignIn},
			"sso/revoked-user": {RuleSSOSignIn},
			"sso/logout":       {RuleNotRun},
		}},
		{"exchanges nothing", rpFaults{NoExchange: true}, map[string][]string{
			"sso/sign-in":      {RuleSSOCodeExchange, RuleSSOSignIn},
			"sso/revoked-user": {RuleSSOSignIn},
			"sso/logout":       {RuleNotRun},
		}},
		{"logs out locally", rpFaults{LocalLogout: true}, map[string][]string{
			"sso/logout": {RuleSSOLogout},
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := runSSO(t, tt.f)
			if got := caseIDs(r); !slices.Equal(got, ssoIDs) {
				t.Fatalf("cases %q, want %q", got, ssoIDs)
			}
			wantRules(t, r, tt.want)
			if r.Profile != ProfileSSO {
				t.Errorf("report profile %q, want sso", r.Profile)
			}
			if len(tt.want) == 0 && !r.Passed() {
				t.Fatalf("a correct relying party failed:%s", describe(r))
			}
			for _, c := range r.Cases {
				for _, x := range c.Exchanges {
					for _, s := range []string{x.Request.URL, x.Request.Body} {
						if strings.Contains(s, emulator.DefaultUserPassword) || strings.Contains(s, "code=") && !strings.Contains(s, "code=%5Bredacted%5D") && !strings.Contains(s, "code=[redacted]") {
							t.Errorf("%s: exchange shows a password or a code: %s", c.ID, s)
						}
					}
				}
			}
		})
	}
}

// TestSSOConfig: the sso profile needs the RSA public key and the three
// URLs of the seller's app, each an http(s) URL; PublicURL, when given,
// must be a plain base URL.
func TestSSOConfig(t *testing.T) {
	good := SSOConfig{LoginURL: "http://app.example/login?tenant={tenantId}", WhoamiURL: "http://app.example/", LogoutURL: "https://app.example/logout"}
	key := &newRelyingParty(t, rpFaults{}).key.PublicKey
	for _, tt := range []struct {
		name string
		edit func(*Config)
		want string // "" for none
	}{
		{"good", func(*Config) {}, ""},
		{"with a public URL", func(c *Config) { c.SSO.PublicURL = "http://10.0.0.5:9090/" }, ""},
		{"not named", func(c *Config) { c.Profile, c.SSO, c.RSAPublicKey = "period", SSOConfig{}, nil }, ""},
		{"no RSA key", func(c *Config) { c.RSAPublicKey, c.Profile = nil, "sso" }, "the sso profile needs the seller's RSA public key"},
		{"no login URL", func(c *Config) { c.SSO.LoginURL = "" }, "the sso profile needs SSO.LoginURL (--sso-login-url)"},
		{"no whoami URL", func(c *Config) { c.SSO.WhoamiURL = "" }, "the sso profile needs SSO.WhoamiURL (--sso-whoami-url)"},
		{"no logout URL", func(c *Config) { c.SSO.LogoutURL = "" }, "the sso profile needs SSO.LogoutURL (--sso-logout-url)"},
		{"relative login URL", func(c *Config) { c.SSO.LoginURL = "/login?tenant={tenantId}" }, `SSO.LoginURL "/login?tenant=[redacted]" is not an http or https URL`},
		{"whoami with a fragment", func(c *Config) { c.SSO.WhoamiURL = "http://app.example/#me" }, "SSO.WhoamiURL"},
		{"ftp logout", func(c *Config) { c.SSO.LogoutURL = "ftp://app.example/logout" }, "SSO.LogoutURL"},
		{"public URL with a query", func(c *Config) { c.SSO.PublicURL = "http://127.0.0.1:9090/?x=1" }, "SSO.PublicURL"},
		{"public URL with credentials", func(c *Config) { c.SSO.PublicURL = "http://u:p@127.0.0.1:9090" }, "SSO.PublicURL"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := Config{Target: "http://127.0.0.1:1/produce", Key: "k", AK: "a", SK: "s", Profile: "kit,sso", RSAPublicKey: key, SSO: good}
			tt.edit(&c)
			err := c.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Validate: %v, want an error with %q", err, tt.want)
			}
		})
	}
}

// TestShowsUser: whoami's body shows a user only when the userName stands
// apart.
func TestShowsUser(t *testing.T) {
	for _, tt := range []struct {
		body string
		want bool
	}{
		{"user001", true},
		{"signed in as user001@emu1234", true},
		{"<td>user001</td>", true},
		{"Signed in as user001.", true},
		{"user0011", false},
		{"auser001", false},
		{"user001-x", false},
		{"x_user001", false},
		{"user0011 and user001", true},
		{"", false},
	} {
		if got := showsUser(tt.body, "user001"); got != tt.want {
			t.Errorf("showsUser(%q) = %v, want %v", tt.body, got, tt.want)
		}
	}
}
