package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestConformanceV1KitAgainstServe runs "koobridge conformance --profile
// v1,kit" as a process against a real "koobridge serve" process with a Kit
// key of its own and the RSA key pair "koobridge keygen rsa" made, once
// with the Kit at the server's root and once under the production path.
func TestConformanceV1KitAgainstServe(t *testing.T) {
	bin := koobridgeBinary(t)
	dir := t.TempDir()
	const key, kitKey = "joint-e2e-basic-key-0123456789", "joint-e2e-kit-key-9876543210"
	prefix := filepath.Join(dir, "app")
	if out, err := exec.Command(bin, "keygen", "rsa", "--out", prefix).CombinedOutput(); err != nil {
		t.Fatalf("keygen rsa: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for _, tc := range []struct {
		name, profile, kitTarget string
		cases                    int
	}{
		{"root", "v1,kit", "", v1KitCases},
		{"under the production path", "kit", "/produce", 34},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var (
				cmd            *exec.Cmd
				stdout, stderr bytes.Buffer
			)
			for attempt := range portRetries {
				openAPI := "127.0.0.1:" + strconv.Itoa(freePort(t))
				p := startServe(t, "--db", filepath.Join(dir, tc.profile+strconv.Itoa(attempt)+".db"), "--key", key, "--kit-key", kitKey,
					"--rsa-private-key-file", prefix+".pem", "--ak", testAK, "--sk", testSK, "--data-key", newDataKey(t),
					"--openapi-url", "http://"+openAPI, "--listen", "127.0.0.1:0")
				args := []string{"conformance", "--profile", tc.profile, "--target", p.base + "/produce",
					"--key", key, "--kit-key", kitKey, "--ak", testAK, "--sk", testSK, "--openapi-listen", openAPI,
					"--rsa-public-key-file", prefix + ".pub.pem"}
				if tc.kitTarget != "" {
					args = append(args, "--kit-target", p.base+tc.kitTarget)
				}
				cmd = exec.CommandContext(ctx, bin, args...)
				cmd.Env = cleanEnv()
				stdout.Reset()
				stderr.Reset()
				cmd.Stdout, cmd.Stderr = &stdout, &stderr
				err := cmd.Run()
				var ee *exec.ExitError
				if err != nil && !errors.As(err, &ee) {
					t.Fatalf("run conformance: %v", err)
				}
				if !inUse(cmd.ProcessState.ExitCode(), stderr.String()) {
					// The server's log holds no personal data of the suite's users, nor a secret.
					for _, leak := range []string{"@example.com", kitKey, key} {
						if strings.Contains(p.output(), leak) {
							t.Errorf("serve's log holds %q", leak)
						}
					}
					break
				}
				_ = p.stop(t, os.Interrupt)
			}
			out := stdout.String()
			if code := cmd.ProcessState.ExitCode(); code != 0 {
				t.Fatalf("conformance exit %d against koobridge serve\nstdout:\n%s\nstderr:\n%s", code, out, stderr.String())
			}
			if want := strconv.Itoa(tc.cases) + " cases: " + strconv.Itoa(tc.cases) + " passed, 0 failed"; !strings.Contains(out, want) || strings.Contains(out, "FAIL") {
				t.Fatalf("report does not say %q:\n%s", want, out)
			}
		})
	}
}

// emulateProc is a running "koobridge emulate".
type emulateProc struct {
	base string // http://host:port of its web page and JSON API
	out  *lockedOutput
}

type lockedOutput struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedOutput) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedOutput) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

var emulatorURLRE = regexp.MustCompile(`web page and JSON API: (http://\S+)/`)

func startEmulate(t *testing.T, args ...string) *emulateProc {
	t.Helper()
	cmd := exec.Command(koobridgeBinary(t), append([]string{"emulate"}, args...)...)
	cmd.Env = cleanEnv()
	base, out := startProcess(t, "emulate", cmd, emulatorURLRE)
	return &emulateProc{base: base, out: out}
}

// startProcess starts cmd, named name in failures, and waits until its
// output matches urlRE, whose first group is the base URL it returns with
// the output. The process gets an interrupt (then a kill) at the test's
// end; its output is logged when the test failed.
func startProcess(t *testing.T, name string, cmd *exec.Cmd, urlRE *regexp.Regexp) (string, *lockedOutput) {
	t.Helper()
	out := &lockedOutput{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, out.String())
		}
	})
	var base string
	waitFor(t, name+"'s URL", func() bool {
		select {
		case <-done:
			t.Fatalf("%s exited:\n%s", name, out.String())
		default:
		}
		if m := urlRE.FindStringSubmatch(out.String()); m != nil {
			base = m[1]
			return true
		}
		return false
	})
	return base, out
}

// post sends a JSON body to the emulator's API and decodes the answer.
func (p *emulateProc) post(t *testing.T, path, body string, into any) {
	t.Helper()
	resp, err := http.Post(p.base+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("POST %s: %d %s", path, resp.StatusCode, raw)
	}
	if err := json.Unmarshal(raw, into); err != nil {
		t.Fatalf("POST %s: %v: %s", path, err, raw)
	}
}

// getJSON GETs url (with a bearer token when given) and decodes it.
func getJSON(t *testing.T, url, bearer string, into any) {
	t.Helper()
	code, body := httpGet(t, url, bearer)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, code, body)
	}
	if err := json.Unmarshal([]byte(body), into); err != nil {
		t.Fatalf("GET %s: %v: %s", url, err, body)
	}
}

// jointTenant is a tenant as the emulator and the admin API both show it:
// the fields they share.
type jointTenant struct {
	TenantID   string `json:"tenantId"`
	TenantCode string `json:"tenantCode"`
	Name       string `json:"name"`
	DomainName string `json:"domainName"`
	InstanceID string `json:"instanceId"`
	Status     string `json:"status,omitempty"`
	Apps       []struct {
		AppID    string `json:"appId"`
		ClientID string `json:"clientId"`
	} `json:"apps"`
	Users []jointUser `json:"users"`
	Orgs  []jointOrg  `json:"orgs"`
}

type jointUser struct {
	UserName   string `json:"userName"`
	Name       string `json:"name"`
	OrgCode    string `json:"orgCode"`
	Role       string `json:"role"`
	Enable     bool   `json:"enable"`
	Authorized bool   `json:"authorized"`
}

type jointOrg struct {
	OrgCode    string `json:"orgCode"`
	Name       string `json:"name"`
	ParentCode string `json:"parentCode"`
}

// sameTenant compares what KooGallery (the emulator) told the seller with
// what the seller keeps, users and departments as sets.
func sameTenant(t *testing.T, what string, want, got jointTenant) {
	t.Helper()
	if got.TenantID != want.TenantID || got.TenantCode != want.TenantCode || got.Name != want.Name ||
		got.DomainName != want.DomainName || got.InstanceID != want.InstanceID {
		t.Errorf("%s: tenant %+v, want %+v", what, got, want)
	}
	byName := func(us []jointUser) []jointUser {
		s := slices.Clone(us)
		slices.SortFunc(s, func(a, b jointUser) int { return strings.Compare(a.UserName, b.UserName) })
		return s
	}
	if w, g := byName(want.Users), byName(got.Users); !slices.Equal(w, g) {
		t.Errorf("%s: %d users kept, %d sent; first difference: %s", what, len(g), len(w), firstDiff(w, g))
	}
	byCode := func(os []jointOrg) []jointOrg {
		s := slices.Clone(os)
		slices.SortFunc(s, func(a, b jointOrg) int { return strings.Compare(a.OrgCode, b.OrgCode) })
		return s
	}
	if w, g := byCode(want.Orgs), byCode(got.Orgs); !slices.Equal(w, g) {
		t.Errorf("%s: departments kept %+v, sent %+v", what, g, w)
	}
	if len(got.Apps) != 1 || len(want.Apps) != 1 || got.Apps[0] != want.Apps[0] {
		t.Errorf("%s: apps kept %+v, sent %+v", what, got.Apps, want.Apps)
	}
}

func firstDiff[T comparable](a, b []T) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return fmt.Sprintf("sent %+v, kept %+v", a[i], b[i])
		}
	}
	return "one list is longer"
}

// TestJointEndToEnd is issue 12's end-to-end check: the emulator, as a
// process, drives a real "koobridge serve" process through a SaaS V1
// purchase and the joint-operation Kit (enterprise binding with an RSA
// encrypted client secret, 500 users in one call, department changes, a
// revocation, unbinding) over HTTP; after each step the admin API shows
// exactly the tenant the emulator made.
func TestJointEndToEnd(t *testing.T) {
	bin := koobridgeBinary(t)
	dir := t.TempDir()
	const key, kitKey = "joint-e2e-basic-key-0123456789", "joint-e2e-kit-key-9876543210"
	prefix := filepath.Join(dir, "app")
	if out, err := exec.Command(bin, "keygen", "rsa", "--out", prefix).CombinedOutput(); err != nil {
		t.Fatalf("keygen rsa: %v\n%s", err, out)
	}
	openAPI := "127.0.0.1:" + strconv.Itoa(freePort(t))
	srv := startServe(t, "--db", filepath.Join(dir, "k.db"), "--key", key, "--kit-key", kitKey,
		"--rsa-private-key-file", prefix+".pem", "--ak", testAK, "--sk", testSK, "--data-key", newDataKey(t),
		"--openapi-url", "http://"+openAPI, "--listen", "127.0.0.1:0", "--admin-token", adminToken)
	em := startEmulate(t, "--listen", "127.0.0.1:0", "--openapi-listen", openAPI, "--target", srv.base+"/produce",
		"--key", key, "--kit-key", kitKey, "--ak", testAK, "--sk", testSK, "--rsa-public-key-file", prefix+".pub.pem")

	type run struct {
		SubscriptionID string `json:"subscriptionId"`
		OK             bool   `json:"ok"`
		Err            string `json:"error"`
	}
	play := func(sub, scenario, extra string) {
		t.Helper()
		var r run
		em.post(t, "/api/emulator/subscriptions/"+sub+"/play", `{"scenario":"`+scenario+`"`+extra+`}`, &r)
		if !r.OK {
			t.Fatalf("%s: %s", scenario, r.Err)
		}
	}
	tenantOf := func(sub string) (emulated, kept jointTenant) {
		t.Helper()
		var all []struct {
			TenantID       string `json:"tenantId"`
			SubscriptionID string `json:"subscriptionId"`
		}
		getJSON(t, em.base+"/api/emulator/tenants", "", &all)
		for _, x := range all {
			if x.SubscriptionID == sub {
				getJSON(t, em.base+"/api/emulator/tenants/"+x.TenantID, "", &emulated)
				getJSON(t, srv.base+"/admin/api/tenants/"+x.TenantID, adminToken, &kept)
				return emulated, kept
			}
		}
		t.Fatalf("the emulator made no tenant for subscription %s: %+v", sub, all)
		return
	}

	// A SaaS V1 purchase: GET with the order in the query.
	var v1 run
	em.purchase(t, `{"productId":"OFFI-EMU-V1"}`, &v1)
	if !v1.OK {
		t.Fatalf("V1 purchase: %s", v1.Err)
	}
	var sub struct {
		InstanceID string `json:"instanceId"`
		Status     string `json:"status"`
	}
	getJSON(t, em.base+"/api/emulator/subscriptions/"+v1.SubscriptionID, "", &sub)
	var inst struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	}
	getJSON(t, srv.base+"/admin/api/instances/"+sub.InstanceID, adminToken, &inst)
	if inst.ID != sub.InstanceID || inst.Status != "active" {
		t.Fatalf("the V1 instance on the server: %+v, want %s active", inst, sub.InstanceID)
	}

	// The V1 product is a joint-operation one too: the Kit V1 generation
	// (authToken header, userList as JSON text, revocation by delete).
	for _, scenario := range []string{"bind", "authorize-users", "org-change", "revoke-user"} {
		play(v1.SubscriptionID, scenario, "")
	}
	emulated, kept := tenantOf(v1.SubscriptionID)
	v1Tenant := kept.TenantID
	if len(emulated.Users) != 499 {
		t.Errorf("the V1 tenant has %d users after a revocation, want 499", len(emulated.Users))
	}
	sameTenant(t, "V1 joint product", emulated, kept)

	// The joint-operation product: bind, 500 users, departments, a revocation.
	var joint run
	em.purchase(t, `{"productId":"OFFI-EMU-JOINT"}`, &joint)
	if !joint.OK {
		t.Fatalf("joint purchase: %s", joint.Err)
	}
	play(joint.SubscriptionID, "bind", "")
	emulated, kept = tenantOf(joint.SubscriptionID)
	sameTenant(t, "after bind", emulated, kept)
	play(joint.SubscriptionID, "authorize-users", "")
	emulated, kept = tenantOf(joint.SubscriptionID)
	if len(emulated.Users) < 500 {
		t.Fatalf("authorize-users made %d users, want at least 500", len(emulated.Users))
	}
	sameTenant(t, "after authorize-users", emulated, kept)
	play(joint.SubscriptionID, "org-change", "")
	play(joint.SubscriptionID, "revoke-user", `,"userName":"`+emulated.Users[7].UserName+`"`)
	emulated, kept = tenantOf(joint.SubscriptionID)
	sameTenant(t, "after org-change and revoke-user", emulated, kept)
	revoked := 0
	for _, u := range kept.Users {
		if !u.Authorized {
			revoked++
		}
	}
	if revoked != 1 {
		t.Errorf("%d revoked users kept, want 1", revoked)
	}

	// The vendor heard every change: the tenant's outbox is delivered.
	var detail struct {
		Events []struct {
			Seq   int64  `json:"seq"`
			Type  string `json:"type"`
			State string `json:"state"`
		} `json:"events"`
	}
	waitFor(t, "every Kit event delivered", func() bool {
		getJSON(t, srv.base+"/admin/api/tenants/"+kept.TenantID, adminToken, &detail)
		for _, ev := range detail.Events {
			if ev.State != "delivered" {
				return false
			}
		}
		return len(detail.Events) > 0
	})
	types := map[string]bool{}
	for _, ev := range detail.Events {
		types[ev.Type] = true
	}
	for _, typ := range []string{"tenant.created", "app.created", "orgs.replaced", "users.authorized", "users.revoked"} {
		if !types[typ] {
			t.Errorf("no %s event among %v", typ, detail.Events)
		}
	}

	// Unbinding leaves a tombstone and nothing else.
	play(joint.SubscriptionID, "unbind", "")
	getJSON(t, srv.base+"/admin/api/tenants/"+kept.TenantID, adminToken, &kept)
	if kept.Status != "deleted" || len(kept.Users)+len(kept.Orgs)+len(kept.Apps) != 0 {
		t.Errorf("after unbind the server keeps %s with %d users, %d departments, %d apps", kept.Status, len(kept.Users), len(kept.Orgs), len(kept.Apps))
	}
	var list struct {
		Tenants []jointTenant `json:"tenants"`
	}
	getJSON(t, srv.base+"/admin/api/tenants?status=active", adminToken, &list)
	if len(list.Tenants) != 1 || list.Tenants[0].TenantID != v1Tenant {
		t.Errorf("active tenants after unbind: %+v, want only the V1 product's %s", list.Tenants, v1Tenant)
	}

	// No personal data or secret of the run in the server's log.
	for _, leak := range []string{"@", kitKey, key, "BEGIN"} {
		if strings.Contains(srv.output(), leak) {
			t.Errorf("serve's log holds %q", leak)
		}
	}
}
