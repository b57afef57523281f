// Package deploy_test checks the deployment files of the repository root and
// of deploy/: the Dockerfile, .dockerignore, compose.yaml and the systemd
// unit with its example configuration. No container engine runs an image on
// the machines that test koobridge (buildah only builds one FROM scratch, to
// apply .dockerignore's rules), so the tests take each file apart and run
// what it would run: the Dockerfile's build command, its final stage laid
// out in a directory and run as the image's user with the image's
// environment; compose's koobridge service against a real PostgreSQL; the
// unit's ExecStart as systemd would expand it. docs/operations.md says how
// to use the files.
package deploy_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// waitLong bounds every wait for a process: generous, for a loaded machine.
const waitLong = 90 * time.Second

// repoRoot is the repository root, the directory above deploy/.
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// readRepoFile reads a file of the repository by its slash path.
func readRepoFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), filepath.FromSlash(path)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tempDirs are removed after the last test; see TestMain.
var (
	tempMu   sync.Mutex
	tempDirs []string
)

func TestMain(m *testing.M) {
	code := m.Run()
	tempMu.Lock()
	for _, d := range tempDirs {
		_ = os.RemoveAll(d)
	}
	tempMu.Unlock()
	os.Exit(code)
}

// openTempDir makes a temporary directory that every user may enter (mode
// 0755), unlike t.TempDir's parents, so processes running as another user
// reach what the test gives them. It is removed when the test ends.
func openTempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "kbdeploy-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// asUser returns the credential to run a process as uid:gid when the test
// runs as root (CI does), so permissions are really enforced; nil otherwise,
// when the process runs as the test's own user.
func asUser(uid, gid int) *syscall.SysProcAttr {
	if os.Geteuid() != 0 {
		return nil
	}
	return &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
}

// chownTree gives dir and everything in it to uid:gid when running as root.
func chownTree(t testing.TB, dir string, uid, gid int) {
	t.Helper()
	if os.Geteuid() != 0 {
		return
	}
	err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// fileOwner returns the uid owning path.
func fileOwner(t testing.TB, path string) int {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return int(st.Sys().(*syscall.Stat_t).Uid)
}

// freePort returns a TCP port that was free a moment ago.
func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// server is a running koobridge serve process.
type server struct {
	cmd  *exec.Cmd
	addr string // host:port from the "listening" log line
	mu   sync.Mutex
	log  bytes.Buffer
	done chan struct{}
	err  error // from Wait
}

var listeningRE = regexp.MustCompile(`"msg":"listening","addr":"([^"]+)"`)

// errPortTaken reports that serve could not bind its port, which another
// process took between freePort and the start: the caller retries.
var errPortTaken = fmt.Errorf("address already in use")

// startServer starts cmd (a serve) and waits for its "listening" line. It
// returns errPortTaken when serve exited because its port was taken.
func startServer(t testing.TB, cmd *exec.Cmd) (*server, error) {
	t.Helper()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = cmd.Stderr
	s := &server{cmd: cmd, done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %v: %v", cmd.Args, err)
	}
	addr := make(chan string, 1)
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			s.mu.Lock()
			s.log.WriteString(line + "\n")
			s.mu.Unlock()
			if m := listeningRE.FindStringSubmatch(line); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
	}()
	go func() {
		<-scanned // Wait closes the pipe: read everything first
		s.err = cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			_ = cmd.Process.Kill()
			<-s.done
		}
		if t.Failed() {
			t.Logf("output of %s:\n%s", filepath.Base(cmd.Path), s.output())
		}
	})
	select {
	case a := <-addr:
		s.addr = a
		return s, nil
	case <-s.done:
		if strings.Contains(s.output(), "address already in use") {
			return nil, errPortTaken
		}
		t.Fatalf("%v exited before listening (%v):\n%s", cmd.Args, s.err, s.output())
	case <-time.After(waitLong):
		t.Fatalf("%v did not log \"listening\" within %v:\n%s", cmd.Args, waitLong, s.output())
	}
	return nil, nil
}

// startOnFreePort starts the command newCmd makes for a free port, trying
// another port when the first was taken meanwhile.
func startOnFreePort(t testing.TB, newCmd func(port string) *exec.Cmd) *server {
	t.Helper()
	for range 3 {
		s, err := startServer(t, newCmd(freePort(t)))
		if err == nil {
			return s
		}
	}
	t.Fatal("three free ports were taken before serve could bind them")
	return nil
}

func (s *server) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

// stop sends sig and returns the exit status.
func (s *server) stop(t testing.TB, sig os.Signal) int {
	t.Helper()
	if err := s.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v: %v", sig, err)
	}
	select {
	case <-s.done:
		return s.cmd.ProcessState.ExitCode()
	case <-time.After(waitLong):
		t.Fatalf("serve did not exit within %v of %v:\n%s", waitLong, sig, s.output())
		return -1
	}
}

// get fetches path from the server and returns the status and body.
func (s *server) get(t testing.TB, path string) (int, string) {
	t.Helper()
	host, port, err := net.SplitHostPort(s.addr)
	if err != nil {
		t.Fatal(err)
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get("http://" + net.JoinHostPort(host, port) + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// docsBlock returns the fenced code block that follows marker in
// docs/operations.md: the tests run the very commands the docs give.
func docsBlock(t testing.TB, marker string) string {
	t.Helper()
	doc := string(readRepoFile(t, "docs/operations.md"))
	_, after, ok := strings.Cut(doc, marker)
	if !ok {
		t.Fatalf("docs/operations.md has no %q", marker)
	}
	_, after, ok = strings.Cut(after, "```sh\n")
	if !ok {
		t.Fatalf("docs/operations.md: no ```sh block after %q", marker)
	}
	block, _, ok := strings.Cut(after, "```")
	if !ok {
		t.Fatalf("docs/operations.md: the block after %q is not closed", marker)
	}
	return block
}

// runShell runs script with sh -e in dir with a cautious umask (077), as an
// operator careful with secrets would, and env added to the environment.
func runShell(t testing.TB, dir, script string, env ...string) {
	t.Helper()
	cmd := exec.Command("sh", "-ec", "umask 077\n"+script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sh: %v\n%s\nscript:\n%s", err, out, script)
	}
}

// Values the tests give the docs' secret commands in place of an operator's.
const (
	testKey = "test-koogallery-key-0123456789"
	testAK  = "TESTAK0123456789"
	testSK  = "test-sk-0123456789abcdef"
)

// operatorEnv is what the docs ask the operator to set before making the
// secrets.
var operatorEnv = []string{"KOOGALLERY_KEY=" + testKey, "HUAWEI_AK=" + testAK, "HUAWEI_SK=" + testSK}

// cleanEnv is a process environment with only what a container or a unit
// would have: PATH, plus env.
func cleanEnv(env map[string]string) []string {
	out := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

// copyFile copies src to dst with src's mode.
func copyFile(t testing.TB, src, dst string) {
	t.Helper()
	st, err := os.Stat(src)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, st.Mode().Perm()); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dst, st.Mode().Perm()); err != nil { // past the umask
		t.Fatal(err)
	}
}
