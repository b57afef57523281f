// Package instance is the instance state machine that the SaaS families
// share (SaaS V2 today; SaaS V1 and online license reuse it): one instance
// per purchased order line, its idempotent changes (create, renew, freeze,
// unfreeze, upgrade, release), the vendor's product driven through a
// provision.Provisioner within a time budget, and the slow work finished
// through the durable job queue.
//
// The Service speaks in domain terms. A family decodes its wire format
// into an operation (Create, Renewal, …), hands it over with a Render
// function that writes its own wire reply, and gets an Answer back with
// the exact reply bytes: a repeat of a stored operation is answered with
// the bytes stored the first time.
//
// Idempotency rests on the store's unique constraints (instances by order
// line, operations by key, jobs by unique key), never on a read followed by
// a write, so it holds across goroutines, processes and replicas. Each
// stored operation keeps a fingerprint of the request's meaningful fields:
// a call with the same key and another fingerprint is not a repeat. The
// state table and the result code of every invalid transition are
// documented in docs/lifecycle.md.
package instance

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/koobridge/koobridge/internal/jobs"
	"github.com/koobridge/koobridge/internal/seal"
	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
	"github.com/koobridge/koobridge/provision"
)

// Job kinds the Service registers; see Jobs.
const (
	KindProvision = "provision" // first provisioning of an instance (Query Order, then instance.created)
	KindUpgrade   = "upgrade"   // Query Order of the upgrade order, then instance.upgraded
	KindNotify    = "notify"    // one event to the vendor (renewed, frozen, unfrozen, released)
)

// OrderQuerier fetches an order from KooGallery's Query Order API.
type OrderQuerier interface {
	QueryOrder(ctx context.Context, orderID, orderLineID string) (*protocol.OrderInfo, error)
}

// Store is what the Service keeps: instances, their operations and jobs.
type Store interface {
	store.Instances
	store.OperationReader
	store.Txer
	store.Jobs
}

// Config configures a Service.
type Config struct {
	Store  Store
	Orders OrderQuerier
	// Provisioner handles real (production) instances.
	Provisioner provision.Provisioner
	// TestProvisioner handles debug instances (testFlag "1" or a MOCK*
	// order). Nil means Provisioner.
	TestProvisioner provision.Provisioner
	// Sealer encrypts app-info passwords at rest. Required.
	Sealer *seal.Sealer
	// Credentials, when set, encrypts appInfo userName and password in
	// query replies and sets encryptType; nil returns them plain.
	Credentials *sign.CredentialCipher
	// BuyerCipher decrypts the buyer's mobile number and e-mail when Query
	// Order sends them encrypted (whether it does is UNCONFIRMED,
	// saas-v2.md §4.4), before they are masked; nil keeps them as they
	// come.
	BuyerCipher *sign.CredentialCipher
	// Budget is how long a call may wait for provisioning before it
	// answers 000004 and lets the work continue in the background.
	// Required.
	Budget time.Duration
	// Jobs runs the Service's background work; register Jobs() with it
	// before it starts. The Service uses Hold, RunWithin, Kick and Wait.
	Jobs *jobs.Runner
	// MaxAttempts is the attempts of the Service's jobs; zero means
	// jobs.DefaultMaxAttempts.
	MaxAttempts int
	// Usage, when set, gives queryInstance's usageInfo of pay-per-use
	// instances (the metering service); without it an instance's own
	// usage value is answered.
	Usage  UsageSource
	Logger *slog.Logger
	Now    func() time.Time
}

// UsageSource gives the usageInfo of pay-per-use instances: by instance
// ID, absent for instances it has none for.
type UsageSource interface {
	UsageInfo(ctx context.Context, insts []store.Instance) (map[string][]protocol.UsageInfo, error)
}

// Answer is the outcome of one operation in domain terms, with the reply
// the family rendered for it.
type Answer struct {
	Code protocol.ResultCode
	Msg  string
	// Instance is the instance as it stands after the operation; zero
	// when the call named none that exists.
	Instance store.Instance
	// Key is the operation's idempotency key; "" for reads and refusals.
	Key string
	// Repeat is set when the answer comes from a stored outcome or an
	// already reached state.
	Repeat bool
	// Body is the exact reply: rendered for this call, or stored by the
	// first call of the same operation.
	Body []byte
}

// Render writes a family's wire reply for an answer (Body is still empty).
type Render func(a Answer) ([]byte, error)

// Service runs the instance state machine. It is safe for concurrent use.
type Service struct {
	store       Store
	orders      OrderQuerier
	prov        provision.Provisioner
	testProv    provision.Provisioner
	sealer      *seal.Sealer
	cipher      *sign.CredentialCipher
	buyerCipher *sign.CredentialCipher
	budget      time.Duration
	jobs        *jobs.Runner
	maxAttempts int
	usageSource UsageSource
	log         *slog.Logger
	now         func() time.Time
}

// New returns a Service. Store, Orders, Provisioner, Sealer, Budget and
// Jobs are required.
func New(cfg Config) (*Service, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("instance: Config.Store is required")
	case cfg.Orders == nil:
		return nil, errors.New("instance: Config.Orders is required")
	case cfg.Provisioner == nil:
		return nil, errors.New("instance: Config.Provisioner is required")
	case cfg.Sealer == nil:
		return nil, errors.New("instance: Config.Sealer is required (passwords are encrypted at rest)")
	case cfg.Jobs == nil:
		return nil, errors.New("instance: Config.Jobs is required")
	case cfg.Budget <= 0:
		return nil, errors.New("instance: Config.Budget must be positive")
	}
	s := &Service{
		store:       cfg.Store,
		orders:      cfg.Orders,
		prov:        cfg.Provisioner,
		testProv:    cfg.TestProvisioner,
		sealer:      cfg.Sealer,
		cipher:      cfg.Credentials,
		buyerCipher: cfg.BuyerCipher,
		budget:      cfg.Budget,
		jobs:        cfg.Jobs,
		maxAttempts: cfg.MaxAttempts,
		usageSource: cfg.Usage,
		log:         cfg.Logger,
		now:         cfg.Now,
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
	return map[string]jobs.HandlerFunc{
		KindProvision: s.handleProvision,
		KindUpgrade:   s.handleUpgrade,
		KindNotify:    s.handleNotify,
	}
}

// Budget returns how long a call waits for provisioning.
func (s *Service) Budget() time.Duration { return s.budget }

// Wait blocks until the background work started by calls (jobs run within
// a call's budget that outlived it) has returned. Calls still arriving
// after Wait has begun start no background work: their jobs stay queued
// for a runner (after a restart, if this process is stopping).
func (s *Service) Wait() { s.jobs.Wait() }

// provisionerFor picks the provisioner of an instance: debug instances go
// to the test provisioner.
func (s *Service) provisionerFor(test bool) provision.Provisioner {
	if test {
		return s.testProv
	}
	return s.prov
}

// Key joins the parts of an idempotency key (or of an event id or job key
// built from KooGallery's ids) with ":", escaping "%" as "%25" and ":" as
// "%3A" in each part, so that different ids never make the same key:
// order "A:B" line "C" and order "A" line "B:C" are two keys. Parts
// without either character are kept as they are, so keys of ordinary ids
// read as before.
func Key(parts ...string) string {
	var b strings.Builder
	for i, p := range parts {
		if i > 0 {
			b.WriteByte(':')
		}
		if !strings.ContainsAny(p, "%:") {
			b.WriteString(p)
			continue
		}
		for j := 0; j < len(p); j++ {
			switch p[j] {
			case '%':
				b.WriteString("%25")
			case ':':
				b.WriteString("%3A")
			default:
				b.WriteByte(p[j])
			}
		}
	}
	return b.String()
}

// Fingerprint is the digest an operation keeps of its request's
// meaningful fields (hex SHA-256 of the fields joined by NUL, which no
// decoded field contains): a later call with the same key and another
// fingerprint is not a repeat.
func Fingerprint(fields ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(fields, "\x00")))
	return hex.EncodeToString(sum[:16])
}

// sameRequest reports whether op was stored for a request with
// fingerprint fp. Operations stored before fingerprints existed have none
// and match every request with their key.
func sameRequest(op store.Operation, fp string) bool {
	return op.Fingerprint == "" || op.Fingerprint == fp
}

// Clip shortens s to resultMsg's 255 characters, the length the instance's
// and a notification's last error are kept at too.
func Clip(s string) string {
	const max = 255
	r := []rune(s)
	if len(r) <= max {
		return s
	}
	return string(r[:max-1]) + "…"
}

// answer renders a with render and returns it with its body.
func answer(a Answer, render Render) (Answer, error) {
	a.Msg = Clip(a.Msg)
	b, err := render(a)
	if err != nil {
		return Answer{}, err
	}
	a.Body = b
	return a, nil
}
