package deploy_test

import (
	"debug/elf"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// The image's user and the paths the tests map into a directory of their own.
const (
	imageUID     = 65532
	imageVersion = "v0.0.0-imagetest" // the VERSION build arg the tests give
	buildOut     = "/out"             // where the build stage puts what the image copies
)

// loadDockerfile parses the repository's Dockerfile.
func loadDockerfile(t testing.TB) *dockerfile {
	t.Helper()
	d, err := parseDockerfile(string(readRepoFile(t, "Dockerfile")))
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	return d
}

// TestDockerfile checks what the image must be: a static binary built by
// scripts/release in a pinned Go image, on a pinned minimal base, running as
// a numeric non-root user with its database on the /data volume, listening on
// 8080 and checked by koobridge healthcheck.
func TestDockerfile(t *testing.T) {
	d := loadDockerfile(t)
	if len(d.stages) != 2 {
		t.Fatalf("%d stages, want 2 (build, image)", len(d.stages))
	}
	build, final := d.stages[0], d.final()
	if build.name == "" || d.stageNamed(build.name) != build {
		t.Errorf("the build stage has no name of its own: FROM %s", build.from.args)
	}
	if !regexp.MustCompile(`^golang:1\.26\.\d+(-[a-z0-9]+)?(@sha256:[0-9a-f]{64})?$`).MatchString(build.image) {
		t.Errorf("build stage FROM %s: want golang:1.26.N pinned to a patch release", build.image)
	}
	if build.from.flags["platform"] != "$BUILDPLATFORM" {
		t.Errorf("build stage FROM without --platform=$BUILDPLATFORM: a multi-platform build would emulate the compiler")
	}
	if !regexp.MustCompile(`^gcr\.io/distroless/static-debian\d+:nonroot(@sha256:[0-9a-f]{64})?$`).MatchString(final.image) {
		t.Errorf("image FROM %s: want the distroless static base, nonroot tag", final.image)
	}
	if runs := final.all("RUN"); len(runs) > 0 {
		t.Errorf("line %d: RUN in the final stage: the distroless base has no shell", runs[0].line)
	}
	var release []instruction
	for _, in := range build.all("RUN") {
		if strings.Contains(in.args, "scripts/release") {
			release = append(release, in)
		}
	}
	if len(release) != 1 || !strings.Contains(release[0].args, "--binary") || !strings.Contains(release[0].args, "--out "+buildOut) ||
		!strings.Contains(release[0].args, "linux/$TARGETARCH") {
		t.Errorf("want one RUN scripts/release --binary --out %s … linux/$TARGETARCH in the build stage, got %+v", buildOut, release)
	}

	user, ok := final.last("USER")
	if !ok || !regexp.MustCompile(`^`+strconv.Itoa(imageUID)+`(:`+strconv.Itoa(imageUID)+`)?$`).MatchString(user.args) {
		t.Errorf("USER %q: want the numeric non-root %d (a name cannot be checked by runAsNonRoot)", user.args, imageUID)
	}
	if wd, _ := final.last("WORKDIR"); wd.args != "/data" {
		t.Errorf("WORKDIR %q, want /data", wd.args)
	}
	if vols := volumes(t, final); len(vols) != 1 || vols[0] != "/data" {
		t.Errorf("VOLUME %v, want [/data]", vols)
	}
	if exp, _ := final.last("EXPOSE"); exp.args != "8080" && exp.args != "8080/tcp" {
		t.Errorf("EXPOSE %q, want 8080", exp.args)
	}
	env, err := final.env()
	if err != nil {
		t.Fatal(err)
	}
	if env["KOOBRIDGE_DB"] != "sqlite:/data/koobridge.db" || env["KOOBRIDGE_LISTEN"] != "0.0.0.0:8080" {
		t.Errorf("ENV %v: want KOOBRIDGE_DB=sqlite:/data/koobridge.db and KOOBRIDGE_LISTEN=0.0.0.0:8080", env)
	}
	var dataCopied bool
	for _, cp := range final.all("COPY") {
		words := strings.Fields(cp.args)
		if words[len(words)-1] == "/data" {
			dataCopied = cp.flags["from"] == build.name && cp.flags["chown"] == fmt.Sprintf("%d:%d", imageUID, imageUID)
		}
	}
	if !dataCopied {
		t.Errorf("no COPY --from=%s --chown=%d:%d … /data: the volume's mount point must belong to the image's user", build.name, imageUID, imageUID)
	}
	if sig, _ := final.last("STOPSIGNAL"); sig.args != "" && sig.args != "SIGTERM" {
		t.Errorf("STOPSIGNAL %s: serve drains on SIGTERM", sig.args)
	}

	entry := imageCommand(t, d)
	if len(entry) != 2 || entry[1] != "serve" {
		t.Errorf("ENTRYPOINT+CMD = %v, want [<koobridge> serve]", entry)
	}
	check := healthcheckCommand(t, d)
	if len(check) < 2 || check[0] != entry[0] || check[1] != "healthcheck" {
		t.Errorf("HEALTHCHECK CMD %v, want [%s healthcheck …]", check, entry[0])
	}
}

// Names .dockerignore must keep out of the build context, each a file a
// clone really gets: secrets that a build stage's layers would keep, and
// local state and build output.
var dockerignored = []string{
	"secrets/sk", "secrets/admin-token", // compose.yaml's secret files
	".env", "examples/sso-app/.env", // compose's AK, and any other .env
	"koobridge.db.dev.yaml",                                // serve --dev's secrets, from the README's "Try a call"
	"koobridge.db.dev.yaml.3141592653.tmp",                 // and the temporary file it writes them through
	"data/koobridge.sqlite.dev.yaml",                       // another database's, in a subdirectory
	"cmd/koobridge/koobridge.db.dev.yaml.123.tmp",          // serve --dev run in a package directory
	"koobridge.db", "koobridge.db-shm", "koobridge.db-wal", // a local SQLite database
	"sub/x.db", "demo/koobridge.db-wal", "e2e/app.db-shm", // and one below the root
	"dist/SHA256SUMS", "dist/koobridge_v1.2.3_linux_amd64.tar.gz", // scripts/release's output
	"koobridge", "deploy/deploy.test", "cpu.prof", // go build and go test output
	"scripts/__pycache__/x.pyc", "examples/web/node_modules/x/index.js",
}

// TestDockerignore builds, with buildah, FROM scratch and COPY . /ctx/, a
// context holding the repository's .dockerignore, every file git tracks,
// .git, and the names dockerignored lists, all as empty files; then reads
// what reached the image. buildah's matcher is a fork of Docker's, with its
// rules (a pattern matches from the context's root, ** any directories, a
// leading / nothing more): the secrets and local state stay out, and every
// tracked file and .git, from which scripts/release stamps the version and
// the commit, go in. No registry is needed.
func TestDockerignore(t *testing.T) {
	buildah, err := exec.LookPath("buildah")
	if err != nil {
		t.Fatalf("buildah: %v (apt-get install buildah; .ci/run installs it)", err)
	}
	root := repoRoot(t)
	lsFiles := exec.Command("git", "ls-files", "-z")
	lsFiles.Dir = root
	out, err := lsFiles.Output()
	if err != nil {
		t.Fatalf("git ls-files: %v (the tests run in a git clone)", err)
	}
	kept := []string{".git/HEAD", ".git/config", ".git/objects/pack/pack-0.pack"}
	for f := range strings.SplitSeq(strings.TrimSuffix(string(out), "\x00"), "\x00") {
		if f != ".dockerignore" {
			kept = append(kept, f)
		}
	}
	if !slices.Contains(kept, "cmd/koobridge/main.go") || !slices.Contains(kept, "scripts/release") {
		t.Fatalf("git ls-files lists neither cmd/koobridge/main.go nor scripts/release: %d files", len(kept))
	}

	dir := t.TempDir()
	ctxDir := filepath.Join(dir, "context")
	for _, f := range append(slices.Clone(kept), dockerignored...) {
		p := filepath.Join(ctxDir, filepath.FromSlash(f))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(t, filepath.Join(root, ".dockerignore"), filepath.Join(ctxDir, ".dockerignore"))
	containerfile := filepath.Join(dir, "Containerfile")
	if err := os.WriteFile(containerfile, []byte("FROM scratch\nCOPY . /ctx/\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	image := filepath.Join(dir, "image")
	// Storage of its own (vfs needs no mounts), so nothing is left behind.
	build := exec.Command(buildah, "--root", filepath.Join(dir, "storage"), "--runroot", filepath.Join(dir, "run"),
		"--storage-driver", "vfs", "build", "--quiet", "--pull=never", "--output", "type=local,dest="+image,
		"-f", containerfile, ctxDir)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("buildah build: %v\n%s", err, out)
	}

	got := map[string]bool{}
	err = filepath.WalkDir(filepath.Join(image, "ctx"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(filepath.Join(image, "ctx"), p)
		got[filepath.ToSlash(rel)] = true
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if !got[".dockerignore"] {
		t.Fatalf("the image holds no ctx/.dockerignore: the build did not copy the context (%d files)", len(got))
	}
	for _, f := range dockerignored {
		if got[f] {
			t.Errorf("docker build gets %s: .dockerignore does not exclude it", f)
		}
	}
	for _, f := range kept {
		if !got[f] {
			t.Errorf("docker build does not get %s: .dockerignore excludes it", f)
		}
	}
}

// volumes returns the stage's VOLUME paths.
func volumes(t testing.TB, s *stage) []string {
	t.Helper()
	var out []string
	for _, in := range s.all("VOLUME") {
		if strings.HasPrefix(in.args, "[") {
			argv, err := in.exec()
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, argv...)
			continue
		}
		out = append(out, strings.Fields(in.args)...)
	}
	return out
}

// imageCommand is the image's ENTRYPOINT followed by its CMD.
func imageCommand(t testing.TB, d *dockerfile) []string {
	t.Helper()
	entry, cmd := imageEntrypoint(t, d)
	return append(entry, cmd...)
}

// imageEntrypoint returns the image's ENTRYPOINT and CMD, both required in
// exec form (a shell form needs a shell, which the base lacks).
func imageEntrypoint(t testing.TB, d *dockerfile) (entry, cmd []string) {
	t.Helper()
	var argv [2][]string
	for i, name := range []string{"ENTRYPOINT", "CMD"} {
		in, ok := d.final().last(name)
		if !ok {
			t.Fatalf("the image has no %s", name)
		}
		a, err := in.exec()
		if err != nil {
			t.Fatal(err)
		}
		argv[i] = a
	}
	return argv[0], argv[1]
}

// healthcheckCommand is the HEALTHCHECK's CMD, required in exec form.
func healthcheckCommand(t testing.TB, d *dockerfile) []string {
	t.Helper()
	hc, ok := d.final().last("HEALTHCHECK")
	if !ok {
		t.Fatal("the image has no HEALTHCHECK")
	}
	rest, ok := strings.CutPrefix(hc.args, "CMD ")
	if !ok {
		t.Fatalf("HEALTHCHECK %s: want CMD [...]", hc.args)
	}
	argv, err := instruction{line: hc.line, cmd: "HEALTHCHECK CMD", args: strings.TrimSpace(rest)}.exec()
	if err != nil {
		t.Fatal(err)
	}
	return argv
}

// The build stage's output, made once for every test of the package.
var (
	buildOnce sync.Once
	buildDir  string // stands for the build stage's /out
	buildErr  error
)

// outRE finds the build stage's /out in a command line.
var outRE = regexp.MustCompile(`(^|[\s"'=])` + regexp.QuoteMeta(buildOut) + `\b`)

// imageBuild runs the build stage's RUN instructions, the very commands
// docker build runs, in the repository (the stage's COPY . .) with the build
// args TARGETARCH and VERSION, and /out mapped to a temporary directory,
// which it returns.
func imageBuild(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		d, err := parseDockerfile(string(readRepoFile(t, "Dockerfile")))
		if err != nil {
			buildErr = err
			return
		}
		dir, err := os.MkdirTemp("", "kbdeploy-build-")
		if err != nil {
			buildErr = err
			return
		}
		tempMu.Lock()
		tempDirs = append(tempDirs, dir)
		tempMu.Unlock()
		if err := os.Chmod(dir, 0o755); err != nil {
			buildErr = err
			return
		}
		buildDir = filepath.Join(dir, "out")
		for _, run := range d.stages[0].all("RUN") {
			script := outRE.ReplaceAllString(run.args, "${1}"+buildDir)
			cmd := exec.Command("sh", "-c", script) // Docker's default SHELL
			cmd.Dir = repoRoot(t)
			cmd.Env = append(os.Environ(), "TARGETARCH="+runtime.GOARCH, "VERSION="+imageVersion)
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("Dockerfile line %d, RUN %s: %v\n%s", run.line, script, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildDir
}

// builtBinary is the koobridge binary of the image build.
func builtBinary(t testing.TB) string {
	t.Helper()
	return filepath.Join(imageBuild(t), "koobridge")
}

// layoutImage lays out the final stage's files in a new directory, as the
// image's root: each COPY --from the build stage, with its --chown, and the
// WORKDIR. It returns the directory.
func layoutImage(t testing.TB, d *dockerfile) string {
	t.Helper()
	out := imageBuild(t)
	root := openTempDir(t)
	final := d.final()
	for _, cp := range final.all("COPY") {
		if cp.flags["from"] != d.stages[0].name {
			t.Fatalf("line %d: COPY %s: only COPY --from=%s is laid out", cp.line, cp.args, d.stages[0].name)
		}
		words := strings.Fields(cp.args)
		if len(words) != 2 {
			t.Fatalf("line %d: COPY %s: want one source and a destination", cp.line, cp.args)
		}
		src, dst := words[0], words[1]
		if src != buildOut && !strings.HasPrefix(src, buildOut+"/") {
			t.Fatalf("line %d: COPY %s: the source is not under %s", cp.line, src, buildOut)
		}
		from := filepath.Join(out, strings.TrimPrefix(src, buildOut))
		to := filepath.Join(root, filepath.FromSlash(dst))
		st, err := os.Stat(from)
		if err != nil {
			t.Fatalf("line %d: COPY %s: the build made no %s: %v", cp.line, cp.args, src, err)
		}
		if st.IsDir() {
			// COPY copies a directory's contents into the destination.
			if err := os.CopyFS(to, os.DirFS(from)); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(to, st.Mode().Perm()); err != nil {
				t.Fatal(err)
			}
		} else {
			if strings.HasSuffix(dst, "/") {
				to = filepath.Join(to, path.Base(src))
			}
			copyFile(t, from, to)
		}
		if owner := cp.flags["chown"]; owner != "" {
			uid, gid := parseOwner(t, owner)
			chownTree(t, to, uid, gid)
		}
	}
	if wd, ok := final.last("WORKDIR"); ok {
		if err := os.MkdirAll(filepath.Join(root, wd.args), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func parseOwner(t testing.TB, s string) (uid, gid int) {
	t.Helper()
	u, g, ok := strings.Cut(s, ":")
	if !ok {
		g = u
	}
	uid, err1 := strconv.Atoi(u)
	gid, err2 := strconv.Atoi(g)
	if err1 != nil || err2 != nil {
		t.Fatalf("owner %q is not numeric uid:gid", s)
	}
	return uid, gid
}

// imageUser returns the uid and gid of the image's USER.
func imageUser(t testing.TB, d *dockerfile) (uid, gid int) {
	t.Helper()
	in, ok := d.final().last("USER")
	if !ok {
		t.Fatal("the image has no USER")
	}
	return parseOwner(t, in.args)
}

// inRoot maps the image's absolute paths in s (/data, /run/secrets, /usr/…)
// into root. Only the prefixes the image uses are mapped.
var imagePathRE = regexp.MustCompile(`(^|[\s"'=:])(/data|/run/secrets|/usr/local/bin)(/|$)`)

func inRoot(root, s string) string {
	return imagePathRE.ReplaceAllString(s, "${1}"+root+"${2}${3}")
}

// withPort replaces the port of a host:port setting, as docker run -p maps
// the container's port to one of the host's.
func withPort(t testing.TB, hostport, port string) string {
	t.Helper()
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		t.Fatalf("%q: %v", hostport, err)
	}
	return net.JoinHostPort(host, port)
}

// TestImageRuns builds the binary as the image build does, checks that it is
// static, lays out the image, and runs its ENTRYPOINT and CMD as the image's
// user with the image's environment and compose's secrets: serve must start
// on an empty /data it may write only as that user, answer the image's
// HEALTHCHECK, stop on SIGTERM with exit 0 and leave its database in /data.
func TestImageRuns(t *testing.T) {
	d := loadDockerfile(t)
	bin := builtBinary(t)
	checkStatic(t, bin)
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), imageVersion) {
		t.Errorf("koobridge version = %q, %v; want the VERSION build arg %s stamped", out, err, imageVersion)
	}

	root := layoutImage(t, d)
	uid, gid := imageUser(t, d)
	if got := fileOwner(t, filepath.Join(root, "data")); os.Geteuid() == 0 && got != uid {
		t.Fatalf("/data is owned by %d, want the image's user %d", got, uid)
	}
	if st, err := os.Stat(filepath.Join(root, "data")); err != nil || st.Mode().Perm()&0o200 == 0 {
		t.Fatalf("/data is not writable by its owner: %v %v", st.Mode(), err)
	}

	// The secrets as compose gives them: files under /run/secrets named by
	// compose's KOOBRIDGE_*_FILE variables.
	project := makeComposeSecrets(t)
	c := loadCompose(t, project)
	svc := c.Services["koobridge"]
	env, err := d.final().env()
	if err != nil {
		t.Fatal(err)
	}
	env["KOOBRIDGE_AK"] = svc.Environment["KOOBRIDGE_AK"]
	for k, v := range svc.Environment {
		if strings.HasPrefix(k, "KOOBRIDGE_") && strings.HasSuffix(k, "_FILE") {
			env[k] = v
		}
	}
	mountSecrets(t, c, "koobridge", project, root)
	for k, v := range env {
		env[k] = inRoot(root, v)
	}
	listen := env["KOOBRIDGE_LISTEN"]
	wd, _ := d.final().last("WORKDIR")
	argv := imageCommand(t, d)

	s := startOnFreePort(t, func(port string) *exec.Cmd {
		env["KOOBRIDGE_LISTEN"] = withPort(t, listen, port)
		cmd := exec.Command(inRoot(root, argv[0]), argv[1:]...)
		cmd.Env = cleanEnv(env)
		cmd.Dir = filepath.Join(root, wd.args)
		cmd.SysProcAttr = asUser(uid, gid)
		return cmd
	})
	if !strings.Contains(s.output(), `"db":"sqlite:`+root+`/data/koobridge.db"`) {
		t.Errorf("serve does not use the image's database %s:\n%s", env["KOOBRIDGE_DB"], s.output())
	}

	// docker runs the health check in the container: its user, its env.
	check := healthcheckCommand(t, d)
	hc := exec.Command(inRoot(root, check[0]), check[1:]...)
	hc.Env = cleanEnv(env)
	hc.SysProcAttr = asUser(uid, gid)
	if out, err := hc.CombinedOutput(); err != nil {
		t.Errorf("HEALTHCHECK %v: %v\n%s", check, err, out)
	}

	if code := s.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("serve exited %d on SIGTERM, want 0:\n%s", code, s.output())
	}
	db := filepath.Join(root, "data", "koobridge.db")
	if got := fileOwner(t, db); os.Geteuid() == 0 && got != uid {
		t.Errorf("%s is owned by %d, want %d", db, got, uid)
	}
}

// checkStatic fails unless bin is an ELF executable with no interpreter and
// no shared libraries, which a distroless static base needs.
func checkStatic(t testing.TB, bin string) {
	t.Helper()
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s has an ELF interpreter (PT_INTERP): it is linked dynamically", bin)
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		t.Fatal(err)
	}
	if len(libs) > 0 {
		t.Errorf("%s needs shared libraries %v (DT_NEEDED)", bin, libs)
	}
}

// mountSecrets places the secrets compose gives service at
// root/run/secrets/<name>: copies of the project's files with their modes,
// owned as on the host, as compose's bind mounts show them.
func mountSecrets(t testing.TB, c *composeFile, service, project, root string) {
	t.Helper()
	for _, name := range c.Services[service].Secrets {
		secret, ok := c.Secrets[name]
		if !ok || secret.File == "" {
			t.Fatalf("compose.yaml: %s's secret %q has no top-level secrets.%s.file", service, name, name)
		}
		src := filepath.Join(project, filepath.FromSlash(secret.File))
		copyFile(t, src, filepath.Join(root, "run", "secrets", name))
	}
	if err := filepath.WalkDir(filepath.Join(root, "run"), func(p string, e fs.DirEntry, err error) error {
		if err == nil && e.IsDir() {
			err = os.Chmod(p, 0o755)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
}
