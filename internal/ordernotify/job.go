package ordernotify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/koobridge/koobridge/internal/instance"
	"github.com/koobridge/koobridge/internal/jobs"
	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/provision"
)

// maxConflictRetries bounds the re-read-and-retry loop of update.
const maxConflictRetries = 8

// handleNotify is the notification job: Query Order for the order line,
// then order.notified to the vendor. Errors are retried with backoff by
// the runner; the notification turns failed when the vendor's error is
// permanent or this was the last attempt (an operator can re-run the job).
func (s *Service) handleNotify(ctx context.Context, job store.Job) error {
	var p payload
	if err := json.Unmarshal(job.Payload, &p); err != nil || p.OrderID == "" {
		return jobs.Permanent(fmt.Errorf("ordernotify: bad job payload: %v", err))
	}
	n, err := s.cfg.Store.OrderNotification(ctx, p.OrderID, p.OrderLineID)
	if errors.Is(err, store.ErrNotFound) {
		return jobs.Permanent(fmt.Errorf("ordernotify: no notification of %s/%s", p.OrderID, p.OrderLineID))
	}
	if err != nil {
		return fmt.Errorf("ordernotify: read notification: %w", err)
	}
	if n.Status == store.NotificationDelivered {
		return nil
	}
	last := job.Attempts >= job.MaxAttempts

	info, err := s.cfg.Orders.QueryOrder(ctx, p.OrderID, p.OrderLineID)
	var line protocol.OrderLine
	if err == nil {
		line, err = instance.OrderLine(info, p.OrderLineID)
	}
	if err != nil {
		err = fmt.Errorf("waiting for order details: %w", err)
		s.record(ctx, n, "", err, last)
		return err
	}
	orderJSON, err := instance.MaskedOrderJSON(*info, s.cfg.BuyerCipher)
	if err != nil {
		return err
	}
	ev := provision.Event{
		ID:    instance.Key(string(provision.EventOrderNotified), p.OrderID, p.OrderLineID),
		Type:  provision.EventOrderNotified,
		Time:  s.cfg.Now().UTC(),
		Test:  n.Test,
		Order: s.vendorOrder(*info, line, p.OrderLineID),
	}
	prov := s.cfg.Provisioner
	if n.Test {
		prov = s.cfg.TestProvisioner
	}
	if _, err := prov.Provision(ctx, ev); err != nil {
		permanent := errors.Is(err, provision.ErrPermanent)
		s.record(ctx, n, orderJSON, err, last || permanent)
		if permanent {
			return jobs.Permanent(err)
		}
		return err
	}
	s.record(ctx, n, orderJSON, nil, false)
	s.cfg.Logger.InfoContext(ctx, "ordernotify: order delivered", "order", p.OrderID, "line", p.OrderLineID, "test", n.Test)
	return nil
}

// record stores what the attempt learnt: the masked order when it was
// fetched, the error or the delivery, the failure when final. It is best
// effort: the job's own outcome is what drives retries.
func (s *Service) record(ctx context.Context, n store.OrderNotification, orderJSON string, cause error, final bool) {
	for try := 0; ; try++ {
		if orderJSON != "" {
			n.OrderJSON = orderJSON
		}
		switch {
		case cause == nil:
			n.Status, n.LastError = store.NotificationDelivered, ""
		case final:
			n.Status, n.LastError = store.NotificationFailed, instance.Clip(cause.Error())
		default:
			// Still being tried: pending again after an operator's re-run
			// of a failed notification.
			n.Status, n.LastError = store.NotificationPending, instance.Clip(cause.Error())
		}
		n.UpdatedAt = s.cfg.Now().UTC()
		err := s.cfg.Store.Tx(ctx, func(ctx context.Context, tx store.Tx) error {
			return tx.UpdateOrderNotification(ctx, n)
		})
		if !errors.Is(err, store.ErrConflict) || try >= maxConflictRetries {
			if err != nil {
				s.cfg.Logger.WarnContext(ctx, "ordernotify: record notification", "order", n.OrderID, "line", n.OrderLineID, "err", err)
			}
			return
		}
		fresh, rerr := s.cfg.Store.OrderNotification(ctx, n.OrderID, n.OrderLineID)
		if rerr != nil {
			s.cfg.Logger.WarnContext(ctx, "ordernotify: re-read notification", "order", n.OrderID, "err", rerr)
			return
		}
		n = fresh
	}
}

// vendorOrder is the order line as order.notified shows it to the vendor:
// the notified line's id (Query Order's line of a one-line order may be
// spelled otherwise), its first product, the buyer's mobile number and
// e-mail in clear.
func (s *Service) vendorOrder(info protocol.OrderInfo, line protocol.OrderLine, lineID string) *provision.Order {
	o := &provision.Order{
		OrderID:      info.OrderID.String(),
		OrderLineID:  lineID,
		OrderType:    info.OrderType.String(),
		ChargingMode: line.ChargingMode.String(),
		PeriodType:   line.PeriodType.String(),
	}
	if t, err := protocol.ParseTime14(info.CreateTime.String()); err == nil {
		o.CreateTime = t
	}
	if t, err := protocol.ParseExpireTime(line.ExpireTime.String()); err == nil {
		o.ExpireTime = t
	}
	if n, err := line.PeriodNumber.Int64(); err == nil {
		o.PeriodNumber = int(n)
	}
	if len(line.ProductInfo) > 0 {
		p := line.ProductInfo[0]
		o.ProductID, o.SKUCode, o.ProductName, o.LinearValue = p.ProductID.String(), p.SKUCode.String(), p.ProductName.String(), p.LinearValue.String()
	}
	if b := info.BuyerInfo; b != nil {
		o.Buyer = provision.Buyer{
			CustomerID:       b.CustomerID.String(),
			CustomerName:     b.CustomerName.String(),
			CustomerRealName: b.CustomerRealName.String(),
			UserID:           b.UserID.String(),
			UserName:         b.UserName.String(),
			MobilePhone:      instance.DecryptBuyer(s.cfg.BuyerCipher, b.MobilePhone.String()),
			Email:            instance.DecryptBuyer(s.cfg.BuyerCipher, b.Email.String()),
		}
	}
	return o
}
