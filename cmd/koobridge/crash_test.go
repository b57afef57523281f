package main

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/openapi/openapitest"
	"github.com/koobridge/koobridge/internal/store/postgres/pgtest"
)

// TestCrashKill9: a replica is killed with SIGKILL while provisioning
// calls are arriving and a slow vendor holds deliveries. Restarted on the
// same database it loses and doubles nothing: KooGallery's retries get the
// instances already answered, the dead process's jobs are taken over once
// their lease expires, and every instance ends up active.
func TestCrashKill9(t *testing.T) {
	const lines = 40
	koobridgeBinary(t) // build first; skips with -short
	dsn := pgtest.Schema(t, pgtest.DSN(t))
	mock := openapitest.NewServer(t, testAK, testSK)
	orders := make([]string, lines)
	for i := range orders {
		orders[i] = fmt.Sprintf("KILL%03d", i)
		addOrder(mock, orders[i])
	}
	// Each delivery takes 1.5 s against a 500 ms budget: calls answer
	// 000004 and leave their provisioning in flight. A 10 s lease (the
	// shortest serve allows) lets the restarted process take over the
	// killed one's jobs soon.
	v := &countingVendor{delay: 1500 * time.Millisecond}
	vendorURL := newHTTPServer(t, v)
	key := "crash-test-key-0123"
	args := pgServeArgs(dsn, key, mock.URL(), vendorURL, "--budget", "500ms", "--job-lease", "10s", "--job-workers", "8")
	p := startServe(t, args...)

	type reply struct {
		r   v2Reply
		err error
	}
	var (
		mu       sync.Mutex
		answered = map[int]reply{}
		wg       sync.WaitGroup
	)
	bodies := make([]map[string]string, lines)
	first := make([]signedCall, lines)
	client := loadClient(waitLong)
	for i, order := range orders {
		bodies[i] = newInstanceBody(order)
		first[i] = signV2(key, bodies[i])
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Spread over about two seconds, so the kill lands mid-load.
			time.Sleep(time.Duration(i) * 50 * time.Millisecond)
			r, err := first[i].post(client, p.base, key)
			mu.Lock()
			answered[i] = reply{r, err}
			mu.Unlock()
		}()
	}
	waitFor(t, "answers while the vendor holds deliveries", func() bool {
		mu.Lock()
		n := len(answered)
		mu.Unlock()
		_, _, inFlight := v.counts()
		return n >= lines/4 && inFlight > 0
	})
	_ = p.stop(t, syscall.SIGKILL)
	wg.Wait()

	// Before the kill every answer was signed and accepted; after it calls
	// fail in transport, which KooGallery retries.
	idOf := map[string]string{}
	lost := 0
	for i, order := range orders {
		res := answered[i]
		switch {
		case res.err != nil:
			lost++
			idOf[order] = ""
		case (res.r.ResultCode != "000000" && res.r.ResultCode != "000004") || res.r.InstanceID == "":
			t.Errorf("%s before the kill: %+v", order, res.r)
		default:
			idOf[order] = res.r.InstanceID
		}
	}
	t.Logf("%d of %d calls answered before the kill, %d cut off", lines-lost, lines, lost)

	p = startServe(t, args...)
	// A replayed nonce stays rejected across the crash.
	for i, order := range orders {
		if idOf[order] != "" {
			if r := first[i].send(t, p.base, key); r.ResultCode != "000001" {
				t.Errorf("replayed nonce of %s after the restart: %+v", order, r)
			}
			break
		}
	}
	// KooGallery's retries: the same body, a new nonce.
	for i, order := range orders {
		r, err := signV2(key, bodies[i]).post(client, p.base, key)
		switch {
		case err != nil:
			t.Fatalf("retry %s: %v", order, err)
		case r.ResultCode != "000000" && r.ResultCode != "000004":
			t.Errorf("retry %s: %+v", order, r)
		case idOf[order] != "" && r.InstanceID != idOf[order]:
			t.Errorf("retry %s: instance %s, before the kill %s", order, r.InstanceID, idOf[order])
		}
		idOf[order] = r.InstanceID
	}

	jobs := waitQueueSettled(t, p.base)
	byOrder := checkOnePerLine(t, instancesOf(t, p.base), jobs, idOf)
	for order, in := range byOrder {
		if q := call(t, p.base, key, queryBody(in.ID)); q.ResultCode != "000000" {
			t.Errorf("queryInstance %s (%s): %+v", in.ID, order, q)
		}
		if v.delivered(in.ID) == 0 {
			t.Errorf("instance %s (%s) was never delivered to the vendor", in.ID, order)
		}
	}
	// Deliveries cut off by the kill are made again: at least once, not
	// exactly once.
	distinct, total, _ := v.counts()
	t.Logf("vendor: %d instance.created deliveries of %d events", total, distinct)
	if distinct != lines {
		t.Errorf("vendor saw %d distinct instance.created events, want %d", distinct, lines)
	}
}

// TestCrashPostgresRestart: the database is restarted under load. Calls
// made while it is down answer 000005 at once, /readyz follows the
// database, koobridge recovers by itself, and nothing is half-written:
// every instance answered 000000 or 000004 exists once with its provision
// job, and a retry of every failed call succeeds.
func TestCrashPostgresRestart(t *testing.T) {
	const maxLines = 400
	koobridgeBinary(t) // build first; skips with -short
	cluster := pgtest.StartCluster(t)
	mock := openapitest.NewServer(t, testAK, testSK)
	orders := make([]string, maxLines)
	for i := range orders {
		orders[i] = fmt.Sprintf("PGRS%03d", i)
		addOrder(mock, orders[i])
	}
	key := "pg-restart-key-0123"
	args := pgServeArgs(cluster.DSN(), key, mock.URL(), "", "--budget", "2s", "--job-lease", "10s")
	p := startServe(t, args...)

	type reply struct {
		line       int
		sent, done time.Time
		r          v2Reply
		err        error
	}
	var (
		mu      sync.Mutex
		replies []reply
		next    atomic.Int64
		stop    = make(chan struct{})
		wg      sync.WaitGroup
	)
	bodies := make([]map[string]string, maxLines)
	for i, order := range orders {
		bodies[i] = newInstanceBody(order)
	}
	// The client timeout is KooGallery's patience: a call that outlives it
	// is a hang, and fails the test.
	const clientTimeout = 15 * time.Second
	client := loadClient(clientTimeout)
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				i := int(next.Add(1)) - 1
				if i >= maxLines {
					return
				}
				sent := time.Now()
				r, err := signV2(key, bodies[i]).post(client, p.base, key)
				mu.Lock()
				replies = append(replies, reply{i, sent, time.Now(), r, err})
				mu.Unlock()
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	snapshot := func() []reply {
		mu.Lock()
		defer mu.Unlock()
		return append([]reply(nil), replies...)
	}
	countSince := func(since time.Time, ok func(reply) bool) int {
		n := 0
		for _, r := range snapshot() {
			if r.sent.After(since) && ok(r) {
				n++
			}
		}
		return n
	}
	every := func(reply) bool { return true }
	accepted := func(r reply) bool {
		return r.err == nil && (r.r.ResultCode == "000000" || r.r.ResultCode == "000004")
	}
	readyz := func() int {
		resp, err := http.Get(p.base + "/readyz")
		if err != nil {
			t.Fatalf("readyz: %v", err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	loadStart := time.Now()
	waitFor(t, "calls accepted before the restart", func() bool { return countSince(loadStart, accepted) >= 20 })
	cluster.Stop()
	down := time.Now()
	waitFor(t, "/readyz 503 while PostgreSQL is down", func() bool { return readyz() == http.StatusServiceUnavailable })
	waitFor(t, "calls answered while PostgreSQL is down", func() bool { return countSince(down, every) >= 15 })
	up := time.Now()
	cluster.Start()
	waitFor(t, "/readyz 200 after PostgreSQL is back", func() bool { return readyz() == http.StatusOK })
	ready := time.Now()
	waitFor(t, "calls accepted again", func() bool { return countSince(ready, accepted) >= 20 })
	close(stop)
	wg.Wait()

	all := snapshot()
	idOf := map[string]string{}
	var retry []int
	codes := map[string]int{}
	for _, r := range all {
		order := orders[r.line]
		if r.err != nil {
			// A transport error here is a hang past the client timeout, or
			// a reply KooGallery could not use.
			t.Errorf("%s sent %v after the load started: %v", order, r.sent.Sub(loadStart).Round(time.Millisecond), r.err)
			continue
		}
		codes[r.r.ResultCode]++
		switch r.r.ResultCode {
		case "000000", "000004":
			if r.r.InstanceID == "" {
				t.Errorf("%s: accepted without an instanceId: %+v", order, r.r)
			}
			if r.sent.After(down) && r.done.Before(up) {
				t.Errorf("%s accepted while PostgreSQL was down: %+v", order, r.r)
			}
			idOf[order] = r.r.InstanceID
		case "000005":
			idOf[order] = ""
			retry = append(retry, r.line)
		default:
			t.Errorf("%s: unexpected answer %+v", order, r.r)
		}
	}
	t.Logf("%d calls: %v; %d while PostgreSQL was down", len(all), codes, countSince(down, func(r reply) bool { return r.done.Before(up) }))
	// Where the 000005 answers fell: in flight when the server stopped,
	// during the outage, while it started, after /readyz said 200.
	var failed [4]int
	for _, r := range all {
		if r.err != nil || r.r.ResultCode != "000005" {
			continue
		}
		switch {
		case r.sent.Before(down):
			failed[0]++
		case r.sent.Before(up):
			failed[1]++
		case r.sent.Before(ready):
			failed[2]++
		default:
			failed[3]++
		}
	}
	t.Logf("000005 answers by when the call was sent: before Stop returned %d, down %d, starting %d, after /readyz 200 %d",
		failed[0], failed[1], failed[2], failed[3])

	// KooGallery retries every 000005: each succeeds, and a line that was
	// written before its failure keeps its instance.
	for _, i := range retry {
		order := orders[i]
		r, err := signV2(key, bodies[i]).post(client, p.base, key)
		switch {
		case err != nil:
			t.Errorf("retry %s: %v", order, err)
		case r.ResultCode != "000000" && r.ResultCode != "000004" || r.InstanceID == "":
			t.Errorf("retry %s: %+v", order, r)
		default:
			idOf[order] = r.InstanceID
		}
	}
	jobs := waitQueueSettled(t, p.base)
	byOrder := checkOnePerLine(t, instancesOf(t, p.base), jobs, idOf)
	for order, in := range byOrder {
		if in.Status != "active" {
			t.Errorf("%s: instance %s is %s", order, in.ID, in.Status)
		}
	}
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("exit %d after SIGTERM", code)
	}
}
