package grant

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/koobridge/koobridge/internal/instance"
	"github.com/koobridge/koobridge/internal/jobs"
	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/provision"
)

// errInstanceWait says an online grant's instance is still being
// provisioned: the vendor hears of a license for it only after
// instance.created.
var errInstanceWait = errors.New("waiting for the instance to be provisioned")

// MaxInstanceWait is how long an online grant waits for its instance to be
// provisioned before it fails (KooGallery gives up on a purchase after 3
// hours; a resend of the getLicenseAsync, or an operator's Retry, starts
// it again).
const MaxInstanceWait = 24 * time.Hour

// requestEventID is the ID of a grant's license.requested event: the same
// on every attempt, so the vendor recognises a repeat (and answers it with
// the same license).
func requestEventID(g store.LicenseGrant) string {
	return instance.Key(string(provision.EventLicenseRequested), string(g.Kind), g.Key)
}

// handleGenerate is the generate job: license.requested to the vendor's
// generator, the license sealed into the grant and, for an online grant,
// its upload job, in one transaction. Errors are retried by the runner
// with backoff; the grant fails when the generator's error is permanent
// (or its answer unusable) or this was the last attempt. An instance still
// being provisioned is waited for without spending attempts
// (waitForInstance).
func (s *Service) handleGenerate(ctx context.Context, job store.Job) error {
	g, p, err := s.loadWithPayload(ctx, job)
	if err != nil {
		return err
	}
	if g.State != store.GrantPending {
		return nil // generated already, or failed and waiting for an operator
	}
	ev, err := s.requestEvent(ctx, g)
	if errors.Is(err, errInstanceWait) {
		return s.waitForInstance(ctx, g, p)
	}
	var res provision.Result
	if err == nil {
		res, err = s.provisionerFor(g.Test).Provision(ctx, ev)
	}
	if err == nil {
		if res.License == nil {
			err = provision.Permanent(errors.New("the generator answered license.requested without a license"))
		} else if cerr := res.License.Check(); cerr != nil {
			err = provision.Permanent(fmt.Errorf("the generator's license: %w", cerr))
		}
	}
	if err != nil {
		final := errors.Is(err, provision.ErrPermanent) || errors.Is(err, jobs.ErrPermanent) || job.Attempts >= job.MaxAttempts
		s.recordGenerateError(ctx, g.ID, err, final)
		err = fmt.Errorf("grant: generate %d: %w", g.ID, err)
		if final {
			return jobs.Permanent(err)
		}
		return err
	}
	kind, name, content := TypeCharacters, "", []byte(res.License.Characters)
	if res.License.Characters == "" {
		kind, name, content = TypeFile, res.License.FileName, res.License.Content
	}
	sealed, err := s.sealer.Seal(string(content))
	if err != nil {
		return fmt.Errorf("grant: seal the license of %d: %w", g.ID, err)
	}
	sum := sha256.Sum256(content)
	g, err = s.update(ctx, g.ID, func(ctx context.Context, tx store.Tx, in *store.LicenseGrant) error {
		if in.State != store.GrantPending {
			return errNoChange
		}
		in.State, in.Type, in.FileName, in.ContentSealed, in.SHA256 = store.GrantGenerated, kind, name, sealed, hex.EncodeToString(sum[:])
		in.LastError = ""
		if in.Kind != store.GrantOnline {
			return nil
		}
		key := KindUpload + ":" + strconv.FormatInt(in.ID, 10) + ":" + strconv.FormatInt(in.Version+1, 10)
		_, err := s.enqueue(ctx, tx, KindUpload, key, in.ID, s.now().UTC())
		return err
	})
	if errors.Is(err, errNoChange) {
		return nil
	}
	if err != nil {
		return err
	}
	s.log.InfoContext(ctx, "grant: license generated", "grant", g.ID, "kind", g.Kind, "type", kind, "test", g.Test)
	if g.Kind == store.GrantOnline {
		s.jobs.Kick()
	}
	return nil
}

// waitForInstance ends a generate job that found its instance still being
// provisioned without spending the job's attempts, which are the
// generator's: it hands over to a fresh generate job due after the
// runner's backoff for the waits so far (capped, 10 minutes by default),
// and fails the grant once it has waited MaxInstanceWait since it was
// asked for.
func (s *Service) waitForInstance(ctx context.Context, g store.LicenseGrant, p payload) error {
	now := s.now().UTC()
	if now.Sub(g.CreatedAt) >= MaxInstanceWait {
		err := fmt.Errorf("instance %s still being provisioned %s after the license was asked for", g.InstanceID, MaxInstanceWait)
		s.recordGenerateError(ctx, g.ID, err, true)
		return jobs.Permanent(fmt.Errorf("grant: generate %d: %w", g.ID, err))
	}
	next := payload{GrantID: g.ID, Waits: p.Waits + 1}
	_, err := s.update(ctx, g.ID, func(ctx context.Context, tx store.Tx, in *store.LicenseGrant) error {
		if in.State != store.GrantPending {
			return errNoChange
		}
		in.LastError = errInstanceWait.Error()
		key := KindGenerate + ":" + strconv.FormatInt(in.ID, 10) + ":" + strconv.FormatInt(in.Version+1, 10)
		_, err := s.enqueuePayload(ctx, tx, KindGenerate, key, next, now.Add(s.jobs.Backoff(next.Waits)))
		return err
	})
	if err != nil && !errors.Is(err, errNoChange) {
		return fmt.Errorf("grant: generate %d: wait for the instance: %w", g.ID, err)
	}
	return nil
}

// requestEvent builds the license.requested event of grant g: the request
// with the device fingerprint unsealed, and the instance (online: it must
// be provisioned) or the purchase order (legacy).
func (s *Service) requestEvent(ctx context.Context, g store.LicenseGrant) (provision.Event, error) {
	d, err := readDetails(g)
	if err != nil {
		return provision.Event{}, jobs.Permanent(err)
	}
	req := &provision.LicenseRequest{
		Kind: string(g.Kind), EventID: g.EventID, EffectiveTime: d.EffectiveTime, ExpireTime: d.ExpireTime, ProductID: g.ProductID,
	}
	if d.DeviceSealed != "" {
		if req.DeviceFingerprint, err = s.sealer.Open(d.DeviceSealed); err != nil {
			return provision.Event{}, jobs.Permanent(fmt.Errorf("unseal the device fingerprint of grant %d: %w", g.ID, err))
		}
	}
	ev := provision.Event{ID: requestEventID(g), Type: provision.EventLicenseRequested, Time: s.now().UTC(), Test: g.Test, LicenseRequest: req}
	if g.Kind == store.GrantLegacy {
		ev.Order = d.Order
		if d.Order != nil {
			req.Amount = amountOf(d.Order.LinearValue)
		}
		return ev, nil
	}
	inst, err := s.store.Instance(ctx, g.InstanceID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return ev, jobs.Permanent(fmt.Errorf("instance %s does not exist", g.InstanceID))
	case err != nil:
		return ev, fmt.Errorf("read instance %s: %w", g.InstanceID, err)
	}
	switch inst.Status {
	case store.StatusProvisioning:
		return ev, errInstanceWait
	case store.StatusFailed:
		return ev, jobs.Permanent(fmt.Errorf("instance %s failed to provision", inst.ID))
	case store.StatusReleased:
		return ev, jobs.Permanent(fmt.Errorf("instance %s was released before its license was generated", inst.ID))
	}
	ev.Instance = instance.VendorView(inst)
	if req.ProductID == "" {
		req.ProductID = inst.ProductID
	}
	req.Amount = amountOf(inst.LinearValue)
	return ev, nil
}

// amountOf reads a quantity (an order's linear value, a license 1.0
// amount): 0 when it is not a whole number.
func amountOf(v string) int {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// recordGenerateError keeps err as the grant's last error, and fails the
// grant when final. Best effort: the job's outcome drives the retries.
func (s *Service) recordGenerateError(ctx context.Context, id int64, cause error, final bool) {
	_, err := s.update(ctx, id, func(_ context.Context, _ store.Tx, g *store.LicenseGrant) error {
		if g.State != store.GrantPending {
			return errNoChange
		}
		g.LastError = instance.Clip(cause.Error())
		if final {
			g.State = store.GrantFailed
		}
		return nil
	})
	if err != nil && !errors.Is(err, errNoChange) {
		s.log.WarnContext(ctx, "grant: record the generator's error", "grant", id, "err", err)
	}
}
