package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// readmeSection returns the text of the README's section "## title", up
// to the next section.
func readmeSection(t *testing.T, title string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "\n## "+title+"\n")
	if i < 0 {
		t.Fatalf("README.md has no section %q", title)
	}
	s = s[i+len(title)+5:]
	if j := strings.Index(s, "\n## "); j >= 0 {
		s = s[:j]
	}
	return s
}

var (
	shBlockRE   = regexp.MustCompile("(?s)```sh\n(.*?)```")
	answerRE    = regexp.MustCompile(`(?m)^# (\{.*\})$`)
	againRE     = regexp.MustCompile(`(?m)^# the same request again: (\{.*\})$`)
	readmeGoRun = "go run ./cmd/koobridge"
)

// TestReadmeTryACall runs the README's "Try a call" as a newcomer would:
// "serve --dev" in a fresh directory, then, in a shell in that directory,
// the second block exactly as written (the built binary in place of "go
// run ./cmd/koobridge", and the server's port in place of 8080, which the
// test cannot count on), then its curl line again. The answers must be
// the ones the README shows.
func TestReadmeTryACall(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "awk", "od", "date", "head", "tr"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the README's commands need %s: %v", tool, err)
		}
	}
	section := readmeSection(t, "Try a call")
	blocks := shBlockRE.FindAllStringSubmatch(section, -1)
	if len(blocks) != 2 {
		t.Fatalf("want 2 sh blocks in Try a call, got %d", len(blocks))
	}
	start, script := strings.TrimSpace(blocks[0][1]), blocks[1][1]
	if start != readmeGoRun+" serve --dev" {
		t.Fatalf("the first block is %q, want the server started with --dev", start)
	}
	first, again := answerRE.FindStringSubmatch(script), againRE.FindStringSubmatch(script)
	if first == nil || again == nil || !strings.Contains(section, "Stop the demo") {
		t.Fatalf("the section no longer shows both answers or says to stop the demo:\n%s", section)
	}
	var curl string
	for line := range strings.Lines(script) {
		if strings.HasPrefix(line, "curl ") {
			curl = line
		}
	}
	if curl == "" || !strings.Contains(script, "localhost:8080") {
		t.Fatalf("no curl line to localhost:8080 in:\n%s", script)
	}

	bin := koobridgeBinary(t)
	dir := t.TempDir()
	var out string
	for range portRetries {
		addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
		// The first block as written, from the directory; the address
		// comes from the environment, as KOOBRIDGE_LISTEN.
		serveCmd := exec.Command("bash", "-c", strings.Replace(start, readmeGoRun, "exec "+bin, 1))
		serveCmd.Dir = dir
		serveCmd.Env = append(cleanEnv(), "KOOBRIDGE_LISTEN="+addr)
		p := watchServe(t, serveCmd)
		if p == nil {
			continue // the port was taken meanwhile
		}
		run := strings.ReplaceAll(script, readmeGoRun, bin) + "echo\n" + curl
		run = strings.ReplaceAll(run, "localhost:8080", addr)
		sh := exec.Command("bash", "-e", "-o", "pipefail", "-c", run)
		sh.Dir = dir
		sh.Env = cleanEnv()
		var stdout, stderr bytes.Buffer
		sh.Stdout, sh.Stderr = &stdout, &stderr
		if err := sh.Run(); err != nil {
			t.Fatalf("the README's commands: %v\nstdout:\n%s\nstderr:\n%s\nserve:\n%s", err, stdout.String(), stderr.String(), p.output())
		}
		out = stdout.String()
		if code := p.stop(t, os.Interrupt); code != 0 {
			t.Errorf("serve exit %d after SIGINT", code)
		}
		break
	}
	if out == "" {
		t.Fatal("serve --dev did not start on a free port")
	}
	if want := first[1] + "\n" + again[1]; strings.TrimSpace(out) != want {
		t.Errorf("the README's commands answered\n%s\nwant\n%s", out, want)
	}
}

// serveLog is a serveProc's log as the process writes it.
type serveLog struct{ p *serveProc }

func (w serveLog) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.p.log.Write(b)
}

// watchServe starts cmd, a "koobridge serve", and waits until it listens;
// nil when it stopped because its address was taken.
func watchServe(t *testing.T, cmd *exec.Cmd) *serveProc {
	t.Helper()
	p := &serveProc{cmd: cmd, done: make(chan struct{})}
	cmd.Stderr = serveLog{p}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.reap(t)
	deadline := time.After(waitLong)
	for !listeningRE.MatchString(p.output()) {
		select {
		case <-p.done:
			if inUse(p.exit, p.output()) {
				return nil
			}
			t.Fatalf("serve exited with %d before listening:\n%s", p.exit, p.output())
		case <-deadline:
			t.Fatalf("serve did not log \"listening\":\n%s", p.output())
		case <-time.After(50 * time.Millisecond):
		}
	}
	return p
}
