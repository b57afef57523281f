package protocol

import (
	"encoding/base64"
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// refusal is a body a decoder must refuse with exactly msg.
type refusal struct {
	name string
	body string
	msg  string
}

// runRefusals checks that decode refuses every body with the expected
// message, as a *FieldError or *DecodeError that maps to 000002 and fits
// in resultMsg.
func runRefusals(t *testing.T, decode func([]byte) (any, error), cases []refusal) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := decode([]byte(tc.body))
			if err == nil {
				t.Fatalf("accepted: %#v", r)
			}
			if r != nil {
				t.Fatalf("error %v with a result %#v", err, r)
			}
			if got := err.Error(); got != tc.msg {
				t.Fatalf("error\n got %s\nwant %s", got, tc.msg)
			}
			var fe *FieldError
			var de *DecodeError
			if !errors.As(err, &fe) && !errors.As(err, &de) {
				t.Fatalf("error %T, want *FieldError or *DecodeError", err)
			}
			if ResultCodeFor(err) != CodeInvalidParam {
				t.Fatalf("ResultCodeFor = %s, want 000002", ResultCodeFor(err))
			}
			if resp := ErrorResponse(err); resp.ResultMsg != tc.msg {
				t.Fatalf("resultMsg %q", resp.ResultMsg)
			}
		})
	}
}

func decodeV2Any(b []byte) (any, error)      { r, err := DecodeV2(b); return r, err }
func decodeLicenseAny(b []byte) (any, error) { r, err := DecodeLicense(b); return r, err }
func decodeKitAny(op string) func([]byte) (any, error) {
	return func(b []byte) (any, error) { r, err := DecodeKit(op, b); return r, err }
}

func TestDecodeV2Refusals(t *testing.T) {
	runRefusals(t, decodeV2Any, []refusal{
		// Duplicated keys, at any depth.
		{"duplicate activity", `{"activity":"queryInstance","activity":"newInstance","instanceId":"i"}`,
			"invalid parameter activity: duplicate key"},
		{"duplicate orderId", `{"activity":"newInstance","businessId":"b","orderId":"o1","orderLineId":"l","orderId":"o2"}`,
			"invalid parameter orderId: duplicate key"},
		{"duplicate apart from case", `{"activity":"newInstance","businessId":"b","orderId":"o1","OrderId":"o2","orderLineId":"l"}`,
			"invalid parameter OrderId: duplicate key (the same as orderId apart from letter case)"},
		{"duplicate through an escape", `{"activity":"newInstance","businessId":"b","orderId":"o1","order\u0049d":"o2","orderLineId":"l"}`,
			"invalid parameter orderId: duplicate key"},
		{"duplicate with the same value", `{"activity":"newInstance","businessId":"b","orderId":"o","orderId":"o","orderLineId":"l"}`,
			"invalid parameter orderId: duplicate key"},
		{"duplicate in productInfo", `{"activity":"changeInstanceCheck","instanceId":"i","productInfo":{"productId":"p","productId":"q"}}`,
			"invalid parameter productInfo.productId: duplicate key"},
		{"duplicate in productInfo array", `{"activity":"changeInstanceCheck","instanceId":"i","productInfo":[{"skuCode":"s"},{"skuCode":"s","skuCode":"t"}]}`,
			"invalid parameter productInfo[1].skuCode: duplicate key"},
		{"duplicate in productInfo JSON text", `{"activity":"changeInstanceCheck","instanceId":"i","productInfo":"{\"skuCode\":\"s\",\"skuCode\":\"t\"}"}`,
			"invalid parameter productInfo.skuCode: duplicate key"},
		{"duplicate in an unknown field", `{"activity":"newInstance","businessId":"b","orderId":"o","orderLineId":"l","x":[{"a":1,"a":2}]}`,
			"invalid parameter x[0].a: duplicate key"},
		{"duplicate orderNotify orderLineId", `{"activity":"orderNotify","orderId":"o","orderLineId":"l1","orderLineId":"l2","testFlag":"0"}`,
			"invalid parameter orderLineId: duplicate key"},
		{"duplicate getLicenseAsync eventId", `{"activity":"getLicenseAsync","instanceId":"i","effectiveTime":"2023-10-27 10:30:15 z","eventId":"e1","eventId":"e2"}`,
			"invalid parameter eventId: duplicate key"},

		// Booleans, objects and arrays where the spec prints String.
		{"boolean orderId", `{"activity":"newInstance","businessId":"b","orderId":true,"orderLineId":"l"}`,
			"invalid parameter orderId: must be a string, not a boolean"},
		{"boolean orderLineId", `{"activity":"newInstance","businessId":"b","orderId":"o","orderLineId":false}`,
			"invalid parameter orderLineId: must be a string, not a boolean"},
		{"boolean businessId", `{"activity":"newInstance","businessId":true,"orderId":"o","orderLineId":"l"}`,
			"invalid parameter businessId: must be a string, not a boolean"},
		{"boolean testFlag", `{"activity":"newInstance","businessId":"b","orderId":"o","orderLineId":"l","testFlag":true}`,
			"invalid parameter testFlag: must be a string, not a boolean"},
		{"boolean activity", `{"activity":true}`,
			"invalid parameter activity: must be a string, not a boolean"},
		{"object orderId", `{"activity":"newInstance","businessId":"b","orderId":{"a":1},"orderLineId":"l"}`,
			"invalid parameter orderId: must be a string, not an object"},
		{"array orderLineId", `{"activity":"newInstance","businessId":"b","orderId":"o","orderLineId":["l"]}`,
			"invalid parameter orderLineId: must be a string, not an array"},
		{"boolean orderNotify orderId", `{"activity":"orderNotify","orderId":true,"orderLineId":"l","testFlag":"0"}`,
			"invalid parameter orderId: must be a string, not a boolean"},
		{"boolean getLicenseAsync eventId", `{"activity":"getLicenseAsync","instanceId":"i","effectiveTime":"2023-10-27 10:30:15 z","eventId":false}`,
			"invalid parameter eventId: must be a string, not a boolean"},
		{"boolean productInfo.productId", `{"activity":"changeInstanceCheck","instanceId":"i","productInfo":{"productId":true}}`,
			"invalid parameter productInfo.productId: must be a string, not a boolean"},
		{"boolean linearValue", `{"activity":"changeInstanceCheck","instanceId":"i","productInfo":{"linearValue":true}}`,
			"invalid parameter productInfo.linearValue: must be a number, not a boolean"},
		{"number productInfo", `{"activity":"changeInstanceCheck","instanceId":"i","productInfo":5}`,
			"invalid parameter productInfo: must be an object or an array, not a number"},
		{"productInfo text of a string", `{"activity":"changeInstanceCheck","instanceId":"i","productInfo":"\"x\""}`,
			"invalid parameter productInfo: must be JSON text of an object or an array, not a string"},
		{"productInfo text not JSON", `{"activity":"changeInstanceCheck","instanceId":"i","productInfo":"{oops"}`,
			"invalid parameter productInfo: not valid JSON text (expected a string key at byte 1)"},

		// Invalid UTF-8 and escapes that do not decode to UTF-8.
		{"invalid UTF-8 in orderId", "{\"activity\":\"newInstance\",\"businessId\":\"b\",\"orderId\":\"o\xff1\",\"orderLineId\":\"l\"}",
			"invalid parameter orderId: not valid UTF-8"},
		{"UTF-8 encoded surrogate", "{\"activity\":\"newInstance\",\"businessId\":\"b\",\"orderId\":\"o\xed\xa0\x80\",\"orderLineId\":\"l\"}",
			"invalid parameter orderId: not valid UTF-8"},
		{"overlong UTF-8", "{\"activity\":\"newInstance\",\"businessId\":\"b\",\"orderId\":\"\xc0\xaf\",\"orderLineId\":\"l\"}",
			"invalid parameter orderId: not valid UTF-8"},
		{"truncated UTF-8", "{\"activity\":\"newInstance\",\"businessId\":\"\xe4\xb8\",\"orderId\":\"o\",\"orderLineId\":\"l\"}",
			"invalid parameter businessId: not valid UTF-8"},
		{"invalid UTF-8 in a key", "{\"activity\":\"newInstance\",\"\xff\":\"x\"}",
			"protocol: decode v2 body: an object key is not valid UTF-8"},
		{"invalid UTF-8 in an unknown field", "{\"activity\":\"newInstance\",\"x\":{\"y\":\"\xfe\"}}",
			"invalid parameter x.y: not valid UTF-8"},
		{"invalid UTF-8 outside strings", "{\"activity\":\"newInstance\"\xff}",
			"protocol: decode v2 body: invalid JSON at byte 25: expected ',' or '}' after an object member"},
		{"lone high surrogate", `{"activity":"newInstance","businessId":"b","orderId":"o\ud800","orderLineId":"l"}`,
			`invalid parameter orderId: contains a lone surrogate escape (\ud800)`},
		{"lone low surrogate", `{"activity":"newInstance","businessId":"b","orderId":"\uDC00o","orderLineId":"l"}`,
			`invalid parameter orderId: contains a lone surrogate escape (\uDC00)`},
		{"high surrogate before a non-surrogate", `{"activity":"newInstance","businessId":"b","orderId":"\ud800\u0041","orderLineId":"l"}`,
			`invalid parameter orderId: contains a lone surrogate escape (\ud800)`},
		{"two high surrogates", `{"activity":"newInstance","businessId":"b","orderId":"\ud800\ud800","orderLineId":"l"}`,
			`invalid parameter orderId: contains a lone surrogate escape (\ud800)`},
		{"lone surrogate in a key", `{"activity":"newInstance","\ud800":1}`,
			`protocol: decode v2 body: an object key contains a lone surrogate escape (\ud800)`},
		{"lone surrogate in orderNotify", `{"activity":"orderNotify","orderId":"\udfff","orderLineId":"l","testFlag":"1"}`,
			`invalid parameter orderId: contains a lone surrogate escape (\udfff)`},

		// NUL anywhere.
		{"NUL in orderId", `{"activity":"newInstance","businessId":"b","orderId":"o\u00001","orderLineId":"l"}`,
			`invalid parameter orderId: contains a NUL character (\u0000)`},
		{"NUL in a key", `{"activity":"newInstance","a\u0000":"x"}`,
			`protocol: decode v2 body: an object key contains a NUL character (\u0000)`},
		{"NUL in a nested key", `{"activity":"newInstance","x":{"\u0000":1}}`,
			`invalid parameter x: an object key contains a NUL character (\u0000)`},
		{"NUL in an unknown array", `{"activity":"newInstance","x":["a","\u0000"]}`,
			`invalid parameter x[1]: contains a NUL character (\u0000)`},
		{"NUL in productInfo JSON text", `{"activity":"changeInstanceCheck","instanceId":"i","productInfo":"{\"productId\":\"p\\u0000\"}"}`,
			`invalid parameter productInfo.productId: contains a NUL character (\u0000)`},
		{"raw NUL byte", "{\"activity\":\"newInstance\",\"orderId\":\"o\x00\"}",
			"protocol: decode v2 body: invalid JSON at byte 38: control character in string"},

		// Malformed JSON keeps its *DecodeError.
		{"empty", ``, "protocol: decode v2 body: invalid JSON at byte 0: empty body"},
		{"truncated", `{"activity":`, "protocol: decode v2 body: invalid JSON at byte 12: unexpected end of input"},
		{"trailing data", `{"activity":"newInstance"} x`, "protocol: decode v2 body: invalid JSON at byte 27: unexpected data after the value"},
		{"not an object", `[1]`, "protocol: decode v2 body: not a JSON object"},
	})
}

func TestDecodeLicenseRefusals(t *testing.T) {
	runRefusals(t, decodeLicenseAny, []refusal{
		{"duplicate license", `{"activity":"releaseLicenseCode","license":"PL1","license":"PL2"}`,
			"invalid parameter license: duplicate key"},
		{"duplicate activity", `{"activity":"releaseLicenseCode","activity":"updateLicenseCodeStatus","license":"PL1","status":"FREEZE"}`,
			"invalid parameter activity: duplicate key"},
		{"duplicate apart from case", `{"activity":"releaseLicenseCode","license":"PL1","LICENSE":"PL2"}`,
			"invalid parameter LICENSE: duplicate key (the same as license apart from letter case)"},
		{"boolean license", `{"activity":"releaseLicenseCode","license":true}`,
			"invalid parameter license: must be a string, not a boolean"},
		{"boolean orderId", `{"activity":"refreshLicenseCode","expireTime":"20230523201932","license":"L","orderId":false,"orderLineId":"l","scene":"RENEWAL"}`,
			"invalid parameter orderId: must be a string, not a boolean"},
		{"array status", `{"activity":"updateLicenseCodeStatus","license":"L","status":["FREEZE"]}`,
			"invalid parameter status: must be a string, not an array"},
		{"invalid UTF-8", "{\"activity\":\"releaseLicenseCode\",\"license\":\"PL\xc3\"}",
			"invalid parameter license: not valid UTF-8"},
		{"lone surrogate", `{"activity":"releaseLicenseCode","license":"PL\ud834"}`,
			`invalid parameter license: contains a lone surrogate escape (\ud834)`},
		{"NUL", `{"activity":"releaseLicenseCode","license":"PL\u00001"}`,
			`invalid parameter license: contains a NUL character (\u0000)`},
		{"duplicate nested", `{"activity":"releaseLicenseCode","license":"L","x":{"k":{"z":1,"z":2}}}`,
			"invalid parameter x.k.z: duplicate key"},
	})
}

const kitTS = `"testFlag":0,"timeStamp":"20220413093539534"`

func TestDecodeKitRefusals(t *testing.T) {
	runRefusals(t, decodeKitAny(KitTenantSync), []refusal{
		{"duplicate tenantId", `{"tenantId":"t1","tenantCode":"c","tenantId":"t2","flag":1,` + kitTS + `}`,
			"invalid parameter tenantId: duplicate key"},
		{"duplicate testFlag", `{"tenantId":"t","flag":1,"testFlag":0,"testFlag":1}`,
			"invalid parameter testFlag: duplicate key"},
		{"duplicate apart from case", `{"tenantId":"t","TenantId":"u","flag":1,` + kitTS + `}`,
			"invalid parameter TenantId: duplicate key (the same as tenantId apart from letter case)"},
		{"boolean tenantId", `{"tenantId":true,"flag":1,` + kitTS + `}`,
			"invalid parameter tenantId: must be a string, not a boolean"},
		{"object name", `{"tenantId":"t","name":{"zh":"x"},"flag":1,` + kitTS + `}`,
			"invalid parameter name: must be a string, not an object"},
		{"boolean flag", `{"tenantId":"t","flag":true,` + kitTS + `}`,
			`invalid parameter flag: not an integer: "true"`},
		{"invalid UTF-8 name", "{\"tenantId\":\"t\",\"name\":\"\xff\xfe\",\"flag\":1}",
			"invalid parameter name: not valid UTF-8"},
		{"lone surrogate domainName", `{"tenantId":"t","domainName":"https://\udbff.example","flag":1}`,
			`invalid parameter domainName: contains a lone surrogate escape (\udbff)`},
		{"NUL tenantCode", `{"tenantId":"t","tenantCode":"\u0000","flag":1}`,
			`invalid parameter tenantCode: contains a NUL character (\u0000)`},
	})
	runRefusals(t, decodeKitAny(KitApplicationSync), []refusal{
		{"duplicate clientSecret", `{"tenantId":"t","appId":"a","clientId":"c","clientSecret":"s1","clientSecret":"s2","flag":1,` + kitTS + `}`,
			"invalid parameter clientSecret: duplicate key"},
		{"boolean clientId", `{"tenantId":"t","appId":"a","clientId":false,"flag":1,` + kitTS + `}`,
			"invalid parameter clientId: must be a string, not a boolean"},
	})
	runRefusals(t, decodeKitAny(KitAuthSync), []refusal{
		{"duplicate in a user", `{"instanceId":"i","userList":[{"userName":"a","userName":"b"}],"flag":1,` + kitTS + `}`,
			"invalid parameter userList[0].userName: duplicate key"},
		{"duplicate in a user of JSON text", `{"instanceId":"i","userList":"[{\"userName\":\"a\"},{\"role\":\"user\",\"role\":\"admin\"}]","flag":1,` + kitTS + `}`,
			"invalid parameter userList[1].role: duplicate key"},
		{"duplicate in extension", `{"userList":[{"userName":"a","extension":{"workPlace":"x","workplace":"y"}}]}`,
			"invalid parameter userList[0].extension.workplace: duplicate key (the same as workPlace apart from letter case)"},
		{"boolean role", `{"userList":[{"userName":"a","role":"user"},{"userName":"b","role":true}]}`,
			"invalid parameter userList[1].role: must be a string, not a boolean"},
		{"object orgCode", `{"userList":[{"orgCode":{"a":1}}]}`,
			"invalid parameter userList[0].orgCode: must be a string, not an object"},
		{"extension as a string", `{"userList":[{"extension":"{}"}]}`,
			"invalid parameter userList[0].extension: must be an object, not a string"},
		{"user not an object", `{"userList":["u"]}`,
			"invalid parameter userList[0]: must be an object, not a string"},
		{"userList a number", `{"userList":5}`,
			"invalid parameter userList: must be an array, not a number"},
		{"userList text of an object", `{"userList":"{\"userName\":\"a\"}"}`,
			"invalid parameter userList: must be JSON text of an array, not an object"},
		{"userList text not JSON", `{"userList":"not json"}`,
			"invalid parameter userList: not valid JSON text (invalid literal at byte 0)"},
		{"NUL in a user of JSON text", `{"userList":"[{\"name\":\"a\\u0000\"}]"}`,
			`invalid parameter userList[0].name: contains a NUL character (\u0000)`},
		{"lone surrogate in a user", `{"userList":[{"name":"\ud800"}]}`,
			`invalid parameter userList[0].name: contains a lone surrogate escape (\ud800)`},
		{"invalid UTF-8 in a user", "{\"userList\":[{\"mobile\":\"\x80\"}]}",
			"invalid parameter userList[0].mobile: not valid UTF-8"},
		{"enable not a boolean", `{"userList":[{"enable":"maybe"}]}`,
			`invalid parameter userList: decode userList: decode kit user: not a boolean: "maybe"`},
	})
	runRefusals(t, decodeKitAny(KitSingleOrgSync), []refusal{
		{"duplicate orgCode", `{"orgCode":"1","orgName":"a","orgCode":"2"}`, "invalid parameter orgCode: duplicate key"},
		{"boolean parentCode", `{"orgCode":"1","parentCode":true}`, "invalid parameter parentCode: must be a string, not a boolean"},
	})
	runRefusals(t, decodeKitAny(KitAllOrgSync), []refusal{
		{"duplicate in an org", `{"orgInfoList":[{"orgCode":"1","orgCode":"2"}]}`,
			"invalid parameter orgInfoList[0].orgCode: duplicate key"},
		{"duplicate orgInfoList", `{"orgInfoList":[],"orgInfoList":[{"orgCode":"1"}]}`,
			"invalid parameter orgInfoList: duplicate key"},
		{"duplicate in orgInfo text", `{"orgInfo":"[{\"orgCode\":\"1\",\"name\":\"a\",\"name\":\"b\"}]"}`,
			"invalid parameter orgInfo[0].name: duplicate key"},
		{"array orgName", `{"orgInfoList":[{"orgCode":"1","orgName":["HQ"]}]}`,
			"invalid parameter orgInfoList[0].orgName: must be a string, not an array"},
		{"orgInfoList an object", `{"orgInfoList":{"orgCode":"1"}}`,
			"invalid parameter orgInfoList: must be an array, not an object"},
		{"NUL in an org", `{"orgInfoList":[{"orgCode":"1\u0000"}]}`,
			`invalid parameter orgInfoList[0].orgCode: contains a NUL character (\u0000)`},
	})
}

// TestRefusalMessagesShort checks that a refusal quotes at most a short
// field name, never long untrusted input.
func TestRefusalMessagesShort(t *testing.T) {
	long := strings.Repeat("k", 1000)
	deep := strings.Repeat(`{"`+strings.Repeat("n", 40)+`":`, 20) + `"\u0000"` + strings.Repeat("}", 20)
	bodies := []string{
		`{"activity":"newInstance","` + long + `":1,"` + long + `":2}`,
		`{"activity":"newInstance","x":` + deep + `}`,
		`{"activity":"newInstance","x":"` + long + `\u0000"}`,
		`{"activity":"newInstance","` + strings.Repeat("中", 300) + `":true,"` + strings.Repeat("中", 300) + `":1}`,
		`{"activity":"` + long + `"}`,
		"{\"activity\":\"newInstance\",\"orderId\":\"" + long + "\xff\"}",
	}
	for i, body := range bodies {
		_, err := DecodeV2([]byte(body))
		if err == nil {
			t.Fatalf("body %d accepted", i)
		}
		msg := err.Error()
		if n := utf8.RuneCountInString(msg); n > 200 || !utf8.ValidString(msg) {
			t.Errorf("body %d: %d characters: %s", i, n, msg)
		}
	}
	_, err := DecodeV2([]byte(bodies[0]))
	if want := `invalid parameter "` + strings.Repeat("k", 32) + `"…: duplicate key`; err.Error() != want {
		t.Errorf("got %s\nwant %s", err, want)
	}
}

// TestDecodeAcceptedVariants checks the tolerant readings that stay.
func TestDecodeAcceptedVariants(t *testing.T) {
	v2 := []struct {
		name string
		body string
		want V2Request
	}{
		{"numbers for String fields, kept as their text",
			`{"activity":"newInstance","businessId":123,"orderId":1.5e3,"orderLineId":-7,"testFlag":1}`,
			NewInstanceRequest{ActivityName: "newInstance", BusinessID: "123", OrderID: "1.5e3", OrderLineID: "-7", TestFlag: "1"}},
		{"byte order mark",
			"\xef\xbb\xbf" + `{"activity":"orderNotify","orderId":"o","orderLineId":"l","testFlag":"0"}`,
			OrderNotifyRequest{ActivityName: "orderNotify", OrderID: "o", OrderLineID: "l", TestFlag: "0"}},
		{"escapes, surrogate pair, raw UTF-8",
			`{"activity":"newInstance","businessId":"a\/b\"\\\t","orderId":"\ud83d\ude00 \u4e2d","orderLineId":"中文 😀"}`,
			NewInstanceRequest{ActivityName: "newInstance", BusinessID: "a/b\"\\\t", OrderID: "😀 中", OrderLineID: "中文 😀"}},
		{"escaped key, case-variant key, null, unknown fields",
			`{"activity":"newInstance","order\u0049d":"o","OrderLineID":"l","businessId":null,"x":{"a":[1,{"a":null}],"b":true}}`,
			NewInstanceRequest{ActivityName: "newInstance", OrderID: "o", OrderLineID: "l"}},
		{"the same key in different objects",
			`{"activity":"changeInstanceCheck","instanceId":"i","productInfo":[{"productId":"p","skuCode":1},{"productId":"q"}]}`,
			ChangeInstanceCheckRequest{ActivityName: "changeInstanceCheck", InstanceID: "i", ProductInfo: &ProductInfo{ProductID: "p", SKUCode: "1"}}},
		{"whitespace everywhere",
			" \t\r\n{ \"activity\" : \"releaseInstance\" , \"instanceId\" : \"i\" } \n",
			ReleaseInstanceRequest{ActivityName: "releaseInstance", InstanceID: "i"}},
	}
	for _, tc := range v2 {
		t.Run("v2 "+tc.name, func(t *testing.T) {
			got, err := DecodeV2([]byte(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %#v\nwant %#v", got, tc.want)
			}
		})
	}

	lic, err := DecodeLicense([]byte("\xef\xbb\xbf" + `{"activity":"releaseLicenseCode","license":12345,"testFlag":1}`))
	if want := (ReleaseLicenseCodeRequest{ActivityName: "releaseLicenseCode", License: "12345", TestFlag: "1"}); err != nil || !reflect.DeepEqual(lic, want) {
		t.Errorf("license: %#v, %v", lic, err)
	}

	kit := []struct {
		name, op, body string
		want           KitRequest
	}{
		{"integers as strings, BOM", KitTenantSync,
			"\xef\xbb\xbf" + `{"tenantId":"t","tenantCode":7,"flag":"2","testFlag":"1","timeStamp":20220413093539534}`,
			TenantSyncRequest{TenantID: "t", TenantCode: "7", Flag: 2, TestFlag: 1, TimeStamp: "20220413093539534"}},
		{"user variants", KitAuthSync,
			`{"userList":[{"userName":1001,"orgCode":10000,"enable":"1","employeeType":"2","extension":{"employeeType":3,"entryDate":20200102}}],"flag":3,"testFlag":0}`,
			AuthSyncRequest{UserList: KitUserList{{UserName: "1001", OrgCode: "10000", Enable: boolp(true), EmployeeType: 2, EntryDate: "20200102"}},
				Flag: 3, TestFlag: 0}},
		{"blank userList text", KitAuthSync, `{"userList":"  ","flag":1,"testFlag":0}`,
			AuthSyncRequest{UserList: KitUserList{}, Flag: 1, TestFlag: 0}},
		{"null userList text", KitAuthSync, `{"userList":"null","flag":1,"testFlag":0}`,
			AuthSyncRequest{Flag: 1, TestFlag: 0}},
		{"orgInfo text with escapes", KitAllOrgSync, `{"orgInfo":"[{\"orgCode\":\"1\",\"name\":\"\\u4e2d\"}]","testFlag":0}`,
			AllOrgSyncRequest{OrgInfoList: KitOrgList{{OrgCode: "1", OrgName: "中"}}, Flag: KitUnset, TestFlag: 0}},
	}
	for _, tc := range kit {
		t.Run("kit "+tc.name, func(t *testing.T) {
			got, err := DecodeKit(tc.op, []byte(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %#v\nwant %#v", got, tc.want)
			}
		})
	}
}

// TestDuplicateKeysLargeObject covers objects past the linear comparison.
func TestDuplicateKeysLargeObject(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"activity":"releaseInstance","instanceId":"i"`)
	for i := range 40 {
		b.WriteString(`,"k` + itoa(i) + `":` + itoa(i))
	}
	ok := b.String() + `}`
	if _, err := DecodeV2([]byte(ok)); err != nil {
		t.Fatalf("40 distinct keys: %v", err)
	}
	for _, dup := range []string{`"k0"`, `"K39"`, `"instanceId"`, `"ACTIVITY"`} {
		_, err := DecodeV2([]byte(b.String() + `,` + dup + `:1}`))
		var fe *FieldError
		if !errors.As(err, &fe) || !strings.HasPrefix(fe.Problem, "duplicate key") {
			t.Errorf("duplicate %s: %v", dup, err)
		}
	}
}

func TestDecodeSaaSExtendParamsStrict(t *testing.T) {
	for _, tc := range []struct{ json, msg string }{
		{`[{"name":"a","name":"b","value":"v"}]`, "invalid parameter saasExtendParams[0].name: duplicate key"},
		{`[{"name":"a","value":"\u0000"}]`, `invalid parameter saasExtendParams[0].value: contains a NUL character (\u0000)`},
		{`[{"name":"a","value":"\ud800"}]`, `invalid parameter saasExtendParams[0].value: contains a lone surrogate escape (\ud800)`},
		{"[{\"name\":\"\xff\"}]", "invalid parameter saasExtendParams[0].name: not valid UTF-8"},
		{`[{"name":"a","value":{"x":1,"x":2}}]`, "invalid parameter saasExtendParams[0].value.x: duplicate key"},
	} {
		enc := base64.StdEncoding.EncodeToString([]byte(tc.json))
		if _, err := DecodeSaaSExtendParams(enc); err == nil || err.Error() != tc.msg {
			t.Errorf("DecodeSaaSExtendParams(%s) = %v, want %s", tc.json, err, tc.msg)
		}
		q := url.Values{"activity": {"newInstance"}, "saasExtendParams": {enc}}
		if _, err := DecodeV1(q); err == nil || err.Error() != tc.msg || ResultCodeFor(err) != CodeInvalidParam {
			t.Errorf("DecodeV1(%s) = %v, want %s", tc.json, err, tc.msg)
		}
	}
}

func TestParseQuery(t *testing.T) {
	ok := []struct {
		raw  string
		want url.Values
	}{
		{"signature=11C4CD62&timestamp=1680508066618&nonce=50D83FDE",
			url.Values{"signature": {"11C4CD62"}, "timestamp": {"1680508066618"}, "nonce": {"50D83FDE"}}},
		{"authToken=YOo1GGluq53mv2z%2Bk%2Ft3Yl5tM9eC1I3RubYPTVvxtmk%3D&name=%20a+b%20&empty=&bare&&x=%E4%B8%AD%F0%9F%98%80",
			url.Values{"authToken": {"YOo1GGluq53mv2z+k/t3Yl5tM9eC1I3RubYPTVvxtmk="}, "name": {" a b "}, "empty": {""},
				"bare": {""}, "x": {"中😀"}}},
		{"", url.Values{}},
		{"a=1=2", url.Values{"a": {"1=2"}}},
	}
	for _, tc := range ok {
		got, err := ParseQuery(tc.raw)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseQuery(%q) = %v, %v; want %v", tc.raw, got, err, tc.want)
		}
		if std, _ := url.ParseQuery(tc.raw); !reflect.DeepEqual(got, std) {
			t.Errorf("ParseQuery(%q) = %v, url.ParseQuery %v", tc.raw, got, std)
		}
	}
	bad := []struct{ raw, msg string }{
		{"signature=A&timestamp=1&nonce=n&signature=B", "invalid parameter signature: given 2 times in the query string"},
		{"timestamp=1&timestamp=1&timestamp=2", "invalid parameter timestamp: given 3 times in the query string"},
		{"nonce=&nonce=n", "invalid parameter nonce: given 2 times in the query string"},
		{"nonc%65=a&nonce=b", "invalid parameter nonce: given 2 times in the query string"},
		{"a=1&b=1&b=2&a=2", "invalid parameter b: given 2 times in the query string"},
		{"bare&bare", "invalid parameter bare: given 2 times in the query string"},
		{"=&=x", `invalid parameter "": given 2 times in the query string`},
		{"nonce=%zz", "invalid parameter nonce: malformed percent-escape"},
		{"nonce=abc%4", "invalid parameter nonce: malformed percent-escape"},
		{"%zz=1", "protocol: decode query string: malformed percent-escape in a parameter name"},
		{"orderId=%FF", "invalid parameter orderId: not valid UTF-8"},
		{"orderId=%ED%A0%80", "invalid parameter orderId: not valid UTF-8"},
		{"%C0%AF=1", "protocol: decode query string: a parameter name is not valid UTF-8"},
		{"orderId=o%001", "invalid parameter orderId: contains a NUL character"},
		{"a%00=1", "protocol: decode query string: a parameter name contains a NUL character"},
		{"a=1;b=2", "protocol: decode query string: ';' is not a separator (use '&')"},
		{strings.Repeat("p", 500) + "=1&" + strings.Repeat("p", 500) + "=2",
			`invalid parameter "` + strings.Repeat("p", 32) + `"…: given 2 times in the query string`},
	}
	for _, tc := range bad {
		q, err := ParseQuery(tc.raw)
		if err == nil || q != nil || err.Error() != tc.msg {
			t.Errorf("ParseQuery(%.40q) = %v, %v; want %s", tc.raw, q, err, tc.msg)
			continue
		}
		if ResultCodeFor(err) != CodeInvalidParam {
			t.Errorf("ParseQuery(%.40q): code %s", tc.raw, ResultCodeFor(err))
		}
		var fe *FieldError
		if errors.As(err, &fe) && !strings.HasPrefix(tc.raw, strings.Trim(fe.Field, `"…`)) && !strings.Contains(tc.raw, fe.Field+"=") &&
			!strings.Contains(tc.raw, fe.Field+"&") {
			t.Errorf("ParseQuery(%.40q): Field %q is not a parameter name", tc.raw, fe.Field)
		}
	}
}

func TestIsTestOrder(t *testing.T) {
	for _, tc := range []struct {
		test  bool
		order string
		want  bool
	}{
		{true, "CS2211181819B4LVS", true},
		{false, "CS2211181819B4LVS", false},
		{false, "MOCKPERIODYEARNEW", true},
		{false, "MOCKMONTYCHANGE", true},
		{true, "MOCKONDEMAND", true},
		{false, "mockperiodyearnew", false},
		{false, " MOCKONDEMAND", false},
		{false, "", false},
	} {
		if got := IsTestOrder(tc.test, tc.order); got != tc.want {
			t.Errorf("IsTestOrder(%v, %q) = %v", tc.test, tc.order, got)
		}
	}
}
