package instance

import (
	"errors"
	"fmt"

	"github.com/koobridge/koobridge/internal/mask"
	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
)

// OrderLine finds lineID in info. An order of a single line is accepted
// whatever that line's id (lenient: the mock orders' line ids are derived,
// not echoed).
func OrderLine(info *protocol.OrderInfo, lineID string) (protocol.OrderLine, error) {
	if info == nil {
		return protocol.OrderLine{}, errors.New("query order returned no orderInfo")
	}
	if l, ok := info.Line(lineID); ok {
		return l, nil
	}
	if len(info.OrderLine) == 1 {
		return info.OrderLine[0], nil
	}
	return protocol.OrderLine{}, fmt.Errorf("order %s has no line %s", info.OrderID, lineID)
}

// applyOrder copies what an instance keeps from its purchase order.
func applyOrder(in *store.Instance, info *protocol.OrderInfo, line protocol.OrderLine) {
	applyProduct(in, line)
	in.ChargingMode = line.ChargingMode.String()
	in.PeriodType = line.PeriodType.String()
	if n, err := line.PeriodNumber.Int64(); err == nil {
		in.PeriodNumber = int(n)
	}
	if b := info.BuyerInfo; b != nil {
		in.CustomerID = b.CustomerID.String()
		in.CustomerName = b.CustomerName.String()
	}
}

// applyProduct copies the product, SKU, linear value and expiry of line
// (what an upgrade changes). Absent values leave the instance's as they
// are, and so does an expiry earlier than the instance's.
func applyProduct(in *store.Instance, line protocol.OrderLine) {
	if len(line.ProductInfo) > 0 {
		p := line.ProductInfo[0]
		if v := p.ProductID.String(); v != "" {
			in.ProductID = v
		}
		if v := p.SKUCode.String(); v != "" {
			in.SKUCode = v
		}
		if v := p.LinearValue.String(); v != "" {
			in.LinearValue = v
		}
	}
	// ParseExpireTime takes the documented 14 digits and, leniently, 17.
	// An order's expiry never moves the instance's back: a refreshInstance
	// may have set a later one (absolutely, as KooGallery asks) while this
	// order's job waited for Query Order or for the vendor.
	if t, err := protocol.ParseExpireTime(line.ExpireTime.String()); err == nil && t.After(in.ExpireTime) {
		in.ExpireTime = t
	}
}

// MaskedOrderJSON is an orderInfo as koobridge stores it: the buyer's
// mobile number, e-mail, user name and real name masked by the one rule of
// package mask (phone and e-mail
// decrypted with cipher first when they arrive encrypted, so the mask
// shows the real shape; a nil cipher keeps them as they come).
func MaskedOrderJSON(info protocol.OrderInfo, cipher *sign.CredentialCipher) (string, error) {
	if info.BuyerInfo != nil {
		b := *info.BuyerInfo
		phone, email := DecryptBuyer(cipher, b.MobilePhone.String()), DecryptBuyer(cipher, b.Email.String())
		b.MobilePhone = protocol.FlexString(mask.Phone(phone))
		b.Email = protocol.FlexString(mask.Email(email))
		// The person's name and sign-in name are personal data too; the
		// customer's id and account name stay readable: they are what an
		// operator looks an order up by.
		b.UserName = protocol.FlexString(mask.Name(b.UserName.String()))
		b.CustomerRealName = protocol.FlexString(mask.Name(b.CustomerRealName.String()))
		info.BuyerInfo = &b
	}
	out, err := protocol.Marshal(info)
	if err != nil {
		return "", fmt.Errorf("instance: encode order: %w", err)
	}
	return string(out), nil
}

// DecryptBuyer returns a buyer's mobile number or e-mail in clear: value
// decrypted with cipher when it looks encrypted (iv + base64) and
// decrypts to valid UTF-8, value itself otherwise. Whether Query Order
// encrypts them is UNCONFIRMED (saas-v2.md §4.4); this is the tolerant
// reading.
func DecryptBuyer(cipher *sign.CredentialCipher, value string) string {
	if cipher == nil || value == "" {
		return value
	}
	return cipher.DecryptOrPlain(value)
}
