package sign

import (
	"encoding/base64"
	"errors"
	"testing"
)

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func TestBodySignKnownAnswers(t *testing.T) {
	tests := []struct {
		name, key, body, signature string
	}{
		{"saas-v2 §2.5", specKey, `{"resultCode":"000000","resultMsg":"success","instanceId":"inst-001"}`, "m170lIqQUVIcBE0YAhIubMAxxKwYV2PhJnGUTLTac0Q="},
		{"saas-v1 §A.3", v1Key, `{"resultCode":"000000","resultMsg":"success."}`, "TqHrax4nGMCqfFPsub8jnfn6V0MhK5bWa0lTIOZGsIQ="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := `sign_type="HMAC-SHA256", signature="` + tt.signature + `"`
			if got := BodySign(tt.key, []byte(tt.body)); got != want {
				t.Errorf("BodySign = %s, want %s", got, want)
			}
			if err := VerifyBodySign(tt.key, want, []byte(tt.body)); err != nil {
				t.Errorf("VerifyBodySign: %v", err)
			}
		})
	}
}

func TestParseBodySign(t *testing.T) {
	const sig = "m170lIqQUVIcBE0YAhIubMAxxKwYV2PhJnGUTLTac0Q="
	good := []string{
		`sign_type="HMAC-SHA256", signature="` + sig + `"`,
		`sign_type="HMAC-SHA256",signature="` + sig + `"`,
		`sign_type = "HMAC-SHA256" ,signature= "` + sig + `"`,
		`signature="` + sig + `", sign_type="HMAC-SHA256"`,
		`sign_type=HMAC-SHA256, signature=` + sig,
		`  sign_type=hmac-sha256 ,  signature = ` + sig + `  `,
		`Sign_Type="HMAC-SHA256", Signature="` + sig + `", extra="ignored"`,
		`sign_type="HMAC-SHA256", signature="` + sig + `",`,
	}
	for _, h := range good {
		st, s, err := ParseBodySign(h)
		if err != nil || s != sig || !equalFoldConstantTime(st, "HMAC-SHA256") {
			t.Errorf("ParseBodySign(%s) = %q, %q, %v; want HMAC-SHA256, %s", h, st, s, err, sig)
		}
	}
	bad := []struct {
		header string
		want   error
	}{
		{``, ErrMissing},
		{`sign_type="HMAC-SHA256"`, ErrMissing},
		{`sign_type="HMAC-SHA256", signature=""`, ErrMissing},
		{`signature="` + sig + `"`, ErrMissing},
		{`sign_type="HMAC-SHA1", signature="` + sig + `"`, ErrMalformedBodySign},
		{`sign_type="", signature="` + sig + `"`, ErrMissing},
		{`sign_type="HMAC-SHA256", signature="not base64!"`, ErrMalformedBodySign},
		{`sign_type="HMAC-SHA256", signature="` + sig[:len(sig)-1] + `"`, ErrMalformedBodySign},
		{`sign_type="HMAC-SHA256", signature="` + b64([]byte("short")) + `"`, ErrMalformedBodySign},
		{`sign_type="HMAC-SHA256", signature="` + sig + ``, ErrMalformedBodySign},
		{`sign_type="HMAC-SHA256", signature=` + sig + `"`, ErrMalformedBodySign},
		{`sign_type="HMAC-SHA256", signature="a"b"`, ErrMalformedBodySign},
		{`sign_type="HMAC-SHA256" signature="` + sig + `"`, ErrMalformedBodySign},
		{`sign_type="HMAC-SHA256", signature="` + sig + `", signature="` + sig + `"`, ErrMalformedBodySign},
		{`sign_type="HMAC-SHA256", sign_type="HMAC-SHA256", signature="` + sig + `"`, ErrMalformedBodySign},
		{`sign_type="HMAC-SHA256", junk, signature="` + sig + `"`, ErrMalformedBodySign},
	}
	for _, tt := range bad {
		if st, s, err := ParseBodySign(tt.header); !errors.Is(err, tt.want) || st != "" || s != "" {
			t.Errorf("ParseBodySign(%s) = %q, %q, %v; want error %v", tt.header, st, s, err, tt.want)
		}
	}
}

func TestVerifyBodySign(t *testing.T) {
	body := []byte(`{"resultCode":"000000","resultMsg":"success."}`)
	header := BodySign(v1Key, body)
	tests := []struct {
		name, key, header string
		body              []byte
		want              error
	}{
		{"good", v1Key, header, body, nil},
		{"reordered header", v1Key, `signature="TqHrax4nGMCqfFPsub8jnfn6V0MhK5bWa0lTIOZGsIQ=",sign_type=HMAC-SHA256`, body, nil},
		{"wrong key", "other", header, body, ErrSignature},
		{"body with trailing newline", v1Key, header, append(body[:len(body):len(body)], '\n'), ErrSignature},
		{"empty body", v1Key, header, nil, ErrSignature},
		{"malformed header", v1Key, "HMAC-SHA256 " + header, body, ErrMalformedBodySign},
		{"missing header", v1Key, "", body, ErrMissing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifyBodySign(tt.key, tt.header, tt.body)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
}
