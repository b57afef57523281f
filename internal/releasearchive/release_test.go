package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"debug/buildinfo"
	"debug/elf"
	"debug/macho"
	"debug/pe"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The release tests run scripts/release from this clone, as a maintainer
// does, and then use its output as someone on a fresh machine would. They
// live here, beside the archiver, in a package of their own: a cold build
// of four platforms takes minutes and must not eat into the time budget of
// cmd/koobridge's tests.

const (
	releaseVersion = "v1.2.3-releasetest"
	releaseEpoch   = 1796601600 // 2026-12-07T00:00:00Z, as SOURCE_DATE_EPOCH
	waitLong       = 2 * time.Minute
)

// defaultTargets are scripts/release's targets when none are given.
var defaultTargets = []string{"linux/amd64", "linux/arm64", "darwin/arm64", "windows/amd64"}

// repoRoot is the clone this package is in.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "scripts", "release")); err != nil {
		t.Fatalf("scripts/release: %v", err)
	}
	return root
}

// runRelease runs scripts/release with args and env added to the
// environment (SOURCE_DATE_EPOCH removed unless env sets it); it returns
// the exit code and the combined output.
func runRelease(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command("bash", append([]string{filepath.Join(repoRoot(t), "scripts", "release")}, args...)...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SOURCE_DATE_EPOCH=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			t.Fatalf("scripts/release: %v", err)
		}
	}
	return cmd.ProcessState.ExitCode(), string(out)
}

// git runs git in the clone and returns its trimmed output.
func git(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = repoRoot(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git %s: %v (the tests run in a git clone)", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out))
}

// platformSuffix is the end of the version line: the toolchain that
// scripts/release builds with and the platform the binary runs on.
func platformSuffix(t *testing.T, goos, goarch string) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOVERSION").Output()
	if err != nil {
		t.Fatalf("go env GOVERSION: %v", err)
	}
	return strings.TrimSpace(string(out)) + " " + goos + "/" + goarch + ")"
}

// TestRelease builds every default target, checks SHA256SUMS, each
// archive's layout and each binary's format, then unpacks this machine's
// archive into an empty directory and runs version, demo and serve from
// it with nothing else: no Go, no clone, no module proxy.
func TestRelease(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-builds koobridge for four platforms; skipped with -short")
	}
	root := repoRoot(t)
	out := t.TempDir()
	commit := stableRelease(t, func() {
		code, log := runRelease(t, []string{"SOURCE_DATE_EPOCH=" + strconv.Itoa(releaseEpoch)}, "--out", out, "--version", releaseVersion)
		if code != 0 {
			t.Fatalf("scripts/release: exit %d\n%s", code, log)
		}
	})
	date := time.Unix(releaseEpoch, 0).UTC().Format(time.RFC3339)
	wantFiles := shippedFiles(t, root)

	archives := checkSums(t, out)
	var wantArchives []string
	for _, target := range defaultTargets {
		wantArchives = append(wantArchives, archiveName(target))
	}
	slices.Sort(wantArchives)
	if !slices.Equal(archives, wantArchives) {
		t.Fatalf("SHA256SUMS lists %q, want %q", archives, wantArchives)
	}
	if entries, err := os.ReadDir(out); err != nil || len(entries) != len(wantArchives)+1 {
		t.Errorf("--out holds %d entries (%v), want the archives and SHA256SUMS", len(entries), err)
	}

	for _, target := range defaultTargets {
		t.Run(target, func(t *testing.T) {
			goos, goarch, _ := strings.Cut(target, "/")
			name := archiveName(target)
			top := strings.TrimSuffix(strings.TrimSuffix(name, ".zip"), ".tar.gz")
			ext := ".tar.gz"
			if goos == "windows" {
				ext = ".zip"
			}
			b, err := os.ReadFile(filepath.Join(out, name))
			if err != nil {
				t.Fatal(err)
			}
			names, members := readArchive(t, ext, b)
			exe := "koobridge"
			if goos == "windows" {
				exe = "koobridge.exe"
			}
			var files []string
			for _, n := range names {
				if n != top+"/" && !strings.HasPrefix(n, top+"/") {
					t.Errorf("%s is outside the top directory %s/", n, top)
					continue
				}
				if m := members[n]; !m.mtime.Equal(time.Unix(releaseEpoch, 0)) {
					t.Errorf("%s has time %v, want SOURCE_DATE_EPOCH", n, m.mtime)
				}
				if !strings.HasSuffix(n, "/") {
					files = append(files, strings.TrimPrefix(n, top+"/"))
				}
			}
			want := append([]string{exe}, wantFiles...)
			slices.Sort(want)
			slices.Sort(files)
			if !slices.Equal(files, want) {
				t.Errorf("archive files:\n%q\nwant:\n%q", files, want)
			}
			readme, err := os.ReadFile(filepath.Join(root, "README.md"))
			if err != nil {
				t.Fatal(err)
			}
			if members[top+"/README.md"].body != string(readme) {
				t.Error("README.md differs from the clone's")
			}
			bin := members[top+"/"+exe]
			if bin.mode != 0o755 {
				t.Errorf("%s has mode %v, want 0755", exe, bin.mode)
			}
			checkExecutable(t, goos, goarch, []byte(bin.body))
			for _, stamp := range []string{releaseVersion, commit, date} {
				if !strings.Contains(bin.body, stamp) {
					t.Errorf("%s is not stamped with %q", exe, stamp)
				}
			}
		})
	}

	host := runtime.GOOS + "/" + runtime.GOARCH
	if !slices.Contains(defaultTargets, host) {
		// Not one of the release platforms: build this machine's archive too.
		if code, log := runRelease(t, []string{"SOURCE_DATE_EPOCH=" + strconv.Itoa(releaseEpoch)}, "--out", out, "--version", releaseVersion, host); code != 0 {
			t.Fatalf("scripts/release %s: exit %d\n%s", host, code, log)
		}
	}
	if runtime.GOOS == "windows" {
		t.Fatal("the release tests run scripts/release, a bash script, on Linux or macOS")
	}
	bin := unpack(t, filepath.Join(out, archiveName(host)))
	wantLine := "koobridge " + releaseVersion + " (commit " + commit[:12] + ", built " + date + ", " + platformSuffix(t, runtime.GOOS, runtime.GOARCH)
	for _, arg := range []string{"version", "--version"} {
		if got := strings.TrimSuffix(runUnpacked(t, bin, arg), "\n"); got != wantLine {
			t.Errorf("koobridge %s = %q, want %q", arg, got, wantLine)
		}
	}
	t.Run("demo", func(t *testing.T) { demoFromArchive(t, bin) })
	t.Run("serve", func(t *testing.T) { serveFromArchive(t, bin) })
}

// stableRelease runs release and returns the commit it built: HEAD, which
// must not move meanwhile. When it did (a commit in the same checkout while
// the tests ran), it runs release again.
func stableRelease(t *testing.T, release func()) string {
	t.Helper()
	for range 3 {
		head := git(t, "rev-parse", "HEAD")
		release()
		if git(t, "rev-parse", "HEAD") == head {
			return head
		}
	}
	t.Fatal("HEAD moved during each of three runs of scripts/release")
	return ""
}

func archiveName(target string) string {
	goos, goarch, _ := strings.Cut(target, "/")
	if goos == "windows" {
		return "koobridge_" + releaseVersion + "_" + goos + "_" + goarch + ".zip"
	}
	return "koobridge_" + releaseVersion + "_" + goos + "_" + goarch + ".tar.gz"
}

// shippedFiles lists what every archive carries besides the binary:
// README.md and the files git tracks under docs/ and deploy/ without Go
// tests and test data, as slash paths.
func shippedFiles(t *testing.T, root string) []string {
	t.Helper()
	cmd := exec.Command("git", "ls-files", "-z", "--", "docs", "deploy")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git ls-files: %v (the tests run in a git clone)", err)
	}
	files := []string{"README.md"}
	for f := range strings.SplitSeq(strings.TrimSuffix(string(out), "\x00"), "\x00") {
		if !strings.HasSuffix(f, "_test.go") && !strings.HasPrefix(f, "testdata/") && !strings.Contains(f, "/testdata/") {
			files = append(files, f)
		}
	}
	if !slices.Contains(files, "docs/install.md") {
		t.Fatalf("docs/install.md is not tracked in the clone: %q", files)
	}
	return files
}

// checkSums verifies SHA256SUMS against the archives beside it, both by
// reading it and with sha256sum -c as the docs tell users, and returns the
// names it lists, sorted.
func checkSums(t *testing.T, dir string) []string {
	t.Helper()
	sums, err := os.ReadFile(filepath.Join(dir, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	line := regexp.MustCompile(`^([0-9a-f]{64})  (\S+)$`)
	sc := bufio.NewScanner(bytes.NewReader(sums))
	for sc.Scan() {
		m := line.FindStringSubmatch(sc.Text())
		if m == nil {
			t.Fatalf("SHA256SUMS line %q is not in sha256sum format", sc.Text())
		}
		b, err := os.ReadFile(filepath.Join(dir, m[2]))
		if err != nil {
			t.Fatal(err)
		}
		if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != m[1] {
			t.Errorf("SHA256SUMS: %s has another hash", m[2])
		}
		names = append(names, m[2])
	}
	cmd := exec.Command("sha256sum", "-c", "SHA256SUMS")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("sha256sum -c SHA256SUMS: %v\n%s", err, out)
	}
	slices.Sort(names)
	return names
}

// checkExecutable checks that b is an executable for goos/goarch, and on
// Linux a static one (no interpreter, no shared libraries), as CGO_ENABLED=0
// makes it: it runs on any Linux of that architecture.
func checkExecutable(t *testing.T, goos, goarch string, b []byte) {
	t.Helper()
	r := bytes.NewReader(b)
	switch goos {
	case "linux":
		f, err := elf.NewFile(r)
		if err != nil {
			t.Fatalf("not ELF: %v", err)
		}
		want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[goarch]
		if f.Machine != want || f.Type != elf.ET_EXEC {
			t.Errorf("ELF %v %v, want %v ET_EXEC", f.Machine, f.Type, want)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Error("ELF has an interpreter (PT_INTERP): dynamically linked")
			}
		}
		if libs, err := f.DynString(elf.DT_NEEDED); err != nil || len(libs) > 0 {
			t.Errorf("ELF needs shared libraries %q (%v)", libs, err)
		}
	case "darwin":
		f, err := macho.NewFile(r)
		if err != nil {
			t.Fatalf("not Mach-O: %v", err)
		}
		if f.Cpu != macho.CpuArm64 || f.Type != macho.TypeExec || goarch != "arm64" {
			t.Errorf("Mach-O %v %v, want arm64 executable", f.Cpu, f.Type)
		}
	case "windows":
		f, err := pe.NewFile(r)
		if err != nil {
			t.Fatalf("not PE: %v", err)
		}
		c := f.FileHeader.Characteristics
		if f.FileHeader.Machine != pe.IMAGE_FILE_MACHINE_AMD64 || goarch != "amd64" ||
			c&pe.IMAGE_FILE_EXECUTABLE_IMAGE == 0 || c&pe.IMAGE_FILE_DLL != 0 {
			t.Errorf("PE machine %#x characteristics %#x, want an amd64 executable", f.FileHeader.Machine, c)
		}
	default:
		t.Fatalf("no check for %s", goos)
	}
}

// unpack extracts a .tar.gz with the system's tar, as a user would, into
// a new directory and returns the binary's path.
func unpack(t *testing.T, archive string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("tar", "-xzf", archive, "-C", dir).CombinedOutput(); err != nil {
		t.Fatalf("tar -xzf %s: %v\n%s", archive, err, out)
	}
	top := strings.TrimSuffix(filepath.Base(archive), ".tar.gz")
	bin := filepath.Join(dir, top, "koobridge")
	if st, err := os.Stat(bin); err != nil || st.Mode().Perm()&0o111 == 0 {
		t.Fatalf("unpacked binary: %v %v", st, err)
	}
	return bin
}

// freshEnv is the environment of a fresh machine: no Go, no KOOBRIDGE_*
// settings, a home and temporary directory of its own.
func freshEnv(t *testing.T) []string {
	t.Helper()
	home := t.TempDir()
	return []string{"PATH=/usr/bin:/bin", "HOME=" + home, "TMPDIR=" + home}
}

// runUnpacked runs the unpacked binary to completion and returns its
// standard output.
func runUnpacked(t *testing.T, bin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = filepath.Dir(bin)
	cmd.Env = freshEnv(t)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("koobridge %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}

// demoFromArchive plays the demo's whole lifecycle once (--once), every
// listener on a port the system picks.
func demoFromArchive(t *testing.T, bin string) {
	out := runUnpacked(t, bin, "demo", "--once", "--listen", "127.0.0.1:0", "--emulator-listen", "127.0.0.1:0",
		"--app-listen", "127.0.0.1:0", "--conformance-openapi", "127.0.0.1:0", "--dir", t.TempDir())
	if strings.Contains(out, "stopped early") {
		t.Fatalf("the demo's lifecycle stopped early:\n%s", out)
	}
	if n := strings.Count(out, "released"); n < 2 {
		t.Errorf("want both demo subscriptions released, saw %d:\n%s", n, out)
	}
}

var listeningRE = regexp.MustCompile(`"msg":"listening","addr":"([^"]+)"`)

// serveFromArchive starts "koobridge serve --config FILE" with a
// production configuration (secrets in files, SQLite in the directory),
// checks /healthz, and stops it with SIGTERM: exit 0.
func serveFromArchive(t *testing.T, bin string) {
	dir := t.TempDir()
	secret := func(name, value string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(value+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	dataKey := make([]byte, 32)
	if _, err := rand.Read(dataKey); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "koobridge.db")
	config := fmt.Sprintf(`listen: 127.0.0.1:0
db: sqlite:%s
key-file: %s
ak: TESTAK0123456789
sk-file: %s
data-key-file: %s
log-level: info
`, db, secret("keys", "release-test-key-0123456789"), secret("sk", "release-test-sk-0123456789"),
		secret("data-key", base64.StdEncoding.EncodeToString(dataKey)))
	configFile := filepath.Join(dir, "koobridge.yaml")
	if err := os.WriteFile(configFile, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(bin, "serve", "--config", configFile)
	cmd.Dir = filepath.Dir(bin)
	cmd.Env = freshEnv(t)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer // written by the scanner until the pipe closes
	addr := make(chan string, 1)
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			log.WriteString(sc.Text() + "\n")
			if m := listeningRE.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
	}()
	exited := make(chan error, 1)
	go func() {
		<-scanned // Wait closes the pipe: read it all first
		exited <- cmd.Wait()
	}()
	waited := false // set once exited was received
	t.Cleanup(func() {
		if !waited {
			_ = cmd.Process.Kill()
			<-exited
		}
	})

	var base string
	select {
	case a := <-addr:
		base = "http://" + a
	case err := <-exited:
		waited = true
		t.Fatalf("serve exited before listening: %v\n%s", err, log.String())
	case <-time.After(waitLong):
		t.Fatal("serve did not log \"listening\"")
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/healthz", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /healthz: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /healthz: %s, want 200", resp.Status)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		waited = true
		if err != nil {
			t.Errorf("serve after SIGTERM: %v, want exit 0\n%s", err, log.String())
		}
	case <-time.After(waitLong):
		t.Fatal("serve did not exit after SIGTERM")
	}
	if _, err := os.Stat(db); err != nil {
		t.Errorf("the configured database: %v", err)
	}
}

// TestReleaseBinary: --binary writes the bare binary alone, with the
// defaults stamped: git describe's version, HEAD and HEAD's time.
func TestReleaseBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds koobridge; skipped with -short")
	}
	if runtime.GOOS == "windows" {
		t.Fatal("the release tests run scripts/release, a bash script, on Linux or macOS")
	}
	out := t.TempDir()
	host := runtime.GOOS + "/" + runtime.GOARCH
	commit := stableRelease(t, func() {
		if code, log := runRelease(t, nil, "--binary", "--out", out, host); code != 0 {
			t.Fatalf("scripts/release --binary: exit %d\n%s", code, log)
		}
	})
	entries, err := os.ReadDir(out)
	if err != nil || len(entries) != 1 || entries[0].Name() != "koobridge" {
		t.Fatalf("--out holds %v (%v), want only koobridge", entries, err)
	}
	// The clone may be dirty (then git describe adds -dirty): the version
	// starts with what git describe says without --dirty.
	describe := git(t, "describe", "--tags", "--always", commit)
	epoch, err := strconv.ParseInt(git(t, "log", "-1", "--format=%ct", commit), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	want := regexp.MustCompile(`^koobridge ` + regexp.QuoteMeta(describe) + `(-dirty)? \(commit ` + commit[:12] +
		`, built ` + regexp.QuoteMeta(time.Unix(epoch, 0).UTC().Format(time.RFC3339)) + `, ` +
		regexp.QuoteMeta(platformSuffix(t, runtime.GOOS, runtime.GOARCH)) + `$`)
	line := strings.TrimSuffix(runUnpacked(t, filepath.Join(out, "koobridge"), "version"), "\n")
	if !want.MatchString(line) {
		t.Errorf("version = %q, want %s", line, want)
	}
}

// TestReleaseUsage: what scripts/release refuses, before building
// anything, with exit 2 and a reason.
func TestReleaseUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"two targets with --binary", []string{"--binary", "linux/amd64", "linux/arm64"}, "exactly one target"},
		{"target without arch", []string{"linux"}, "is not GOOS/GOARCH"},
		{"version with a space", []string{"--version", "v1 beta", "linux/amd64"}, "may hold only"},
		{"unknown option", []string{"--zip"}, "unknown option --zip"},
		{"--out without a value", []string{"--out"}, "usage:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			code, log := runRelease(t, nil, append([]string{"--out", out}, tt.args...)...)
			if code != 2 || !strings.Contains(log, tt.want) {
				t.Errorf("exit %d, %q; want 2 and %q", code, log, tt.want)
			}
			if entries, _ := os.ReadDir(out); len(entries) > 0 {
				t.Errorf("refused, yet wrote %v", entries)
			}
		})
	}
}

// cloneWorkTree clones the clone's HEAD into a new directory and puts this
// work tree's scripts/release and archiver into it, so a test can add
// files to a clone of its own and run the release code under test there.
// The clone's .git is a directory, where Go stamps VCS information.
func cloneWorkTree(t *testing.T) string {
	t.Helper()
	root := repoRoot(t)
	dir := filepath.Join(t.TempDir(), "koobridge")
	if out, err := exec.Command("git", "clone", "--quiet", root, dir).CombinedOutput(); err != nil {
		t.Fatalf("git clone: %v\n%s", err, out)
	}
	for _, f := range []string{"scripts/release", "internal/releasearchive/main.go"} {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// runReleaseIn runs dir's scripts/release as runRelease does.
func runReleaseIn(t *testing.T, dir string, env []string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command("bash", append([]string{filepath.Join(dir, "scripts", "release")}, args...)...)
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SOURCE_DATE_EPOCH=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			t.Fatalf("scripts/release: %v", err)
		}
	}
	return cmd.ProcessState.ExitCode(), string(out)
}

// TestReleaseArchivesTrackedFilesOnly: files that git does not track never
// reach an archive, although they sit in docs/ and deploy/ and git describe
// --dirty does not see them (a stray deploy/koobridge.local.yaml holding a
// real AK would ship in a clean-looking release); a tracked file that was
// changed ships changed, with the version marked -dirty.
func TestReleaseArchivesTrackedFilesOnly(t *testing.T) {
	if testing.Short() {
		t.Skip("builds koobridge; skipped with -short")
	}
	if runtime.GOOS == "windows" {
		t.Fatal("the release tests run scripts/release, a bash script, on Linux or macOS")
	}
	clone := cloneWorkTree(t)
	untracked := map[string]string{
		"deploy/koobridge.local.yaml":  "ak: HPUAREALLOOKINGKEY01\n",
		"deploy/systemd/override.conf": "[Service]\n",
		"docs/notes.md":                "mine\n",
	}
	for name, body := range untracked {
		if err := os.WriteFile(filepath.Join(clone, filepath.FromSlash(name)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const changed = "\n<!-- changed in the work tree -->\n"
	install := filepath.Join(clone, "docs", "install.md")
	orig, err := os.ReadFile(install)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(install, append(orig, changed...), 0o644); err != nil {
		t.Fatal(err)
	}

	out := t.TempDir()
	host := runtime.GOOS + "/" + runtime.GOARCH
	if code, log := runReleaseIn(t, clone, nil, "--out", out, host); code != 0 {
		t.Fatalf("scripts/release: exit %d\n%s", code, log)
	}
	archives := checkSums(t, out)
	if len(archives) != 1 || !strings.HasSuffix(archives[0], "-dirty_"+runtime.GOOS+"_"+runtime.GOARCH+".tar.gz") {
		t.Fatalf("archives %q: want one, its version git describe's with -dirty (a tracked file changed)", archives)
	}
	b, err := os.ReadFile(filepath.Join(out, archives[0]))
	if err != nil {
		t.Fatal(err)
	}
	top := strings.TrimSuffix(archives[0], ".tar.gz")
	_, members := readArchive(t, ".tar.gz", b)
	for name := range untracked {
		if _, ok := members[top+"/"+name]; ok {
			t.Errorf("the archive holds %s, which git does not track", name)
		}
	}
	for _, name := range shippedFiles(t, clone) {
		if _, ok := members[top+"/"+name]; !ok {
			t.Errorf("the archive lacks the tracked %s", name)
		}
	}
	if got := members[top+"/docs/install.md"].body; !strings.HasSuffix(got, changed) {
		t.Error("docs/install.md is not the work tree's")
	}
}

// TestReleaseOutsideGit: without git (sources unpacked from an archive)
// scripts/release cannot tell what is tracked, so it refuses to build
// archives, before building anything.
func TestReleaseOutsideGit(t *testing.T) {
	clone := cloneWorkTree(t)
	if err := os.RemoveAll(filepath.Join(clone, ".git")); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	code, log := runReleaseIn(t, clone, []string{"GIT_CEILING_DIRECTORIES=" + filepath.Dir(clone)}, "--out", out, "linux/amd64")
	if code != 2 || !strings.Contains(log, "only in a git clone") {
		t.Errorf("exit %d, %q; want 2 and a reason", code, log)
	}
	if entries, _ := os.ReadDir(out); len(entries) > 0 {
		t.Errorf("refused, yet wrote %v", entries)
	}
}

// TestReleaseIgnoresGoVCSSettings: two builds of one commit give the same
// bytes whatever GOFLAGS says of -buildvcs (this machine's go env may set
// -buildvcs=false, a fresh one stamps VCS information by default), since
// scripts/release stamps the commit itself.
func TestReleaseIgnoresGoVCSSettings(t *testing.T) {
	if testing.Short() {
		t.Skip("builds koobridge twice; skipped with -short")
	}
	if runtime.GOOS == "windows" {
		t.Fatal("the release tests run scripts/release, a bash script, on Linux or macOS")
	}
	clone := cloneWorkTree(t)
	host := runtime.GOOS + "/" + runtime.GOARCH
	var bins [2][]byte
	for i, goflags := range []string{"-buildvcs=true", "-buildvcs=false"} {
		out := t.TempDir()
		if code, log := runReleaseIn(t, clone, []string{"GOFLAGS=" + goflags}, "--binary", "--out", out, host); code != 0 {
			t.Fatalf("GOFLAGS=%s scripts/release --binary: exit %d\n%s", goflags, code, log)
		}
		b, err := os.ReadFile(filepath.Join(out, "koobridge"))
		if err != nil {
			t.Fatal(err)
		}
		bins[i] = b
	}
	if !bytes.Equal(bins[0], bins[1]) {
		t.Error("the binaries built with GOFLAGS=-buildvcs=true and -buildvcs=false differ")
	}
	info, err := buildinfo.Read(bytes.NewReader(bins[0]))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range info.Settings {
		if strings.HasPrefix(s.Key, "vcs") {
			t.Errorf("the binary carries Go's VCS stamp %s=%s", s.Key, s.Value)
		}
	}
}
