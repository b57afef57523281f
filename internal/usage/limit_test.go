package usage_test

import (
	"strings"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/internal/usage"
)

// every record is at most 99999999.9999, but a period's sum is not
// bounded: the push carries a usage_value KooGallery refuses (Double(12,4))
// and the whole period is rejected, after both records were "accepted".
func TestPeriodLimit(t *testing.T) {
	forEachDialect(t, options{}, func(t *testing.T, e *env) {
		now := e.clk.Now()
		e.buy(t, "i-1", onDemand, "P", "O1", now.Add(-2*time.Hour))
		res := e.ingest(t,
			rec("a", "i-1", "60000000", now.Add(-70*time.Minute)),
			rec("b", "i-1", "60000000", now.Add(-65*time.Minute)))
		if res[0].Status != usage.Accepted || res[1].Status != usage.Rejected || !strings.Contains(res[1].Error, "would sum more than 99999999.9999") {
			t.Fatalf("%+v", res)
		}
		// Across batches too.
		res = e.ingest(t, rec("c", "i-1", "40000000", now.Add(-64*time.Minute)), rec("d", "i-1", "39999999.9999", now.Add(-63*time.Minute)))
		if res[0].Status != usage.Rejected || res[1].Status != usage.Accepted {
			t.Fatalf("second batch %+v", res)
		}
		e.drain(t)
		ps := e.periods(t, "i-1")
		if len(ps) != 1 || ps[0].State != store.UsageAccepted || ps[0].Total != store.MaxUsagePeriodTotal {
			t.Errorf("periods %+v, want one accepted at the limit", ps)
		}
		if b := e.billed("i-1"); b.Total != store.MaxUsagePeriodTotal {
			t.Errorf("billed %d", b.Total)
		}
	})
}
