package testseller

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
)

// v1URL is the production URL with params, activity, a timeStamp of now
// (unless params has one) and the authToken made with key.
func v1URL(t *testing.T, base, key, activity string, params url.Values) string {
	t.Helper()
	q := url.Values{}
	for k, v := range params {
		q[k] = v
	}
	q.Set("activity", activity)
	if q.Get("timeStamp") == "" {
		q.Set("timeStamp", protocol.FormatTime17(time.Now()))
	}
	token, err := sign.AuthTokenQuery(key, q)
	if err != nil {
		t.Fatalf("authToken: %v", err)
	}
	q.Set("authToken", token)
	return base + "?" + q.Encode()
}

// v1 sends a V1 GET signed with the basic key; its answer must be
// Body-Signed with the basic key.
func (e env) v1(activity string, params url.Values) reply {
	e.t.Helper()
	return e.sendWith(http.MethodGet, v1URL(e.t, e.srv.URL+"/produce", testKey, activity, params), nil, nil, testKey)
}

// v1Order is a V1 newInstance's parameters for orderID, with mobilePhone
// and email encrypted with the basic key.
func v1Order(t *testing.T, orderID, chargingMode, productID string) url.Values {
	t.Helper()
	c, err := sign.NewCredentialCipher(testKey, sign.EncryptType("1"))
	if err != nil {
		t.Fatal(err)
	}
	mobile, err := c.Encrypt("13800000000")
	if err != nil {
		t.Fatal(err)
	}
	email, err := c.Encrypt("buyer@example.com")
	if err != nil {
		t.Fatal(err)
	}
	ext, err := protocol.EncodeSaaSExtendParams([]protocol.ExtendParam{{Name: "region", Value: "cn"}})
	if err != nil {
		t.Fatal(err)
	}
	return url.Values{
		"customerId": {"cust-1"}, "customerName": {"buyer"}, "businessId": {"biz-" + orderID},
		"orderId": {orderID}, "skuCode": {"SKU1"}, "productId": {productID}, "chargingMode": {chargingMode},
		"periodType": {"month"}, "periodNumber": {"1"}, "expireTime": {"20300101000000"},
		"mobilePhone": {mobile}, "email": {email}, "saasExtendParams": {ext}, "testFlag": {"0"},
	}
}

// v1NewReply decodes a V1 newInstance answer.
func v1NewReply(t *testing.T, r reply) protocol.V1NewInstanceResponse {
	t.Helper()
	var v protocol.V1NewInstanceResponse
	if err := json.Unmarshal(r.raw, &v); err != nil {
		t.Fatalf("newInstance answer %s: %v", r.raw, err)
	}
	return v
}

// TestV1Lifecycle: a V1 product from newInstance to release, every answer
// well formed and Body-Signed with the basic key, repeats idempotent.
func TestV1Lifecycle(t *testing.T) {
	e := start(t, Faults{})
	first := e.v1("newInstance", v1Order(t, "CSV1LIFE", "1", "P1"))
	checkWire(t, first)
	mustCode(t, first, protocol.CodeSuccess)
	created := v1NewReply(t, first)
	id := created.InstanceID
	if !strings.HasPrefix(id, "ts1-") || created.EncryptType != "1" || created.AppInfo == nil {
		t.Fatalf("newInstance answer %s: want instanceId, encryptType 1 and appInfo", first.raw)
	}
	c, err := sign.NewCredentialCipher(testKey, sign.EncryptType("1"))
	if err != nil {
		t.Fatal(err)
	}
	if user, err := c.Decrypt(created.AppInfo.UserName); err != nil || user != "admin" {
		t.Errorf("appInfo.userName decrypts to %q (%v), want admin", user, err)
	}
	if pass, err := c.Decrypt(created.AppInfo.Password); err != nil || pass != e.s.snapshot(t, id).password {
		t.Errorf("appInfo.password does not decrypt to the instance's password (%v)", err)
	}

	again := v1Order(t, "CSV1LIFE", "1", "P1")
	again.Set("businessId", "another-business-id")
	if r := e.v1("newInstance", again); string(r.raw) != string(first.raw) || e.s.Instances() != 1 {
		t.Errorf("repeated newInstance answered %s (%d instances), want the first answer %s", r.raw, e.s.Instances(), first.raw)
	}

	q := e.v1("queryInstance", url.Values{"instanceId": {id + ",never-issued"}})
	checkWire(t, q)
	mustCode(t, q, protocol.CodeSuccess)
	if len(q.info) != 1 || q.info[0].InstanceID != id || *q.info[0].AppInfo != *created.AppInfo || !strings.Contains(string(q.raw), `"encryptType":"1"`) {
		t.Errorf("queryInstance answered %s, want the instance with the app info of newInstance and encryptType 1", q.raw)
	}

	steps := []struct {
		activity string
		params   url.Values
		check    func(in instance) bool
	}{
		{"refreshInstance", url.Values{"instanceId": {id}, "orderId": {"CSRENEW"}, "expireTime": {"20310101000000"}},
			func(in instance) bool { return in.expiry.Equal(time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)) }},
		{"upgrade", url.Values{"instanceId": {id}, "orderId": {"CSUPG"}, "skuCode": {"SKU2"}, "productId": {"P1"}},
			func(in instance) bool { _, ok := in.upgrades[orderLine{orderID: "CSUPG"}]; return ok }},
		{"expireInstance", url.Values{"instanceId": {id}, "orderId": {"CSV1LIFE"}},
			func(in instance) bool { return in.frozen }},
		{"expireInstance", url.Values{"instanceId": {id}, "orderId": {"CSV1LIFE"}},
			func(in instance) bool { return in.frozen }},
		{"instanceStatus", url.Values{"instanceId": {id}, "instanceStatus": {"NORMAL"}},
			func(in instance) bool { return !in.frozen }},
		{"instanceStatus", url.Values{"instanceId": {id}, "instanceStatus": {"FREEZE"}},
			func(in instance) bool { return in.frozen }},
		{"releaseInstance", url.Values{"instanceId": {id}, "orderId": {"CSV1LIFE"}},
			func(in instance) bool { return in.released }},
		{"releaseInstance", url.Values{"instanceId": {id}, "orderId": {"CSV1LIFE"}},
			func(in instance) bool { return in.released }},
	}
	for i, st := range steps {
		r := e.v1(st.activity, st.params)
		checkWire(t, r)
		if r.code != protocol.CodeSuccess || !st.check(e.s.snapshot(t, id)) {
			t.Errorf("step %d %s: %s %q, or the state did not change", i+1, st.activity, r.code, r.msg)
		}
	}
	if r := e.v1("refreshInstance", url.Values{"instanceId": {id}, "orderId": {"CSRENEW2"}, "expireTime": {"20320101000000"}}); r.code != protocol.CodeInstanceNotFound {
		t.Errorf("refreshInstance of a released instance: %s, want 000003", r.code)
	}
}

// TestV1IdempotencyKey: newInstance is idempotent per orderId, and per
// orderId + productId for pay-per-use (§A.6).
func TestV1IdempotencyKey(t *testing.T) {
	tests := []struct {
		name          string
		chargingMode  string
		wantInstances int
	}{
		{"period: orderId", "1", 1},
		{"one-time: orderId", "3", 1},
		{"pay-per-use: orderId + productId", "0", 2},
		{"pay-per-use package: orderId + productId", "5", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := start(t, Faults{})
			for _, product := range []string{"P1", "P2", "P1"} {
				mustCode(t, e.v1("newInstance", v1Order(t, "CSKEY", tt.chargingMode, product)), protocol.CodeSuccess)
			}
			if got := e.s.Instances(); got != tt.wantInstances {
				t.Errorf("%d instances, want %d", got, tt.wantInstances)
			}
		})
	}
}

// TestV1Refusals: every malformed, unauthenticated or unknown V1 call
// gets its result code, a message naming the field, and a Body-Sign.
func TestV1Refusals(t *testing.T) {
	good := func(activity string, params url.Values) func(string) string {
		return func(base string) string { return v1URL(t, base, testKey, activity, params) }
	}
	order := v1Order(t, "CSREF", "1", "P1")
	without := func(q url.Values, name string) url.Values {
		c := url.Values{}
		for k, v := range q {
			c[k] = v
		}
		c.Del(name)
		return c
	}
	overlong := without(order, "")
	overlong.Set("orderId", strings.Repeat("9", 65))
	badMobile := without(order, "")
	badMobile.Set("mobilePhone", "AAAAAAAAAAAAAAAAnotbase64!!")
	unknown := url.Values{"instanceId": {"never-issued"}, "orderId": {"CSX"}}
	tests := []struct {
		name string
		url  func(base string) string
		code protocol.ResultCode
		msg  string
	}{
		{"no authToken", func(base string) string {
			return base + "?activity=queryInstance&instanceId=x&timeStamp=" + protocol.FormatTime17(time.Now())
		}, protocol.CodeAuthFailed, "authToken"},
		{"bad authToken", func(base string) string {
			return strings.Replace(v1URL(t, base, testKey, "queryInstance", url.Values{"instanceId": {"x"}}), "authToken=", "authToken=A", 1)
		}, protocol.CodeAuthFailed, "mismatch"},
		{"wrong key", func(base string) string {
			return v1URL(t, base, testKitKey, "queryInstance", url.Values{"instanceId": {"x"}})
		}, protocol.CodeAuthFailed, "mismatch"},
		{"parameter changed after signing", func(base string) string {
			return strings.Replace(v1URL(t, base, testKey, "queryInstance", url.Values{"instanceId": {"abc"}}), "instanceId=abc", "instanceId=abd", 1)
		}, protocol.CodeAuthFailed, "mismatch"},
		{"no timeStamp", func(base string) string {
			return base + "?activity=queryInstance&instanceId=x&authToken=AAAA"
		}, protocol.CodeAuthFailed, "timeStamp"},
		{"parameter twice", func(base string) string {
			return v1URL(t, base, testKey, "queryInstance", url.Values{"instanceId": {"x"}}) + "&instanceId=y"
		}, protocol.CodeInvalidParam, "instanceId"},
		{"unknown activity", good("noSuchActivity", url.Values{"instanceId": {"x"}}), protocol.CodeInvalidParam, "activity"},
		{"missing orderId", good("newInstance", without(order, "orderId")), protocol.CodeInvalidParam, "orderId"},
		{"overlong orderId", good("newInstance", overlong), protocol.CodeInvalidParam, "orderId"},
		{"undecryptable mobilePhone", good("newInstance", badMobile), protocol.CodeInvalidParam, "mobilePhone"},
		{"bad instanceStatus", good("instanceStatus", url.Values{"instanceId": {"x"}, "instanceStatus": {"PAUSED"}}), protocol.CodeInvalidParam, "instanceStatus"},
		{"unknown instance: refreshInstance", good("refreshInstance", url.Values{"instanceId": {"never-issued"}, "orderId": {"CSX"}, "expireTime": {"20310101000000"}}), protocol.CodeInstanceNotFound, ""},
		{"unknown instance: expireInstance", good("expireInstance", unknown), protocol.CodeInstanceNotFound, ""},
		{"unknown instance: releaseInstance", good("releaseInstance", unknown), protocol.CodeInstanceNotFound, ""},
		{"unknown instance: upgrade", good("upgrade", url.Values{"instanceId": {"never-issued"}, "orderId": {"CSX"}, "skuCode": {"S"}, "productId": {"P"}}), protocol.CodeInstanceNotFound, ""},
		{"unknown instance: instanceStatus", good("instanceStatus", url.Values{"instanceId": {"never-issued"}, "instanceStatus": {"FREEZE"}}), protocol.CodeInstanceNotFound, ""},
		{"unknown instance: queryInstance", good("queryInstance", url.Values{"instanceId": {"never-issued"}}), protocol.CodeInstanceNotFound, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := start(t, Faults{})
			r := e.sendWith(http.MethodGet, tt.url(e.srv.URL+"/produce"), nil, nil, testKey)
			checkWire(t, r)
			if r.code != tt.code || !strings.Contains(r.msg, tt.msg) {
				t.Errorf("answered %s %q, want %s naming %q", r.code, r.msg, tt.code, tt.msg)
			}
			if e.s.Instances() != 0 {
				t.Errorf("%d instances created", e.s.Instances())
			}
		})
	}
}

// TestV1SpecVector: the request of saas-v1-joint-login.md §A.2's vector,
// with the spec's authToken, is authenticated by a seller with the
// spec's key (it then fails validation: the vector has no skuCode).
func TestV1SpecVector(t *testing.T) {
	s := New("9fa6c870-8bb0-4e9b-b71e-4c223300156f", Faults{})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	e := env{t: t, s: s, srv: srv}
	q := url.Values{"activity": {"newInstance"}, "businessId": {"61e834ba"}, "customerId": {"68cbc86a"},
		"orderId": {"CS1906666666ABCDE"}, "testFlag": {"1"}, "timeStamp": {"20170725025113409"},
		"authToken": {"YOo1GGluq53mv2z+k/t3Yl5tM9eC1I3RubYPTVvxtmk="}}
	r := e.sendWith(http.MethodGet, srv.URL+"/produce?"+q.Encode(), nil, nil, "9fa6c870-8bb0-4e9b-b71e-4c223300156f")
	checkWire(t, r)
	if r.code != protocol.CodeInvalidParam || !strings.Contains(r.msg, "skuCode") {
		t.Errorf("answered %s %q, want 000002 naming skuCode (authenticated)", r.code, r.msg)
	}
	// The same with the token's '+' left unescaped, as a raw query may
	// carry it: decoded to a space, put back.
	raw := strings.Replace(srv.URL+"/produce?"+q.Encode(), "%2B", "+", -1)
	if r := e.sendWith(http.MethodGet, raw, nil, nil, "9fa6c870-8bb0-4e9b-b71e-4c223300156f"); r.code != protocol.CodeInvalidParam {
		t.Errorf("unescaped '+': answered %s %q, want 000002 (authenticated)", r.code, r.msg)
	}
}
