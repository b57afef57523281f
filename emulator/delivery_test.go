package emulator

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/lockbuf"

	"github.com/koobridge/koobridge/internal/testseller"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
)

// hourly makes newInstance's hourly retries come every 0.1 s.
func hourly(c *Config) { c.TimeScale = 3600 * 10 }

func businessID(t *testing.T, a Attempt) string {
	t.Helper()
	var b protocol.NewInstanceRequest
	if err := json.Unmarshal([]byte(a.Request.Body), &b); err != nil {
		t.Fatal(err)
	}
	return b.BusinessID
}

func TestRetryUntilWindowEnds(t *testing.T) {
	down := &flaky{n: 1 << 30}
	v := start(t, down, hourly)
	run, sub := v.purchase(PurchaseRequest{ProductID: periodID})
	if run.OK || !strings.Contains(run.Err, "newInstance") {
		t.Fatalf("run = %+v, want a failure naming newInstance", run)
	}
	if sub.Status != StatusPending {
		t.Errorf("status during retries = %s, want pending", sub.Status)
	}
	id := run.Messages[0]
	waitFor(t, "the retries to end", func() bool { m, _ := v.e.Message(id); return m.Status == MessageFailed })
	m, _ := v.e.Message(id)
	if len(m.Attempts) != 4 {
		t.Fatalf("%d attempts, want 4 (0, 1h, 2h, 3h)", len(m.Attempts))
	}
	seen := map[string]bool{}
	for i, a := range m.Attempts {
		if want := m.FirstSentAt.Add(time.Duration(i) * time.Hour); !a.At.Equal(want) {
			t.Errorf("attempt %d at %v, want %v", i, a.At, want)
		}
		if !a.Has(RuleHTTPStatus) {
			t.Errorf("attempt %d violations %v, want http-status", i, a.Violations)
		}
		seen[businessID(t, a)] = true
	}
	if len(seen) != 4 {
		t.Errorf("%d distinct businessIds over 4 attempts, want 4", len(seen))
	}
	if !m.Deadline.Equal(m.FirstSentAt.Add(3*time.Hour)) || !m.NextAttempt.IsZero() || m.LastError == "" {
		t.Errorf("deadline %v, next %v, lastError %q", m.Deadline, m.NextAttempt, m.LastError)
	}
	if s, _ := v.e.Subscription(sub.ID); s.Status != StatusFailed {
		t.Errorf("subscription %s after the window, want failed", s.Status)
	}
	if n := down.count(); n != 4 {
		t.Errorf("seller saw %d calls, want 4", n)
	}
}

func TestRetrySucceedsOnThirdAttempt(t *testing.T) {
	seller := &flaky{n: 2, next: testseller.New(testKey, testseller.Faults{})}
	v := start(t, seller, hourly)
	run, sub := v.purchase(PurchaseRequest{ProductID: periodID})
	if run.OK {
		t.Fatal("first attempt succeeded against a failing seller")
	}
	id := run.Messages[0]
	waitFor(t, "success", func() bool { m, _ := v.e.Message(id); return m.Status == MessageSuccess })
	m, _ := v.e.Message(id)
	if len(m.Attempts) != 3 || !m.Attempts[2].OK() || m.Attempts[1].OK() {
		t.Fatalf("attempts %+v, want 3, the last one good", m.Attempts)
	}
	if m.Attempts[2].At.Sub(m.Attempts[0].At) != 2*time.Hour {
		t.Errorf("third attempt %v after the first, want 2h", m.Attempts[2].At.Sub(m.Attempts[0].At))
	}
	s, _ := v.e.Subscription(sub.ID)
	if s.Status != StatusActive || s.InstanceID == "" || m.InstanceID != s.InstanceID {
		t.Errorf("subscription %+v, message instance %q", s, m.InstanceID)
	}
}

func TestRetryPolicyOverride(t *testing.T) {
	down := &flaky{n: 1 << 30}
	v := start(t, down, func(c *Config) {
		c.TimeScale = 3600
		c.Retry = map[string]RetryPolicy{protocol.ActivityUpdateInstanceStatus: {Interval: time.Minute, Window: 2 * time.Minute}}
	})
	// An instance made by hand: the seller is down, so no purchase works.
	v.e.mu.Lock()
	v.e.subSeq++
	sub := &Subscription{ID: "sub-x", ChargingMode: protocol.ChargingOnDemand, InstanceID: "i-1", Status: StatusActive}
	v.e.subs = append(v.e.subs, sub)
	v.e.subByID[sub.ID] = sub
	v.e.mu.Unlock()
	run, err := v.e.Play(context.Background(), "sub-x", "arrears-freeze")
	if err != nil || run.OK {
		t.Fatalf("Play = %+v, %v", run, err)
	}
	waitFor(t, "failure", func() bool { m, _ := v.e.Message(run.Messages[0]); return m.Status == MessageFailed })
	if m, _ := v.e.Message(run.Messages[0]); len(m.Attempts) != 3 {
		t.Errorf("%d attempts, want 3 (0, 1m, 2m)", len(m.Attempts))
	}
	if s, _ := v.e.Subscription("sub-x"); s.Status != StatusActive {
		t.Errorf("status %s after a failed freeze, want active", s.Status)
	}
}

func TestCloseStopsRetries(t *testing.T) {
	down := &flaky{n: 1 << 30}
	v := start(t, down, hourly)
	run, _ := v.purchase(PurchaseRequest{ProductID: periodID})
	if err := v.e.Close(); err != nil {
		t.Fatal(err)
	}
	m, _ := v.e.Message(run.Messages[0])
	if m.Status != MessageFailed || !m.NextAttempt.IsZero() {
		t.Errorf("after Close: status %s, next attempt %v", m.Status, m.NextAttempt)
	}
	v.e.mu.Lock()
	pending := len(v.e.timers)
	v.e.mu.Unlock()
	if pending != 0 {
		t.Errorf("%d timers left after Close", pending)
	}
	calls := down.count()
	time.Sleep(300 * time.Millisecond) // three retry intervals on the wall clock
	if n := down.count(); n != calls {
		t.Errorf("seller saw %d calls after Close, %d before", n, calls)
	}
	if _, err := v.e.Purchase(context.Background(), PurchaseRequest{ProductID: periodID}); err == nil {
		t.Error("Purchase after Close succeeded")
	}
}

func TestPollingAfterProcessing(t *testing.T) {
	v, _ := startSeller(t, testseller.Faults{Async: true}, func(c *Config) { c.TimeScale = 3600 })
	run, sub := v.purchase(PurchaseRequest{ProductID: periodID})
	if run.OK || !run.Pending || run.Err != "" {
		t.Fatalf("a purchase answered 000004: %+v; want pending, not ok", run)
	}
	waitFor(t, "active", func() bool { s, _ := v.e.Subscription(sub.ID); return s.Status == StatusActive })
	s, _ := v.e.Subscription(sub.ID)
	if s.AppInfo == nil || s.AppInfo.FrontEndURL == "" {
		t.Errorf("appInfo %+v", s.AppInfo)
	}
	// The polls after 000004 are attempts of one message.
	polls := v.e.Messages(MessageFilter{SubscriptionID: sub.ID, Interface: protocol.ActivityQueryInstance})
	if len(polls) != 1 || len(polls[0].Attempts) != 3 || polls[0].Status != MessageSuccess {
		t.Fatalf("%d poll messages (%+v), want 1 with 3 attempts (000004, 000004, 000000)", len(polls), polls)
	}
	first, _ := v.e.Message(run.Messages[0])
	for i, a := range polls[0].Attempts {
		want := first.FirstSentAt.Add(time.Duration(i+1) * DefaultPollInterval)
		if !a.At.Equal(want) || !a.OK() {
			t.Errorf("poll %d at %v (%v), want %v", i, a.At, a.Violations, want)
		}
	}
	if a := polls[0].Attempts; a[2].ResultCode != protocol.CodeSuccess || a[0].ResultCode != protocol.CodeProcessing || a[1].ResultCode != protocol.CodeProcessing {
		t.Errorf("poll codes %s, %s, %s", a[0].ResultCode, a[1].ResultCode, a[2].ResultCode)
	}
}

func TestPollingSynchronousWithNoRetry(t *testing.T) {
	v, _ := startSeller(t, testseller.Faults{Async: true}, func(c *Config) { c.TimeScale = 3600; c.NoRetry = true })
	run, sub := v.purchase(PurchaseRequest{ProductID: oneTimeID})
	if !run.OK || sub.Status != StatusActive || len(run.Messages) != 2 {
		t.Fatalf("run %+v, status %s; want OK, active, newInstance + the polls' message", run, sub.Status)
	}
	if m, _ := v.e.Message(run.Messages[1]); len(m.Attempts) != 3 {
		t.Errorf("poll message with %d attempts, want 3", len(m.Attempts))
	}
}

// stuck answers every queryInstance 000004 and passes the rest on.
type stuck struct{ next http.Handler }

func (s stuck) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	if !bytes.Contains(b, []byte(`"queryInstance"`)) {
		r.Body = io.NopCloser(bytes.NewReader(b))
		s.next.ServeHTTP(w, r)
		return
	}
	reply := []byte(`{"resultCode":"000004","resultMsg":"provisioning"}`)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set(sign.BodySignHeader, sign.BodySign(testKey, reply))
	w.Write(reply)
}

func TestPollingGivesUpAtWindowEnd(t *testing.T) {
	v := start(t, stuck{testseller.New(testKey, testseller.Faults{Async: true})}, func(c *Config) {
		c.TimeScale = 3600
		c.NoRetry = true
		c.Retry = map[string]RetryPolicy{protocol.ActivityNewInstance: {Interval: time.Hour, Window: time.Minute}}
	})
	run, sub := v.purchase(PurchaseRequest{ProductID: periodID})
	if run.OK || sub.Status != StatusFailed || !strings.Contains(run.Err, "queryInstance") {
		t.Fatalf("run %+v, status %s", run, sub.Status)
	}
	if n := len(run.Messages); n != 2 {
		t.Fatalf("%d messages, want newInstance + the polls' message", n)
	}
	if m, _ := v.e.Message(run.Messages[1]); len(m.Attempts) != 6 {
		t.Errorf("%d polls, want 6 (every 10 s for 1 min)", len(m.Attempts))
	}
}

func TestRedrive(t *testing.T) {
	seller := &flaky{n: 1, next: testseller.New(testKey, testseller.Faults{})}
	v := start(t, seller, func(c *Config) { c.NoRetry = true })
	run, sub := v.purchase(PurchaseRequest{ProductID: periodID})
	m, _ := v.e.Message(run.Messages[0])
	if run.OK || m.Status != MessageFailed || sub.Status != StatusFailed || m.LastError == "" {
		t.Fatalf("run %+v, message %s %q, subscription %s", run, m.Status, m.LastError, sub.Status)
	}
	m, err := v.e.Redrive(context.Background(), m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if m.Status != MessageSuccess || len(m.Attempts) != 2 || !m.Attempts[1].OK() {
		t.Fatalf("after redrive: %s with %d attempts", m.Status, len(m.Attempts))
	}
	if businessID(t, m.Attempts[0]) == businessID(t, m.Attempts[1]) {
		t.Error("redrive reused the businessId")
	}
	s, _ := v.e.Subscription(sub.ID)
	if s.Status != StatusActive || s.InstanceID == "" {
		t.Errorf("subscription after redrive: %+v", s)
	}
	if _, err := v.e.Redrive(context.Background(), "msg-nope"); err == nil {
		t.Error("redrive of an unknown message succeeded")
	}
}

func TestDuplicates(t *testing.T) {
	tests := []struct {
		name   string
		faults testseller.Faults
		broken bool
	}{
		{"correct seller", testseller.Faults{}, false},
		{"new instance every call", testseller.Faults{NewInstanceEveryCall: true}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, seller := startSeller(t, tt.faults, func(c *Config) { c.NoRetry = true })
			v.e.SetFaults(Faults{Duplicates: 2})
			run, _ := v.purchase(PurchaseRequest{ProductID: periodID})
			m, _ := v.e.Message(run.Messages[0])
			if len(m.Attempts) != 3 {
				t.Fatalf("%d attempts, want 1 + 2 duplicates", len(m.Attempts))
			}
			if got := m.Attempts[0].Has(RuleIdempotent); got != tt.broken || run.OK == tt.broken {
				t.Errorf("idempotent violation %v, run OK %v; broken seller %v", got, run.OK, tt.broken)
			}
			if b0, b1 := businessID(t, m.Attempts[0]), businessID(t, m.Attempts[1]); b0 == b1 {
				t.Error("duplicates share a businessId")
			}
			if want := map[bool]int{false: 1, true: 3}[tt.broken]; seller.Instances() != want {
				t.Errorf("seller made %d instances, want %d", seller.Instances(), want)
			}
		})
	}
}

func TestClockSkew(t *testing.T) {
	tests := []struct {
		skew time.Duration
		want protocol.ResultCode
	}{
		{10 * time.Second, protocol.CodeSuccess},
		{2 * time.Minute, protocol.CodeAuthFailed},
		{-2 * time.Minute, protocol.CodeAuthFailed},
	}
	for _, tt := range tests {
		t.Run(tt.skew.String(), func(t *testing.T) {
			v, _ := startSeller(t, testseller.Faults{}, func(c *Config) { c.NoRetry = true })
			v.e.SetFaults(Faults{ClockSkew: tt.skew})
			run, _ := v.purchase(PurchaseRequest{ProductID: periodID})
			m, _ := v.e.Message(run.Messages[0])
			if got := m.Attempts[0].ResultCode; got != tt.want || run.OK != (tt.want == protocol.CodeSuccess) {
				t.Errorf("resultCode %s (run OK %v), want %s", got, run.OK, tt.want)
			}
		})
	}
}

func TestSend(t *testing.T) {
	v, _ := startSeller(t, testseller.Faults{}, nil)
	tests := []struct {
		name string
		call Call
		ok   bool
		code protocol.ResultCode
	}{
		{"unknown activity", Call{Interface: "bogus", Body: []byte(`{"activity":"bogus"}`), Expect: []protocol.ResultCode{protocol.CodeInvalidParam}}, true, protocol.CodeInvalidParam},
		{"unknown instance", Call{Interface: "releaseInstance", Body: []byte(`{"activity":"releaseInstance","instanceId":"nope"}`), Expect: []protocol.ResultCode{protocol.CodeInstanceNotFound}}, true, protocol.CodeInstanceNotFound},
		{"wrong signature", Call{Interface: "queryInstance", Body: []byte(`{"activity":"queryInstance","instanceId":"x"}`), Tamper: Tamper{Signature: "AAAA"}}, false, protocol.CodeAuthFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := v.e.Send(context.Background(), tt.call)
			if err != nil {
				t.Fatal(err)
			}
			if len(m.Attempts) != 1 || m.Attempts[0].OK() != tt.ok || m.Attempts[0].ResultCode != tt.code || m.Scenario != "" {
				t.Errorf("message %+v", m)
			}
			if want := map[bool]string{true: MessageSuccess, false: MessageFailed}[tt.ok]; m.Status != want {
				t.Errorf("status %s, want %s", m.Status, want)
			}
			if got, _ := v.e.Message(m.ID); got.Body != string(tt.call.Body) {
				t.Errorf("logged body %q", got.Body)
			}
		})
	}
}

func TestMessageLogBounded(t *testing.T) {
	tests := []struct {
		name     string
		finished bool // the messages end before the next is added
	}{
		{"finished messages", true},
		{"no message finished", false}, // the oldest goes after its failure path ran
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, _ := startSeller(t, testseller.Faults{}, nil)
			v.e.mu.Lock()
			var live *delivery
			for i := range maxMessages + 5 {
				d := &delivery{fam: V2}
				d.msg.Interface = "queryInstance"
				v.e.addLocked(d, nil)
				if tt.finished {
					d.msg.Status = MessageSuccess
				}
				if i == 2 && tt.finished {
					live, d.msg.Status = d, MessageSending // still in flight: kept
				}
			}
			v.e.mu.Unlock()
			all := v.e.Messages(MessageFilter{})
			if len(all) != maxMessages || all[0].ID != fmt.Sprintf("msg-%06d", maxMessages+5) {
				t.Fatalf("%d messages, newest %s", len(all), all[0].ID)
			}
			oldest := all[len(all)-1]
			switch {
			case tt.finished && oldest.ID != live.msg.ID:
				t.Errorf("oldest kept %s, want the unfinished %s", oldest.ID, live.msg.ID)
			case tt.finished && all[len(all)-2].ID != "msg-000007":
				t.Errorf("second oldest kept %s, want msg-000007 (1, 2, 4, 5, 6 dropped)", all[len(all)-2].ID)
			case !tt.finished && oldest.ID != "msg-000006":
				t.Errorf("oldest kept %s, want msg-000006", oldest.ID)
			}
			if _, ok := v.e.Message("msg-000005"); ok {
				t.Error("msg-000005 is still there")
			}
			if got := v.e.Messages(MessageFilter{Limit: 3}); len(got) != 3 {
				t.Errorf("Limit 3 gave %d", len(got))
			}
		})
	}
}

func TestLogNoSecrets(t *testing.T) {
	var buf lockbuf.Buffer
	v, _ := startSeller(t, testseller.Faults{}, func(c *Config) { c.Logger = slog.New(slog.NewTextHandler(&buf, nil)) })
	run, _ := v.purchase(PurchaseRequest{ProductID: periodID})
	m, _ := v.e.Message(run.Messages[0])
	out := buf.String()
	if !strings.Contains(out, "newInstance") || !strings.Contains(out, m.ID) || !strings.Contains(out, "000000") {
		t.Errorf("log lacks the attempt: %s", out)
	}
	for _, secret := range []string{testKey, testSK, "signature", businessID(t, m.Attempts[0])} {
		if strings.Contains(out, secret) {
			t.Errorf("log contains %q: %s", secret, out)
		}
	}
}

func TestNewConfig(t *testing.T) {
	good := Config{Target: "http://127.0.0.1:1/p", Key: "k", AK: "a", SK: "s"}
	bad := []func(*Config){
		func(c *Config) { c.Target = "" },
		func(c *Config) { c.Target = "ftp://x/y" },
		func(c *Config) { c.Key = "" },
		func(c *Config) { c.SK = "" },
		func(c *Config) { c.TimeScale = -1 },
		func(c *Config) { c.OrderNotifyTarget = "ftp://x/y" },
		func(c *Config) { c.KeepGoing = true }, // without NoRetry
		func(c *Config) { c.KitTarget = "ftp://x/y" },
		func(c *Config) { c.KitSignForm = "C" },
		func(c *Config) { c.LicenseTarget = "license" },
		func(c *Config) { c.OnlineLicenseTarget = "ftp://x/y" },
		func(c *Config) { c.OnlineLicenseKey = KeyKit },
		func(c *Config) { c.LicenseUploadWindow = -time.Second },
	}
	for i, f := range bad {
		c := good
		f(&c)
		if _, err := New(c); err == nil {
			t.Errorf("bad config %d accepted", i)
		}
	}
	e, err := New(good)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	c := e.Config()
	if c.Deadline != DefaultDeadline || c.TimeScale != 1 || c.PollInterval != DefaultPollInterval || c.HTTPClient == nil {
		t.Errorf("defaults not filled: %+v", c)
	}
	if c.KitKey != "k" || c.LicenseKey != "k" || c.GeneralKey != "k" || c.OrderNotifyTarget != good.Target {
		t.Errorf("the keys and the order-notification URL do not fall back to Key and Target: %+v", c)
	}
	if c.KitTarget != "http://127.0.0.1:1" || c.KitSignForm != KitFormA {
		t.Errorf("KitTarget %q, KitSignForm %q: want the target's origin and form A", c.KitTarget, c.KitSignForm)
	}
	if c.LicenseTarget != "http://127.0.0.1:1/license" || c.OnlineLicenseTarget != c.LicenseTarget || c.OnlineLicenseKey != KeyLicense || c.LicenseUploadWindow != DefaultLicenseUploadWindow {
		t.Errorf("LicenseTarget %q, OnlineLicenseTarget %q, OnlineLicenseKey %q, LicenseUploadWindow %v: want the target's origin + /license twice, license, 1h",
			c.LicenseTarget, c.OnlineLicenseTarget, c.OnlineLicenseKey, c.LicenseUploadWindow)
	}
	// V2 14, order notification 1, V1 13, Kit 6, license 8, online license 9.
	if len(e.Products()) != 8 || len(e.Scenarios()) != 51 {
		t.Errorf("%d products, %d scenarios", len(e.Products()), len(e.Scenarios()))
	}
}

func TestOpenAPIFaultsAndUsage(t *testing.T) {
	v, _ := startSeller(t, testseller.Faults{}, nil)
	// Placed two hours back: the usage of an hour ago is after its start.
	_, sub := v.purchase(PurchaseRequest{ProductID: onDemandID, OrderTime: time.Now().Add(-2 * time.Hour)})
	v.e.SetFaults(Faults{OpenAPIStatus: http.StatusServiceUnavailable, OpenAPICount: 1})
	srv := httptest.NewServer(v.e.OpenAPIHandler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/api/mkp-openapi-public/global/v1/order/query?orderId=x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("faulted request answered %d", resp.StatusCode)
	}
	queryOrder(t, v.e, sub.OrderID) // the fault is spent
	reqs := v.e.OpenAPIRequests()
	if len(reqs) < 2 || reqs[0].Status != http.StatusServiceUnavailable || reqs[0].Fault != "status" {
		t.Errorf("requests %+v", reqs)
	}

	push := func(instance string) string {
		body := []byte(fmt.Sprintf(`{"usage_records":[{"begin_time":"%[1]s","end_time":"%[1]s","instance_id":%q,"metering_sn":"sn-%s","record_time":"%[1]s","usage_value":"1.5"}]}`,
			protocol.FormatUsageTime(time.Now().Add(-time.Hour)), instance, instance))
		ts, nonce := protocol.FormatMillis(time.Now()), NewNonce()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/mkp-openapi-public/global/v1/isv/usage-data", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("ts", ts)
		req.Header.Set("nonce", nonce)
		req.Header.Set("signature", sign.UsageSignature(testKey, ts, nonce, body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var r struct {
			ResultCode string `json:"resultCode"`
			ErrorCode  string `json:"error_code"`
		}
		json.NewDecoder(resp.Body).Decode(&r)
		return r.ResultCode + r.ErrorCode
	}
	if got := push(sub.InstanceID); got != protocol.MKTSuccess {
		t.Errorf("usage for a known instance: %s", got)
	}
	if got := push("unknown-instance"); got != protocol.MKTInstanceNotFound {
		t.Errorf("usage for an unknown instance: %s", got)
	}
	recs := v.e.UsageRecords()
	if len(recs) != 1 || recs[0].InstanceID != sub.InstanceID || recs[0].API != "new" || recs[0].UsageValue != "1.5" {
		t.Errorf("usage records %+v", recs)
	}
}

func TestOpenAPIFaultMapping(t *testing.T) {
	tests := []struct {
		in   Faults
		want string
	}{
		{Faults{}, "{Status:0 Delay:0s Count:0 Drop:false Body: Path: Code:}"},
		{Faults{OpenAPILatency: time.Second, OpenAPICount: 2}, "{Status:0 Delay:1s Count:2 Drop:false Body: Path: Code:}"},
		{Faults{OpenAPIStatus: 502}, "{Status:502 Delay:0s Count:0 Drop:false Body: Path: Code:}"},
		{Faults{OpenAPITimeout: true, OpenAPICount: 1}, "{Status:0 Delay:1m0s Count:1 Drop:true Body: Path: Code:}"},
	}
	for _, tt := range tests {
		if got := fmt.Sprintf("%+v", openAPIFault(tt.in)); got != tt.want {
			t.Errorf("openAPIFault(%+v) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestAdvanceBringsRetriesForward(t *testing.T) {
	seller := &flaky{n: 1, next: testseller.New(testKey, testseller.Faults{})}
	v := start(t, seller, nil) // TimeScale 1: the retry is an hour away on the wall clock
	run, sub := v.purchase(PurchaseRequest{ProductID: periodID})
	if run.OK {
		t.Fatal("first attempt succeeded against a failing seller")
	}
	m, _ := v.e.Message(run.Messages[0])
	if m.Status != MessageRetrying || !m.NextAttempt.Equal(m.FirstSentAt.Add(time.Hour)) {
		t.Fatalf("status %s, next attempt %v", m.Status, m.NextAttempt)
	}
	v.e.Advance(time.Hour)
	waitFor(t, "the retry", func() bool { s, _ := v.e.Subscription(sub.ID); return s.Status == StatusActive })
	m, _ = v.e.Message(run.Messages[0])
	if len(m.Attempts) != 2 || !m.Attempts[1].At.Equal(m.FirstSentAt.Add(time.Hour)) {
		t.Errorf("attempts %d, second at %v", len(m.Attempts), m.Attempts[len(m.Attempts)-1].At)
	}
}
