package isv

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/koobridge/koobridge/internal/jobs"
	"github.com/koobridge/koobridge/internal/lifecycle"
	"github.com/koobridge/koobridge/internal/provision"
	"github.com/koobridge/koobridge/internal/seal"
	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/protocol/sign"
)

// CredentialMode says how app-info credentials (userName, password) are
// returned to KooGallery in queryInstance replies.
type CredentialMode string

// Credential modes. The V2 field tables describe plain text, while the V2
// example still carries encryptType (saas-v2.md §4.4, UNCONFIRMED): plain is
// the default, and the Seller Center debugger shows which one a product
// expects (garbled credentials there mean plain is expected).
const (
	CredentialsPlain     CredentialMode = "plain"
	CredentialsEncrypted CredentialMode = "encrypted" // AES-CBC with the key derived from Keys[0], encryptType set
)

// Defaults of Config.
const (
	DefaultMaxBodyBytes = 64 << 10
	DefaultBudget       = 3 * time.Second
)

// nonceSweepInterval is how often Run deletes expired nonces.
const nonceSweepInterval = time.Minute

// Config configures a Server.
type Config struct {
	// Keys are the accepted KooGallery keys, the one bound to the basic
	// interfaces first; two during a rotation. Replies are Body-Signed with
	// the key that verified the call (Keys[0] when verification failed).
	// At least one non-empty key is required.
	Keys []string
	// Store is the durable state. Required.
	Store store.Store
	// Orders answers Query Order (normally *openapi.Client). Required.
	Orders lifecycle.OrderQuerier
	// Provisioner drives the vendor's product for real calls. Required.
	Provisioner provision.Provisioner
	// TestProvisioner serves debug calls (testFlag "1", MOCK* orders);
	// nil means the built-in demo provisioner.
	TestProvisioner provision.Provisioner
	// Sealer encrypts app-info passwords at rest. Required.
	Sealer *seal.Sealer
	// Budget is how long newInstance waits for provisioning before
	// answering 000004; zero means DefaultBudget.
	Budget time.Duration
	// MaxBodyBytes caps the request body; zero means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// DisableBodySign leaves the Body-Sign header off replies.
	DisableBodySign bool
	// Credentials selects plain or encrypted app-info credentials; empty
	// means CredentialsPlain.
	Credentials CredentialMode
	// EncryptType is the AES key size for CredentialsEncrypted; empty
	// means sign.EncryptAES256 ("1").
	EncryptType sign.EncryptType
	// NonceWindow is the allowed timestamp difference; zero means 60 s.
	NonceWindow time.Duration
	// JobWorkers is the number of background job workers; zero means the
	// job runner's default.
	JobWorkers int
	// JobLease is how long a worker holds a claimed job before another
	// worker (or replica, after a crash) may take it over; zero means the
	// job runner's default (jobs.DefaultLease).
	JobLease time.Duration
	// Logger receives JSON-friendly structured logs; nil means slog.Default.
	Logger *slog.Logger
	// Registerer receives the metrics listed in the package documentation;
	// nil leaves them unregistered.
	Registerer prometheus.Registerer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Server is the production-interface server: its HTTP handler, the
// lifecycle service behind it and the job workers.
type Server struct {
	keys            []string
	st              store.Store
	verifier        *sign.Verifier
	svc             *lifecycle.Service
	runner          *jobs.Runner
	metrics         *metrics
	log             *slog.Logger
	now             func() time.Time
	window          time.Duration
	maxBody         int64
	disableBodySign bool
	handler         http.Handler

	runMu   sync.Mutex
	running bool
}

// New checks cfg and builds a Server with its lifecycle service and job
// runner. It starts nothing: call Run for the background work.
func New(cfg Config) (*Server, error) {
	if len(cfg.Keys) == 0 {
		return nil, errors.New("isv: no KooGallery key configured")
	}
	for i, k := range cfg.Keys {
		if k == "" {
			return nil, fmt.Errorf("isv: key %d is empty", i+1)
		}
	}
	if cfg.Store == nil {
		return nil, errors.New("isv: no store configured")
	}
	if cfg.MaxBodyBytes < 0 {
		return nil, fmt.Errorf("isv: negative body limit %d", cfg.MaxBodyBytes)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	window := cfg.NonceWindow
	if window <= 0 {
		window = sign.DefaultWindow
	}
	maxBody := cfg.MaxBodyBytes
	if maxBody == 0 {
		maxBody = DefaultMaxBodyBytes
	}
	budget := cfg.Budget
	if budget <= 0 {
		budget = DefaultBudget
	}

	var cipher *sign.CredentialCipher
	switch cfg.Credentials {
	case "", CredentialsPlain:
	case CredentialsEncrypted:
		et := cfg.EncryptType
		if et == "" {
			et = sign.EncryptAES256
		}
		c, err := sign.NewCredentialCipher(cfg.Keys[0], et)
		if err != nil {
			return nil, fmt.Errorf("isv: credential cipher: %w", err)
		}
		cipher = c
	default:
		return nil, fmt.Errorf("isv: unknown credentials mode %q (want %q or %q)", cfg.Credentials, CredentialsPlain, CredentialsEncrypted)
	}

	testProv := cfg.TestProvisioner
	if testProv == nil {
		testProv = provision.NewDemo("")
	}

	m := newMetrics()
	if cfg.Registerer != nil {
		if err := m.register(cfg.Registerer); err != nil {
			return nil, err
		}
	}

	// Lines the service logs with a call's context carry its request id.
	ctxLog := slog.New(requestIDHandler{log.Handler()})

	// The runner needs the service's handlers and the service needs the
	// runner: the runner gets a map that is filled in once the service
	// exists, before anything runs.
	handlers := map[string]jobs.HandlerFunc{}
	runner := jobs.NewRunner(jobs.Config{
		Store:     cfg.Store,
		Handlers:  handlers,
		Workers:   cfg.JobWorkers,
		Lease:     cfg.JobLease,
		Logger:    ctxLog,
		Now:       cfg.Now,
		OnOutcome: m.jobOutcome,
	})
	svc, err := lifecycle.New(lifecycle.Config{
		Store:            cfg.Store,
		Orders:           cfg.Orders,
		Provisioner:      cfg.Provisioner,
		TestProvisioner:  testProv,
		Sealer:           cfg.Sealer,
		CredentialCipher: cipher,
		Budget:           budget,
		Jobs:             runner,
		Lease:            cfg.JobLease,
		Logger:           ctxLog,
		Now:              cfg.Now,
	})
	if err != nil {
		return nil, fmt.Errorf("isv: %w", err)
	}
	maps.Copy(handlers, svc.Handlers())

	s := &Server{
		keys:            append([]string(nil), cfg.Keys...),
		st:              cfg.Store,
		svc:             svc,
		runner:          runner,
		metrics:         m,
		log:             log,
		now:             now,
		window:          window,
		maxBody:         maxBody,
		disableBodySign: cfg.DisableBodySign,
	}
	s.verifier = &sign.Verifier{
		Keys:   s.keys,
		Window: window,
		Nonces: storeNonces{cfg.Store},
		Now:    now,
	}
	s.handler = http.HandlerFunc(s.serveHTTP)
	return s, nil
}

// Handler returns the production interface: POST at any path it is
// mounted on.
func (s *Server) Handler() http.Handler { return s.handler }

// Service returns the lifecycle service behind the handler (for the admin
// API).
func (s *Server) Service() *lifecycle.Service { return s.svc }

// Run runs the job workers and the nonce sweeper until ctx is done, then
// waits for running jobs and for provisioning started by calls before it
// returns. In-flight jobs finish within their own deadline, not ctx's.
func (s *Server) Run(ctx context.Context) error {
	s.runMu.Lock()
	if s.running {
		s.runMu.Unlock()
		return errors.New("isv: Run called twice")
	}
	s.running = true
	s.runMu.Unlock()

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.sweepNonces(ctx)
	}()
	err := s.runner.Run(ctx)
	wg.Wait()
	s.svc.Wait()
	if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("isv: job runner: %w", err)
	}
	return nil
}

// sweepNonces deletes expired nonces now and every nonceSweepInterval until
// ctx is done; the window check already rejects their calls, so this only
// keeps the table small.
func (s *Server) sweepNonces(ctx context.Context) {
	t := time.NewTicker(nonceSweepInterval)
	defer t.Stop()
	for {
		n, err := s.st.DeleteExpiredNonces(ctx, s.now())
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.Warn("nonce sweep failed", "error", err)
		case n > 0:
			s.log.Debug("nonces swept", "deleted", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
