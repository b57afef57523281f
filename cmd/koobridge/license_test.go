package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/koobridge/koobridge/emulator/mockapi"
	"github.com/koobridge/koobridge/internal/jobs"
	"github.com/koobridge/koobridge/internal/license"
	"github.com/koobridge/koobridge/internal/licenseapi"
	"github.com/koobridge/koobridge/internal/licensetoken"
	"github.com/koobridge/koobridge/internal/openapi"
	"github.com/koobridge/koobridge/internal/openapi/openapitest"
	"github.com/koobridge/koobridge/internal/seal"
	"github.com/koobridge/koobridge/internal/store/sqlite"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/provision"
)

// TestLicenseFingerprint: the §D.3 fingerprint from Linux's files: the
// physical interfaces' MACs (all but loopback when none is physical), the
// ATA/NVMe serials (SCSI or virtio without them), the board serial unless
// a placeholder, the x86 CPUID words, upper case, a missing part empty.
func TestLicenseFingerprint(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	dir := &fstest.MapFile{Mode: os.ModeDir | 0o755}
	const intelCPU = "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 151\nstepping\t: 2\n" +
		"flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush dts acpi mmx fxsr sse sse2 ss ht tm pbe syscall nx\n\n" +
		"processor\t: 1\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 1\nstepping\t: 0\nflags\t\t: fpu\n"
	for _, tc := range []struct {
		name string
		fs   fstest.MapFS
		want string
	}{
		{"workstation", fstest.MapFS{
			"sys/class/net/lo/address":                                              file("00:00:00:00:00:00\n"),
			"sys/class/net/enp3s0/address":                                          file("04:7c:16:5e:e3:5d\n"),
			"sys/class/net/enp3s0/device":                                           dir,
			"sys/class/net/wlp4s0/address":                                          file("a0:b1:c2:d3:e4:f5\n"),
			"sys/class/net/wlp4s0/device":                                           dir,
			"sys/class/net/docker0/address":                                         file("02:42:ac:11:00:01\n"),
			"dev/disk/by-id/nvme-Samsung_SSD_970_EVO_Plus_1TB_S4EWNX0N123456":       file(""),
			"dev/disk/by-id/nvme-Samsung_SSD_970_EVO_Plus_1TB_S4EWNX0N123456-part1": file(""),
			"dev/disk/by-id/nvme-eui.0025388b91b2cbd2":                              file(""),
			"dev/disk/by-id/ata-ST1000DM003-1CH162_z1d5abcd":                        file(""),
			"dev/disk/by-id/wwn-0x5000c5006a1b2c3d":                                 file(""),
			"dev/disk/by-id/scsi-SATA_ST1000DM003-1CH162_Z1D5ABCD":                  file(""),
			"dev/disk/by-id/usb-SanDisk_Cruzer_4C530001-0:0":                        file(""),
			"sys/class/dmi/id/board_serial":                                         file("/7XYZ123/CN1296367B00AB/\n"),
			"proc/cpuinfo":                                                          file(intelCPU),
		}, "04:7C:16:5E:E3:5D,A0:B1:C2:D3:E4:F5|S4EWNX0N123456,Z1D5ABCD|/7XYZ123/CN1296367B00AB/|BFEBFBFF00090672"},
		{"virtual machine", fstest.MapFS{
			"sys/class/net/lo/address":                 file("00:00:00:00:00:00\n"),
			"sys/class/net/eth0/address":               file("52:54:00:12:34:56\n"),
			"dev/disk/by-id/virtio-vol-0a1b2c3d":       file(""),
			"dev/disk/by-id/virtio-vol-0a1b2c3d-part1": file(""),
			"sys/class/dmi/id/board_serial":            file("To be filled by O.E.M.\n"),
			"proc/cpuinfo": file("processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 33\nstepping\t: 0\n" +
				"flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ht\n"),
		}, "52:54:00:12:34:56|VOL-0A1B2C3D||178BFBFF00A20F10"},
		{"board serial unreadable, ARM", fstest.MapFS{
			"sys/class/net/end0/address": file("dc:a6:32:01:02:03\n"),
			"sys/class/net/end0/device":  dir,
			"proc/cpuinfo":               file("processor\t: 0\nBogoMIPS\t: 108.00\n\nHardware\t: BCM2835\nSerial\t\t: 10000000abcdef01\n"),
		}, "DC:A6:32:01:02:03|||10000000ABCDEF01"},
		{"nothing readable", fstest.MapFS{}, "|||"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := machineFingerprint(tc.fs); got != tc.want {
				t.Errorf("fingerprint\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

// licenseServer is a license service as serve runs it: the handler over
// the real license domain on SQLite, KooGallery's Open API imitation over
// HTTP, and token keys sealed with a data key.
type licenseServer struct {
	url     string
	db      string // the --db of the SQLite file
	dataKey string // base64, as --data-key takes it
	svc     *license.Service
	api     *openapitest.Server
}

// noEvents takes the vendor's license events.
type noEvents struct{}

func (noEvents) Provision(context.Context, provision.Event) (provision.Result, error) {
	return provision.Result{}, nil
}

func newLicenseServer(t *testing.T) *licenseServer {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kb.db")
	st, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	dataKey, err := seal.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := seal.ParseKey(dataKey)
	sealer, err := seal.NewSealer(raw)
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	s := &licenseServer{db: "sqlite:" + path, dataKey: dataKey}
	s.api = openapitest.NewServer(t, "AK-cli", "SK-cli-secret")
	client, err := openapi.New(openapi.Config{BaseURL: s.api.URL(), AK: "AK-cli", SK: "SK-cli-secret"})
	if err != nil {
		t.Fatal(err)
	}
	runner := jobs.NewRunner(jobs.Config{Store: st, Workers: 1, Poll: 10 * time.Millisecond, Logger: quiet})
	if s.svc, err = license.New(license.Config{Store: st, OpenAPI: client, Provisioner: noEvents{}, Jobs: runner, Logger: quiet,
		DeviceKey: []byte("cli-test-device-key-0123456789abcdef")}); err != nil {
		t.Fatal(err)
	}
	if err := runner.RegisterAll(s.svc.Jobs()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = runner.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	ring, err := licensetoken.New(licensetoken.Config{Store: st, Sealer: sealer, Retention: defaultKeyRetention, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	h, err := licenseapi.New(licenseapi.Config{Licenses: s.svc, Tokens: ring, RatePerCode: 100, RatePerAddress: 100, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

func (s *licenseServer) issue(t *testing.T, code string) {
	t.Helper()
	if err := s.api.IssueLicense(mockapi.LicenseCode{Code: code, ProductID: "P1", OrderID: "CS1", Amount: 1,
		Expire: time.Now().UTC().Truncate(time.Second).AddDate(1, 0, 0)}); err != nil {
		t.Fatal(err)
	}
}

// tamperingProxy passes requests on to target and changes the token of
// each answer as change says.
func tamperingProxy(t *testing.T, target string, change func(token string) string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, target+r.URL.Path, r.Body)
		req.Header = r.Header.Clone()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		var a map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		if tok, ok := a["token"].(string); ok {
			a["token"] = change(tok)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(resp.StatusCode)
		_ = json.NewEncoder(w).Encode(a)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestLicenseActivateCheck runs "koobridge license activate|check" against
// a license service over HTTP: the verdict printed, the token verified
// with go-jose against the published keys, exit 1 for a refusal, a
// license not active and a token that does not verify, 2 for bad flags.
func TestLicenseActivateCheck(t *testing.T) {
	s := newLicenseServer(t)
	s.issue(t, "PL-CLI")
	s.issue(t, "PL-CLI-FROZEN")
	const fp = "04:7C:16:5E:E3:5D|||BFEBFBFF00090672"
	flipPayload := func(tok string) string {
		p := strings.Split(tok, ".")
		claims, _ := base64.RawURLEncoding.DecodeString(p[1])
		claims = []byte(strings.Replace(string(claims), `"status":"frozen"`, `"status":"active"`, 1))
		return p[0] + "." + base64.RawURLEncoding.EncodeToString(claims) + "." + p[2]
	}
	for _, tc := range []struct {
		name   string
		before func(t *testing.T)
		args   []string
		code   int
		stdout []string // lines the output must hold
		stderr string
	}{
		{"activate", nil, []string{"activate", "--url", s.url + "/", "--license", "PL-CLI", "--fingerprint", fp}, 0,
			[]string{"license:     PL-CLI", "status:      active", "cached:      false", "token:       verified with key g1-"}, ""},
		{"check", nil, []string{"check", "--url", s.url, "--license", "PL-CLI", "--fingerprint", fp}, 0,
			[]string{"license:     PL-CLI", "status:      active"}, ""},
		{"check from another device", nil, []string{"check", "--url", s.url, "--license", "PL-CLI", "--fingerprint", "OTHER|||"}, 1,
			nil, "license service: HTTP 409 not_activated: "},
		{"unknown code", nil, []string{"activate", "--url", s.url, "--license", "PL-NEVER", "--fingerprint", fp}, 1,
			nil, "license service: HTTP 404 unknown_license: "},
		{"frozen", func(t *testing.T) {
			if r := runCLI(t, "", "license", "activate", "--url", s.url, "--license", "PL-CLI-FROZEN", "--fingerprint", fp); r.code != 0 {
				t.Fatalf("activate: %d %s", r.code, r.stderr)
			}
			if _, err := s.svc.SetStatus(context.Background(), protocol.UpdateLicenseCodeStatusRequest{License: "PL-CLI-FROZEN", Status: protocol.StatusFreeze}); err != nil {
				t.Fatal(err)
			}
		}, []string{"check", "--url", s.url, "--license", "PL-CLI-FROZEN", "--fingerprint", fp}, 1,
			[]string{"status:      frozen", "token:       verified with key g1-"}, "license PL-CLI-FROZEN is frozen"},
		{"payload tampered", nil, []string{"check", "--url", tamperingProxy(t, s.url, flipPayload), "--license", "PL-CLI-FROZEN", "--fingerprint", fp}, 1,
			nil, "license token does not verify"},
		{"not a token", nil, []string{"check", "--url", tamperingProxy(t, s.url, func(string) string { return "x.y" }), "--license", "PL-CLI", "--fingerprint", fp}, 1,
			nil, "license token: "},
		{"service down", nil, []string{"check", "--url", "http://127.0.0.1:1", "--license", "PL-CLI", "--fingerprint", fp}, 1,
			nil, "license service: "},
		{"no url", nil, []string{"check", "--license", "PL-CLI", "--fingerprint", fp}, 2, nil, "--url"},
		{"no license", nil, []string{"activate", "--url", s.url, "--fingerprint", fp}, 2, nil, "--license is required"},
		{"empty fingerprint", nil, []string{"activate", "--url", s.url, "--license", "PL-CLI", "--fingerprint", ""}, 2, nil, "--fingerprint must not be empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.before != nil {
				tc.before(t)
			}
			r := runCLI(t, "", append([]string{"license"}, tc.args...)...)
			if r.code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, tc.code, r.stdout, r.stderr)
			}
			for _, line := range tc.stdout {
				if !strings.Contains(r.stdout, line) {
					t.Errorf("stdout lacks %q:\n%s", line, r.stdout)
				}
			}
			if !strings.Contains(r.stderr, tc.stderr) {
				t.Errorf("stderr %q, want …%s…", r.stderr, tc.stderr)
			}
		})
	}
}

// TestLicensePubkeyAndRotateKey: rotate-key makes the next generation with
// serve's data key (and refuses another) and says when it starts signing;
// the service keeps signing with the replaced key meanwhile; pubkey prints
// the set from the database alone (KOOBRIDGE_DB works as --db), the new
// key at once and the replaced one while it signs and within
// --license-key-retention after.
func TestLicensePubkeyAndRotateKey(t *testing.T) {
	s := newLicenseServer(t)
	kids := func(r cliResult) []string {
		t.Helper()
		var set licensetoken.JWKSet
		if err := json.Unmarshal([]byte(r.stdout), &set); err != nil {
			t.Fatalf("pubkey printed %q: %v", r.stdout, err)
		}
		out := []string{}
		for _, k := range set.Keys {
			if k.Kty != "OKP" || k.Crv != "Ed25519" || k.Alg != "EdDSA" || k.Use != "sig" || len(k.X) != 43 {
				t.Errorf("key %+v is not an Ed25519 signing JWK", k)
			}
			out = append(out, k.Kid)
		}
		return out
	}

	if r := runCLI(t, "", "license", "pubkey", "--db", s.db); r.code != 1 || !strings.Contains(r.stderr, "no license token key yet") {
		t.Errorf("pubkey before any key: exit %d %s", r.code, r.stderr)
	}
	// The service makes generation 1 when it signs its first token.
	s.issue(t, "PL-ROT")
	if r := runCLI(t, "", "license", "activate", "--url", s.url, "--license", "PL-ROT", "--fingerprint", "F|||"); r.code != 0 {
		t.Fatalf("activate: %d %s", r.code, r.stderr)
	}
	r := runCLI(t, "", "license", "pubkey", "--db", s.db)
	if r.code != 0 {
		t.Fatalf("pubkey: %d %s", r.code, r.stderr)
	}
	first := kids(r)
	if len(first) != 1 || !strings.HasPrefix(first[0], "g1-") {
		t.Fatalf("pubkey printed %v, want generation 1", first)
	}

	other, _ := seal.GenerateKey()
	if r := runCLI(t, "", "license", "rotate-key", "--db", s.db, "--data-key", other); r.code != 2 || !strings.Contains(r.stderr, "not the data key") {
		t.Errorf("rotate-key with another data key: exit %d %s", r.code, r.stderr)
	}
	if r := runCLI(t, "", "license", "rotate-key", "--db", s.db); r.code != 2 || !strings.Contains(r.stderr, "--data-key is required") {
		t.Errorf("rotate-key without a data key: exit %d %s", r.code, r.stderr)
	}
	keyFile := filepath.Join(t.TempDir(), "data.key")
	if err := os.WriteFile(keyFile, []byte(s.dataKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	r = runCLI(t, "", "license", "rotate-key", "--db", s.db, "--data-key-file", keyFile)
	if r.code != 0 {
		t.Fatalf("rotate-key: %d %s", r.code, r.stderr)
	}
	kid := strings.TrimSpace(r.stdout)
	if !strings.HasPrefix(kid, "g2-") {
		t.Fatalf("rotate-key printed %q, want a generation 2 kid", kid)
	}
	if strings.Contains(r.stdout+r.stderr, s.dataKey) {
		t.Error("the data key was printed")
	}
	// The note names the moment the key signs: Staging after it was made.
	m := regexp.MustCompile(`^koobridge: (g2-\S+) is published now and signs license tokens from (\S+) \(in 6m0s\); ` +
		`the replaced key signs until then and stays published for 720h0m0s after\n$`).FindStringSubmatch(r.stderr)
	if m == nil || m[1] != kid {
		t.Fatalf("rotate-key said %q, want when %s starts signing", r.stderr, kid)
	}
	signsAt, err := time.Parse(time.RFC3339, m[2])
	if err != nil || signsAt.Before(before.Add(licensetoken.Staging).Truncate(time.Second)) || signsAt.After(time.Now().Add(licensetoken.Staging)) {
		t.Errorf("rotate-key says %s signs from %s, want Staging after the rotation", kid, m[2])
	}
	// The service keeps signing with the replaced key until then.
	if r := runCLI(t, "", "license", "check", "--url", s.url, "--license", "PL-ROT", "--fingerprint", "F|||"); r.code != 0 ||
		!strings.Contains(r.stdout, "token:       verified with key "+first[0]) {
		t.Errorf("check right after the rotation: exit %d, want a token of %s\n%s%s", r.code, first[0], r.stdout, r.stderr)
	}

	t.Setenv("KOOBRIDGE_DB", s.db)
	if got := kids(runCLI(t, "", "license", "pubkey")); !reflect.DeepEqual(got, []string{kid, first[0]}) {
		t.Errorf("pubkey after rotation %v, want [%s %s]", got, kid, first[0])
	}
	// The replaced key still signs, whatever the retention after.
	if got := kids(runCLI(t, "", "license", "pubkey", "--license-key-retention", "1ns")); !reflect.DeepEqual(got, []string{kid, first[0]}) {
		t.Errorf("pubkey with a retention of 1ns while the replaced key signs %v, want [%s %s]", got, kid, first[0])
	}
	// What the service publishes is what pubkey prints.
	resp, err := http.Get(s.url + licenseapi.PathKeys)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var served licensetoken.JWKSet
	if err := json.NewDecoder(resp.Body).Decode(&served); err != nil {
		t.Fatal(err)
	}
	printed := runCLI(t, "", "license", "pubkey")
	var set licensetoken.JWKSet
	if err := json.Unmarshal([]byte(printed.stdout), &set); err != nil {
		t.Fatal(err)
	}
	// The service's cache may not have the new key for a minute yet.
	if !reflect.DeepEqual(served.Keys[len(served.Keys)-1], set.Keys[len(set.Keys)-1]) {
		t.Errorf("the service publishes %+v, pubkey prints %+v", served, set)
	}
	if r := runCLI(t, "", "license", "pubkey", "--license-key-retention", "0s"); r.code != 2 {
		t.Errorf("a zero retention: exit %d", r.code)
	}
}

// TestLicenseUsable: the command's verdict on verified claims is the
// client examples': active, before its expiry (when known) and before
// validUntil; exit status 1 otherwise.
func TestLicenseUsable(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) string { return now.Add(d).Format(time.RFC3339) }
	for _, tc := range []struct {
		name string
		c    licensetoken.Claims
		want string // "" when usable
	}{
		{"active", licensetoken.Claims{License: "PL1", Status: "active", Expires: at(time.Hour), ValidUntil: at(time.Minute)}, ""},
		{"active without expiry", licensetoken.Claims{License: "PL1", Status: "active", ValidUntil: at(time.Second)}, ""},
		{"frozen", licensetoken.Claims{License: "PL1", Status: "frozen", Expires: at(time.Hour), ValidUntil: at(time.Hour)}, "license PL1 is frozen"},
		{"released", licensetoken.Claims{License: "PL1", Status: "released", ValidUntil: at(0)}, "license PL1 is released"},
		{"expired", licensetoken.Claims{License: "PL1", Status: "active", Expires: at(-time.Second), ValidUntil: at(time.Hour)},
			"license PL1 expired at " + at(-time.Second)},
		{"expires now", licensetoken.Claims{License: "PL1", Status: "active", Expires: at(0), ValidUntil: at(time.Hour)}, "license PL1 expired at"},
		{"grace over", licensetoken.Claims{License: "PL1", Status: "active", Expires: at(time.Hour), ValidUntil: at(-time.Second)},
			"license PL1 was last confirmed too long ago (valid until " + at(-time.Second) + ")"},
		{"grace ends now", licensetoken.Claims{License: "PL1", Status: "active", ValidUntil: at(0)}, "was last confirmed too long ago"},
		{"unreadable expiry", licensetoken.Claims{License: "PL1", Status: "active", Expires: "2027-01-01", ValidUntil: at(time.Hour)},
			`expires "2027-01-01" is not an RFC 3339 time`},
		{"no validUntil", licensetoken.Claims{License: "PL1", Status: "active", Expires: at(time.Hour)}, `validUntil "" is not an RFC 3339 time`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := licenseUsable(tc.c, now)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var ee *exitError
			if !errors.As(err, &ee) || ee.code != exitRejected || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%v, want exit status 1 with …%s…", err, tc.want)
			}
		})
	}
}

// TestLicenseCallExpired: "license check" of a code the service answers
// active (as its cache does until the next query after the expiry) exits 1
// at a moment past the expiry, and at one past validUntil; the verdict is
// printed all the same.
func TestLicenseCallExpired(t *testing.T) {
	s := newLicenseServer(t)
	expire := time.Now().UTC().Truncate(time.Second).Add(time.Hour)
	if err := s.api.IssueLicense(mockapi.LicenseCode{Code: "PL-EXP", ProductID: "P1", OrderID: "CS1", Amount: 1, Expire: expire}); err != nil {
		t.Fatal(err)
	}
	const fp = "04:7C:16:5E:E3:5D|||"
	if r := runCLI(t, "", "license", "activate", "--url", s.url, "--license", "PL-EXP", "--fingerprint", fp); r.code != 0 {
		t.Fatalf("activate: %d %s", r.code, r.stderr)
	}
	for _, tc := range []struct {
		name  string
		after time.Duration
		want  string // "" when usable
	}{
		{"now", 0, ""},
		{"after the expiry", 2 * time.Hour, "license PL-EXP expired at " + expire.Format(time.RFC3339)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			now := func() time.Time { return time.Now().Add(tc.after) }
			err := licenseCall(t.Context(), &out, &http.Client{}, s.url, licenseapi.PathCheck, "PL-EXP", fp, now)
			if !strings.Contains(out.String(), "status:      active") {
				t.Errorf("the verdict is not printed:\n%s", out.String())
			}
			if tc.want == "" {
				if err != nil {
					t.Fatalf("check: %v", err)
				}
				return
			}
			var ee *exitError
			if !errors.As(err, &ee) || ee.code != exitRejected || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("check %v later: %v, want exit status 1 with …%s…", tc.after, err, tc.want)
			}
		})
	}
	// A code without a near expiry, checked past its validUntil.
	s.issue(t, "PL-GRACE")
	if r := runCLI(t, "", "license", "activate", "--url", s.url, "--license", "PL-GRACE", "--fingerprint", fp); r.code != 0 {
		t.Fatalf("activate: %d %s", r.code, r.stderr)
	}
	var out bytes.Buffer
	err := licenseCall(t.Context(), &out, &http.Client{}, s.url, licenseapi.PathCheck, "PL-GRACE", fp,
		func() time.Time { return time.Now().Add(defaultGraceForTest + time.Hour) })
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != exitRejected || !strings.Contains(err.Error(), "license PL-GRACE was last confirmed too long ago") {
		t.Errorf("check past validUntil: %v, want exit status 1", err)
	}
}

// defaultGraceForTest is the license service's offline grace in
// newLicenseServer (the license domain's default).
const defaultGraceForTest = license.DefaultGrace
