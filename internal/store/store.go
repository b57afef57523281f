// Package store holds koobridge's durable state: instances, the ledger of
// calls, idempotency records, persisted nonces and the job queue. Store is
// the interface; sqlite (and later postgres) implement it.
//
// Idempotency is enforced by unique constraints in the database, never by
// a read-then-write in application code, so it holds across goroutines,
// processes and replicas:
//   - instances: unique (order_id, order_line_id)
//   - operations: unique key
//   - nonces: unique nonce
//   - jobs: unique unique_key (when set)
package store

import (
	"context"
	"errors"
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
	FrozenBy   string // why it is frozen: "status" (updateInstanceStatus FREEZE); "" when not frozen
	AppInfo    AppInfo
	UsageValue string    // cumulative pay-per-use usage, decimal text; "" when none
	UsageTime  time.Time // when UsageValue was measured
	LastError  string    // the provisioner's last error, for queryInstance and the admin API
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
	Key        string // e.g. "refreshInstance:ORDER:LINE:RENEWAL"; see lifecycle
	Activity   string
	InstanceID string
	State      OperationState
	ResultCode string
	Response   []byte
	CreatedAt  time.Time
	UpdatedAt  time.Time
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
	Test        bool
	Remote      string
	Request     string
	Response    string
	ResultCode  string
	ResultMsg   string
	HTTPStatus  int
	Latency     time.Duration
	Repeat      bool // answered from a stored outcome
	CreatedAt   time.Time
}

// CallFilter selects calls for the admin API. Zero fields match all.
type CallFilter struct {
	Activity   string
	InstanceID string
	OrderID    string
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
	RunAt       time.Time
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

// Reader holds the queries available inside and outside transactions.
type Reader interface {
	Instance(ctx context.Context, id string) (Instance, error)
	InstanceByOrderLine(ctx context.Context, orderID, orderLineID string) (Instance, error)
	Operation(ctx context.Context, key string) (Operation, error)
}

// Tx is a database transaction. Its methods must only be used inside the
// function given to Store.Tx.
type Tx interface {
	Reader

	// InsertInstance inserts inst unless an instance with the same
	// (OrderID, OrderLineID) exists. It reports whether it inserted; when
	// it did not, the caller reads the existing row.
	InsertInstance(ctx context.Context, inst Instance) (inserted bool, err error)
	// UpdateInstance writes every mutable field of inst when the stored
	// Version equals inst.Version, and sets the stored Version to
	// inst.Version+1 (ErrConflict otherwise, ErrNotFound if absent).
	UpdateInstance(ctx context.Context, inst Instance) error

	// InsertOperation inserts op unless an operation with the same Key
	// exists, and reports whether it inserted.
	InsertOperation(ctx context.Context, op Operation) (inserted bool, err error)
	// FinishOperation sets State done, ResultCode and Response of key.
	FinishOperation(ctx context.Context, key, resultCode string, response []byte) error

	// EnqueueJob inserts job (State available) and returns its ID. If
	// job.UniqueKey is set and a job with that key exists, nothing is
	// inserted and inserted is false.
	EnqueueJob(ctx context.Context, job Job) (id int64, inserted bool, err error)
}

// Store is the durable state of one koobridge deployment. Implementations
// are safe for concurrent use by many goroutines and processes.
type Store interface {
	Reader

	// Tx runs fn in one transaction and commits if fn returns nil. It may
	// run fn more than once when the database asks for a retry
	// (serialisation failure, SQLITE_BUSY), so fn must not have effects
	// outside the transaction.
	Tx(ctx context.Context, fn func(ctx context.Context, tx Tx) error) error

	// RememberNonce records nonce until expires; ErrReplayedNonce if it is
	// recorded and unexpired. Atomic across processes.
	RememberNonce(ctx context.Context, nonce string, expires time.Time) error
	// DeleteExpiredNonces removes nonces that expired before now.
	DeleteExpiredNonces(ctx context.Context, now time.Time) (int64, error)

	// InsertCall appends a call to the ledger and returns its ID.
	InsertCall(ctx context.Context, c Call) (int64, error)
	// Calls lists calls, newest first.
	Calls(ctx context.Context, f CallFilter) ([]Call, error)
	// Instances lists instances by ID.
	Instances(ctx context.Context, f InstanceFilter) ([]Instance, error)

	// ClaimJob takes the oldest job of one of kinds that is available with
	// RunAt <= now, or running with LockedUntil < now (its worker died),
	// marks it running for worker until now+lease, increments Attempts and
	// returns it. ErrNotFound when there is none. Two workers never claim
	// the same job.
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

	// Ping checks the database is reachable (for /readyz).
	Ping(ctx context.Context) error
	Close() error
}
