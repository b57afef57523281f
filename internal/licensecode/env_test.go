package licensecode_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/inbound"
	"github.com/koobridge/koobridge/internal/jobs"
	"github.com/koobridge/koobridge/internal/license"
	"github.com/koobridge/koobridge/internal/licensecode"
	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/internal/store/dbtest"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
	"github.com/koobridge/koobridge/provision"
)

const (
	licenseKey = "license-key-0123456789"
	basicKey   = "basic-key-0123456789"
)

// waitFor bounds every poll; generous for a loaded 2-core machine.
const waitFor = 30 * time.Second

// recorder is a provisioner that records the events it was given.
type recorder struct {
	mu     sync.Mutex
	events []provision.Event
}

func (r *recorder) Provision(_ context.Context, ev provision.Event) (provision.Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
	return provision.Result{}, nil
}

func (r *recorder) delivered() []provision.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

var dialects = dbtest.Dialects

// env is the family behind the real inbound pipeline on a real database,
// served over HTTP, with a running job runner.
type env struct {
	st   store.Store
	srv  *httptest.Server
	real *recorder
	test *recorder
}

// forEachDialect runs fn against a fresh env on each database.
func forEachDialect(t *testing.T, fn func(t *testing.T, e *env)) {
	for _, d := range dialects {
		t.Run(d.Name, func(t *testing.T) { fn(t, newEnv(t, d.Open(t))) })
	}
}

func newEnv(t *testing.T, st store.Store) *env {
	t.Helper()
	t.Cleanup(func() { st.Close() })
	quiet := slog.New(slog.DiscardHandler)
	e := &env{st: st, real: &recorder{}, test: &recorder{}}
	runner := jobs.NewRunner(jobs.Config{Store: st, Workers: 3, Poll: 10 * time.Millisecond, Logger: quiet})
	svc, err := license.New(license.Config{Store: st, Provisioner: e.real, TestProvisioner: e.test, Jobs: runner, Logger: quiet,
		DeviceKey: []byte("licensecode-test-device-key-0123456789")})
	if err != nil {
		t.Fatal(err)
	}
	f := licensecode.Family(svc, "/license")
	if err := runner.RegisterAll(f.Jobs); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = runner.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	in, err := inbound.New(inbound.Config{
		Families: []*inbound.Family{f},
		Keys:     inbound.Keys{inbound.KeyLicense: {licenseKey}, inbound.KeyBasic: {basicKey}},
		Store:    st,
		Logger:   quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(in)
	t.Cleanup(e.srv.Close)
	return e
}

// reply is an answer as received.
type reply struct {
	status int
	body   string
	code   string
	msg    string
}

var nonceSeq atomic.Int64

// post sends body to /license signed in the URL with key, as KooGallery
// does, and checks the reply's Body-Sign (always the license key's).
func (e *env) post(t *testing.T, key, body string) reply {
	t.Helper()
	nonce := "nonce-" + strconv.FormatInt(nonceSeq.Add(1), 10) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
	q := "signature=" + sign.V2Signature(key, nonce, ts, []byte(body)) + "&timestamp=" + ts + "&nonce=" + nonce
	resp, err := http.Post(e.srv.URL+"/license?"+q, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var r protocol.Response
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("reply %q: %v", b, err)
	}
	if err := sign.VerifyBodySign(licenseKey, resp.Header.Get(sign.BodySignHeader), b); err != nil {
		t.Errorf("Body-Sign does not verify with the license key: %v", err)
	}
	return reply{status: resp.StatusCode, body: string(b), code: string(r.ResultCode), msg: r.ResultMsg}
}

// call posts body signed with the license key and wants code.
func (e *env) call(t *testing.T, body, code string) reply {
	t.Helper()
	r := e.post(t, licenseKey, body)
	if r.code != code || r.status != http.StatusOK {
		t.Fatalf("%s: answered %d %s %q, want %s", body, r.status, r.code, r.msg, code)
	}
	return r
}

// code reads (code, test); ok false when it is not recorded.
func (e *env) code(t *testing.T, code string, test bool) (store.LicenseCode, bool) {
	t.Helper()
	c, err := e.st.LicenseCode(context.Background(), code, test)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	return c, err == nil
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

// settle waits until every event job is finished and returns the events
// the real and the test provisioner took for the changes, without the
// corrections (an event that reached the vendor after a later change
// makes the domain send the current status again: how many depends on
// the runner's timing).
func (e *env) settle(t *testing.T) (real, test []provision.Event) {
	t.Helper()
	real, test = e.settleAll(t)
	return withoutCorrections(real), withoutCorrections(test)
}

// withoutCorrections leaves out the events that correct the vendor's
// view of a status (their ID's last part is "fix-<job>").
func withoutCorrections(evs []provision.Event) []provision.Event {
	// A copy: DeleteFunc zeroes the tail of the slice it is given, which
	// the caller may still read.
	return slices.DeleteFunc(slices.Clone(evs), func(ev provision.Event) bool { return strings.Contains(ev.ID, ":fix-") })
}

// settleAll waits until every event job is finished and returns every
// event the real and the test provisioner took.
func (e *env) settleAll(t *testing.T) (real, test []provision.Event) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		js, err := e.st.Jobs(context.Background(), store.JobFilter{Kind: license.KindEvent, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		live := 0
		for _, j := range js {
			if j.State != store.JobDone {
				live++
			}
		}
		if live == 0 {
			return e.real.delivered(), e.test.delivered()
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d event jobs not done after %v", live, waitFor)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Bodies of the three calls.
func refresh(code, order, expire, scene, extra string) string {
	return `{"activity":"refreshLicenseCode","expireTime":"` + expire + `","license":"` + code + `","orderId":"` + order +
		`","orderLineId":"` + order + `-1","scene":"` + scene + `"` + extra + `}`
}

func status(code, st, extra string) string {
	return `{"activity":"updateLicenseCodeStatus","license":"` + code + `","status":"` + st + `"` + extra + `}`
}

func release(code, extra string) string {
	return `{"activity":"releaseLicenseCode","license":"` + code + `"` + extra + `}`
}

const debug = `,"testFlag":"1"`
