package sign

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// apigVector is one documented APIG signing example (license-openapi.md
// §G.3) or one of the official SDK's own test cases.
type apigVector struct {
	name    string
	method  string
	url     string
	headers map[string]string // lower-case name -> value, host included when signed
	body    []byte
	ak, sk  string
	date    string
	signed  []string
	// explicit: sign with SignHeaders(signed) rather than Sign, because the
	// source signed fewer headers than Sign would.
	explicit bool

	wantCR     string
	wantCRHash string // empty when the source does not print it
	wantSig    string
}

var apigVectors = []apigVector{
	{
		name:   "G.3.1 Huawei documentation",
		method: "GET",
		url:    "https://service.region.example.com/v1/77b6a44cba5143ab91d13ab9a8ff44fd/vpcs?limit=2&marker=13551d6b-755d-4757-b956-536f674975c0",
		headers: map[string]string{
			"content-type": "application/json",
			"host":         "service.region.example.com",
			"x-sdk-date":   "20191115T033655Z",
		},
		ak:     "QTWAOYTTINDUT2QVKYUC",
		sk:     "MFyfvK41ba2giqM7Uio6PznpdUKGpownRZlmVmHc",
		date:   "20191115T033655Z",
		signed: []string{"content-type", "host", "x-sdk-date"},
		wantCR: "GET\n" +
			"/v1/77b6a44cba5143ab91d13ab9a8ff44fd/vpcs/\n" +
			"limit=2&marker=13551d6b-755d-4757-b956-536f674975c0\n" +
			"content-type:application/json\n" +
			"host:service.region.example.com\n" +
			"x-sdk-date:20191115T033655Z\n" +
			"\n" +
			"content-type;host;x-sdk-date\n" +
			"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		wantCRHash: "b25362e603ee30f4f25e7858e8a7160fd36e803bb2dfe206278659d71a9bcd7a",
		wantSig:    "7be6668032f70418fcc22abc52071e57aff61b84a1d2381bb430d6870f4f6ebe",
	},
	{
		name:   "G.3.2 KooGallery license activate",
		method: "POST",
		url:    "https://mkt.myhuaweicloud.com/api/mkp-openapi-public/global/v1/license/activate",
		headers: map[string]string{
			"content-type": "application/json",
			"host":         "mkt.myhuaweicloud.com",
			"x-sdk-date":   "20240317T144237Z",
			"x-stage":      "RELEASE",
		},
		ak:     "ANYACCESSKEY", // the source does not give the AK; it does not enter the signature
		sk:     "123",
		date:   "20240317T144237Z",
		signed: []string{"content-type", "host", "x-sdk-date", "x-stage"},
		wantCR: "POST\n" +
			"/api/mkp-openapi-public/global/v1/license/activate/\n" +
			"\n" +
			"content-type:application/json\n" +
			"host:mkt.myhuaweicloud.com\n" +
			"x-sdk-date:20240317T144237Z\n" +
			"x-stage:RELEASE\n" +
			"\n" +
			"content-type;host;x-sdk-date;x-stage\n" +
			"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		wantCRHash: "9a33b07351104f6c775075faa7dc0db58ec18bc532feaa8fd0b8fcf7990b1a9e",
		wantSig:    "77595ad624b6e4e49990b8c4e84bf1c287457fca61069c4e60b9b6765b52053d",
	},
	{
		name:     "G.3.3 huaweicloud-sdk-go-v3 signer test 1",
		method:   "GET",
		url:      "https://example.huaweicloud.com/path?limit=1",
		headers:  map[string]string{"x-sdk-date": "20060102T150405Z"},
		ak:       "AccessKey",
		sk:       "SecretKey",
		date:     "20060102T150405Z",
		signed:   []string{"x-sdk-date"},
		explicit: true,
		wantCR: "GET\n/path/\nlimit=1\nx-sdk-date:20060102T150405Z\n\nx-sdk-date\n" +
			"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		wantCRHash: "85c3b7730f308aee452b16138a42a914397e43a8f0d732dfa521c0ef2afa98a4",
		wantSig:    "5a2ce64c865e0e6046321c6f3d5a77ba8413eeaf355c3166c03d58d02ac79624",
	},
	{
		// The SDK's test 2 (core/auth/signer/signer_test.go): the SDK JSON-encodes
		// the body with a trailing newline and does not sign content-type.
		name:     "huaweicloud-sdk-go-v3 signer test 2",
		method:   "POST",
		url:      "https://example.huaweicloud.com/path?key=value",
		headers:  map[string]string{"x-sdk-date": "20060102T150405Z"},
		body:     []byte("{\"Name\":\"test\",\"Id\":1}\n"),
		ak:       "AccessKey",
		sk:       "SecretKey",
		date:     "20060102T150405Z",
		signed:   []string{"x-sdk-date"},
		explicit: true,
		wantCR: "POST\n/path/\nkey=value\nx-sdk-date:20060102T150405Z\n\nx-sdk-date\n" +
			apigHexSHA256([]byte("{\"Name\":\"test\",\"Id\":1}\n")),
		wantSig: "cecc2af119b18ab70b4d094c0750f3b42c02f254903179a0fc2cc72fc9db4f59",
	},
}

func TestAPIGVectorsStepByStep(t *testing.T) {
	for _, v := range apigVectors {
		t.Run(v.name, func(t *testing.T) {
			u, err := url.Parse(v.url)
			if err != nil {
				t.Fatal(err)
			}
			q, err := url.ParseQuery(u.RawQuery)
			if err != nil {
				t.Fatal(err)
			}
			cr := APIGCanonicalRequest(v.method, APIGCanonicalURI(u.Path), APIGCanonicalQuery(q),
				v.headers, v.signed, apigHexSHA256(v.body))
			if cr != v.wantCR {
				t.Fatalf("canonical request:\n%q\nwant\n%q", cr, v.wantCR)
			}
			sum := sha256.Sum256([]byte(cr))
			if v.wantCRHash != "" && hex.EncodeToString(sum[:]) != v.wantCRHash {
				t.Errorf("SHA-256(canonical request) = %x, want %s", sum, v.wantCRHash)
			}
			sts := APIGStringToSign(v.date, cr)
			if want := "SDK-HMAC-SHA256\n" + v.date + "\n" + hex.EncodeToString(sum[:]); sts != want {
				t.Errorf("string to sign = %q, want %q", sts, want)
			}
			sig := APIGSignature(v.sk, sts)
			if sig != v.wantSig {
				t.Errorf("signature = %s, want %s", sig, v.wantSig)
			}
			wantAuth := "SDK-HMAC-SHA256 Access=" + v.ak + ", SignedHeaders=" + strings.Join(v.signed, ";") + ", Signature=" + v.wantSig
			if got := APIGAuthorization(v.ak, v.signed, sig); got != wantAuth {
				t.Errorf("Authorization = %q, want %q", got, wantAuth)
			}
		})
	}
}

// newVectorRequest builds the vector's request as a client would, with its
// non-host headers set and X-Sdk-Date only when withDate.
func newVectorRequest(t testing.TB, v apigVector, withDate bool) *http.Request {
	t.Helper()
	r, err := http.NewRequest(v.method, v.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, value := range v.headers {
		if name == "host" || (name == "x-sdk-date" && !withDate) {
			continue
		}
		r.Header.Set(name, value)
	}
	return r
}

func TestAPIGSignVectors(t *testing.T) {
	for _, v := range apigVectors {
		for _, withDate := range []bool{true, false} {
			t.Run(v.name, func(t *testing.T) {
				r := newVectorRequest(t, v, withDate)
				date, err := time.Parse(SDKDateFormat, v.date)
				if err != nil {
					t.Fatal(err)
				}
				now := date
				if withDate {
					now = date.Add(5 * time.Minute) // a preset X-Sdk-Date wins over now
				}
				s := APIGSigner{AK: v.ak, SK: v.sk}
				if v.explicit {
					err = s.SignHeaders(r, v.body, now, v.signed)
				} else {
					err = s.Sign(r, v.body, now)
				}
				if err != nil {
					t.Fatal(err)
				}
				wantAuth := "SDK-HMAC-SHA256 Access=" + v.ak + ", SignedHeaders=" + strings.Join(v.signed, ";") + ", Signature=" + v.wantSig
				if got := r.Header.Get("Authorization"); got != wantAuth {
					t.Errorf("Authorization = %q, want %q", got, wantAuth)
				}
				if got := r.Header.Get(SDKDateHeader); got != v.date {
					t.Errorf("X-Sdk-Date = %q, want %q", got, v.date)
				}
				got, err := VerifyAPIG(r, v.body, lookup(v.ak, v.sk), date, 0)
				if err != nil || got != v.ak {
					t.Errorf("VerifyAPIG = %q, %v; want %q, nil", got, err, v.ak)
				}
			})
		}
	}
}

func lookup(ak, sk string) func(string) (string, bool) {
	return func(got string) (string, bool) {
		if got == ak {
			return sk, true
		}
		return "", false
	}
}

func TestAPIGCanonicalURI(t *testing.T) {
	tests := []struct{ path, want string }{
		{"", "/"},
		{"/", "/"},
		{"/v1/orders", "/v1/orders/"},
		{"/v1/orders/", "/v1/orders/"},
		{"//a", "//a/"},
		{"/a b/c", "/a%20b/c/"},
		{"/中/~x_y-z.1", "/%E4%B8%AD/~x_y-z.1/"},
		{"/a:b@c!$&'()*+,;=", "/a%3Ab%40c%21%24%26%27%28%29%2A%2B%2C%3B%3D/"},
		{"/100%", "/100%25/"},
	}
	for _, tt := range tests {
		if got := APIGCanonicalURI(tt.path); got != tt.want {
			t.Errorf("APIGCanonicalURI(%q) = %q, want %q", tt.path, got, tt.want)
		}
	}
}

func TestAPIGCanonicalQuery(t *testing.T) {
	tests := []struct {
		name string
		q    url.Values
		want string
	}{
		{"none", nil, ""},
		{"space", url.Values{"q": {"a b"}}, "q=a%20b"},
		{"plus", url.Values{"q": {"a+b"}}, "q=a%2Bb"},
		{"tilde kept", url.Values{"t": {"~x"}}, "t=~x"},
		{"non-ASCII", url.Values{"n": {"中"}}, "n=%E4%B8%AD"},
		{"repeated sorted as strings", url.Values{"a": {"2", "1", "10"}}, "a=1&a=10&a=2"},
		{"empty value", url.Values{"e": {""}}, "e="},
		{"name escaped", url.Values{"a b&c": {"x"}}, "a%20b%26c=x"},
		{"names sorted bytewise", url.Values{"b": {"1"}, "a": {"2"}, "A": {"3"}}, "A=3&a=2&b=1"},
		{"name without values", url.Values{"z": {}}, ""},
		// The official SDK's canonicalQueryString test, same input and output.
		{"SDK test", url.Values{
			"limit": {"1"}, "enable": {"true"}, "test": {"一 (&=?!#%.*)"},
			"path": {"/tmp/123"}, "multi": {"1", "2", "3"},
		}, "enable=true&limit=1&multi=1&multi=2&multi=3&path=%2Ftmp%2F123&test=%E4%B8%80%20%28%26%3D%3F%21%23%25.%2A%29"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before string
			if tt.q != nil {
				before = tt.q.Encode()
			}
			if got := APIGCanonicalQuery(tt.q); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if tt.q != nil && tt.q.Encode() != before {
				t.Error("APIGCanonicalQuery modified its argument")
			}
		})
	}
}

func TestAPIGRequestQuery(t *testing.T) {
	tests := []struct {
		raw, want string
		wantErr   bool
	}{
		{raw: "", want: ""},
		{raw: "q=a+b", want: "q=a%20b"}, // "+" is a space, as in url.Values
		{raw: "q=a%20b", want: "q=a%20b"},
		{raw: "q=a%2Bb", want: "q=a%2Bb"},
		{raw: "q=%7e&p=%7E", want: "p=~&q=~"},
		{raw: "flag", want: "flag="},
		{raw: "a=1&a=", want: "a=&a=1"},
		{raw: "b=2&a=1&b=1", want: "a=1&b=1&b=2"},
		{raw: "n=%E4%B8%AD", want: "n=%E4%B8%AD"},
		{raw: "a%20b=c", want: "a%20b=c"},
		{raw: "x=%zz", wantErr: true},
		{raw: "a=1;b=2", wantErr: true},
	}
	for _, tt := range tests {
		r := &http.Request{URL: &url.URL{RawQuery: tt.raw}}
		got, err := apigRequestQuery(r)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("query %q = %q, %v; want %q, error %v", tt.raw, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParseAPIGAuthorization(t *testing.T) {
	const sig = "7be6668032f70418fcc22abc52071e57aff61b84a1d2381bb430d6870f4f6ebe"
	good := []struct{ in, ak, signed string }{
		{"SDK-HMAC-SHA256 Access=AK1, SignedHeaders=host;x-sdk-date, Signature=" + sig, "AK1", "host;x-sdk-date"},
		{"SDK-HMAC-SHA256 Access=AK1,SignedHeaders=x-sdk-date,Signature=" + sig, "AK1", "x-sdk-date"},
		{"  sdk-hmac-sha256   access = AK1 ,  signedheaders=x-sdk-date , signature=" + sig + " ", "AK1", "x-sdk-date"},
		{"SDK-HMAC-SHA256\tSignature=" + sig + ", Access=AK=1, SignedHeaders=x-sdk-date", "AK=1", "x-sdk-date"},
	}
	for _, tt := range good {
		ak, signed, gotSig, err := ParseAPIGAuthorization(tt.in)
		if err != nil || ak != tt.ak || strings.Join(signed, ";") != tt.signed || gotSig != sig {
			t.Errorf("Parse(%q) = %q, %q, %q, %v", tt.in, ak, signed, gotSig, err)
		}
	}
	bad := []string{
		"",
		"Bearer abc",
		"SDK-HMAC-SHA256",
		"SDK-HMAC-SHA256 ",
		"SDK-HMAC-SHA1 Access=AK1, SignedHeaders=x-sdk-date, Signature=" + sig,
		"SDK-HMAC-SHA256 Access=AK1, SignedHeaders=x-sdk-date",
		"SDK-HMAC-SHA256 Access=, SignedHeaders=x-sdk-date, Signature=" + sig,
		"SDK-HMAC-SHA256 Access=A K, SignedHeaders=x-sdk-date, Signature=" + sig,
		"SDK-HMAC-SHA256 Access=AK1, SignedHeaders=, Signature=" + sig,
		"SDK-HMAC-SHA256 Access=AK1, SignedHeaders=host;;x-sdk-date, Signature=" + sig,
		"SDK-HMAC-SHA256 Access=AK1, SignedHeaders=ho st, Signature=" + sig,
		"SDK-HMAC-SHA256 Access=AK1, SignedHeaders=x-sdk-date, Signature=" + sig[:63],
		"SDK-HMAC-SHA256 Access=AK1, SignedHeaders=x-sdk-date, Signature=" + sig[:63] + "g",
		"SDK-HMAC-SHA256 Access=AK1, Access=AK2, SignedHeaders=x-sdk-date, Signature=" + sig,
		"SDK-HMAC-SHA256 Access=AK1, SignedHeaders=x-sdk-date, Signature=" + sig + ", Extra=1",
		"SDK-HMAC-SHA256 Access=AK1, SignedHeaders=x-sdk-date, Signature=" + sig + ",",
		"SDK-HMAC-SHA256 Access=AK1 SignedHeaders=x-sdk-date Signature=" + sig,
	}
	for _, in := range bad {
		if _, _, _, err := ParseAPIGAuthorization(in); !errors.Is(err, ErrAPIGMalformed) {
			t.Errorf("Parse(%q) error = %v, want ErrAPIGMalformed", in, err)
		}
	}
}

// wireRoundTrip sends r (with body) through its HTTP/1.1 wire form and reads
// it back as a server would: Host moves to r.Host, the path is decoded.
func wireRoundTrip(t testing.TB, r *http.Request, body []byte) (*http.Request, []byte) {
	t.Helper()
	if len(body) > 0 {
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
	}
	var buf bytes.Buffer
	if err := r.Write(&buf); err != nil {
		t.Fatalf("write request: %v", err)
	}
	got, err := http.ReadRequest(bufio.NewReader(&buf))
	if err != nil {
		t.Fatalf("read request %q: %v", buf.String(), err)
	}
	gotBody, err := io.ReadAll(got.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return got, gotBody
}

var apigTestNow = time.Date(2026, 11, 23, 15, 4, 5, 0, time.UTC)

const (
	testAK = "HPUAXXXXXXXXXXXXXXXX"
	testSK = "test-secret-key-0123456789"
)

func TestVerifyAPIGRoundTrip(t *testing.T) {
	tests := []struct {
		name, method, url string
		headers           http.Header
		body              []byte
	}{
		{"query order", "GET", "https://mkt.myhuaweicloud.com/api/mkp-openapi-public/global/v1/order/query?orderId=CS2211181819B4LVS&orderLineId=CS2211181819B4LVS-000001", nil, nil},
		{"JSON body", "POST", "https://mkt.myhuaweicloud.com/api/mkp-openapi-public/global/v1/license/activate",
			http.Header{"Content-Type": {"application/json;charset=utf-8"}}, []byte(`{"license":"PL0000000001"}`)},
		{"odd query and path", "GET", "https://mkt.myhuaweicloud.com:8443/a%20b/%E4%B8%AD/x:y?q=a+b&q=%2B&t=~&e=&n=%E4%B8%AD&a%26b=1&flag",
			http.Header{"X-Stage": {"RELEASE"}, "X-Multi": {"b", " a "}, "User-Agent": {"koobridge/1"}}, nil},
		{"multipart unsigned payload", "POST", "https://mkt.myhuaweicloud.com/upload",
			http.Header{"Content-Type": {"multipart/form-data; boundary=x"}}, []byte("--x\r\n\r\ndata\r\n--x--\r\n")},
		{"underscore and hop-by-hop headers left unsigned", "PUT", "https://mkt.myhuaweicloud.com/x",
			http.Header{"X_Under": {"1"}, "Connection": {"keep-alive"}, "Content-Type": {"application/json"}}, []byte("{}")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := http.NewRequest(tt.method, tt.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			for k, vs := range tt.headers {
				r.Header[k] = vs
			}
			if err := (APIGSigner{AK: testAK, SK: testSK}).Sign(r, tt.body, apigTestNow); err != nil {
				t.Fatal(err)
			}
			_, signed, _, err := ParseAPIGAuthorization(r.Header.Get("Authorization"))
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range signed {
				if strings.Contains(h, "_") || h == "connection" || h == "authorization" {
					t.Errorf("signed %q", h)
				}
			}
			if !strings.Contains(";"+strings.Join(signed, ";")+";", ";host;") {
				t.Errorf("host not signed: %v", signed)
			}
			srv, body := wireRoundTrip(t, r, tt.body)
			ak, err := VerifyAPIG(srv, body, lookup(testAK, testSK), apigTestNow.Add(time.Minute), APIGMaxSkew)
			if err != nil || ak != testAK {
				t.Fatalf("VerifyAPIG = %q, %v", ak, err)
			}
		})
	}
}

func TestAPIGSignUnsignedPayload(t *testing.T) {
	tests := []struct {
		contentType string
		want        string // X-Sdk-Content-Sha256 after Sign
	}{
		{"", ""},
		{"application/json", ""},
		{"application/json;charset=UTF-8", ""},
		{"application/bson", ""},
		{"multipart/form-data; boundary=x", APIGUnsignedPayload},
		{"application/x-www-form-urlencoded", APIGUnsignedPayload},
		{"text/plain", APIGUnsignedPayload},
	}
	for _, tt := range tests {
		r, _ := http.NewRequest("POST", "https://mkt.myhuaweicloud.com/x", nil)
		if tt.contentType != "" {
			r.Header.Set("Content-Type", tt.contentType)
		}
		if err := (APIGSigner{AK: testAK, SK: testSK}).Sign(r, []byte("body"), apigTestNow); err != nil {
			t.Fatal(err)
		}
		if got := r.Header.Get(APIGContentSHA256Header); got != tt.want {
			t.Errorf("Content-Type %q: %s = %q, want %q", tt.contentType, APIGContentSHA256Header, got, tt.want)
		}
		_, signed, _, _ := ParseAPIGAuthorization(r.Header.Get("Authorization"))
		hasCSHA := strings.Contains(strings.Join(signed, ";"), "x-sdk-content-sha256")
		if hasCSHA != (tt.want != "") {
			t.Errorf("Content-Type %q: x-sdk-content-sha256 signed = %v", tt.contentType, hasCSHA)
		}
		// An unsigned payload verifies with any body.
		wantBody := []byte("body")
		if tt.want != "" {
			wantBody = []byte("another body")
		}
		if _, err := VerifyAPIG(r, wantBody, lookup(testAK, testSK), apigTestNow, 0); err != nil {
			t.Errorf("Content-Type %q: VerifyAPIG: %v", tt.contentType, err)
		}
	}
}

func TestAPIGSignErrors(t *testing.T) {
	newReq := func() *http.Request {
		r, _ := http.NewRequest("GET", "https://mkt.myhuaweicloud.com/x", nil)
		return r
	}
	tests := []struct {
		name   string
		signer APIGSigner
		r      *http.Request
	}{
		{"no AK", APIGSigner{SK: "sk"}, newReq()},
		{"no SK", APIGSigner{AK: "ak"}, newReq()},
		{"AK with comma", APIGSigner{AK: "a,b", SK: "sk"}, newReq()},
		{"AK with space", APIGSigner{AK: "a b", SK: "sk"}, newReq()},
		{"bad preset date", APIGSigner{AK: "ak", SK: "sk"}, func() *http.Request {
			r := newReq()
			r.Header.Set(SDKDateHeader, "2026-11-23T15:04:05Z")
			return r
		}()},
		{"bad query", APIGSigner{AK: "ak", SK: "sk"}, func() *http.Request {
			r := newReq()
			r.URL.RawQuery = "a=%zz"
			return r
		}()},
		{"no URL", APIGSigner{AK: "ak", SK: "sk"}, &http.Request{Method: "GET"}},
	}
	for _, tt := range tests {
		if err := tt.signer.Sign(tt.r, nil, apigTestNow); err == nil {
			t.Errorf("%s: Sign succeeded", tt.name)
		}
	}
	r := newReq()
	if err := (APIGSigner{AK: "ak", SK: "sk"}).SignHeaders(r, nil, apigTestNow, []string{"X-Absent"}); err == nil {
		t.Error("SignHeaders with an absent header succeeded")
	}
}

func TestAPIGSignSignedHeaders(t *testing.T) {
	r, _ := http.NewRequest("POST", "https://mkt.myhuaweicloud.com/x", nil)
	r.Host = "override.example.com"
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Content-Length", "2")
	r.Header.Set("Transfer-Encoding", "chunked")
	r.Header.Set("Connection", "close")
	r.Header.Set("Authorization", "old")
	r.Header.Set("Host", "ignored.example.com")
	r.Header.Set("X_Under", "1")
	r.Header.Set("User-Agent", "")
	r.Header.Set("X-Project-Id", "p1")
	if err := (APIGSigner{AK: testAK, SK: testSK}).Sign(r, []byte("{}"), apigTestNow); err != nil {
		t.Fatal(err)
	}
	_, signed, _, err := ParseAPIGAuthorization(r.Header.Get("Authorization"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(signed, ";"), "content-type;host;x-project-id;x-sdk-date"; got != want {
		t.Errorf("SignedHeaders = %s, want %s", got, want)
	}
	if got := r.Header.Get(SDKDateHeader); got != "20261123T150405Z" {
		t.Errorf("X-Sdk-Date = %q", got)
	}
	// The host signed is r.Host, not the Host entry of r.Header.
	r.Header.Del("Host")
	if _, err := VerifyAPIG(r, []byte("{}"), lookup(testAK, testSK), apigTestNow, 0); err != nil {
		t.Errorf("VerifyAPIG: %v", err)
	}
}

// signedRequest returns a server-side view of a signed POST with a query, an
// extra signed header and a JSON body.
func signedRequest(t testing.TB) (*http.Request, []byte) {
	t.Helper()
	body := []byte(`{"license":"PL0000000001"}`)
	r, err := http.NewRequest("POST", "https://mkt.myhuaweicloud.com/api/v1/license/activate?a=1&b=2", nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("X-Stage", "RELEASE")
	if err := (APIGSigner{AK: testAK, SK: testSK}).Sign(r, body, apigTestNow); err != nil {
		t.Fatal(err)
	}
	return wireRoundTrip(t, r, body)
}

func TestVerifyAPIGNegative(t *testing.T) {
	sig := func(r *http.Request) string {
		_, _, s, _ := ParseAPIGAuthorization(r.Header.Get("Authorization"))
		return s
	}
	tests := []struct {
		name   string
		mutate func(r *http.Request, body *[]byte, now *time.Time, lookupSK *func(string) (string, bool))
		want   error // nil: must verify
	}{
		{"untouched", func(*http.Request, *[]byte, *time.Time, *func(string) (string, bool)) {}, nil},
		{"upper-case signature", func(r *http.Request, _ *[]byte, _ *time.Time, _ *func(string) (string, bool)) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), sig(r), strings.ToUpper(sig(r)), 1))
		}, nil},
		{"no spaces after commas", func(r *http.Request, _ *[]byte, _ *time.Time, _ *func(string) (string, bool)) {
			r.Header.Set("Authorization", strings.ReplaceAll(r.Header.Get("Authorization"), ", ", ","))
		}, nil},
		{"date 15 min behind", func(_ *http.Request, _ *[]byte, now *time.Time, _ *func(string) (string, bool)) {
			*now = now.Add(15 * time.Minute)
		}, nil},
		{"date 15 min ahead", func(_ *http.Request, _ *[]byte, now *time.Time, _ *func(string) (string, bool)) {
			*now = now.Add(-15 * time.Minute)
		}, nil},
		{"unsigned header added", func(r *http.Request, _ *[]byte, _ *time.Time, _ *func(string) (string, bool)) {
			r.Header.Set("X-Added", "1")
		}, nil},
		{"tampered body", func(_ *http.Request, body *[]byte, _ *time.Time, _ *func(string) (string, bool)) {
			*body = []byte(`{"license":"PL0000000002"}`)
		}, ErrAPIGSignature},
		{"tampered query value", func(r *http.Request, _ *[]byte, _ *time.Time, _ *func(string) (string, bool)) {
			r.URL.RawQuery = "a=1&b=3"
		}, ErrAPIGSignature},
		{"query parameter added", func(r *http.Request, _ *[]byte, _ *time.Time, _ *func(string) (string, bool)) {
			r.URL.RawQuery += "&c=1"
		}, ErrAPIGSignature},
		{"tampered path", func(r *http.Request, _ *[]byte, _ *time.Time, _ *func(string) (string, bool)) {
			r.URL.Path = "/api/v1/license/activatf"
		}, ErrAPIGSignature},
		{"tampered method", func(r *http.Request, _ *[]byte, _ *time.Time, _ *func(string) (string, bool)) {
			r.Method = "PUT"
		}, ErrAPIGSignature},
		{"tampered host", func(r *http.Request, _ *[]byte, _ *time.Time, _ *func(string) (string, bool)) {
			r.Host = "evil.example.com"
		}, ErrAPIGSignature},
		{"tampered signed header", func(r *http.Request, _ *[]byte, _ *time.Time, _ *func(string) (string, bool)) {
			r.Header.Set("X-Stage", "TEST")
		}, ErrAPIGSignature},
		{"signed header removed", func(r *http.Request, _ *[]byte, _ *time.Time, _ *func(string) (string, bool)) {
			r.Header.Del("X-Stage")
		}, ErrAPIGSignature},
		{"content hash header not matching body", func(r *http.Request, _ *[]byte, _ *time.Time, _ *func(string) (string, bool)) {
			r.Header.Set(APIGContentSHA256Header, apigHexSHA256([]byte("other")))
		}, ErrAPIGSignature},
		{"unsigned payload claimed afterwards", func(r *http.Request, _ *[]byte, _ *time.Time, _ *func(string) (string, bool)) {
			r.Header.Set(APIGContentSHA256Header, APIGUnsignedPayload)
		}, ErrAPIGSignature},
		{"wrong SK", func(_ *http.Request, _ *[]byte, _ *time.Time, l *func(string) (string, bool)) {
			*l = lookup(testAK, testSK+"x")
		}, ErrAPIGSignature},
		{"unknown AK", func(_ *http.Request, _ *[]byte, _ *time.Time, l *func(string) (string, bool)) {
			*l = lookup("OTHERAK", testSK)
		}, ErrAPIGUnknownAK},
		{"empty SK from lookup", func(_ *http.Request, _ *[]byte, _ *time.Time, l *func(string) (string, bool)) {
			*l = lookup(testAK, "")
		}, ErrAPIGUnknownAK},
		{"nil lookup", func(_ *http.Request, _ *[]byte, _ *time.Time, l *func(string) (string, bool)) {
			*l = nil
		}, ErrAPIGUnknownAK},
		{"stale date", func(_ *http.Request, _ *[]byte, now *time.Time, _ *func(string) (string, bool)) {
			*now = now.Add(15*time.Minute + time.Second)
		}, ErrAPIGDate},
		{"future date", func(_ *http.Request, _ *[]byte, now *time.Time, _ *func(string) (string, bool)) {
			*now = now.Add(-16 * time.Minute)
		}, ErrAPIGDate},
		{"missing X-Sdk-Date", func(r *http.Request, _ *[]byte, _ *time.Time, _ *func(string) (string, bool)) {
			r.Header.Del(SDKDateHeader)
		}, ErrAPIGDate},
		{"unparsable X-Sdk-Date", func(r *http.Request, _ *[]byte, _ *time.Time, _ *func(string) (string, bool)) {
			r.Header.Set(SDKDateHeader, "2026-11-23T15:04:05Z")
		}, ErrAPIGDate},
		{"x-sdk-date not signed", func(r *http.Request, body *[]byte, _ *time.Time, _ *func(string) (string, bool)) {
			// A valid signature over a canonical request that leaves the date out.
			signed := []string{"content-type", "host", "x-stage"}
			h, _ := apigRequestHeaders(r, signed)
			q, _ := apigRequestQuery(r)
			cr := apigCanonicalRequest(r.Method, APIGCanonicalURI(r.URL.Path), q, h, signed, apigHexSHA256(*body))
			s := APIGSignature(testSK, APIGStringToSign(r.Header.Get(SDKDateHeader), cr))
			r.Header.Set("Authorization", APIGAuthorization(testAK, signed, s))
		}, ErrAPIGMalformed},
		{"malformed Authorization", func(r *http.Request, _ *[]byte, _ *time.Time, _ *func(string) (string, bool)) {
			r.Header.Set("Authorization", "Bearer abc")
		}, ErrAPIGMalformed},
		{"missing Authorization", func(r *http.Request, _ *[]byte, _ *time.Time, _ *func(string) (string, bool)) {
			r.Header.Del("Authorization")
		}, ErrAPIGMalformed},
		{"two Authorization headers", func(r *http.Request, _ *[]byte, _ *time.Time, _ *func(string) (string, bool)) {
			r.Header.Add("Authorization", r.Header.Get("Authorization"))
		}, ErrAPIGMalformed},
		{"unparsable query", func(r *http.Request, _ *[]byte, _ *time.Time, _ *func(string) (string, bool)) {
			r.URL.RawQuery = "a=%zz"
		}, ErrAPIGMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, body := signedRequest(t)
			now, lookupSK := apigTestNow, lookup(testAK, testSK)
			tt.mutate(r, &body, &now, &lookupSK)
			ak, err := VerifyAPIG(r, body, lookupSK, now, APIGMaxSkew)
			if tt.want == nil {
				if err != nil || ak != testAK {
					t.Fatalf("VerifyAPIG = %q, %v; want success", ak, err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("VerifyAPIG error = %v, want %v", err, tt.want)
			}
			if ak != "" {
				t.Errorf("VerifyAPIG returned AK %q with an error", ak)
			}
			for _, other := range []error{ErrAPIGMalformed, ErrAPIGUnknownAK, ErrAPIGSignature, ErrAPIGDate} {
				if other != tt.want && errors.Is(err, other) {
					t.Errorf("error %v also matches %v", err, other)
				}
			}
		})
	}
}

func TestVerifyAPIGDefaultSkew(t *testing.T) {
	r, body := signedRequest(t)
	if _, err := VerifyAPIG(r, body, lookup(testAK, testSK), apigTestNow.Add(14*time.Minute), 0); err != nil {
		t.Errorf("skew 0 (default 15 min), 14 min off: %v", err)
	}
	if _, err := VerifyAPIG(r, body, lookup(testAK, testSK), apigTestNow.Add(16*time.Minute), 0); !errors.Is(err, ErrAPIGDate) {
		t.Errorf("skew 0 (default 15 min), 16 min off: %v", err)
	}
	if _, err := VerifyAPIG(r, body, lookup(testAK, testSK), apigTestNow.Add(2*time.Minute), time.Minute); !errors.Is(err, ErrAPIGDate) {
		t.Errorf("skew 1 min, 2 min off: %v", err)
	}
}

func BenchmarkAPIGSign(b *testing.B) {
	s := APIGSigner{AK: testAK, SK: testSK}
	const u = "https://mkt.myhuaweicloud.com/api/mkp-openapi-public/global/v1/order/query?orderId=CS2211181819B4LVS&orderLineId=CS2211181819B4LVS-000001"
	for b.Loop() {
		r, err := http.NewRequest("GET", u, nil)
		if err != nil {
			b.Fatal(err)
		}
		r.Header.Set("Content-Type", "application/json")
		if err := s.Sign(r, nil, apigTestNow); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyAPIG(b *testing.B) {
	r, body := signedRequest(b)
	l := lookup(testAK, testSK)
	for b.Loop() {
		if _, err := VerifyAPIG(r, body, l, apigTestNow, APIGMaxSkew); err != nil {
			b.Fatal(err)
		}
	}
}
