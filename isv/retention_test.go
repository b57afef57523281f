package isv_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/isv"
)

// TestRunSweepsLedgerRetention: with retentions set, Run's sweep deletes
// the answered calls older than LedgerRetention and keeps the rejected
// calls younger than LedgerRejectedRetention, and the new calls.
func TestRunSweepsLedgerRetention(t *testing.T) {
	day := 24 * time.Hour
	old := time.Now().Add(-3 * day)
	rows := []store.Call{
		{RequestID: "answered-old", ResultCode: "000000", IdemKey: "newInstance:O:L", CreatedAt: old},
		{RequestID: "rejected-old", ResultCode: "000001", CreatedAt: old},
		{RequestID: "answered-new", ResultCode: "000000", IdemKey: "newInstance:O:L", CreatedAt: time.Now()},
	}
	e := newEnv(t, func(c *isv.Config) {
		c.LedgerRetention = 2 * day
		c.LedgerRejectedRetention = 30 * day
		for _, r := range rows {
			if _, err := store.Of(c.DB).InsertCall(context.Background(), r); err != nil {
				t.Fatal(err)
			}
		}
	})
	eventually(t, "the retention sweep", func() bool {
		return e.metric(t, "koobridge_ledger_swept_total", map[string]string{"kind": "answered"}) == 1
	})
	calls, err := e.st.Calls(context.Background(), store.CallFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, c := range calls {
		left = append(left, c.RequestID)
	}
	if got := strings.Join(left, ","); got != "answered-new,rejected-old" {
		t.Errorf("ledger after the sweep: %s, want answered-new,rejected-old", got)
	}
	if n := e.metric(t, "koobridge_ledger_swept_total", map[string]string{"kind": "rejected"}); n != 0 {
		t.Errorf("swept %v rejected calls, want 0", n)
	}
}

// TestNewRefusesLedgerRetentionBelowFloor: a retention shorter than
// MinLedgerRetention, or negative, is refused with the floor named.
func TestNewRefusesLedgerRetentionBelowFloor(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(*isv.Config)
		wantErr string
	}{
		{"answered below floor", func(c *isv.Config) { c.LedgerRetention = time.Hour }, "answered-call retention 1h0m0s is below the floor of 24h0m0s"},
		{"rejected below floor", func(c *isv.Config) { c.LedgerRejectedRetention = 23 * time.Hour }, "rejected-call retention 23h0m0s is below the floor of 24h0m0s"},
		{"negative", func(c *isv.Config) { c.LedgerRetention = -isv.MinLedgerRetention }, "is negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			cfg := isv.Config{Keys: isv.Keys{Basic: []string{key1}}, DB: store.NewDB(e.st), DataKey: sealKey(t), OpenAPI: isv.OpenAPI{URL: e.orders.URL(), AK: testAK, SK: testSK}, Provisioner: e.prov}
			tc.edit(&cfg)
			_, err := isv.New(cfg)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("isv.New = %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}
