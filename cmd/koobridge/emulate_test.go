package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/koobridge/koobridge/conformance"
	"github.com/koobridge/koobridge/internal/lockbuf"

	"github.com/koobridge/koobridge/emulator"
	"github.com/koobridge/koobridge/internal/testseller"
)

// TestEmulateServes runs the emulate command's server against an
// independent seller and drives a purchase through its JSON API over HTTP.
func TestEmulateServes(t *testing.T) {
	const key = "emulate-test-key"
	seller := httptest.NewServer(testseller.New(key, testseller.Faults{}))
	defer seller.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	em, err := emulator.New(emulator.Config{Target: seller.URL + "/produce", Key: key, AK: emulatorAK, SK: emulatorSK, PublicURL: listenerURL(ln.Addr())})
	if err != nil {
		t.Fatal(err)
	}
	defer em.Close()

	ctx, cancel := context.WithCancel(context.Background())
	var out lockbuf.Buffer
	done := make(chan error, 1)
	go func() { done <- runEmulator(ctx, em, ln, "127.0.0.1:0", &out) }()

	urlRE := regexp.MustCompile(`web page and JSON API: (http://\S+)/`)
	openAPIRE := regexp.MustCompile(`Open API alone: (http://\S+)`)
	var base, openAPI string
	for i := 0; i < 200 && (base == "" || openAPI == ""); i++ {
		if m := urlRE.FindStringSubmatch(out.String()); m != nil {
			base = m[1]
		}
		if m := openAPIRE.FindStringSubmatch(out.String()); m != nil {
			openAPI = m[1]
		}
		time.Sleep(10 * time.Millisecond)
	}
	if base == "" || openAPI == "" {
		t.Fatalf("no URLs printed:\n%s", out.String())
	}
	if want := "tenants' OneAccess (their domainName): " + base + "/oneaccess/<tenantCode>\n"; !strings.Contains(out.String(), want) {
		t.Errorf("output lacks %q:\n%s", want, out.String())
	}
	// The identity centers are served on the same address.
	resp0, err := http.Get(base + "/oneaccess/emunosuch/api/v1/oauth2/authorize?client_id=c&redirect_uri=http://x/cb&response_type=code")
	if err != nil {
		t.Fatal(err)
	}
	body0, _ := io.ReadAll(resp0.Body)
	resp0.Body.Close()
	if resp0.StatusCode != http.StatusNotFound || !strings.Contains(string(body0), "no such tenant: &#34;emunosuch&#34;") {
		t.Errorf("OneAccess of an unknown tenant: %d %s", resp0.StatusCode, body0)
	}

	resp, err := http.Post(base+"/api/emulator/purchases", "application/json", strings.NewReader(`{"productId":"OFFI-EMU-PERIOD"}`))
	if err != nil {
		t.Fatal(err)
	}
	var run emulator.Run
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err := json.Unmarshal(body, &run); err != nil || resp.StatusCode != http.StatusCreated || !run.OK {
		t.Fatalf("purchase: %d %s", resp.StatusCode, body)
	}
	sub, ok := em.Subscription(run.SubscriptionID)
	if !ok || sub.Status != emulator.StatusActive || sub.InstanceID == "" {
		t.Fatalf("subscription after purchase: %+v", sub)
	}

	// The Open API alone answers on its own address: unsigned is refused as the gateway does.
	resp, err = http.Get(openAPI + "/api/mkp-openapi-public/global/v1/order/query?orderId=" + sub.OrderID)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), "APIGW.0301") {
		t.Errorf("unsigned Query Order: %d %s", resp.StatusCode, body)
	}

	cancel()
	if err := <-done; err != nil {
		t.Errorf("runEmulator: %v", err)
	}
}

// TestEmulateFlags checks the usage errors of the command itself.
func TestEmulateFlags(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"emulate"}, "--target is required"},
		{[]string{"emulate", "--target", "http://x"}, "--key is required"},
		{[]string{"emulate", "--target", "http://x", "--key", "k", "--key-file", "f"}, "either --key or --key-file"},
		{[]string{"emulate", "--target", "http://x", "--key-file", "/no/such/key"}, "read --key-file"},
		{[]string{"emulate", "--target", "http://x", "--key", "k", "--sk-file", "/no/such/sk"}, "--sk-file"},
		{[]string{"emulate", "--target", "http://x", "--key", "k", "--sk", "s", "--sk-file", "/no/such/sk"}, "either --sk or --sk-file"},
		{[]string{"emulate", "--target", "http://x", "--key", "k", "--time-scale", "0"}, "--time-scale"},
		{[]string{"emulate", "--target", "http://x", "--key", "k", "--deadline", "-1s"}, "--deadline"},
		{[]string{"emulate", "--target", "ftp://x", "--key", "k"}, "ftp"},
	}
	for _, tt := range tests {
		t.Setenv("KOOBRIDGE_KEY", "")
		t.Setenv("KOOBRIDGE_SK", "")
		var stdout, stderr bytes.Buffer
		code := run(tt.args, strings.NewReader(""), &stdout, &stderr)
		if code != exitUsage || !strings.Contains(stderr.String(), tt.want) {
			t.Errorf("%v: exit %d, stderr %q, want 2 and %q", tt.args, code, stderr.String(), tt.want)
		}
	}
}

// TestSecretsFromEnv: the key and the SK of emulate and conformance come
// from the flag, its file or the environment, in that order.
func TestSecretsFromEnv(t *testing.T) {
	dir := t.TempDir()
	keyFile, skFile := filepath.Join(dir, "key"), filepath.Join(dir, "sk")
	if err := os.WriteFile(keyFile, []byte("file-key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(skFile, []byte("file-sk\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"KOOBRIDGE_KEY": "env-key", "KOOBRIDGE_SK": "env-sk"}
	tests := []struct {
		name    string
		args    []string
		env     bool
		key, sk string
		err     string
	}{
		{"flags", []string{"--key", "flag-key", "--sk", "flag-sk"}, true, "flag-key", "flag-sk", ""},
		{"files", []string{"--key-file", keyFile, "--sk-file", skFile}, true, "file-key", "file-sk", ""},
		{"environment", nil, true, "env-key", "env-sk", ""},
		{"default SK", []string{"--key", "k"}, false, "k", emulatorSK, ""},
		{"no key", nil, false, "", "", "--key is required"},
		{"both SKs", []string{"--key", "k", "--sk", "a", "--sk-file", skFile}, false, "", "", "either --sk or --sk-file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := &cobra.Command{}
			var keys keyFlags
			var sk, skFileFlag string
			keys.register(cmd)
			cmd.Flags().StringVar(&sk, "sk", emulatorSK, "")
			cmd.Flags().StringVar(&skFileFlag, "sk-file", "", "")
			if err := cmd.ParseFlags(tt.args); err != nil {
				t.Fatal(err)
			}
			getenv := func(name string) string {
				if tt.env {
					return env[name]
				}
				return ""
			}
			key, gotSK, err := secretsFromEnv(cmd, &keys, sk, skFileFlag, getenv)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || key != tt.key || gotSK != tt.sk {
				t.Errorf("got %q, %q, %v; want %q, %q", key, gotSK, err, tt.key, tt.sk)
			}
		})
	}
}

// TestTypedKeys: the keys of the other interface types reach the
// emulator's (and the suite's) configuration from their flag, file or
// environment variable, and are left empty (the basic key) otherwise.
func TestTypedKeys(t *testing.T) {
	generalFile := filepath.Join(t.TempDir(), "general")
	if err := os.WriteFile(generalFile, []byte("general-from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name                  string
		args                  []string
		env                   map[string]string
		kit, license, general string
		err                   string
	}{
		{"none", nil, nil, "", "", "", ""},
		{"flags", []string{"--kit-key", "kk", "--license-key", "lk", "--general-key", "gk"}, nil, "kk", "lk", "gk", ""},
		{"file", []string{"--general-key-file", generalFile}, nil, "", "", "general-from-file", ""},
		{"environment", nil, map[string]string{"KOOBRIDGE_GENERAL_KEY": "env-general", "KOOBRIDGE_KIT_KEY": "env-kit"}, "env-kit", "", "env-general", ""},
		{"flag over environment", []string{"--general-key", "flag"}, map[string]string{"KOOBRIDGE_GENERAL_KEY": "env"}, "", "", "flag", ""},
		{"flag and file", []string{"--general-key", "g", "--general-key-file", generalFile}, nil, "", "", "", "either --general-key or --general-key-file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(k string) string { return tt.env[k] }
			for _, which := range []string{"emulate", "conformance"} {
				var kit, license, general string
				var err error
				switch which {
				case "emulate":
					var o emulateOptions
					cmd := &cobra.Command{Use: "emulate"}
					o.register(cmd)
					if err = cmd.Flags().Parse(append([]string{"--target", "http://x/produce", "--key", "k", "--order-notify-target", "http://x/orders"}, tt.args...)); err != nil {
						t.Fatal(err)
					}
					var cfg emulator.Config
					cfg, err = emulateConfig(cmd, &o, getenv)
					kit, license, general = cfg.KitKey, cfg.LicenseKey, cfg.GeneralKey
					if err == nil && cfg.OrderNotifyTarget != "http://x/orders" {
						t.Errorf("order notify target %q", cfg.OrderNotifyTarget)
					}
				case "conformance":
					var o conformanceOptions
					cmd := &cobra.Command{Use: "conformance"}
					o.register(cmd)
					if err = cmd.Flags().Parse(append([]string{"--target", "http://x/produce", "--key", "k", "--ak", "a", "--sk", "s", "--openapi-listen", "127.0.0.1:0"}, tt.args...)); err != nil {
						t.Fatal(err)
					}
					var cfg conformance.Config
					cfg, err = conformanceConfig(cmd, &o, getenv)
					kit, license, general = cfg.KitKey, cfg.LicenseKey, cfg.GeneralKey
				}
				switch {
				case tt.err != "":
					if err == nil || !strings.Contains(err.Error(), tt.err) {
						t.Errorf("%s: error %v, want %q", which, err, tt.err)
					}
				case err != nil:
					t.Errorf("%s: %v", which, err)
				case kit != tt.kit || license != tt.license || general != tt.general:
					t.Errorf("%s: kit %q license %q general %q, want %q %q %q", which, kit, license, general, tt.kit, tt.license, tt.general)
				}
			}
		})
	}
}

// TestEmulateJointFlags: the seller's RSA public key (flag or
// environment), the Kit target and the x-sign form reach the emulator's
// configuration; bad values are usage errors naming the flag.
func TestEmulateJointFlags(t *testing.T) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	pubFile := filepath.Join(dir, "seller.pub.pem")
	if err := os.WriteFile(pubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		args      []string
		env       map[string]string
		wantKey   bool
		kitTarget string
		form      emulator.KitSignForm
		err       string
	}{
		{"defaults", nil, nil, false, "", emulator.KitFormA, ""},
		{"key from the flag", []string{"--rsa-public-key-file", pubFile}, nil, true, "", emulator.KitFormA, ""},
		{"key from the environment", nil, map[string]string{"KOOBRIDGE_RSA_PUBLIC_KEY_FILE": pubFile}, true, "", emulator.KitFormA, ""},
		{"kit target and form B", []string{"--kit-target", "http://x/produce", "--kit-sign-form", "b"}, nil, false, "http://x/produce", emulator.KitFormB, ""},
		{"missing key file", []string{"--rsa-public-key-file", filepath.Join(dir, "absent")}, nil, false, "", "", "--rsa-public-key-file"},
		{"not a key", []string{"--rsa-public-key-file", notPEM}, nil, false, "", "", "--rsa-public-key-file " + notPEM},
		{"bad form", []string{"--kit-sign-form", "C"}, nil, false, "", "", `--kit-sign-form "C": want A or B`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var o emulateOptions
			cmd := &cobra.Command{Use: "emulate"}
			o.register(cmd)
			if err := cmd.Flags().Parse(append([]string{"--target", "http://x/produce", "--key", "k"}, tt.args...)); err != nil {
				t.Fatal(err)
			}
			cfg, err := emulateConfig(cmd, &o, func(k string) string { return tt.env[k] })
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (cfg.SellerPublicKey != nil) != tt.wantKey || (tt.wantKey && !cfg.SellerPublicKey.Equal(&priv.PublicKey)) {
				t.Errorf("SellerPublicKey %v, want key: %v", cfg.SellerPublicKey, tt.wantKey)
			}
			if cfg.KitTarget != tt.kitTarget || cfg.KitSignForm != tt.form {
				t.Errorf("KitTarget %q, KitSignForm %q; want %q, %q", cfg.KitTarget, cfg.KitSignForm, tt.kitTarget, tt.form)
			}
		})
	}
}

// TestEmulateOneAccessFlags: --user-password and --public-url reach the
// emulator's configuration; an empty password and a public URL that is
// not http(s) are refused.
func TestEmulateOneAccessFlags(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		password  string
		publicURL string
		err       string
	}{
		{"defaults", nil, emulator.DefaultUserPassword, "", ""},
		{"password", []string{"--user-password", "Tenant-Pass-1"}, "Tenant-Pass-1", "", ""},
		{"public URL", []string{"--public-url", "https://emu.ci.example.com/"}, emulator.DefaultUserPassword, "https://emu.ci.example.com/", ""},
		{"empty password", []string{"--user-password", ""}, "", "", "--user-password must not be empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var o emulateOptions
			cmd := &cobra.Command{Use: "emulate"}
			o.register(cmd)
			if err := cmd.Flags().Parse(append([]string{"--target", "http://x/produce", "--key", "k"}, tt.args...)); err != nil {
				t.Fatal(err)
			}
			cfg, err := emulateConfig(cmd, &o, func(string) string { return "" })
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || cfg.UserPassword != tt.password || cfg.PublicURL != tt.publicURL {
				t.Errorf("UserPassword %q, PublicURL %q, %v; want %q, %q", cfg.UserPassword, cfg.PublicURL, err, tt.password, tt.publicURL)
			}
		})
	}

	t.Setenv("KOOBRIDGE_KEY", "")
	var stdout, stderr bytes.Buffer
	code := run([]string{"emulate", "--target", "http://x/produce", "--key", "k", "--listen", "127.0.0.1:0", "--public-url", "ftp://x"}, strings.NewReader(""), &stdout, &stderr)
	if code != exitUsage || !strings.Contains(stderr.String(), `PublicURL "ftp://x" is not an http(s) URL`) {
		t.Errorf("--public-url ftp://x: exit %d, stderr %q", code, stderr.String())
	}
}

// TestEmulateLicenseFlags: the license flags reach the emulator's
// configuration; a key type other than license or basic and a window that
// is not positive are refused, a target that is not http(s) by New.
func TestEmulateLicenseFlags(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		target   string
		online   string
		key      emulator.KeyType
		window   time.Duration
		err, new string
	}{
		{name: "defaults", key: emulator.KeyLicense, window: emulator.DefaultLicenseUploadWindow},
		{name: "set", args: []string{"--license-target", "http://x/lic", "--online-license-target", "http://x/online", "--online-license-key-type", "basic", "--license-upload-window", "10m"},
			target: "http://x/lic", online: "http://x/online", key: emulator.KeyBasic, window: 10 * time.Minute},
		{name: "kit key type", args: []string{"--online-license-key-type", "kit"}, err: `--online-license-key-type "kit": want license or basic`},
		{name: "zero window", args: []string{"--license-upload-window", "0s"}, err: "--license-upload-window 0s"},
		{name: "ftp target", args: []string{"--license-target", "ftp://x/lic"}, key: emulator.KeyLicense, window: emulator.DefaultLicenseUploadWindow, target: "ftp://x/lic",
			new: `LicenseTarget "ftp://x/lic" is not an http(s) URL`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var o emulateOptions
			cmd := &cobra.Command{Use: "emulate"}
			o.register(cmd)
			if err := cmd.Flags().Parse(append([]string{"--target", "http://x/produce", "--key", "k"}, tt.args...)); err != nil {
				t.Fatal(err)
			}
			cfg, err := emulateConfig(cmd, &o, func(string) string { return "" })
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || cfg.LicenseTarget != tt.target || cfg.OnlineLicenseTarget != tt.online || cfg.OnlineLicenseKey != tt.key || cfg.LicenseUploadWindow != tt.window {
				t.Errorf("config %q %q %q %v, %v; want %q %q %q %v", cfg.LicenseTarget, cfg.OnlineLicenseTarget, cfg.OnlineLicenseKey, cfg.LicenseUploadWindow, err,
					tt.target, tt.online, tt.key, tt.window)
			}
			em, err := emulator.New(cfg)
			if tt.new != "" {
				if err == nil || !strings.Contains(err.Error(), tt.new) {
					t.Errorf("New: %v, want %q", err, tt.new)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer em.Close()
			if c := em.Config(); tt.target == "" && c.LicenseTarget != "http://x/license" {
				t.Errorf("default LicenseTarget %q, want http://x/license", c.LicenseTarget)
			}
		})
	}
}

// TestListenerURL: the public URL made from a listener's address.
func TestListenerURL(t *testing.T) {
	tests := []struct{ addr, want string }{
		{"127.0.0.1:8090", "http://127.0.0.1:8090"},
		{"0.0.0.0:8090", "http://127.0.0.1:8090"},
		{"[::]:8090", "http://127.0.0.1:8090"},
		{"[::1]:8090", "http://[::1]:8090"},
		{"192.0.2.7:80", "http://192.0.2.7:80"},
	}
	for _, tt := range tests {
		addr, err := net.ResolveTCPAddr("tcp", tt.addr)
		if err != nil {
			t.Fatal(err)
		}
		if got := listenerURL(addr); got != tt.want {
			t.Errorf("listenerURL(%s) = %q, want %q", tt.addr, got, tt.want)
		}
	}
}
