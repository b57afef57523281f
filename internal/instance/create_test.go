package instance_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/koobridge/koobridge/emulator/mockapi"
	"github.com/koobridge/koobridge/internal/instance"
	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
	"github.com/koobridge/koobridge/provision"
)

func TestNewInstanceProvisionsWithinBudget(t *testing.T) {
	e := newEnv(t, options{})
	addOrder(e.api, "CS-NEW-1", protocol.ChargingPeriod, "sku-basic")

	out := e.do(newReq("CS-NEW-1"))
	if out.Code != protocol.CodeSuccess || out.Repeat {
		t.Fatalf("first call: code %s repeat %v msg %q", out.Code, out.Repeat, out.Msg)
	}
	raw, ok := out.Response.(json.RawMessage)
	var resp protocol.NewInstanceResponse
	if !ok || json.Unmarshal(raw, &resp) != nil || resp.InstanceID != out.InstanceID || out.InstanceID == "" {
		t.Fatalf("response %s, instance %q", raw, out.InstanceID)
	}
	if out.IdemKey != "newInstance:CS-NEW-1:CS-NEW-1-000001" {
		t.Errorf("idem key %q", out.IdemKey)
	}
	inst := e.instance(out.InstanceID)
	checks := []struct{ name, got, want string }{
		{"status", string(inst.Status), string(store.StatusActive)},
		{"order state", string(inst.OrderState), string(store.OrderFetched)},
		{"productId", inst.ProductID, "OFFI-PROD-1"},
		{"skuCode", inst.SKUCode, "sku-basic"},
		{"linearValue", inst.LinearValue, "10"},
		{"chargingMode", inst.ChargingMode, protocol.ChargingPeriod},
		{"periodType", inst.PeriodType, "year"},
		{"customerId", inst.CustomerID, "cust-1"},
		{"customerName", inst.CustomerName, "ACME"},
		{"businessId", inst.BusinessID, "biz-CS-NEW-1"},
		{"expireTime", protocol.FormatTime14(inst.ExpireTime), "20271231235959"},
		{"lastError", inst.LastError, ""},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if inst.PeriodNumber != 1 || inst.Test {
		t.Errorf("periodNumber %d test %v", inst.PeriodNumber, inst.Test)
	}
	for _, secret := range []string{"15905222222", "alice@acme.example", "alice.wong", "Alice Wong"} {
		if strings.Contains(inst.OrderJSON, secret) {
			t.Errorf("stored order JSON holds %q unmasked: %s", secret, inst.OrderJSON)
		}
	}
	if !strings.Contains(inst.OrderJSON, "159****2222") || !strings.Contains(inst.OrderJSON, "a***@acme.example") ||
		!strings.Contains(inst.OrderJSON, `"userName":"a***"`) || !strings.Contains(inst.OrderJSON, `"customerRealName":"A***"`) ||
		!strings.Contains(inst.OrderJSON, `"customerId":"cust-1"`) {
		t.Errorf("order JSON not masked as expected: %s", inst.OrderJSON)
	}
	// The password is sealed at rest, and opens to what the vendor gave.
	password := e.prov.lastResult().AppInfo.Password
	if password == "" || inst.AppInfo.PasswordSealed == "" || strings.Contains(inst.AppInfo.PasswordSealed, password) {
		t.Fatalf("password not sealed: %q", inst.AppInfo.PasswordSealed)
	}
	q := e.do(queryReq(out.InstanceID))
	qr := q.Response.(protocol.QueryInstanceResponse)
	if q.Code != protocol.CodeSuccess || len(qr.Info) != 1 || qr.Info[0].AppInfo == nil {
		t.Fatalf("query: %s %+v", q.Code, qr)
	}
	if got := qr.Info[0].AppInfo.Password; got != password {
		t.Errorf("queried password %q, want the vendor's", got)
	}
	if qr.EncryptType != "" || qr.Info[0].UsageInfo != nil {
		t.Errorf("plain credentials must not carry encryptType; period instances no usage: %+v", qr)
	}
	if err := qr.Validate(); err != nil {
		t.Errorf("reply fails the debugger's checks: %v", err)
	}

	// A repeat answers the same instance and provisions nothing.
	again := e.do(newReq("CS-NEW-1"))
	if again.Code != protocol.CodeSuccess || !again.Repeat || again.InstanceID != out.InstanceID {
		t.Fatalf("repeat: %+v", again)
	}
	e.shutdown()
	if n := e.prov.count(provision.EventCreated); n != 1 {
		t.Errorf("instance.created delivered %d times, want 1", n)
	}
	if n := e.api.QueryOrderCalls(); n != 1 {
		t.Errorf("Query Order called %d times, want 1", n)
	}
}

func TestNewInstanceConcurrentDuplicates(t *testing.T) {
	e := newEnv(t, options{})
	addOrder(e.api, "CS-DUP", protocol.ChargingPeriod, "sku-basic")
	const n = 50
	ids := make([]string, n)
	codes := make([]protocol.ResultCode, n)
	bodies := make([]string, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			req := newReq("CS-DUP")
			req.BusinessID = "biz-" + string(rune('a'+i%26)) // every retry has its own businessId
			out, err := e.v2.Serve(context.Background(), req)
			if err != nil {
				t.Errorf("call %d: %v", i, err)
				return
			}
			ids[i], codes[i] = out.InstanceID, out.Code
			raw, _ := out.Response.(json.RawMessage)
			bodies[i] = string(raw)
		}()
	}
	close(start)
	wg.Wait()
	for i := range n {
		if ids[i] == "" || ids[i] != ids[0] {
			t.Fatalf("call %d answered instance %q, call 0 %q", i, ids[i], ids[0])
		}
		if codes[i] != protocol.CodeSuccess && codes[i] != protocol.CodeProcessing {
			t.Errorf("call %d: code %s", i, codes[i])
		}
		// Duplicates in flight wait for the first call and get its answer
		// byte for byte (KooGallery's own idempotency check compares them).
		if bodies[i] == "" || bodies[i] != bodies[0] {
			t.Errorf("call %d answered %s, call 0 %s", i, bodies[i], bodies[0])
		}
	}
	e.waitStatus(ids[0], store.StatusActive)
	e.shutdown()
	insts, err := e.st.Instances(context.Background(), store.InstanceFilter{OrderID: "CS-DUP"})
	if err != nil {
		t.Fatal(err)
	}
	if len(insts) != 1 {
		t.Errorf("%d instances for one order line, want 1", len(insts))
	}
	if c := e.prov.count(provision.EventCreated); c != 1 {
		t.Errorf("provisioned %d times, want 1", c)
	}
}

func TestNewInstanceSlowProvisionerAnswersProcessing(t *testing.T) {
	v := newVendor(t)
	v.set("ok", 1500*time.Millisecond) // longer than the budget
	e := newEnv(t, options{budget: 200 * time.Millisecond, prov: v.provisioner(t)})
	addOrder(e.api, "CS-SLOW", protocol.ChargingPeriod, "sku-basic")

	out := e.do(newReq("CS-SLOW"))
	if out.Code != protocol.CodeProcessing {
		t.Fatalf("slow provisioning: code %s %q, want 000004", out.Code, out.Msg)
	}
	if q := e.do(queryReq(out.InstanceID)); q.Code != protocol.CodeProcessing {
		t.Errorf("query while provisioning: %s", q.Code)
	}
	if again := e.do(newReq("CS-SLOW")); again.Code != protocol.CodeProcessing || again.InstanceID != out.InstanceID {
		t.Errorf("repeat while provisioning: %+v", again)
	}
	e.waitStatus(out.InstanceID, store.StatusActive)
	q := e.do(queryReq(out.InstanceID))
	if q.Code != protocol.CodeSuccess {
		t.Fatalf("query after provisioning: %s %q", q.Code, q.Msg)
	}
	if app := q.Response.(protocol.QueryInstanceResponse).Info[0].AppInfo; app == nil || !strings.HasPrefix(app.FrontEndURL, "https://vendor.example/") {
		t.Errorf("app info %+v", app)
	}
	e.shutdown()
	if n := v.received(provision.EventCreated); n != 1 {
		t.Errorf("vendor got instance.created %d times, want 1", n)
	}
}

func TestNewInstanceQueryOrderOutage(t *testing.T) {
	e := newEnv(t, options{budget: 300 * time.Millisecond})
	addOrder(e.api, "CS-OUT", protocol.ChargingPeriod, "sku-basic")
	e.api.SetFault(mockapi.Fault{Status: 503})

	out := e.do(newReq("CS-OUT"))
	if out.Code != protocol.CodeProcessing {
		t.Fatalf("during outage: %s %q, want 000004", out.Code, out.Msg)
	}
	eventually(t, "order error recorded", func() bool {
		return strings.Contains(e.instance(out.InstanceID).LastError, "waiting for order details")
	})
	q := e.do(queryReq(out.InstanceID))
	if q.Code != protocol.CodeProcessing || !strings.Contains(q.Msg, "waiting for order details") {
		t.Errorf("query during outage: %s %q", q.Code, q.Msg)
	}
	if n := e.prov.count(provision.EventCreated); n != 0 {
		t.Fatalf("provisioned before the order was known (%d)", n)
	}
	e.api.SetFault(mockapi.Fault{})
	inst := e.waitStatus(out.InstanceID, store.StatusActive)
	if inst.SKUCode != "sku-basic" || inst.LastError != "" {
		t.Errorf("after recovery: sku %q lastError %q", inst.SKUCode, inst.LastError)
	}
	if q := e.do(queryReq(out.InstanceID)); q.Code != protocol.CodeSuccess {
		t.Errorf("query after recovery: %s", q.Code)
	}
}

func TestNewInstancePermanentFailureThenRepeatReprovisions(t *testing.T) {
	v := newVendor(t)
	v.set("reject", 0)
	e := newEnv(t, options{prov: v.provisioner(t)})
	addOrder(e.api, "CS-FAIL", protocol.ChargingPeriod, "sku-basic")

	out := e.do(newReq("CS-FAIL"))
	if out.Code != protocol.CodeInternal || !strings.Contains(out.Msg, "provisioning failed") {
		t.Fatalf("rejected provisioning: %s %q, want 000005", out.Code, out.Msg)
	}
	if st := e.instance(out.InstanceID).Status; st != store.StatusFailed {
		t.Fatalf("status %s, want failed", st)
	}
	// A permanent failure is not retried: the job is dead after one attempt.
	if js, err := e.st.Jobs(context.Background(), store.JobFilter{Kind: instance.KindProvision}); err != nil ||
		len(js) != 1 || js[0].State != store.JobDead || js[0].Attempts != 1 {
		t.Fatalf("provision jobs %+v, %v; want one, dead after one attempt", js, err)
	}
	// The vendor's reason stays in LastError (admin API, log); KooGallery
	// sees a generic message, never the vendor's error text or URL.
	q := e.do(queryReq(out.InstanceID))
	if q.Code != protocol.CodeInternal || !strings.Contains(q.Msg, "provisioning failed") {
		t.Errorf("query of failed: %s %q", q.Code, q.Msg)
	}
	lastErr := e.instance(out.InstanceID).LastError
	if !strings.Contains(lastErr, "400") {
		t.Errorf("LastError %q does not keep the vendor's answer", lastErr)
	}
	for _, msg := range []string{out.Msg, q.Msg} {
		if strings.Contains(msg, "400") || strings.Contains(msg, "127.0.0.1") {
			t.Errorf("resultMsg %q repeats the vendor's error", msg)
		}
	}
	// Invalid transitions of a failed instance.
	for _, c := range []struct {
		req  protocol.V2Request
		want protocol.ResultCode
	}{
		{statusReq(out.InstanceID, protocol.StatusFreeze), protocol.CodeInternal},
		{statusReq(out.InstanceID, protocol.StatusUnfreeze), protocol.CodeInternal},
		{upgradeReq(out.InstanceID, "CS-FAIL-UP"), protocol.CodeInternal},
	} {
		if got := e.do(c.req); got.Code != c.want {
			t.Errorf("%s on failed: %s, want %s", c.req.Activity(), got.Code, c.want)
		}
	}

	v.set("ok", 0) // the vendor fixed it; KooGallery retries newInstance
	again := e.do(newReq("CS-FAIL"))
	if again.Code != protocol.CodeSuccess || again.InstanceID != out.InstanceID {
		t.Fatalf("repeat after fix: %s %q (instance %s)", again.Code, again.Msg, again.InstanceID)
	}
	if inst := e.instance(out.InstanceID); inst.Status != store.StatusActive || inst.LastError != "" {
		t.Errorf("after re-provisioning: %s %q", inst.Status, inst.LastError)
	}
}

func TestReprovision(t *testing.T) {
	v := newVendor(t)
	v.set("reject", 0)
	e := newEnv(t, options{prov: v.provisioner(t)})
	addOrder(e.api, "CS-REP", protocol.ChargingPeriod, "sku-basic")
	out := e.do(newReq("CS-REP"))
	if out.Code != protocol.CodeInternal {
		t.Fatalf("want failed first, got %s", out.Code)
	}
	v.set("ok", 0)
	ctx := context.Background()
	if err := e.svc.Reprovision(ctx, out.InstanceID); err != nil {
		t.Fatal(err)
	}
	e.waitStatus(out.InstanceID, store.StatusActive)
	if err := e.svc.Reprovision(ctx, out.InstanceID); err == nil || !strings.Contains(err.Error(), "active") {
		t.Errorf("reprovision of an active instance: %v", err)
	}
	if err := e.svc.Reprovision(ctx, "no-such-instance"); err == nil {
		t.Error("reprovision of an unknown instance succeeded")
	}
}

func TestReprovisionStuckAfterDeadQueryOrderJob(t *testing.T) {
	e := newEnv(t, options{budget: 200 * time.Millisecond})
	addOrder(e.api, "CS-STUCK", protocol.ChargingPeriod, "sku-basic")
	e.api.SetFault(mockapi.Fault{Status: 503})
	// MaxAttempts is 25 by default; a dedicated service with 2 makes the
	// job die quickly.
	svc2, v2 := e.serviceWith(t, 2)
	out := doOn(t, v2, newReq("CS-STUCK"))
	if out.Code != protocol.CodeProcessing {
		t.Fatalf("%+v", out)
	}
	eventually(t, "provision job dead", func() bool {
		js, err := e.st.Jobs(context.Background(), store.JobFilter{Kind: instance.KindProvision, State: store.JobDead})
		return err == nil && len(js) == 1
	})
	if st := e.instance(out.InstanceID).Status; st != store.StatusProvisioning {
		t.Fatalf("a Query Order outage must not fail the instance; status %s", st)
	}
	e.api.SetFault(mockapi.Fault{})
	if err := svc2.Reprovision(context.Background(), out.InstanceID); err != nil {
		t.Fatal(err)
	}
	e.waitStatus(out.InstanceID, store.StatusActive)
}

func TestTestCallsUseTestProvisioner(t *testing.T) {
	e := newEnv(t, options{})
	cases := []struct {
		name string
		req  protocol.NewInstanceRequest
	}{
		{"testFlag", func() protocol.NewInstanceRequest {
			r := newReq("CS-DEBUG")
			r.TestFlag = "1"
			return r
		}()},
		{"mock order", newReq(mockapi.MockPeriodYearNew)},
		{"mock pay-per-use", newReq(mockapi.MockOnDemand)},
	}
	addOrder(e.api, "CS-DEBUG", protocol.ChargingPeriod, "sku-basic")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := e.do(c.req)
			if out.Code != protocol.CodeSuccess {
				t.Fatalf("%s %q", out.Code, out.Msg)
			}
			inst := e.instance(out.InstanceID)
			if !inst.Test {
				t.Error("not marked as a test instance")
			}
			if again := e.do(c.req); again.InstanceID != out.InstanceID || !again.Repeat {
				t.Errorf("test calls must be idempotent too: %+v", again)
			}
		})
	}
	if n := e.prov.count(provision.EventCreated); n != 0 {
		t.Errorf("real provisioner got %d debug instances", n)
	}
	if n := e.testProv.count(provision.EventCreated); n != len(cases) {
		t.Errorf("test provisioner got %d, want %d", n, len(cases))
	}
}

func TestQueryInstance(t *testing.T) {
	v := newVendor(t)
	e := newEnv(t, options{budget: 200 * time.Millisecond, prov: v.provisioner(t)})
	active := e.newActive("CS-Q-1")
	addOrder(e.api, "CS-Q-PPU", protocol.ChargingOnDemand, "sku-ppu")
	ppu := e.do(newReq("CS-Q-PPU")).InstanceID
	e.waitStatus(ppu, store.StatusActive)

	release := make(chan struct{})
	v.mu.Lock()
	v.release = release
	v.mu.Unlock()
	addOrder(e.api, "CS-Q-SLOW", protocol.ChargingPeriod, "sku-basic")
	slow := e.do(newReq("CS-Q-SLOW")).InstanceID

	cases := []struct {
		name     string
		ids      string
		want     protocol.ResultCode
		wantInfo int
	}{
		{"active", active, protocol.CodeSuccess, 1},
		{"unknown", "nope-1,nope-2", protocol.CodeInstanceNotFound, 0},
		{"unknown left out", active + ",nope", protocol.CodeSuccess, 1},
		{"one provisioning", active + "," + slow, protocol.CodeProcessing, 2},
		{"pay-per-use", ppu, protocol.CodeSuccess, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := e.do(queryReq(c.ids))
			r := out.Response.(protocol.QueryInstanceResponse)
			if out.Code != c.want || r.ResultCode != c.want || len(r.Info) != c.wantInfo {
				t.Fatalf("code %s (reply %s), %d entries; want %s, %d", out.Code, r.ResultCode, len(r.Info), c.want, c.wantInfo)
			}
			for _, in := range r.Info {
				if ready := in.InstanceID != slow; ready != (in.AppInfo != nil) {
					t.Errorf("%s: app info %+v", in.InstanceID, in.AppInfo)
				}
			}
		})
	}
	r := e.do(queryReq(ppu)).Response.(protocol.QueryInstanceResponse)
	if u := r.Info[0].UsageInfo; len(u) != 1 || u[0].UsageValue.String() != "0" || len(u[0].StatisticalTime) != 17 {
		t.Errorf("pay-per-use usage info %+v", u)
	}
	if err := r.Validate(); err != nil {
		t.Errorf("pay-per-use reply: %v", err)
	}
	v.mu.Lock()
	v.release = nil
	v.mu.Unlock()
	close(release)
	e.waitStatus(slow, store.StatusActive)
	if out := e.do(queryReq(active + "," + slow)); out.Code != protocol.CodeSuccess {
		t.Errorf("both ready: %s", out.Code)
	}
}

func TestCredentials(t *testing.T) {
	cipher, err := sign.NewCredentialCipher("TestAccessKey-0123456789abcdef", sign.EncryptAES256)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		cipher *sign.CredentialCipher
	}{
		{"plain", nil},
		{"encrypted", cipher},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, options{cipher: c.cipher})
			id := e.newActive("CS-CRED")
			want := e.prov.lastResult().AppInfo
			r := e.do(queryReq(id)).Response.(protocol.QueryInstanceResponse)
			app := r.Info[0].AppInfo
			if app == nil {
				t.Fatal("no app info")
			}
			user, pass := app.UserName, app.Password
			if c.cipher == nil {
				if r.EncryptType != "" {
					t.Errorf("encryptType %q on plain credentials", r.EncryptType)
				}
			} else {
				if r.EncryptType != "1" {
					t.Errorf("encryptType %q, want 1", r.EncryptType)
				}
				if user == want.UserName || pass == want.Password {
					t.Fatal("credentials sent in clear")
				}
				if user, err = cipher.Decrypt(user); err != nil {
					t.Fatal(err)
				}
				if pass, err = cipher.Decrypt(pass); err != nil {
					t.Fatal(err)
				}
			}
			if user != want.UserName || pass != want.Password {
				t.Errorf("credentials %q/%q, want %q/%q", user, pass, want.UserName, want.Password)
			}
			if app.Memo != want.Memo || app.FrontEndURL != want.FrontEndURL {
				t.Errorf("memo %q url %q", app.Memo, app.FrontEndURL)
			}
		})
	}
}

func TestUnservedActivity(t *testing.T) {
	e := newEnv(t, options{noRunner: true})
	out := e.do(protocol.OrderNotifyRequest{ActivityName: protocol.ActivityOrderNotify, OrderID: "CS-1", OrderLineID: "CS-1-000001"})
	if out.Code != protocol.CodeInvalidParam {
		t.Errorf("orderNotify: %s", out.Code)
	}
	bad := newReq("CS-1")
	bad.OrderLineID = ""
	if out := e.do(bad); out.Code != protocol.CodeInvalidParam {
		t.Errorf("invalid request: %s", out.Code)
	}
}

func TestNewInstanceWithExecProvisioner(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "vendor.sh")
	log := filepath.Join(dir, "events.log")
	body := "#!/bin/sh\ncat >/dev/null\necho \"$KOOBRIDGE_EVENT $KOOBRIDGE_EVENT_ID\" >> " + log + "\n" +
		"if [ \"$KOOBRIDGE_EVENT\" = instance.created ]; then\n" +
		"  echo '{\"appInfo\":{\"frontEndUrl\":\"https://exec.example/app\",\"userName\":\"root\",\"password\":\"exec-pw-1\"}}'\n" +
		"fi\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	ex, err := provision.NewExec(provision.ExecConfig{Command: []string{script}})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, options{prov: ex})
	id := e.newActive("CS-EXEC")
	r := e.do(queryReq(id)).Response.(protocol.QueryInstanceResponse)
	if app := r.Info[0].AppInfo; app == nil || app.Password != "exec-pw-1" || app.FrontEndURL != "https://exec.example/app" {
		t.Fatalf("app info %+v", app)
	}
	if out := e.do(releaseReq(id)); out.Code != protocol.CodeSuccess {
		t.Fatal(out.Code)
	}
	want := "instance.released instance.released:" + id
	eventually(t, "release event run", func() bool {
		b, _ := os.ReadFile(log)
		return strings.Contains(string(b), want)
	})
	b, _ := os.ReadFile(log)
	if !strings.HasPrefix(string(b), "instance.created instance.created:"+id+"\n") {
		t.Errorf("events: %s", b)
	}
}

// TestNewInstanceRefusedByTheVendor: the vendor's product refuses the
// purchase with a business code; KooGallery gets that code and message,
// nothing is retried, repeats get the same answer without asking the
// vendor again, and only an operator's Reprovision tries once more.
func TestNewInstanceRefusedByTheVendor(t *testing.T) {
	v := newVendor(t)
	v.set("refuse", 0)
	e := newEnv(t, options{prov: v.provisioner(t)})
	addOrder(e.api, "CS-REFUSED", protocol.ChargingPeriod, "sku-basic")

	first := e.do(newReq("CS-REFUSED"))
	if first.Code != protocol.CodeSoldOut || first.Msg != "sold out in this region" {
		t.Fatalf("refused purchase answered %s %q, want 000106 with the vendor's message", first.Code, first.Msg)
	}
	inst := e.instance(first.InstanceID)
	if inst.Status != store.StatusFailed || inst.FailCode != "000106" || inst.LastError != "sold out in this region" {
		t.Fatalf("instance %s fail code %q last error %q", inst.Status, inst.FailCode, inst.LastError)
	}
	if js, err := e.st.Jobs(context.Background(), store.JobFilter{Kind: instance.KindProvision}); err != nil ||
		len(js) != 1 || js[0].State != store.JobDead || js[0].Attempts != 1 {
		t.Fatalf("provision jobs %+v, %v; want one, dead after one attempt", js, err)
	}
	again := e.do(newReq("CS-REFUSED"))
	if string(again.Response.(json.RawMessage)) != string(first.Response.(json.RawMessage)) || !again.Repeat {
		t.Errorf("repeat answered %s (repeat %v), the first call %s", again.Response, again.Repeat, first.Response)
	}
	if n := v.received(provision.EventCreated); n != 1 {
		t.Errorf("the vendor was asked %d times, want once: a refusal is final", n)
	}
	if q := e.do(queryReq(first.InstanceID)); q.Code != protocol.CodeSoldOut || q.Msg != "sold out in this region" {
		t.Errorf("queryInstance of the refused instance: %s %q", q.Code, q.Msg)
	}
	// An operator may decide to try again; the refusal is cleared.
	v.set("ok", 0)
	if err := e.svc.Reprovision(context.Background(), first.InstanceID); err != nil {
		t.Fatal(err)
	}
	if got := e.waitStatus(first.InstanceID, store.StatusActive); got.FailCode != "" {
		t.Errorf("fail code %q after a successful reprovision", got.FailCode)
	}
	if out := e.do(newReq("CS-REFUSED")); out.Code != protocol.CodeSuccess {
		t.Errorf("repeat after reprovision: %s %q", out.Code, out.Msg)
	}
}

// TestRefusalAfterTheBudget: the vendor refuses after the first call has
// answered 000004 at its budget; KooGallery's repeats get the refusal, not
// the stored 000004.
func TestRefusalAfterTheBudget(t *testing.T) {
	v := newVendor(t)
	v.set("refuse", 600*time.Millisecond)
	e := newEnv(t, options{prov: v.provisioner(t), budget: 150 * time.Millisecond})
	addOrder(e.api, "CS-LATE-NO", protocol.ChargingPeriod, "sku-basic")
	first := e.do(newReq("CS-LATE-NO"))
	if first.Code != protocol.CodeProcessing {
		t.Fatalf("first call %s %q, want 000004", first.Code, first.Msg)
	}
	e.waitStatus(first.InstanceID, store.StatusFailed)
	for i := range 2 {
		out := e.do(newReq("CS-LATE-NO"))
		if out.Code != protocol.CodeSoldOut || out.Msg != "sold out in this region" || out.InstanceID != first.InstanceID {
			t.Errorf("repeat %d: %s %q for %s, want the refusal", i+1, out.Code, out.Msg, out.InstanceID)
		}
	}
	if n := v.received(provision.EventCreated); n != 1 {
		t.Errorf("the vendor was asked %d times", n)
	}
}

// TestIDsWithColons: ids are free text; two order lines whose ids joined
// with ":" look alike are two purchases with keys of their own.
func TestIDsWithColons(t *testing.T) {
	e := newEnv(t, options{})
	req := func(order, line string) protocol.NewInstanceRequest {
		return protocol.NewInstanceRequest{ActivityName: protocol.ActivityNewInstance, BusinessID: "b", OrderID: order, OrderLineID: line}
	}
	for _, o := range []struct{ order, line string }{{"CS:A", "B"}, {"CS", "A:B"}} {
		e.api.AddOrder(protocol.OrderInfo{OrderID: protocol.FlexString(o.order), OrderType: protocol.OrderTypeNew,
			OrderLine: []protocol.OrderLine{{OrderLineID: protocol.FlexString(o.line), ChargingMode: protocol.ChargingPeriod}}})
	}
	a := e.do(req("CS:A", "B"))
	b := e.do(req("CS", "A:B"))
	if a.InstanceID == "" || b.InstanceID == "" || a.InstanceID == b.InstanceID || a.IdemKey == b.IdemKey {
		t.Fatalf("two order lines: instances %q %q, keys %q %q", a.InstanceID, b.InstanceID, a.IdemKey, b.IdemKey)
	}
	for _, c := range []struct {
		req  protocol.NewInstanceRequest
		want string
	}{{req("CS:A", "B"), a.InstanceID}, {req("CS", "A:B"), b.InstanceID}} {
		out := e.do(c.req)
		var resp protocol.NewInstanceResponse
		_ = json.Unmarshal(out.Response.(json.RawMessage), &resp)
		if out.InstanceID != c.want || resp.InstanceID != c.want {
			t.Errorf("repeat of %s/%s answered %q (body %q), want %q", c.req.OrderID, c.req.OrderLineID, out.InstanceID, resp.InstanceID, c.want)
		}
		op, err := e.st.Operation(context.Background(), out.IdemKey)
		if err != nil || op.InstanceID != c.want {
			t.Errorf("operation %q: %+v, %v", out.IdemKey, op, err)
		}
	}
}

func TestKey(t *testing.T) {
	tests := []struct {
		parts []string
		want  string
	}{
		{[]string{"newInstance", "CS1", "CS1-000001"}, "newInstance:CS1:CS1-000001"},
		{[]string{"newInstance", "CS:A", "B"}, "newInstance:CS%3AA:B"},
		{[]string{"newInstance", "CS", "A:B"}, "newInstance:CS:A%3AB"},
		{[]string{"x", "100%", "%3A"}, "x:100%25:%253A"},
		{[]string{"x", ""}, "x:"},
	}
	for _, tt := range tests {
		if got := instance.Key(tt.parts...); got != tt.want {
			t.Errorf("Key(%q) = %q, want %q", tt.parts, got, tt.want)
		}
	}
}
