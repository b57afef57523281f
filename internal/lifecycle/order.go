package lifecycle

import (
	"errors"
	"fmt"
	"strings"

	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/protocol"
)

// orderLine finds lineID in info. An order of a single line is accepted
// whatever that line's id (lenient: the mock orders' line ids are derived,
// not echoed).
func orderLine(info *protocol.OrderInfo, lineID string) (protocol.OrderLine, error) {
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

// maskedOrderJSON is the orderInfo as stored: the buyer's mobile number
// and e-mail masked (decrypted first when they arrive encrypted and a
// credential cipher is configured, so the mask shows the real shape).
func (s *Service) maskedOrderJSON(info protocol.OrderInfo) (string, error) {
	if info.BuyerInfo != nil {
		b := *info.BuyerInfo
		phone, email := b.MobilePhone.String(), b.Email.String()
		if s.cipher != nil {
			phone, email = s.cipher.DecryptOrPlain(phone), s.cipher.DecryptOrPlain(email)
		}
		b.MobilePhone = protocol.FlexString(MaskPhone(phone))
		b.Email = protocol.FlexString(MaskEmail(email))
		info.BuyerInfo = &b
	}
	out, err := protocol.Marshal(info)
	if err != nil {
		return "", fmt.Errorf("lifecycle: encode order: %w", err)
	}
	return string(out), nil
}

// MaskPhone keeps the first three and last four characters of a phone
// number of at least eight; shorter ones are masked entirely. "" stays "".
func MaskPhone(s string) string {
	r := []rune(s)
	switch {
	case len(r) == 0:
		return ""
	case len(r) < 8:
		return "****"
	}
	return string(r[:3]) + "****" + string(r[len(r)-4:])
}

// MaskEmail keeps the first character of the local part and the domain:
// "alice@example.com" → "a***@example.com". Text without "@" is masked
// entirely. "" stays "".
func MaskEmail(s string) string {
	if s == "" {
		return ""
	}
	at := strings.LastIndexByte(s, '@')
	if at <= 0 {
		return "***"
	}
	first := []rune(s[:at])[0]
	return string(first) + "***" + s[at:]
}
