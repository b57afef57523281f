// Package usage meters pay-per-use instances (saas-v2.md §7.2,
// saas-v1-joint-login.md §A.5.8): it takes the usage records the vendor's
// product reports, sums them per instance and billing period as they
// arrive, and pushes one record per period to KooGallery once the period
// has closed, with a metering_sn derived from the instance and the period,
// so that every retry of a period is the same record and KooGallery keeps
// it once.
//
// A record is durable, and added to its period's sum, in the transaction
// that answers it. Usage that arrives for a period already pushed is
// billed in the instance's current period (it is never a second record for
// a pushed period). Pushes run on the job queue: a job seals the closed
// periods every push interval (after downtime it seals every period missed,
// at once), one push per API per 1000 records, each sent by its own job
// that retries with backoff until KooGallery answers for good. A period
// KooGallery can no longer take (its begin older than 21 days) is dead.
package usage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/koobridge/koobridge/internal/jobs"
	"github.com/koobridge/koobridge/internal/openapi"
	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/protocol"
)

// Defaults of Config.
const (
	DefaultPushInterval = time.Minute
	DefaultSettle       = time.Minute
)

// DefaultDayZone is the zone of daily billing periods: China time (UTC+8),
// KooGallery's. Which zone its daily billing uses is UNCONFIRMED.
var DefaultDayZone = time.FixedZone("UTC+8", 8*60*60)

// Limits of KooGallery's usage push (saas-v2.md §7.2).
const (
	// MaxAge is how old a period's begin_time may be when KooGallery
	// receives it (MKT.9004 beyond).
	MaxAge = 21 * 24 * time.Hour
	// maxPushRecords is the most records one push carries.
	maxPushRecords = 1000
	// MaxBatch is the most records one Ingest takes.
	MaxBatch = 1000
	// maxFuture is how far ahead of the clock a record's time may be.
	maxFuture = time.Minute
)

// Job kinds.
const (
	KindSeal = "usage.seal" // seal the closed periods into pushes
	KindSend = "usage.send" // send one push
)

// sendAttempts is the attempts of a send job: with the backoff's
// 10-minute cap, more than KooGallery's 21 days, after which it answers
// MKT.9004 and the periods are dead.
const sendAttempts = 5000

// Pusher sends usage pushes: *openapi.Client.
type Pusher interface {
	PushUsage(ctx context.Context, key string, body []byte) (openapi.UsagePushResult, error)
	PushUsageOld(ctx context.Context, body []byte) (openapi.UsagePushResult, error)
}

// Store is what the service needs of the database.
type Store interface {
	store.Instances
	store.Usage
	store.Txer
}

// Config configures a Service.
type Config struct {
	Store Store
	// Pusher sends the pushes; nil keeps them pending (retried) until
	// koobridge is configured with Open API credentials.
	Pusher Pusher
	// Key is the key bound to the basic interfaces, which signs the new
	// push's signature header. Required.
	Key string
	// Jobs runs the seal and send jobs; register Jobs() before it starts.
	Jobs *jobs.Runner
	// Daily lists the product IDs billed per day; the others are billed
	// per hour.
	Daily []string
	// DayZone is the zone whose midnights bound daily periods. Nil means
	// DefaultDayZone.
	DayZone *time.Location
	// PushInterval is how often closed periods are sealed and pushed.
	// Default DefaultPushInterval.
	PushInterval time.Duration
	// Settle is how long after a period's end its usage may still arrive
	// before the period is sealed. Default DefaultSettle.
	Settle time.Duration
	// Registerer receives the metrics; nil leaves them unregistered.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	Now        func() time.Time
}

// Service is the metering service.
type Service struct {
	store        Store
	pusher       Pusher
	key          string
	jobs         *jobs.Runner
	daily        map[string]bool
	dayZone      *time.Location
	pushInterval time.Duration
	settle       time.Duration
	log          *slog.Logger
	now          func() time.Time
	metrics      *metrics

	mu    sync.Mutex
	cache map[string]cached // instance facts, by ID
}

// New checks cfg and returns a Service.
func New(cfg Config) (*Service, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("usage: no store")
	case cfg.Jobs == nil:
		return nil, errors.New("usage: no job runner")
	case cfg.Key == "":
		return nil, errors.New("usage: no basic key to sign pushes with")
	case cfg.PushInterval < 0 || cfg.Settle < 0:
		return nil, errors.New("usage: negative push interval or settle time")
	}
	if cfg.PushInterval == 0 {
		cfg.PushInterval = DefaultPushInterval
	}
	if cfg.Settle == 0 {
		cfg.Settle = DefaultSettle
	}
	if cfg.DayZone == nil {
		cfg.DayZone = DefaultDayZone
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Service{
		store: cfg.Store, pusher: cfg.Pusher, key: cfg.Key, jobs: cfg.Jobs,
		daily:        map[string]bool{},
		dayZone:      cfg.DayZone,
		pushInterval: cfg.PushInterval, settle: cfg.Settle,
		log: cfg.Logger, now: cfg.Now,
		cache: map[string]cached{},
	}
	for _, p := range cfg.Daily {
		if p == "" {
			return nil, errors.New("usage: empty product ID among the daily-billed products")
		}
		s.daily[p] = true
	}
	s.metrics = newMetrics(s)
	if cfg.Registerer != nil {
		if err := s.metrics.register(cfg.Registerer); err != nil {
			return nil, fmt.Errorf("usage: register metrics: %w", err)
		}
	}
	return s, nil
}

// Jobs returns the handlers of the service's job kinds, to register with
// the runner before it starts.
func (s *Service) Jobs() map[string]jobs.HandlerFunc {
	return map[string]jobs.HandlerFunc{KindSeal: s.handleSeal, KindSend: s.handleSend}
}

// MeteringSN is the metering_sn of an instance's period starting at
// start: 40 hex digits of SHA-256 over the two, the same on every retry
// and every replica.
func MeteringSN(instanceID string, start time.Time) string {
	sum := sha256.Sum256([]byte("koobridge/usage/v1\x00" + instanceID + "\x00" + strconv.FormatInt(start.Unix(), 10)))
	return hex.EncodeToString(sum[:20])
}

// period returns the billing period of an instance of product productID
// that contains t.
func (s *Service) period(productID string, t time.Time) (start, end time.Time) {
	if s.daily[productID] {
		l := t.In(s.dayZone)
		d := time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, s.dayZone)
		return d.UTC(), d.AddDate(0, 0, 1).UTC()
	}
	h := t.UTC().Truncate(time.Hour)
	return h, h.Add(time.Hour)
}

// FormatValue writes ten-thousandths as decimal text without trailing
// zeros: 15000 → "1.5".
func FormatValue(v int64) string { return protocol.DecimalFromUnits(v).String() }
