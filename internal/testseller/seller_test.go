package testseller

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/koobridge/koobridge/protocol"
)

// TestActivities runs every activity against the correct seller. setup
// prepares the instance the body names: "" none (the ID is unknown),
// "live", "released" or "frozen".
func TestActivities(t *testing.T) {
	long := strings.Repeat("x", 65)
	tests := []struct {
		name  string
		setup string
		order string // orderId of the set-up instance; default CSORDER
		body  func(id string) map[string]any
		want  protocol.ResultCode
		check func(t *testing.T, e env, id string, r reply)
	}{
		{name: "newInstance", body: func(string) map[string]any { return newInstance("CSNEW", "CSNEW-000001") },
			want: protocol.CodeSuccess, check: func(t *testing.T, e env, _ string, r reply) {
				if r.instanceID == "" || len(r.instanceID) > 64 {
					t.Errorf("instanceId %q, want 1 to 64 characters", r.instanceID)
				}
				if n := e.s.Instances(); n != 1 {
					t.Errorf("Instances() = %d, want 1", n)
				}
			}},
		{name: "newInstance repeat", setup: "live", order: "CSREP",
			body: func(string) map[string]any { return newInstance("CSREP", "CSREP-000001") },
			want: protocol.CodeSuccess, check: func(t *testing.T, e env, id string, r reply) {
				if r.instanceID != id {
					t.Errorf("repeat gave instanceId %q, first call %q", r.instanceID, id)
				}
				if n := e.s.Instances(); n != 1 {
					t.Errorf("Instances() = %d, want 1", n)
				}
			}},
		{name: "newInstance other line", setup: "live", order: "CSTWO",
			body: func(string) map[string]any { return newInstance("CSTWO", "CSTWO-000002") },
			want: protocol.CodeSuccess, check: func(t *testing.T, e env, id string, r reply) {
				if r.instanceID == id || r.instanceID == "" {
					t.Errorf("second order line gave instanceId %q, first line %q", r.instanceID, id)
				}
				if n := e.s.Instances(); n != 2 {
					t.Errorf("Instances() = %d, want 2", n)
				}
			}},
		{name: "newInstance missing orderId", body: func(string) map[string]any {
			m := newInstance("X", "X-000001")
			delete(m, "orderId")
			return m
		}, want: protocol.CodeInvalidParam, check: noInstances},
		{name: "newInstance overlong businessId", body: func(string) map[string]any {
			m := newInstance("X", "X-000001")
			m["businessId"] = long
			return m
		}, want: protocol.CodeInvalidParam, check: noInstances},

		{name: "queryInstance", setup: "live", body: func(id string) map[string]any { return queryInstance(id) },
			want: protocol.CodeSuccess, check: func(t *testing.T, e env, id string, r reply) {
				in := onlyInfo(t, r, id)
				a := in.AppInfo
				if a == nil || a.FrontEndURL == "" || a.AdminURL == "" || a.UserName == "" || a.Password == "" {
					t.Fatalf("appInfo %+v, want frontEndUrl, adminUrl, userName and password", a)
				}
				if a.Password != e.s.snapshot(t, id).password {
					t.Errorf("password %q is not the instance's plain password", a.Password)
				}
				if !strings.Contains(a.Memo, "欢迎使用") {
					t.Errorf("memo %q lacks 欢迎使用", a.Memo)
				}
				if !bytes.Contains(r.raw, []byte(`\u6b22\u8fce\u4f7f\u7528`)) {
					t.Errorf("reply %s does not \\u-escape the memo", r.raw)
				}
				if len(in.UsageInfo) != 0 {
					t.Errorf("usageInfo %+v for a yearly/monthly order", in.UsageInfo)
				}
			}},
		{name: "queryInstance on demand", setup: "live", order: "MOCKONDEMAND",
			body: func(id string) map[string]any { return queryInstance(id) },
			want: protocol.CodeSuccess, check: checkUsage},
		{name: "queryInstance on demand package", setup: "live", order: "CS24ONDEMANDPKG7",
			body: func(id string) map[string]any { return queryInstance(id) },
			want: protocol.CodeSuccess, check: checkUsage},
		{name: "queryInstance released", setup: "released", body: func(id string) map[string]any { return queryInstance(id) },
			want: protocol.CodeSuccess, check: func(t *testing.T, _ env, id string, r reply) { onlyInfo(t, r, id) }},
		{name: "queryInstance list with unknown IDs", setup: "live",
			body: func(id string) map[string]any { return queryInstance("nope-1, " + id + ",,nope-2") },
			want: protocol.CodeSuccess, check: func(t *testing.T, _ env, id string, r reply) { onlyInfo(t, r, id) }},
		{name: "queryInstance unknown", body: func(string) map[string]any { return queryInstance("nope-1,nope-2") },
			want: protocol.CodeInstanceNotFound},
		{name: "queryInstance 100 IDs", setup: "live", body: func(id string) map[string]any {
			return queryInstance(id + strings.Repeat(",nope", 99))
		}, want: protocol.CodeSuccess},
		{name: "queryInstance 101 IDs", setup: "live", body: func(id string) map[string]any {
			return queryInstance(id + strings.Repeat(",nope", 100))
		}, want: protocol.CodeInvalidParam},
		{name: "queryInstance missing instanceId", body: func(string) map[string]any { return queryInstance(" , ") },
			want: protocol.CodeInvalidParam},

		{name: "refreshInstance TRIAL_TO_FORMAL", setup: "live",
			body: func(id string) map[string]any { return refreshInstance(id, "TRIAL_TO_FORMAL", "20300101000000") },
			want: protocol.CodeSuccess, check: expiryIs("2030-01-01T00:00:00Z")},
		{name: "refreshInstance RENEWAL", setup: "frozen",
			body: func(id string) map[string]any { return refreshInstance(id, "RENEWAL", "20300202030405678") },
			want: protocol.CodeSuccess, check: expiryIs("2030-02-02T03:04:05.678Z")},
		{name: "refreshInstance UNSUBSCRIBE_RENEWAL_PERIOD", setup: "live",
			body: func(id string) map[string]any {
				return refreshInstance(id, "UNSUBSCRIBE_RENEWAL_PERIOD", "20290101000000")
			},
			want: protocol.CodeSuccess, check: expiryIs("2029-01-01T00:00:00Z")},
		{name: "refreshInstance RENEWAL_CHANGE", setup: "live",
			body: func(id string) map[string]any { return refreshInstance(id, "RENEWAL_CHANGE", "20310101000000") },
			want: protocol.CodeSuccess, check: expiryIs("2031-01-01T00:00:00Z")},
		{name: "refreshInstance unknown", body: func(string) map[string]any {
			return refreshInstance("nope", "RENEWAL", "20300101000000")
		}, want: protocol.CodeInstanceNotFound},
		{name: "refreshInstance released", setup: "released", body: func(id string) map[string]any {
			return refreshInstance(id, "RENEWAL", "20300101000000")
		}, want: protocol.CodeInstanceNotFound},
		{name: "refreshInstance bad expireTime", setup: "live", body: func(id string) map[string]any {
			return refreshInstance(id, "RENEWAL", "2030-01-01")
		}, want: protocol.CodeInvalidParam},
		{name: "refreshInstance missing scene", setup: "live", body: func(id string) map[string]any {
			m := refreshInstance(id, "RENEWAL", "20300101000000")
			delete(m, "scene")
			return m
		}, want: protocol.CodeInvalidParam},

		{name: "updateInstanceStatus FREEZE", setup: "live", body: func(id string) map[string]any { return updateStatus(id, "FREEZE") },
			want: protocol.CodeSuccess, check: frozenIs(true)},
		{name: "updateInstanceStatus FREEZE frozen", setup: "frozen", body: func(id string) map[string]any { return updateStatus(id, "FREEZE") },
			want: protocol.CodeSuccess, check: frozenIs(true)},
		{name: "updateInstanceStatus UNFREEZE", setup: "frozen", body: func(id string) map[string]any { return updateStatus(id, "UNFREEZE") },
			want: protocol.CodeSuccess, check: frozenIs(false)},
		{name: "updateInstanceStatus UNFREEZE live", setup: "live", body: func(id string) map[string]any { return updateStatus(id, "UNFREEZE") },
			want: protocol.CodeSuccess, check: frozenIs(false)},
		{name: "updateInstanceStatus unknown", body: func(string) map[string]any { return updateStatus("nope", "FREEZE") },
			want: protocol.CodeInstanceNotFound},
		{name: "updateInstanceStatus released", setup: "released", body: func(id string) map[string]any { return updateStatus(id, "FREEZE") },
			want: protocol.CodeInstanceNotFound},
		{name: "updateInstanceStatus bad status", setup: "live", body: func(id string) map[string]any { return updateStatus(id, "PAUSE") },
			want: protocol.CodeInvalidParam, check: frozenIs(false)},

		{name: "releaseInstance", setup: "live", body: func(id string) map[string]any { return releaseInstance(id) },
			want: protocol.CodeSuccess, check: releasedIs(true)},
		{name: "releaseInstance with order", setup: "frozen", body: func(id string) map[string]any {
			m := releaseInstance(id)
			m["orderId"], m["orderLineId"] = "CSUNSUB", "CSUNSUB-000001"
			return m
		}, want: protocol.CodeSuccess, check: releasedIs(true)},
		{name: "releaseInstance released", setup: "released", body: func(id string) map[string]any { return releaseInstance(id) },
			want: protocol.CodeSuccess, check: releasedIs(true)},
		{name: "releaseInstance unknown", body: func(string) map[string]any { return releaseInstance("nope") },
			want: protocol.CodeInstanceNotFound},
		{name: "releaseInstance missing instanceId", body: func(string) map[string]any { return releaseInstance("") },
			want: protocol.CodeInvalidParam},

		{name: "upgradeInstance", setup: "live", body: func(id string) map[string]any { return upgradeInstance(id) },
			want: protocol.CodeSuccess, check: func(t *testing.T, e env, id string, _ reply) {
				if _, ok := e.s.snapshot(t, id).upgrades[orderLine{"CSUPG", "CSUPG-000001"}]; !ok {
					t.Error("upgrade order not recorded")
				}
			}},
		{name: "upgradeInstance unknown", body: func(string) map[string]any { return upgradeInstance("nope") },
			want: protocol.CodeInstanceNotFound},
		{name: "upgradeInstance released", setup: "released", body: func(id string) map[string]any { return upgradeInstance(id) },
			want: protocol.CodeInstanceNotFound},
		{name: "upgradeInstance missing orderLineId", setup: "live", body: func(id string) map[string]any {
			m := upgradeInstance(id)
			delete(m, "orderLineId")
			return m
		}, want: protocol.CodeInvalidParam},

		{name: "changeInstanceCheck", setup: "live", body: func(id string) map[string]any { return changeCheck(id) },
			want: protocol.CodeSuccess},
		{name: "changeInstanceCheck unknown", body: func(string) map[string]any { return changeCheck("nope") },
			want: protocol.CodeInstanceNotFound},
		{name: "changeInstanceCheck missing productInfo", setup: "live", body: func(id string) map[string]any {
			m := changeCheck(id)
			delete(m, "productInfo")
			return m
		}, want: protocol.CodeInvalidParam},

		{name: "unknown activity", body: func(string) map[string]any {
			return map[string]any{"activity": "deleteEverything", "instanceId": "x"}
		}, want: protocol.CodeInvalidParam},
		{name: "activity of another interface", body: func(string) map[string]any {
			return map[string]any{"activity": "getLicenseAsync", "instanceId": "CS1"}
		}, want: protocol.CodeInvalidParam},
		{name: "orderNotify", body: func(string) map[string]any { return orderNotify("CSON", "CSON-000001", "0") },
			want: protocol.CodeSuccess, check: func(t *testing.T, e env, _ string, r reply) {
				if n := e.s.Notified(); n != 1 {
					t.Errorf("Notified() = %d, want 1", n)
				}
			}},
		{name: "orderNotify incomplete", body: func(string) map[string]any {
			return map[string]any{"activity": "orderNotify", "orderId": "CS1"}
		}, want: protocol.CodeInvalidParam, check: func(t *testing.T, e env, _ string, r reply) {
			if n := e.s.Notified(); n != 0 {
				t.Errorf("Notified() = %d, want 0", n)
			}
		}},
		{name: "missing activity", body: func(string) map[string]any {
			return map[string]any{"instanceId": "x"}
		}, want: protocol.CodeInvalidParam},
		{name: "overlong activity", body: func(string) map[string]any {
			return map[string]any{"activity": long, "instanceId": "x"}
		}, want: protocol.CodeInvalidParam},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := start(t, Faults{})
			id := "never-created"
			order := tt.order
			if order == "" {
				order = "CSORDER"
			}
			switch tt.setup {
			case "live":
				id = e.create(order)
			case "released":
				id = e.create(order)
				mustCode(t, e.call(releaseInstance(id)), protocol.CodeSuccess)
			case "frozen":
				id = e.create(order)
				mustCode(t, e.call(updateStatus(id, "FREEZE")), protocol.CodeSuccess)
			}
			r := e.call(tt.body(id))
			checkWire(t, r)
			if r.code != tt.want {
				t.Fatalf("resultCode %s (%q), want %s; reply %s", r.code, r.msg, tt.want, r.raw)
			}
			if tt.check != nil {
				tt.check(t, e, id, r)
			}
		})
	}
}

func mustCode(t *testing.T, r reply, want protocol.ResultCode) {
	t.Helper()
	if r.code != want {
		t.Fatalf("resultCode %s (%q), want %s", r.code, r.msg, want)
	}
}

func noInstances(t *testing.T, e env, _ string, _ reply) {
	t.Helper()
	if n := e.s.Instances(); n != 0 {
		t.Errorf("Instances() = %d after an invalid call, want 0", n)
	}
}

// onlyInfo returns the single info entry, which must be for id.
func onlyInfo(t *testing.T, r reply, id string) protocol.InstanceInfo {
	t.Helper()
	if len(r.info) != 1 || r.info[0].InstanceID != id {
		t.Fatalf("info %+v, want one entry for %s", r.info, id)
	}
	if err := r.info[0].Validate(); err != nil {
		t.Errorf("info entry invalid: %v", err)
	}
	return r.info[0]
}

func checkUsage(t *testing.T, _ env, id string, r reply) {
	t.Helper()
	in := onlyInfo(t, r, id)
	if in.AppInfo == nil {
		t.Error("no appInfo")
	}
	if len(in.UsageInfo) != 1 {
		t.Fatalf("usageInfo %+v, want one entry", in.UsageInfo)
	}
	u := in.UsageInfo[0]
	if u.UsageValue.String() != "1.5" {
		t.Errorf("usageValue %s, want 1.5", u.UsageValue)
	}
	at, err := protocol.ParseTime17(u.StatisticalTime)
	if err != nil {
		t.Fatalf("statisticalTime: %v", err)
	}
	if d := time.Since(at); d < -time.Hour || d > time.Hour {
		t.Errorf("statisticalTime %s is not about now (UTC)", u.StatisticalTime)
	}
}

func expiryIs(want string) func(*testing.T, env, string, reply) {
	return func(t *testing.T, e env, id string, _ reply) {
		t.Helper()
		w, err := time.Parse(time.RFC3339Nano, want)
		if err != nil {
			t.Fatal(err)
		}
		if got := e.s.snapshot(t, id).expiry; !got.Equal(w) {
			t.Errorf("expiry %v, want %v", got, w)
		}
	}
}

func frozenIs(want bool) func(*testing.T, env, string, reply) {
	return func(t *testing.T, e env, id string, _ reply) {
		t.Helper()
		if got := e.s.snapshot(t, id).frozen; got != want {
			t.Errorf("frozen = %v, want %v", got, want)
		}
	}
}

func releasedIs(want bool) func(*testing.T, env, string, reply) {
	return func(t *testing.T, e env, id string, _ reply) {
		t.Helper()
		if got := e.s.snapshot(t, id).released; got != want {
			t.Errorf("released = %v, want %v", got, want)
		}
	}
}

// TestRefreshIsAbsolute: a repeat does not extend again and an
// unsubscribed renewal period moves the expiry back.
func TestRefreshIsAbsolute(t *testing.T) {
	e := start(t, Faults{})
	id := e.create("CSABS")
	steps := []struct {
		scene, expire string
		want          time.Time
	}{
		{"RENEWAL", "20300101000000", time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"RENEWAL", "20300101000000", time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"UNSUBSCRIBE_RENEWAL_PERIOD", "20290601000000", time.Date(2029, 6, 1, 0, 0, 0, 0, time.UTC)},
	}
	for i, st := range steps {
		mustCode(t, e.call(refreshInstance(id, st.scene, st.expire)), protocol.CodeSuccess)
		if got := e.s.snapshot(t, id).expiry; !got.Equal(st.want) {
			t.Errorf("step %d (%s %s): expiry %v, want %v", i, st.scene, st.expire, got, st.want)
		}
	}
}

// TestConcurrentNewInstance: concurrent calls for one order line make one
// instance.
func TestConcurrentNewInstance(t *testing.T) {
	e := start(t, Faults{})
	const n = 16
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { ids[i] = e.call(newInstance("CSCONC", "CSCONC-000001")).instanceID })
	}
	wg.Wait()
	for i, id := range ids {
		if id == "" || id != ids[0] {
			t.Errorf("call %d: instanceId %q, call 0: %q", i, id, ids[0])
		}
	}
	if got := e.s.Instances(); got != 1 {
		t.Errorf("Instances() = %d, want 1", got)
	}
}

// TestAuth checks the V2 URL signature (saas-v2.md §2.2).
func TestAuth(t *testing.T) {
	body := []byte(`{"activity":"newInstance","businessId":"b1","orderId":"CSAUTH","orderLineId":"CSAUTH-000001"}`)
	sig := func(nonce, ts string) string { return signedURL("", testKey, nonce, ts, body) }
	tests := []struct {
		name  string
		query func(nonce string) string
		body  []byte // nil: body
		want  protocol.ResultCode
	}{
		{"valid", func(n string) string { return sig(n, nowMillis()) }, nil, protocol.CodeSuccess},
		{"lower-case signature", func(n string) string {
			return strings.ToLower(signedURL("", testKey, n, nowMillis(), body))
		}, nil, protocol.CodeSuccess},
		{"timestamp in seconds", func(n string) string {
			return sig(n, nowMillis()[:10])
		}, nil, protocol.CodeSuccess},
		{"wrong key", func(n string) string { return signedURL("", "other-key", n, nowMillis(), body) }, nil, protocol.CodeAuthFailed},
		{"body changed after signing", func(n string) string { return sig(n, nowMillis()) },
			bytes.Replace(body, []byte("b1"), []byte("b2"), 1), protocol.CodeAuthFailed},
		{"no signature", func(n string) string { return "?timestamp=" + nowMillis() + "&nonce=" + n }, nil, protocol.CodeAuthFailed},
		{"no timestamp", func(n string) string {
			ts := nowMillis()
			return strings.Replace(sig(n, ts), "timestamp="+ts, "", 1)
		}, nil, protocol.CodeAuthFailed},
		{"no nonce", func(n string) string { return strings.Replace(sig(n, nowMillis()), "nonce="+n, "", 1) }, nil, protocol.CodeAuthFailed},
		{"nothing", func(string) string { return "" }, nil, protocol.CodeAuthFailed},
		{"stale timestamp", func(n string) string {
			return sig(n, millis(time.Now().Add(-2*time.Minute)))
		}, nil, protocol.CodeAuthFailed},
		{"future timestamp", func(n string) string {
			return sig(n, millis(time.Now().Add(2*time.Minute)))
		}, nil, protocol.CodeAuthFailed},
		{"malformed timestamp", func(n string) string { return sig(n, "2024-01-01") }, nil, protocol.CodeAuthFailed},
		{"overlong nonce", func(string) string { return sig(strings.Repeat("n", 129), nowMillis()) }, nil, protocol.CodeAuthFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := start(t, Faults{})
			sent := body
			if tt.body != nil {
				sent = tt.body
			}
			r := e.send(http.MethodPost, e.srv.URL+tt.query("nonce-0123456789abcdef"), sent)
			checkWire(t, r)
			if r.code != tt.want {
				t.Fatalf("resultCode %s (%q), want %s", r.code, r.msg, tt.want)
			}
			wantN := 0
			if tt.want == protocol.CodeSuccess {
				wantN = 1
			}
			if n := e.s.Instances(); n != wantN {
				t.Errorf("Instances() = %d, want %d", n, wantN)
			}
		})
	}
}

func millis(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

// TestNonces: a replayed nonce fails; a forged call does not burn a nonce.
func TestNonces(t *testing.T) {
	e := start(t, Faults{})
	body := []byte(`{"activity":"queryInstance","instanceId":"nope"}`)
	ts := nowMillis()
	forged := e.srv.URL + "?signature=" + strings.Repeat("AB", 32) + "&timestamp=" + ts + "&nonce=N1"
	mustCode(t, e.send(http.MethodPost, forged, body), protocol.CodeAuthFailed)
	good := signedURL(e.srv.URL, testKey, "N1", ts, body)
	mustCode(t, e.send(http.MethodPost, good, body), protocol.CodeInstanceNotFound)
	r := e.send(http.MethodPost, good, body)
	checkWire(t, r)
	mustCode(t, r, protocol.CodeAuthFailed)
	// Another nonce with the same timestamp is fine.
	mustCode(t, e.send(http.MethodPost, signedURL(e.srv.URL, testKey, "N2", ts, body), body), protocol.CodeInstanceNotFound)
}

// TestTransport: methods other than POST and GET (V1) and oversized bodies
// answer 000002 with HTTP 200, and any path is served.
func TestTransport(t *testing.T) {
	e := start(t, Faults{})
	for _, m := range []string{http.MethodPut, http.MethodDelete, http.MethodPatch} {
		r := e.send(m, signedURL(e.srv.URL, testKey, "n-"+m, nowMillis(), nil), nil)
		checkWire(t, r)
		if r.code != protocol.CodeInvalidParam {
			t.Errorf("%s: resultCode %s, want 000002", m, r.code)
		}
	}

	big := append([]byte(`{"activity":"queryInstance","instanceId":"x","pad":"`), bytes.Repeat([]byte("a"), 1<<20)...)
	big = append(big, `"}`...)
	r := e.postRaw(big)
	checkWire(t, r)
	if r.code != protocol.CodeInvalidParam {
		t.Errorf("body of %d bytes: resultCode %s, want 000002", len(big), r.code)
	}

	// Just under the limit is read and answered on its merits.
	fit := append([]byte(`{"activity":"queryInstance","instanceId":"x","pad":"`), bytes.Repeat([]byte("a"), 1<<20-100)...)
	fit = append(fit, `"}`...)
	if r := e.postRaw(fit); r.code != protocol.CodeInstanceNotFound {
		t.Errorf("body of %d bytes: resultCode %s, want 000003", len(fit), r.code)
	}

	body := []byte(`{"activity":"queryInstance","instanceId":"x"}`)
	r = e.send(http.MethodPost, signedURL(e.srv.URL+"/any/path/saasproduce", testKey, "n-path", nowMillis(), body), body)
	checkWire(t, r)
	if r.code != protocol.CodeInstanceNotFound {
		t.Errorf("other path: resultCode %s, want 000003", r.code)
	}
}
