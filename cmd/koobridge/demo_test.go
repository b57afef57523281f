package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/koobridge/koobridge/protocol"
)

// TestDemoOnce runs "koobridge demo --once": a server on a fresh SQLite
// file and the emulator, over real HTTP on loopback, playing the whole
// lifecycle. Every call must have succeeded, and the table must show each
// scenario of the plan with the instance ending released.
func TestDemoOnce(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run([]string{"demo", "--once", "--listen", "127.0.0.1:0", "--emulator-listen", "127.0.0.1:0", "--dir", t.TempDir()},
		strings.NewReader(""), &stdout, &stderr)
	out := stdout.String()
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, stderr.String())
	}
	if strings.Contains(out, "stopped early") {
		t.Fatalf("lifecycle stopped early:\n%s", out)
	}
	rows := regexp.MustCompile(`(?m)^(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+\S+$`).FindAllStringSubmatch(out, -1)
	seen := map[string]bool{}
	for _, r := range rows[1:] { // rows[0] is the header
		scenario, call, result := r[1], r[2], r[3]
		seen[scenario] = true
		if result != "000000" && !(call == "newInstance" && result == "000004") {
			t.Errorf("%s %s answered %s", scenario, call, result)
		}
	}
	for _, step := range demoPlan {
		for _, sc := range append([]string{"purchase"}, step.scenarios...) {
			if !seen[sc] {
				t.Errorf("scenario %s missing from the table:\n%s", sc, out)
			}
		}
	}
	if n := strings.Count(out, "released"); n < 2 {
		t.Errorf("want both subscriptions released, saw %d:\n%s", n, out)
	}
	for _, want := range []string{"/admin/", "admin token: ", "emulator page"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestDemoOnceStopsEarly: with --once, a lifecycle that cannot finish (a
// scenario the emulator does not know) is exit status 1.
func TestDemoOnceStopsEarly(t *testing.T) {
	saved := demoPlan
	t.Cleanup(func() { demoPlan = saved })
	demoPlan = []demoStep{{protocol.ChargingPeriod, []string{"no-such-scenario"}}}
	var stdout, stderr bytes.Buffer
	code := run([]string{"demo", "--once", "--listen", "127.0.0.1:0", "--emulator-listen", "127.0.0.1:0", "--dir", t.TempDir()},
		strings.NewReader(""), &stdout, &stderr)
	if code != exitRejected || !strings.Contains(stdout.String(), "the lifecycle stopped early") ||
		!strings.Contains(stderr.String(), "no-such-scenario") {
		t.Fatalf("exit %d, want 1 and the reason\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
}

// TestDemoCancelledAtStart: interrupted while the server starts, the demo
// returns nil, and only once the server and the emulator have let go of
// their addresses and of the database.
func TestDemoCancelledAtStart(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dir := t.TempDir()
	o := demoOptions{
		listen:         "127.0.0.1:" + strconv.Itoa(freePort(t)),
		emulatorListen: "127.0.0.1:" + strconv.Itoa(freePort(t)),
		dir:            dir,
	}
	if err := runDemo(ctx, o, io.Discard, io.Discard); err != nil {
		t.Fatalf("runDemo after an interrupt: %v, want nil", err)
	}
	for _, addr := range []string{o.listen, o.emulatorListen} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Errorf("%s still taken after runDemo returned: %v", addr, err)
			continue
		}
		ln.Close()
	}
	// Nothing holds the directory: it can be removed and made again.
	if err := os.RemoveAll(dir); err != nil {
		t.Error(err)
	}
}

// TestDemoServeConfig: the demo's server settings go through serve's own
// resolution, defaults and checks included.
func TestDemoServeConfig(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s, err := newDemoSecrets()
	if err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(t.TempDir(), "d.db")
	c, err := demoServeConfig(s, ln, db, "http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	if c.listener != ln || c.opts.listen != ln.Addr().String() || c.opts.db != "sqlite:"+db || len(c.keys.Basic) != 1 || c.keys.Basic[0] != s.key ||
		c.sk != s.sk || c.adminToken != s.adminToken || len(c.dataKey) != 32 || c.openAPIURL != "http://127.0.0.1:1" || c.opts.provisioner != "demo" {
		t.Errorf("resolved config: %+v", c)
	}
	// serve's defaults, which the demo used to copy by hand.
	if c.opts.producePath != "/produce" || c.opts.jobWorkers != 4 || c.opts.budget.String() != "3s" || !c.opts.bodySign {
		t.Errorf("serve defaults not applied: %+v", c.opts)
	}
	// serve's checks apply too.
	if _, err := demoServeConfig(s, ln, db, "ftp://127.0.0.1:1"); err == nil || !strings.Contains(err.Error(), "openapi-url") {
		t.Errorf("a bad Open API URL: %v, want serve's --openapi-url error", err)
	}
}
