package store

import (
	"context"
	"time"
)

// This file holds pay-per-use metering (saas-v2.md §7.2): the usage records
// the vendor's product reports, their sum per instance and billing period,
// the usage pushes that carry those sums to KooGallery, and every attempt
// of each push with KooGallery's answer.
//
// A record is written with its period's sum in one transaction, so a sum
// is never short of or beyond its records. Idempotency rests on keys:
//   - usage records: unique idempotency_key
//   - usage periods: unique (instance_id, start)
//   - usage totals: instance_id
//
// Values are integers in ten-thousandths (KooGallery takes at most four
// decimals), so sums are exact.

// UsagePeriodState is what became of one instance's billing period.
type UsagePeriodState string

// Usage period states. Open and test periods take more usage; the others
// are sealed: their Total no longer changes.
const (
	UsageOpen     UsagePeriodState = "open"     // collecting usage; not pushed yet
	UsageTest     UsagePeriodState = "test"     // a debug instance's usage: summed, never pushed
	UsagePushing  UsagePeriodState = "pushing"  // sealed into push PushID, KooGallery's answer awaited
	UsageAccepted UsagePeriodState = "accepted" // KooGallery took the record
	UsageRejected UsagePeriodState = "rejected" // KooGallery refused the record; Code and Message say why
	UsageDead     UsagePeriodState = "dead"     // too old for KooGallery (21 days): never pushed, or refused with MKT.9004
)

// UsageRecord is one record the vendor's product reported.
type UsageRecord struct {
	ID             int64 // assigned by the store
	IdempotencyKey string
	InstanceID     string
	Value          int64     // in ten-thousandths, > 0
	Time           time.Time // when the usage happened
	PeriodStart    time.Time // the start of the period it is billed in
	// Carried says the record is billed in a later period than its
	// Time's: that one had been sealed when the record arrived.
	Carried   bool
	CreatedAt time.Time
}

// UsagePeriodKey names one billing period of one instance.
type UsagePeriodKey struct {
	InstanceID string
	Start      time.Time
}

// UsagePeriod is one billing period of one instance: the sum of the
// records billed in it and what became of it.
type UsagePeriod struct {
	ID         int64 // assigned by the store
	InstanceID string
	Start, End time.Time
	Total      int64 // in ten-thousandths
	Records    int64 // how many records are summed in Total
	State      UsagePeriodState
	// MeteringSN is the push record's metering_sn, derived from the
	// instance and the period so every retry carries the same one.
	MeteringSN string
	PushID     int64  // the push that carries it; 0 while open
	Code       string // KooGallery's answer for its record (MKT.0000 when accepted)
	Message    string
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// Key returns the period's key.
func (p UsagePeriod) Key() UsagePeriodKey { return UsagePeriodKey{p.InstanceID, p.Start} }

// UsageTotal is everything an instance has used: the sum of all its
// records, for queryInstance's usageInfo.
type UsageTotal struct {
	InstanceID string
	Total      int64 // in ten-thousandths
	Records    int64
	LastTime   time.Time // the latest record's Time
}

// UsagePushState is how far a usage push has come.
type UsagePushState string

// Usage push states.
const (
	UsagePushPending UsagePushState = "pending" // not yet answered for good: its send job retries
	UsagePushDone    UsagePushState = "done"    // answered: its periods say what became of each record
	// UsagePushSplit: refused as a whole for the sake of some record; its
	// records went out again one per push (children with ParentID).
	UsagePushSplit UsagePushState = "split"
)

// Usage push APIs.
const (
	UsageAPINew = "new" // SaaS V2 products: signature, ts and nonce headers, and APIG
	UsageAPIOld = "old" // SaaS V1 products: APIG only, records with product_id
)

// UsagePush is one usage-push request to KooGallery: its exact body,
// built once, so every attempt sends the same bytes.
type UsagePush struct {
	ID       int64 // assigned by the store
	API      string
	ParentID int64 // the push it was split from; 0 for none
	Body     []byte
	Records  int
	State    UsagePushState
	Attempts int
	Code     string // KooGallery's last answer ("" before any)
	Message  string
	// CreatedAt, UpdatedAt: zero values are stored as now.
	CreatedAt time.Time
	UpdatedAt time.Time
}

// UsagePushAttempt is one try at sending a push, with what came back.
type UsagePushAttempt struct {
	PushID     int64
	Attempt    int // 1 for the first
	At         time.Time
	Duration   time.Duration // stored to the microsecond
	HTTPStatus int           // 0 when no answer came (transport failure, timeout)
	Code       string        // error_code, or "" without an answer
	Message    string        // error_msg, or the transport error
}

// UsagePeriodFilter selects periods for the admin API, newest ID first.
// Zero fields match all.
type UsagePeriodFilter struct {
	InstanceID string
	State      UsagePeriodState
	PushID     int64
	BeforeID   int64
	Limit      int // 0 means 100; at most 1000
}

// UsageRecordFilter selects records, newest ID first.
type UsageRecordFilter struct {
	InstanceID  string
	PeriodStart time.Time // zero: every period
	BeforeID    int64
	Limit       int // 0 means 100; at most 1000
}

// UsagePushFilter selects pushes, newest first.
type UsagePushFilter struct {
	State    UsagePushState
	BeforeID int64
	Limit    int // 0 means 100; at most 1000
}

// MaxUsagePeriodTotal is the most a period may sum, in ten-thousandths:
// 99999999.9999, the Double(12,4) of one usage record KooGallery takes.
const MaxUsagePeriodTotal = 999_999_999_999

// UsageReader reads metering state, inside and outside transactions.
type UsageReader interface {
	// UsagePeriod reads one period; ErrNotFound if absent.
	UsagePeriod(ctx context.Context, k UsagePeriodKey) (UsagePeriod, error)
	// UsagePush reads one push; ErrNotFound if absent. Inside a
	// transaction on PostgreSQL it locks the push's row until the
	// transaction ends, so two senders of one push take turns.
	UsagePush(ctx context.Context, id int64) (UsagePush, error)
	// UsagePeriodsOfPush lists the periods push id carries, by instance
	// and start.
	UsagePeriodsOfPush(ctx context.Context, id int64) ([]UsagePeriod, error)
	// UsageRecordsByKey reads the records with the given idempotency keys;
	// keys with no record are absent from the map.
	UsageRecordsByKey(ctx context.Context, keys []string) (map[string]UsageRecord, error)
}

// Usage reads metering state outside transactions.
type Usage interface {
	UsageReader
	UsagePeriods(ctx context.Context, f UsagePeriodFilter) ([]UsagePeriod, error)
	UsageRecords(ctx context.Context, f UsageRecordFilter) ([]UsageRecord, error)
	// UsageTotals reads the totals of the given instances; instances
	// without usage are absent from the map.
	UsageTotals(ctx context.Context, instanceIDs []string) (map[string]UsageTotal, error)
	UsagePushes(ctx context.Context, f UsagePushFilter) ([]UsagePush, error)
	// UsagePushAttempts lists the attempts of push id, first first.
	UsagePushAttempts(ctx context.Context, id int64) ([]UsagePushAttempt, error)
	// InsertUsagePushAttempt appends a (a zero At stored as now; an
	// attempt number already recorded is replaced by a), and sets the
	// push's Attempts to a.Attempt unless already more, and its Code and
	// Message to a's (UpdatedAt now), atomically. ErrNotFound, and nothing
	// written, if the push is absent.
	InsertUsagePushAttempt(ctx context.Context, a UsagePushAttempt) error
	// UsagePeriodCounts counts the periods of each state, of one instance
	// or, with instanceID "", of all; states without periods are absent.
	// It reads the periods (all of them for ""), never the records.
	UsagePeriodCounts(ctx context.Context, instanceID string) (map[UsagePeriodState]int64, error)
	// OldestUnpushedUsage returns the End of the oldest period that is
	// open or pushing; ok is false when there is none. Two index probes,
	// cheap enough for every metrics scrape.
	OldestUnpushedUsage(ctx context.Context) (end time.Time, ok bool, err error)
}

// UsageTx writes metering state in a transaction.
type UsageTx interface {
	UsageReader
	// InsertUsageRecords inserts each record (ID ignored, zero CreatedAt
	// stored as now) unless one with its IdempotencyKey exists;
	// inserted[i] reports whether recs[i] was. A key repeated within recs
	// is inserted from its first occurrence; the later ones report false.
	// Concurrent inserts of one key insert it once (the later waits for
	// the earlier's transaction). Any number of records; up to 1000 is one
	// statement.
	InsertUsageRecords(ctx context.Context, recs []UsageRecord) (inserted []bool, err error)
	// CarryUsageRecords bills the records with the given idempotency keys
	// in the period starting at start, marking them Carried. Absent keys
	// are ignored.
	CarryUsageRecords(ctx context.Context, keys []string, start time.Time) error
	// AddUsage adds p.Total and p.Records to the period (p.InstanceID,
	// p.Start) if it is open or test, creating it with p's End,
	// MeteringSN and State (open or test; empty is open; another state is
	// an error) if absent. ok is false, and nothing changes, when the
	// period exists sealed (any other state), or when its Total would
	// pass MaxUsagePeriodTotal (a new period is created whatever p.Total:
	// the caller keeps it within). On PostgreSQL it waits for
	// a sealer holding the period and then sees its state: a sum is in
	// the sealed total or refused, never both.
	AddUsage(ctx context.Context, p UsagePeriod) (ok bool, err error)
	// AddUsages is AddUsage for many periods in one statement (a batch of
	// records spans many instances): ok[i] reports whether ps[i] was
	// added. Entries naming one period are added together: their Total
	// and Records summed, the first one's End, MeteringSN and State
	// creating it.
	AddUsages(ctx context.Context, ps []UsagePeriod) (ok []bool, err error)
	// AddUsageTotal adds total and records to the instance's total,
	// creating it if absent, and moves its LastTime to last if later.
	AddUsageTotal(ctx context.Context, instanceID string, total, records int64, last time.Time) error
	// AddUsageTotals is AddUsageTotal for many instances in one statement:
	// each entry's Total, Records and LastTime. Entries of one instance
	// are added together.
	AddUsageTotals(ctx context.Context, totals []UsageTotal) error
	// DueUsagePeriods lists at most limit (0 means 100; at most 1000) open
	// periods with End <= before, oldest End (then ID) first, and keeps
	// other transactions from sealing them or adding to them until this
	// one ends (PostgreSQL: FOR UPDATE SKIP LOCKED, so a concurrent sealer
	// gets others, and a period an ingestion holds is left for the next
	// round; SQLite: transactions are exclusive). Test periods are never
	// due.
	DueUsagePeriods(ctx context.Context, before time.Time, limit int) ([]UsagePeriod, error)
	// InsertUsagePush inserts p (ID ignored; State pending when empty,
	// zero CreatedAt and UpdatedAt now) and returns its ID.
	InsertUsagePush(ctx context.Context, p UsagePush) (int64, error)
	// UpdateUsagePush writes State, Code and Message of push p.ID
	// (UpdatedAt now); ErrNotFound if absent.
	UpdateUsagePush(ctx context.Context, p UsagePush) error
	// SetUsagePeriods sets State, PushID, Code and Message of the periods
	// named by keys (UpdatedAt now), whatever their state. Absent keys are
	// ignored.
	SetUsagePeriods(ctx context.Context, keys []UsagePeriodKey, state UsagePeriodState, pushID int64, code, msg string) error
}
