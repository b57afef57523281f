package grant

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/koobridge/koobridge/internal/instance"
	"github.com/koobridge/koobridge/internal/jobs"
	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/provision"
)

// ErrReleased is returned (wrapped) by Renew and Expire for a license
// 1.0 license that is released: nothing can change it any more.
var ErrReleased = errors.New("grant: the license is released")

// ErrOtherOrder is returned (wrapped) by the lifecycle calls when the
// orderId they name is a license 1.0 purchase whose license is answered
// as another instanceId. It wraps store.ErrNotFound: for that order there
// is no such instance.
var ErrOtherOrder = fmt.Errorf("grant: the orderId's license is another instanceId: %w", store.ErrNotFound)

// Change is the outcome of a license 1.0 lifecycle call: the grant as it
// stands after it, and whether the call changed it (false: a repeat, or
// the license was already in the state asked for, so no event either).
type Change struct {
	Grant   store.LicenseGrant
	Changed bool
}

// Renew sets the expiry of the license 1.0 license answered as instanceID
// (refreshLicense), and its product when productID is not empty. It is
// state-based: a call that finds the license as it asks changes nothing
// and sends no event. A license frozen at its expiry is active again when
// the new expiry lies in the future, as a renewed instance is. Unknown
// ids give an error wrapping store.ErrNotFound, a released license one
// wrapping ErrReleased. refreshLicense carries the renewal order, not the
// purchase, so the license is found by instanceID alone.
func (s *Service) Renew(ctx context.Context, instanceID string, expiry time.Time, productID string) (Change, error) {
	now := s.now().UTC()
	expiry = expiry.UTC()
	return s.lifecycle(ctx, instanceID, "", "renew", func(g *store.LicenseGrant) (provision.EventType, error) {
		if g.Status == store.LicenseReleased {
			return "", ErrReleased
		}
		changed := false
		if !g.ExpireTime.Equal(expiry) {
			g.ExpireTime, changed = expiry, true
		}
		if productID != "" && g.ProductID != productID {
			g.ProductID, changed = productID, true
		}
		if g.Status == store.LicenseFrozen && expiry.After(now) {
			g.Status, changed = store.LicenseActive, true
		}
		if !changed {
			return "", errNoChange
		}
		return provision.EventLicenseRenewed, nil
	})
}

// Expire freezes the license 1.0 license answered as instanceID at its
// expiry (expireLicense); a frozen one succeeds again without an event.
// orderID, when not empty, is the purchase order the call names (see
// lifecycle). Errors as Renew's, and ErrOtherOrder.
func (s *Service) Expire(ctx context.Context, instanceID, orderID string) (Change, error) {
	return s.lifecycle(ctx, instanceID, orderID, "expire", func(g *store.LicenseGrant) (provision.EventType, error) {
		switch g.Status {
		case store.LicenseReleased:
			return "", ErrReleased
		case store.LicenseFrozen:
			return "", errNoChange
		}
		g.Status = store.LicenseFrozen
		return provision.EventLicenseFrozen, nil
	})
}

// Release releases the license 1.0 license answered as instanceID
// (releaseLicense), of the purchase orderID when not empty (see
// lifecycle). It is terminal and succeeds again, without an event,
// forever. Unknown ids give an error wrapping store.ErrNotFound (also
// ErrOtherOrder).
func (s *Service) Release(ctx context.Context, instanceID, orderID string) (Change, error) {
	return s.lifecycle(ctx, instanceID, orderID, "release", func(g *store.LicenseGrant) (provision.EventType, error) {
		if g.Status == store.LicenseReleased {
			return "", errNoChange
		}
		g.Status = store.LicenseReleased
		return provision.EventLicenseReleased, nil
	})
}

// lifecycle applies fn to the legacy grant of instanceID and, when fn
// changes it, enqueues the vendor event fn names, built from the grant as
// the change leaves it, in the same transaction.
//
// With orderID the grant is the purchase orderID's when koobridge answered
// one (its key is the orderId): it must be answered as instanceID
// (ErrOtherOrder otherwise), which tells apart two orders answered with
// one instanceId before getLicense refused that. An orderID no getLicense
// named is not refused (tolerant: KooGallery may name another order of the
// purchase); the grant is then found by instanceID alone.
func (s *Service) lifecycle(ctx context.Context, instanceID, orderID, what string, fn func(g *store.LicenseGrant) (provision.EventType, error)) (Change, error) {
	g, err := s.find(ctx, instanceID, orderID)
	if err != nil {
		return Change{}, fmt.Errorf("grant: %s %s: %w", what, instanceID, err)
	}
	now := s.now().UTC()
	g, err = s.update(ctx, g.ID, func(ctx context.Context, tx store.Tx, g *store.LicenseGrant) error {
		typ, err := fn(g)
		if err != nil {
			return err
		}
		ev := provision.Event{
			ID:   instance.Key(string(typ), string(store.GrantLegacy), g.InstanceID, strconv.FormatInt(g.Version+1, 10)),
			Type: typ, Time: now, Test: g.Test,
			License: &provision.License{
				InstanceID: g.InstanceID, Status: string(g.Status), ExpireTime: g.ExpireTime,
				OrderID: g.OrderID, ProductID: g.ProductID,
			},
		}
		if typ == provision.EventLicenseRenewed {
			ev.License.Scene = protocol.SceneRenewal
		}
		b, err := json.Marshal(ev)
		if err != nil {
			return fmt.Errorf("encode %s event: %w", typ, err)
		}
		_, _, err = tx.EnqueueJob(ctx, store.Job{Kind: KindEvent, UniqueKey: ev.ID, Payload: b, MaxAttempts: s.maxAttempts, RunAt: now})
		return err
	})
	switch {
	case errors.Is(err, errNoChange):
		return Change{Grant: g}, nil
	case err != nil:
		return Change{Grant: g}, fmt.Errorf("grant: %s %s: %w", what, instanceID, err)
	}
	s.jobs.Kick()
	return Change{Grant: g, Changed: true}, nil
}

// find reads the legacy grant a lifecycle call names (see lifecycle).
func (s *Service) find(ctx context.Context, instanceID, orderID string) (store.LicenseGrant, error) {
	if orderID != "" {
		g, err := s.store.LicenseGrant(ctx, store.GrantLegacy, orderID)
		switch {
		case err == nil && g.InstanceID != instanceID:
			return store.LicenseGrant{}, fmt.Errorf("order %s: %w", orderID, ErrOtherOrder)
		case err == nil:
			return g, nil
		case !errors.Is(err, store.ErrNotFound):
			return store.LicenseGrant{}, err
		}
	}
	return s.store.LicenseGrantByInstance(ctx, store.GrantLegacy, instanceID)
}

// handleEvent delivers one license 1.0 lifecycle event, as it was built
// when the change committed (each says the state it left the license in),
// to the provisioner of real or debug licenses.
func (s *Service) handleEvent(ctx context.Context, job store.Job) error {
	var ev provision.Event
	if err := json.Unmarshal(job.Payload, &ev); err != nil || ev.ID == "" || ev.License == nil {
		return jobs.Permanent(fmt.Errorf("grant: bad event job payload (job %d): %v", job.ID, err))
	}
	if _, err := s.provisionerFor(ev.Test).Provision(ctx, ev); err != nil {
		err = fmt.Errorf("grant: deliver %s %s: %w", ev.Type, ev.ID, err)
		if errors.Is(err, provision.ErrPermanent) {
			return jobs.Permanent(err)
		}
		return err
	}
	s.log.InfoContext(ctx, "grant: event delivered", "event", ev.ID, "type", ev.Type, "test", ev.Test)
	return nil
}
