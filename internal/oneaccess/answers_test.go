package oneaccess_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/oneaccess"
)

// canned is one scripted answer of an identity center.
type canned struct {
	status int
	ctype  string
	body   string
	header map[string]string
}

// scripted serves every request with a; a redirect's target answers a
// good token, so a followed redirect would show.
func scripted(t *testing.T, a canned) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/elsewhere", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token":"x","token_type":"Bearer","userName":"x","serviceResponse":{"authenticationSuccess":{"user":"x"}}}`))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		for k, v := range a.header {
			w.Header().Set(k, v)
		}
		if a.ctype != "" {
			w.Header().Set("Content-Type", a.ctype)
		}
		w.WriteHeader(a.status)
		_, _ = w.Write([]byte(a.body))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func newScriptedClient(t *testing.T, a canned) (*oneaccess.Client, string) {
	t.Helper()
	srv := scripted(t, a)
	c, err := oneaccess.New(oneaccess.Config{
		DomainName: srv.URL, ClientID: testClientID, ClientSecret: testSecret,
		Now: func() time.Time { return fixedNow },
	})
	if err != nil {
		t.Fatal(err)
	}
	return c, srv.URL
}

// checkErr compares err with want: nil, an *Error, or a plain error text
// ({URL} stands for the server's URL).
func checkErr(t *testing.T, err error, wantOA *oneaccess.Error, wantText, srvURL string) {
	t.Helper()
	switch {
	case wantOA != nil:
		wantOAuthError(t, err, *wantOA)
	case wantText != "":
		var e *oneaccess.Error
		if err == nil || errors.As(err, &e) {
			t.Fatalf("error %v (%T), want %q", err, err, wantText)
		}
		if want := strings.ReplaceAll(wantText, "{URL}", srvURL); err.Error() != want {
			t.Errorf("error\n %q, want\n %q", err, want)
		}
	case err != nil:
		t.Fatalf("unexpected error: %v", err)
	}
}

const big = 1<<20 + 1

// TestTokenAnswers: Exchange reads the token endpoint's documented
// answers and refuses the rest, naming the endpoint, without the secret
// or the code.
func TestTokenAnswers(t *testing.T) {
	const code = "the-code-1234"
	const ep = "oneaccess: token endpoint {URL}/api/v1/oauth2/token: "
	for _, tc := range []struct {
		name     string
		answer   canned
		want     oneaccess.Token
		wantOA   *oneaccess.Error
		wantText string
	}{
		{name: "documented 200", answer: canned{200, "application/json", `{"access_token":"AT","token_type":"Bearer","expires_in":7200,"scope":"get_user_info","refresh_token":"RT"}`, nil},
			want: oneaccess.Token{AccessToken: "AT", RefreshToken: "RT", TokenType: "Bearer", Scope: "get_user_info", Expiry: fixedNow.Add(2 * time.Hour)}},
		{name: "extra fields, lower-case bearer, expires_in as text", answer: canned{200, "application/json;charset=UTF-8", ` {"access_token":"AT","token_type":"bearer","expires_in":"60","id_token":"x.y.z","other":{"a":[1]}} `, nil},
			want: oneaccess.Token{AccessToken: "AT", TokenType: "Bearer", Expiry: fixedNow.Add(time.Minute)}},
		{name: "no token_type, no expires_in", answer: canned{200, "text/plain", `{"access_token":"AT","expires_in":null}`, nil},
			want: oneaccess.Token{AccessToken: "AT", TokenType: "Bearer"}},
		{name: "documented 400", answer: canned{400, "application/json", `{"error":"invalid_grant","error_description":"Invalid authorization code"}`, nil},
			wantOA: &oneaccess.Error{Status: 400, Code: "invalid_grant", Description: "Invalid authorization code"}},
		{name: "error in a 200", answer: canned{200, "application/json", `{"error":"invalid_grant"}`, nil},
			wantOA: &oneaccess.Error{Status: 200, Code: "invalid_grant"}},
		{name: "description echoing the secret and code", answer: canned{401, "application/json", `{"error":"invalid_client","error_description":"secret ` + testSecret + ` / s3cr%2Bt%2FValue%3Dwith%3Acolon%26amp for code the-code-1234\n\tend"}`, nil},
			wantOA: &oneaccess.Error{Status: 401, Code: "invalid_client", Description: "secret [redacted] / [redacted] for code [redacted]  end"}},
		{name: "long description", answer: canned{400, "application/json", `{"error":"invalid_request","error_description":"` + strings.Repeat("é", 200) + `"}`, nil},
			wantOA: &oneaccess.Error{Status: 400, Code: "invalid_request", Description: strings.Repeat("é", 128) + "…"}},
		{name: "no access_token", answer: canned{200, "application/json", `{"token_type":"Bearer","expires_in":7200}`, nil},
			wantText: ep + "answer has no access_token"},
		{name: "empty object", answer: canned{200, "application/json", `{}`, nil},
			wantText: ep + "answer has no access_token"},
		{name: "HTML", answer: canned{200, "text/html", `<html>sign in</html>`, nil},
			wantText: ep + "HTTP 200: answer is not a JSON object"},
		{name: "empty body", answer: canned{200, "application/json", ``, nil},
			wantText: ep + "HTTP 200: answer is not a JSON object"},
		{name: "a JSON array", answer: canned{200, "application/json", `[{"access_token":"AT"}]`, nil},
			wantText: ep + "HTTP 200: answer is not a JSON object"},
		{name: "truncated JSON", answer: canned{200, "application/json", `{"access_token":"AT"`, nil},
			wantText: ep + "HTTP 200: answer is not the documented JSON: unexpected EOF"},
		{name: "two objects", answer: canned{200, "application/json", `{"access_token":"AT"}{"access_token":"AT2"}`, nil},
			wantText: ep + "HTTP 200: answer has data after its JSON object"},
		{name: "access_token not a string", answer: canned{200, "application/json", `{"access_token":12345}`, nil},
			wantText: ep + "HTTP 200: answer is not the documented JSON: json: cannot unmarshal number into Go struct field tokenJSON.access_token of type string"},
		{name: "token_type mac", answer: canned{200, "application/json", `{"access_token":"AT","token_type":"mac"}`, nil},
			wantText: ep + `token_type "mac" is not Bearer`},
		{name: "negative expires_in", answer: canned{200, "application/json", `{"access_token":"AT","expires_in":-1}`, nil},
			wantText: ep + "expires_in is not a number of seconds"},
		{name: "fractional expires_in", answer: canned{200, "application/json", `{"access_token":"AT","expires_in":7200.5}`, nil},
			wantText: ep + "expires_in is not a number of seconds"},
		{name: "400 HTML", answer: canned{400, "text/html", `<h1>Bad Request</h1>`, nil},
			wantText: ep + "HTTP 400: answer is not a JSON object"},
		{name: "500 JSON without error", answer: canned{500, "application/json", `{"message":"boom"}`, nil},
			wantText: ep + "HTTP 500 without an OAuth error"},
		{name: "redirect not followed", answer: canned{302, "", ``, map[string]string{"Location": "/elsewhere"}},
			wantText: ep + "HTTP 302 redirect, not followed"},
		{name: "over 1 MiB", answer: canned{200, "application/json", `{"access_token":"AT","pad":"` + strings.Repeat("a", big) + `"}`, nil},
			wantText: ep + "answer larger than 1048576 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, srvURL := newScriptedClient(t, tc.answer)
			got, err := c.Exchange(context.Background(), code, testRedirect)
			checkErr(t, err, tc.wantOA, tc.wantText, srvURL)
			noCredentials(t, err, code)
			if got != tc.want {
				t.Errorf("token %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestRefreshKeepsRefreshToken: an answer without a refresh token keeps
// the one that was used.
func TestRefreshKeepsRefreshToken(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{`{"access_token":"AT2","token_type":"Bearer","expires_in":7200}`, "RT1"},
		{`{"access_token":"AT2","token_type":"Bearer","expires_in":7200,"refresh_token":"RT2"}`, "RT2"},
	} {
		c, _ := newScriptedClient(t, canned{200, "application/json", tc.body, nil})
		got, err := c.Refresh(context.Background(), "RT1")
		want := oneaccess.Token{AccessToken: "AT2", RefreshToken: tc.want, TokenType: "Bearer", Expiry: fixedNow.Add(2 * time.Hour)}
		if err != nil || got != want {
			t.Errorf("Refresh with %s: %+v, %v; want %+v", tc.body, got, err, want)
		}
	}
}

// TestUserInfoAnswers: UserInfo reads the documented fields, the OIDC
// fallbacks and the 401 body, and refuses the rest.
func TestUserInfoAnswers(t *testing.T) {
	const at = "AT-secret-token"
	const ep = "oneaccess: userinfo endpoint {URL}/api/v1/oauth2/userinfo: "
	for _, tc := range []struct {
		name     string
		answer   canned
		want     oneaccess.User
		wantOA   *oneaccess.Error
		wantText string
	}{
		{name: "documented fields and extras", answer: canned{200, "application/json", `{"id":"u1","userName":"zhangsan","name":"Zhang San","email":"z@acme.example","mobile":"13800000001","role":"user","organizationName":"R&D","userId":"u1","organizationCode":"10000","projectName":"p","tenant":"t1","accName":"a","loginName":"l","extra":{"x":[1,true]}}`, nil},
			want: oneaccess.User{ID: "u1", UserName: "zhangsan", Name: "Zhang San", Email: "z@acme.example", Mobile: "13800000001", Role: "user", OrganizationCode: "10000", Tenant: "t1"}},
		{name: "userName before preferred_username and sub", answer: canned{200, "application/json", `{"userName":"a","preferred_username":"b","sub":"c"}`, nil},
			want: oneaccess.User{UserName: "a"}},
		{name: "OIDC preferred_username", answer: canned{200, "application/json", `{"sub":"c","preferred_username":"dwho","name":"Doctor Who","email":"dwho@example.com","phone_number":"+1 555","email_verified":true}`, nil},
			want: oneaccess.User{UserName: "dwho", Name: "Doctor Who", Email: "dwho@example.com", Mobile: "+1 555"}},
		{name: "OIDC sub only", answer: canned{200, "application/json", `{"sub":"rtyler"}`, nil},
			want: oneaccess.User{UserName: "rtyler"}},
		{name: "documented 401", answer: canned{401, "application/json", `{"error":"unauthorized","error_description":"Full authentication is required to access this resource"}`, nil},
			wantOA: &oneaccess.Error{Status: 401, Code: "unauthorized", Description: "Full authentication is required to access this resource"}},
		{name: "401 without a body", answer: canned{401, "", ``, map[string]string{"WWW-Authenticate": `Bearer error="invalid_token"`}},
			wantOA: &oneaccess.Error{Status: 401, Code: "unauthorized"}},
		{name: "401 invalid_token echoing the token", answer: canned{401, "application/json", `{"error":"invalid_token","error_description":"token AT-secret-token expired"}`, nil},
			wantOA: &oneaccess.Error{Status: 401, Code: "unauthorized", Description: "invalid_token: token [redacted] expired"}},
		{name: "403 insufficient_scope", answer: canned{403, "application/json", `{"error":"insufficient_scope"}`, nil},
			wantOA: &oneaccess.Error{Status: 403, Code: "insufficient_scope"}},
		{name: "no user name", answer: canned{200, "application/json", `{"id":"u1","name":"Zhang San"}`, nil},
			wantText: ep + "answer has no userName (nor preferred_username, sub)"},
		{name: "id as a number", answer: canned{200, "application/json", `{"id":1,"userName":"a"}`, nil},
			wantText: ep + "HTTP 200: answer is not the documented JSON: json: cannot unmarshal number into Go struct field userJSON.id of type string"},
		{name: "HTML", answer: canned{200, "text/html", `<html/>`, nil},
			wantText: ep + "HTTP 200: answer is not a JSON object"},
		{name: "502", answer: canned{502, "text/plain", `bad gateway`, nil},
			wantText: ep + "HTTP 502: answer is not a JSON object"},
		{name: "500 JSON without error", answer: canned{500, "application/json", `{}`, nil},
			wantText: ep + "HTTP 500 without an OAuth error"},
		{name: "redirect not followed", answer: canned{302, "", ``, map[string]string{"Location": "/elsewhere"}},
			wantText: ep + "HTTP 302 redirect, not followed"},
		{name: "over 1 MiB", answer: canned{200, "application/json", `{"userName":"a","pad":"` + strings.Repeat("a", big) + `"}`, nil},
			wantText: ep + "answer larger than 1048576 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, srvURL := newScriptedClient(t, tc.answer)
			got, err := c.UserInfo(context.Background(), at)
			checkErr(t, err, tc.wantOA, tc.wantText, srvURL)
			noCredentials(t, err, at)
			if got != tc.want {
				t.Errorf("user %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestValidateTicketAnswers: ValidateTicket reads the JSON and the XML
// answers of p3/serviceValidate, success and failure, and refuses the
// rest.
func TestValidateTicketAnswers(t *testing.T) {
	const ticket = "ST-1-abcdefghijklmnop"
	const ep = "oneaccess: CAS serviceValidate endpoint {URL}/api/v1/cas/p3/serviceValidate: "
	xmlSuccess := `<?xml version="1.0" encoding="UTF-8"?>
<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas">
  <cas:authenticationSuccess>
    <cas:user>zhangsan-id</cas:user>
    <cas:attributes>
      <cas:authenticationDate>2026-01-02T03:04:05Z</cas:authenticationDate>
      <cas:longTermAuthenticationRequestTokenUsed>false</cas:longTermAuthenticationRequestTokenUsed>
      <cas:isFromNewLogin>true</cas:isFromNewLogin>
      <cas:role>admin</cas:role>
      <cas:organizationCode>10000</cas:organizationCode>
      <cas:name>Zhang &amp; San</cas:name>
      <cas:userName>zhangsan</cas:userName>
      <cas:tenant>t1</cas:tenant>
      <cas:email>z@acme.example</cas:email>
      <cas:email>other@acme.example</cas:email>
    </cas:attributes>
  </cas:authenticationSuccess>
</cas:serviceResponse>`
	fullUser := oneaccess.User{ID: "zhangsan-id", UserName: "zhangsan", Name: "Zhang & San", Email: "z@acme.example", Role: "admin", OrganizationCode: "10000", Tenant: "t1"}
	for _, tc := range []struct {
		name     string
		answer   canned
		want     oneaccess.User
		wantOA   *oneaccess.Error
		wantText string
	}{
		{name: "JSON success", answer: canned{200, "application/json", `{"serviceResponse":{"authenticationSuccess":{"user":"zhangsan-id","attributes":{"authenticationDate":["2026-01-02T03:04:05Z"],"isFromNewLogin":true,"longTermAuthenticationRequestTokenUsed":[false],"role":"admin","organizationCode":["10000"],"name":"Zhang & San","userName":"zhangsan","tenant":"t1","email":["z@acme.example","other@acme.example"],"mobile":null}}}}`, nil},
			want: fullUser},
		{name: "JSON success without attributes", answer: canned{200, "application/json", `{"serviceResponse":{"authenticationSuccess":{"user":"dwho"}}}`, nil},
			want: oneaccess.User{ID: "dwho", UserName: "dwho"}},
		{name: "XML success", answer: canned{200, "application/xml", xmlSuccess, nil},
			want: fullUser},
		{name: "XML success, other prefix, no attributes", answer: canned{200, "text/xml", "\ufeff<c:serviceResponse xmlns:c='http://www.yale.edu/tp/cas'><c:authenticationSuccess><c:user> dwho </c:user></c:authenticationSuccess></c:serviceResponse>", nil},
			want: oneaccess.User{ID: "dwho", UserName: "dwho"}},
		{name: "XML success, prefix never declared", answer: canned{200, "application/xml", `<cas:serviceResponse><cas:authenticationSuccess><cas:user>zhangsan</cas:user><cas:attributes><cas:isFromNewLogin>true</cas:isFromNewLogin><cas:role>user</cas:role></cas:attributes></cas:authenticationSuccess></cas:serviceResponse>`, nil},
			want: oneaccess.User{ID: "zhangsan", UserName: "zhangsan", Role: "user"}},
		{name: "JSON failure", answer: canned{200, "application/json", `{"serviceResponse":{"authenticationFailure":{"code":"INVALID_TICKET","description":"Ticket ST-1-abcdefghijklmnop not recognized"}}}`, nil},
			wantOA: &oneaccess.Error{Status: 200, Code: "INVALID_TICKET", Description: "Ticket [redacted] not recognized"}},
		{name: "XML failure", answer: canned{200, "application/xml", `<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas"><cas:authenticationFailure code="INVALID_SERVICE">
  Ticket 'ST-1-abcdefghijklmnop' does not match the service
</cas:authenticationFailure></cas:serviceResponse>`, nil},
			wantOA: &oneaccess.Error{Status: 200, Code: "INVALID_SERVICE", Description: "Ticket '[redacted]' does not match the service"}},
		{name: "XML failure with a 401", answer: canned{401, "application/xml", `<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas"><cas:authenticationFailure code="UNAUTHORIZED_SERVICE"/></cas:serviceResponse>`, nil},
			wantOA: &oneaccess.Error{Status: 401, Code: "UNAUTHORIZED_SERVICE"}},
		{name: "success with a 500", answer: canned{500, "application/json", `{"serviceResponse":{"authenticationSuccess":{"user":"dwho"}}}`, nil},
			wantText: ep + "HTTP 500 without a CAS answer"},
		{name: "JSON failure without code", answer: canned{200, "application/json", `{"serviceResponse":{"authenticationFailure":{"description":"x"}}}`, nil},
			wantText: ep + "JSON authenticationFailure without a code"},
		{name: "XML failure without code", answer: canned{200, "application/xml", `<cas:serviceResponse xmlns:cas="x"><cas:authenticationFailure>x</cas:authenticationFailure></cas:serviceResponse>`, nil},
			wantText: ep + "XML authenticationFailure without a code"},
		{name: "JSON both", answer: canned{200, "application/json", `{"serviceResponse":{"authenticationSuccess":{"user":"a"},"authenticationFailure":{"code":"X"}}}`, nil},
			wantText: ep + "JSON answer with both authenticationSuccess and authenticationFailure"},
		{name: "XML both", answer: canned{200, "application/xml", `<serviceResponse><authenticationSuccess><user>a</user></authenticationSuccess><authenticationFailure code="X"/></serviceResponse>`, nil},
			wantText: ep + "XML answer with both authenticationSuccess and authenticationFailure"},
		{name: "JSON neither", answer: canned{200, "application/json", `{"serviceResponse":{}}`, nil},
			wantText: ep + "JSON serviceResponse with neither authenticationSuccess nor authenticationFailure"},
		{name: "JSON without serviceResponse", answer: canned{200, "application/json", `{"user":"a"}`, nil},
			wantText: ep + "JSON answer without serviceResponse"},
		{name: "XML neither", answer: canned{200, "application/xml", `<cas:serviceResponse xmlns:cas="x"/>`, nil},
			wantText: ep + "XML serviceResponse with neither authenticationSuccess nor authenticationFailure"},
		{name: "XML of another root", answer: canned{200, "application/xml", `<html><body/></html>`, nil},
			wantText: ep + "answer is not a CAS serviceResponse: expected element type <serviceResponse> but have <html>"},
		{name: "JSON success without user", answer: canned{200, "application/json", `{"serviceResponse":{"authenticationSuccess":{"user":""}}}`, nil},
			wantText: ep + "authenticationSuccess without a user"},
		{name: "JSON attribute of a wrong type", answer: canned{200, "application/json", `{"serviceResponse":{"authenticationSuccess":{"user":"a","attributes":{"role":{"x":1}}}}}`, nil},
			wantText: ep + "JSON attribute role: is neither a string nor a list of strings"},
		{name: "CAS 1.0 text", answer: canned{200, "text/plain", "yes\nzhangsan\n", nil},
			wantText: ep + "answer is neither JSON nor XML"},
		{name: "empty", answer: canned{200, "text/plain", "", nil},
			wantText: ep + "empty answer"},
		{name: "503 text", answer: canned{503, "text/plain", "down", nil},
			wantText: ep + "HTTP 503 without a CAS answer"},
		{name: "redirect not followed", answer: canned{302, "", ``, map[string]string{"Location": "/elsewhere"}},
			wantText: ep + "HTTP 302 redirect, not followed"},
		{name: "over 1 MiB", answer: canned{200, "application/xml", `<serviceResponse>` + strings.Repeat(" ", big) + `</serviceResponse>`, nil},
			wantText: ep + "answer larger than 1048576 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, srvURL := newScriptedClient(t, tc.answer)
			got, err := c.ValidateTicket(context.Background(), "https://seller.example/sso/cas", ticket)
			checkErr(t, err, tc.wantOA, tc.wantText, srvURL)
			noCredentials(t, err, ticket)
			if got != tc.want {
				t.Errorf("user %+v, want %+v", got, tc.want)
			}
		})
	}
}
