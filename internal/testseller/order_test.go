package testseller

import (
	"bytes"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
)

// TestOrderNotify checks orderNotify (license-openapi.md §F) on the
// correct seller: verified and answered with the general key, idempotent
// on orderId + orderLineId, every field mandatory.
func TestOrderNotify(t *testing.T) {
	t.Run("notify and repeat", func(t *testing.T) {
		e := start(t, Faults{})
		first := e.call(orderNotify("CSON", "CSON-000001", "0"))
		checkWire(t, first)
		mustCode(t, first, protocol.CodeSuccess)
		again := e.call(orderNotify("CSON", "CSON-000001", "0"))
		checkWire(t, again)
		if !bytes.Equal(again.raw, first.raw) {
			t.Errorf("repeat answered %s, first %s", again.raw, first.raw)
		}
		mustCode(t, e.call(orderNotify("MOCKPERIODYEARNEW", "MOCKPERIODYEARNEW-000001", "1")), protocol.CodeSuccess)
		if n := e.s.Notified(); n != 2 {
			t.Errorf("Notified() = %d, want 2", n)
		}
		if n := e.s.Instances(); n != 0 {
			t.Errorf("Instances() = %d: an order notification creates no instance", n)
		}
	})
	t.Run("invalid", func(t *testing.T) {
		e := start(t, Faults{})
		noLine := orderNotify("CSON", "CSON-000001", "0")
		delete(noLine, "orderLineId")
		noOrder := orderNotify("CSON", "CSON-000001", "0")
		delete(noOrder, "orderId")
		for name, body := range map[string]map[string]any{
			"no testFlag":       orderNotify("CSON", "CSON-000001", ""),
			"testFlag 2":        orderNotify("CSON", "CSON-000001", "2"),
			"no orderLineId":    noLine,
			"no orderId":        noOrder,
			"orderId too long":  orderNotify(strings.Repeat("9", 65), "CSON-000001", "0"),
			"line too long":     orderNotify("CSON", strings.Repeat("9", 65), "0"),
			"empty orderLineId": orderNotify("CSON", "", "0"),
		} {
			r := e.call(body)
			checkWire(t, r)
			if r.code != protocol.CodeInvalidParam {
				t.Errorf("%s: resultCode %s (%q), want 000002", name, r.code, r.msg)
			}
		}
		if n := e.s.Notified(); n != 0 {
			t.Errorf("Notified() = %d, want 0", n)
		}
	})
	t.Run("keys", func(t *testing.T) {
		e := start(t, Faults{})
		body := marshal(t, orderNotify("CSKEY", "CSKEY-000001", "0"))
		for name, key := range map[string]string{"basic key": testKey, "made-up key": "made-up-key"} {
			r := e.postWith(key, body)
			checkWire(t, r) // answered with the general key all the same
			if r.code != protocol.CodeAuthFailed {
				t.Errorf("orderNotify signed with the %s: resultCode %s, want 000001", name, r.code)
			}
		}
		// And the other way round: a V2 call signed with the general key.
		q := marshal(t, queryInstance("nope"))
		r := e.postWith(testGeneralKey, q)
		checkWire(t, r)
		mustCode(t, r, protocol.CodeAuthFailed)
		if n := e.s.Notified(); n != 0 {
			t.Errorf("Notified() = %d, want 0", n)
		}
	})
	t.Run("concurrent", func(t *testing.T) {
		e := start(t, Faults{})
		codes := concurrently(t, 8, func() reply { return e.call(orderNotify("CSCON", "CSCON-000001", "0")) })
		for i, c := range codes {
			if c != protocol.CodeSuccess {
				t.Errorf("call %d: %s, want 000000", i, c)
			}
		}
		if n := e.s.Notified(); n != 1 {
			t.Errorf("Notified() = %d, want 1", n)
		}
	})
}

// concurrently makes n calls at once and returns their resultCodes.
func concurrently(t *testing.T, n int, call func() reply) []protocol.ResultCode {
	t.Helper()
	codes := make([]protocol.ResultCode, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { codes[i] = call().code })
	}
	wg.Wait()
	return codes
}

// TestOrderNotifyFaults pins down what the order-notification faults and
// ConcurrentProcessing do.
func TestOrderNotifyFaults(t *testing.T) {
	t.Run("OrderNotifyBasicKeyBodySign", func(t *testing.T) {
		e := start(t, Faults{OrderNotifyBasicKeyBodySign: true})
		r := e.call(orderNotify("CS1", "CS1-000001", "0"))
		mustCode(t, r, protocol.CodeSuccess)
		h := r.header.Get(sign.BodySignHeader)
		if sign.VerifyBodySign(testKey, h, r.raw) != nil || sign.VerifyBodySign(testGeneralKey, h, r.raw) == nil {
			t.Errorf("Body-Sign %q is not the basic key's", h)
		}
		checkWire(t, e.call(queryInstance("nope"))) // V2 answers are unchanged
	})
	t.Run("OrderNotifyAnyKey", func(t *testing.T) {
		e := start(t, Faults{OrderNotifyAnyKey: true})
		body := marshal(t, orderNotify("CS1", "CS1-000001", "0"))
		r := e.postWith(testKey, body)
		checkWire(t, r)
		mustCode(t, r, protocol.CodeSuccess)
		mustCode(t, e.postWith("made-up-key", body), protocol.CodeAuthFailed)
		mustCode(t, e.postWith(testGeneralKey, marshal(t, queryInstance("nope"))), protocol.CodeAuthFailed)
	})
	t.Run("OrderNotifyOptionalTestFlag", func(t *testing.T) {
		e := start(t, Faults{OrderNotifyOptionalTestFlag: true})
		mustCode(t, e.call(orderNotify("CS1", "CS1-000001", "")), protocol.CodeSuccess)
		mustCode(t, e.call(orderNotify("CS1", "CS1-000001", "2")), protocol.CodeInvalidParam)
		mustCode(t, e.call(orderNotify("CS1", "", "0")), protocol.CodeInvalidParam)
	})
	t.Run("OrderNotifyRepeatDiffers", func(t *testing.T) {
		e := start(t, Faults{OrderNotifyRepeatDiffers: true})
		mustCode(t, e.call(orderNotify("CS1", "CS1-000001", "0")), protocol.CodeSuccess)
		r := e.call(orderNotify("CS1", "CS1-000001", "0"))
		checkWire(t, r)
		mustCode(t, r, protocol.CodeInternal)
	})
	t.Run("ConcurrentProcessing", func(t *testing.T) {
		const delay = 200 * time.Millisecond
		e := start(t, Faults{ConcurrentProcessing: delay})
		ids := make([]string, 4)
		codes := make([]protocol.ResultCode, len(ids))
		var wg sync.WaitGroup
		for i := range ids {
			wg.Go(func() {
				r := e.call(newInstance("CSCP", "CSCP-000001"))
				ids[i], codes[i] = r.instanceID, r.code
			})
		}
		wg.Wait()
		if slices.Index(codes, protocol.CodeSuccess) < 0 || slices.Index(codes, protocol.CodeProcessing) < 0 {
			t.Errorf("concurrent newInstance answered %v, want 000000 and 000004", codes)
		}
		for i, id := range ids {
			if id == "" || id != ids[0] {
				t.Errorf("call %d: instanceId %q, call 0 %q", i, id, ids[0])
			}
		}
		if e.s.Instances() != 1 {
			t.Errorf("Instances() = %d, want 1", e.s.Instances())
		}
		mustCode(t, e.call(newInstance("CSCP", "CSCP-000001")), protocol.CodeSuccess)

		codes = concurrently(t, 4, func() reply { return e.call(orderNotify("CSCP", "CSCP-000001", "0")) })
		if slices.Index(codes, protocol.CodeSuccess) < 0 || slices.Index(codes, protocol.CodeProcessing) < 0 {
			t.Errorf("concurrent orderNotify answered %v, want 000000 and 000004", codes)
		}
		mustCode(t, e.call(orderNotify("CSCP", "CSCP-000001", "0")), protocol.CodeSuccess)

		begin := time.Now()
		mustCode(t, e.call(orderNotify("CSCP2", "CSCP2-000001", "0")), protocol.CodeSuccess)
		if took := time.Since(begin); took < delay {
			t.Errorf("the first notification of a line took %v, want at least %v", took, delay)
		}
	})
}
