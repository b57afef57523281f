package deploy_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// unitPath is the systemd unit, relative to the repository.
const unitPath = "deploy/systemd/koobridge.service"

// unitFile is a parsed systemd unit: section → key → values in order (a key
// may repeat; an empty assignment is kept as "").
type unitFile map[string]map[string][]string

// get returns the last value of key in section and whether it is set.
func (u unitFile) get(section, key string) (string, bool) {
	v := u[section][key]
	if len(v) == 0 {
		return "", false
	}
	return v[len(v)-1], true
}

// parseUnit parses systemd's unit syntax: [Section], Key=Value, comments
// (# and ;) and backslash continuations.
func parseUnit(src string) (unitFile, error) {
	u := unitFile{}
	section := ""
	lines := strings.Split(src, "\n")
	for i := 0; i < len(lines); i++ {
		line := strings.TrimSpace(lines[i])
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		for strings.HasSuffix(line, `\`) && i+1 < len(lines) {
			i++
			line = strings.TrimSuffix(line, `\`) + " " + strings.TrimSpace(lines[i])
		}
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			section = line[1 : len(line)-1]
			if u[section] == nil {
				u[section] = map[string][]string{}
			}
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || section == "" {
			return nil, fmt.Errorf("line %d: %q is not Key=Value in a section", i+1, line)
		}
		k = strings.TrimSpace(k)
		u[section][k] = append(u[section][k], strings.TrimSpace(v))
	}
	return u, nil
}

// expandExec splits an ExecStart= line into its argv as systemd does for
// the forms the unit uses: words split on white space, specifiers (%S, %E,
// %d, %%) and ${VAR} replaced from spec and env.
func expandExec(line string, spec, env map[string]string) ([]string, error) {
	words, err := splitWords(line)
	if err != nil {
		return nil, err
	}
	var argv []string
	for _, w := range words {
		var b strings.Builder
		for i := 0; i < len(w); i++ {
			switch {
			case w[i] == '%' && i+1 < len(w):
				i++
				if w[i] == '%' {
					b.WriteByte('%')
					continue
				}
				v, ok := spec[string(w[i])]
				if !ok {
					return nil, fmt.Errorf("specifier %%%c is not emulated", w[i])
				}
				b.WriteString(v)
			case strings.HasPrefix(w[i:], "${"):
				end := strings.IndexByte(w[i:], '}')
				if end < 0 {
					return nil, fmt.Errorf("unclosed ${ in %q", w)
				}
				name := w[i+2 : i+end]
				v, ok := env[name]
				if !ok {
					return nil, fmt.Errorf("${%s} is not set for the service", name)
				}
				b.WriteString(v)
				i += end
			case w[i] == '$':
				return nil, fmt.Errorf("%q: unbraced $VAR splits into words; use ${VAR}", w)
			default:
				b.WriteByte(w[i])
			}
		}
		argv = append(argv, b.String())
	}
	return argv, nil
}

// loadUnit parses the repository's unit.
func loadUnit(t testing.TB) unitFile {
	t.Helper()
	u, err := parseUnit(string(readRepoFile(t, unitPath)))
	if err != nil {
		t.Fatalf("%s: %v", unitPath, err)
	}
	return u
}

// TestSystemdUnitHardening checks the unit's sandbox and lifecycle settings.
func TestSystemdUnitHardening(t *testing.T) {
	u := loadUnit(t)
	want := map[string]string{
		"DynamicUser":             "yes",
		"StateDirectory":          "koobridge",
		"ConfigurationDirectory":  "koobridge",
		"ProtectSystem":           "strict",
		"ProtectHome":             "yes",
		"PrivateTmp":              "yes",
		"PrivateDevices":          "yes",
		"NoNewPrivileges":         "yes",
		"CapabilityBoundingSet":   "",
		"AmbientCapabilities":     "",
		"RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
		"RestrictNamespaces":      "yes",
		"RestrictSUIDSGID":        "yes",
		"LockPersonality":         "yes",
		"MemoryDenyWriteExecute":  "yes",
		"ProtectKernelTunables":   "yes",
		"ProtectKernelModules":    "yes",
		"ProtectControlGroups":    "yes",
		"SystemCallArchitectures": "native",
		"UMask":                   "0077",
		"Restart":                 "on-failure",
		"KillSignal":              "SIGTERM",
		"KillMode":                "mixed",
	}
	for k, v := range want {
		if got, ok := u.get("Service", k); !ok || got != v {
			t.Errorf("%s=%q (set: %v), want %q", k, got, ok, v)
		}
	}
	if f := u["Service"]["SystemCallFilter"]; len(f) == 0 || f[0] != "@system-service" {
		t.Errorf("SystemCallFilter %v: want @system-service first", f)
	}

	// Stopping must outlast serve's drain: --shutdown-timeout plus a
	// provisioning attempt (--exec-timeout, 30s by default).
	stop, _ := u.get("Service", "TimeoutStopSec")
	d, err := time.ParseDuration(stop)
	cfg := exampleConfig(t)
	shutdown, err2 := time.ParseDuration(fmt.Sprint(cfg["shutdown-timeout"]))
	if err != nil || err2 != nil || d <= shutdown+30*time.Second {
		t.Errorf("TimeoutStopSec=%s: want more than the config's shutdown-timeout %v plus a 30s provisioning attempt", stop, cfg["shutdown-timeout"])
	}

	// Every credential ExecStart reads is loaded, and every loaded one read.
	exe, _ := u.get("Service", "ExecStart")
	used := map[string]bool{}
	for _, m := range regexp.MustCompile(`\$\{CREDENTIALS_DIRECTORY\}/([A-Za-z0-9._-]+)`).FindAllStringSubmatch(exe, -1) {
		used[m[1]] = true
	}
	loaded := map[string]bool{}
	for _, lc := range u["Service"]["LoadCredential"] {
		id, src, _ := strings.Cut(lc, ":")
		loaded[id] = true
		if !strings.HasPrefix(src, "/etc/koobridge/secrets/") {
			t.Errorf("LoadCredential=%s: want a file in /etc/koobridge/secrets/", lc)
		}
	}
	for id := range used {
		if !loaded[id] {
			t.Errorf("ExecStart reads credential %s, which no LoadCredential= loads", id)
		}
	}
	for id := range loaded {
		if !used[id] {
			t.Errorf("LoadCredential= loads %s, which ExecStart does not read", id)
		}
	}
	for _, flag := range []string{"--config", "--key-file", "--sk-file", "--data-key-file", "--admin-token-file"} {
		if !strings.Contains(exe, flag+" ") {
			t.Errorf("ExecStart lacks %s", flag)
		}
	}
}

// exampleConfig is deploy/koobridge.yaml.
func exampleConfig(t testing.TB) map[string]any {
	t.Helper()
	var cfg map[string]any
	if err := yaml.Unmarshal(readRepoFile(t, "deploy/koobridge.yaml"), &cfg); err != nil {
		t.Fatalf("deploy/koobridge.yaml: %v", err)
	}
	return cfg
}

// unitCopy writes the unit with ExecStart's binary replaced by bin into a
// new directory and returns the copy's path.
func unitCopy(t testing.TB, bin string) string {
	t.Helper()
	src := string(readRepoFile(t, unitPath))
	const installed = "ExecStart=/usr/local/bin/koobridge "
	if !strings.Contains(src, installed) {
		t.Fatalf("%s has no %q", unitPath, installed)
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "koobridge.service")
	if err := os.WriteFile(p, []byte(strings.Replace(src, installed, "ExecStart="+bin+" ", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSystemdAnalyze runs systemd's own checks on the unit: verify (syntax,
// known keys and values, an executable ExecStart) must print nothing, and
// the offline security analysis must rate its exposure 2.0 or lower.
func TestSystemdAnalyze(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatalf("systemd-analyze is needed (Debian: apt-get install systemd): %v", err)
	}
	unit := unitCopy(t, builtBinary(t))
	out, err := exec.Command(analyze, "verify", unit).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err = exec.Command(analyze, "security", "--offline=true", "--threshold=20", "--no-pager", unit).CombinedOutput()
	if err != nil {
		t.Errorf("systemd-analyze security: exposure above 2.0 (%v):\n%s", err, out)
	}
}

// dynamicUID stands for the uid systemd allocates for DynamicUser=yes (the
// first of its range, 61184–65519).
const dynamicUID = 61184

// TestSystemdUnitRuns runs the unit's ExecStart as systemd would: as a user
// of its own, its specifiers and ${STATE_DIRECTORY}, ${CONFIGURATION_DIRECTORY}
// and ${CREDENTIALS_DIRECTORY} expanded to directories of the test, the
// secrets the docs make loaded as credentials, deploy/koobridge.yaml as the
// configuration. serve must answer /healthz and stop with 0 on KillSignal,
// its SQLite database in the state directory.
func TestSystemdUnitRuns(t *testing.T) {
	u := loadUnit(t)
	bin := builtBinary(t)
	tmp := openTempDir(t)
	etc := filepath.Join(tmp, "etc", "koobridge")
	varLib := filepath.Join(tmp, "var", "lib")
	state := filepath.Join(varLib, "koobridge")
	creds := filepath.Join(tmp, "run", "credentials", "koobridge.service")
	for _, d := range []string{etc, state, creds} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}

	// The docs' commands make the secrets; systemd loads them as credentials,
	// readable by the service's user only.
	runShell(t, tmp, strings.ReplaceAll(docsBlock(t, "<!-- deploy/systemd_test.go runs this block -->"), "/etc/koobridge", etc), operatorEnv...)
	for _, lc := range u["Service"]["LoadCredential"] {
		id, src, _ := strings.Cut(lc, ":")
		copyFile(t, strings.Replace(src, "/etc/koobridge", etc, 1), filepath.Join(creds, id))
		if err := os.Chmod(filepath.Join(creds, id), 0o400); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(creds, 0o500); err != nil {
		t.Fatal(err)
	}
	chownTree(t, creds, dynamicUID, dynamicUID)
	if err := os.Chmod(state, 0o700); err != nil {
		t.Fatal(err)
	}
	chownTree(t, state, dynamicUID, dynamicUID)

	spec := map[string]string{"S": varLib, "E": filepath.Dir(etc), "d": creds, "t": filepath.Join(tmp, "run")}
	env := map[string]string{
		"STATE_DIRECTORY":         state,
		"CONFIGURATION_DIRECTORY": etc,
		"CREDENTIALS_DIRECTORY":   creds,
		"HOME":                    "/",
	}
	for _, e := range u["Service"]["Environment"] {
		k, v, _ := strings.Cut(e, "=")
		env[k] = v
	}
	exe, _ := u.get("Service", "ExecStart")
	argv, err := expandExec(exe, spec, env)
	if err != nil {
		t.Fatalf("ExecStart: %v", err)
	}
	if argv[0] != "/usr/local/bin/koobridge" {
		t.Fatalf("ExecStart runs %s, want /usr/local/bin/koobridge (the docs install it there)", argv[0])
	}
	wd, _ := u.get("Service", "WorkingDirectory")
	wdArgv, err := expandExec(wd, spec, env)
	if err != nil || len(wdArgv) != 1 {
		t.Fatalf("WorkingDirectory=%s: %v", wd, err)
	}
	sig, _ := u.get("Service", "KillSignal")
	signal, ok := map[string]syscall.Signal{"SIGTERM": syscall.SIGTERM, "SIGINT": syscall.SIGINT}[sig]
	if !ok {
		t.Fatalf("KillSignal=%s: serve stops gracefully on SIGTERM or SIGINT only", sig)
	}

	cfg := exampleConfig(t)
	for k, v := range cfg {
		if s, ok := v.(string); ok {
			s = strings.ReplaceAll(s, "/var/lib/koobridge", state)
			cfg[k] = strings.ReplaceAll(s, "/etc/koobridge", etc)
		}
	}
	if cfg["db"] != "sqlite:"+state+"/koobridge.db" {
		t.Fatalf("deploy/koobridge.yaml's db %v is not SQLite in the StateDirectory", cfg["db"])
	}
	s := startOnFreePort(t, func(port string) *exec.Cmd {
		cfg["listen"] = "127.0.0.1:" + port
		b, err := yaml.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(etc, "koobridge.yaml"), b, 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, argv[1:]...)
		cmd.Env = cleanEnv(env)
		cmd.Dir = wdArgv[0]
		cmd.SysProcAttr = asUser(dynamicUID, dynamicUID)
		return cmd
	})
	if code, body := s.get(t, "/healthz"); code != 200 {
		t.Errorf("GET /healthz = %d %q, want 200", code, body)
	}
	if code, body := s.get(t, "/readyz"); code != 200 {
		t.Errorf("GET /readyz = %d %q, want 200", code, body)
	}
	if code := s.stop(t, signal); code != 0 {
		t.Fatalf("serve exited %d on %s, want 0", code, sig)
	}
	if !strings.Contains(s.output(), `"msg":"stopped"`) {
		t.Errorf("serve did not log its clean stop:\n%s", s.output())
	}
	if got := fileOwner(t, filepath.Join(state, "koobridge.db")); os.Geteuid() == 0 && got != dynamicUID {
		t.Errorf("the database is owned by %d, want the service's user %d", got, dynamicUID)
	}
}

func TestExpandExec(t *testing.T) {
	spec := map[string]string{"S": "/var/lib", "d": "/run/credentials/x.service"}
	env := map[string]string{"CREDENTIALS_DIRECTORY": "/run/credentials/x.service", "SP": "a b"}
	tests := []struct {
		line string
		want []string
		err  string
	}{
		{line: `/bin/kb serve --db sqlite:%S/kb/kb.db`, want: []string{"/bin/kb", "serve", "--db", "sqlite:/var/lib/kb/kb.db"}},
		{line: `/bin/kb --key-file ${CREDENTIALS_DIRECTORY}/key 100%%`, want: []string{"/bin/kb", "--key-file", "/run/credentials/x.service/key", "100%"}},
		{line: `/bin/kb ${SP} %d`, want: []string{"/bin/kb", "a b", "/run/credentials/x.service"}},
		{line: `/bin/kb "two words"`, want: []string{"/bin/kb", "two words"}},
		{line: `/bin/kb ${UNSET}`, err: "not set"},
		{line: `/bin/kb $SP`, err: "unbraced"},
		{line: `/bin/kb %Z`, err: "not emulated"},
	}
	for _, tc := range tests {
		got, err := expandExec(tc.line, spec, env)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("expandExec(%q) = %q, %v; want error %q", tc.line, got, err, tc.err)
			}
			continue
		}
		if err != nil || strings.Join(got, "\x00") != strings.Join(tc.want, "\x00") {
			t.Errorf("expandExec(%q) = %q, %v; want %q", tc.line, got, err, tc.want)
		}
	}
}
