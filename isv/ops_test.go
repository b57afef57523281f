package isv_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/isv"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
)

func TestKeyRotation(t *testing.T) {
	e := newEnv(t, func(c *isv.Config) { c.Keys.Basic = []string{key1, key2} })
	body := `{"activity":"queryInstance","instanceId":"x1"}`
	r := e.call(t, body, request{key: key2}) // checks Body-Sign with key2
	wantCode(t, r, protocol.CodeInstanceNotFound)
	if err := sign.VerifyBodySign(key1, r.header.Get(sign.BodySignHeader), r.raw); err == nil {
		t.Error("reply to a key2 call verifies with key1")
	}
	r = e.call(t, body, request{key: key1})
	wantCode(t, r, protocol.CodeInstanceNotFound)

	// A rejected call is signed with the first key.
	r = e.do(t, body, request{key: "third"})
	checkReply(t, r, 200, key1)
	wantCode(t, r, protocol.CodeAuthFailed)
}

func TestDisableBodySign(t *testing.T) {
	e := newEnv(t, func(c *isv.Config) { c.DisableBodySign = true })
	r := e.do(t, `{"activity":"queryInstance","instanceId":"x1"}`, request{})
	checkReply(t, r, 200, "")
	wantCode(t, r, protocol.CodeInstanceNotFound)
	if h := r.header.Get(sign.BodySignHeader); h != "" {
		t.Errorf("Body-Sign sent although disabled: %q", h)
	}
}

func TestMetrics(t *testing.T) {
	e := newEnv(t)
	e.addOrder("ORDER-MET", "ORDER-MET-000001", "sku")
	id := acceptNew(t, e.call(t, newInstanceBody("ORDER-MET", "ORDER-MET-000001"), request{}))
	e.waitActive(t, id)
	wantCode(t, e.call(t, `{"activity":"queryInstance","instanceId":"nope"}`, request{}), protocol.CodeInstanceNotFound)
	wantCode(t, e.call(t, `{"activity":"whatever"}`, request{}), protocol.CodeInvalidParam)
	wantCode(t, e.do(t, `{}`, request{key: "bad"}), protocol.CodeAuthFailed)

	eventually(t, "metrics", func() bool {
		return e.metric(t, "koobridge_calls_total", map[string]string{"family": "v2", "activity": "newInstance", "code": "000000"})+
			e.metric(t, "koobridge_calls_total", map[string]string{"family": "v2", "activity": "newInstance", "code": "000004"}) == 1
	})
	for _, m := range []struct {
		name   string
		labels map[string]string
		min    float64
	}{
		{"koobridge_calls_total", map[string]string{"family": "v2", "activity": "queryInstance", "code": "000003"}, 1},
		{"koobridge_calls_total", map[string]string{"family": "v2", "activity": "queryInstance", "code": "000000"}, 1},
		{"koobridge_calls_total", map[string]string{"family": "v2", "activity": "unknown", "code": "000002"}, 1},
		{"koobridge_calls_total", map[string]string{"family": "v2", "activity": "unknown", "code": "000001"}, 1},
		{"koobridge_call_duration_seconds", map[string]string{"family": "v2", "activity": "queryInstance"}, 2},
		{"koobridge_auth_failures_total", map[string]string{"family": "v2", "reason": "signature"}, 1},
		{"koobridge_jobs_total", map[string]string{"kind": "provision", "outcome": "done"}, 1},
	} {
		// The handler counts a call after flushing its reply, so the
		// client can see the reply a moment before the counter moves.
		eventually(t, fmt.Sprintf("%s%v >= %v", m.name, m.labels, m.min), func() bool {
			return e.metric(t, m.name, m.labels) >= m.min
		})
	}
}

// TestRequestID: the caller's X-Request-Id is echoed and carried by the
// log line of the call; a bad one is replaced.
func TestRequestID(t *testing.T) {
	e := newEnv(t)
	r := e.call(t, `{"activity":"queryInstance","instanceId":"x"}`, request{reqID: "req-abc.123"})
	if got := r.header.Get("X-Request-Id"); got != "req-abc.123" {
		t.Errorf("X-Request-Id %q", got)
	}
	eventually(t, "the call's log line", func() bool {
		return strings.Contains(e.logs.String(), `"request_id":"req-abc.123"`)
	})
	r = e.call(t, `{"activity":"queryInstance","instanceId":"x"}`, request{reqID: "bad id with spaces"})
	if got := r.header.Get("X-Request-Id"); got == "" || strings.Contains(got, " ") {
		t.Errorf("X-Request-Id %q", got)
	}
	// Lines the lifecycle service logs for the call carry its id too.
	e.addOrder("ORDER-RID", "ORDER-RID-000001", "sku")
	acceptNew(t, e.call(t, newInstanceBody("ORDER-RID", "ORDER-RID-000001"), request{reqID: "req-new-1"}))
	eventually(t, "a lifecycle log line with the request id", func() bool {
		for _, line := range strings.Split(e.logs.String(), "\n") {
			if strings.Contains(line, `"msg":"instance:`) && strings.Contains(line, `"request_id":"req-new-1"`) {
				return true
			}
		}
		return false
	})
	calls := e.calls(t, 3)
	if calls[0].RequestID != "req-abc.123" {
		t.Errorf("ledger request id %q", calls[0].RequestID)
	}
	for _, line := range strings.Split(strings.TrimSpace(e.logs.String()), "\n") {
		if strings.Contains(line, `"msg":"call"`) && !strings.Contains(line, `"request_id"`) {
			t.Errorf("call log line without request id: %s", line)
		}
		if strings.Contains(line, key1) {
			t.Errorf("log line holds the key: %s", line)
		}
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	e := newEnv(t)
	base := func() isv.Config {
		return isv.Config{Keys: isv.Keys{Basic: []string{key1}}, DB: store.NewDB(e.st), DataKey: sealKey(t), Orders: nil, Provisioner: e.prov}
	}
	tests := []struct {
		name string
		edit func(*isv.Config)
	}{
		{"no keys", func(c *isv.Config) { c.Keys = isv.Keys{} }},
		{"only a general key", func(c *isv.Config) { c.Keys = isv.Keys{General: []string{key1}} }},
		{"empty key", func(c *isv.Config) { c.Keys.Basic = []string{key1, ""} }},
		{"empty general key", func(c *isv.Config) { c.Keys.General = []string{""} }},
		{"no database", func(c *isv.Config) { c.DB = nil }},
		{"no data key", func(c *isv.Config) { c.DataKey = nil }},
		{"short data key", func(c *isv.Config) { c.DataKey = c.DataKey[:16] }},
		{"no provisioner", func(c *isv.Config) { c.Provisioner = nil }},
		{"order notify path not absolute", func(c *isv.Config) { c.OrderNotifyPath = "notify" }},
		{"bad credentials mode", func(c *isv.Config) { c.Credentials = "rot13" }},
		{"bad encrypt type", func(c *isv.Config) { c.Credentials = isv.CredentialsEncrypted; c.EncryptType = "3" }},
		{"negative body limit", func(c *isv.Config) { c.MaxBodyBytes = -1 }},
		{"no orders and no AK/SK", func(c *isv.Config) {}},
		{"no orders and no SK", func(c *isv.Config) { c.OpenAPI.AK = "ak" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base()
			tt.edit(&cfg)
			if _, err := isv.New(cfg); err == nil {
				t.Fatal("New accepted the config")
			} else if strings.Contains(err.Error(), key1) {
				t.Errorf("error reveals the key: %v", err)
			}
		})
	}
}

// TestRunWaitsForBackgroundWork: Run returns only after provisioning that
// a call started in the background has finished.
func TestRunWaitsForBackgroundWork(t *testing.T) {
	var b *blocking
	e := newEnv(t, func(c *isv.Config) {
		c.Budget = 100 * time.Millisecond
		b = &blocking{Provisioner: c.Provisioner, started: make(chan struct{}), release: make(chan struct{})}
		c.Provisioner, c.TestProvisioner = b, b
	})
	e.addOrder("ORDER-W", "ORDER-W-000001", "sku")
	r := e.call(t, newInstanceBody("ORDER-W", "ORDER-W-000001"), request{})
	wantCode(t, r, protocol.CodeProcessing)
	id := acceptNew(t, r)
	<-b.started
	go func() {
		time.Sleep(200 * time.Millisecond) // give a wrong Run the chance to return early
		close(b.release)
	}()
	if err := e.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	inst, err := e.st.Instance(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if inst.Status != store.StatusActive {
		t.Errorf("Run returned with the instance %q: background work was not awaited", inst.Status)
	}
}

// sweepCounter counts DeleteExpiredNonces calls on a real store.
type sweepCounter struct {
	store.Store
	mu     sync.Mutex
	sweeps int
}

func (s *sweepCounter) DeleteExpiredNonces(ctx context.Context, now time.Time) (int64, error) {
	s.mu.Lock()
	s.sweeps++
	s.mu.Unlock()
	return s.Store.DeleteExpiredNonces(ctx, now)
}

func TestRunSweepsNonces(t *testing.T) {
	var sc *sweepCounter
	newEnv(t, func(c *isv.Config) {
		sc = &sweepCounter{Store: store.Of(c.DB)}
		c.DB = store.NewDB(sc)
	})
	eventually(t, "a nonce sweep", func() bool {
		sc.mu.Lock()
		defer sc.mu.Unlock()
		return sc.sweeps > 0
	})
}
