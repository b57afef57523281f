package tenant_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/jobs"
	"github.com/koobridge/koobridge/internal/seal"
	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/internal/store/dbtest"
	"github.com/koobridge/koobridge/internal/tenant"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
	"github.com/koobridge/koobridge/provision"
)

// waitFor bounds every poll; generous for a loaded 2-core machine.
const waitFor = 30 * time.Second

const ts = "20220413093539534"

// privateKey is one RSA key for the package's tests: the service does not
// check its size, and 2048 bits keep the tests fast.
var privateKey = func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}()

// recorder is a provisioner that records what it was given and fails as
// told.
type recorder struct {
	mu     sync.Mutex
	events []provision.Event
	fail   func(ev provision.Event) error
}

func (r *recorder) Provision(_ context.Context, ev provision.Event) (provision.Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		if err := r.fail(ev); err != nil {
			return provision.Result{}, err
		}
	}
	r.events = append(r.events, ev)
	return provision.Result{}, nil
}

func (r *recorder) delivered() []provision.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// types lists the delivered events' types as "seq:type".
func types(evs []provision.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = fmt.Sprintf("%d:%s", ev.Seq, ev.Type)
	}
	return out
}

type env struct {
	st     tenant.Store
	db     store.Store
	svc    *tenant.Service
	rec    *recorder
	sealer *seal.Sealer
}

var dialects = dbtest.Dialects

// forEachDialect runs fn against a fresh service on each database.
func forEachDialect(t *testing.T, fn func(t *testing.T, e *env)) {
	for _, d := range dialects {
		t.Run(d.Name, func(t *testing.T) {
			fn(t, newEnv(t, d.Open(t), nil))
		})
	}
}

func newEnv(t testing.TB, st store.Store, key *rsa.PrivateKey) *env {
	t.Helper()
	return newEnvOpts(t, st, envOptions{key: key})
}

// newEnvWith is newEnv with maxAttempts for the events.
func newEnvWith(t testing.TB, st store.Store, maxAttempts int) *env {
	t.Helper()
	return newEnvOpts(t, st, envOptions{maxAttempts: maxAttempts})
}

// envOptions adjust newEnvOpts; zero fields take the tests' defaults.
type envOptions struct {
	key         *rsa.PrivateKey // default privateKey
	maxAttempts int             // default 50
	retry       time.Duration   // the wait before a failed event is due again; default 20 ms
	lease       time.Duration   // the job lease; default 20 s
	workers     int             // default 3
}

func newEnvOpts(t testing.TB, st store.Store, o envOptions) *env {
	t.Helper()
	if o.key == nil {
		o.key = privateKey
	}
	if o.maxAttempts == 0 {
		o.maxAttempts = 50
	}
	if o.retry == 0 {
		o.retry = 20 * time.Millisecond
	}
	if o.lease == 0 {
		o.lease = 20 * time.Second
	}
	if o.workers == 0 {
		o.workers = 3
	}
	t.Cleanup(func() { st.Close() })
	dataKey, err := seal.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := seal.ParseKey(dataKey)
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := seal.NewSealer(raw)
	if err != nil {
		t.Fatal(err)
	}
	runner := jobs.NewRunner(jobs.Config{Store: st, Workers: o.workers, Poll: 10 * time.Millisecond, Lease: o.lease,
		Backoff: func(int) time.Duration { return 20 * time.Millisecond }})
	rec := &recorder{}
	svc, err := tenant.New(tenant.Config{Store: st, Sealer: sealer, PrivateKey: o.key, Provisioner: rec, Jobs: runner,
		MaxAttempts: o.maxAttempts, Retry: func(int) time.Duration { return o.retry }})
	if err != nil {
		t.Fatal(err)
	}
	if err := runner.RegisterAll(svc.Jobs()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = runner.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return &env{st: st, db: st, svc: svc, rec: rec, sealer: sealer}
}

// settle waits until every delivery job is finished and returns the
// delivered events.
func (e *env) settle(t *testing.T) []provision.Event {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		// One query, one snapshot: a job that ends enqueues its follow-up
		// first, so some job is always live until the outbox is settled.
		jobs, err := e.db.Jobs(context.Background(), store.JobFilter{Kind: tenant.KindEvent, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		live := 0
		for _, j := range jobs {
			if j.State == store.JobAvailable || j.State == store.JobRunning {
				live++
			}
		}
		if live == 0 {
			return e.rec.delivered()
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d delivery jobs still live after %v", live, waitFor)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func must(t *testing.T, res tenant.Result, err error, changed bool) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	if res.Code != protocol.CodeSuccess || res.Changed != changed {
		t.Fatalf("result %+v, want 000000 with Changed %v", res, changed)
	}
}

func tenantSync(flag protocol.FlexInt, name string) protocol.TenantSyncRequest {
	return protocol.TenantSyncRequest{InstanceID: "inst-1", OrderID: "CS1", TenantID: "t1", TenantCode: "acme",
		Name: name, DomainName: "https://acme.example-idp.com", Flag: flag, TestFlag: 0, TimeStamp: ts}
}

func appSync(t *testing.T, flag protocol.FlexInt, clientID, secret string) protocol.ApplicationSyncRequest {
	t.Helper()
	var enc string
	if secret != "" {
		var err error
		if enc, err = sign.EncryptClientSecret(&privateKey.PublicKey, secret); err != nil {
			t.Fatal(err)
		}
	}
	return protocol.ApplicationSyncRequest{InstanceID: "inst-1", TenantID: "t1", AppID: "APP1", ClientID: clientID,
		ClientSecret: enc, Flag: flag, TestFlag: 0, TimeStamp: ts}
}

func enabled(b bool) *protocol.FlexBool { v := protocol.FlexBool(b); return &v }

func user(name, org string, enable bool) protocol.KitUser {
	return protocol.KitUser{UserName: name, Name: "N " + name, OrgCode: org, Role: protocol.KitRoleUser, Enable: enabled(enable)}
}

func authSync(flag protocol.FlexInt, users ...protocol.KitUser) protocol.AuthSyncRequest {
	return protocol.AuthSyncRequest{InstanceID: "inst-1", TenantID: "t1", AppID: "APP1", UserList: users,
		CurrentSyncTime: ts, Flag: flag, TestFlag: 0, TimeStamp: ts}
}

func orgSync(flag protocol.FlexInt, code, name, parent string) protocol.SingleOrgSyncRequest {
	return protocol.SingleOrgSyncRequest{InstanceID: "inst-1", TenantID: "t1", OrgCode: code, OrgName: name,
		ParentCode: parent, Flag: flag, TestFlag: 0, TimeStamp: ts}
}

func allOrgs(orgs ...protocol.KitOrg) protocol.AllOrgSyncRequest {
	return protocol.AllOrgSyncRequest{InstanceID: "inst-1", TenantID: "t1", OrgInfoList: orgs, Flag: protocol.KitUnset,
		TestFlag: 0, TimeStamp: ts}
}

func TestBindAndRepeat(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		res, err := e.svc.SyncTenant(ctx, tenantSync(1, "Acme"))
		must(t, res, err, true)
		res, err = e.svc.SyncApp(ctx, appSync(t, 1, "client-1", "s3cret-value"))
		must(t, res, err, true)
		res, err = e.svc.ReplaceOrgs(ctx, allOrgs(protocol.KitOrg{OrgCode: "1", OrgName: "HQ"}, protocol.KitOrg{OrgCode: "2", OrgName: "R&D", ParentCode: "1"}))
		must(t, res, err, true)
		users := make([]protocol.KitUser, 500)
		for i := range users {
			users[i] = user(fmt.Sprintf("u%03d", i), "2", true)
		}
		users[0].Mobile, users[0].Email = "13912345678", "u000@example.com"
		res, err = e.svc.SyncUsers(ctx, authSync(1, users...))
		must(t, res, err, true)

		// Every call again, with a fresh encryption of the same secret:
		// nothing changes and the vendor hears nothing more.
		for _, f := range []func() (tenant.Result, error){
			func() (tenant.Result, error) { return e.svc.SyncTenant(ctx, tenantSync(1, "Acme")) },
			func() (tenant.Result, error) { return e.svc.SyncApp(ctx, appSync(t, 1, "client-1", "s3cret-value")) },
			func() (tenant.Result, error) {
				return e.svc.ReplaceOrgs(ctx, allOrgs(protocol.KitOrg{OrgCode: "2", OrgName: "R&D", ParentCode: "1"}, protocol.KitOrg{OrgCode: "1", OrgName: "HQ"}))
			},
			func() (tenant.Result, error) { return e.svc.SyncUsers(ctx, authSync(1, users...)) },
			func() (tenant.Result, error) { return e.svc.SyncUsers(ctx, authSync(2, users...)) },
		} {
			res, err := f()
			must(t, res, err, false)
		}

		evs := e.settle(t)
		want := []string{"1:tenant.created", "2:app.created", "3:orgs.replaced", "4:users.authorized"}
		if got := types(evs); !slices.Equal(got, want) {
			t.Fatalf("events %v, want %v", got, want)
		}
		if app := evs[1].App; app == nil || app.ClientID != "client-1" || app.ClientSecret != "s3cret-value" {
			t.Errorf("app.created carries %+v, want client-1 with the decrypted secret", evs[1].App)
		}
		if n := len(evs[3].Users); n != 500 {
			t.Errorf("users.authorized lists %d users, want 500", n)
		}
		if u := evs[3].Users[0]; u.Mobile != "13912345678" || u.Email != "u000@example.com" || !u.Authorized || !u.Enable {
			t.Errorf("first user %+v, want mobile and e-mail in full, authorised and enabled", u)
		}
		if tn := evs[3].Tenant; tn == nil || tn.Name != "Acme" || tn.DomainName != "https://acme.example-idp.com" {
			t.Errorf("users event names tenant %+v", evs[3].Tenant)
		}

		// What is stored: the secret and the contact data sealed.
		app, err := e.st.TenantApp(ctx, "t1", "APP1")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(app.ClientSecretSealed, "s3cret") {
			t.Error("client secret stored in clear")
		}
		if plain, err := e.sealer.Open(app.ClientSecretSealed); err != nil || plain != "s3cret-value" {
			t.Errorf("sealed secret opens to %q, %v", plain, err)
		}
		stored, err := e.st.TenantUsers(ctx, "t1")
		if err != nil {
			t.Fatal(err)
		}
		if len(stored) != 500 {
			t.Fatalf("%d users stored, want 500", len(stored))
		}
		if u := stored[0]; u.UserName != "u000" || u.MobileSealed == "" || strings.Contains(u.MobileSealed, "1391234") || strings.Contains(u.EmailSealed, "example.com") {
			t.Errorf("first stored user %+v: want sealed contact data", u)
		}
		events, err := e.st.TenantEvents(ctx, "t1", 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range events {
			if ev.State != store.TenantEventDelivered || strings.Contains(ev.PayloadSealed, "s3cret") || strings.Contains(ev.PayloadSealed, "13912345678") {
				t.Errorf("event %d (%s): state %s, payload must be sealed", ev.Seq, ev.Type, ev.State)
			}
		}
	})
}

func TestUsers(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		res, err := e.svc.SyncUsers(ctx, authSync(1, user("a", "1", true), user("b", "1", true), user("c", "1", true)))
		must(t, res, err, true)

		renamed := user("a", "1", true)
		renamed.Name = "Alice"
		steps := []struct {
			name    string
			req     protocol.AuthSyncRequest
			changed bool
		}{
			{"rename a, disable b", authSync(2, renamed, user("b", "1", false)), true},
			{"disable b again", authSync(2, user("b", "1", false)), false},
			{"revoke c and an unknown x", authSync(3, protocol.KitUser{UserName: "c"}, protocol.KitUser{UserName: "x"}), true},
			{"revoke c again", authSync(3, protocol.KitUser{UserName: "c"}), false},
			{"delete b and an unknown y", authSync(0, protocol.KitUser{UserName: "b"}, protocol.KitUser{UserName: "y"}), true},
			{"delete unknown only", authSync(0, protocol.KitUser{UserName: "zz"}), false},
			{"authorise c again", authSync(1, user("c", "1", true)), true},
		}
		for _, s := range steps {
			res, err := e.svc.SyncUsers(ctx, s.req)
			if err != nil || res.Code != protocol.CodeSuccess || res.Changed != s.changed {
				t.Fatalf("%s: %+v, %v; want success, changed %v", s.name, res, err, s.changed)
			}
		}
		evs := e.settle(t)
		want := []string{"1:users.authorized", "2:users.changed", "3:users.disabled", "4:users.revoked", "5:users.deleted", "6:users.authorized"}
		if got := types(evs); !slices.Equal(got, want) {
			t.Fatalf("events %v, want %v", got, want)
		}
		names := func(ev provision.Event) []string {
			var out []string
			for _, u := range ev.Users {
				out = append(out, u.UserName)
			}
			return out
		}
		for i, w := range [][]string{{"a", "b", "c"}, {"a"}, {"b"}, {"c"}, {"b"}, {"c"}} {
			if got := names(evs[i]); !slices.Equal(got, w) {
				t.Errorf("event %d %s lists %v, want %v", i+1, evs[i].Type, got, w)
			}
		}
		if u := evs[3].Users[0]; u.Authorized {
			t.Error("users.revoked lists c as still authorised")
		}
		stored, err := e.st.TenantUsers(ctx, "t1")
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]store.TenantUser{}
		for _, u := range stored {
			got[u.UserName] = u
		}
		if len(got) != 2 || got["a"].Name != "Alice" || got["c"].Revoked || got["b"].UserName != "" {
			t.Errorf("stored users %+v: want a (Alice) and c (authorised again), b deleted", stored)
		}

		// A userName twice in one call is refused, and nothing is written.
		res, err = e.svc.SyncUsers(ctx, authSync(1, user("d", "1", true), user("d", "2", true)))
		if err != nil || res.Code != protocol.CodeInvalidParam || !strings.Contains(res.Msg, "userList[1].userName") {
			t.Fatalf("duplicate userName: %+v, %v; want 000002 naming userList[1].userName", res, err)
		}
		if after, _ := e.st.TenantUsers(ctx, "t1"); len(after) != 2 {
			t.Errorf("%d users after a refused call, want 2", len(after))
		}
	})
}

func TestOrgs(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		steps := []struct {
			name string
			req  protocol.SingleOrgSyncRequest
			code protocol.ResultCode
			chg  bool
		}{
			{"child before its parent", orgSync(1, "2", "R&D", "1"), protocol.CodeSuccess, true},
			{"parent", orgSync(1, "1", "HQ", ""), protocol.CodeSuccess, true},
			{"grandchild", orgSync(1, "3", "Go team", "2"), protocol.CodeSuccess, true},
			{"same again (add)", orgSync(1, "3", "Go team", "2"), protocol.CodeSuccess, false},
			{"move HQ under its grandchild", orgSync(2, "1", "HQ", "3"), protocol.CodeInvalidParam, false},
			{"move the grandchild to the top", orgSync(2, "3", "Go", ""), protocol.CodeSuccess, true},
			{"move it back from the top", orgSync(2, "3", "Go", "2"), protocol.CodeSuccess, true},
			{"rename it only", orgSync(2, "3", "Go team", "2"), protocol.CodeSuccess, true},
			{"delete R&D", orgSync(0, "2", "", ""), protocol.CodeSuccess, true},
			{"delete R&D again", orgSync(0, "2", "", ""), protocol.CodeSuccess, false},
		}
		for _, s := range steps {
			res, err := e.svc.SyncOrg(ctx, s.req)
			if err != nil || res.Code != s.code || res.Changed != s.chg {
				t.Fatalf("%s: %+v, %v; want %s changed %v", s.name, res, err, s.code, s.chg)
			}
			if s.code == protocol.CodeInvalidParam && !strings.Contains(res.Msg, "parentCode") {
				t.Errorf("%s: message %q does not name parentCode", s.name, res.Msg)
			}
		}
		evs := e.settle(t)
		want := []string{"1:org.created", "2:org.created", "3:org.created", "4:org.updated", "5:org.updated", "6:org.updated", "7:org.deleted"}
		if got := types(evs); !slices.Equal(got, want) {
			t.Fatalf("events %v, want %v", got, want)
		}
		if o := evs[3].Org; o == nil || o.ParentCode != "" || !o.Moved || o.OldParentCode != "2" || o.Name != "Go" {
			t.Errorf("move event %+v: want Go from 2 to the top", evs[3].Org)
		}
		if o := evs[4].Org; o == nil || o.ParentCode != "2" || !o.Moved || o.OldParentCode != "" {
			t.Errorf("move from the top %+v: want moved, from no parent", evs[4].Org)
		}
		if o := evs[5].Org; o == nil || o.Moved || o.Name != "Go team" {
			t.Errorf("rename %+v: want not moved", evs[5].Org)
		}

		// allOrgSync: refused lists write nothing; a new tree replaces the old one.
		for _, bad := range []struct {
			req   protocol.AllOrgSyncRequest
			field string
		}{
			{allOrgs(protocol.KitOrg{OrgCode: "a", OrgName: "A"}, protocol.KitOrg{OrgCode: "a", OrgName: "A2"}), "orgInfoList[1].orgCode"},
			{allOrgs(protocol.KitOrg{OrgCode: "a", OrgName: "A", ParentCode: "b"}, protocol.KitOrg{OrgCode: "b", OrgName: "B", ParentCode: "a"}), "orgInfoList[0].parentCode"},
		} {
			res, err := e.svc.ReplaceOrgs(ctx, bad.req)
			if err != nil || res.Code != protocol.CodeInvalidParam || !strings.Contains(res.Msg, bad.field) {
				t.Errorf("ReplaceOrgs: %+v, %v; want 000002 naming %s", res, err, bad.field)
			}
		}
		res, err := e.svc.ReplaceOrgs(ctx, allOrgs(protocol.KitOrg{OrgCode: "9", OrgName: "Only"}))
		must(t, res, err, true)
		orgs, err := e.st.TenantOrgs(ctx, "t1")
		if err != nil {
			t.Fatal(err)
		}
		if len(orgs) != 1 || orgs[0].OrgCode != "9" {
			t.Errorf("tree after allOrgSync: %+v, want only 9", orgs)
		}
	})
}

func TestTenantDeleteAndApps(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		res, err := e.svc.SyncTenant(ctx, tenantSync(1, "Acme"))
		must(t, res, err, true)
		res, err = e.svc.SyncApp(ctx, appSync(t, 1, "client-1", "one"))
		must(t, res, err, true)
		res, err = e.svc.SyncApp(ctx, appSync(t, 2, "client-1", "two"))
		must(t, res, err, true)
		res, err = e.svc.SyncUsers(ctx, authSync(1, user("a", "1", true)))
		must(t, res, err, true)
		res, err = e.svc.SyncOrg(ctx, orgSync(1, "1", "HQ", ""))
		must(t, res, err, true)
		res, err = e.svc.SyncTenant(ctx, tenantSync(2, "Acme Group"))
		must(t, res, err, true)
		res, err = e.svc.SyncApp(ctx, appSync(t, 0, "", ""))
		must(t, res, err, true)
		res, err = e.svc.SyncApp(ctx, appSync(t, 0, "", ""))
		must(t, res, err, false)
		res, err = e.svc.SyncTenant(ctx, tenantSync(0, "Acme Group"))
		must(t, res, err, true)
		res, err = e.svc.SyncTenant(ctx, tenantSync(0, "Acme Group"))
		must(t, res, err, false)

		evs := e.settle(t)
		want := []string{"1:tenant.created", "2:app.created", "3:app.updated", "4:users.authorized", "5:org.created",
			"6:tenant.updated", "7:app.deleted", "8:tenant.deleted"}
		if got := types(evs); !slices.Equal(got, want) {
			t.Fatalf("events %v, want %v", got, want)
		}
		if ev := evs[6]; len(ev.Users) != 1 || ev.Users[0].UserName != "a" || ev.App.ClientSecret != "" {
			t.Errorf("app.deleted %+v: want its user a and no secret", ev)
		}
		tn, err := e.st.Tenant(ctx, "t1")
		if err != nil {
			t.Fatal(err)
		}
		if tn.Status != store.TenantDeleted || tn.DeletedAt.IsZero() || tn.Name != "Acme Group" {
			t.Errorf("tenant after unbinding: %+v", tn)
		}
		orgs, _ := e.st.TenantOrgs(ctx, "t1")
		users, _ := e.st.TenantUsers(ctx, "t1")
		apps, _ := e.st.TenantApps(ctx, "t1")
		if len(orgs)+len(users)+len(apps) != 0 {
			t.Errorf("unbound tenant keeps %d orgs, %d users, %d apps", len(orgs), len(users), len(apps))
		}
		res, err = e.svc.SyncTenant(ctx, tenantSync(1, "Acme"))
		must(t, res, err, true)
		if evs := e.settle(t); evs[len(evs)-1].Type != provision.EventTenantCreated {
			t.Errorf("binding again after a deletion: %s, want tenant.created", evs[len(evs)-1].Type)
		}
	})
}

func TestClientSecretRefusals(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		other, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		wrong, err := sign.EncryptClientSecret(&other.PublicKey, "secret")
		if err != nil {
			t.Fatal(err)
		}
		for _, secret := range []string{wrong, "bm90IGVuY3J5cHRlZA==", "%%%"} {
			req := appSync(t, 1, "client-1", "x")
			req.ClientSecret = secret
			res, err := e.svc.SyncApp(ctx, req)
			if err != nil || res.Code != protocol.CodeInvalidParam || !strings.Contains(res.Msg, "clientSecret") {
				t.Errorf("secret %.12q…: %+v, %v; want 000002 naming clientSecret", secret, res, err)
			}
		}
		if _, err := e.st.TenantApp(ctx, "t1", "APP1"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("a refused applicationSync stored the app: %v", err)
		}

		noKey := newEnv(t, dialects[0].Open(t), nil)
		svc, err := tenant.New(tenant.Config{Store: noKey.st, Sealer: noKey.sealer, Provisioner: noKey.rec, Jobs: jobs.NewRunner(jobs.Config{Store: noKey.db})})
		if err != nil {
			t.Fatal(err)
		}
		res, err := svc.SyncApp(ctx, appSync(t, 1, "client-1", "x"))
		if err != nil || res.Code != protocol.CodeInternal || !strings.Contains(res.Msg, "rsa-private-key-file") {
			t.Errorf("without a private key: %+v, %v; want 000005 naming the setting", res, err)
		}
	})
}

// TestConcurrentDuplicates sends the same calls from several goroutines
// at once, for several tenants: the vendor hears of each change once.
func TestConcurrentDuplicates(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		const rounds, callers = 6, 12
		errs := make(chan error, rounds*callers*3)
		for round := range rounds {
			id := fmt.Sprintf("t%d", round)
			tn := tenantSync(1, "Acme")
			tn.TenantID = id
			us := authSync(1, user("a", "1", true))
			us.TenantID = id
			og := orgSync(1, "1", "HQ", "")
			og.TenantID = id
			var wg sync.WaitGroup
			start := make(chan struct{})
			for range callers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					for _, f := range []func() (tenant.Result, error){
						func() (tenant.Result, error) { return e.svc.SyncTenant(ctx, tn) },
						func() (tenant.Result, error) { return e.svc.SyncUsers(ctx, us) },
						func() (tenant.Result, error) { return e.svc.SyncOrg(ctx, og) },
					} {
						if res, err := f(); err != nil || res.Code != protocol.CodeSuccess {
							errs <- fmt.Errorf("%+v, %v", res, err)
						}
					}
				}()
			}
			close(start)
			wg.Wait()
		}
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		counts := map[string]int{}
		for _, ev := range e.settle(t) {
			counts[ev.Tenant.ID+" "+string(ev.Type)]++
		}
		for round := range rounds {
			for _, typ := range []provision.EventType{provision.EventTenantCreated, provision.EventUsersAuthorized, provision.EventOrgCreated} {
				if k := fmt.Sprintf("t%d %s", round, typ); counts[k] != 1 {
					t.Errorf("%s delivered %d times, want 1", k, counts[k])
				}
			}
		}
	})
}

// TestDeliveryOrder makes the vendor fail: a transient failure holds the
// tenant's later events back until it passes; a permanent one marks its
// event failed and lets the next go.
func TestDeliveryOrder(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		var mu sync.Mutex
		failures := 0
		e.rec.mu.Lock()
		e.rec.fail = func(ev provision.Event) error {
			mu.Lock()
			defer mu.Unlock()
			switch {
			case ev.Type == provision.EventTenantCreated && failures < 5:
				failures++
				return errors.New("vendor down")
			case ev.Type == provision.EventOrgCreated:
				return provision.Permanent(errors.New("vendor rejects departments"))
			}
			return nil
		}
		e.rec.mu.Unlock()
		res, err := e.svc.SyncTenant(ctx, tenantSync(1, "Acme"))
		must(t, res, err, true)
		res, err = e.svc.SyncOrg(ctx, orgSync(1, "1", "HQ", ""))
		must(t, res, err, true)
		for i := range 5 {
			res, err = e.svc.SyncUsers(ctx, authSync(1, user(fmt.Sprintf("u%d", i), "1", true)))
			must(t, res, err, true)
		}
		evs := e.settle(t)
		want := []string{"1:tenant.created", "3:users.authorized", "4:users.authorized", "5:users.authorized", "6:users.authorized", "7:users.authorized"}
		if got := types(evs); !slices.Equal(got, want) {
			t.Fatalf("delivered %v, want %v", got, want)
		}
		stored, err := e.st.TenantEvents(ctx, "t1", 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range stored {
			wantState := store.TenantEventDelivered
			if ev.Type == string(provision.EventOrgCreated) {
				wantState = store.TenantEventFailed
			}
			if ev.State != wantState {
				t.Errorf("event %d %s: %s, want %s", ev.Seq, ev.Type, ev.State, wantState)
			}
		}
	})
}

// TestDeliveryAttemptsRunOut keeps the vendor failing: every event is
// tried in order, counts its own attempts and fails when they are spent,
// and no event is left pending with no job to deliver it (a busy outbox
// spends no attempt; a spent job leaves a successor).
func TestDeliveryAttemptsRunOut(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.Name, func(t *testing.T) {
			st := d.Open(t)
			e := newEnvWith(t, st, 3)
			var mu sync.Mutex
			var tried []int64
			e.rec.mu.Lock()
			e.rec.fail = func(ev provision.Event) error {
				mu.Lock()
				defer mu.Unlock()
				tried = append(tried, ev.Seq)
				return errors.New("vendor down")
			}
			e.rec.mu.Unlock()
			ctx := context.Background()
			res, err := e.svc.SyncTenant(ctx, tenantSync(1, "Acme"))
			must(t, res, err, true)
			for i := range 6 {
				res, err = e.svc.SyncUsers(ctx, authSync(1, user(fmt.Sprintf("u%d", i), "1", true)))
				must(t, res, err, true)
			}
			deadline := time.Now().Add(waitFor)
			for {
				evs, err := e.st.TenantEvents(ctx, "t1", 0)
				if err != nil {
					t.Fatal(err)
				}
				failed := 0
				for _, ev := range evs {
					if ev.State == store.TenantEventFailed {
						failed++
					}
				}
				if failed == 7 {
					for _, ev := range evs {
						if ev.Attempts != 3 || ev.LastError != "vendor down" {
							t.Errorf("event %d: %d attempts, last error %q; want 3, vendor down", ev.Seq, ev.Attempts, ev.LastError)
						}
					}
					break
				}
				if time.Now().After(deadline) {
					var states []string
					for _, ev := range evs {
						states = append(states, fmt.Sprintf("%d:%s/%d", ev.Seq, ev.State, ev.Attempts))
					}
					t.Fatalf("after %v: %d of 7 events failed: %v", waitFor, failed, states)
				}
				time.Sleep(20 * time.Millisecond)
			}
			mu.Lock()
			defer mu.Unlock()
			if !slices.IsSorted(tried) || len(tried) != 21 {
				t.Errorf("deliveries tried in the order %v, want each of 1…7 three times, in order", tried)
			}
		})
	}
}

// TestLateUnbind: an enterprise bound again through another instance is
// not unbound by a late flag-0 call of the instance it left.
func TestLateUnbind(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		first := tenantSync(1, "Acme")
		res, err := e.svc.SyncTenant(ctx, first)
		must(t, res, err, true)
		second := first
		second.InstanceID = "inst-2"
		res, err = e.svc.SyncTenant(ctx, second)
		must(t, res, err, true)
		app := appSync(t, 1, "client-2", "s2")
		app.InstanceID = "inst-2"
		res, err = e.svc.SyncApp(ctx, app)
		must(t, res, err, true)

		lateApp := appSync(t, 0, "", "") // inst-1
		res, err = e.svc.SyncApp(ctx, lateApp)
		must(t, res, err, false)
		late := tenantSync(0, "Acme") // inst-1
		res, err = e.svc.SyncTenant(ctx, late)
		must(t, res, err, false)
		tn, err := e.st.Tenant(ctx, "t1")
		if err != nil || tn.Status != store.TenantActive || tn.InstanceID != "inst-2" {
			t.Fatalf("after a late unbind of inst-1: %+v, %v; want active on inst-2", tn, err)
		}
		if apps, _ := e.st.TenantApps(ctx, "t1"); len(apps) != 1 {
			t.Errorf("after a late app delete of inst-1: %d apps, want 1", len(apps))
		}

		// The current instance unbinds it.
		current := tenantSync(0, "Acme")
		current.InstanceID = "inst-2"
		res, err = e.svc.SyncTenant(ctx, current)
		must(t, res, err, true)
	})
}

// dueNow reports whether a delivery job is available now or running.
func (e *env) dueNow(t *testing.T) bool {
	t.Helper()
	for _, state := range []store.JobState{store.JobAvailable, store.JobRunning} {
		list, err := e.db.Jobs(context.Background(), store.JobFilter{Kind: tenant.KindEvent, State: state})
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range list {
			if state == store.JobRunning || !j.RunAt.After(time.Now()) {
				return true
			}
		}
	}
	return false
}

// TestOutageBurst: while the vendor is down, a burst of Kit calls (a job
// each) tries the oldest event once, not once per job: its next try waits
// for the retry time, with one retry job for it, and no event fails.
func TestOutageBurst(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.Name, func(t *testing.T) {
			e := newEnvOpts(t, d.Open(t), envOptions{maxAttempts: 3, retry: time.Hour, workers: 4})
			e.rec.mu.Lock()
			e.rec.fail = func(provision.Event) error { return errors.New("vendor restarting") }
			e.rec.mu.Unlock()
			ctx := context.Background()
			for i := range 10 {
				res, err := e.svc.SyncUsers(ctx, authSync(1, user(fmt.Sprintf("u%d", i), "1", true)))
				must(t, res, err, true)
			}
			deadline := time.Now().Add(waitFor)
			for e.dueNow(t) {
				if time.Now().After(deadline) {
					t.Fatal("delivery jobs still due")
				}
				time.Sleep(20 * time.Millisecond)
			}
			evs, err := e.st.TenantEvents(ctx, "t1", 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, ev := range evs {
				want := 0
				if ev.Seq == 1 {
					want = 1
				}
				if ev.State != store.TenantEventPending || ev.Attempts != want {
					t.Errorf("event %d: %s after %d attempts; want pending after %d", ev.Seq, ev.State, ev.Attempts, want)
				}
			}
			later, err := e.db.Jobs(ctx, store.JobFilter{Kind: tenant.KindEvent, State: store.JobAvailable})
			if err != nil {
				t.Fatal(err)
			}
			if len(later) != 1 || later[0].RunAt.Before(time.Now().Add(50*time.Minute)) {
				t.Errorf("%d jobs wait (%+v); want one retry job, due in an hour", len(later), later)
			}
		})
	}
}

// TestDeadlineCut: a backlog longer than a job's time is delivered whole,
// by continuation jobs, without counting the cut as a failed attempt and
// without a dead job, although each job has few attempts.
func TestDeadlineCut(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.Name, func(t *testing.T) {
			// A 2 s lease gives each handler 1 s: about seven deliveries.
			e := newEnvOpts(t, d.Open(t), envOptions{maxAttempts: 2, lease: 2 * time.Second})
			e.rec.mu.Lock()
			e.rec.fail = func(provision.Event) error { time.Sleep(150 * time.Millisecond); return nil }
			e.rec.mu.Unlock()
			ctx := context.Background()
			for i := range 20 {
				res, err := e.svc.SyncOrg(ctx, orgSync(1, fmt.Sprintf("o%02d", i), "Dept", ""))
				must(t, res, err, true)
			}
			deadline := time.Now().Add(waitFor)
			for {
				evs, err := e.st.TenantEvents(ctx, "t1", 0)
				if err != nil {
					t.Fatal(err)
				}
				delivered := 0
				for _, ev := range evs {
					if ev.State == store.TenantEventDelivered {
						delivered++
					}
					if ev.Attempts != 0 || ev.State == store.TenantEventFailed {
						t.Fatalf("event %d: %s with %d attempts; a cut is not an attempt", ev.Seq, ev.State, ev.Attempts)
					}
				}
				if delivered == 20 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%d of 20 events delivered after %v", delivered, waitFor)
				}
				time.Sleep(50 * time.Millisecond)
			}
			if dead, _ := e.db.Jobs(ctx, store.JobFilter{Kind: tenant.KindEvent, State: store.JobDead}); len(dead) != 0 {
				t.Errorf("%d dead delivery jobs", len(dead))
			}
			seqs := []int64{}
			for _, ev := range e.rec.delivered() {
				seqs = append(seqs, ev.Seq)
			}
			if !slices.IsSorted(seqs) {
				t.Errorf("delivered out of order: %v", seqs)
			}
		})
	}
}
