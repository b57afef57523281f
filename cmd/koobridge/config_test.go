package main

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// testDataKey is a valid --data-key (base64 of 32 bytes).
const testDataKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

// resolveArgs parses args like "koobridge serve" would, with env as the
// environment, and returns the resolved configuration.
func resolveArgs(t *testing.T, args []string, env map[string]string) (*serveConfig, error) {
	t.Helper()
	var o serveOptions
	cmd := &cobra.Command{Use: "serve"}
	o.register(cmd.Flags())
	if err := cmd.Flags().Parse(args); err != nil {
		return nil, usageErrorf("%v", err)
	}
	return resolveServeConfig(cmd, &o, func(k string) string { return env[k] })
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// base is a minimal valid production configuration.
var base = []string{"--key", "k1", "--ak", "AK", "--sk", "SK", "--data-key", testDataKey}

func TestConfigPrecedence(t *testing.T) {
	file := writeFile(t, "koobridge.yaml", `
listen: 127.0.0.1:7000
produce-path: /from-file
budget: 2s
job-workers: 2
body-sign: false
max-body: 1MiB
key:
  - file-key-1
  - file-key-2
exec:
  - /usr/bin/my tool
  - --flag
provisioner: exec
`)
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		check func(t *testing.T, c *serveConfig)
	}{
		{"defaults", base, nil, func(t *testing.T, c *serveConfig) {
			o := c.opts
			if o.listen != ":8080" || o.producePath != "/produce" || o.db != "sqlite:koobridge.db" ||
				o.budget != 3*time.Second || o.jobWorkers != 4 || !o.bodySign || o.maxBody != 64<<10 ||
				o.credentials != "plain" || c.encryptType != "1" || o.provisioner != "demo" ||
				o.readTimeout != 10*time.Second || o.writeTimeout != 15*time.Second || o.shutdownTimeout != 30*time.Second {
				t.Errorf("unexpected defaults: %+v", o)
			}
			if c.openAPIURL != defaultOpenAPIURL || c.fallbackURL != fallbackOpenAPIURL {
				t.Errorf("open API %q fallback %q", c.openAPIURL, c.fallbackURL)
			}
		}},
		{"file over default", append([]string{"--config", file}, base[2:]...), nil, func(t *testing.T, c *serveConfig) {
			o := c.opts
			if o.listen != "127.0.0.1:7000" || o.producePath != "/from-file" || o.budget != 2*time.Second ||
				o.jobWorkers != 2 || o.bodySign || o.maxBody != 1<<20 {
				t.Errorf("file not applied: %+v", o)
			}
			if !reflect.DeepEqual(c.keys.Basic, []string{"file-key-1", "file-key-2"}) {
				t.Errorf("keys %q", c.keys)
			}
			if !reflect.DeepEqual(c.execArgv, []string{"/usr/bin/my tool", "--flag"}) {
				t.Errorf("exec argv %q", c.execArgv)
			}
		}},
		{"env over file", append([]string{"--config", file}, base...),
			map[string]string{"KOOBRIDGE_LISTEN": "127.0.0.1:7001", "KOOBRIDGE_BODY_SIGN": "true", "KOOBRIDGE_MAX_BODY": "1000"},
			func(t *testing.T, c *serveConfig) {
				if c.opts.listen != "127.0.0.1:7001" || !c.opts.bodySign || c.opts.maxBody != 1000 {
					t.Errorf("env not applied: %+v", c.opts)
				}
				if c.opts.producePath != "/from-file" {
					t.Errorf("file lost: %q", c.opts.producePath)
				}
				if !reflect.DeepEqual(c.keys.Basic, []string{"k1"}) {
					t.Errorf("a --key flag must replace the file's keys, got %q", c.keys)
				}
			}},
		{"flag over env", append([]string{"--listen", "127.0.0.1:7002", "--config", file}, base...),
			map[string]string{"KOOBRIDGE_LISTEN": "127.0.0.1:7001"},
			func(t *testing.T, c *serveConfig) {
				if c.opts.listen != "127.0.0.1:7002" {
					t.Errorf("listen %q", c.opts.listen)
				}
			}},
		{"config path from env", base, map[string]string{"KOOBRIDGE_CONFIG": file}, func(t *testing.T, c *serveConfig) {
			if c.opts.producePath != "/from-file" {
				t.Errorf("KOOBRIDGE_CONFIG not read: %q", c.opts.producePath)
			}
		}},
		{"one key from env, key files with rotation", []string{"--ak", "AK", "--sk", "SK", "--data-key", testDataKey,
			"--key-file", writeFile(t, "keys", "new-key\r\n\n  old key with space \n")},
			map[string]string{"KOOBRIDGE_KEY": "a,b"},
			func(t *testing.T, c *serveConfig) {
				want := []string{"a,b", "new-key", "old key with space"}
				if !reflect.DeepEqual(c.keys.Basic, want) {
					t.Errorf("keys %q, want %q", c.keys, want)
				}
			}},
		{"secrets from files", []string{"--key", "k", "--ak", "AK", "--sk-file", writeFile(t, "sk", "S3CRET\n"),
			"--data-key-file", writeFile(t, "dk", testDataKey+"\n"),
			"--admin-token-file", writeFile(t, "tok", "0123456789abcdef0123\n")}, nil,
			func(t *testing.T, c *serveConfig) {
				if c.sk != "S3CRET" || c.adminToken != "0123456789abcdef0123" || len(c.dataKey) != 32 {
					t.Errorf("sk %q token %q data key %d bytes", c.sk, c.adminToken, len(c.dataKey))
				}
			}},
		{"dev generates key, data key and admin token", []string{"--dev", "--db", filepath.Join(t.TempDir(), "k.db")}, nil, func(t *testing.T, c *serveConfig) {
			d := c.dev.supplied
			if d[devKey] == "" || d[devDataKey] == "" || d[devAdminToken] != c.adminToken || len(c.keys.Basic) != 1 || c.keys.Basic[0] != d[devKey] {
				t.Errorf("dev: supplied %q keys %q", d, c.keys)
			}
		}},
		{"custom open API has no fallback", append([]string{"--openapi-url", "http://127.0.0.1:9/"}, base...), nil,
			func(t *testing.T, c *serveConfig) {
				if c.openAPIURL != "http://127.0.0.1:9" || c.fallbackURL != "" {
					t.Errorf("open API %q fallback %q", c.openAPIURL, c.fallbackURL)
				}
			}},
		{"keys per interface type: flags, files, env, YAML", append([]string{
			"--general-key", "g1", "--general-key", "g2",
			"--license-key-file", writeFile(t, "license-keys", "l1\n\nl2\n"),
			"--config", writeFile(t, "types.yaml", "kit-key: [kit-from-file]\ngeneral-key: general-from-file\norder-notify-path: /orders\n"),
		}, base...), map[string]string{"KOOBRIDGE_KIT_KEY": "kit-from-env"},
			func(t *testing.T, c *serveConfig) {
				if !reflect.DeepEqual(c.keys.Basic, []string{"k1"}) || !reflect.DeepEqual(c.keys.General, []string{"g1", "g2"}) ||
					!reflect.DeepEqual(c.keys.License, []string{"l1", "l2"}) || !reflect.DeepEqual(c.keys.Kit, []string{"kit-from-env"}) {
					t.Errorf("keys %+v", c.keys)
				}
				if c.opts.orderNotifyPath != "/orders" {
					t.Errorf("order notify path %q", c.opts.orderNotifyPath)
				}
			}},
		{"unset key types fall back later, not here", base, nil, func(t *testing.T, c *serveConfig) {
			if c.keys.Kit != nil || c.keys.License != nil || c.keys.General != nil || c.opts.orderNotifyPath != "" {
				t.Errorf("keys %+v, order path %q: want the other types unset (isv falls back to --key)", c.keys, c.opts.orderNotifyPath)
			}
		}},
		{"exec command line quoting", append([]string{"--provisioner", "exec", "--exec", `/bin/sh -c 'echo "a b"' x\ y "q\"z"`}, base...), nil,
			func(t *testing.T, c *serveConfig) {
				want := []string{"/bin/sh", "-c", `echo "a b"`, "x y", `q"z`}
				if !reflect.DeepEqual(c.execArgv, want) {
					t.Errorf("argv %q, want %q", c.execArgv, want)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := resolveArgs(t, tt.args, tt.env)
			if err != nil {
				t.Fatalf("resolve: %v", err)
			}
			tt.check(t, c)
		})
	}
}

func TestConfigValidation(t *testing.T) {
	badFile := writeFile(t, "bad.yaml", "listen: :1\nno-such-setting: 1\n")
	emptyKeys := writeFile(t, "keys", "\n\n")
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string // the setting the error must name
	}{
		{"no key", []string{"--ak", "A", "--sk", "S", "--data-key", testDataKey}, nil, "--key"},
		{"empty key file", []string{"--key-file", emptyKeys, "--ak", "A", "--sk", "S", "--data-key", testDataKey}, nil, "--key-file"},
		{"missing key file", []string{"--key-file", "/nonexistent/keys", "--ak", "A", "--sk", "S", "--data-key", testDataKey}, nil, "--key-file"},
		{"no data key", []string{"--key", "k", "--ak", "A", "--sk", "S"}, nil, "openssl rand -base64 32"},
		{"bad data key", []string{"--key", "k", "--ak", "A", "--sk", "S", "--data-key", "c2hvcnQ="}, nil, "--data-key"},
		{"no ak", []string{"--key", "k", "--data-key", testDataKey}, nil, "--ak"},
		{"ak without sk in dev", []string{"--dev", "--ak", "A"}, nil, "--sk"},
		{"sk and sk-file", append([]string{"--sk-file", writeFile(t, "sk", "x")}, base...), nil, "--sk-file"},
		{"postgres bad pool parameter", append([]string{"--db", "postgres://u@h/db?pool_max_conns=x"}, base...), nil, "--db"},
		{"memory db", append([]string{"--db", "sqlite::memory:"}, base...), nil, "--db"},
		{"bad listen", append([]string{"--listen", "8080"}, base...), nil, "--listen"},
		{"relative produce path", append([]string{"--produce-path", "produce"}, base...), nil, "--produce-path"},
		{"relative order notify path", append([]string{"--order-notify-path", "orders"}, base...), nil, "--order-notify-path"},
		{"tab in the order notify path", append([]string{"--order-notify-path", "/a\t/b"}, base...), nil, "--order-notify-path"},
		{"space in the produce path", append([]string{"--produce-path", "/a b"}, base...), nil, "--produce-path"},
		{"wildcard in the produce path", append([]string{"--produce-path", "/{x}"}, base...), nil, "--produce-path"},
		{"reserved order notify path", append([]string{"--order-notify-path", "/admin/orders"}, base...), nil, "--order-notify-path"},
		{"empty general key", append([]string{"--general-key", ""}, base...), nil, "--general-key"},
		{"empty kit key file", append([]string{"--kit-key-file", emptyKeys}, base...), nil, "--kit-key-file"},
		{"missing license key file", append([]string{"--license-key-file", "/nonexistent/keys"}, base...), nil, "--license-key-file"},
		{"reserved produce path", append([]string{"--produce-path", "/healthz"}, base...), nil, "--produce-path"},
		{"bad openapi url", append([]string{"--openapi-url", "ftp://x"}, base...), nil, "--openapi-url"},
		{"unknown provisioner", append([]string{"--provisioner", "magic"}, base...), nil, "--provisioner"},
		{"webhook without url", append([]string{"--provisioner", "webhook", "--webhook-secret", "s"}, base...), nil, "--webhook-url"},
		{"webhook without secret", append([]string{"--provisioner", "webhook", "--webhook-url", "http://h/x"}, base...), nil, "--webhook-secret"},
		{"exec without command", append([]string{"--provisioner", "exec"}, base...), nil, "--exec"},
		{"exec bad quoting", append([]string{"--provisioner", "exec", "--exec", "a 'b"}, base...), nil, "--exec"},
		{"zero budget", append([]string{"--budget", "0s"}, base...), nil, "--budget"},
		{"write timeout under budget", append([]string{"--write-timeout", "2s"}, base...), nil, "--write-timeout"},
		{"short admin token", append([]string{"--admin-token", "short"}, base...), nil, "--admin-token"},
		{"tls cert without key", append([]string{"--tls-cert", "c.pem"}, base...), nil, "--tls-key"},
		{"tls unreadable", append([]string{"--tls-cert", "/nonexistent/c.pem", "--tls-key", "/nonexistent/k.pem"}, base...), nil, "--tls-cert"},
		{"credentials", append([]string{"--credentials", "aes"}, base...), nil, "--credentials"},
		{"encrypt type", append([]string{"--encrypt-type", "3"}, base...), nil, "--encrypt-type"},
		{"job workers", append([]string{"--job-workers", "0"}, base...), nil, "--job-workers"},
		{"log level", append([]string{"--log-level", "loud"}, base...), nil, "--log-level"},
		{"negative ledger retention", append([]string{"--ledger-retention", "-1h"}, base...), nil, "--ledger-retention -1h0m0s is negative"},
		{"ledger retention below the floor", append([]string{"--ledger-retention", "23h"}, base...), nil, "--ledger-retention 23h0m0s is below the floor of 24h0m0s"},
		{"rejected retention below the floor", base, map[string]string{"KOOBRIDGE_LEDGER_REJECTED_RETENTION": "1h"}, "--ledger-rejected-retention 1h0m0s is below the floor of 24h0m0s"},
		{"max body", append([]string{"--max-body", "64kb"}, base...), nil, "max-body"},
		{"bad env value", base, map[string]string{"KOOBRIDGE_BUDGET": "soon"}, "KOOBRIDGE_BUDGET"},
		{"unknown YAML key", append([]string{"--config", badFile}, base...), nil, `"no-such-setting"`},
		{"missing config file", append([]string{"--config", "/nonexistent.yaml"}, base...), nil, "--config"},
		{"list for a single setting", append([]string{"--config", writeFile(t, "l.yaml", "listen: [a, b]\n")}, base...), nil, "listen"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := resolveArgs(t, tt.args, tt.env)
			var ee *exitError
			if !errors.As(err, &ee) || ee.code != exitUsage {
				t.Fatalf("err = %v, want a usage error", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not name %q", err, tt.want)
			}
		})
	}
}

// TestConfigLedgerRetention: the two retentions come from flags, the
// environment or the YAML file, default to 0 (keep for ever) and are in
// the startup log.
func TestConfigLedgerRetention(t *testing.T) {
	file := writeFile(t, "koobridge.yaml", "ledger-retention: 2160h\nledger-rejected-retention: 48h\n")
	tests := []struct {
		name                   string
		args                   []string
		env                    map[string]string
		wantAnswered, wantRejd time.Duration
	}{
		{"defaults", base, nil, 0, 0},
		{"flags", append([]string{"--ledger-retention", "720h", "--ledger-rejected-retention", "24h"}, base...), nil, 720 * time.Hour, 24 * time.Hour},
		{"env", base, map[string]string{"KOOBRIDGE_LEDGER_RETENTION": "168h"}, 168 * time.Hour, 0},
		{"file", append([]string{"--config", file}, base...), nil, 2160 * time.Hour, 48 * time.Hour},
		{"flag over file", append([]string{"--config", file, "--ledger-rejected-retention", "72h"}, base...), nil, 2160 * time.Hour, 72 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := resolveArgs(t, tt.args, tt.env)
			if err != nil {
				t.Fatal(err)
			}
			if c.opts.ledgerRetention != tt.wantAnswered || c.opts.ledgerRejected != tt.wantRejd {
				t.Errorf("retentions %v, %v; want %v, %v", c.opts.ledgerRetention, c.opts.ledgerRejected, tt.wantAnswered, tt.wantRejd)
			}
			logged := map[any]any{}
			kv := c.redacted()
			for i := 0; i+1 < len(kv); i += 2 {
				logged[kv[i]] = kv[i+1]
			}
			if logged["ledger_retention"] != tt.wantAnswered.String() || logged["ledger_rejected_retention"] != tt.wantRejd.String() {
				t.Errorf("startup log: ledger_retention %v, ledger_rejected_retention %v; want %v, %v",
					logged["ledger_retention"], logged["ledger_rejected_retention"], tt.wantAnswered, tt.wantRejd)
			}
		})
	}
}

// TestServeBadConfigExitCode runs the real command line: a bad setting is
// exit status 2 with the setting named, before anything starts.
func TestServeBadConfigExitCode(t *testing.T) {
	for k := range envSettings() {
		t.Setenv(k, "") // the developer's environment must not leak in
	}
	r := runCLI(t, "", "serve", "--key", "k", "--ak", "A", "--sk", "S", "--data-key", testDataKey, "--provisioner", "ftp")
	if r.code != exitUsage || !strings.Contains(r.stderr, "--provisioner") {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	r = runCLI(t, "", "serve", "--ak", "A", "--sk", "S", "--data-key", testDataKey)
	if r.code != exitUsage || !strings.Contains(r.stderr, "--key is required") {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
}

// envSettings lists the KOOBRIDGE_ variables present in the environment.
func envSettings() map[string]bool {
	out := map[string]bool{}
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, envPrefix) {
			out[k] = true
		}
	}
	return out
}

func TestByteSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"65536", 65536, true}, {"64KiB", 64 << 10, true}, {"1MiB", 1 << 20, true}, {"100B", 100, true},
		{"0", 0, false}, {"-1", 0, false}, {"1GiB", 0, false}, {"65MiB", 0, false}, {"abc", 0, false},
	}
	for _, tt := range tests {
		var b byteSize
		err := b.Set(tt.in)
		if (err == nil) != tt.ok || (tt.ok && int64(b) != tt.want) {
			t.Errorf("Set(%q) = %d, %v; want %d ok=%v", tt.in, b, err, tt.want, tt.ok)
		}
	}
	if b := byteSize(64 << 10); b.String() != "64KiB" {
		t.Errorf("String = %q", b.String())
	}
}

func TestRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"https://vendor.example.com/hooks/koobridge", "https://vendor.example.com/hooks/koobridge"},
		{"https://user:pa55@vendor.example.com/hook?token=s3cret#frag", "https://vendor.example.com/hook"},
		{"http://vendor.example.com:8443/h?x=1", "http://vendor.example.com:8443/h"},
		{"://bad", "(unparseable)"},
	}
	for _, tt := range tests {
		if got := redactURL(tt.in); got != tt.want {
			t.Errorf("redactURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
