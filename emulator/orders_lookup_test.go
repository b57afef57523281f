package emulator

import (
	"net/http/httptest"
	"testing"

	"github.com/koobridge/koobridge/internal/openapi"
	"github.com/koobridge/koobridge/internal/testseller"
	"github.com/koobridge/koobridge/protocol"
)

// TestKnowsOrder: KnowsOrder is true exactly for the orders the
// emulator's mocked Open API answers from what the emulator registered
// (a purchase, a renewal, the MOCK* order of a debug purchase), checked
// through a real Query Order, and false for orders it never placed, the
// canned MOCK* ones included.
func TestKnowsOrder(t *testing.T) {
	v, _ := startSeller(t, testseller.Faults{}, nil)
	var period Product
	for _, p := range v.e.Products() {
		if p.ChargingMode == protocol.ChargingPeriod {
			period = p
			break
		}
	}
	if period.ID == "" {
		t.Fatal("no PERIOD product in the catalogue")
	}
	_, sub := v.purchase(PurchaseRequest{ProductID: period.ID})
	_, sub = v.play(sub.ID, "renewal")
	_, debug := v.purchase(PurchaseRequest{ProductID: period.ID, Test: true})
	if len(sub.Orders) != 2 || len(debug.Orders) != 1 {
		t.Fatalf("orders: %v and %v, want a purchase and a renewal, and one debug order", sub.Orders, debug.Orders)
	}

	api := httptest.NewServer(v.e.OpenAPIHandler())
	t.Cleanup(api.Close)
	client, err := openapi.New(openapi.Config{BaseURL: api.URL, AK: testAK, SK: testSK})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range append(sub.Orders, debug.Orders...) {
		if !v.e.KnowsOrder(id) {
			t.Errorf("KnowsOrder(%s) = false for an order it placed", id)
		}
		if _, err := client.QueryOrder(t.Context(), id, ""); err != nil {
			t.Errorf("Query Order %s: %v", id, err)
		}
	}
	for _, tt := range []struct{ name, id string }{
		{"empty", ""},
		{"another emulator's order", "CS2601010000ABCDE"},
		{"a debug order no subscription used", "MOCKMONTYCHANGE"},
	} {
		if v.e.KnowsOrder(tt.id) {
			t.Errorf("%s: KnowsOrder(%q) = true", tt.name, tt.id)
		}
	}
}
