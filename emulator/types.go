package emulator

import (
	"crypto/rsa"
	"log/slog"
	"net/http"
	"time"

	"github.com/koobridge/koobridge/protocol"
)

// Config configures an Emulator.
type Config struct {
	// Target is the seller's production interface URL (the V2 basic
	// interfaces), e.g. https://isv.example.com/produce. Required.
	Target string
	// Key is the key bound to the basic interfaces (基础接口): it signs
	// the V2 calls, checks their Body-Sign and the new usage push.
	// Required.
	Key string
	// KitKey, LicenseKey and GeneralKey are the keys bound to the other
	// interface types (saas-v2.md §2.1, license-openapi.md §A.6): the
	// joint-operation sync interfaces (联营SaaS同步接口), the license
	// interfaces and the general interfaces (通用接口, order
	// notification). Each family signs its calls and checks their
	// Body-Sign with the key of its type (Family.Key). An empty one means
	// Key; New fills it in.
	KitKey, LicenseKey, GeneralKey string
	// OrderNotifyTarget is the seller's URL for order notifications
	// (orderNotify, license-openapi.md §F). Empty means Target: a seller
	// may serve it at its production path beside the V2 activities. New
	// fills it in.
	OrderNotifyTarget string
	// KitTarget is the base URL of the joint-operation Kit calls
	// (KitV1, KitV2): they go to KitTarget + /produceAPI/[v2/]<name>.
	// Empty means the origin (scheme and host) of Target, the seller's
	// root (saas-v2.md §1.2); set it to Target to send them under the
	// production path instead (/produce/produceAPI/...). New fills it in.
	KitTarget string
	// KitSignForm is the x-sign form of KitV2 calls (KitFormA or
	// KitFormB); empty means KitFormA. New fills it in.
	KitSignForm KitSignForm
	// LicenseTarget is the seller's URL for the license-code calls
	// (refreshLicenseCode, updateLicenseCodeStatus, releaseLicenseCode;
	// license-openapi.md §A). Empty means the origin of Target +
	// "/license", koobridge serve's default --license-path. New fills it
	// in.
	LicenseTarget string
	// OnlineLicenseTarget is the seller's URL for the online-license calls
	// (newInstance … getLicenseAsync, §C). Empty means LicenseTarget. New
	// fills it in.
	OnlineLicenseTarget string
	// OnlineLicenseKey is the interface type whose key signs the
	// online-license calls and checks their Body-Sign: KeyLicense (the
	// default) or KeyBasic. Which one KooGallery uses is UNCONFIRMED
	// (koobridge serve's --online-license-key-type). New fills it in.
	OnlineLicenseKey KeyType
	// LicenseUploadWindow is how long (emulated) request-license waits
	// for the seller's upload of the license it asked for; zero means
	// DefaultLicenseUploadWindow.
	LicenseUploadWindow time.Duration
	// SellerPublicKey is the seller's RSA public key (the one registered
	// with the app credential): applicationSync's clientSecret is
	// encrypted to it with sign.EncryptClientSecret. Without it the
	// scenarios that send applicationSync (bind, test-account) fail with a
	// message saying so.
	SellerPublicKey *rsa.PublicKey
	// PublicURL is the emulator's own base URL as the seller and the
	// browser reach it, e.g. http://127.0.0.1:8090 (koobridge emulate sets
	// it from its listener). With it, a tenant's domainName (tenantSync)
	// is PublicURL + /oneaccess/<tenantCode>, the identity center the
	// emulator plays for it (OneAccessHandler); without it domainName is
	// https://<tenantCode>.idp.emulator.example.com, which reaches nothing.
	// It must be an http(s) URL without query or fragment; a trailing /
	// is dropped.
	PublicURL string
	// UserPassword is the password every user of every tenant signs in
	// with at the emulated OneAccess; empty means DefaultUserPassword.
	UserPassword string
	// AccessTokenLifetime is expires_in of the emulated OneAccess's access
	// tokens (on the wall clock, Now); zero means
	// DefaultAccessTokenLifetime (2 h).
	AccessTokenLifetime time.Duration
	// AK and SK are the credentials the mocked Open API accepts. Required.
	AK, SK string
	// Deadline is how long an answer may take; zero means 5 s
	// (saas-v2.md §1.1).
	Deadline time.Duration
	// TimeScale is how many emulated seconds pass per wall-clock second:
	// 3600 makes KooGallery's hourly retries come every second. Zero means 1.
	TimeScale float64
	// BodySignOptional stops a missing Body-Sign from counting as a
	// failure (whether V2 checks it is UNCONFIRMED, saas-v2.md §9.2); a
	// Body-Sign that is present must still be right.
	BodySignOptional bool
	// NoRetry delivers every call once: failures are logged, never
	// retried (the conformance suite wants each answer as it is).
	NoRetry bool
	// KeepGoing, which needs NoRetry, applies a step whose answer broke
	// rules but is still usable: it arrived whole within the deadline,
	// parsed, and carries an acceptable resultCode and the fields the
	// step needs (it broke only body-sign, content-type, http-status,
	// field-length, memo-escape or idempotent). The rules broken are
	// recorded as usual, the message is failed and Run.OK is false, but
	// the subscription changes and the scenario plays on, so that every
	// rule a seller breaks is seen, not only the first (the conformance
	// suite uses it).
	KeepGoing bool
	// PollInterval is the emulated time between queryInstance polls after
	// newInstance answered 000004; zero means 10 s. Polling stops with
	// success or at the end of newInstance's retry window.
	PollInterval time.Duration
	// Retry overrides the family's retry policy per interface.
	Retry map[string]RetryPolicy
	// HTTPClient sends the calls; nil means a client with no global
	// timeout (the deadline bounds each call).
	HTTPClient *http.Client
	// Now is the wall clock; nil means time.Now. The emulated clock starts
	// at Now() and runs TimeScale times faster, plus Advance.
	Now func() time.Time
	// Logger receives one line per delivery; nil discards.
	Logger *slog.Logger
}

// Product is a product on sale, with one SKU.
type Product struct {
	ID   string `json:"id"`
	SKU  string `json:"sku"`
	Name string `json:"name"`
	// ChargingMode is one of protocol.ChargingPeriod, ChargingOneTime,
	// ChargingOnDemand, ChargingOnDemandPkg.
	ChargingMode string `json:"chargingMode"`
	// PeriodType ("month" or "year") and PeriodNumber describe one PERIOD
	// purchase.
	PeriodType   string `json:"periodType,omitempty"`
	PeriodNumber int    `json:"periodNumber,omitempty"`
	// TrialDays > 0 lets the product be bought as a trial of that many
	// days (PERIOD products only, saas-v2.md §6.8).
	TrialDays int `json:"trialDays,omitempty"`
	// Protocol is the generation of the basic interfaces the product
	// speaks: ProtocolV2 (or empty) or ProtocolV1, whose lifecycle goes
	// through the V1 family; or the license product it is:
	// ProtocolLicense (license codes, the LicenseCode family) or
	// ProtocolOnlineLicense (the OnlineLicense family), PERIOD or
	// ONE_TIME and without a trial.
	Protocol string `json:"protocol,omitempty"`
	// Joint marks a joint-operation (联营) product: the Kit scenarios
	// (bind, authorize-users, …) play on it, through KitV1 for a V1
	// product and KitV2 for a V2 one.
	Joint bool `json:"joint,omitempty"`
}

// Subscription status: where a purchase stands as KooGallery sees it.
const (
	StatusPending      = "pending"      // newInstance not yet answered successfully
	StatusProvisioning = "provisioning" // newInstance answered 000004; polling queryInstance
	StatusActive       = "active"
	StatusFrozen       = "frozen"
	StatusReleased     = "released"
	StatusFailed       = "failed"       // the retry window of the purchase's call ran out
	StatusNotified     = "notified"     // orderNotify answered 000000: the seller knows of the order (no instance)
	StatusTestAccount  = "test-account" // the test-account flow's Kit calls succeeded (no instance, no order)
)

// What a subscription's clock has passed that its status does not show
// yet (Subscription.Lapsed): what KooGallery would do next.
const (
	// LapsedExpired: an active subscription (trial or paid) whose expiry
	// has passed; KooGallery would freeze it (play expire).
	LapsedExpired = "expired"
	// LapsedRetentionEnded: a frozen subscription whose 15-day retention
	// after the expiry has passed; KooGallery would release it (play
	// release).
	LapsedRetentionEnded = "retention-ended"
)

// Subscription is one purchased order line and what the seller made of it.
type Subscription struct {
	ID           string    `json:"id"`
	ProductID    string    `json:"productId"`
	SKU          string    `json:"sku"`
	ChargingMode string    `json:"chargingMode"`
	OrderID      string    `json:"orderId"`     // the order that bought it
	OrderLineID  string    `json:"orderLineId"` // its line
	InstanceID   string    `json:"instanceId,omitempty"`
	Status       string    `json:"status"`
	Trial        bool      `json:"trial,omitempty"`
	Test         bool      `json:"test,omitempty"` // calls carry testFlag "1"
	ExpireTime   time.Time `json:"expireTime,omitzero"`
	// StartTime is when the instance started: the createTime of the
	// order that bought it (PurchaseRequest.OrderTime, or when the
	// purchase was placed). ReleaseTime is when it was released, zero
	// while it is not. Both are on the subscription's own clock (Clock).
	StartTime   time.Time `json:"startTime,omitzero"`
	ReleaseTime time.Time `json:"releaseTime,omitzero"`
	// WallStartTime and WallReleaseTime are the same moments on the wall
	// clock, fixed when they happen (by its clock's lead then),
	// to the whole second: the start down, the release up. The usage push
	// checks records against these (MKT.9002), as sellers push on their
	// real clocks; a later Advance or a time scale above 1 does not move
	// them.
	WallStartTime   time.Time `json:"wallStartTime,omitzero"`
	WallReleaseTime time.Time `json:"wallReleaseTime,omitzero"`
	// PeriodType, PeriodNumber and LinearValue are the current
	// specification: one period of a PERIOD subscription (changed by
	// renewal-change) and the quantity (raised by upgrade).
	PeriodType   string `json:"periodType,omitempty"`
	PeriodNumber int    `json:"periodNumber,omitempty"`
	LinearValue  int    `json:"linearValue,omitempty"`
	// Orders are every order placed for it, oldest first.
	Orders []string `json:"orders"`
	// AppInfo is the last app info queryInstance returned.
	AppInfo *protocol.AppInfo `json:"appInfo,omitempty"`
	// RenewedPeriods counts the renewals (renewal, unfreeze) not yet
	// undone by unsubscribe-renewal, which needs one.
	RenewedPeriods int `json:"renewedPeriods,omitempty"`
	// Protocol and Joint are the product's (Product.Protocol, Joint).
	Protocol string `json:"protocol,omitempty"`
	Joint    bool   `json:"joint,omitempty"`
	// TenantID is the enterprise the subscription is bound to (Kit
	// scenarios; see Emulator.Tenant), TenantStatus where the binding
	// stands (TenantBound or TenantUnbound) and AuthorizedUsers how many
	// of its users are authorised.
	TenantID        string `json:"tenantId,omitempty"`
	TenantStatus    string `json:"tenantStatus,omitempty"`
	AuthorizedUsers int    `json:"authorizedUsers,omitempty"`
	// LicenseCode is the code KooGallery issued for a license-code
	// purchase (LicenseCodes shows its state in the mocked Open API).
	LicenseCode string `json:"licenseCode,omitempty"`
	// LicenseEvents are the eventIds of the getLicenseAsync calls of an
	// online-license subscription, oldest first (LicenseUploads shows
	// what was uploaded for them).
	LicenseEvents []string `json:"licenseEvents,omitempty"`
	// Clock is the time on the subscription's own emulated clock when it
	// was read (Subscriptions, Subscription): the emulator's (Now) plus
	// ClockAhead, how far its own scenarios (expire, release) have moved
	// it (nanoseconds in JSON). Its orders, messages, retries and expiry
	// run on it; Advance moves it with every other.
	Clock      time.Time     `json:"clock"`
	ClockAhead time.Duration `json:"clockAhead,omitempty"`
	// Lapsed says what the subscription's clock has passed that its
	// status does not show yet: LapsedExpired or LapsedRetentionEnded;
	// empty when nothing. Status stays what the seller was last told.
	Lapsed string `json:"lapsed,omitempty"`

	// ahead is ClockAhead.
	ahead time.Duration

	// playOpts are the arguments of the scenario being played.
	playOpts PlayOptions

	// busy is set while a scenario runs on the subscription.
	busy bool
	// dups is PurchaseRequest.Duplicates: extra copies of the purchase's
	// call.
	dups int
	// gen counts the state changes applied; a step whose call succeeds
	// after another change was applied is stale and changes nothing.
	gen int
}

// Message status, as in Seller Center's production interface messages.
const (
	MessageSending  = "sending"  // first attempt in flight
	MessageSuccess  = "success"  // an attempt broke no rule
	MessageRetrying = "retrying" // failed; another attempt is scheduled
	MessageFailed   = "failed"   // failed and no attempt is scheduled
)

// Message is one call KooGallery makes to the seller with every attempt to
// deliver it: the emulator's "生产接口消息" (saas-v1-joint-login.md D.2).
type Message struct {
	ID             string `json:"id"`
	Family         string `json:"family"`
	Interface      string `json:"interface"`
	Scenario       string `json:"scenario,omitempty"`
	SubscriptionID string `json:"subscriptionId,omitempty"`
	OrderID        string `json:"orderId,omitempty"`
	InstanceID     string `json:"instanceId,omitempty"`
	Test           bool   `json:"test,omitempty"`
	Body           string `json:"body"`
	Status         string `json:"status"`
	// Attempts are the first 10 and the last 40 attempts; DroppedAttempts
	// counts those between that were not kept.
	Attempts        []Attempt `json:"attempts"`
	DroppedAttempts int       `json:"droppedAttempts,omitempty"`
	// LastError sums up the last failed attempt's violations ("异常信息").
	LastError string `json:"lastError,omitempty"`
	// FirstSentAt, Deadline (end of the retry window) and NextAttempt are
	// emulated times.
	FirstSentAt time.Time `json:"firstSentAt"`
	Deadline    time.Time `json:"deadline,omitzero"`
	NextAttempt time.Time `json:"nextAttempt,omitzero"`
}

// MessageFilter selects messages; the zero value selects all.
type MessageFilter struct {
	SubscriptionID string
	Interface      string
	Status         string
	Limit          int // newest first; 0 means all
}

// PurchaseRequest is a buyer's purchase.
type PurchaseRequest struct {
	ProductID string `json:"productId"`
	// Trial buys the product's trial: the same as Scenario "trial".
	Trial bool `json:"trial,omitempty"`
	// Test makes the calls debug calls (testFlag "1").
	Test bool `json:"test,omitempty"`
	// Scenario is the scenario that starts the purchase: "purchase"
	// (newInstance; the default), "trial" or "order-notify" (orderNotify
	// for a new order, license-openapi.md §F). Scenarios that start from
	// a subscription are played with Play.
	Scenario string `json:"scenario,omitempty"`
	// Quantity is how many are bought (the order line's linearValue; a
	// license code's amount); 0 means 1, at most MaxQuantity.
	Quantity int `json:"quantity,omitempty"`
	// Duplicates delivers the purchase's call (newInstance, orderNotify)
	// this many extra times at once, 0 to 10, each with its own nonce
	// (and businessId), as the duplicates fault does for every call;
	// answers that disagree break the idempotent rule. The polls after
	// 000004 are not duplicated.
	Duplicates int `json:"duplicates,omitempty"`
	// OrderTime, when set, places the order in the past: its createTime
	// (Query Order) and the subscription's StartTime are then, and a
	// PERIOD order's expiry counts from it. It is read on the emulated
	// clock (Now): not after it, at most MaxOrderAge before it, and cut
	// to whole seconds. The call is still made now. Not for license
	// products, whose codes are issued when the call is made.
	OrderTime time.Time `json:"orderTime,omitzero"`
}

// MaxOrderAge is how far back PurchaseRequest.OrderTime may be.
const MaxOrderAge = 60 * 24 * time.Hour

// Run is what one scenario did.
type Run struct {
	// ID names the run for Outcome (GET /api/emulator/runs/{id}).
	ID             string   `json:"id"`
	Scenario       string   `json:"scenario"`
	SubscriptionID string   `json:"subscriptionId"`
	Messages       []string `json:"messages"` // IDs, in the order sent
	// OK is true when the run reached its end state and every step's
	// call succeeded; never while Pending.
	OK bool `json:"ok"`
	// Pending is true when the run has not reached its end state yet:
	// it waits, in the background, for the polling of queryInstance
	// after newInstance answered 000004, or for the retries of a step
	// whose first attempt failed (Err says how), which play the rest of
	// the scenario if one succeeds. Waiting says what it waits for.
	// Outcome tells how it ended.
	Pending bool   `json:"pending,omitempty"`
	Waiting string `json:"waiting,omitempty"`
	// LicenseCode is the subscription's license code (license-code
	// products: the one the purchase issued).
	LicenseCode string `json:"licenseCode,omitempty"`
	// Err says why the run stopped early, if it did.
	Err string `json:"error,omitempty"`
}

// Faults are deliberate misbehaviours, to see how a seller copes. The zero
// value is "behave".
type Faults struct {
	// Open API side (what the seller's calls to KooGallery meet).
	OpenAPILatency time.Duration `json:"openapiLatency,omitempty"` // wait before answering
	OpenAPIStatus  int           `json:"openapiStatus,omitempty"`  // answer this HTTP status (5xx: internal error)
	OpenAPITimeout bool          `json:"openapiTimeout,omitempty"` // never answer; cut the connection after 60 s
	OpenAPICount   int           `json:"openapiCount,omitempty"`   // affect this many requests; 0 = all
	// Calling side (what KooGallery's calls to the seller look like).
	Duplicates int           `json:"duplicates,omitempty"` // deliver every call this many extra times at once
	ClockSkew  time.Duration `json:"clockSkew,omitempty"`  // added to every timestamp
	// OneAccess side (what the seller's calls to a tenant's identity
	// center meet): the token endpoint waits this long before answering,
	// and answers HTTP 500 (server_error) when OneAccessTokenFail is set.
	OneAccessTokenLatency time.Duration `json:"oneaccessTokenLatency,omitempty"`
	OneAccessTokenFail    bool          `json:"oneaccessTokenFail,omitempty"`
	// License Open API side (activate, query, software usage and the
	// upload): answer LicenseAPIStatus (200 or 400-599) with
	// LicenseAPICode (empty: 92020001 for 200, 403 and 5xx, APIGW.0301
	// for 401, APIG.0308 for 429, 92020002 otherwise; CBC.0999 and
	// CBC.0101 on the upload), after LicenseAPILatency, to the next
	// LicenseAPICount requests (0: all).
	LicenseAPIStatus  int           `json:"licenseApiStatus,omitempty"`
	LicenseAPICode    string        `json:"licenseApiCode,omitempty"`
	LicenseAPILatency time.Duration `json:"licenseApiLatency,omitempty"`
	LicenseAPICount   int           `json:"licenseApiCount,omitempty"`
	// UploadFailures fails the next uploads with UploadFailureCode
	// (empty: CBC.0999, HTTP 500); the one after succeeds.
	UploadFailures    int    `json:"uploadFailures,omitempty"`
	UploadFailureCode string `json:"uploadFailureCode,omitempty"`
	// UsageFailRate (0 to 1) is the fraction of usage pushes, new and
	// old, that fail, each at random one of three ways: answered HTTP 500
	// MKT.0999 with nothing kept; held without an answer until the seller
	// gives up (at most 60 s) with nothing kept; or kept, then held the
	// same way, so that the seller's retry must be de-duplicated. The
	// Open API faults above come first.
	UsageFailRate float64 `json:"usageFailRate,omitempty"`
}

// UsageRecord is one usage record a seller pushed to the mocked Open API.
type UsageRecord struct {
	Received           time.Time `json:"received"`
	API                string    `json:"api"` // "new" or "old"
	InstanceID         string    `json:"instanceId"`
	ProductID          string    `json:"productId,omitempty"`
	MeteringSN         string    `json:"meteringSn"`
	BeginTime          string    `json:"beginTime"`
	EndTime            string    `json:"endTime"`
	RecordTime         string    `json:"recordTime"`
	UsageValue         string    `json:"usageValue"`
	RelatedPkgInstance string    `json:"relatedPkgInstance,omitempty"`
	Duplicate          bool      `json:"duplicate,omitempty"`
}

// BilledInstance is what the mocked Open API has billed one instance
// from the usage pushes: the first record of each period (by instance
// and period, or by metering_sn) is kept, later ones are duplicates,
// ignored.
type BilledInstance struct {
	InstanceID string `json:"instanceId"`
	// Total is the sum of the kept records' usage_value, exact, in
	// ten-thousandths (1.5 is 15000); TotalText the same as decimal
	// text ("1.5").
	Total     int64  `json:"totalUnits"`
	TotalText string `json:"total"`
	// Records counts the kept records, Duplicates the records ignored.
	Records    int `json:"records"`
	Duplicates int `json:"duplicates"`
	// Periods are the kept records, in the order received (nil from
	// BilledTotals; only the latest from BilledLatest).
	Periods []BilledPeriod `json:"periods,omitempty"`
	// PeriodsOmitted counts the older kept records BilledLatest left out
	// of Periods (Records minus those listed); 0 when none were.
	PeriodsOmitted int `json:"periodsOmitted,omitempty"`
}

// BilledPeriod is one kept usage record: one period of an instance.
type BilledPeriod struct {
	Begin      time.Time `json:"begin"`
	End        time.Time `json:"end"`
	MeteringSN string    `json:"meteringSn,omitempty"` // none on the old push
	// Value is usage_value in ten-thousandths, ValueText as decimal
	// text.
	Value     int64     `json:"valueUnits"`
	ValueText string    `json:"value"`
	Received  time.Time `json:"received"`
	API       string    `json:"api"` // "new" or "old"
	// RelatedPkgInstance is the record's relate_pkg_instance.
	RelatedPkgInstance string `json:"relatedPkgInstance,omitempty"`
	// Duplicates counts the later records for this period that were
	// ignored.
	Duplicates int `json:"duplicates"`
}

// OpenAPIRequest is one request the mocked Open API received.
type OpenAPIRequest struct {
	At       time.Time     `json:"at"`
	Method   string        `json:"method"`
	Path     string        `json:"path"`
	Query    string        `json:"query,omitempty"`
	Status   int           `json:"status"`
	Code     string        `json:"code,omitempty"`
	Fault    string        `json:"fault,omitempty"`
	Duration time.Duration `json:"duration"`
}
