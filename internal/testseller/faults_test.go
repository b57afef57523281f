package testseller

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
)

// A probe checks one correct behaviour and says how the seller deviates
// from it, or returns nil.
type probe func(t *testing.T, e env) error

// probes are the behaviours the faults break, by name. Each works whatever
// else is broken (it accepts 000004 where it only needs an instance).
var probes = map[string]probe{
	"signature":    probeSignature,
	"idempotency":  probeIdempotency,
	"bodySign":     probeBodySign,
	"releaseTwice": probeReleaseTwice,
	"unknownID":    probeUnknownInstance,
	"validation":   probeValidation,
	"async":        probeSync,
	"contentType":  probeContentType,
	"concurrent":   probeConcurrent,
	"orderKey":     probeOrderKey,
	"orderBody":    probeOrderBodySign,
	"orderFlag":    probeOrderTestFlag,
	"orderRepeat":  probeOrderRepeat,

	"v1Auth":           probeV1Auth,
	"v1BodySign":       probeV1BodySign,
	"v1Idempotency":    probeV1Idempotency,
	"v1UnknownID":      probeV1UnknownInstance,
	"v1Validation":     probeV1Validation,
	"kitAuthToken":     probeKitAuthToken,
	"kitSign":          probeKitSign,
	"kitWindow":        probeKitWindow,
	"kitNonce":         probeKitNonce,
	"kitRepeatAdd":     probeKitRepeatAdd,
	"kitDeleteUnknown": probeKitDeleteUnknown,
	"kitUserLimit":     probeKitUserLimit,
	"kitSecret":        probeKitSecret,

	"licenseKey":         probeLicenseKey,
	"licenseBodySign":    probeLicenseBodySign,
	"licenseUnknownCode": probeLicenseUnknownCode,
	"licenseIdempotency": probeLicenseIdempotency,
	"licenseDebugApart":  probeLicenseDebugApart,
	"onlineUpload":       probeOnlineUpload,
	"onlineRepeat":       probeOnlineRepeat,
	"onlineExpiry":       probeOnlineExpiry,
}

// probeV1Auth: V1 calls without authToken, with a wrong one or one made
// with another key answer 000001.
func probeV1Auth(t *testing.T, e env) error {
	base := e.srv.URL + "/produce"
	ts := protocol.FormatTime17(time.Now())
	for _, c := range []struct{ what, url string }{
		{"no authToken", base + "?activity=queryInstance&instanceId=x&timeStamp=" + ts},
		{"wrong authToken", base + "?activity=queryInstance&instanceId=x&timeStamp=" + ts + "&authToken=AAAA"},
		{"another key", v1URL(t, base, testKitKey, "queryInstance", url.Values{"instanceId": {"x"}})},
	} {
		if r := e.sendWith(http.MethodGet, c.url, nil, nil, testKey); r.code != protocol.CodeAuthFailed {
			return fmt.Errorf("V1 %s answered %s, want 000001", c.what, r.code)
		}
	}
	return nil
}

// probeV1BodySign: a V1 answer carries a Body-Sign made with the basic key.
func probeV1BodySign(t *testing.T, e env) error {
	r := e.v1("queryInstance", url.Values{"instanceId": {"nope"}})
	return sign.VerifyBodySign(testKey, r.header.Get(sign.BodySignHeader), r.raw)
}

// probeV1Idempotency: a repeated V1 newInstance answers the same instance.
func probeV1Idempotency(t *testing.T, e env) error {
	a := e.v1("newInstance", v1Order(t, "CSV1IDEM", "1", "P1")).instanceID
	b := e.v1("newInstance", v1Order(t, "CSV1IDEM", "1", "P1")).instanceID
	if a == "" || a != b {
		return fmt.Errorf("one V1 order gave instanceIds %q and %q", a, b)
	}
	return nil
}

// probeV1UnknownInstance: V1 changes of an unknown instance answer 000003.
func probeV1UnknownInstance(t *testing.T, e env) error {
	for _, c := range []struct {
		activity string
		params   url.Values
	}{
		{"refreshInstance", url.Values{"instanceId": {"nope"}, "orderId": {"CSX"}, "expireTime": {"20300101000000"}}},
		{"expireInstance", url.Values{"instanceId": {"nope"}, "orderId": {"CSX"}}},
		{"releaseInstance", url.Values{"instanceId": {"nope"}, "orderId": {"CSX"}}},
		{"upgrade", url.Values{"instanceId": {"nope"}, "orderId": {"CSX"}, "skuCode": {"S"}, "productId": {"P"}}},
		{"instanceStatus", url.Values{"instanceId": {"nope"}, "instanceStatus": {"FREEZE"}}},
	} {
		if r := e.v1(c.activity, c.params); r.code != protocol.CodeInstanceNotFound {
			return fmt.Errorf("V1 %s of an unknown instance answered %s, want 000003", c.activity, r.code)
		}
	}
	return nil
}

// probeV1Validation: a V1 newInstance without orderId and an unknown
// activity answer 000002.
func probeV1Validation(t *testing.T, e env) error {
	order := v1Order(t, "CSV1VAL", "1", "P1")
	order.Del("orderId")
	if r := e.v1("newInstance", order); r.code != protocol.CodeInvalidParam {
		return fmt.Errorf("V1 newInstance without orderId answered %s, want 000002", r.code)
	}
	if r := e.v1("noSuchActivity", url.Values{}); r.code != protocol.CodeInvalidParam {
		return fmt.Errorf("V1 unknown activity answered %s, want 000002", r.code)
	}
	return nil
}

// probeKitAuthToken: Kit V1 calls without authToken or with a wrong one
// answer 000001.
func probeKitAuthToken(t *testing.T, e env) error {
	f := newKitFixture(t, e, true)
	for what, c := range map[string]kitCall{
		"no authToken":    {version: 1, header: map[string]string{"authToken": ""}},
		"wrong authToken": {version: 1, header: map[string]string{"authToken": "AAAA"}},
	} {
		if r := e.kit(c, protocol.KitAllOrgSync, f.tree("A")); r.code != protocol.CodeAuthFailed {
			return fmt.Errorf("Kit V1 %s answered %s, want 000001", what, r.code)
		}
	}
	return nil
}

// probeKitSign: Kit V2 calls with a wrong or no x-sign answer 000001.
func probeKitSign(t *testing.T, e env) error {
	f := newKitFixture(t, e, false)
	for what, c := range map[string]kitCall{
		"wrong x-sign": {version: 2, header: map[string]string{"x-sign": strings.Repeat("0", 64)}},
		"no x-sign":    {version: 2, header: map[string]string{"x-sign": ""}},
	} {
		if r := e.kit(c, protocol.KitAllOrgSync, f.tree("A")); r.code != protocol.CodeAuthFailed {
			return fmt.Errorf("Kit V2 %s answered %s, want 000001", what, r.code)
		}
	}
	return nil
}

// probeKitWindow: a Kit V2 x-timestamp 2 minutes old answers 000001.
func probeKitWindow(t *testing.T, e env) error {
	f := newKitFixture(t, e, false)
	if r := e.kit(kitCall{version: 2, skew: -2 * time.Minute}, protocol.KitAllOrgSync, f.tree("A")); r.code != protocol.CodeAuthFailed {
		return fmt.Errorf("Kit V2 stale x-timestamp answered %s, want 000001", r.code)
	}
	return nil
}

// probeKitNonce: a Kit V2 x-nonce used twice answers 000001 the second time.
func probeKitNonce(t *testing.T, e env) error {
	f := newKitFixture(t, e, false)
	c := kitCall{version: 2, nonce: "probe-nonce"}
	e.kit(c, protocol.KitAllOrgSync, f.tree("A"))
	if r := e.kit(c, protocol.KitAllOrgSync, f.tree("A")); r.code != protocol.CodeAuthFailed {
		return fmt.Errorf("Kit V2 replayed x-nonce answered %s, want 000001", r.code)
	}
	return nil
}

// probeKitRepeatAdd: every add repeated answers 000000.
func probeKitRepeatAdd(t *testing.T, e env) error {
	f := newKitFixture(t, e, false)
	for _, c := range []struct {
		op   string
		body map[string]any
	}{
		{protocol.KitTenantSync, f.tenant(1)}, {protocol.KitApplicationSync, f.app(1)},
		{protocol.KitAuthSync, f.users(1, "A", "ann")}, {protocol.KitSingleOrgSync, f.org(1, "A", "A", "")},
	} {
		for i := range 2 {
			if r := e.kit(kitCall{version: 2}, c.op, c.body); r.code != protocol.CodeSuccess {
				return fmt.Errorf("%s add %d answered %s, want 000000", c.op, i+1, r.code)
			}
		}
	}
	return nil
}

// probeKitDeleteUnknown: deleting (or revoking) what is not held answers
// 000000.
func probeKitDeleteUnknown(t *testing.T, e env) error {
	f := newKitFixture(t, e, false)
	for _, c := range []struct {
		op   string
		body map[string]any
	}{
		{protocol.KitTenantSync, f.tenant(0)}, {protocol.KitApplicationSync, f.app(0)}, {protocol.KitAuthSync, f.users(0, "A", "ann")},
		{protocol.KitAuthSync, f.users(3, "A", "ann")}, {protocol.KitSingleOrgSync, f.org(0, "A", "A", "")},
	} {
		if r := e.kit(kitCall{version: 2}, c.op, c.body); r.code != protocol.CodeSuccess {
			return fmt.Errorf("%s delete of what is not held answered %s, want 000000", c.op, r.code)
		}
	}
	return nil
}

// probeKitUserLimit: authSync with 501 users is refused.
func probeKitUserLimit(t *testing.T, e env) error {
	names := make([]string, 501)
	for i := range names {
		names[i] = fmt.Sprintf("u%d", i)
	}
	if r := e.kit(kitCall{version: 2}, protocol.KitAuthSync, newKitFixture(t, e, false).users(1, "A", names...)); r.code == protocol.CodeSuccess {
		return fmt.Errorf("authSync with 501 users answered 000000")
	}
	return nil
}

// probeKitSecret: applicationSync with an undecryptable clientSecret is
// refused.
func probeKitSecret(t *testing.T, e env) error {
	b := newKitFixture(t, e, false).app(1)
	b["clientSecret"] = base64.StdEncoding.EncodeToString(make([]byte, 384))
	if r := e.kit(kitCall{version: 2}, protocol.KitApplicationSync, b); r.code == protocol.CodeSuccess {
		return fmt.Errorf("applicationSync with an undecryptable clientSecret answered 000000")
	}
	return nil
}

func probeSignature(t *testing.T, e env) error {
	body := []byte(`{"activity":"queryInstance","instanceId":"nope"}`)
	stale := millis(time.Now().Add(-5 * time.Minute))
	fresh := nowMillis()
	for _, c := range []struct{ what, url string }{
		{"bad signature", e.srv.URL + "?signature=" + strings.Repeat("0", 64) + "&timestamp=" + fresh + "&nonce=n0"},
		{"no signature", e.srv.URL},
		{"stale timestamp", signedURL(e.srv.URL, testKey, "n1", stale, body)},
		{"replayed nonce", signedURL(e.srv.URL, testKey, "n2", fresh, body)}, // sent twice below
	} {
		r := e.send(http.MethodPost, c.url, body)
		if c.what == "replayed nonce" {
			r = e.send(http.MethodPost, c.url, body)
		}
		if r.code != protocol.CodeAuthFailed {
			return fmt.Errorf("%s answered %s, want 000001", c.what, r.code)
		}
	}
	return nil
}

func probeIdempotency(t *testing.T, e env) error {
	a := e.call(newInstance("CSIDEM", "CSIDEM-000001")).instanceID
	b := e.call(newInstance("CSIDEM", "CSIDEM-000001")).instanceID
	if a == "" || a != b || e.s.Instances() != 1 {
		return fmt.Errorf("one order line gave instanceIds %q and %q, %d instances", a, b, e.s.Instances())
	}
	return nil
}

func probeBodySign(t *testing.T, e env) error {
	r := e.call(queryInstance("nope"))
	return sign.VerifyBodySign(testKey, r.header.Get(sign.BodySignHeader), r.raw)
}

func probeReleaseTwice(t *testing.T, e env) error {
	id := e.create("CSREL")
	for i := range 2 {
		if r := e.call(releaseInstance(id)); r.code != protocol.CodeSuccess {
			return fmt.Errorf("release %d answered %s, want 000000", i+1, r.code)
		}
	}
	return nil
}

func probeUnknownInstance(t *testing.T, e env) error {
	for _, body := range []map[string]any{
		refreshInstance("nope", "RENEWAL", "20300101000000"),
		updateStatus("nope", "FREEZE"),
		releaseInstance("nope"),
	} {
		if r := e.call(body); r.code != protocol.CodeInstanceNotFound {
			return fmt.Errorf("%s of an unknown instance answered %s, want 000003", body["activity"], r.code)
		}
	}
	return nil
}

func probeValidation(t *testing.T, e env) error {
	missing := newInstance("CSVAL", "CSVAL-000001")
	delete(missing, "orderLineId")
	overlong := newInstance("CSVAL", "CSVAL-000001")
	overlong["orderId"] = strings.Repeat("9", 65)
	for _, c := range []struct {
		what string
		body map[string]any
	}{
		{"missing orderLineId", missing},
		{"overlong orderId", overlong},
		{"unknown activity", map[string]any{"activity": "newInstances", "orderId": "CSVAL"}},
		{"bad status", updateStatus("nope", "FROZEN")},
	} {
		if r := e.call(c.body); r.code != protocol.CodeInvalidParam {
			return fmt.Errorf("%s answered %s, want 000002", c.what, r.code)
		}
	}
	return nil
}

// probeSync: newInstance provisions synchronously and the first query
// already has appInfo.
func probeSync(t *testing.T, e env) error {
	r := e.call(newInstance("CSSYNC", "CSSYNC-000001"))
	if r.code != protocol.CodeSuccess {
		return fmt.Errorf("newInstance answered %s, want 000000", r.code)
	}
	q := e.call(queryInstance(r.instanceID))
	if q.code != protocol.CodeSuccess || len(q.info) != 1 || q.info[0].AppInfo == nil {
		return fmt.Errorf("first queryInstance answered %s with %d entries, want 000000 with appInfo", q.code, len(q.info))
	}
	return nil
}

func probeContentType(t *testing.T, e env) error {
	r := e.call(queryInstance("nope"))
	if ct := r.header.Get("Content-Type"); ct != "application/json;charset=UTF-8" {
		return fmt.Errorf("Content-Type %q", ct)
	}
	return nil
}

// probeConcurrent: concurrent newInstance calls for a new order line all
// get the same resultCode (and, which probeIdempotency checks, one
// instance).
func probeConcurrent(t *testing.T, e env) error {
	codes := concurrently(t, 4, func() reply { return e.call(newInstance("CSCONC", "CSCONC-000001")) })
	distinct := slices.Clone(codes)
	slices.Sort(distinct)
	if len(slices.Compact(distinct)) != 1 {
		return fmt.Errorf("concurrent newInstance calls for one order line answered %v", codes)
	}
	return nil
}

// probeOrderKey: an orderNotify signed with the basic key fails. A seller
// that accepts any signature fails probeSignature instead.
func probeOrderKey(t *testing.T, e env) error {
	body := marshal(t, orderNotify("CSOK", "CSOK-000001", "0"))
	if e.postWith("made-up-key", body).code != protocol.CodeAuthFailed {
		return nil
	}
	if r := e.postWith(testKey, body); r.code != protocol.CodeAuthFailed {
		return fmt.Errorf("orderNotify signed with the basic key answered %s, want 000001", r.code)
	}
	return nil
}

// probeOrderBodySign: an orderNotify answer's Body-Sign, when there is
// one, is made with the general key. A missing one fails probeBodySign.
func probeOrderBodySign(t *testing.T, e env) error {
	r := e.call(orderNotify("CSOB", "CSOB-000001", "0"))
	h := r.header.Get(sign.BodySignHeader)
	if h == "" {
		return nil
	}
	return sign.VerifyBodySign(testGeneralKey, h, r.raw)
}

// probeOrderTestFlag: an orderNotify without testFlag answers 000002. A
// seller that validates nothing fails probeValidation instead.
func probeOrderTestFlag(t *testing.T, e env) error {
	if e.call(orderNotify("CSOF", "", "0")).code != protocol.CodeInvalidParam {
		return nil
	}
	if r := e.call(orderNotify("CSOF", "CSOF-000001", "")); r.code != protocol.CodeInvalidParam {
		return fmt.Errorf("orderNotify without testFlag answered %s, want 000002", r.code)
	}
	return nil
}

// probeOrderRepeat: a repeated orderNotify answers as the first did.
func probeOrderRepeat(t *testing.T, e env) error {
	a := e.call(orderNotify("CSOR", "CSOR-000001", "0")).code
	b := e.call(orderNotify("CSOR", "CSOR-000001", "0")).code
	if a != protocol.CodeSuccess || b != a {
		return fmt.Errorf("orderNotify answered %s, then %s to the repeat", a, b)
	}
	return nil
}

// faultRows pairs every fault with the probe it must break; Slow breaks
// none of them (TestSlow measures it).
var faultRows = []struct {
	name   string
	faults Faults
	breaks string
}{
	{"none", Faults{}, ""},
	{"SkipSignature", Faults{SkipSignature: true}, "signature"},
	{"NewInstanceEveryCall", Faults{NewInstanceEveryCall: true}, "idempotency"},
	{"NoBodySign", Faults{NoBodySign: true}, "bodySign"},
	{"ReleaseTwiceFails", Faults{ReleaseTwiceFails: true}, "releaseTwice"},
	{"UnknownInstanceOK", Faults{UnknownInstanceOK: true}, "unknownID"},
	{"SkipValidation", Faults{SkipValidation: true}, "validation"},
	{"Slow", Faults{Slow: 5 * time.Millisecond}, ""},
	{"Async", Faults{Async: true}, "async"},
	{"WrongContentType", Faults{WrongContentType: true}, "contentType"},
	{"ConcurrentProcessing", Faults{ConcurrentProcessing: 200 * time.Millisecond}, "concurrent"},
	{"OrderNotifyAnyKey", Faults{OrderNotifyAnyKey: true}, "orderKey"},
	{"OrderNotifyBasicKeyBodySign", Faults{OrderNotifyBasicKeyBodySign: true}, "orderBody"},
	{"OrderNotifyOptionalTestFlag", Faults{OrderNotifyOptionalTestFlag: true}, "orderFlag"},
	{"OrderNotifyRepeatDiffers", Faults{OrderNotifyRepeatDiffers: true}, "orderRepeat"},
	{"V1SkipAuthToken", Faults{V1SkipAuthToken: true}, "v1Auth"},
	{"V1NoBodySign", Faults{V1NoBodySign: true}, "v1BodySign"},
	{"V1NewInstanceEveryCall", Faults{V1NewInstanceEveryCall: true}, "v1Idempotency"},
	{"V1UnknownInstanceOK", Faults{V1UnknownInstanceOK: true}, "v1UnknownID"},
	{"V1SkipValidation", Faults{V1SkipValidation: true}, "v1Validation"},
	{"KitSkipAuthToken", Faults{KitSkipAuthToken: true}, "kitAuthToken"},
	{"KitSkipSign", Faults{KitSkipSign: true}, "kitSign"},
	{"KitStaleTimestampOK", Faults{KitStaleTimestampOK: true}, "kitWindow"},
	{"KitReplayOK", Faults{KitReplayOK: true}, "kitNonce"},
	{"KitRepeatAddFails", Faults{KitRepeatAddFails: true}, "kitRepeatAdd"},
	{"KitDeleteUnknownFails", Faults{KitDeleteUnknownFails: true}, "kitDeleteUnknown"},
	{"KitNoUserLimit", Faults{KitNoUserLimit: true}, "kitUserLimit"},
	{"KitAcceptBadSecret", Faults{KitAcceptBadSecret: true}, "kitSecret"},
	{"LicenseBasicKeyBodySign", Faults{LicenseBasicKeyBodySign: true}, "licenseBodySign"},
	{"LicenseAnyKey", Faults{LicenseAnyKey: true}, "licenseKey"},
	{"LicenseUnknownCodeRefused", Faults{LicenseUnknownCodeRefused: true}, "licenseUnknownCode"},
	{"LicenseRepeatDiffers", Faults{LicenseRepeatDiffers: true}, "licenseIdempotency"},
	{"LicenseStaleRenewalRefused", Faults{LicenseStaleRenewalRefused: true}, "licenseIdempotency"},
	{"LicenseDebugMixed", Faults{LicenseDebugMixed: true}, "licenseDebugApart"},
	{"OnlineLicenseNoUpload", Faults{OnlineLicenseNoUpload: true}, "onlineUpload"},
	{"OnlineLicenseRegenerates", Faults{OnlineLicenseRegenerates: true}, "onlineRepeat"},
	{"OnlineLicenseWrongSHA256", Faults{OnlineLicenseWrongSHA256: true}, "onlineUpload"},
	{"OnlineLicenseNoExpiryCheck", Faults{OnlineLicenseNoExpiryCheck: true}, "onlineExpiry"},
}

// TestFaultMatrix: each fault breaks exactly the behaviour it names and
// the correct seller breaks none.
func TestFaultMatrix(t *testing.T) {
	for _, row := range faultRows {
		for name, p := range probes {
			t.Run(row.name+"/"+name, func(t *testing.T) {
				err := p(t, start(t, row.faults))
				switch {
				case name == row.breaks && err == nil:
					t.Errorf("fault %s does not break %s", row.name, name)
				case name != row.breaks && err != nil:
					t.Errorf("fault %s breaks %s too: %v", row.name, name, err)
				}
			})
		}
	}
}

// TestFaultEffects pins down what each fault does instead.
func TestFaultEffects(t *testing.T) {
	t.Run("SkipSignature", func(t *testing.T) {
		e := start(t, Faults{SkipSignature: true})
		body := []byte(`{"activity":"newInstance","businessId":"b","orderId":"CS1","orderLineId":"CS1-000001"}`)
		stale := signedURL(e.srv.URL, testKey, "n", millis(time.Now().Add(-time.Hour)), body)
		for i, u := range []string{e.srv.URL, e.srv.URL + "?signature=00&timestamp=1&nonce=x", stale, stale} {
			r := e.send(http.MethodPost, u, body)
			checkWire(t, r)
			if r.code != protocol.CodeSuccess {
				t.Errorf("call %d: resultCode %s, want 000000", i, r.code)
			}
		}
	})
	t.Run("NewInstanceEveryCall", func(t *testing.T) {
		e := start(t, Faults{NewInstanceEveryCall: true})
		a, b := e.create("CS1"), e.create("CS1")
		if a == b || e.s.Instances() != 2 {
			t.Errorf("instanceIds %q, %q and %d instances, want two different", a, b, e.s.Instances())
		}
	})
	t.Run("NoBodySign", func(t *testing.T) {
		e := start(t, Faults{NoBodySign: true})
		r := e.call(queryInstance("nope"))
		if v, ok := r.header[sign.BodySignHeader]; ok {
			t.Errorf("Body-Sign %q present", v)
		}
		if r.code != protocol.CodeInstanceNotFound {
			t.Errorf("resultCode %s, want 000003", r.code)
		}
	})
	t.Run("ReleaseTwiceFails", func(t *testing.T) {
		e := start(t, Faults{ReleaseTwiceFails: true})
		id := e.create("CS1")
		mustCode(t, e.call(releaseInstance(id)), protocol.CodeSuccess)
		mustCode(t, e.call(releaseInstance(id)), protocol.CodeInstanceNotFound)
	})
	t.Run("UnknownInstanceOK", func(t *testing.T) {
		e := start(t, Faults{UnknownInstanceOK: true})
		for _, body := range []map[string]any{
			refreshInstance("nope", "RENEWAL", "20300101000000"), updateStatus("nope", "UNFREEZE"), releaseInstance("nope"),
		} {
			if r := e.call(body); r.code != protocol.CodeSuccess {
				t.Errorf("%s: resultCode %s, want 000000", body["activity"], r.code)
			}
		}
		// Only those three: the others still know an unknown ID.
		for _, body := range []map[string]any{queryInstance("nope"), upgradeInstance("nope"), changeCheck("nope")} {
			if r := e.call(body); r.code != protocol.CodeInstanceNotFound {
				t.Errorf("%s: resultCode %s, want 000003", body["activity"], r.code)
			}
		}
	})
	t.Run("SkipValidation", func(t *testing.T) {
		e := start(t, Faults{SkipValidation: true})
		m := newInstance("CS1", "CS1-000001")
		delete(m, "orderId")
		r := e.call(m)
		if r.code != protocol.CodeSuccess || r.instanceID == "" || e.s.Instances() != 1 {
			t.Errorf("newInstance without orderId: %s, instanceId %q, %d instances; want an instance", r.code, r.instanceID, e.s.Instances())
		}
		for _, body := range []map[string]any{
			{"activity": "noSuchThing"}, {"instanceId": "x"}, queryInstance(strings.Repeat("x,", 101)),
			updateStatus("nope", "PAUSE"), {"activity": "orderNotify"},
		} {
			if r := e.call(body); r.code != protocol.CodeSuccess {
				t.Errorf("%v: resultCode %s, want 000000", body, r.code)
			}
		}
		if r := e.postRaw([]byte(`{"activity":`)); r.code != protocol.CodeInvalidParam {
			t.Errorf("malformed JSON: resultCode %s, want 000002", r.code)
		}
	})
	t.Run("Async", func(t *testing.T) {
		e := start(t, Faults{Async: true})
		r := e.call(newInstance("CS1", "CS1-000001"))
		checkWire(t, r)
		mustCode(t, r, protocol.CodeProcessing)
		id := r.instanceID
		if again := e.call(newInstance("CS1", "CS1-000001")); again.code != protocol.CodeProcessing || again.instanceID != id {
			t.Errorf("repeat: %s %q, want 000004 %q", again.code, again.instanceID, id)
		}
		for i, want := range []protocol.ResultCode{protocol.CodeProcessing, protocol.CodeProcessing, protocol.CodeSuccess, protocol.CodeSuccess} {
			q := e.call(queryInstance(id))
			checkWire(t, q)
			if q.code != want || len(q.info) != 1 || (q.info[0].AppInfo != nil) != (want == protocol.CodeSuccess) {
				t.Errorf("query %d: %s %s, want %s with appInfo only on success", i+1, q.code, q.raw, want)
			}
		}
	})
	t.Run("WrongContentType", func(t *testing.T) {
		e := start(t, Faults{WrongContentType: true})
		r := e.call(queryInstance("nope"))
		if ct := r.header.Get("Content-Type"); ct != "text/plain" {
			t.Errorf("Content-Type %q, want text/plain", ct)
		}
		if err := sign.VerifyBodySign(testKey, r.header.Get(sign.BodySignHeader), r.raw); err != nil {
			t.Errorf("Body-Sign: %v", err)
		}
	})
}

// TestSlow: every answer, an authentication failure included, waits at
// least Slow and is still correct.
func TestSlow(t *testing.T) {
	const slow = 150 * time.Millisecond
	e := start(t, Faults{Slow: slow})
	for _, c := range []struct {
		url  string
		want protocol.ResultCode
	}{
		{signedURL(e.srv.URL, testKey, "n1", nowMillis(), []byte(`{"activity":"queryInstance","instanceId":"x"}`)), protocol.CodeInstanceNotFound},
		{e.srv.URL, protocol.CodeAuthFailed},
	} {
		begin := time.Now()
		r := e.send(http.MethodPost, c.url, []byte(`{"activity":"queryInstance","instanceId":"x"}`))
		if took := time.Since(begin); took < slow {
			t.Errorf("answered after %v, want at least %v", took, slow)
		}
		checkWire(t, r)
		mustCode(t, r, c.want)
	}
}

// TestSlowCallerGone: a caller that gives up does not leave the handler
// sleeping; the server shuts down promptly (Close waits for handlers).
func TestSlowCallerGone(t *testing.T) {
	e := start(t, Faults{Slow: time.Hour})
	client := &http.Client{Timeout: 50 * time.Millisecond}
	_, err := client.Post(e.srv.URL, "application/json", strings.NewReader(`{}`))
	var ue interface{ Timeout() bool }
	if !errors.As(err, &ue) || !ue.Timeout() {
		t.Fatalf("post: %v, want a client timeout", err)
	}
	e.srv.Close() // would block for an hour if the sleep ignored the caller
}
