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
//     repeat gets it byte for byte; the same key with another scene,
//     expireTime or productId is refused 000002. A renewal (RENEWAL,
//     TRIAL_TO_FORMAL, RENEWAL_CHANGE) never shortens the expiry, so an
//     older renewal retried after a newer one leaves the newer expiry;
//     only UNSUBSCRIBE_RENEWAL_PERIOD (a cut-back period) sets it as sent,
//     earlier too. An expiry known only from activate's answer is an
//     estimate (§A.8.1; LicenseCode.ExpireEstimated): any renewal
//     replaces it, earlier too, as a query's expire_time does. A renewal
//     that moves the expiry into the future lifts a freeze (with
//     license.unfrozen beside license.renewed), as it does for instances:
//     a code is frozen when it expired past its grace period, and
//     KooGallery's UNFREEZE may not follow the renewal (a later UNFREEZE
//     then finds the code active and succeeds without an event).
//   - SetStatus and Release are state-based: a code already in the target
//     state answers success without a new event. A released code answers
//     release, FREEZE and UNFREEZE with success forever, changing nothing:
//     the twice-daily replays of the saved debug cases run release and
//     UNFREEZE on the same code again and again. A new renewal of a
//     released code is refused 000002 for a real code and answered
//     000000 without change for a debug one, before anything is written.
//   - A renewal into the future or an UNFREEZE forgets KooGallery's
//     cached answer when it said the code was not alive (EXPIRED,
//     RELEASED), so the next check asks KooGallery again instead of
//     answering the stale status. Either is KooGallery vouching for the
//     code in a call it signed: the offline grace runs from it
//     (LicenseCode.ConfirmedAt) as from a query's answer.
//   - A code first heard of in any of the three is recorded with the state
//     the call implies: KooGallery issued it, the buyer may not have
//     activated it yet.
//
// # The client operations
//
// Activate and Check serve the license service (package licenseapi): the
// vendor's software in the field asks koobridge, never KooGallery with the
// vendor's AK/SK. Activate activates a code with KooGallery once (the first
// success is stored, even when the client hung up meanwhile; a concurrent
// activation elsewhere shows as "illegal state" and is confirmed with a
// query; KooGallery later saying "not activated" makes the next Activate
// activate it again, within the same call) and binds the device to one of
// the code's seats (Config.Devices; while the amount bought is unknown,
// seats are not counted). Check answers from what the production
// interface said (a freeze or release answers at once), asks KooGallery at
// most once per CheckInterval per code, after a failed query at most once
// per 5 minutes, and answers from the cache while KooGallery cannot be
// reached, until the offline grace after the last confirmation (the
// activation, a query's answer, a renewal into the future or an UNFREEZE)
// runs out.
// Device fingerprints are never stored or logged: a device is the keyed
// hash of its fingerprint (Service.DeviceID).
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
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
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

// QueryRetry is how long after a failed query (an outage, throttling, the
// gateway refusing the AK/SK) a code is not queried again, the cache
// answering meanwhile; CheckInterval when that is shorter. The API
// gateway locks an AK for 5 minutes after five failed signatures in a
// row: asking again sooner cannot help.
const QueryRetry = 5 * time.Minute

// MinDeviceKey is the shortest Config.DeviceKey.
const MinDeviceKey = 32

// DevicePolicy says how many devices one license code serves.
type DevicePolicy string

// Device policies.
const (
	// DevicesAmount: a code serves at most its amount (the quantity bought,
	// as activation or a query reports it) of devices. While the amount is
	// unknown (KooGallery did not say it) the devices are not counted.
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
	// DeviceKey keys the hash that identifies a device (DeviceID): at
	// least MinDeviceKey bytes, secret, and the same on every replica and
	// across restarts (a new key makes every device a new one). isv
	// derives it from the data key with DeviceKeyFrom. Required.
	DeviceKey []byte
	Logger    *slog.Logger
	Now       func() time.Time
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
	queryRetry    time.Duration
	devices       DevicePolicy
	deviceKey     []byte
	log           *slog.Logger
	now           func() time.Time
	// codes serialises, within this process, the Open API calls about one
	// code (activation, query): one activation and one query per due
	// interval, not one per concurrent client.
	codes keyedMutex
	// failed holds, per code, when its last query failed (this process
	// only): no new query until queryRetry later.
	failed sync.Map // code → time.Time
	// noAmount holds the codes whose unknown amount was logged, so the
	// warning comes once per code and process.
	noAmount sync.Map // code → struct{}
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
	case len(cfg.DeviceKey) < MinDeviceKey:
		return nil, fmt.Errorf("license: Config.DeviceKey is required, at least %d bytes", MinDeviceKey)
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
		devices: devices, deviceKey: append([]byte(nil), cfg.DeviceKey...), log: cfg.Logger, now: cfg.Now,
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
	s.queryRetry = min(QueryRetry, s.checkInterval)
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

// DeviceID is how the license service keeps a device: the hex
// HMAC-SHA256, under Config.DeviceKey, of its fingerprint in upper case
// (§D.3 gives the fingerprint in upper case; a client sending it in lower
// case is the same device). The fingerprint itself (MAC addresses, disk
// serials) is never stored, and the key keeps the hash from being
// reversed by trying fingerprints: a MAC address alone has about 24 bits
// of entropy once its vendor prefix is known.
func (s *Service) DeviceID(fingerprint string) string { return DeviceHash(s.deviceKey, fingerprint) }

// DeviceKeyFrom derives Config.DeviceKey from koobridge's data key, so
// the device hashes need no key of their own and stay stable for as long
// as the data key does.
func DeviceKeyFrom(dataKey []byte) []byte {
	m := hmac.New(sha256.New, dataKey)
	m.Write([]byte("koobridge license device id"))
	return m.Sum(nil)
}

// DeviceHash is the identity of a device: the hex HMAC-SHA256, keyed with
// key (DeviceKeyFrom), of its fingerprint in upper case (§D.3 writes it in
// upper case, so a client sending lower case is the same device). Package
// grant keys the devices of generated licenses with it too.
func DeviceHash(key []byte, fingerprint string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(strings.ToUpper(fingerprint)))
	return hex.EncodeToString(m.Sum(nil))
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
