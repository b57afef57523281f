package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/store"
)

// TestServeDevLifecycle is the serve issue's acceptance check: a bare
// "koobridge serve --dev" (no AK/SK, no Open API, embedded SQLite) answers a
// whole V2 lifecycle from a signed client, every reply Body-Signed.
func TestServeDevLifecycle(t *testing.T) {
	p := startServe(t, "--dev", "--listen", "127.0.0.1:0", "--db", "sqlite:"+filepath.Join(t.TempDir(), "kb.db"))
	m := devKeyRE.FindStringSubmatch(p.output())
	if m == nil {
		t.Fatalf("no generated key banner:\n%s", p.output())
	}
	key := m[1]
	expect := func(step string, got v2Reply, want string) v2Reply {
		t.Helper()
		if got.ResultCode != want {
			t.Fatalf("%s: %s %q, want %s", step, got.ResultCode, got.ResultMsg, want)
		}
		return got
	}

	// A purchase of an order id nobody prepared: --dev answers Query Order itself.
	created := call(t, p.base, key, newInstanceBody("CSDEV1"))
	if created.InstanceID == "" || (created.ResultCode != "000000" && created.ResultCode != "000004") {
		t.Fatalf("newInstance: %+v", created)
	}
	id := created.InstanceID
	// 000004 only if the first call outran its budget on a loaded machine.
	again := call(t, p.base, key, newInstanceBody("CSDEV1"))
	if again.InstanceID != id || (again.ResultCode != "000000" && again.ResultCode != "000004") {
		t.Fatalf("repeated newInstance: %+v, first instance %q", again, id)
	}
	var q v2Reply
	waitFor(t, "the instance to be provisioned", func() bool {
		q = call(t, p.base, key, queryBody(id))
		return q.ResultCode == "000000"
	})
	if len(q.Info) != 1 || q.Info[0].AppInfo == nil || q.Info[0].AppInfo.FrontEndURL == "" || q.Info[0].AppInfo.Password == "" {
		t.Fatalf("queryInstance app info: %+v", q)
	}

	expiry := protocol.FormatTime14(time.Now().UTC().AddDate(2, 0, 0))
	renew := map[string]string{"activity": "refreshInstance", "scene": "RENEWAL", "orderId": "CSDEV2",
		"orderLineId": "CSDEV2-000001", "instanceId": id, "expireTime": expiry}
	expect("refreshInstance", call(t, p.base, key, renew), "000000")
	expect("repeated refreshInstance", call(t, p.base, key, renew), "000000")
	status := func(s string) map[string]string {
		return map[string]string{"activity": "updateInstanceStatus", "instanceId": id, "status": s}
	}
	expect("FREEZE", call(t, p.base, key, status("FREEZE")), "000000")
	expect("FREEZE again", call(t, p.base, key, status("FREEZE")), "000000")
	expect("UNFREEZE", call(t, p.base, key, status("UNFREEZE")), "000000")
	upgrade := map[string]string{"activity": "upgradeInstance", "instanceId": id, "orderId": "MOCKMONTYCHANGE",
		"orderLineId": "MOCKMONTYCHANGE-000001"}
	expect("upgradeInstance", call(t, p.base, key, upgrade), "000000")
	check := map[string]string{"activity": "changeInstanceCheck", "instanceId": id}
	if r := call(t, p.base, key, check); r.ResultCode != "000002" {
		// productInfo is mandatory: without it the call is invalid.
		t.Fatalf("changeInstanceCheck without productInfo: %s, want 000002", r.ResultCode)
	}
	release := map[string]string{"activity": "releaseInstance", "instanceId": id}
	expect("releaseInstance", call(t, p.base, key, release), "000000")
	expect("releaseInstance again", call(t, p.base, key, release), "000000")
	expect("refresh after release", call(t, p.base, key, map[string]string{"activity": "refreshInstance", "scene": "RENEWAL",
		"orderId": "CSDEV3", "orderLineId": "CSDEV3-000001", "instanceId": id, "expireTime": expiry}), "000003")
	expect("release of an unknown instance", call(t, p.base, key, map[string]string{"activity": "releaseInstance", "instanceId": "never-existed"}), "000003")

	// Without AK/SK, it says loudly that Query Order is made up.
	if !strings.Contains(p.output(), "no --ak/--sk") {
		t.Errorf("no warning about the made-up Query Order:\n%s", p.output())
	}
	if code := p.stop(t, os.Interrupt); code != 0 {
		t.Fatalf("exit %d after SIGINT", code)
	}
}

// The banner of "serve --dev": what it supplied, and the console.
var (
	devDataKeyRE    = regexp.MustCompile(`data key \(--data-key\):\s+(\S+)`)
	devAdminTokenRE = regexp.MustCompile(`admin token \(--admin-token\):\s+(\S+)`)
	devConsoleRE    = regexp.MustCompile(`console:\s+(http://\S+/admin/)`)
	devKeptRE       = regexp.MustCompile(`koobridge --dev secrets, kept in (\S+)`)
)

// devBanner is what one start of "serve --dev" printed.
type devBanner struct{ key, dataKey, adminToken, console, kept string }

func readDevBanner(t *testing.T, out string) devBanner {
	t.Helper()
	var b devBanner
	for _, f := range []struct {
		re  *regexp.Regexp
		dst *string
	}{{devKeyRE, &b.key}, {devDataKeyRE, &b.dataKey}, {devAdminTokenRE, &b.adminToken}, {devConsoleRE, &b.console}, {devKeptRE, &b.kept}} {
		m := f.re.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("the banner lacks %s:\n%s", f.re, out)
		}
		*f.dst = m[1]
	}
	return b
}

// consoleLogin logs in to the console with token, as a browser does, and
// returns the page it lands on.
func consoleLogin(t *testing.T, console, token string) (int, string, string) {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	resp, err := client.PostForm(strings.TrimSuffix(console, "/")+"/login", url.Values{"token": {token}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	_, _ = body.ReadFrom(resp.Body)
	return resp.StatusCode, resp.Request.URL.String(), body.String()
}

// jsonLog is the JSON log lines of a serve's output: everything but the
// banner.
func jsonLog(out string) string {
	var b strings.Builder
	for line := range strings.Lines(out) {
		if strings.HasPrefix(line, "{") {
			b.WriteString(line)
		}
	}
	return b.String()
}

// TestServeDevRestart: "serve --dev" keeps the key, data key and admin
// token it generated beside the SQLite file (mode 0600), and a restart on
// the same file reads them back: the first run's key still signs, the
// password sealed with the first run's data key still reads, and the
// admin token still opens the console. No secret is ever in the JSON log.
func TestServeDevRestart(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "koobridge.db")
	kept := db + ".dev.yaml"

	p := startServe(t, "--dev", "--listen", "127.0.0.1:0", "--db", "sqlite:"+db)
	first := readDevBanner(t, p.output())
	if first.kept != kept || first.console != p.base+"/admin/" {
		t.Errorf("banner: kept in %q, console %q; want %q and %s/admin/", first.kept, first.console, kept, p.base)
	}
	if !strings.Contains(p.output(), "(generated now)") {
		t.Errorf("the first start does not say it generated them:\n%s", p.output())
	}
	st, err := os.Stat(kept)
	if err != nil {
		t.Fatal(err)
	}
	if mode := st.Mode().Perm(); mode != 0o600 {
		t.Errorf("%s has mode %o, want 600", kept, mode)
	}
	raw, err := os.ReadFile(kept)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{first.key, first.dataKey, first.adminToken} {
		if !strings.Contains(string(raw), `"`+v+`"`) {
			t.Errorf("%s does not hold %q:\n%s", kept, v, raw)
		}
	}

	created := call(t, p.base, first.key, newInstanceBody("CSDEVKEEP1"))
	if created.InstanceID == "" {
		t.Fatalf("newInstance: %+v", created)
	}
	var q v2Reply
	waitFor(t, "the instance to be provisioned", func() bool {
		q = call(t, p.base, first.key, queryBody(created.InstanceID))
		return q.ResultCode == "000000"
	})
	if len(q.Info) != 1 || q.Info[0].AppInfo == nil || q.Info[0].AppInfo.Password == "" {
		t.Fatalf("queryInstance: %+v", q)
	}
	password := q.Info[0].AppInfo.Password
	if code, landed, body := consoleLogin(t, first.console, first.adminToken); code != 200 || landed != first.console || !strings.Contains(body, created.InstanceID) {
		t.Errorf("console login with the printed token: %d at %s:\n%s", code, landed, body)
	}
	firstLog := p.output()
	if code := p.stop(t, os.Interrupt); code != 0 {
		t.Fatalf("exit %d after SIGINT", code)
	}

	p = startServe(t, "--dev", "--listen", "127.0.0.1:0", "--db", "sqlite:"+db)
	// The restart names the file and the console, but prints no value
	// again: standard error may be collected (journald, docker logs).
	out := p.output()
	second := devConsoleRE.FindStringSubmatch(out)
	if m := devKeptRE.FindStringSubmatch(out); m == nil || m[1] != kept || second == nil || second[1] != p.base+"/admin/" {
		t.Fatalf("the restart's banner does not name %s and the console:\n%s", kept, out)
	}
	for _, s := range []struct{ label, name string }{
		{"KooGallery key (sign calls with it):", "key"}, {"data key (--data-key):", "data-key"}, {"admin token (--admin-token):", "admin-token"},
	} {
		if want := fmt.Sprintf("(kept: %q in %s)", s.name, kept); !regexp.MustCompile(regexp.QuoteMeta(s.label) + `\s+` + regexp.QuoteMeta(want)).MatchString(out) {
			t.Errorf("the restart's banner lacks %s %s:\n%s", s.label, want, out)
		}
	}
	for _, secret := range []string{first.key, first.dataKey, first.adminToken} {
		if strings.Contains(out, secret) {
			t.Errorf("the restart printed the kept secret %q:\n%s", secret, out)
		}
	}
	if strings.Contains(out, "generated now") || strings.Contains(out, "WARNING") {
		t.Errorf("the restart says it generated something:\n%s", out)
	}
	// Signed with the first run's key; the password unsealed with the
	// first run's data key.
	q = call(t, p.base, first.key, queryBody(created.InstanceID))
	if q.ResultCode != "000000" || len(q.Info) != 1 || q.Info[0].AppInfo == nil || q.Info[0].AppInfo.Password != password {
		t.Errorf("queryInstance after the restart: %+v, want the password of the first run", q)
	}
	if code, landed, body := consoleLogin(t, second[1], first.adminToken); code != 200 || landed != second[1] || !strings.Contains(body, created.InstanceID) {
		t.Errorf("console login after the restart with the first token: %d at %s:\n%s", code, landed, body)
	}
	if after, err := os.ReadFile(kept); err != nil || !bytes.Equal(after, raw) {
		t.Errorf("the restart rewrote %s (%v):\n%s", kept, err, after)
	}
	for _, log := range []string{jsonLog(firstLog), jsonLog(p.output())} {
		if log == "" {
			t.Fatal("no JSON log lines")
		}
		for _, secret := range []string{first.key, first.dataKey, first.adminToken, password} {
			if strings.Contains(log, secret) {
				t.Errorf("the JSON log contains the secret %q", secret)
			}
		}
	}
	if code := p.stop(t, os.Interrupt); code != 0 {
		t.Fatalf("exit %d after SIGINT", code)
	}
}

// TestServeDevAddressTaken: "serve --dev" on an address something else
// holds (the demo still running) fails with a usage error naming the
// address before it prints a secret, keeps one or creates the database.
func TestServeDevAddressTaken(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	addr := taken.Addr().String()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	cmd := exec.CommandContext(ctx, koobridgeBinary(t), "serve", "--dev", "--listen", addr, "--db", "sqlite:"+filepath.Join(dir, "koobridge.db"))
	cmd.Env = cleanEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitUsage {
		t.Fatalf("exit: %v, want status %d\nstderr:\n%s", err, exitUsage, stderr.String())
	}
	if !strings.Contains(stderr.String(), "--listen "+addr) || !strings.Contains(stderr.String(), "address already in use") {
		t.Errorf("the error does not name the address:\n%s", stderr.String())
	}
	if out := stdout.String() + stderr.String(); strings.Contains(out, "KooGallery key") || strings.Contains(out, "data key") ||
		strings.Contains(out, "admin token") || strings.Contains(out, "====") {
		t.Errorf("secrets printed before failing:\n%s", out)
	}
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 {
		t.Errorf("files left behind: %v %v", entries, err)
	}
}

// TestServeDevKept: what --dev supplies, and when: a kept value is used
// unless the setting is given, a given one always wins and is not kept,
// only what was not given is generated, and a kept file that cannot be
// read back is an error naming it, never a silent regeneration.
func TestServeDevKept(t *testing.T) {
	const keptKey, keptToken = "kept-koogallery-key", "kept-admin-token-0123456789"
	keptFile := func(t *testing.T, content string) string {
		t.Helper()
		db := filepath.Join(t.TempDir(), "k.db")
		if content != "" {
			if err := os.WriteFile(db+devFileSuffix, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		return db
	}
	good := "key: " + keptKey + "\ndata-key: \"" + testDataKey + "\"\nadmin-token: " + keptToken + "\n"
	tests := []struct {
		name    string
		content string   // of the dev file; "" none
		args    []string // beside --dev --db
		env     map[string]string
		check   func(t *testing.T, c *serveConfig)
		err     string // the error names the file and says this
	}{
		{name: "kept values are read back", content: good, check: func(t *testing.T, c *serveConfig) {
			if c.keys.Basic[0] != keptKey || c.adminToken != keptToken || string(c.dataKey) != "0123456789abcdef0123456789abcdef" || len(c.dev.generated) != 0 {
				t.Errorf("key %q token %q data key %q generated %v", c.keys.Basic, c.adminToken, c.dataKey, c.dev.generated)
			}
		}},
		{name: "flags and the environment win", content: good, args: []string{"--key", "flag-key", "--admin-token", "flag-admin-token-0123456789"},
			env: map[string]string{"KOOBRIDGE_DATA_KEY": "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY="},
			check: func(t *testing.T, c *serveConfig) {
				if c.keys.Basic[0] != "flag-key" || c.adminToken != "flag-admin-token-0123456789" || string(c.dataKey) != "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef" || len(c.dev.supplied) != 0 {
					t.Errorf("key %q token %q data key %q supplied %v", c.keys.Basic, c.adminToken, c.dataKey, c.dev.supplied)
				}
			}},
		{name: "only what was not given is generated", content: "key: " + keptKey + "\n", args: []string{"--admin-token", "flag-admin-token-0123456789"},
			check: func(t *testing.T, c *serveConfig) {
				if c.keys.Basic[0] != keptKey || !c.dev.generated[devDataKey] || c.dev.generated[devKey] || c.dev.generated[devAdminToken] ||
					c.dev.file.AdminToken != "" || c.dev.file.Key != keptKey {
					t.Errorf("key %q generated %v file %+v", c.keys.Basic, c.dev.generated, c.dev.file)
				}
			}},
		{name: "no file: all three generated", check: func(t *testing.T, c *serveConfig) {
			if len(c.dev.generated) != 3 || c.adminToken == "" || c.keys.Basic[0] == "" || len(c.dataKey) != 32 {
				t.Errorf("generated %v", c.dev.generated)
			}
		}},
		{name: "not YAML", content: "key: [unclosed\n", err: "yaml"},
		{name: "an unknown setting", content: good + "sk: secret\n", err: "field sk not found"},
		{name: "empty", content: "# nothing\n", err: "empty"},
		{name: "a bad data key", content: "data-key: not-base64\n", err: "data-key: not the base64 of 32 bytes"},
		{name: "a short admin token", content: "admin-token: short\n", err: "admin-token: shorter than 16"},
		// The file holds one document: a second one would be ignored.
		{name: "an empty key", content: "key: \"\"\n", err: "key: not a non-empty string"},
		{name: "an empty data key", content: "data-key:\n", err: "data-key: not a non-empty string"},
		{name: "a number for a key", content: "key: 123\n", err: "key: not a non-empty string"},
		{name: "a list for a token", content: "admin-token: [a, b]\n", err: "cannot unmarshal !!seq into string"},
		{name: "a second YAML document", content: good + "---\nkey: other\n", err: "more than one YAML document"},
		{name: "a second, unknown document", content: "key: \"abc\"\n---\nfoo: bar\n", err: "more than one YAML document"},
		// A line break or tab pasted into a value is not part of a secret.
		{name: "a line break in the key", content: "key: \"abc\\ndef\"\n", err: "key: has a control character"},
		{name: "a tab in the admin token", content: "admin-token: \"kept-admin-token\\t0123456789\"\n", err: "admin-token: has a control character"},
		{name: "a literal block key", content: "key: |\n  abc\n  def\n", err: "key: has a control character"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := keptFile(t, tt.content)
			c, err := resolveArgs(t, append([]string{"--dev", "--db", "sqlite:" + db}, tt.args...), tt.env)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), db+devFileSuffix) || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got %v; want an error naming %s and saying %q", err, db+devFileSuffix, tt.err)
				}
				if after, _ := os.ReadFile(db + devFileSuffix); string(after) != tt.content {
					t.Errorf("the file changed: %q", after)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}

	// Kept values are secrets: a file group or others may read is used,
	// with a warning naming it and its mode; one only its owner may read
	// is used without.
	for _, tt := range []struct {
		mode os.FileMode
		warn bool
	}{{0o600, false}, {0o400, false}, {0o640, true}, {0o604, true}, {0o620, true}} {
		t.Run(fmt.Sprintf("mode %04o", tt.mode), func(t *testing.T) {
			db := keptFile(t, good)
			if err := os.Chmod(db+devFileSuffix, tt.mode); err != nil {
				t.Fatal(err)
			}
			c, err := resolveArgs(t, []string{"--dev", "--db", "sqlite:" + db}, nil)
			if err != nil {
				t.Fatal(err)
			}
			want := fmt.Sprintf("--dev: %s has mode %04o: group or others may read the secrets in it; chmod 600 it", db+devFileSuffix, tt.mode)
			if got := slices.Contains(c.dev.warnings, want); got != tt.warn || len(c.dev.warnings) > 1 || c.keys.Basic[0] != keptKey {
				t.Errorf("warnings %q, key %q; want the warning %v", c.dev.warnings, c.keys.Basic, tt.warn)
			}
		})
	}

	t.Run("unreadable", func(t *testing.T) {
		db := keptFile(t, "")
		if err := os.Mkdir(db+devFileSuffix, 0o700); err != nil { // a directory cannot be read as a file
			t.Fatal(err)
		}
		if _, err := resolveArgs(t, []string{"--dev", "--db", db}, nil); err == nil || !strings.Contains(err.Error(), db+devFileSuffix) {
			t.Fatalf("got %v; want an error naming the file", err)
		}
	})
}

// TestServeDevNotKept: with PostgreSQL, --dev keeps nothing, and its
// banner says so and how to keep the database usable.
func TestServeDevNotKept(t *testing.T) {
	c, err := resolveArgs(t, []string{"--dev", "--db", "postgres://u@127.0.0.1:5432/test"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.dev.path != "" || len(c.dev.generated) != 3 {
		t.Fatalf("dev: %+v", c.dev)
	}
	if err := c.dev.save(); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	printDevBanner(&b, c, "http://localhost:8080/admin/")
	for _, want := range []string{"NOT kept", "--key, --data-key and --admin-token", c.keys.Basic[0], c.adminToken, "console:", "http://localhost:8080/admin/"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("banner lacks %q:\n%s", want, b.String())
		}
	}
}

// TestSQLiteFile: the dev file sits beside the file the store really
// opens, whichever way --db names it.
func TestSQLiteFile(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir) // for the relative paths
	tests := []struct{ dsn, file string }{
		{"sqlite:" + dir + "/a.db", dir + "/a.db"},
		{"sqlite://" + dir + "/b.db", dir + "/b.db"},
		{"file:" + dir + "/c.db?_busy_timeout=1000", dir + "/c.db"},
		{"file://" + dir + "/d.db", dir + "/d.db"},
		{dir + "/e.db", dir + "/e.db"},
		{"sqlite:" + dir + "/f.db?_synchronous=FULL", dir + "/f.db"},
		// An SQLite URI is percent-decoded, relative (opaque) or not.
		{"file:my%20g.db?_busy_timeout=1000", "my g.db"},
		{"file:" + dir + "/my%20h.db", dir + "/my h.db"},
		{"sqlite:file:i%2Bj.db", "i+j.db"},
	}
	for _, tt := range tests {
		got, ok := sqliteFile(tt.dsn)
		if !ok || got != tt.file {
			t.Errorf("sqliteFile(%q) = %q, %v; want %q", tt.dsn, got, ok, tt.file)
			continue
		}
		db, err := store.Open(t.Context(), tt.dsn)
		if err != nil {
			t.Fatalf("open %s: %v", tt.dsn, err)
		}
		db.Close()
		if _, err := os.Stat(tt.file); err != nil {
			t.Errorf("%s: the store did not create %s: %v", tt.dsn, tt.file, err)
		}
	}
	if _, ok := sqliteFile("postgres://u@127.0.0.1/test"); ok {
		t.Error("a PostgreSQL URL has an SQLite file")
	}
}

// TestConsoleURL: the console is reached on the host served, an
// unspecified one as localhost.
func TestConsoleURL(t *testing.T) {
	for _, tt := range []struct{ addr, want string }{
		{"127.0.0.1:8080", "http://127.0.0.1:8080/admin/"},
		{"0.0.0.0:8080", "http://localhost:8080/admin/"},
		{"[::]:8080", "http://localhost:8080/admin/"},
		{"[::1]:9", "http://[::1]:9/admin/"},
	} {
		a, err := net.ResolveTCPAddr("tcp", tt.addr)
		if err != nil {
			t.Fatal(err)
		}
		if got := consoleURL("http", a); got != tt.want {
			t.Errorf("consoleURL(%s) = %s, want %s", tt.addr, got, tt.want)
		}
	}
}

// TestServeDevDatabaseFails: "serve --dev" on a database that does not
// open (a file that is not SQLite) exits 2 with the store's reason before
// it prints a secret or keeps one: no banner, no dev file left beside it.
func TestServeDevDatabaseFails(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "koobridge.db")
	if err := os.WriteFile(db, []byte("not a database, but a note the user kept here\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	cmd := exec.CommandContext(ctx, koobridgeBinary(t), "serve", "--dev", "--listen", "127.0.0.1:0", "--db", db)
	cmd.Env = cleanEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitUsage {
		t.Fatalf("exit: %v, want status %d\nstderr:\n%s", err, exitUsage, stderr.String())
	}
	if !strings.Contains(stderr.String(), "not a database") {
		t.Errorf("the error does not say why:\n%s", stderr.String())
	}
	if out := stdout.String() + stderr.String(); strings.Contains(out, "KooGallery key") || strings.Contains(out, "generated now") || strings.Contains(out, "====") {
		t.Errorf("secrets printed for a database that did not open:\n%s", out)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "koobridge.db" && !strings.HasPrefix(e.Name(), "koobridge.db-") { // the driver's -wal/-shm
			t.Errorf("left behind: %s", e.Name())
		}
	}
}

// TestServeDevLostDataKey: a database that exists without its kept data
// key (the dev file deleted, or a database from before --dev kept one)
// gets a new data key, and "serve --dev" says so in the banner and the
// log, with what happens to what the database sealed: the instance
// provisioned under the earlier key can no longer be queried. Putting
// the earlier key back in the file makes it readable again, without the
// warning.
func TestServeDevLostDataKey(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "koobridge.db")
	kept := db + devFileSuffix
	p := startServe(t, "--dev", "--listen", "127.0.0.1:0", "--db", db)
	first := readDevBanner(t, p.output())
	if strings.Contains(p.output(), "WARNING") || strings.Contains(p.output(), "already existed") {
		t.Errorf("a new database warns about an earlier data key:\n%s", p.output())
	}
	created := call(t, p.base, first.key, newInstanceBody("CSLOST1"))
	if created.InstanceID == "" {
		t.Fatalf("newInstance: %+v", created)
	}
	waitFor(t, "the instance to be provisioned", func() bool {
		q := call(t, p.base, first.key, queryBody(created.InstanceID))
		return q.ResultCode == "000000" && len(q.Info) == 1 && q.Info[0].AppInfo != nil && q.Info[0].AppInfo.Password != ""
	})
	if code := p.stop(t, os.Interrupt); code != 0 {
		t.Fatalf("exit %d after SIGINT", code)
	}
	earlier, err := os.ReadFile(kept)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(kept); err != nil {
		t.Fatal(err)
	}

	p = startServe(t, "--dev", "--listen", "127.0.0.1:0", "--db", db)
	second := readDevBanner(t, p.output())
	if second.dataKey == first.dataKey {
		t.Fatal("the same data key again")
	}
	banner, log := p.output(), jsonLog(p.output())
	for _, want := range []string{"WARNING: the database " + db + " already existed", "queryInstance answers 000005 (internal error) for an instance whose app info has a password",
		"put the earlier key in " + kept + " as data-key"} {
		if !strings.Contains(banner, want) {
			t.Errorf("the banner lacks %q:\n%s", want, banner)
		}
	}
	if !strings.Contains(log, `"level":"WARN","msg":"the database `+db+` already existed`) {
		t.Errorf("the log does not warn:\n%s", log)
	}
	// What the warning says: the earlier password is sealed for good.
	if q := call(t, p.base, second.key, queryBody(created.InstanceID)); q.ResultCode != "000005" {
		t.Errorf("queryInstance under a new data key: %+v, want 000005 as the warning says", q)
	}
	if code := p.stop(t, os.Interrupt); code != 0 {
		t.Fatalf("exit %d after SIGINT", code)
	}

	// The remedy it gives: the earlier key back in the file (left
	// readable by others, which the log warns about).
	if err := os.WriteFile(kept, earlier, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(kept, 0o644); err != nil {
		t.Fatal(err)
	}
	p = startServe(t, "--dev", "--listen", "127.0.0.1:0", "--db", db)
	if strings.Contains(p.output(), "WARNING") || strings.Contains(p.output(), "generated now") {
		t.Errorf("with its data key back, the database still warns:\n%s", p.output())
	}
	if !strings.Contains(jsonLog(p.output()), `"level":"WARN","msg":"--dev: `+kept+` has mode 0644: group or others may read the secrets in it; chmod 600 it"`) {
		t.Errorf("the log does not warn about the file's mode:\n%s", jsonLog(p.output()))
	}
	if q := call(t, p.base, first.key, queryBody(created.InstanceID)); q.ResultCode != "000000" || len(q.Info) != 1 || q.Info[0].AppInfo == nil || q.Info[0].AppInfo.Password == "" {
		t.Errorf("queryInstance with the earlier data key back: %+v", q)
	}
	if code := p.stop(t, os.Interrupt); code != 0 {
		t.Fatalf("exit %d after SIGINT", code)
	}
}

// TestGitignoreDevFiles: the files "serve --dev" writes beside a
// database in a clone are never committed by accident, whatever the
// database is called: the dev file and the temporary file a crash may
// leave. Patterns without a slash match a file's name anywhere, as
// filepath.Match does (gitignore(5)).
func TestGitignoreDevFiles(t *testing.T) {
	raw, err := os.ReadFile("../../.gitignore")
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for line := range strings.Lines(string(raw)) {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") && !strings.HasPrefix(line, "!") && !strings.Contains(strings.TrimSuffix(line, "/"), "/") {
			patterns = append(patterns, line)
		}
	}
	ignored := func(name string) bool {
		for _, p := range patterns {
			if ok, _ := filepath.Match(p, name); ok {
				return true
			}
		}
		return false
	}
	dir := t.TempDir()
	for _, dsn := range []string{"sqlite:koobridge.db", "sqlite:" + dir + "/kb.sqlite", "file:" + dir + "/state?_busy_timeout=1000", dir + "/my.db"} {
		db, ok := sqliteFile(dsn)
		if !ok {
			t.Fatalf("%s: no SQLite file", dsn)
		}
		kept := db + devFileSuffix
		// The temporary file as save makes it.
		tmp, err := os.CreateTemp(dir, filepath.Base(kept)+devTempSuffix)
		if err != nil {
			t.Fatal(err)
		}
		tmp.Close()
		for _, name := range []string{filepath.Base(kept), filepath.Base(tmp.Name())} {
			if !ignored(name) {
				t.Errorf("--db %s: .gitignore does not ignore %s (patterns %q)", dsn, name, patterns)
			}
		}
	}
}

// TestReadmeTryACallTimestamp: the README's "Try a call" makes its
// millisecond timestamp in a way macOS, a release target, runs too: with
// the date of BSD, which knows no %N and prints "%3N" as "3N", the line
// must still give the milliseconds of now. The date here is the system's
// behind a wrapper that drops %N as BSD's does.
func TestReadmeTryACallTimestamp(t *testing.T) {
	realDate, err := exec.LookPath("date")
	if err != nil {
		t.Fatalf("the README's commands need date: %v", err)
	}
	var ts string
	for line := range strings.Lines(readmeSection(t, "Try a call")) {
		if strings.HasPrefix(line, "TS=") {
			ts, _, _ = strings.Cut(strings.TrimSpace(line), ";")
		}
	}
	if ts == "" {
		t.Fatal(`no line "TS=…" in the README's Try a call`)
	}
	bin := t.TempDir()
	bsd := "#!/bin/sh\n# BSD date: %N is not a conversion; its % is dropped.\n" +
		"for a in \"$@\"; do shift; set -- \"$@\" \"$(printf '%s' \"$a\" | sed 's/%\\([0-9]*N\\)/\\1/g')\"; done\nexec " + realDate + " \"$@\"\n"
	if err := os.WriteFile(filepath.Join(bin, "date"), []byte(bsd), 0o755); err != nil {
		t.Fatal(err)
	}
	// The wrapper is BSD's date: %3N is not milliseconds there.
	if out, err := exec.Command(filepath.Join(bin, "date"), "+%s%3N").Output(); err != nil || !strings.HasSuffix(strings.TrimSpace(string(out)), "3N") {
		t.Fatalf("the BSD date wrapper printed %q, %v", out, err)
	}
	sh := exec.Command("bash", "-e", "-c", ts+"\nprintf '%s' \"$TS\"")
	sh.Env = append(cleanEnv(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	out, err := sh.Output()
	if err != nil {
		t.Fatalf("%s: %v", ts, err)
	}
	ms, err := strconv.ParseInt(string(out), 10, 64)
	if err != nil {
		t.Fatalf("%s gave %q, not a number of milliseconds", ts, out)
	}
	// The same day as now (a wrong unit is off by years).
	if d := time.Since(time.UnixMilli(ms)); d < -24*time.Hour || d > 24*time.Hour {
		t.Errorf("%s gave %d: %v from now, not the milliseconds of now", ts, ms, d)
	}
}
