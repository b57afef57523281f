package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// licenseWorld is a license seller end to end, every part its own process:
// the emulator (KooGallery and its Open API), koobridge serve, and the
// vendor's client software (examples/license-client, built from its own
// module, verifying the tokens with go-jose; and its Python twin).
type licenseWorld struct {
	srv    *serveProc
	em     *emulateProc
	client string // the Go client's binary
	dir    string
}

const licenseE2EKey, licenseE2ELicenseKey = "license-e2e-basic-key-0123456789", "license-e2e-license-key-9876543210"

func startLicenseWorld(t *testing.T, serveArgs ...string) *licenseWorld {
	t.Helper()
	dir := t.TempDir()
	client := filepath.Join(dir, "license-client")
	build := exec.Command("go", "build", "-o", client, ".")
	build.Dir = filepath.Join("..", "..", "examples", "license-client")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build examples/license-client: %v\n%s", err, out)
	}
	openAPI := "127.0.0.1:" + strconv.Itoa(freePort(t))
	srv := startServe(t, append([]string{"--db", filepath.Join(dir, "k.db"), "--key", licenseE2EKey,
		"--license-key", licenseE2ELicenseKey, "--ak", testAK, "--sk", testSK, "--data-key", newDataKey(t),
		"--openapi-url", "http://" + openAPI, "--listen", "127.0.0.1:0", "--admin-token", adminToken}, serveArgs...)...)
	em := startEmulate(t, "--listen", "127.0.0.1:0", "--openapi-listen", openAPI, "--target", srv.base+"/produce",
		"--key", licenseE2EKey, "--license-key", licenseE2ELicenseKey, "--ak", testAK, "--sk", testSK)
	return &licenseWorld{srv: srv, em: em, client: client, dir: dir}
}

// emRun is the emulator's answer to a purchase or a scenario.
type emRun struct {
	SubscriptionID string `json:"subscriptionId"`
	OK             bool   `json:"ok"`
	Err            string `json:"error"`
	LicenseCode    string `json:"licenseCode"`
}

func (w *licenseWorld) purchase(t *testing.T, product string) emRun {
	t.Helper()
	var r emRun
	w.em.purchase(t, `{"productId":"`+product+`"}`, &r)
	if !r.OK {
		t.Fatalf("purchase %s: %s", product, r.Err)
	}
	return r
}

func (w *licenseWorld) play(t *testing.T, sub, scenario, extra string) {
	t.Helper()
	var r emRun
	w.em.post(t, "/api/emulator/subscriptions/"+sub+"/play", `{"scenario":"`+scenario+`"`+extra+`}`, &r)
	if !r.OK {
		t.Fatalf("%s: %s", scenario, r.Err)
	}
}

// faults sets the emulator's faults (replacing them all).
func (w *licenseWorld) faults(t *testing.T, body string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, w.em.base+"/api/emulator/faults", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT faults %s: %d %s", body, resp.StatusCode, raw)
	}
}

// clientClaims is what the Go client prints: the verified token's claims.
type clientClaims struct {
	License     string    `json:"license"`
	Fingerprint string    `json:"fingerprint"`
	Status      string    `json:"status"`
	Expires     time.Time `json:"expires"`
	ValidUntil  time.Time `json:"validUntil"`
	Offline     bool      `json:"offline"`
}

// runClient runs the Go client and returns its exit code and the claims of
// the token it verified.
func (w *licenseWorld) runClient(t *testing.T, op, code, fp string) (int, clientClaims) {
	t.Helper()
	cmd := exec.Command(w.client, "-url", w.srv.base, "-state", filepath.Join(w.dir, "client-state.json"), op, code, fp)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	exit := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("run the license client: %v", err)
		}
		exit = ee.ExitCode()
	}
	var c clientClaims
	if exit != 1 {
		if err := json.Unmarshal([]byte(stdout.String()), &c); err != nil {
			t.Fatalf("client %s: exit %d, output %q (%v), stderr %s", op, exit, stdout.String(), err, stderr.String())
		}
	}
	if exit == 1 {
		t.Fatalf("client %s: exit 1 (token did not verify or the service failed): %s", op, stderr.String())
	}
	return exit, c
}

// serviceCheck calls the license service directly, for what the client
// does not print (cached).
func (w *licenseWorld) serviceCheck(t *testing.T, code, fp string) (int, map[string]any) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"license": code, "deviceFingerprint": fp})
	resp, err := http.Post(w.srv.base+"/api/v1/licenses/check", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("check answer %d %s: %v", resp.StatusCode, raw, err)
	}
	return resp.StatusCode, m
}

// TestLicenseCodeEndToEnd: a license-code product bought at the emulator,
// its code activated and checked by the vendor's client software through
// koobridge, then frozen, unfrozen, renewed and released by KooGallery's
// production calls: the client, verifying each signed token with a
// library koobridge does not share code with, sees every change on its
// next check; KooGallery's Open API is asked to activate once, and is
// reported the device's use; with the Open API down the check answers
// from the cache.
func TestLicenseCodeEndToEnd(t *testing.T) {
	w := startLicenseWorld(t, "--license-check-interval", "1s", "--license-usage-interval", "1s")
	buy := w.purchase(t, "OFFI-EMU-LICENSE")
	code := buy.LicenseCode
	if code == "" {
		t.Fatalf("the purchase issued no license code: %+v", buy)
	}
	const fp = "04:7C:16:5E:E3:5D|001B_444A_488B_5CEC.||BFEBFBFF00090672"

	exit, c := w.runClient(t, "activate", code, fp)
	if exit != 0 || c.Status != "active" || c.License != code || c.Fingerprint != fp || c.Offline {
		t.Fatalf("activate: exit %d claims %+v", exit, c)
	}
	// Activating again from the same device asks KooGallery nothing more.
	if exit, c = w.runClient(t, "activate", code, fp); exit != 0 || c.Status != "active" {
		t.Fatalf("second activate: exit %d claims %+v", exit, c)
	}
	var activations []struct {
		License string `json:"license"`
		Code    string `json:"code"`
	}
	getJSON(t, w.em.base+"/api/emulator/license-activations", "", &activations)
	n := 0
	for _, a := range activations {
		if a.License == code {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("KooGallery was asked to activate %s %d times, want once: %+v", code, n, activations)
	}

	// The Python client verifies the same service's tokens with cryptography.
	py := exec.Command("python3", filepath.Join("..", "..", "examples", "license-client", "python", "license_client.py"),
		"--url", w.srv.base, "check", code, fp)
	if out, err := py.CombinedOutput(); err != nil || !strings.Contains(string(out), `"status": "active"`) {
		t.Fatalf("python client: %v\n%s", err, out)
	}

	expires := func() time.Time {
		var sub struct {
			ExpireTime time.Time `json:"expireTime"`
		}
		getJSON(t, w.em.base+"/api/emulator/subscriptions/"+buy.SubscriptionID, "", &sub)
		return sub.ExpireTime
	}
	for _, step := range []struct {
		scenario   string
		wantExit   int
		wantStatus string
	}{
		{"expire", 2, "frozen"},
		{"unfreeze", 0, "active"},
		{"renewal", 0, "active"},
	} {
		w.play(t, buy.SubscriptionID, step.scenario, "")
		exit, c := w.runClient(t, "check", code, fp)
		if exit != step.wantExit || c.Status != step.wantStatus {
			t.Fatalf("check after %s: exit %d claims %+v, want exit %d status %s", step.scenario, exit, c, step.wantExit, step.wantStatus)
		}
		if want := expires(); step.wantStatus == "active" && !c.Expires.Equal(want.Truncate(time.Second)) {
			t.Errorf("after %s the token expires %v, the emulator says %v", step.scenario, c.Expires, want)
		}
	}

	// KooGallery's Open API down: the check is answered from the cache.
	time.Sleep(1100 * time.Millisecond) // past the check interval: the next check asks KooGallery
	w.faults(t, `{"licenseApiStatus":503}`)
	status, m := w.serviceCheck(t, code, fp)
	if status != http.StatusOK || m["cached"] != true || m["status"] != "active" {
		t.Fatalf("check with the Open API down: %d %v, want 200 cached active", status, m)
	}
	w.faults(t, `{}`)

	// The device's use reaches KooGallery's software usage statistics as
	// exactly one id for the code: 64 hex digits, the keyed hash of the
	// fingerprint, not its bare SHA-256 (reversible for a MAC alone).
	sum := sha256.Sum256([]byte(fp))
	bare := hex.EncodeToString(sum[:])
	hexID := regexp.MustCompile(`^[0-9a-f]{64}$`)
	var ids []string
	waitFor(t, "usage statistics for "+code, func() bool {
		var usage []struct {
			License string `json:"license"`
			Items   []struct {
				ID string `json:"id"`
			} `json:"items"`
		}
		getJSON(t, w.em.base+"/api/emulator/license-usage", "", &usage)
		ids = nil
		for _, u := range usage {
			for _, it := range u.Items {
				if u.License == code && !slices.Contains(ids, it.ID) {
					ids = append(ids, it.ID)
				}
			}
		}
		return len(ids) > 0
	})
	if len(ids) != 1 || !hexID.MatchString(ids[0]) || ids[0] == bare {
		t.Errorf("usage statistics for %s carry the ids %q, want one keyed hash of 64 hex digits, not the bare SHA-256 %s", code, ids, bare)
	}

	w.play(t, buy.SubscriptionID, "unsubscribe", "")
	if exit, c = w.runClient(t, "check", code, fp); exit != 2 || c.Status != "released" {
		t.Fatalf("check after unsubscribe (release): exit %d claims %+v", exit, c)
	}
	// The fingerprint never reaches serve's log.
	if strings.Contains(w.srv.output(), fp) || strings.Contains(w.srv.output(), licenseE2ELicenseKey) {
		t.Error("serve's log holds the device fingerprint or the license key")
	}
}

// TestOnlineLicenseEndToEnd: an online-license purchase at the emulator,
// then the buyer's license request: koobridge has the (demo) generator make
// the license and uploads it to the emulator's Open API; three uploads fail
// and the fourth is accepted, and the license is uploaded once, the bytes
// koobridge keeps.
func TestOnlineLicenseEndToEnd(t *testing.T) {
	w := startLicenseWorld(t, "--provision-test-calls")
	buy := w.purchase(t, "OFFI-EMU-ONLINELICENSE")
	w.faults(t, `{"uploadFailures":3}`)
	w.play(t, buy.SubscriptionID, "request-license", `,"deviceFingerprint":"04:7C:16:5E:E3:5D|||BFEBFBFF00090672"`)

	var uploads []struct {
		EventID  string `json:"eventId"`
		SHA256   string `json:"sha256"`
		Accepted bool   `json:"accepted"`
		Fault    bool   `json:"fault"`
	}
	getJSON(t, w.em.base+"/api/emulator/license-uploads", "", &uploads)
	accepted, faulted := 0, 0
	var sum string
	for _, u := range uploads {
		if u.Accepted {
			accepted++
			sum = u.SHA256
		}
		if u.Fault {
			faulted++
		}
	}
	if accepted != 1 || faulted != 3 {
		t.Fatalf("uploads: %d accepted, %d failed by the fault, want 1 and 3: %+v", accepted, faulted, uploads)
	}

	var grants struct {
		Grants []struct {
			ID       int64  `json:"id"`
			State    string `json:"state"`
			SHA256   string `json:"sha256"`
			Attempts int    `json:"attempts"`
		} `json:"grants"`
	}
	// The emulator took the upload before serve read its answer: wait for
	// serve to record it.
	waitFor(t, "serve to record the upload", func() bool {
		getJSON(t, w.srv.base+"/admin/api/license-grants", adminToken, &grants)
		return len(grants.Grants) != 1 || grants.Grants[0].State != "generated"
	})
	if len(grants.Grants) != 1 {
		t.Fatalf("serve keeps %d grants, want 1: %+v", len(grants.Grants), grants)
	}
	g := grants.Grants[0]
	if g.State != "uploaded" || g.Attempts != 4 || !strings.EqualFold(g.SHA256, sum) {
		t.Fatalf("grant %+v, want uploaded after 4 attempts with the uploaded sha256 %s", g, sum)
	}
	var detail struct {
		Uploads []struct {
			Outcome string `json:"outcome"`
		} `json:"uploads"`
	}
	getJSON(t, w.srv.base+"/admin/api/license-grants/"+strconv.FormatInt(g.ID, 10), adminToken, &detail)
	var outcomes []string
	for _, u := range detail.Uploads {
		outcomes = append(outcomes, u.Outcome)
	}
	if strings.Join(outcomes, " ") != "retry retry retry accepted" {
		t.Fatalf("upload attempts %v, want three retries then accepted", outcomes)
	}
}
