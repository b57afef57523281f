package conformance

import (
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"unicode/utf8"

	"github.com/koobridge/koobridge/emulator"
	"github.com/koobridge/koobridge/internal/testseller"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
)

// orderIDs are the order profile's cases, in run order.
var orderIDs = []string{"order/notify", "order/repeat", "order/concurrent", "order/missing-test-flag", "order/wrong-key", "order/missing-order-line"}

// TestOrderProfilePasses: the correct seller passes the order profile;
// each case made the calls it says.
func TestOrderProfilePasses(t *testing.T) {
	r := runAgainst(t, testseller.Faults{}, Config{Profile: ProfileOrder})
	if got, want := caseIDs(r), append(slices.Clone(orderIDs), "edge/deadline"); !slices.Equal(got, want) {
		t.Fatalf("case IDs %q, want %q", got, want)
	}
	if !r.Passed() || len(r.Skipped()) != 0 || r.Profile != ProfileOrder {
		t.Fatalf("a correct seller: passed %v, skipped %d, profile %q:%s", r.Passed(), len(r.Skipped()), r.Profile, describe(r))
	}
	wantCalls := map[string]int{"order/notify": 1, "order/repeat": 1, "order/concurrent": concurrentRepeats,
		"order/missing-test-flag": 1, "order/wrong-key": 2, "order/missing-order-line": 1}
	for id, n := range wantCalls {
		c, _ := r.Case(id)
		if len(c.Exchanges) != n {
			t.Errorf("%s: %d calls, want %d", id, len(c.Exchanges), n)
		}
		for _, x := range c.Exchanges {
			if x.Interface != protocol.ActivityOrderNotify || !strings.Contains(x.Request.Body, `"activity":"orderNotify"`) {
				t.Errorf("%s sent %s %s", id, x.Interface, x.Request.Body)
			}
			if x.Response == nil || sign.VerifyBodySign(testGeneralKey, x.Response.Header[sign.BodySignHeader], []byte(x.Response.Body)) != nil {
				t.Errorf("%s: the answer is not signed with the general key", id)
			}
		}
		if c.Note != "" {
			t.Errorf("%s: note %q", id, c.Note)
		}
	}
	notify, _ := r.Case("order/notify")
	if b := notify.Exchanges[0].Request.Body; !strings.Contains(b, `"testFlag":"0"`) || !strings.Contains(b, `"orderLineId":"CS`) {
		t.Errorf("order/notify sent %s, want a real order with testFlag 0", b)
	}
	if c, _ := r.Case("order/missing-test-flag"); strings.Contains(c.Exchanges[0].Request.Body, "testFlag") {
		t.Errorf("order/missing-test-flag sent %s", c.Exchanges[0].Request.Body)
	}
	if c, _ := r.Case("order/missing-order-line"); strings.Contains(c.Exchanges[0].Request.Body, "orderLineId") {
		t.Errorf("order/missing-order-line sent %s", c.Exchanges[0].Request.Body)
	}
}

// TestOrderFaultsNamed: each order-notification fault fails exactly the
// order cases that check that behaviour, with the rule that names it.
func TestOrderFaultsNamed(t *testing.T) {
	bodySign, resultCode := string(emulator.RuleBodySign), string(emulator.RuleResultCode)
	tests := []struct {
		name    string
		faults  testseller.Faults
		want    map[string][]string
		message map[string]string // case → text its first failure has
	}{
		{"OrderNotifyBasicKeyBodySign", testseller.Faults{OrderNotifyBasicKeyBodySign: true}, map[string][]string{
			"order/notify": {bodySign}, "order/repeat": {bodySign}, "order/concurrent": {bodySign},
			"order/missing-test-flag": {bodySign}, "order/wrong-key": {bodySign}, "order/missing-order-line": {bodySign},
		}, map[string]string{"order/notify": "it is made with the basic key; answers to orderNotify are signed with the general key"}},
		{"OrderNotifyAnyKey", testseller.Faults{OrderNotifyAnyKey: true}, map[string][]string{
			"order/wrong-key": {RuleGeneralKey},
		}, map[string]string{"order/wrong-key": "the seller accepted an orderNotify signed with the basic key: it verifies order notifications with the basic-interface key"}},
		{"OrderNotifyOptionalTestFlag", testseller.Faults{OrderNotifyOptionalTestFlag: true}, map[string][]string{
			"order/missing-test-flag": {RuleValidation},
		}, map[string]string{"order/missing-test-flag": "the seller accepted an orderNotify without testFlag"}},
		{"OrderNotifyRepeatDiffers", testseller.Faults{OrderNotifyRepeatDiffers: true}, map[string][]string{
			"order/repeat":     {RuleIdempotentOrderNotify},
			"order/concurrent": {RuleIdempotentOrderNotify, resultCode},
		}, map[string]string{"order/repeat": "answered 000005 (internal error), the first notification answered 000000 (success)"}},
		{"SkipSignature", testseller.Faults{SkipSignature: true}, map[string][]string{
			"order/wrong-key": {RuleGeneralKey},
		}, map[string]string{"order/wrong-key": "the seller accepted an orderNotify signed with a made-up key: it does not check the signature"}},
		{"SkipValidation", testseller.Faults{SkipValidation: true}, map[string][]string{
			"order/missing-test-flag": {RuleValidation}, "order/missing-order-line": {RuleValidation},
		}, map[string]string{"order/missing-order-line": "the seller accepted an orderNotify without orderLineId"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runAgainst(t, tt.faults, Config{Profile: ProfileOrder})
			wantRules(t, r, tt.want)
			for id, text := range tt.message {
				c, _ := r.Case(id)
				if len(c.Failures) == 0 || !strings.Contains(c.Failures[0].Message, text) {
					t.Errorf("%s: failures %+v, want the first to say %q", id, c.Failures, text)
				}
			}
		})
	}
}

// TestOrderRepeatBodiesDiffer: a repeat answered with the same code but
// another body passes, with a note that says so; a long body is cut at
// maxNoteBody characters, never inside one.
func TestOrderRepeatBodiesDiffer(t *testing.T) {
	long := strings.Repeat("已", 250)
	for _, tc := range []struct {
		name, msg, want string
	}{
		{"short", "already notified", "already notified"},
		// 36 bytes of JSON before the message: a cut at 200 bytes would
		// fall inside a three-byte character.
		{"long", long, strings.Repeat("已", maxNoteBody-36) + "…"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seller := testseller.NewWithKeys(testseller.Keys{Basic: testKey, General: testGeneralKey}, testseller.Faults{})
			var calls atomic.Int32
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if calls.Add(1) == 2 { // order/repeat: another resultMsg
					reply := []byte(`{"resultCode":"000000","resultMsg":"` + tc.msg + `"}`)
					w.Header().Set("Content-Type", "application/json")
					w.Header().Set(sign.BodySignHeader, sign.BodySign(testGeneralKey, reply))
					_, _ = w.Write(reply)
					return
				}
				seller.ServeHTTP(w, r)
			})
			r := runHandler(t, h, Config{Profile: ProfileOrder, GeneralKey: testGeneralKey})
			c, _ := r.Case("order/repeat")
			if !c.Pass || !strings.Contains(c.Note, "the answers differ") || !strings.Contains(c.Note, tc.want) || !utf8.ValidString(c.Note) {
				t.Errorf("order/repeat: pass %v, note %q, failures %+v", c.Pass, c.Note, c.Failures)
			}
		})
	}
}

// TestOrderWrongKeySkipped: with the general key equal to the basic key
// order/wrong-key is skipped and says why; the rest passes.
func TestOrderWrongKeySkipped(t *testing.T) {
	r := runHandler(t, testseller.New(testKey, testseller.Faults{}), Config{Profile: ProfileOrder})
	if !r.Passed() {
		t.Fatalf("failed:%s", describe(r))
	}
	c, _ := r.Case("order/wrong-key")
	if !c.Skipped || c.Pass || len(c.Exchanges) != 0 || !strings.Contains(c.Note, "the general key is the basic key") {
		t.Errorf("order/wrong-key: %+v", c)
	}
}

// TestOrderNotifyTarget: order notifications go to OrderNotifyTarget.
func TestOrderNotifyTarget(t *testing.T) {
	seller := testseller.NewWithKeys(testseller.Keys{Basic: testKey, General: testGeneralKey}, testseller.Faults{})
	mux := http.NewServeMux()
	mux.Handle("/produce", notImplementing(true, protocol.ActivityOrderNotify))
	mux.Handle("/notify", seller)
	r := runHandler(t, mux, Config{Profile: "onetime,order", GeneralKey: testGeneralKey, OrderNotifyTarget: "http://{host}/notify"})
	if !r.Passed() {
		t.Fatalf("failed:%s", describe(r))
	}
	for _, id := range orderIDs {
		c, _ := r.Case(id)
		for _, x := range c.Exchanges {
			if !strings.Contains(x.Request.URL, "/notify?") {
				t.Errorf("%s went to %s", id, x.Request.URL)
			}
		}
	}
	if seller.Notified() != 2 {
		t.Errorf("the seller was notified of %d order lines, want 2 (order/notify, order/concurrent)", seller.Notified())
	}
}

// TestProfileList: Config.Profile takes several profiles separated by
// commas, runs them in the usual order, and refuses unknown names with
// the list of known ones.
func TestProfileList(t *testing.T) {
	if got := Profiles(); !slices.Equal(got, []string{"period", "onetime", "ondemand", "ondemand-pkg", "order", "v1", "kit", "sso", "license", "online-license", "metering", "all"}) {
		t.Errorf("Profiles() = %q", got)
	}
	r := runAgainst(t, testseller.Faults{}, Config{Profile: "order, onetime"})
	want := []string{"onetime/purchase", "onetime/query", "onetime/release", "onetime/debug-purchase"}
	want = append(want, orderIDs...)
	want = append(want, wantIDs[slices.Index(wantIDs, "edge/repeat-new-instance"):]...)
	if got := caseIDs(r); !slices.Equal(got, want) {
		t.Fatalf("case IDs:\n got %q\nwant %q", got, want)
	}
	if !r.Passed() || r.Profile != "onetime,order" {
		t.Errorf("passed %v, profile %q:%s", r.Passed(), r.Profile, describe(r))
	}
	// The edge cases work on the one-time product.
	if c, _ := r.Case("edge/unknown-instance"); len(c.Exchanges) != 1 {
		t.Errorf("edge/unknown-instance made %d calls, want 1 (one-time)", len(c.Exchanges))
	}
	good := Config{Target: "http://127.0.0.1:1/produce", Key: "k", AK: "a", SK: "s"}
	for _, p := range []string{"period,all", "all", "", "period, ondemand-pkg", "order"} {
		c := good
		c.Profile = p
		if err := c.Validate(); err != nil {
			t.Errorf("profile %q: %v", p, err)
		}
	}
	for _, p := range []string{"yearly", "period,yearly", "period,,order", "PERIOD", "all,yearly"} {
		c := good
		c.Profile = p
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), "want one of period, onetime, ondemand, ondemand-pkg, order, v1, kit, sso, license, online-license, metering, all") {
			t.Errorf("profile %q: %v, want an error listing the profiles", p, err)
		}
	}
	c := good
	c.OrderNotifyTarget = "ftp://x"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "OrderNotifyTarget") {
		t.Errorf("OrderNotifyTarget ftp: %v", err)
	}
}
