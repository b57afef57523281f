package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/koobridge/koobridge/emulator"
	"github.com/koobridge/koobridge/internal/seal"
	"github.com/koobridge/koobridge/protocol"
)

// demoOptions are the flags of "koobridge demo".
type demoOptions struct {
	listen         string
	emulatorListen string
	dir            string
	once           bool
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

func newDemoCommand() *cobra.Command {
	var o demoOptions
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a server, the KooGallery emulator and a whole purchase lifecycle in one process",
		Long: `Start koobridge serve on a fresh SQLite file with the demo provisioner, start the
KooGallery emulator pointed at it (the server's Open API calls go to the
emulator too), play a purchase lifecycle, print what happened, then keep both
running and print their URLs: the server's console (log in with the printed
admin token) and the emulator's page, where you can buy and fire scenarios
yourself. The key, the Open API AK/SK and the admin token are made up for
this run; the key and the admin token are printed once. With --once, the
exit status is 1 when the lifecycle did not finish.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runDemo(ctx, o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.listen, "listen", "127.0.0.1:8080", "address of the server (production interface and console)")
	f.StringVar(&o.emulatorListen, "emulator-listen", "127.0.0.1:8090", "address of the emulator (web page, JSON API, mocked Open API)")
	f.StringVar(&o.dir, "dir", "", "directory for the demo database (default: a new temporary directory, removed at exit)")
	f.BoolVar(&o.once, "once", false, "stop after printing the lifecycle instead of serving until interrupted")
	return cmd
}

// demoSecrets are the made-up credentials of one demo run.
type demoSecrets struct {
	key, ak, sk, adminToken string
	dataKey                 string // base64, as --data-key takes it
}

func newDemoSecrets() (demoSecrets, error) {
	var s demoSecrets
	for _, p := range []*string{&s.key, &s.ak, &s.sk, &s.adminToken} {
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

	serverLn, err := net.Listen("tcp", o.listen)
	if err != nil {
		return usageErrorf("--listen %s: %v", o.listen, err)
	}
	emuLn, err := net.Listen("tcp", o.emulatorListen)
	if err != nil {
		serverLn.Close()
		return usageErrorf("--emulator-listen %s: %v", o.emulatorListen, err)
	}
	serverURL := "http://" + serverLn.Addr().String()
	emuURL := "http://" + emuLn.Addr().String()

	cfg, err := demoServeConfig(secrets, serverLn, dbPath, emuURL)
	if err != nil {
		serverLn.Close()
		emuLn.Close()
		return err
	}
	em, err := emulator.New(emulator.Config{
		Target: serverURL + cfg.opts.producePath, Key: secrets.key, AK: secrets.ak, SK: secrets.sk,
		PollInterval: time.Second,
	})
	if err != nil {
		serverLn.Close()
		emuLn.Close()
		return fmt.Errorf("demo: emulator: %w", err)
	}
	defer em.Close()

	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	serverDone := make(chan error, 1)
	serverStopped := make(chan struct{}) // closed once serverDone has its error
	go func() {
		serverDone <- serve(ctx, cfg, stderr)
		close(serverStopped)
	}()
	emuDone := make(chan error, 1)
	emuSrv := &http.Server{Handler: em.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { emuDone <- serveAll(ctx, []*http.Server{emuSrv}, []net.Listener{emuLn}) }()
	if err := waitHealthy(ctx, serverURL+"/healthz", serverStopped); err != nil {
		// Both must be gone before the deferred RemoveAll deletes the
		// directory under the open database. serve may stop before it
		// takes the listener: close both listeners, a second Close is
		// harmless.
		cancel()
		serverErr := <-serverDone
		<-emuDone
		serverLn.Close()
		emuLn.Close()
		switch {
		case parent.Err() != nil:
			return nil // interrupted while starting: not a failure
		case serverErr != nil:
			return fmt.Errorf("demo: server stopped: %w", serverErr)
		}
		return err
	}

	fmt.Fprintf(stdout, "koobridge demo: server %s, emulator %s, database %s\n\n", serverURL, emuURL, dbPath)
	playErr := playDemo(ctx, em, stdout)
	if playErr != nil {
		fmt.Fprintf(stdout, "\nthe lifecycle stopped early: %v\n", playErr)
	}
	fmt.Fprintf(stdout, `
Both keep running (Ctrl-C stops them):
  server console   %s/admin/   (admin token: %s)
  emulator page    %s/
  production URL   %s%s   (key: %s)
`, serverURL, secrets.adminToken, emuURL, serverURL, cfg.opts.producePath, secrets.key)
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
func demoServeConfig(s demoSecrets, ln net.Listener, dbPath, openAPIURL string) (*serveConfig, error) {
	var o serveOptions
	cmd := &cobra.Command{Use: "demo"}
	o.register(cmd.Flags())
	for _, f := range [][2]string{
		{"listen", ln.Addr().String()},
		{"db", "sqlite:" + dbPath},
		{"key", s.key},
		{"ak", s.ak},
		{"sk", s.sk},
		{"openapi-url", openAPIURL},
		{"admin-token", s.adminToken},
		{"data-key", s.dataKey},
		{"provisioner", "demo"},
		{"log-level", "error"},
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
	return c, nil
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

// playDemo buys one product of each mode in demoPlan, plays its scenarios
// and prints a row per call.
func playDemo(ctx context.Context, em *emulator.Emulator, w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	defer tw.Flush()
	fmt.Fprintln(tw, "SCENARIO\tCALL\tRESULT\tINSTANCE\tSTATUS\tEXPIRES\tTOOK")
	for _, step := range demoPlan {
		product, ok := productFor(em, step.mode)
		if !ok {
			return fmt.Errorf("no %s product in the catalogue", step.mode)
		}
		run, err := em.Purchase(ctx, emulator.PurchaseRequest{ProductID: product.ID})
		if err != nil {
			return fmt.Errorf("purchase %s: %w", product.ID, err)
		}
		if err := printRun(ctx, em, tw, run); err != nil {
			return err
		}
		for _, sc := range step.scenarios {
			run, err := em.Play(ctx, run.SubscriptionID, sc)
			if err != nil {
				return fmt.Errorf("%s: %w", sc, err)
			}
			if err := printRun(ctx, em, tw, run); err != nil {
				return err
			}
		}
	}
	return nil
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
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%v\n", run.Scenario, m.Interface, result, sub.InstanceID, sub.Status, expires, a.Duration.Round(time.Millisecond))
	}
	if !run.OK {
		return fmt.Errorf("%s: %s", run.Scenario, run.Err)
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
