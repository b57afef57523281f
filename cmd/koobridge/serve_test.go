package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/koobridge/koobridge/internal/openapi/openapitest"
	"github.com/koobridge/koobridge/isv"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
	"github.com/koobridge/koobridge/provision"
	"github.com/koobridge/koobridge/store"
)

// The serve tests run the real binary: built once, run as a child process.
var (
	binOnce sync.Once
	binPath string
	binErr  error
	binDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func koobridgeBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the koobridge binary")
	}
	binOnce.Do(func() {
		if binDir, binErr = os.MkdirTemp("", "koobridge-bin-"); binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "koobridge")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

const (
	testAK     = "TESTAK0123456789"
	testSK     = "test-sk-0123456789abcdef"
	adminToken = "admin-token-0123456789abcdef"
	waitLong   = 60 * time.Second // generous: a loaded 2-core machine
)

// serveProc is a running "koobridge serve".
type serveProc struct {
	cmd  *exec.Cmd
	base string // http://host:port
	mu   sync.Mutex
	log  bytes.Buffer
	done chan struct{}
	exit int
}

// reap records the started serve's exit in p.exit, closing p.done, and
// at the end of the test kills it if it still runs and, when the test
// failed, logs what it wrote.
func (p *serveProc) reap(t *testing.T) {
	go func() {
		_ = p.cmd.Wait()
		p.exit = p.cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("serve output:\n%s", p.output())
		}
	})
}

var listeningRE = regexp.MustCompile(`"msg":"listening","addr":"([^"]+)"`)

func startServe(t *testing.T, args ...string) *serveProc {
	t.Helper()
	bin := koobridgeBinary(t)
	cmd := exec.Command(bin, append([]string{"serve"}, args...)...)
	cmd.Env = cleanEnv()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &serveProc{cmd: cmd, done: make(chan struct{})}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.log.WriteString(line + "\n")
			p.mu.Unlock()
			if m := listeningRE.FindStringSubmatch(line); m != nil {
				addr <- m[1]
			}
		}
	}()
	p.reap(t)
	select {
	case a := <-addr:
		p.base = "http://" + a
	case <-p.done:
		t.Fatalf("serve exited with %d before listening:\n%s", p.exit, p.output())
	case <-time.After(waitLong):
		t.Fatalf("serve did not log \"listening\":\n%s", p.output())
	}
	return p
}

func (p *serveProc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// stop sends sig and waits for the exit status.
func (p *serveProc) stop(t *testing.T, sig os.Signal) int {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal: %v", err)
	}
	select {
	case <-p.done:
		return p.exit
	case <-time.After(waitLong):
		t.Fatalf("serve did not exit after %v:\n%s", sig, p.output())
		return -1
	}
}

// cleanEnv is the environment without KOOBRIDGE_ settings.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, envPrefix) {
			env = append(env, kv)
		}
	}
	return env
}

func randomNonce(t *testing.T) string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return strings.ToUpper(hex.EncodeToString(b))
}

// signedCall is one V2 call as KooGallery makes it.
type signedCall struct {
	body  []byte
	query string
}

func newSignedCall(t *testing.T, key string, body map[string]string) signedCall {
	t.Helper()
	raw, err := json.Marshal(body) // encoding/json sorts keys, as KooGallery does
	if err != nil {
		t.Fatal(err)
	}
	nonce := randomNonce(t)
	ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
	sig := sign.V2Signature(key, nonce, ts, raw)
	return signedCall{body: raw, query: "signature=" + sig + "&timestamp=" + ts + "&nonce=" + nonce}
}

type v2Reply struct {
	ResultCode string `json:"resultCode"`
	ResultMsg  string `json:"resultMsg"`
	InstanceID string `json:"instanceId"`
	Info       []struct {
		InstanceID string `json:"instanceId"`
		AppInfo    *struct {
			FrontEndURL string `json:"frontEndUrl"`
			Password    string `json:"password"`
		} `json:"appInfo"`
	} `json:"info"`
}

// send posts the call and checks the reply's Body-Sign with key.
func (c signedCall) send(t *testing.T, base, key string) v2Reply {
	t.Helper()
	resp, err := http.Post(base+"/produce?"+c.query, "application/json;charset=utf8", bytes.NewReader(c.body))
	if err != nil {
		t.Fatalf("post: %v", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, raw)
	}
	if err := sign.VerifyBodySign(key, resp.Header.Get(sign.BodySignHeader), raw); err != nil {
		t.Errorf("Body-Sign of %s: %v", raw, err)
	}
	var r v2Reply
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("reply %q: %v", raw, err)
	}
	return r
}

func call(t *testing.T, base, key string, body map[string]string) v2Reply {
	t.Helper()
	return newSignedCall(t, key, body).send(t, base, key)
}

func newInstanceBody(order string) map[string]string {
	return map[string]string{"activity": "newInstance", "businessId": randomBusinessID(), "orderId": order, "orderLineId": order + "-000001"}
}

var businessSeq struct {
	sync.Mutex
	n int
}

func randomBusinessID() string {
	businessSeq.Lock()
	defer businessSeq.Unlock()
	businessSeq.n++
	return fmt.Sprintf("biz-%d-%d", time.Now().UnixNano(), businessSeq.n)
}

func queryBody(id string) map[string]string {
	return map[string]string{"activity": "queryInstance", "instanceId": id}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func httpGet(t *testing.T, url, bearer string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func addOrder(mock *openapitest.Server, orderID string) {
	mock.AddOrder(protocol.OrderInfo{
		OrderID: protocol.FlexString(orderID), OrderType: "NEW", CreateTime: "20260101000000",
		OrderLine: []protocol.OrderLine{{
			OrderLineID: protocol.FlexString(orderID + "-000001"), ChargingMode: "PERIOD", ExpireTime: "20270101000000",
			PeriodType: "year", PeriodNumber: "1",
			ProductInfo: protocol.ProductInfoList{{ProductID: "P1", SKUCode: "SKU1", ProductName: "Product"}},
		}},
	})
}

var devKeyRE = regexp.MustCompile(`KooGallery key \(sign calls with it\):\s+(\S+)`)

// TestServeProcess drives a real "koobridge serve --dev" over HTTP.
func TestServeProcess(t *testing.T) {
	mock := openapitest.NewServer(t, testAK, testSK)
	addOrder(mock, "ORDERDEV1")
	db := filepath.Join(t.TempDir(), "kb.db")
	p := startServe(t, "--dev", "--listen", "127.0.0.1:0", "--db", "sqlite:"+db,
		"--openapi-url", mock.URL(), "--ak", testAK, "--sk", testSK, "--admin-token", adminToken)

	m := devKeyRE.FindStringSubmatch(p.output())
	if m == nil {
		t.Fatalf("no generated key banner:\n%s", p.output())
	}
	key := m[1]

	if code, body := httpGet(t, p.base+"/healthz", ""); code != 200 || strings.TrimSpace(body) != "ok" {
		t.Fatalf("healthz %d %q", code, body)
	}
	if code, _ := httpGet(t, p.base+"/readyz", ""); code != 200 {
		t.Fatalf("readyz %d", code)
	}

	created := call(t, p.base, key, newInstanceBody("ORDERDEV1"))
	if created.ResultCode != "000000" && created.ResultCode != "000004" || created.InstanceID == "" {
		t.Fatalf("newInstance: %+v", created)
	}
	var q v2Reply
	waitFor(t, "queryInstance 000000", func() bool {
		q = call(t, p.base, key, queryBody(created.InstanceID))
		return q.ResultCode == "000000"
	})
	if len(q.Info) != 1 || q.Info[0].InstanceID != created.InstanceID || q.Info[0].AppInfo == nil || q.Info[0].AppInfo.FrontEndURL == "" {
		t.Fatalf("queryInstance: %+v", q)
	}
	// A wrong signature is rejected, Body-Signed with the configured key.
	bad := newSignedCall(t, "not-the-key", newInstanceBody("ORDERDEV1"))
	if r := bad.send(t, p.base, key); r.ResultCode != "000001" {
		t.Fatalf("wrong key: %+v", r)
	}

	// A call is counted just after its reply is flushed: poll briefly.
	wants := []string{`activity="newInstance"`, `activity="queryInstance"`, "go_goroutines", "process_"}
	var metrics string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		_, metrics = httpGet(t, p.base+"/metrics", "")
		missing := 0
		for _, want := range wants {
			if !strings.Contains(metrics, want) {
				missing++
			}
		}
		if missing == 0 || time.Now().After(deadline) {
			break
		}
	}
	for _, want := range wants {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}

	// Admin API: 401 without the token, the instance and its calls with it.
	if code, _ := httpGet(t, p.base+"/admin/api/instances", ""); code != 401 {
		t.Errorf("admin without token: %d", code)
	}
	code, body := httpGet(t, p.base+"/admin/api/instances/"+created.InstanceID, adminToken)
	if code != 200 || !strings.Contains(body, `"status": "active"`) || !strings.Contains(body, `"activity": "queryInstance"`) {
		t.Errorf("admin instance %d: %s", code, body)
	}
	if q.Info[0].AppInfo.Password != "" && strings.Contains(body, q.Info[0].AppInfo.Password) {
		t.Errorf("admin API shows the password")
	}
	// Secrets never reach the log.
	log := p.output()
	logAfterBanner := log[strings.Index(log, m[0])+len(m[0]):]
	for _, secret := range []string{key, testSK, adminToken} {
		if strings.Contains(logAfterBanner, secret) {
			t.Errorf("log contains a secret %q", secret)
		}
	}

	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d after SIGTERM", code)
	}
}

// TestServeAdminDisabled: without --admin-token the admin API is 404 and
// a warning says so. (--dev generates a token: TestServeDevRestart.)
func TestServeAdminDisabled(t *testing.T) {
	p := startServe(t, "--listen", "127.0.0.1:0", "--db", filepath.Join(t.TempDir(), "kb.db"),
		"--key", "admin-disabled-key", "--data-key", testDataKey, "--ak", testAK, "--sk", testSK, "--openapi-url", "http://127.0.0.1:9")
	if code, _ := httpGet(t, p.base+"/admin/api/instances", adminToken); code != 404 {
		t.Errorf("admin API without --admin-token: %d", code)
	}
	if !strings.Contains(p.output(), "admin API is disabled") {
		t.Errorf("missing warnings:\n%s", p.output())
	}
	if code := p.stop(t, os.Interrupt); code != 0 {
		t.Fatalf("exit %d after SIGINT", code)
	}
}

// vendor is a webhook provisioner that answers some orders at once and
// holds others until released.
type vendor struct {
	mu       sync.Mutex
	released bool
	blocked  map[string]bool // order IDs held until release
	holding  int             // deliveries being held now
	seen     map[string]int  // deliveries of instance.created by order
	gate     chan struct{}
}

func newVendor(blocked ...string) *vendor {
	v := &vendor{blocked: map[string]bool{}, seen: map[string]int{}, gate: make(chan struct{})}
	for _, o := range blocked {
		v.blocked[o] = true
	}
	return v
}

func (v *vendor) release() {
	v.mu.Lock()
	defer v.mu.Unlock()
	if !v.released {
		v.released = true
		close(v.gate)
	}
}

func (v *vendor) deliveries(order string) (seen, holding int) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.seen[order], v.holding
}

func (v *vendor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var ev provision.Event
	if err := json.NewDecoder(r.Body).Decode(&ev); err != nil {
		http.Error(w, "bad event", http.StatusBadRequest)
		return
	}
	if r.Header.Get("Koobridge-Signature") == "" {
		http.Error(w, "unsigned", http.StatusUnauthorized)
		return
	}
	order := ev.Instance.OrderID
	v.mu.Lock()
	if ev.Type == provision.EventCreated {
		v.seen[order]++
	}
	hold := v.blocked[order] && !v.released
	if hold {
		v.holding++
	}
	v.mu.Unlock()
	if hold {
		// Hold longer than the budget, then fail retryably, so the call
		// answers 000004 and the job goes back to the queue.
		select {
		case <-v.gate:
		case <-time.After(1500 * time.Millisecond):
		}
		v.mu.Lock()
		v.holding--
		still := !v.released
		v.mu.Unlock()
		if still {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(provision.Result{AppInfo: &provision.AppInfo{
		FrontEndURL: "https://vendor.example/" + ev.Instance.ID, UserName: "admin", Password: "Vendor-Pass-123!",
	}})
}

type adminJob struct {
	ID       int64     `json:"id"`
	Kind     string    `json:"kind"`
	State    string    `json:"state"`
	RunAt    time.Time `json:"runAt"`
	Attempts int       `json:"attempts"`
}

// jobsOf lists the jobs through the admin API.
func jobsOf(t *testing.T, base string) []adminJob {
	t.Helper()
	code, body := httpGet(t, base+"/admin/api/jobs?limit=1000", adminToken)
	if code != 200 {
		t.Fatalf("admin jobs: %d %s", code, body)
	}
	var out struct {
		Jobs []adminJob `json:"jobs"`
	}
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatal(err)
	}
	return out.Jobs
}

// TestServeRestart stops and restarts the process on the same database:
// repeats get the same instanceId, a replayed nonce stays rejected, and
// background provisioning started before the stop completes after it.
func TestServeRestart(t *testing.T) {
	for _, variant := range []struct {
		name string
		sig  os.Signal
	}{{"SIGTERM", syscall.SIGTERM}, {"kill -9", syscall.SIGKILL}} {
		t.Run(variant.name, func(t *testing.T) {
			mock := openapitest.NewServer(t, testAK, testSK)
			for _, o := range []string{"ORDERA", "ORDERB", "ORDERC"} {
				addOrder(mock, o)
			}
			v := newVendor("ORDERB", "ORDERC")
			vendorSrv := newHTTPServer(t, v)
			defer v.release()
			key := "restart-test-key-0123"
			dataKey, _ := hex.DecodeString("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff")
			args := []string{"--listen", "127.0.0.1:0", "--db", "sqlite:" + filepath.Join(t.TempDir(), "kb.db"),
				"--key", key, "--data-key", b64(dataKey), "--ak", testAK, "--sk", testSK, "--openapi-url", mock.URL(),
				"--provisioner", "webhook", "--webhook-url", vendorSrv, "--webhook-secret", "vendor-secret",
				"--webhook-timeout", "5s", "--budget", "500ms", "--admin-token", adminToken}
			p := startServe(t, args...)

			callA := newSignedCall(t, key, newInstanceBody("ORDERA"))
			a := callA.send(t, p.base, key)
			if (a.ResultCode != "000000" && a.ResultCode != "000004") || a.InstanceID == "" {
				t.Fatalf("A: %+v", a)
			}
			// A's vendor answers at once; on a loaded machine the budget
			// may still run out, so wait for A to be ready.
			waitFor(t, "A provisioned", func() bool {
				return call(t, p.base, key, queryBody(a.InstanceID)).ResultCode == "000000"
			})
			b := call(t, p.base, key, newInstanceBody("ORDERB"))
			if b.ResultCode != "000004" || b.InstanceID == "" {
				t.Fatalf("B: %+v, want 000004 while the vendor holds it", b)
			}

			if variant.sig == syscall.SIGTERM {
				// C is in flight when SIGTERM arrives: it must still be answered.
				cDone := make(chan v2Reply, 1)
				callC := newSignedCall(t, key, newInstanceBody("ORDERC"))
				go func() { cDone <- callC.sendNoFatal(p.base) }()
				waitFor(t, "C at the vendor", func() bool { n, _ := v.deliveries("ORDERC"); return n > 0 })
				if code := p.stop(t, syscall.SIGTERM); code != 0 {
					t.Fatalf("exit %d after SIGTERM", code)
				}
				if c := <-cDone; c.ResultCode != "000004" || c.InstanceID == "" {
					t.Fatalf("in-flight C: %+v", c)
				}
			} else {
				// kill -9 while no provisioning attempt holds a lease, so the
				// restarted process may take the job at once.
				waitFor(t, "B's job waiting for a retry", func() bool {
					waiting := false
					for _, j := range jobsOf(t, p.base) {
						switch {
						case j.State == "running":
							return false // its lease would outlive the kill
						case j.State == "available" && time.Until(j.RunAt) > time.Second:
							waiting = true
						}
					}
					return waiting
				})
				_ = p.stop(t, syscall.SIGKILL)
			}

			p = startServe(t, args...)
			if again := call(t, p.base, key, newInstanceBody("ORDERA")); again.InstanceID != a.InstanceID || again.ResultCode != "000000" {
				t.Fatalf("repeat A after restart: %+v, want %s", again, a.InstanceID)
			}
			if replay := callA.send(t, p.base, key); replay.ResultCode != "000001" {
				t.Fatalf("replayed nonce after restart: %+v", replay)
			}
			if q := call(t, p.base, key, queryBody(b.InstanceID)); q.ResultCode == "000000" {
				t.Fatalf("B reported ready while the vendor still holds it: %+v", q)
			}
			v.release()
			waitFor(t, "B provisioned after restart", func() bool {
				return call(t, p.base, key, queryBody(b.InstanceID)).ResultCode == "000000"
			})
			if code := p.stop(t, syscall.SIGTERM); code != 0 {
				t.Fatalf("exit %d", code)
			}
		})
	}
}

func newHTTPServer(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// sendNoFatal is send for goroutines: failures come back as the result code.
func (c signedCall) sendNoFatal(base string) v2Reply {
	resp, err := http.Post(base+"/produce?"+c.query, "application/json;charset=utf8", bytes.NewReader(c.body))
	if err != nil {
		return v2Reply{ResultCode: "transport: " + err.Error()}
	}
	defer resp.Body.Close()
	var r v2Reply
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return v2Reply{ResultCode: "decode: " + err.Error()}
	}
	return r
}

// selfSigned writes a certificate and key for 127.0.0.1 and returns their
// paths and a pool trusting the certificate.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "koobridge test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	certFile = writeFile(t, "cert.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	keyFile = writeFile(t, "key.pem", string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})))
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestServeTLS: with a certificate koobridge speaks HTTPS, TLS 1.2 at least.
func TestServeTLS(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)
	p := startServe(t, "--dev", "--listen", "127.0.0.1:0", "--db", filepath.Join(t.TempDir(), "kb.db"),
		"--tls-cert", certFile, "--tls-key", keyFile)
	if !strings.Contains(p.output(), `"scheme":"https"`) {
		t.Fatalf("listening line does not say https:\n%s", p.output())
	}
	url := strings.Replace(p.base, "http://", "https://", 1) + "/healthz"
	tests := []struct {
		name       string
		maxVersion uint16
		ok         bool
	}{
		{"TLS 1.3", tls.VersionTLS13, true},
		{"TLS 1.2", tls.VersionTLS12, true},
		{"TLS 1.1 refused", tls.VersionTLS11, false},
	}
	for _, tt := range tests {
		client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs: pool, MinVersion: tls.VersionTLS10, MaxVersion: tt.maxVersion,
		}}}
		resp, err := client.Get(url)
		if (err == nil) != tt.ok {
			t.Errorf("%s: err = %v", tt.name, err)
		}
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("%s: status %d", tt.name, resp.StatusCode)
			}
		}
	}
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// TestReadyz: /readyz follows the database, /healthz does not.
func TestReadyz(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "kb.db"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := resolveArgs(t, append([]string{"--admin-token", adminToken}, base...), nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := isv.New(isv.Config{Keys: cfg.keys, DB: st, DataKey: cfg.dataKey, Orders: devOrders{now: time.Now}, Provisioner: provision.NewDemo("")})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(newServeMux(cfg, st, srv, prometheus.NewRegistry(), slog.New(slog.DiscardHandler)))
	defer ts.Close()

	if code, _ := httpGet(t, ts.URL+"/readyz", ""); code != 200 {
		t.Fatalf("readyz with an open database: %d", code)
	}
	if code, _ := httpGet(t, ts.URL+"/admin/api/jobs", adminToken); code != 200 {
		t.Fatalf("admin API: %d", code)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if code, _ := httpGet(t, ts.URL+"/readyz", ""); code != http.StatusServiceUnavailable {
		t.Fatalf("readyz with a closed database: %d", code)
	}
	if code, _ := httpGet(t, ts.URL+"/healthz", ""); code != 200 {
		t.Fatalf("healthz: %d", code)
	}
	// Any other path is the production interface's: a JSON 000002, signed.
	if code, body := httpGet(t, ts.URL+"/elsewhere", ""); code != 404 || !strings.Contains(body, `"resultCode":"000002"`) {
		t.Fatalf("unknown path: %d %s", code, body)
	}
}

// TestServeUsageAPI: serve mounts the usage API at its path, with its own
// answers below it (not the production interface's signed 000002), and
// only with a token.
func TestServeUsageAPI(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "kb.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const usageToken = "usage-token-0123456789"
	cfg, err := resolveArgs(t, append([]string{"--usage-token", usageToken}, base...), nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := isv.New(isv.Config{Keys: cfg.keys, DB: st, DataKey: cfg.dataKey, Orders: devOrders{now: time.Now},
		Provisioner: provision.NewDemo(""), Usage: cfg.usage})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(newServeMux(cfg, st, srv, prometheus.NewRegistry(), slog.New(slog.DiscardHandler)))
	defer ts.Close()
	post := func(path, token string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, ts.URL+path, strings.NewReader(`{"records":[{"idempotencyKey":"k","instanceId":"none","value":1,"time":"2026-01-01T00:00:00Z"}]}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := post(isv.UsagePath, usageToken); code != 200 || !strings.Contains(body, `"status":"rejected"`) || !strings.Contains(body, "unknown instance none") {
		t.Errorf("usage API: %d %s", code, body)
	}
	if code, body := post(isv.UsagePath, "wrong-token-0123456789"); code != 401 {
		t.Errorf("usage API with a wrong token: %d %s", code, body)
	}
	if code, body := post(isv.UsagePath+"/x", usageToken); code != 404 || !strings.Contains(body, "no such endpoint: "+isv.UsagePath+"/x") {
		t.Errorf("below the usage API: %d %s", code, body)
	}
}
