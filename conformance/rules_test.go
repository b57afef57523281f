package conformance

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/koobridge/koobridge/emulator"
	"github.com/koobridge/koobridge/internal/testseller"
)

// rulesOf returns the distinct rules a case broke, sorted.
func rulesOf(c Case) []string {
	set := map[string]bool{}
	for _, f := range c.Failures {
		set[f.Rule] = true
	}
	return slices.Sorted(maps.Keys(set))
}

// wantRules checks that the cases of r broke exactly the rules given
// (sorted), and that every other case passed or was skipped.
func wantRules(t *testing.T, r *Report, want map[string][]string) {
	t.Helper()
	for _, c := range r.Cases {
		rules := want[c.ID]
		if got := rulesOf(c); !slices.Equal(got, rules) {
			t.Errorf("%s broke %q, want %q: %+v", c.ID, got, rules, c.Failures)
		}
	}
	for id := range want {
		if _, ok := r.Case(id); !ok {
			t.Errorf("no case %s", id)
		}
	}
}

// TestEveryRuleReported: a case reports every rule it breaks, not only the
// first. Against a seller that sends no Body-Sign and creates a new
// instance for every repeated newInstance, the edge cases still run on
// the purchase (which got an instanceId) and name both faults; the cases
// of the profile run on its subscription too.
func TestEveryRuleReported(t *testing.T) {
	bodySign := string(emulator.RuleBodySign)
	r := runAgainst(t, testseller.Faults{NoBodySign: true, NewInstanceEveryCall: true}, Config{Profile: ProfilePeriod})
	want := map[string][]string{}
	for _, c := range r.Cases {
		want[c.ID] = []string{bodySign}
	}
	want["edge/repeat-new-instance"] = []string{bodySign, RuleIdempotentNewInstance}
	want["edge/concurrent-new-instance"] = []string{bodySign, RuleIdempotentNewInstance}
	want["edge/deadline"] = nil
	wantRules(t, r, want)
	for _, c := range r.Cases {
		if c.ID != "edge/deadline" && len(c.Exchanges) == 0 {
			t.Errorf("%s made no call", c.ID)
		}
	}
	c, _ := r.Case("edge/repeat-new-instance")
	if len(c.Exchanges) != 2 || c.Exchanges[1].Interface != "newInstance" {
		t.Errorf("edge/repeat-new-instance: %d exchanges, want the purchase and its repeat", len(c.Exchanges))
	}
	c, _ = r.Case("edge/concurrent-new-instance")
	if f := onlyFailures(c, RuleIdempotentNewInstance); len(f) != 1 || !strings.Contains(f[0].Message, "5 concurrent newInstance calls") ||
		!strings.Contains(f[0].Message, "returned 5 instanceIds") {
		t.Errorf("edge/concurrent-new-instance: %+v, want one failure naming 5 instanceIds", f)
	}
	for _, id := range []string{"edge/release-twice", "period/query", "period/unfreeze"} {
		if c, _ := r.Case(id); c.Has(RuleNotRun) {
			t.Errorf("%s did not run: %+v", id, c.Failures)
		}
	}
}

// TestEveryRuleReportedWrongContentType: the same for a wrong Content-Type
// with a seller that does not release twice.
func TestEveryRuleReportedWrongContentType(t *testing.T) {
	ct := string(emulator.RuleContentType)
	r := runAgainst(t, testseller.Faults{WrongContentType: true, ReleaseTwiceFails: true}, Config{Profile: ProfileOneTime})
	want := map[string][]string{}
	for _, c := range r.Cases {
		want[c.ID] = []string{ct}
	}
	want["edge/release-twice"] = []string{ct, RuleIdempotentRelease}
	want["edge/deadline"] = nil
	wantRules(t, r, want)
}

// TestConcurrentCodesDiffer: concurrent newInstance calls for one new
// order line answered 000000 and 000004 fail edge/concurrent-new-instance,
// with a message naming the codes, as the emulator's own idempotency check
// does; the same seller's concurrent orderNotify answers fail
// order/concurrent. Nothing else fails.
func TestConcurrentCodesDiffer(t *testing.T) {
	r := runAgainst(t, testseller.Faults{ConcurrentProcessing: 200 * time.Millisecond}, Config{Profile: "onetime,order"})
	wantRules(t, r, map[string][]string{
		"edge/concurrent-new-instance": {RuleIdempotentNewInstance},
		"order/concurrent":             {RuleIdempotentOrderNotify, string(emulator.RuleResultCode)},
	})
	for _, id := range []string{"edge/concurrent-new-instance", "order/concurrent"} {
		c, _ := r.Case(id)
		if len(c.Exchanges) < concurrentRepeats {
			t.Errorf("%s: %d exchanges, want at least %d", id, len(c.Exchanges), concurrentRepeats)
		}
		for _, f := range c.Failures {
			if f.Rule != string(emulator.RuleResultCode) &&
				(!strings.Contains(f.Message, "000000") || !strings.Contains(f.Message, "000004") || !strings.Contains(f.Message, "concurrent")) {
				t.Errorf("%s: message %q does not name the codes", id, f.Message)
			}
		}
	}
}
