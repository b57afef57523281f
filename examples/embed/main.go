// Command embed is a vendor's own Go service with koobridge inside: it
// mounts koobridge's production interface in a plain net/http server and
// provisions its product through a Go Provisioner, instead of running
// koobridge serve beside it. It uses koobridge's public packages only
// (isv, store, provision), as any module outside the repository would.
//
// Run it (with a KooGallery key, the Open API AK/SK and a data key):
//
//	KOOGALLERY_KEY=… HUAWEI_AK=… HUAWEI_SK=… DATA_KEY=$(openssl rand -base64 32) go run . -listen :8080
package main

import (
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/koobridge/koobridge/isv"
	"github.com/koobridge/koobridge/provision"
	"github.com/koobridge/koobridge/store"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8080", "address to serve on")
	db := flag.String("db", "sqlite:embed.db", "database (an SQLite path or a postgres:// URL)")
	flag.Parse()

	dataKey, err := base64.StdEncoding.DecodeString(os.Getenv("DATA_KEY"))
	if err != nil {
		log.Fatalf("DATA_KEY: %v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	err = run(ctx, ln, config{
		db:      *db,
		key:     os.Getenv("KOOGALLERY_KEY"),
		dataKey: dataKey,
		openAPI: isv.OpenAPI{AK: os.Getenv("HUAWEI_AK"), SK: os.Getenv("HUAWEI_SK"), URL: os.Getenv("OPENAPI_URL")},
	}, newProduct())
	if err != nil {
		log.Fatal(err)
	}
}

// config is what the service needs to run koobridge inside.
type config struct {
	db      string
	key     string
	dataKey []byte
	openAPI isv.OpenAPI
	orders  isv.OrderQuerier // tests answer Query Order themselves
}

// run serves the production interface, the service's own pages and
// koobridge's background work on ln until ctx is done.
func run(ctx context.Context, ln net.Listener, cfg config, p *product) error {
	db, err := store.Open(ctx, cfg.db)
	if err != nil {
		return err
	}
	defer db.Close()
	srv, err := isv.New(isv.Config{
		Keys:        isv.Keys{Basic: []string{cfg.key}},
		DB:          db,
		DataKey:     cfg.dataKey,
		OpenAPI:     cfg.openAPI,
		Orders:      cfg.orders,
		Provisioner: p,
		// Debug calls (testFlag 1, MOCK* orders) reach the product too,
		// so that KooGallery's dial tests see the real thing.
		TestProvisioner: p,
		Logger:          slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return err
	}

	mux := http.NewServeMux()
	for _, path := range srv.Paths() {
		mux.Handle(path, srv.Handler())
	}
	// The service's own pages live beside it.
	mux.HandleFunc("GET /tenants/{id}", p.serveTenant)

	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	runDone := make(chan error, 1)
	go func() { runDone <- srv.Run(runCtx) }()

	httpSrv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- httpSrv.Serve(ln) }()
	select {
	case <-ctx.Done():
	case err = <-served:
	}
	shutCtx, done := context.WithTimeout(context.Background(), 10*time.Second)
	defer done()
	_ = httpSrv.Shutdown(shutCtx)
	cancel()
	if rerr := <-runDone; rerr != nil && err == nil {
		err = rerr
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// product is the vendor's product: tenants in memory. It implements
// provision.Provisioner.
type product struct {
	mu      sync.Mutex
	tenants map[string]string // instance id → status
	events  []string          // event ids seen, in order (a repeat is not done twice)
}

func newProduct() *product { return &product{tenants: map[string]string{}} }

// Provision implements provision.Provisioner: it creates a tenant for
// instance.created and records the other events. A second delivery of an
// event (same ID) does nothing again.
func (p *product) Provision(ctx context.Context, ev provision.Event) (provision.Result, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, id := range p.events {
		if id == ev.ID && ev.Type != provision.EventCreated {
			return provision.Result{}, nil
		}
	}
	p.events = append(p.events, ev.ID)
	switch ev.Type {
	case provision.EventCreated:
		if ev.Instance.CustomerID == "sold-out-customer" {
			return provision.Result{}, provision.Refuse(provision.CodeSoldOut, "no seats left this month")
		}
		p.tenants[ev.Instance.ID] = "active"
		return provision.Result{AppInfo: &provision.AppInfo{
			FrontEndURL: "https://app.example.com/tenants/" + ev.Instance.ID,
			UserName:    "admin",
			Password:    "initial-" + ev.Instance.ID[:8],
		}}, nil
	case provision.EventFrozen:
		p.tenants[ev.Instance.ID] = "frozen"
	case provision.EventUnfrozen, provision.EventRenewed:
		p.tenants[ev.Instance.ID] = "active"
	case provision.EventReleased:
		delete(p.tenants, ev.Instance.ID)
	case provision.EventChangeCheck:
		return provision.Result{Allowed: true}, nil
	}
	return provision.Result{}, nil
}

// serveTenant is one of the service's own pages.
func (p *product) serveTenant(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	status, ok := p.tenants[r.PathValue("id")]
	p.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	fmt.Fprintf(w, "tenant %s is %s\n", r.PathValue("id"), status)
}

// status returns the tenant of an instance and whether it exists.
func (p *product) status(id string) (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s, ok := p.tenants[id]
	return s, ok
}
