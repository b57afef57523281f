package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// emulatorPurchase POSTs a purchase (body: JSON text, or a value to
// encode) to the emulator's JSON API at emu, decodes the run as it ended
// into out and returns the POST's status and that run's JSON. koobridge
// serve answers newInstance 000004 when provisioning outlasts its budget,
// as on a loaded machine; the run is then pending until the emulator's
// polling finds the instance, so GET runs/{id} is read until it is not.
func emulatorPurchase(t *testing.T, emu string, body, out any) (int, string) {
	t.Helper()
	if s, ok := body.(string); ok {
		body = json.RawMessage(s)
	}
	// out takes the run as it ended alone: decoding the pending one into
	// it first would leave fields the ended one leaves out ("pending").
	code, raw := callJSON(t, "POST", emu+"/api/emulator/purchases", "", body, nil)
	// Polled every 10 s of emulated time: the first poll after 000004 is
	// 10 s away at real time.
	const wait = 2 * time.Minute
	for deadline := time.Now().Add(wait); ; time.Sleep(200 * time.Millisecond) {
		var run struct {
			ID      string `json:"id"`
			Pending bool   `json:"pending"`
		}
		if json.Unmarshal([]byte(raw), &run) != nil || !run.Pending {
			if out == nil {
				return code, raw
			}
			if err := json.Unmarshal([]byte(raw), out); err != nil {
				t.Fatalf("POST purchases: %d %s: %v", code, raw, err)
			}
			return code, raw // the caller judges it
		}
		if time.Now().After(deadline) {
			t.Fatalf("purchase: run %s still pending after %v: %s", run.ID, wait, raw)
		}
		if c, now := callJSON(t, "GET", emu+"/api/emulator/runs/"+run.ID, "", nil, nil); c != http.StatusOK {
			t.Fatalf("GET runs/%s: %d %s", run.ID, c, now)
		} else {
			raw = now
		}
	}
}

// Review of issue 16, item 7: a purchase answered pending is read again
// until it has ended, and the caller sees how it ended. (An emulator's
// JSON API played by hand: the run is pending for two reads.)
func TestEmulatorPurchaseSettles(t *testing.T) {
	var reads atomic.Int32
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == "POST" && r.URL.Path == "/api/emulator/purchases":
			w.WriteHeader(http.StatusCreated)
			fmt.Fprint(w, `{"id":"run-000007","subscriptionId":"sub-000001","ok":false,"pending":true,"waiting":"sub-000001 is provisioning"}`)
		case r.Method == "GET" && r.URL.Path == "/api/emulator/runs/run-000007":
			if reads.Add(1) < 3 {
				fmt.Fprint(w, `{"id":"run-000007","subscriptionId":"sub-000001","ok":false,"pending":true,"waiting":"sub-000001 is provisioning"}`)
				return
			}
			fmt.Fprint(w, `{"id":"run-000007","subscriptionId":"sub-000001","ok":true}`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer api.Close()
	var run struct {
		SubscriptionID string `json:"subscriptionId"`
		OK             bool   `json:"ok"`
		Pending        bool   `json:"pending"`
	}
	code, raw := emulatorPurchase(t, api.URL, `{"productId":"OFFI-EMU-PERIOD"}`, &run)
	if code != http.StatusCreated || !run.OK || run.Pending || run.SubscriptionID != "sub-000001" || reads.Load() != 3 || strings.Contains(raw, "pending") {
		t.Errorf("purchase: %d %s after %d reads, decoded %+v; want the run as it ended, ok", code, raw, reads.Load(), run)
	}
}
