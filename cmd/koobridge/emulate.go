package main

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
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/koobridge/koobridge/emulator"
)

// emulateOptions are the flags of "koobridge emulate".
type emulateOptions struct {
	listen           string
	openAPIListen    string
	target           string
	orderTarget      string
	keys             keyFlags
	typedKeys        typedKeyFlags
	ak, sk, skFile   string
	timeScale        float64
	deadline         time.Duration
	bodySignOptional bool
	noRetry          bool
	rsaPublicKeyFile string
	kitTarget        string
	kitSignForm      string
	userPassword     string
	publicURL        string
	accessTokenLife  time.Duration
	// License products.
	licenseTarget       string
	onlineLicenseTarget string
	onlineLicenseKey    string
	licenseUploadWindow time.Duration
}

// The Open API credentials the emulator accepts unless told otherwise. They
// guard nothing: the emulator is a local test tool.
const (
	emulatorAK = "emulator-ak"
	emulatorSK = "emulator-sk"
)

func newEmulateCommand() *cobra.Command {
	var o emulateOptions
	cmd := &cobra.Command{
		Use:   "emulate",
		Short: "Play KooGallery toward a seller: web page, JSON API and the mocked Open API",
		Long: `Run the KooGallery emulator against the production interface at --target. Open the
web page on --listen to buy products, fire lifecycle scenarios and read every
request and answer; the JSON API lives under /api/emulator/ (docs/emulator.md).

The mocked Open API (Query Order, usage push, the license APIs and the license
upload) is served on --listen too, on
KooGallery's own paths; point the seller's Open API base URL at it (or at
--openapi-listen, if given) and give the seller the same --ak/--sk.
Each interface type is signed with its own key: --key (basic interfaces),
--general-key (order notification), --kit-key and --license-key; a type
without a key uses --key. The keys may come from --key-file or KOOBRIDGE_KEY
(--general-key-file or KOOBRIDGE_GENERAL_KEY, …) and the SK from --sk-file
or KOOBRIDGE_SK instead.

Joint-operation products: the Kit calls go to the seller's root (the origin of
--target) unless --kit-target says otherwise, signed with --kit-key; V2 Kit
calls carry x-sign in form A unless --kit-sign-form B. The bind and
test-account scenarios encrypt applicationSync's clientSecret to the seller's
RSA public key: --rsa-public-key-file (or KOOBRIDGE_RSA_PUBLIC_KEY_FILE), the
PEM public key registered with the app credential.

The emulator plays each tenant's identity center (OneAccess) at
<public URL>/oneaccess/<tenantCode>, and sends that as the tenant's
domainName: the public URL is the --listen address (127.0.0.1 for an
unspecified host) unless --public-url says otherwise. Every user authSync
sent signs in there with --user-password.

License products: the license-code calls (OFFI-EMU-LICENSE) and the
online-license calls (OFFI-EMU-ONLINELICENSE) go to --license-target, by
default the origin of --target + /license (serve's --license-path), signed with
--license-key; --online-license-target and --online-license-key-type (license
or basic) override them for online license. request-license waits
--license-upload-window (emulated) for the seller's upload.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := emulateConfig(cmd, &o, os.Getenv)
			if err != nil {
				return err
			}
			cfg.Logger = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelInfo}))
			ln, err := net.Listen("tcp", o.listen)
			if err != nil {
				return fmt.Errorf("listen on %s: %w", o.listen, err)
			}
			if cfg.PublicURL == "" {
				cfg.PublicURL = listenerURL(ln.Addr())
			}
			em, err := emulator.New(cfg)
			if err != nil {
				ln.Close()
				return usageErrorf("%v", err)
			}
			defer em.Close()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runEmulator(ctx, em, ln, o.openAPIListen, cmd.OutOrStdout())
		},
	}
	o.register(cmd)
	return cmd
}

// register declares the flags of "koobridge emulate" on cmd.
func (o *emulateOptions) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.listen, "listen", "127.0.0.1:8090", "address of the web page, the JSON API and the mocked Open API")
	f.StringVar(&o.openAPIListen, "openapi-listen", "", "also serve the mocked Open API alone on this address")
	f.StringVar(&o.target, "target", "", "the seller's production interface URL, e.g. http://127.0.0.1:8080/produce")
	f.StringVar(&o.orderTarget, "order-notify-target", "", "the seller's URL for order notifications (default: --target)")
	o.keys.register(cmd)
	o.typedKeys.register(cmd)
	f.StringVar(&o.ak, "ak", emulatorAK, "the AK the mocked Open API accepts")
	f.StringVar(&o.sk, "sk", emulatorSK, "the SK the mocked Open API accepts (or KOOBRIDGE_SK)")
	f.StringVar(&o.skFile, "sk-file", "", "read --sk from this file")
	f.Float64Var(&o.timeScale, "time-scale", 1, "emulated seconds per real second (3600: an hour of retries passes in a second)")
	f.DurationVar(&o.deadline, "deadline", emulator.DefaultDeadline, "how long the seller may take to answer")
	f.BoolVar(&o.bodySignOptional, "body-sign-optional", false, "do not fail answers without Body-Sign (a wrong one still fails)")
	f.BoolVar(&o.noRetry, "no-retry", false, "deliver every call once; never retry")
	f.StringVar(&o.rsaPublicKeyFile, "rsa-public-key-file", "", "the seller's RSA public key (PEM) applicationSync's clientSecret is encrypted to (or KOOBRIDGE_RSA_PUBLIC_KEY_FILE)")
	f.StringVar(&o.kitTarget, "kit-target", "", "base URL of the Kit calls (<base>/produceAPI/...); default: the origin of --target")
	f.StringVar(&o.kitSignForm, "kit-sign-form", "A", "x-sign form of the V2 Kit calls: A (HMAC over key+nonce+timestamp+body) or B (with the inner body HMAC)")
	f.StringVar(&o.userPassword, "user-password", emulator.DefaultUserPassword, "the password every tenant user signs in with at the emulated OneAccess")
	f.DurationVar(&o.accessTokenLife, "access-token-lifetime", emulator.DefaultAccessTokenLifetime, "expires_in of the emulated OneAccess's access tokens (at least 1s)")
	f.StringVar(&o.publicURL, "public-url", "", "the emulator's base URL as sellers and browsers reach it (tenants' domainName is <it>/oneaccess/<tenantCode>); default: http://<--listen address>")
	f.StringVar(&o.licenseTarget, "license-target", "", "the seller's URL for the license-code calls; default: the origin of --target + /license")
	f.StringVar(&o.onlineLicenseTarget, "online-license-target", "", "the seller's URL for the online-license calls (default: --license-target)")
	f.StringVar(&o.onlineLicenseKey, "online-license-key-type", string(emulator.KeyLicense), "the key type that signs the online-license calls: license or basic")
	f.DurationVar(&o.licenseUploadWindow, "license-upload-window", emulator.DefaultLicenseUploadWindow, "how long (emulated) request-license waits for the seller's license upload")
}

// emulateConfig reads the secrets (flag, file or environment) and checks
// the flags; the caller adds the logger.
func emulateConfig(cmd *cobra.Command, o *emulateOptions, getenv func(string) string) (emulator.Config, error) {
	if o.target == "" {
		return emulator.Config{}, usageErrorf("--target is required: the seller's production interface URL")
	}
	key, sk, err := secretsFromEnv(cmd, &o.keys, o.sk, o.skFile, getenv)
	if err != nil {
		return emulator.Config{}, err
	}
	kit, license, general, err := o.typedKeys.values(cmd, getenv)
	if err != nil {
		return emulator.Config{}, err
	}
	if o.timeScale <= 0 {
		return emulator.Config{}, usageErrorf("--time-scale %v: want a positive number", o.timeScale)
	}
	if o.deadline <= 0 {
		return emulator.Config{}, usageErrorf("--deadline %v: want a positive duration", o.deadline)
	}
	form, err := emulator.ParseKitSignForm(o.kitSignForm)
	if err != nil {
		return emulator.Config{}, usageErrorf("--kit-sign-form %q: want A or B", o.kitSignForm)
	}
	if o.userPassword == "" {
		return emulator.Config{}, usageErrorf("--user-password must not be empty")
	}
	if o.accessTokenLife < time.Second {
		return emulator.Config{}, usageErrorf("--access-token-lifetime %v: want at least 1s (expires_in counts seconds)", o.accessTokenLife)
	}
	onlineKey := emulator.KeyType(o.onlineLicenseKey)
	if onlineKey != emulator.KeyLicense && onlineKey != emulator.KeyBasic {
		return emulator.Config{}, usageErrorf("--online-license-key-type %q: want license or basic", o.onlineLicenseKey)
	}
	if o.licenseUploadWindow <= 0 {
		return emulator.Config{}, usageErrorf("--license-upload-window %v: want a positive duration", o.licenseUploadWindow)
	}
	// Without a key (flag or environment) bind says the key is missing.
	var pub *rsa.PublicKey
	if file := cmp.Or(o.rsaPublicKeyFile, getenv("KOOBRIDGE_RSA_PUBLIC_KEY_FILE")); file != "" {
		if pub, err = sellerPublicKey(file); err != nil {
			return emulator.Config{}, err
		}
	}
	return emulator.Config{
		Target: o.target, OrderNotifyTarget: o.orderTarget, KitTarget: o.kitTarget, KitSignForm: form,
		Key: key, KitKey: kit, LicenseKey: license, GeneralKey: general, AK: o.ak, SK: sk,
		TimeScale: o.timeScale, Deadline: o.deadline,
		BodySignOptional: o.bodySignOptional, NoRetry: o.noRetry,
		SellerPublicKey: pub,
		UserPassword:    o.userPassword, PublicURL: o.publicURL, AccessTokenLifetime: o.accessTokenLife,
		LicenseTarget: o.licenseTarget, OnlineLicenseTarget: o.onlineLicenseTarget, OnlineLicenseKey: onlineKey,
		LicenseUploadWindow: o.licenseUploadWindow,
	}, nil
}

// secretsFromEnv returns the key and the SK of emulate and conformance:
// from --key or --key-file, and from --sk or --sk-file, else from the
// environment variables serve reads too (envName: KOOBRIDGE_KEY,
// KOOBRIDGE_SK). A flag or its file wins over the environment.
func secretsFromEnv(cmd *cobra.Command, keys *keyFlags, sk, skFile string, getenv func(string) string) (key, skValue string, err error) {
	fs := cmd.Flags()
	if !fs.Changed("key") && !fs.Changed("key-file") {
		keys.key = getenv(envName("key"))
	}
	switch {
	case skFile != "" && !fs.Changed("sk"):
		sk = "" // the file replaces the default
	case skFile == "" && !fs.Changed("sk"):
		if v := getenv(envName("sk")); v != "" {
			sk = v
		}
	}
	if key, err = keys.value(); err != nil {
		return "", "", err
	}
	if skValue, err = secretValue(sk, "sk", skFile); err != nil {
		return "", "", err
	}
	return key, skValue, nil
}

// listenerURL is the base URL of a listener for a browser on this
// machine: an unspecified host (0.0.0.0, ::) becomes 127.0.0.1 (a
// listener on :: takes IPv4 too).
func listenerURL(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return "http://" + addr.String()
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// runEmulator serves em on ln (and the Open API alone on openAPIListen,
// if set) until ctx is done.
func runEmulator(ctx context.Context, em *emulator.Emulator, ln net.Listener, openAPIListen string, out io.Writer) error {
	servers := []*http.Server{{Handler: em.Handler(), ReadHeaderTimeout: 10 * time.Second}}
	listeners := []net.Listener{ln}
	fmt.Fprintf(out, "emulator web page and JSON API: http://%s/\n", ln.Addr())
	fmt.Fprintf(out, "mocked Open API (the seller's Open API base URL): http://%s\n", ln.Addr())
	if pub := em.Config().PublicURL; pub != "" {
		fmt.Fprintf(out, "tenants' OneAccess (their domainName): %s%s<tenantCode>\n", pub, emulator.OneAccessPath)
	}
	if openAPIListen != "" {
		oln, err := net.Listen("tcp", openAPIListen)
		if err != nil {
			ln.Close()
			return fmt.Errorf("listen on %s: %w", openAPIListen, err)
		}
		servers = append(servers, &http.Server{Handler: em.OpenAPIHandler(), ReadHeaderTimeout: 10 * time.Second})
		listeners = append(listeners, oln)
		fmt.Fprintf(out, "mocked Open API alone: http://%s\n", oln.Addr())
	}
	return serveAll(ctx, servers, listeners)
}

// serveAll runs each server on its listener until ctx is done or one of
// them fails, then shuts them all down.
func serveAll(ctx context.Context, servers []*http.Server, listeners []net.Listener) error {
	errc := make(chan error, len(servers))
	for i, s := range servers {
		go func() { errc <- s.Serve(listeners[i]) }()
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, s := range servers {
		_ = s.Shutdown(shutCtx)
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("emulator: serve: %w", err)
	}
	return nil
}
