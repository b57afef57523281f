package isv_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/isv"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
	"github.com/koobridge/koobridge/provision"
)

// recordingProvisioner passes events on and keeps each event with the
// vendor's answer.
type recordingProvisioner struct {
	next provision.Provisioner

	mu      sync.Mutex
	events  []provision.Event
	results []provision.Result
}

func (p *recordingProvisioner) Provision(ctx context.Context, ev provision.Event) (provision.Result, error) {
	res, err := p.next.Provision(ctx, ev)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.events = append(p.events, ev)
	p.results = append(p.results, res)
	return res, err
}

// created returns the instance.created event of instance id and the
// vendor's answer to it.
func (p *recordingProvisioner) created(t testing.TB, id string) (provision.Event, provision.Result) {
	t.Helper()
	var ev provision.Event
	var res provision.Result
	eventually(t, "instance.created of "+id, func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		for i, e := range p.events {
			if e.Type == provision.EventCreated && e.Instance.ID == id {
				ev, res = e, p.results[i]
				return true
			}
		}
		return false
	})
	return ev, res
}

// v1Env is a server whose provisioners record every event.
func v1Env(t *testing.T, edit ...func(*isv.Config)) (*env, *recordingProvisioner) {
	t.Helper()
	rec := &recordingProvisioner{}
	e := newEnv(t, append([]func(*isv.Config){func(c *isv.Config) {
		rec.next = c.Provisioner
		c.Provisioner, c.TestProvisioner = rec, rec
	}}, edit...)...)
	return e, rec
}

// v1Query returns params with a timeStamp of now (unless given) and the
// authToken made with key, as KooGallery signs a V1 GET.
func v1Query(t testing.TB, key string, params map[string]string) url.Values {
	t.Helper()
	q := url.Values{}
	for k, v := range params {
		q.Set(k, v)
	}
	if q.Get(sign.TimeStampParam) == "" {
		q.Set(sign.TimeStampParam, protocol.FormatTime17(time.Now()))
	}
	token, err := sign.AuthTokenQuery(key, q)
	if err != nil {
		t.Fatal(err)
	}
	q.Set(sign.AuthTokenParam, token)
	return q
}

// getRaw sends a GET with the raw query string as given and checks the
// reply's form and its Body-Sign with signKey.
func (e *env) getRaw(t testing.TB, rawQuery, signKey string) *result {
	t.Helper()
	resp, err := http.Get(e.url + "?" + rawQuery)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := &result{status: resp.StatusCode, header: resp.Header, raw: raw}
	if err := json.Unmarshal(raw, &r.body); err != nil {
		t.Fatalf("reply is not a JSON object: %v: %s", err, raw)
	}
	checkReply(t, r, http.StatusOK, signKey)
	return r
}

// v1 sends a V1 call signed with the server's first key.
func (e *env) v1(t testing.TB, params map[string]string) *result {
	t.Helper()
	return e.getRaw(t, v1Query(t, e.keys[0], params).Encode(), e.keys[0])
}

// encrypt encrypts a buyer's value as KooGallery does (§A.7).
func encrypt(t testing.TB, key string, et sign.EncryptType, v string) string {
	t.Helper()
	c, err := sign.NewCredentialCipher(key, et)
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.Encrypt(v)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// decrypt decrypts a credential of a V1 reply.
func decrypt(t testing.TB, key string, et sign.EncryptType, v string) string {
	t.Helper()
	c, err := sign.NewCredentialCipher(key, et)
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.Decrypt(v)
	if err != nil {
		t.Fatalf("decrypt %q: %v", v, err)
	}
	return out
}

// v1NewInstance is a yearly V1 purchase of order with the buyer's phone
// and e-mail encrypted with key, extension fields and a linear value.
func v1NewInstance(t testing.TB, key, order string) map[string]string {
	ext, err := protocol.EncodeSaaSExtendParams([]protocol.ExtendParam{{Name: "company", Value: "ACME 有限公司"}, {Name: "seats", Value: "20"}})
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		"activity": "newInstance", "customerId": "cust-v1", "customerName": "buyer_v1",
		"userId": "iam-1", "userName": "iam_user",
		"mobilePhone": encrypt(t, key, sign.EncryptAES256, buyerPhone), "email": encrypt(t, key, sign.EncryptAES256, buyerEmail),
		"businessId": randomID(), "orderId": order, "skuCode": "sku-v1-small", "productId": "prod-v1-year",
		"chargingMode": "1", "periodType": "year", "periodNumber": "2", "expireTime": "20300101000000",
		"amount": "20", "orderAmount": "199.5", "saasExtendParams": ext,
	}
}

// accept checks a V1 newInstance reply (000000, or 000004 on a slow
// machine) and returns its instanceId.
func acceptV1(t testing.TB, r *result) string {
	t.Helper()
	return acceptNew(t, r)
}

// activeV1 polls V1 queryInstance until the instance answers 000000.
func (e *env) activeV1(t testing.TB, id string) *result {
	t.Helper()
	var r *result
	eventually(t, "instance "+id+" active", func() bool {
		r = e.v1(t, map[string]string{"activity": "queryInstance", "instanceId": id})
		return r.code() == string(protocol.CodeSuccess)
	})
	return r
}

// TestV1Lifecycle drives one V1 instance through every V1 activity over
// HTTP, beside a V2 instance on the same path.
func TestV1Lifecycle(t *testing.T) {
	e, rec := v1Env(t)
	ctx := context.Background()

	params := v1NewInstance(t, key1, "V1-ORDER-1")
	first := e.v1(t, params)
	id := acceptV1(t, first)
	q := e.activeV1(t, id)

	// The vendor got the whole order, the buyer's contact data decrypted.
	ev, res := rec.created(t, id)
	o := ev.Order
	if o == nil {
		t.Fatal("instance.created of a V1 purchase carries no order")
	}
	want := provision.Order{
		OrderID: "V1-ORDER-1", OrderType: protocol.OrderTypeNew, ProductID: "prod-v1-year", SKUCode: "sku-v1-small",
		LinearValue: "20", ChargingMode: protocol.ChargingPeriod, PeriodType: "year", PeriodNumber: 2,
		ExpireTime: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), OrderAmount: "199.5",
		Buyer: provision.Buyer{CustomerID: "cust-v1", CustomerName: "buyer_v1", UserID: "iam-1", UserName: "iam_user",
			MobilePhone: buyerPhone, Email: buyerEmail},
		ExtendParams: []provision.ExtendParam{{Name: "company", Value: "ACME 有限公司"}, {Name: "seats", Value: "20"}},
	}
	gotJSON, _ := json.Marshal(o)
	wantJSON, _ := json.Marshal(want)
	if !bytes.Equal(gotJSON, wantJSON) {
		t.Errorf("instance.created order:\n got %s\nwant %s", gotJSON, wantJSON)
	}
	if ev.Instance.ChargingMode != protocol.ChargingPeriod || ev.Instance.SKUCode != "sku-v1-small" || ev.Instance.CustomerID != "cust-v1" {
		t.Errorf("instance.created instance: %+v", ev.Instance)
	}
	if n := e.orders.QueryOrderCalls(); n != 0 {
		t.Errorf("Query Order asked %d times for a V1 purchase", n)
	}

	// The instance holds the order; OrderJSON masks the buyer.
	inst, err := e.st.Instance(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if inst.OrderState != store.OrderFetched || inst.OrderID != "V1-ORDER-1" || inst.OrderLineID != "" ||
		inst.ProductID != "prod-v1-year" || inst.SKUCode != "sku-v1-small" || inst.ChargingMode != protocol.ChargingPeriod ||
		inst.PeriodType != "year" || inst.PeriodNumber != 2 || inst.LinearValue != "20" || inst.CustomerID != "cust-v1" ||
		!inst.ExpireTime.Equal(want.ExpireTime) {
		t.Errorf("stored instance: %+v", inst)
	}
	for _, leak := range []string{buyerPhone, buyerEmail, "iam_user"} {
		if strings.Contains(inst.OrderJSON, leak) {
			t.Errorf("OrderJSON holds %q in clear: %s", leak, inst.OrderJSON)
		}
	}
	for _, masked := range []string{`"mobilePhone":"139****4321"`, `"email":"b***@example.com"`, `"userName":"i***"`} {
		if !strings.Contains(inst.OrderJSON, masked) {
			t.Errorf("OrderJSON lacks %s: %s", masked, inst.OrderJSON)
		}
	}

	// Credentials always encrypted (the V2 default is plain), encryptType 1.
	ai := appInfo(t, q)
	if q.body["encryptType"] != "1" {
		t.Errorf("queryInstance encryptType %v, want 1: %s", q.body["encryptType"], q.raw)
	}
	if got := decrypt(t, key1, sign.EncryptAES256, ai["userName"].(string)); got != res.AppInfo.UserName {
		t.Errorf("userName decrypts to %q, want %q", got, res.AppInfo.UserName)
	}
	if got := decrypt(t, key1, sign.EncryptAES256, ai["password"].(string)); got != res.AppInfo.Password {
		t.Error("password does not decrypt to the vendor's")
	}
	if ai["frontEndUrl"] != res.AppInfo.FrontEndURL {
		t.Errorf("frontEndUrl %v, want %s", ai["frontEndUrl"], res.AppInfo.FrontEndURL)
	}
	if q2 := e.v1(t, map[string]string{"activity": "queryInstance", "instanceId": id}); !bytes.Equal(q.raw, q2.raw) {
		t.Errorf("repeated queryInstance answered differently:\n%s\n%s", q.raw, q2.raw)
	}

	// A repeat of newInstance (a new businessId, as KooGallery sends)
	// answers the instance with its app info, byte for byte the same each
	// time.
	params["businessId"] = randomID()
	again := e.v1(t, params)
	wantCode(t, again, protocol.CodeSuccess)
	if again.body["instanceId"] != id || again.body["encryptType"] != "1" {
		t.Fatalf("repeated newInstance: %s", again.raw)
	}
	na, _ := again.body["appInfo"].(map[string]any)
	if na == nil || decrypt(t, key1, sign.EncryptAES256, na["password"].(string)) != res.AppInfo.Password {
		t.Errorf("repeated newInstance app info: %s", again.raw)
	}
	params["businessId"] = randomID()
	if third := e.v1(t, params); !bytes.Equal(again.raw, third.raw) {
		t.Errorf("newInstance repeats answered differently:\n%s\n%s", again.raw, third.raw)
	}

	// V2 on the same path, at the same time.
	e.addOrder("V2-ORDER-1", "V2-ORDER-1-000001", "sku-v2")
	v2id := acceptNew(t, e.call(t, newInstanceBody("V2-ORDER-1", "V2-ORDER-1-000001"), request{}))
	v2q := e.waitActive(t, v2id)
	if _, ok := v2q.body["encryptType"]; ok {
		t.Errorf("V2 queryInstance is encrypted, its setting is plain: %s", v2q.raw)
	}

	// refreshInstance: idempotent per renewal order.
	refresh := map[string]string{"activity": "refreshInstance", "orderId": "V1-RENEW-1", "instanceId": id,
		"expireTime": "20320101000000", "periodType": "year", "periodNumber": "2", "orderAmount": "399"}
	r1 := e.v1(t, refresh)
	wantCode(t, r1, protocol.CodeSuccess)
	if r2 := e.v1(t, refresh); !bytes.Equal(r1.raw, r2.raw) {
		t.Errorf("repeated refreshInstance answered differently:\n%s\n%s", r1.raw, r2.raw)
	}
	if inst, _ = e.st.Instance(ctx, id); !inst.ExpireTime.Equal(time.Date(2032, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("expiry after refresh %v", inst.ExpireTime)
	}

	// expireInstance freezes, for expiry; a renewal unfreezes.
	expire := map[string]string{"activity": "expireInstance", "instanceId": id, "orderId": "V1-ORDER-1"}
	for range 2 {
		wantCode(t, e.v1(t, expire), protocol.CodeSuccess)
		if inst, _ = e.st.Instance(ctx, id); inst.Status != store.StatusFrozen || inst.FrozenBy != "expiry" {
			t.Fatalf("after expireInstance: status %s frozenBy %q", inst.Status, inst.FrozenBy)
		}
	}
	wantCode(t, e.v1(t, map[string]string{"activity": "refreshInstance", "orderId": "V1-RENEW-2", "instanceId": id,
		"expireTime": "20340101000000", "trialToFormal": "1"}), protocol.CodeSuccess)
	if inst, _ = e.st.Instance(ctx, id); inst.Status != store.StatusActive {
		t.Fatalf("a renewal left the expired instance %s", inst.Status)
	}

	// instanceStatus FREEZE and NORMAL.
	for _, st := range []struct {
		status string
		want   store.InstanceStatus
	}{{"FREEZE", store.StatusFrozen}, {"FREEZE", store.StatusFrozen}, {"NORMAL", store.StatusActive}} {
		wantCode(t, e.v1(t, map[string]string{"activity": "instanceStatus", "instanceId": id, "instanceStatus": st.status}), protocol.CodeSuccess)
		if inst, _ = e.st.Instance(ctx, id); inst.Status != st.want {
			t.Fatalf("after instanceStatus %s: %s", st.status, inst.Status)
		}
	}

	// upgrade: the new specification comes with the call.
	up := map[string]string{"activity": "upgrade", "instanceId": id, "orderId": "V1-UP-1", "skuCode": "sku-v1-large",
		"productId": "prod-v1-year-large", "amount": "50"}
	u1 := e.v1(t, up)
	wantCode(t, u1, protocol.CodeSuccess)
	if u2 := e.v1(t, up); !bytes.Equal(u1.raw, u2.raw) {
		t.Errorf("repeated upgrade answered differently:\n%s\n%s", u1.raw, u2.raw)
	}
	eventually(t, "the upgrade applied", func() bool {
		inst, _ = e.st.Instance(ctx, id)
		return inst.SKUCode == "sku-v1-large"
	})
	if inst.ProductID != "prod-v1-year-large" || inst.LinearValue != "50" {
		t.Errorf("after upgrade: product %q linear %q", inst.ProductID, inst.LinearValue)
	}
	if n := e.orders.QueryOrderCalls(); n != 1 { // the V2 purchase's only
		t.Errorf("Query Order asked %d times, want 1 (the V2 purchase)", n)
	}

	// releaseInstance, then again.
	release := map[string]string{"activity": "releaseInstance", "instanceId": id, "orderId": "V1-ORDER-1", "orderAmount": "-10.5"}
	for range 2 {
		wantCode(t, e.v1(t, release), protocol.CodeSuccess)
	}
	if inst, _ = e.st.Instance(ctx, id); inst.Status != store.StatusReleased {
		t.Fatalf("after releaseInstance: %s", inst.Status)
	}
	eventually(t, "instance.released", func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		for _, ev := range rec.events {
			if ev.Type == provision.EventReleased && ev.Instance.ID == id {
				return true
			}
		}
		return false
	})

	// The ledger names the family and keys, and never the buyer's data.
	calls := e.calls(t, 19)
	keys := map[string]bool{}
	for _, c := range calls {
		if c.Interface == "v1" {
			keys[c.IdemKey] = true
		}
		for _, leak := range []string{buyerPhone, buyerEmail} {
			if strings.Contains(c.Request, leak) || strings.Contains(c.Response, leak) || strings.Contains(c.ResultMsg, leak) {
				t.Errorf("ledger call %d (%s) holds %q", c.ID, c.Activity, leak)
			}
		}
	}
	for _, k := range []string{"newInstance:V1-ORDER-1:", "refreshInstance:V1-RENEW-1", "expireInstance:" + id,
		"instanceStatus:" + id + ":FREEZE", "upgrade:V1-UP-1", "releaseInstance:" + id} {
		if !keys[k] {
			t.Errorf("no V1 call in the ledger with key %q (have %v)", k, keys)
		}
	}
	for _, leak := range []string{buyerPhone, buyerEmail, res.AppInfo.Password} {
		if strings.Contains(e.logs.String(), leak) {
			t.Errorf("the log holds %q", leak)
		}
	}
}

// TestV1SpecVector sends the spec's authToken example (§A.2) to a server
// holding its key: the token verifies (the call gets as far as the field
// check) and the reply is Body-Signed with that key.
func TestV1SpecVector(t *testing.T) {
	const specKey = "9fa6c870-8bb0-4e9b-b71e-4c223300156f"
	e := newEnv(t, func(c *isv.Config) { c.Keys.Basic = []string{specKey} })
	q := url.Values{"activity": {"newInstance"}, "businessId": {"61e834ba"}, "customerId": {"68cbc86a"},
		"orderId": {"CS1906666666ABCDE"}, "testFlag": {"1"}, "timeStamp": {"20170725025113409"}}
	token, err := sign.AuthTokenQuery(specKey, q)
	if err != nil {
		t.Fatal(err)
	}
	if token != "YOo1GGluq53mv2z+k/t3Yl5tM9eC1I3RubYPTVvxtmk=" {
		t.Fatalf("authToken %s, want the spec's", token)
	}
	q.Set("authToken", token)
	r := e.getRaw(t, q.Encode(), specKey)
	wantCode(t, r, protocol.CodeInvalidParam)
	if r.msg() != "invalid parameter skuCode: missing" {
		t.Errorf("resultMsg %q", r.msg())
	}
	q.Set("customerId", "68cbc86b")
	r = e.getRaw(t, q.Encode(), specKey)
	wantCode(t, r, protocol.CodeAuthFailed)
}

// TestV1Rejected sends bad V1 calls: each gets its result code, a message
// naming what is wrong, a Body-Sign, and changes nothing.
func TestV1Rejected(t *testing.T) {
	e, _ := v1Env(t, func(c *isv.Config) { c.Keys.Basic = []string{key1, key2} })
	good := func() map[string]string { return v1NewInstance(t, key1, "V1-REJECT") }
	with := func(m map[string]string, k, v string) map[string]string {
		m[k] = v
		return m
	}
	without := func(m map[string]string, k string) map[string]string {
		delete(m, k)
		return m
	}
	signed := func(key string, m map[string]string) string { return v1Query(t, key, m).Encode() }
	tampered := func() string {
		q := v1Query(t, key1, good())
		q.Set("skuCode", "sku-v1-free")
		return q.Encode()
	}
	unknown := "no-such-instance"
	tests := []struct {
		name    string
		raw     string
		code    protocol.ResultCode
		msg     string // the exact resultMsg, or a part of it with part
		part    bool
		signKey string
	}{
		{name: "no authToken", raw: url.Values{"activity": {"queryInstance"}, "instanceId": {unknown}, "timeStamp": {"20240101000000000"}}.Encode(),
			code: protocol.CodeAuthFailed, msg: "authentication failed: missing query parameter authToken"},
		{name: "no timeStamp", raw: "activity=queryInstance&authToken=abc", code: protocol.CodeAuthFailed, msg: "authentication failed: missing query parameter timeStamp"},
		{name: "wrong key", raw: signed("not-the-key", good()), code: protocol.CodeAuthFailed, msg: "authentication failed: signature mismatch"},
		{name: "tampered parameter", raw: tampered(), code: protocol.CodeAuthFailed, msg: "authentication failed: signature mismatch"},
		{name: "repeated parameter", raw: signed(key1, good()) + "&orderId=V1-OTHER", code: protocol.CodeInvalidParam, msg: "orderId", part: true},
		{name: "unknown activity", raw: signed(key1, map[string]string{"activity": "explodeInstance", "instanceId": unknown}), code: protocol.CodeInvalidParam, msg: "activity", part: true},
		{name: "missing field", raw: signed(key1, without(good(), "customerId")), code: protocol.CodeInvalidParam, msg: "invalid parameter customerId: missing"},
		{name: "overlong field", raw: signed(key1, with(good(), "orderId", strings.Repeat("O", 65))), code: protocol.CodeInvalidParam, msg: "orderId", part: true},
		{name: "bad timeStamp", raw: signed(key1, with(good(), "timeStamp", "2024-01-01")), code: protocol.CodeInvalidParam, msg: "timeStamp", part: true},
		{name: "bad chargingMode", raw: signed(key1, with(good(), "chargingMode", "7")), code: protocol.CodeInvalidParam, msg: "invalid parameter chargingMode: want 0 (pay-per-use), 1 (yearly/monthly), 3 (one-time) or 5 (pay-per-use package)"},
		{name: "plain mobilePhone", raw: signed(key1, with(good(), "mobilePhone", buyerPhone)), code: protocol.CodeInvalidParam,
			msg: "invalid parameter mobilePhone: cannot be decrypted with the basic key and encryptType 1 (§A.7)"},
		{name: "email under another key", raw: signed(key1, with(good(), "email", encrypt(t, "another-key", sign.EncryptAES256, buyerEmail))), code: protocol.CodeInvalidParam,
			msg: "invalid parameter email: cannot be decrypted with the basic key and encryptType 1 (§A.7)"},
		{name: "email under AES-128", raw: signed(key1, with(good(), "email", encrypt(t, key1, sign.EncryptAES128, buyerEmail))), code: protocol.CodeInvalidParam,
			msg: "email", part: true},
		{name: "bad saasExtendParams", raw: signed(key1, with(good(), "saasExtendParams", "not base64!")), code: protocol.CodeInvalidParam, msg: "saasExtendParams", part: true},
		{name: "bad instanceStatus", raw: signed(key1, map[string]string{"activity": "instanceStatus", "instanceId": unknown, "instanceStatus": "PAUSE"}), code: protocol.CodeInvalidParam, msg: "instanceStatus", part: true},
		{name: "refresh of an unknown instance", raw: signed(key1, map[string]string{"activity": "refreshInstance", "orderId": "R", "instanceId": unknown, "expireTime": "20300101000000"}),
			code: protocol.CodeInstanceNotFound, msg: "instance does not exist"},
		{name: "expire of an unknown instance", raw: signed(key1, map[string]string{"activity": "expireInstance", "orderId": "R", "instanceId": unknown}),
			code: protocol.CodeInstanceNotFound, msg: "instance does not exist"},
		{name: "release of an unknown instance", raw: signed(key1, map[string]string{"activity": "releaseInstance", "orderId": "R", "instanceId": unknown}),
			code: protocol.CodeInstanceNotFound, msg: "instance does not exist"},
		{name: "upgrade of an unknown instance", raw: signed(key1, map[string]string{"activity": "upgrade", "orderId": "U", "instanceId": unknown, "skuCode": "s", "productId": "p"}),
			code: protocol.CodeInstanceNotFound, msg: "instance does not exist"},
		{name: "status of an unknown instance", raw: signed(key1, map[string]string{"activity": "instanceStatus", "instanceId": unknown, "instanceStatus": "FREEZE"}),
			code: protocol.CodeInstanceNotFound, msg: "instance does not exist"},
		{name: "query of an unknown instance", raw: signed(key1, map[string]string{"activity": "queryInstance", "instanceId": unknown}),
			code: protocol.CodeInstanceNotFound, msg: "instance does not exist"},
		{name: "second key, rotation", raw: signed(key2, map[string]string{"activity": "queryInstance", "instanceId": unknown}),
			code: protocol.CodeInstanceNotFound, msg: "instance does not exist", signKey: key2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.state(t)
			signKey := tt.signKey
			if signKey == "" {
				signKey = key1
			}
			r := e.getRaw(t, tt.raw, signKey)
			wantCode(t, r, tt.code)
			if tt.part && !strings.Contains(r.msg(), tt.msg) || !tt.part && r.msg() != tt.msg {
				t.Errorf("resultMsg %q, want %q", r.msg(), tt.msg)
			}
			for _, leak := range []string{key1, key2, buyerPhone, buyerEmail} {
				if strings.Contains(string(r.raw), leak) {
					t.Errorf("reply reveals %q: %s", leak, r.raw)
				}
			}
			if after := e.state(t); after != before {
				t.Errorf("state changed: before %+v, after %+v", before, after)
			}
		})
	}
	calls := e.calls(t, len(tests))
	for _, c := range calls {
		if strings.Contains(c.Request, buyerPhone) || strings.Contains(c.Request, buyerEmail) {
			t.Errorf("ledger call %d holds the buyer's data: %s", c.ID, c.Request)
		}
	}
}

// TestV1PayPerUse buys two charge items of one pay-per-use order: one
// instance each (orderId + productId), repeats answer the first.
func TestV1PayPerUse(t *testing.T) {
	e, _ := v1Env(t)
	buy := func(product string) map[string]string {
		return map[string]string{"activity": "newInstance", "customerId": "cust-ppu", "businessId": randomID(),
			"orderId": "V1-PPU-1", "skuCode": "sku-ppu", "productId": product, "chargingMode": "0"}
	}
	a := acceptV1(t, e.v1(t, buy("prod-sms")))
	b := acceptV1(t, e.v1(t, buy("prod-mms")))
	if a == b {
		t.Fatalf("two charge items share instance %s", a)
	}
	if again := acceptV1(t, e.v1(t, buy("prod-sms"))); again != a {
		t.Errorf("repeat of the first charge item: %s, want %s", again, a)
	}
	inst, err := e.st.Instance(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	if inst.OrderLineID != "prod-mms" || inst.ChargingMode != protocol.ChargingOnDemand {
		t.Errorf("pay-per-use instance: line %q mode %q", inst.OrderLineID, inst.ChargingMode)
	}
	q := e.activeV1(t, a)
	info := q.body["info"].([]any)[0].(map[string]any)
	if _, ok := info["usageInfo"]; !ok {
		t.Errorf("no usageInfo for a pay-per-use instance: %s", q.raw)
	}
}

// TestV1Settings: the V1 encryptType setting governs the buyer's data and
// the V1 credentials, whatever the V2 credentials setting is; a timeStamp
// window is off by default and refuses stale calls when set.
func TestV1Settings(t *testing.T) {
	t.Run("AES-128 for V1, V2 encrypted with AES-256", func(t *testing.T) {
		e, rec := v1Env(t, func(c *isv.Config) {
			c.V1EncryptType = sign.EncryptAES128
			c.Credentials, c.EncryptType = isv.CredentialsEncrypted, sign.EncryptAES256
		})
		p := map[string]string{"activity": "newInstance", "customerId": "cust-128", "businessId": randomID(),
			"orderId": "V1-128", "skuCode": "sku", "productId": "prod", "testFlag": "1",
			"mobilePhone": encrypt(t, key1, sign.EncryptAES128, buyerPhone)}
		id := acceptV1(t, e.v1(t, p))
		q := e.activeV1(t, id)
		if q.body["encryptType"] != "2" {
			t.Errorf("encryptType %v, want 2: %s", q.body["encryptType"], q.raw)
		}
		ev, res := rec.created(t, id)
		if ev.Order == nil || ev.Order.Buyer.MobilePhone != buyerPhone || !ev.Test {
			t.Errorf("instance.created: test %v order %+v", ev.Test, ev.Order)
		}
		if got := decrypt(t, key1, sign.EncryptAES128, appInfo(t, q)["userName"].(string)); got != res.AppInfo.UserName {
			t.Errorf("userName decrypts to %q", got)
		}
	})
	t.Run("no timeStamp window by default", func(t *testing.T) {
		e, _ := v1Env(t)
		r := e.v1(t, map[string]string{"activity": "queryInstance", "instanceId": "nothing", "timeStamp": "20170725025113409"})
		wantCode(t, r, protocol.CodeInstanceNotFound)
	})
	t.Run("a timeStamp window when set", func(t *testing.T) {
		e, _ := v1Env(t, func(c *isv.Config) { c.V1TimestampWindow = 5 * time.Minute })
		now, unpin := e.clock.pin()
		defer unpin()
		for _, tt := range []struct {
			skew time.Duration
			code protocol.ResultCode
		}{{-6 * time.Minute, protocol.CodeAuthFailed}, {6 * time.Minute, protocol.CodeAuthFailed}, {-4 * time.Minute, protocol.CodeInstanceNotFound}, {0, protocol.CodeInstanceNotFound}} {
			r := e.v1(t, map[string]string{"activity": "queryInstance", "instanceId": "nothing", "timeStamp": protocol.FormatTime17(now.Add(tt.skew))})
			wantCode(t, r, tt.code)
			if tt.code == protocol.CodeAuthFailed && r.msg() != "authentication failed: timeStamp is more than 5m0s from the server's time" {
				t.Errorf("resultMsg %q", r.msg())
			}
		}
	})
}
