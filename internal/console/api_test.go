package console

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/instance"
	"github.com/koobridge/koobridge/internal/jobs"
	"github.com/koobridge/koobridge/internal/openapi"
	"github.com/koobridge/koobridge/internal/openapi/openapitest"
	"github.com/koobridge/koobridge/internal/seal"
	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/internal/store/sqlite"
	"github.com/koobridge/koobridge/provision"
)

const token = "test-admin-token-0123456789"

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fixture is a real SQLite store with instances, calls and jobs, behind a
// real HTTP server running the admin API.
type fixture struct {
	st   store.Store
	srv  *httptest.Server
	jobs map[string]int64 // by unique key
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "admin.db"))
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	f := &fixture{st: st, jobs: map[string]int64{}}

	err = st.Tx(ctx, func(ctx context.Context, tx store.Tx) error {
		for i := 1; i <= 5; i++ {
			status := store.StatusActive
			if i == 3 {
				status = store.StatusFailed
			}
			inst := store.Instance{
				ID: fmt.Sprintf("inst-%d", i), OrderID: fmt.Sprintf("ORDER%d", i), OrderLineID: fmt.Sprintf("ORDER%d-000001", i),
				Test: i%2 == 0, OrderState: store.OrderFetched, Status: status, ChargingMode: "PERIOD",
				AppInfo:   store.AppInfo{FrontEndURL: "https://app/" + fmt.Sprint(i), UserName: "admin", PasswordSealed: "v1:SEALEDSECRET"},
				CreatedAt: t0, UpdatedAt: t0,
			}
			if _, err := tx.InsertInstance(ctx, inst); err != nil {
				return err
			}
		}
		for i, status := range []store.OrderNotificationStatus{store.NotificationDelivered, store.NotificationPending, store.NotificationFailed} {
			n := store.OrderNotification{
				OrderID: fmt.Sprintf("NOTIFIED%d", i+1), OrderLineID: fmt.Sprintf("NOTIFIED%d-000001", i+1), Status: status,
				CreatedAt: t0.Add(time.Duration(i) * time.Minute), UpdatedAt: t0,
			}
			if status == store.NotificationDelivered {
				n.OrderJSON = `{"orderId":"NOTIFIED1","buyerInfo":{"mobilePhone":"139****5678"}}`
			}
			if status == store.NotificationFailed {
				n.LastError = "vendor rejected the event"
			}
			if _, err := tx.InsertOrderNotification(ctx, n); err != nil {
				return err
			}
		}
		for _, key := range []string{"job-a", "job-b", "job-c"} {
			id, _, err := tx.EnqueueJob(ctx, store.Job{Kind: "fixture", UniqueKey: key, Payload: []byte(`{"instanceId":"inst-3"}`),
				MaxAttempts: 1, RunAt: t0, CreatedAt: t0, UpdatedAt: t0})
			if err != nil {
				return err
			}
			f.jobs[key] = id
		}
		return nil
	})
	if err != nil {
		t.Fatalf("seed: %v", err)
	}
	for i := range 7 {
		inst := "inst-1"
		if i >= 4 {
			inst = "inst-2"
		}
		_, err := st.InsertCall(ctx, store.Call{
			RequestID: fmt.Sprintf("req-%d", i), Interface: "v2", Activity: []string{"newInstance", "queryInstance"}[i%2],
			InstanceID: inst, OrderID: "ORDER1", ResultCode: "000000", Request: `{"activity":"x"}`, Response: `{"resultCode":"000000"}`,
			HTTPStatus: 200, Latency: 1500 * time.Microsecond, CreatedAt: t0.Add(time.Duration(i) * time.Minute),
		})
		if err != nil {
			t.Fatalf("insert call: %v", err)
		}
	}
	// Kill job-b so it can be revived: claim it and mark it dead.
	j, err := st.ClaimJobByID(ctx, f.jobs["job-b"], "w1", t0, time.Minute)
	if err != nil {
		t.Fatalf("claim: %v", err)
	}
	if err := st.DeadJob(ctx, j.ID, "w1", "vendor said no"); err != nil {
		t.Fatalf("dead: %v", err)
	}

	f.srv = httptest.NewServer(NewAPI(APIConfig{Store: st, Token: token, Now: func() time.Time { return t0 }}))
	t.Cleanup(f.srv.Close)
	return f
}

// do sends a request with the token and decodes the JSON answer.
func (f *fixture) do(t *testing.T, method, path string, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s %s: content type %q", method, path, ct)
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("%s %s: decode %q: %v", method, path, body, err)
		}
	}
	return resp.StatusCode
}

type errorBody struct {
	Error string `json:"error"`
}

func TestAuth(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name, header string
		want         int
	}{
		{"no header", "", http.StatusUnauthorized},
		{"wrong token", "Bearer wrong", http.StatusUnauthorized},
		{"token prefix", "Bearer " + token[:10], http.StatusUnauthorized},
		{"basic scheme", "Basic " + token, http.StatusUnauthorized},
		{"right token", "Bearer " + token, http.StatusOK},
		{"scheme in lower case", "bearer " + token, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", f.srv.URL+"/admin/api/instances", nil)
			if tt.header != "" {
				req.Header.Set("Authorization", tt.header)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.want)
			}
			if tt.want == http.StatusUnauthorized {
				var e errorBody
				_ = json.NewDecoder(resp.Body).Decode(&e)
				if e.Error == "" {
					t.Error("401 without an error message")
				}
			}
		})
	}

	// An empty configured token fails closed, even for an empty bearer.
	closed := httptest.NewServer(NewAPI(APIConfig{Store: f.st}))
	defer closed.Close()
	req, _ := http.NewRequest("GET", closed.URL+"/admin/api/instances", nil)
	req.Header.Set("Authorization", "Bearer ")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("empty token: status %d", resp.StatusCode)
	}
}

type instanceList struct {
	Instances []map[string]any `json:"instances"`
	Next      string           `json:"next"`
}

func TestListInstances(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		query    string
		wantIDs  []string
		wantNext string
	}{
		{"", []string{"inst-1", "inst-2", "inst-3", "inst-4", "inst-5"}, ""},
		{"?status=failed", []string{"inst-3"}, ""},
		{"?test=true", []string{"inst-2", "inst-4"}, ""},
		{"?test=false&status=active", []string{"inst-1", "inst-5"}, ""},
		{"?order=ORDER4", []string{"inst-4"}, ""},
		{"?limit=2", []string{"inst-1", "inst-2"}, "inst-2"},
		{"?limit=2&after=inst-2", []string{"inst-3", "inst-4"}, "inst-4"},
		{"?limit=2&after=inst-4", []string{"inst-5"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			var out instanceList
			if code := f.do(t, "GET", "/admin/api/instances"+tt.query, &out); code != http.StatusOK {
				t.Fatalf("status %d", code)
			}
			var ids []string
			for _, i := range out.Instances {
				ids = append(ids, i["id"].(string))
			}
			if fmt.Sprint(ids) != fmt.Sprint(tt.wantIDs) || out.Next != tt.wantNext {
				t.Errorf("ids %v next %q, want %v next %q", ids, out.Next, tt.wantIDs, tt.wantNext)
			}
		})
	}
}

func TestBadQueries(t *testing.T) {
	f := newFixture(t)
	for _, path := range []string{
		"/admin/api/instances?status=paused",
		"/admin/api/instances?test=maybe",
		"/admin/api/instances?limit=0",
		"/admin/api/instances?limit=1001",
		"/admin/api/calls?since=yesterday",
		"/admin/api/calls?until=2026-13-01T00:00:00Z",
		"/admin/api/calls?before=x",
		"/admin/api/jobs?state=zombie",
		"/admin/api/jobs?before=-1",
	} {
		var e errorBody
		if code := f.do(t, "GET", path, &e); code != http.StatusBadRequest || e.Error == "" {
			t.Errorf("GET %s: status %d error %q, want 400 with a message", path, code, e.Error)
		}
	}
}

func TestGetInstanceNeverShowsPassword(t *testing.T) {
	f := newFixture(t)
	req, _ := http.NewRequest("GET", f.srv.URL+"/admin/api/instances/inst-1", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if strings.Contains(string(body), "SEALEDSECRET") || strings.Contains(strings.ToLower(string(body)), "passwordsealed") {
		t.Fatalf("sealed password leaked: %s", body)
	}
	var out struct {
		ID      string `json:"id"`
		AppInfo struct {
			PasswordSet bool `json:"passwordSet"`
		} `json:"appInfo"`
		Calls []struct {
			InstanceID string          `json:"instanceId"`
			Request    json.RawMessage `json:"request"`
			LatencyMS  float64         `json:"latencyMs"`
		} `json:"calls"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatal(err)
	}
	if out.ID != "inst-1" || !out.AppInfo.PasswordSet || len(out.Calls) != 4 {
		t.Fatalf("got id %q passwordSet %v %d calls, want inst-1 true 4", out.ID, out.AppInfo.PasswordSet, len(out.Calls))
	}
	for _, c := range out.Calls {
		if c.InstanceID != "inst-1" || compact(t, c.Request) != `{"activity":"x"}` || c.LatencyMS <= 0 {
			t.Errorf("call %+v", c)
		}
	}

	var e errorBody
	if code := f.do(t, "GET", "/admin/api/instances/nope", &e); code != http.StatusNotFound || e.Error == "" {
		t.Errorf("unknown instance: status %d %q", code, e.Error)
	}
}

func TestListCalls(t *testing.T) {
	f := newFixture(t)
	type callList struct {
		Calls []struct {
			ID        int64  `json:"id"`
			Activity  string `json:"activity"`
			RequestID string `json:"requestId"`
		} `json:"calls"`
		Next string `json:"next"`
	}
	reqIDs := func(l callList) string {
		var s []string
		for _, c := range l.Calls {
			s = append(s, c.RequestID)
		}
		return strings.Join(s, ",")
	}
	tests := []struct {
		query, want string
		wantNext    bool
	}{
		{"", "req-6,req-5,req-4,req-3,req-2,req-1,req-0", false},
		{"?activity=queryInstance", "req-5,req-3,req-1", false},
		{"?instance=inst-2", "req-6,req-5,req-4", false},
		{"?code=000001", "", false},
		{"?order=ORDER1&limit=3", "req-6,req-5,req-4", true},
		{"?since=" + t0.Add(2*time.Minute).Format(time.RFC3339) + "&until=" + t0.Add(4*time.Minute).Format(time.RFC3339), "req-3,req-2", false}, // until is exclusive
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			var out callList
			if code := f.do(t, "GET", "/admin/api/calls"+tt.query, &out); code != http.StatusOK {
				t.Fatalf("status %d", code)
			}
			if got := reqIDs(out); got != tt.want || (out.Next != "") != tt.wantNext {
				t.Errorf("got %q next %q, want %q next=%v", got, out.Next, tt.want, tt.wantNext)
			}
		})
	}

	// Follow the cursor to the end: every call exactly once.
	var seen []string
	path := "/admin/api/calls?limit=3"
	for range 10 {
		var out callList
		f.do(t, "GET", path, &out)
		if s := reqIDs(out); s != "" {
			seen = append(seen, s)
		}
		if out.Next == "" {
			break
		}
		path = "/admin/api/calls?limit=3&before=" + out.Next
	}
	if got := strings.Join(seen, ","); got != "req-6,req-5,req-4,req-3,req-2,req-1,req-0" {
		t.Errorf("paged calls %q", got)
	}
}

type jobJSON struct {
	ID        int64           `json:"id"`
	State     string          `json:"state"`
	Attempts  int             `json:"attempts"`
	LastError string          `json:"lastError"`
	Payload   json.RawMessage `json:"payload"`
}

func TestJobs(t *testing.T) {
	f := newFixture(t)
	var list struct {
		Jobs []jobJSON `json:"jobs"`
		Next string    `json:"next"`
	}
	if code := f.do(t, "GET", "/admin/api/jobs?state=dead", &list); code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	if len(list.Jobs) != 1 || list.Jobs[0].ID != f.jobs["job-b"] || list.Jobs[0].LastError != "vendor said no" {
		t.Fatalf("dead jobs %+v", list.Jobs)
	}
	list.Jobs, list.Next = nil, ""
	f.do(t, "GET", "/admin/api/jobs?kind=fixture&limit=2", &list)
	if len(list.Jobs) != 2 || list.Next == "" || list.Jobs[0].ID != f.jobs["job-c"] {
		t.Fatalf("first page %+v next %q", list.Jobs, list.Next)
	}
	before := list.Next
	list.Jobs, list.Next = nil, ""
	f.do(t, "GET", "/admin/api/jobs?kind=fixture&limit=2&before="+before, &list)
	if len(list.Jobs) != 1 || list.Jobs[0].ID != f.jobs["job-a"] || list.Next != "" {
		t.Fatalf("second page %+v next %q", list.Jobs, list.Next)
	}

	var j jobJSON
	if code := f.do(t, "GET", fmt.Sprintf("/admin/api/jobs/%d", f.jobs["job-a"]), &j); code != http.StatusOK ||
		j.State != "available" || compact(t, j.Payload) != `{"instanceId":"inst-3"}` {
		t.Fatalf("job a: %d %+v", code, j)
	}

	// Retry: the dead job becomes available; a queued job is a conflict.
	if code := f.do(t, "POST", fmt.Sprintf("/admin/api/jobs/%d/retry", f.jobs["job-b"]), &j); code != http.StatusAccepted || j.State != "available" {
		t.Fatalf("retry dead job: %d %+v", code, j)
	}
	stored, err := f.st.Job(context.Background(), f.jobs["job-b"])
	if err != nil || stored.State != store.JobAvailable {
		t.Fatalf("stored job %+v %v", stored, err)
	}
	var e errorBody
	if code := f.do(t, "POST", fmt.Sprintf("/admin/api/jobs/%d/retry", f.jobs["job-a"]), &e); code != http.StatusConflict {
		t.Errorf("retry queued job: status %d %q, want 409", code, e.Error)
	}

	for _, p := range []string{"/admin/api/jobs/999999", "/admin/api/jobs/abc"} {
		if code := f.do(t, "GET", p, &e); code != http.StatusNotFound {
			t.Errorf("GET %s: %d", p, code)
		}
	}
	if code := f.do(t, "POST", "/admin/api/jobs/999999/retry", &e); code != http.StatusNotFound {
		t.Errorf("retry unknown job: %d", code)
	}
	if code := f.do(t, "GET", "/admin/api/nothing", &e); code != http.StatusNotFound {
		t.Errorf("unknown endpoint: %d", code)
	}
	if code := f.do(t, "DELETE", "/admin/api/jobs/1", &e); code != http.StatusMethodNotAllowed && code != http.StatusNotFound {
		t.Errorf("DELETE: %d", code)
	}
}

func TestReprovisionWithoutServiceOrInstance(t *testing.T) {
	f := newFixture(t)
	var e errorBody
	if code := f.do(t, "POST", "/admin/api/instances/inst-3/reprovision", &e); code != http.StatusInternalServerError {
		t.Errorf("no service: %d %q", code, e.Error)
	}
}

func compact(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		t.Fatalf("compact %q: %v", raw, err)
	}
	return b.String()
}

// TestReprovision runs the real lifecycle service (through isv, with the
// demo provisioner and the Open API mock): a failed instance is re-run
// and becomes active; other states are a conflict.
func TestReprovision(t *testing.T) {
	f := newFixture(t)
	svc := runService(t, f.st)
	api := httptest.NewServer(NewAPI(APIConfig{Store: f.st, Service: svc, Token: token}))
	defer api.Close()
	f.srv = api

	var inst map[string]any
	if code := f.do(t, "POST", "/admin/api/instances/inst-3/reprovision", &inst); code != http.StatusAccepted || (inst["status"] != "provisioning" && inst["status"] != "active") {
		t.Fatalf("reprovision failed instance: %d %v", code, inst)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		got, err := f.st.Instance(context.Background(), "inst-3")
		if err == nil && got.Status == store.StatusActive {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("inst-3 not active after reprovision: %+v %v", got, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var e errorBody
	if code := f.do(t, "POST", "/admin/api/instances/inst-1/reprovision", &e); code != http.StatusConflict || e.Error == "" {
		t.Errorf("reprovision active instance: %d %q", code, e.Error)
	}
	if code := f.do(t, "POST", "/admin/api/instances/nope/reprovision", &e); code != http.StatusNotFound {
		t.Errorf("reprovision unknown instance: %d", code)
	}
}

// runService runs the real instance service (with the demo provisioner,
// the Open API imitation and a job runner) on st until the test ends, for
// the tests whose actions go through it.
func runService(t *testing.T, st store.Store) *instance.Service {
	t.Helper()
	mock := openapitest.NewServer(t, "AK", "SK")
	orders, err := openapi.New(openapi.Config{BaseURL: mock.URL(), AK: "AK", SK: "SK"})
	if err != nil {
		t.Fatal(err)
	}
	key, _ := seal.GenerateKey()
	raw, _ := seal.ParseKey(key)
	sealer, _ := seal.NewSealer(raw)
	runner := jobs.NewRunner(jobs.Config{Store: st, Poll: 20 * time.Millisecond})
	svc, err := instance.New(instance.Config{
		Store: st, Orders: orders, Provisioner: provision.NewDemo(""), Sealer: sealer,
		Budget: 3 * time.Second, Jobs: runner,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := runner.RegisterAll(svc.Jobs()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- runner.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-runDone; svc.Wait() })
	return svc
}

func TestListOrders(t *testing.T) {
	f := newFixture(t)
	type page struct {
		Orders []struct {
			OrderID   string          `json:"orderId"`
			Status    string          `json:"status"`
			Order     json.RawMessage `json:"order"`
			LastError string          `json:"lastError"`
		} `json:"orders"`
		Next string `json:"next"`
	}
	var all page
	if code := f.do(t, "GET", "/admin/api/orders", &all); code != 200 {
		t.Fatalf("list: %d", code)
	}
	var got []string
	for _, o := range all.Orders {
		got = append(got, o.OrderID+":"+o.Status)
	}
	if want := "NOTIFIED3:failed NOTIFIED2:pending NOTIFIED1:delivered"; strings.Join(got, " ") != want {
		t.Errorf("orders %v, want %s (newest first)", got, want)
	}
	if o := all.Orders[2]; compact(t, o.Order) != `{"orderId":"NOTIFIED1","buyerInfo":{"mobilePhone":"139****5678"}}` {
		t.Errorf("order details %s", o.Order)
	}
	if all.Orders[0].LastError != "vendor rejected the event" {
		t.Errorf("last error %q", all.Orders[0].LastError)
	}
	var failed page
	if code := f.do(t, "GET", "/admin/api/orders?status=failed", &failed); code != 200 || len(failed.Orders) != 1 || failed.Orders[0].OrderID != "NOTIFIED3" {
		t.Errorf("status filter: %d %+v", code, failed)
	}
	var paged page
	if code := f.do(t, "GET", "/admin/api/orders?limit=2", &paged); code != 200 || len(paged.Orders) != 2 || paged.Next == "" {
		t.Fatalf("limit 2: %d %+v", code, paged)
	}
	var rest page
	if code := f.do(t, "GET", "/admin/api/orders?limit=2&before="+paged.Next, &rest); code != 200 || len(rest.Orders) != 1 || rest.Orders[0].OrderID != "NOTIFIED1" {
		t.Errorf("second page: %d %+v", code, rest)
	}
	var e errorBody
	if code := f.do(t, "GET", "/admin/api/orders?status=lost", &e); code != 400 || !strings.Contains(e.Error, "pending, delivered or failed") {
		t.Errorf("bad status: %d %q", code, e.Error)
	}
}
