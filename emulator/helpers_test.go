package emulator

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/testseller"
)

const (
	testKey = "EmulatorTestKey-0123456789abcdef"
	testAK  = "EMUTESTAK0123456789"
	testSK  = "EmuTestSK-0123456789abcdefghijklmnopqrstu"
)

// env is an emulator pointed at a seller running behind real HTTP.
type env struct {
	t   *testing.T
	e   *Emulator
	srv *httptest.Server
}

// start runs seller h and an emulator targeting it; adjust edits the
// config before New.
func start(t *testing.T, h http.Handler, adjust func(*Config)) env {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	cfg := Config{Target: srv.URL + "/produce", Key: testKey, AK: testAK, SK: testSK}
	if adjust != nil {
		adjust(&cfg)
	}
	e, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { e.Close() })
	return env{t: t, e: e, srv: srv}
}

// startSeller runs a testseller with faults f.
func startSeller(t *testing.T, f testseller.Faults, adjust func(*Config)) (env, *testseller.Seller) {
	s := testseller.New(testKey, f)
	return start(t, s, adjust), s
}

func (v env) purchase(p PurchaseRequest) (Run, Subscription) {
	v.t.Helper()
	run, err := v.e.Purchase(context.Background(), p)
	if err != nil {
		v.t.Fatalf("Purchase(%+v): %v", p, err)
	}
	sub, ok := v.e.Subscription(run.SubscriptionID)
	if !ok {
		v.t.Fatalf("Purchase(%+v): no subscription %q", p, run.SubscriptionID)
	}
	return run, sub
}

func (v env) play(subID, name string) (Run, Subscription) {
	v.t.Helper()
	run, err := v.e.Play(context.Background(), subID, name)
	if err != nil {
		v.t.Fatalf("Play(%s): %v", name, err)
	}
	sub, _ := v.e.Subscription(subID)
	return run, sub
}

// waitFor polls cond until it holds or 10 s of wall time pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// flaky answers failures to the first n calls, then passes to next.
type flaky struct {
	mu    sync.Mutex
	n     int
	calls int
	next  http.Handler
}

func (f *flaky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.calls++
	fail := f.calls <= f.n
	f.mu.Unlock()
	if fail {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	f.next.ServeHTTP(w, r)
}

func (f *flaky) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}
