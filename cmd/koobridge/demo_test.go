package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
)

// TestDemoOnce runs "koobridge demo --once": a server on a fresh SQLite
// file and the emulator, over real HTTP on loopback, playing the whole
// lifecycle. Every call must have succeeded, and the table must show each
// scenario of the plan with the instance ending released.
func TestDemoOnce(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run([]string{"demo", "--once", "--listen", "127.0.0.1:0", "--emulator-listen", "127.0.0.1:0", "--app-listen", "127.0.0.1:0", "--conformance-openapi", "127.0.0.1:0", "--dir", t.TempDir()},
		strings.NewReader(""), &stdout, &stderr)
	out := stdout.String()
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, stderr.String())
	}
	if strings.Contains(out, "stopped early") {
		t.Fatalf("lifecycle stopped early:\n%s", out)
	}
	rows := regexp.MustCompile(`(?m)^(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+[0-9.]+ (?:ns|µs|ms|s)$`).FindAllStringSubmatch(out, -1)
	seen := map[string]bool{}
	for _, r := range rows[1:] { // rows[0] is the header
		scenario, call, result := r[1], r[2], r[3]
		seen[scenario] = true
		if result != "000000" && !((call == "newInstance" || call == "getLicenseAsync") && result == "000004") {
			t.Errorf("%s %s answered %s", scenario, call, result)
		}
	}
	for _, step := range demoPlan {
		for _, sc := range append([]string{"purchase"}, step.scenarios...) {
			if !seen[sc] {
				t.Errorf("scenario %s missing from the table:\n%s", sc, out)
			}
		}
	}
	for _, step := range demoLicensePlan {
		for _, sc := range step.scenarios {
			if !seen[sc] {
				t.Errorf("license scenario %s missing from the table:\n%s", sc, out)
			}
		}
	}
	// As the demo was started: here, the test binary.
	if !regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(shellQuote(os.Args[0])) + ` license activate --url http://127\.0\.0\.1:\d+ --license PL\w+$`).MatchString(out) {
		t.Errorf("output does not say how to activate the license code:\n%s", out)
	}
	if n := strings.Count(out, "released"); n < 2 {
		t.Errorf("want both subscriptions released, saw %d:\n%s", n, out)
	}
	if !regexp.MustCompile(`usage API +http://127\.0\.0\.1:\d+/api/v1/usage +\(bearer token: [0-9a-f]{32};`).MatchString(out) {
		t.Errorf("output does not give the usage API and its token:\n%s", out)
	}
	for _, want := range []string{"/admin/", "admin token: ", "emulator page", "sample app", "Sign in to the sample app: open http://127.0.0.1:"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestDemoOnceStopsEarly: with --once, a lifecycle that cannot finish (a
// scenario the emulator does not know) is exit status 1.
func TestDemoOnceStopsEarly(t *testing.T) {
	saved := demoPlan
	t.Cleanup(func() { demoPlan = saved })
	demoPlan = []demoStep{{protocol.ChargingPeriod, []string{"no-such-scenario"}}}
	var stdout, stderr bytes.Buffer
	code := run([]string{"demo", "--once", "--listen", "127.0.0.1:0", "--emulator-listen", "127.0.0.1:0", "--app-listen", "127.0.0.1:0", "--conformance-openapi", "127.0.0.1:0", "--dir", t.TempDir()},
		strings.NewReader(""), &stdout, &stderr)
	if code != exitRejected || !strings.Contains(stdout.String(), "the lifecycle stopped early") ||
		!strings.Contains(stderr.String(), "no-such-scenario") {
		t.Fatalf("exit %d, want 1 and the reason\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
}

// TestDemoCancelledAtStart: interrupted while the server starts, the demo
// returns nil, and only once the server and the emulator have let go of
// their addresses and of the database.
func TestDemoCancelledAtStart(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dir := t.TempDir()
	o := demoOptions{
		listen:             "127.0.0.1:" + strconv.Itoa(freePort(t)),
		emulatorListen:     "127.0.0.1:" + strconv.Itoa(freePort(t)),
		appListen:          "127.0.0.1:" + strconv.Itoa(freePort(t)),
		conformanceOpenAPI: "127.0.0.1:" + strconv.Itoa(freePort(t)),
		dir:                dir,
	}
	if err := runDemo(ctx, o, io.Discard, io.Discard); err != nil {
		t.Fatalf("runDemo after an interrupt: %v, want nil", err)
	}
	for _, addr := range []string{o.listen, o.emulatorListen, o.appListen, o.conformanceOpenAPI} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Errorf("%s still taken after runDemo returned: %v", addr, err)
			continue
		}
		ln.Close()
	}
	// Nothing holds the directory: it can be removed and made again.
	if err := os.RemoveAll(dir); err != nil {
		t.Error(err)
	}
}

// TestDemoServeConfig: the demo's server settings go through serve's own
// resolution, defaults and checks included.
func TestDemoServeConfig(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s, err := newDemoSecrets()
	if err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(t.TempDir(), "d.db")
	c, err := demoServeConfig(s, ln, db, "http://127.0.0.1:1", "http://127.0.0.1:2")
	if err != nil {
		t.Fatal(err)
	}
	if c.listener != ln || c.opts.listen != ln.Addr().String() || c.opts.db != "sqlite:"+db || len(c.keys.Basic) != 1 || c.keys.Basic[0] != s.key ||
		len(c.keys.General) != 1 || c.keys.General[0] != s.generalKey || s.generalKey == s.key ||
		c.sk != s.sk || c.adminToken != s.adminToken || len(c.dataKey) != 32 || c.openAPIURL != "http://127.0.0.1:1" || c.opts.provisioner != "demo" ||
		c.rsaKey != s.rsaKey {
		t.Errorf("resolved config: %+v", c)
	}
	// The server is the sample app's OpenID Connect provider, its issuer
	// its own URL.
	base := "http://" + ln.Addr().String()
	if c.sso == nil || c.sso.PublicURL != base || len(c.sso.Clients) != 1 {
		t.Fatalf("single sign-on: %+v", c.sso)
	}
	if cl := c.sso.Clients[0]; cl.ID != demoAppClientID || cl.Secret != s.appSecret ||
		!slices.Equal(cl.RedirectURIs, []string{"http://127.0.0.1:2/callback"}) ||
		!slices.Equal(cl.PostLogoutRedirectURIs, []string{"http://127.0.0.1:2/"}) || cl.InitiateLoginURI != "http://127.0.0.1:2/initiate-login" {
		t.Errorf("the sample app's registration: %+v", cl)
	}
	// serve's defaults, which the demo used to copy by hand.
	if c.opts.producePath != "/produce" || c.opts.jobWorkers != 4 || c.opts.budget.String() != "3s" || !c.opts.bodySign {
		t.Errorf("serve defaults not applied: %+v", c.opts)
	}
	// serve's checks apply too.
	if _, err := demoServeConfig(s, ln, db, "ftp://127.0.0.1:1", "http://127.0.0.1:2"); err == nil || !strings.Contains(err.Error(), "openapi-url") {
		t.Errorf("a bad Open API URL: %v, want serve's --openapi-url error", err)
	}
}

var (
	demoSignInRE = regexp.MustCompile(`Sign in to the sample app: open (http://\S+)/login\?tenant=(\S+)\n  user name (\S+), password (\S+) \(every user of the tenant has it; (\d+) of them are authorised\)`)
	demoAppRE    = regexp.MustCompile(`sample app +(http://\S+)/ `)
)

// TestDemoSignIn is the newcomer's single sign-on: run the demo, follow
// the sign-in link it prints with the user and password it prints, and
// land signed in on the sample app, through the server's OpenID Connect
// provider and the tenant's OneAccess the emulator plays. Then the demo
// stops cleanly on interrupt.
func TestDemoSignIn(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &lockedOutput{}
	done := make(chan error, 1)
	go func() {
		done <- runDemo(ctx, demoOptions{listen: "127.0.0.1:0", emulatorListen: "127.0.0.1:0", appListen: "127.0.0.1:0", conformanceOpenAPI: "127.0.0.1:0", dir: t.TempDir()}, out, io.Discard)
	}()
	var m []string
	waitFor(t, "the demo's sign-in line", func() bool {
		select {
		case err := <-done:
			t.Fatalf("the demo stopped: %v\n%s", err, out.String())
		default:
		}
		m = demoSignInRE.FindStringSubmatch(out.String())
		return m != nil
	})
	appURL, tenantID, userName, password := m[1], m[2], m[3], m[4]
	if n, _ := strconv.Atoi(m[5]); n < 1 {
		t.Errorf("the demo says %s users are authorised", m[5])
	}
	if a := demoAppRE.FindStringSubmatch(out.String()); a == nil || a[1] != appURL {
		t.Errorf("the sample app's URL line: %v, want %s", a, appURL)
	}

	b := newBrowser(t)
	form := b.get(appURL + "/login?tenant=" + tenantID)
	if !form.isLoginForm() || !strings.Contains(form.url.Path, "/oneaccess/") {
		t.Fatalf("the demo's sign-in link did not reach OneAccess's form: %d at %s (hops %v)", form.status, form.url, form.hops)
	}
	p := b.signIn(form, userName, password)
	s, ok := whoIsSignedIn(t, p)
	if !ok || p.url.String() != appURL+"/" {
		t.Fatalf("not signed in: %d at %s (hops %v):\n%s", p.status, p.url, p.hops, p.body)
	}
	if !strings.HasPrefix(s.sub, userName+"@") || s.tenant != tenantID || s.userinfo != "ok" {
		t.Errorf("signed in as %+v, want %s@… of tenant %s", s, userName, tenantID)
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("runDemo after an interrupt: %v", err)
	}
}

var (
	demoConformanceRE = regexp.MustCompile(`(?m)^  ((?:go run )?\S+ conformance .*)$`)
	demoAdminRE       = regexp.MustCompile(`server console +(http://\S+)/admin/ +\(admin token: (\S+)\)`)
	demoEmulatorRE    = regexp.MustCompile(`emulator page +(http://\S+)/`)
	demoKeysRE        = regexp.MustCompile(`(?m)^  key +(\S+) .*\n  general key +(\S+) .*\n  RSA public key +(\S+) .*\n  Open API +(http://\S+) +\(AK (\S+), SK (\S+)\)\n +Query Order for an order the emulator did not place goes to (\S+)\n`)
	demoCasesRE       = regexp.MustCompile(`(?m)^(\d+) cases: (\d+) passed, 0 failed, 0 skipped$`)
)

// runPrinted runs a command line the demo printed, exactly: its first
// word is the program, the rest its arguments, as a shell would split
// them. It returns the exit code and the output.
func runPrinted(t *testing.T, line string) (code int, stdout, stderr string) {
	t.Helper()
	args, err := splitCommand(line)
	if err != nil {
		t.Fatalf("the printed command %q: %v", line, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Env = cleanEnv()
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("%s: %v", line, err)
	}
	return cmd.ProcessState.ExitCode(), out.String(), errOut.String()
}

// TestDemoConformance is the newcomer's next step after the demo: run
// the conformance commands the demo prints, exactly as printed (the demo
// started as the koobridge binary, so they start with it), against the
// running demo. Every case of both must pass: the first the V2 profiles,
// the second every profile the demo says passes, the Kit with the public
// key file it wrote and single sign-on to its sample app. The server's
// Query Order for the suite's orders must reach the suite, no instance may
// be left provisioning, and the demo's own emulator must not have been
// asked about orders it never placed. The profiles it says do not pass
// indeed do not, for the reason it gives.
func TestDemoConformance(t *testing.T) {
	bin := koobridgeBinary(t)
	for attempt := range portRetries {
		ctx, cancel := context.WithCancel(context.Background())
		out, errOut := &lockedOutput{}, &lockedOutput{}
		done := make(chan error, 1)
		go func() {
			done <- runDemo(ctx, demoOptions{listen: "127.0.0.1:0", emulatorListen: "127.0.0.1:0", appListen: "127.0.0.1:0",
				conformanceOpenAPI: "127.0.0.1:0", dir: t.TempDir(), program: bin}, out, errOut)
		}()
		stop := func() {
			t.Helper()
			cancel()
			if err := <-done; err != nil {
				t.Errorf("runDemo after an interrupt: %v", err)
			}
		}
		var m [][]string
		waitFor(t, "the demo's conformance commands", func() bool {
			select {
			case err := <-done:
				t.Fatalf("the demo stopped: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errOut.String())
			default:
			}
			m = demoConformanceRE.FindAllStringSubmatch(out.String(), -1)
			return len(m) == 2 && strings.Contains(out.String(), "do not pass against the demo")
		})
		printed := out.String()
		keys := demoKeysRE.FindStringSubmatch(printed)
		if keys == nil {
			stop()
			t.Fatalf("the demo does not print its keys, public key, Open API and AK/SK:\n%s", printed)
		}
		if e := demoEmulatorRE.FindStringSubmatch(printed); e == nil || e[1] != keys[4] {
			t.Errorf("the Open API printed, %s, is not the emulator's address (%v)", keys[4], e)
		}
		if pem, err := os.ReadFile(keys[3]); err != nil || !strings.HasPrefix(string(pem), "-----BEGIN PUBLIC KEY-----\n") {
			t.Errorf("the public key file printed, %s: %v\n%s", keys[3], err, pem)
		}
		first, every := m[0][1], m[1][1]
		for _, want := range []string{bin + " conformance ", "--key " + keys[1], "--general-key " + keys[2], "--ak " + keys[5], "--sk " + keys[6], "--openapi-listen " + keys[7]} {
			if !strings.Contains(first, want) {
				t.Errorf("the printed command lacks %q: %s", want, first)
			}
		}
		if !strings.HasPrefix(every, first+" --profile "+demoProfiles+" --rsa-public-key-file "+keys[3]+" ") {
			t.Errorf("the second command is not the first with every profile and the public key: %s", every)
		}
		code, stdout, stderr := runPrinted(t, first)
		if inUse(code, stderr) && attempt < portRetries-1 {
			stop() // another process took the address meanwhile: again, on another
			continue
		}
		if code != 0 {
			stop()
			t.Fatalf("%s: exit %d\nstdout:\n%s\nstderr:\n%s\ndemo stderr:\n%s", first, code, stdout, stderr, errOut.String())
		}
		if !strings.Contains(stdout, strconv.Itoa(allCases)+" cases: "+strconv.Itoa(allCases)+" passed, 0 failed") || strings.Contains(stdout, "FAIL") {
			t.Errorf("not every case passed:\n%s", stdout)
		}
		if c := openAPICallsRE.FindStringSubmatch(stdout); c == nil || c[1] == "0" {
			t.Errorf("the server's Query Order never reached the suite:\n%s", stdout)
		}

		code, stdout, stderr = runPrinted(t, every)
		if code != 0 {
			stop()
			t.Fatalf("%s: exit %d\nstdout:\n%s\nstderr:\n%s\ndemo stderr:\n%s", every, code, stdout, stderr, errOut.String())
		}
		if c := demoCasesRE.FindStringSubmatch(stdout); c == nil || c[1] != c[2] || strings.Contains(stdout, "FAIL") {
			t.Errorf("not every case passed:\n%s", stdout)
		}
		for _, profile := range strings.Split(demoProfiles, ",")[1:] {
			if !strings.Contains(stdout, "\nPASS  "+profile+"/") {
				t.Errorf("no case of profile %s passed:\n%s", profile, stdout)
			}
		}

		// What the demo says does not pass: the license upload never
		// reaches the suite.
		code, stdout, _ = runPrinted(t, first+" --profile online-license")
		if code != exitRejected || !strings.Contains(stdout, "rules broken: license-upload") {
			t.Errorf("--profile online-license against the demo: exit %d, want 1 for the license upload, as the demo says:\n%s", code, stdout)
		}

		a := demoAdminRE.FindStringSubmatch(printed)
		if a == nil {
			stop()
			t.Fatalf("no console line:\n%s", printed)
		}
		status, body := httpGet(t, a[1]+"/admin/api/instances?status=provisioning", a[2])
		var stuck struct {
			Instances []struct {
				ID, OrderID, LastError string
			}
		}
		if err := json.Unmarshal([]byte(body), &stuck); status != 200 || err != nil {
			t.Errorf("admin API: %d %v %s", status, err, body)
		}
		for _, in := range stuck.Instances {
			t.Errorf("instance %s of order %s left provisioning: %s", in.ID, in.OrderID, in.LastError)
		}
		// Every Query Order the demo's emulator answered was about an order
		// it placed: none came to it for the suite's orders.
		status, body = httpGet(t, keys[4]+"/api/emulator/openapi-requests", "")
		var reqs []struct {
			Path, Query string
			Status      int
		}
		if err := json.Unmarshal([]byte(body), &reqs); status != 200 || err != nil {
			t.Errorf("emulator API: %d %v %s", status, err, body)
		}
		for _, r := range reqs {
			if strings.HasSuffix(r.Path, "/order/query") && r.Status != 200 {
				t.Errorf("the demo's emulator answered %d to Query Order ?%s", r.Status, r.Query)
			}
		}
		stop()
		return
	}
}

// TestDemoProgram: the commands the demo prints run koobridge the way the
// demo was started: "go run" with the package as seen from the current
// directory when it is go run's temporary binary, else the program as
// typed, quoted for a shell when it must be.
func TestDemoProgram(t *testing.T) {
	// Where go 1.26 runs it from: the build cache, or a work directory.
	goRun := "/root/.cache/go-build/2f/2f6b7017712b5e1ce4aa1ce800c16e1633235e570baee9a9bf4fa112566fe85b-d/koobridge"
	goRunWork := filepath.Join(os.TempDir(), "go-build3928890524", "b001", "exe", "koobridge")
	src := "/home/me/koobridge/cmd/koobridge"
	tests := []struct{ name, arg0, cwd, src, want string }{
		{"on the PATH", "koobridge", "/home/me", src, "koobridge"},
		{"a relative path", "./koobridge", "/home/me", src, "./koobridge"},
		{"a path with a space", "/opt/my tools/koobridge", "/home/me", src, "'/opt/my tools/koobridge'"},
		{"an exe directory, not go run's", "/opt/exe/koobridge", "/home/me", src, "/opt/exe/koobridge"},
		{"go run from the clone's top", goRun, "/home/me/koobridge", src, "go run ./cmd/koobridge"},
		{"go run from the package", goRun, "/home/me/koobridge/cmd/koobridge", src, "go run ."},
		{"go run from a sibling", goRun, "/home/me/koobridge/docs", src, "go run ../cmd/koobridge"},
		{"go run -trimpath", goRun, "/home/me/koobridge", "github.com/koobridge/koobridge/cmd/koobridge", "go run ./cmd/koobridge"},
		{"go run, not cached", goRunWork, "/home/me/koobridge", src, "go run ./cmd/koobridge"},
		{"a cache-like directory of another name", "/srv/2f/2f6b-d/koobridge", "/home/me", src, "/srv/2f/2f6b-d/koobridge"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := demoProgramFor(tt.arg0, tt.cwd, tt.src); got != tt.want {
				t.Errorf("demoProgramFor(%q, %q, %q) = %q, want %q", tt.arg0, tt.cwd, tt.src, got, tt.want)
			}
		})
	}
}

// TestDemoGoRun is the README's first step: "go run ./cmd/koobridge demo"
// in the clone. What the demo prints to run next (the license activation,
// the conformance commands) starts with "go run ./cmd/koobridge", which
// works from the same directory, and says how to get koobridge on the
// PATH instead.
func TestDemoGoRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the demo with go run")
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	demo := exec.CommandContext(ctx, "go", "run", "./cmd/koobridge", "demo", "--once", "--listen", "127.0.0.1:0", "--emulator-listen", "127.0.0.1:0",
		"--app-listen", "127.0.0.1:0", "--conformance-openapi", "127.0.0.1:0", "--dir", t.TempDir())
	demo.Dir, demo.Env = root, cleanEnv()
	var stdout, stderr bytes.Buffer
	demo.Stdout, demo.Stderr = &stdout, &stderr
	if err := demo.Run(); err != nil {
		t.Fatalf("go run ./cmd/koobridge demo --once: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	out := stdout.String()
	if !regexp.MustCompile(`(?m)^  go run \./cmd/koobridge license activate --url http://\S+ --license \S+$`).MatchString(out) {
		t.Errorf("the activation line does not run koobridge as the demo was run:\n%s", out)
	}
	m := demoConformanceRE.FindAllStringSubmatch(out, -1)
	if len(m) != 2 || !strings.HasPrefix(m[0][1], "go run ./cmd/koobridge conformance --target ") || !strings.HasPrefix(m[1][1], m[0][1]+" --profile ") {
		t.Fatalf("the conformance commands do not run koobridge as the demo was run: %q\n%s", m, out)
	}
	if !strings.Contains(out, "\n(go install ./cmd/koobridge puts koobridge on your PATH: then koobridge conformance … does the same.)\n") {
		t.Errorf("no word on go install:\n%s", out)
	}
	// The printed program runs from where the demo ran: its conformance
	// command, asked for its help (the demo has stopped).
	prefix, _, _ := strings.Cut(m[0][1], " --target ")
	sh := exec.CommandContext(ctx, "bash", "-c", prefix+" --help")
	sh.Dir, sh.Env = root, cleanEnv()
	if help, err := sh.CombinedOutput(); err != nil || !strings.Contains(string(help), "--openapi-listen") {
		t.Errorf("%s --help in %s: %v\n%s", prefix, root, err, help)
	}
}

// TestDemoOpenAPIRouting: the demo's Open API sends Query Order for an
// order its emulator placed to the emulator, any other to the suite's
// address as it came (Host, headers, query), and to the emulator when
// nothing listens there; every other request goes to the emulator.
func TestDemoOpenAPIRouting(t *testing.T) {
	type seen struct{ who, host, auth, uri string }
	got := make(chan seen, 1)
	record := func(who string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got <- seen{who, r.Host, r.Header.Get("Authorization"), r.URL.RequestURI()}
			w.Header().Set("X-Who", who)
			w.WriteHeader(http.StatusTeapot)
		})
	}
	suite := httptest.NewServer(record("suite"))
	defer suite.Close()
	gone := "127.0.0.1:" + strconv.Itoa(freePort(t)) // nothing listens
	known := func(id string) bool { return id == "CSKNOWN" }

	const qo = "/api/mkp-openapi-public/global/v1/order/query"
	tests := []struct {
		name, suiteAddr, method, uri, want string
	}{
		{"an order the emulator placed", suite.Listener.Addr().String(), "GET", qo + "?orderId=CSKNOWN", "emulator"},
		{"another order", suite.Listener.Addr().String(), "GET", qo + "?orderId=CSOTHER&orderLineId=CSOTHER-000001", "suite"},
		{"another order, no suite running", gone, "GET", qo + "?orderId=CSOTHER", "emulator"},
		{"a usage push", suite.Listener.Addr().String(), "POST", "/api/mkp-openapi-public/global/v1/metering/usage", "emulator"},
		{"the emulator's page", suite.Listener.Addr().String(), "GET", "/", "emulator"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			front := httptest.NewServer(newDemoOpenAPI(record("emulator"), known, tt.suiteAddr, slog.New(slog.DiscardHandler)))
			defer front.Close()
			req, _ := http.NewRequest(tt.method, front.URL+tt.uri, nil)
			req.Header.Set("Authorization", "SDK-HMAC-SHA256 Access=AK, SignedHeaders=host;x-sdk-date, Signature=00")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			s := <-got
			if s.who != tt.want || resp.Header.Get("X-Who") != tt.want || resp.StatusCode != http.StatusTeapot {
				t.Fatalf("answered by %s (header %q, %d), want %s", s.who, resp.Header.Get("X-Who"), resp.StatusCode, tt.want)
			}
			// The signature covers the host and the query: both arrive as sent.
			if s.host != front.Listener.Addr().String() || s.uri != tt.uri || s.auth != req.Header.Get("Authorization") {
				t.Errorf("arrived as host %q, %q, Authorization %q; sent to %s as %q", s.host, s.uri, s.auth, front.Listener.Addr(), tt.uri)
			}
		})
	}
}

// TestDemoOpenAPIHopHeaders: the demo forwards a Query Order to the suite
// as a proxy must (RFC 9110 §7.6.1): without the headers its Connection
// header names, both ways, and without Connection itself, while every
// end-to-end header arrives, and the suite still verifies the APIG
// signature of the server's request.
func TestDemoOpenAPIHopHeaders(t *testing.T) {
	const ak, sk = "hop-ak", "hop-sk-0123456789"
	type seen struct {
		header http.Header
		err    error
	}
	got := make(chan seen, 1)
	// The suite's side written by hand: net/http's server would replace a
	// Connection header naming X-Answer-Hop by its own "close" (and its
	// client drops a Connection header that holds "close", names and all).
	suite, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer suite.Close()
	go func() {
		c, err := suite.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			got <- seen{nil, err}
			return
		}
		_, err = sign.VerifyAPIG(r, nil, func(a string) (string, bool) { return sk, a == ak }, time.Now(), sign.APIGMaxSkew)
		got <- seen{r.Header.Clone(), err}
		_, _ = io.WriteString(c, "HTTP/1.1 418 I'm a teapot\r\nConnection: X-Answer-Hop\r\n"+
			"X-Answer-Hop: for the suite's side only\r\nX-Answer: for the server\r\nContent-Length: 0\r\n\r\n")
	}()
	emulator := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the emulator got %s", r.URL)
		w.WriteHeader(http.StatusInternalServerError)
	})
	front := httptest.NewServer(newDemoOpenAPI(emulator, func(string) bool { return false }, suite.Addr().String(), slog.New(slog.DiscardHandler)))
	defer front.Close()

	req, err := http.NewRequest(http.MethodGet, front.URL+"/api/mkp-openapi-public/global/v1/order/query?orderId=CSHOP", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-End", "to the suite")
	if err := (sign.APIGSigner{AK: ak, SK: sk}).Sign(req, nil, time.Now()); err != nil {
		t.Fatal(err)
	}
	// What a hop on the server's side adds for itself, after signing.
	req.Header.Set("Connection", "X-Hop, Keep-Alive")
	req.Header.Set("X-Hop", "for the first hop only")
	req.Header.Set("Keep-Alive", "timeout=5")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	s := <-got
	if s.err != nil {
		t.Errorf("the suite could not verify the forwarded signature: %v", s.err)
	}
	for _, h := range []string{"X-Hop", "Keep-Alive"} {
		if v := s.header.Values(h); len(v) > 0 {
			t.Errorf("the suite got %s: %q", h, v)
		}
	}
	// The forwarder's own hop: one request per connection.
	if v := s.header.Values("Connection"); len(v) > 1 || len(v) == 1 && v[0] != "close" {
		t.Errorf("the suite got Connection: %q, want the forwarder's own close", v)
	}
	if s.header.Get("X-End") != "to the suite" || !strings.HasPrefix(s.header.Get("Authorization"), "SDK-HMAC-SHA256 ") {
		t.Errorf("end-to-end headers lost: %v", s.header)
	}
	if resp.StatusCode != http.StatusTeapot || resp.Header.Get("X-Answer") != "for the server" {
		t.Errorf("the answer: %d %v", resp.StatusCode, resp.Header)
	}
	if v := resp.Header.Values("X-Answer-Hop"); len(v) > 0 {
		t.Errorf("the server got the suite's hop header X-Answer-Hop: %q", v)
	}
}

// TestDemoConformanceAddr: the address the demo prints for the suite is
// free when printed: the one given if it is, else, for port 0 or a port
// already taken, a free port of the same host, the host kept as given;
// any other address that cannot be listened on (a port out of range, a
// host that is not this machine's) and a malformed one are usage errors.
func TestDemoConformanceAddr(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	free := "127.0.0.1:" + strconv.Itoa(freePort(t))
	tests := []struct {
		name, addr string
		host       string // the host printed
		same       bool   // the address given is the one printed
		err        string // the usage error says this
	}{
		{"a free address", free, "127.0.0.1", true, ""},
		{"port 0", "127.0.0.1:0", "127.0.0.1", false, ""},
		{"a taken port", taken.Addr().String(), "127.0.0.1", false, ""},
		{"every IPv4 address, port 0", "0.0.0.0:0", "0.0.0.0", false, ""},
		{"a host name, port 0", "localhost:0", "localhost", false, ""},
		{"a port out of range", "127.0.0.1:99999", "", false, "invalid port"},
		{"a host not of this machine", "192.0.2.1:8091", "", false, "192.0.2.1:8091"},
		{"no port", "127.0.0.1", "", false, "want host:port"},
		{"empty", "", "", false, "want host:port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := demoConformanceAddr(tt.addr)
			if tt.err != "" {
				var u *exitError
				if !errors.As(err, &u) || u.code != exitUsage || !strings.Contains(err.Error(), "--conformance-openapi") || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got %q, %v; want a usage error naming the flag and saying %q", got, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			host, port, err := net.SplitHostPort(got)
			if err != nil || (got == tt.addr) != tt.same || port == "0" || host != tt.host {
				t.Fatalf("got %q for %q, want host %s", got, tt.addr, tt.host)
			}
			ln, err := net.Listen("tcp", got)
			if err != nil {
				t.Fatalf("the address printed, %s, is not free: %v", got, err)
			}
			ln.Close()
		})
	}
}
