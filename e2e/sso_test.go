package e2e

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/koobridge/koobridge/internal/lockbuf"
)

// proc is a child process that printed the line it is ready with.
type proc struct {
	cmd    *exec.Cmd
	out    *lockbuf.Buffer
	exited chan struct{}
}

// startProc runs bin with args and env added, and waits until its output
// matches ready; it returns the first submatch. The process gets SIGTERM
// when the test ends, and its output is logged if the test failed.
func startProc(t *testing.T, name, bin string, env []string, ready *regexp.Regexp, args ...string) (*proc, string) {
	t.Helper()
	p := &proc{cmd: exec.Command(bin, args...), out: &lockbuf.Buffer{}, exited: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(20 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, p.out.String())
		}
	})
	for deadline := time.Now().Add(startTimeout); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if m := ready.FindStringSubmatch(p.out.String()); m != nil {
			return p, m[1]
		}
		select {
		case <-p.exited:
			t.Fatalf("%s exited before it was ready:\n%s", name, p.out.String())
		default:
		}
	}
	t.Fatalf("%s not ready within %v:\n%s", name, startTimeout, p.out.String())
	return nil, ""
}

// sampleApp builds examples/sso-app, a module of its own, into dir.
func sampleApp(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "sso-app")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = filepath.Join("..", "examples", "sso-app")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build examples/sso-app: %v\n%s", err, out)
	}
	return bin
}

// emulatorJSON sends a JSON request to the emulator's API and decodes the
// answer into into.
func emulatorJSON(t *testing.T, method, u, body string, into any) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s: %d %s", method, u, resp.StatusCode, raw)
	}
	if err := json.Unmarshal(raw, into); err != nil {
		t.Fatalf("%s %s: %v: %s", method, u, err, raw)
	}
}

// TestSSOSignIn is the single sign-on of issue 13 in a real browser:
// "koobridge emulate" plays KooGallery and the tenant's OneAccess,
// "koobridge serve" is the OpenID Connect provider, and the sample app
// (examples/sso-app) its client, each a process of its own. In Chromium a
// user of the bound enterprise opens the app, signs in on OneAccess's form
// and lands on the app's signed-in page; then signs out, and signing in
// again asks for the password.
func TestSSOSignIn(t *testing.T) {
	bin := Binary(t)
	dir := t.TempDir()
	app := sampleApp(t, dir)
	key, kitKey := randomHex(t, 16), randomHex(t, 16)
	secret, password := randomHex(t, 16), "browser-"+randomHex(t, 8)
	if out, err := exec.Command(bin, "keygen", "rsa", "--out", filepath.Join(dir, "rsa")).CombinedOutput(); err != nil {
		t.Fatalf("keygen rsa: %v\n%s", err, out)
	}
	serverAddr, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	appAddr, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	server, appURL := "http://"+serverAddr, "http://"+appAddr
	// The emulator first: it is the server's Open API too (Query Order).
	_, emu := startProc(t, "emulate", bin, nil, regexp.MustCompile(`web page and JSON API: (http://\S+)/`),
		"emulate", "--listen", "127.0.0.1:0", "--target", server+"/produce", "--key", key, "--kit-key", kitKey,
		"--ak", "e2e-ak", "--sk", "e2e-sk", "--rsa-public-key-file", filepath.Join(dir, "rsa.pub.pem"), "--user-password", password)
	startProc(t, "serve", bin, nil, regexp.MustCompile(`"msg":"listening","addr":"([^"]+)"`),
		"serve", "--db", filepath.Join(dir, "k.db"), "--listen", serverAddr, "--key", key, "--kit-key", kitKey,
		"--rsa-private-key-file", filepath.Join(dir, "rsa.pem"), "--data-key", newDataKey(t),
		"--ak", "e2e-ak", "--sk", "e2e-sk", "--openapi-url", emu,
		"--public-url", server, "--sso-client-id", "sample-app", "--sso-client-secret", secret,
		"--sso-redirect-uri", appURL+"/callback", "--sso-post-logout-redirect-uri", appURL+"/",
		"--sso-initiate-login-uri", appURL+"/initiate-login")
	startProc(t, "sso-app", app, []string{"SSO_CLIENT_SECRET=" + secret}, regexp.MustCompile(`sso-app listening on (http://\S+)/ `),
		"-listen", appAddr, "-issuer", server, "-client-id", "sample-app")

	// KooGallery binds the joint-operation product to an enterprise and
	// authorises its users.
	var run struct {
		SubscriptionID string `json:"subscriptionId"`
		OK             bool   `json:"ok"`
		Err            string `json:"error"`
	}
	emulatorPurchase(t, emu, `{"productId":"OFFI-EMU-JOINT"}`, &run)
	for _, scenario := range []string{"bind", "authorize-users"} {
		var r struct {
			OK  bool   `json:"ok"`
			Err string `json:"error"`
		}
		emulatorJSON(t, "POST", emu+"/api/emulator/subscriptions/"+run.SubscriptionID+"/play", `{"scenario":"`+scenario+`"}`, &r)
		if !r.OK {
			t.Fatalf("%s: %s", scenario, r.Err)
		}
	}
	var tenants []struct {
		TenantID       string `json:"tenantId"`
		TenantCode     string `json:"tenantCode"`
		SubscriptionID string `json:"subscriptionId"`
		Users          []struct {
			UserName   string `json:"userName"`
			Name       string `json:"name"`
			Authorized bool   `json:"authorized"`
			Enable     bool   `json:"enable"`
		} `json:"users"`
	}
	emulatorJSON(t, "GET", emu+"/api/emulator/tenants", "", &tenants)
	var tenantID, tenantCode, userName, name string
	for _, x := range tenants {
		if x.SubscriptionID != run.SubscriptionID {
			continue
		}
		var detail = x
		emulatorJSON(t, "GET", emu+"/api/emulator/tenants/"+x.TenantID, "", &detail)
		for _, u := range detail.Users {
			if u.Authorized && u.Enable {
				tenantID, tenantCode, userName, name = x.TenantID, x.TenantCode, u.UserName, u.Name
				break
			}
		}
	}
	if userName == "" {
		t.Fatalf("no authorised user in the emulator's tenants: %+v", tenants)
	}

	ctx := NewBrowser(t)
	login := appURL + "/login?tenant=" + url.QueryEscape(tenantID)
	Do(ctx, t, "open the sample app, ask to sign in to the tenant and reach OneAccess",
		chromedp.Navigate(appURL+"/"),
		chromedp.WaitVisible(chromedp.ID("tenant-input")),
		chromedp.SetValue(chromedp.ID("tenant-input"), tenantID),
		chromedp.Click(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.ID("username")),
	)
	Do(ctx, t, "sign in on OneAccess's form",
		chromedp.SendKeys(chromedp.ID("username"), userName),
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(chromedp.ID("sign-in")),
		chromedp.WaitVisible(chromedp.ID("sub")),
	)
	if loc := Get(ctx, t, "location", chromedp.Location()); loc != appURL+"/" {
		t.Errorf("signed in at %s, want the app's home %s/", loc, appURL)
	}
	for id, want := range map[string]string{"sub": userName + "@" + tenantCode, "tenant": tenantID, "name": name, "userinfo": "ok"} {
		if got := Get(ctx, t, id, chromedp.Text(chromedp.ID(id))); got != want {
			t.Errorf("#%s on the signed-in page: %q, want %q", id, got, want)
		}
	}

	Do(ctx, t, "sign out",
		chromedp.Click(chromedp.ID("logout")),
		chromedp.WaitVisible(chromedp.ID("login")),
	)
	if title := Get(ctx, t, "title", chromedp.Text(chromedp.ID("title"))); title != "Signed out" {
		t.Errorf("after signing out the app says %q", title)
	}
	// Both sessions ended: signing in again asks OneAccess for the password.
	Do(ctx, t, "sign in again",
		chromedp.Navigate(login),
		chromedp.WaitVisible(chromedp.ID("username")),
	)
	if loc := Get(ctx, t, "location", chromedp.Location()); !strings.Contains(loc, "/oneaccess/"+tenantCode+"/") {
		t.Errorf("a new sign-in after signing out is at %s, want the tenant's OneAccess form", loc)
	}
}

// newDataKey is a fresh data key as --data-key takes it: 32 random
// bytes, base64.
func newDataKey(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}
