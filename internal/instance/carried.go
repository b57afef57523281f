package instance

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/koobridge/koobridge/internal/mask"
	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/provision"
)

// carriedSource marks an instance's OrderJSON as an order its purchase
// call carried (SaaS V1 newInstance), not a Query Order orderInfo.
const carriedSource = "newInstance"

// carried is how an instance keeps an order its purchase call carried:
// the order with the buyer's personal data masked by package mask (what
// operators see), and the buyer in full, sealed with the data key, for
// instance.created (which may run again later: a retry, an operator's
// re-provisioning).
type carried struct {
	Source      string          `json:"source"`
	Order       provision.Order `json:"order"`
	BuyerSealed string          `json:"buyerSealed,omitempty"`
}

// carry stores order o on the instance being created: what the instance
// keeps of it (product, SKU, charging mode, period, expiry, linear value,
// customer), and OrderJSON with the buyer masked and sealed. The order is
// then known: OrderState is fetched, so Query Order is never asked.
func (s *Service) carry(in *store.Instance, o provision.Order) error {
	c := carried{Source: carriedSource, Order: o}
	b := o.Buyer
	if b.UserID != "" || b.UserName != "" || b.MobilePhone != "" || b.Email != "" || b.CustomerRealName != "" {
		full, err := json.Marshal(b)
		if err != nil {
			return fmt.Errorf("instance: encode buyer: %w", err)
		}
		if c.BuyerSealed, err = s.sealer.Seal(string(full)); err != nil {
			return fmt.Errorf("instance: seal buyer: %w", err)
		}
	}
	// The same rule as MaskedOrderJSON: contact data and personal names
	// masked, the customer's id and account name readable.
	c.Order.Buyer.MobilePhone = mask.Phone(b.MobilePhone)
	c.Order.Buyer.Email = mask.Email(b.Email)
	c.Order.Buyer.UserName = mask.Name(b.UserName)
	c.Order.Buyer.CustomerRealName = mask.Name(b.CustomerRealName)
	out, err := protocol.Marshal(c)
	if err != nil {
		return fmt.Errorf("instance: encode carried order: %w", err)
	}
	in.ProductID, in.SKUCode, in.LinearValue = o.ProductID, o.SKUCode, o.LinearValue
	in.ChargingMode, in.PeriodType, in.PeriodNumber = o.ChargingMode, o.PeriodType, o.PeriodNumber
	in.CustomerID, in.CustomerName = b.CustomerID, b.CustomerName
	in.ExpireTime = o.ExpireTime.UTC() // zero stays zero
	in.OrderJSON = string(out)
	in.OrderState = store.OrderFetched
	return nil
}

// readCarried decodes an instance's carried order; ok is false when its
// OrderJSON is not one (a Query Order orderInfo, or nothing yet).
func readCarried(in store.Instance) (c carried, ok bool) {
	if in.OrderJSON == "" || json.Unmarshal([]byte(in.OrderJSON), &c) != nil {
		return carried{}, false
	}
	return c, c.Source == carriedSource
}

// Carried reports whether the instance's purchase call carried its order
// (SaaS V1): such an instance's credentials are always encrypted in
// replies, and its usage goes by the old usage push.
func Carried(in store.Instance) bool {
	_, ok := readCarried(in)
	return ok
}

// carriedOrder returns the order the instance's purchase call carried,
// with the buyer unsealed, for instance.created; nil for an instance whose
// order came from Query Order. The error never holds the buyer's data.
func (s *Service) carriedOrder(in store.Instance) (*provision.Order, error) {
	c, ok := readCarried(in)
	if !ok {
		return nil, nil
	}
	o := c.Order
	if c.BuyerSealed != "" {
		full, err := s.sealer.Open(c.BuyerSealed)
		if err != nil {
			return nil, fmt.Errorf("instance: unseal the buyer of %s: %w", in.ID, err)
		}
		var b provision.Buyer
		if err := json.Unmarshal([]byte(full), &b); err != nil {
			return nil, errors.New("instance: the sealed buyer of " + in.ID + " is not a buyer")
		}
		o.Buyer = b
	}
	return &o, nil
}
