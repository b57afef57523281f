// Package licenseapi is the license service for the vendor's client
// software (license-openapi.md §D.1): the software in the field activates
// and checks its KooGallery license code with the vendor's koobridge,
// never with KooGallery and the vendor's AK/SK, and gets a signed license
// token it verifies offline against the keys published here.
//
//	POST /api/v1/licenses/activate  {"license":"…","deviceFingerprint":"…"}
//	POST /api/v1/licenses/check     {"license":"…","deviceFingerprint":"…"}
//	GET  /api/v1/licenses/keys      the JWK set of the token keys
//
// Requests are read strictly (exactly the two string fields, no key
// twice, valid UTF-8, no NUL, at most 16 KiB, Content-Type
// application/json), and a refused request never reaches the license
// domain, so it changes nothing. Each client address and each license
// code has a token bucket of requests per minute. The device fingerprint
// is never logged.
package licenseapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/koobridge/koobridge/internal/license"
)

// Routes of the license service.
const (
	PathPrefix   = "/api/v1/licenses/" // every route is under it
	PathActivate = "/api/v1/licenses/activate"
	PathCheck    = "/api/v1/licenses/check"
	PathKeys     = "/api/v1/licenses/keys"
)

// Licenses answers for license codes; package license's Service
// implements it. Its errors are those of package license (ErrInvalid,
// ErrUnknown, …), matched with errors.Is.
type Licenses interface {
	// Activate activates code for the device, once with KooGallery.
	Activate(ctx context.Context, code, fingerprint string) (license.Verdict, error)
	// Check answers whether code may be used on the device.
	Check(ctx context.Context, code, fingerprint string) (license.Verdict, error)
}

// Tokens signs verdicts and publishes the keys that verify them; package
// licensetoken's Ring implements it.
type Tokens interface {
	Sign(ctx context.Context, v license.Verdict) (string, error)
	JWKS(ctx context.Context) ([]byte, error)
}

// Config configures the license service.
type Config struct {
	Licenses Licenses // required
	Tokens   Tokens   // required
	// RatePerCode and RatePerAddress are the requests per minute one
	// license code and one client address may make to activate and
	// check (each a bucket that holds a minute's worth and refills
	// evenly); both at least 1.
	RatePerCode, RatePerAddress int
	// Logger receives one line per answer; nil means slog.Default().
	Logger *slog.Logger
	// Now is the rate limits' clock; nil means time.Now.
	Now func() time.Time
}

// Default rate limits, the defaults of serve's --license-rate-code and
// --license-rate-address.
const (
	DefaultRatePerCode    = 30
	DefaultRatePerAddress = 120
)

// handler serves the license service's routes.
type handler struct {
	cfg    Config
	log    *slog.Logger
	byCode *limiter
	byAddr *limiter
}

// New returns the license service's handler. It serves the paths of the
// routes above exactly (mount it at PathPrefix) and answers any other
// path under PathPrefix 404.
func New(cfg Config) (http.Handler, error) {
	switch {
	case cfg.Licenses == nil:
		return nil, errors.New("licenseapi: Config.Licenses is required")
	case cfg.Tokens == nil:
		return nil, errors.New("licenseapi: Config.Tokens is required")
	case cfg.RatePerCode < 1:
		return nil, errors.New("licenseapi: Config.RatePerCode must be at least 1 request per minute")
	case cfg.RatePerAddress < 1:
		return nil, errors.New("licenseapi: Config.RatePerAddress must be at least 1 request per minute")
	}
	h := &handler{cfg: cfg, log: cfg.Logger}
	if h.log == nil {
		h.log = slog.Default()
	}
	if h.cfg.Now == nil {
		h.cfg.Now = time.Now
	}
	h.byCode = newLimiter(cfg.RatePerCode)
	h.byAddr = newLimiter(cfg.RatePerAddress)
	return h, nil
}

// ServeHTTP routes by path, then checks the method.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case PathActivate:
		h.serveCall(w, r, "activate", h.cfg.Licenses.Activate)
	case PathCheck:
		h.serveCall(w, r, "check", h.cfg.Licenses.Check)
	case PathKeys:
		h.serveKeys(w, r)
	default:
		writeError(w, http.StatusNotFound, codeNotFound, "no such route of the license service (want "+PathActivate+", "+PathCheck+" or "+PathKeys+")")
	}
}
