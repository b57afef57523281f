package license

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/jobs"
	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/internal/store/sqlite"
	"github.com/koobridge/koobridge/provision"
)

// devicesOf makes n devices for each code, in the store's order.
func devicesOf(spec ...any) []store.LicenseDevice {
	var out []store.LicenseDevice
	for i := 0; i < len(spec); i += 2 {
		code, n := spec[i].(string), spec[i+1].(int)
		for d := range n {
			out = append(out, store.LicenseDevice{Code: code, Device: fmt.Sprintf("%s-d%d", code, d)})
		}
	}
	return out
}

// TestUsageRequest: one request carries at most 100 codes, every device
// of each; a code possibly cut by a full page waits unless it is alone;
// debug codes are left out.
func TestUsageRequest(t *testing.T) {
	var many []any
	for i := range 150 {
		many = append(many, fmt.Sprintf("C%03d", i), 2)
	}
	tests := []struct {
		name    string
		devices []store.LicenseDevice
		full    bool
		codes   int // entries of the request
		sent    int // devices reported
		last    string
	}{
		{"nothing", nil, false, 0, 0, ""},
		{"a few", devicesOf("A", 1, "B", 3), false, 2, 4, "B"},
		{"more than 100 codes", devicesOf(many...), false, 100, 200, "C099"},
		{"full page: the last code waits", devicesOf("A", 2, "B", 998), true, 1, 2, "A"},
		{"full page of one code: sent", devicesOf("A", 1000), true, 1, 1000, "A"},
		{"debug codes left out", append(devicesOf("A", 1), store.LicenseDevice{Code: "T", Test: true, Device: "t"}), false, 1, 1, "A"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, sent := usageRequest(tc.devices, tc.full)
			if len(req.UsageInfo) != tc.codes || len(sent) != tc.sent {
				t.Fatalf("%d codes, %d devices; want %d, %d", len(req.UsageInfo), len(sent), tc.codes, tc.sent)
			}
			if tc.codes == 0 {
				return
			}
			if err := req.Validate(); err != nil {
				t.Errorf("request does not validate: %v", err)
			}
			last := req.UsageInfo[len(req.UsageInfo)-1]
			if last.License != tc.last {
				t.Errorf("last code %s, want %s", last.License, tc.last)
			}
			items := 0
			for _, e := range req.UsageInfo {
				for _, it := range e.SoftwareUsageInfo {
					if !strings.HasPrefix(it.ID, e.License+"-d") || it.ActiveNum != nil {
						t.Errorf("%s: item %+v", e.License, it)
					}
					items++
				}
			}
			if items != len(sent) {
				t.Errorf("%d items for %d devices sent", items, len(sent))
			}
		})
	}
}

// TestEnqueueUsage: one job per interval, however many replicas enqueue
// it.
func TestEnqueueUsage(t *testing.T) {
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "kb.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	now := time.Date(2026, 12, 7, 10, 30, 0, 0, time.UTC)
	s, err := New(Config{Store: st, Provisioner: provisionerFunc(nil), Jobs: jobs.NewRunner(jobs.Config{Store: st}),
		DeviceKey: []byte(strings.Repeat("k", MinDeviceKey)), Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	hour := now.Truncate(time.Hour)
	for _, start := range []time.Time{hour, hour, hour.Add(time.Hour), hour} {
		if err := s.enqueueUsage(context.Background(), start); err != nil {
			t.Fatal(err)
		}
	}
	js, err := st.Jobs(context.Background(), store.JobFilter{Kind: KindUsage})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, j := range js {
		keys = append(keys, j.UniqueKey)
	}
	want := fmt.Sprintf("license-usage:%d license-usage:%d", hour.Add(time.Hour).Unix(), hour.Unix())
	if strings.Join(keys, " ") != want {
		t.Errorf("jobs %v, want %s", keys, want)
	}
}

// provisionerFunc adapts a function to provision.Provisioner.
type provisionerFunc func(ctx context.Context, ev provision.Event) (provision.Result, error)

func (f provisionerFunc) Provision(ctx context.Context, ev provision.Event) (provision.Result, error) {
	return f(ctx, ev)
}
