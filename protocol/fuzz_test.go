package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// checkValidateErr asserts that Validate returns nil or a *FieldError.
func checkValidateErr(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field == "" || fe.Problem == "" {
		t.Fatalf("Validate returned %T %v, want *FieldError", err, err)
	}
}

// checkDecodeErr asserts the decode contract: exactly one of r and err is
// nil, and errors map to 000002.
func checkDecodeErr(t *testing.T, isNil bool, err error) {
	t.Helper()
	if isNil == (err == nil) {
		t.Fatalf("result nil = %v with error %v", isNil, err)
	}
	if err != nil && ResultCodeFor(err) != CodeInvalidParam {
		t.Fatalf("error %v maps to %s", err, ResultCodeFor(err))
	}
}

// checkStrings asserts the strict-decoding invariant on a decoded value:
// every string in it is valid UTF-8 without NUL.
func checkStrings(t *testing.T, v any) {
	t.Helper()
	var walk func(reflect.Value, string)
	walk = func(v reflect.Value, path string) {
		switch v.Kind() {
		case reflect.String:
			if s := v.String(); !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
				t.Fatalf("%s = %q: invalid UTF-8 or NUL accepted", path, s)
			}
		case reflect.Pointer, reflect.Interface:
			if !v.IsNil() {
				walk(v.Elem(), path)
			}
		case reflect.Struct:
			for i := 0; i < v.NumField(); i++ {
				if v.Type().Field(i).IsExported() {
					walk(v.Field(i), path+"."+v.Type().Field(i).Name)
				}
			}
		case reflect.Slice, reflect.Array:
			for i := 0; i < v.Len(); i++ {
				walk(v.Index(i), path+"["+itoa(i)+"]")
			}
		case reflect.Map:
			for it := v.MapRange(); it.Next(); {
				walk(it.Key(), path+"{key}")
				walk(it.Value(), path+"{}")
			}
		}
	}
	walk(reflect.ValueOf(v), "r")
}

// checkStrictBody asserts, with encoding/json as an independent oracle,
// that an accepted body is one valid JSON value (after an optional byte
// order mark) in valid UTF-8, whose objects have no two keys equal apart
// from letter case, and whose strings and keys hold no NUL and no U+FFFD
// that is not in the body itself (encoding/json writes U+FFFD for invalid
// UTF-8 and lone surrogates).
func checkStrictBody(t *testing.T, body []byte) {
	t.Helper()
	body = bytes.TrimPrefix(body, []byte("\xef\xbb\xbf"))
	if !json.Valid(body) || !utf8.Valid(body) {
		t.Fatalf("accepted invalid JSON or UTF-8: %q", body)
	}
	replacementInBody := bytes.Contains(body, []byte("\uFFFD")) || bytes.Contains(bytes.ToLower(body), []byte(`\ufffd`))
	type frame struct {
		object bool
		isKey  bool
		keys   []string
	}
	var stack []*frame
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	for {
		tok, err := d.Token()
		if err != nil {
			break
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if s, ok := tok.(string); ok {
			if strings.IndexByte(s, 0) >= 0 || (!replacementInBody && strings.ContainsRune(s, utf8.RuneError)) {
				t.Fatalf("accepted NUL or invalid text %q in %q", s, body)
			}
			if top != nil && top.object && top.isKey {
				for _, k := range top.keys {
					if strings.EqualFold(k, s) {
						t.Fatalf("accepted duplicate key %q in %q", s, body)
					}
				}
				top.keys = append(top.keys, s)
				top.isKey = false
				continue
			}
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{object: true, isKey: true})
			continue
		case json.Delim('['):
			stack = append(stack, &frame{})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			top = nil
			if len(stack) > 0 {
				top = stack[len(stack)-1]
			}
		}
		// A value ended: in an object, a key comes next.
		if top != nil && top.object {
			top.isKey = true
		}
	}
}

// checkLikeEncodingJSON asserts that a decoded request equals what
// encoding/json makes of the same body, whenever encoding/json can decode
// it (it cannot when a number stands for a String field).
func checkLikeEncodingJSON(t *testing.T, body []byte, r any) {
	t.Helper()
	want := reflect.New(reflect.TypeOf(r))
	if json.Unmarshal(bytes.TrimPrefix(body, []byte("\xef\xbb\xbf")), want.Interface()) != nil {
		return
	}
	if got := want.Elem().Interface(); !reflect.DeepEqual(got, r) {
		t.Fatalf("decoded %#v, encoding/json %#v", r, got)
	}
}

var v2Seeds = []string{
	`{"activity":"newInstance","businessId":"87b94795-0603-4e24-8ae5-69420d60e3c8","orderId":"CS2211181819B4LVS","orderLineId":"CS2211181819B4LVS-000001","testFlag":"1"}`,
	`{"activity":"queryInstance","instanceId":"a,b,c","testFlag":1}`,
	`{"activity":"refreshInstance","expireTime":"20221124023618256","instanceId":"i","orderId":"o","orderLineId":"l","scene":"RENEWAL"}`,
	`{"activity":"updateInstanceStatus","instanceId":"i","status":"FREEZE"}`,
	`{"activity":"releaseInstance","instanceId":"i","orderId":null}`,
	`{"activity":"upgradeInstance","instanceId":"i","orderId":"o","orderLineId":"l"}`,
	`{"activity":"changeInstanceCheck","instanceId":"i","productInfo":{"productId":"p","linearValue":5}}`,
	`{"activity":"changeInstanceCheck","instanceId":"i","productInfo":"[{\"skuCode\":\"s\"}]"}`,
	`{"activity":"getLicenseAsync","instanceId":"i","effectiveTime":"2023-10-27 10:30:15 z","eventId":"e"}`,
	`{"activity":"orderNotify","orderId":"o","orderLineId":"l","testFlag":"0"}`,
	`{"activity":"x"}`, `{}`, `[]`, `null`, `{"activity":"newInstance","orderId":{}}`,
	`{"activity":"queryInstance","activity":"newInstance","instanceId":"i"}`,
	`{"activity":"newInstance","businessId":"b","orderId":true,"orderLineId":"l"}`,
	`{"activity":"newInstance","businessId":"b","orderId":"o\ud800","orderLineId":"l\u0000"}`,
	"{\"activity\":\"newInstance\",\"businessId\":\"b\",\"orderId\":\"o\xff\",\"orderLineId\":\"l\"}",
	`{"activity":"changeInstanceCheck","instanceId":"i","productInfo":"{\"productId\":\"p\\u0000\",\"PRODUCTID\":1}"}`,
	`{"activity":"newInstance","orderId":"o","OrderID":"p","x":{"\ud83d\ude00":[1,{"a":1,"A":2}]}}`,
}

// FuzzDecodeV2 checks that DecodeV2 never panics, honours its error
// contract, and that a decoded request survives Marshal and DecodeV2 again.
func FuzzDecodeV2(f *testing.F) {
	for _, s := range v2Seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := DecodeV2(body)
		checkDecodeErr(t, r == nil, err)
		if err != nil {
			return
		}
		checkStrictBody(t, body)
		checkStrings(t, r)
		checkLikeEncodingJSON(t, body, r)
		checkValidateErr(t, r.Validate())
		_ = r.IsTest()
		out, err := Marshal(r)
		if err != nil {
			t.Fatalf("Marshal(%#v): %v", r, err)
		}
		back, err := DecodeV2(out)
		if err != nil {
			t.Fatalf("DecodeV2(Marshal) %s: %v", out, err)
		}
		if !reflect.DeepEqual(back, r) {
			t.Fatalf("round trip changed\n got %#v\nwant %#v", back, r)
		}
	})
}

// FuzzDecodeLicense is FuzzDecodeV2 for the license-code activities.
func FuzzDecodeLicense(f *testing.F) {
	for _, s := range []string{
		`{"activity":"refreshLicenseCode","expireTime":"20230523201932","license":"******","orderId":"******","orderLineId":"******","productId":"******","scene":"RENEWAL","testFlag":"1"}`,
		`{"activity":"releaseLicenseCode","license":"PL0000000001","testFlag":"1"}`,
		`{"activity":"updateLicenseCodeStatus","license":"L","status":"FREEZE","testFlag":0}`,
		`{"activity":"newInstance"}`, `{`,
		`{"activity":"releaseLicenseCode","license":"PL1","License":"PL2"}`,
		`{"activity":"releaseLicenseCode","license":"PL\u0000\udc00","testFlag":false}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := DecodeLicense(body)
		checkDecodeErr(t, r == nil, err)
		if err != nil {
			return
		}
		checkStrictBody(t, body)
		checkStrings(t, r)
		checkLikeEncodingJSON(t, body, r)
		checkValidateErr(t, r.Validate())
		out, err := Marshal(r)
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		back, err := DecodeLicense(out)
		if err != nil || !reflect.DeepEqual(back, r) {
			t.Fatalf("round trip: %#v, %v; want %#v", back, err, r)
		}
	})
}

// FuzzDecodeV1 feeds raw query strings through ParseQuery to DecodeV1 and
// DecodeLegacyLicense.
func FuzzDecodeV1(f *testing.F) {
	for _, s := range []string{
		"activity=newInstance&businessId=61e834ba&customerId=68cbc86a&orderId=CS1906666666ABCDE&testFlag=1&timeStamp=20170725025113409&authToken=YOo1GGluq53mv2z%2Bk%2Ft3Yl5tM9eC1I3RubYPTVvxtmk%3D",
		"activity=newInstance&saasExtendParams=W3sibmFtZSI6ImEiLCJ2YWx1ZSI6ImIifV0%3D",
		"activity=refreshInstance&expireTime=20180725000000&instanceId=i&orderId=o&timeStamp=20170725025113409&authToken=a",
		"activity=instanceStatus&instanceStatus=FREEZE&instanceId=i",
		"activity=queryInstance&instanceId=a%2Cb",
		"activity=upgrade", "activity=expireInstance", "activity=releaseInstance",
		"activity=getLicense&businessId=b1&customerId=c1&orderId=o1&productId=p1&timeStamp=20240101120000000",
		"activity=refreshLicense", "activity=expireLicense", "activity=releaseLicense", "", "%zz",
		"activity=newInstance&orderId=a&orderId=b", "activity=newInstance&orderId=%00&customerName=%ff",
		"activity=newInstance&saasExtendParams=W3sibmFtZSI6ImEiLCJuYW1lIjoiYiJ9XQ%3D%3D",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := ParseQuery(raw)
		if err != nil {
			if q != nil || ResultCodeFor(err) != CodeInvalidParam {
				t.Fatalf("ParseQuery(%q) = %v, %v", raw, q, err)
			}
			return
		}
		r, err := DecodeV1(q)
		checkDecodeErr(t, r == nil, err)
		if err == nil {
			checkStrings(t, r)
			checkValidateErr(t, r.Validate())
			if r.Activity() != q.Get("activity") {
				t.Fatalf("Activity %q for query activity %q", r.Activity(), q.Get("activity"))
			}
			if r.IsTest() != (strings.TrimSpace(q.Get("testFlag")) == "1") {
				t.Fatalf("IsTest mismatch")
			}
		}
		l, err := DecodeLegacyLicense(q)
		checkDecodeErr(t, l == nil, err)
		if err == nil {
			checkStrings(t, l)
			checkValidateErr(t, l.Validate())
		}
	})
}

// FuzzParseQuery checks that ParseQuery accepts only unambiguous, valid
// text, agrees with url.ParseQuery on what it accepts, and refuses with
// short errors that map to 000002.
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{
		"signature=11C4&timestamp=1680508066618&nonce=n", "signature=a&signature=b", "a=%zz", "%zz", "a=%ff",
		"a=%00", "a;b", "a=1&&b", "x=%E4%B8%AD+y", "=", "&", "a=1=2",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := ParseQuery(raw)
		if err != nil {
			if q != nil || ResultCodeFor(err) != CodeInvalidParam || utf8.RuneCountInString(err.Error()) > 255 {
				t.Fatalf("ParseQuery(%q) = %v, %v", raw, q, err)
			}
			return
		}
		std, err := url.ParseQuery(raw)
		if err != nil || !reflect.DeepEqual(q, std) {
			t.Fatalf("ParseQuery(%q) = %v; url.ParseQuery %v, %v", raw, q, std, err)
		}
		for name, vals := range q {
			if len(vals) != 1 {
				t.Fatalf("%q given %d times accepted", name, len(vals))
			}
		}
		checkStrings(t, q)
	})
}

var kitOps = []string{KitTenantSync, KitApplicationSync, KitAuthSync, KitSingleOrgSync, KitAllOrgSync, "unknown"}

// FuzzDecodeKit checks DecodeKit's error contract and a Marshal round trip.
func FuzzDecodeKit(f *testing.F) {
	seeds := []struct {
		op   byte
		body string
	}{
		{0, `{"instanceId":"huaiweitest123456","orderId":"CS1906666666ABCDE","tenantId":"68cbc86…","tenantCode":"huawei","name":"huaiweitest","domainName":"https://example.tenantaccount.com","flag":1,"testFlag":0,"timeStamp":"20220413093539534"}`},
		{0, `{"instanceId":"inst-001","tenantId":"t1","flag":"1","testFlag":"1"}`},
		{1, `{"tenantId":"t","appId":"a","clientId":"c","clientSecret":"s","flag":1,"testFlag":0,"timeStamp":"20220413093539534"}`},
		{2, `{"instanceId":"i","tenantId":"t","appId":"a","userList":"[{\"userName\":\"z\",\"name\":\"Z\",\"orgCode\":\"1\",\"role\":\"admin\",\"enable\":\"true\",\"extension\":{\"employeeType\":\"1\"}}]","currentSyncTime":"x","flag":1,"testFlag":0,"timeStamp":"20220413093539534"}`},
		{2, `{"userList":[{"userName":"u","enable":true,"employeeType":2,"extension":{"workPlace":"w"}}],"flag":3}`},
		{3, `{"instanceId":"i","tenantId":"t","orgCode":"1","orgName":"R&D","parentCode":"","flag":1,"testFlag":0,"timeStamp":"20220413093539534"}`},
		{4, `{"instanceId":"i","tenantId":"t","orgInfoList":[{"orgCode":"1","orgName":"HQ"}],"testFlag":0,"timeStamp":"20220413093539534"}`},
		{4, `{"orgInfo":"[{\"orgCode\":\"1\",\"name\":\"HQ\"}]","orgInfoList":"","flag":"2"}`},
		{5, `{}`},
		{0, `{"tenantId":"t1","tenantId":"t2","flag":1,"testFlag":0}`},
		{0, `{"tenantId":true,"name":"\u0000","domainName":"\udfff","flag":1,"testFlag":0}`},
		{2, `{"userList":"[{\"userName\":\"a\",\"USERNAME\":\"b\",\"name\":\"\\u0000\"}]","flag":1,"testFlag":0}`},
		{4, `{"orgInfoList":[{"orgCode":"1","orgName":true}],"testFlag":0}`},
	}
	for _, s := range seeds {
		f.Add(s.op, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, op byte, body []byte) {
		name := kitOps[int(op)%len(kitOps)]
		r, err := DecodeKit(name, body)
		checkDecodeErr(t, r == nil, err)
		if err != nil {
			return
		}
		if r.Operation() != name {
			t.Fatalf("Operation %q for %q", r.Operation(), name)
		}
		checkStrictBody(t, body)
		checkStrings(t, r)
		checkValidateErr(t, r.Validate())
		out, err := Marshal(r)
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		back, err := DecodeKit(name, out)
		if err != nil || !reflect.DeepEqual(back, r) {
			t.Fatalf("round trip %s: %#v, %v; want %#v", out, back, err, r)
		}
	})
}

// FuzzQueryOrderResponse checks lenient decoding of Open API replies and a
// Marshal round trip of the Query Order reply.
func FuzzQueryOrderResponse(f *testing.F) {
	f.Add([]byte(queryOrderMock))
	f.Add([]byte(`{"resultCode":"CBC.0000","orderInfo":{"orderLine":[{"productInfo":{"linearValue":"7"},"extendParams":{"a":1}}],"extendParams":"[]"}}`))
	f.Add([]byte(`{"error_code":"APIGW.0301","error_msg":"x"}`))
	f.Add([]byte(`{"error_code":"92020000","data":{"license_code_info":"{\"status\":\"ALIVE\",\"amount\":2}"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := DecodeQueryOrderResponse(body)
		if err != nil {
			if ResultCodeFor(err) != CodeInvalidParam {
				t.Fatalf("error %v maps to %s", err, ResultCodeFor(err))
			}
		} else {
			_ = r.Success()
			out, err := Marshal(r)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			// Empty lists are omitted, so compare encodings, not values.
			back, err := DecodeQueryOrderResponse(out)
			if err != nil {
				t.Fatalf("decode %s: %v", out, err)
			}
			if again, _ := Marshal(back); !bytes.Equal(again, out) {
				t.Fatalf("round trip\n got %s\nwant %s", again, out)
			}
		}
		var act LicenseActivateResponse
		if json.Unmarshal(body, &act) == nil && act.Data != nil {
			if info, err := act.Data.Info(); err == nil && info != (LicenseCodeInfo{}) && strings.TrimSpace(string(act.Data.LicenseCodeInfo)) == "" {
				t.Fatalf("info %#v from empty license_code_info", info)
			}
		}
		var res UsagePushResponse
		if json.Unmarshal(body, &res) == nil {
			if _, err := json.Marshal(res); err != nil {
				t.Fatalf("Marshal OpenAPIResult: %v", err)
			}
		}
		var lq LicenseQueryResponse
		_ = json.Unmarshal(body, &lq)
	})
}

// FuzzMarshalEscapes checks that Marshal output is pure ASCII, has no
// trailing newline, and decodes back to the input string.
func FuzzMarshalEscapes(f *testing.F) {
	for _, s := range []string{"中文", "😀", "a<b>&c", "\u2028", "", "\x7f", "\"\\\n\t"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return
		}
		for _, v := range []any{s, map[string]string{s: s}, AppInfo{FrontEndURL: s, Memo: s}} {
			out, err := Marshal(v)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			for _, c := range out {
				if c >= utf8.RuneSelf {
					t.Fatalf("non-ASCII byte in %q", out)
				}
			}
			if bytes.HasSuffix(out, []byte("\n")) || !json.Valid(out) {
				t.Fatalf("bad output %q", out)
			}
			back := reflect.New(reflect.TypeOf(v))
			if err := json.Unmarshal(out, back.Interface()); err != nil {
				t.Fatalf("decode %q: %v", out, err)
			}
			if !reflect.DeepEqual(back.Elem().Interface(), v) {
				t.Fatalf("round trip %q → %q", v, back.Elem().Interface())
			}
		}
	})
}

// FuzzParseExpireTime checks that an accepted expireTime is 14 or 17
// digits and formats back to itself.
func FuzzParseExpireTime(f *testing.F) {
	for _, s := range []string{"20221124023618256", "20221124023618", "20241301000000", "2024022923595", "", "00000000000000"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tm, err := ParseExpireTime(s)
		if err != nil {
			if !tm.IsZero() {
				t.Fatalf("error with non-zero time %v", tm)
			}
			return
		}
		var back string
		switch len(s) {
		case 14:
			back = FormatTime14(tm)
		case 17:
			back = FormatTime17(tm)
		default:
			t.Fatalf("accepted %d characters: %q", len(s), s)
		}
		if back != s {
			t.Fatalf("ParseExpireTime(%q) formats back as %q", s, back)
		}
		if !allDigits(s) || tm.Location().String() != "UTC" {
			t.Fatalf("accepted %q as %v", s, tm)
		}
	})
}
