// Package openapi is the client of KooGallery's Open API, the calls a seller
// makes back to the marketplace (saas-v2.md §7, license-openapi.md §E).
// Every request is signed with the seller's Huawei Cloud AK/SK (APIG
// SDK-HMAC-SHA256).
//
// Errors fall in two groups, told apart by Retryable: answers that retrying
// will not change (an *Error, for instance a wrong signature or an unknown
// order) and outages (transport failures, timeouts, 5xx, internal-error
// codes), which wrap ErrUnavailable. A retryable answer from the API wraps
// both ErrUnavailable and an *Error, so errors.As still finds its code.
// An answer with a documented code also matches that code's sentinel
// (ErrLicenseNotFound, ErrUploadInvalidFormat, …) under errors.Is; an
// unknown code is a generic failure, never a success.
package openapi

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Default hosts (saas-v2.md §7.1): the Chinese site and the host to retry
// on when it cannot be reached.
const (
	DefaultBaseURL     = "https://mkt.myhuaweicloud.com"
	DefaultFallbackURL = "https://mkt.myhuaweicloud.cn"
)

// DefaultTimeout is the whole-request timeout of the default HTTP client.
const DefaultTimeout = 10 * time.Second

// maxResponseBytes bounds how much of an answer is read.
const maxResponseBytes = 4 << 20

// ErrUnavailable marks failures that may go away by themselves: the API
// could not be reached, timed out, or answered with a server error.
var ErrUnavailable = errors.New("openapi: KooGallery Open API unavailable")

// Error is an answer of the Open API that is not a success: Code is the
// resultCode or error_code ("MKT.xxxx", "CBC.xxxx", "92020xxx",
// "APIGW.xxxx"; empty when the body carried none) and Message the matching
// text.
type Error struct {
	HTTPStatus int
	Code       string
	Message    string
}

// Error implements error.
func (e *Error) Error() string {
	code := e.Code
	if code == "" {
		code = "no result code"
	}
	if e.Message == "" {
		return fmt.Sprintf("openapi: HTTP %d: %s", e.HTTPStatus, code)
	}
	return fmt.Sprintf("openapi: HTTP %d: %s: %s", e.HTTPStatus, code, e.Message)
}

// Retryable reports whether trying the same call again later may succeed:
// it is true for errors wrapping ErrUnavailable and false for everything
// else, including nil.
func Retryable(err error) bool { return errors.Is(err, ErrUnavailable) }

// Config configures a Client.
type Config struct {
	// BaseURL is the Open API endpoint, scheme and host (and an optional
	// path prefix). Default DefaultBaseURL.
	BaseURL string
	// FallbackURL is tried once when BaseURL cannot be reached at all (DNS,
	// connect or TLS failure). It defaults to DefaultFallbackURL only when
	// BaseURL is the default; otherwise "" means no fallback.
	FallbackURL string
	// AK and SK are the seller account's Huawei Cloud access key pair.
	AK, SK string
	// HTTPClient sends the requests. The default has a DefaultTimeout
	// timeout, verifies TLS certificates and does not follow redirects
	// (a signed request must not wander to another host).
	HTTPClient *http.Client
	// Now is the clock used for X-Sdk-Date. Default time.Now.
	Now func() time.Time
}

// maxIdleConnsPerHost is how many idle connections the default client
// keeps to each Open API endpoint.
const maxIdleConnsPerHost = 64

// New checks cfg, fills in its defaults and returns a Client.
func New(cfg Config) (*Client, error) {
	if cfg.AK == "" || cfg.SK == "" {
		return nil, errors.New("openapi: AK and SK are required")
	}
	// The AK goes into Authorization unquoted; reject what would break it
	// now rather than on the first call.
	if strings.ContainsAny(cfg.AK, ",; \t\r\n") {
		return nil, errors.New("openapi: AK contains a separator or space")
	}
	baseDefault := cfg.BaseURL == "" || strings.TrimSuffix(cfg.BaseURL, "/") == DefaultBaseURL
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	if cfg.FallbackURL == "" && baseDefault {
		cfg.FallbackURL = DefaultFallbackURL
	}
	base, err := parseBase(cfg.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("openapi: base URL: %w", err)
	}
	var fallback *url.URL
	if cfg.FallbackURL != "" {
		if fallback, err = parseBase(cfg.FallbackURL); err != nil {
			return nil, fmt.Errorf("openapi: fallback URL: %w", err)
		}
	}
	if cfg.HTTPClient == nil {
		// Keep as many idle connections to the endpoint as calls run at
		// once (http.DefaultTransport keeps 2 per host): every purchase
		// asks Query Order while KooGallery's calls arrive together, and
		// a connection dropped after each is a new TCP and TLS handshake.
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = maxIdleConnsPerHost
		cfg.HTTPClient = &http.Client{
			Transport: t,
			Timeout:   DefaultTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Client{cfg: cfg, base: base, fallback: fallback}, nil
}

// parseBase parses an endpoint URL: http or https, a host, no query.
func parseBase(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return nil, fmt.Errorf("%q: scheme must be https or http", s)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%q: no host", s)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%q: must not have a query or fragment", s)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	return u, nil
}
