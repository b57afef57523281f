package oneaccess_test

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/oneaccess"
)

const (
	testClientID = "acme-app-client"
	// testSecret has characters that form and Basic encoding change.
	testSecret   = "s3cr+t/Value=with:colon&amp"
	testRedirect = "https://seller.example/sso/callback"
	testTenant   = "68cbc86abc2018ab880d92f36422fa0e"
)

// fixedNow is the clock of the tests.
var fixedNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// noRedirects is a browser stand-in that shows each redirect.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// follow GETs u and returns the Location it redirects to.
func follow(t *testing.T, u string) *url.URL {
	t.Helper()
	resp, err := noRedirects.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("GET %s: HTTP %d, want 302", u, resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatalf("Location: %v", err)
	}
	return loc
}

// noCredentials fails the test if err's text holds any of the credentials.
func noCredentials(t *testing.T, err error, credentials ...string) {
	t.Helper()
	if err == nil {
		return
	}
	for _, c := range append(credentials, testSecret, url.QueryEscape(testSecret)) {
		if c != "" && strings.Contains(err.Error(), c) {
			t.Errorf("error %q contains a credential", err)
		}
	}
}

func wantOAuthError(t *testing.T, err error, want oneaccess.Error) {
	t.Helper()
	var e *oneaccess.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T), want *oneaccess.Error", err, err)
	}
	if *e != want {
		t.Errorf("error %+v, want %+v", *e, want)
	}
}

// TestAuthorizationCodeFlow signs in through the fake identity center over
// HTTP with both client authentication styles: authorize, exchange,
// userinfo, refresh, and the refusals of a used code, a used refresh
// token and a replaced access token.
func TestAuthorizationCodeFlow(t *testing.T) {
	for _, basic := range []bool{false, true} {
		t.Run(map[bool]string{false: "form", true: "basic"}[basic], func(t *testing.T) {
			ctx := context.Background()
			f := newFakeOneAccess(t, testClientID, testSecret, basic)
			now := fixedNow
			c, err := oneaccess.New(oneaccess.Config{
				DomainName: f.srv.URL, ClientID: testClientID, ClientSecret: testSecret,
				AuthStyleBasic: basic, Now: func() time.Time { return now },
			})
			if err != nil {
				t.Fatal(err)
			}
			back := follow(t, c.AuthCodeURL("st-123", testRedirect))
			if got := back.Scheme + "://" + back.Host + back.Path; got != testRedirect {
				t.Fatalf("redirected to %s, want %s", got, testRedirect)
			}
			if got := back.Query().Get("state"); got != "st-123" {
				t.Errorf("state %q, want st-123", got)
			}
			code := back.Query().Get("code")

			tok, err := c.Exchange(ctx, code, testRedirect)
			if err != nil {
				t.Fatalf("Exchange: %v", err)
			}
			wantForm := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {testRedirect}}
			wantAuthz := "Basic " + base64.StdEncoding.EncodeToString([]byte("acme-app-client:s3cr%2Bt%2FValue%3Dwith%3Acolon%26amp"))
			if !basic {
				wantForm.Set("client_id", testClientID)
				wantForm.Set("client_secret", testSecret)
				wantAuthz = ""
			}
			if !reflect.DeepEqual(f.tokenForm, wantForm) || f.tokenAuthz != wantAuthz || f.tokenCType != "application/x-www-form-urlencoded" {
				t.Errorf("token request form %v, Authorization %q, Content-Type %q; want %v, %q, application/x-www-form-urlencoded",
					f.tokenForm, f.tokenAuthz, f.tokenCType, wantForm, wantAuthz)
			}
			if tok.AccessToken == "" || tok.RefreshToken == "" || tok.TokenType != "Bearer" || tok.Scope != "get_user_info" ||
				!tok.Expiry.Equal(fixedNow.Add(7200*time.Second)) {
				t.Errorf("token %+v", tok)
			}

			user, err := c.UserInfo(ctx, tok.AccessToken)
			if err != nil {
				t.Fatalf("UserInfo: %v", err)
			}
			want := oneaccess.User{
				ID: "20220413000001", UserName: "zhangsan", Name: "Zhang San", Email: "zhangsan@acme.example",
				Mobile: "13800000001", Role: "admin", OrganizationCode: "10000", Tenant: testTenant,
			}
			if user != want {
				t.Errorf("user %+v, want %+v", user, want)
			}
			if f.userAuthz != "Bearer "+tok.AccessToken {
				t.Errorf("userinfo Authorization %q", f.userAuthz)
			}

			// The code is single use.
			_, err = c.Exchange(ctx, code, testRedirect)
			wantOAuthError(t, err, oneaccess.Error{Status: 400, Code: "invalid_grant", Description: "Invalid authorization code"})
			noCredentials(t, err, code)

			now = fixedNow.Add(2 * time.Hour)
			tok2, err := c.Refresh(ctx, tok.RefreshToken)
			if err != nil {
				t.Fatalf("Refresh: %v", err)
			}
			wantForm = url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}
			if !basic {
				wantForm.Set("client_id", testClientID)
				wantForm.Set("client_secret", testSecret)
			}
			if !reflect.DeepEqual(f.tokenForm, wantForm) || f.tokenAuthz != wantAuthz {
				t.Errorf("refresh request form %v, Authorization %q; want %v, %q", f.tokenForm, f.tokenAuthz, wantForm, wantAuthz)
			}
			if tok2.AccessToken == tok.AccessToken || tok2.RefreshToken == tok.RefreshToken || tok2.RefreshToken == "" ||
				!tok2.Expiry.Equal(now.Add(7200*time.Second)) {
				t.Errorf("refreshed token %+v, first %+v", tok2, tok)
			}
			if user, err := c.UserInfo(ctx, tok2.AccessToken); err != nil || user != want {
				t.Errorf("UserInfo after refresh: %+v, %v", user, err)
			}

			// The fake rotates refresh tokens: the old one is refused.
			_, err = c.Refresh(ctx, tok.RefreshToken)
			wantOAuthError(t, err, oneaccess.Error{Status: 400, Code: "invalid_grant", Description: "Invalid refresh token"})
			noCredentials(t, err, tok.RefreshToken)

			_, err = c.UserInfo(ctx, "not-"+tok.AccessToken)
			wantOAuthError(t, err, oneaccess.Error{Status: 401, Code: "unauthorized", Description: "Full authentication is required to access this resource"})
			noCredentials(t, err, tok.AccessToken)
		})
	}
}

// TestWrongClientCredentials: the token endpoint's refusal of a wrong
// secret or client id (the FAQ's two causes) is an *Error without the
// secret.
func TestWrongClientCredentials(t *testing.T) {
	for _, tc := range []struct {
		name             string
		basic            bool
		clientID, secret string
		want             oneaccess.Error
	}{
		{"form, wrong secret", false, testClientID, "wrong-" + testSecret, oneaccess.Error{Status: 401, Code: "invalid_client", Description: "Bad client credentials"}},
		{"basic, wrong secret", true, testClientID, "wrong-" + testSecret, oneaccess.Error{Status: 401, Code: "invalid_client", Description: "Bad client credentials"}},
		{"form, wrong client", false, "other", testSecret, oneaccess.Error{Status: 401, Code: "invalid_client", Description: "Client ID mismatch"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeOneAccess(t, testClientID, testSecret, tc.basic)
			c, err := oneaccess.New(oneaccess.Config{DomainName: f.srv.URL, ClientID: tc.clientID, ClientSecret: tc.secret, AuthStyleBasic: tc.basic})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Exchange(context.Background(), "any-code", testRedirect)
			wantOAuthError(t, err, tc.want)
			noCredentials(t, err, tc.secret)
		})
	}
}

// TestCASFlow signs in by CAS through the fake identity center, reading
// its JSON answer and, from a server that ignores format, its XML answer;
// a used ticket is an INVALID_TICKET *Error without the ticket.
func TestCASFlow(t *testing.T) {
	for _, xmlOnly := range []bool{false, true} {
		t.Run(map[bool]string{false: "json", true: "xml"}[xmlOnly], func(t *testing.T) {
			ctx := context.Background()
			f := newFakeOneAccess(t, testClientID, testSecret, false)
			f.casXMLOnly = xmlOnly
			c, err := oneaccess.New(oneaccess.Config{DomainName: f.srv.URL + "/", ClientID: testClientID, ClientSecret: testSecret})
			if err != nil {
				t.Fatal(err)
			}
			service := "https://seller.example/sso/cas?tenant=" + testTenant
			back := follow(t, c.CASLoginURL(service))
			ticket := back.Query().Get("ticket")
			back.RawQuery = ""
			if back.String() != "https://seller.example/sso/cas" || !strings.HasPrefix(ticket, "ST-") {
				t.Fatalf("CAS login returned to %s with ticket %q", back, ticket)
			}
			user, err := c.ValidateTicket(ctx, service, ticket)
			if err != nil {
				t.Fatalf("ValidateTicket: %v", err)
			}
			want := oneaccess.User{ID: "20220413000001", UserName: "zhangsan", Name: "Zhang San", Role: "admin", OrganizationCode: "10000", Tenant: testTenant}
			if user != want {
				t.Errorf("user %+v, want %+v", user, want)
			}
			wantQuery := url.Values{"service": {service}, "ticket": {ticket}, "format": {"JSON"}}
			if !reflect.DeepEqual(f.casQuery, wantQuery) {
				t.Errorf("serviceValidate query %v, want %v", f.casQuery, wantQuery)
			}
			_, err = c.ValidateTicket(ctx, service, ticket)
			wantOAuthError(t, err, oneaccess.Error{Status: 200, Code: "INVALID_TICKET", Description: "Ticket '[redacted]' not recognized"})
			noCredentials(t, err, ticket)
		})
	}
}

// TestLogout: the logout URL ends at the identity center, which sends the
// browser back to redirect_url.
func TestLogout(t *testing.T) {
	f := newFakeOneAccess(t, testClientID, testSecret, false)
	c, err := oneaccess.New(oneaccess.Config{DomainName: f.srv.URL, ClientID: testClientID, ClientSecret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	const home = "https://app.example/signed-out?x=1&y=2"
	if got := follow(t, c.LogoutURL(home)).String(); got != home {
		t.Errorf("logout returned to %s, want %s", got, home)
	}
}
