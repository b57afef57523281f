package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/koobridge/koobridge/emulator"
	"github.com/koobridge/koobridge/internal/testseller"
	"github.com/koobridge/koobridge/protocol"
)

// Review of issue 16, item 4: the demo's table of a run that was pending
// when Purchase or Play returned. printRun prints the run as it ended
// (Outcome: the polls after 000004 and their result), and a run still
// pending is an error that says what it waits for.
func TestDemoPrintRunPending(t *testing.T) {
	const key = "demo-pending-test-key"
	for _, tt := range []struct {
		name      string
		async     bool   // the seller answers newInstance 000004, then polls
		failRenew bool   // the seller fails the first refreshInstance
		scenario  string // played after the purchase; "" prints the purchase
		rows      []string
		err       string
	}{
		{
			name: "settled after 000004", async: true,
			rows: []string{"purchase\tnewInstance\t000004\t", "purchase\tqueryInstance\t000000\t"},
		},
		{
			name: "still waiting for a retry", failRenew: true, scenario: "renewal",
			rows: []string{"renewal\trefreshInstance\t (http-status: "},
			err:  "renewal: still pending: waiting for message ",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			seller := testseller.New(key, testseller.Faults{Async: tt.async})
			var renewFailed atomic.Bool
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				var req struct {
					Activity string `json:"activity"`
				}
				_ = json.Unmarshal(b, &req)
				if tt.failRenew && req.Activity == protocol.ActivityRefreshInstance && renewFailed.CompareAndSwap(false, true) {
					http.Error(w, "down", http.StatusServiceUnavailable)
					return
				}
				r.Body = io.NopCloser(bytes.NewReader(b))
				seller.ServeHTTP(w, r)
			}))
			defer srv.Close()
			// At 3,600 times real time the polls after 000004 come every
			// 2.8 ms; at real time the renewal's retry is 10 minutes away,
			// long after printRun has read the run (it waits for nothing
			// then: the subscription is active).
			scale := 3600.0
			if tt.failRenew {
				scale = 1
			}
			em, err := emulator.New(emulator.Config{Target: srv.URL + "/produce", Key: key, AK: emulatorAK, SK: emulatorSK, TimeScale: scale})
			if err != nil {
				t.Fatal(err)
			}
			defer em.Close()
			ctx := context.Background()
			run, err := em.Purchase(ctx, emulator.PurchaseRequest{ProductID: "OFFI-EMU-PERIOD"})
			if err != nil {
				t.Fatal(err)
			}
			if tt.scenario != "" {
				if run, err = em.Play(ctx, run.SubscriptionID, tt.scenario); err != nil {
					t.Fatal(err)
				}
			}
			if !run.Pending {
				t.Fatalf("%s: %+v; want it pending", run.Scenario, run)
			}
			var out bytes.Buffer
			err = printRun(ctx, em, &out, run)
			lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
			if len(lines) != len(tt.rows) {
				t.Fatalf("printRun wrote %d rows, want %d:\n%s", len(lines), len(tt.rows), out.String())
			}
			for i, want := range tt.rows {
				if !strings.Contains(lines[i], want) {
					t.Errorf("row %d: %q, want it to have %q", i+1, lines[i], want)
				}
			}
			switch {
			case tt.err == "" && err != nil:
				t.Errorf("printRun: %v; want the settled run, ok", err)
			case tt.err == "":
				if sub, _ := em.Subscription(run.SubscriptionID); !strings.Contains(lines[len(lines)-1], "\t"+sub.InstanceID+"\tactive\t") {
					t.Errorf("the last row %q does not show %s active", lines[len(lines)-1], sub.InstanceID)
				}
			case err == nil || !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), "(refreshInstance) is retrying: next attempt at "):
				t.Errorf("printRun: %v; want %q with what it waits for", err, tt.err)
			}
		})
	}
}
