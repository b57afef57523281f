package isv_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/koobridge/koobridge/isv"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/provision"
)

// TestRejectedCalls sends every kind of bad input: each gets its result
// code and changes nothing.
func TestRejectedCalls(t *testing.T) {
	e := newEnv(t)
	e.addOrder("ORDER-X", "ORDER-X-000001", "sku")
	e.addOrder("BASE", "BASE-000001", "sku")
	// One existing instance, so that a faulty refresh or status change would
	// have something to change.
	id := acceptNew(t, e.call(t, newInstanceBody("BASE", "BASE-000001"), request{}))
	e.waitActive(t, id)

	valid := newInstanceBody("ORDER-X", "ORDER-X-000001")
	used := randomNonce(t)
	wantCode(t, e.call(t, `{"activity":"queryInstance","instanceId":"nope"}`, request{nonce: used}), protocol.CodeInstanceNotFound)

	tests := []struct {
		name    string
		body    string
		rq      request
		status  int
		code    protocol.ResultCode
		msgPart string
		signKey string        // the key the reply is signed with; default key1
		skew    time.Duration // when set, the server clock is pinned and the timestamp is this far from it
	}{
		{name: "malformed JSON", body: `{"activity":"newInstance","orderId":`, code: protocol.CodeInvalidParam},
		{name: "missing field", body: `{"activity":"newInstance","businessId":"b1","orderId":"ORDER-X"}`, code: protocol.CodeInvalidParam, msgPart: "orderLineId"},
		{name: "overlong field", body: `{"activity":"newInstance","businessId":"b1","orderId":"` + strings.Repeat("O", 65) + `","orderLineId":"ORDER-X-000001"}`, code: protocol.CodeInvalidParam, msgPart: "orderId"},
		{name: "wrong status", body: `{"activity":"updateInstanceStatus","instanceId":"` + id + `","status":"PAUSE"}`, code: protocol.CodeInvalidParam, msgPart: "status"},
		{name: "empty scene", body: `{"activity":"refreshInstance","expireTime":"20300101000000","instanceId":"` + id + `","orderId":"R","orderLineId":"R-1","scene":""}`, code: protocol.CodeInvalidParam, msgPart: "scene"},
		{name: "unknown activity", body: `{"activity":"explodeInstance","instanceId":"` + id + `"}`, code: protocol.CodeInvalidParam, msgPart: "activity"},
		{name: "activity not served", body: `{"activity":"getLicenseAsync","instanceId":"` + id + `","orderId":"ORDER-X","orderLineId":"ORDER-X-000001"}`, code: protocol.CodeInvalidParam, msgPart: "not served"},
		{name: "oversized body", body: `{"activity":"newInstance","businessId":"b1","orderId":"ORDER-X","orderLineId":"ORDER-X-000001","pad":"` + strings.Repeat("x", 70<<10) + `"}`, code: protocol.CodeInvalidParam, msgPart: "larger than 65536 bytes"},
		{name: "wrong signature", body: valid, rq: request{key: "not-the-key"}, code: protocol.CodeAuthFailed, msgPart: "signature mismatch", signKey: key1},
		{name: "stale timestamp", body: valid, skew: -61 * time.Second, code: protocol.CodeAuthFailed, msgPart: "stale timestamp"},
		{name: "future timestamp", body: valid, skew: 61 * time.Second, code: protocol.CodeAuthFailed, msgPart: "future"},
		{name: "reused nonce", body: valid, rq: request{nonce: used}, code: protocol.CodeAuthFailed, msgPart: "replayed nonce"},
		{name: "no query parameters", body: valid, rq: request{noQuery: true}, code: protocol.CodeAuthFailed, msgPart: "missing query parameter signature, timestamp, nonce"},
		{name: "nonce missing", body: valid, rq: request{query: map[string][]string{"signature": {"AB"}, "timestamp": {"1"}}}, code: protocol.CodeAuthFailed, msgPart: "nonce"},
		{name: "timestamp not a number", body: valid, rq: request{query: map[string][]string{"signature": {"AB"}, "timestamp": {"yesterday"}, "nonce": {"n"}}}, code: protocol.CodeAuthFailed, msgPart: "timestamp"},
		{name: "GET is SaaS V1, without its authToken", body: "", rq: request{method: "GET"}, code: protocol.CodeAuthFailed, msgPart: "missing query parameter authToken, timeStamp"},
		{name: "PUT", body: valid, rq: request{method: "PUT"}, status: 405, code: protocol.CodeInvalidParam, msgPart: "use POST or GET"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.state(t)
			if tt.skew != 0 {
				now, unpin := e.clock.pin()
				defer unpin()
				tt.rq.ts = now.Add(tt.skew)
			}
			r := e.do(t, tt.body, tt.rq)
			status := tt.status
			if status == 0 {
				status = 200
			}
			signKey := tt.signKey
			if signKey == "" {
				signKey = key1
			}
			checkReply(t, r, status, signKey)
			wantCode(t, r, tt.code)
			if !strings.Contains(r.msg(), tt.msgPart) {
				t.Errorf("resultMsg %q does not name %q", r.msg(), tt.msgPart)
			}
			if strings.Contains(r.msg(), key1) || strings.Contains(r.msg(), "not-the-key") {
				t.Errorf("resultMsg reveals a key: %q", r.msg())
			}
			if after := e.state(t); after != before {
				t.Errorf("state changed: before %+v, after %+v", before, after)
			}
			if r.status == 405 && r.header.Get("Allow") != "POST, GET" {
				t.Errorf("Allow header %q", r.header.Get("Allow"))
			}
		})
	}
	if _, err := e.st.Operation(context.Background(), "refreshInstance:R:R-1:"); err == nil {
		t.Error("an operation was stored for the rejected refresh")
	}
	if n := e.metric(t, "koobridge_auth_failures_total", map[string]string{"family": "v2", "reason": "replayed_nonce"}); n != 1 {
		t.Errorf("replayed_nonce failures %v, want 1", n)
	}
	if n := e.metric(t, "koobridge_auth_failures_total", map[string]string{"family": "v2", "reason": "signature"}); n != 1 {
		t.Errorf("signature failures %v, want 1", n)
	}
}

// TestForgedCallDoesNotBurnNonce: a call with a bad signature must not
// record its nonce, or an attacker could pre-empt KooGallery's next call.
func TestForgedCallDoesNotBurnNonce(t *testing.T) {
	e := newEnv(t)
	nonce := randomNonce(t)
	body := `{"activity":"queryInstance","instanceId":"x1"}`
	wantCode(t, e.do(t, body, request{key: "forged", nonce: nonce}), protocol.CodeAuthFailed)
	wantCode(t, e.call(t, body, request{nonce: nonce}), protocol.CodeInstanceNotFound)
	wantCode(t, e.call(t, body, request{nonce: nonce}), protocol.CodeAuthFailed)
}

// TestTimestampWindow: 60 s either way is accepted, 61 s is not.
func TestTimestampWindow(t *testing.T) {
	e := newEnv(t)
	body := `{"activity":"queryInstance","instanceId":"x1"}`
	for _, tt := range []struct {
		skew time.Duration
		want protocol.ResultCode
	}{
		{-60 * time.Second, protocol.CodeInstanceNotFound},
		{60 * time.Second, protocol.CodeInstanceNotFound},
		{-61 * time.Second, protocol.CodeAuthFailed},
		{61 * time.Second, protocol.CodeAuthFailed},
		{-time.Hour, protocol.CodeAuthFailed},
	} {
		now, unpin := e.clock.pin()
		r := e.call(t, body, request{ts: now.Add(tt.skew)})
		unpin()
		if r.code() != string(tt.want) {
			t.Errorf("timestamp %v from now: resultCode %s (%s), want %s", tt.skew, r.code(), r.msg(), tt.want)
		}
	}
}

// panicky panics on change.check and otherwise delegates.
type panicky struct{ provision.Provisioner }

func (p panicky) Provision(ctx context.Context, ev provision.Event) (provision.Result, error) {
	if ev.Type == provision.EventChangeCheck {
		panic("vendor exploded")
	}
	return p.Provisioner.Provision(ctx, ev)
}

func TestPanicAnswersInternalError(t *testing.T) {
	e := newEnv(t, func(c *isv.Config) {
		c.Provisioner = panicky{c.Provisioner}
		c.TestProvisioner = c.Provisioner
	})
	e.addOrder("ORDER-PN", "ORDER-PN-000001", "sku")
	id := acceptNew(t, e.call(t, newInstanceBody("ORDER-PN", "ORDER-PN-000001"), request{}))
	e.waitActive(t, id)
	body := `{"activity":"changeInstanceCheck","instanceId":"` + id + `","productInfo":{"productId":"p","skuCode":"s"}}`
	r := e.call(t, body, request{})
	if c := r.code(); c != string(protocol.CodeInternal) {
		t.Fatalf("resultCode %s (%s), want 000005", c, r.msg())
	}
	if strings.Contains(r.msg(), "exploded") {
		t.Errorf("panic value leaked to the caller: %q", r.msg())
	}
	// The server still answers.
	wantCode(t, e.call(t, `{"activity":"queryInstance","instanceId":"`+id+`"}`, request{}), protocol.CodeSuccess)
}

// TestStoreDownAnswers000005: when the nonce cannot be recorded the call
// is not an authentication failure but an internal error KooGallery
// retries; the failed ledger write does not change the answer.
func TestStoreDownAnswers000005(t *testing.T) {
	e := newEnv(t)
	if err := e.st.Close(); err != nil {
		t.Fatal(err)
	}
	r := e.call(t, newInstanceBody("ORDER-D", "ORDER-D-000001"), request{})
	wantCode(t, r, protocol.CodeInternal)
	if r.msg() != "internal error" {
		t.Errorf("resultMsg %q", r.msg())
	}
	eventually(t, "ledger error counted", func() bool {
		return e.metric(t, "koobridge_ledger_errors_total", nil) >= 1
	})
	if e.orders.QueryOrderCalls() != 0 || e.prov.total() != 0 {
		t.Error("a call that could not be authenticated reached the Open API or the provisioner")
	}
}

// brokenBody fails like a connection cut while the body is read.
type brokenBody struct{}

func (brokenBody) Read([]byte) (int, error) { return 0, errors.New("connection reset by peer") }

func TestUnreadableBody(t *testing.T) {
	e := newEnv(t)
	before := e.state(t)
	req := httptest.NewRequest(http.MethodPost, "/produce", brokenBody{})
	rec := httptest.NewRecorder()
	e.srv.Handler().ServeHTTP(rec, req)
	r := &result{status: rec.Code, header: rec.Header(), raw: rec.Body.Bytes()}
	if err := json.Unmarshal(r.raw, &r.body); err != nil {
		t.Fatalf("reply is not JSON: %s", r.raw)
	}
	checkReply(t, r, http.StatusOK, key1)
	wantCode(t, r, protocol.CodeInvalidParam)
	if !strings.Contains(r.msg(), "could not read") {
		t.Errorf("resultMsg %q", r.msg())
	}
	if after := e.state(t); after != before {
		t.Errorf("state changed: %+v → %+v", before, after)
	}
}
