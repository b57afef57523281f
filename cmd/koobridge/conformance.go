package main

import (
	"cmp"
	"crypto/rsa"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/koobridge/koobridge/conformance"
	"github.com/koobridge/koobridge/emulator"
	"github.com/koobridge/koobridge/isv"
	"github.com/koobridge/koobridge/protocol/sign"
)

// conformanceOptions are the flags of "koobridge conformance".
type conformanceOptions struct {
	keys                 keyFlags
	typedKeys            typedKeyFlags
	target, orderTarget  string
	kitTarget            string
	licenseTarget        string
	onlineLicenseTarget  string
	onlineLicenseKey     string
	licenseUploadWindow  time.Duration
	rsaPublicKeyFile     string
	sso                  conformance.SSOConfig
	ak                   string
	sk, skFile           string
	openAPIListen, junit string
	profile              string
	usageURL             string
	usageToken           string
	usageTokenFile       string
	usageWait            time.Duration
	usageQuiet           time.Duration
	deadline             time.Duration
	bodySignOptional     bool
	requireOptional      bool
	verbose              bool
}

func newConformanceCommand() *cobra.Command {
	var o conformanceOptions
	cmd := &cobra.Command{
		Use:   "conformance --target URL --key KEY --ak AK --sk SK --openapi-listen HOST:PORT",
		Short: "Check a seller's production interface the way KooGallery does; exit 1 if anything fails",
		Long: `Play KooGallery toward a seller's production interface (in any language) and
check every answer as the Seller Center debugger does: every lifecycle scenario of
the profile's charging modes, order notification (profile order), the SaaS V1
GET interfaces (profile v1), the joint-operation Kit (profile kit, which needs
the seller's RSA public key: --rsa-public-key-file) and single sign-on through the
tenant's OneAccess (profile sso: the public key and --sso-login-url,
--sso-whoami-url, --sso-logout-url of the seller's app), license codes
(profile license: each call delivered twice at once and again, a late renewal
retry, codes first heard of, debug calls replayed, wrong key, stale timestamp,
replayed nonce, bad fields) and online license (profile online-license: the
instance calls and getLicenseAsync, whose license the seller must upload to the
mocked Open API) and pay-per-use metering (profile metering: usage reported to
the seller's usage API at --usage-url with --usage-token must be pushed to the
mocked Open API, each hour once, adding up, within --usage-wait), then the edge
cases (repeated and concurrent
newInstance, a second release, unknown instances, wrong signature, stale
timestamp, missing signature, timestamp or nonce, a timestamp ahead, replayed
nonce, unknown activity, missing and overlong fields, the deadline). A case of an
optional interface (upgradeInstance, changeInstanceCheck) that the seller answers
with 000002 is skipped, unless --require-optional.

While it runs it serves the mocked Open API on --openapi-listen: point the
seller's Open API URL there so its Query Order calls find the test orders and
its license uploads reach the suite.

The report goes to standard output (with --verbose, the calls of passed cases
too); --junit also writes JUnit XML for CI. Exit status: 0 every case passed,
1 a case failed or the run was interrupted (the report is then partial), 2 bad
flags or setup. The keys may come from --key-file or KOOBRIDGE_KEY (and
--general-key-file or KOOBRIDGE_GENERAL_KEY, …) and the SK from --sk-file or
KOOBRIDGE_SK instead. Give --general-key when the seller's order notification
is bound to its own key (通用接口), as Seller Center requires: then the suite
also checks that a call signed with another key is refused. Profile all is
every V2 profile and order; v1, kit, sso, license, online-license and
metering run only when named. The license calls go to --license-target (default: the origin
of --target + /license, koobridge serve's --license-path) and are signed with
--license-key.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := conformanceConfig(cmd, &o, os.Getenv)
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", o.openAPIListen)
			if err != nil {
				return usageErrorf("--openapi-listen: %v", err)
			}
			cfg.OpenAPI = ln
			cfg.Logger = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
			// Open the JUnit file first, so a bad path fails at once
			// rather than after the whole run.
			var junitFile *os.File
			if o.junit != "" {
				if junitFile, err = os.Create(o.junit); err != nil {
					_ = ln.Close()
					return usageErrorf("--junit: %v", err)
				}
				defer junitFile.Close() // after a successful write, a second Close is harmless
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			report, err := conformance.Run(ctx, cfg)
			if report == nil {
				if junitFile != nil {
					_ = junitFile.Close()
					_ = os.Remove(o.junit) // nothing to report
				}
				return usageErrorf("%v", err) // Run has closed the listener
			}
			write := report.WriteText
			if o.verbose {
				write = report.WriteTextVerbose
			}
			if werr := write(cmd.OutOrStdout()); werr != nil {
				return fmt.Errorf("write the report: %w", werr)
			}
			if junitFile != nil {
				if werr := writeJUnit(junitFile, report); werr != nil {
					return usageErrorf("--junit: %v", werr)
				}
			}
			if err != nil {
				return rejectedf("%v", err) // interrupted: the report is partial
			}
			if failed := len(report.Failed()); failed > 0 {
				return rejectedf("%d of %d conformance cases failed", failed, len(report.Cases))
			}
			return nil
		},
	}
	o.register(cmd)
	return cmd
}

// register declares the flags of "koobridge conformance" on cmd.
func (o *conformanceOptions) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.target, "target", "", "the seller's V2 production interface URL, e.g. https://isv.example.com/produce")
	f.StringVar(&o.orderTarget, "order-notify-target", "", "the seller's URL for order notifications (default: --target)")
	f.StringVar(&o.kitTarget, "kit-target", "", "base URL of the Kit calls, which go to it + /produceAPI/[v2/]<name> (default: the origin of --target, the seller's root; give --target's URL to send them under the production path)")
	f.StringVar(&o.rsaPublicKeyFile, "rsa-public-key-file", "", "the seller's RSA public key (PEM, as 'koobridge keygen rsa' writes it) that the kit profile encrypts applicationSync's clientSecret to (or KOOBRIDGE_RSA_PUBLIC_KEY_FILE)")
	f.StringVar(&o.sso.LoginURL, "sso-login-url", "", "sso profile: the seller's URL that starts a sign-in for a tenant; {tenantId} in it is replaced, e.g. https://app.example.com/login?tenant={tenantId}")
	f.StringVar(&o.sso.WhoamiURL, "sso-whoami-url", "", "sso profile: a page of the seller's app that answers 200 with the signed-in user's userName in its body when the browser is signed in, anything else otherwise")
	f.StringVar(&o.sso.LogoutURL, "sso-logout-url", "", "sso profile: the app's logout, POSTed like a sign-out button (GET when the POST answers 405)")
	f.StringVar(&o.sso.PublicURL, "sso-public-url", "", "sso profile: the suite's base URL as the seller and the browser reach --openapi-listen, where the tenants' OneAccess is served (default http://<--openapi-listen>, 0.0.0.0 and :: as 127.0.0.1)")
	f.StringVar(&o.licenseTarget, "license-target", "", "the seller's URL for the license-code calls (profile license; default: the origin of --target + /license)")
	f.StringVar(&o.onlineLicenseTarget, "online-license-target", "", "the seller's URL for the online-license calls (profile online-license; default: --license-target)")
	f.StringVar(&o.onlineLicenseKey, "online-license-key-type", string(emulator.KeyLicense), "the key type that signs the online-license calls and their Body-Sign: license or basic (UNCONFIRMED; as serve --online-license-key-type)")
	f.DurationVar(&o.licenseUploadWindow, "license-upload-window", emulator.DefaultLicenseUploadWindow, "how long (emulated; the suite's clock runs 360 times faster) online-license/request-license waits for the seller's upload")
	o.keys.register(cmd)
	o.typedKeys.register(cmd)
	f.StringVar(&o.ak, "ak", "", "the access key ID the mocked Open API accepts")
	f.StringVar(&o.sk, "sk", "", "the secret access key the mocked Open API accepts (or KOOBRIDGE_SK)")
	f.StringVar(&o.skFile, "sk-file", "", "read --sk from this file")
	f.StringVar(&o.openAPIListen, "openapi-listen", "", "host:port to serve the mocked Open API on while the suite runs")
	f.StringVar(&o.usageURL, "usage-url", "", "metering profile: the seller's usage API, e.g. https://isv.example.com"+isv.UsagePath)
	f.StringVar(&o.usageToken, "usage-token", "", "metering profile: the usage API's bearer token (or KOOBRIDGE_USAGE_TOKEN)")
	f.StringVar(&o.usageTokenFile, "usage-token-file", "", "read --usage-token from this file")
	f.DurationVar(&o.usageWait, "usage-wait", conformance.DefaultUsageWait, "metering profile: how long to wait for the seller to push the usage reported")
	f.DurationVar(&o.usageQuiet, "usage-quiet", conformance.DefaultUsageQuiet, "metering profile: how long no push may arrive before the pushes are judged (at least twice the seller's push interval)")
	f.StringVar(&o.profile, "profile", conformance.ProfileAll, "what to test, one or several separated by commas: "+strings.Join(conformance.Profiles(), ", "))
	f.StringVar(&o.junit, "junit", "", "also write the report as JUnit XML to this file")
	f.DurationVar(&o.deadline, "deadline", conformance.DefaultDeadline, "how long an answer may take (saas-v2.md §1.1; 5s, UNCONFIRMED)")
	f.BoolVar(&o.bodySignOptional, "body-sign-optional", false, "do not fail answers without a Body-Sign header (whether V2 checks it is UNCONFIRMED)")
	f.BoolVar(&o.requireOptional, "require-optional", false, "fail, rather than skip, cases of optional interfaces (upgradeInstance, changeInstanceCheck) the seller answers 000002 to")
	f.BoolVar(&o.verbose, "verbose", false, "show what was sent and what came back for passed cases too")
}

// conformanceConfig reads the secrets (flag, file or environment) and
// checks the flags: everything but the listener and the logger, which the
// caller sets once the configuration is known to be good.
func conformanceConfig(cmd *cobra.Command, o *conformanceOptions, getenv func(string) string) (conformance.Config, error) {
	if o.target == "" {
		return conformance.Config{}, usageErrorf("--target is required: the seller's production interface URL")
	}
	key, sk, err := secretsFromEnv(cmd, &o.keys, o.sk, o.skFile, getenv)
	if err != nil {
		return conformance.Config{}, err
	}
	kit, license, general, err := o.typedKeys.values(cmd, getenv)
	if err != nil {
		return conformance.Config{}, err
	}
	switch {
	case o.ak == "" || sk == "":
		return conformance.Config{}, usageErrorf("--ak and --sk are required (--sk-file or KOOBRIDGE_SK for the SK): the mocked Open API accepts the seller's Query Order calls signed with them")
	case o.openAPIListen == "":
		return conformance.Config{}, usageErrorf("--openapi-listen is required: where the mocked Open API listens (host:port)")
	case o.deadline <= 0:
		// Config takes zero for the default; on the command line it is a mistake.
		return conformance.Config{}, usageErrorf("--deadline %v: want a positive duration", o.deadline)
	case o.licenseUploadWindow <= 0:
		return conformance.Config{}, usageErrorf("--license-upload-window %v: want a positive duration", o.licenseUploadWindow)
	case o.usageWait <= 0:
		return conformance.Config{}, usageErrorf("--usage-wait %v: want a positive duration", o.usageWait)
	case o.usageQuiet <= 0 || o.usageQuiet >= o.usageWait:
		return conformance.Config{}, usageErrorf("--usage-quiet %v: want a positive duration shorter than --usage-wait %v", o.usageQuiet, o.usageWait)
	case o.onlineLicenseKey != string(emulator.KeyLicense) && o.onlineLicenseKey != string(emulator.KeyBasic):
		return conformance.Config{}, usageErrorf("--online-license-key-type %q: want license or basic", o.onlineLicenseKey)
	}
	if _, _, err := net.SplitHostPort(o.openAPIListen); err != nil {
		return conformance.Config{}, usageErrorf("--openapi-listen %q: want host:port (%v)", o.openAPIListen, err)
	}
	usageToken := o.usageToken
	if usageToken == "" && o.usageTokenFile == "" {
		usageToken = getenv(envName("usage-token"))
	}
	if usageToken, err = secretValue(usageToken, "usage-token", o.usageTokenFile); err != nil {
		return conformance.Config{}, err
	}
	var pub *rsa.PublicKey
	if file := cmp.Or(o.rsaPublicKeyFile, getenv("KOOBRIDGE_RSA_PUBLIC_KEY_FILE")); file != "" {
		if pub, err = sellerPublicKey(file); err != nil {
			return conformance.Config{}, err
		}
	}
	cfg := conformance.Config{
		Target:              o.target,
		OrderNotifyTarget:   o.orderTarget,
		KitTarget:           o.kitTarget,
		LicenseTarget:       o.licenseTarget,
		OnlineLicenseTarget: o.onlineLicenseTarget,
		OnlineLicenseKey:    emulator.KeyType(o.onlineLicenseKey),
		LicenseUploadWindow: o.licenseUploadWindow,
		RSAPublicKey:        pub,
		SSO:                 o.sso,
		Key:                 key,
		KitKey:              kit,
		LicenseKey:          license,
		GeneralKey:          general,
		AK:                  o.ak,
		SK:                  sk,
		UsageURL:            o.usageURL,
		UsageToken:          usageToken,
		UsageWait:           o.usageWait,
		UsageQuiet:          o.usageQuiet,
		Profile:             o.profile,
		Deadline:            o.deadline,
		BodySignOptional:    o.bodySignOptional,
		RequireOptional:     o.requireOptional,
	}
	if err := cfg.Validate(); err != nil {
		return conformance.Config{}, usageErrorf("%v", err)
	}
	return cfg, nil
}

// sellerPublicKey reads --rsa-public-key-file: the seller's RSA public key
// in PEM (PKIX or PKCS#1). Errors name the flag and the file.
func sellerPublicKey(file string) (*rsa.PublicKey, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, usageErrorf("--rsa-public-key-file: %v", err)
	}
	pub, err := sign.ParseRSAPublicKeyPEM(b)
	if err != nil {
		return nil, usageErrorf("--rsa-public-key-file %s: %v", file, err)
	}
	return pub, nil
}

// writeJUnit writes the report's JUnit XML to f and closes it.
func writeJUnit(f *os.File, r *conformance.Report) error {
	if err := r.WriteJUnit(f); err != nil {
		return err
	}
	return f.Close()
}
