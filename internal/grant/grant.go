// Package grant keeps the licenses koobridge has the vendor's license
// generator make on a buyer's request (store.LicenseGrant): for an
// online-license getLicenseAsync (license-openapi.md §C.6, kind online,
// uploaded back to KooGallery with §C.7) and for a license 1.0 getLicense
// (§B.2, kind legacy, answered in the reply).
//
// A grant is inserted with its generate job in the transaction of the call
// that asks for it (unique on kind and key, so a repeated or concurrent
// request makes one grant). The generate job (KindGenerate) sends
// license.requested through the provisioner (the test provisioner for
// debug requests) and stores the answer's license sealed with the data key
// (package seal), with its SHA-256 in hex and its type, CHARACTERS or FILE.
// A license 1.0 call waits for it up to the budget, running the first
// attempt itself as a purchase does (Await); an online one is answered
// 000004 at once.
//
// An online grant is then uploaded by a job of its own (KindUpload), retried
// with the runner's backoff (capped) for UploadAttempts attempts until
// KooGallery accepts it. Every attempt is counted before it is sent and
// recorded after (accepted, retry or refused, with KooGallery's code and
// message); a permanent refusal (invalid format, application invalid or
// denied, CBC.0101, …) fails the grant with the reason, and an operator's
// Retry, or KooGallery resending the getLicenseAsync (Resume), puts it back
// to work. Once an acceptance is recorded the grant is never uploaded
// again: the job reads the grant and its recorded attempts before it
// uploads, so a job run again after a crash that followed the acceptance
// only marks the grant. An acceptance whose answer was lost (no answer, a
// 5xx, an unreadable answer, or a crash before it was recorded) is
// learnt from the next attempt: KooGallery answers it success for the
// same license, or "application denied" (91381038), which after such an
// attempt is recorded as the acceptance it reports.
//
// License 1.0 licenses also have a lifecycle (refreshLicense,
// expireLicense, releaseLicense): Renew, Expire and Release change it and
// tell the vendor (license.renewed, license.frozen, license.released, with
// Event.License naming the instanceId) through a job of kind KindEvent.
//
// License contents and device fingerprints are never logged, never in an
// error and never in the clear in the database: a device is kept as the
// keyed hash of its fingerprint (license.DeviceHash), and sealed for the
// generator, which needs it.
package grant

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/koobridge/koobridge/internal/instance"
	"github.com/koobridge/koobridge/internal/jobs"
	"github.com/koobridge/koobridge/internal/license"
	"github.com/koobridge/koobridge/internal/seal"
	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/provision"
)

// Job kinds of the Service; see Jobs.
const (
	// KindGenerate asks the vendor's generator for a grant's license.
	KindGenerate = "license-generate"
	// KindUpload uploads an online grant's license to KooGallery.
	KindUpload = "license-upload"
	// KindEvent delivers a license 1.0 lifecycle event to the vendor.
	KindEvent = "license-grant-event"
)

// DefaultUploadAttempts is the attempts of an upload job unless
// Config.UploadAttempts says otherwise: with the runner's default backoff
// (doubling, at most 10 minutes) about a week of retries.
const DefaultUploadAttempts = 1000

// ErrInstanceTaken is returned (wrapped) by Insert and Request for a
// license 1.0 grant whose InstanceID is already another order's: its
// lifecycle calls, which name the instanceId, could not tell the two
// apart. Nothing is written.
var ErrInstanceTaken = errors.New("grant: the instanceId is already another order's license")

// ErrWrongState is returned (wrapped, with the state named) by Retry for a
// grant whose state does not allow it. It wraps store.ErrConflict, which
// the admin API answers 409.
var ErrWrongState = fmt.Errorf("grant: its state does not allow this: %w", store.ErrConflict)

// Store is what the Service keeps and reads: grants and their uploads, the
// instances online grants belong to, jobs.
type Store interface {
	store.Licenses
	store.InstanceReader
	store.Txer
	store.Jobs
}

// Config configures a Service.
type Config struct {
	Store Store
	// Provisioner generates the licenses of real requests, TestProvisioner
	// those of debug ones (testFlag "1", MOCK* orders); nil means
	// Provisioner.
	Provisioner     provision.Provisioner
	TestProvisioner provision.Provisioner
	// Uploader uploads online grants (the Open API client). Required.
	Uploader Uploader
	// Sealer seals licenses and device fingerprints at rest. Required.
	Sealer *seal.Sealer
	// DeviceKey keys the device hashes (license.DeviceHash) that identify
	// an application's device, so that a hash cannot be reversed by trying
	// fingerprints; isv derives it from the data key
	// (license.DeviceKeyFrom), as for the license service. Required, at
	// least license.MinDeviceKey bytes.
	DeviceKey []byte
	// Jobs runs the Service's jobs; register Jobs() with it before it
	// starts. The Service uses Kick, Execute, WorkerID and Lease.
	Jobs *jobs.Runner
	// Budget is how long a license 1.0 getLicense waits for the generator
	// before it answers 000004 (the first attempt goes on). Required.
	Budget time.Duration
	// MaxAttempts is the attempts of generate and event jobs; zero means
	// jobs.DefaultMaxAttempts.
	MaxAttempts int
	// UploadAttempts is the attempts of an upload job; zero means
	// DefaultUploadAttempts.
	UploadAttempts int
	Logger         *slog.Logger
	Now            func() time.Time
}

// Service generates, uploads and keeps grants. It is safe for concurrent
// use.
type Service struct {
	store          Store
	prov           provision.Provisioner
	testProv       provision.Provisioner
	uploader       Uploader
	sealer         *seal.Sealer
	deviceKey      []byte
	jobs           *jobs.Runner
	budget         time.Duration
	maxAttempts    int
	uploadAttempts int
	log            *slog.Logger
	now            func() time.Time
}

// New checks cfg and returns a Service.
func New(cfg Config) (*Service, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("grant: Config.Store is required")
	case cfg.Provisioner == nil:
		return nil, errors.New("grant: Config.Provisioner is required (it generates the licenses)")
	case cfg.Uploader == nil:
		return nil, errors.New("grant: Config.Uploader is required (online licenses are uploaded)")
	case cfg.Sealer == nil:
		return nil, errors.New("grant: Config.Sealer is required (licenses are sealed at rest)")
	case len(cfg.DeviceKey) < license.MinDeviceKey:
		return nil, fmt.Errorf("grant: Config.DeviceKey is required, at least %d bytes", license.MinDeviceKey)
	case cfg.Jobs == nil:
		return nil, errors.New("grant: Config.Jobs is required")
	case cfg.Budget <= 0:
		return nil, errors.New("grant: Config.Budget must be positive")
	case cfg.MaxAttempts < 0, cfg.UploadAttempts < 0:
		return nil, errors.New("grant: negative attempts")
	}
	s := &Service{
		store: cfg.Store, prov: cfg.Provisioner, testProv: cfg.TestProvisioner, uploader: cfg.Uploader,
		sealer: cfg.Sealer, deviceKey: append([]byte(nil), cfg.DeviceKey...), jobs: cfg.Jobs, budget: cfg.Budget, maxAttempts: cfg.MaxAttempts,
		uploadAttempts: cfg.UploadAttempts, log: cfg.Logger, now: cfg.Now,
	}
	if s.testProv == nil {
		s.testProv = s.prov
	}
	if s.maxAttempts == 0 {
		s.maxAttempts = jobs.DefaultMaxAttempts
	}
	if s.uploadAttempts == 0 {
		s.uploadAttempts = DefaultUploadAttempts
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

// Jobs returns the Service's job handlers by kind, to register with the
// runner before it starts.
func (s *Service) Jobs() map[string]jobs.HandlerFunc {
	return map[string]jobs.HandlerFunc{
		KindGenerate: s.handleGenerate,
		KindUpload:   s.handleUpload,
		KindEvent:    s.handleEvent,
	}
}

// Kick wakes the runner's workers: a call that inserted a grant with a
// job due now calls it after its transaction commits.
func (s *Service) Kick() { s.jobs.Kick() }

// Budget returns how long a license 1.0 call waits for the generator.
func (s *Service) Budget() time.Duration { return s.budget }

// Wait blocks until the first attempts that calls started and left
// running at their deadline have returned; calls arriving after Wait has
// begun leave their job to the runners.
func (s *Service) Wait() { s.jobs.Wait() }

// provisionerFor picks the provisioner of a grant: debug requests go to
// the test provisioner.
func (s *Service) provisionerFor(test bool) provision.Provisioner {
	if test {
		return s.testProv
	}
	return s.prov
}

// Request is a license to have generated.
type Request struct {
	Kind store.GrantKind
	// Key identifies the request within Kind: online, OnlineKey of the
	// eventId and the device fingerprint; legacy, the orderId.
	Key        string
	InstanceID string // online: the instance; legacy: the instanceId answered
	EventID    string // online: KooGallery's eventId
	OrderID    string
	ProductID  string
	Test       bool
	// EffectiveTime and ExpireTime are the license's validity (zero:
	// unknown, or perpetual).
	EffectiveTime time.Time
	ExpireTime    time.Time
	// DeviceFingerprint is the buyer's device (online, §D.3), "" for
	// none: kept hashed, and sealed for the generator.
	DeviceFingerprint string
	// Order is the purchase a license 1.0 getLicense carried.
	Order *provision.Order
	// Fingerprint is a digest of the request's meaningful fields
	// (instance.Fingerprint): a later request with the same Key and
	// another Fingerprint is not a repeat (see SameRequest).
	Fingerprint string
	// InCall says the calling request runs the first generate attempt
	// itself (Await): its job is due only after the budget, for a runner
	// to take over should this process die first. Otherwise the job is
	// due at once.
	InCall bool
}

// OnlineKey is the key of an online grant: the eventId and the device
// fingerprint's keyed hash, which together identify one application
// (§C.6).
func (s *Service) OnlineKey(eventID, deviceFingerprint string) string {
	device := ""
	if deviceFingerprint != "" {
		device = license.DeviceHash(s.deviceKey, deviceFingerprint)
	}
	return instance.Key(eventID, device)
}

// details is a grant's Request JSON: what the request asked for, for the
// admin API and the generator. The device fingerprint is there only as
// its hash and sealed with the data key, never in clear.
type details struct {
	EffectiveTime time.Time        `json:"effectiveTime,omitzero"`
	ExpireTime    time.Time        `json:"expireTime,omitzero"`
	Device        string           `json:"device,omitempty"`       // license.DeviceHash of the fingerprint
	DeviceSealed  string           `json:"deviceSealed,omitempty"` // the fingerprint, sealed
	Order         *provision.Order `json:"order,omitempty"`        // legacy: the purchase
	Fingerprint   string           `json:"fingerprint,omitempty"`  // of the request's meaningful fields
}

// readDetails decodes a grant's Request JSON.
func readDetails(g store.LicenseGrant) (details, error) {
	var d details
	if g.Request == "" {
		return d, nil
	}
	if err := json.Unmarshal([]byte(g.Request), &d); err != nil {
		return d, fmt.Errorf("grant %d: request details: %w", g.ID, err)
	}
	return d, nil
}

// SameRequest reports whether g was stored for a request with fingerprint
// fp (Request.Fingerprint).
func SameRequest(g store.LicenseGrant, fp string) bool {
	d, err := readDetails(g)
	return err == nil && d.Fingerprint == fp
}

// Insert adds, in tx, the grant of r and its generate job, unless a grant
// of (r.Kind, r.Key) exists: it returns the grant (the existing one when
// it did not insert), whether it inserted, and the generate job's ID when
// it did (for Await).
func (s *Service) Insert(ctx context.Context, tx store.Tx, r Request) (g store.LicenseGrant, inserted bool, jobID int64, err error) {
	if (r.Kind != store.GrantOnline && r.Kind != store.GrantLegacy) || r.Key == "" {
		return g, false, 0, fmt.Errorf("grant: insert: kind %q key %q", r.Kind, r.Key)
	}
	now := s.now().UTC()
	d := details{EffectiveTime: r.EffectiveTime.UTC(), ExpireTime: r.ExpireTime.UTC(), Order: r.Order, Fingerprint: r.Fingerprint}
	if r.DeviceFingerprint != "" {
		d.Device = license.DeviceHash(s.deviceKey, r.DeviceFingerprint)
		if d.DeviceSealed, err = s.sealer.Seal(r.DeviceFingerprint); err != nil {
			return g, false, 0, fmt.Errorf("grant: seal the device fingerprint: %w", err)
		}
	}
	req, err := json.Marshal(d)
	if err != nil {
		return g, false, 0, fmt.Errorf("grant: encode the request: %w", err)
	}
	g = store.LicenseGrant{
		Kind: r.Kind, Key: r.Key, InstanceID: r.InstanceID, EventID: r.EventID, OrderID: r.OrderID,
		ProductID: r.ProductID, Test: r.Test, State: store.GrantPending, Status: store.LicenseActive,
		ExpireTime: d.ExpireTime, Request: string(req), CreatedAt: now, UpdatedAt: now,
	}
	id, inserted, err := tx.InsertLicenseGrant(ctx, g)
	if err != nil {
		return g, false, 0, fmt.Errorf("grant: insert %s %s: %w", r.Kind, r.Key, err)
	}
	if !inserted {
		if g, err = tx.LicenseGrantByID(ctx, id); err != nil {
			return g, false, 0, fmt.Errorf("grant: read %d: %w", id, err)
		}
		return g, false, 0, nil
	}
	g.ID = id
	if r.Kind == store.GrantLegacy {
		if err := s.claimInstance(ctx, tx, g, now); err != nil {
			return g, false, 0, err
		}
	}
	runAt := now
	if r.InCall {
		runAt = now.Add(s.budget + 5*time.Second)
	}
	jobID, err = s.enqueue(ctx, tx, KindGenerate, KindGenerate+":"+strconv.FormatInt(id, 10), id, runAt)
	if err != nil {
		return g, false, 0, err
	}
	return g, true, jobID, nil
}

// claimInstance makes legacy grant g (just inserted in tx) the only one
// answered as its InstanceID: a record keyed on the instanceId, unique in
// the store, so that of two orders racing for one instanceId exactly one
// commits (the other's insert waits for it, then finds the key taken); a
// grant stored before such records were kept is found by its instanceId.
// ErrInstanceTaken when another order holds it.
func (s *Service) claimInstance(ctx context.Context, tx store.Tx, g store.LicenseGrant, now time.Time) error {
	key := instance.Key(legacyInstanceClaim, g.InstanceID)
	inserted, err := tx.InsertOperation(ctx, store.Operation{
		Key: key, Activity: legacyInstanceClaim, InstanceID: g.InstanceID, Fingerprint: instance.Fingerprint(g.OrderID),
		State: store.OperationDone, CreatedAt: now, UpdatedAt: now,
	})
	if err != nil {
		return fmt.Errorf("grant: claim instanceId %s: %w", g.InstanceID, err)
	}
	if !inserted {
		return fmt.Errorf("grant: insert legacy %s as %s: %w", g.OrderID, g.InstanceID, ErrInstanceTaken)
	}
	switch first, err := tx.LicenseGrantByInstance(ctx, store.GrantLegacy, g.InstanceID); {
	case err != nil:
		return fmt.Errorf("grant: claim instanceId %s: %w", g.InstanceID, err)
	case first.ID != g.ID:
		return fmt.Errorf("grant: insert legacy %s as %s: %w", g.OrderID, g.InstanceID, ErrInstanceTaken)
	}
	return nil
}

// legacyInstanceClaim names the records claimInstance keeps.
const legacyInstanceClaim = "licenseV1Instance"

// Request inserts r's grant and generate job, as Insert does, in a
// transaction of its own: for a call that writes nothing else (license
// 1.0 getLicense).
func (s *Service) Request(ctx context.Context, r Request) (g store.LicenseGrant, inserted bool, jobID int64, err error) {
	err = s.store.Tx(ctx, func(ctx context.Context, tx store.Tx) error {
		var err error
		g, inserted, jobID, err = s.Insert(ctx, tx, r)
		return err
	})
	return g, inserted, jobID, err
}

// payload is the JSON payload of the generate and upload jobs.
type payload struct {
	GrantID int64 `json:"grantId"`
	// Waits counts the generate jobs before this one that found the
	// instance still being provisioned (waitForInstance).
	Waits int `json:"waits,omitempty"`
}

// enqueue adds a generate or upload job of grant id in tx.
func (s *Service) enqueue(ctx context.Context, tx store.Tx, kind, uniqueKey string, id int64, runAt time.Time) (int64, error) {
	return s.enqueuePayload(ctx, tx, kind, uniqueKey, payload{GrantID: id}, runAt)
}

// enqueuePayload adds a generate or upload job with payload p in tx.
func (s *Service) enqueuePayload(ctx context.Context, tx store.Tx, kind, uniqueKey string, p payload, runAt time.Time) (int64, error) {
	id := p.GrantID
	b, err := json.Marshal(p)
	if err != nil {
		return 0, fmt.Errorf("grant: encode %s job: %w", kind, err)
	}
	attempts := s.maxAttempts
	if kind == KindUpload {
		attempts = s.uploadAttempts
	}
	jobID, _, err := tx.EnqueueJob(ctx, store.Job{
		Kind: kind, UniqueKey: uniqueKey, Payload: b, MaxAttempts: attempts, RunAt: runAt.UTC(),
	})
	if err != nil {
		return 0, fmt.Errorf("grant: enqueue %s job of %d: %w", kind, id, err)
	}
	return jobID, nil
}

// loadForJob reads the grant a generate or upload job is about; a job
// whose grant does not exist can never succeed.
func (s *Service) loadForJob(ctx context.Context, job store.Job) (store.LicenseGrant, error) {
	g, _, err := s.loadWithPayload(ctx, job)
	return g, err
}

// loadWithPayload is loadForJob that also returns the job's payload.
func (s *Service) loadWithPayload(ctx context.Context, job store.Job) (store.LicenseGrant, payload, error) {
	var p payload
	if err := json.Unmarshal(job.Payload, &p); err != nil || p.GrantID <= 0 {
		return store.LicenseGrant{}, p, jobs.Permanent(fmt.Errorf("grant: bad %s job payload (job %d)", job.Kind, job.ID))
	}
	g, err := s.store.LicenseGrantByID(ctx, p.GrantID)
	if errors.Is(err, store.ErrNotFound) {
		return g, p, jobs.Permanent(fmt.Errorf("grant: %s job: grant %d does not exist", job.Kind, p.GrantID))
	}
	if err != nil {
		return g, p, fmt.Errorf("grant: %s job: read grant %d: %w", job.Kind, p.GrantID, err)
	}
	return g, p, nil
}

// maxConflictRetries bounds the re-read-and-retry loop of update.
const maxConflictRetries = 8

// errNoChange tells update that fn left the grant as it is.
var errNoChange = errors.New("grant: no change")

// update reads grant id in a transaction, lets fn change it (and add rows
// with tx) and writes it back with the version check, re-reading and
// deciding again when another writer got there first. fn returns
// errNoChange to write nothing; update then returns the grant as read and
// errNoChange.
func (s *Service) update(ctx context.Context, id int64, fn func(ctx context.Context, tx store.Tx, g *store.LicenseGrant) error) (store.LicenseGrant, error) {
	var out store.LicenseGrant
	for try := 0; ; try++ {
		err := s.store.Tx(ctx, func(ctx context.Context, tx store.Tx) error {
			g, err := tx.LicenseGrantByID(ctx, id)
			if err != nil {
				return err
			}
			if err := fn(ctx, tx, &g); err != nil {
				out = g
				return err
			}
			g.UpdatedAt = s.now().UTC()
			if err := tx.UpdateLicenseGrant(ctx, g); err != nil {
				return err
			}
			g.Version++
			out = g
			return nil
		})
		if errors.Is(err, store.ErrConflict) && try < maxConflictRetries {
			continue
		}
		if err != nil && !errors.Is(err, errNoChange) && !errors.Is(err, store.ErrNotFound) {
			return out, fmt.Errorf("grant: update %d: %w", id, err)
		}
		return out, err
	}
}

// License returns a generated grant's license as the vendor made it.
func (s *Service) License(g store.LicenseGrant) (provision.LicenseFile, error) {
	if g.ContentSealed == "" {
		return provision.LicenseFile{}, fmt.Errorf("grant %d: no license yet (%s)", g.ID, g.State)
	}
	content, err := s.sealer.Open(g.ContentSealed)
	if err != nil {
		return provision.LicenseFile{}, fmt.Errorf("grant %d: unseal the license: %w", g.ID, err)
	}
	if g.Type == TypeFile {
		return provision.LicenseFile{FileName: g.FileName, Content: []byte(content)}, nil
	}
	return provision.LicenseFile{Characters: content}, nil
}

// License types (store.LicenseGrant.Type), as the upload names them.
const (
	TypeCharacters = "CHARACTERS"
	TypeFile       = "FILE"
)

// Retry puts a failed grant back to work (the admin API's re-run): one
// that failed before its license was generated is generated again, one
// whose upload was refused is uploaded again. A grant in another state
// gives an error wrapping ErrWrongState (and store.ErrConflict); an
// unknown id one wrapping store.ErrNotFound.
func (s *Service) Retry(ctx context.Context, id int64) error {
	_, err := s.retry(ctx, id, s.now().UTC())
	if err == nil {
		s.log.InfoContext(ctx, "grant: re-run", "grant", id)
		s.jobs.Kick()
	}
	return err
}

// Resume puts the failed grant of (kind, key) back to work, as Retry
// does, for a repeat of the request that made it: KooGallery resending a
// getLicenseAsync still wants the license, and the vendor may have fixed
// the cause. It reports whether it restarted the grant: not when there is
// none, when it is not failed, or when a concurrent repeat restarted it
// first.
func (s *Service) Resume(ctx context.Context, kind store.GrantKind, key string) (bool, error) {
	g, err := s.store.LicenseGrant(ctx, kind, key)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("grant: resume %s %s: %w", kind, key, err)
	case g.State != store.GrantFailed:
		return false, nil
	}
	switch err := s.Retry(ctx, g.ID); {
	case errors.Is(err, ErrWrongState):
		return false, nil
	case err != nil:
		return false, err
	}
	return true, nil
}

// retry moves failed grant id back to pending (no license yet) or
// generated (upload refused) with a fresh job due at runAt, in one
// transaction, and returns that job's ID.
func (s *Service) retry(ctx context.Context, id int64, runAt time.Time) (int64, error) {
	var jobID int64
	g, err := s.update(ctx, id, func(ctx context.Context, tx store.Tx, g *store.LicenseGrant) error {
		if g.State != store.GrantFailed {
			return errNoChange
		}
		kind, state := KindGenerate, store.GrantPending
		if g.ContentSealed != "" {
			kind, state = KindUpload, store.GrantGenerated
		}
		key := kind + ":" + strconv.FormatInt(g.ID, 10) + ":" + strconv.FormatInt(g.Version+1, 10)
		var err error
		if jobID, err = s.enqueue(ctx, tx, kind, key, g.ID, runAt); err != nil {
			return err
		}
		g.State = state
		return nil
	})
	switch {
	case errors.Is(err, errNoChange):
		return 0, fmt.Errorf("grant: retry %d: %w: it is %s", id, ErrWrongState, g.State)
	case errors.Is(err, store.ErrNotFound):
		return 0, fmt.Errorf("grant: retry %d: %w", id, err)
	}
	return jobID, err
}
