package deploy_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.yaml.in/yaml/v3"

	"github.com/koobridge/koobridge/internal/store/postgres/pgtest"
)

// composeFile is the part of the Compose specification compose.yaml uses.
// Decoding refuses any other key, so a misspelt one (depend_on) fails.
type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
	Secrets  map[string]struct {
		File string `yaml:"file"`
	} `yaml:"secrets"`
}

type composeService struct {
	Build *struct {
		Context string            `yaml:"context"`
		Args    map[string]string `yaml:"args"`
	} `yaml:"build"`
	Image       string            `yaml:"image"`
	Restart     string            `yaml:"restart"`
	Entrypoint  []string          `yaml:"entrypoint"`
	Command     []string          `yaml:"command"`
	User        string            `yaml:"user"`
	Environment map[string]string `yaml:"environment"`
	Secrets     []string          `yaml:"secrets"`
	DependsOn   map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Healthcheck *struct {
		Test        []string `yaml:"test"`
		Interval    string   `yaml:"interval"`
		Timeout     string   `yaml:"timeout"`
		Retries     int      `yaml:"retries"`
		StartPeriod string   `yaml:"start_period"`
	} `yaml:"healthcheck"`
	Volumes         []string `yaml:"volumes"`
	Ports           []string `yaml:"ports"`
	StopGracePeriod string   `yaml:"stop_grace_period"`
	ReadOnly        bool     `yaml:"read_only"`
	CapDrop         []string `yaml:"cap_drop"`
	SecurityOpt     []string `yaml:"security_opt"`
}

// interpolate expands compose's ${VAR}, ${VAR:-default}, ${VAR-default},
// ${VAR:?error}, ${VAR?error}, $VAR and $$ in s.
func interpolate(s string, lookup func(string) (string, bool)) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch next := s[i+1]; {
		case next == '$':
			b.WriteByte('$')
			i++
		case next == '{':
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return "", fmt.Errorf("unclosed ${ in %q", s)
			}
			expr := s[i+2 : i+end]
			i += end
			name, op, arg := expr, "", ""
			if j := strings.IndexAny(expr, ":-?"); j >= 0 {
				name = expr[:j]
				op = expr[j : j+1]
				if op == ":" && j+1 < len(expr) {
					op = expr[j : j+2]
				}
				arg = expr[j+len(op):]
			}
			v, set := lookup(name)
			switch op {
			case "":
			case ":-":
				if v == "" {
					v = arg
				}
			case "-":
				if !set {
					v = arg
				}
			case ":?":
				if v == "" {
					return "", fmt.Errorf("%s: %s", name, arg)
				}
			case "?":
				if !set {
					return "", fmt.Errorf("%s: %s", name, arg)
				}
			default:
				return "", fmt.Errorf("unsupported ${%s}", expr)
			}
			b.WriteString(v)
		default:
			m := regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*`).FindString(s[i+1:])
			if m == "" {
				b.WriteByte('$')
				continue
			}
			v, _ := lookup(m)
			b.WriteString(v)
			i += len(m)
		}
	}
	return b.String(), nil
}

func TestInterpolate(t *testing.T) {
	vars := map[string]string{"SET": "v", "EMPTY": ""}
	lookup := func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
	tests := []struct{ in, want, err string }{
		{in: "a${SET}b", want: "avb"},
		{in: "$SET/x", want: "v/x"},
		{in: "$$SET", want: "$SET"},
		{in: "${UNSET:-d}", want: "d"},
		{in: "${EMPTY:-d}", want: "d"},
		{in: "${EMPTY-d}", want: ""},
		{in: "${UNSET-d}", want: "d"},
		{in: "${SET:?no}", want: "v"},
		{in: "${EMPTY:?set it}", err: "EMPTY: set it"},
		{in: "${UNSET?set it}", err: "UNSET: set it"},
		{in: "${SET", err: "unclosed"},
	}
	for _, tc := range tests {
		got, err := interpolate(tc.in, lookup)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("interpolate(%q) = %q, %v; want error %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("interpolate(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// loadCompose parses compose.yaml and interpolates its environment and
// build args with the variables of project/.env, as docker compose run in
// project would.
func loadCompose(t testing.TB, project string) *composeFile {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(readRepoFile(t, "compose.yaml")))
	dec.KnownFields(true)
	var c composeFile
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	dotenv := map[string]string{}
	if b, err := os.ReadFile(filepath.Join(project, ".env")); err == nil {
		for line := range strings.Lines(string(b)) {
			line = strings.TrimSpace(line)
			if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
				dotenv[k] = v
			}
		}
	}
	lookup := func(k string) (string, bool) { v, ok := dotenv[k]; return v, ok }
	for name, svc := range c.Services {
		for k, v := range svc.Environment {
			x, err := interpolate(v, lookup)
			if err != nil {
				t.Fatalf("compose.yaml: services.%s.environment.%s: %v", name, k, err)
			}
			svc.Environment[k] = x
		}
	}
	return &c
}

// makeComposeSecrets runs the docs' commands that make compose's secret
// files and .env in a new project directory, which it returns.
func makeComposeSecrets(t testing.TB) string {
	t.Helper()
	project := openTempDir(t)
	runShell(t, project, docsBlock(t, "<!-- deploy/compose_test.go runs this block -->"), operatorEnv...)
	return project
}

// TestComposeFile checks compose.yaml's shape: koobridge from the Dockerfile
// waits for a healthy PostgreSQL with its data on a named volume, and every
// secret reaches both services as a file.
func TestComposeFile(t *testing.T) {
	c := loadCompose(t, makeComposeSecrets(t))
	kb, ok := c.Services["koobridge"]
	pg, ok2 := c.Services["postgres"]
	if !ok || !ok2 || len(c.Services) != 2 {
		t.Fatalf("services %v: want koobridge and postgres", slices.Collect(maps.Keys(c.Services)))
	}
	if kb.Build == nil || kb.Build.Context != "." {
		t.Errorf("koobridge is not built from the repository's Dockerfile (build.context .)")
	}
	if kb.DependsOn["postgres"].Condition != "service_healthy" {
		t.Errorf("koobridge depends_on postgres %+v, want condition service_healthy", kb.DependsOn)
	}
	if !regexp.MustCompile(`^postgres:\d+\.\d+(-[a-z0-9]+)?$`).MatchString(pg.Image) {
		t.Errorf("postgres image %q: want a tag pinned to a minor release (postgres:17.6-bookworm)", pg.Image)
	}
	if pg.Healthcheck == nil || !slices.Contains(pg.Healthcheck.Test, "pg_isready") {
		t.Errorf("postgres has no pg_isready healthcheck: %+v", pg.Healthcheck)
	}
	var dataVolume bool
	for _, v := range pg.Volumes {
		name, target, _ := strings.Cut(v, ":")
		_, declared := c.Volumes[name]
		dataVolume = dataVolume || (declared && target == "/var/lib/postgresql/data")
	}
	if !dataVolume {
		t.Errorf("postgres volumes %v: want a named volume at /var/lib/postgresql/data", pg.Volumes)
	}
	// The postgres image serves no TLS: require or verify-* could not connect.
	if u, err := url.Parse(kb.Environment["KOOBRIDGE_DB"]); err != nil || u.Query().Get("sslmode") != "disable" {
		t.Errorf("KOOBRIDGE_DB %q: want sslmode=disable, the postgres image has no TLS (%v)", kb.Environment["KOOBRIDGE_DB"], err)
	}
	grace, err := time.ParseDuration(kb.StopGracePeriod)
	if err != nil || grace <= 30*time.Second {
		t.Errorf("koobridge stop_grace_period %q: want longer than serve's --shutdown-timeout (30s); docker's default is 10s", kb.StopGracePeriod)
	}
	if !kb.ReadOnly || !slices.Contains(kb.CapDrop, "ALL") || !slices.Contains(kb.SecurityOpt, "no-new-privileges:true") {
		t.Errorf("koobridge: want read_only, cap_drop [ALL] and no-new-privileges")
	}
	// The port serves the console, the admin API and /metrics beside the
	// production path, over plain HTTP: published on the host's loopback
	// only, for a TLS proxy on the host (docs/operations.md); a bare
	// "8080:8080" would publish it on every interface.
	if len(kb.Ports) == 0 {
		t.Error("koobridge publishes no port: a proxy on the host could not reach it")
	}
	for _, p := range kb.Ports {
		hostIP, rest, _ := strings.Cut(strings.TrimSuffix(p, "/tcp"), ":")
		ip := net.ParseIP(strings.Trim(hostIP, "[]"))
		if ip == nil || !ip.IsLoopback() || !strings.HasSuffix(rest, ":8080") {
			t.Errorf("koobridge publishes %q: want 127.0.0.1:PORT:8080, the host's loopback only", p)
		}
	}
	if len(pg.Ports) > 0 {
		t.Errorf("postgres publishes %v: only koobridge, on the compose network, connects to it", pg.Ports)
	}

	// Every file setting names a secret the service has; no secret inline.
	for name, svc := range c.Services {
		for k, v := range svc.Environment {
			secret, isSecret := strings.CutPrefix(v, "/run/secrets/")
			switch {
			case isSecret && !slices.Contains(svc.Secrets, secret):
				t.Errorf("%s: %s=%s, but the service has no secret %q", name, k, v, secret)
			case strings.HasSuffix(k, "_FILE") && !isSecret:
				t.Errorf("%s: %s=%s is not a compose secret", name, k, v)
			case slices.Contains([]string{"KOOBRIDGE_KEY", "KOOBRIDGE_SK", "KOOBRIDGE_DATA_KEY", "KOOBRIDGE_ADMIN_TOKEN", "PGPASSWORD", "POSTGRES_PASSWORD"}, k):
				t.Errorf("%s: the secret %s is in the environment; give it as a file", name, k)
			}
		}
		for _, s := range svc.Secrets {
			if _, ok := c.Secrets[s]; !ok {
				t.Errorf("%s: secret %q is not declared at the top level", name, s)
			}
		}
	}
	for _, env := range []string{"KOOBRIDGE_KEY_FILE", "KOOBRIDGE_SK_FILE", "KOOBRIDGE_DATA_KEY_FILE", "KOOBRIDGE_ADMIN_TOKEN_FILE", "PGPASSFILE"} {
		if kb.Environment[env] == "" {
			t.Errorf("koobridge has no %s", env)
		}
	}
	if pg.Environment["POSTGRES_PASSWORD_FILE"] == "" {
		t.Error("postgres has no POSTGRES_PASSWORD_FILE")
	}
	for name, s := range c.Secrets {
		if !strings.HasPrefix(s.File, "./secrets/") {
			t.Errorf("secret %s: file %q is not in ./secrets/ (gitignored)", name, s.File)
		}
	}
}

// TestComposePostgresPassword checks that the password postgres is given
// is the one koobridge's driver finds in its pgpass file for compose's URL,
// with the user and database postgres creates.
func TestComposePostgresPassword(t *testing.T) {
	project := makeComposeSecrets(t)
	c := loadCompose(t, project)
	kb, pg := c.Services["koobridge"], c.Services["postgres"]
	secretFile := func(svc composeService, env string) string {
		name, ok := strings.CutPrefix(svc.Environment[env], "/run/secrets/")
		if !ok {
			t.Fatalf("%s=%q is not a secret", env, svc.Environment[env])
		}
		return filepath.Join(project, filepath.FromSlash(c.Secrets[name].File))
	}
	want, err := os.ReadFile(secretFile(pg, "POSTGRES_PASSWORD_FILE"))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"PGPASSWORD", "PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGSERVICE"} {
		t.Setenv(k, "")
	}
	t.Setenv("PGPASSFILE", secretFile(kb, "PGPASSFILE"))
	cfg, err := pgconn.ParseConfig(kb.Environment["KOOBRIDGE_DB"])
	if err != nil {
		t.Fatal(err)
	}
	// The postgres image's entrypoint reads POSTGRES_PASSWORD_FILE with
	// $(< file), which drops the trailing line break: it is not part of the
	// password.
	if pw := strings.TrimRight(string(want), "\n"); pw == "" || cfg.Password != pw {
		t.Errorf("koobridge's pgpass gives %q for %s, postgres's password is %q", cfg.Password, kb.Environment["KOOBRIDGE_DB"], pw)
	}
	if cfg.User != pg.Environment["POSTGRES_USER"] || cfg.Database != pg.Environment["POSTGRES_DB"] || cfg.Host != "postgres" {
		t.Errorf("KOOBRIDGE_DB connects as %s to %s on %s; postgres creates user %s and database %s as service postgres",
			cfg.User, cfg.Database, cfg.Host, pg.Environment["POSTGRES_USER"], pg.Environment["POSTGRES_DB"])
	}
}

// TestComposeRuns runs compose's koobridge service, the image's command with
// the service's environment and secrets as the image's user, against the
// machine's PostgreSQL in a fresh database (the service "postgres" mapped to
// it): the schema must be migrated and /readyz answer 200.
func TestComposeRuns(t *testing.T) {
	d := loadDockerfile(t)
	project := makeComposeSecrets(t)
	c := loadCompose(t, project)
	svc := c.Services["koobridge"]
	root := layoutImage(t, d)
	mountSecrets(t, c, "koobridge", project, root)
	uid, gid := imageUser(t, d)

	dbURL := freshDatabase(t, svc.Environment["KOOBRIDGE_DB"])
	env, err := d.final().env()
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range svc.Environment {
		env[k] = v
	}
	for k, v := range env {
		env[k] = inRoot(root, v)
	}
	env["KOOBRIDGE_DB"] = dbURL
	// As docker does: a service entrypoint replaces the image's and its CMD,
	// a service command replaces the CMD.
	entry, command := imageEntrypoint(t, d)
	if len(svc.Entrypoint) > 0 {
		entry, command = svc.Entrypoint, nil
	}
	if len(svc.Command) > 0 {
		command = svc.Command
	}
	argv := append(slices.Clone(entry), command...)
	wd, _ := d.final().last("WORKDIR")
	listen := env["KOOBRIDGE_LISTEN"]

	s := startOnFreePort(t, func(port string) *exec.Cmd {
		env["KOOBRIDGE_LISTEN"] = withPort(t, listen, port)
		cmd := exec.Command(inRoot(root, argv[0]), argv[1:]...)
		cmd.Env = cleanEnv(env)
		cmd.Dir = filepath.Join(root, wd.args)
		cmd.SysProcAttr = asUser(uid, gid)
		return cmd
	})
	if code, body := s.get(t, "/readyz"); code != 200 {
		t.Errorf("GET /readyz = %d %q, want 200", code, body)
	}
	if code := s.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("serve exited %d on SIGTERM, want 0", code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(context.Background()) }()
	var version int64
	if err := conn.QueryRow(ctx, `SELECT max(version_id) FROM goose_db_version`).Scan(&version); err != nil || version < 1 {
		t.Errorf("the fresh database was not migrated: version %d, %v", version, err)
	}
	if entries, _ := os.ReadDir(filepath.Join(root, "data")); len(entries) != 0 {
		t.Errorf("with PostgreSQL serve wrote to /data: %v", entries)
	}
}

// freshDatabase creates a role and a database owned by it on the test
// PostgreSQL server, dropped when the test ends, and returns composeURL
// with the compose service's host, port, user and database replaced by
// them; its parameters (sslmode) are kept.
func freshDatabase(t testing.TB, composeURL string) string {
	t.Helper()
	admin := pgtest.DSN(t)
	u, err := url.Parse(composeURL)
	if err != nil || u.Hostname() != "postgres" || u.Port() != "5432" {
		t.Fatalf("KOOBRIDGE_DB %q: want postgres://…@postgres:5432/…, the compose service", composeURL)
	}
	server, err := url.Parse(admin)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	name := "kbcompose_" + hex.EncodeToString(b)
	run := func(sql string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = conn.Close(context.Background()) }()
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	run("CREATE ROLE " + name + " LOGIN")
	t.Cleanup(func() { run("DROP ROLE IF EXISTS " + name) })
	run("CREATE DATABASE " + name + " OWNER " + name)
	t.Cleanup(func() { run("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)") })
	port := server.Port()
	if port == "" {
		port = "5432"
	}
	u.Host = net.JoinHostPort(server.Hostname(), port)
	u.User = url.User(name)
	u.Path = "/" + name
	return u.String()
}
