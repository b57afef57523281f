package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
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
