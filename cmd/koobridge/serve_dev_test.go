package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/koobridge/koobridge/protocol"
)

// TestServeDevLifecycle is the serve issue's acceptance check: a bare
// "koobridge serve --dev" (no AK/SK, no Open API, embedded SQLite) answers a
// whole V2 lifecycle from a signed client, every reply Body-Signed.
func TestServeDevLifecycle(t *testing.T) {
	p := startServe(t, "--dev", "--listen", "127.0.0.1:0", "--db", "sqlite:"+filepath.Join(t.TempDir(), "kb.db"))
	m := devKeyRE.FindStringSubmatch(p.output())
	if m == nil {
		t.Fatalf("no generated key banner:\n%s", p.output())
	}
	key := m[1]
	expect := func(step string, got v2Reply, want string) v2Reply {
		t.Helper()
		if got.ResultCode != want {
			t.Fatalf("%s: %s %q, want %s", step, got.ResultCode, got.ResultMsg, want)
		}
		return got
	}

	// A purchase of an order id nobody prepared: --dev answers Query Order itself.
	created := call(t, p.base, key, newInstanceBody("CSDEV1"))
	if created.InstanceID == "" || (created.ResultCode != "000000" && created.ResultCode != "000004") {
		t.Fatalf("newInstance: %+v", created)
	}
	id := created.InstanceID
	// 000004 only if the first call outran its budget on a loaded machine.
	again := call(t, p.base, key, newInstanceBody("CSDEV1"))
	if again.InstanceID != id || (again.ResultCode != "000000" && again.ResultCode != "000004") {
		t.Fatalf("repeated newInstance: %+v, first instance %q", again, id)
	}
	var q v2Reply
	waitFor(t, "the instance to be provisioned", func() bool {
		q = call(t, p.base, key, queryBody(id))
		return q.ResultCode == "000000"
	})
	if len(q.Info) != 1 || q.Info[0].AppInfo == nil || q.Info[0].AppInfo.FrontEndURL == "" || q.Info[0].AppInfo.Password == "" {
		t.Fatalf("queryInstance app info: %+v", q)
	}

	expiry := protocol.FormatTime14(time.Now().UTC().AddDate(2, 0, 0))
	renew := map[string]string{"activity": "refreshInstance", "scene": "RENEWAL", "orderId": "CSDEV2",
		"orderLineId": "CSDEV2-000001", "instanceId": id, "expireTime": expiry}
	expect("refreshInstance", call(t, p.base, key, renew), "000000")
	expect("repeated refreshInstance", call(t, p.base, key, renew), "000000")
	status := func(s string) map[string]string {
		return map[string]string{"activity": "updateInstanceStatus", "instanceId": id, "status": s}
	}
	expect("FREEZE", call(t, p.base, key, status("FREEZE")), "000000")
	expect("FREEZE again", call(t, p.base, key, status("FREEZE")), "000000")
	expect("UNFREEZE", call(t, p.base, key, status("UNFREEZE")), "000000")
	upgrade := map[string]string{"activity": "upgradeInstance", "instanceId": id, "orderId": "MOCKMONTYCHANGE",
		"orderLineId": "MOCKMONTYCHANGE-000001"}
	expect("upgradeInstance", call(t, p.base, key, upgrade), "000000")
	check := map[string]string{"activity": "changeInstanceCheck", "instanceId": id}
	if r := call(t, p.base, key, check); r.ResultCode != "000002" {
		// productInfo is mandatory: without it the call is invalid.
		t.Fatalf("changeInstanceCheck without productInfo: %s, want 000002", r.ResultCode)
	}
	release := map[string]string{"activity": "releaseInstance", "instanceId": id}
	expect("releaseInstance", call(t, p.base, key, release), "000000")
	expect("releaseInstance again", call(t, p.base, key, release), "000000")
	expect("refresh after release", call(t, p.base, key, map[string]string{"activity": "refreshInstance", "scene": "RENEWAL",
		"orderId": "CSDEV3", "orderLineId": "CSDEV3-000001", "instanceId": id, "expireTime": expiry}), "000003")
	expect("release of an unknown instance", call(t, p.base, key, map[string]string{"activity": "releaseInstance", "instanceId": "never-existed"}), "000003")

	if code := p.stop(t, os.Interrupt); code != 0 {
		t.Fatalf("exit %d after SIGINT", code)
	}
}
