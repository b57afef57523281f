package isv_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/isv"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
	"github.com/koobridge/koobridge/provision"
)

// acceptNew checks a newInstance reply: 000000, or 000004 when the loaded
// machine was slower than the budget, with an instanceId.
func acceptNew(t testing.TB, r *result) string {
	t.Helper()
	if c := r.code(); c != string(protocol.CodeSuccess) && c != string(protocol.CodeProcessing) {
		t.Fatalf("newInstance: resultCode %s (%s); body %s", c, r.msg(), r.raw)
	}
	id, _ := r.body["instanceId"].(string)
	if id == "" {
		t.Fatalf("newInstance: no instanceId in %s", r.raw)
	}
	return id
}

func appInfo(t testing.TB, r *result) map[string]any {
	t.Helper()
	info, _ := r.body["info"].([]any)
	if len(info) != 1 {
		t.Fatalf("want one info entry: %s", r.raw)
	}
	entry, _ := info[0].(map[string]any)
	ai, _ := entry["appInfo"].(map[string]any)
	if ai == nil {
		t.Fatalf("no appInfo: %s", r.raw)
	}
	return ai
}

// TestFullLifecycle drives one instance through every V2 activity over
// HTTP; every reply's form and Body-Sign are checked by call.
func TestFullLifecycle(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.addOrder("ORDER-1", "ORDER-1-000001", "sku-small")
	e.addOrder("ORDER-UP", "ORDER-UP-000001", "sku-large")

	id := acceptNew(t, e.call(t, newInstanceBody("ORDER-1", "ORDER-1-000001"), request{}))
	q := e.waitActive(t, id)
	ai := appInfo(t, q)
	if ai["frontEndUrl"] == "" || ai["password"] == "" || ai["userName"] == "" {
		t.Fatalf("incomplete appInfo: %s", q.raw)
	}
	inst, err := e.st.Instance(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if inst.SKUCode != "sku-small" || inst.Status != store.StatusActive {
		t.Fatalf("instance after newInstance: sku %q status %q", inst.SKUCode, inst.Status)
	}

	expire := time.Now().AddDate(2, 0, 0).UTC().Truncate(time.Second)
	refresh := fmt.Sprintf(`{"activity":"refreshInstance","expireTime":"%s","instanceId":"%s","orderId":"ORDER-RENEW","orderLineId":"ORDER-RENEW-000001","scene":"RENEWAL"}`,
		protocol.FormatTime14(expire), id)
	r1 := e.call(t, refresh, request{})
	wantCode(t, r1, protocol.CodeSuccess)
	r2 := e.call(t, refresh, request{})
	wantCode(t, r2, protocol.CodeSuccess)
	if !bytes.Equal(r1.raw, r2.raw) {
		t.Errorf("repeat of refreshInstance answered differently:\n%s\n%s", r1.raw, r2.raw)
	}
	if inst, _ = e.st.Instance(ctx, id); !inst.ExpireTime.Equal(expire) {
		t.Errorf("expiry %v, want %v", inst.ExpireTime, expire)
	}

	status := func(s string) string {
		return fmt.Sprintf(`{"activity":"updateInstanceStatus","instanceId":"%s","status":"%s"}`, id, s)
	}
	for _, step := range []struct {
		body string
		want store.InstanceStatus
	}{
		{status("FREEZE"), store.StatusFrozen},
		{status("FREEZE"), store.StatusFrozen},
		{status("UNFREEZE"), store.StatusActive},
	} {
		wantCode(t, e.call(t, step.body, request{}), protocol.CodeSuccess)
		if inst, _ = e.st.Instance(ctx, id); inst.Status != step.want {
			t.Fatalf("after %s: status %q, want %q", step.body, inst.Status, step.want)
		}
	}

	upgrade := fmt.Sprintf(`{"activity":"upgradeInstance","instanceId":"%s","orderId":"ORDER-UP","orderLineId":"ORDER-UP-000001"}`, id)
	wantCode(t, e.call(t, upgrade, request{}), protocol.CodeSuccess)
	eventually(t, "upgrade applied", func() bool {
		inst, _ = e.st.Instance(ctx, id)
		return inst.SKUCode == "sku-large"
	})

	release := fmt.Sprintf(`{"activity":"releaseInstance","instanceId":"%s"}`, id)
	wantCode(t, e.call(t, release, request{}), protocol.CodeSuccess)
	wantCode(t, e.call(t, release, request{}), protocol.CodeSuccess)
	if inst, _ = e.st.Instance(ctx, id); inst.Status != store.StatusReleased {
		t.Fatalf("after release: status %q", inst.Status)
	}

	q = e.call(t, `{"activity":"queryInstance","instanceId":"`+id+`"}`, request{})
	wantCode(t, q, protocol.CodeSuccess)
	if !strings.Contains(string(q.raw), id) {
		t.Errorf("query after release does not list the instance: %s", q.raw)
	}
	wantCode(t, e.call(t, `{"activity":"queryInstance","instanceId":"never-existed"}`, request{}), protocol.CodeInstanceNotFound)

	// The ledger holds every call with its activity; repeats are marked.
	calls := e.calls(t, 12)
	var refreshes, repeats int
	for _, c := range calls {
		if c.Interface != "v2" || c.ResultCode == "" || c.HTTPStatus != 200 || c.RequestID == "" || c.Response == "" {
			t.Errorf("incomplete ledger row: %+v", c)
		}
		if c.Activity == protocol.ActivityRefreshInstance {
			refreshes++
			if c.IdemKey == "" || c.InstanceID != id {
				t.Errorf("refresh call without key or instance: %+v", c)
			}
		}
		if c.Repeat {
			repeats++
		}
	}
	if refreshes != 2 {
		t.Errorf("%d refreshInstance calls in the ledger, want 2", refreshes)
	}
	if repeats < 3 { // refresh, FREEZE and release repeats
		t.Errorf("%d repeats in the ledger, want at least 3", repeats)
	}
	if n := e.prov.count(provision.EventCreated); n != 1 {
		t.Errorf("instance.created delivered %d times, want 1", n)
	}
}

// TestCredentialsEncrypted: the reply's password decrypts with the key's
// credential AES to the password sealed at rest, and encryptType is set.
func TestCredentialsEncrypted(t *testing.T) {
	for _, et := range []sign.EncryptType{sign.EncryptAES256, sign.EncryptAES128} {
		t.Run("encryptType "+string(et), func(t *testing.T) {
			e := newEnv(t, func(c *isv.Config) {
				c.Credentials = isv.CredentialsEncrypted
				c.EncryptType = et
			})
			e.addOrder("ORDER-E", "ORDER-E-000001", "sku")
			id := acceptNew(t, e.call(t, newInstanceBody("ORDER-E", "ORDER-E-000001"), request{}))
			q := e.waitActive(t, id)
			if q.body["encryptType"] != string(et) {
				t.Errorf("encryptType %v, want %s", q.body["encryptType"], et)
			}
			ai := appInfo(t, q)
			cipher, err := sign.NewCredentialCipher(key1, et)
			if err != nil {
				t.Fatal(err)
			}
			password, err := cipher.Decrypt(ai["password"].(string))
			if err != nil {
				t.Fatalf("decrypt password: %v", err)
			}
			userName, err := cipher.Decrypt(ai["userName"].(string))
			if err != nil || userName == "" {
				t.Fatalf("decrypt userName: %q, %v", userName, err)
			}
			inst, err := e.st.Instance(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			stored, err := e.sealer.Open(inst.AppInfo.PasswordSealed)
			if err != nil {
				t.Fatal(err)
			}
			if password == "" || password != stored {
				t.Errorf("decrypted password %q, sealed one %q", password, stored)
			}
		})
	}
}

func TestCredentialsPlainByDefault(t *testing.T) {
	e := newEnv(t)
	e.addOrder("ORDER-P", "ORDER-P-000001", "sku")
	id := acceptNew(t, e.call(t, newInstanceBody("ORDER-P", "ORDER-P-000001"), request{}))
	q := e.waitActive(t, id)
	if _, ok := q.body["encryptType"]; ok {
		t.Errorf("encryptType in a plain reply: %s", q.raw)
	}
	inst, _ := e.st.Instance(context.Background(), id)
	stored, err := e.sealer.Open(inst.AppInfo.PasswordSealed)
	if err != nil {
		t.Fatal(err)
	}
	if got := appInfo(t, q)["password"]; got != stored {
		t.Errorf("password %v, want the sealed one %q", got, stored)
	}
}

// TestMemoEscaped: the demo provisioner's memo has Chinese text, which the
// raw reply must carry as \uXXXX escapes.
func TestMemoEscaped(t *testing.T) {
	e := newEnv(t)
	e.addOrder("ORDER-M", "ORDER-M-000001", "sku")
	id := acceptNew(t, e.call(t, newInstanceBody("ORDER-M", "ORDER-M-000001"), request{}))
	q := e.waitActive(t, id) // call checks the raw reply is pure ASCII
	memo, _ := appInfo(t, q)["memo"].(string)
	if memo == "" {
		t.Fatalf("no memo: %s", q.raw)
	}
	var nonASCII []rune
	for _, r := range memo {
		if r > 0x7f {
			nonASCII = append(nonASCII, r)
		}
	}
	if len(nonASCII) == 0 {
		t.Fatalf("the demo memo %q has no non-ASCII text to test with", memo)
	}
	want := fmt.Sprintf(`\u%04x`, nonASCII[0])
	if !strings.Contains(string(q.raw), want) {
		t.Errorf("raw reply lacks %s: %s", want, q.raw)
	}
}

// TestConcurrentDuplicates: 50 concurrent newInstance calls for one order
// line give one instance, one provisioning and 50 identical ids.
func TestConcurrentDuplicates(t *testing.T) {
	e := newEnv(t)
	e.addOrder("ORDER-C", "ORDER-C-000001", "sku")
	const n = 50
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := e.call(t, newInstanceBody("ORDER-C", "ORDER-C-000001"), request{})
			if c := r.code(); c != string(protocol.CodeSuccess) && c != string(protocol.CodeProcessing) {
				t.Errorf("call %d: resultCode %s (%s)", i, c, r.msg())
			}
			ids[i], _ = r.body["instanceId"].(string)
		}()
	}
	wg.Wait()
	for i, id := range ids {
		if id == "" || id != ids[0] {
			t.Fatalf("instanceId %d is %q, first is %q", i, id, ids[0])
		}
	}
	insts, err := e.st.Instances(context.Background(), store.InstanceFilter{OrderID: "ORDER-C"})
	if err != nil {
		t.Fatal(err)
	}
	if len(insts) != 1 {
		t.Fatalf("%d instances for one order line", len(insts))
	}
	e.waitActive(t, ids[0])
	if c := e.prov.count(provision.EventCreated); c != 1 {
		t.Errorf("instance.created delivered %d times, want 1", c)
	}
	e.calls(t, n) // every call reached the ledger
}

// TestLedgerMasksPersonalData: neither the buyer's phone number and e-mail
// from Query Order nor the app password appear anywhere in the ledger.
func TestLedgerMasksPersonalData(t *testing.T) {
	e := newEnv(t)
	e.addOrder("ORDER-L", "ORDER-L-000001", "sku")
	id := acceptNew(t, e.call(t, newInstanceBody("ORDER-L", "ORDER-L-000001"), request{}))
	q := e.waitActive(t, id)
	password, _ := appInfo(t, q)["password"].(string)
	userName, _ := appInfo(t, q)["userName"].(string)
	if password == "" || userName == "" {
		t.Fatalf("no credentials in %s", q.raw)
	}
	// A body carrying personal data of its own (unknown fields are ignored
	// by the decoder but kept, masked, in the ledger).
	wantCode(t, e.call(t, `{"activity":"queryInstance","instanceId":"`+id+`","mobilePhone":"`+buyerPhone+`","email":"`+buyerEmail+`"}`, request{}), protocol.CodeSuccess)
	// And a malformed one.
	wantCode(t, e.call(t, `{"activity":"newInstance","mobile":"`+buyerPhone+`",`, request{}), protocol.CodeInvalidParam)

	inst, err := e.st.Instance(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if inst.OrderState != store.OrderFetched {
		t.Fatalf("order details not fetched: %q", inst.OrderState)
	}
	calls := e.calls(t, 4)
	var masked bool
	for _, c := range calls {
		dump := fmt.Sprintf("%+v", c)
		for _, secret := range []string{buyerPhone, buyerEmail, password} {
			if strings.Contains(dump, secret) {
				t.Errorf("ledger row holds %q: %s", secret, dump)
			}
		}
		if strings.Contains(c.Response, `"password":"******"`) {
			masked = true
			var v any
			if err := json.Unmarshal([]byte(c.Response), &v); err != nil {
				t.Errorf("masked response is not JSON: %v", err)
			}
		}
	}
	if !masked {
		t.Error("no ledger row shows the masked password")
	}
}

// blocking holds instance.created until released, then delegates.
type blocking struct {
	provision.Provisioner
	started chan struct{}
	release chan struct{}
	once    sync.Once
}

func (p *blocking) Provision(ctx context.Context, ev provision.Event) (provision.Result, error) {
	if ev.Type == provision.EventCreated {
		p.once.Do(func() { close(p.started) })
		<-p.release
	}
	return p.Provisioner.Provision(ctx, ev)
}

// TestClientHangUp: a client that gives up mid-call does not abort the
// work: the instance is provisioned and the call is recorded.
func TestClientHangUp(t *testing.T) {
	var b *blocking
	e := newEnv(t, func(c *isv.Config) {
		b = &blocking{Provisioner: c.Provisioner, started: make(chan struct{}), release: make(chan struct{})}
		c.Provisioner, c.TestProvisioner = b, b
	})
	e.addOrder("ORDER-H", "ORDER-H-000001", "sku")
	body := newInstanceBody("ORDER-H", "ORDER-H-000001")
	q := signedQuery(key1, randomNonce(t), time.Now(), []byte(body))
	ctx, cancel := context.WithCancel(context.Background())
	req, err := newPost(ctx, e.url+"?"+q.Encode(), body)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		resp, err := e.http.Client().Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	select {
	case <-b.started:
	case <-time.After(60 * time.Second):
		t.Fatal("provisioning never started")
	}
	cancel()
	if err := <-errc; err == nil {
		t.Fatal("the request was not cancelled")
	}
	close(b.release)
	calls := e.calls(t, 1)
	// The call ran to its end, waiting for provisioning as if the client
	// were still there.
	if c := calls[0]; c.Activity != protocol.ActivityNewInstance || c.InstanceID == "" || c.ResultCode != string(protocol.CodeSuccess) {
		t.Fatalf("ledger row of the abandoned call: %+v", c)
	}
	eventually(t, "instance active", func() bool {
		inst, err := e.st.Instance(context.Background(), calls[0].InstanceID)
		return err == nil && inst.Status == store.StatusActive
	})
}

// TestSlowProvisioning: a provisioner slower than the budget gets 000004,
// queryInstance reports 000004 until the work finishes in the background,
// then 000000 with the same instance.
func TestSlowProvisioning(t *testing.T) {
	var b *blocking
	e := newEnv(t, func(c *isv.Config) {
		c.Budget = 200 * time.Millisecond
		b = &blocking{Provisioner: c.Provisioner, started: make(chan struct{}), release: make(chan struct{})}
		c.Provisioner, c.TestProvisioner = b, b
	})
	e.addOrder("ORDER-S", "ORDER-S-000001", "sku")
	r := e.call(t, newInstanceBody("ORDER-S", "ORDER-S-000001"), request{})
	wantCode(t, r, protocol.CodeProcessing)
	id := acceptNew(t, r)
	q := e.call(t, `{"activity":"queryInstance","instanceId":"`+id+`"}`, request{})
	wantCode(t, q, protocol.CodeProcessing)
	again := e.call(t, newInstanceBody("ORDER-S", "ORDER-S-000001"), request{})
	wantCode(t, again, protocol.CodeProcessing)
	if acceptNew(t, again) != id {
		t.Fatalf("repeat answered another instance: %s", again.raw)
	}
	close(b.release)
	e.waitActive(t, id)
	if n := e.prov.count(provision.EventCreated); n != 1 {
		t.Errorf("instance.created delivered %d times, want 1", n)
	}
}

// TestDebugCalls: testFlag "1" and MOCK* orders go to the test provisioner
// (the demo one when none is configured), never to the real one, and the
// ledger marks them.
func TestDebugCalls(t *testing.T) {
	e := newEnv(t, func(c *isv.Config) { c.TestProvisioner = nil })
	body := `{"activity":"newInstance","businessId":"` + randomID() + `","orderId":"MOCKPERIODYEARNEW","orderLineId":"MOCKPERIODYEARNEW-000001","testFlag":"1"}`
	id := acceptNew(t, e.call(t, body, request{}))
	q := e.waitActive(t, id)
	if url, _ := appInfo(t, q)["frontEndUrl"].(string); !strings.HasPrefix(url, provision.DefaultDemoURL) {
		t.Errorf("frontEndUrl %q is not the demo provisioner's", url)
	}
	if n := e.prov.total(); n != 0 {
		t.Errorf("the real provisioner received %d events for a debug call", n)
	}
	inst, err := e.st.Instance(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if !inst.Test {
		t.Error("instance not marked as a test instance")
	}
	calls := e.calls(t, 2)
	if !calls[0].Test || calls[0].Activity != protocol.ActivityNewInstance {
		t.Errorf("ledger row of the debug call: %+v", calls[0])
	}
}
