package usage_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/internal/usage"
	"github.com/koobridge/koobridge/protocol"
)

func TestIngestRejects(t *testing.T) {
	forEachDialect(t, options{stopped: true}, func(t *testing.T, e *env) {
		now := e.clk.Now()
		e.buy(t, "i-1", onDemand, "P", "O1", now.Add(-2*time.Hour))
		e.buy(t, "i-period", protocol.ChargingPeriod, "P", "O2", now.Add(-2*time.Hour))
		e.buy(t, "i-rel", onDemand, "P", "O3", now.Add(-2*time.Hour))
		e.release(t, "i-rel", now.Add(-time.Hour))
		ok := now.Add(-10 * time.Minute)
		cases := []struct {
			in   usage.Input
			want string // in the error
		}{
			{rec("", "i-1", "1", ok), "idempotencyKey: missing"},
			{rec("k sp", "i-1", "1", ok), "idempotencyKey: only printable"},
			{rec(strings.Repeat("k", 129), "i-1", "1", ok), "idempotencyKey: longer than 128"},
			{rec("k1", "nope", "1", ok), "unknown instance nope"},
			{rec("k2", "i-period", "1", ok), "not pay-per-use"},
			{rec("k3", "i-1", "0", ok), "must be more than 0"},
			{rec("k4", "i-1", "-1", ok), "must be more than 0"},
			{rec("k5", "i-1", "1.00001", ok), "more than 4 decimals"},
			{rec("k6", "i-1", "1e3", ok), "without an exponent"},
			{rec("k7", "i-1", "100000000", ok), "more than 99999999.9999"},
			{rec("k8", "i-1", "1", now.Add(2*time.Minute)), "in the future"},
			{rec("k9", "i-1", "1", now.Add(-3*time.Hour)), "before the instance started"},
			{rec("k10", "i-rel", "1", now.Add(-30*time.Minute)), "after the instance was released"},
			{rec("k11", "i-1", "1", time.Time{}), "time: missing"},
			{rec("k12", "", "1", ok), "instanceId: missing"},
			{usage.Input{IdempotencyKey: "k13", InstanceID: "i-1", Value: "1", Time: ok, Problem: "value: must be a number"}, "value: must be a number"},
		}
		var in []usage.Input
		for _, c := range cases {
			in = append(in, c.in)
		}
		res := e.ingest(t, in...)
		for i, c := range cases {
			if res[i].Status != usage.Rejected || !strings.Contains(res[i].Error, c.want) {
				t.Errorf("record %d (%+v): got %s %q, want rejected with %q", i, c.in, res[i].Status, res[i].Error, c.want)
			}
		}
		totals, err := e.st.UsageTotals(context.Background(), []string{"i-1", "i-rel"})
		if err != nil {
			t.Fatal(err)
		}
		if len(totals) != 0 {
			t.Errorf("rejected records were summed: %v", totals)
		}
	})
}

func TestIngestTooOld(t *testing.T) {
	forEachDialect(t, options{stopped: true}, func(t *testing.T, e *env) {
		now := e.clk.Now()
		e.buy(t, "i-1", onDemand, "P", "O1", now.Add(-30*24*time.Hour))
		res := e.ingest(t,
			rec("old", "i-1", "1", now.Add(-21*24*time.Hour)),
			rec("fresh", "i-1", "1", now.Add(-20*24*time.Hour)),
		)
		if res[0].Status != usage.Rejected || !strings.Contains(res[0].Error, "older than KooGallery accepts") {
			t.Errorf("a record 21 days old: %+v", res[0])
		}
		if res[1].Status != usage.Accepted {
			t.Errorf("a record 20 days old: %+v", res[1])
		}
	})
}

func TestIngestIdempotency(t *testing.T) {
	forEachDialect(t, options{stopped: true}, func(t *testing.T, e *env) {
		now := e.clk.Now()
		e.buy(t, "i-1", onDemand, "P", "O1", now.Add(-2*time.Hour))
		at := now.Add(-5 * time.Minute)
		res := e.ingest(t,
			rec("a", "i-1", "1.5", at),
			rec("a", "i-1", "1.50", at), // the same record, written otherwise
			rec("a", "i-1", "2", at),    // the same key, other content
		)
		want := []string{usage.Accepted, usage.Duplicate, usage.Rejected}
		for i, w := range want {
			if res[i].Status != w {
				t.Errorf("record %d: %+v, want %s", i, res[i], w)
			}
		}
		res = e.ingest(t, rec("a", "i-1", "1.5", at), rec("a2", "i-1", "1.5", at.Add(time.Second)), rec("a", "i-1", "1.6", at))
		want = []string{usage.Duplicate, usage.Accepted, usage.Rejected}
		for i, w := range want {
			if res[i].Status != w {
				t.Errorf("second batch, record %d: %+v, want %s", i, res[i], w)
			}
		}
		if !strings.Contains(res[2].Error, "other content") {
			t.Errorf("other content: %q", res[2].Error)
		}
		totals, err := e.st.UsageTotals(context.Background(), []string{"i-1"})
		if err != nil {
			t.Fatal(err)
		}
		if got := totals["i-1"]; got.Total != 30000 || got.Records != 2 {
			t.Errorf("total %+v, want 3 over 2 records", got)
		}
	})
}

// TestPushOncePerPeriod reports usage over three hours for two instances
// and checks that KooGallery gets one record per instance and hour, with
// the deterministic metering_sn, adding up to what was reported.
func TestPushOncePerPeriod(t *testing.T) {
	forEachDialect(t, options{}, func(t *testing.T, e *env) {
		now := e.clk.Now()
		created := now.Add(-3*time.Hour - 10*time.Minute)
		for _, id := range []string{"i-a", "i-b"} {
			e.buy(t, id, onDemand, "P", "O-"+id, created)
		}
		var in []usage.Input
		want := map[string]int64{}
		for h := 0; h < 3; h++ {
			for m := 0; m < 4; m++ {
				at := now.Add(-time.Duration(h)*time.Hour - time.Duration(m*10+1)*time.Minute)
				for _, id := range []string{"i-a", "i-b"} {
					in = append(in, rec(fmt.Sprintf("%s-%d-%d", id, h, m), id, "0.25", at))
					want[id] += 2500
				}
			}
		}
		for _, r := range e.ingest(t, in...) {
			if r.Status != usage.Accepted {
				t.Fatalf("%+v", r)
			}
		}
		e.clk.Advance(time.Hour) // every period has closed
		e.drain(t)
		for _, id := range []string{"i-a", "i-b"} {
			b := e.billed(id)
			if b.Total != want[id] || b.Duplicates != 0 {
				t.Errorf("%s billed %d (duplicates %d), want %d", id, b.Total, b.Duplicates, want[id])
			}
			ps := e.periods(t, id)
			if len(b.Periods) != len(ps) || len(ps) != 4 {
				t.Fatalf("%s: %d periods billed, %d kept, want 4", id, len(b.Periods), len(ps))
			}
			for i, p := range ps {
				if p.State != store.UsageAccepted || p.MeteringSN != usage.MeteringSN(id, p.Start) {
					t.Errorf("%s period %v: %s sn %s", id, p.Start, p.State, p.MeteringSN)
				}
				bp := b.Periods[i]
				if bp.MeteringSN != p.MeteringSN || bp.Value != p.Total || !bp.End.Equal(p.End) {
					t.Errorf("%s period %v: billed %+v, kept %+v", id, p.Start, bp, p)
				}
			}
			// The first period begins when the instance started.
			if first := b.Periods[0]; !first.Begin.Equal(created.Truncate(time.Second)) {
				t.Errorf("%s first begin_time %v, want the instance's start %v", id, first.Begin, created)
			}
		}
	})
}

// TestLateUsage checks that usage reported for a period already pushed
// is billed in the current period, never as a second record.
func TestLateUsage(t *testing.T) {
	forEachDialect(t, options{}, func(t *testing.T, e *env) {
		now := e.clk.Now()
		e.buy(t, "i-1", onDemand, "P", "O1", now.Add(-2*time.Hour))
		e.ingest(t, rec("a", "i-1", "1", now.Add(-time.Hour)))
		e.drain(t)
		late := e.ingest(t, rec("late", "i-1", "2", now.Add(-time.Hour)))
		if late[0].Status != usage.Accepted {
			t.Fatalf("late record: %+v", late[0])
		}
		recs, err := e.st.UsageRecords(context.Background(), store.UsageRecordFilter{InstanceID: "i-1"})
		if err != nil {
			t.Fatal(err)
		}
		cur, _ := hourOf(e.clk.Now())
		for _, r := range recs {
			if r.IdempotencyKey == "late" && (!r.Carried || !r.PeriodStart.Equal(cur)) {
				t.Errorf("late record billed in %v (carried %v), want the current period %v", r.PeriodStart, r.Carried, cur)
			}
		}
		e.clk.Advance(time.Hour)
		e.drain(t)
		b := e.billed("i-1")
		if b.Total != 30000 || b.Duplicates != 0 || len(b.Periods) != 2 {
			t.Errorf("billed %+v, want 3 in two periods and no duplicate", b)
		}
	})
}

func hourOf(t time.Time) (time.Time, time.Time) {
	h := t.UTC().Truncate(time.Hour)
	return h, h.Add(time.Hour)
}

// TestCatchUp stops the server for five hours of usage and checks that
// every window is pushed when it comes back.
func TestCatchUp(t *testing.T) {
	forEachDialect(t, options{stopped: true}, func(t *testing.T, e *env) {
		now := e.clk.Now()
		e.buy(t, "i-1", onDemand, "P", "O1", now.Add(-time.Hour))
		var in []usage.Input
		for h := 0; h < 5; h++ {
			e.clk.Advance(time.Hour)
			in = append(in, rec(fmt.Sprint(h), "i-1", "1", e.clk.Now().Add(-time.Minute)))
		}
		e.ingest(t, in...)
		e.clk.Advance(time.Hour)
		e.run(t)
		e.drain(t)
		b := e.billed("i-1")
		if len(b.Periods) != 5 || b.Total != 50000 {
			t.Errorf("after the downtime: %d periods billed, total %d; want 5 and 50000", len(b.Periods), b.Total)
		}
	})
}

// TestDeadLetter stops the server with usage not pushed, for longer than
// KooGallery takes it: the periods older than 21 days are dead, never
// pushed; the others are pushed and the imitation (which applies the
// 21-day rule itself) takes them all.
func TestDeadLetter(t *testing.T) {
	for _, c := range []struct {
		name     string
		down     time.Duration
		dead     int
		accepted int
	}{
		{"22 days", 22 * 24 * time.Hour, 6, 0},
		// The clock starts at half past: the boundary falls at 2h30 back,
		// so the periods that began 3 to 6 hours before are dead.
		{"21 days less 3 hours", 21*24*time.Hour - 3*time.Hour, 4, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			forEachDialect(t, options{stopped: true}, func(t *testing.T, e *env) {
				now := e.clk.Now()
				e.buy(t, "i-1", onDemand, "P", "O1", now.Add(-7*time.Hour))
				var in []usage.Input
				for h := 1; h <= 6; h++ {
					in = append(in, rec(fmt.Sprint(h), "i-1", "1", now.Add(-time.Duration(h)*time.Hour)))
				}
				e.ingest(t, in...)
				e.clk.Advance(c.down)
				e.run(t)
				e.drain(t)
				counts, err := e.st.UsagePeriodCounts(context.Background(), "i-1")
				if err != nil {
					t.Fatal(err)
				}
				if counts[store.UsageDead] != int64(c.dead) || counts[store.UsageAccepted] != int64(c.accepted) {
					t.Errorf("periods %v, want %d dead and %d accepted", counts, c.dead, c.accepted)
				}
				if b := e.billed("i-1"); len(b.Periods) != c.accepted {
					t.Errorf("KooGallery billed %d periods, want %d", len(b.Periods), c.accepted)
				}
				for _, p := range e.periods(t, "i-1") {
					tooOld := p.Start.Before(e.clk.Now().Add(-usage.MaxAge))
					if tooOld != (p.State == store.UsageDead) {
						t.Errorf("period %v (too old %v): %s", p.Start, tooOld, p.State)
					}
				}
			})
		})
	}
}

// TestPushFailures makes a third of the pushes fail in each of the
// imitation's ways: every period still arrives once, with one
// metering_sn, and the totals add up.
func TestPushFailures(t *testing.T) {
	forEachDialect(t, options{failRate: 0.3}, func(t *testing.T, e *env) {
		now := e.clk.Now()
		const instances, hours = 20, 6
		want := map[string]int64{}
		var in []usage.Input
		for i := range instances {
			id := fmt.Sprintf("i-%02d", i)
			e.buy(t, id, onDemand, "P", "O-"+id, now.Add(-hours*time.Hour))
			for h := range hours {
				for m := range 3 {
					v := int64(i*100 + h*10 + m + 1)
					in = append(in, rec(fmt.Sprintf("%s/%d/%d", id, h, m), id, usage.FormatValue(v), now.Add(-time.Duration(h)*time.Hour-time.Duration(m+1)*time.Minute)))
					want[id] += v
				}
			}
		}
		for len(in) > 0 {
			n := min(len(in), 100)
			e.ingest(t, in[:n]...)
			in = in[n:]
		}
		e.clk.Advance(time.Hour)
		e.drain(t)
		for id, w := range want {
			b := e.billed(id)
			if b.Total != w {
				t.Errorf("%s billed %d, want %d", id, b.Total, w)
			}
			seen := map[time.Time]string{}
			for _, p := range b.Periods {
				if sn, dup := seen[p.Begin]; dup {
					t.Errorf("%s period %v kept twice (%s, %s)", id, p.Begin, sn, p.MeteringSN)
				}
				seen[p.Begin] = p.MeteringSN
			}
			if len(b.Periods) != len(e.periods(t, id)) {
				t.Errorf("%s: %d periods billed, %d kept", id, len(b.Periods), len(e.periods(t, id)))
			}
		}
	})
}

// TestPackageUsageInfo checks queryInstance's usageInfo of a package: one
// entry per pay-per-use item of its order.
func TestPackageUsageInfo(t *testing.T) {
	forEachDialect(t, options{stopped: true}, func(t *testing.T, e *env) {
		now := e.clk.Now()
		p := e.buy(t, "pkg", pkg, "P", "O1", now.Add(-time.Hour))
		item := e.buy(t, "sms", onDemand, "P", "O1", now.Add(-time.Hour))
		other := e.buy(t, "solo", onDemand, "P", "O2", now.Add(-time.Hour))
		e.ingest(t, rec("a", "sms", "2.5", now.Add(-10*time.Minute)), rec("b", "sms", "1", now.Add(-5*time.Minute)))
		info, err := e.svc.UsageInfo(context.Background(), []store.Instance{p, item, other})
		if err != nil {
			t.Fatal(err)
		}
		got := info["pkg"]
		if len(got) != 1 || got[0].RelatedInstanceID != "sms" || got[0].UsageValue.String() != "3.5" ||
			got[0].StatisticalTime != protocol.FormatTime17(now.Add(-5*time.Minute)) {
			t.Errorf("package usageInfo %+v", got)
		}
		if s := info["sms"]; len(s) != 1 || s[0].UsageValue.String() != "3.5" || s[0].RelatedInstanceID != "" {
			t.Errorf("item usageInfo %+v", s)
		}
		if s := info["solo"]; len(s) != 1 || s[0].UsageValue.String() != "0" {
			t.Errorf("instance without usage %+v", s)
		}
	})
}
