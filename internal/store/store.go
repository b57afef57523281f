// Package store holds koobridge's durable state: instances, the ledger of
// calls, idempotency records, persisted nonces, order notifications, the
// job queue, tenants, single sign-on, licenses and pay-per-use metering.
//
// Access is split by entity: each table has a small interface of reads
// (InstanceReader, Calls, Nonces, Jobs, …) and, where it is written in
// transactions, a part of Tx (InstanceTx, OperationTx, …). One database
// type per dialect (sqlite, postgres) satisfies all of them; Store and Tx
// only gather them. Services ask for the interfaces they use. A new table
// costs its types and interfaces here, its SQL in the two dialects and its
// storetest cases.
//
// Idempotency is enforced by unique constraints in the database, never by
// a read-then-write in application code, so it holds across goroutines,
// processes and replicas:
//   - instances: unique (order_id, order_line_id)
//   - operations: unique key
//   - nonces: unique nonce
//   - jobs: unique unique_key (when set)
//   - order notifications: unique (order_id, order_line_id)
//   - tenants: tenant_id; tenant apps: (tenant_id, app_id); tenant users:
//     (tenant_id, app_id, user_name); tenant orgs: (tenant_id, org_code)
//   - tenant events: unique event_id, unique (tenant_id, seq)
//   - license codes: (code, test); license devices: (code, test, device);
//     license grants: unique (kind, grant_key); license keys: generation,
//     unique kid
//   - usage records: unique idempotency_key; usage periods: unique
//     (instance_id, start); usage totals: instance_id; usage push
//     attempts: (push_id, attempt)
package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Errors shared by every implementation. Match them with errors.Is.
var (
	// ErrNotFound means the row does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrReplayedNonce means the nonce is already recorded and unexpired.
	ErrReplayedNonce = errors.New("store: replayed nonce")
	// ErrConflict means an optimistic-concurrency check failed: the row
	// changed since it was read (its Version moved on).
	ErrConflict = errors.New("store: concurrent update")
	// ErrUnavailable wraps failures to reach the database (connection
	// refused, database locked past the busy timeout, server restarting).
	// The server answers them with 000005 so KooGallery retries.
	ErrUnavailable = errors.New("store: database unavailable")
)

// InstanceStatus is the lifecycle state of an instance. The allowed
// transitions are documented in docs/lifecycle.md.
type InstanceStatus string

// Instance states.
const (
	StatusProvisioning InstanceStatus = "provisioning" // accepted, provisioner not finished
	StatusActive       InstanceStatus = "active"
	StatusFrozen       InstanceStatus = "frozen"
	StatusFailed       InstanceStatus = "failed"   // provisioning gave up; re-runnable
	StatusReleased     InstanceStatus = "released" // terminal
)

// OrderState tells whether the Query Order details of an instance are known.
type OrderState string

// Order states.
const (
	OrderPending OrderState = "pending" // Query Order not yet answered
	OrderFetched OrderState = "fetched"
)

// AppInfo is what the buyer needs to use the product. PasswordSealed is the
// password encrypted at rest (never the plain text); the server unseals it
// only to build a reply.
type AppInfo struct {
	FrontEndURL    string `json:"frontEndUrl,omitempty"`
	AdminURL       string `json:"adminUrl,omitempty"`
	UserName       string `json:"userName,omitempty"`
	PasswordSealed string `json:"passwordSealed,omitempty"`
	Memo           string `json:"memo,omitempty"`
}

// Instance is one purchased resource.
type Instance struct {
	ID          string
	OrderID     string // the purchase order
	OrderLineID string
	BusinessID  string // of the first newInstance call
	Test        bool   // created by a debug call (testFlag "1" or a MOCK* order)

	OrderState   OrderState
	ProductID    string
	SKUCode      string
	ChargingMode string // PERIOD, ONE_TIME, ON_DEMAND, ON_DEMAND_PKG
	PeriodType   string
	PeriodNumber int
	LinearValue  string
	CustomerID   string
	CustomerName string
	ExpireTime   time.Time // zero when unknown or not applicable
	OrderJSON    string    // the Query Order orderInfo as received, personal data masked

	Status     InstanceStatus
	FrozenBy   string // why it is frozen: "status" (updateInstanceStatus FREEZE, V1 instanceStatus), "expiry" (V1 expireInstance); "" when not frozen
	AppInfo    AppInfo
	UsageValue string    // cumulative pay-per-use usage, decimal text; "" when none
	UsageTime  time.Time // when UsageValue was measured
	LastError  string    // the provisioner's last error, for queryInstance and the admin API
	// FailCode is the business result code (000100–000107) with which the
	// vendor's product refused the purchase; "" unless it did. A refused
	// instance is failed and is not provisioned again by a repeat.
	FailCode   string
	CreatedAt  time.Time
	UpdatedAt  time.Time
	ReleasedAt time.Time
	Version    int64 // incremented by every update; UpdateInstance checks it
}

// OperationState is the progress of an idempotent operation.
type OperationState string

// Operation states.
const (
	OperationRunning OperationState = "running"
	OperationDone    OperationState = "done"
)

// Operation is the idempotency record of one mutating call: the first call
// with a given Key inserts it; repeats read it. Response is the exact JSON
// body that was answered, so a repeat gets byte-identical content.
type Operation struct {
	Key        string // e.g. "refreshInstance:ORDER:LINE:RENEWAL"; see package instance
	Activity   string
	InstanceID string
	// Fingerprint is a digest of the request's meaningful fields: a later
	// call with the same Key but another Fingerprint is not a repeat.
	Fingerprint string
	State       OperationState
	ResultCode  string
	Response    []byte
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Call is one inbound request in the ledger ("production interface
// messages"). Request is the body with personal data and secrets masked.
type Call struct {
	ID          int64
	RequestID   string
	Interface   string // "v2", "kit", "v1", "license"
	Activity    string
	IdemKey     string // the operation key, "" for reads
	InstanceID  string
	OrderID     string
	OrderLineID string
	TenantID    string // the tenant a Kit call is about, "" for other calls
	Test        bool
	Remote      string
	Request     string
	Response    string
	ResultCode  string
	ResultMsg   string
	HTTPStatus  int
	Latency     time.Duration // the server's handling of the call; stored to the microsecond
	Repeat      bool          // answered from a stored outcome
	CreatedAt   time.Time
}

// CallFilter selects calls for the admin API. Zero fields match all.
type CallFilter struct {
	Activity   string
	InstanceID string
	OrderID    string
	TenantID   string
	ResultCode string
	Since      time.Time
	Until      time.Time
	BeforeID   int64 // for paging: only calls with ID < BeforeID
	Limit      int   // 0 means 100; at most 1000
}

// InstanceFilter selects instances for the admin API.
type InstanceFilter struct {
	Status  InstanceStatus
	OrderID string
	Test    *bool
	AfterID string // paging by ID, ascending
	Limit   int    // 0 means 100; at most 1000
}

// JobState is the state of a background job.
type JobState string

// Job states.
const (
	JobAvailable JobState = "available" // waiting for RunAt
	JobRunning   JobState = "running"   // claimed by a worker until LockedUntil
	JobDone      JobState = "done"
	JobDead      JobState = "dead" // gave up after MaxAttempts; re-runnable from the admin API
)

// Job is durable background work: asynchronous provisioning, vendor
// notifications, Query Order retries. A job is inserted in the same
// transaction as the state change that causes it.
type Job struct {
	ID          int64
	Kind        string // e.g. "provision", "notify"
	UniqueKey   string // optional; a second job with the same key is not inserted
	Payload     []byte // JSON
	State       JobState
	Attempts    int // attempts started so far
	MaxAttempts int
	RunAt       time.Time // available: when it is due; claimed since: when its latest attempt began
	LockedBy    string
	LockedUntil time.Time
	LastError   string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// JobFilter selects jobs for the admin API.
type JobFilter struct {
	Kind     string
	State    JobState
	BeforeID int64
	Limit    int // 0 means 100; at most 1000
}

// OrderNotificationStatus is how far an order notification has come.
type OrderNotificationStatus string

// Order notification states.
const (
	NotificationPending   OrderNotificationStatus = "pending"   // Query Order not yet answered, or the vendor not yet told
	NotificationDelivered OrderNotificationStatus = "delivered" // order.notified reached the vendor
	NotificationFailed    OrderNotificationStatus = "failed"    // gave up; re-runnable from the admin API
)

// OrderNotification is one orderNotify call KooGallery made: the order
// line it names and what koobridge learnt and did about it.
type OrderNotification struct {
	ID          int64
	OrderID     string
	OrderLineID string
	Test        bool // testFlag "1", or a MOCK* order
	Status      OrderNotificationStatus
	OrderJSON   string // the Query Order orderInfo, personal data masked; "" until fetched
	LastError   string
	CreatedAt   time.Time
	UpdatedAt   time.Time
	Version     int64 // incremented by every update; UpdateOrderNotification checks it
}

// OrderNotificationFilter selects order notifications for the admin API.
type OrderNotificationFilter struct {
	Status   OrderNotificationStatus
	OrderID  string
	BeforeID int64 // for paging: only notifications with ID < BeforeID, newest first
	Limit    int   // 0 means 100; at most 1000
}

// InstanceReader reads instances, inside and outside transactions.
type InstanceReader interface {
	Instance(ctx context.Context, id string) (Instance, error)
	InstanceByOrderLine(ctx context.Context, orderID, orderLineID string) (Instance, error)
}

// Instances reads instances outside transactions.
type Instances interface {
	InstanceReader
	// Instances lists instances by ID.
	Instances(ctx context.Context, f InstanceFilter) ([]Instance, error)
	// InstancesByID reads the instances with the given ids, in one query
	// (a queryInstance asks for up to 100), each once and in no particular
	// order; an id with no instance is left out.
	InstancesByID(ctx context.Context, ids []string) ([]Instance, error)
}

// InstanceTx writes instances in a transaction.
type InstanceTx interface {
	InstanceReader
	// InsertInstance inserts inst unless an instance with the same
	// (OrderID, OrderLineID) exists. It reports whether it inserted; when
	// it did not, the caller reads the existing row.
	InsertInstance(ctx context.Context, inst Instance) (inserted bool, err error)
	// UpdateInstance writes every mutable field of inst when the stored
	// Version equals inst.Version, and sets the stored Version to
	// inst.Version+1 (ErrConflict otherwise, ErrNotFound if absent).
	UpdateInstance(ctx context.Context, inst Instance) error
}

// OperationReader reads idempotency records, inside and outside
// transactions.
type OperationReader interface {
	Operation(ctx context.Context, key string) (Operation, error)
}

// OperationTx writes idempotency records in a transaction.
type OperationTx interface {
	OperationReader
	// InsertOperation inserts op unless an operation with the same Key
	// exists, and reports whether it inserted. An empty State is stored as
	// running.
	InsertOperation(ctx context.Context, op Operation) (inserted bool, err error)
	// FinishOperation sets State done, ResultCode and Response of key
	// (ErrNotFound if absent).
	FinishOperation(ctx context.Context, key, resultCode string, response []byte) error
	// ReopenOperation sets key back to running, with no result, and its
	// UpdatedAt to now (the wall clock when now is zero; ErrNotFound if
	// absent): a new attempt at the same operation has begun.
	ReopenOperation(ctx context.Context, key string, now time.Time) error
}

// JobTx enqueues jobs in a transaction, with the state change that causes
// them.
type JobTx interface {
	// EnqueueJob inserts job (State available) and returns its ID. If
	// job.UniqueKey is set and a job with that key exists, nothing is
	// inserted and inserted is false.
	EnqueueJob(ctx context.Context, job Job) (id int64, inserted bool, err error)
	// EnqueueClaimedJob inserts job already claimed by worker, as ClaimJob
	// would leave it: running, locked until now+lease, its first attempt
	// begun at now (Attempts 1, RunAt now); job's State, Attempts, RunAt
	// and locks are ignored. It returns the job as stored. If
	// job.UniqueKey is set and a job with that key exists, nothing is
	// inserted, inserted is false and the job returned is the existing
	// one, as it stands. A call that runs its job itself within its budget
	// inserts it so and needs no claim of its own; should its process die,
	// ClaimJob gives the job to another worker once the lease expires.
	EnqueueClaimedJob(ctx context.Context, job Job, worker string, now time.Time, lease time.Duration) (j Job, inserted bool, err error)
	// CompleteJob marks a job that worker holds (running and locked by
	// worker) done, in the transaction of the handler's last change, as
	// Jobs.CompleteJob does on its own: ErrConflict when worker no longer
	// holds it (another worker took it over after its lease), ErrNotFound
	// when it does not exist. The caller then rolls the transaction back.
	CompleteJob(ctx context.Context, id int64, worker string) error
}

// OrderNotificationReader reads order notifications, inside and outside
// transactions.
type OrderNotificationReader interface {
	// OrderNotification reads the notification of one order line;
	// ErrNotFound if there is none.
	OrderNotification(ctx context.Context, orderID, orderLineID string) (OrderNotification, error)
}

// OrderNotifications reads order notifications outside transactions.
type OrderNotifications interface {
	OrderNotificationReader
	// OrderNotifications lists notifications, newest first.
	OrderNotifications(ctx context.Context, f OrderNotificationFilter) ([]OrderNotification, error)
}

// OrderNotificationTx writes order notifications in a transaction.
type OrderNotificationTx interface {
	OrderNotificationReader
	// InsertOrderNotification inserts n unless a notification of the same
	// (OrderID, OrderLineID) exists, and reports whether it inserted. The
	// store assigns the ID (n.ID is ignored); an empty Status is stored as
	// pending, zero times as now; Version is stored as given.
	InsertOrderNotification(ctx context.Context, n OrderNotification) (inserted bool, err error)
	// UpdateOrderNotification writes Status, OrderJSON, LastError and
	// UpdatedAt of the notification of (n.OrderID, n.OrderLineID) when the
	// stored Version equals n.Version, and sets the stored Version to
	// n.Version+1 (ErrConflict otherwise, ErrNotFound if absent).
	UpdateOrderNotification(ctx context.Context, n OrderNotification) error
}

// Tx is a database transaction: the transactional part of every entity.
// Its methods must only be used inside the function given to Txer.Tx.
type Tx interface {
	InstanceTx
	OperationTx
	JobTx
	OrderNotificationTx
	TenantTx
	LicenseTx
	UsageTx
}

// Txer runs transactions.
type Txer interface {
	// Tx runs fn in one transaction and commits if fn returns nil. It may
	// run fn more than once when the database asks for a retry
	// (serialisation failure, SQLITE_BUSY), so fn must not have effects
	// outside the transaction.
	Tx(ctx context.Context, fn func(ctx context.Context, tx Tx) error) error
}

// Nonces persists the nonces of signed calls, so a replay is caught after
// a restart and across replicas.
type Nonces interface {
	// RememberNonce records nonce until expires; ErrReplayedNonce if it is
	// recorded and unexpired. Atomic across processes.
	RememberNonce(ctx context.Context, nonce string, expires time.Time) error
	// DeleteExpiredNonces removes nonces that expired before now.
	DeleteExpiredNonces(ctx context.Context, now time.Time) (int64, error)
}

// Calls is the ledger of inbound calls.
type Calls interface {
	// InsertCall appends a call to the ledger and returns its ID.
	InsertCall(ctx context.Context, c Call) (int64, error)
	// InsertCalls appends calls to the ledger in one transaction, in
	// order, as InsertCall would one by one: all or none.
	InsertCalls(ctx context.Context, calls []Call) error
	// Calls lists calls, newest first.
	Calls(ctx context.Context, f CallFilter) ([]Call, error)
	// DeleteCalls deletes at most limit calls of kind created before
	// before, oldest first, in one statement, and reports how many it
	// deleted: one batch of the ledger's retention sweep.
	DeleteCalls(ctx context.Context, kind CallKind, before time.Time, limit int) (int64, error)
}

// CallKind splits the ledger for retention: rejected calls may be kept for
// a shorter time than answered ones.
type CallKind string

// The kinds of calls. A call is rejected when nothing was written for it:
// it was answered 000001 or 000002 and carries no idempotency key (no
// stored outcome). That is a call refused before its family's service saw
// it (authentication failed, malformed or ambiguous input, an unknown
// path, method or activity), or one its service refused as conflicting
// with what is stored, in a transaction rolled back (a second purchase of
// an order line with other values, a renewal already applied with other
// values). Every other call is answered.
const (
	CallsAnswered CallKind = "answered"
	CallsRejected CallKind = "rejected"
)

// RejectedCallSQL is the SQL condition on a calls row that is true of a
// rejected call (see CallKind); both dialects use it.
const RejectedCallSQL = `(result_code IN ('000001', '000002') AND idem_key = '')`

// Condition is the SQL condition on a calls row that selects the calls of
// kind k, the same in both dialects: RejectedCallSQL or its negation,
// word for word the condition of k's partial index (schema version 9),
// which SQLite uses only for a query that holds it as written.
func (k CallKind) Condition() (string, error) {
	switch k {
	case CallsRejected:
		return RejectedCallSQL, nil
	case CallsAnswered:
		return `NOT ` + RejectedCallSQL, nil
	}
	return "", fmt.Errorf("store: unknown kind of call %q", k)
}

// SuccessCode is the result code of a call that succeeded, most of the
// ledger.
const SuccessCode = "000000"

// UnsuccessfulCallSQL is the SQL condition on a calls row that is true of
// a call answered with a result code other than SuccessCode; both
// dialects use it. It is word for word the condition of the ledger's
// partial index by result code (schema version 10), which SQLite uses
// only for a query that holds it as written: a list of calls by any other
// code adds it to its filter to walk that index.
const UnsuccessfulCallSQL = `result_code <> '` + SuccessCode + `'`

// Rejected reports whether c is of kind CallsRejected, as RejectedCallSQL
// decides it in the database.
func (c Call) Rejected() bool {
	return (c.ResultCode == "000001" || c.ResultCode == "000002") && c.IdemKey == ""
}

// Jobs is the durable job queue (enqueueing is JobTx's, in the
// transaction of the change that causes the job).
type Jobs interface {
	// ClaimJob takes the oldest job of one of kinds that is available with
	// RunAt <= now, or running with LockedUntil < now (its worker died),
	// marks it running for worker until now+lease, sets RunAt to now,
	// increments Attempts and returns it. ErrNotFound when there is none.
	// Two workers never claim the same job.
	ClaimJob(ctx context.Context, worker string, kinds []string, now time.Time, lease time.Duration) (Job, error)
	// ClaimJobByID claims one specific job if it is available (whatever its
	// RunAt) or its lease expired, as ClaimJob does. ErrNotFound when it does
	// not exist or another worker holds it. A newInstance call uses it to run
	// the first provisioning attempt itself, within its time budget, while
	// holding the lease so no other worker runs the same job.
	ClaimJobByID(ctx context.Context, id int64, worker string, now time.Time, lease time.Duration) (Job, error)
	// CompleteJob marks a job claimed by worker done.
	CompleteJob(ctx context.Context, id int64, worker string) error
	// RetryJob puts a job claimed by worker back to available at runAt with
	// the error text; DeadJob marks it dead. Both fail with ErrConflict when
	// worker no longer holds the job (its lease expired and another took it).
	RetryJob(ctx context.Context, id int64, worker string, runAt time.Time, lastErr string) error
	DeadJob(ctx context.Context, id int64, worker string, lastErr string) error
	// ReviveJob makes a dead (or done) job available now with fresh
	// attempts: the admin API's re-run.
	ReviveJob(ctx context.Context, id int64, now time.Time) error
	Job(ctx context.Context, id int64) (Job, error)
	Jobs(ctx context.Context, f JobFilter) ([]Job, error)
}

// Store is every entity of one database, as one dialect implements it.
// Implementations are safe for concurrent use by many goroutines and
// processes, and bound every operation (a whole Tx included) by their
// operation timeout: when that deadline, not the caller's, ends an
// operation, the error wraps ErrUnavailable.
type Store interface {
	Instances
	OperationReader
	OrderNotifications
	Tenants
	SSO
	Licenses
	Usage
	Calls
	Nonces
	Jobs
	Txer

	// Ping checks the database is reachable (for /readyz).
	Ping(ctx context.Context) error
	Close() error
}

// DefaultOpTimeout bounds one store operation (a whole Tx included) unless
// the opener is told otherwise. KooGallery gives up after 5 s and retries;
// the bound exists so that a database that stops answering (a network cut
// that drops packets, a failover behind a virtual IP) turns into
// ErrUnavailable within seconds instead of holding connections until TCP
// gives up, minutes later.
const DefaultOpTimeout = 30 * time.Second
