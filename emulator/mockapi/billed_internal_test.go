package mockapi

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/koobridge/koobridge/protocol"
)

// The ledger holds a million kept records over a thousand instances
// without forgetting a key: every record pushed again, by period or by
// metering_sn, is a duplicate, and the totals are exact. BilledLatest
// lists each instance's latest periods without copying the rest.
func TestLedgerMillion(t *testing.T) {
	const instances, periods = 1000, 1000
	h := NewHandler("ak", "sk")
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := base.Add(periods * time.Hour)
	record := func(i, p int, sn string) UsageRecord {
		begin := base.Add(time.Duration(p) * time.Hour)
		return UsageRecord{API: UsageAPINew, InstanceID: fmt.Sprintf("inst-%04d", i), MeteringSN: sn,
			BeginTime: protocol.FormatUsageTime(begin), EndTime: protocol.FormatUsageTime(begin.Add(time.Hour))}
	}
	batch := make([]UsageRecord, 0, periods)
	values := make([]int64, periods)
	for i := range instances {
		batch = batch[:0]
		for p := range periods {
			batch = append(batch, record(i, p, fmt.Sprintf("%04d-%04d", i, p)))
			values[p] = int64(p + 1) // 0.0001 … 0.1
		}
		h.keepUsage(batch, values, now)
	}
	// Again: the first period of every instance under a new sn (same
	// period), and the last under its sn on another period.
	for i := range instances {
		h.keepUsage([]UsageRecord{
			record(i, 0, fmt.Sprintf("new-%04d", i)),
			record(i, periods+5, fmt.Sprintf("%04d-%04d", i, periods-1)),
		}, []int64{7, 7}, now)
	}
	totals := h.BilledTotals()
	if len(totals) != instances {
		t.Fatalf("%d instances billed, want %d", len(totals), instances)
	}
	const wantTotal = periods * (periods + 1) / 2
	for _, b := range totals {
		if b.Total != wantTotal || b.Records != periods || b.Duplicates != 2 {
			t.Fatalf("instance %s billed total %d over %d records with %d duplicates, want %d over %d with 2",
				b.InstanceID, b.Total, b.Records, b.Duplicates, wantTotal, periods)
		}
	}
	b, ok := h.BilledInstance("inst-0500")
	if !ok || len(b.Periods) != periods || b.Periods[0].Duplicates != 1 || b.Periods[periods-1].Duplicates != 1 ||
		!b.Periods[periods-1].Begin.Equal(base.Add((periods-1)*time.Hour)) || b.Periods[1].Duplicates != 0 {
		t.Errorf("inst-0500: %d periods, duplicates first %d last %d", len(b.Periods), b.Periods[0].Duplicates, b.Periods[periods-1].Duplicates)
	}
	// BilledLatest copies only the periods it lists (a copy of every
	// period under the lock alone is over 70 MB here).
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	latest := h.BilledLatest(24)
	runtime.ReadMemStats(&after)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
		t.Errorf("BilledLatest(24) allocated %d MB over a million records, want at most 16", alloc>>20)
	}
	if len(latest) != instances {
		t.Fatalf("BilledLatest: %d instances, want %d", len(latest), instances)
	}
	for _, b := range latest {
		if b.Total != wantTotal || b.Records != periods || b.Duplicates != 2 || len(b.Periods) != 24 ||
			!b.Periods[0].Begin.Equal(base.Add((periods-24)*time.Hour)) || !b.Periods[23].Begin.Equal(base.Add((periods-1)*time.Hour)) ||
			b.Periods[23].Duplicates != 1 || b.Periods[23].Value != periods {
			t.Fatalf("BilledLatest(24) %s: total %d, %d records, %d duplicates, %d periods from %v, want the last 24 of %d, oldest first",
				b.InstanceID, b.Total, b.Records, b.Duplicates, len(b.Periods), b.Periods[0].Begin, periods)
		}
	}
	if n := len(h.UsageRecords()); n != MaxUsageRecords {
		t.Errorf("the log holds %d records, want %d", n, MaxUsageRecords)
	}
}
