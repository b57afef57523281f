package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/spf13/cobra"

	"github.com/koobridge/koobridge/internal/licenseapi"
	"github.com/koobridge/koobridge/internal/licensetoken"
	"github.com/koobridge/koobridge/internal/seal"
	internalstore "github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/isv"
	"github.com/koobridge/koobridge/store"
)

// defaultKeyRetention is the default of --license-key-retention, as serve
// has it: how long a rotated-out token key stays published.
const defaultKeyRetention = isv.DefaultLicenseKeyRetention

// maxLicenseAnswer bounds what the client reads of the license service's
// answers: a few hundred bytes, a JWK set of a few keys.
const maxLicenseAnswer = 1 << 20

func newLicenseCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "license",
		Short: "Use the license service as the vendor's client software does; print or rotate its token keys",
		Long: `The license service of "koobridge serve" lets the vendor's software in the field
activate and check its KooGallery license code without the vendor's AK/SK, and
answers with a license token signed by koobridge's own Ed25519 key.

  activate, check   ask a running koobridge, as a client would, and verify the token
  fingerprint       print this machine's device fingerprint
  pubkey            print the token keys (a JWK set) from the database
  rotate-key        make a new token key, published at once, signing minutes later`,
		Args: noArgs,
		Run:  func(cmd *cobra.Command, _ []string) { _ = cmd.Help() },
	}
	cmd.AddCommand(
		newLicenseCallCommand("activate", licenseapi.PathActivate),
		newLicenseCallCommand("check", licenseapi.PathCheck),
		newLicenseFingerprintCommand(),
		newLicensePubkeyCommand(),
		newLicenseRotateKeyCommand(),
	)
	return cmd
}

// licenseAnswer is the license service's answer to activate and check.
type licenseAnswer struct {
	License    string `json:"license"`
	Status     string `json:"status"`
	Expires    string `json:"expires"`
	ValidUntil string `json:"validUntil"`
	Cached     bool   `json:"cached"`
	Token      string `json:"token"`
}

// licenseRefusal is an error answer of the license service.
type licenseRefusal struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

func newLicenseCallCommand(op, path string) *cobra.Command {
	var (
		baseURL, code, fingerprint string
		timeout                    time.Duration
	)
	cmd := &cobra.Command{
		Use:   op + " --url URL --license CODE [--fingerprint FP]",
		Short: "Ask koobridge's license service to " + op + " a license code, and verify the token",
		Long: `Ask the license service of the koobridge at --url to ` + op + ` the license code for
this device, as the vendor's client software does, print the answer, and verify
its license token against the service's published keys (GET ` + licenseapi.PathKeys + `).

The device fingerprint defaults to this machine's, computed as "koobridge license
fingerprint" prints it. Exit status 0 when the token verifies, the license is
active, its expiry (when known) is in the future and its validUntil too, the
checks the vendor's software makes; 1 when the service refuses, cannot be
reached, the token does not verify or the license may not be used (not active,
expired, or past validUntil); 2 for bad flags.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			base, err := checkHTTPURL("url", baseURL)
			if err != nil {
				return err
			}
			if code == "" {
				return usageErrorf("--license is required")
			}
			if !cmd.Flags().Changed("fingerprint") {
				fingerprint = machineFingerprint(os.DirFS("/"))
			}
			if fingerprint == "" {
				return usageErrorf("--fingerprint must not be empty")
			}
			if timeout <= 0 {
				return usageErrorf("--timeout %v: want a positive duration", timeout)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			return licenseCall(ctx, cmd.OutOrStdout(), &http.Client{}, base, path, code, fingerprint, time.Now)
		},
	}
	cmd.Flags().StringVar(&baseURL, "url", "", "base URL of the koobridge serving the license service, e.g. https://licenses.vendor.example")
	cmd.Flags().StringVar(&code, "license", "", "the KooGallery license code")
	cmd.Flags().StringVar(&fingerprint, "fingerprint", "", "the device fingerprint (default: this machine's)")
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "how long to wait for the service")
	return cmd
}

// licenseCall asks the service, verifies the token and prints the
// verdict; it fails with exit status 1 unless the verified license may be
// used at now (licenseUsable).
func licenseCall(ctx context.Context, out io.Writer, client *http.Client, base, path, code, fingerprint string,
	now func() time.Time) error {
	reqBody, err := json.Marshal(map[string]string{"license": code, "deviceFingerprint": fingerprint})
	if err != nil {
		return fmt.Errorf("license: encode request: %w", err)
	}
	status, body, err := licenseHTTP(ctx, client, http.MethodPost, base+path, reqBody)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		var r licenseRefusal
		if json.Unmarshal(body, &r) != nil || r.Error == "" {
			return rejectedf("license service: HTTP %d without an error answer", status)
		}
		return rejectedf("license service: HTTP %d %s: %s", status, r.Error, r.Message)
	}
	var a licenseAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		return rejectedf("license service: the answer is not the expected JSON: %v", err)
	}
	kid, claims, err := verifyLicenseToken(ctx, client, base, a.Token)
	if err != nil {
		return err
	}
	if problem := claimsMismatch(claims, a, code, fingerprint); problem != "" {
		return rejectedf("license token: %s", problem)
	}
	expires := a.Expires
	if expires == "" {
		expires = "unknown"
	}
	fmt.Fprintf(out, "license:     %s\nstatus:      %s\nexpires:     %s\nvalid until: %s\ncached:      %t\ntoken:       verified with key %s\n%s\n",
		a.License, a.Status, expires, a.ValidUntil, a.Cached, kid, a.Token)
	return licenseUsable(claims, now())
}

// licenseUsable judges verified claims as the vendor's software does (the
// client examples): the license may be used while its status is active,
// its expiry (when known) is after now, and now is before validUntil (the
// end of the offline grace). A cached answer from before an expiry can
// say active with an expiry already past.
func licenseUsable(c licensetoken.Claims, now time.Time) error {
	if c.Status != "active" {
		return rejectedf("license %s is %s", c.License, c.Status)
	}
	if c.Expires != "" {
		expires, err := time.Parse(time.RFC3339, c.Expires)
		if err != nil {
			return rejectedf("license token: expires %q is not an RFC 3339 time", c.Expires)
		}
		if !now.Before(expires) {
			return rejectedf("license %s expired at %s", c.License, c.Expires)
		}
	}
	validUntil, err := time.Parse(time.RFC3339, c.ValidUntil)
	if err != nil {
		return rejectedf("license token: validUntil %q is not an RFC 3339 time", c.ValidUntil)
	}
	if !now.Before(validUntil) {
		return rejectedf("license %s was last confirmed too long ago (valid until %s)", c.License, c.ValidUntil)
	}
	return nil
}

// licenseHTTP makes one request of the license service and reads its
// answer.
func licenseHTTP(ctx context.Context, client *http.Client, method, url string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, usageErrorf("--url: %v", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, rejectedf("license service: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxLicenseAnswer))
	if err != nil {
		return 0, nil, rejectedf("license service: read the answer: %v", err)
	}
	return resp.StatusCode, b, nil
}

// verifyLicenseToken verifies token with go-jose against the JWK set the
// service publishes, and returns the key's kid and the claims.
func verifyLicenseToken(ctx context.Context, client *http.Client, base, token string) (string, licensetoken.Claims, error) {
	status, body, err := licenseHTTP(ctx, client, http.MethodGet, base+licenseapi.PathKeys, nil)
	if err != nil {
		return "", licensetoken.Claims{}, err
	}
	if status != http.StatusOK {
		return "", licensetoken.Claims{}, rejectedf("license keys: HTTP %d", status)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		return "", licensetoken.Claims{}, rejectedf("license keys: not a JWK set: %v", err)
	}
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		return "", licensetoken.Claims{}, rejectedf("license token: %v", err)
	}
	kid := jws.Signatures[0].Header.KeyID
	keys := set.Key(kid)
	if len(keys) != 1 {
		return "", licensetoken.Claims{}, rejectedf("license token: its key %q is not published", kid)
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		return "", licensetoken.Claims{}, rejectedf("license token does not verify: %v", err)
	}
	var c licensetoken.Claims
	if err := json.Unmarshal(payload, &c); err != nil {
		return "", licensetoken.Claims{}, rejectedf("license token: claims: %v", err)
	}
	return kid, c, nil
}

// claimsMismatch says how the verified claims differ from the answer and
// the request, or "".
func claimsMismatch(c licensetoken.Claims, a licenseAnswer, code, fingerprint string) string {
	switch {
	case c.License != code:
		return fmt.Sprintf("issued for license %q, not %q", c.License, code)
	case c.Fingerprint != fingerprint:
		return "issued for another device"
	case c.Status != a.Status || c.Expires != a.Expires || c.ValidUntil != a.ValidUntil || a.License != code:
		return "its claims differ from the answer"
	}
	return ""
}

func newLicenseFingerprintCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "fingerprint",
		Short: "Print this machine's device fingerprint (MAC|disk|board|CPU, upper case)",
		Long: `Print this machine's device fingerprint in KooGallery's format
"${mac}|${diskId}|${boardId}|${cpuId}", upper case, as far as Linux shows them:
the MAC addresses of the physical network interfaces, the serial numbers of the
ATA and NVMe disks (/dev/disk/by-id), the board serial (readable by root only),
and the CPU signature rebuilt from /proc/cpuinfo as Windows shows it (x86:
the CPUID feature and signature words). A component that cannot be read is
left empty; several values are joined with commas.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintln(cmd.OutOrStdout(), machineFingerprint(os.DirFS("/")))
			return nil
		},
	}
}

// licenseDBFlags are the settings of the commands that open the database.
type licenseDBFlags struct {
	db        string
	retention time.Duration
}

func (f *licenseDBFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.db, "db", "sqlite:koobridge.db", "database: an SQLite path or sqlite: URL, or a postgres:// URL (as serve's)")
	cmd.Flags().DurationVar(&f.retention, "license-key-retention", defaultKeyRetention, "how long a rotated-out token key stays published (as serve's)")
}

// open reads the settings not given as flags from the environment, as
// serve does (KOOBRIDGE_DB, …), checks them and opens the database.
func (f *licenseDBFlags) open(cmd *cobra.Command, getenv func(string) string) (*store.DB, error) {
	if err := flagsFromEnv(cmd, getenv, "db", "license-key-retention"); err != nil {
		return nil, err
	}
	if err := checkDB(f.db); err != nil {
		return nil, err
	}
	if f.retention <= 0 {
		return nil, usageErrorf("--license-key-retention %v: want a positive duration", f.retention)
	}
	return openDatabase(cmd.Context(), serveOptions{db: f.db})
}

// flagsFromEnv sets each flag of names not given on the command line from
// its environment variable (--foo-bar from KOOBRIDGE_FOO_BAR).
func flagsFromEnv(cmd *cobra.Command, getenv func(string) string, names ...string) error {
	for _, name := range names {
		if cmd.Flags().Changed(name) {
			continue
		}
		if v := getenv(envName(name)); v != "" {
			if err := cmd.Flags().Set(name, v); err != nil {
				return usageErrorf("%s: %v", envName(name), err)
			}
		}
	}
	return nil
}

func newLicensePubkeyCommand() *cobra.Command {
	var f licenseDBFlags
	cmd := &cobra.Command{
		Use:   "pubkey [--db DSN]",
		Short: "Print the license token keys as a JWK set, from the database",
		Long: `Print the public keys that verify license tokens now, as the JWK set that
GET ` + licenseapi.PathKeys + ` publishes, newest first: a rotated-in key still staged (published,
not yet signing), the signing key, then the rotated-out keys still within
--license-key-retention. Only the database is needed (the public
keys are kept in the clear), so the set can be built into the vendor's software
or checked against what the service publishes. --db and --license-key-retention
may also come from KOOBRIDGE_DB and KOOBRIDGE_LICENSE_KEY_RETENTION.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, err := f.open(cmd, os.Getenv)
			if err != nil {
				return err
			}
			defer db.Close()
			keys, err := internalstore.Of(db).LicenseKeys(cmd.Context())
			if err != nil {
				return fmt.Errorf("license pubkey: %w", err)
			}
			if len(keys) == 0 {
				return rejectedf("no license token key yet: koobridge serve makes the first when it signs its first token, or run 'koobridge license rotate-key'")
			}
			jwks, err := licensetoken.PublicJWKS(keys, time.Now(), f.retention)
			if err != nil {
				return fmt.Errorf("license pubkey: %w", err)
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, jwks, "", "  "); err != nil {
				return fmt.Errorf("license pubkey: %w", err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), pretty.String())
			return nil
		},
	}
	f.register(cmd)
	return cmd
}

func newLicenseRotateKeyCommand() *cobra.Command {
	var (
		f                    licenseDBFlags
		dataKey, dataKeyFile string
	)
	cmd := &cobra.Command{
		Use:   "rotate-key [--db DSN] --data-key KEY",
		Short: "Make a new license token key: published at once, signing " + licensetoken.Staging.String() + " later",
		Long: `Make a new license token key (the next generation), print its kid, and say on
standard error when it starts signing. Every koobridge on the database publishes
it within ` + licensetoken.RefreshInterval.String() + `, and signs with it ` + licensetoken.Staging.String() + ` after it was made, once key sets
cached without it (` + licensetoken.KeySetMaxAge.String() + `) have expired; until then the replaced key signs.
The replaced key stays published for --license-key-retention after that (as
serve has it: at least the offline grace, so tokens clients keep offline still
verify). Rotation is not revocation: see docs/license.md for a key that leaked.
The private key is sealed with the data key, so --data-key (or --data-key-file)
must be serve's. The settings may also come from KOOBRIDGE_DB,
KOOBRIDGE_DATA_KEY, KOOBRIDGE_DATA_KEY_FILE and KOOBRIDGE_LICENSE_KEY_RETENTION.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := flagsFromEnv(cmd, os.Getenv, "data-key", "data-key-file"); err != nil {
				return err
			}
			raw, err := secretValue(dataKey, "data-key", dataKeyFile)
			if err != nil {
				return err
			}
			if raw == "" {
				return usageErrorf("--data-key is required: the data key koobridge serve runs with")
			}
			key, err := seal.ParseKey(raw)
			if err != nil {
				return usageErrorf("--data-key: not the base64 of 32 bytes")
			}
			sealer, err := seal.NewSealer(key)
			if err != nil {
				return fmt.Errorf("license rotate-key: %w", err)
			}
			db, err := f.open(cmd, os.Getenv)
			if err != nil {
				return err
			}
			defer db.Close()
			ring, err := licensetoken.New(licensetoken.Config{Store: internalstore.Of(db), Sealer: sealer, Retention: f.retention,
				Logger: slog.New(slog.DiscardHandler)}) // the kid is printed below
			if err != nil {
				return fmt.Errorf("license rotate-key: %w", err)
			}
			kid, signsAt, err := ring.Rotate(cmd.Context())
			if errors.Is(err, seal.ErrAuth) {
				return usageErrorf("--data-key is not the data key the token keys were sealed with")
			}
			if err != nil {
				return fmt.Errorf("license rotate-key: %w", err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), kid)
			fmt.Fprintln(cmd.ErrOrStderr(), rotationNote(kid, signsAt, time.Now(), f.retention))
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&dataKey, "data-key", "", "the at-rest encryption key koobridge serve runs with (base64 of 32 bytes)")
	cmd.Flags().StringVar(&dataKeyFile, "data-key-file", "", "read --data-key from this file")
	return cmd
}

// rotationNote tells the operator when the key kid made by rotate-key
// starts signing (signsAt, as the Ring said) and how long the key it
// replaces stays published.
func rotationNote(kid string, signsAt, now time.Time, retention time.Duration) string {
	if !signsAt.After(now) {
		return fmt.Sprintf("koobridge: %s signs license tokens from now on (no key signed before it)", kid)
	}
	return fmt.Sprintf("koobridge: %s is published now and signs license tokens from %s (in %v); "+
		"the replaced key signs until then and stays published for %v after",
		kid, signsAt.UTC().Format(time.RFC3339), signsAt.Sub(now).Round(time.Second), retention)
}
