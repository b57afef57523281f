package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/koobridge/koobridge/emulator/mockapi"
	"github.com/koobridge/koobridge/isv"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/provision"
	"github.com/koobridge/koobridge/store"
)

// devOrders answers Query Order inside the process in --dev without
// AK/SK: the MOCK* debug orders as KooGallery's own mock answers them, and
// every other order as a one-year PERIOD purchase of a "dev" product, so a
// signed client can play a whole lifecycle against serve --dev. No request
// leaves the process; without --dev, AK/SK are required.
type devOrders struct{ now func() time.Time }

func (d devOrders) QueryOrder(_ context.Context, orderID, orderLineID string) (*protocol.OrderInfo, error) {
	now := d.now().UTC()
	if info, ok := mockapi.MockOrder(orderID, now); ok {
		return &info, nil
	}
	if orderLineID == "" {
		orderLineID = orderID + "-000001"
	}
	return &protocol.OrderInfo{
		OrderID:    protocol.FlexString(orderID),
		OrderType:  "NEW",
		CreateTime: protocol.FlexString(protocol.FormatTime14(now)),
		OrderLine: []protocol.OrderLine{{
			OrderLineID:  protocol.FlexString(orderLineID),
			ChargingMode: protocol.ChargingPeriod,
			PeriodType:   "year",
			PeriodNumber: "1",
			ExpireTime:   protocol.FlexString(protocol.FormatTime14(now.AddDate(1, 0, 0))),
			ProductInfo: protocol.ProductInfoList{{
				ProductID: "dev-product", SKUCode: "dev-sku", LinearValue: "1", ProductName: "koobridge dev product",
			}},
		}},
		BuyerInfo: &protocol.BuyerInfo{CustomerID: "dev-customer", CustomerName: "dev customer"},
	}, nil
}

func newServeCommand() *cobra.Command {
	var o serveOptions
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the production interface, the admin API and the job workers",
		Long: `Run the KooGallery production interface: the SaaS V2 and V1 basic interfaces, the
joint-operation Kit, order notification and license products (license codes,
online license, license 1.0), each verified with the key of its interface type
(--key, --kit-key, --general-key, --license-key), with the admin console, the
license service for the vendor's client software and single sign-on. Every flag --foo-bar can also be
set with the environment variable KOOBRIDGE_FOO_BAR or as "foo-bar:" in the YAML
file given with --config; a flag wins over the environment, which wins over the
file. See docs/configuration.md.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := resolveServeConfig(cmd, &o, os.Getenv)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			go func() {
				// After the first signal, a second one ends the process at
				// once instead of waiting for the graceful shutdown.
				<-ctx.Done()
				stop()
			}()
			return serve(ctx, cfg, cmd.ErrOrStderr())
		},
	}
	o.register(cmd.Flags())
	return cmd
}

func parseLogLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, usageErrorf("--log-level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

// serve runs the server until ctx is done, then shuts down gracefully.
func serve(ctx context.Context, cfg *serveConfig, stderr io.Writer) error {
	o := cfg.opts
	level, _ := parseLogLevel(o.logLevel) // validated already
	logger := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))

	// The address first: a server that cannot listen (the demo still
	// running on it) stops here, before it prints a secret, keeps one or
	// creates the database. Outside --dev the address is only checked, and
	// taken again once the database is open and migrated: a replica still
	// migrating, or waiting for another's migration lock, must refuse
	// connections, not accept them and answer nothing, or a load balancer's
	// TCP check counts it as up.
	ln := cfg.listener
	var addr net.Addr
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", o.listen); err != nil {
			return usageErrorf("--listen %s: %v", o.listen, err)
		}
		if !o.dev {
			_ = ln.Close()
			ln = nil
		}
	}
	if ln != nil {
		addr = ln.Addr()
	}
	served := false // once the HTTP server has it, it closes ln
	defer func() {
		if !served && ln != nil {
			_ = ln.Close()
		}
	}()
	// Then the database: one that does not open (not a database, a server
	// that is down) stops here too, before --dev keeps or prints a secret
	// it would never use.
	db, err := openDatabase(ctx, o)
	if err != nil {
		return err
	}
	defer func() {
		if err := db.Close(); err != nil {
			logger.Error("close database", "err", err)
		}
	}()
	if err := cfg.dev.save(); err != nil {
		return err
	}
	scheme := "http"
	if cfg.tlsCert != nil {
		scheme = "https"
	}
	if addr != nil { // only --dev prints a banner, and it holds its listener
		printDevBanner(stderr, cfg, consoleURL(scheme, addr))
	}
	if cfg.dev != nil {
		for _, w := range cfg.dev.warnings {
			logger.Warn(w)
		}
		if cfg.dev.lostDataKey() {
			logger.Warn(lostDataKeyText(cfg.dev.path))
		}
	}
	logger.Info("configuration", cfg.redacted()...)
	if o.ak == "" {
		logger.Warn("no --ak/--sk: Query Order is answered inside the process with made-up dev orders (MOCK* debug orders as KooGallery answers them, any other order as a one-year PERIOD purchase); set them for anything but a local try-out")
	}
	if cfg.adminToken == "" {
		logger.Warn("no --admin-token: the admin API is disabled (404)")
	}
	if len(cfg.usage.Tokens) == 0 {
		logger.Info("no --usage-token: the usage API for pay-per-use products is off (404)")
	}
	if cfg.tlsCert == nil {
		logger.Warn("serving plain HTTP: KooGallery requires HTTPS, so terminate TLS in front of koobridge or set --tls-cert/--tls-key")
	}

	var orders isv.OrderQuerier
	if o.ak == "" {
		orders = devOrders{now: time.Now}
	}
	prov, err := buildProvisioner(cfg)
	if err != nil {
		return usageErrorf("--provisioner %s: %v", o.provisioner, err)
	}
	var testProv provision.Provisioner // nil: isv uses the demo provisioner
	if o.provisionTestCalls {
		testProv = prov
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	srv, err := isv.New(isv.Config{
		Keys:            cfg.keys,
		DB:              db,
		DataKey:         cfg.dataKey,
		OpenAPI:         isv.OpenAPI{URL: cfg.openAPIURL, FallbackURL: cfg.fallbackURL, AK: o.ak, SK: cfg.sk},
		Orders:          orders,
		Provisioner:     prov,
		TestProvisioner: testProv,
		ProducePath:     o.producePath,
		OrderNotifyPath: o.orderNotifyPath,
		LicensePath:     o.license.path,
		Licenses:        cfg.licenses,
		Usage:           cfg.usage,
		Budget:          o.budget,
		MaxBodyBytes:    int64(o.maxBody),
		DisableBodySign: !o.bodySign,
		Credentials:     isv.CredentialMode(o.credentials),
		EncryptType:     cfg.encryptType,
		RSAPrivateKey:   cfg.rsaKey,
		JobWorkers:      o.jobWorkers,
		JobLease:        o.jobLease,
		Logger:          logger,
		Registerer:      reg,

		V1EncryptType:     cfg.v1EncryptType,
		V1TimestampWindow: o.v1TimestampWindow,

		LedgerRetention:         o.ledgerRetention,
		LedgerRejectedRetention: o.ledgerRejected,
	})
	if err != nil {
		return fmt.Errorf("production interface: %w", err)
	}

	handler := newServeMux(cfg, db, srv, reg, logger)
	if cfg.sso != nil {
		if handler, err = mountSSO(handler, srv, cfg.sso); err != nil {
			return fmt.Errorf("single sign-on: %w", err)
		}
		logger.Info("single sign-on", "issuer", cfg.sso.PublicURL, "clients", len(cfg.sso.Clients))
	}
	if ln == nil { // checked at the start, taken now that the database is ready
		if ln, err = net.Listen("tcp", o.listen); err != nil {
			return fmt.Errorf("listen on %s: %w", o.listen, err)
		}
	}
	if cfg.tlsCert != nil {
		ln = tls.NewListener(ln, &tls.Config{
			MinVersion:   tls.VersionTLS12, // KooGallery requires TLS 1.2 or newer
			Certificates: []tls.Certificate{*cfg.tlsCert},
		})
	}
	httpSrv := &http.Server{
		Handler:           handler,
		ReadTimeout:       o.readTimeout,
		ReadHeaderTimeout: o.readTimeout,
		WriteTimeout:      o.writeTimeout,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}

	// The job workers and the nonce sweeper outlive the HTTP server: they
	// stop only after in-flight calls have finished.
	runCtx, cancelRun := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRun()
	runDone := make(chan error, 1)
	go func() { runDone <- srv.Run(runCtx) }()

	serveDone := make(chan error, 1)
	served = true
	go func() { serveDone <- httpSrv.Serve(ln) }()
	logger.Info("listening", "addr", ln.Addr().String(), "scheme", scheme, "paths", srv.Paths())

	var serveErr error
	select {
	case <-ctx.Done():
		logger.Info("shutting down", "timeout", o.shutdownTimeout.String())
	case serveErr = <-serveDone:
		logger.Error("http server stopped", "err", serveErr)
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), o.shutdownTimeout)
	defer cancel()
	if err := httpSrv.Shutdown(shutCtx); err != nil {
		logger.Error("http shutdown", "err", err)
		_ = httpSrv.Close()
	}
	cancelRun()
	if err := <-runDone; err != nil && !errors.Is(err, context.Canceled) {
		logger.Error("background work", "err", err)
	}
	logger.Info("stopped")
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", serveErr)
	}
	return nil
}

// newServeMux mounts the production interface and the operations endpoints.
func newServeMux(cfg *serveConfig, db *store.DB, srv *isv.Server, reg *prometheus.Registry, logger *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	// Every path but koobridge's own goes to the production interface, which
	// answers its paths and a signed JSON 404 for the others.
	mux.Handle("/", srv.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := db.Ping(ctx); err != nil {
			logger.Warn("readiness check failed", "err", err)
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, "database unavailable\n")
			return
		}
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.Handle(isv.LicensePathPrefix, srv.LicenseHandler())
	mux.Handle(isv.UsagePath, srv.UsageHandler())
	mux.Handle(isv.UsagePath+"/", srv.UsageHandler()) // answers "no such endpoint" below it
	if cfg.adminToken != "" {
		mux.Handle("/admin/", srv.AdminHandler(isv.AdminConfig{Token: cfg.adminToken, SecureCookie: cfg.opts.secureCookie}))
	}
	return mux
}

func buildProvisioner(cfg *serveConfig) (provision.Provisioner, error) {
	o := cfg.opts
	switch o.provisioner {
	case "webhook":
		return provision.NewWebhook(provision.WebhookConfig{
			URL: o.webhookURL, Secret: cfg.webhookSecret, Timeout: o.webhookTimeout,
		})
	case "exec":
		return provision.NewExec(provision.ExecConfig{Command: cfg.execArgv, Timeout: o.execTimeout})
	default:
		return provision.NewDemo(""), nil
	}
}

// printDevBanner shows, on standard error and never in the log, the
// secrets --dev supplied, where they are kept, and the console's URL. A
// value is printed only when it was generated now: a kept one is read in
// the file, so that a log that collects standard error (journald, docker
// logs) does not get the secrets again on every restart.
func printDevBanner(w io.Writer, cfg *serveConfig, console string) {
	d := cfg.dev
	if d == nil || len(d.supplied) == 0 {
		return
	}
	var b strings.Builder
	line := strings.Repeat("=", 72)
	b.WriteString(line + "\n")
	if d.path != "" {
		fmt.Fprintf(&b, "koobridge --dev secrets, kept in %s\n(read back on every --dev start on this database; a flag, KOOBRIDGE_… or --config setting wins):\n", d.path)
	} else {
		b.WriteString("koobridge --dev generated secrets. They are NOT kept: the database is not an SQLite file.\n" +
			"Give them back with --key, --data-key and --admin-token to use this database after a restart.\n")
	}
	kept := false
	for _, s := range []struct{ name, label string }{
		{devKey, "KooGallery key (sign calls with it):"},
		{devDataKey, "data key (--data-key):"},
		{devAdminToken, "admin token (--admin-token):"},
	} {
		v, ok := d.supplied[s.name]
		switch {
		case !ok:
		case d.generated[s.name]:
			fmt.Fprintf(&b, "  %-38s%s   (generated now)\n", s.label, v)
		default:
			kept = true
			fmt.Fprintf(&b, "  %-38s(kept: %q in %s)\n", s.label, s.name, d.path)
		}
	}
	if cfg.adminToken != "" {
		how := "log in with your --admin-token"
		if _, ok := d.supplied[devAdminToken]; ok {
			how = "log in with the admin token above"
			if !d.generated[devAdminToken] {
				how = "log in with its admin-token"
			}
		}
		fmt.Fprintf(&b, "  %-38s%s   (%s)\n", "console:", console, how)
	}
	if d.generated[devDataKey] {
		b.WriteString("  The data key seals the app-info passwords in this database: keep it as long as the database.\n")
	}
	if kept {
		b.WriteString("  A kept value is printed only when it is generated: read it in the file.\n")
	}
	if d.lostDataKey() {
		b.WriteString("  WARNING: " + lostDataKeyText(d.path) + "\n")
	}
	b.WriteString(line + "\n")
	_, _ = io.WriteString(w, b.String())
}

// lostDataKeyText says what a data key generated for an existing database
// (devSecrets.lostDataKey) does to what the database sealed, and what to
// do. It holds no secret: it goes to the log too.
func lostDataKeyText(path string) string {
	db := strings.TrimSuffix(path, devFileSuffix)
	return fmt.Sprintf("the database %s already existed, but %s kept no data key for it, so a new one was generated. "+
		"What the database sealed with its earlier data key cannot be unsealed with the new one: queryInstance answers 000005 "+
		"(internal error) for an instance whose app info has a password, and single sign-on cannot read the signing keys and "+
		"secrets it stored. To read them, put the earlier key in %s as data-key (or give it with --data-key); to start afresh, "+
		"remove %s and %s", db, path, path, db, path)
}
