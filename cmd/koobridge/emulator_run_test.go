package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/koobridge/koobridge/emulator"
	"github.com/koobridge/koobridge/internal/testseller"
	"github.com/koobridge/koobridge/protocol"
)

// emulatorPurchase POSTs a purchase (body) to the emulator's JSON API at
// base and returns the POST's status and the run as it ended, as JSON.
// koobridge serve answers newInstance 000004 when provisioning outlasts
// its budget, as on a loaded machine; the run is then pending until the
// emulator's polling finds the instance, so GET runs/{id} is read until
// it is not. Safe to call from several goroutines.
func emulatorPurchase(client *http.Client, base, body string) (int, []byte, error) {
	resp, err := client.Post(base+"/api/emulator/purchases", "application/json", strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return resp.StatusCode, raw, fmt.Errorf("read the purchase's answer: %w", err)
	}
	// Polled every 10 s of emulated time: the first poll after 000004 is
	// 10 s away at real time.
	for deadline := time.Now().Add(2 * waitLong); ; time.Sleep(200 * time.Millisecond) {
		var run struct {
			ID      string `json:"id"`
			Pending bool   `json:"pending"`
		}
		if err := json.Unmarshal(raw, &run); err != nil || !run.Pending {
			return resp.StatusCode, raw, nil // the caller judges it
		}
		if time.Now().After(deadline) {
			return resp.StatusCode, raw, fmt.Errorf("run %s still pending after %v: %s", run.ID, 2*waitLong, raw)
		}
		r, err := client.Get(base + "/api/emulator/runs/" + run.ID)
		if err != nil {
			return resp.StatusCode, raw, fmt.Errorf("GET runs/%s: %w", run.ID, err)
		}
		now, err := io.ReadAll(r.Body)
		r.Body.Close()
		if err != nil || r.StatusCode != http.StatusOK {
			return resp.StatusCode, raw, fmt.Errorf("GET runs/%s: %d %s (%v)", run.ID, r.StatusCode, now, err)
		}
		raw = now
	}
}

// purchase is emulatorPurchase for a test: the settled run is decoded
// into into; anything but 201 fails the test.
func (p *emulateProc) purchase(t *testing.T, body string, into any) {
	t.Helper()
	status, raw, err := emulatorPurchase(http.DefaultClient, p.base, body)
	if err != nil {
		t.Fatalf("purchase %s: %v", body, err)
	}
	if status != http.StatusCreated {
		t.Fatalf("POST purchases %s: %d %s", body, status, raw)
	}
	if err := json.Unmarshal(raw, into); err != nil {
		t.Fatalf("POST purchases %s: %v: %s", body, err, raw)
	}
}

// Review of issue 16, item 7: a purchase the seller answered 000004 is
// pending in the POST's answer; emulatorPurchase returns it as it ended,
// ok once the polling found the instance.
func TestEmulatorPurchaseSettles(t *testing.T) {
	const key = "emulator-run-test-key"
	seller := httptest.NewServer(testseller.New(key, testseller.Faults{Async: true}))
	defer seller.Close()
	// The polls come every 2.8 ms, after the POST has answered.
	em, err := emulator.New(emulator.Config{Target: seller.URL + "/produce", Key: key, AK: emulatorAK, SK: emulatorSK, TimeScale: 3600})
	if err != nil {
		t.Fatal(err)
	}
	defer em.Close()
	api := httptest.NewServer(em.Handler())
	defer api.Close()
	status, raw, err := emulatorPurchase(api.Client(), api.URL, `{"productId":"OFFI-EMU-PERIOD"}`)
	var run emulator.Run
	if err != nil || status != http.StatusCreated || json.Unmarshal(raw, &run) != nil {
		t.Fatalf("purchase: %d %s (%v)", status, raw, err)
	}
	polls := em.Messages(emulator.MessageFilter{SubscriptionID: run.SubscriptionID, Interface: protocol.ActivityQueryInstance})
	if !run.OK || run.Pending || len(polls) != 1 || len(run.Messages) != 2 || run.Messages[1] != polls[0].ID {
		t.Errorf("the purchase as emulatorPurchase returned it: %s; want ok, with the newInstance and the poll message %v", raw, polls)
	}
}
