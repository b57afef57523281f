package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/openapi/openapitest"
	"github.com/koobridge/koobridge/internal/store/postgres/pgtest"
	"github.com/koobridge/koobridge/protocol/sign"
	"github.com/koobridge/koobridge/provision"
)

// The replica and crash tests run real "koobridge serve" processes on
// PostgreSQL. They share these helpers with crash_test.go.

// replicaDataKey is the at-rest key every replica of a test shares: a
// password sealed by one must open on the other.
const replicaDataKey = "ABEiM0RVZneImaq7zN3u/wARIjNEVWZ3iJmqu8zd7v8="

// pgServeArgs are the flags of one replica on the database dsn, with
// Query Order answered by openAPIURL and the vendor at webhookURL (""
// means the demo provisioner). A small pool per replica leaves the shared
// server's connections to the tests running beside this one.
func pgServeArgs(dsn, key, openAPIURL, webhookURL string, extra ...string) []string {
	args := []string{"--listen", "127.0.0.1:0", "--db", dsn, "--db-max-conns", "8",
		"--key", key, "--data-key", replicaDataKey, "--ak", testAK, "--sk", testSK, "--openapi-url", openAPIURL,
		"--admin-token", adminToken}
	if webhookURL != "" {
		args = append(args, "--provisioner", "webhook", "--webhook-url", webhookURL,
			"--webhook-secret", "vendor-secret", "--webhook-timeout", "5s")
	}
	return append(args, extra...)
}

// signV2 signs a call as KooGallery does, with a fresh nonce. Unlike
// newSignedCall it needs no *testing.T, so load goroutines may use it.
func signV2(key string, body map[string]string) signedCall {
	raw, _ := json.Marshal(body) // a map of strings always encodes
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	nonce := strings.ToUpper(hex.EncodeToString(b))
	ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
	sig := sign.V2Signature(key, nonce, ts, raw)
	return signedCall{body: raw, query: "signature=" + sig + "&timestamp=" + ts + "&nonce=" + nonce}
}

// post sends the call with client and checks the reply as KooGallery
// would: HTTP 200, a valid Body-Sign with key, a JSON body. Any failure is
// returned, so goroutines may use it.
func (c signedCall) post(client *http.Client, base, key string) (v2Reply, error) {
	resp, err := client.Post(base+"/produce?"+c.query, "application/json;charset=utf8", bytes.NewReader(c.body))
	if err != nil {
		return v2Reply{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return v2Reply{}, fmt.Errorf("read reply: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return v2Reply{}, fmt.Errorf("status %d: %s", resp.StatusCode, raw)
	}
	if err := sign.VerifyBodySign(key, resp.Header.Get(sign.BodySignHeader), raw); err != nil {
		return v2Reply{}, fmt.Errorf("Body-Sign of %s: %w", raw, err)
	}
	var r v2Reply
	if err := json.Unmarshal(raw, &r); err != nil {
		return v2Reply{}, fmt.Errorf("reply %q: %w", raw, err)
	}
	return r, nil
}

// loadClient is an HTTP client for many concurrent calls to a few hosts.
func loadClient(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
}

// countingVendor is a webhook vendor that counts instance.created
// deliveries by event id, optionally taking delay over each.
type countingVendor struct {
	delay time.Duration

	mu       sync.Mutex
	byEvent  map[string]int
	total    int
	inFlight int
}

func (v *countingVendor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var ev provision.Event
	if err := json.NewDecoder(r.Body).Decode(&ev); err != nil {
		http.Error(w, "bad event", http.StatusBadRequest)
		return
	}
	if r.Header.Get("Koobridge-Signature") == "" {
		http.Error(w, "unsigned", http.StatusUnauthorized)
		return
	}
	v.mu.Lock()
	if ev.Type == provision.EventCreated {
		if v.byEvent == nil {
			v.byEvent = map[string]int{}
		}
		v.byEvent[ev.ID]++
		v.total++
	}
	v.inFlight++
	v.mu.Unlock()
	defer func() { v.mu.Lock(); v.inFlight--; v.mu.Unlock() }()
	if v.delay > 0 {
		select {
		case <-time.After(v.delay):
		case <-r.Context().Done():
			return // the caller is gone (killed, or timed out)
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(provision.Result{AppInfo: &provision.AppInfo{
		FrontEndURL: "https://vendor.example/" + ev.Instance.ID, UserName: "admin", Password: "Vendor-Pass-123!",
	}})
}

// counts returns the distinct instance.created events delivered, all
// such deliveries, and the deliveries being served now.
func (v *countingVendor) counts() (distinct, total, inFlight int) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.byEvent), v.total, v.inFlight
}

// delivered reports how often the instance.created event of id arrived.
func (v *countingVendor) delivered(instanceID string) int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.byEvent[string(provision.EventCreated)+":"+instanceID]
}

type adminInstance struct {
	ID          string `json:"id"`
	OrderID     string `json:"orderId"`
	OrderLineID string `json:"orderLineId"`
	Status      string `json:"status"`
}

// instancesOf lists every instance through the admin API.
func instancesOf(t *testing.T, base string) []adminInstance {
	t.Helper()
	var all []adminInstance
	after := ""
	for {
		code, body := httpGet(t, base+"/admin/api/instances?limit=1000&after="+after, adminToken)
		if code != 200 {
			t.Fatalf("admin instances: %d %s", code, body)
		}
		var page struct {
			Instances []adminInstance `json:"instances"`
			Next      string          `json:"next"`
		}
		if err := json.Unmarshal([]byte(body), &page); err != nil {
			t.Fatal(err)
		}
		all = append(all, page.Instances...)
		if page.Next == "" {
			return all
		}
		after = page.Next
	}
}

type queueJob struct {
	ID        int64  `json:"id"`
	Kind      string `json:"kind"`
	UniqueKey string `json:"uniqueKey"`
	State     string `json:"state"`
	Attempts  int    `json:"attempts"`
	LastError string `json:"lastError"`
	Payload   struct {
		InstanceID string `json:"instanceId"`
	} `json:"payload"`
}

// queueJobs lists every job through the admin API.
func queueJobs(t *testing.T, base string) []queueJob {
	t.Helper()
	var all []queueJob
	before := ""
	for {
		code, body := httpGet(t, base+"/admin/api/jobs?limit=1000&before="+before, adminToken)
		if code != 200 {
			t.Fatalf("admin jobs: %d %s", code, body)
		}
		var page struct {
			Jobs []queueJob `json:"jobs"`
			Next string     `json:"next"`
		}
		if err := json.Unmarshal([]byte(body), &page); err != nil {
			t.Fatal(err)
		}
		all = append(all, page.Jobs...)
		if page.Next == "" {
			return all
		}
		before = page.Next
	}
}

// waitQueueSettled waits until no job is available or running, fails the
// test if any is dead, and returns the jobs.
func waitQueueSettled(t *testing.T, base string) []queueJob {
	t.Helper()
	var jobs []queueJob
	waitFor(t, "every job done", func() bool {
		jobs = queueJobs(t, base)
		for _, j := range jobs {
			if j.State == "available" || j.State == "running" {
				return false
			}
		}
		return true
	})
	for _, j := range jobs {
		if j.State != "done" {
			t.Errorf("job %d (%s %s) is %s after %d attempts: %s", j.ID, j.Kind, j.UniqueKey, j.State, j.Attempts, j.LastError)
		}
	}
	return jobs
}

// checkOnePerLine checks that the instances are exactly one per order in
// want (order ID → the instance ID a reply named, "" when none did) and
// that each has exactly one provision job. It returns instances by order.
func checkOnePerLine(t *testing.T, instances []adminInstance, jobs []queueJob, want map[string]string) map[string]adminInstance {
	t.Helper()
	byOrder := map[string]adminInstance{}
	for _, in := range instances {
		if _, dup := byOrder[in.OrderID]; dup {
			t.Errorf("order %s has two instances", in.OrderID)
		}
		byOrder[in.OrderID] = in
		if _, ok := want[in.OrderID]; !ok {
			t.Errorf("instance %s of unexpected order %s", in.ID, in.OrderID)
		}
	}
	for order, id := range want {
		in, ok := byOrder[order]
		switch {
		case !ok:
			t.Errorf("order %s has no instance", order)
		case id != "" && in.ID != id:
			t.Errorf("order %s: instance %s, but a reply named %s", order, in.ID, id)
		}
	}
	provisionJobs := map[string]int{}
	for _, j := range jobs {
		if j.Kind == "provision" {
			provisionJobs[j.Payload.InstanceID]++
		}
	}
	for _, in := range instances {
		if n := provisionJobs[in.ID]; n != 1 {
			t.Errorf("instance %s (order %s) has %d provision jobs, want 1", in.ID, in.OrderID, n)
		}
	}
	if len(instances) != len(want) {
		t.Errorf("%d instances, want %d", len(instances), len(want))
	}
	return byOrder
}

// TestReplicasNewInstance: two serve processes on one PostgreSQL schema
// receive 100 order lines × 10 newInstance calls at once, alternating.
// Exactly one instance and one provisioning per line, and every repeat
// names its line's instance.
func TestReplicasNewInstance(t *testing.T) {
	const lines, repeats = 100, 10
	koobridgeBinary(t) // build first; skips with -short
	dsn := pgtest.Schema(t, pgtest.DSN(t))
	mock := openapitest.NewServer(t, testAK, testSK)
	orders := make([]string, lines)
	for i := range orders {
		orders[i] = fmt.Sprintf("REPL%03d", i)
		addOrder(mock, orders[i])
	}
	// Delivery is at-least-once: an event is delivered again only when the
	// attempt that delivered it could not record its outcome (its process
	// died, or its lease ran out while the vendor worked). This vendor
	// answers at once, nothing dies and the lease is the default 2 minutes,
	// so here each instance.created must arrive exactly once.
	v := &countingVendor{}
	vendorURL := newHTTPServer(t, v)
	key := "replicas-test-key-0123"
	args := pgServeArgs(dsn, key, mock.URL(), vendorURL)
	p1 := startServe(t, args...)
	p2 := startServe(t, args...)
	bases := []string{p1.base, p2.base}

	type reply struct {
		line int
		r    v2Reply
		err  error
	}
	client := loadClient(2 * waitLong)
	results := make(chan reply, lines*repeats)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, order := range orders {
		body := newInstanceBody(order) // KooGallery repeats the same body with a new nonce
		for j := range repeats {
			c := signV2(key, body)
			base := bases[(i*repeats+j)%len(bases)]
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				r, err := c.post(client, base, key)
				results <- reply{i, r, err}
			}()
		}
	}
	close(start)
	wg.Wait()
	close(results)

	idOf := map[string]string{}
	codes := map[string]int{}
	for res := range results {
		order := orders[res.line]
		if res.err != nil {
			t.Errorf("%s: %v", order, res.err)
			continue
		}
		codes[res.r.ResultCode]++
		if res.r.ResultCode != "000000" && res.r.ResultCode != "000004" {
			t.Errorf("%s: %+v", order, res.r)
		}
		switch id := idOf[order]; {
		case res.r.InstanceID == "":
			t.Errorf("%s: no instanceId: %+v", order, res.r)
		case id == "":
			idOf[order] = res.r.InstanceID
		case id != res.r.InstanceID:
			t.Errorf("%s answered with two instances: %s and %s", order, id, res.r.InstanceID)
		}
	}
	t.Logf("result codes of %d calls: %v", lines*repeats, codes)
	if t.Failed() {
		t.FailNow()
	}

	jobs := waitQueueSettled(t, p1.base)
	byOrder := checkOnePerLine(t, instancesOf(t, p2.base), jobs, idOf)
	for order, in := range byOrder {
		if in.Status != "active" {
			t.Errorf("%s: instance %s is %s", order, in.ID, in.Status)
		}
	}
	distinct, total, _ := v.counts()
	if distinct != lines || total != lines {
		t.Errorf("vendor got %d instance.created deliveries of %d distinct events, want %d of %d", total, distinct, lines, lines)
	}
	t.Logf("Query Order calls: %d", mock.QueryOrderCalls())
}
