package testseller

import (
	"crypto/rand"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/koobridge/koobridge/emulator/mockapi"
	"github.com/koobridge/koobridge/internal/openapi/openapitest"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
)

const (
	testLicenseKey = "TestLicenseKey-a1b2c3d4e5f60718"
	testAK         = "TESTSELLERAK0001"
	testSK         = "testseller-sk-0123456789abcdef"
)

// uploadWait bounds the wait for an upload the seller makes in the
// background; generous for a loaded machine.
const uploadWait = 5 * time.Second

// license sends fields to the license path signed with key; the answer's
// Body-Sign must be made with the license key.
func (e env) license(key string, fields map[string]any) reply {
	e.t.Helper()
	body := marshal(e.t, fields)
	return e.sendWith(http.MethodPost, signedURL(e.srv.URL+"/license", key, rand.Text(), nowMillis(), body), body, nil, testLicenseKey)
}

// withOpenAPI gives the seller a mocked Open API and returns it.
func (e env) withOpenAPI() *openapitest.Server {
	e.t.Helper()
	api := openapitest.NewServer(e.t, testAK, testSK)
	e.s.WithOpenAPI(api.URL(), testAK, testSK)
	return api
}

func newCode() string { return "PL" + rand.Text()[:14] }

func refreshCode(code, orderID, expire string) map[string]any {
	return map[string]any{"activity": "refreshLicenseCode", "license": code, "orderId": orderID, "orderLineId": orderID + "-000001",
		"scene": "RENEWAL", "expireTime": expire, "testFlag": "0"}
}

func codeStatus(code, status string) map[string]any {
	return map[string]any{"activity": "updateLicenseCodeStatus", "license": code, "status": status, "testFlag": "0"}
}

func releaseCode(code string) map[string]any {
	return map[string]any{"activity": "releaseLicenseCode", "license": code, "testFlag": "0"}
}

// onlineInstance makes an online-license instance for the order's first
// line through the license path and returns its ID.
func (e env) onlineInstance(orderID string) string {
	e.t.Helper()
	r := e.license(testLicenseKey, newInstance(orderID, orderID+"-000001"))
	if r.code != protocol.CodeSuccess && r.code != protocol.CodeProcessing || r.instanceID == "" {
		e.t.Fatalf("newInstance %s at the license path: %s %q", orderID, r.code, r.msg)
	}
	return r.instanceID
}

// apply is a getLicenseAsync of instance for event; an empty expire
// leaves expireTime out.
func apply(instanceID, event, fingerprint, expire string) map[string]any {
	m := map[string]any{"activity": "getLicenseAsync", "instanceId": instanceID, "eventId": event,
		"effectiveTime": "2026-10-27 10:30:15 z", "deviceFingerprint": fingerprint, "testFlag": "0"}
	if expire != "" {
		m["expireTime"] = expire
	}
	return m
}

// uploads waits until the mocked Open API has recorded an upload for
// event, or uploadWait has passed, and returns those recorded.
func uploads(api *openapitest.Server, event string) []mockapi.LicenseUpload {
	deadline := time.Now().Add(uploadWait)
	for {
		var out []mockapi.LicenseUpload
		for _, u := range api.LicenseUploads() {
			if u.EventID == event {
				out = append(out, u)
			}
		}
		if len(out) > 0 || time.Now().After(deadline) {
			return out
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// newApplication makes an online-license instance and registers a
// license application for it with the mocked Open API.
func newApplication(t *testing.T, e env, api *openapitest.Server, orderID string) (instanceID, event string) {
	t.Helper()
	instanceID = e.onlineInstance(orderID)
	event = "EV" + rand.Text()
	if err := api.AddLicenseEvent(mockapi.LicenseEvent{EventID: event, InstanceID: instanceID}); err != nil {
		t.Fatal(err)
	}
	return instanceID, event
}

// probeLicenseKey: a license call signed with the basic key answers
// 000001, one signed with the license key does not. A seller that
// accepts any signature fails probeSignature instead.
func probeLicenseKey(t *testing.T, e env) error {
	body := codeStatus(newCode(), "FREEZE")
	if e.license("made-up-key", body).code != protocol.CodeAuthFailed {
		return nil
	}
	if r := e.license(testKey, body); r.code != protocol.CodeAuthFailed {
		return fmt.Errorf("a license call signed with the basic key answered %s, want 000001", r.code)
	}
	if r := e.license(testLicenseKey, body); r.code == protocol.CodeAuthFailed {
		return fmt.Errorf("a license call signed with the license key answered 000001")
	}
	return nil
}

// probeLicenseBodySign: a license answer's Body-Sign, when there is one,
// is made with the license key. A missing one fails probeBodySign.
func probeLicenseBodySign(t *testing.T, e env) error {
	r := e.license(testLicenseKey, codeStatus(newCode(), "FREEZE"))
	h := r.header.Get(sign.BodySignHeader)
	if h == "" {
		return nil
	}
	return sign.VerifyBodySign(testLicenseKey, h, r.raw)
}

// probeLicenseUnknownCode: a freeze of a code never heard of is recorded,
// 000000.
func probeLicenseUnknownCode(t *testing.T, e env) error {
	if r := e.license(testLicenseKey, codeStatus(newCode(), "FREEZE")); r.code != protocol.CodeSuccess {
		return fmt.Errorf("FREEZE of a code first heard of answered %s, want 000000", r.code)
	}
	return nil
}

// probeLicenseIdempotency: a renewal repeated, repeated late after a
// newer one, a freeze and a release repeated each answer as the first.
func probeLicenseIdempotency(t *testing.T, e env) error {
	code := newCode()
	older := refreshCode(code, "CSOLD", "20300101000000")
	steps := []struct {
		what string
		body map[string]any
		same int // the step whose answer this one must repeat; -1 none
	}{
		{"renewal", older, -1},
		{"renewal repeated", older, 0},
		{"newer renewal", refreshCode(code, "CSNEW", "20310101000000"), -1},
		{"older renewal late", older, 0},
		{"freeze", codeStatus(code, "FREEZE"), -1},
		{"freeze repeated", codeStatus(code, "FREEZE"), 4},
		{"release", releaseCode(code), -1},
		{"release repeated", releaseCode(code), 6},
	}
	codes := make([]protocol.ResultCode, len(steps))
	for i, s := range steps {
		codes[i] = e.license(testLicenseKey, s.body).code
		if s.same >= 0 && codes[i] != codes[s.same] {
			return fmt.Errorf("%s answered %s, the first %s", s.what, codes[i], codes[s.same])
		}
	}
	return nil
}

// probeLicenseDebugApart: a debug (testFlag 1) release of a code leaves
// the real code of the same name alone: a real renewal of it afterwards
// answers 000000. The real code is recorded first, so that a seller
// refusing codes it never heard of does not fail here.
func probeLicenseDebugApart(t *testing.T, e env) error {
	code := newCode()
	if e.license(testLicenseKey, refreshCode(code, "CSAPART1", "20300101000000")).code != protocol.CodeSuccess {
		return nil // probeLicenseIdempotency's or probeLicenseUnknownCode's
	}
	debug := releaseCode(code)
	debug["testFlag"] = "1"
	e.license(testLicenseKey, debug)
	if r := e.license(testLicenseKey, refreshCode(code, "CSAPART2", "20310101000000")); r.code != protocol.CodeSuccess {
		return fmt.Errorf("a real renewal after a debug release of the same code answered %s %q, want 000000", r.code, r.msg)
	}
	return nil
}

// probeOnlineUpload: getLicenseAsync is taken and the license uploaded as
// a FILE the mocked Open API accepts (its sha256 matching).
func probeOnlineUpload(t *testing.T, e env) error {
	api := e.withOpenAPI()
	id, event := newApplication(t, e, api, "CSOLUP")
	if r := e.license(testLicenseKey, apply(id, event, "AA:BB|D1||C1", "2030-01-01 00:00:00 z")); r.code != protocol.CodeProcessing {
		return fmt.Errorf("getLicenseAsync answered %s %q, want 000004", r.code, r.msg)
	}
	ups := uploads(api, event)
	switch {
	case len(ups) == 0:
		return fmt.Errorf("no license uploaded for event %s within %v", event, uploadWait)
	case !ups[0].Accepted:
		return fmt.Errorf("the upload was refused: %s %s", ups[0].Code, ups[0].Message)
	case ups[0].Type != protocol.UploadTypeFile || !strings.Contains(string(ups[0].Content), "event="+event):
		return fmt.Errorf("the upload %+v does not carry the event's license", ups[0])
	}
	return nil
}

// probeOnlineRepeat: a repeated getLicenseAsync is answered as the first
// and uploads no other license.
func probeOnlineRepeat(t *testing.T, e env) error {
	api := e.withOpenAPI()
	id, event := newApplication(t, e, api, "CSOLRE")
	body := apply(id, event, "AA:BB|D1||C1", "2030-01-01 00:00:00 z")
	first := e.license(testLicenseKey, body).code
	if len(uploads(api, event)) == 0 {
		return nil // no upload at all: probeOnlineUpload's
	}
	if again := e.license(testLicenseKey, body).code; again != first {
		return fmt.Errorf("the repeated getLicenseAsync answered %s, the first %s", again, first)
	}
	var shas []string
	for _, u := range api.LicenseUploads() {
		if u.EventID == event && !slices.Contains(shas, u.SHA256) {
			shas = append(shas, u.SHA256)
		}
	}
	if len(shas) > 1 {
		return fmt.Errorf("%d different licenses were uploaded for one application", len(shas))
	}
	return nil
}

// probeOnlineExpiry: a yearly instance's getLicenseAsync without
// expireTime answers 000902 (the order's charging mode from Query Order:
// the debug order MOCKPERIODYEARNEW is a yearly one).
func probeOnlineExpiry(t *testing.T, e env) error {
	e.withOpenAPI()
	id := e.onlineInstance(mockapi.MockPeriodYearNew)
	if r := e.license(testLicenseKey, apply(id, "EV"+rand.Text(), "AA:BB|D1||C1", "")); r.code != protocol.CodeExpiryRequired {
		return fmt.Errorf("a yearly getLicenseAsync without expireTime answered %s, want 000902", r.code)
	}
	return nil
}

// TestLicenseCodes pins down the license-code calls of the correct
// seller: codes first heard of recorded, renewals absolute and once per
// order line, state-based freeze and release, a released code refusing
// changes, debug codes kept apart; every answer signed with the license
// key.
func TestLicenseCodes(t *testing.T) {
	e := start(t, Faults{})
	code := newCode()
	steps := []struct {
		what string
		body map[string]any
		want protocol.ResultCode
	}{
		{"renewal of a code first heard of", refreshCode(code, "CS1", "20300101000000"), protocol.CodeSuccess},
		{"the same renewal with another expireTime", refreshCode(code, "CS1", "20310101000000"), protocol.CodeInvalidParam},
		{"a debug freeze of the code", map[string]any{"activity": "updateLicenseCodeStatus", "license": code, "status": "FREEZE", "testFlag": "1"}, protocol.CodeSuccess},
		{"freeze", codeStatus(code, "FREEZE"), protocol.CodeSuccess},
		{"unfreeze", codeStatus(code, "UNFREEZE"), protocol.CodeSuccess},
		{"unsubscribed renewal period", map[string]any{"activity": "refreshLicenseCode", "license": code, "orderId": "CS2",
			"orderLineId": "CS2-000001", "scene": "UNSUBSCRIBE_RENEWAL_PERIOD", "expireTime": "20290101000000"}, protocol.CodeSuccess},
		{"release", releaseCode(code), protocol.CodeSuccess},
		{"release again", releaseCode(code), protocol.CodeSuccess},
		{"renewal of a released code", refreshCode(code, "CS3", "20320101000000"), protocol.CodeInvalidParam},
		{"freeze of a released code", codeStatus(code, "FREEZE"), protocol.CodeInvalidParam},
		{"the first renewal late", refreshCode(code, "CS1", "20300101000000"), protocol.CodeSuccess},
	}
	for _, s := range steps {
		r := e.license(testLicenseKey, s.body)
		checkWire(t, r)
		if r.code != s.want {
			t.Errorf("%s: %s %q, want %s", s.what, r.code, r.msg, s.want)
		}
	}
	e.s.mu.Lock()
	real, debug := *e.s.lic.codes[codeKey{code, false}], *e.s.lic.codes[codeKey{code, true}]
	e.s.mu.Unlock()
	want := time.Date(2029, 1, 1, 0, 0, 0, 0, time.UTC)
	if !real.expiry.Equal(want) || real.frozen || !real.released || !debug.frozen || debug.released {
		t.Errorf("code %+v, debug code %+v; want the real one expiring %v, not frozen, released; the debug one frozen only", real, debug, want)
	}
}

// TestLicenseRefusals: authentication and validation at the license path,
// before anything is recorded; under SkipValidation the validation
// refusals but malformed JSON answer 000000, and SkipSignature takes
// anything.
func TestLicenseRefusals(t *testing.T) {
	code := newCode()
	missing := refreshCode(code, "CS1", "20300101000000")
	delete(missing, "license")
	tests := []struct {
		name     string
		key      string
		body     string
		want     protocol.ResultCode
		skipping protocol.ResultCode // under SkipValidation
	}{
		{"signed with the basic key", testKey, string(marshal(t, codeStatus(code, "FREEZE"))), protocol.CodeAuthFailed, protocol.CodeAuthFailed},
		{"signed with the Kit key", testKitKey, string(marshal(t, codeStatus(code, "FREEZE"))), protocol.CodeAuthFailed, protocol.CodeAuthFailed},
		{"missing license", testLicenseKey, string(marshal(t, missing)), protocol.CodeInvalidParam, protocol.CodeSuccess},
		{"bad expireTime", testLicenseKey, string(marshal(t, refreshCode(code, "CS1", "2030-01-01 00:00:00"))), protocol.CodeInvalidParam, protocol.CodeSuccess},
		{"unknown status", testLicenseKey, string(marshal(t, codeStatus(code, "PAUSE"))), protocol.CodeInvalidParam, protocol.CodeSuccess},
		{"unknown activity", testLicenseKey, `{"activity":"noSuchLicenseActivity","license":"` + code + `"}`, protocol.CodeInvalidParam, protocol.CodeSuccess},
		{"duplicate key", testLicenseKey, `{"activity":"releaseLicenseCode","license":"A","license":"B"}`, protocol.CodeInvalidParam, protocol.CodeInvalidParam},
		{"license as an object", testLicenseKey, `{"activity":"releaseLicenseCode","license":{"code":"A"}}`, protocol.CodeInvalidParam, protocol.CodeInvalidParam},
		{"orderNotify at the license path", testLicenseKey, string(marshal(t, orderNotify("CS1", "CS1-000001", "0"))), protocol.CodeInvalidParam, protocol.CodeInvalidParam},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, f := range []Faults{{}, {SkipValidation: true}} {
				e := start(t, f)
				body := []byte(tt.body)
				r := e.sendWith(http.MethodPost, signedURL(e.srv.URL+"/api/license", tt.key, rand.Text(), nowMillis(), body), body, nil, testLicenseKey)
				checkWire(t, r)
				want := tt.want
				if f.SkipValidation {
					want = tt.skipping
				}
				if r.code != want {
					t.Errorf("faults %+v: %s %q, want %s", f, r.code, r.msg, want)
				}
				e.s.mu.Lock()
				n := len(e.s.lic.codes)
				e.s.mu.Unlock()
				if n != 0 {
					t.Errorf("faults %+v: %d codes recorded by a refused call", f, n)
				}
			}
		})
	}
	e := start(t, Faults{SkipSignature: true})
	body := marshal(t, releaseCode(code))
	if r := e.send(http.MethodPost, e.srv.URL+"/license?signature=00&timestamp=1&nonce=x", body); r.code != protocol.CodeSuccess {
		t.Errorf("SkipSignature: %s, want 000000", r.code)
	}
	if r := e.send(http.MethodPut, signedURL(e.srv.URL+"/license", testLicenseKey, rand.Text(), nowMillis(), body), body); r.code != protocol.CodeInvalidParam {
		t.Errorf("a PUT at the license path answered %s, want 000002", r.code)
	}
}

// TestOnlineLicense pins down getLicenseAsync: the refusals (000003,
// 000901 frozen and released, 000902, 000002 for one application made
// with other values, 000005 without an Open API) and the upload of the
// license, once, with the Open API's calls APIG-signed.
func TestOnlineLicense(t *testing.T) {
	t.Run("without Open API", func(t *testing.T) {
		e := start(t, Faults{})
		id := e.onlineInstance("CSNOAPI")
		if r := e.license(testLicenseKey, apply(id, "EV1", "", "2030-01-01 00:00:00 z")); r.code != protocol.CodeInternal || !strings.Contains(r.msg, "Open API") {
			t.Errorf("getLicenseAsync without an Open API: %s %q, want 000005", r.code, r.msg)
		}
	})
	e := start(t, Faults{})
	api := e.withOpenAPI()
	id, event := newApplication(t, e, api, "CSOL")
	frozen, released := e.onlineInstance("CSFROZEN"), e.onlineInstance("CSGONE")
	mustCode(t, e.license(testLicenseKey, updateStatus(frozen, "FREEZE")), protocol.CodeSuccess)
	mustCode(t, e.license(testLicenseKey, releaseInstance(released)), protocol.CodeSuccess)
	expire := "2030-01-01 00:00:00 z"
	for _, c := range []struct {
		what string
		body map[string]any
		want protocol.ResultCode
		msg  string
	}{
		{"unknown instance", apply("nope", "EV2", "", expire), protocol.CodeInstanceNotFound, "does not exist"},
		{"frozen instance", apply(frozen, "EV3", "", expire), protocol.CodeOutsideOrderValidity, "frozen"},
		{"released instance", apply(released, "EV4", "", expire), protocol.CodeOutsideOrderValidity, "released"},
		{"no expireTime on a yearly order", apply(e.onlineInstance(mockapi.MockPeriodYearNew), "EV5", "", ""), protocol.CodeExpiryRequired, "expireTime"},
		{"no expireTime on a one-time order", apply(e.onlineInstance(mockapi.MockOneTimeNew), "EV6", "", ""), protocol.CodeProcessing, "accepted"},
		{"taken", apply(id, event, "FP", expire), protocol.CodeProcessing, "accepted"},
		{"repeated", apply(id, event, "FP", expire), protocol.CodeProcessing, "accepted"},
		{"the same application for another validity", apply(id, event, "FP", "2031-01-01 00:00:00 z"), protocol.CodeInvalidParam, "another"},
	} {
		r := e.license(testLicenseKey, c.body)
		checkWire(t, r)
		if r.code != c.want || !strings.Contains(r.msg, c.msg) {
			t.Errorf("%s: %s %q, want %s saying %q", c.what, r.code, r.msg, c.want, c.msg)
		}
	}
	ups := uploads(api, event)
	if len(ups) != 1 || !ups[0].Accepted || ups[0].Type != protocol.UploadTypeFile || ups[0].FileName != "license.lic" {
		t.Fatalf("uploads %+v, want one FILE accepted", ups)
	}
	lic := string(ups[0].Content)
	for _, want := range []string{"instance=" + id, "event=" + event, "until=" + expire} {
		if !strings.Contains(lic, want) {
			t.Errorf("license %q lacks %q", lic, want)
		}
	}
	if strings.Contains(lic, "FP") {
		t.Errorf("license %q carries the device fingerprint itself", lic)
	}
	for _, q := range api.Requests() {
		if q.Status == http.StatusUnauthorized {
			t.Errorf("the mocked Open API refused %s %s: the seller's APIG signature", q.Method, q.Path)
		}
	}
}

// TestLicenseFaultEffects pins down what each license fault does instead.
func TestLicenseFaultEffects(t *testing.T) {
	t.Run("LicenseBasicKeyBodySign", func(t *testing.T) {
		e := start(t, Faults{LicenseBasicKeyBodySign: true})
		r := e.license(testLicenseKey, codeStatus(newCode(), "FREEZE"))
		if err := sign.VerifyBodySign(testKey, r.header.Get(sign.BodySignHeader), r.raw); err != nil || r.code != protocol.CodeSuccess {
			t.Errorf("%s, Body-Sign with the basic key: %v", r.code, err)
		}
	})
	t.Run("LicenseAnyKey", func(t *testing.T) {
		e := start(t, Faults{LicenseAnyKey: true})
		for _, key := range []string{testKey, testLicenseKey} {
			mustCode(t, e.license(key, codeStatus(newCode(), "FREEZE")), protocol.CodeSuccess)
		}
		mustCode(t, e.license(testKitKey, codeStatus(newCode(), "FREEZE")), protocol.CodeAuthFailed)
	})
	t.Run("LicenseUnknownCodeRefused", func(t *testing.T) {
		e := start(t, Faults{LicenseUnknownCodeRefused: true})
		code := newCode()
		for _, body := range []map[string]any{refreshCode(code, "CS1", "20300101000000"), codeStatus(code, "FREEZE"), releaseCode(code)} {
			mustCode(t, e.license(testLicenseKey, body), protocol.CodeInstanceNotFound)
		}
	})
	t.Run("LicenseRepeatDiffers", func(t *testing.T) {
		e := start(t, Faults{LicenseRepeatDiffers: true})
		code := newCode()
		for _, body := range []map[string]any{refreshCode(code, "CS1", "20300101000000"), codeStatus(code, "FREEZE"), releaseCode(code)} {
			mustCode(t, e.license(testLicenseKey, body), protocol.CodeSuccess)
			mustCode(t, e.license(testLicenseKey, body), protocol.CodeInternal)
		}
	})
	t.Run("LicenseStaleRenewalRefused", func(t *testing.T) {
		e := start(t, Faults{LicenseStaleRenewalRefused: true})
		code := newCode()
		older := refreshCode(code, "CS1", "20300101000000")
		mustCode(t, e.license(testLicenseKey, older), protocol.CodeSuccess)
		mustCode(t, e.license(testLicenseKey, older), protocol.CodeSuccess)
		mustCode(t, e.license(testLicenseKey, refreshCode(code, "CS2", "20310101000000")), protocol.CodeSuccess)
		mustCode(t, e.license(testLicenseKey, older), protocol.CodeInvalidParam)
	})
	t.Run("LicenseDebugMixed", func(t *testing.T) {
		e := start(t, Faults{LicenseDebugMixed: true})
		code := newCode()
		debug := releaseCode(code)
		debug["testFlag"] = "1"
		mustCode(t, e.license(testLicenseKey, debug), protocol.CodeSuccess)
		mustCode(t, e.license(testLicenseKey, refreshCode(code, "CS1", "20300101000000")), protocol.CodeInvalidParam)
		e.s.mu.Lock()
		_, apart := e.s.lic.codes[codeKey{code, true}]
		e.s.mu.Unlock()
		if apart {
			t.Error("the debug release recorded a debug code of its own")
		}
	})
	t.Run("OnlineLicenseWrongSHA256", func(t *testing.T) {
		e := start(t, Faults{OnlineLicenseWrongSHA256: true})
		api := e.withOpenAPI()
		id, event := newApplication(t, e, api, "CSSHA")
		mustCode(t, e.license(testLicenseKey, apply(id, event, "", "2030-01-01 00:00:00 z")), protocol.CodeProcessing)
		ups := uploads(api, event)
		if len(ups) != 1 || ups[0].Accepted || ups[0].Code != protocol.CBCInvalidParam || !strings.Contains(ups[0].Message, "sha256") {
			t.Errorf("uploads %+v, want one refused for its sha256 (and not tried again)", ups)
		}
	})
	t.Run("OnlineLicenseRegenerates", func(t *testing.T) {
		e := start(t, Faults{OnlineLicenseRegenerates: true})
		api := e.withOpenAPI()
		id, event := newApplication(t, e, api, "CSREGEN")
		body := apply(id, event, "", "2030-01-01 00:00:00 z")
		mustCode(t, e.license(testLicenseKey, body), protocol.CodeProcessing)
		if ups := uploads(api, event); len(ups) != 1 || !ups[0].Accepted {
			t.Fatalf("first uploads %+v", ups)
		}
		mustCode(t, e.license(testLicenseKey, body), protocol.CodeProcessing)
		ups := api.LicenseUploads()
		if len(ups) != 2 || ups[1].Code != mockapi.UploadDuplicateCode || ups[1].SHA256 == ups[0].SHA256 {
			t.Errorf("uploads %+v, want the repeat's other license refused 91381038", ups)
		}
	})
	t.Run("UnknownInstanceOK", func(t *testing.T) {
		e := start(t, Faults{UnknownInstanceOK: true})
		e.withOpenAPI()
		mustCode(t, e.license(testLicenseKey, apply("nope", "EV1", "", "2030-01-01 00:00:00 z")), protocol.CodeProcessing)
	})
	t.Run("OnlineLicenseNoExpiryCheck", func(t *testing.T) {
		e := start(t, Faults{OnlineLicenseNoExpiryCheck: true})
		api := e.withOpenAPI()
		mustCode(t, e.license(testLicenseKey, apply(e.onlineInstance(mockapi.MockPeriodYearNew), "EV1", "", "")), protocol.CodeProcessing)
		for _, q := range api.Requests() {
			if q.Path == queryOrderPath {
				t.Errorf("Query Order was called: %+v", q)
			}
		}
	})
}

// TestUploadRetried: an upload that meets a 5xx is tried again; one
// refused for what it carries is not.
func TestUploadRetried(t *testing.T) {
	e := start(t, Faults{})
	api := e.withOpenAPI()
	api.SetUploadFailures(2, "")
	id, event := newApplication(t, e, api, "CSRETRY")
	mustCode(t, e.license(testLicenseKey, apply(id, event, "", "2030-01-01 00:00:00 z")), protocol.CodeProcessing)
	deadline := time.Now().Add(uploadWait)
	for {
		ev, _ := api.LicenseEvent(event)
		if ev.Uploaded {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not uploaded after two failures: %+v", api.LicenseUploads())
		}
		time.Sleep(10 * time.Millisecond)
	}
	var codes []string
	for _, u := range api.LicenseUploads() {
		codes = append(codes, u.Code)
	}
	if !slices.Equal(codes, []string{protocol.CBCInternalError, protocol.CBCInternalError, protocol.CBCSuccess}) {
		t.Errorf("upload answers %q, want two failures then the acceptance", codes)
	}
}
