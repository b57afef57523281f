package license_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/koobridge/koobridge/emulator/mockapi"
	"github.com/koobridge/koobridge/internal/jobs"
	"github.com/koobridge/koobridge/internal/license"
	"github.com/koobridge/koobridge/internal/openapi"
	"github.com/koobridge/koobridge/internal/openapi/openapitest"
	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/internal/store/dbtest"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/provision"
)

const testAK, testSK = "AK-license", "SK-license-secret"

// deviceKey keys the tests' device IDs.
var deviceKey = []byte("license-test-device-key-0123456789abcdef")

// waitFor bounds every poll; generous for a loaded 2-core machine.
const waitFor = 30 * time.Second

// clock is the tests' clock, shared by the service, the job runner, the
// Open API client and its imitation, so a test can move time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now().UTC().Truncate(time.Second)} }

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

// recorder is a provisioner that records the events it was given.
type recorder struct {
	mu     sync.Mutex
	events []provision.Event
	fail   func(ev provision.Event) error
}

func (r *recorder) Provision(_ context.Context, ev provision.Event) (provision.Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		if err := r.fail(ev); err != nil {
			return provision.Result{}, err
		}
	}
	r.events = append(r.events, ev)
	return provision.Result{}, nil
}

func (r *recorder) delivered() []provision.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

var dialects = dbtest.Dialects

// logBuffer keeps what the Service logged, for tests of its log.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// env is a Service on a real database, with the Open API imitation over
// real HTTP and a running job runner.
type env struct {
	st    store.Store
	clk   *clock
	api   *openapitest.Server
	svc   *license.Service
	real  *recorder
	test  *recorder
	cfg   license.Config
	quiet *slog.Logger
	logs  *logBuffer // what the Service logged, as text
}

// options adjust newEnv.
type options struct {
	devices license.DevicePolicy
	noAPI   bool
}

// forEachDialect runs fn against a fresh env on each database.
func forEachDialect(t *testing.T, o options, fn func(t *testing.T, e *env)) {
	for _, d := range dialects {
		t.Run(d.Name, func(t *testing.T) {
			fn(t, newEnv(t, d.Open(t), o))
		})
	}
}

func newEnv(t *testing.T, st store.Store, o options) *env {
	t.Helper()
	t.Cleanup(func() { st.Close() })
	e := &env{st: st, clk: newClock(), real: &recorder{}, test: &recorder{}, quiet: slog.New(slog.DiscardHandler), logs: &logBuffer{}}
	e.api = openapitest.NewServer(t, testAK, testSK)
	e.api.SetClock(e.clk.Now)
	runner := jobs.NewRunner(jobs.Config{Store: st, Workers: 3, Poll: 10 * time.Millisecond, Logger: e.quiet, Now: e.clk.Now,
		Backoff: func(int) time.Duration { return 10 * time.Millisecond }})
	e.cfg = license.Config{
		Store: st, Provisioner: e.real, TestProvisioner: e.test, Jobs: runner,
		Grace: 168 * time.Hour, CheckInterval: 24 * time.Hour, UsageInterval: time.Hour,
		Devices: o.devices, DeviceKey: deviceKey, Logger: slog.New(slog.NewTextHandler(e.logs, nil)), Now: e.clk.Now,
	}
	if !o.noAPI {
		e.cfg.OpenAPI = e.client(t)
	}
	svc, err := license.New(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	if err := runner.RegisterAll(svc.Jobs()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = runner.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return e
}

// client is a real Open API client of the imitation.
func (e *env) client(t *testing.T) *openapi.Client {
	t.Helper()
	c, err := openapi.New(openapi.Config{BaseURL: e.api.URL(), AK: testAK, SK: testSK, Now: e.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// replica is a second Service on the same database and Open API, as
// another koobridge process would be (its own in-process locks); its
// events are delivered by the first env's runner.
func (e *env) replica(t *testing.T) *license.Service {
	t.Helper()
	cfg := e.cfg
	cfg.OpenAPI = e.client(t)
	svc, err := license.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// issue makes KooGallery issue code with amount seats, alive for a year.
func (e *env) issue(t *testing.T, code string, amount int) {
	t.Helper()
	if err := e.api.IssueLicense(mockapi.LicenseCode{
		Code: code, ProductID: "P-" + code, OrderID: "CS-" + code, Amount: amount, Expire: e.clk.Now().AddDate(1, 0, 0),
	}); err != nil {
		t.Fatal(err)
	}
}

// activations counts the activate requests KooGallery got for code, and
// how many of them succeeded.
func (e *env) activations(code string) (all, ok int) {
	for _, a := range e.api.LicenseActivations() {
		if a.License == code {
			all++
			if a.Code == "92020000" {
				ok++
			}
		}
	}
	return all, ok
}

// queries counts the query requests KooGallery got for code.
func (e *env) queries(code string) int {
	n := 0
	for _, q := range e.api.LicenseQueries() {
		if q.License == code {
			n++
		}
	}
	return n
}

// code reads a real code, failing the test when it is not there.
func (e *env) code(t *testing.T, code string) store.LicenseCode {
	t.Helper()
	c, err := e.st.LicenseCode(context.Background(), code, false)
	if err != nil {
		t.Fatalf("read code %s: %v", code, err)
	}
	return c
}

// history lists the kinds of a code's history, oldest first.
func (e *env) history(t *testing.T, code string, test bool) []string {
	t.Helper()
	evs, err := e.st.LicenseEvents(context.Background(), code, test, 1000)
	if err != nil {
		t.Fatal(err)
	}
	kinds := make([]string, len(evs))
	for i, ev := range evs {
		kinds[len(evs)-1-i] = ev.Kind
	}
	return kinds
}

// eventTypes lists "type:code" of events.
func eventTypes(evs []provision.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = fmt.Sprintf("%s:%s", ev.Type, ev.License.Code)
	}
	return out
}

// settle waits until every job of kind is finished (done or dead),
// moving the clock on so that retries come due (a handler whose lease the
// clock jumped over fails its attempt and is retried).
func (e *env) settle(t *testing.T, kind string) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		js, err := e.st.Jobs(context.Background(), store.JobFilter{Kind: kind, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		var live []string
		for _, j := range js {
			if j.State == store.JobAvailable || j.State == store.JobRunning {
				live = append(live, fmt.Sprintf("%s %s after %d attempts: %s", j.UniqueKey, j.State, j.Attempts, j.LastError))
			}
		}
		if len(live) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d %s jobs still live after %v: %q", len(live), kind, waitFor, live)
		}
		e.clk.Advance(time.Second)
		time.Sleep(10 * time.Millisecond)
	}
}

// service is another Service of e's configuration with cfg changed by
// edit (its events are delivered by e's runner).
func (e *env) service(t *testing.T, edit func(cfg *license.Config)) *license.Service {
	t.Helper()
	cfg := e.cfg
	edit(&cfg)
	svc, err := license.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// reshaped is the real Open API client with KooGallery's answers reshaped
// the way the pages allow and the imitation does not answer (an
// activation without its amount, a query with one), counting the
// queries, and with a hook run once KooGallery answered an activation.
type reshaped struct {
	license.OpenAPI
	activated     func(info *protocol.LicenseCodeInfo)
	queried       func(info *protocol.LicenseInfo)
	afterActivate func()
	queries       *atomic.Int64
}

func (r reshaped) ActivateLicense(ctx context.Context, code string, at time.Time) (protocol.LicenseCodeInfo, error) {
	info, err := r.OpenAPI.ActivateLicense(ctx, code, at)
	if err == nil && r.activated != nil {
		r.activated(&info)
	}
	if r.afterActivate != nil {
		r.afterActivate()
	}
	return info, err
}

func (r reshaped) QueryLicense(ctx context.Context, code string) (protocol.LicenseInfo, error) {
	if r.queries != nil {
		r.queries.Add(1)
	}
	info, err := r.OpenAPI.QueryLicense(ctx, code)
	if err == nil && r.queried != nil {
		r.queried(&info)
	}
	return info, err
}

// withAmount makes a query answer carry amount, as LicenseInfo may.
func withAmount(amount string) func(info *protocol.LicenseInfo) {
	return func(info *protocol.LicenseInfo) {
		if info.Extra == nil {
			info.Extra = map[string]json.RawMessage{}
		}
		info.Extra["amount"] = json.RawMessage(amount)
	}
}

// withoutAmount makes an activation answer carry no amount.
func withoutAmount(info *protocol.LicenseCodeInfo) { info.Amount = "" }
