package sdkcheck

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/huaweicloud/huaweicloud-sdk-go-v3/core/auth/signer"
	"github.com/huaweicloud/huaweicloud-sdk-go-v3/core/auth/signer/algorithm"
	"github.com/huaweicloud/huaweicloud-sdk-go-v3/core/request"

	"github.com/koobridge/koobridge/protocol/sign"
)

const (
	ak   = "HPUAEXAMPLEACCESSKEY"
	sk   = "example-secret-key-0123456789abcdefghij"
	date = "20261123T150405Z"
	host = "mkt.myhuaweicloud.com"
)

// sdkCase is one request built through the SDK's request builder.
type sdkCase struct {
	name    string
	method  string
	path    string         // decoded, as the SDK's WithPath takes it
	query   map[string]any // string, or []string for a repeated name
	headers map[string]string
	body    string // sent verbatim; "" for none
	// signHost adds a Host header parameter on the SDK side. The SDK's
	// service clients never do, so the SDK signs host only when asked; our
	// Sign always signs it (as the documented vectors do).
	signHost bool
}

var cases = []sdkCase{
	{
		name:   "GET query with special characters",
		method: "GET",
		path:   "/api/mkp-openapi-public/global/v1/order/query",
		query: map[string]any{
			"orderId":     "CS2211181819B4LVS",
			"orderLineId": "CS2211181819B4LVS-000001",
			"q":           "a b+c~d*e'f",
			"中文":          "值 /?#[]@!$&'()*+,;=%",
			"empty":       "",
			"multi":       []string{"2", "10", "1", "a b"},
			"a&b=c":       "x=y&z",
			"~tilde_":     "-._~",
		},
		signHost: true,
	},
	{
		name:     "POST JSON body",
		method:   "POST",
		path:     "/api/mkp-openapi-public/global/v1/license/activate",
		headers:  map[string]string{"Content-Type": "application/json;charset=UTF-8"},
		body:     `{"license":"PL0000000001","testFlag":"1"}`,
		signHost: true,
	},
	{
		name:     "path needing escaping",
		method:   "GET",
		path:     "/v1/a b/中文/x:y@z!$&'()*+,;=/~t_(1)/100%/",
		query:    map[string]any{"limit": "10"},
		signHost: true,
	},
	{
		name:   "several extra headers",
		method: "PUT",
		path:   "/api/mkp-openapi-public/global/v1/isv/usage-data",
		headers: map[string]string{
			"Content-Type":    "application/json",
			"X-Stage":         "RELEASE",
			"X-Project-Id":    "0123456789abcdef0123456789abcdef",
			"User-Agent":      "koobridge-sdkcheck/1.0",
			"X-Padded":        "  padded value  ",
			"TEST_UNDERSCORE": "neither side signs names with _",
			"ts":              "1729566664115",
			"nonce":           "Of4lsV7H1qrzVDI52O5CFk2ofPcZRaA6",
		},
		body:     `{"usage_records":[{"instance_id":"i-1","usage_value":"1.5"}]}`,
		signHost: true,
	},
	{
		name:     "non-JSON body is an unsigned payload",
		method:   "POST",
		path:     "/api/mkp-openapi-public/global/v1/license/upload",
		headers:  map[string]string{"Content-Type": "text/plain"},
		body:     "plain text body",
		signHost: true,
	},
	{
		name:   "host not signed, as the SDK's service clients do",
		method: "DELETE",
		path:   "/v1/resource/42",
		query:  map[string]any{"force": "true"},
	},
}

// build returns the SDK request for c. X-Sdk-Date is preset so that the
// SDK signs at a fixed time.
func (c sdkCase) build() *request.DefaultHttpRequest {
	b := request.NewHttpRequestBuilder().
		WithMethod(c.method).
		WithEndpoint("https://"+host).
		WithPath(c.path).
		AddHeaderParam(sign.SDKDateHeader, date)
	for k, v := range c.query {
		// The SDK signs a query parameter only when it is a reflect.Value.
		b.AddQueryParam(k, reflect.ValueOf(v))
	}
	for k, v := range c.headers {
		b.AddHeaderParam(k, v)
	}
	if c.signHost {
		b.AddHeaderParam("Host", host)
	}
	if c.body != "" {
		b.WithBody("body", c.body)
	}
	return b.Build()
}

func signedHeadersOf(t *testing.T, auth string) []string {
	t.Helper()
	_, signed, _, err := sign.ParseAPIGAuthorization(auth)
	if err != nil {
		t.Fatalf("parse %q: %v", auth, err)
	}
	return signed
}

func TestAgainstOfficialSDK(t *testing.T) {
	sdkSigner, err := signer.GetSigner(algorithm.HmacSHA256)
	if err != nil {
		t.Fatal(err)
	}
	now, err := time.Parse(sign.SDKDateFormat, date)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// The http.Request the SDK would send, converted before the SDK signs
			// (signing adds X-Sdk-Content-Sha256 to the SDK request).
			httpReq, err := c.build().ConvertRequest()
			if err != nil {
				t.Fatal(err)
			}
			if len(c.query) > 0 && httpReq.URL.RawQuery == "" {
				t.Fatal("the SDK dropped the query parameters")
			}
			body := []byte(c.body)

			sdkReq := c.build()
			added, err := sdkSigner.Sign(sdkReq, ak, sk)
			if err != nil {
				t.Fatal(err)
			}
			sdkAuth := added["Authorization"]
			sdkSigned := signedHeadersOf(t, sdkAuth)

			// 1. Same headers signed on both sides: identical Authorization.
			// The SDK leaves content-type out of SignedHeaders and signs host
			// only as a header parameter; SignHeaders reproduces its set.
			r := httpReq.Clone(httpReq.Context())
			if err := (sign.APIGSigner{AK: ak, SK: sk}).SignHeaders(r, body, now, sdkSigned); err != nil {
				t.Fatal(err)
			}
			if got := r.Header.Get("Authorization"); got != sdkAuth {
				t.Errorf("Authorization with the SDK's signed headers:\n got %s\nwant %s", got, sdkAuth)
			}
			if got, want := r.Header.Get(sign.APIGContentSHA256Header), sdkReq.GetHeaderParams()[sign.APIGContentSHA256Header]; got != want {
				t.Errorf("%s = %q, SDK %q", sign.APIGContentSHA256Header, got, want)
			}

			// 2. Our default Sign: the SDK's set plus content-type (when present)
			// plus host; identical Authorization when those coincide.
			r = httpReq.Clone(httpReq.Context())
			if err := (sign.APIGSigner{AK: ak, SK: sk}).Sign(r, body, now); err != nil {
				t.Fatal(err)
			}
			ours := signedHeadersOf(t, r.Header.Get("Authorization"))
			want := slices.Clone(sdkSigned)
			if r.Header.Get("Content-Type") != "" {
				want = append(want, "content-type")
			}
			if !c.signHost {
				want = append(want, "host")
			}
			slices.Sort(want)
			if !slices.Equal(ours, want) {
				t.Errorf("Sign signed %v, want %v (SDK signed %v)", ours, want, sdkSigned)
			}
			if slices.Equal(ours, sdkSigned) && r.Header.Get("Authorization") != sdkAuth {
				t.Errorf("Sign signed the SDK's headers but differs:\n got %s\nwant %s", r.Header.Get("Authorization"), sdkAuth)
			}

			// 3. The SDK-signed request, sent over the wire, passes VerifyAPIG.
			r = httpReq.Clone(httpReq.Context())
			for k, v := range added {
				r.Header.Set(k, v)
			}
			if v, ok := sdkReq.GetHeaderParams()[sign.APIGContentSHA256Header]; ok {
				r.Header.Set(sign.APIGContentSHA256Header, v)
			}
			srv, srvBody := wireRoundTrip(t, r, body)
			got, err := sign.VerifyAPIG(srv, srvBody, func(k string) (string, bool) { return sk, k == ak }, now, 0)
			if err != nil || got != ak {
				t.Errorf("VerifyAPIG of the SDK-signed request = %q, %v", got, err)
			}
		})
	}
}

// wireRoundTrip sends r through its HTTP/1.1 wire form and reads it back as
// a server would.
func wireRoundTrip(t *testing.T, r *http.Request, body []byte) (*http.Request, []byte) {
	t.Helper()
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	var buf bytes.Buffer
	if err := r.Write(&buf); err != nil {
		t.Fatal(err)
	}
	srv, err := http.ReadRequest(bufio.NewReader(&buf))
	if err != nil {
		t.Fatalf("read request %q: %v", buf.String(), err)
	}
	got, err := io.ReadAll(srv.Body)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, body) {
		t.Fatalf("body changed on the wire: %q", got)
	}
	return srv, got
}
