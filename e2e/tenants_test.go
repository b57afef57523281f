package e2e

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
)

// kitCall plays one Kit V2 interface of KooGallery against serve's root:
// POST /produceAPI/v2/<name> with x-sign (form A), x-timestamp and x-nonce
// signed with key, and fails the test unless it is answered 000000.
func kitCall(t *testing.T, base, key, name string, body map[string]any) {
	t.Helper()
	body["timeStamp"] = protocol.FormatKitTime(time.Now())
	body["testFlag"] = "0"
	raw, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	nonce := randomHex(t, 16)
	ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
	req, err := http.NewRequest("POST", base+"/produceAPI/v2/"+name, bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("x-sign", sign.KitSignature(key, nonce, ts, raw))
	req.Header.Set("x-timestamp", ts)
	req.Header.Set("x-nonce", nonce)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	if !bytes.Contains(answer, []byte(`"resultCode":"000000"`)) {
		t.Fatalf("%s: %d %s", name, resp.StatusCode, answer)
	}
}

// writeRSAKey makes the seller's RSA key pair of the 3072 bits serve
// requires, writes the private key as PKCS#8 PEM into dir and returns its
// path and the public key.
func writeRSAKey(t *testing.T, dir string) (string, *rsa.PublicKey) {
	t.Helper()
	priv, err := rsa.GenerateKey(rand.Reader, 3072)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "seller-rsa.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, &priv.PublicKey
}

// TestConsoleTenants binds an enterprise to an instance through the real
// Kit interfaces of a koobridge process (tenantSync, applicationSync with
// an RSA-encrypted secret, allOrgSync, authSync adding users and revoking
// one), then in Chromium opens the Tenants page, the tenant, and checks
// the department tree's nesting, the users table, the app and the Kit
// calls — and that neither the client secret nor a user's contact data is
// on the page.
func TestConsoleTenants(t *testing.T) {
	dir := t.TempDir()
	token, key := randomHex(t, 16), randomHex(t, 16)
	keyFile, pub := writeRSAKey(t, dir)
	k := StartKoobridge(t, "serve", "--dev", "--db", filepath.Join(dir, "k.db"), "--admin-token", token, "--key", key,
		"--rsa-private-key-file", keyFile)
	const order = "CS2612061700E2ETENANT"
	instanceID := newInstance(t, k.URL, key, order)

	const (
		tenantID     = "e2e-tenant-0001"
		clientSecret = "e2e-client-secret-Zq81"
		mobile       = "13912345678"
		email        = "wang.wu@example.com"
	)
	secret, err := sign.EncryptClientSecret(pub, clientSecret)
	if err != nil {
		t.Fatal(err)
	}
	kitCall(t, k.URL, key, "tenantSync", map[string]any{
		"tenantId": tenantID, "tenantCode": "E2ECODE", "name": "华为测试企业 <e2e>", "domainName": "https://e2e.idaas.example.com",
		"instanceId": instanceID, "orderId": order, "flag": "1",
	})
	kitCall(t, k.URL, key, "applicationSync", map[string]any{
		"tenantId": tenantID, "appId": "e2e-app", "clientId": "e2e-client-id", "clientSecret": secret,
		"instanceId": instanceID, "flag": "1",
	})
	kitCall(t, k.URL, key, "allOrgSync", map[string]any{
		"tenantId": tenantID, "instanceId": instanceID, "flag": "1",
		"orgInfoList": []map[string]string{
			{"orgCode": "ROOT", "orgName": "总部"},
			{"orgCode": "SALES", "orgName": "销售部", "parentCode": "ROOT"},
			{"orgCode": "EAST", "orgName": "华东区", "parentCode": "SALES"},
			{"orgCode": "IT", "orgName": "信息技术部", "parentCode": "ROOT"},
		},
	})
	user := func(name, display, org, role string) map[string]any {
		return map[string]any{"userName": name, "name": display, "orgCode": org, "role": role, "enable": "true", "mobile": mobile, "email": email}
	}
	kitCall(t, k.URL, key, "authSync", map[string]any{
		"tenantId": tenantID, "appId": "e2e-app", "instanceId": instanceID, "flag": "1", "currentSyncTime": "20261206170000000",
		"userList": []map[string]any{user("zhangsan", "张三", "EAST", "admin"), user("lisi", "李四", "IT", "user")},
	})
	kitCall(t, k.URL, key, "authSync", map[string]any{
		"tenantId": tenantID, "appId": "e2e-app", "instanceId": instanceID, "flag": "3", "currentSyncTime": "20261206170100000",
		"userList": []map[string]any{{"userName": "lisi"}},
	})

	ctx := NewBrowser(t)
	Do(ctx, t, "log in",
		chromedp.Navigate(k.URL+"/admin/login"),
		chromedp.WaitVisible(chromedp.ID("login")),
		chromedp.SendKeys(chromedp.ID("token"), token),
		chromedp.Click(chromedp.ID("login-button")),
		chromedp.WaitVisible(chromedp.ID("instances")),
	)
	row := `#tenants tr[data-tenant-id="` + tenantID + `"]`
	Do(ctx, t, "open the tenants", chromedp.Click(chromedp.ID("nav-tenants")), chromedp.WaitVisible(chromedp.CSS(row)))
	if text := Get(ctx, t, "tenant row", chromedp.Text(chromedp.CSS(row))); !strings.Contains(text, "E2ECODE") ||
		!strings.Contains(text, "华为测试企业 <e2e>") || !strings.Contains(text, instanceID) || !strings.Contains(text, "active") {
		t.Errorf("tenant row %q lacks the code, name, instance or status", text)
	}

	Do(ctx, t, "open the tenant",
		chromedp.Click(chromedp.CSS(row+` a[data-testid="tenant-link"]`)),
		chromedp.WaitVisible(chromedp.ID("tenant")),
	)
	if loc, shown := Get(ctx, t, "location", chromedp.Location()), Get(ctx, t, "tenant id", chromedp.Text(chromedp.ID("tenant-id"))); loc != k.URL+"/admin/tenants/"+tenantID || shown != tenantID {
		t.Errorf("tenant page at %q shows %q, want tenant %s", loc, shown, tenantID)
	}

	// The department tree as the browser nests it: each li's code, its
	// direct ul's children in parentheses.
	tree := Get(ctx, t, "department tree", chromedp.Evaluate[string](`(function walk(ul) {
		return Array.from(ul.children).map(function (li) {
			var sub = li.querySelector(':scope > ul');
			return li.dataset.orgCode + (li.dataset.detached ? '!' + li.dataset.detached : '') + (sub ? '(' + walk(sub) + ')' : '');
		}).join(' ');
	})(document.getElementById('orgs'))`))
	if tree != "ROOT(IT SALES(EAST))" {
		t.Errorf("department tree %q, want ROOT(IT SALES(EAST))", tree)
	}
	if name := Get(ctx, t, "nested department", chromedp.Text(chromedp.CSS(`#orgs > li[data-org-code="ROOT"] > ul > li[data-org-code="SALES"] > ul > li[data-org-code="EAST"] > [data-field="name"]`))); name != "华东区" {
		t.Errorf("EAST under SALES under ROOT is named %q, want 华东区", name)
	}

	users := Get(ctx, t, "users table", chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('#users tbody tr')).map(function (tr) {
		return Array.from(tr.querySelectorAll('td')).map(function (td) { return td.textContent.trim(); }).join('|');
	})`))
	wantUsers := []string{
		"e2e-app|lisi|李四|user|yes|revoked|信息技术部",
		"e2e-app|zhangsan|张三|admin|yes|authorised|华东区",
	}
	if strings.Join(users, "\n") != strings.Join(wantUsers, "\n") {
		t.Errorf("users table:\n%s\nwant:\n%s", strings.Join(users, "\n"), strings.Join(wantUsers, "\n"))
	}
	if client := Get(ctx, t, "app", chromedp.Text(chromedp.CSS(`#apps tr[data-app-id="e2e-app"] [data-field="clientId"]`))); client != "e2e-client-id" {
		t.Errorf("app client id %q", client)
	}
	calls := Get(ctx, t, "Kit calls", chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('#calls tr[data-call-id]')).map(function (tr) { return tr.dataset.activity; })`))
	if got := strings.Join(calls, " "); got != "authSync authSync allOrgSync applicationSync tenantSync" {
		t.Errorf("the tenant's Kit calls, newest first: %q", got)
	}

	html := Get(ctx, t, "page", chromedp.Evaluate[string](`document.documentElement.outerHTML`))
	for _, leak := range []string{clientSecret, secret, mobile, email} {
		if strings.Contains(html, leak) {
			t.Errorf("the tenant page shows %q", leak)
		}
	}
}
