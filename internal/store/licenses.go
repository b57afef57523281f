package store

import (
	"context"
	"time"
)

// This file holds the state of license products (license-openapi.md §A–§D):
// the license codes KooGallery issues and their history, the devices the
// vendor's client software reported for them, the licenses koobridge had
// the vendor generate (online license getLicenseAsync, license 1.0
// getLicense) with their uploads to KooGallery, and the Ed25519 keys that
// sign the license tokens of the license service.
//
// Idempotency rests on keys:
//   - license codes: (code, test)
//   - license devices: (code, test, device)
//   - license grants: (kind, grant_key)
//   - license keys: generation (two replicas creating generation n make one key)

// LicenseStatus is the state of a license code or of a generated license,
// as the production interface and the Open API left it.
type LicenseStatus string

// License states.
const (
	LicenseActive   LicenseStatus = "active"
	LicenseFrozen   LicenseStatus = "frozen"
	LicenseReleased LicenseStatus = "released" // terminal
)

// LicenseCode is one license code KooGallery issued (one per purchased
// license resource). A code is recorded the first time koobridge hears of
// it, from a production call or from the vendor's client software
// activating it. Test codes (a production call with testFlag "1") live
// apart from real ones: (Code, Test) is the key.
type LicenseCode struct {
	Code       string
	Test       bool
	Status     LicenseStatus
	ExpireTime time.Time // zero when unknown
	// ExpireEstimated says ExpireTime is activate's expire_time, an
	// estimate only (§A.8.1), not yet told by the production interface or
	// a query.
	ExpireEstimated bool
	OrderID         string // the purchase order when known, else the latest order that touched the code
	OrderLineID     string
	ProductID       string
	Amount          int // the quantity bought (activate's amount); 0 when unknown
	// ActivatedAt is when koobridge activated the code with KooGallery
	// (zero until then).
	ActivatedAt time.Time
	// CheckedAt is when KooGallery last answered a query of the code
	// (zero until then); RemoteStatus is what it or the activation said
	// (ALIVE, EXPIRED, RELEASED), "" when none or when the production
	// interface made the code alive again after a "not alive" (the next
	// check asks KooGallery).
	CheckedAt    time.Time
	RemoteStatus string
	// ConfirmedAt is when the production interface last told, in a call
	// KooGallery signed, that the code is alive (a renewal into the
	// future, UNFREEZE): a confirmation as good as a query's for the
	// offline grace, without being a query (zero until then).
	ConfirmedAt time.Time
	CreatedAt   time.Time
	UpdatedAt   time.Time
	Version     int64 // incremented by every update; UpdateLicenseCode checks it
}

// LicenseCodeFilter selects license codes for the admin API.
type LicenseCodeFilter struct {
	Status    LicenseStatus
	OrderID   string
	Test      *bool
	AfterCode string // paging by Code, ascending
	Limit     int    // 0 means 100; at most 1000
}

// LicenseEvent is one entry of a license code's history: a production
// call that changed it, an activation, a query's answer, a device seen.
// Detail is JSON with no personal data (device fingerprints only hashed).
type LicenseEvent struct {
	ID     int64
	Code   string
	Test   bool
	Kind   string // e.g. "renewed", "frozen", "unfrozen", "released", "activated", "checked", "device"
	Source string // "koogallery" (production interface), "openapi" (koobridge asked KooGallery), "client" (license service), "admin" (an operator)
	Detail string // JSON
	At     time.Time
}

// LicenseDevice is one device the vendor's client software presented a
// code from. Device is a keyed hash (hex; package license's DeviceHash) of
// the device fingerprint: the fingerprint itself (MAC addresses, disk
// serials) is never stored.
type LicenseDevice struct {
	Code      string
	Test      bool
	Device    string
	FirstSeen time.Time
	LastSeen  time.Time
	// ReportedAt is when the device was last included in a software usage
	// statistics push (zero: never); it is due again when LastSeen is later.
	ReportedAt time.Time
}

// GrantKind tells which guide a generated license belongs to.
type GrantKind string

// Grant kinds.
const (
	GrantOnline GrantKind = "online" // getLicenseAsync (online license, §C.6), uploaded with §C.7
	GrantLegacy GrantKind = "legacy" // getLicense (license 1.0, §B.2), answered in the reply
)

// GrantState is how far a generated license has come.
type GrantState string

// Grant states.
const (
	GrantPending   GrantState = "pending"   // the vendor's generator not yet answered
	GrantGenerated GrantState = "generated" // generated; an online grant waits for its upload
	GrantUploaded  GrantState = "uploaded"  // KooGallery accepted the upload (online only)
	GrantFailed    GrantState = "failed"    // gave up (a permanent refusal); re-runnable from the admin API
)

// LicenseGrant is one license koobridge had the vendor's generator make:
// for an online-license getLicenseAsync (Kind online, Key derived from
// eventId and the device fingerprint) or a license 1.0 getLicense (Kind
// legacy, Key the orderId).
type LicenseGrant struct {
	ID         int64
	Kind       GrantKind
	Key        string // unique within Kind
	InstanceID string // online: the instance; legacy: the instanceId answered (the first businessId)
	EventID    string // online: KooGallery's eventId (the upload URL's {event_id}); "" for legacy
	OrderID    string
	ProductID  string
	Test       bool
	State      GrantState
	// Status and ExpireTime are the license's lifecycle (license 1.0
	// refreshLicense, expireLicense, releaseLicense move them).
	Status     LicenseStatus
	ExpireTime time.Time
	// Request is the request's details as JSON (effective and expiry
	// times, the device fingerprint's hash), for the admin API.
	Request string
	// Type is CHARACTERS or FILE (the upload's isvUpdateFileReq.type);
	// FileName names a FILE license.
	Type     string
	FileName string
	// ContentSealed is the license content, sealed (package seal); SHA256
	// is the hex SHA-256 of the content. Both "" until generated.
	ContentSealed string
	SHA256        string
	Attempts      int // upload attempts so far
	LastError     string
	UploadedAt    time.Time
	CreatedAt     time.Time
	UpdatedAt     time.Time
	Version       int64 // incremented by every update; UpdateLicenseGrant checks it
}

// LicenseGrantFilter selects grants for the admin API.
type LicenseGrantFilter struct {
	Kind       GrantKind
	State      GrantState
	InstanceID string
	BeforeID   int64 // for paging: only grants with ID < BeforeID, newest first
	Limit      int   // 0 means 100; at most 1000
}

// LicenseUpload is one attempt at uploading a grant to KooGallery.
type LicenseUpload struct {
	ID         int64
	GrantID    int64
	At         time.Time
	Outcome    string // "accepted", "retry" (may succeed later), "refused" (permanent)
	HTTPStatus int    // 0 when no answer came
	Code       string // the answer's error_code, "" when none
	Message    string
}

// LicenseKey is one Ed25519 key of the license service's tokens. The key
// of the highest Generation signs; package licensetoken decides how long
// older ones stay published.
type LicenseKey struct {
	Generation    int64
	ID            string // the JWK "kid"
	Public        string // the 32-byte Ed25519 public key, base64url without padding (the JWK "x")
	PrivateSealed string // the 32-byte Ed25519 seed in base64, sealed (package seal)
	CreatedAt     time.Time
}

// LicenseReader reads license codes and grants, inside and outside
// transactions.
type LicenseReader interface {
	// LicenseCode reads one code; ErrNotFound if absent.
	LicenseCode(ctx context.Context, code string, test bool) (LicenseCode, error)
	// LicenseDevices lists the devices of one code, oldest FirstSeen first.
	// To count seats in a transaction, read the code (LicenseCode) first:
	// that holds other transactions on the same code back until this one
	// ends, so the count stays true until the device is written.
	LicenseDevices(ctx context.Context, code string, test bool) ([]LicenseDevice, error)
	// LicenseGrant reads the grant of (kind, key); ErrNotFound if absent.
	LicenseGrant(ctx context.Context, kind GrantKind, key string) (LicenseGrant, error)
	// LicenseGrantByID reads one grant; ErrNotFound if absent.
	LicenseGrantByID(ctx context.Context, id int64) (LicenseGrant, error)
	// LicenseGrantByInstance reads the grant of kind whose InstanceID is
	// instanceID, the oldest if several; ErrNotFound if none.
	LicenseGrantByInstance(ctx context.Context, kind GrantKind, instanceID string) (LicenseGrant, error)
}

// Licenses reads license state outside transactions, and writes what is
// not part of a state change (upload attempts, usage reports, keys).
type Licenses interface {
	LicenseReader
	// LicenseCodes lists codes by Code, ascending.
	LicenseCodes(ctx context.Context, f LicenseCodeFilter) ([]LicenseCode, error)
	// LicenseEvents lists the history of one code, newest first, at most
	// limit entries (0 means 100; at most 1000).
	LicenseEvents(ctx context.Context, code string, test bool, limit int) ([]LicenseEvent, error)
	// LicenseGrants lists grants, newest first.
	LicenseGrants(ctx context.Context, f LicenseGrantFilter) ([]LicenseGrant, error)
	// InsertLicenseUpload records one upload attempt and returns its ID;
	// a zero At is stored as now. ErrNotFound if the grant does not exist.
	InsertLicenseUpload(ctx context.Context, u LicenseUpload) (int64, error)
	// LicenseUploads lists the upload attempts of one grant, oldest first.
	LicenseUploads(ctx context.Context, grantID int64) ([]LicenseUpload, error)
	// UnreportedLicenseDevices lists at most limit (0 means 100; at most
	// 1000) devices of real (not test) codes whose LastSeen is after their
	// ReportedAt, by code.
	UnreportedLicenseDevices(ctx context.Context, limit int) ([]LicenseDevice, error)
	// MarkLicenseDevicesReported sets ReportedAt to at for each device
	// (by Code, Test, Device) whose LastSeen is at or before at.
	MarkLicenseDevicesReported(ctx context.Context, devices []LicenseDevice, at time.Time) error
	// LicenseKeys lists the token signing keys, newest Generation first.
	LicenseKeys(ctx context.Context) ([]LicenseKey, error)
	// InsertLicenseKey inserts k unless a key of the same Generation (or
	// ID) exists, and reports whether it inserted. A zero CreatedAt is
	// stored as now.
	InsertLicenseKey(ctx context.Context, k LicenseKey) (inserted bool, err error)
}

// LicenseTx writes license state in a transaction, with the ledger's
// operation records and the jobs the change causes.
type LicenseTx interface {
	LicenseReader
	// InsertLicenseCode inserts c unless a code of the same (Code, Test)
	// exists, and reports whether it inserted. Zero CreatedAt and
	// UpdatedAt are stored as now (other zero times stay zero: unknown),
	// an empty Status as active; Version is stored as given.
	InsertLicenseCode(ctx context.Context, c LicenseCode) (inserted bool, err error)
	// UpdateLicenseCode writes every mutable field of c when the stored
	// Version equals c.Version, and sets the stored Version to c.Version+1
	// (ErrConflict otherwise, ErrNotFound if absent). A zero UpdatedAt is
	// stored as now.
	UpdateLicenseCode(ctx context.Context, c LicenseCode) error
	// InsertLicenseEvent appends e to its code's history and returns its
	// ID; a zero At is stored as now. ErrNotFound if the code (Code, Test)
	// is not recorded.
	InsertLicenseEvent(ctx context.Context, e LicenseEvent) (int64, error)
	// UpsertLicenseDevice inserts d, or, when (Code, Test, Device) exists,
	// moves its LastSeen to d.LastSeen if that is later; it reports
	// whether it inserted. Zero FirstSeen and LastSeen are stored as now.
	// ErrNotFound if the code (Code, Test) is not recorded.
	UpsertLicenseDevice(ctx context.Context, d LicenseDevice) (inserted bool, err error)
	// TouchLicenseDevice moves the LastSeen of the device (code, test,
	// device) to at if that is later, and reports whether the device is
	// there. It never inserts: a device released meanwhile
	// (DeleteLicenseDevice) stays released and is reported absent. A zero
	// at is now.
	TouchLicenseDevice(ctx context.Context, code string, test bool, device string, at time.Time) (found bool, err error)
	// DeleteLicenseDevice removes the device (Code, Test, Device), freeing
	// its seat, and reports whether it was there: of two concurrent
	// deletes one reports true. An absent device or code is not an error.
	DeleteLicenseDevice(ctx context.Context, code string, test bool, device string) (deleted bool, err error)
	// InsertLicenseGrant inserts g unless a grant of the same (Kind, Key)
	// exists, and reports whether it inserted and the ID of the grant
	// (the existing one when it did not). Zero CreatedAt and UpdatedAt are
	// stored as now (ExpireTime and UploadedAt stay zero); an empty State
	// as pending, an empty Status as active.
	InsertLicenseGrant(ctx context.Context, g LicenseGrant) (id int64, inserted bool, err error)
	// UpdateLicenseGrant writes every mutable field of g (all but ID,
	// Kind, Key, CreatedAt) when the stored Version equals g.Version, and
	// sets the stored Version to g.Version+1 (ErrConflict otherwise,
	// ErrNotFound if absent). A zero UpdatedAt is stored as now.
	UpdateLicenseGrant(ctx context.Context, g LicenseGrant) error
}
