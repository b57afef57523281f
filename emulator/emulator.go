package emulator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/koobridge/koobridge/emulator/mockapi"
	"github.com/koobridge/koobridge/internal/durationtext"
)

// Defaults filled in by New.
const (
	DefaultDeadline     = 5 * time.Second  // saas-v2.md §1.1
	DefaultPollInterval = 10 * time.Second // emulated; KooGallery's cadence is UNCONFIRMED (saas-v2.md §6.4)
)

// errClosed is returned by calls made after Close.
var errClosed = errors.New("emulator: closed")

// Errors that Purchase, Play and Redrive wrap, with the context, so that
// callers (the JSON API) can tell them apart with errors.Is.
var (
	// ErrNotFound: the product, subscription or message does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the request does not fit the current state (the
	// scenario does not apply to the subscription, or the subscription is
	// busy with another scenario or a retry).
	ErrConflict = errors.New("refused")
)

// Emulator plays KooGallery toward one seller: it keeps a catalogue,
// places orders, calls the seller's production interface as scenarios
// say, retries failed calls on an emulated clock and serves the mocked
// Open API. It is safe for concurrent use.
type Emulator struct {
	cfg     Config
	openapi *mockapi.Handler
	buyer   buyer

	// orderIDs are the order IDs issued, so none is issued twice (two
	// orders placed in one minute share all but five random characters).
	orderIDs map[string]bool

	// wallStart and start anchor the emulated clock (see Now).
	wallStart time.Time
	start     time.Time

	// ctx is cancelled by Close; background deliveries and polls use it.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // timer callbacks scheduled or running

	mu       sync.Mutex
	closed   bool
	advanced time.Duration
	timers   map[*timerEntry]struct{}
	products []Product
	subs     []*Subscription
	subByID  map[string]*Subscription
	known    map[string]*Subscription // by the instance IDs the seller returned
	log      []*delivery              // oldest first, at most logCap
	logCap   int                      // maxMessages; tests lower it
	byID     map[string]*delivery
	msgSeq   int // message counter
	subSeq   int // subscription counter
	faults   Faults

	// The joint-operation tenants the Kit scenarios made, oldest first,
	// and by subscription; appID is the emulator's app credential.
	tenants     []*tenant
	tenantBySub map[string]*tenant
	appID       string
	// oa is what the emulated identity centers handed out.
	oa oaState

	// runs are the last maxRuns scenario runs, by ID (Outcome), and
	// their IDs oldest first; runSeq counts them.
	runs     map[string]*runState
	runOrder []string
	runSeq   int
}

// New returns an Emulator with the default catalogue (DefaultProducts).
// Target, Key, AK and SK are required.
func New(cfg Config) (*Emulator, error) {
	if cfg.Target == "" {
		return nil, errors.New("emulator: config: Target is required")
	}
	if u, err := url.Parse(cfg.Target); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("emulator: config: Target %q is not an http(s) URL", cfg.Target)
	}
	if cfg.OrderNotifyTarget != "" {
		if u, err := url.Parse(cfg.OrderNotifyTarget); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("emulator: config: OrderNotifyTarget %q is not an http(s) URL", cfg.OrderNotifyTarget)
		}
	}
	for name, target := range map[string]string{"KitTarget": cfg.KitTarget, "LicenseTarget": cfg.LicenseTarget, "OnlineLicenseTarget": cfg.OnlineLicenseTarget} {
		if target == "" {
			continue
		}
		if u, err := url.Parse(target); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("emulator: config: %s %q is not an http(s) URL", name, target)
		}
	}
	switch cfg.OnlineLicenseKey {
	case "":
		cfg.OnlineLicenseKey = KeyLicense
	case KeyLicense, KeyBasic:
	default:
		return nil, fmt.Errorf("emulator: config: OnlineLicenseKey %q: want %s or %s", cfg.OnlineLicenseKey, KeyLicense, KeyBasic)
	}
	if cfg.LicenseUploadWindow < 0 {
		return nil, fmt.Errorf("emulator: config: LicenseUploadWindow %s is negative", durationtext.Format(cfg.LicenseUploadWindow))
	}
	if cfg.LicenseUploadWindow == 0 {
		cfg.LicenseUploadWindow = DefaultLicenseUploadWindow
	}
	switch cfg.KitSignForm {
	case "":
		cfg.KitSignForm = KitFormA
	case KitFormA, KitFormB:
	default:
		return nil, fmt.Errorf("emulator: config: KitSignForm %q: want %s or %s", cfg.KitSignForm, KitFormA, KitFormB)
	}
	if cfg.PublicURL != "" {
		if u, err := url.Parse(cfg.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("emulator: config: PublicURL %q is not an http(s) URL without query or fragment", cfg.PublicURL)
		}
		cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	}
	if cfg.AccessTokenLifetime < 0 {
		return nil, fmt.Errorf("emulator: config: AccessTokenLifetime %s is negative", durationtext.Format(cfg.AccessTokenLifetime))
	}
	if cfg.AccessTokenLifetime == 0 {
		cfg.AccessTokenLifetime = DefaultAccessTokenLifetime
	}
	if cfg.UserPassword == "" {
		cfg.UserPassword = DefaultUserPassword
	}
	if cfg.Key == "" {
		return nil, errors.New("emulator: config: Key is required")
	}
	if cfg.KeepGoing && !cfg.NoRetry {
		return nil, errors.New("emulator: config: KeepGoing needs NoRetry")
	}
	if cfg.AK == "" || cfg.SK == "" {
		return nil, errors.New("emulator: config: AK and SK are required")
	}
	if cfg.TimeScale < 0 {
		return nil, fmt.Errorf("emulator: config: TimeScale %v is negative", cfg.TimeScale)
	}
	if cfg.Deadline <= 0 {
		cfg.Deadline = DefaultDeadline
	}
	cfg.KitKey = cfg.KeyFor(KeyKit)
	cfg.LicenseKey = cfg.KeyFor(KeyLicense)
	cfg.GeneralKey = cfg.KeyFor(KeyGeneral)
	cfg.OrderNotifyTarget = OrderNotify.target(cfg)
	cfg.KitTarget = kitTarget(cfg)
	cfg.LicenseTarget = licenseTarget(cfg)
	cfg.OnlineLicenseTarget = OnlineLicense.target(cfg)
	if cfg.TimeScale == 0 {
		cfg.TimeScale = 1
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	e := &Emulator{
		cfg:      cfg,
		openapi:  mockapi.NewHandler(cfg.AK, cfg.SK),
		buyer:    newBuyer(),
		timers:   make(map[*timerEntry]struct{}),
		products: DefaultProducts(),
		subByID:  make(map[string]*Subscription),
		known:    make(map[string]*Subscription),
		byID:     make(map[string]*delivery),
		logCap:   maxMessages,

		tenantBySub: make(map[string]*tenant),
		appID:       newAppID(),
		oa:          newOAState(),
	}
	e.wallStart = cfg.Now()
	e.start = e.wallStart.UTC()
	e.ctx, e.cancel = context.WithCancel(context.Background())
	e.setupOpenAPI()
	return e, nil
}

// Close stops scheduled retries and polls and cancels background calls in
// flight, then waits for their goroutines to end. It does not wait for
// calls in flight beyond their deadline. Close is safe to call twice.
func (e *Emulator) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	e.cancel()
	for te := range e.timers {
		if te.t.Stop() {
			e.wg.Done()
		}
	}
	clear(e.timers)
	for _, d := range e.log {
		if d.msg.Status == MessageRetrying {
			d.msg.Status = MessageFailed
			d.msg.NextAttempt = time.Time{}
		}
	}
	e.mu.Unlock()
	e.wg.Wait()
	return nil
}

// Config returns the configuration in use, defaults filled in.
func (e *Emulator) Config() Config { return e.cfg }

// Now returns the emulator's emulated time: the wall-clock time at New,
// plus the wall time since then multiplied by Config.TimeScale, plus
// every Advance. Each subscription runs on a clock of its own: this time
// plus how far its own scenarios (expire, release) moved it
// (Subscription.ClockAhead), so that moving one subscription to its
// expiry leaves every other where it was. A new purchase starts at Now.
func (e *Emulator) Now() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.nowLocked()
}

// nowLocked is the emulator's emulated time (Now).
func (e *Emulator) nowLocked() time.Time {
	return e.clockAtLocked(nil, e.cfg.Now())
}

// clockLocked is the emulated time on sub's clock; nil is the emulator's
// own (Now), that of what belongs to no subscription.
func (e *Emulator) clockLocked(sub *Subscription) time.Time {
	return e.clockAtLocked(sub, e.cfg.Now())
}

// clockAtLocked is the emulated time on sub's clock (nil: the
// emulator's) at the wall-clock time wall.
func (e *Emulator) clockAtLocked(sub *Subscription, wall time.Time) time.Time {
	elapsed := time.Duration(float64(wall.Sub(e.wallStart)) * e.cfg.TimeScale)
	return e.start.Add(elapsed + e.advanced + sub.aheadOf())
}

// aheadOf is how far s's clock runs ahead of the emulator's; 0 for nil.
func (s *Subscription) aheadOf() time.Duration {
	if s == nil {
		return 0
	}
	return s.ahead
}

// orderTimeLocked is the emulated time on sub's clock in whole seconds,
// UTC: the precision of the order and expiry times on the wire.
func (e *Emulator) orderTimeLocked(sub *Subscription) time.Time {
	return e.clockLocked(sub).UTC().Truncate(time.Second)
}

// orderAtLocked is the createTime of the next order placed for sub: the
// purchase's OrderTime (its StartTime, set before any order) for its
// first order, the time on sub's clock otherwise. An order ID's date is
// the same (newOrderID): each subscription's orders are dated by its own
// clock.
func (e *Emulator) orderAtLocked(sub *Subscription) time.Time {
	if sub.OrderID == "" && !sub.StartTime.IsZero() {
		return sub.StartTime
	}
	return e.orderTimeLocked(sub)
}

// setStartLocked sets when sub's instance started: at on its emulated
// clock, and the same moment on the wall clock, by its clock's lead now,
// down to the whole second. The usage push judges records by the
// wall-clock one, fixed now, so that a later Advance or a time scale
// above 1 does not move it.
func (e *Emulator) setStartLocked(sub *Subscription, at time.Time) {
	wall := e.cfg.Now()
	lead := e.clockAtLocked(sub, wall).Sub(wall)
	sub.StartTime = at
	sub.WallStartTime = at.Add(-lead).UTC().Truncate(time.Second)
}

// setReleasedLocked records that sub's instance was released now: on
// its emulated clock (to the second, as on the wire) and on the wall
// clock, up to the whole second.
func (e *Emulator) setReleasedLocked(sub *Subscription) {
	wall := e.cfg.Now()
	sub.ReleaseTime = e.clockAtLocked(sub, wall).UTC().Truncate(time.Second)
	sub.WallReleaseTime = wall.UTC().Add(time.Second - time.Nanosecond).Truncate(time.Second)
}

// Limits on moving the emulated clocks, which keep their arithmetic far
// from overflow (a time.Duration ends after 292 years).
const (
	MaxAdvance = 10 * year // one Advance
	// MaxTotalAdvance bounds every move of one clock together: the
	// Advances and, for a subscription's clock, its scenarios' moves.
	MaxTotalAdvance = 100 * year
)

// year is 365.25 days.
const year = 8766 * time.Hour

// Advance moves the emulator's clock forward by d, and with it every
// subscription's: time passes for all. (The expire and release scenarios
// move their subscription's clock alone.) Retries and polls already
// scheduled keep their emulated due times, so those now due run at once.
// A d of zero or less does nothing; Advance refuses more than MaxAdvance
// at once, or what would move a clock more than MaxTotalAdvance in all.
func (e *Emulator) Advance(d time.Duration) error {
	if d <= 0 {
		return nil
	}
	if d > MaxAdvance {
		return fmt.Errorf("emulator: advance: %s is more than %s at once", durationtext.Format(d), durationtext.Format(MaxAdvance))
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	var most time.Duration // the subscription clock furthest ahead
	for _, sub := range e.subs {
		most = max(most, sub.ahead)
	}
	if moved := e.advanced + most; d > MaxTotalAdvance-moved {
		return fmt.Errorf("emulator: advance: a clock has moved %s; %s more would pass the limit of %s", durationtext.Format(moved), durationtext.Format(d), durationtext.Format(MaxTotalAdvance))
	}
	e.advanced += d
	for te := range e.timers {
		e.resetLocked(te)
	}
	return nil
}

// advanceSubLocked moves sub's clock alone forward by d (a scenario
// moving it to its expiry): the retries and polls of its messages now
// due run at once; other subscriptions' are untouched. A license code's
// state follows its subscription's clock (LicenseCode.ClockAhead).
func (e *Emulator) advanceSubLocked(sub *Subscription, d time.Duration) error {
	if moved := e.advanced + sub.ahead; d > MaxTotalAdvance-moved {
		return fmt.Errorf("emulator: advance %s's clock: it has moved %s; %s more would pass the limit of %s", sub.ID, durationtext.Format(moved), durationtext.Format(d), durationtext.Format(MaxTotalAdvance))
	}
	sub.ahead += d
	for te := range e.timers {
		if te.sub == sub {
			e.resetLocked(te)
		}
	}
	if sub.LicenseCode != "" {
		ahead := sub.ahead
		e.openapi.UpdateLicense(sub.LicenseCode, func(c *mockapi.LicenseCode) { c.ClockAhead = ahead })
	}
	return nil
}

// resetLocked re-arms te for its emulated due time after a clock moved.
func (e *Emulator) resetLocked(te *timerEntry) {
	if te.t.Stop() {
		te.t.Reset(e.wallUntilLocked(te.due, te.sub))
	}
}

// wallUntilLocked is the wall-clock wait until the emulated time due on
// sub's clock (nil: the emulator's).
func (e *Emulator) wallUntilLocked(due time.Time, sub *Subscription) time.Duration {
	d := due.Sub(e.clockLocked(sub))
	if d <= 0 {
		return 0
	}
	return time.Duration(float64(d) / e.cfg.TimeScale)
}

// timerEntry is one scheduled retry or poll.
type timerEntry struct {
	t   *time.Timer
	due time.Time     // emulated, on sub's clock
	sub *Subscription // whose clock; nil: the emulator's
}

// afterLocked runs fn with the emulator's context at the emulated time
// due on sub's clock (nil: the emulator's), unless Close comes first. It
// returns nil after Close.
func (e *Emulator) afterLocked(due time.Time, sub *Subscription, fn func(ctx context.Context)) *timerEntry {
	if e.closed {
		return nil
	}
	te := &timerEntry{due: due, sub: sub}
	e.wg.Add(1)
	e.timers[te] = struct{}{}
	te.t = time.AfterFunc(e.wallUntilLocked(due, sub), func() {
		defer e.wg.Done()
		e.mu.Lock()
		_, live := e.timers[te]
		delete(e.timers, te)
		e.mu.Unlock()
		if live {
			fn(e.ctx)
		}
	})
	return te
}

// cancelLocked stops a scheduled entry; nil is a no-op.
func (e *Emulator) cancelLocked(te *timerEntry) {
	if te == nil {
		return
	}
	if _, ok := e.timers[te]; !ok {
		return
	}
	delete(e.timers, te)
	if te.t.Stop() {
		e.wg.Done()
	}
}

// Products lists the catalogue.
func (e *Emulator) Products() []Product {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.products)
}

// AddProduct adds or replaces (by ID) a product.
func (e *Emulator) AddProduct(p Product) error {
	if err := p.validate(); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := range e.products {
		if e.products[i].ID == p.ID {
			e.products[i] = p
			return nil
		}
	}
	e.products = append(e.products, p)
	return nil
}

// Scenarios lists every scenario the emulator can play.
func (e *Emulator) Scenarios() []Scenario {
	var out []Scenario
	for _, table := range scenarioTables {
		for _, s := range table {
			out = append(out, s.info())
		}
	}
	return out
}

// Subscriptions lists purchases, oldest first.
func (e *Emulator) Subscriptions() []Subscription {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]Subscription, len(e.subs))
	for i, s := range e.subs {
		out[i] = e.viewLocked(s)
	}
	return out
}

// Subscription returns one purchase.
func (e *Emulator) Subscription(id string) (Subscription, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s, ok := e.subByID[id]
	if !ok {
		return Subscription{}, false
	}
	return e.viewLocked(s), true
}

// viewLocked is a copy of s for callers, with its clock read now and
// what that clock has passed (Lapsed).
func (e *Emulator) viewLocked(s *Subscription) Subscription {
	c := s.clone()
	c.Clock, c.ClockAhead = e.clockLocked(s), s.ahead
	c.Lapsed = lapsedAt(s, c.Clock)
	return c
}

// lapsedAt says what the time now on s's clock has passed that s's
// status does not show yet (Subscription.Lapsed).
func lapsedAt(s *Subscription, now time.Time) string {
	switch {
	case s.ExpireTime.IsZero():
	case s.Status == StatusActive && !now.Before(s.ExpireTime):
		return LapsedExpired
	case s.Status == StatusFrozen && !now.Before(s.ExpireTime.Add(retention)):
		return LapsedRetentionEnded
	}
	return ""
}

// Scenario is one KooGallery flow (saas-v2.md §6.3), played as steps.
type Scenario struct {
	Name  string `json:"name"`
	Title string `json:"title"`
	Spec  string `json:"spec"`
	// Family is the interface family the steps call ("kit" for the Kit
	// scenarios: KitV1 on V1 products, KitV2 on V2 ones).
	Family string `json:"family"`
	// Protocol is the product protocol it plays on: "v2", "v1" or "any".
	Protocol string `json:"protocol"`
	// Joint: it plays on joint-operation products only.
	Joint bool `json:"joint,omitempty"`
	// Modes are the charging modes it applies to.
	Modes []string `json:"modes"`
	// From lists the subscription statuses it can start from; empty means
	// it starts a new purchase.
	From []string `json:"from,omitempty"`
	// Steps names the interfaces called, in order, for display.
	Steps []string `json:"steps"`
}
