package oneaccess_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/koobridge/koobridge/internal/oneaccess"
)

// TestNew: New accepts https domains (http only on loopback hosts) and
// refuses everything else with a precise error.
func TestNew(t *testing.T) {
	good := oneaccess.Config{DomainName: "https://acme.example-idp.com", ClientID: testClientID, ClientSecret: testSecret}
	for _, tc := range []struct {
		name    string
		edit    func(*oneaccess.Config)
		wantErr string
	}{
		{"https", func(*oneaccess.Config) {}, ""},
		{"https with port and path prefix", func(c *oneaccess.Config) { c.DomainName = "https://idp.example:8443/tenant-a/" }, ""},
		{"http on 127.0.0.1", func(c *oneaccess.Config) { c.DomainName = "http://127.0.0.1:8080" }, ""},
		{"http on localhost", func(c *oneaccess.Config) { c.DomainName = "http://LOCALHOST:8080" }, ""},
		{"http on a .localhost name", func(c *oneaccess.Config) { c.DomainName = "http://auth.lemon.localhost" }, ""},
		{"http on ::1", func(c *oneaccess.Config) { c.DomainName = "http://[::1]:9000" }, ""},
		{"overrides", func(c *oneaccess.Config) {
			c.AuthorizeURL, c.TokenURL, c.UserInfoURL = "https://auth.example.com/oauth2/authorize", "https://auth.example.com/oauth2/token", "https://auth.example.com/oauth2/userinfo"
			c.LogoutURL, c.CASLoginURL, c.CASValidateURL = "https://auth.example.com/?logout=1", "http://localhost/cas/login", "http://127.0.0.1/cas/p3/serviceValidate"
		}, ""},
		{"no client id", func(c *oneaccess.Config) { c.ClientID = "" }, "oneaccess: ClientID is required"},
		{"no client secret", func(c *oneaccess.Config) { c.ClientSecret = "" }, "oneaccess: ClientSecret is required"},
		{"no domain", func(c *oneaccess.Config) { c.DomainName = "" }, "oneaccess: DomainName: is required"},
		{"http elsewhere", func(c *oneaccess.Config) { c.DomainName = "http://acme.example-idp.com" },
			`oneaccess: DomainName: "http://acme.example-idp.com": http is allowed only for localhost and loopback addresses; use https`},
		{"http on a name ending in localhost", func(c *oneaccess.Config) { c.DomainName = "http://evillocalhost" },
			`oneaccess: DomainName: "http://evillocalhost": http is allowed only for localhost and loopback addresses; use https`},
		{"no scheme", func(c *oneaccess.Config) { c.DomainName = "acme.example-idp.com" },
			`oneaccess: DomainName: "acme.example-idp.com" is not an absolute URL with a host`},
		{"other scheme", func(c *oneaccess.Config) { c.DomainName = "ftp://acme.example-idp.com" },
			`oneaccess: DomainName: "ftp://acme.example-idp.com": scheme must be https`},
		{"no host", func(c *oneaccess.Config) { c.DomainName = "https:///path" },
			`oneaccess: DomainName: "https:///path" is not an absolute URL with a host`},
		{"opaque", func(c *oneaccess.Config) { c.DomainName = "https:acme.example" },
			`oneaccess: DomainName: "https:acme.example" is not an absolute URL with a host`},
		{"query", func(c *oneaccess.Config) { c.DomainName = "https://acme.example-idp.com?x=1" },
			`oneaccess: DomainName: "https://acme.example-idp.com?x=1" must not have a query`},
		{"empty query", func(c *oneaccess.Config) { c.DomainName = "https://acme.example-idp.com?" },
			`oneaccess: DomainName: "https://acme.example-idp.com?" must not have a query`},
		{"fragment", func(c *oneaccess.Config) { c.DomainName = "https://acme.example-idp.com#x" },
			`oneaccess: DomainName: "https://acme.example-idp.com#x" must not have a fragment`},
		{"user info", func(c *oneaccess.Config) { c.DomainName = "https://admin:pw@acme.example-idp.com" },
			"oneaccess: DomainName: must not carry user info"},
		{"not a URL", func(c *oneaccess.Config) { c.DomainName = "https://acme.example-idp.com/%zz" },
			`oneaccess: DomainName: "https://acme.example-idp.com/%zz" is not a URL`},
		{"bad override", func(c *oneaccess.Config) { c.TokenURL = "http://auth.example.com/oauth2/token" },
			`oneaccess: TokenURL: "http://auth.example.com/oauth2/token": http is allowed only for localhost and loopback addresses; use https`},
		{"override with fragment", func(c *oneaccess.Config) { c.CASValidateURL = "https://auth.example.com/cas#x" },
			`oneaccess: CASValidateURL: "https://auth.example.com/cas#x" must not have a fragment`},
		{"override with a bad query", func(c *oneaccess.Config) { c.LogoutURL = "https://auth.example.com/?a=%zz" },
			`oneaccess: LogoutURL: "https://auth.example.com/?a=%zz": bad query`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good
			tc.edit(&cfg)
			c, err := oneaccess.New(cfg)
			if tc.wantErr == "" {
				if err != nil || c == nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil || err.Error() != tc.wantErr {
				t.Fatalf("New: error %v, want %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "pw") || strings.Contains(err.Error(), testSecret) {
				t.Errorf("error %q shows a password", err)
			}
		})
	}
}

// TestURLs: the browser-facing URLs are exactly Part C's, on the domain
// or on the overrides (whose own query is kept), and carry no secret.
func TestURLs(t *testing.T) {
	domain := oneaccess.Config{DomainName: "https://acme.example-idp.com/", ClientID: "cid 1", ClientSecret: testSecret}
	over := domain
	over.Scope = "openid profile email"
	over.AuthorizeURL = "https://auth.example.com/oauth2/authorize?prompt=login"
	over.LogoutURL = "https://auth.example.com/?logout=1"
	over.CASLoginURL = "https://auth.example.com/cas/login"
	for _, tc := range []struct {
		name string
		cfg  oneaccess.Config
		url  func(*oneaccess.Client) string
		want string
	}{
		{"authorize", domain, func(c *oneaccess.Client) string {
			return c.AuthCodeURL("s/1 2", "https://seller.example/sso/callback?x=1")
		},
			"https://acme.example-idp.com/api/v1/oauth2/authorize?client_id=cid+1&redirect_uri=https%3A%2F%2Fseller.example%2Fsso%2Fcallback%3Fx%3D1&response_type=code&scope=get_user_info&state=s%2F1+2"},
		{"authorize without state", domain, func(c *oneaccess.Client) string { return c.AuthCodeURL("", "https://seller.example/cb") },
			"https://acme.example-idp.com/api/v1/oauth2/authorize?client_id=cid+1&redirect_uri=https%3A%2F%2Fseller.example%2Fcb&response_type=code&scope=get_user_info"},
		{"CAS login", domain, func(c *oneaccess.Client) string { return c.CASLoginURL("https://seller.example/sso/cas?tenant=t1") },
			"https://acme.example-idp.com/api/v1/cas/login?service=https%3A%2F%2Fseller.example%2Fsso%2Fcas%3Ftenant%3Dt1"},
		{"logout", domain, func(c *oneaccess.Client) string { return c.LogoutURL("https://seller.example/") },
			"https://acme.example-idp.com/api/v1/logout?redirect_url=https%3A%2F%2Fseller.example%2F"},
		{"authorize override", over, func(c *oneaccess.Client) string { return c.AuthCodeURL("s", "https://seller.example/cb") },
			"https://auth.example.com/oauth2/authorize?client_id=cid+1&prompt=login&redirect_uri=https%3A%2F%2Fseller.example%2Fcb&response_type=code&scope=openid+profile+email&state=s"},
		{"CAS login override", over, func(c *oneaccess.Client) string { return c.CASLoginURL("https://seller.example/cas") },
			"https://auth.example.com/cas/login?service=https%3A%2F%2Fseller.example%2Fcas"},
		{"logout override", over, func(c *oneaccess.Client) string { return c.LogoutURL("https://seller.example/") },
			"https://auth.example.com/?logout=1&redirect_url=https%3A%2F%2Fseller.example%2F"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := oneaccess.New(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			got := tc.url(c)
			if got != tc.want {
				t.Errorf("URL\n %s, want\n %s", got, tc.want)
			}
			if strings.Contains(got, "s3cr") {
				t.Errorf("URL %s carries the secret", got)
			}
		})
	}
}

// TestBadArguments: empty codes, tokens, tickets and services are refused
// before any request.
func TestBadArguments(t *testing.T) {
	requests := 0
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { requests++ }))
	defer srv.Close()
	c, err := oneaccess.New(oneaccess.Config{DomainName: srv.URL, ClientID: testClientID, ClientSecret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		call func() error
		want string
	}{
		{"Exchange without code", func() error { _, err := c.Exchange(ctx, "", testRedirect); return err }, "oneaccess: Exchange: empty authorization code"},
		{"Exchange without redirect_uri", func() error { _, err := c.Exchange(ctx, "c", ""); return err }, "oneaccess: Exchange: empty redirect_uri"},
		{"Refresh without token", func() error { _, err := c.Refresh(ctx, ""); return err }, "oneaccess: Refresh: empty refresh token"},
		{"UserInfo without token", func() error { _, err := c.UserInfo(ctx, ""); return err }, "oneaccess: UserInfo: empty access token"},
		{"ValidateTicket without service", func() error { _, err := c.ValidateTicket(ctx, "", "ST-1"); return err }, "oneaccess: ValidateTicket: empty service"},
		{"ValidateTicket without ticket", func() error { _, err := c.ValidateTicket(ctx, "https://s.example", ""); return err }, "oneaccess: ValidateTicket: empty ticket"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); err == nil || err.Error() != tc.want {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
	if requests != 0 {
		t.Errorf("%d requests sent, want 0", requests)
	}
}

// TestUnreachable: a transport failure names the endpoint and its URL
// without query, so neither the ticket nor the secret shows, and a
// cancelled context is still recognisable.
func TestUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	ln.Close()
	c, err := oneaccess.New(oneaccess.Config{DomainName: base, ClientID: testClientID, ClientSecret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const ticket = "ST-unreachable-ticket"
	for _, tc := range []struct {
		name   string
		call   func() error
		prefix string
	}{
		{"token", func() error { _, err := c.Exchange(ctx, "code-xyz", testRedirect); return err }, "oneaccess: token endpoint " + base + "/api/v1/oauth2/token: "},
		{"userinfo", func() error { _, err := c.UserInfo(ctx, "AT-xyz"); return err }, "oneaccess: userinfo endpoint " + base + "/api/v1/oauth2/userinfo: "},
		{"CAS", func() error { _, err := c.ValidateTicket(ctx, "https://s.example/cas", ticket); return err }, "oneaccess: CAS serviceValidate endpoint " + base + "/api/v1/cas/p3/serviceValidate: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			var op *net.OpError
			if err == nil || !strings.HasPrefix(err.Error(), tc.prefix) || !errors.As(err, &op) {
				t.Fatalf("error %v, want %q… wrapping a *net.OpError", err, tc.prefix)
			}
			noCredentials(t, err, ticket, "code-xyz", "AT-xyz")
		})
	}

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, err = c.ValidateTicket(cancelled, "https://s.example/cas", ticket)
	want := "oneaccess: CAS serviceValidate endpoint " + base + "/api/v1/cas/p3/serviceValidate: context canceled"
	if !errors.Is(err, context.Canceled) || err.Error() != want {
		t.Errorf("error %v, want %q wrapping context.Canceled", err, want)
	}
}

// TestHTTPS: over TLS with the caller's HTTP client and endpoint
// overrides laid out as another server's.
func TestHTTPS(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /oauth2/token", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("tenant") != "t1" {
			http.Error(w, "no tenant", 400)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token":"AT","token_type":"Bearer"}`))
	})
	mux.HandleFunc("GET /oauth2/userinfo", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"sub":"dwho"}`))
	})
	srv := httptest.NewTLSServer(mux)
	defer srv.Close()
	c, err := oneaccess.New(oneaccess.Config{
		DomainName: "https://unused.example", ClientID: testClientID, ClientSecret: testSecret,
		TokenURL: srv.URL + "/oauth2/token?tenant=t1", UserInfoURL: srv.URL + "/oauth2/userinfo",
		HTTPClient: srv.Client(),
	})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := c.Exchange(context.Background(), "code", testRedirect)
	if err != nil || tok != (oneaccess.Token{AccessToken: "AT", TokenType: "Bearer"}) {
		t.Fatalf("Exchange: %+v, %v", tok, err)
	}
	u, err := c.UserInfo(context.Background(), tok.AccessToken)
	if err != nil || u != (oneaccess.User{UserName: "dwho"}) {
		t.Fatalf("UserInfo: %+v, %v", u, err)
	}
}
