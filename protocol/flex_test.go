package protocol

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
)

func TestFlexString(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{`"a"`, "a"}, {`12`, "12"}, {`-1.5e3`, "-1.5e3"}, {`true`, "true"}, {`null`, "keep"},
		{`{"a": 1}`, `{"a":1}`}, {`[1, 2]`, `[1,2]`},
	}
	for _, tc := range tests {
		s := FlexString("keep")
		if err := json.Unmarshal([]byte(tc.in), &s); err != nil || string(s) != tc.want {
			t.Errorf("FlexString(%s) = %q, %v; want %q", tc.in, s, err, tc.want)
		}
	}
}

func TestFlexInt(t *testing.T) {
	tests := []struct {
		in      string
		want    FlexInt
		wantErr bool
	}{
		{`1`, 1, false}, {`"2"`, 2, false}, {`" 3 "`, 3, false}, {`null`, -1, false}, {`""`, -1, false},
		{`1.5`, 0, true}, {`"x"`, 0, true}, {`true`, 0, true}, {`{}`, 0, true}, {`99999999999`, 0, true},
	}
	for _, tc := range tests {
		v := FlexInt(-1)
		err := json.Unmarshal([]byte(tc.in), &v)
		if tc.wantErr {
			if err == nil {
				t.Errorf("FlexInt(%s) = %d, want error", tc.in, v)
			}
			continue
		}
		if err != nil || v != tc.want {
			t.Errorf("FlexInt(%s) = %d, %v; want %d", tc.in, v, err, tc.want)
		}
	}
}

func TestFlexBool(t *testing.T) {
	for in, want := range map[string]bool{`true`: true, `false`: false, `"true"`: true, `"False"`: false, `1`: true, `"0"`: false} {
		var v FlexBool
		if err := json.Unmarshal([]byte(in), &v); err != nil || bool(v) != want {
			t.Errorf("FlexBool(%s) = %v, %v", in, v, err)
		}
	}
	for _, in := range []string{`"yes"`, `2`, `[]`} {
		var v FlexBool
		if err := json.Unmarshal([]byte(in), &v); err == nil {
			t.Errorf("FlexBool(%s) succeeded", in)
		}
	}
}

func TestFlexNumber(t *testing.T) {
	tests := []struct {
		in, text, out string
	}{
		{`50`, "50", `50`}, {`"50"`, "50", `50`}, {`" 7.25 "`, "7.25", `7.25`}, {`"abc"`, "abc", `"abc"`}, {`"01"`, "01", `"01"`},
	}
	for _, tc := range tests {
		var n FlexNumber
		if err := json.Unmarshal([]byte(tc.in), &n); err != nil || string(n) != tc.text {
			t.Errorf("FlexNumber(%s) = %q, %v", tc.in, n, err)
			continue
		}
		out, err := json.Marshal(n)
		if err != nil || string(out) != tc.out {
			t.Errorf("Marshal(FlexNumber(%q)) = %s, %v; want %s", n, out, err, tc.out)
		}
	}
	if i, err := FlexNumber("50").Int64(); err != nil || i != 50 {
		t.Errorf("Int64 = %d, %v", i, err)
	}
	if f, err := FlexNumber("2.5").Float64(); err != nil || f != 2.5 {
		t.Errorf("Float64 = %v, %v", f, err)
	}
	if _, err := FlexNumber("x").Float64(); err == nil {
		t.Error("Float64(x) succeeded")
	}
	var n FlexNumber
	if err := json.Unmarshal([]byte(`{}`), &n); err == nil {
		t.Error("FlexNumber({}) succeeded")
	}
}

func TestDecimal(t *testing.T) {
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{"12.5", "12.5", false}, {"3", "3", false}, {"0.0001", "0.0001", false}, {"-0.25", "-0.25", false},
		{"1.2300", "1.23", false}, {"99999999.9999", "99999999.9999", false},
		{"1.23456", "", true}, {"", "", true}, {"1.", "", true}, {".5", "", true}, {"1e3", "", true}, {"+1", "", true},
		{"abc", "", true}, {"999999999999999999999", "", true},
	}
	for _, tc := range tests {
		d, err := ParseDecimal(tc.in)
		if tc.wantErr {
			if err == nil {
				t.Errorf("ParseDecimal(%q) = %s, want error", tc.in, d)
			}
			continue
		}
		if err != nil || d.String() != tc.want {
			t.Errorf("ParseDecimal(%q) = %s, %v; want %s", tc.in, d, err, tc.want)
		}
		b, _ := json.Marshal(d)
		var back Decimal
		if err := json.Unmarshal(b, &back); err != nil || back != d {
			t.Errorf("round trip %s: %s, %v", b, back, err)
		}
	}
	d, err := DecimalFromFloat(12.34567)
	if err != nil || d.String() != "12.3457" {
		t.Errorf("DecimalFromFloat = %s, %v", d, err)
	}
	if d.Float64() != 12.3457 || d.Sign() != 1 {
		t.Errorf("Float64/Sign = %v/%d", d.Float64(), d.Sign())
	}
	for _, f := range []float64{1e300, -1e300} {
		if _, err := DecimalFromFloat(f); err == nil {
			t.Errorf("DecimalFromFloat(%v) succeeded", f)
		}
	}
	var fromString Decimal
	if err := json.Unmarshal([]byte(`"1.5"`), &fromString); err != nil || fromString.String() != "1.5" {
		t.Errorf("Decimal from string = %s, %v", fromString, err)
	}
	if err := json.Unmarshal([]byte(`1.23456`), &fromString); err == nil {
		t.Error("Decimal with 5 decimals decoded")
	}
}

func TestResultCodes(t *testing.T) {
	if CodeSuccess.String() != "000000" || !CodeSuccess.Success() || CodeProcessing.Success() {
		t.Fatal("CodeSuccess basics")
	}
	if CodeNoSuchInstanceResource != CodeNoResource {
		t.Fatal("000100 overlap changed")
	}
	for _, c := range []ResultCode{CodeSuccess, CodeAuthFailed, CodeInvalidParam, CodeInstanceNotFound, CodeProcessing,
		CodeInternal, CodeNoResource, CodeMobileInvalid, CodeEmailInvalid, CodeRepurchase, CodeServiceError,
		CodeAlreadySubscribed, CodeSoldOut, CodeEmailDomainInUse, CodeQuotaInsufficient, CodeOutsideOrderValidity,
		CodeExpiryRequired, CodeFingerprintRequired} {
		if c.Meaning() == "unknown result code" || len(c) != 6 {
			t.Errorf("code %s has no meaning", c)
		}
	}
	if ResultCode("123456").Meaning() != "unknown result code" {
		t.Error("unknown code has a meaning")
	}
	for code, want := range map[string]bool{"MKT.0000": true, "CBC.0000": true, " MKT.0000 ": true, "92020000": true,
		"MKT.0999": false, "": false, "APIGW.0301": false, "000000": false} {
		if OpenAPISuccess(code) != want {
			t.Errorf("OpenAPISuccess(%q) = %v", code, !want)
		}
	}
	for code, status := range map[string]int{MKTInvalidBodySignature: 400, CBCRateLimited: 406, APIGThrottled: 429,
		LicenseContentTypeNotSupported: 415, OnlineLicenseApplicationDenied: 200, APIGWNotAuthorized: 403} {
		info, ok := LookupOpenAPICode(code)
		if !ok || info.HTTPStatus != status || info.Meaning == "" {
			t.Errorf("LookupOpenAPICode(%s) = %+v, %v", code, info, ok)
		}
	}
	if _, ok := LookupOpenAPICode("MKT.1234"); ok {
		t.Error("unknown Open API code found")
	}
}

func TestResultCodeFor(t *testing.T) {
	var syn *json.SyntaxError
	synErr := json.Unmarshal([]byte("{"), &struct{}{})
	if !errors.As(synErr, &syn) {
		t.Fatal("no syntax error")
	}
	tests := []struct {
		err  error
		want ResultCode
	}{
		{nil, CodeSuccess},
		{&FieldError{"orderId", "missing"}, CodeInvalidParam},
		{fmt.Errorf("wrapped: %w", &FieldError{"x", "y"}), CodeInvalidParam},
		{&DecodeError{"v2 body", errors.New("bad")}, CodeInvalidParam},
		{synErr, CodeInvalidParam},
		{errors.New("db down"), CodeInternal},
	}
	for _, tc := range tests {
		if got := ResultCodeFor(tc.err); got != tc.want {
			t.Errorf("ResultCodeFor(%v) = %s, want %s", tc.err, got, tc.want)
		}
	}
	msgs := map[string]string{
		(&FieldError{"orderId", "missing"}).Error():                   "invalid parameter orderId: missing",
		(&FieldError{"orderId", "longer than 64 characters"}).Error(): "invalid parameter orderId: longer than 64 characters",
	}
	for got, want := range msgs {
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
	// Messages produced by Validate follow the documented wording.
	for _, tc := range []struct {
		v    validator
		want string
	}{
		{NewInstanceRequest{ActivityName: "newInstance", BusinessID: "b", OrderLineID: "l"}, "invalid parameter orderId: missing"},
		{NewInstanceRequest{ActivityName: "newInstance", BusinessID: "b", OrderID: long(65), OrderLineID: "l"}, "invalid parameter orderId: longer than 64 characters"},
		{UpdateInstanceStatusRequest{ActivityName: "updateInstanceStatus", InstanceID: "i", Status: "X"}, "invalid parameter status: must be FREEZE or UNFREEZE"},
		{RefreshInstanceRequest{ActivityName: "refreshInstance", Scene: "RENEWAL", OrderID: "o", OrderLineID: "l", InstanceID: "i", ExpireTime: "2024"}, "invalid parameter expireTime: not yyyyMMddHHmmss[SSS]"},
	} {
		if err := tc.v.Validate(); err == nil || err.Error() != tc.want {
			t.Errorf("Validate() = %v, want %q", err, tc.want)
		}
	}
}

func TestErrorResponse(t *testing.T) {
	if r := ErrorResponse(nil); r.ResultCode != CodeSuccess || r.ResultMsg != "success" {
		t.Errorf("ErrorResponse(nil) = %+v", r)
	}
	r := ErrorResponse(&FieldError{Field: "x", Problem: repeatRune('长', 300)})
	if r.ResultCode != CodeInvalidParam || len([]rune(r.ResultMsg)) != 255 {
		t.Errorf("ErrorResponse(long) = %s, %d runes", r.ResultCode, len([]rune(r.ResultMsg)))
	}
	if r := ErrorResponse(errors.New("boom")); r.ResultCode != CodeInternal || r.ResultMsg != "boom" {
		t.Errorf("ErrorResponse(boom) = %+v", r)
	}
	if n := len(openAPICodes); n != 55 {
		t.Errorf("openAPICodes has %d entries, want 55 (every constant)", n)
	}
}

// TestFlexStringFastPath checks that FlexString's fast path for plain
// strings gives what encoding/json gives.
func TestFlexStringFastPath(t *testing.T) {
	for _, in := range []string{`"abc"`, `""`, `"中文 😀"`, "\"a\xffb\"", `"a\"b"`, `"a\u0041"`, "\"a\tb\"", `"a\\"`, "\"\xed\xa0\x80\"", `"\u0000"`} {
		var want string
		wantErr := json.Unmarshal([]byte(in), &want)
		var got FlexString
		err := got.UnmarshalJSON([]byte(in))
		if (err != nil) != (wantErr != nil) || (err == nil && string(got) != want) {
			t.Errorf("FlexString(%q) = %q, %v; encoding/json %q, %v", in, got, err, want, wantErr)
		}
	}
}

// TestDecimalFromUnits: ten-thousandths written as decimal text without
// trailing zeros, and read back.
func TestDecimalFromUnits(t *testing.T) {
	for u, want := range map[int64]string{0: "0", 1: "0.0001", 15000: "1.5", 30000: "3", 1234567: "123.4567", 100000: "10", -15000: "-1.5", 999999999999: "99999999.9999"} {
		d := DecimalFromUnits(u)
		if got := d.String(); got != want {
			t.Errorf("DecimalFromUnits(%d) = %q, want %q", u, got, want)
		}
		if back, err := ParseDecimal(want); err != nil || back.Units() != u {
			t.Errorf("ParseDecimal(%q).Units() = %d, %v; want %d", want, back.Units(), err, u)
		}
	}
}
