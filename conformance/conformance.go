// Package conformance is the conformance suite for a KooGallery SaaS V2
// seller: it plays KooGallery toward the seller's production interface
// with package emulator, runs every lifecycle scenario of a charging-mode
// profile plus the edge cases (idempotency, authentication, validation,
// the deadline), and with the order profile the order notification
// (orderNotify, license-openapi.md §F), with the license and
// online-license profiles the license products (§A, §C), with the
// metering profile the seller's usage pushes (saas-v2.md §7.2), and
// reports, per case, what was sent, what came back and which rule of the
// specification broke.
//
// While it runs it serves the emulator's mocked Open API on
// Config.OpenAPI: the seller under test points its Open API URL there so
// its Query Order calls find the emulator's orders and its license
// uploads reach the suite.
//
// Every case is judged on the answers as they are: the emulator does not
// retry, and a case fails on any violation in any of its calls. A case
// reports every rule it breaks, not only the first: an answer that broke
// only rules on its form (Body-Sign, Content-Type, HTTP status, lengths)
// but says what happened (the resultCode and fields the step needs) is
// taken as given (emulator.Config.KeepGoing), so the cases that build on
// it still run and report their own failures.
package conformance

import (
	"cmp"
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/koobridge/koobridge/emulator"
	"github.com/koobridge/koobridge/protocol"
)

// Profiles the suite knows, by name.
const (
	ProfilePeriod      = "period"
	ProfileOneTime     = "onetime"
	ProfileOnDemand    = "ondemand"
	ProfileOnDemandPkg = "ondemand-pkg"
	// ProfileOrder is the order notification (orderNotify,
	// license-openapi.md §F), for products of any type.
	ProfileOrder = "order"
	// ProfileV1 is the SaaS V1 basic interfaces (GET with authToken,
	// saas-v1-joint-login.md Part A), for products listed before V2.
	ProfileV1 = "v1"
	// ProfileKit is the joint-operation Kit (the five sync interfaces,
	// V1 and V2: saas-v1-joint-login.md Part B, saas-v2.md §2.3, §3.8),
	// for joint-operation products. It needs Config.RSAPublicKey.
	ProfileKit = "kit"
	// ProfileLicense is the license-code 2.0 production interface
	// (license-openapi.md §A) of a license-code product.
	ProfileLicense = "license"
	// ProfileOnlineLicense is online license (license-openapi.md §C): the
	// instance calls and getLicenseAsync, with the seller's upload to the
	// mocked Open API.
	ProfileOnlineLicense = "online-license"
	// ProfileMetering is pay-per-use metering (saas-v2.md §7.2, §3.2):
	// usage told to the seller's usage API (Config.UsageURL) must reach
	// the mocked Open API's usage push, each hour once, adding up. Named
	// with others, it runs first, before any profile moves the emulated
	// clock.
	ProfileMetering = "metering"
	// ProfileAll is every V2 profile and order; v1, kit, sso, license,
	// online-license and metering are not part of it (they need to be
	// named).
	ProfileAll = "all"
)

// profileDef is a profile and the charging mode it tests (the order, v1
// and kit profiles have none); named means "all" leaves it out.
type profileDef struct {
	name, mode string
	named      bool
}

// profiles are the profiles in run order.
var profiles = []profileDef{
	{name: ProfilePeriod, mode: protocol.ChargingPeriod},
	{name: ProfileOneTime, mode: protocol.ChargingOneTime},
	{name: ProfileOnDemand, mode: protocol.ChargingOnDemand},
	{name: ProfileOnDemandPkg, mode: protocol.ChargingOnDemandPkg},
	{name: ProfileOrder},
	{name: ProfileV1, named: true},
	{name: ProfileKit, named: true},
	{name: ProfileSSO, named: true},
	{name: ProfileLicense, named: true},
	{name: ProfileOnlineLicense, named: true},
	{name: ProfileMetering, named: true},
}

// DefaultDeadline is how long an answer may take unless Config.Deadline
// says otherwise: the emulator's (saas-v2.md §1.1: 5 s, UNCONFIRMED
// against the FAQ's 20 s).
const DefaultDeadline = emulator.DefaultDeadline

// timeScale runs the emulated clock fast enough that polling after 000004
// (every 10 s emulated, for at most newInstance's 3-hour window) costs
// milliseconds per poll and at most half a minute in all.
const timeScale = 360

// Config configures a run of the suite.
type Config struct {
	// Target is the seller's V2 production interface URL. Required.
	Target string
	// OrderNotifyTarget is the seller's URL for order notifications
	// (the order profile); empty means Target.
	OrderNotifyTarget string
	// Key is the key bound to the seller's basic interfaces (V2 and V1).
	// Required.
	Key string
	// KitKey, LicenseKey and GeneralKey are the keys bound to the other
	// interface types (joint-operation sync, license, general: order
	// notification), as emulator.Config has them; an empty one means
	// Key. With GeneralKey equal to Key, order/wrong-key is skipped: a
	// seller cannot tell the two apart.
	KitKey, LicenseKey, GeneralKey string
	// RSAPublicKey is the seller's RSA public key (the one registered
	// with its app credential): the kit profile encrypts applicationSync's
	// clientSecret to it. Required with the kit profile.
	RSAPublicKey *rsa.PublicKey
	// KitTarget is the base URL of the Kit calls, which go to KitTarget +
	// /produceAPI/[v2/]<name>; empty means the origin (scheme and host) of
	// Target, the seller's root. Set it to Target to send them under the
	// production path.
	KitTarget string
	// SSO is the sso profile's contract with the seller's app (its login,
	// whoami and logout URLs). Required with the sso profile.
	SSO SSOConfig
	// LicenseTarget is the seller's URL for the license-code calls (the
	// license profile); empty means the origin of Target + "/license",
	// koobridge serve's default --license-path.
	LicenseTarget string
	// OnlineLicenseTarget is the seller's URL for the online-license
	// calls; empty means LicenseTarget.
	OnlineLicenseTarget string
	// OnlineLicenseKey is the interface type whose key signs the
	// online-license calls and checks their Body-Sign:
	// emulator.KeyLicense (the default, when empty) or emulator.KeyBasic.
	// Which one KooGallery uses is UNCONFIRMED (koobridge serve
	// --online-license-key-type).
	OnlineLicenseKey emulator.KeyType
	// LicenseUploadWindow is how long, in emulated time, the
	// online-license profile waits for the seller's upload of a license
	// getLicenseAsync asked for; zero means
	// emulator.DefaultLicenseUploadWindow (1 h, 10 s of wall time at the
	// suite's clock speed).
	LicenseUploadWindow time.Duration
	// AK and SK are the credentials the mocked Open API accepts: the ones
	// the seller signs its Query Order calls with. Required.
	AK, SK string
	// UsageURL is the seller's usage API, e.g.
	// https://isv.example.com/api/v1/usage (koobridge serve's POST
	// /api/v1/usage), and UsageToken its bearer token: the metering
	// profile reports usage there. Required with the metering profile.
	UsageURL   string
	UsageToken string
	// UsageWait is how long the metering profile waits for the seller to
	// push the usage it reported; zero means DefaultUsageWait (5 min).
	// It bounds the whole watch, UsageQuiet included.
	UsageWait time.Duration
	// UsageQuiet is how long no usage push may arrive, once every hour
	// reported has been pushed and the push the suite held has been sent
	// again, before the metering profile judges what arrived: a seller
	// that pushes a period twice, a few seconds apart, is caught only if
	// the second push comes within it. Give at least twice the seller's
	// push interval; zero means DefaultUsageQuiet (10 s).
	UsageQuiet time.Duration
	// Profile is "period", "onetime", "ondemand", "ondemand-pkg",
	// "order", "v1", "kit", "sso", "license", "online-license",
	// "metering" or "all", or several of them separated by commas
	// ("period,order"); empty means "all", which is the four charging
	// modes and order.
	Profile string
	// Deadline is how long an answer may take; zero means 5 s.
	Deadline time.Duration
	// BodySignOptional stops a missing Body-Sign header from counting as
	// a failure (a Body-Sign that is present must still be right).
	BodySignOptional bool
	// RequireOptional fails a case whose optional interface
	// (upgradeInstance, changeInstanceCheck: saas-v2.md §1.3) answers
	// 000002, not implemented, instead of skipping it.
	RequireOptional bool
	// OpenAPI is where Run serves the mocked Open API while it runs. Run
	// closes it before it returns, whatever the outcome. Required. The
	// online-license profile waits for the seller's license uploads there.
	OpenAPI net.Listener
	// HTTPClient sends the calls to the seller; nil means a default one.
	HTTPClient *http.Client
	// Logger receives the emulator's delivery log; nil discards.
	Logger *slog.Logger
}

// Suite rules: what the edge cases check beyond the emulator's rules on
// each answer. Failure.Rule carries one of these or an emulator.Rule.
const (
	RuleIdempotentNewInstance = "idempotent-new-instance" // a repeated newInstance returns the same instanceId
	RuleIdempotentRelease     = "idempotent-release"      // releasing a released instance succeeds
	RuleUnknownInstance       = "unknown-instance"        // a never-issued instanceId answers 000003
	RuleSignature             = "signature-check"         // a wrong signature answers 000001
	RuleTimestamp             = "timestamp-check"         // a stale, future or missing timestamp answers 000001
	RuleNonce                 = "nonce-check"             // a replayed or missing nonce answers 000001
	RuleValidation            = "parameter-check"         // unknown activity, missing or overlong field answer 000002
	RuleQueryInfo             = "query-info"              // queryInstance reports the instance asked for
	RuleScenario              = "scenario"                // the scenario did not reach the state it should
	RuleNotRun                = "not-run"                 // the case could not run: what it builds on failed
	RuleIdempotentOrderNotify = "idempotent-order-notify" // a repeated or concurrent orderNotify is answered as the first
	RuleGeneralKey            = "general-key"             // orderNotify signed with another key than the general key answers 000001
	RuleAuthToken             = "auth-token-check"        // a V1 or Kit V1 call with a missing, wrong or wrong-key authToken answers 000001
	RuleKitIdempotent         = "kit-idempotent"          // a repeated Kit add answers 000000 again
	RuleKitDeleteUnknown      = "kit-delete-unknown"      // deleting what is not there answers 000000
	RuleKitUserLimit          = "kit-user-limit"          // authSync with more than 500 users is refused
	RuleKitClientSecret       = "kit-client-secret"       // an undecryptable clientSecret is refused
	RuleKitTestAccount        = "kit-test-account"        // the test-account flow (empty instanceId and orderId) answers 000000
)

var suiteSpec = map[string]string{
	RuleIdempotentNewInstance: "saas-v2.md §6.1, §3.1",
	RuleIdempotentRelease:     "saas-v2.md §6.1, §3.5",
	RuleUnknownInstance:       "saas-v2.md §5 (000003), §3.3–§3.5",
	RuleSignature:             "saas-v2.md §2.2",
	RuleTimestamp:             "saas-v2.md §2.2 (60 s window)",
	RuleNonce:                 "saas-v2.md §2.2 (nonce cache)",
	RuleValidation:            "saas-v2.md §5 (000002), §3",
	RuleQueryInfo:             "saas-v2.md §3.2, §6.4",
	RuleScenario:              "saas-v2.md §6.3",
	RuleNotRun:                "saas-v2.md §6.3",
	RuleIdempotentOrderNotify: "license-openapi.md §F (deduplicate on orderId + orderLineId), saas-v2.md §6.1",
	RuleGeneralKey:            "license-openapi.md Addenda (orderNotify: the general key), §A.6, saas-v2.md §2.1",
	RuleAuthToken:             "saas-v1-joint-login.md §A.2, §A.4 (000001), §B.1",
	RuleKitIdempotent:         "saas-v2.md §3.8 (idempotent), saas-v1-joint-login.md §B.2–§B.6",
	RuleKitDeleteUnknown:      "saas-v2.md §3.8 (deleting what does not exist succeeds)",
	RuleKitUserLimit:          "saas-v1-joint-login.md §B.4 (≤ 500 users per call), saas-v2.md §3.8",
	RuleKitClientSecret:       "saas-v1-joint-login.md §B.3, §C.1 (clientSecret RSA-OAEP to the seller's key), saas-v2.md §3.8",
	RuleKitTestAccount:        "saas-v1-joint-login.md §B.2, §B.7 (test account: empty instanceId and orderId)",
	RuleSSOSignIn:             "saas-v1-joint-login.md §C.2, §C.3",
	RuleSSOCodeExchange:       "saas-v1-joint-login.md §C.3 (the code exchanged server-side)",
	RuleSSOClientSecret:       "saas-v1-joint-login.md §C.1, §C.3, §B.3 (the decrypted clientSecret)",
	RuleSSOState:              "saas-v1-joint-login.md §C.3 (state), RFC 6749 §10.12",
	RuleSSOUnauthorisedUser:   "saas-v1-joint-login.md §C.1, §B.4 (only users authSync authorised)",
	RuleSSORevokedUser:        "saas-v1-joint-login.md §C.1, §B.4, saas-v2.md §3.8 (revoked users)",
	RuleSSOLogout:             "saas-v1-joint-login.md §C.5",
	RuleIdempotentLicense:     "license-openapi.md §A.4 (idempotent and repeatable: retries, re-triggers, dial tests), §C.6",
	RuleLicenseUnknownCode:    "license-openapi.md §A.1 (KooGallery issues the code; the seller may hear of it first in any call), §A.4",
	RuleLicenseKey:            "license-openapi.md §A.6 (the key bound to License授权码交付接口)",
	RuleLicenseDebugApart:     "license-openapi.md §A.2 (the dial tests replay debug cases, testFlag 1), §A.7",
	RuleLicenseUpload:         "license-openapi.md §C.6, §C.7 (the license uploaded for the eventId: multipart, APIG-signed, sha256)",
	RuleLicenseUploadOnce:     "license-openapi.md §C.6 (a repeated application gets the same license)",
	RuleLicenseExpiry:         "license-openapi.md §C.6 (000902: a period license needs an expiry time)",
}

// Run runs the suite against cfg.Target and returns the report. Failed
// cases are in the report, not in the error: the error is for a bad
// configuration or a failed setup (no report), or for ctx ending early
// (with the partial report).
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.OpenAPI == nil {
		return nil, errors.New("conformance: config: OpenAPI listener is required")
	}
	names, err := cfg.check()
	if err != nil {
		_ = cfg.OpenAPI.Close()
		return nil, err
	}
	if cfg.Deadline == 0 {
		cfg.Deadline = DefaultDeadline
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	ssoOn := slices.ContainsFunc(names, func(p profileDef) bool { return p.name == ProfileSSO })
	publicURL := ""
	if ssoOn {
		publicURL = ssoPublicURL(cfg.SSO, cfg.OpenAPI)
	}
	e, err := emulator.New(emulator.Config{
		PublicURL:           publicURL,
		Target:              cfg.Target,
		OrderNotifyTarget:   cfg.OrderNotifyTarget,
		KitTarget:           cfg.KitTarget,
		LicenseTarget:       cfg.LicenseTarget,
		OnlineLicenseTarget: cfg.OnlineLicenseTarget,
		OnlineLicenseKey:    cfg.OnlineLicenseKey,
		LicenseUploadWindow: cfg.LicenseUploadWindow,
		SellerPublicKey:     cfg.RSAPublicKey,
		Key:                 cfg.Key,
		KitKey:              cfg.KitKey,
		LicenseKey:          cfg.LicenseKey,
		GeneralKey:          cfg.GeneralKey,
		AK:                  cfg.AK,
		SK:                  cfg.SK,
		Deadline:            cfg.Deadline,
		TimeScale:           timeScale,
		BodySignOptional:    cfg.BodySignOptional,
		NoRetry:             true,
		KeepGoing:           true,
		HTTPClient:          cfg.HTTPClient,
		Logger:              logger,
	})
	if err != nil {
		_ = cfg.OpenAPI.Close()
		return nil, fmt.Errorf("conformance: %w", err)
	}
	defer e.Close()

	// With the sso profile the listener serves the tenants' OneAccess
	// too, recording the token requests and logouts the cases judge.
	rec := &oaRecorder{}
	handler := e.OpenAPIHandler()
	// With the metering profile the usage pushes pass a gate that notes
	// each one and holds the first kept (see usageGate).
	var gate *usageGate
	if slices.ContainsFunc(names, func(p profileDef) bool { return p.name == ProfileMetering }) {
		gate = newUsageGate(handler)
		handler = gate
	}
	if ssoOn {
		handler = rec.handler(e, handler)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(cfg.OpenAPI) }()
	defer func() {
		_ = srv.Close()
		<-served
	}()

	r := &runner{e: e, cfg: cfg, oa: rec, gate: gate, report: &Report{
		Target:   emulator.RedactURL(cfg.Target),
		Profile:  profileString(names),
		Deadline: cfg.Deadline,
		Started:  time.Now(),
		OpenAPI:  cfg.OpenAPI.Addr().String(),
	}}
	// The edge cases, and the order notification, work on the product of
	// the first charging-mode profile chosen (PERIOD when none is).
	first := protocol.ChargingPeriod
	if i := slices.IndexFunc(names, func(n profileDef) bool { return n.mode != "" }); i >= 0 {
		first = names[i].mode
	}
	base, ok := r.product(first)
	if !ok {
		return nil, fmt.Errorf("conformance: the emulator has no %s product", first)
	}
	for _, n := range runOrder(names) {
		switch n.name {
		case ProfileOrder:
			r.order(ctx, base)
			continue
		case ProfileV1:
			r.v1(ctx)
			continue
		case ProfileKit:
			r.kit(ctx, base)
			continue
		case ProfileSSO:
			r.sso(ctx, base)
			continue
		case ProfileLicense:
			if err := r.license(ctx); err != nil {
				return nil, err
			}
			continue
		case ProfileOnlineLicense:
			if err := r.onlineLicense(ctx); err != nil {
				return nil, err
			}
			continue
		case ProfileMetering:
			r.metering(ctx)
			continue
		}
		p, ok := r.product(n.mode)
		if !ok {
			return nil, fmt.Errorf("conformance: the emulator has no %s product", n.mode)
		}
		r.profile(ctx, n.name, p)
	}
	if slices.ContainsFunc(names, func(n profileDef) bool { return n.mode != "" }) {
		r.edge(ctx, base)
	} else if ctx.Err() == nil {
		r.deadline() // the V2 edge cases need a V2 charging-mode profile; the deadline holds for all
	}
	r.report.Duration = time.Since(r.report.Started)
	r.report.OpenAPICalls = len(e.OpenAPIRequests())
	if err := ctx.Err(); err != nil {
		return r.report, fmt.Errorf("conformance: %w", err)
	}
	return r.report, nil
}

// Validate reports the first setting of cfg that Run would refuse
// (Target, OrderNotifyTarget, KitTarget, LicenseTarget,
// OnlineLicenseTarget, OnlineLicenseKey, Key, AK, SK, Profile, Deadline,
// RSAPublicKey with the kit profile, UsageURL and UsageToken with the
// metering profile, UsageWait, UsageQuiet), so a
// caller can check them before it opens the Open API listener. It does
// not look at OpenAPI, which Run requires too.
func (cfg Config) Validate() error {
	_, err := cfg.check()
	return err
}

// check validates cfg and returns the profiles to run.
func (cfg Config) check() ([]profileDef, error) {
	names, err := cfg.profileNames()
	switch {
	case err != nil:
		return nil, err
	case cfg.Deadline < 0:
		return nil, fmt.Errorf("conformance: config: Deadline %v is negative", cfg.Deadline)
	case cfg.LicenseUploadWindow < 0:
		return nil, fmt.Errorf("conformance: config: LicenseUploadWindow %v is negative", cfg.LicenseUploadWindow)
	case cfg.UsageWait < 0:
		return nil, fmt.Errorf("conformance: config: UsageWait %v is negative", cfg.UsageWait)
	case cfg.UsageQuiet < 0:
		return nil, fmt.Errorf("conformance: config: UsageQuiet %v is negative", cfg.UsageQuiet)
	case cfg.Key == "":
		return nil, errors.New("conformance: config: Key is required")
	case cfg.AK == "" || cfg.SK == "":
		return nil, errors.New("conformance: config: AK and SK are required")
	case cfg.RSAPublicKey == nil && slices.ContainsFunc(names, func(p profileDef) bool { return p.name == ProfileKit }):
		return nil, errors.New("conformance: config: the kit profile needs the seller's RSA public key (RSAPublicKey, --rsa-public-key-file) to encrypt applicationSync's clientSecret")
	case cfg.RSAPublicKey == nil && slices.ContainsFunc(names, func(p profileDef) bool { return p.name == ProfileSSO }):
		return nil, errors.New("conformance: config: the sso profile needs the seller's RSA public key (RSAPublicKey, --rsa-public-key-file) to encrypt applicationSync's clientSecret")
	}
	if slices.ContainsFunc(names, func(p profileDef) bool { return p.name == ProfileSSO }) {
		if err := cfg.SSO.check(); err != nil {
			return nil, err
		}
	}
	if slices.ContainsFunc(names, func(p profileDef) bool { return p.name == ProfileMetering }) {
		if u, err := url.Parse(cfg.UsageURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("conformance: config: the metering profile needs the seller's usage API URL (UsageURL, --usage-url): %q is not an http or https URL", cfg.UsageURL)
		}
		if cfg.UsageToken == "" {
			return nil, errors.New("conformance: config: the metering profile needs the usage API's bearer token (UsageToken, --usage-token)")
		}
	}
	if u, err := url.Parse(cfg.Target); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("conformance: config: Target %q is not an http or https URL", cfg.Target)
	}
	for _, t := range []struct{ name, url string }{{"OrderNotifyTarget", cfg.OrderNotifyTarget}, {"KitTarget", cfg.KitTarget},
		{"LicenseTarget", cfg.LicenseTarget}, {"OnlineLicenseTarget", cfg.OnlineLicenseTarget}} {
		if t.url == "" {
			continue
		}
		if u, err := url.Parse(t.url); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("conformance: config: %s %q is not an http or https URL", t.name, t.url)
		}
	}
	switch cfg.OnlineLicenseKey {
	case "", emulator.KeyLicense, emulator.KeyBasic:
	default:
		return nil, fmt.Errorf("conformance: config: OnlineLicenseKey %q: want %s or %s", cfg.OnlineLicenseKey, emulator.KeyLicense, emulator.KeyBasic)
	}
	return names, nil
}

// profileNames returns the profiles to run, in run order, each once:
// Config.Profile is one name or several separated by commas, "all"
// standing for the profiles not named-only.
func (cfg Config) profileNames() ([]profileDef, error) {
	if strings.TrimSpace(cfg.Profile) == "" {
		return allProfiles(), nil
	}
	want := map[string]bool{}
	for _, name := range strings.Split(cfg.Profile, ",") {
		name = strings.TrimSpace(name)
		if name != ProfileAll && !slices.ContainsFunc(profiles, func(p profileDef) bool { return p.name == name }) {
			what := fmt.Sprintf("%q", cfg.Profile)
			if name != cfg.Profile {
				what += fmt.Sprintf(" (%q)", name)
			}
			return nil, fmt.Errorf("conformance: config: profile %s: want one of %s, or several separated by commas", what, strings.Join(Profiles(), ", "))
		}
		want[name] = true
	}
	var out []profileDef
	for _, p := range profiles {
		if want[p.name] || (want[ProfileAll] && !p.named) {
			out = append(out, p)
		}
	}
	return out, nil
}

// runOrder is the order profiles run in: metering first, for it buys
// instances in the past, which the emulator accepts up to 60 emulated
// days back, and the other profiles move the emulated clock by months;
// then the others as listed.
func runOrder(names []profileDef) []profileDef {
	out := slices.Clone(names)
	slices.SortStableFunc(out, func(a, b profileDef) int {
		return cmp.Compare(b2i(b.name == ProfileMetering), b2i(a.name == ProfileMetering))
	})
	return out
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// allProfiles are the profiles "all" stands for.
func allProfiles() []profileDef {
	return slices.DeleteFunc(slices.Clone(profiles), func(p profileDef) bool { return p.named })
}

// profileString names the profiles run, for the report: "all" or the
// names separated by commas.
func profileString(names []profileDef) string {
	if slices.Equal(names, allProfiles()) {
		return ProfileAll
	}
	s := make([]string, len(names))
	for i, n := range names {
		s[i] = n.name
	}
	return strings.Join(s, ",")
}

// Profiles returns the profile names Config.Profile accepts, alone or
// separated by commas.
func Profiles() []string {
	out := make([]string, 0, len(profiles)+1)
	for _, p := range profiles {
		out = append(out, p.name)
	}
	return append(out, ProfileAll)
}

// runner runs the cases and collects the report.
type runner struct {
	e      *emulator.Emulator
	cfg    Config
	oa     *oaRecorder // what the tenants' OneAccess served (sso profile)
	gate   *usageGate  // the usage pushes (metering profile)
	report *Report
}

func (r *runner) product(mode string) (emulator.Product, bool) {
	ps := r.e.Products()
	i := slices.IndexFunc(ps, func(p emulator.Product) bool { return p.ChargingMode == mode })
	if i < 0 {
		return emulator.Product{}, false
	}
	return ps[i], true
}

// caseRun is a case being run.
type caseRun struct {
	c     Case
	start time.Time
}

func (r *runner) begin(id, title, spec string) *caseRun {
	return &caseRun{c: Case{ID: id, Title: title, Spec: spec}, start: time.Now()}
}

// end records the case in the report.
func (r *runner) end(cr *caseRun) {
	cr.c.Pass = len(cr.c.Failures) == 0 && !cr.c.Skipped
	cr.c.Duration = time.Since(cr.start)
	r.report.Cases = append(r.report.Cases, cr.c)
}

// fail adds a failure of a suite rule.
func (cr *caseRun) fail(rule, format string, args ...any) {
	cr.c.Failures = append(cr.c.Failures, Failure{Rule: rule, Message: fmt.Sprintf(format, args...), Spec: suiteSpec[rule]})
}

// translate turns an emulator violation of one attempt into the failure
// the case reports; ok false keeps the violation as it is, and ok with a
// zero Failure drops it (the answer is right for the case).
type translate func(a emulator.Attempt, v emulator.Violation) (Failure, bool)

// add records every attempt of m as an exchange and every violation as a
// failure, passing each through tr when it is not nil.
func (cr *caseRun) add(m emulator.Message, tr translate) {
	for _, a := range m.Attempts {
		x := Exchange{
			Interface:  m.Interface,
			MessageID:  m.ID,
			Request:    a.Request, // the emulator has redacted the URL
			Response:   a.Response,
			Duration:   a.Duration,
			ResultCode: a.ResultCode,
		}
		for _, v := range a.Violations {
			if tr != nil {
				if f, ok := tr(a, v); ok {
					if f != (Failure{}) { // a zero Failure: the answer is right
						x.Violations = append(x.Violations, v)
						cr.c.Failures = append(cr.c.Failures, f)
					}
					continue
				}
			}
			x.Violations = append(x.Violations, v)
			cr.c.Failures = append(cr.c.Failures, Failure{
				Rule:    string(v.Rule),
				Message: m.Interface + ": " + v.Message,
				Spec:    v.Spec,
			})
		}
		cr.c.Exchanges = append(cr.c.Exchanges, x)
	}
}

// addRun records the messages of a scenario run. It reports whether the
// run succeeded; when it did not and no answer broke a rule (the run
// stopped for another reason), the reason is a failure of its own.
func (r *runner) addRun(cr *caseRun, run emulator.Run, err error) bool {
	return r.addRunWith(cr, run, err, nil)
}

// addRunWith is addRun with the violations of each message passed
// through tr(message), when tr is not nil.
func (r *runner) addRunWith(cr *caseRun, run emulator.Run, err error, tr func(m emulator.Message) translate) bool {
	before := len(cr.c.Failures)
	for _, id := range run.Messages {
		if m, ok := r.e.Message(id); ok {
			var t translate
			if tr != nil {
				t = tr(m)
			}
			cr.add(m, t)
		}
	}
	switch {
	case err != nil:
		cr.fail(RuleNotRun, "not run: %v (an earlier case failed)", err)
		return false
	case !run.OK && len(cr.c.Failures) == before:
		msg := run.Err
		if msg == "" {
			msg = "the scenario stopped early"
		}
		cr.fail(RuleScenario, "scenario %s: %s", run.Scenario, msg)
		return false
	}
	return run.OK && len(cr.c.Failures) == before
}
