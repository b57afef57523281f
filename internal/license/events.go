package license

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
	"github.com/koobridge/koobridge/provision"
)

// errNoChange ends a transaction that has nothing to write.
var errNoChange = errors.New("license: no change")

// maxConflictRetries bounds the re-read-and-retry loop of change.
const maxConflictRetries = 8

// Sources of history entries (store.LicenseEvent.Source).
const (
	sourceKooGallery = "koogallery" // the production interface
	sourceOpenAPI    = "openapi"    // koobridge asked KooGallery
	sourceClient     = "client"     // the license service
	sourceAdmin      = "admin"      // an operator (admin API, console)
)

// entry is one history entry a change records, with the vendor event it
// causes ("" for none).
type entry struct {
	kind   string
	source string
	detail map[string]any
	event  provision.EventType
	scene  string // license.renewed's scene
}

// change runs fn on the code (code, test) in one transaction and writes
// what fn decided: the code (inserted when none was stored: fn then gets
// a new code and isNew), then each history entry and the job of its
// vendor event. errNoChange from fn ends the transaction without a write
// (change returns it with the code as read); a concurrent update is
// retried from a fresh read, so fn must not keep effects of a failed try.
func (s *Service) change(ctx context.Context, code string, test bool,
	fn func(ctx context.Context, tx store.Tx, c *store.LicenseCode, isNew bool, now time.Time) ([]entry, error),
) (store.LicenseCode, error) {
	var out store.LicenseCode
	for try := 0; ; try++ {
		err := s.store.Tx(ctx, func(ctx context.Context, tx store.Tx) error {
			now := s.now().UTC()
			c, err := tx.LicenseCode(ctx, code, test)
			isNew := errors.Is(err, store.ErrNotFound)
			switch {
			case isNew:
				c = store.LicenseCode{Code: code, Test: test, Status: store.LicenseActive, CreatedAt: now}
			case err != nil:
				return err
			}
			entries, err := fn(ctx, tx, &c, isNew, now)
			out = c
			if err != nil {
				return err
			}
			c.UpdatedAt = now
			if isNew {
				inserted, err := tx.InsertLicenseCode(ctx, c)
				if err != nil {
					return err
				}
				if !inserted { // a concurrent call recorded it first: start again from its row
					return store.ErrConflict
				}
			} else {
				if err := tx.UpdateLicenseCode(ctx, c); err != nil {
					return err
				}
				c.Version++
			}
			out = c
			for _, e := range entries {
				if err := s.record(ctx, tx, c, e, now); err != nil {
					return err
				}
			}
			return nil
		})
		if errors.Is(err, store.ErrConflict) && try < maxConflictRetries {
			continue
		}
		return out, err
	}
}

// record writes one history entry of c and, when it causes one, the job
// of its vendor event, whose ID (and job key) includes the history row's
// ID: unique per occurrence, the same for every delivery of it.
func (s *Service) record(ctx context.Context, tx store.Tx, c store.LicenseCode, e entry, now time.Time) error {
	detail := "{}"
	if len(e.detail) > 0 {
		b, err := json.Marshal(e.detail)
		if err != nil {
			return fmt.Errorf("license: encode %s history: %w", e.kind, err)
		}
		detail = string(b)
	}
	id, err := tx.InsertLicenseEvent(ctx, store.LicenseEvent{
		Code: c.Code, Test: c.Test, Kind: e.kind, Source: e.source, Detail: detail, At: now,
	})
	if err != nil {
		return fmt.Errorf("license: record %s of %s: %w", e.kind, c.Code, err)
	}
	if e.event == "" {
		return nil
	}
	return enqueueEvent(ctx, tx, c, e.event, e.scene, strconv.FormatInt(id, 10), now)
}

// enqueueEvent enqueues the job of one vendor event about c, as c is now;
// its ID is the event type, the code and occurrence: the job's unique key.
func enqueueEvent(ctx context.Context, tx store.Tx, c store.LicenseCode, typ provision.EventType, scene, occurrence string, now time.Time) error {
	ev := provision.Event{
		ID:      instance.Key(string(typ), c.Code, testFlag(c.Test), occurrence),
		Type:    typ,
		Time:    now,
		Test:    c.Test,
		License: vendorView(c, scene),
	}
	payload, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("license: encode %s event: %w", typ, err)
	}
	if _, _, err := tx.EnqueueJob(ctx, store.Job{
		Kind: KindEvent, UniqueKey: ev.ID, Payload: payload, MaxAttempts: jobs.DefaultMaxAttempts, RunAt: now,
	}); err != nil {
		return fmt.Errorf("license: enqueue %s event: %w", typ, err)
	}
	return nil
}

// vendorView is a code as the license.* events show it to the vendor.
func vendorView(c store.LicenseCode, scene string) *provision.License {
	return &provision.License{
		Code:        c.Code,
		Status:      string(c.Status),
		ExpireTime:  c.ExpireTime,
		OrderID:     c.OrderID,
		OrderLineID: c.OrderLineID,
		ProductID:   c.ProductID,
		Amount:      c.Amount,
		Scene:       scene,
	}
}

// handleEvent delivers one license.* event, as it was built when the
// change committed (each event says the state it left the code in), to
// the provisioner of real or debug codes. Failures are retried by the
// runner with backoff; a permanent one (provision.ErrPermanent) kills the
// job, which an operator can re-run. Deliveries are not ordered (a
// failed one is retried after later events went out): after each, correct
// sends the code's current status again should it have moved on.
func (s *Service) handleEvent(ctx context.Context, job store.Job) error {
	var ev provision.Event
	if err := json.Unmarshal(job.Payload, &ev); err != nil || ev.ID == "" || ev.License == nil {
		return jobs.Permanent(fmt.Errorf("license: bad event job payload (job %d): %v", job.ID, err))
	}
	prov := s.prov
	if ev.Test {
		prov = s.testProv
	}
	if _, err := prov.Provision(ctx, ev); err != nil {
		err = fmt.Errorf("license: deliver %s %s: %w", ev.Type, ev.ID, err)
		if errors.Is(err, provision.ErrPermanent) {
			return jobs.Permanent(err)
		}
		return err
	}
	s.log.InfoContext(ctx, "license: event delivered", "event", ev.ID, "type", ev.Type, "test", ev.Test)
	// The vendor has the event: the check that follows is not bound by the
	// attempt's lease (a slow vendor may have used it up), or its failure
	// would deliver the event again for nothing.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), correctTimeout)
	defer cancel()
	return s.correct(cctx, job, ev)
}

// correctTimeout bounds correct after a delivery.
const correctTimeout = 30 * time.Second

// statusEvents is the event that says each status.
var statusEvents = map[store.LicenseStatus]provision.EventType{
	store.LicenseActive:   provision.EventLicenseUnfrozen,
	store.LicenseFrozen:   provision.EventLicenseFrozen,
	store.LicenseReleased: provision.EventLicenseReleased,
}

// correct re-reads the code of a delivered event (sent) and, when its
// status is no longer the one the event said, enqueues the event of the
// current status (license.frozen, license.unfrozen for active, or
// license.released), as package instance does: a delivery that failed
// first may reach the vendor after a later event, and the vendor's last
// word must be the code's state. The correction's ID ends in "fix-" and
// the delivered job's ID, so a redelivery makes no second one; it is
// checked in turn when delivered.
func (s *Service) correct(ctx context.Context, job store.Job, sent provision.Event) error {
	c, err := s.store.LicenseCode(ctx, sent.License.Code, sent.Test)
	if err != nil {
		return fmt.Errorf("license: re-read %s after delivering %s: %w", sent.License.Code, sent.ID, err)
	}
	typ, ok := statusEvents[c.Status]
	if !ok || string(c.Status) == sent.License.Status {
		return nil
	}
	err = s.store.Tx(ctx, func(ctx context.Context, tx store.Tx) error {
		return enqueueEvent(ctx, tx, c, typ, "", "fix-"+strconv.FormatInt(job.ID, 10), s.now().UTC())
	})
	if err != nil {
		return fmt.Errorf("license: correct %s after delivering %s: %w", c.Code, sent.ID, err)
	}
	s.log.InfoContext(ctx, "license: an event reached the vendor after a later change; the current status is sent again",
		"event", sent.ID, "license", c.Code, "status", c.Status)
	s.jobs.Kick()
	return nil
}
