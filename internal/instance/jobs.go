package instance

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/koobridge/koobridge/internal/jobs"
	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/provision"
)

// loadForJob reads the instance a job is about. A job whose instance does
// not exist can never succeed.
func (s *Service) loadForJob(ctx context.Context, job store.Job) (jobPayload, store.Instance, error) {
	p, err := decodePayload(job.Payload)
	if err != nil {
		return p, store.Instance{}, jobs.Permanent(err)
	}
	inst, err := s.store.Instance(ctx, p.InstanceID)
	if errors.Is(err, store.ErrNotFound) {
		return p, inst, jobs.Permanent(fmt.Errorf("instance: %s job: instance %s does not exist", job.Kind, p.InstanceID))
	}
	if err != nil {
		return p, inst, fmt.Errorf("instance: %s job: read instance: %w", job.Kind, err)
	}
	return p, inst, nil
}

// handleProvision is the provision job: learn the order from Query Order
// (once), then deliver instance.created and store the app info. Errors are
// returned so the runner retries them with backoff and dead-letters them
// at MaxAttempts; the instance turns failed only when the provisioner's
// error is permanent or this was the last attempt. A Query Order outage
// never fails the instance: it stays provisioning, and KooGallery is told
// so by queryInstance.
//
// The order Query Order gave is stored with the outcome of the delivery
// that follows it, in one transaction (active, or the provisioner's error
// or refusal), and a delivery that succeeds completes the job in that
// transaction too (jobs.CompleteIn): one commit where there were three.
// Should the process die in between, the next attempt asks Query Order
// again, which changes nothing.
func (s *Service) handleProvision(ctx context.Context, job store.Job) error {
	_, inst, err := s.loadForJob(ctx, job)
	if err != nil {
		return err
	}
	if inst.Status != store.StatusProvisioning {
		return nil // released meanwhile, or a stale job of a finished instance
	}
	var fetched *fetchedOrder
	if inst.OrderState != store.OrderFetched {
		if fetched, err = s.fetchOrder(ctx, inst); err != nil {
			return err
		}
		// Released while Query Order answered: the vendor never hears of
		// it. (A read, where storing the order used to re-read it.)
		if inst, err = s.store.Instance(ctx, inst.ID); err != nil {
			return fmt.Errorf("instance: provision job: read instance: %w", err)
		}
		if inst.Status != store.StatusProvisioning {
			return nil
		}
		fetched.apply(&inst) // for the event; stored with the outcome
	}
	optional, _, err := appOptional(ctx, s.store, inst.ID)
	if err != nil {
		return err
	}
	ev := provision.Event{
		ID:              string(provision.EventCreated) + ":" + inst.ID,
		Type:            provision.EventCreated,
		Time:            s.now().UTC(),
		Test:            inst.Test,
		Instance:        vendorView(inst),
		AppInfoOptional: optional,
	}
	// An order the purchase call carried goes to the vendor whole; one that
	// cannot be unsealed (the data key changed) never will.
	order, perr := s.carriedOrder(inst)
	if perr != nil {
		perr = provision.Permanent(perr)
	}
	ev.Order = order
	var res provision.Result
	if perr == nil {
		res, perr = s.provisionerFor(inst.Test).Provision(ctx, ev)
	}
	var app store.AppInfo
	if perr == nil {
		app, perr = s.sealApp(res.AppInfo, !optional, s.cipher != nil || order != nil)
	}
	if perr != nil {
		var refused *provision.Refusal
		isRefusal := errors.As(perr, &refused)
		final := errors.Is(perr, provision.ErrPermanent) || job.Attempts >= job.MaxAttempts
		_, err := s.mutate(ctx, inst.ID, func(_ context.Context, _ store.Tx, in *store.Instance) error {
			if in.Status != store.StatusProvisioning {
				return errNoChange
			}
			fetched.apply(in)
			in.LastError = Clip(perr.Error())
			if isRefusal {
				// The vendor's words to the buyer, as KooGallery will show them.
				in.LastError, in.FailCode = refused.Message, refused.Code
			}
			if final {
				in.Status = store.StatusFailed
			}
			return nil
		})
		if err != nil && !errors.Is(err, errNoChange) {
			s.log.WarnContext(ctx, "instance: record provisioning error", "instance", inst.ID, "err", err)
		}
		return jobError(fmt.Errorf("instance: provision %s: %w", inst.ID, perr))
	}
	// Every path that commits completes the job with its change.
	_, err = s.mutate(ctx, inst.ID, func(ctx context.Context, tx store.Tx, in *store.Instance) error {
		created, err := createdAtVendor(ctx, tx, *in)
		if err != nil {
			return err
		}
		if in.Status == store.StatusReleased && !created {
			// Released while the vendor was creating it: the release event
			// was skipped because nothing existed yet (handleNotify), so the
			// vendor must hear of the release now, after the creation.
			fetched.apply(in)
			in.AppInfo = app
			if optional {
				if err := confirmCreated(ctx, tx, in.ID); err != nil {
					return err
				}
			}
			if _, _, err := s.enqueue(ctx, tx, KindNotify, "notify:released-after-create:"+in.ID, jobPayload{
				InstanceID: in.ID, Event: string(provision.EventReleased), EventID: string(provision.EventReleased) + ":" + in.ID,
			}, s.now().UTC()); err != nil {
				return err
			}
			return jobs.CompleteIn(ctx, tx)
		}
		if in.Status != store.StatusProvisioning {
			return errNoChange
		}
		if optional {
			if err := confirmCreated(ctx, tx, in.ID); err != nil {
				return err
			}
		}
		fetched.apply(in)
		in.Status = store.StatusActive
		in.AppInfo = app
		in.LastError = ""
		return jobs.CompleteIn(ctx, tx)
	})
	if errors.Is(err, errNoChange) {
		return nil // nothing committed: the runner completes the job
	}
	if err != nil {
		return err
	}
	s.log.InfoContext(ctx, "instance: instance active", "instance", inst.ID, "test", inst.Test)
	return nil
}

// upgradeLine is the target of an upgrade: the specification the call
// carried (SaaS V1), else the upgrade order's line from Query Order.
func (s *Service) upgradeLine(ctx context.Context, p jobPayload) (protocol.OrderLine, error) {
	if t := p.Target; t != nil {
		return protocol.OrderLine{ProductInfo: protocol.ProductInfoList{{
			ProductID: protocol.FlexString(t.ProductID), SKUCode: protocol.FlexString(t.SKUCode),
			LinearValue: protocol.FlexNumber(t.LinearValue), ProductName: protocol.FlexString(t.ProductName),
		}}}, nil
	}
	info, err := s.orders.QueryOrder(ctx, p.OrderID, p.OrderLineID)
	if err != nil {
		return protocol.OrderLine{}, err
	}
	return OrderLine(info, p.OrderLineID)
}

// jobError passes err on to the job runner, marked permanent when the
// provisioner said retrying cannot help.
func jobError(err error) error {
	if errors.Is(err, provision.ErrPermanent) {
		return jobs.Permanent(err)
	}
	return err
}

// fetchedOrder is what Query Order said of an instance's order line, kept
// in memory until it is stored with the outcome of the delivery that
// follows.
type fetchedOrder struct {
	info *protocol.OrderInfo
	line protocol.OrderLine
	json string // masked, as stored
}

// apply copies the order onto in, unless in has its order already (or o
// is nil: nothing was fetched).
func (o *fetchedOrder) apply(in *store.Instance) {
	if o == nil || in.OrderState == store.OrderFetched {
		return
	}
	applyOrder(in, o.info, o.line)
	in.OrderJSON = o.json
	in.OrderState = store.OrderFetched
	in.LastError = ""
}

// fetchOrder asks Query Order for the instance's order line and returns
// what it learnt, for the caller to store with its outcome. On failure it
// records the reason on the instance and returns the error for the runner
// to retry.
func (s *Service) fetchOrder(ctx context.Context, inst store.Instance) (*fetchedOrder, error) {
	info, err := s.orders.QueryOrder(ctx, inst.OrderID, inst.OrderLineID)
	var line protocol.OrderLine
	if err == nil {
		line, err = OrderLine(info, inst.OrderLineID)
	}
	if err != nil {
		werr := fmt.Errorf(orderWaitPrefix+": %w", err)
		if _, uerr := s.mutate(ctx, inst.ID, func(_ context.Context, _ store.Tx, in *store.Instance) error {
			if in.Status != store.StatusProvisioning {
				return errNoChange
			}
			in.LastError = Clip(werr.Error())
			return nil
		}); uerr != nil && !errors.Is(uerr, errNoChange) {
			s.log.WarnContext(ctx, "instance: record order error", "instance", inst.ID, "err", uerr)
		}
		return nil, werr
	}
	orderJSON, err := MaskedOrderJSON(*info, s.buyerCipher)
	if err != nil {
		return nil, err
	}
	return &fetchedOrder{info: info, line: line, json: orderJSON}, nil
}

// handleUpgrade is the upgrade job: Query Order of the upgrade order, then
// instance.upgraded to the vendor with the new specification. The instance
// takes the new product, SKU, linear value and expiry (and any new app
// info) only once the vendor accepted, so a rejected upgrade leaves it as
// it was, with the reason in LastError.
func (s *Service) handleUpgrade(ctx context.Context, job store.Job) error {
	p, inst, err := s.loadForJob(ctx, job)
	if err != nil {
		return err
	}
	if inst.Status == store.StatusReleased {
		return nil
	}
	line, err := s.upgradeLine(ctx, p)
	if err != nil {
		err = fmt.Errorf("waiting for upgrade order details: %w", err)
		s.recordError(ctx, inst.ID, err)
		return err
	}
	target := inst
	applyProduct(&target, line)
	ev := provision.Event{
		ID:       p.OpKey,
		Type:     provision.EventUpgraded,
		Time:     s.now().UTC(),
		Test:     inst.Test,
		Instance: vendorView(target),
	}
	res, err := s.provisionerFor(inst.Test).Provision(ctx, ev)
	var app store.AppInfo
	if err == nil && res.AppInfo != nil && res.AppInfo.FrontEndURL != "" {
		app, err = s.sealApp(res.AppInfo, false, s.cipher != nil || Carried(inst))
	}
	if err != nil {
		err = fmt.Errorf("upgrade: %w", err)
		s.recordError(ctx, inst.ID, err)
		return jobError(err)
	}
	_, err = s.mutate(ctx, inst.ID, func(_ context.Context, _ store.Tx, in *store.Instance) error {
		if in.Status == store.StatusReleased {
			return errNoChange
		}
		applyProduct(in, line)
		if app.FrontEndURL != "" {
			in.AppInfo = app
		}
		in.LastError = ""
		return nil
	})
	if errors.Is(err, errNoChange) {
		return nil
	}
	return err
}

// handleNotify delivers one event (renewed, frozen, unfrozen, released)
// built from the instance as it is now. Events of an instance still
// provisioning wait (retry) so the vendor never hears of an instance before
// instance.created; events of failed instances, and non-release events of
// released ones, are dropped.
//
// Events of one instance may be delivered out of order (retries, several
// workers, an admin re-run), so a status event is checked against the
// instance when it is delivered: a frozen event for an instance that is
// active again, or the reverse, is stale and dropped. If the status changes
// while an event is being delivered, a corrective event follows, so the
// vendor always ends in koobridge's state.
func (s *Service) handleNotify(ctx context.Context, job store.Job) error {
	p, inst, err := s.loadForJob(ctx, job)
	if err != nil {
		return err
	}
	typ := provision.EventType(p.Event)
	created := true
	if typ == provision.EventReleased {
		if created, err = createdAtVendor(ctx, s.store, inst); err != nil {
			return err
		}
	}
	switch {
	case inst.Status == store.StatusProvisioning:
		return fmt.Errorf("instance: %s for %s waits for provisioning to finish", typ, inst.ID)
	case typ == provision.EventReleased && !created:
		// The vendor never confirmed instance.created (it failed, or it is
		// still running): there is nothing to release. Should the creation
		// still succeed, it sends instance.released itself.
		s.log.InfoContext(ctx, "instance: release event skipped, never created at the vendor", "instance", inst.ID)
		return nil
	case inst.Status == store.StatusFailed:
		s.log.InfoContext(ctx, "instance: event dropped, instance failed", "instance", inst.ID, "event", typ)
		return nil
	case inst.Status == store.StatusReleased && typ != provision.EventReleased:
		return nil
	case typ == provision.EventFrozen && inst.Status != store.StatusFrozen,
		typ == provision.EventUnfrozen && inst.Status != store.StatusActive:
		s.log.InfoContext(ctx, "instance: stale event dropped", "instance", inst.ID, "event", typ, "status", inst.Status)
		return nil
	}
	ev := provision.Event{
		ID:       p.EventID,
		Type:     typ,
		Time:     s.now().UTC(),
		Test:     inst.Test,
		Instance: vendorView(inst),
		Scene:    p.Scene,
	}
	if _, err := s.provisionerFor(inst.Test).Provision(ctx, ev); err != nil {
		return jobError(fmt.Errorf("instance: %s for %s: %w", typ, inst.ID, err))
	}
	if typ == provision.EventFrozen || typ == provision.EventUnfrozen {
		return s.correctStatus(ctx, inst)
	}
	return nil
}

// correctStatus enqueues the event for the instance's current status when
// it changed from sent.Status while an event built from sent was being
// delivered: the later event may have reached the vendor first.
func (s *Service) correctStatus(ctx context.Context, sent store.Instance) error {
	now, err := s.store.Instance(ctx, sent.ID)
	if err != nil {
		return fmt.Errorf("instance: re-read %s after delivery: %w", sent.ID, err)
	}
	if now.Status == sent.Status || (now.Status != store.StatusFrozen && now.Status != store.StatusActive) {
		return nil
	}
	typ := provision.EventUnfrozen
	if now.Status == store.StatusFrozen {
		typ = provision.EventFrozen
	}
	eventID := "status-fix:" + now.ID + ":" + string(typ) + ":" + strconv.FormatInt(now.Version, 10)
	return s.store.Tx(ctx, func(ctx context.Context, tx store.Tx) error {
		_, _, err := s.enqueue(ctx, tx, KindNotify, "notify:"+eventID, jobPayload{
			InstanceID: now.ID, Event: string(typ), EventID: eventID,
		}, s.now().UTC())
		return err
	})
}

// recordError stores err as the instance's LastError (best effort).
func (s *Service) recordError(ctx context.Context, id string, err error) {
	_, uerr := s.mutate(ctx, id, func(_ context.Context, _ store.Tx, in *store.Instance) error {
		in.LastError = Clip(err.Error())
		return nil
	})
	if uerr != nil {
		s.log.WarnContext(ctx, "instance: record error", "instance", id, "err", uerr)
	}
}

// maxEncryptedPlain is the longest credential whose encrypted form
// (16-character IV + base64 of the AES-CBC blocks) fits in 128 characters:
// 79 bytes pad to 80, which base64 writes in 108 characters.
const maxEncryptedPlain = 79

// sealApp checks the vendor's app info and encrypts the password for
// storage. required makes a missing front-end URL a permanent error (the
// reply to instance.created must carry one); encrypted says the
// credentials will be sent encrypted, which bounds their length.
func (s *Service) sealApp(a *provision.AppInfo, required, encrypted bool) (store.AppInfo, error) {
	if a == nil || a.FrontEndURL == "" {
		if required {
			return store.AppInfo{}, provision.Permanent(errors.New("provisioner returned no appInfo.frontEndUrl"))
		}
		return store.AppInfo{}, nil
	}
	wire := protocol.AppInfo{FrontEndURL: a.FrontEndURL, AdminURL: a.AdminURL, UserName: a.UserName, Password: a.Password, Memo: a.Memo}
	if err := wire.Validate(); err != nil {
		return store.AppInfo{}, provision.Permanent(fmt.Errorf("provisioner returned invalid appInfo: %w", err))
	}
	if encrypted {
		// KooGallery's 128-character limit covers the encrypted form, IV
		// included (saas-v2.md §4.3): 79 bytes of plain text is the most
		// that fits.
		for _, f := range []struct{ name, value string }{{"userName", a.UserName}, {"password", a.Password}} {
			if len(f.value) > maxEncryptedPlain {
				return store.AppInfo{}, provision.Permanent(fmt.Errorf(
					"provisioner returned invalid appInfo: %s is %d bytes; encrypted for KooGallery it must stay within 128 characters, so at most %d bytes",
					f.name, len(f.value), maxEncryptedPlain))
			}
		}
	}
	out := store.AppInfo{FrontEndURL: a.FrontEndURL, AdminURL: a.AdminURL, UserName: a.UserName, Memo: a.Memo}
	if a.Password != "" {
		sealed, err := s.sealer.Seal(a.Password)
		if err != nil {
			return store.AppInfo{}, fmt.Errorf("instance: seal password: %w", err)
		}
		out.PasswordSealed = sealed
	}
	return out, nil
}

// VendorView is the instance as events show it to the vendor (for the
// events of other packages about an instance, such as license.requested).
func VendorView(in store.Instance) provision.Instance { return vendorView(in) }

// vendorView is the instance as events show it to the vendor.
func vendorView(in store.Instance) provision.Instance {
	return provision.Instance{
		ID:           in.ID,
		OrderID:      in.OrderID,
		OrderLineID:  in.OrderLineID,
		ProductID:    in.ProductID,
		SKUCode:      in.SKUCode,
		ChargingMode: in.ChargingMode,
		PeriodType:   in.PeriodType,
		PeriodNumber: in.PeriodNumber,
		LinearValue:  in.LinearValue,
		CustomerID:   in.CustomerID,
		CustomerName: in.CustomerName,
		ExpireTime:   in.ExpireTime,
		Status:       string(in.Status),
	}
}
