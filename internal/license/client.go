package license

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/koobridge/koobridge/internal/openapi"
	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/provision"
)

// Limits of the client operations' input.
const (
	maxCode        = 64      // the license field of every license table
	maxFingerprint = 5 << 10 // §D.3: a fingerprint is at most 5 KB
)

// validate checks a client's license code and device fingerprint. The
// error names the field (as the license service's JSON spells it), never
// the fingerprint's content.
func validate(code, fingerprint string) error {
	switch {
	case code == "":
		return fmt.Errorf("%w: license is missing", ErrInvalid)
	case len(code) > maxCode:
		return fmt.Errorf("%w: license is longer than %d characters", ErrInvalid, maxCode)
	case strings.ContainsFunc(code, func(r rune) bool { return r <= ' ' || r > '~' }):
		return fmt.Errorf("%w: license must be printable ASCII without spaces", ErrInvalid)
	case fingerprint == "":
		return fmt.Errorf("%w: deviceFingerprint is missing", ErrInvalid)
	case len(fingerprint) > maxFingerprint:
		return fmt.Errorf("%w: deviceFingerprint is longer than %d bytes", ErrInvalid, maxFingerprint)
	case !utf8.ValidString(fingerprint):
		return fmt.Errorf("%w: deviceFingerprint is not valid UTF-8", ErrInvalid)
	case strings.ContainsFunc(fingerprint, unicode.IsControl):
		return fmt.Errorf("%w: deviceFingerprint contains a control character", ErrInvalid)
	}
	return nil
}

// Activate activates code for the device whose fingerprint is given, for
// the vendor's client software. A code koobridge has not activated yet is
// activated with KooGallery once; the device then takes one of the code's
// seats (an already bound device takes none). A code the production
// interface froze or released answers that status at once, without asking
// KooGallery and without binding the device. A code KooGallery reports as
// not activated (92020011) when its query comes due is activated again
// within the same call. The errors are this package's (ErrInvalid,
// ErrUnknown, ErrRefused, ErrNoSeat, ErrUnavailable), wrapped with what
// happened.
func (s *Service) Activate(ctx context.Context, code, fingerprint string) (Verdict, error) {
	if err := validate(code, fingerprint); err != nil {
		return Verdict{}, err
	}
	if s.api == nil {
		return Verdict{}, fmt.Errorf("license: activate %s: %w: no Open API client is configured", code, ErrUnavailable)
	}
	device := s.DeviceID(fingerprint)
	for again := false; ; again = true {
		c, err := s.activated(ctx, code)
		if err != nil {
			return Verdict{}, err
		}
		if c.Status != store.LicenseActive {
			return fixedVerdict(c, fingerprint, s.now().UTC()), nil
		}
		if c, err = s.bind(ctx, c, device); err != nil {
			return Verdict{}, err
		}
		v, err := s.verdict(ctx, c, fingerprint)
		// KooGallery lost the activation (a test code reset, or its side
		// forgot it): the query cleared koobridge's, so activated asks
		// KooGallery to activate the code again. Once: a second loss in
		// one call is reported.
		if errors.Is(err, ErrNotActivated) && !again {
			continue
		}
		return v, err
	}
}

// Check answers whether code is usable on the device whose fingerprint is
// given: the code must be activated through koobridge and the device
// bound to it (ErrNotActivated otherwise). A freeze or release from the
// production interface answers at once; otherwise KooGallery is asked
// when its last answer is CheckInterval old, or was forgotten after a
// renewal or UNFREEZE, and its answer is cached. While KooGallery cannot
// be reached the cache answers (Verdict.Cached) until Grace after the
// last confirmation (activation, query, or a renewal into the future or
// UNFREEZE from the production interface), then ErrUnavailable. KooGallery saying the code does not exist is ErrUnknown;
// saying it is not activated clears koobridge's activation (the next
// Activate activates it again) and is ErrNotActivated.
func (s *Service) Check(ctx context.Context, code, fingerprint string) (Verdict, error) {
	if err := validate(code, fingerprint); err != nil {
		return Verdict{}, err
	}
	if s.api == nil {
		return Verdict{}, fmt.Errorf("license: check %s: %w: no Open API client is configured", code, ErrUnavailable)
	}
	c, err := s.store.LicenseCode(ctx, code, false)
	switch {
	case errors.Is(err, store.ErrNotFound), err == nil && c.ActivatedAt.IsZero():
		return Verdict{}, fmt.Errorf("license: check %s: %w: activate it first", code, ErrNotActivated)
	case err != nil:
		return Verdict{}, fmt.Errorf("license: check %s: %w", code, err)
	}
	// Finding the device bound and moving its LastSeen are one update: a
	// device an operator released meanwhile stays released.
	bound, err := s.touch(ctx, code, s.DeviceID(fingerprint))
	switch {
	case err != nil:
		return Verdict{}, err
	case !bound:
		return Verdict{}, fmt.Errorf("license: check %s: %w: this device has not activated the license code", code, ErrNotActivated)
	}
	return s.verdict(ctx, c, fingerprint)
}

// activation is what KooGallery told about a code it activated.
type activation struct {
	at        time.Time // when it was activated
	status    string    // ALIVE, …
	expire    time.Time // zero when not given (activate's is an estimate)
	productID string
	orderID   string
	amount    int
	checked   bool      // learnt from a query: a confirmation (CheckedAt)
	asked     time.Time // when KooGallery was asked (answeredBefore)
}

// activated returns code once koobridge has activated it with KooGallery,
// activating it if need be, or as it is when the production interface
// froze or released it. Within this process one activation of a code
// runs at a time; across replicas, the one that loses the race is told
// "illegal state" by KooGallery and confirms the activation with a query.
func (s *Service) activated(ctx context.Context, code string) (store.LicenseCode, error) {
	done := func(c store.LicenseCode, err error) bool {
		return err == nil && (!c.ActivatedAt.IsZero() || c.Status != store.LicenseActive)
	}
	c, err := s.store.LicenseCode(ctx, code, false)
	if done(c, err) {
		return c, nil
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return c, fmt.Errorf("license: activate %s: %w", code, err)
	}
	unlock := s.codes.lock(code)
	defer unlock()
	// Another activation may have finished while this one waited.
	if c, err = s.store.LicenseCode(ctx, code, false); done(c, err) {
		return c, nil
	}
	now := s.now().UTC()
	info, err := s.api.ActivateLicense(ctx, code, now)
	switch {
	case err == nil:
		a := activation{at: now, asked: now, status: strings.TrimSpace(info.Status.String()), productID: info.ProductID.String(), orderID: info.OrderID.String()}
		a.amount = amount(info.Amount)
		if t, err := protocol.ParseExpireTime(strings.TrimSpace(info.ExpireTime.String())); err == nil {
			a.expire = t
		}
		return s.recordActivation(ctx, code, a)
	case errors.Is(err, openapi.ErrLicenseIllegalState), errors.Is(err, openapi.ErrIncompleteAnswer):
		// Activated already: by another replica or client of ours, or
		// earlier (an incomplete answer means this call did it).
		return s.confirmActivation(ctx, code, err)
	case errors.Is(err, openapi.ErrLicenseNotFound):
		return c, fmt.Errorf("license: activate %s: %w: %w", code, ErrUnknown, err)
	case errors.Is(err, openapi.ErrLicenseNotReceived):
		return c, fmt.Errorf("license: activate %s: %w: the buyer has not received the license code yet: %w", code, ErrRefused, err)
	}
	return c, s.unavailable(ctx, "activate", code, err)
}

// unavailable reports an Open API failure that is koobridge's problem,
// not the buyer's: an outage, the gateway refusing the AK/SK or the IAM
// user (APIGW.*), a parameter or an answer KooGallery or koobridge could
// not read, a code this package does not know. The client is told
// ErrUnavailable (try later); the operator is told the cause in the log,
// at error level unless it is an outage or the client went away.
func (s *Service) unavailable(ctx context.Context, what, code string, err error) error {
	switch {
	case ctx.Err() != nil:
	case openapi.Retryable(err):
		s.log.WarnContext(ctx, "license: KooGallery's Open API is unavailable", "op", what, "license", code, "err", err)
	default:
		s.log.ErrorContext(ctx, "license: KooGallery's Open API refused koobridge's call; check the AK/SK, the IAM user's rights and the Open API settings",
			"op", what, "license", code, "err", err)
	}
	return fmt.Errorf("license: %s %s: %w: %w", what, code, ErrUnavailable, err)
}

// amount reads the amount KooGallery gave (activate's license_code_info,
// a query's LicenseInfo): the quantity bought, or 0 when absent or not a
// positive integer (unknown).
func amount(n protocol.FlexNumber) int {
	if v, err := n.Int64(); err == nil && v > 0 {
		return int(min(v, 1<<31-1))
	}
	return 0
}

// extraAmount reads "amount" among a query's extra fields (the query's
// table is cut off in every copy of the page: it may carry the amount).
func extraAmount(extra map[string]json.RawMessage) int {
	raw, ok := extra["amount"]
	if !ok {
		return 0
	}
	var n protocol.FlexNumber
	if err := n.UnmarshalJSON(raw); err != nil {
		return 0
	}
	return amount(n)
}

// confirmActivation handles an activation KooGallery says happened
// already (cause): a code another activation of ours recorded meanwhile
// is activated; otherwise it counts as activated only if KooGallery's
// query says ALIVE.
func (s *Service) confirmActivation(ctx context.Context, code string, cause error) (store.LicenseCode, error) {
	c, err := s.store.LicenseCode(ctx, code, false)
	if err == nil && !c.ActivatedAt.IsZero() {
		return c, nil
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return c, fmt.Errorf("license: activate %s: %w", code, err)
	}
	asked := s.now().UTC()
	info, err := s.api.QueryLicense(ctx, code)
	switch {
	case errors.Is(err, openapi.ErrLicenseNotFound):
		return c, fmt.Errorf("license: activate %s: %w: %w", code, ErrUnknown, err)
	case errors.Is(err, openapi.ErrLicenseNotActivated):
		// Illegal state to activate, yet not activated: KooGallery
		// refuses the code as it stands.
		return c, fmt.Errorf("license: activate %s: %w: %w (and the query: %w)", code, ErrRefused, cause, err)
	case err != nil:
		return c, s.unavailable(ctx, "activate", code, fmt.Errorf("%w (and the query: %w)", cause, err))
	case strings.TrimSpace(info.Status) != protocol.LicenseStatusAlive:
		return c, fmt.Errorf("license: activate %s: %w: KooGallery says the license code is %s: %w", code, ErrRefused, info.Status, cause)
	}
	now := s.now().UTC()
	a := activation{at: now, asked: asked, status: protocol.LicenseStatusAlive, amount: extraAmount(info.Extra), checked: true}
	if t, err := protocol.ParseExpireTime(strings.TrimSpace(info.ActivateTime)); err == nil && !t.After(now) {
		a.at = t
	}
	if t, err := protocol.ParseExpireTime(strings.TrimSpace(info.ExpireTime)); err == nil {
		a.expire = t
	}
	return s.recordActivation(ctx, code, a)
}

// recordActivation stores an activation. The first one wins: it sets
// ActivatedAt, writes the history and tells the vendor license.activated;
// a later one (another replica's, racing) only fills what the first left
// unknown. KooGallery has activated the code by now: the record is
// written even when the client went away meanwhile, or the next
// activation would meet "illegal state" and learn less (no amount).
func (s *Service) recordActivation(ctx context.Context, code string, a activation) (store.LicenseCode, error) {
	ctx = context.WithoutCancel(ctx)
	c, err := s.change(ctx, code, false, func(_ context.Context, _ store.Tx, c *store.LicenseCode, _ bool, now time.Time) ([]entry, error) {
		first := c.ActivatedAt.IsZero()
		before := *c
		if a.amount > 0 && (first || c.Amount == 0) {
			c.Amount = a.amount
		}
		if a.productID != "" && c.ProductID == "" {
			c.ProductID = a.productID
		}
		if a.orderID != "" && (first || c.OrderID == "") && c.OrderID != a.orderID {
			// The purchase order; its line is not told.
			c.OrderID, c.OrderLineID = a.orderID, ""
		}
		// Activate's expiry is an estimate (§A.8.1): it fills an unknown
		// one or replaces an older estimate, and is marked as such so a
		// renewal may shorten it; a query's is KooGallery's word.
		// Neither moves back an expiry a renewal set while KooGallery was
		// being asked.
		if !a.expire.IsZero() && (c.ExpireTime.IsZero() || c.ExpireEstimated || a.checked) &&
			!(answeredBefore(*c, a.asked) && a.expire.Before(c.ExpireTime)) {
			c.ExpireTime, c.ExpireEstimated = a.expire, !a.checked
		}
		if !first {
			if *c == before {
				return nil, errNoChange
			}
			return nil, nil
		}
		c.ActivatedAt = a.at
		switch a.status {
		case protocol.LicenseStatusAlive, protocol.LicenseStatusExpired, protocol.LicenseStatusReleased:
			c.RemoteStatus = a.status
		default: // activation succeeded: the code is alive, whatever the word
			c.RemoteStatus = protocol.LicenseStatusAlive
		}
		if a.checked {
			c.CheckedAt = now
		}
		detail := map[string]any{"remoteStatus": c.RemoteStatus}
		if c.Amount > 0 {
			detail["amount"] = c.Amount
		}
		if a.productID != "" {
			detail["productId"] = a.productID
		}
		if a.orderID != "" {
			detail["orderId"] = a.orderID
		}
		if !a.expire.IsZero() {
			detail["expireTime"] = a.expire
		}
		return []entry{{kind: kindActivated, source: sourceOpenAPI, detail: detail, event: provision.EventLicenseActivated}}, nil
	})
	if err != nil && !errors.Is(err, errNoChange) {
		return c, fmt.Errorf("license: record activation of %s: %w", code, err)
	}
	s.jobs.Kick()
	return c, nil
}

// bind gives the device a seat of the code, or moves its LastSeen when it
// has one. A bound device is found by the update of its LastSeen, so one
// an operator released meanwhile (ReleaseDevice) is not put back: it is
// new again. A new device is written in a transaction that reads the code
// first and bumps its Version, so two devices cannot both take the last
// seat; its history entry keeps only the device's hash. While KooGallery
// has not told the code's amount the devices are not counted (refusing
// a buyer's second device for koobridge's ignorance would be worse), and
// that is logged once per code.
func (s *Service) bind(ctx context.Context, c store.LicenseCode, device string) (store.LicenseCode, error) {
	if bound, err := s.touch(ctx, c.Code, device); err != nil || bound {
		return c, err
	}
	out, err := s.change(ctx, c.Code, false, func(ctx context.Context, tx store.Tx, c *store.LicenseCode, _ bool, now time.Time) ([]entry, error) {
		devices, err := tx.LicenseDevices(ctx, c.Code, false)
		if err != nil {
			return nil, err
		}
		if slices.ContainsFunc(devices, func(d store.LicenseDevice) bool { return d.Device == device }) {
			// Bound meanwhile by another activation of the device, whose
			// LastSeen is as recent as this one would be.
			return nil, errNoChange
		}
		if s.devices == DevicesAmount && c.Amount > 0 && len(devices) >= c.Amount {
			return nil, fmt.Errorf("%w: all %d seats of the license code are taken by other devices", ErrNoSeat, c.Amount)
		}
		if _, err := tx.UpsertLicenseDevice(ctx, store.LicenseDevice{Code: c.Code, Device: device, FirstSeen: now, LastSeen: now}); err != nil {
			return nil, err
		}
		return []entry{{kind: kindDevice, source: sourceClient, detail: map[string]any{"device": device, "seat": len(devices) + 1}}}, nil
	})
	switch {
	case errors.Is(err, errNoChange):
		return out, nil
	case err != nil:
		return out, fmt.Errorf("license: activate %s: %w", c.Code, err)
	}
	if s.devices == DevicesAmount && out.Amount == 0 {
		if _, logged := s.noAmount.LoadOrStore(out.Code, struct{}{}); !logged {
			s.log.WarnContext(ctx, "license: KooGallery has not told the amount bought; the code's devices are not counted until it does",
				"license", out.Code)
		}
	}
	return out, nil
}

// touch moves a bound device's LastSeen to now, for the usage statistics,
// and reports whether the device is bound. It never binds one: that is
// bind's, which counts the seats.
func (s *Service) touch(ctx context.Context, code, device string) (bound bool, err error) {
	now := s.now().UTC()
	err = s.store.Tx(ctx, func(ctx context.Context, tx store.Tx) error {
		bound, err = tx.TouchLicenseDevice(ctx, code, false, device, now)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("license: record device of %s: %w", code, err)
	}
	return bound, nil
}

// lastConfirmed is when KooGallery last vouched for the code: its
// activation, its last query's answer or the production interface's last
// call that made it alive (ConfirmedAt), whichever came last. The offline
// grace runs from it.
func lastConfirmed(c store.LicenseCode) time.Time {
	return latest(c.ActivatedAt, c.CheckedAt, c.ConfirmedAt)
}

// due reports whether KooGallery is to be asked about the code: its
// answer was forgotten (the production interface made the code alive
// again after a "not alive"), or its last answer (the activation's, a
// query's) is CheckInterval old. A production call does not put the
// query off: it tells only part of the code's state.
func (s *Service) due(c store.LicenseCode, now time.Time) bool {
	return c.RemoteStatus == "" || now.Sub(latest(c.ActivatedAt, c.CheckedAt)) >= s.checkInterval
}

// latest returns the latest of ts.
func latest(ts ...time.Time) time.Time {
	var out time.Time
	for _, t := range ts {
		if t.After(out) {
			out = t
		}
	}
	return out
}

// verdict answers for an activated code: the production interface's
// freeze or release at once; else KooGallery's last answer until a query
// is due; else a fresh query, or the cache while the grace lasts.
func (s *Service) verdict(ctx context.Context, c store.LicenseCode, fingerprint string) (Verdict, error) {
	now := s.now().UTC()
	if c.Status != store.LicenseActive {
		return fixedVerdict(c, fingerprint, now), nil
	}
	if !s.due(c, now) {
		return s.cachedVerdict(c, fingerprint, now, false), nil
	}
	fresh, err := s.query(ctx, c)
	switch {
	case err == nil:
		if fresh.Status != store.LicenseActive {
			return fixedVerdict(fresh, fingerprint, now), nil
		}
		return s.cachedVerdict(fresh, fingerprint, now, false), nil
	case !errors.Is(err, errUnconfirmed): // ErrUnknown, ErrNotActivated, the store failing
		return Verdict{}, err
	case fresh.Status != store.LicenseActive: // frozen or released meanwhile
		return fixedVerdict(fresh, fingerprint, now), nil
	}
	if last := lastConfirmed(fresh); now.Before(last.Add(s.grace)) {
		s.log.WarnContext(ctx, "license: KooGallery not reachable, answering from the cache", "license", c.Code, "confirmed", last, "err", err)
		return s.cachedVerdict(fresh, fingerprint, now, true), nil
	}
	return Verdict{}, fmt.Errorf("license: check %s: %w: the offline grace since KooGallery last confirmed the code is over: %w", c.Code, ErrUnavailable, err)
}

// errUnconfirmed marks a query that did not confirm the code's state
// (KooGallery unreachable, or an answer koobridge cannot read): the cache
// answers while the grace lasts.
var errUnconfirmed = errors.New("license: KooGallery did not confirm the license code")

// query asks KooGallery for the code's state unless it is no longer due
// (another check asked meanwhile; one query per code at a time in this
// process), and stores the answer. A query that fails (errUnconfirmed) is
// not tried again for the code within queryRetry. It returns the code as it is now;
// an error wrapping errUnconfirmed when the answer could not be had.
func (s *Service) query(ctx context.Context, c store.LicenseCode) (store.LicenseCode, error) {
	unlock := s.codes.lock(c.Code)
	defer unlock()
	fresh, err := s.store.LicenseCode(ctx, c.Code, false)
	if err != nil {
		return c, fmt.Errorf("license: check %s: %w", c.Code, err)
	}
	now := s.now().UTC()
	if fresh.Status != store.LicenseActive || !s.due(fresh, now) {
		return fresh, nil
	}
	if v, ok := s.failed.Load(c.Code); ok {
		if at := v.(time.Time); now.Sub(at) < s.queryRetry {
			return fresh, fmt.Errorf("%w: the query of %s failed at %s; not asked again before %s",
				errUnconfirmed, c.Code, at.Format(time.RFC3339), at.Add(s.queryRetry).Format(time.RFC3339))
		}
	}
	info, err := s.api.QueryLicense(ctx, c.Code)
	switch {
	case errors.Is(err, openapi.ErrLicenseNotFound):
		s.failed.Delete(c.Code)
		return fresh, fmt.Errorf("license: check %s: %w: %w", c.Code, ErrUnknown, err)
	case errors.Is(err, openapi.ErrLicenseNotActivated):
		s.failed.Delete(c.Code)
		return s.deactivate(ctx, fresh, err)
	case err != nil:
		// Unreachable, or refused for a reason that is not the code's
		// (the gateway refused the AK/SK): the buyer's software keeps
		// working on the cache while the grace lasts.
		if ctx.Err() == nil {
			s.failed.Store(c.Code, now)
		}
		return fresh, fmt.Errorf("%w: %w", errUnconfirmed, err)
	}
	status := strings.TrimSpace(info.Status)
	switch status {
	case protocol.LicenseStatusAlive, protocol.LicenseStatusExpired, protocol.LicenseStatusReleased:
	default:
		s.failed.Store(c.Code, now)
		return fresh, fmt.Errorf("%w: query of %s answered the unknown status %q", errUnconfirmed, c.Code, info.Status)
	}
	s.failed.Delete(c.Code)
	var expire time.Time
	if info.ExpireTime != "" {
		if expire, err = protocol.ParseExpireTime(strings.TrimSpace(info.ExpireTime)); err != nil {
			s.log.WarnContext(ctx, "license: query answered an unreadable expire_time; kept the known expiry", "license", c.Code, "expire_time", info.ExpireTime)
		}
	}
	amount := extraAmount(info.Extra)
	asked := now
	out, err := s.change(ctx, c.Code, false, func(_ context.Context, _ store.Tx, c *store.LicenseCode, _ bool, now time.Time) ([]entry, error) {
		status, expire := status, expire
		if answeredBefore(*c, asked) {
			// A renewal or UNFREEZE came while KooGallery was being asked:
			// its answer may predate it. It never moves the expiry back,
			// and a not-alive answer is not kept: the next check asks again.
			if status != protocol.LicenseStatusAlive {
				status = ""
			}
			if expire.Before(c.ExpireTime) {
				expire = time.Time{}
			}
		}
		changed := c.RemoteStatus != status || (!expire.IsZero() && !expire.Equal(c.ExpireTime)) || (amount > 0 && amount != c.Amount)
		c.RemoteStatus, c.CheckedAt = status, now
		if !expire.IsZero() {
			c.ExpireTime, c.ExpireEstimated = expire, false
		}
		if amount > 0 {
			c.Amount = amount
		}
		if !changed {
			return nil, nil
		}
		detail := map[string]any{"remoteStatus": status}
		if !expire.IsZero() {
			detail["expireTime"] = expire
		}
		if amount > 0 {
			detail["amount"] = amount
		}
		return []entry{{kind: kindChecked, source: sourceOpenAPI, detail: detail}}, nil
	})
	if err != nil {
		return fresh, fmt.Errorf("license: check %s: record the answer: %w", c.Code, err)
	}
	return out, nil
}

// answeredBefore reports whether the production interface confirmed c
// (ConfirmedAt: a renewal into the future, an UNFREEZE) at or after asked,
// when KooGallery was asked: KooGallery's answer may then predate the
// change, and must not undo it.
func answeredBefore(c store.LicenseCode, asked time.Time) bool {
	return !c.ConfirmedAt.IsZero() && !c.ConfirmedAt.Before(asked)
}

// deactivate records KooGallery saying a code koobridge activated is not
// activated (92020011: a test code reset, an activation lost on its
// side): the activation is cleared, so the next Activate activates the
// code again; its devices keep their seats.
func (s *Service) deactivate(ctx context.Context, c store.LicenseCode, cause error) (store.LicenseCode, error) {
	out, err := s.change(ctx, c.Code, false, func(_ context.Context, _ store.Tx, c *store.LicenseCode, _ bool, now time.Time) ([]entry, error) {
		if c.ActivatedAt.IsZero() {
			return nil, errNoChange
		}
		c.ActivatedAt, c.CheckedAt, c.RemoteStatus = time.Time{}, now, ""
		return []entry{{kind: kindDeactivated, source: sourceOpenAPI, detail: map[string]any{"reason": "KooGallery reports the code as not activated"}}}, nil
	})
	if err != nil && !errors.Is(err, errNoChange) {
		return c, fmt.Errorf("license: check %s: record deactivation: %w", c.Code, err)
	}
	return out, fmt.Errorf("license: check %s: %w: KooGallery reports it as not activated; activate it again: %w", c.Code, ErrNotActivated, cause)
}

// remoteVerdict maps KooGallery's status onto the token's.
func remoteVerdict(remote string) string {
	switch remote {
	case protocol.LicenseStatusExpired:
		return string(store.LicenseFrozen)
	case protocol.LicenseStatusReleased:
		return string(store.LicenseReleased)
	}
	return string(store.LicenseActive)
}

// cachedVerdict answers from the code as stored: KooGallery's last
// status; an active answer is valid for the grace, but never beyond
// CheckInterval + Grace after the last confirmation, so a client that
// keeps its token still has to come back.
func (s *Service) cachedVerdict(c store.LicenseCode, fingerprint string, now time.Time, cached bool) Verdict {
	v := Verdict{License: c.Code, Fingerprint: fingerprint, Status: remoteVerdict(c.RemoteStatus), Expires: c.ExpireTime, ValidUntil: now, Cached: cached}
	if v.Status == string(store.LicenseActive) {
		v.ValidUntil = now.Add(s.grace)
		if limit := lastConfirmed(c).Add(s.checkInterval + s.grace); limit.Before(v.ValidUntil) {
			v.ValidUntil = limit
		}
	}
	return v
}

// fixedVerdict answers for a code the production interface froze or
// released: valid only now.
func fixedVerdict(c store.LicenseCode, fingerprint string, now time.Time) Verdict {
	return Verdict{License: c.Code, Fingerprint: fingerprint, Status: string(c.Status), Expires: c.ExpireTime, ValidUntil: now}
}
