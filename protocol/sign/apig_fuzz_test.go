package sign

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// FuzzAPIGRoundTrip signs a random request, sends it through its wire form
// and verifies it as a server would: verification must always succeed, and
// Sign may fail only on an unparsable query.
func FuzzAPIGRoundTrip(f *testing.F) {
	f.Add(uint8(0), "/api/mkp-openapi-public/global/v1/order/query", "orderId=CS1&orderLineId=CS1-000001", []byte(nil), "X-Stage", "RELEASE", "application/json", "sk", int64(0))
	f.Add(uint8(1), "/a b/中/%zz", "q=a+b&q=%2B&t=~&e=&flag", []byte(`{"a":1}`), "x-multi", "  spaced  ", "multipart/form-data; boundary=x", "秘密", int64(-899))
	f.Add(uint8(2), "//x/", "a=%zz", []byte("x"), "User-Agent", "", "", "k", int64(900))
	f.Add(uint8(3), "", "a=1;b=2", []byte{0, 1, 2}, "X_Under", "v", "text/plain", "k", int64(1))
	hosts := []string{"mkt.myhuaweicloud.com", "mkt.myhuaweicloud.cn:8443", "127.0.0.1:9000", "[::1]:80"}
	methods := []string{"GET", "POST", "PUT", "DELETE", "PATCH"}
	f.Fuzz(func(t *testing.T, pick uint8, path, rawQuery string, body []byte, hName, hValue, contentType, sk string, offset int64) {
		if sk == "" {
			sk = "k"
		}
		hName = apigFuzzToken(hName)
		if strings.EqualFold(hName, SDKDateHeader) || strings.EqualFold(hName, APIGContentSHA256Header) {
			hName = "X-Fuzz" // a caller-chosen date or body hash is Sign's input, not noise
		}
		r := &http.Request{
			Method: methods[int(pick)%len(methods)],
			URL:    &url.URL{Scheme: "https", Host: hosts[int(pick/8)%len(hosts)], Path: "/" + path},
			Header: http.Header{},
		}
		// Bytes that cannot appear in a request line travel percent-encoded.
		if strings.ContainsFunc(rawQuery, func(c rune) bool { return c <= ' ' || c >= 0x7f || c == '#' }) {
			rawQuery = url.QueryEscape(rawQuery)
		}
		r.URL.RawQuery = rawQuery
		r.Header.Set(hName, apigFuzzValue(hValue))
		if ct := apigFuzzValue(contentType); ct != "" {
			r.Header.Set("Content-Type", ct)
		}
		now := apigTestNow.Add(time.Duration(offset%900) * time.Second) // within APIGMaxSkew

		_, queryErr := url.ParseQuery(rawQuery)
		err := (APIGSigner{AK: testAK, SK: sk}).Sign(r, body, now)
		if (err != nil) != (queryErr != nil) {
			t.Fatalf("Sign error %v, query error %v", err, queryErr)
		}
		if err != nil {
			return
		}
		srv, gotBody := wireRoundTrip(t, r, body)
		ak, err := VerifyAPIG(srv, gotBody, lookup(testAK, sk), apigTestNow, APIGMaxSkew)
		if err != nil || ak != testAK {
			t.Fatalf("VerifyAPIG = %q, %v\nAuthorization: %s", ak, err, r.Header.Get("Authorization"))
		}
		// Any change to the body must be caught unless the payload is unsigned.
		if srv.Header.Get(APIGContentSHA256Header) == "" {
			tampered := append(slices.Clone(gotBody), 'x')
			if _, err := VerifyAPIG(srv, tampered, lookup(testAK, sk), apigTestNow, APIGMaxSkew); !errors.Is(err, ErrAPIGSignature) {
				t.Fatalf("tampered body: %v", err)
			}
		}
	})
}

// FuzzParseAPIGAuthorization checks that parsing never panics, that success
// always yields a usable triple, and that APIGAuthorization output parses
// back to its inputs.
func FuzzParseAPIGAuthorization(f *testing.F) {
	const sig = "7be6668032f70418fcc22abc52071e57aff61b84a1d2381bb430d6870f4f6ebe"
	f.Add("SDK-HMAC-SHA256 Access=AK, SignedHeaders=host;x-sdk-date, Signature="+sig, "AK", "host;x-sdk-date")
	f.Add("SDK-HMAC-SHA256 Access=AK,SignedHeaders=x-sdk-date,Signature="+sig, "QTWAOYTTINDUT2QVKYUC", "content-type;host;x-sdk-date")
	f.Add("sdk-hmac-sha256\tsignature=x", "A=B", "x-sdk-date")
	f.Add("", "", "")
	f.Fuzz(func(t *testing.T, header, ak, signedList string) {
		gotAK, gotSigned, gotSig, err := ParseAPIGAuthorization(header)
		if err != nil {
			if !errors.Is(err, ErrAPIGMalformed) {
				t.Fatalf("error %v does not wrap ErrAPIGMalformed", err)
			}
			if gotAK != "" || gotSigned != nil || gotSig != "" {
				t.Fatalf("results with an error: %q %q %q", gotAK, gotSigned, gotSig)
			}
		} else if gotAK == "" || len(gotSigned) == 0 || len(gotSig) != 64 {
			t.Fatalf("success with unusable results: %q %q %q", gotAK, gotSigned, gotSig)
		}

		// Round trip over valid inputs.
		ak = strings.TrimSpace(ak)
		if ak == "" || strings.ContainsAny(ak, ",; \t\r\n") || strings.ContainsFunc(ak, func(c rune) bool { return c < ' ' || c == 0x7f }) {
			return
		}
		signed := strings.Split(signedList, ";")
		for _, h := range signed {
			if !apigIsToken(h) {
				return
			}
		}
		sig := APIGSignature(ak, header)
		v := APIGAuthorization(ak, signed, sig)
		gotAK, gotSigned, gotSig, err = ParseAPIGAuthorization(v)
		if err != nil || gotAK != ak || !slices.Equal(gotSigned, signed) || gotSig != sig {
			t.Fatalf("Parse(%q) = %q, %q, %q, %v", v, gotAK, gotSigned, gotSig, err)
		}
	})
}

// apigFuzzToken maps s to a valid header name.
func apigFuzzToken(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !apigIsToken(string(c)) {
			b[i] = '-'
		}
	}
	if len(b) == 0 {
		return "X-Empty"
	}
	return string(b)
}

// apigFuzzValue drops the bytes net/http cannot send in a header value.
func apigFuzzValue(s string) string {
	return strings.Map(func(c rune) rune {
		if c < ' ' && c != '\t' || c == 0x7f {
			return -1
		}
		return c
	}, s)
}

// FuzzVerifyAPIG feeds VerifyAPIG hostile requests, as the emulator's mock
// Open API receives them: arbitrary Authorization, date, body-hash header,
// path, query and body. It must never panic, every error must wrap one of
// the four sentinels, and a request it accepts must carry a signature that
// really is valid for the known SK.
func FuzzVerifyAPIG(f *testing.F) {
	const ak, sk = "AK", "SK"
	date := "20240317T144237Z"
	now, _ := time.Parse(SDKDateFormat, date)
	f.Add("GET", "/api/mkp-openapi-public/global/v1/order/query", "orderId=1", []byte(nil),
		"SDK-HMAC-SHA256 Access=AK, SignedHeaders=host;x-sdk-date, Signature="+strings.Repeat("a", 64), date, "")
	f.Add("POST", "/x", "", []byte("{}"), "SDK-HMAC-SHA256 Access=AK, SignedHeaders=x-missing;x-sdk-date, Signature=00", "bad", "UNSIGNED-PAYLOAD")
	f.Add("GET", "/", "a=%zz;b", []byte{0xff}, "SDK-HMAC-SHA256 Access=NOPE, SignedHeaders=x-sdk-date, Signature="+strings.Repeat("0", 64), date, "x")
	f.Add("PUT", "/中", "", []byte(nil), "", "", "")
	lookup := func(a string) (string, bool) { return sk, a == ak }
	sentinels := []error{ErrAPIGMalformed, ErrAPIGUnknownAK, ErrAPIGSignature, ErrAPIGDate}
	f.Fuzz(func(t *testing.T, method, path, rawQuery string, body []byte, auth, sdkDate, bodyHash string) {
		u := &url.URL{Scheme: "https", Host: "mkt.myhuaweicloud.com", Path: path, RawQuery: rawQuery}
		r, err := http.NewRequest(method, u.String(), nil)
		if err != nil {
			return // not a request a server could receive
		}
		r.Host = u.Host
		r.Header.Set("Authorization", auth)
		r.Header.Set(SDKDateHeader, sdkDate)
		if bodyHash != "" {
			r.Header.Set(APIGContentSHA256Header, bodyHash)
		}
		got, err := VerifyAPIG(r, body, lookup, now, 0)
		if err != nil {
			if !slices.ContainsFunc(sentinels, func(s error) bool { return errors.Is(err, s) }) {
				t.Fatalf("error %v wraps none of the sentinels", err)
			}
			return
		}
		// Accepted: only possible with the real signature for these bytes.
		if got != ak {
			t.Fatalf("accepted for access key %q", got)
		}
		_, signed, sig, perr := ParseAPIGAuthorization(auth)
		if perr != nil {
			t.Fatalf("accepted an unparsable Authorization %q", auth)
		}
		again := r.Clone(r.Context())
		again.Header.Del("Authorization")
		if err := (APIGSigner{AK: ak, SK: sk}).SignHeaders(again, body, now, signed); err != nil {
			t.Fatalf("accepted request cannot be re-signed: %v", err)
		}
		if _, _, want, _ := ParseAPIGAuthorization(again.Header.Get("Authorization")); !strings.EqualFold(sig, want) {
			t.Fatalf("accepted signature %s, the real one is %s", sig, want)
		}
	})
}
