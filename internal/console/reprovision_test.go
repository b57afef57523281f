package console

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/instance"
	"github.com/koobridge/koobridge/internal/store"
)

// logBuffer is a log destination the handlers and the test share.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// seedStuck adds instance "inst-stuck", provisioning, whose only
// provision job is dead, and then more jobs of another kind than the
// page's job list looks at: the button must still be offered, because
// the lifecycle service, not that list, decides.
func seedStuck(t *testing.T, st store.Store) {
	t.Helper()
	ctx := context.Background()
	var jobID int64
	err := st.Tx(ctx, func(ctx context.Context, tx store.Tx) error {
		if _, err := tx.InsertInstance(ctx, store.Instance{
			ID: "inst-stuck", OrderID: "ORDERSTUCK", OrderLineID: "ORDERSTUCK-000001", OrderState: store.OrderPending,
			Status: store.StatusProvisioning, ChargingMode: "PERIOD", CreatedAt: t0, UpdatedAt: t0,
		}); err != nil {
			return err
		}
		var err error
		jobID, _, err = tx.EnqueueJob(ctx, store.Job{Kind: instance.KindProvision, UniqueKey: "seed:provision:inst-stuck",
			Payload: []byte(`{"instanceId":"inst-stuck"}`), MaxAttempts: 1, RunAt: t0, CreatedAt: t0, UpdatedAt: t0})
		return err
	})
	if err != nil {
		t.Fatalf("seed: %v", err)
	}
	if _, err := st.ClaimJobByID(ctx, jobID, "w1", t0, time.Minute); err != nil {
		t.Fatalf("claim: %v", err)
	}
	if err := st.DeadJob(ctx, jobID, "w1", "Query Order never answered"); err != nil {
		t.Fatalf("dead: %v", err)
	}
	err = st.Tx(ctx, func(ctx context.Context, tx store.Tx) error {
		for i := range jobScanPages*maxLimit + 1 {
			if _, _, err := tx.EnqueueJob(ctx, store.Job{Kind: "filler", UniqueKey: fmt.Sprintf("filler-%d", i),
				Payload: []byte(`{"instanceId":"inst-1"}`), MaxAttempts: 1, RunAt: t0.AddDate(100, 0, 0), CreatedAt: t0, UpdatedAt: t0}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("seed filler jobs: %v", err)
	}
}

// TestWebReprovisionStuck: a provisioning instance whose provision job is
// dead offers the re-run, even when its jobs are too old for the page's
// job list, and the form enqueues a fresh provision job.
func TestWebReprovisionStuck(t *testing.T) {
	f := newWebFixture(t, nil)
	seedStuck(t, f.st)
	svc := runService(t, f.st)
	logs := &logBuffer{}
	web := httptest.NewServer(NewWeb(WebConfig{Store: f.st, Service: svc, Token: token,
		Logger: slog.New(slog.NewTextHandler(logs, nil))}))
	defer web.Close()
	f.web = web
	cookie := f.login(t)

	page := f.get(t, cookie, "/admin/instances/inst-stuck")
	if !strings.Contains(page, `id="reprovision"`) {
		t.Fatalf("stuck instance offers no re-run\n%s", page)
	}
	if !strings.Contains(page, `id="jobs-truncated"`) {
		t.Error("the job list does not say it stopped early")
	}
	r := send(t, web.URL, "POST", "/admin/instances/inst-stuck/reprovision", cookie, url.Values{"csrf": {csrfOf(t, page)}})
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/admin/instances/inst-stuck?done=reprovision" {
		t.Fatalf("reprovision: %d to %q\n%s", r.StatusCode, r.Header.Get("Location"), r.body)
	}
	js, err := f.st.Jobs(context.Background(), store.JobFilter{Kind: instance.KindProvision})
	if err != nil || len(js) != 2 {
		t.Fatalf("provision jobs after reprovision: %d (%v), want the dead one and a fresh one", len(js), err)
	}
	if got := logs.String(); !strings.Contains(got, "admin reprovisioned instance") || !strings.Contains(got, `via="admin console"`) {
		t.Errorf("no audit line for the reprovision:\n%s", got)
	}
}

// TestAPIReprovisionLogged: a reprovision through the JSON API is logged
// as one through the console is.
func TestAPIReprovisionLogged(t *testing.T) {
	f := newFixture(t)
	svc := runService(t, f.st)
	logs := &logBuffer{}
	api := httptest.NewServer(NewAPI(APIConfig{Store: f.st, Service: svc, Token: token,
		Logger: slog.New(slog.NewTextHandler(logs, nil))}))
	defer api.Close()
	f.srv = api
	var inst map[string]any
	if code := f.do(t, "POST", "/admin/api/instances/inst-3/reprovision", &inst); code != http.StatusAccepted {
		t.Fatalf("reprovision: %d %v", code, inst)
	}
	got := logs.String()
	if !strings.Contains(got, "admin reprovisioned instance") || !strings.Contains(got, "instance=inst-3") || !strings.Contains(got, `via="admin api"`) {
		t.Errorf("no audit line for the API reprovision:\n%s", got)
	}
}
