package emulator

import "slices"

// KnowsOrder reports whether the emulator placed the order orderID for
// one of its subscriptions: a fresh order, or a debug (MOCK*) order a test
// subscription used. Its mocked Open API answers Query Order for such an
// order from what the emulator registered. A process that runs the
// emulator beside another mocked Open API (koobridge demo beside a
// conformance run) routes a seller's Query Order by it, so that each
// question reaches the imitation that knows the answer.
func (e *Emulator) KnowsOrder(orderID string) bool {
	if orderID == "" {
		return false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.orderIDs[orderID] {
		return true
	}
	// Debug orders are not issued: a test subscription only records the
	// MOCK* order it used.
	for _, s := range e.subs {
		if slices.Contains(s.Orders, orderID) {
			return true
		}
	}
	return false
}
