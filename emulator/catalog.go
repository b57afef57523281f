package emulator

import (
	"crypto/rand"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/koobridge/koobridge/emulator/mockapi"
	"github.com/koobridge/koobridge/protocol"
)

// DefaultProducts returns the default catalogue: one SaaS V2 product per
// charging mode (the PERIOD one monthly with a 7-day trial), a monthly V2
// joint-operation product (OFFI-EMU-JOINT: the Kit scenarios through
// KitV2) and a monthly V1 product with a 7-day trial (OFFI-EMU-V1: its
// lifecycle through the V1 family; it is a joint-operation product too,
// so the Kit scenarios play on it through KitV1), and two monthly license
// products: OFFI-EMU-LICENSE (license codes, license-openapi.md §A) and
// OFFI-EMU-ONLINELICENSE (online license, §C).
func DefaultProducts() []Product {
	return []Product{
		{ID: "OFFI-EMU-PERIOD", SKU: "SKU-EMU-PERIOD-MONTH", Name: "Emulator monthly plan", ChargingMode: protocol.ChargingPeriod, PeriodType: "month", PeriodNumber: 1, TrialDays: 7},
		{ID: "OFFI-EMU-ONETIME", SKU: "SKU-EMU-ONETIME", Name: "Emulator one-time purchase", ChargingMode: protocol.ChargingOneTime},
		{ID: "OFFI-EMU-ONDEMAND", SKU: "SKU-EMU-ONDEMAND", Name: "Emulator pay-per-use", ChargingMode: protocol.ChargingOnDemand},
		{ID: "OFFI-EMU-ONDEMANDPKG", SKU: "SKU-EMU-ONDEMANDPKG", Name: "Emulator pay-per-use package", ChargingMode: protocol.ChargingOnDemandPkg},
		{ID: "OFFI-EMU-JOINT", SKU: "SKU-EMU-JOINT-MONTH", Name: "Emulator joint-operation monthly plan", ChargingMode: protocol.ChargingPeriod, PeriodType: "month", PeriodNumber: 1, Protocol: ProtocolV2, Joint: true},
		{ID: "OFFI-EMU-V1", SKU: "SKU-EMU-V1-MONTH", Name: "Emulator SaaS V1 monthly plan (joint operation)", ChargingMode: protocol.ChargingPeriod, PeriodType: "month", PeriodNumber: 1, TrialDays: 7, Protocol: ProtocolV1, Joint: true},
		{ID: LicenseProductID, SKU: "SKU-EMU-LICENSE-MONTH", Name: "Emulator license code, monthly", ChargingMode: protocol.ChargingPeriod, PeriodType: "month", PeriodNumber: 1, Protocol: ProtocolLicense},
		{ID: OnlineLicenseProductID, SKU: "SKU-EMU-ONLINELICENSE-MONTH", Name: "Emulator online license, monthly", ChargingMode: protocol.ChargingPeriod, PeriodType: "month", PeriodNumber: 1, Protocol: ProtocolOnlineLicense},
	}
}

func (p Product) validate() error {
	if p.ID == "" || p.SKU == "" {
		return fmt.Errorf("emulator: product: ID and SKU are required")
	}
	if len(p.ID) > 64 || len(p.SKU) > 64 {
		return fmt.Errorf("emulator: product %q: ID and SKU must be at most 64 characters", p.ID)
	}
	switch p.ChargingMode {
	case protocol.ChargingPeriod:
		if p.PeriodType != "month" && p.PeriodType != "year" {
			return fmt.Errorf("emulator: product %q: PeriodType %q, want month or year", p.ID, p.PeriodType)
		}
		if p.PeriodNumber <= 0 {
			return fmt.Errorf("emulator: product %q: PeriodNumber must be positive", p.ID)
		}
	case protocol.ChargingOneTime, protocol.ChargingOnDemand, protocol.ChargingOnDemandPkg:
		if p.TrialDays > 0 {
			return fmt.Errorf("emulator: product %q: trials are for PERIOD products only", p.ID)
		}
	default:
		return fmt.Errorf("emulator: product %q: unknown charging mode %q", p.ID, p.ChargingMode)
	}
	switch p.Protocol {
	case "", ProtocolV2, ProtocolV1:
	case ProtocolLicense, ProtocolOnlineLicense:
		if p.ChargingMode != protocol.ChargingPeriod && p.ChargingMode != protocol.ChargingOneTime {
			return fmt.Errorf("emulator: product %q: %s products are PERIOD or ONE_TIME, not %s", p.ID, p.Protocol, p.ChargingMode)
		}
		if p.TrialDays > 0 || p.Joint {
			return fmt.Errorf("emulator: product %q: %s products have no trial and are not joint-operation products", p.ID, p.Protocol)
		}
	default:
		return fmt.Errorf("emulator: product %q: protocol %q, want %s, %s, %s or %s", p.ID, p.Protocol, ProtocolV2, ProtocolV1, ProtocolLicense, ProtocolOnlineLicense)
	}
	if p.TrialDays < 0 {
		return fmt.Errorf("emulator: product %q: TrialDays is negative", p.ID)
	}
	return nil
}

// buyer is the one customer who buys everything from an emulator.
type buyer struct{ customerID, userID string }

func newBuyer() buyer {
	return buyer{customerID: NewNonce(), userID: NewNonce()}
}

func (b buyer) info() *protocol.BuyerInfo {
	return &protocol.BuyerInfo{
		CustomerID:   protocol.FlexString(b.customerID),
		CustomerName: "emulator-buyer",
		CustomerType: "1",
		UserID:       protocol.FlexString(b.userID),
		UserName:     "emulator-buyer",
	}
}

// readRandom fills order IDs' random characters; tests replace it.
var readRandom = rand.Read

// newOrderID returns a KooGallery-like order ID: "CS", yyMMddHHmm of the
// emulated time, five random characters (e.g. CS2211181819B4LVS).
func newOrderID(now time.Time) string {
	const alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	var b [5]byte
	_, _ = readRandom(b[:])
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return "CS" + now.UTC().Format("0601021504") + string(b[:])
}

// orderLineID is the only line of an emulator order.
func orderLineID(orderID string) string { return orderID + "-000001" }

// orderSpec is what an order says about the line it sells.
type orderSpec struct {
	orderType    string
	expire       time.Time // zero: none (one-time, pay-per-use, unsubscribe of those)
	periodType   string
	periodNumber int
	sku          string
	linearValue  int
}

// order is an order placed for one step: its ID and line.
type order struct {
	id, line string
}

// placeOrderLocked creates an order for sub at emulated time now and
// registers it with the Open API imitation. A test subscription uses the
// debug order mockID instead, registered with its canned data as of now,
// so that Query Order answers on the emulated clock as the subscription
// does (openapitest would otherwise answer on the wall clock); an empty
// mockID gives it a fresh order like a real one (license-code renewals).
// It returns the order and, for a debug order, its line's expiry (zero if
// none).
func (e *Emulator) placeOrderLocked(sub *Subscription, spec orderSpec, mockID string, now time.Time) (order, time.Time) {
	if sub.Test && mockID != "" {
		sub.Orders = append(sub.Orders, mockID)
		var exp time.Time
		if info, ok := mockapi.MockOrder(mockID, now); ok {
			e.openapi.AddOrder(info)
			if len(info.OrderLine) > 0 {
				if t, err := protocol.ParseExpireTime(string(info.OrderLine[0].ExpireTime)); err == nil {
					exp = t
				}
			}
		}
		return order{id: mockID, line: orderLineID(mockID)}, exp
	}
	id := newOrderID(now)
	for e.orderIDs[id] {
		id = newOrderID(now)
	}
	if e.orderIDs == nil {
		e.orderIDs = map[string]bool{}
	}
	e.orderIDs[id] = true
	line := protocol.OrderLine{
		OrderLineID:           protocol.FlexString(orderLineID(id)),
		ChargingMode:          protocol.FlexString(sub.ChargingMode),
		PeriodType:            protocol.FlexString(spec.periodType),
		Currency:              "CNY",
		CurrencyAfterDiscount: "CNY",
		ProductInfo: protocol.ProductInfoList{{
			ProductID:   protocol.FlexString(sub.ProductID),
			SKUCode:     protocol.FlexString(spec.sku),
			LinearValue: protocol.FlexNumber(strconv.Itoa(spec.linearValue)),
			ProductName: protocol.FlexString(e.productNameLocked(sub.ProductID)),
		}},
	}
	if spec.periodNumber > 0 {
		line.PeriodNumber = protocol.FlexNumber(strconv.Itoa(spec.periodNumber))
	}
	if !spec.expire.IsZero() {
		line.ExpireTime = protocol.FlexString(protocol.FormatTime14(spec.expire))
	}
	e.openapi.AddOrder(protocol.OrderInfo{
		OrderID:    protocol.FlexString(id),
		OrderType:  protocol.FlexString(spec.orderType),
		CreateTime: protocol.FlexString(protocol.FormatTime14(now)),
		OrderLine:  []protocol.OrderLine{line},
		BuyerInfo:  e.buyer.info(),
	})
	sub.Orders = append(sub.Orders, id)
	return order{id: id, line: orderLineID(id)}, time.Time{}
}

func (e *Emulator) productLocked(id string) (Product, bool) {
	i := slices.IndexFunc(e.products, func(p Product) bool { return p.ID == id })
	if i < 0 {
		return Product{}, false
	}
	return e.products[i], true
}

func (e *Emulator) productNameLocked(id string) string {
	p, _ := e.productLocked(id)
	return p.Name
}

// addPeriod moves t by n periods of type typ ("year", "month" or "day").
func addPeriod(t time.Time, typ string, n int) time.Time {
	switch typ {
	case "year":
		return t.AddDate(n, 0, 0)
	case "month":
		return t.AddDate(0, n, 0)
	case "day":
		return t.AddDate(0, 0, n)
	}
	return t
}

// changedPeriod is where a renewal change takes a subscription: monthly
// becomes yearly and anything else monthly, one period, with a SKU named
// after the new period (UNCONFIRMED: KooGallery's change options are the
// product's own).
func changedPeriod(sub *Subscription, base Product) (typ string, n int, sku string) {
	typ = "month"
	if sub.PeriodType == "month" {
		typ = "year"
	}
	sku = base.SKU
	if typ != base.PeriodType {
		sku = base.SKU + "-" + typ
		if len(sku) > 64 {
			sku = sku[:64]
		}
	}
	return typ, 1, sku
}

func (s *Subscription) clone() Subscription {
	c := *s
	c.busy, c.gen, c.dups, c.playOpts = false, 0, 0, PlayOptions{}
	c.Orders = slices.Clone(s.Orders)
	c.LicenseEvents = slices.Clone(s.LicenseEvents)
	if s.AppInfo != nil {
		a := *s.AppInfo
		c.AppInfo = &a
	}
	return c
}
