package pgtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// binGlob finds the server binaries of the installed PostgreSQL versions
// (Debian's layout).
const binGlob = "/usr/lib/postgresql/*/bin"

// ctlTimeout bounds initdb and every pg_ctl run.
const ctlTimeout = 2 * time.Minute

// Cluster is a private PostgreSQL server for one test: its own data
// directory, port and socket, so the test may stop and restart it without
// disturbing anyone else. It listens on 127.0.0.1 with trust
// authentication. Call its methods from the test's goroutine: they fail
// the test on error.
type Cluster struct {
	t       testing.TB
	bin     string // directory of initdb and pg_ctl
	runuser string
	dir     string // owned by the postgres user: data/, the socket, server.log
	port    int

	mu      sync.Mutex
	running bool
}

// StartCluster creates and starts a private server, stopped and removed
// when the test ends. It needs the PostgreSQL server binaries under
// /usr/lib/postgresql/*/bin and, because initdb refuses to run as root,
// runuser and a postgres system user to run them as; the test fails with
// the reason when one is missing. Like DSN, it skips the test when
// KOOBRIDGE_TEST_POSTGRES is "off".
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	if os.Getenv(EnvVar) == "off" {
		t.Skip(EnvVar + "=off: PostgreSQL tests are switched off")
	}
	bin, err := serverBinaries()
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	runuser, err := exec.LookPath("runuser")
	if err != nil {
		t.Fatalf("pgtest: runuser is needed to run the PostgreSQL binaries as the postgres user: %v", err)
	}
	pgUser, err := user.Lookup("postgres")
	if err != nil {
		t.Fatalf("pgtest: the postgres system user is needed to run initdb (it refuses root): %v", err)
	}
	uid, _ := strconv.Atoi(pgUser.Uid)
	gid, _ := strconv.Atoi(pgUser.Gid)

	// Not t.TempDir: its parent directories are private to root, and the
	// server runs as postgres.
	dir, err := os.MkdirTemp("", "kbpg-")
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatalf("pgtest: give %s to postgres: %v", dir, err)
	}

	c := &Cluster{t: t, bin: bin, runuser: runuser, dir: dir}
	if out, err := c.run("initdb", "-D", c.dataDir(), "-U", "postgres", "-A", "trust",
		"-E", "UTF8", "--locale=C", "--no-sync"); err != nil {
		t.Fatalf("pgtest: initdb: %v\n%s", err, out)
	}
	t.Cleanup(c.cleanup)

	// A free port may be taken between our probe and the server's bind:
	// try a few.
	var startErr error
	for range 3 {
		if c.port, err = freePort(); err != nil {
			t.Fatalf("pgtest: %v", err)
		}
		if startErr = c.start(); startErr == nil {
			return c
		}
	}
	t.Fatalf("pgtest: start the private server: %v", startErr)
	return nil
}

// DSN is the URL of the server's postgres database.
func (c *Cluster) DSN() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.port)
}

// Stop shuts the server down in fast mode: open sessions are cut off, as
// in an operator's restart, and it waits until the server has exited.
func (c *Cluster) Stop() {
	c.t.Helper()
	if err := c.stop(); err != nil {
		c.t.Fatalf("pgtest: stop: %v", err)
	}
}

// Start starts the stopped server again on the same port.
func (c *Cluster) Start() {
	c.t.Helper()
	if err := c.start(); err != nil {
		c.t.Fatalf("pgtest: start: %v", err)
	}
}

// Restart stops and starts the server.
func (c *Cluster) Restart() {
	c.t.Helper()
	c.Stop()
	c.Start()
}

// Log returns the server's log so far, for failure messages.
func (c *Cluster) Log() string {
	b, err := os.ReadFile(c.logFile())
	if err != nil {
		return fmt.Sprintf("(no server log: %v)", err)
	}
	return string(b)
}

func (c *Cluster) start() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running {
		return nil
	}
	opts := strings.Join([]string{
		"-c listen_addresses=127.0.0.1",
		"-c port=" + strconv.Itoa(c.port),
		"-c unix_socket_directories=" + c.dir,
		"-c fsync=off", // a test server: only an OS crash could lose data, and then the test is gone too
	}, " ")
	out, err := c.run("pg_ctl", "-D", c.dataDir(), "-l", c.logFile(), "-o", opts, "-w", "-t", "60", "start")
	if err != nil {
		return fmt.Errorf("pg_ctl start: %v\n%s\nserver log:\n%s", err, out, c.Log())
	}
	c.running = true
	return nil
}

func (c *Cluster) stop() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.running {
		return nil
	}
	out, err := c.run("pg_ctl", "-D", c.dataDir(), "-m", "fast", "-w", "-t", "60", "stop")
	if err != nil {
		return fmt.Errorf("pg_ctl stop: %v\n%s", err, out)
	}
	c.running = false
	return nil
}

func (c *Cluster) cleanup() {
	if err := c.stop(); err != nil {
		c.t.Errorf("pgtest: stop at cleanup: %v", err)
	}
	if c.t.Failed() {
		c.t.Logf("private PostgreSQL log:\n%s", c.Log())
	}
}

// run runs one of the server binaries as the postgres user.
func (c *Cluster) run(name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), ctlTimeout)
	defer cancel()
	argv := append([]string{"-u", "postgres", "--", filepath.Join(c.bin, name)}, args...)
	cmd := exec.CommandContext(ctx, c.runuser, argv...)
	cmd.Dir = c.dir // the postgres user may not enter the test's directory
	return cmd.CombinedOutput()
}

func (c *Cluster) dataDir() string { return filepath.Join(c.dir, "data") }
func (c *Cluster) logFile() string { return filepath.Join(c.dir, "server.log") }

// serverBinaries returns the bin directory of the newest installed
// PostgreSQL that has initdb and pg_ctl.
func serverBinaries() (string, error) {
	dirs, _ := filepath.Glob(binGlob)
	version := func(dir string) float64 {
		v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(dir)), 64)
		return v
	}
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if isFile(filepath.Join(d, "initdb")) && isFile(filepath.Join(d, "pg_ctl")) {
			return d, nil
		}
	}
	return "", fmt.Errorf("no PostgreSQL server binaries (initdb, pg_ctl) under %s: install the postgresql package", binGlob)
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// freePort asks the kernel for a port that is free now.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
