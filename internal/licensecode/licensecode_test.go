package licensecode_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/provision"
)

const success = `{"resultCode":"000000","resultMsg":"success"}`

// TestCalls: every call, good and bad, over HTTP through the pipeline:
// the result code, a message naming the problem, and bad calls write
// nothing.
func TestCalls(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		tests := []struct {
			name, key, body string
			code, msg       string // msg: a part of resultMsg
			recorded        string // the code recorded by a good call
		}{
			{"refresh", licenseKey, refresh("PL-1", "O1", "20300101000000", "RENEWAL", ""), "000000", "success", "PL-1"},
			{"refresh cut back", licenseKey, refresh("PL-2", "O2", "20300101000000", "UNSUBSCRIBE_RENEWAL_PERIOD", ""), "000000", "success", "PL-2"},
			{"refresh with productId", licenseKey, refresh("PL-3", "O3", "20300101000000", "RENEWAL", `,"productId":"P9"`), "000000", "success", "PL-3"},
			{"refresh, 17 digits", licenseKey, refresh("PL-4", "O4", "20300101000000000", "RENEWAL", ""), "000000", "success", "PL-4"},
			{"freeze", licenseKey, status("PL-5", "FREEZE", ""), "000000", "success", "PL-5"},
			{"unfreeze", licenseKey, status("PL-6", "UNFREEZE", `,"testFlag":"0"`), "000000", "success", "PL-6"},
			{"release", licenseKey, release("PL-7", ""), "000000", "success", "PL-7"},
			{"release of an unsubscribe", licenseKey, release("PL-8", `,"orderId":"U8","orderLineId":"U8-1"`), "000000", "success", "PL-8"},

			{"refresh without expireTime", licenseKey, `{"activity":"refreshLicenseCode","license":"BAD","orderId":"O","orderLineId":"L","scene":"RENEWAL"}`, "000002", "expireTime", ""},
			{"refresh with a bad expireTime", licenseKey, refresh("BAD", "O", "2030-01-01", "RENEWAL", ""), "000002", "expireTime", ""},
			{"refresh without orderId", licenseKey, `{"activity":"refreshLicenseCode","license":"BAD","orderLineId":"L","scene":"RENEWAL","expireTime":"20300101000000"}`, "000002", "orderId", ""},
			{"refresh without scene", licenseKey, `{"activity":"refreshLicenseCode","license":"BAD","orderId":"O","orderLineId":"L","expireTime":"20300101000000"}`, "000002", "scene", ""},
			{"license too long", licenseKey, status(strings.Repeat("B", 65), "FREEZE", ""), "000002", "license", ""},
			{"unknown status", licenseKey, status("BAD", "PAUSE", ""), "000002", "status", ""},
			{"release without license", licenseKey, `{"activity":"releaseLicenseCode"}`, "000002", "license", ""},
			{"unknown activity", licenseKey, `{"activity":"deleteLicenseCode","license":"BAD"}`, "000002", "deleteLicenseCode", ""},
			{"a key twice", licenseKey, `{"activity":"releaseLicenseCode","license":"BAD","license":"BAD2"}`, "000002", "license", ""},
			{"a boolean for a string", licenseKey, `{"activity":"releaseLicenseCode","license":true}`, "000002", "license", ""},
			{"not UTF-8", licenseKey, "{\"activity\":\"releaseLicenseCode\",\"license\":\"B\xffD\"}", "000002", "UTF-8", ""},
			{"NUL", licenseKey, `{"activity":"releaseLicenseCode","license":"B\u0000D"}`, "000002", "NUL", ""},
			{"not JSON", licenseKey, `activity=releaseLicenseCode`, "000002", "", ""},
			{"signed with the basic key", basicKey, release("BAD", ""), "000001", "", ""},
			{"signed with another key", "not-the-license-key", status("BAD", "FREEZE", ""), "000001", "", ""},
		}
		var want []string
		for _, tc := range tests {
			r := e.post(t, tc.key, tc.body)
			if r.code != tc.code || !strings.Contains(r.msg, tc.msg) {
				t.Errorf("%s: %s %q, want %s naming %q", tc.name, r.code, r.msg, tc.code, tc.msg)
			}
			if tc.recorded != "" {
				want = append(want, tc.recorded)
			}
		}
		codes, err := e.st.LicenseCodes(context.Background(), store.LicenseCodeFilter{})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, c := range codes {
			got = append(got, c.Code)
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("recorded %v, want %v: a refused call writes nothing", got, want)
		}
	})
}

// TestUnknownCodesRecorded: a code first heard of is recorded with the
// state the call implies, with its history and the vendor's event.
func TestUnknownCodesRecorded(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		expire := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
		tests := []struct {
			body   string
			code   string
			status store.LicenseStatus
			kind   string
			event  provision.EventType
		}{
			{refresh("PL-R", "O1", "20300102030405", "RENEWAL", `,"productId":"P1"`), "PL-R", store.LicenseActive, "renewed", provision.EventLicenseRenewed},
			{status("PL-F", "FREEZE", ""), "PL-F", store.LicenseFrozen, "frozen", provision.EventLicenseFrozen},
			{status("PL-U", "UNFREEZE", ""), "PL-U", store.LicenseActive, "unfrozen", provision.EventLicenseUnfrozen},
			{release("PL-X", ""), "PL-X", store.LicenseReleased, "released", provision.EventLicenseReleased},
		}
		for _, tc := range tests {
			e.call(t, tc.body, "000000")
			c, ok := e.code(t, tc.code, false)
			if !ok || c.Status != tc.status {
				t.Errorf("%s: recorded %v %+v, want %s", tc.code, ok, c, tc.status)
			}
			if got := e.history(t, tc.code, false); strings.Join(got, ",") != tc.kind {
				t.Errorf("%s: history %v, want %s", tc.code, got, tc.kind)
			}
		}
		if c, _ := e.code(t, "PL-R", false); !c.ExpireTime.Equal(expire) || c.OrderID != "O1" || c.OrderLineID != "O1-1" || c.ProductID != "P1" {
			t.Errorf("renewed code %+v", c)
		}
		real, test := e.settle(t)
		if len(real) != len(tests) || len(test) != 0 {
			t.Fatalf("%d real and %d debug events, want %d real", len(real), len(test), len(tests))
		}
		byCode := map[string]provision.Event{}
		for _, ev := range real {
			byCode[ev.License.Code] = ev
		}
		for _, tc := range tests {
			if ev := byCode[tc.code]; ev.Type != tc.event || ev.License.Status != string(tc.status) || ev.Test {
				t.Errorf("%s: event %+v, want %s", tc.code, ev, tc.event)
			}
		}
		if ev := byCode["PL-R"]; *ev.License != (provision.License{Code: "PL-R", Status: "active", ExpireTime: expire, OrderID: "O1", OrderLineID: "O1-1", ProductID: "P1", Scene: "RENEWAL"}) {
			t.Errorf("renewed event %+v", *ev.License)
		}
	})
}

// TestRepeats: a repeat gets the first answer byte for byte and changes
// nothing, whether it is stored (a renewal) or state-based; the ledger
// marks it a repeat.
func TestRepeats(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		tests := []struct {
			name, body, code string
			history          string
		}{
			{"renewal", refresh("PL-1", "O1", "20300101000000", "RENEWAL", ""), "PL-1", "renewed"},
			{"renewal, 17 digits for the same time", refresh("PL-1", "O1", "20300101000000000", "RENEWAL", ""), "PL-1", "renewed"},
			{"freeze", status("PL-2", "FREEZE", ""), "PL-2", "frozen"},
			{"release", release("PL-3", ""), "PL-3", "released"},
		}
		for _, tc := range tests {
			for i := range 3 {
				if r := e.call(t, tc.body, "000000"); r.body != success {
					t.Errorf("%s #%d: %s, want %s", tc.name, i+1, r.body, success)
				}
			}
			if got := e.history(t, tc.code, false); strings.Join(got, ",") != tc.history {
				t.Errorf("%s: history %v, want %s", tc.name, got, tc.history)
			}
		}
		// The ledger row follows the reply: wait for all 12.
		deadline := time.Now().Add(waitFor)
		for {
			calls, err := e.st.Calls(context.Background(), store.CallFilter{Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			if len(calls) == 12 {
				repeats := 0
				for _, c := range calls {
					if c.Interface != "license" || c.IdemKey == "" {
						t.Errorf("ledger row %+v", c)
					}
					if c.Repeat {
						repeats++
					}
				}
				if repeats != 9 {
					t.Errorf("%d repeats in the ledger, want 9", repeats)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d ledger rows, want 12", len(calls))
			}
			time.Sleep(10 * time.Millisecond)
		}
		real, _ := e.settle(t)
		if len(real) != 3 {
			t.Errorf("%d events, want 3", len(real))
		}
	})
}

// TestLateRenewal: a retry of an older renewal after a newer one answers
// its stored reply and leaves the newer expiry; the same renewal order
// with other values is refused and changes nothing.
func TestLateRenewal(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		june := refresh("PL-L", "O1", "20300601000000", "RENEWAL", "")
		july := refresh("PL-L", "O2", "20300701000000", "RENEWAL", "")
		steps := []struct {
			name, body, code, msg string
			expire                string // the code's expiry afterwards, yyyyMMdd
		}{
			{"renewal to June", june, "000000", "success", "20300601"},
			{"renewal to July", july, "000000", "success", "20300701"},
			{"June's retry", june, "000000", "success", "20300701"},
			{"June's order with another expiry", refresh("PL-L", "O1", "20300801000000", "RENEWAL", ""), "000002", "renewal order O1 line O1-1 of license code PL-L was already applied", "20300701"},
			{"June's order with another scene", refresh("PL-L", "O1", "20300601000000", "UNSUBSCRIBE_RENEWAL_PERIOD", ""), "000002", "already applied", "20300701"},
			{"an older renewal first heard of after a newer one", refresh("PL-L", "O0", "20300615000000", "RENEWAL", ""), "000000", "success", "20300701"},
			{"a cut-back period", refresh("PL-L", "O3", "20300601000000", "UNSUBSCRIBE_RENEWAL_PERIOD", ""), "000000", "success", "20300601"},
		}
		for _, st := range steps {
			r := e.call(t, st.body, st.code)
			if !strings.Contains(r.msg, st.msg) {
				t.Errorf("%s: %q, want %q", st.name, r.msg, st.msg)
			}
			if c, _ := e.code(t, "PL-L", false); c.ExpireTime.Format("20060102") != st.expire {
				t.Errorf("%s: expiry %v, want %s", st.name, c.ExpireTime, st.expire)
			}
		}
		if got := e.history(t, "PL-L", false); strings.Join(got, ",") != "renewed,renewed,renewed,renewed" {
			t.Errorf("history %v", got)
		}
		// Each license.renewed says the expiry the code was left with: the
		// late older renewal's says July.
		real, _ := e.settle(t)
		var expiries []string
		for _, ev := range real {
			expiries = append(expiries, ev.License.ExpireTime.Format("20060102"))
		}
		slices.Sort(expiries)
		if strings.Join(expiries, ",") != "20300601,20300601,20300701,20300701" {
			t.Errorf("license.renewed expiries %v, want June (twice: the first and the cut-back) and July (twice: its own and the late older renewal)", expiries)
		}
	})
}

// TestStatusChanges: freeze, unfreeze and renewal in sequence; each
// state-based call in the state it asks for changes nothing; a renewal
// into the future lifts a freeze and says so with license.unfrozen; the
// vendor's last word is the code's status, whatever the delivery order.
func TestStatusChanges(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		future := time.Now().AddDate(1, 0, 0).UTC().Format("20060102150405")
		past := time.Now().AddDate(0, -1, 0).UTC().Format("20060102150405")
		steps := []struct {
			name, body string
			status     store.LicenseStatus
			history    int // history rows afterwards
		}{
			{"freeze", status("PL-S", "FREEZE", ""), store.LicenseFrozen, 1},
			{"freeze again", status("PL-S", "FREEZE", ""), store.LicenseFrozen, 1},
			{"unfreeze", status("PL-S", "UNFREEZE", ""), store.LicenseActive, 2},
			{"unfreeze again", status("PL-S", "UNFREEZE", ""), store.LicenseActive, 2},
			{"freeze", status("PL-S", "FREEZE", ""), store.LicenseFrozen, 3},
			{"renewal into the past keeps the freeze", refresh("PL-S", "O1", past, "RENEWAL", ""), store.LicenseFrozen, 4},
			{"cut-back keeps the freeze", refresh("PL-S", "O2", future, "UNSUBSCRIBE_RENEWAL_PERIOD", ""), store.LicenseFrozen, 5},
			{"renewal into the future lifts it", refresh("PL-S", "O3", future, "RENEWAL", ""), store.LicenseActive, 7},
			{"the late UNFREEZE", status("PL-S", "UNFREEZE", ""), store.LicenseActive, 7},
		}
		for _, st := range steps {
			e.call(t, st.body, "000000")
			c, _ := e.code(t, "PL-S", false)
			if h := e.history(t, "PL-S", false); c.Status != st.status || len(h) != st.history {
				t.Errorf("%s: %s with %d history rows, want %s with %d", st.name, c.Status, len(h), st.status, st.history)
			}
		}
		if got := e.history(t, "PL-S", false); got[len(got)-2] != "renewed" || got[len(got)-1] != "unfrozen" {
			t.Errorf("history %v, want the lifting renewal followed by unfrozen", got)
		}
		all, _ := e.settleAll(t)
		real := withoutCorrections(all)
		var types []string
		for _, ev := range real {
			types = append(types, string(ev.Type)+"/"+ev.License.Status)
		}
		slices.Sort(types)
		want := []string{"license.frozen/frozen", "license.frozen/frozen", "license.renewed/active", "license.renewed/frozen", "license.renewed/frozen",
			"license.unfrozen/active", "license.unfrozen/active"}
		if !slices.Equal(types, want) {
			t.Errorf("events %v, want %v", types, want)
		}
		if last := all[len(all)-1]; last.License.Status != "active" {
			t.Errorf("the vendor's last word is %s (%s), the code is active", last.License.Status, last.ID)
		}
	})
}

// TestReleasedIsTerminal: a released code answers release, FREEZE and
// UNFREEZE with success forever and changes nothing, refuses new renewals
// before writing anything, and still replays a renewal stored before its
// release.
func TestReleasedIsTerminal(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		renewal := refresh("PL-T", "O1", "20300101000000", "RENEWAL", "")
		e.call(t, renewal, "000000")
		e.call(t, release("PL-T", ""), "000000")
		steps := []struct {
			name, body, code, msg string
		}{
			{"release again", release("PL-T", ""), "000000", "success"},
			{"release with an order", release("PL-T", `,"orderId":"U1","orderLineId":"U1-1"`), "000000", "success"},
			{"freeze", status("PL-T", "FREEZE", ""), "000000", "success"},
			{"unfreeze", status("PL-T", "UNFREEZE", ""), "000000", "success"},
			{"a new renewal", refresh("PL-T", "O2", "20310101000000", "RENEWAL", ""), "000002", "license code PL-T was released"},
			{"the renewal of before, retried", renewal, "000000", "success"},
		}
		for _, st := range steps {
			for range 2 {
				r := e.call(t, st.body, st.code)
				if !strings.Contains(r.msg, st.msg) {
					t.Errorf("%s: %q, want %q", st.name, r.msg, st.msg)
				}
			}
		}
		c, _ := e.code(t, "PL-T", false)
		if c.Status != store.LicenseReleased || c.ExpireTime.Year() != 2030 {
			t.Errorf("code %+v, want released, expiry 2030", c)
		}
		if got := e.history(t, "PL-T", false); strings.Join(got, ",") != "renewed,released" {
			t.Errorf("history %v, want renewed,released", got)
		}
		if real, _ := e.settle(t); len(real) != 2 {
			t.Errorf("%d events, want 2", len(real))
		}
	})
}

// TestTestFlagApart: debug calls (testFlag 1) touch a code of their own,
// and their events go to the test provisioner.
func TestTestFlagApart(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		e.call(t, status("PL-D", "FREEZE", debug), "000000")
		if _, ok := e.code(t, "PL-D", false); ok {
			t.Fatal("a debug freeze recorded the real code")
		}
		e.call(t, refresh("PL-D", "O1", "20300101000000", "RENEWAL", debug), "000000")
		// The same calls for real are not repeats.
		e.call(t, refresh("PL-D", "O1", "20310101000000", "RENEWAL", ""), "000000")
		e.call(t, status("PL-D", "FREEZE", ""), "000000")
		e.call(t, release("PL-D", debug), "000000")
		dbg, _ := e.code(t, "PL-D", true)
		real, _ := e.code(t, "PL-D", false)
		if dbg.Status != store.LicenseReleased || dbg.ExpireTime.Year() != 2030 || real.Status != store.LicenseFrozen || real.ExpireTime.Year() != 2031 {
			t.Errorf("debug %+v, real %+v", dbg, real)
		}
		realEvs, testEvs := e.settle(t)
		// Debug: frozen, renewed and unfrozen (the renewal lifted the
		// freeze), released.
		if len(realEvs) != 2 || len(testEvs) != 4 {
			t.Fatalf("%d real and %d debug events, want 2 and 4", len(realEvs), len(testEvs))
		}
		for _, ev := range testEvs {
			if !ev.Test {
				t.Errorf("debug event %+v not marked Test", ev)
			}
		}
		for _, ev := range realEvs {
			if ev.Test {
				t.Errorf("real event %+v marked Test", ev)
			}
		}
	})
}

// TestConcurrentDuplicates: 50 identical calls at once answer the same
// bytes and make one change and one event, for a stored renewal and for a
// state-based call.
func TestConcurrentDuplicates(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		tests := []struct {
			name, body, code string
		}{
			{"renewal", refresh("PL-C1", "O1", "20300101000000", "RENEWAL", ""), "PL-C1"},
			{"freeze", status("PL-C2", "FREEZE", ""), "PL-C2"},
			{"release", release("PL-C3", ""), "PL-C3"},
		}
		for _, tc := range tests {
			var wg sync.WaitGroup
			replies := make(chan reply, 50)
			for range 50 {
				wg.Go(func() { replies <- e.post(t, licenseKey, tc.body) })
			}
			wg.Wait()
			close(replies)
			for r := range replies {
				if r.body != success {
					t.Errorf("%s: %s, want %s", tc.name, r.body, success)
				}
			}
			if got := e.history(t, tc.code, false); len(got) != 1 {
				t.Errorf("%s: history %v, want one entry", tc.name, got)
			}
		}
		real, _ := e.settle(t)
		if len(real) != len(tests) {
			t.Errorf("%d events, want %d", len(real), len(tests))
		}
		ids := map[string]bool{}
		for _, ev := range real {
			ids[ev.ID] = true
		}
		if len(ids) != len(real) {
			t.Errorf("event IDs not unique: %v", ids)
		}
	})
}

// TestDebugCasesReplayedAfterRelease: KooGallery replays the seller's
// saved debug cases twice a day, a release among them: every case keeps
// answering 000000 on every later day, changing nothing; a real code
// refuses a new renewal once released (000002) but not UNFREEZE.
func TestDebugCasesReplayedAfterRelease(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		tests := []struct {
			name, flag string
			renewal    string // the renewal's answer once released
		}{
			{"debug", debug, "000000"},
			{"real", "", "000002"},
		}
		for _, tc := range tests {
			code := "PL-P-" + tc.name
			cases := []struct{ name, body, want string }{
				{"release", release(code, tc.flag), "000000"},
				{"freeze", status(code, "FREEZE", tc.flag), "000000"},
				{"unfreeze", status(code, "UNFREEZE", tc.flag), "000000"},
				{"renewal", refresh(code, "O-"+tc.name, "20300101000000", "RENEWAL", tc.flag), tc.renewal},
			}
			for day := 1; day <= 2; day++ {
				for _, c := range cases {
					if r := e.post(t, licenseKey, c.body); r.code != c.want {
						t.Errorf("%s, day %d, %s: %s %q, want %s", tc.name, day, c.name, r.code, r.msg, c.want)
					}
				}
			}
			got, _ := e.code(t, code, tc.flag != "")
			if got.Status != store.LicenseReleased || !got.ExpireTime.IsZero() {
				t.Errorf("%s: code %+v, want released without an expiry", tc.name, got)
			}
			if h := e.history(t, code, tc.flag != ""); strings.Join(h, ",") != "released" {
				t.Errorf("%s: history %v, want released only", tc.name, h)
			}
		}
		real, test := e.settle(t)
		if len(real) != 1 || len(test) != 1 || real[0].Type != provision.EventLicenseReleased || test[0].Type != provision.EventLicenseReleased {
			t.Errorf("events: real %v, debug %v; want license.released once each", real, test)
		}
	})
}
