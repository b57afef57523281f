package console

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/seal"
	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/internal/store/postgres"
	"github.com/koobridge/koobridge/internal/store/postgres/pgtest"
	"github.com/koobridge/koobridge/internal/store/sqlite"
)

// dialects open a fresh, empty store of each dialect: the admin API reads
// the Kit data through the store interfaces, so it is checked against
// both.
var dialects = []struct {
	name string
	open func(t *testing.T) store.Store
}{
	{"sqlite", func(t *testing.T) store.Store {
		st, err := sqlite.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "tenants.db"))
		if err != nil {
			t.Fatalf("open sqlite: %v", err)
		}
		t.Cleanup(func() { _ = st.Close() })
		return st
	}},
	{"postgres", func(t *testing.T) store.Store {
		st, err := postgres.Open(context.Background(), pgtest.Schema(t, pgtest.DSN(t)))
		if err != nil {
			t.Fatalf("open postgres: %v", err)
		}
		t.Cleanup(func() { _ = st.Close() })
		return st
	}},
}

// forDialects runs test once per dialect against the admin API over a
// store seeded by seedTenants.
func forDialects(t *testing.T, test func(t *testing.T, f *fixture, secrets tenantSecrets)) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			f := &fixture{st: d.open(t)}
			secrets := seedTenants(t, f.st)
			f.srv = httptest.NewServer(NewAPI(APIConfig{Store: f.st, Token: token}))
			t.Cleanup(f.srv.Close)
			test(t, f, secrets)
		})
	}
}

// Plain values the Kit data holds sealed; neither they nor their sealed
// forms may appear in any answer.
const (
	plainClientSecret = "plain-client-secret-4711"
	plainMobile       = "13912345678"
	plainEmail        = "zhang.san@example.com"
)

// tenantSecrets are the sealed forms seedTenants stored, and the plain
// values, for the leak checks.
type tenantSecrets []string

// seedTenants stores three tenants through the store's Tx methods:
// tenant-a (active, bound to inst-1) with two apps, four users, a
// department tree with an orphan and two events; tenant-b (deleted);
// tenant-c (active, a test tenant with nothing synced). It also records
// Kit calls about tenant-a and tenant-b in the ledger.
func seedTenants(t *testing.T, st store.Store) tenantSecrets {
	t.Helper()
	ctx := context.Background()
	key, err := seal.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := seal.ParseKey(key)
	sealer, err := seal.NewSealer(raw)
	if err != nil {
		t.Fatal(err)
	}
	sealed := func(s string) string {
		v, err := sealer.Seal(s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	secret, mobile, email := sealed(plainClientSecret), sealed(plainMobile), sealed(plainEmail)

	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	err = st.Tx(ctx, func(ctx context.Context, tx store.Tx) error {
		for _, tn := range []store.Tenant{
			{ID: "tenant-a", Code: "CODE-A", Name: "企业甲 <Ltd>", DomainName: "https://a.idaas.example.com", InstanceID: "inst-1",
				OrderID: "ORDER1", Status: store.TenantActive, CreatedAt: at(1), UpdatedAt: at(2)},
			{ID: "tenant-b", Code: "CODE-B", Name: "Tenant B", DomainName: "https://b.idaas.example.com",
				Status: store.TenantDeleted, CreatedAt: at(1), UpdatedAt: at(3), DeletedAt: at(3)},
			{ID: "tenant-c", Code: "CODE-C", Name: "Tenant C", DomainName: "https://c.idaas.example.com", Test: true,
				Status: store.TenantActive, CreatedAt: at(1), UpdatedAt: at(1)},
		} {
			if err := tx.UpsertTenant(ctx, tn); err != nil {
				return fmt.Errorf("upsert tenant %s: %w", tn.ID, err)
			}
		}
		for _, a := range []store.TenantApp{
			{TenantID: "tenant-a", AppID: "app-1", ClientID: "client-a1", ClientSecretSealed: secret, InstanceID: "inst-1", CreatedAt: at(2), UpdatedAt: at(2)},
			{TenantID: "tenant-a", AppID: "app-2", ClientID: "client-a2", ClientSecretSealed: secret, CreatedAt: at(2), UpdatedAt: at(4)},
		} {
			if err := tx.UpsertTenantApp(ctx, a); err != nil {
				return fmt.Errorf("upsert app %s: %w", a.AppID, err)
			}
		}
		seedUser := func(app, name, display, org, role string, enable, revoked bool) store.TenantUser {
			return store.TenantUser{
				TenantID: "tenant-a", AppID: app, UserName: name, Name: display, OrgCode: org, Role: role, Enable: enable,
				Revoked: revoked, MobileSealed: mobile, EmailSealed: email, Position: "engineer", EmployeeType: 1,
				CreatedAt: at(3), UpdatedAt: at(3),
			}
		}
		if err := tx.UpsertTenantUsers(ctx, []store.TenantUser{
			seedUser("app-1", "zhangsan", "张三", "D-SALES", "admin", true, false),
			seedUser("app-1", "lisi", "李四", "D-EAST", "user", false, true),
			seedUser("app-1", "wangwu", "王五", "D-GONE", "user", true, false),
			seedUser("app-2", "zhangsan", "张三", "", "user", true, false),
		}); err != nil {
			return fmt.Errorf("upsert users: %w", err)
		}
		if err := tx.ReplaceTenantOrgs(ctx, "tenant-a", []store.TenantOrg{
			{TenantID: "tenant-a", OrgCode: "D-ROOT", Name: "总部", CreatedAt: at(2), UpdatedAt: at(2)},
			{TenantID: "tenant-a", OrgCode: "D-SALES", Name: "销售部", ParentCode: "D-ROOT", CreatedAt: at(2), UpdatedAt: at(2)},
			{TenantID: "tenant-a", OrgCode: "D-EAST", Name: "华东区", ParentCode: "D-SALES", CreatedAt: at(2), UpdatedAt: at(2)},
			{TenantID: "tenant-a", OrgCode: "D-IT", Name: "IT", ParentCode: "D-ROOT", CreatedAt: at(2), UpdatedAt: at(2)},
			{TenantID: "tenant-a", OrgCode: "D-LOST", Name: "失联部", ParentCode: "D-MISSING", CreatedAt: at(2), UpdatedAt: at(2)},
		}); err != nil {
			return fmt.Errorf("replace orgs: %w", err)
		}
		for i, typ := range []string{"tenant.created", "users.authorized"} {
			payload := sealed(`{"mobile":"` + plainMobile + `","email":"` + plainEmail + `"}`)
			if _, _, _, err := tx.InsertTenantEvent(ctx, store.TenantEvent{
				TenantID: "tenant-a", EventID: fmt.Sprintf("evt-%d", i+1), Type: typ, PayloadSealed: payload,
				CreatedAt: at(4 + i), UpdatedAt: at(4 + i),
			}); err != nil {
				return fmt.Errorf("insert event: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("seed tenants: %v", err)
	}
	// The first event was delivered; the second keeps failing.
	events, err := st.TenantEvents(ctx, "tenant-a", 0)
	if err != nil || len(events) != 2 {
		t.Fatalf("seeded events %+v %v", events, err)
	}
	for _, e := range events {
		if e.Seq == 2 {
			// Two failed deliveries, then the vendor refused it for good.
			for range 2 {
				if _, err := st.FailTenantEventAttempt(ctx, e.ID, "webhook: 503", 25, at(5)); err != nil {
					t.Fatalf("fail event attempt: %v", err)
				}
			}
		}
		state, lastErr := store.TenantEventDelivered, ""
		if e.Seq == 2 {
			state, lastErr = store.TenantEventFailed, "webhook: 400 Bad Request: unknown user"
		}
		if err := st.SetTenantEventState(ctx, e.ID, state, lastErr, at(6)); err != nil {
			t.Fatalf("set event state: %v", err)
		}
	}
	for i, c := range []struct{ tenant, activity string }{
		{"tenant-a", "tenantSync"}, {"tenant-b", "tenantSync"}, {"tenant-a", "allOrgSync"}, {"tenant-a", "authSync"},
	} {
		if _, err := st.InsertCall(ctx, store.Call{
			RequestID: fmt.Sprintf("kit-%d", i), Interface: "kit", Activity: c.activity, TenantID: c.tenant,
			Request: `{"tenantId":"` + c.tenant + `"}`, Response: `{"resultCode":"000000"}`, ResultCode: "000000",
			HTTPStatus: 200, Latency: time.Millisecond, CreatedAt: at(10 + i),
		}); err != nil {
			t.Fatalf("insert kit call: %v", err)
		}
	}
	return tenantSecrets{secret, mobile, email, plainClientSecret, plainMobile, plainEmail}
}

// leaks returns the secrets that body contains.
func (s tenantSecrets) leaks(body string) []string {
	var out []string
	for _, v := range s {
		if strings.Contains(body, v) {
			out = append(out, v)
		}
	}
	for _, name := range []string{"secret", "mobile", "email", "payload"} {
		if strings.Contains(strings.ToLower(body), name) {
			out = append(out, "field "+name)
		}
	}
	return out
}

// raw sends an authorised GET and returns the status and the body.
func (f *fixture) raw(t *testing.T, path string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("GET", f.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestListTenants(t *testing.T) { forDialects(t, testListTenants) }

func testListTenants(t *testing.T, f *fixture, _ tenantSecrets) {
	type page struct {
		Tenants []struct {
			TenantID string `json:"tenantId"`
			Status   string `json:"status"`
		} `json:"tenants"`
		Next string `json:"next"`
	}
	tests := []struct {
		query, want, wantNext string
	}{
		{"", "tenant-a:active tenant-b:deleted tenant-c:active", ""},
		{"?status=active", "tenant-a:active tenant-c:active", ""},
		{"?status=deleted", "tenant-b:deleted", ""},
		{"?limit=2", "tenant-a:active tenant-b:deleted", "tenant-b"},
		{"?limit=2&after=tenant-b", "tenant-c:active", ""},
		{"?limit=1&after=tenant-a&status=active", "tenant-c:active", "tenant-c"},
		{"?after=tenant-c", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			var out page
			if code := f.do(t, "GET", "/admin/api/tenants"+tt.query, &out); code != http.StatusOK {
				t.Fatalf("status %d", code)
			}
			var got []string
			for _, tn := range out.Tenants {
				got = append(got, tn.TenantID+":"+tn.Status)
			}
			if strings.Join(got, " ") != tt.want || out.Next != tt.wantNext {
				t.Errorf("got %v next %q, want %q next %q", got, out.Next, tt.want, tt.wantNext)
			}
		})
	}
	// An empty page is an empty list, not null.
	if code, body := f.raw(t, "/admin/api/tenants?after=tenant-c"); code != http.StatusOK || !strings.Contains(body, `"tenants": []`) {
		t.Errorf("empty page: %d %s", code, body)
	}

	for _, tt := range []struct{ query, want string }{
		{"?status=unbound", "status: want active or deleted"},
		{"?limit=0", "limit: want a number from 1 to 1000"},
		{"?limit=1001", "limit: want a number from 1 to 1000"},
		{"?limit=x", "limit: want a number from 1 to 1000"},
	} {
		var e errorBody
		if code := f.do(t, "GET", "/admin/api/tenants"+tt.query, &e); code != http.StatusBadRequest || e.Error != tt.want {
			t.Errorf("GET tenants%s: %d %q, want 400 %q", tt.query, code, e.Error, tt.want)
		}
	}
}

func TestGetTenant(t *testing.T) { forDialects(t, testGetTenant) }

func testGetTenant(t *testing.T, f *fixture, secrets tenantSecrets) {

	code, body := f.raw(t, "/admin/api/tenants/tenant-a")
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	if l := secrets.leaks(body); len(l) != 0 {
		t.Fatalf("the tenant answer leaks %q:\n%s", l, body)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	// Every field, exactly: nothing more is shown.
	want := map[string]any{
		"tenantId": "tenant-a", "tenantCode": "CODE-A", "name": "企业甲 <Ltd>", "domainName": "https://a.idaas.example.com",
		"instanceId": "inst-1", "orderId": "ORDER1", "status": "active", "test": false,
		"createdAt": "2026-03-01T12:01:00Z", "updatedAt": "2026-03-01T12:02:00Z", "version": 0.0, // inserted once
		"apps": []any{
			map[string]any{"appId": "app-1", "clientId": "client-a1", "instanceId": "inst-1", "createdAt": "2026-03-01T12:02:00Z", "updatedAt": "2026-03-01T12:02:00Z"},
			map[string]any{"appId": "app-2", "clientId": "client-a2", "createdAt": "2026-03-01T12:02:00Z", "updatedAt": "2026-03-01T12:04:00Z"},
		},
		"users": []any{
			wantUser("app-1", "lisi", "李四", "user", "D-EAST", false, false),
			wantUser("app-1", "wangwu", "王五", "user", "D-GONE", true, true),
			wantUser("app-1", "zhangsan", "张三", "admin", "D-SALES", true, true),
			wantUser("app-2", "zhangsan", "张三", "user", "", true, true),
		},
		"orgs": []any{
			wantOrg("D-EAST", "华东区", "D-SALES"), wantOrg("D-IT", "IT", "D-ROOT"), wantOrg("D-LOST", "失联部", "D-MISSING"),
			wantOrg("D-ROOT", "总部", ""), wantOrg("D-SALES", "销售部", "D-ROOT"),
		},
		"events": []any{
			map[string]any{"seq": 2.0, "eventId": "evt-2", "type": "users.authorized", "state": "failed", "attempts": 2.0,
				"lastError": "webhook: 400 Bad Request: unknown user", "createdAt": "2026-03-01T12:05:00Z", "updatedAt": "2026-03-01T12:06:00Z"},
			map[string]any{"seq": 1.0, "eventId": "evt-1", "type": "tenant.created", "state": "delivered", "attempts": 0.0,
				"createdAt": "2026-03-01T12:04:00Z", "updatedAt": "2026-03-01T12:06:00Z"},
		},
	}
	if g, w := mustJSON(t, got), mustJSON(t, want); g != w {
		t.Errorf("tenant-a:\n got %s\nwant %s", g, w)
	}

	// A deleted tenant shows its tombstone: status, deletedAt, no data.
	var b map[string]any
	if code := f.do(t, "GET", "/admin/api/tenants/tenant-b", &b); code != http.StatusOK {
		t.Fatalf("tenant-b: %d", code)
	}
	if b["status"] != "deleted" || b["deletedAt"] != "2026-03-01T12:03:00Z" || fmt.Sprint(b["apps"], b["users"], b["orgs"], b["events"]) != "[] [] [] []" {
		t.Errorf("tenant-b: %v", b)
	}

	for _, id := range []string{"nope", "tenant-a%2Fx", "%20"} {
		var e errorBody
		if code := f.do(t, "GET", "/admin/api/tenants/"+id, &e); code != http.StatusNotFound || !strings.HasPrefix(e.Error, "tenant ") || !strings.HasSuffix(e.Error, " not found") {
			t.Errorf("GET tenants/%s: %d %q, want 404 tenant … not found", id, code, e.Error)
		}
	}

	// No answer of the API shows a secret, the ledger's tenant calls
	// included.
	for _, p := range []string{"/admin/api/tenants", "/admin/api/calls?tenant=tenant-a", "/admin/api/tenants/tenant-c"} {
		code, body := f.raw(t, p)
		if code != http.StatusOK {
			t.Fatalf("GET %s: %d", p, code)
		}
		if l := secrets.leaks(body); len(l) != 0 {
			t.Errorf("GET %s leaks %q", p, l)
		}
	}
}

func wantUser(app, name, display, role, org string, enable, authorized bool) map[string]any {
	return map[string]any{
		"appId": app, "userName": name, "name": display, "role": role, "enable": enable, "authorized": authorized,
		"orgCode": org, "createdAt": "2026-03-01T12:03:00Z", "updatedAt": "2026-03-01T12:03:00Z",
	}
}

func wantOrg(code, name, parent string) map[string]any {
	return map[string]any{"orgCode": code, "name": name, "parentCode": parent, "createdAt": "2026-03-01T12:02:00Z", "updatedAt": "2026-03-01T12:02:00Z"}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestTenantCallsFilter(t *testing.T) { forDialects(t, testTenantCallsFilter) }

func testTenantCallsFilter(t *testing.T, f *fixture, _ tenantSecrets) {
	var out struct {
		Calls []struct {
			RequestID string `json:"requestId"`
			TenantID  string `json:"tenantId"`
		} `json:"calls"`
	}
	if code := f.do(t, "GET", "/admin/api/calls?tenant=tenant-a", &out); code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	var got []string
	for _, c := range out.Calls {
		got = append(got, c.RequestID+":"+c.TenantID)
	}
	if want := "kit-3:tenant-a kit-2:tenant-a kit-0:tenant-a"; strings.Join(got, " ") != want {
		t.Errorf("calls of tenant-a %v, want %s", got, want)
	}
}

// orgsOf reduces a tenant page's department tree to its shape:
// "A(B(C) D) E!unknown parent" — children in parentheses, a detached
// department marked with ! and why.
func orgsOf(t *testing.T, page string) string {
	t.Helper()
	start := strings.Index(page, `<ul class="orgs" id="orgs">`)
	if start < 0 {
		return ""
	}
	tok := regexp.MustCompile(`<li data-org-code="([^"]*)"(?: data-detached="([^"]*)")?>|<ul>|</ul>`)
	var b strings.Builder
	depth := 0
	for _, m := range tok.FindAllStringSubmatch(page[start+len(`<ul class="orgs" id="orgs">`):], -1) {
		switch {
		case m[0] == "<ul>":
			b.WriteString("(")
			depth++
		case m[0] == "</ul>":
			if depth == 0 {
				return strings.TrimSpace(strings.ReplaceAll(b.String(), " )", ")"))
			}
			b.WriteString(")")
			depth--
		default:
			if s := b.String(); s != "" && !strings.HasSuffix(s, "(") {
				b.WriteString(" ")
			}
			b.WriteString(m[1])
			if m[2] != "" {
				b.WriteString("!" + m[2])
			}
		}
	}
	t.Fatalf("department tree not closed:\n%s", page)
	return ""
}

func TestOrgTree(t *testing.T) {
	o := func(code, parent string) tenantOrgView {
		return tenantOrgView{OrgCode: code, Name: "n-" + code, ParentCode: parent}
	}
	tests := []struct {
		name string
		orgs []tenantOrgView
		want string
	}{
		{"empty", nil, ""},
		{"flat", []tenantOrgView{o("A", ""), o("B", "")}, "A B"},
		{"nested, children in the given order", []tenantOrgView{o("A", ""), o("B", "A"), o("C", "B"), o("D", "A")}, "A(B(C) D)"},
		{"child listed before its parent", []tenantOrgView{o("B", "A"), o("A", "")}, "A(B)"},
		{"unknown parent at the root, its children under it", []tenantOrgView{o("A", ""), o("X", "GONE"), o("Y", "X")}, "A X!unknown parent(Y)"},
		{"own parent", []tenantOrgView{o("A", "A")}, "A!cycle"},
		{"cycle of two with a child", []tenantOrgView{o("A", "B"), o("B", "A"), o("C", "B"), o("R", "")}, "R A!cycle(B(C))"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var render func(ns []*orgNode) string
			render = func(ns []*orgNode) string {
				var parts []string
				for _, n := range ns {
					s := n.Org.OrgCode
					if n.Detached != "" {
						s += "!" + n.Detached
					}
					if len(n.Children) > 0 {
						s += "(" + render(n.Children) + ")"
					}
					parts = append(parts, s)
				}
				return strings.Join(parts, " ")
			}
			if got := render(orgTree(tt.orgs)); got != tt.want {
				t.Errorf("tree %q, want %q", got, tt.want)
			}
		})
	}
}

func TestWebTenants(t *testing.T) {
	f := newWebFixture(t, nil)
	secrets := seedTenants(t, f.st)
	cookie := f.login(t)

	for _, tt := range []struct{ path, want string }{
		{"/admin/tenants", "[tenant-a tenant-b tenant-c]"},
		{"/admin/tenants?status=deleted", "[tenant-b]"},
		{"/admin/tenants?limit=2&after=tenant-a", "[tenant-b tenant-c]"},
	} {
		if got := fmt.Sprint(rowIDs(f.get(t, cookie, tt.path), "data-tenant-id")); got != tt.want {
			t.Errorf("%s: tenants %s, want %s", tt.path, got, tt.want)
		}
	}
	list := f.get(t, cookie, "/admin/tenants?limit=2")
	for _, want := range []string{`id="nav-tenants"`, `id="next"`, `after=tenant-b`, `href="/admin/tenants/tenant-a" data-testid="tenant-link"`, `data-status-filter="deleted"`} {
		if !strings.Contains(list, want) {
			t.Errorf("tenants page lacks %q", want)
		}
	}

	page := f.get(t, cookie, "/admin/tenants/tenant-a")
	if got, want := orgsOf(t, page), "D-LOST!unknown parent D-ROOT(D-IT D-SALES(D-EAST))"; got != want {
		t.Errorf("department tree %q, want %q", got, want)
	}
	for _, want := range []string{
		`data-tenant-id="tenant-a"`, `<dd data-field="name">企业甲 &lt;Ltd&gt;</dd>`, `(parent D-MISSING unknown)`,
		`<td data-field="clientId">client-a1</td>`, `<td data-field="clientId">client-a2</td>`,
		`<tr data-seq="2" data-state="failed">`, "webhook: 400 Bad Request: unknown user",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("tenant page lacks %q", want)
		}
	}
	if l := secrets.leaks(page); len(l) != 0 {
		t.Errorf("tenant page leaks %q", l)
	}
	// The users table: one row per (app, user), with the department's name.
	userRow := regexp.MustCompile(`(?s)<tr data-app-id="([^"]*)" data-user-name="([^"]*)">(.*?)</tr>`)
	cell := regexp.MustCompile(`<td data-field="(\w+)"[^>]*>(.*?)</td>`)
	var users []string
	for _, m := range userRow.FindAllStringSubmatch(page, -1) {
		var cells []string
		for _, c := range cell.FindAllStringSubmatch(m[3], -1) {
			if c[1] != "appId" && c[1] != "userName" {
				cells = append(cells, c[2])
			}
		}
		users = append(users, m[1]+"/"+m[2]+": "+strings.Join(cells, "|"))
	}
	wantUsers := []string{
		"app-1/lisi: 李四|user|no|revoked|华东区",
		"app-1/wangwu: 王五|user|yes|authorised|<span class=\"detached\">unknown department D-GONE</span>",
		"app-1/zhangsan: 张三|admin|yes|authorised|销售部",
		"app-2/zhangsan: 张三|user|yes|authorised|—",
	}
	if strings.Join(users, "\n") != strings.Join(wantUsers, "\n") {
		t.Errorf("users table:\n%s\nwant:\n%s", strings.Join(users, "\n"), strings.Join(wantUsers, "\n"))
	}
	// Its Kit calls, newest first, and only its own.
	if got, want := fmt.Sprint(rowIDs(page, "data-call-id")), fmt.Sprint(f.callIDs(t, "?tenant=tenant-a")); got != want {
		t.Errorf("tenant calls %s, want %s", got, want)
	}

	// A tenant with nothing synced says so.
	empty := f.get(t, cookie, "/admin/tenants/tenant-c")
	for _, want := range []string{`id="no-apps"`, `id="no-orgs"`, `id="no-users"`, `id="no-events"`, `id="no-calls"`} {
		if !strings.Contains(empty, want) {
			t.Errorf("empty tenant page lacks %q", want)
		}
	}

	for _, tt := range []struct {
		path string
		want int
	}{
		{"/admin/tenants/nope", http.StatusNotFound},
		{"/admin/tenants?status=lost", http.StatusBadRequest},
		{"/admin/tenants?limit=0", http.StatusBadRequest},
	} {
		if r := send(t, f.web.URL, "GET", tt.path, cookie, nil); r.StatusCode != tt.want || !strings.Contains(r.body, `id="error"`) {
			t.Errorf("GET %s: %d, want %d with an error message", tt.path, r.StatusCode, tt.want)
		}
	}
	if r := send(t, f.web.URL, "GET", "/admin/tenants/tenant-a", "", nil); r.StatusCode != http.StatusSeeOther {
		t.Errorf("tenant page without a session: %d, want a redirect to the login", r.StatusCode)
	}
}
