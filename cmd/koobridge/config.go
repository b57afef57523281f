package main

import (
	"crypto/rsa"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/koobridge/koobridge/internal/inbound"
	"github.com/koobridge/koobridge/internal/ledger"
	"github.com/koobridge/koobridge/internal/seal"
	"github.com/koobridge/koobridge/isv"
	"github.com/koobridge/koobridge/protocol/sign"
	"github.com/koobridge/koobridge/store"
)

// envPrefix names the environment variables: --foo-bar is KOOBRIDGE_FOO_BAR.
const envPrefix = "KOOBRIDGE_"

// defaultOpenAPIURL is KooGallery's Open API; the .cn host is its fallback.
const (
	defaultOpenAPIURL  = "https://mkt.myhuaweicloud.com"
	fallbackOpenAPIURL = "https://mkt.myhuaweicloud.cn"
)

// serveOptions are the raw settings of "koobridge serve", as flags, the
// environment and the YAML file give them.
type serveOptions struct {
	configFile         string
	listen             string
	producePath        string
	db                 string
	dbMaxConns         int
	dbMinConns         int
	dbConnLifetime     time.Duration
	keys               keySetFlags // --key, --key-file: the basic interfaces
	kitKeys            keySetFlags // --kit-key, --kit-key-file
	licenseKeys        keySetFlags // --license-key, --license-key-file
	generalKeys        keySetFlags // --general-key, --general-key-file
	orderNotifyPath    string
	openAPIURL         string
	ak                 string
	sk                 string
	skFile             string
	provisioner        string
	webhookURL         string
	webhookSecret      string
	webhookSecretFile  string
	webhookTimeout     time.Duration
	execCommand        string
	execTimeout        time.Duration
	provisionTestCalls bool
	budget             time.Duration
	adminToken         string
	adminTokenFile     string
	secureCookie       bool
	tlsCert            string
	tlsKey             string
	dataKey            string
	dataKeyFile        string
	rsaPrivateKeyFile  string
	credentials        string
	encryptType        string
	v1EncryptType      string
	v1TimestampWindow  time.Duration
	bodySign           bool
	maxBody            byteSize
	readTimeout        time.Duration
	writeTimeout       time.Duration
	shutdownTimeout    time.Duration
	jobWorkers         int
	jobLease           time.Duration
	ledgerRetention    time.Duration
	ledgerRejected     time.Duration
	logLevel           string
	dev                bool
	sso                ssoOptions     // sso_config.go
	license            licenseOptions // license_config.go
	usage              usageOptions   // usage_config.go
}

// register declares every serve flag with its default.
func (o *serveOptions) register(fs *pflag.FlagSet) {
	o.maxBody = isv.DefaultMaxBodyBytes
	fs.StringVar(&o.configFile, "config", "", "read settings from this YAML file (keys named like the flags)")
	fs.StringVar(&o.listen, "listen", ":8080", "address to listen on (host:port)")
	fs.StringVar(&o.producePath, "produce-path", "/produce", "URL path of the production interface (the basic interfaces)")
	fs.StringVar(&o.orderNotifyPath, "order-notify-path", "", "URL path of order notifications (default: the --produce-path, beside the other activities)")
	fs.StringVar(&o.db, "db", "sqlite:koobridge.db", "database: an SQLite path or sqlite: URL, or a postgres:// URL")
	fs.IntVar(&o.dbMaxConns, "db-max-conns", 10, "PostgreSQL: most connections in the pool (pool_max_conns in --db wins)")
	fs.IntVar(&o.dbMinConns, "db-min-conns", 0, "PostgreSQL: connections kept open when idle (pool_min_conns in --db wins)")
	fs.DurationVar(&o.dbConnLifetime, "db-conn-lifetime", 30*time.Minute, "PostgreSQL: how long a connection is used before it is replaced (pool_max_conn_lifetime in --db wins)")
	o.keys.register(fs, "key", "the KooGallery key bound to the basic interfaces (基础接口)")
	o.kitKeys.register(fs, "kit-key", "the key bound to the joint-operation sync interfaces (联营SaaS同步接口; default: --key)")
	o.licenseKeys.register(fs, "license-key", "the key bound to the license interfaces (License; default: --key)")
	o.generalKeys.register(fs, "general-key", "the key bound to the general interfaces (通用接口, order notification; default: --key)")
	fs.StringVar(&o.openAPIURL, "openapi-url", defaultOpenAPIURL, "KooGallery Open API base URL (the default falls back to mkt.myhuaweicloud.cn)")
	fs.StringVar(&o.ak, "ak", "", "Huawei Cloud access key ID for the Open API")
	fs.StringVar(&o.sk, "sk", "", "Huawei Cloud secret access key for the Open API")
	fs.StringVar(&o.skFile, "sk-file", "", "read --sk from this file")
	fs.StringVar(&o.provisioner, "provisioner", "demo", "how instances are provisioned: demo, webhook or exec")
	fs.StringVar(&o.webhookURL, "webhook-url", "", "the vendor's webhook URL (--provisioner webhook)")
	fs.StringVar(&o.webhookSecret, "webhook-secret", "", "shared secret that signs webhook deliveries")
	fs.StringVar(&o.webhookSecretFile, "webhook-secret-file", "", "read --webhook-secret from this file")
	fs.DurationVar(&o.webhookTimeout, "webhook-timeout", 10*time.Second, "timeout of one webhook delivery")
	fs.StringVar(&o.execCommand, "exec", "", "command line of the exec provisioner (split on spaces; '…' and \"…\" quote)")
	fs.DurationVar(&o.execTimeout, "exec-timeout", 30*time.Second, "timeout of one exec provisioner run")
	fs.BoolVar(&o.provisionTestCalls, "provision-test-calls", false, "send debug calls (testFlag 1, MOCK* orders) to the real provisioner too")
	fs.DurationVar(&o.budget, "budget", isv.DefaultBudget, "time newInstance waits for the provisioner before answering 000004")
	fs.StringVar(&o.adminToken, "admin-token", "", "bearer token of the admin API (unset: admin API disabled)")
	fs.StringVar(&o.adminTokenFile, "admin-token-file", "", "read --admin-token from this file")
	fs.BoolVar(&o.secureCookie, "secure-cookie", false, "mark the console's session cookie Secure on plain HTTP too (TLS ends at a proxy in front)")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "TLS certificate chain (PEM); with --tls-key serves HTTPS")
	fs.StringVar(&o.tlsKey, "tls-key", "", "TLS private key (PEM)")
	fs.StringVar(&o.dataKey, "data-key", "", "at-rest encryption key: base64 of 32 bytes")
	fs.StringVar(&o.dataKeyFile, "data-key-file", "", "read --data-key from this file")
	fs.StringVar(&o.rsaPrivateKeyFile, "rsa-private-key-file", "", "the seller's RSA private key (PEM, PKCS#8 or PKCS#1, at least 3072 bits) that decrypts the Kit's applicationSync clientSecret ('koobridge keygen rsa' makes one)")
	fs.StringVar(&o.credentials, "credentials", "plain", "app-info credentials in queryInstance replies: plain or encrypted")
	fs.StringVar(&o.encryptType, "encrypt-type", "1", "credential cipher when --credentials encrypted: 1 (AES-256) or 2 (AES-128)")
	fs.StringVar(&o.v1EncryptType, "v1-buyer-encrypt-type", "1", "SaaS V1: the product's sensitive-information encryptType (敏感信息加密算法), for the buyer's mobilePhone and email and the always-encrypted V1 credentials: 1 (AES-256) or 2 (AES-128)")
	fs.DurationVar(&o.v1TimestampWindow, "v1-timestamp-window", 0, "SaaS V1 and license 1.0: refuse calls whose timeStamp is further than this from now (0: no window, as none is documented)")
	fs.BoolVar(&o.bodySign, "body-sign", true, "send the Body-Sign header on every reply")
	fs.Var(&o.maxBody, "max-body", "request body limit: bytes, or with KiB/MiB")
	fs.DurationVar(&o.readTimeout, "read-timeout", 10*time.Second, "HTTP read timeout")
	fs.DurationVar(&o.writeTimeout, "write-timeout", 15*time.Second, "HTTP write timeout")
	fs.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 30*time.Second, "how long a shutdown waits for in-flight calls")
	fs.IntVar(&o.jobWorkers, "job-workers", isv.DefaultJobWorkers, "background job workers")
	fs.DurationVar(&o.jobLease, "job-lease", isv.DefaultJobLease, "how long a worker holds a job before another replica may take it over after a crash (at least 10s)")
	fs.DurationVar(&o.ledgerRetention, "ledger-retention", 0, "how long the ledger of calls keeps answered calls, at least 24h (0: for ever)")
	fs.DurationVar(&o.ledgerRejected, "ledger-rejected-retention", 0, "how long the ledger keeps rejected calls (000001, or 000002 before any write), at least 24h (0: as --ledger-retention)")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.BoolVar(&o.dev, "dev", false, "development mode: generate a missing key, data key and admin token, kept in <SQLite file>"+devFileSuffix+" for the next start; allow missing AK/SK")
	o.sso.register(fs)
	o.license.register(fs)
	o.usage.register(fs)
}

// applyEnvAndFile fills every flag not given on the command line from its
// environment variable, then from the YAML file: flag > env > file > default.
func applyEnvAndFile(fs *pflag.FlagSet, getenv func(string) string) error {
	changed := map[string]bool{}
	fs.Visit(func(f *pflag.Flag) { changed[f.Name] = true })

	var envErr error
	fs.VisitAll(func(f *pflag.Flag) {
		if envErr != nil || changed[f.Name] {
			return
		}
		name := envName(f.Name)
		v := getenv(name)
		if v == "" {
			return
		}
		if err := fs.Set(f.Name, v); err != nil {
			envErr = usageErrorf("%s: %v", name, err)
			return
		}
		changed[f.Name] = true
	})
	if envErr != nil {
		return envErr
	}

	path := fs.Lookup("config").Value.String()
	if path == "" {
		return nil
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return usageErrorf("--config: %v", err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return usageErrorf("--config %s: %v", path, err)
	}
	names := make([]string, 0, len(doc))
	for k := range doc {
		names = append(names, k)
	}
	sort.Strings(names) // deterministic error for the first bad key
	for _, k := range names {
		if k == ssoClientsKey {
			continue // YAML only: read by resolveSSO
		}
		f := fs.Lookup(k)
		if f == nil || k == "config" {
			return usageErrorf("--config %s: unknown setting %q", path, k)
		}
		if changed[k] {
			continue
		}
		values, err := yamlValues(doc[k])
		if err != nil {
			return usageErrorf("--config %s: %s: %v", path, k, err)
		}
		if len(values) > 1 && !isList(f) && k != "exec" {
			return usageErrorf("--config %s: %s takes one value, not a list", path, k)
		}
		if k == "exec" && isYAMLList(doc[k]) {
			// A list is the argv itself: quote each element for splitCommand.
			quoted := make([]string, len(values))
			for i, v := range values {
				quoted[i] = "'" + strings.ReplaceAll(v, "'", `'\''`) + "'"
			}
			values = []string{strings.Join(quoted, " ")}
		}
		for _, v := range values {
			if err := fs.Set(k, v); err != nil {
				return usageErrorf("--config %s: %s: %v", path, k, err)
			}
		}
	}
	return nil
}

// envName maps a flag name to its environment variable.
func envName(flag string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

func isList(f *pflag.Flag) bool { return strings.HasSuffix(f.Value.Type(), "Array") }

func isYAMLList(v any) bool { _, ok := v.([]any); return ok }

// yamlValues turns a YAML scalar or list of scalars into flag values.
func yamlValues(v any) ([]string, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			s, err := yamlScalar(e)
			if err != nil {
				return nil, err
			}
			out = append(out, s)
		}
		return out, nil
	default:
		s, err := yamlScalar(x)
		if err != nil {
			return nil, err
		}
		return []string{s}, nil
	}
}

func yamlScalar(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case bool:
		return strconv.FormatBool(x), nil
	case int:
		return strconv.Itoa(x), nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	default:
		return "", fmt.Errorf("want a text, number or boolean, got %T", v)
	}
}

// byteSize is a size flag: "65536", "64KiB", "1MiB".
type byteSize int64

func (b *byteSize) String() string {
	switch n := int64(*b); {
	case n > 0 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + "MiB"
	case n > 0 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + "KiB"
	default:
		return strconv.FormatInt(n, 10)
	}
}

func (b *byteSize) Type() string { return "size" }

func (b *byteSize) Set(s string) error {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 {
		return fmt.Errorf("%q is not a positive size (bytes, KiB or MiB)", s)
	}
	if n > (64<<20)/mult {
		return fmt.Errorf("%q is larger than 64MiB", s)
	}
	*b = byteSize(n * mult)
	return nil
}

// minDBConnLifetime is the shortest --db-conn-lifetime: shorter ones
// reconnect all the time for nothing.
const minDBConnLifetime = time.Minute

// minJobLease is the shortest --job-lease: a job handler's deadline is
// derived from the lease, and shorter leases let slow work be taken over
// while it still runs.
const minJobLease = 10 * time.Second

// serveConfig is the validated configuration: secrets read from their
// files, keys collected, everything checked.
type serveConfig struct {
	opts serveOptions

	keys          isv.Keys
	sk            string
	webhookSecret string
	adminToken    string
	dataKey       []byte
	rsaKey        *rsa.PrivateKey
	execArgv      []string
	encryptType   sign.EncryptType
	v1EncryptType sign.EncryptType
	tlsCert       *tls.Certificate
	openAPIURL    string
	fallbackURL   string
	sso           *isv.SSOConfig // nil: single sign-on off
	licenses      isv.LicenseConfig
	usage         isv.UsageConfig

	// listener, when set, is used instead of listening on opts.listen
	// (koobridge demo opens it itself to learn the port first).
	listener net.Listener

	// dev is what --dev supplied (nil without --dev): the settings not
	// given, kept beside an SQLite database (devstate.go).
	dev *devSecrets
}

// resolveServeConfig applies the environment and the file, reads the
// secret files and validates every setting. Errors are usage errors that
// name the setting.
func resolveServeConfig(cmd *cobra.Command, o *serveOptions, getenv func(string) string) (*serveConfig, error) {
	if err := applyEnvAndFile(cmd.Flags(), getenv); err != nil {
		return nil, err
	}
	c := &serveConfig{opts: *o}
	var err error
	if o.dev {
		// Read only: the file is written once serve holds its address.
		if c.dev, err = loadDevSecrets(o.db); err != nil {
			return nil, err
		}
	}

	if _, _, err := net.SplitHostPort(o.listen); err != nil {
		return nil, usageErrorf("--listen %q: want host:port (%v)", o.listen, err)
	}
	if err := checkPath("produce-path", o.producePath); err != nil {
		return nil, err
	}
	if err := checkDB(o.db); err != nil {
		return nil, err
	}
	if err := checkDBPool(o); err != nil {
		return nil, err
	}

	if c.keys.Basic, err = o.keys.values("key"); err != nil {
		return nil, err
	}
	if len(c.keys.Basic) == 0 {
		if !o.dev {
			return nil, usageErrorf("--key is required (or --key-file; --dev generates one for local use)")
		}
		key, err := c.dev.supply(devKey, seal.GenerateKey)
		if err != nil {
			return nil, err
		}
		c.keys.Basic = []string{key}
	}
	if c.keys.Kit, err = o.kitKeys.values("kit-key"); err != nil {
		return nil, err
	}
	if c.keys.License, err = o.licenseKeys.values("license-key"); err != nil {
		return nil, err
	}
	if c.keys.General, err = o.generalKeys.values("general-key"); err != nil {
		return nil, err
	}
	if o.orderNotifyPath != "" {
		if err := checkPath("order-notify-path", o.orderNotifyPath); err != nil {
			return nil, err
		}
	}

	if c.sk, err = secretValue(o.sk, "sk", o.skFile); err != nil {
		return nil, err
	}
	if !o.dev && (o.ak == "" || c.sk == "") {
		return nil, usageErrorf("--ak and --sk are required: Query Order needs the seller's AK/SK (--dev runs without them)")
	}
	if (o.ak == "") != (c.sk == "") {
		return nil, usageErrorf("--ak and --sk go together: give both or neither")
	}
	if c.openAPIURL, err = checkHTTPURL("openapi-url", o.openAPIURL); err != nil {
		return nil, err
	}
	if c.openAPIURL == defaultOpenAPIURL {
		c.fallbackURL = fallbackOpenAPIURL
	}

	if err := c.resolveProvisioner(o); err != nil {
		return nil, err
	}
	if o.budget <= 0 || o.budget > 20*time.Second {
		return nil, usageErrorf("--budget %v: want more than 0 and at most 20s (KooGallery waits about 5s)", o.budget)
	}
	if c.adminToken, err = secretValue(o.adminToken, "admin-token", o.adminTokenFile); err != nil {
		return nil, err
	}
	if c.adminToken == "" && o.dev {
		// So that the console of a dev server is reachable.
		if c.adminToken, err = c.dev.supply(devAdminToken, newAdminToken); err != nil {
			return nil, err
		}
	}
	if c.adminToken != "" && len(c.adminToken) < 16 {
		return nil, usageErrorf("--admin-token is too short: use at least 16 characters (openssl rand -hex 32)")
	}
	if err := c.resolveTLS(o); err != nil {
		return nil, err
	}

	dataKey, err := secretValue(o.dataKey, "data-key", o.dataKeyFile)
	if err != nil {
		return nil, err
	}
	if dataKey == "" {
		if !o.dev {
			return nil, usageErrorf("--data-key is required: the base64 of 32 random bytes, e.g. from 'openssl rand -base64 32' (--dev generates one and keeps it beside an SQLite database)")
		}
		if dataKey, err = c.dev.supply(devDataKey, seal.GenerateKey); err != nil {
			return nil, err
		}
	}
	if c.dataKey, err = seal.ParseKey(dataKey); err != nil {
		return nil, usageErrorf("--data-key: not the base64 of 32 bytes (make one with 'openssl rand -base64 32')")
	}

	if o.rsaPrivateKeyFile != "" {
		if c.rsaKey, err = readRSAPrivateKey(o.rsaPrivateKeyFile); err != nil {
			return nil, err
		}
	}

	switch o.credentials {
	case "plain", "encrypted":
	default:
		return nil, usageErrorf("--credentials %q: want plain or encrypted", o.credentials)
	}
	if c.encryptType, err = sign.ParseEncryptType(o.encryptType); err != nil {
		return nil, usageErrorf("--encrypt-type %q: want 1 (AES-256) or 2 (AES-128)", o.encryptType)
	}
	if c.v1EncryptType, err = sign.ParseEncryptType(o.v1EncryptType); err != nil {
		return nil, usageErrorf("--v1-buyer-encrypt-type %q: want 1 (AES-256) or 2 (AES-128)", o.v1EncryptType)
	}
	if o.v1TimestampWindow < 0 {
		return nil, usageErrorf("--v1-timestamp-window %v: want 0 (no window) or a positive duration", o.v1TimestampWindow)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"read-timeout", o.readTimeout}, {"write-timeout", o.writeTimeout}, {"shutdown-timeout", o.shutdownTimeout}} {
		if d.v <= 0 {
			return nil, usageErrorf("--%s %v: want a positive duration", d.name, d.v)
		}
	}
	if o.writeTimeout <= o.budget {
		return nil, usageErrorf("--write-timeout %v must be longer than --budget %v, or replies are cut off", o.writeTimeout, o.budget)
	}
	if o.jobWorkers < 1 || o.jobWorkers > 256 {
		return nil, usageErrorf("--job-workers %d: want 1 to 256", o.jobWorkers)
	}
	if o.jobLease < minJobLease {
		return nil, usageErrorf("--job-lease %v: want at least %v", o.jobLease, minJobLease)
	}
	for _, r := range []struct {
		name string
		v    time.Duration
	}{{"--ledger-retention", o.ledgerRetention}, {"--ledger-rejected-retention", o.ledgerRejected}} {
		if err := ledger.CheckRetention(r.name, r.v); err != nil {
			return nil, usageErrorf("%w", err)
		}
	}
	if _, err := parseLogLevel(o.logLevel); err != nil {
		return nil, err
	}
	if c.sso, err = resolveSSO(&o.sso, o.configFile); err != nil {
		return nil, err
	}
	if c.licenses, err = o.license.resolve(o.producePath); err != nil {
		return nil, err
	}
	if c.usage, err = o.usage.resolve(); err != nil {
		return nil, err
	}
	return c, nil
}

// minRSABits is the smallest RSA key Seller Center's app credential
// (应用凭证管理) takes.
const minRSABits = 3072

// readRSAPrivateKey reads and checks --rsa-private-key-file. Errors name
// the file, never its content.
func readRSAPrivateKey(file string) (*rsa.PrivateKey, error) {
	pemBytes, err := os.ReadFile(file)
	if err != nil {
		return nil, usageErrorf("--rsa-private-key-file: %v", err)
	}
	key, err := sign.ParseRSAPrivateKeyPEM(pemBytes)
	if err != nil {
		return nil, usageErrorf("--rsa-private-key-file %s: not a PEM RSA private key (PKCS#8 or PKCS#1)", file)
	}
	if bits := key.N.BitLen(); bits < minRSABits {
		return nil, usageErrorf("--rsa-private-key-file %s: %d-bit key; Seller Center requires at least %d bits ('koobridge keygen rsa' makes one)", file, bits, minRSABits)
	}
	return key, nil
}

func (c *serveConfig) resolveProvisioner(o *serveOptions) error {
	var err error
	switch o.provisioner {
	case "demo":
	case "webhook":
		if _, err := checkHTTPURL("webhook-url", o.webhookURL); err != nil {
			return err
		}
		if c.webhookSecret, err = secretValue(o.webhookSecret, "webhook-secret", o.webhookSecretFile); err != nil {
			return err
		}
		if c.webhookSecret == "" {
			return usageErrorf("--webhook-secret is required with --provisioner webhook")
		}
		if o.webhookTimeout <= 0 {
			return usageErrorf("--webhook-timeout %v: want a positive duration", o.webhookTimeout)
		}
	case "exec":
		if c.execArgv, err = splitCommand(o.execCommand); err != nil {
			return usageErrorf("--exec: %v", err)
		}
		if len(c.execArgv) == 0 {
			return usageErrorf("--exec is required with --provisioner exec")
		}
		if o.execTimeout <= 0 {
			return usageErrorf("--exec-timeout %v: want a positive duration", o.execTimeout)
		}
	default:
		return usageErrorf("--provisioner %q: want demo, webhook or exec", o.provisioner)
	}
	return nil
}

func (c *serveConfig) resolveTLS(o *serveOptions) error {
	switch {
	case o.tlsCert == "" && o.tlsKey == "":
		return nil
	case o.tlsCert == "" || o.tlsKey == "":
		return usageErrorf("--tls-cert and --tls-key go together: give both or neither")
	}
	cert, err := tls.LoadX509KeyPair(o.tlsCert, o.tlsKey)
	if err != nil {
		return usageErrorf("--tls-cert/--tls-key: %v", err)
	}
	c.tlsCert = &cert
	return nil
}

// secretValue returns a secret from its flag or its file (trailing white
// space dropped); giving both is an error.
func secretValue(value, name, file string) (string, error) {
	if file == "" {
		return value, nil
	}
	if value != "" {
		return "", usageErrorf("give either --%s or --%s-file, not both", name, name)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", usageErrorf("--%s-file: %v", name, err)
	}
	s := strings.TrimRight(string(b), " \t\r\n")
	if s == "" {
		return "", usageErrorf("--%s-file %s is empty", name, file)
	}
	return s, nil
}

// reservedPaths are served by koobridge itself.
var reservedPaths = []string{"/healthz", "/readyz", "/metrics", "/admin", isv.UsagePath}

// checkPath checks the URL path of setting name.
func checkPath(name, p string) error {
	if err := inbound.CheckPath(p); err != nil {
		return usageErrorf("--%s: %v", name, err)
	}
	for _, r := range reservedPaths {
		if p == r || strings.HasPrefix(p, r+"/") {
			return usageErrorf("--%s %q collides with koobridge's own %s", name, p, r)
		}
	}
	return nil
}

// keySetFlags are the flags of one key type: --<name> (repeatable, for a
// rotation) and --<name>-file (keys one per non-empty line, repeatable).
type keySetFlags struct {
	keys  []string
	files []string
}

func (k *keySetFlags) register(fs *pflag.FlagSet, name, usage string) {
	fs.StringArrayVar(&k.keys, name, nil, usage+" (repeat for rotation)")
	fs.StringArrayVar(&k.files, name+"-file", nil, "a file with --"+name+" keys, one per non-empty line (repeatable)")
}

// values returns every --<name>, then every line of every --<name>-file;
// none at all is nil (the caller decides whether that is allowed).
func (k *keySetFlags) values(name string) ([]string, error) {
	var keys []string
	for _, key := range k.keys {
		if key == "" {
			return nil, usageErrorf("--%s is empty", name)
		}
		keys = append(keys, key)
	}
	for _, path := range k.files {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, usageErrorf("--%s-file: %v", name, err)
		}
		n := 0
		for line := range strings.Lines(string(b)) {
			if key := strings.TrimSpace(line); key != "" {
				keys = append(keys, key)
				n++
			}
		}
		if n == 0 {
			return nil, usageErrorf("--%s-file %s holds no key", name, path)
		}
	}
	return keys, nil
}

func checkDB(dsn string) error {
	if err := store.CheckDSN(dsn); err != nil {
		return usageErrorf("--db: %v", err)
	}
	return nil
}

func checkHTTPURL(name, raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", usageErrorf("--%s %q: want an http or https URL", name, raw)
	}
	return strings.TrimRight(raw, "/"), nil
}

// splitCommand splits a command line on spaces. Single quotes keep
// everything literally; double quotes group and honour \" and \\; a
// backslash outside quotes escapes the next character. No shell runs.
func splitCommand(s string) ([]string, error) {
	var (
		args   []string
		cur    strings.Builder
		inWord bool
		quote  rune
		escape bool
	)
	for _, r := range s {
		switch {
		case escape:
			cur.WriteRune(r)
			escape = false
		case quote == '\'':
			if r == '\'' {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case quote == '"':
			switch r {
			case '"':
				quote = 0
			case '\\':
				escape = true
			default:
				cur.WriteRune(r)
			}
		case r == '\\':
			escape, inWord = true, true
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t' || r == '\n':
			if inWord {
				args = append(args, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated %c quote", quote)
	}
	if escape {
		return nil, fmt.Errorf("trailing backslash")
	}
	if inWord {
		args = append(args, cur.String())
	}
	return args, nil
}

// redacted lists the settings for the startup log, secrets as set/unset.
func (c *serveConfig) redacted() []any {
	o := c.opts
	setness := func(s string) string {
		if s == "" {
			return "unset"
		}
		return "set"
	}
	return []any{
		"listen", o.listen, "produce_path", o.producePath, "order_notify_path", o.orderNotifyPath, "db", store.RedactDSN(o.db),
		"db_max_conns", o.dbMaxConns, "db_min_conns", o.dbMinConns, "db_conn_lifetime", o.dbConnLifetime.String(),
		"keys", len(c.keys.Basic), "kit_keys", len(c.keys.Kit), "license_keys", len(c.keys.License), "general_keys", len(c.keys.General), "openapi_url", c.openAPIURL, "openapi_fallback", c.fallbackURL,
		"ak", setness(o.ak), "sk", setness(c.sk),
		"provisioner", o.provisioner, "webhook_url", redactURL(o.webhookURL), "webhook_secret", setness(c.webhookSecret),
		"webhook_timeout", o.webhookTimeout.String(), "exec", setness(o.execCommand), "exec_timeout", o.execTimeout.String(),
		"provision_test_calls", o.provisionTestCalls, "budget", o.budget.String(),
		"admin_token", setness(c.adminToken), "tls", c.tlsCert != nil, "data_key", "set",
		"credentials", o.credentials, "encrypt_type", string(c.encryptType),
		"v1_buyer_encrypt_type", string(c.v1EncryptType), "v1_timestamp_window", o.v1TimestampWindow.String(), "body_sign", o.bodySign,
		"max_body", int64(o.maxBody), "read_timeout", o.readTimeout.String(), "write_timeout", o.writeTimeout.String(),
		"shutdown_timeout", o.shutdownTimeout.String(), "job_workers", o.jobWorkers, "job_lease", o.jobLease.String(),
		"ledger_retention", o.ledgerRetention.String(), "ledger_rejected_retention", o.ledgerRejected.String(), "log_level", o.logLevel, "dev", o.dev,
		"license_path", o.license.path, "license_grace", o.license.grace.String(), "license_check_interval", o.license.checkInterval.String(),
		"license_usage_interval", o.license.usageInterval.String(), "license_devices", o.license.devices, "license_key_retention", o.license.keyRetention.String(),
		"license_rate_code", o.license.ratePerCode, "license_rate_address", o.license.ratePerAddress,
		"online_license_key_type", o.license.onlineKeyType, "online_license_fingerprint", o.license.onlineFingerprint,
		"usage_tokens", len(c.usage.Tokens), "usage_push_interval", o.usage.pushInterval.String(),
		"usage_settle", o.usage.settle.String(), "usage_daily_products", len(o.usage.dailyProducts), "usage_day_zone", o.usage.dayZone,
	}
}

// redactURL drops the user info and query of a URL for the log: either may
// carry a token. A URL that does not parse is not logged at all.
func redactURL(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable)"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}
