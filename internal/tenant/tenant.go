// Package tenant holds the joint-operation Kit data koobridge keeps for the
// seller: the buyer enterprises (tenants) bound to a joint-operation
// product, the OAuth client each enterprise's identity center issued for
// the vendor's app, the users it authorised and its department tree
// (saas-v1-joint-login.md Part B, saas-v2.md §3.8).
//
// Each Kit call is one transaction that first locks its tenant
// (store.TenantTx.LockTenant), reads what it changes, writes the
// difference and appends one event per kind of change to the tenant's
// outbox, so a repeat, or a concurrent duplicate, changes nothing and
// tells the vendor nothing twice. The events reach the vendor's product
// through the provisioner, in order per tenant: one delivery job per
// event, and a lease on the tenant's outbox so that one worker at a time
// delivers the tenant's oldest pending events first.
//
// The rules for what KooGallery leaves open are in docs/joint.md: deletes
// of what is not there succeed; a department whose parent is unknown or
// deleted keeps its parentCode and sits at the root of the tree until the
// parent arrives; the users of a deleted department keep its orgCode; a
// deleted app takes its users with it; a deleted tenant is kept as a
// tombstone without apps, users or departments.
package tenant

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/koobridge/koobridge/internal/jobs"
	"github.com/koobridge/koobridge/internal/seal"
	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/provision"
)

// KindEvent is the job kind that delivers one Kit event (and, in order,
// any older ones of its tenant still pending).
const KindEvent = "tenant-event"

// Store is what the Service keeps: Kit data, its outbox and the jobs that
// deliver it.
type Store interface {
	store.Tenants
	store.Txer
}

// Config configures a Service.
type Config struct {
	Store Store
	// Sealer encrypts client secrets, mobile numbers, e-mail addresses
	// and event payloads at rest. Required.
	Sealer *seal.Sealer
	// PrivateKey decrypts applicationSync's clientSecret (RSA-OAEP, the
	// key pair whose public half is registered with the app credential).
	// Nil answers applicationSync with 000005 until one is configured.
	PrivateKey *rsa.PrivateKey
	// Provisioner hears the events of real tenants; TestProvisioner those
	// of debug calls (testFlag 1). Nil TestProvisioner means Provisioner.
	Provisioner     provision.Provisioner
	TestProvisioner provision.Provisioner
	// Jobs runs the deliveries; register Jobs() with it before it starts.
	Jobs *jobs.Runner
	// MaxAttempts is how many failed deliveries an event takes before it
	// is marked failed; zero means jobs.DefaultMaxAttempts.
	MaxAttempts int
	// Retry is the wait before an event that failed attempt times is
	// delivered again; it must not be random (see DefaultRetry, the
	// default).
	Retry  func(attempt int) time.Duration
	Logger *slog.Logger
	Now    func() time.Time
}

// Service keeps the Kit data and tells the vendor about its changes. It is
// safe for concurrent use.
type Service struct {
	store       Store
	sealer      *seal.Sealer
	priv        *rsa.PrivateKey
	prov        provision.Provisioner
	testProv    provision.Provisioner
	jobs        *jobs.Runner
	maxAttempts int
	retry       func(attempt int) time.Duration
	log         *slog.Logger
	now         func() time.Time
}

// New returns a Service. Store, Sealer, Provisioner and Jobs are required.
func New(cfg Config) (*Service, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("tenant: Config.Store is required")
	case cfg.Sealer == nil:
		return nil, errors.New("tenant: Config.Sealer is required (client secrets are encrypted at rest)")
	case cfg.Provisioner == nil:
		return nil, errors.New("tenant: Config.Provisioner is required")
	case cfg.Jobs == nil:
		return nil, errors.New("tenant: Config.Jobs is required")
	}
	s := &Service{
		store: cfg.Store, sealer: cfg.Sealer, priv: cfg.PrivateKey,
		prov: cfg.Provisioner, testProv: cfg.TestProvisioner, jobs: cfg.Jobs,
		maxAttempts: cfg.MaxAttempts, retry: cfg.Retry, log: cfg.Logger, now: cfg.Now,
	}
	if s.retry == nil {
		s.retry = DefaultRetry
	}
	if s.testProv == nil {
		s.testProv = s.prov
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.maxAttempts <= 0 {
		s.maxAttempts = jobs.DefaultMaxAttempts
	}
	return s, nil
}

// Jobs returns the Service's job handlers by kind, to register with the
// runner before it starts.
func (s *Service) Jobs() map[string]jobs.HandlerFunc {
	return map[string]jobs.HandlerFunc{KindEvent: s.handleEvent}
}

// Result is the answer to one Kit call.
type Result struct {
	Code protocol.ResultCode
	Msg  string
	// Changed is false when the call changed nothing: a repeat, or a
	// delete of what is not there.
	Changed bool
}

// msgSuccess is the resultMsg of a Kit call that succeeded.
const msgSuccess = "success"

func ok(changed bool) Result {
	return Result{Code: protocol.CodeSuccess, Msg: msgSuccess, Changed: changed}
}

func refuse(field, problem string) Result {
	return Result{Code: protocol.CodeInvalidParam, Msg: (&protocol.FieldError{Field: field, Problem: problem}).Error()}
}

// change is one Kit transaction's view: the events it appends.
type change struct {
	s      *Service
	tx     store.Tx
	tenant string
	test   bool
	events []provision.Event
	view   *provision.Tenant // the tenant as read once by tenantView
}

// emit queues an event of the change; Seq is given at delivery.
func (c *change) emit(ev provision.Event) {
	ev.ID = string(ev.Type) + ":" + uuid.NewString()
	ev.Time = c.s.now().UTC()
	ev.Test = c.test
	c.events = append(c.events, ev)
}

// tenantView is the tenant an event names: as stored, or only its id when
// the tenant is not (yet) known. It is read once per change; the changes
// that call it do not change the tenant row.
func (c *change) tenantView(ctx context.Context) (*provision.Tenant, error) {
	if c.view != nil {
		return c.view, nil
	}
	t, err := c.tx.Tenant(ctx, c.tenant)
	switch {
	case errors.Is(err, store.ErrNotFound):
		c.view = &provision.Tenant{ID: c.tenant}
	case err != nil:
		return nil, err
	default:
		c.view = vendorTenant(t)
	}
	return c.view, nil
}

// run runs fn in one transaction that holds tenantID's lock, then appends
// fn's events to the outbox with their delivery jobs, in the same
// transaction. It reports whether fn emitted any.
func (s *Service) run(ctx context.Context, tenantID string, test bool, fn func(ctx context.Context, c *change) error) (bool, error) {
	var n int
	err := s.store.Tx(ctx, func(ctx context.Context, tx store.Tx) error {
		if err := tx.LockTenant(ctx, tenantID); err != nil {
			return err
		}
		c := &change{s: s, tx: tx, tenant: tenantID, test: test}
		if err := fn(ctx, c); err != nil {
			return err
		}
		n = len(c.events)
		return s.append(ctx, tx, tenantID, c.events)
	})
	if err != nil {
		return false, fmt.Errorf("tenant: %w", err)
	}
	if n > 0 {
		s.jobs.Kick()
	}
	return n > 0, nil
}

// eventJob is a delivery job's payload: the tenant whose pending events
// it delivers and, for the admin's eyes, the event that caused it (0 for
// retry and continuation jobs).
type eventJob struct {
	TenantID string `json:"tenantId"`
	EventID  int64  `json:"eventId"`
}

// append stores events in the tenant's outbox, sealed, each with its
// delivery job.
func (s *Service) append(ctx context.Context, tx store.Tx, tenantID string, events []provision.Event) error {
	now := s.now().UTC()
	for _, ev := range events {
		b, err := json.Marshal(ev)
		if err != nil {
			return fmt.Errorf("encode event: %w", err)
		}
		sealed, err := s.sealer.Seal(string(b))
		if err != nil {
			return fmt.Errorf("seal event: %w", err)
		}
		id, _, _, err := tx.InsertTenantEvent(ctx, store.TenantEvent{
			TenantID: tenantID, EventID: ev.ID, Type: string(ev.Type), PayloadSealed: sealed,
			State: store.TenantEventPending, CreatedAt: now, UpdatedAt: now,
		})
		if err != nil {
			return fmt.Errorf("append event: %w", err)
		}
		payload, err := json.Marshal(eventJob{TenantID: tenantID, EventID: id})
		if err != nil {
			return err
		}
		if _, _, err := tx.EnqueueJob(ctx, store.Job{
			Kind: KindEvent, UniqueKey: fmt.Sprintf("%s:%d", KindEvent, id), Payload: payload,
			MaxAttempts: s.maxAttempts, RunAt: now,
		}); err != nil {
			return fmt.Errorf("enqueue delivery: %w", err)
		}
	}
	return nil
}

// provisionerFor picks the provisioner of an event.
func (s *Service) provisionerFor(test bool) provision.Provisioner {
	if test {
		return s.testProv
	}
	return s.prov
}

// vendorTenant is the vendor's view of a stored tenant.
func vendorTenant(t store.Tenant) *provision.Tenant {
	return &provision.Tenant{ID: t.ID, Code: t.Code, Name: t.Name, DomainName: t.DomainName,
		InstanceID: t.InstanceID, OrderID: t.OrderID}
}
