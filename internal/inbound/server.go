package inbound

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/protocol/sign"
)

// DefaultMaxBody caps a request body unless Config.MaxBody says otherwise.
const DefaultMaxBody = 64 << 10

// Store is what the pipeline keeps: the ledger and the nonces.
type Store interface {
	store.Calls
	store.Nonces
}

// Config configures a Server.
type Config struct {
	// Families are the families served, in order of precedence: at a
	// route several share, the first is the one an unknown activity goes
	// to.
	Families []*Family
	// Keys are the keys of every type a family uses.
	Keys Keys
	// Store keeps the ledger and the nonces. Required.
	Store Store
	// MaxBody caps the request body; zero means DefaultMaxBody.
	MaxBody int64
	// Window is the allowed timestamp difference; zero means 60 s.
	Window time.Duration
	// DisableBodySign leaves the Body-Sign header off replies.
	DisableBodySign bool
	// Logger receives one line per call; nil means slog.Default. Wrap it
	// with ContextHandler so that the services' lines carry the request id.
	Logger *slog.Logger
	// Registerer receives the metrics (see the isv package documentation);
	// nil leaves them unregistered.
	Registerer prometheus.Registerer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// route is the families sharing one method and path.
type route struct {
	method   string
	families []*Family
}

// Server is the pipeline: an http.Handler for every family's route.
type Server struct {
	routes    map[string][]route // by path
	paths     []string
	verifiers map[KeyType]*sign.Verifier
	keys      Keys
	st        Store
	maxBody   int64
	window    time.Duration
	bodySign  bool
	metrics   *metrics
	log       *slog.Logger
	now       func() time.Time
	// ledger queues the rows for the ledger writer (ledger.go);
	// ledgerBytes counts what they hold, under ledgerMu, up to
	// maxLedgerBytes; ledgerFreed tells waiting handlers of rows written.
	ledger         chan ledgerRow
	ledgerMu       sync.Mutex
	ledgerBytes    int64
	maxLedgerBytes int64
	ledgerFreed    *sync.Cond
}

// New checks cfg and builds the pipeline. Every family needs a name, a
// method, a path, a scheme, a decoder, a service, and keys of its type.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("inbound: no store")
	}
	if len(cfg.Families) == 0 {
		return nil, errors.New("inbound: no family to serve")
	}
	if cfg.MaxBody < 0 {
		return nil, fmt.Errorf("inbound: negative body limit %d", cfg.MaxBody)
	}
	s := &Server{
		routes:         map[string][]route{},
		verifiers:      map[KeyType]*sign.Verifier{},
		keys:           cfg.Keys,
		st:             cfg.Store,
		maxBody:        cfg.MaxBody,
		window:         cfg.Window,
		bodySign:       !cfg.DisableBodySign,
		log:            cfg.Logger,
		now:            cfg.Now,
		ledger:         make(chan ledgerRow, maxPendingLedger),
		maxLedgerBytes: maxLedgerBytes,
	}
	s.ledgerFreed = sync.NewCond(&s.ledgerMu)
	if s.maxBody == 0 {
		s.maxBody = DefaultMaxBody
	}
	if s.window <= 0 {
		s.window = sign.DefaultWindow
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	names := map[string]bool{}
	for _, f := range cfg.Families {
		if err := s.add(f, names); err != nil {
			return nil, err
		}
	}
	s.metrics = newMetrics(cfg.Families)
	if cfg.Registerer != nil {
		if err := s.metrics.register(cfg.Registerer); err != nil {
			return nil, err
		}
	}
	go s.writeLedger(s.ledger)
	return s, nil
}

// add checks f and puts it on its route.
func (s *Server) add(f *Family, names map[string]bool) error {
	switch {
	case f == nil || f.Name == "":
		return errors.New("inbound: a family without a name")
	case names[f.Name]:
		return fmt.Errorf("inbound: family %s registered twice", f.Name)
	case f.Method != http.MethodGet && f.Method != http.MethodPost:
		return fmt.Errorf("inbound: family %s: method %q (want GET or POST)", f.Name, f.Method)
	case CheckPath(f.Path) != nil:
		return fmt.Errorf("inbound: family %s: %w", f.Name, CheckPath(f.Path))
	case slices.ContainsFunc(f.Aliases, func(p string) bool { return CheckPath(p) != nil }):
		return fmt.Errorf("inbound: family %s: an alias path is not a valid path", f.Name)
	case f.Scheme < URLSignature || f.Scheme > V1Token:
		return fmt.Errorf("inbound: family %s: unknown authentication scheme", f.Name)
	case f.Decode == nil || f.Serve == nil:
		return fmt.Errorf("inbound: family %s: no decoder or service", f.Name)
	}
	names[f.Name] = true
	keys := s.keys[f.Keys]
	if len(keys) == 0 {
		return fmt.Errorf("inbound: family %s: no %s key configured", f.Name, f.Keys)
	}
	for i, k := range keys {
		if k == "" {
			return fmt.Errorf("inbound: %s key %d is empty", f.Keys, i+1)
		}
	}
	if s.verifiers[f.Keys] == nil {
		s.verifiers[f.Keys] = &sign.Verifier{Keys: keys, Window: s.window, Nonces: storeNonces{s.st}, Now: s.now}
	}
	for _, p := range append([]string{f.Path}, f.Aliases...) {
		if err := s.route(f, p); err != nil {
			return err
		}
	}
	return nil
}

// route puts f on the route of path.
func (s *Server) route(f *Family, path string) error {
	rs := s.routes[path]
	if len(rs) == 0 {
		s.paths = append(s.paths, path)
	}
	i := slices.IndexFunc(rs, func(r route) bool { return r.method == f.Method })
	if i < 0 {
		s.routes[path] = append(rs, route{method: f.Method, families: []*Family{f}})
		return nil
	}
	for _, other := range rs[i].families {
		if other == f {
			return fmt.Errorf("inbound: family %s: path %s given twice", f.Name, path)
		}
		for _, a := range f.Activities {
			if other.serves(a) {
				return fmt.Errorf("inbound: families %s and %s both serve %s %s %s", other.Name, f.Name, f.Method, path, a)
			}
		}
	}
	rs[i].families = append(rs[i].families, f)
	return nil
}

// CheckPath reports whether p can be a family's route: an absolute URL
// path other than "/", of the characters RFC 3986 allows in a path
// (letters, digits and -._~!$&'()*+,;=:@/), so that it registers in an
// http.ServeMux as the literal path it is.
func CheckPath(p string) error {
	if len(p) < 2 || p[0] != '/' {
		return fmt.Errorf("path %q: want an absolute URL path such as /produce", p)
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("-._~!$&'()*+,;=:@/", c) >= 0:
		default:
			return fmt.Errorf("path %q: character %q is not allowed (letters, digits and -._~!$&'()*+,;=:@/ only)", p, c)
		}
	}
	return nil
}

// Paths returns the paths the Server answers, in the order the families
// were given.
func (s *Server) Paths() []string { return slices.Clone(s.paths) }

// JobOutcome counts a background job attempt for the metrics; give it to
// the job runner's OnOutcome.
func (s *Server) JobOutcome(kind, outcome string) { s.metrics.jobOutcome(kind, outcome) }

// nonceSweepInterval is how often SweepNonces deletes expired nonces.
const nonceSweepInterval = time.Minute

// SweepNonces deletes expired nonces now and every minute until ctx is
// done; the window check already rejects their calls, so this only keeps
// the table small.
func (s *Server) SweepNonces(ctx context.Context) {
	t := time.NewTicker(nonceSweepInterval)
	defer t.Stop()
	for {
		n, err := s.st.DeleteExpiredNonces(ctx, s.now())
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.Warn("nonce sweep failed", "error", err)
		case n > 0:
			s.log.Debug("nonces swept", "deleted", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
