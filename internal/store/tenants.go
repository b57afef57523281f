package store

import (
	"context"
	"time"
)

// This file holds the joint-operation Kit data: the buyer enterprises
// (tenants) bound to a joint-operation product, their OAuth clients
// (apps), the users they authorised and their department trees, and the
// per-tenant outbox of events for the vendor (saas-v1-joint-login.md
// Part B, saas-v2.md §3.8).
//
// Idempotency rests on primary keys:
//   - tenants: tenant_id
//   - tenant apps: (tenant_id, app_id)
//   - tenant users: (tenant_id, app_id, user_name)
//   - tenant orgs: (tenant_id, org_code)
//   - tenant events: event_id unique, (tenant_id, seq) unique

// TenantStatus tells whether a tenant is bound.
type TenantStatus string

// Tenant states.
const (
	TenantActive  TenantStatus = "active"
	TenantDeleted TenantStatus = "deleted" // tenantSync flag 0: kept as a tombstone, its apps, users and orgs removed
)

// Tenant is one buyer enterprise (tenantSync).
type Tenant struct {
	ID         string // KooGallery's tenantId
	Code       string // tenantCode
	Name       string
	DomainName string // the tenant's identity center, with https://
	InstanceID string // "" in the app-credential / test-account flow
	OrderID    string
	Test       bool // last changed by a debug call (testFlag 1)
	Status     TenantStatus
	CreatedAt  time.Time
	UpdatedAt  time.Time
	DeletedAt  time.Time // zero unless Status is deleted
	Version    int64     // 0 when inserted, incremented by every UpsertTenant that overwrites it
}

// TenantApp is a tenant's OAuth client for one app credential
// (applicationSync). ClientSecretSealed is the decrypted client secret,
// sealed at rest (package seal); it is never shown.
type TenantApp struct {
	TenantID           string
	AppID              string
	ClientID           string
	ClientSecretSealed string
	InstanceID         string
	CreatedAt          time.Time
	UpdatedAt          time.Time
}

// TenantUser is one user a tenant authorised for an app (authSync).
// MobileSealed and EmailSealed are sealed at rest; Revoked is set by a
// flag 3 (revoke authorisation), which keeps the row, unlike flag 0.
type TenantUser struct {
	TenantID     string
	AppID        string
	UserName     string
	Name         string
	OrgCode      string
	Role         string // "user" or "admin"
	Enable       bool
	Revoked      bool
	Position     string
	EmployeeCode string
	EmployeeType int // 1–4, 0 unknown
	MobileSealed string
	EmailSealed  string
	WorkPlace    string
	EntryDate    string
	SyncTime     string // currentSyncTime of the call that last wrote the user
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// TenantOrg is one department of a tenant (singleOrgSync, allOrgSync).
// ParentCode is "" for a top-level department.
type TenantOrg struct {
	TenantID   string
	OrgCode    string
	Name       string
	ParentCode string
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// TenantEventState is how far an outbox event has come.
type TenantEventState string

// Tenant event states.
const (
	TenantEventPending   TenantEventState = "pending"
	TenantEventDelivered TenantEventState = "delivered"
	TenantEventFailed    TenantEventState = "failed" // the vendor refused it for good, or its attempts ran out
)

// TenantEvent is one change to tell the vendor about, in the per-tenant
// outbox: delivered strictly in Seq order per tenant. PayloadSealed is the
// provision.Event as JSON, sealed (it carries users' contact data).
type TenantEvent struct {
	ID            int64
	TenantID      string
	Seq           int64 // 1, 2, … per tenant, assigned by InsertTenantEvent
	EventID       string
	Type          string
	PayloadSealed string
	State         TenantEventState
	LastError     string
	Attempts      int // failed deliveries so far
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// TenantFilter selects tenants for the admin API.
type TenantFilter struct {
	Status  TenantStatus // "" matches all
	AfterID string       // paging by ID, ascending
	Limit   int          // 0 means 100; at most 1000
}

// TenantReader reads Kit data, inside and outside transactions.
type TenantReader interface {
	// Tenant reads one tenant, deleted ones included; ErrNotFound if absent.
	Tenant(ctx context.Context, id string) (Tenant, error)
	// TenantApp reads one app; ErrNotFound if absent.
	TenantApp(ctx context.Context, tenantID, appID string) (TenantApp, error)
	// TenantApps lists a tenant's apps by AppID.
	TenantApps(ctx context.Context, tenantID string) ([]TenantApp, error)
	// TenantUsers lists a tenant's users by (AppID, UserName).
	TenantUsers(ctx context.Context, tenantID string) ([]TenantUser, error)
	// TenantOrgs lists a tenant's departments by OrgCode.
	TenantOrgs(ctx context.Context, tenantID string) ([]TenantOrg, error)
	// TenantEvent reads one outbox event by ID; ErrNotFound if absent.
	TenantEvent(ctx context.Context, id int64) (TenantEvent, error)
	// NextTenantEvent reads the pending event of tenantID with the lowest
	// Seq; ErrNotFound when none is pending.
	NextTenantEvent(ctx context.Context, tenantID string) (TenantEvent, error)
}

// Tenants reads Kit data outside transactions and holds the delivery lease
// of each tenant's outbox.
type Tenants interface {
	TenantReader
	// Tenants lists tenants by ID.
	Tenants(ctx context.Context, f TenantFilter) ([]Tenant, error)
	// TenantEvents lists a tenant's events by Seq, newest first, at most
	// limit (0 means 100, at most 1000).
	TenantEvents(ctx context.Context, tenantID string, limit int) ([]TenantEvent, error)
	// LeaseTenantEvents takes the delivery lease of tenantID's outbox for
	// worker until now+lease when nobody holds it, it expired, or worker
	// holds it already (a lease expired when its end is before now); it
	// reports whether worker holds it now. One worker
	// at a time delivers a tenant's events, so they arrive in order.
	LeaseTenantEvents(ctx context.Context, tenantID, worker string, now time.Time, lease time.Duration) (bool, error)
	// ReleaseTenantEvents gives up worker's lease (no-op when it does not
	// hold it).
	ReleaseTenantEvents(ctx context.Context, tenantID, worker string) error
	// FailTenantEventAttempt records one failed delivery of event id:
	// Attempts incremented, LastError and UpdatedAt set (now, or the wall
	// clock when now is zero), and a pending event's State failed once
	// Attempts reaches maxAttempts. It returns the event as stored;
	// ErrNotFound if absent.
	FailTenantEventAttempt(ctx context.Context, id int64, lastErr string, maxAttempts int, now time.Time) (TenantEvent, error)
	// SetTenantEventState sets an event's State, LastError and UpdatedAt
	// (now, or the wall clock when now is zero); ErrNotFound if absent.
	SetTenantEventState(ctx context.Context, id int64, state TenantEventState, lastErr string, now time.Time) error
}

// TenantTx writes Kit data in a transaction.
type TenantTx interface {
	TenantReader
	// LockTenant serialises the transactions that change one tenant's Kit
	// data: it creates the tenant's stream row if needed and locks it until
	// the transaction ends (PostgreSQL: the row lock of an upsert; SQLite
	// holds its one write lock anyway). A Kit call takes it first, so it
	// reads the state it changes without a concurrent call changing it too.
	LockTenant(ctx context.Context, tenantID string) error
	// UpsertTenant inserts t, or overwrites every field of the stored
	// tenant with the same ID (CreatedAt kept, Version incremented).
	// t.Version is ignored (a new tenant is stored at 0), an empty Status
	// is stored as active, zero CreatedAt and UpdatedAt as now.
	UpsertTenant(ctx context.Context, t Tenant) error
	// UpsertTenantApp inserts a, or overwrites the stored app of
	// (TenantID, AppID) (CreatedAt kept). Zero times are stored as now.
	UpsertTenantApp(ctx context.Context, a TenantApp) error
	// DeleteTenantApp deletes an app and reports whether it existed.
	DeleteTenantApp(ctx context.Context, tenantID, appID string) (bool, error)
	// UpsertTenantUsers inserts or overwrites users by (TenantID, AppID,
	// UserName) (CreatedAt kept), in a few statements however many there
	// are. When users names one key twice, the last one wins. Zero times
	// are stored as now.
	UpsertTenantUsers(ctx context.Context, users []TenantUser) error
	// DeleteTenantUsers deletes the named users of an app and returns how
	// many existed.
	DeleteTenantUsers(ctx context.Context, tenantID, appID string, userNames []string) (int64, error)
	// UpsertTenantOrg inserts or overwrites a department by (TenantID,
	// OrgCode) (CreatedAt kept). Zero times are stored as now.
	UpsertTenantOrg(ctx context.Context, o TenantOrg) error
	// DeleteTenantOrg deletes a department and reports whether it existed.
	DeleteTenantOrg(ctx context.Context, tenantID, orgCode string) (bool, error)
	// ReplaceTenantOrgs replaces the tenant's whole tree with orgs, in
	// the transaction (a failing one leaves the old tree). Every org is
	// stored under tenantID, whatever its TenantID; when orgs names one
	// OrgCode twice, the last one wins. Zero times are stored as now.
	ReplaceTenantOrgs(ctx context.Context, tenantID string, orgs []TenantOrg) error
	// ClearTenant deletes every app, user and department of a tenant (the
	// tenant row and its events stay).
	ClearTenant(ctx context.Context, tenantID string) error
	// InsertTenantEvent appends e to its tenant's outbox with the next Seq
	// of that tenant and returns its ID and Seq. An event whose EventID is
	// stored already is not inserted (inserted false; the stored one's ID
	// and Seq are returned). An empty State is stored as pending, zero
	// times as now; e.ID and e.Seq are ignored. Concurrent transactions
	// never get the same Seq of a tenant, and leave no gap.
	InsertTenantEvent(ctx context.Context, e TenantEvent) (id, seq int64, inserted bool, err error)
	// RedeliverTenantEvent puts the failed event of tenantID with Seq seq
	// back to pending, with Attempts 0, LastError "" and UpdatedAt now (the
	// wall clock when now is zero), and returns it as stored. ErrNotFound
	// when the tenant has no event with that Seq; ErrConflict when the event
	// is not failed (pending or delivered). The caller enqueues its delivery
	// job in the same transaction.
	RedeliverTenantEvent(ctx context.Context, tenantID string, seq int64, now time.Time) (TenantEvent, error)
}
