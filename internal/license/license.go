// Package license is koobridge's domain of license codes (license-openapi.md
// §A, §D.1): the codes KooGallery issues for license-code products, what
// the production interface says about them, what the vendor's client
// software asks about them through the license service, the devices it
// runs on, and the usage statistics KooGallery wants back.
//
// # The production interface
//
// KooGallery tells the seller when a code is renewed (refreshLicenseCode),
// frozen or unfrozen (updateLicenseCodeStatus) and released
// (releaseLicenseCode), retrying every 2 minutes 60 times, replaying the
// seller's saved debug cases twice a day (testFlag "1"). Codes are kept by
// (code, test), so a debug call never touches a real code. Every change
// commits in one transaction with its history row and the job that tells
// the vendor (kind KindEvent, its unique key the event's ID):
//
//   - Refresh is idempotent by the renewal order: the operation record of
//     (test, orderId, orderLineId, license) keeps the exact reply, so a
//     repeat gets it byte for byte and a late retry of an older renewal
//     never moves the expiry back; the same key with another scene,
//     expireTime or productId is refused 000002. The expiry is set as the
//     call says (a cut-back renewal period shortens it). A renewal
//     (RENEWAL, TRIAL_TO_FORMAL, RENEWAL_CHANGE) that moves the expiry into
//     the future lifts a freeze, as it does for instances: a code is frozen
//     when it expired past its grace period, and KooGallery's UNFREEZE may
//     not follow the renewal (a later UNFREEZE then finds the code active
//     and succeeds without an event).
//   - SetStatus and Release are state-based: a code already in the target
//     state answers success without a new event; a released code answers
//     release (and FREEZE) with success forever. UNFREEZE or a renewal of a
//     released code is refused 000002 before anything is written.
//   - A code first heard of in any of the three is recorded with the state
//     the call implies: KooGallery issued it, the buyer may not have
//     activated it yet.
//
// # The client operations
//
// Activate and Check serve the license service (package licenseapi): the
// vendor's software in the field asks koobridge, never KooGallery with the
// vendor's AK/SK. Activate activates a code with KooGallery once (the first
// success is stored; a concurrent activation elsewhere shows as "illegal
// state" and is confirmed with a query) and binds the device to one of the
// code's seats (Config.Devices). Check answers from what the production
// interface said (a freeze or release answers at once), asks KooGallery at
// most once per CheckInterval per code, and answers from the cache while
// KooGallery cannot be reached, until the offline grace after the last
// confirmation runs out. Device fingerprints are never stored or logged:
// a device is the SHA-256 of its fingerprint.
//
// # Usage statistics
//
// Run enqueues one usage job (KindUsage) per UsageInterval, its unique key
// the interval's start, so several replicas push once; the job reports the
// devices seen since their last report, at most 100 codes per request
// (§A.8.3). Debug codes are never reported.
package license

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"time"

	"github.com/koobridge/koobridge/internal/jobs"
	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/provision"
)

// Job kinds of the Service.
const (
	// KindEvent delivers one license.* event to the vendor's product.
	KindEvent = "license-event"
	// KindUsage pushes the software usage statistics of one interval.
	KindUsage = "license-usage"
)

// Defaults of Config.
const (
	DefaultGrace         = 168 * time.Hour
	DefaultCheckInterval = 24 * time.Hour
	DefaultUsageInterval = time.Hour
)

// DevicePolicy says how many devices one license code serves.
type DevicePolicy string

// Device policies.
const (
	// DevicesAmount: a code serves at most its amount (the quantity bought,
	// as activation reports it) of devices, at least one.
	DevicesAmount DevicePolicy = "amount"
	// DevicesUnlimited: a code serves any number of devices.
	DevicesUnlimited DevicePolicy = "unlimited"
)

// ParseDevicePolicy reads a device policy setting ("amount" or
// "unlimited"; "" means amount).
func ParseDevicePolicy(s string) (DevicePolicy, error) {
	switch DevicePolicy(s) {
	case "", DevicesAmount:
		return DevicesAmount, nil
	case DevicesUnlimited:
		return DevicesUnlimited, nil
	}
	return "", fmt.Errorf("license: device policy %q: want amount or unlimited", s)
}

// OpenAPI is the part of KooGallery's Open API client (*openapi.Client)
// the Service uses. Its errors are openapi's: the license sentinels
// (openapi.ErrLicenseNotFound, …) and openapi.Retryable for outages.
type OpenAPI interface {
	// ActivateLicense activates code (v1 activate); realEffect is when the
	// software takes effect.
	ActivateLicense(ctx context.Context, code string, realEffect time.Time) (protocol.LicenseCodeInfo, error)
	// QueryLicense asks for the code's state (v1 query, ex-heartbeat).
	QueryLicense(ctx context.Context, code string) (protocol.LicenseInfo, error)
	// ReportSoftwareUsage pushes software usage statistics.
	ReportSoftwareUsage(ctx context.Context, req protocol.SoftwareUsageInfoRequest) (protocol.SoftwareUsageInfoResponse, error)
}

// Config configures a Service.
type Config struct {
	// Store keeps the codes, their history and devices, the operation
	// records and the jobs. Required.
	Store store.Store
	// OpenAPI reaches KooGallery's license Open APIs. Nil (a nil
	// *openapi.Client too) makes Activate and Check answer ErrUnavailable
	// and Run push no usage statistics.
	OpenAPI OpenAPI
	// Provisioner hears the license.* events of real codes,
	// TestProvisioner those of debug codes (testFlag "1"); nil
	// TestProvisioner means Provisioner. Provisioner is required.
	Provisioner     provision.Provisioner
	TestProvisioner provision.Provisioner
	// Jobs runs the event and usage jobs; register Jobs() with it (the
	// licensecode family carries them) before it starts. Required.
	Jobs *jobs.Runner
	// Grace is the offline grace: how long after KooGallery last confirmed
	// a code the service answers from its cache while KooGallery cannot be
	// reached. Default DefaultGrace.
	Grace time.Duration
	// CheckInterval is how often at most a code is queried at KooGallery.
	// Default DefaultCheckInterval.
	CheckInterval time.Duration
	// UsageInterval is the period of the usage statistics push. Default
	// DefaultUsageInterval.
	UsageInterval time.Duration
	// Devices is the seat policy; "" means DevicesAmount.
	Devices DevicePolicy
	Logger  *slog.Logger
	Now     func() time.Time
}

// Service keeps license codes. It is safe for concurrent use.
type Service struct {
	store         store.Store
	api           OpenAPI
	prov          provision.Provisioner
	testProv      provision.Provisioner
	jobs          *jobs.Runner
	grace         time.Duration
	checkInterval time.Duration
	usageInterval time.Duration
	devices       DevicePolicy
	log           *slog.Logger
	now           func() time.Time
	// codes serialises, within this process, the Open API calls about one
	// code (activation, query): one activation and one query per due
	// interval, not one per concurrent client.
	codes keyedMutex
}

// New checks cfg and returns a Service.
func New(cfg Config) (*Service, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("license: Config.Store is required")
	case cfg.Provisioner == nil:
		return nil, errors.New("license: Config.Provisioner is required")
	case cfg.Jobs == nil:
		return nil, errors.New("license: Config.Jobs is required")
	case cfg.Grace < 0, cfg.CheckInterval < 0, cfg.UsageInterval < 0:
		return nil, errors.New("license: negative Grace, CheckInterval or UsageInterval")
	}
	devices, err := ParseDevicePolicy(string(cfg.Devices))
	if err != nil {
		return nil, err
	}
	// A nil *openapi.Client in the interface is no client, not one to call.
	if v := reflect.ValueOf(cfg.OpenAPI); v.Kind() == reflect.Pointer && v.IsNil() {
		cfg.OpenAPI = nil
	}
	s := &Service{
		store: cfg.Store, api: cfg.OpenAPI, prov: cfg.Provisioner, testProv: cfg.TestProvisioner, jobs: cfg.Jobs,
		grace: cfg.Grace, checkInterval: cfg.CheckInterval, usageInterval: cfg.UsageInterval,
		devices: devices, log: cfg.Logger, now: cfg.Now,
	}
	if s.testProv == nil {
		s.testProv = s.prov
	}
	if s.grace == 0 {
		s.grace = DefaultGrace
	}
	if s.checkInterval == 0 {
		s.checkInterval = DefaultCheckInterval
	}
	if s.usageInterval == 0 {
		s.usageInterval = DefaultUsageInterval
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
	return map[string]jobs.HandlerFunc{KindEvent: s.handleEvent, KindUsage: s.handleUsage}
}

// DeviceID is how a device is kept: the hex SHA-256 of its fingerprint.
// The fingerprint itself (MAC addresses, disk serials) is never stored.
func DeviceID(fingerprint string) string {
	sum := sha256.Sum256([]byte(fingerprint))
	return hex.EncodeToString(sum[:])
}

// testFlag is how a code's debug flag appears in keys and event IDs.
func testFlag(test bool) string {
	if test {
		return "1"
	}
	return "0"
}

// keyedMutex is a mutex per key, kept only while someone holds or waits
// for it.
type keyedMutex struct {
	mu    sync.Mutex
	locks map[string]*keyedLock
}

type keyedLock struct {
	mu   sync.Mutex
	refs int
}

// lock takes the mutex of key and returns its unlock.
func (k *keyedMutex) lock(key string) (unlock func()) {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[string]*keyedLock{}
	}
	l := k.locks[key]
	if l == nil {
		l = &keyedLock{}
		k.locks[key] = l
	}
	l.refs++
	k.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		k.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
}
