// Package lifecycle is koobridge's domain service for SaaS V2 instances:
// it turns each production-interface call into an idempotent state change,
// drives the vendor's product through a provision.Provisioner and answers
// within a time budget, finishing slow work through the durable job queue.
//
// Idempotency rests on the store's unique constraints (instances by order
// line, operations by key, jobs by unique key), never on a read followed by
// a write, so it holds across goroutines, processes and replicas. The state
// table and the result code of every invalid transition are documented in
// docs/lifecycle.md.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/koobridge/koobridge/internal/jobs"
	"github.com/koobridge/koobridge/internal/provision"
	"github.com/koobridge/koobridge/internal/seal"
	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
)

// Job kinds the Service handles; see Handlers.
const (
	KindProvision = "provision" // first provisioning of an instance (Query Order, then instance.created)
	KindUpgrade   = "upgrade"   // Query Order of the upgrade order, then instance.upgraded
	KindNotify    = "notify"    // one event to the vendor (renewed, frozen, unfrozen, released)
)

// Defaults of Config.
const (
	DefaultBudget      = 3 * time.Second
	DefaultMaxAttempts = 25
	DefaultLease       = 2 * time.Minute // the jobs runner's default lease
)

// OrderQuerier fetches an order from KooGallery's Query Order API.
// *openapi.Client implements it.
type OrderQuerier interface {
	QueryOrder(ctx context.Context, orderID, orderLineID string) (*protocol.OrderInfo, error)
}

// Config configures a Service.
type Config struct {
	Store  store.Store
	Orders OrderQuerier
	// Provisioner handles real (production) instances.
	Provisioner provision.Provisioner
	// TestProvisioner handles debug instances (testFlag "1" or a MOCK*
	// order). The server passes the demo provisioner unless test calls are
	// to reach the real one. Nil means Provisioner.
	TestProvisioner provision.Provisioner
	// Sealer encrypts app-info passwords at rest. Required.
	Sealer *seal.Sealer
	// CredentialCipher, when set, encrypts appInfo userName and password in
	// queryInstance replies and sets encryptType; nil returns them plain.
	CredentialCipher *sign.CredentialCipher
	// Budget is how long a call may wait for provisioning before it
	// answers 000004 and lets the work continue in the background.
	Budget time.Duration
	// Jobs runs the Service's background work. The runner must be built
	// with the handlers of Handlers (see the package example in
	// docs/lifecycle.md); the Service uses Kick, Execute and WorkerID.
	Jobs *jobs.Runner
	// Lease is the jobs runner's lease. A call that runs a job itself
	// claims it for this long. Default DefaultLease (the runner's default).
	Lease       time.Duration
	Logger      *slog.Logger
	Now         func() time.Time
	MaxAttempts int // jobs' MaxAttempts; default DefaultMaxAttempts
}

// Outcome is a Service's answer to one call: the reply for the transport to
// marshal and sign, and what the ledger records about it.
type Outcome struct {
	Response    any // a protocol response value, or json.RawMessage of a stored reply
	Code        protocol.ResultCode
	Msg         string
	IdemKey     string // the call's idempotency key, "" for reads
	InstanceID  string
	OrderID     string
	OrderLineID string
	Repeat      bool // answered from a stored outcome or an already reached state
}

// Service implements the SaaS V2 activities. It is safe for concurrent use.
type Service struct {
	store       store.Store
	orders      OrderQuerier
	prov        provision.Provisioner
	testProv    provision.Provisioner
	sealer      *seal.Sealer
	cipher      *sign.CredentialCipher
	budget      time.Duration
	jobs        *jobs.Runner
	lease       time.Duration
	log         *slog.Logger
	now         func() time.Time
	maxAttempts int

	bg sync.WaitGroup // jobs run by calls within their budget
	// bgMu guards stopping: once Wait has begun no call starts background
	// work (adding to a WaitGroup being waited on is a misuse); such a
	// call leaves its job to the runners, which take it after its RunAt.
	bgMu     sync.Mutex
	stopping bool
}

// New returns a Service. Store, Orders, Provisioner, Sealer and Jobs are
// required.
func New(cfg Config) (*Service, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("lifecycle: Config.Store is required")
	case cfg.Orders == nil:
		return nil, errors.New("lifecycle: Config.Orders is required")
	case cfg.Provisioner == nil:
		return nil, errors.New("lifecycle: Config.Provisioner is required")
	case cfg.Sealer == nil:
		return nil, errors.New("lifecycle: Config.Sealer is required (passwords are encrypted at rest)")
	case cfg.Jobs == nil:
		return nil, errors.New("lifecycle: Config.Jobs is required")
	}
	s := &Service{
		store:       cfg.Store,
		orders:      cfg.Orders,
		prov:        cfg.Provisioner,
		testProv:    cfg.TestProvisioner,
		sealer:      cfg.Sealer,
		cipher:      cfg.CredentialCipher,
		budget:      cfg.Budget,
		jobs:        cfg.Jobs,
		lease:       cfg.Lease,
		log:         cfg.Logger,
		now:         cfg.Now,
		maxAttempts: cfg.MaxAttempts,
	}
	if s.testProv == nil {
		s.testProv = s.prov
	}
	if s.budget <= 0 {
		s.budget = DefaultBudget
	}
	if s.lease <= 0 {
		s.lease = DefaultLease
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.maxAttempts <= 0 {
		s.maxAttempts = DefaultMaxAttempts
	}
	return s, nil
}

// Handlers returns the job handlers of the Service by kind, for the jobs
// runner's Config.
func (s *Service) Handlers() map[string]jobs.HandlerFunc {
	return map[string]jobs.HandlerFunc{
		KindProvision: s.handleProvision,
		KindUpgrade:   s.handleUpgrade,
		KindNotify:    s.handleNotify,
	}
}

// Do performs one V2 activity. It validates req again (the transport
// already did) and answers 000002 for activities the V2 production
// interface does not serve. The error is only for internal failures
// (database unavailable, corrupt data), which the transport answers with
// 000005 so that KooGallery retries.
func (s *Service) Do(ctx context.Context, req protocol.V2Request) (Outcome, error) {
	if err := req.Validate(); err != nil {
		r := protocol.ErrorResponse(err)
		return Outcome{Response: r, Code: r.ResultCode, Msg: r.ResultMsg}, nil
	}
	switch r := req.(type) {
	case protocol.NewInstanceRequest:
		return s.newInstance(ctx, r)
	case protocol.QueryInstanceRequest:
		return s.queryInstance(ctx, r)
	case protocol.RefreshInstanceRequest:
		return s.refreshInstance(ctx, r)
	case protocol.UpdateInstanceStatusRequest:
		return s.updateInstanceStatus(ctx, r)
	case protocol.ReleaseInstanceRequest:
		return s.releaseInstance(ctx, r)
	case protocol.UpgradeInstanceRequest:
		return s.upgradeInstance(ctx, r)
	case protocol.ChangeInstanceCheckRequest:
		return s.changeInstanceCheck(ctx, r)
	}
	return plain(protocol.CodeInvalidParam, fmt.Sprintf("activity %s is not served here", req.Activity())), nil
}

// Wait blocks until the background work started by Do (jobs run within a
// call's budget that outlived it) has returned. Calls still arriving after
// Wait has begun start no background work: their jobs stay queued for a
// runner (after a restart, if this process is stopping).
func (s *Service) Wait() {
	s.bgMu.Lock()
	s.stopping = true
	s.bgMu.Unlock()
	s.bg.Wait()
}

// startBackground registers one piece of background work, or reports false
// once Wait has begun.
func (s *Service) startBackground() bool {
	s.bgMu.Lock()
	defer s.bgMu.Unlock()
	if s.stopping {
		return false
	}
	s.bg.Add(1)
	return true
}

// plain is an Outcome with a bare protocol.Response.
func plain(code protocol.ResultCode, msg string) Outcome {
	r := protocol.NewResponse(code, clip(msg))
	return Outcome{Response: r, Code: r.ResultCode, Msg: r.ResultMsg}
}

// provisionerFor picks the provisioner of inst: debug instances go to the
// test provisioner.
func (s *Service) provisionerFor(test bool) provision.Provisioner {
	if test {
		return s.testProv
	}
	return s.prov
}
