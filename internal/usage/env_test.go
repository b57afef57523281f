package usage_test

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/koobridge/koobridge/emulator/mockapi"
	"github.com/koobridge/koobridge/internal/jobs"
	"github.com/koobridge/koobridge/internal/openapi"
	"github.com/koobridge/koobridge/internal/openapi/openapitest"
	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/internal/store/dbtest"
	"github.com/koobridge/koobridge/internal/usage"
	"github.com/koobridge/koobridge/protocol"
)

const (
	testAK, testSK = "AK-usage", "SK-usage-secret"
	basicKey       = "basic-key-of-the-usage-tests"
	// waitFor bounds every poll; generous for a loaded 2-core machine.
	waitFor = 60 * time.Second
)

// clock is the tests' clock, shared by the service, the job runner, the
// Open API client and its imitation, so a test can move time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is a Service on a real database, KooGallery's usage API imitated
// over real HTTP, and a job runner.
type env struct {
	st     store.Store
	clk    *clock
	api    *openapitest.Server
	svc    *usage.Service
	cfg    usage.Config
	runner *jobs.Runner
	stop   func() // stops Run and the runner
}

type options struct {
	daily    []string
	failRate float64
	stopped  bool // do not start the runner and the schedule
}

// forEachDialect runs fn against a fresh env on each database.
func forEachDialect(t *testing.T, o options, fn func(t *testing.T, e *env)) {
	for _, d := range dbtest.Dialects {
		t.Run(d.Name, func(t *testing.T) { fn(t, newEnv(t, d.Open(t), o)) })
	}
}

// start is where the tests' clock begins: a whole hour, 30 minutes in.
var start = time.Now().UTC().Truncate(time.Hour).Add(30 * time.Minute)

func newEnv(t *testing.T, st store.Store, o options) *env {
	t.Helper()
	e := &env{st: st, clk: &clock{t: start}}
	e.api = openapitest.NewServer(t, testAK, testSK)
	e.api.SetClock(e.clk.Now)
	e.api.SetUsageKey(basicKey)
	e.api.SetRequireAPIGOnUsage(true)
	e.api.SetUsageFailRate(o.failRate)
	e.api.SetInstanceLookup(func(id string) (mockapi.UsageInstance, bool) {
		in, err := st.Instance(context.Background(), id)
		if err != nil {
			return mockapi.UsageInstance{}, false
		}
		// To the second, as the emulator keeps them: push times have
		// seconds.
		rel := in.ReleasedAt
		if !rel.IsZero() {
			rel = rel.Add(time.Second - time.Nanosecond).Truncate(time.Second)
		}
		return mockapi.UsageInstance{Start: in.CreatedAt.Truncate(time.Second), Released: rel}, true
	})
	client, err := openapi.New(openapi.Config{
		BaseURL: e.api.URL(), AK: testAK, SK: testSK, Now: e.clk.Now,
		HTTPClient: &http.Client{Timeout: 2 * time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	e.runner = jobs.NewRunner(jobs.Config{Store: st, Workers: 4, Poll: 10 * time.Millisecond, Logger: quiet, Now: e.clk.Now,
		Backoff: func(int) time.Duration { return 10 * time.Millisecond }})
	e.cfg = usage.Config{
		Store: st, Pusher: client, Key: basicKey, Jobs: e.runner, Daily: o.daily,
		PushInterval: 50 * time.Millisecond, Settle: time.Minute, Logger: quiet, Now: e.clk.Now,
	}
	if e.svc, err = usage.New(e.cfg); err != nil {
		t.Fatal(err)
	}
	if err := e.runner.RegisterAll(e.svc.Jobs()); err != nil {
		t.Fatal(err)
	}
	e.stop = func() {}
	if !o.stopped {
		e.run(t)
	}
	return e
}

// rebuild replaces the service and its runner by ones of cfg (a stopped
// env's, before run).
func (e *env) rebuild(t *testing.T, cfg usage.Config) {
	t.Helper()
	e.runner = jobs.NewRunner(jobs.Config{Store: e.st, Workers: 4, Poll: 10 * time.Millisecond, Logger: slog.New(slog.DiscardHandler),
		Now: e.clk.Now, Backoff: func(int) time.Duration { return 10 * time.Millisecond }})
	cfg.Jobs = e.runner
	svc, err := usage.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.runner.RegisterAll(svc.Jobs()); err != nil {
		t.Fatal(err)
	}
	e.svc, e.cfg = svc, cfg
}

// run starts the runner and the push schedule until the test ends or
// stop is called.
func (e *env) run(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = e.runner.Run(ctx) })
	wg.Go(func() { e.svc.Run(ctx) })
	var once sync.Once
	e.stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(e.stop)
}

// buy records a pay-per-use instance created at created.
func (e *env) buy(t *testing.T, id, mode, product, order string, created time.Time) store.Instance {
	t.Helper()
	in := store.Instance{
		ID: id, OrderID: order, OrderLineID: order + "-" + id, OrderState: store.OrderFetched,
		ProductID: product, ChargingMode: mode, Status: store.StatusActive,
		CreatedAt: created, UpdatedAt: created,
	}
	err := e.st.Tx(context.Background(), func(ctx context.Context, tx store.Tx) error {
		_, err := tx.InsertInstance(ctx, in)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// release marks an instance released at at.
func (e *env) release(t *testing.T, id string, at time.Time) {
	t.Helper()
	err := e.st.Tx(context.Background(), func(ctx context.Context, tx store.Tx) error {
		in, err := tx.Instance(ctx, id)
		if err != nil {
			return err
		}
		in.Status, in.ReleasedAt = store.StatusReleased, at
		return tx.UpdateInstance(ctx, in)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// ingest reports records and fails the test on an error.
func (e *env) ingest(t *testing.T, in ...usage.Input) []usage.Result {
	t.Helper()
	res, err := e.svc.Ingest(context.Background(), in)
	if err != nil {
		t.Fatalf("ingest: %v", err)
	}
	return res
}

// drain waits until no period is open or pushing, moving the clock a
// second at a time so that retries come due.
func (e *env) drain(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		c, err := e.st.UsagePeriodCounts(context.Background(), "")
		if err != nil {
			t.Fatal(err)
		}
		if c[store.UsageOpen]+c[store.UsagePushing] == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("periods still open or pushing after %v: %v", waitFor, c)
		}
		e.clk.Advance(time.Second)
		time.Sleep(20 * time.Millisecond)
	}
}

// periods lists an instance's periods, oldest first.
func (e *env) periods(t *testing.T, id string) []store.UsagePeriod {
	t.Helper()
	list, err := e.st.UsagePeriods(context.Background(), store.UsagePeriodFilter{InstanceID: id, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]store.UsagePeriod, len(list))
	for i, p := range list {
		out[len(list)-1-i] = p
	}
	return out
}

// billed is what the imitated KooGallery billed an instance.
func (e *env) billed(id string) mockapi.BilledInstance {
	b, _ := e.api.BilledInstance(id)
	return b
}

// rec is an input of value at t.
func rec(key, instance, value string, t time.Time) usage.Input {
	return usage.Input{IdempotencyKey: key, InstanceID: instance, Value: value, Time: t}
}

var (
	onDemand = protocol.ChargingOnDemand
	pkg      = protocol.ChargingOnDemandPkg
)
