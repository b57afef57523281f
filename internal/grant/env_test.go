package grant_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/koobridge/koobridge/emulator/mockapi"
	"github.com/koobridge/koobridge/internal/grant"
	"github.com/koobridge/koobridge/internal/jobs"
	"github.com/koobridge/koobridge/internal/openapi"
	"github.com/koobridge/koobridge/internal/openapi/openapitest"
	"github.com/koobridge/koobridge/internal/seal"
	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/internal/store/dbtest"
	"github.com/koobridge/koobridge/provision"
)

const (
	testAK = "AKGRANT0123456789"
	testSK = "sk-grant-secret-0123456789"
	// waitFor bounds every poll; generous for a loaded 2-core machine.
	waitFor = 30 * time.Second
	// fingerprint is a device fingerprint in the §D.3 form.
	fingerprint = "04:7C:16:5E:E3:5D|001B_444A_488B_5CEC.||BFEBFBFF00090672"
)

var dialects = dbtest.Dialects

// forEachDialect runs fn against a fresh env on each database.
func forEachDialect(t *testing.T, fn func(t *testing.T, e *env)) {
	for _, d := range dialects {
		t.Run(d.Name, func(t *testing.T) { fn(t, newEnv(t, d.Open(t))) })
	}
}

// generator is the vendor's license generator: the demo's license unless
// told otherwise; it records the events it was given.
type generator struct {
	mu     sync.Mutex
	mode   string // "" the demo's string, "file", "permanent", "busy", "none", "both"
	events []provision.Event
}

// fileContent is the license file the generator makes in mode "file".
var fileContent = []byte("LICENSE FILE\x00\x01\xff binary")

func (g *generator) Provision(ctx context.Context, ev provision.Event) (provision.Result, error) {
	g.mu.Lock()
	g.events = append(g.events, ev)
	mode := g.mode
	g.mu.Unlock()
	switch mode {
	case "file":
		return provision.Result{License: &provision.LicenseFile{FileName: "product.lic", Content: fileContent}}, nil
	case "permanent":
		return provision.Result{}, provision.Permanent(errors.New("no license for this product"))
	case "busy":
		return provision.Result{}, errors.New("generator busy")
	case "none":
		return provision.Result{}, nil
	case "both":
		return provision.Result{License: &provision.LicenseFile{Characters: "x", FileName: "a.lic", Content: []byte("y")}}, nil
	}
	return provision.NewDemo("").Provision(ctx, ev)
}

func (g *generator) set(mode string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.mode = mode
}

func (g *generator) list() []provision.Event {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]provision.Event(nil), g.events...)
}

// env is a grant Service on a real database, uploading with the real Open
// API client to the Open API imitation over HTTP, with a running runner.
type env struct {
	st     store.Store
	api    *openapitest.Server
	gen    *generator
	svc    *grant.Service
	sealer *seal.Sealer
}

var sealKey = func() []byte {
	k := make([]byte, seal.KeySize)
	for i := range k {
		k[i] = byte(7 * (i + 1))
	}
	return k
}()

// envConfig changes how an env reaches the Open API imitation.
type envConfig struct {
	// front, when set, stands in front of the imitation: the client talks
	// to it over HTTP, and it may pass requests on with next.
	front func(api *openapitest.Server, next http.Handler) http.Handler
	// uploader, when set, wraps the Open API client as the Uploader.
	uploader func(api *openapitest.Server, client grant.Uploader) grant.Uploader
	// now, when set, is the Service's clock.
	now func() time.Time
}

func newEnv(t *testing.T, st store.Store) *env { return newEnvWith(t, st, envConfig{}) }

func newEnvWith(t *testing.T, st store.Store, c envConfig) *env {
	t.Helper()
	t.Cleanup(func() { st.Close() })
	quiet := slog.New(slog.DiscardHandler)
	api := openapitest.NewServer(t, testAK, testSK)
	base := api.URL()
	if c.front != nil {
		target, err := url.Parse(api.URL())
		if err != nil {
			t.Fatal(err)
		}
		front := httptest.NewServer(c.front(api, httputil.NewSingleHostReverseProxy(target)))
		t.Cleanup(front.Close)
		base = front.URL
	}
	client, err := openapi.New(openapi.Config{BaseURL: base, AK: testAK, SK: testSK})
	if err != nil {
		t.Fatal(err)
	}
	var uploader grant.Uploader = client
	if c.uploader != nil {
		uploader = c.uploader(api, client)
	}
	sealer, err := seal.NewSealer(sealKey)
	if err != nil {
		t.Fatal(err)
	}
	runner := jobs.NewRunner(jobs.Config{Store: st, Workers: 3, Poll: 10 * time.Millisecond, Logger: quiet,
		Backoff: func(int) time.Duration { return 5 * time.Millisecond }})
	gen := &generator{}
	svc, err := grant.New(grant.Config{
		DeviceKey: testDeviceKey, Store: st, Provisioner: gen, Uploader: uploader, Sealer: sealer, Jobs: runner,
		Budget: 10 * time.Second, MaxAttempts: 3, Logger: quiet, Now: c.now,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := runner.RegisterAll(svc.Jobs()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = runner.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; svc.Wait() })
	return &env{st: st, api: api, gen: gen, svc: svc, sealer: sealer}
}

// addInstance stores an instance in status.
func (e *env) addInstance(t *testing.T, id string, status store.InstanceStatus) {
	t.Helper()
	now := time.Now().UTC()
	err := e.st.Tx(context.Background(), func(ctx context.Context, tx store.Tx) error {
		_, err := tx.InsertInstance(ctx, store.Instance{
			ID: id, OrderID: "CS-" + id, OrderLineID: "CS-" + id + "-1", Status: status, ProductID: "OFFI-LIC-1",
			ChargingMode: "PERIOD", LinearValue: "5", OrderState: store.OrderFetched, CreatedAt: now, UpdatedAt: now,
		})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// setInstance changes an instance's status.
func (e *env) setInstance(t *testing.T, id string, status store.InstanceStatus) {
	t.Helper()
	err := e.st.Tx(context.Background(), func(ctx context.Context, tx store.Tx) error {
		in, err := tx.Instance(ctx, id)
		if err != nil {
			return err
		}
		in.Status = status
		return tx.UpdateInstance(ctx, in)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// online asks for the license of event on instance, as getLicenseAsync
// does, and registers the event with the Open API imitation (KooGallery
// sent it).
func (e *env) online(t *testing.T, instanceID, event string) store.LicenseGrant {
	t.Helper()
	if err := e.api.AddLicenseEvent(mockapi.LicenseEvent{EventID: event, InstanceID: instanceID}); err != nil {
		t.Fatal(err)
	}
	g, inserted, _, err := e.svc.Request(context.Background(), grant.Request{
		Kind: store.GrantOnline, Key: e.svc.OnlineKey(event, fingerprint), InstanceID: instanceID, EventID: event,
		OrderID: "CS-" + instanceID, ProductID: "OFFI-LIC-1",
		EffectiveTime: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), ExpireTime: time.Date(2027, 12, 1, 0, 0, 0, 0, time.UTC),
		DeviceFingerprint: fingerprint, Fingerprint: "fp-" + event,
	})
	if err != nil || !inserted {
		t.Fatalf("request: %+v inserted %v, %v", g, inserted, err)
	}
	e.svc.Kick()
	return g
}

// grant reads grant id.
func (e *env) grant(t *testing.T, id int64) store.LicenseGrant {
	t.Helper()
	g, err := e.st.LicenseGrantByID(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// waitState polls grant id until it is in state.
func (e *env) waitState(t *testing.T, id int64, state store.GrantState) store.LicenseGrant {
	t.Helper()
	var g store.LicenseGrant
	eventually(t, "grant in state "+string(state), func() bool {
		g = e.grant(t, id)
		return g.State == state
	})
	return g
}

// uploads lists the recorded upload attempts of grant id.
func (e *env) uploads(t *testing.T, id int64) []store.LicenseUpload {
	t.Helper()
	us, err := e.st.LicenseUploads(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return us
}

// jobsOf lists the jobs of kind, newest first.
func (e *env) jobsOf(t *testing.T, kind string) []store.Job {
	t.Helper()
	js, err := e.st.Jobs(context.Background(), store.JobFilter{Kind: kind})
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// settle waits until no job of kind is waiting or running.
func (e *env) settle(t *testing.T, kind string) {
	t.Helper()
	eventually(t, "the "+kind+" jobs settled", func() bool {
		for _, j := range e.jobsOf(t, kind) {
			if j.State == store.JobAvailable || j.State == store.JobRunning {
				return false
			}
		}
		return true
	})
}

// eventually polls cond until it holds or waitFor passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// testDeviceKey keys the device hashes in these tests.
var testDeviceKey = []byte("koobridge test device key, 32 bytes or more")
