package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/koobridge/koobridge/cmd/koobridge/internal/ssoapp"
	"github.com/koobridge/koobridge/emulator"
	"github.com/koobridge/koobridge/internal/durationtext"
	"github.com/koobridge/koobridge/internal/seal"
	"github.com/koobridge/koobridge/isv"
	"github.com/koobridge/koobridge/protocol"
)

// demoOptions are the flags of "koobridge demo".
type demoOptions struct {
	listen         string
	emulatorListen string
	appListen      string
	// conformanceOpenAPI is where a conformance run against the demo
	// serves its mocked Open API (its --openapi-listen): the server's
	// Query Order for an order the demo's emulator did not place goes
	// there.
	conformanceOpenAPI string
	dir                string
	once               bool
	// program is how the printed commands run koobridge: as the demo
	// was started (demoProgram); "" is "koobridge".
	program string
}

// demoStep is one purchase of the demo: a product of the charging mode,
// then the emulator's scenarios on it, in order.
type demoStep struct {
	mode      string
	scenarios []string
}

// demoPlan is the demo's lifecycle: what KooGallery does to one monthly
// subscription and one pay-per-use one, in order. A variable so a test can
// play a plan that cannot finish.
var demoPlan = []demoStep{
	{protocol.ChargingPeriod, []string{"query", "renewal", "upgrade", "expire", "unfreeze", "expire", "release"}},
	{protocol.ChargingOnDemand, []string{"arrears-freeze", "arrears-unfreeze", "unsubscribe"}},
}

// demoJointProduct and demoJointScenarios bind a joint-operation product
// to an enterprise and authorise its users, so that they can sign in to
// the sample app through koobridge and the tenant's OneAccess.
const demoJointProduct = "OFFI-EMU-JOINT"

var demoJointScenarios = []string{"bind", "authorize-users"}

// demoLicensePlan is what KooGallery does to license products in the demo:
// a license-code product renewed, frozen and unfrozen (its code left for
// the newcomer to activate through the license service), and an
// online-license product whose buyer asks for a license, which the demo
// provisioner generates and the server uploads to the emulator.
var demoLicensePlan = []struct {
	product   string
	scenarios []string
}{
	{emulator.LicenseProductID, []string{"renewal", "expire", "unfreeze"}},
	{emulator.OnlineLicenseProductID, []string{"request-license"}},
}

// demoAppClientID is the sample app's client id at koobridge's OpenID
// Connect provider in the demo.
const demoAppClientID = "koobridge-demo-app"

func newDemoCommand() *cobra.Command {
	var o demoOptions
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a server, the KooGallery emulator, a whole purchase lifecycle and a single sign-on sample app in one process",
		Long: `Start koobridge serve on a fresh SQLite file with the demo provisioner, start the
KooGallery emulator pointed at it (the server's Open API calls go to the
emulator too), play a purchase lifecycle, print what happened, then keep them
running and print their URLs: the server's console (log in with the printed
admin token) and the emulator's page, where you can buy and fire scenarios
yourself. The keys, the Open API AK/SK and the admin token are made up for
this run and printed, with the exact "koobridge conformance" commands that
check the running server (written as the demo was started: "go run
./cmd/koobridge conformance …" after "go run ./cmd/koobridge demo"): the
suite serves its mocked Open API on --conformance-openapi, and the server's
Query Order for an order the demo's emulator did not place goes there. The
public key of the app credential is written to koobridge-demo-rsa.pub.pem in
the demo's directory, for the kit profile; profiles online-license and
metering do not pass against the demo (see docs/conformance.md). With
--once, the exit status is 1 when the lifecycle did not finish.

For single sign-on, the demo also binds a joint-operation product to an
enterprise (the emulator plays its OneAccess), authorises its users, and
runs the sample app of examples/sso-app (the same relying party code) as an
OpenID Connect client of the server; it prints the app's URL and a user
name and password to sign in with.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			o.program = demoProgram(os.Args[0])
			return runDemo(ctx, o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.listen, "listen", "127.0.0.1:8080", "address of the server (production interface and console)")
	f.StringVar(&o.emulatorListen, "emulator-listen", "127.0.0.1:8090", "address of the emulator (web page, JSON API, mocked Open API, the tenants' OneAccess)")
	f.StringVar(&o.appListen, "app-listen", "127.0.0.1:8070", "address of the single sign-on sample app")
	f.StringVar(&o.conformanceOpenAPI, "conformance-openapi", "127.0.0.1:8091", "the --openapi-listen of a conformance run against the demo: the server's Query Order for an order the demo's emulator did not place goes there (port 0, or a port already taken: a free port of the host, chosen at start and printed; any other address that cannot be listened on is an error)")
	f.StringVar(&o.dir, "dir", "", "directory for the demo database (default: a new temporary directory, removed at exit)")
	f.BoolVar(&o.once, "once", false, "stop after printing the lifecycle instead of serving until interrupted")
	return cmd
}

// demoSecrets are the made-up credentials of one demo run.
type demoSecrets struct {
	key, ak, sk, adminToken string
	// generalKey is bound to the general interfaces (order notification),
	// as Seller Center binds a key per interface type; key signs the rest.
	generalKey string
	usageToken string // of the usage API
	dataKey    string // base64, as --data-key takes it
	appSecret  string // the sample app's client secret
	rsaKey     *rsa.PrivateKey
}

func newDemoSecrets() (demoSecrets, error) {
	var s demoSecrets
	for _, p := range []*string{&s.key, &s.generalKey, &s.ak, &s.sk, &s.adminToken, &s.usageToken, &s.appSecret} {
		b := make([]byte, 16)
		if _, err := rand.Read(b); err != nil {
			return s, fmt.Errorf("demo: random: %w", err)
		}
		*p = hex.EncodeToString(b)
	}
	var err error
	if s.dataKey, err = seal.GenerateKey(); err != nil {
		return s, fmt.Errorf("demo: data key: %w", err)
	}
	// The app credential's key pair: KooGallery (the emulator) encrypts
	// applicationSync's client secret to the public key. 3072 bits, as
	// Seller Center asks.
	if s.rsaKey, err = rsa.GenerateKey(rand.Reader, 3072); err != nil {
		return s, fmt.Errorf("demo: RSA key: %w", err)
	}
	return s, nil
}

func runDemo(ctx context.Context, o demoOptions, stdout, stderr io.Writer) error {
	secrets, err := newDemoSecrets()
	if err != nil {
		return err
	}
	dir := o.dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "koobridge-demo-"); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		defer os.RemoveAll(dir)
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	dbPath := filepath.Join(dir, "koobridge-demo.db")
	for _, suffix := range []string{"", "-wal", "-shm"} { // a fresh file every run
		if err := os.Remove(dbPath + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("demo: %w", err)
		}
	}
	// The app credential's public key, for a tool that plays the Kit
	// (the conformance suite's kit profile, koobridge emulate).
	pubPath := filepath.Join(dir, demoPublicKeyFile)
	if err := writePublicKeyPEM(pubPath, &secrets.rsaKey.PublicKey); err != nil {
		return err
	}
	program := cmp.Or(o.program, "koobridge")

	serverLn, err := net.Listen("tcp", o.listen)
	if err != nil {
		return usageErrorf("--listen %s: %v", o.listen, err)
	}
	emuLn, err := net.Listen("tcp", o.emulatorListen)
	if err != nil {
		serverLn.Close()
		return usageErrorf("--emulator-listen %s: %v", o.emulatorListen, err)
	}
	appLn, err := net.Listen("tcp", o.appListen)
	if err != nil {
		serverLn.Close()
		emuLn.Close()
		return usageErrorf("--app-listen %s: %v", o.appListen, err)
	}
	suiteAddr, err := demoConformanceAddr(o.conformanceOpenAPI)
	if err != nil {
		serverLn.Close()
		emuLn.Close()
		appLn.Close()
		return err
	}
	closeListeners := func() {
		serverLn.Close()
		emuLn.Close()
		appLn.Close()
	}
	serverURL := "http://" + serverLn.Addr().String()
	emuURL := "http://" + emuLn.Addr().String()
	appURL := "http://" + appLn.Addr().String()

	cfg, err := demoServeConfig(secrets, serverLn, dbPath, emuURL, appURL)
	if err != nil {
		closeListeners()
		return err
	}
	em, err := emulator.New(emulator.Config{
		Target: serverURL + cfg.opts.producePath, Key: secrets.key, GeneralKey: secrets.generalKey, AK: secrets.ak, SK: secrets.sk,
		PollInterval: time.Second, SellerPublicKey: &secrets.rsaKey.PublicKey, PublicURL: emuURL,
	})
	if err != nil {
		closeListeners()
		return fmt.Errorf("demo: emulator: %w", err)
	}
	defer em.Close()
	app, err := ssoapp.New(ssoapp.Config{
		Issuer: serverURL, ClientID: demoAppClientID, ClientSecret: secrets.appSecret, BaseURL: appURL,
		Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelError})),
	})
	if err != nil {
		closeListeners()
		return fmt.Errorf("demo: sample app: %w", err)
	}

	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	serverDone := make(chan error, 1)
	serverStopped := make(chan struct{}) // closed once serverDone has its error
	go func() {
		serverDone <- serve(ctx, cfg, stderr)
		close(serverStopped)
	}()
	// The emulator and the sample app: one serveAll, so one error
	// channel stops them both.
	emuDone := make(chan error, 1)
	errLog := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	emuSrv := &http.Server{Handler: newDemoOpenAPI(em.Handler(), em.KnowsOrder, suiteAddr, errLog), ReadHeaderTimeout: 10 * time.Second}
	appSrv := &http.Server{Handler: app, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		emuDone <- serveAll(ctx, []*http.Server{emuSrv, appSrv}, []net.Listener{emuLn, appLn})
	}()
	if err := waitHealthy(ctx, serverURL+"/healthz", serverStopped); err != nil {
		// Both must be gone before the deferred RemoveAll deletes the
		// directory under the open database. serve may stop before it
		// takes the listener: close both listeners, a second Close is
		// harmless.
		cancel()
		serverErr := <-serverDone
		<-emuDone
		closeListeners()
		switch {
		case parent.Err() != nil:
			return nil // interrupted while starting: not a failure
		case serverErr != nil:
			return fmt.Errorf("demo: server stopped: %w", serverErr)
		}
		return err
	}

	fmt.Fprintf(stdout, "koobridge demo: server %s, emulator %s, database %s\n\n", serverURL, emuURL, dbPath)
	user, licenseCode, playErr := playDemo(ctx, em, stdout)
	if playErr != nil {
		fmt.Fprintf(stdout, "\nthe lifecycle stopped early: %v\n", playErr)
	}
	running := "They keep running (Ctrl-C stops them):"
	if o.once {
		running = "With --once they stop now; without it they keep running at:"
	}
	fmt.Fprintf(stdout, `
%s
  server console   %s/admin/   (admin token: %s)
  emulator page    %s/
  production URL   %s%s   (key: %s)
  sample app       %s/   (single sign-on through the server and the tenant's OneAccess)
  usage API        %s%s   (bearer token: %s; docs/metering.md)
`, running, serverURL, secrets.adminToken, emuURL, serverURL, cfg.opts.producePath, secrets.key, appURL, serverURL, isv.UsagePath, secrets.usageToken)
	if user.userName != "" {
		fmt.Fprintf(stdout, `
Sign in to the sample app: open %s/login?tenant=%s
  user name %s, password %s (every user of the tenant has it; %d of them are authorised)
`, appURL, user.tenantID, user.userName, em.Config().UserPassword, user.authorised)
	}
	if licenseCode != "" {
		fmt.Fprintf(stdout, `
Activate the license code as the vendor's software in the field would:
  %s license activate --url %s --license %s
`, program, serverURL, licenseCode)
	}
	printDemoConformance(stdout, demoTools{
		program: program, producePath: cfg.opts.producePath, serverURL: serverURL, emuURL: emuURL, appURL: appURL, suiteAddr: suiteAddr, publicKey: pubPath,
	}, secrets)
	if o.once {
		cancel()
	}
	select {
	case <-ctx.Done():
	case err := <-serverDone:
		cancel()
		<-emuDone
		return fmt.Errorf("demo: server stopped: %w", err)
	case err := <-emuDone:
		cancel()
		<-serverDone
		return fmt.Errorf("demo: emulator stopped: %w", err)
	}
	cancel()
	err = <-serverDone
	if emuErr := <-emuDone; err == nil {
		err = emuErr
	}
	if err == nil && o.once && playErr != nil {
		// A script running the demo once learns from the exit status.
		return rejectedf("demo: the lifecycle stopped early: %v", playErr)
	}
	return err
}

// demoServeConfig resolves the demo's settings as "koobridge serve" does
// its flags (resolveServeConfig, with no environment and no file), so
// every serve default and check applies: the demo provisioner, the
// made-up secrets, the emulator as the Open API, and only errors logged.
// The server then serves on ln.
//
// The server is also the OpenID Connect provider of the sample app at
// appURL, its issuer the server's own URL, and decrypts the Kit's client
// secrets with the demo's RSA key.
func demoServeConfig(s demoSecrets, ln net.Listener, dbPath, openAPIURL, appURL string) (*serveConfig, error) {
	var o serveOptions
	cmd := &cobra.Command{Use: "demo"}
	o.register(cmd.Flags())
	for _, f := range [][2]string{
		{"listen", ln.Addr().String()},
		{"db", "sqlite:" + dbPath},
		{"key", s.key},
		{"general-key", s.generalKey},
		{"ak", s.ak},
		{"sk", s.sk},
		{"openapi-url", openAPIURL},
		{"admin-token", s.adminToken},
		{"usage-token", s.usageToken},
		{"data-key", s.dataKey},
		{"provisioner", "demo"},
		{"log-level", "error"},
		{"public-url", "http://" + ln.Addr().String()},
		{"sso-client-id", demoAppClientID},
		{"sso-client-secret", s.appSecret},
		{"sso-redirect-uri", appURL + "/callback"},
		{"sso-post-logout-redirect-uri", appURL + "/"},
		{"sso-initiate-login-uri", appURL + "/initiate-login"},
	} {
		if err := cmd.Flags().Set(f[0], f[1]); err != nil {
			return nil, fmt.Errorf("demo: --%s: %w", f[0], err)
		}
	}
	c, err := resolveServeConfig(cmd, &o, func(string) string { return "" })
	if err != nil {
		return nil, fmt.Errorf("demo: server settings: %w", err)
	}
	c.listener = ln
	c.rsaKey = s.rsaKey
	return c, nil
}

// demoConformanceAddr checks --conformance-openapi and makes sure it is
// free now, so that the printed conformance command can listen there. Port
// 0, or a port something else holds already (EADDRINUSE), is replaced by a
// free port of the same host, chosen now: a demo does not fail for want of
// a port it only prints. Any other failure (a port out of range, a host
// that is not this machine's) is a usage error. It returns host:port with
// the host as given: "0.0.0.0" stays "0.0.0.0", which is what the suite's
// --openapi-listen must be told, not the "[::]" the listener reports.
func demoConformanceAddr(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" {
		return "", usageErrorf("--conformance-openapi %q: want host:port", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if addrInUse(err) {
		ln, err = net.Listen("tcp", net.JoinHostPort(host, "0"))
	}
	if err != nil {
		return "", usageErrorf("--conformance-openapi %s: %v", addr, err)
	}
	_, got, splitErr := net.SplitHostPort(ln.Addr().String())
	if err := ln.Close(); err != nil {
		return "", fmt.Errorf("demo: --conformance-openapi %s: %w", addr, err)
	}
	if splitErr != nil {
		return "", fmt.Errorf("demo: --conformance-openapi %s: %w", addr, splitErr)
	}
	return net.JoinHostPort(host, got), nil
}

// demoPublicKeyFile is the file in the demo's directory that holds the
// public key of its app credential, PEM, as "koobridge keygen rsa" writes
// one.
const demoPublicKeyFile = "koobridge-demo-rsa.pub.pem"

// writePublicKeyPEM writes key to file as a PKIX "PUBLIC KEY" PEM block,
// replacing a file of an earlier run.
func writePublicKeyPEM(file string, key *rsa.PublicKey) error {
	der, err := x509.MarshalPKIXPublicKey(key)
	if err != nil {
		return fmt.Errorf("demo: encode the RSA public key: %w", err)
	}
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
		return fmt.Errorf("demo: write the RSA public key: %w", err)
	}
	return nil
}

// demoTools is where the demo's server, emulator and files are, for the
// commands printDemoConformance prints.
type demoTools struct {
	program     string // how to run koobridge (demoProgram)
	producePath string
	serverURL   string
	emuURL      string
	appURL      string // the sample app
	suiteAddr   string // --openapi-listen of a conformance run
	publicKey   string // the app credential's public key, PEM
}

// printDemoConformance prints what another tool needs to talk to the
// demo's server (its keys and which interface types each signs, the app
// credential's public key, its Open API URL and AK/SK), the conformance
// command that passes against it, the one with every profile that passes
// against it, and why the others do not.
func printDemoConformance(w io.Writer, t demoTools, s demoSecrets) {
	command := fmt.Sprintf("%s conformance --target %s%s --key %s --general-key %s --ak %s --sk %s --openapi-listen %s",
		t.program, t.serverURL, t.producePath, s.key, s.generalKey, s.ak, s.sk, t.suiteAddr)
	// The sso profile signs in to the sample app: its login link, its
	// home page (which shows the user signed in) and its logout.
	every := fmt.Sprintf("%s --profile %s --rsa-public-key-file %s --sso-login-url %s --sso-whoami-url %s --sso-logout-url %s",
		command, demoProfiles, shellQuote(t.publicKey), shellQuote(t.appURL+"/login?tenant={tenantId}"), shellQuote(t.appURL+"/"), shellQuote(t.appURL+"/logout"))
	fmt.Fprintf(w, `
What the server was given (a tool that talks to it needs the same):
  key              %s   (basic interfaces, joint-operation sync, license)
  general key      %s   (general interfaces: order notification)
  RSA public key   %s   (of the app credential: the Kit encrypts clientSecret to it)
  Open API         %s   (AK %s, SK %s)
                   Query Order for an order the emulator did not place goes to %s

Check the running server with the conformance suite, from another terminal (every case passes):
  %s
With every profile that passes against the demo (V2, V1, license codes, the Kit, single sign-on to the sample app):
  %s
Profiles online-license and metering do not pass against the demo: the server uploads licenses and pushes
usage to its Open API, which is the demo's emulator, not the suite (docs/conformance.md).
`, s.key, s.generalKey, shellQuote(t.publicKey), t.emuURL, s.ak, s.sk, t.suiteAddr, command, every)
	if pkg, ok := strings.CutPrefix(t.program, "go run "); ok {
		fmt.Fprintf(w, "(go install %s puts koobridge on your PATH: then koobridge conformance … does the same.)\n", pkg)
	}
}

// demoProfiles are the conformance profiles that pass against the demo,
// in the command printDemoConformance prints.
const demoProfiles = "all,v1,license,kit,sso"

// demoProgram is how the commands the demo prints run koobridge: the way
// the demo itself was started, so that a newcomer can paste them. arg0
// is os.Args[0]. "go run ./cmd/koobridge demo" runs a temporary binary
// (in the build cache, or …/go-build…/b001/exe/koobridge) that is on no
// PATH: the commands then say "go run" with the package as seen from the
// current directory. Otherwise arg0 as typed: "koobridge" found
// on the PATH, or a path such as ./koobridge.
func demoProgram(arg0 string) string {
	_, src, _, _ := runtime.Caller(0)
	cwd, _ := os.Getwd()
	return demoProgramFor(arg0, cwd, filepath.Dir(src))
}

// demoProgramFor is demoProgram with the current directory and the
// directory this file was compiled from (not absolute when built with
// -trimpath).
func demoProgramFor(arg0, cwd, srcDir string) string {
	if !isGoRunBinary(arg0) {
		return shellQuote(cmp.Or(arg0, "koobridge"))
	}
	pkg := "./cmd/koobridge" // as the README runs it, from the clone's top
	if filepath.IsAbs(srcDir) && filepath.IsAbs(cwd) {
		if rel, err := filepath.Rel(cwd, srcDir); err == nil {
			pkg = filepath.ToSlash(rel)
			if pkg != "." && !strings.HasPrefix(pkg, "../") {
				pkg = "./" + pkg
			}
		}
	}
	return "go run " + shellQuote(pkg)
}

// isGoRunBinary reports whether path is a binary "go run" built: in the
// build cache (<GOCACHE>/ab/ab…(64 hex digits)-d/koobridge, where go run
// keeps the executables it links), or in an exe directory of a go-build
// work directory (when it does not cache one).
func isGoRunBinary(path string) bool {
	dir := filepath.Dir(path)
	if base := filepath.Base(dir); goRunCacheDirRE.MatchString(base) && filepath.Base(filepath.Dir(dir)) == base[:2] {
		return true
	}
	if filepath.Base(dir) != "exe" {
		return false
	}
	for d := filepath.Dir(dir); d != filepath.Dir(d); d = filepath.Dir(d) {
		if strings.HasPrefix(filepath.Base(d), "go-build") {
			return true
		}
	}
	return false
}

// goRunCacheDirRE is the name of a build cache directory that holds an
// executable go run linked.
var goRunCacheDirRE = regexp.MustCompile(`^[0-9a-f]{64}-d$`)

// shellQuote quotes s for a POSIX shell when it has anything but letters,
// digits and -_./:=@%+,.
func shellQuote(s string) string {
	if s != "" && !strings.ContainsFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=@%+,", r))
	}) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// waitHealthy polls url until it answers 200, the server stops (stopped is
// closed), or 30 s pass.
func waitHealthy(ctx context.Context, url string, stopped <-chan struct{}) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-stopped:
			return errors.New("demo: server stopped")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("demo: server not healthy after 30s")
		}
	}
}

// playDemo buys one product of each mode in demoPlan and plays its
// scenarios, binds the joint-operation product to an enterprise
// (playJointDemo) and plays demoLicensePlan, printing a row per call. It
// returns whom to invite to sign in to the sample app and the license
// code to activate.
func playDemo(ctx context.Context, em *emulator.Emulator, w io.Writer) (demoUser, string, error) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	defer tw.Flush()
	fmt.Fprintln(tw, "SCENARIO\tCALL\tRESULT\tINSTANCE\tSTATUS\tEXPIRES\tTOOK")
	for _, step := range demoPlan {
		product, ok := productFor(em, step.mode)
		if !ok {
			return demoUser{}, "", fmt.Errorf("no %s product in the catalogue", step.mode)
		}
		if _, err := playSubscription(ctx, em, tw, product.ID, step.scenarios); err != nil {
			return demoUser{}, "", err
		}
	}
	user, err := playJointDemo(ctx, em, tw)
	if err != nil {
		return user, "", err
	}
	var code string
	for _, step := range demoLicensePlan {
		sub, err := playSubscription(ctx, em, tw, step.product, step.scenarios)
		if err != nil {
			return user, "", err
		}
		if s, _ := em.Subscription(sub); s.LicenseCode != "" {
			code = s.LicenseCode
		}
	}
	return user, code, nil
}

// playSubscription buys product and plays scenarios on the
// subscription, printing a row per call, and returns the subscription's
// id.
func playSubscription(ctx context.Context, em *emulator.Emulator, tw io.Writer, product string, scenarios []string) (string, error) {
	run, err := em.Purchase(ctx, emulator.PurchaseRequest{ProductID: product})
	if err != nil {
		return "", fmt.Errorf("purchase %s: %w", product, err)
	}
	if err := printRun(ctx, em, tw, run); err != nil {
		return "", err
	}
	for _, sc := range scenarios {
		r, err := em.Play(ctx, run.SubscriptionID, sc)
		if err != nil {
			return "", fmt.Errorf("%s: %w", sc, err)
		}
		if err := printRun(ctx, em, tw, r); err != nil {
			return "", err
		}
	}
	return run.SubscriptionID, nil
}

// printRun waits for a purchase still being provisioned, then prints one
// row per message of run.
func printRun(ctx context.Context, em *emulator.Emulator, w io.Writer, run emulator.Run) error {
	sub, _ := em.Subscription(run.SubscriptionID)
	for i := 0; i < 300 && (sub.Status == emulator.StatusPending || sub.Status == emulator.StatusProvisioning); i++ {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		sub, _ = em.Subscription(run.SubscriptionID)
	}
	if run.Pending {
		// The run as it ended: the polls and retries it waited for.
		if now, ok := em.Outcome(run.ID); ok {
			run = now
		}
	}
	for _, id := range run.Messages {
		m, ok := em.Message(id)
		if !ok || len(m.Attempts) == 0 {
			continue
		}
		a := m.Attempts[len(m.Attempts)-1]
		result := string(a.ResultCode)
		if !a.OK() {
			result += " (" + a.Violations[0].String() + ")"
		}
		expires := "-"
		if !sub.ExpireTime.IsZero() {
			expires = sub.ExpireTime.UTC().Format("2006-01-02")
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", run.Scenario, m.Interface, result, sub.InstanceID, sub.Status, expires, durationtext.Format(a.Duration))
	}
	if !run.OK {
		why := run.Err
		if run.Pending {
			why = "still pending: waiting for " + run.Waiting
		}
		return fmt.Errorf("%s: %s", run.Scenario, why)
	}
	return nil
}

// productFor finds the first catalogue product with the charging mode.
func productFor(em *emulator.Emulator, mode string) (emulator.Product, bool) {
	for _, p := range em.Products() {
		if p.ChargingMode == mode {
			return p, true
		}
	}
	return emulator.Product{}, false
}

// demoUser is whom the demo invites to sign in to the sample app.
type demoUser struct {
	tenantID, userName string
	authorised         int // users of the tenant authorised for the app
}

// playJointDemo buys the joint-operation product, binds it to an
// enterprise and authorises users, printing a row per call to tw, and
// returns an authorised, enabled user of the tenant.
func playJointDemo(ctx context.Context, em *emulator.Emulator, tw io.Writer) (demoUser, error) {
	sub, err := playSubscription(ctx, em, tw, demoJointProduct, demoJointScenarios)
	if err != nil {
		return demoUser{}, err
	}
	for _, t := range em.Tenants() {
		if t.SubscriptionID != sub {
			continue
		}
		u := demoUser{tenantID: t.TenantID}
		for _, x := range t.Users {
			if x.Authorized && x.Enable {
				u.authorised++
				if u.userName == "" {
					u.userName = x.UserName
				}
			}
		}
		if u.userName == "" {
			return demoUser{}, fmt.Errorf("tenant %s has no authorised user", t.TenantID)
		}
		return u, nil
	}
	return demoUser{}, fmt.Errorf("the emulator made no tenant for subscription %s", sub)
}
