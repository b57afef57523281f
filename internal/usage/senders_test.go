package usage_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/openapi"
	"github.com/koobridge/koobridge/internal/store"
)

// racePusher: the first call waits for release and then answers MKT.9004
// (the 21-day edge passed while it was under way); a call with several
// records after it answers MKT.0000; one-record calls MKT.9004.
type racePusher struct {
	calls   atomic.Int64
	started chan struct{}
	release chan struct{}
}

func (p *racePusher) PushUsage(ctx context.Context, _ string, body []byte) (openapi.UsagePushResult, error) {
	n := p.calls.Add(1)
	tooOld := func() (openapi.UsagePushResult, error) {
		return openapi.UsagePushResult{HTTPStatus: 500, Code: "MKT.9004", Message: "too old"},
			&openapi.Error{HTTPStatus: 500, Code: "MKT.9004", Message: "too old"}
	}
	if n == 1 {
		close(p.started)
		<-p.release
		return tooOld()
	}
	if strings.Count(string(body), "metering_sn") > 1 {
		return openapi.UsagePushResult{HTTPStatus: 200, Code: "MKT.0000"}, nil
	}
	return tooOld()
}
func (p *racePusher) PushUsageOld(ctx context.Context, body []byte) (openapi.UsagePushResult, error) {
	return p.PushUsage(ctx, "", body)
}

// TestConcurrentSenders: of two senders of one push (the console's Send
// now while the job is under way) only the first answer counts: a later
// refusal does not split and kill periods KooGallery accepted.
func TestConcurrentSenders(t *testing.T) {
	forEachDialect(t, options{stopped: true}, func(t *testing.T, e *env) {
		now := e.clk.Now()
		e.buy(t, "i-a", onDemand, "P", "O1", now.Add(-2*time.Hour))
		e.buy(t, "i-b", onDemand, "P", "O2", now.Add(-2*time.Hour))
		e.ingest(t, rec("a", "i-a", "1", now.Add(-time.Hour)), rec("b", "i-b", "1", now.Add(-time.Hour)))

		p := &racePusher{started: make(chan struct{}), release: make(chan struct{})}
		cfg := e.cfg
		cfg.Pusher = p
		e.rebuild(t, cfg)
		e.run(t)
		svc := e.svc

		select {
		case <-p.started:
		case <-time.After(20 * time.Second):
			t.Fatal("no push")
		}
		pushes, err := e.st.UsagePushes(context.Background(), store.UsagePushFilter{Limit: 10})
		if err != nil || len(pushes) != 1 {
			t.Fatalf("pushes %v %v", pushes, err)
		}
		if err := svc.RetryPush(context.Background(), pushes[0].ID); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			if ps := e.periods(t, "i-a"); len(ps) == 1 && ps[0].State == store.UsageAccepted {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		close(p.release)
		time.Sleep(2 * time.Second)
		for _, id := range []string{"i-a", "i-b"} {
			for _, per := range e.periods(t, id) {
				if per.State != store.UsageAccepted {
					t.Errorf("%s period %v: %s %s after KooGallery accepted it (calls %d)", id, per.Start, per.State, per.Code, p.calls.Load())
				}
			}
		}
		atts, _ := e.st.UsagePushAttempts(context.Background(), pushes[0].ID)
		t.Logf("attempts recorded for push %d: %d (two requests were sent)", pushes[0].ID, len(atts))
	})
}
