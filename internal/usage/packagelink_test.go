package usage_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/store"
)

// TestPackageLink: the pushes of a pay-per-use item bought in one order with
// a package carry relate_pkg_instance, the package's instance.
func TestPackageLink(t *testing.T) {
	forEachDialect(t, options{}, func(t *testing.T, e *env) {
		now := e.clk.Now()
		e.buy(t, "i-item", onDemand, "P", "O1", now.Add(-2*time.Hour))
		e.buy(t, "i-pkg", pkg, "P", "O1", now.Add(-2*time.Hour))
		e.ingest(t, rec("a", "i-item", "1", now.Add(-90*time.Minute)))
		e.drain(t)
		pushes, _ := e.st.UsagePushes(context.Background(), store.UsagePushFilter{Limit: 100})
		for _, p := range pushes {
			if !strings.Contains(string(p.Body), `"relate_pkg_instance":"i-pkg"`) {
				t.Errorf("control: %s", p.Body)
			}
		}
	})
}
