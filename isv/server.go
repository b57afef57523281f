package isv

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/koobridge/koobridge/internal/grant"
	"github.com/koobridge/koobridge/internal/inbound"
	"github.com/koobridge/koobridge/internal/instance"
	"github.com/koobridge/koobridge/internal/jobs"
	"github.com/koobridge/koobridge/internal/ledger"
	"github.com/koobridge/koobridge/internal/legacylicense"
	"github.com/koobridge/koobridge/internal/license"
	"github.com/koobridge/koobridge/internal/licenseapi"
	"github.com/koobridge/koobridge/internal/licensetoken"
	"github.com/koobridge/koobridge/internal/onlinelicense"
	"github.com/koobridge/koobridge/internal/openapi"
	"github.com/koobridge/koobridge/internal/ordernotify"
	"github.com/koobridge/koobridge/internal/saasv1"
	"github.com/koobridge/koobridge/internal/seal"
	istore "github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/internal/tenant"
	"github.com/koobridge/koobridge/internal/usage"
	"github.com/koobridge/koobridge/internal/usageapi"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
	"github.com/koobridge/koobridge/provision"
	"github.com/koobridge/koobridge/store"
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
	CredentialsEncrypted CredentialMode = "encrypted" // AES-CBC with the key derived from the first basic key, encryptType set
)

// Defaults of Config. Each is defined once, where it is used; these name
// them for a vendor.
const (
	DefaultMaxBodyBytes = inbound.DefaultMaxBody
	// DefaultJobWorkers is how many background jobs run at once.
	DefaultJobWorkers = jobs.DefaultWorkers
	// DefaultJobLease is how long a worker holds a claimed job.
	DefaultJobLease = jobs.DefaultLease
	// DefaultBudget is how long newInstance waits for the vendor's product
	// before it answers 000004 (KooGallery waits about 5 s).
	DefaultBudget = 3 * time.Second
	// DefaultProducePath is the production path of the basic interfaces.
	DefaultProducePath = "/produce"
	// DataKeySize is the length of Config.DataKey: an AES-256 key.
	DataKeySize = seal.KeySize
	// MinLedgerRetention is the shortest positive LedgerRetention and
	// LedgerRejectedRetention: a day, so that KooGallery's retries of a
	// call and the previous of its twice-daily replays of saved debug cases
	// stay in the console.
	MinLedgerRetention = ledger.MinRetention
)

// Keys are the KooGallery keys, one set per interface type (Seller Center
// binds one key to each type: saas-v2.md §2.1). Each set lists the key
// bound in Seller Center first (it signs the replies of calls that fail to
// verify) and, during a rotation, the other one. A type left empty uses
// the Basic keys.
type Keys struct {
	// Basic is bound to the basic interfaces (基础接口): the SaaS
	// activities, and the usage push. Required.
	Basic []string
	// Kit is bound to the joint-operation sync interfaces (联营SaaS同步接口).
	Kit []string
	// License is bound to the license interfaces (License).
	License []string
	// General is bound to the general interfaces (通用接口): order
	// notification.
	General []string
}

// resolve checks k and returns the key set of every type, with fallbacks.
func (k Keys) resolve() (inbound.Keys, error) {
	if len(k.Basic) == 0 {
		return nil, errors.New("isv: no basic KooGallery key configured (Keys.Basic)")
	}
	out := inbound.Keys{}
	for _, t := range []struct {
		typ  inbound.KeyType
		keys []string
	}{{inbound.KeyBasic, k.Basic}, {inbound.KeyKit, k.Kit}, {inbound.KeyLicense, k.License}, {inbound.KeyGeneral, k.General}} {
		keys := t.keys
		if len(keys) == 0 {
			keys = k.Basic
		}
		for i, key := range keys {
			if key == "" {
				return nil, fmt.Errorf("isv: %s key %d is empty", t.typ, i+1)
			}
		}
		out[t.typ] = append([]string(nil), keys...)
	}
	return out, nil
}

// OrderQuerier answers Query Order (saas-v2.md §7.1). Leave Config.Orders
// nil to have koobridge call KooGallery's Open API with Config.OpenAPI.
type OrderQuerier interface {
	QueryOrder(ctx context.Context, orderID, orderLineID string) (*protocol.OrderInfo, error)
}

// OpenAPI says how to reach KooGallery's Open API.
type OpenAPI struct {
	// URL is the base URL; empty means https://mkt.myhuaweicloud.com
	// (with https://mkt.myhuaweicloud.cn as its fallback).
	URL string
	// FallbackURL is tried once when URL cannot be reached at all; empty
	// means the default's fallback for the default URL, none otherwise.
	FallbackURL string
	// AK and SK are the seller account's Huawei Cloud access key pair.
	AK, SK string
	// HTTPClient sends the requests; nil means one with a timeout, TLS
	// verification and no redirects.
	HTTPClient *http.Client
}

// Config configures a Server. It names only public types: a vendor's own
// Go module can fill it in.
type Config struct {
	// Keys are the KooGallery keys per interface type. Keys.Basic is
	// required.
	Keys Keys
	// DB is the database, from store.Open. Required.
	DB *store.DB
	// DataKey encrypts app-info passwords at rest (AES-256-GCM): 32
	// bytes, e.g. from 'openssl rand -base64 32' decoded. Keep it: without
	// it the stored passwords cannot be read. Required.
	DataKey []byte
	// OpenAPI reaches KooGallery's Open API for Query Order; its AK and SK
	// are required unless Orders is set.
	OpenAPI OpenAPI
	// Orders, when set, answers Query Order instead of the Open API (a
	// test double, or koobridge serve --dev).
	Orders OrderQuerier
	// Provisioner drives the vendor's product for real calls. Required.
	Provisioner provision.Provisioner
	// TestProvisioner serves debug calls (testFlag "1", MOCK* orders);
	// nil means the built-in demo provisioner.
	TestProvisioner provision.Provisioner
	// ProducePath is the production path of the basic interfaces; empty
	// means DefaultProducePath.
	ProducePath string
	// OrderNotifyPath is where order notifications arrive; empty means
	// ProducePath, where the orderNotify activity is told apart from the
	// others.
	OrderNotifyPath string
	// LicensePath is where the calls of license products arrive: license
	// codes 2.0 and online license (POST), license 1.0 (GET, answered at
	// ProducePath too); empty means DefaultLicensePath.
	LicensePath string
	// Licenses configures license products and the license service.
	Licenses LicenseConfig
	// Usage configures pay-per-use metering: the usage API and the pushes
	// to KooGallery.
	Usage UsageConfig
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
	// EncryptType is the AES key size of the credential cipher (and of the
	// buyer data KooGallery may send encrypted); empty means
	// sign.EncryptAES256 ("1").
	EncryptType sign.EncryptType
	// NonceWindow is the allowed timestamp difference; zero means 60 s.
	NonceWindow time.Duration
	// V1EncryptType is the sensitive-information encryptType of SaaS V1
	// products (敏感信息加密算法): the AES key size of the buyer's
	// mobilePhone and email in newInstance and of the app credentials in V1
	// replies, which are always encrypted; empty means sign.EncryptAES256
	// ("1").
	V1EncryptType sign.EncryptType
	// V1TimestampWindow, when positive, refuses SaaS V1 calls whose
	// timeStamp is further than this from now (000001); zero, the default,
	// enforces none: no V1 page documents one.
	V1TimestampWindow time.Duration
	// RSAPrivateKey decrypts the clientSecret of the joint-operation Kit's
	// applicationSync (RSA-OAEP; its public half, at least 3072 bits, is
	// registered with the app credential in Seller Center). Nil answers
	// applicationSync with 000005 (the buyer's retry in the console
	// succeeds once one is set); the other Kit calls work without it.
	RSAPrivateKey *rsa.PrivateKey
	// LedgerRetention is how long the ledger of calls keeps answered calls
	// (every call that is not rejected); zero, the default, keeps them for
	// ever. Otherwise at least MinLedgerRetention: nothing koobridge does
	// reads old calls (a duplicate is answered from its stored operation),
	// but the console shows them. An hourly job deletes the older ones in
	// batches.
	LedgerRetention time.Duration
	// LedgerRejectedRetention is how long the ledger keeps rejected calls:
	// refused before their service saw them (000001, or 000002 without an
	// idempotency key: authentication failures, malformed input, unknown
	// paths, methods and activities). Zero means LedgerRetention;
	// otherwise at least MinLedgerRetention.
	LedgerRejectedRetention time.Duration
	// JobWorkers is the number of background job workers; zero means
	// DefaultJobWorkers.
	JobWorkers int
	// JobLease is how long a worker holds a claimed job before another
	// worker (or replica, after a crash) may take it over; zero means
	// DefaultJobLease.
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
// services behind it and the job workers.
type Server struct {
	st        istore.Store
	pipeline  *inbound.Server
	instances *instance.Service
	tenants   *tenant.Service
	licenses  *license.Service
	grants    *grant.Service
	// licenseAPI is the license service for the vendor's client software.
	licenseAPI http.Handler
	usage      *usage.Service
	usageAPI   http.Handler // the usage API of the vendor's product
	ledger     *ledger.Sweeper
	runner     *jobs.Runner
	log        *slog.Logger
	dataKey    []byte           // for the SSO provider (sso.go)
	now        func() time.Time // Config.Now

	runMu   sync.Mutex
	running bool
}

// New checks cfg and builds a Server with its services and job runner,
// every family registered. It starts nothing: call Run for the background
// work.
func New(cfg Config) (*Server, error) {
	keys, err := cfg.Keys.resolve()
	if err != nil {
		return nil, err
	}
	st := istore.Of(cfg.DB)
	if st == nil {
		return nil, errors.New("isv: no database configured (Config.DB, from store.Open)")
	}
	if cfg.Provisioner == nil {
		return nil, errors.New("isv: no provisioner configured")
	}
	sealer, err := seal.NewSealer(cfg.DataKey)
	if err != nil {
		return nil, fmt.Errorf("isv: data key: %w", err)
	}
	// The Open API client serves Query Order (unless Orders does) and the
	// license Open APIs; without AK/SK the license service answers
	// "unavailable".
	var client *openapi.Client
	if cfg.OpenAPI.AK != "" || cfg.OpenAPI.SK != "" || cfg.Orders == nil {
		if cfg.OpenAPI.AK == "" || cfg.OpenAPI.SK == "" {
			return nil, errors.New("isv: no Open API credentials (OpenAPI.AK and OpenAPI.SK) and no Orders")
		}
		client, err = openapi.New(openapi.Config{
			BaseURL: cfg.OpenAPI.URL, FallbackURL: cfg.OpenAPI.FallbackURL,
			AK: cfg.OpenAPI.AK, SK: cfg.OpenAPI.SK, HTTPClient: cfg.OpenAPI.HTTPClient,
		})
		if err != nil {
			return nil, fmt.Errorf("isv: open API client: %w", err)
		}
	}
	orders := cfg.Orders
	if orders == nil {
		orders = client
	}
	licCfg, err := cfg.Licenses.withDefaults()
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	budget := cfg.Budget
	if budget <= 0 {
		budget = DefaultBudget
	}
	et := cfg.EncryptType
	if et == "" {
		et = sign.EncryptAES256
	}
	buyerCipher, err := sign.NewCredentialCipher(keys[inbound.KeyBasic][0], et)
	if err != nil {
		return nil, fmt.Errorf("isv: credential cipher: %w", err)
	}
	var credentials *sign.CredentialCipher
	switch cfg.Credentials {
	case "", CredentialsPlain:
	case CredentialsEncrypted:
		credentials = buyerCipher
	default:
		return nil, fmt.Errorf("isv: unknown credentials mode %q (want %q or %q)", cfg.Credentials, CredentialsPlain, CredentialsEncrypted)
	}
	testProv := cfg.TestProvisioner
	if testProv == nil {
		testProv = provision.NewDemo("")
	}
	// Lines the services log with a call's context carry its request id.
	ctxLog := slog.New(inbound.ContextHandler(log.Handler()))

	s := &Server{st: st, log: log, dataKey: append([]byte(nil), cfg.DataKey...), now: cfg.Now}
	s.runner = jobs.NewRunner(jobs.Config{
		Store:   st,
		Workers: cfg.JobWorkers,
		Lease:   cfg.JobLease,
		Logger:  ctxLog,
		Now:     cfg.Now,
		OnOutcome: func(kind, outcome string) {
			if s.pipeline != nil {
				s.pipeline.JobOutcome(kind, outcome)
			}
		},
	})
	if err := cfg.Usage.check(); err != nil {
		return nil, err
	}
	var pusher usage.Pusher
	if client != nil {
		pusher = client
	}
	s.usage, err = usage.New(usage.Config{
		Store: st, Pusher: pusher, Key: keys[inbound.KeyBasic][0], Jobs: s.runner,
		Daily: cfg.Usage.DailyProducts, DayZone: cfg.Usage.DayZone,
		PushInterval: cfg.Usage.PushInterval, Settle: cfg.Usage.Settle,
		Registerer: cfg.Registerer, Logger: ctxLog, Now: cfg.Now,
	})
	if err != nil {
		return nil, fmt.Errorf("isv: %w", err)
	}
	if err := s.runner.RegisterAll(s.usage.Jobs()); err != nil {
		return nil, fmt.Errorf("isv: %w", err)
	}
	s.ledger, err = ledger.New(ledger.Config{
		Store: st, Jobs: s.runner, Answered: cfg.LedgerRetention, Rejected: cfg.LedgerRejectedRetention,
		Registerer: cfg.Registerer, Logger: ctxLog, Now: cfg.Now,
	})
	if err != nil {
		return nil, fmt.Errorf("isv: %w", err)
	}
	if err := s.runner.RegisterAll(s.ledger.Jobs()); err != nil {
		return nil, fmt.Errorf("isv: %w", err)
	}
	s.usageAPI, err = usageapi.New(usageapi.Config{Usage: s.usage, Tokens: cfg.Usage.Tokens, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("isv: %w", err)
	}
	s.instances, err = instance.New(instance.Config{
		Store:           st,
		Orders:          orders,
		Provisioner:     cfg.Provisioner,
		TestProvisioner: testProv,
		Sealer:          sealer,
		Credentials:     credentials,
		BuyerCipher:     buyerCipher,
		Budget:          budget,
		Jobs:            s.runner,
		Usage:           s.usage,
		Logger:          ctxLog,
		Now:             cfg.Now,
	})
	if err != nil {
		return nil, fmt.Errorf("isv: %w", err)
	}
	if err := s.runner.RegisterAll(s.instances.Jobs()); err != nil {
		return nil, fmt.Errorf("isv: %w", err)
	}
	notifications, err := ordernotify.New(ordernotify.Config{
		Store:           st,
		Orders:          orders,
		Provisioner:     cfg.Provisioner,
		TestProvisioner: testProv,
		BuyerCipher:     buyerCipher,
		Jobs:            s.runner,
		Logger:          ctxLog,
		Now:             cfg.Now,
	})
	if err != nil {
		return nil, fmt.Errorf("isv: %w", err)
	}

	v1, err := saasv1.New(saasv1.Config{
		Instances:       s.instances,
		Keys:            keys[inbound.KeyBasic],
		EncryptType:     cfg.V1EncryptType,
		TimestampWindow: cfg.V1TimestampWindow,
		Now:             cfg.Now,
	})
	if err != nil {
		return nil, fmt.Errorf("isv: %w", err)
	}

	tenants, err := tenant.New(tenant.Config{
		Store:           st,
		Sealer:          sealer,
		PrivateKey:      cfg.RSAPrivateKey,
		Provisioner:     cfg.Provisioner,
		TestProvisioner: testProv,
		Jobs:            s.runner,
		Logger:          ctxLog,
		Now:             cfg.Now,
	})
	if err != nil {
		return nil, fmt.Errorf("isv: %w", err)
	}
	s.tenants = tenants
	if err := s.runner.RegisterAll(tenants.Jobs()); err != nil {
		return nil, fmt.Errorf("isv: %w", err)
	}

	devices := license.DevicesAmount
	if licCfg.UnlimitedDevices {
		devices = license.DevicesUnlimited
	}
	var licenseAPI license.OpenAPI
	if client != nil {
		licenseAPI = client
	}
	s.licenses, err = license.New(license.Config{
		Store:           st,
		OpenAPI:         licenseAPI,
		Provisioner:     cfg.Provisioner,
		TestProvisioner: testProv,
		Jobs:            s.runner,
		Grace:           licCfg.Grace,
		CheckInterval:   licCfg.CheckInterval,
		UsageInterval:   licCfg.UsageInterval,
		Devices:         devices,
		DeviceKey:       license.DeviceKeyFrom(cfg.DataKey),
		Logger:          ctxLog,
		Now:             cfg.Now,
	})
	if err != nil {
		return nil, fmt.Errorf("isv: %w", err)
	}
	// Without AK/SK (koobridge serve --dev) generated licenses wait for
	// their upload, retried, until an operator configures them.
	var uploader grant.Uploader = noUploader{}
	if client != nil {
		uploader = client
	}
	s.grants, err = grant.New(grant.Config{
		Store:           st,
		Provisioner:     cfg.Provisioner,
		TestProvisioner: testProv,
		Uploader:        uploader,
		Sealer:          sealer,
		DeviceKey:       license.DeviceKeyFrom(cfg.DataKey),
		Jobs:            s.runner,
		Budget:          budget,
		Logger:          ctxLog,
		Now:             cfg.Now,
	})
	if err != nil {
		return nil, fmt.Errorf("isv: %w", err)
	}
	if err := s.runner.RegisterAll(s.grants.Jobs()); err != nil {
		return nil, fmt.Errorf("isv: %w", err)
	}
	online, err := onlinelicense.New(onlinelicense.Config{
		Instances: s.instances, Grants: s.grants, Store: st,
		Keys: inbound.KeyType(licCfg.OnlineKeys), FingerprintRequired: licCfg.RequireFingerprint, Now: cfg.Now,
	})
	if err != nil {
		return nil, fmt.Errorf("isv: %w", err)
	}
	legacy, err := legacylicense.New(legacylicense.Config{Grants: s.grants, TimestampWindow: cfg.V1TimestampWindow, Now: cfg.Now})
	if err != nil {
		return nil, fmt.Errorf("isv: %w", err)
	}
	tokens, err := licensetoken.New(licensetoken.Config{
		Store: st, Sealer: sealer, Retention: licCfg.KeyRetention, Now: cfg.Now, Logger: log,
	})
	if err != nil {
		return nil, fmt.Errorf("isv: %w", err)
	}
	s.licenseAPI, err = licenseapi.New(licenseapi.Config{
		Licenses: s.licenses, Tokens: tokens,
		RatePerCode: licCfg.RatePerCode, RatePerAddress: licCfg.RatePerAddress,
		Logger: log, Now: cfg.Now,
	})
	if err != nil {
		return nil, fmt.Errorf("isv: %w", err)
	}

	p := paths{produce: cfg.ProducePath, orderNotify: cfg.OrderNotifyPath, license: cfg.LicensePath}
	if p.produce == "" {
		p.produce = DefaultProducePath
	}
	if p.license == "" {
		p.license = DefaultLicensePath
	}
	if p.license == p.produce {
		return nil, fmt.Errorf("isv: the license path %s is the production path: online-license products share the SaaS activities' names, so they need a path of their own", p.license)
	}
	if p.orderNotify == "" {
		p.orderNotify = p.produce
	}
	families := routes(p, services{
		instances: s.instances, notifications: notifications, v1: v1, tenants: tenants,
		licenses: s.licenses, online: online, legacy: legacy,
	})
	for _, f := range families {
		if err := s.runner.RegisterAll(f.Jobs); err != nil {
			return nil, fmt.Errorf("isv: family %s: %w", f.Name, err)
		}
	}
	s.pipeline, err = inbound.New(inbound.Config{
		Families:        families,
		Keys:            keys,
		Store:           st,
		MaxBody:         cfg.MaxBodyBytes,
		Window:          cfg.NonceWindow,
		DisableBodySign: cfg.DisableBodySign,
		Logger:          log,
		Registerer:      cfg.Registerer,
		Now:             cfg.Now,
	})
	if err != nil {
		return nil, fmt.Errorf("isv: %w", err)
	}
	return s, nil
}

// Handler returns the production interface: every family's route. Mount
// it at each of Paths (or at "/"): it answers those paths only.
func (s *Server) Handler() http.Handler { return s.pipeline }

// Paths returns the URL paths the handler answers: the production path,
// the order-notification path when it is another, the Kit's paths and the
// license path.
func (s *Server) Paths() []string { return s.pipeline.Paths() }

// Run runs the job workers, the nonce sweeper, the license usage
// statistics schedule, the usage pushes' schedule and the ledger's
// retention sweep (when a retention is set) until ctx is done, then waits for running jobs,
// for the work calls started within their budget and for the ledger rows still being written
// behind replies before it returns. In-flight jobs finish within their own deadline, not ctx's.
// Stop the HTTP server first: calls answered after Run returns may leave their ledger rows
// unwritten when the store closes.
func (s *Server) Run(ctx context.Context) error {
	s.runMu.Lock()
	if s.running {
		s.runMu.Unlock()
		return errors.New("isv: Run called twice")
	}
	s.running = true
	s.runMu.Unlock()

	var wg sync.WaitGroup
	wg.Go(func() { s.pipeline.SweepNonces(ctx) })
	wg.Go(func() { s.licenses.Run(ctx) })
	wg.Go(func() { s.usage.Run(ctx) })
	wg.Go(func() { s.ledger.Run(ctx) })
	err := s.runner.Run(ctx)
	wg.Wait()
	s.instances.Wait()
	s.grants.Wait()
	s.pipeline.Wait()
	if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("isv: job runner: %w", err)
	}
	return nil
}
