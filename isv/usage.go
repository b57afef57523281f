package isv

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/koobridge/koobridge/internal/usage"
	"github.com/koobridge/koobridge/internal/usageapi"
)

// UsagePath is where UsageHandler answers: the usage API of the vendor's
// product (docs/metering.md).
const UsagePath = usageapi.Path

// Defaults of UsageConfig.
const (
	// DefaultUsagePushInterval is how often closed billing periods are
	// sealed and pushed to KooGallery.
	DefaultUsagePushInterval = usage.DefaultPushInterval
	// DefaultUsageSettle is how long after a period ends its usage may
	// still arrive before the period is pushed.
	DefaultUsageSettle = usage.DefaultSettle
	// MinUsageTokenLen is the shortest usage API token accepted.
	MinUsageTokenLen = 16
)

// DefaultUsageDayZone is the zone whose midnights bound daily billing
// periods: China time, UTC+8 (which zone KooGallery uses is UNCONFIRMED).
var DefaultUsageDayZone = usage.DefaultDayZone

// UsageConfig configures pay-per-use metering (docs/metering.md). Zero
// fields take their defaults.
type UsageConfig struct {
	// Tokens are the bearer tokens of the usage API, each at least
	// MinUsageTokenLen characters; several during a rotation. None: the
	// API answers 404 (ReportUsage works all the same).
	Tokens []string
	// DailyProducts lists the product IDs billed per day; the others are
	// billed per hour.
	DailyProducts []string
	// DayZone bounds daily periods; nil means DefaultUsageDayZone.
	DayZone *time.Location
	// PushInterval is how often closed periods are pushed. Default
	// DefaultUsagePushInterval.
	PushInterval time.Duration
	// Settle is how long after a period ends it is pushed. Default
	// DefaultUsageSettle.
	Settle time.Duration
}

func (c UsageConfig) check() error {
	if c.PushInterval < 0 || c.Settle < 0 {
		return errors.New("isv: negative usage push interval or settle time")
	}
	for i, t := range c.Tokens {
		if len(t) < MinUsageTokenLen {
			return fmt.Errorf("isv: usage token %d is shorter than %d characters", i+1, MinUsageTokenLen)
		}
	}
	return nil
}

// UsageRecord is one usage record of the vendor's product, for
// ReportUsage.
type UsageRecord struct {
	// IdempotencyKey names the record (1 to 128 printable ASCII
	// characters): sending it again is safe.
	IdempotencyKey string
	// InstanceID is the pay-per-use instance the usage belongs to.
	InstanceID string
	// Value is the usage as decimal text: more than 0, at most 4
	// decimals ("1.5").
	Value string
	// Time is when the usage happened.
	Time time.Time
}

// Statuses of a UsageResult.
const (
	UsageAccepted  = usage.Accepted  // stored now
	UsageDuplicate = usage.Duplicate // stored before with the same content: nothing added
	UsageRejected  = usage.Rejected  // not stored; Error says why
)

// UsageResult is the answer for one record.
type UsageResult struct {
	IdempotencyKey string
	Status         string // UsageAccepted, UsageDuplicate or UsageRejected
	Error          string // why it was rejected
}

// ErrUsageBatch is ReportUsage's error for a batch it does not take as a
// whole: no records, or more than 1000. Sending it again does not help;
// any other error (the database unavailable) is worth sending the same
// batch again for.
var ErrUsageBatch = usage.ErrBatch

// ReportUsage stores the usage records of the vendor's product (1 to
// 1000) and answers each, in order: the same as the usage API, from Go. A
// record answered accepted or duplicate is durable. An error means none
// was acknowledged: one wrapping ErrUsageBatch is the batch's size; for
// any other (the database unavailable) send the same batch again later,
// the keys make it safe.
func (s *Server) ReportUsage(ctx context.Context, recs []UsageRecord) ([]UsageResult, error) {
	in := make([]usage.Input, len(recs))
	for i, r := range recs {
		in[i] = usage.Input{IdempotencyKey: r.IdempotencyKey, InstanceID: r.InstanceID, Value: r.Value, Time: r.Time}
	}
	res, err := s.usage.Ingest(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("isv: report usage: %w", err)
	}
	out := make([]UsageResult, len(res))
	for i, r := range res {
		out[i] = UsageResult{IdempotencyKey: r.IdempotencyKey, Status: r.Status, Error: r.Error}
	}
	return out, nil
}

// UsageHandler returns the usage API (POST UsagePath, docs/metering.md).
// Mount it at UsagePath. Without UsageConfig.Tokens it answers 404.
func (s *Server) UsageHandler() http.Handler { return s.usageAPI }
