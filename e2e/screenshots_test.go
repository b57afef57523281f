package e2e

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"html"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// updateScreenshots makes TestScreenshots write its pictures, and the
// structure of each (shotstructure_test.go), to docs/images, where
// docs/screenshots.md shows them:
//
//	go -C e2e test -run TestScreenshots ./... -args -update-screenshots
var updateScreenshots = flag.Bool("update-screenshots", false,
	"TestScreenshots writes its screenshots and their structures to ../docs/images (also KOOBRIDGE_UPDATE_SCREENSHOTS=1)")

// screenshotsEnv is the environment variable that does what
// -update-screenshots does, for runs that cannot pass test flags.
const screenshotsEnv = "KOOBRIDGE_UPDATE_SCREENSHOTS"

// The pages are shot in a 1280x800 viewport; the demo's terminal is shot
// as its own element, 1280 wide and as tall as the output.
const (
	shotWidth  = 1280
	shotHeight = 800
)

// imagesDir is where docs/screenshots.md's pictures and their structures
// are, seen from the e2e package.
var imagesDir = filepath.Join("..", "docs", "images")

// updating says whether TestScreenshots writes to imagesDir rather than
// comparing with it.
func updating() bool {
	return *updateScreenshots || os.Getenv(screenshotsEnv) == "1"
}

// demoRun is what TestScreenshots reads from the demo's output.
type demoRun struct {
	token     string   // the console's admin token
	emulator  string   // the emulator page's URL, without the final slash
	instances []string // the instance IDs in the lifecycle table, first seen first
}

// waitDemo waits until the running demo has printed its lifecycle and the
// URLs of what keeps running, and reads them.
func waitDemo(t *testing.T, k *Koobridge) demoRun {
	t.Helper()
	tokenRE := regexp.MustCompile(`admin token: ([0-9a-f]+)`)
	emuRE := regexp.MustCompile(`emulator page +(http://\S+)/`)
	var d demoRun
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		out := k.Stderr()
		if m := tokenRE.FindStringSubmatch(out); m != nil {
			d.token = m[1]
		}
		if m := emuRE.FindStringSubmatch(out); m != nil {
			d.emulator = m[1]
		}
		if d.token != "" && d.emulator != "" {
			break
		}
	}
	out := k.Stderr()
	if d.token == "" || d.emulator == "" {
		t.Fatalf("demo printed no admin token or emulator URL:\n%s", out)
	}
	if strings.Contains(out, "stopped early") {
		t.Fatalf("demo lifecycle did not finish:\n%s", out)
	}
	seen := map[string]bool{}
	for _, id := range regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`).FindAllString(out, -1) {
		if !seen[id] {
			seen[id] = true
			d.instances = append(d.instances, id)
		}
	}
	if len(d.instances) == 0 {
		t.Fatalf("demo printed no instance ID:\n%s", out)
	}
	return d
}

// shot is one picture in docs/screenshots.md.
type shot struct {
	file    string // in docs/images
	caption string // what docs/screenshots.md says under it
	// take brings the page to what the caption says, checks that it shows
	// it, and returns the picture.
	take func(t *testing.T) picture
}

// picture is a screenshot, the size it must have, and the structure of
// what it shows (shotstructure_test.go).
type picture struct {
	png           []byte
	width, height int
	structure     string
}

// TestScreenshots runs "koobridge demo" as a real process, shows the
// emulator's page, one of its messages, the server's console and the
// demo's terminal output in Chromium and takes a screenshot of each, after
// checking that the page shows what the picture's caption says. Every run
// takes them, checks they are pictures of the right size, not blanks, and
// compares the structure of what each shows with the one kept beside it in
// docs/images (<name>.txt): a picture whose page or output has changed
// since it was taken is out of date. -update-screenshots (or
// KOOBRIDGE_UPDATE_SCREENSHOTS=1) writes the pictures and their
// structures to docs/images.
func TestScreenshots(t *testing.T) {
	docs, err := os.ReadFile(filepath.Join("..", "docs", "screenshots.md"))
	if err != nil {
		t.Fatal(err)
	}

	// No --dir: the demo's database goes to a temporary directory it
	// removes at exit, and the command in demo.png is one a reader could
	// type (with free ports instead of the defaults, which may be taken).
	args := []string{"demo", "--emulator-listen", "127.0.0.1:0", "--app-listen", "127.0.0.1:0"}
	k := StartKoobridge(t, args...)
	demo := waitDemo(t, k)
	first := demo.instances[0] // the first lifecycle's: purchase to release

	ctx := NewBrowser(t)
	// Boxes instead of the Chinese text the pictures show must never
	// reach docs/images.
	checkChineseRenders(ctx, t, "重新启动异常信息演示实例")
	Do(ctx, t, "set the viewport", chromedp.EmulateViewport(shotWidth, shotHeight))
	viewport := func(what, structure string) picture {
		return picture{Screenshot(ctx, t, what), shotWidth, shotHeight, structure}
	}

	shots := []shot{{
		file:    "emulator-subscriptions.png",
		caption: "The emulator's dashboard after the demo: the subscriptions it bought and played, each with its order, instance, status and expiry.",
		take: func(t *testing.T) picture {
			Do(ctx, t, "open the emulator", chromedp.Navigate(demo.emulator+"/"), chromedp.WaitVisible(chromedp.ID("subscriptions")))
			status := Get(ctx, t, "sub-000001 status", chromedp.Text(chromedp.CSS(`tr[data-subscription-id="sub-000001"] [data-testid="sub-status"]`)))
			if !strings.HasPrefix(status, "released") {
				t.Errorf("sub-000001 is %q after the demo, want released", status)
			}
			scrollToSection(ctx, t, "subscriptions")
			// Every column of every subscription the demo made.
			allInView(ctx, t, `#subscriptions thead th`)
			allInView(ctx, t, `#subscriptions tr[data-subscription-id] > td`)
			return viewport("the emulator's subscriptions", pageStructure(ctx, t,
				[]string{"h2:has(+ #clocks-note)", "#clocks-note", "#subscriptions"}, "",
				[]pageText{{name: "subscription", selector: "#subscriptions tr[data-subscription-id]"}}))
		},
	}, {
		file:    "emulator-messages.png",
		caption: "The messages the emulator sent to the server, newest first: the interface, the scenario, the subscription, the status and the attempts of each.",
		take: func(t *testing.T) picture {
			scrollToSection(ctx, t, "messages")
			newest := `#messages tr[data-message-id]:first-child`
			allInView(ctx, t, `#messages thead th`)
			allInView(ctx, t, newest+` > td`)
			if s := Get(ctx, t, "newest message's status", chromedp.Text(chromedp.CSS(newest+` [data-testid="msg-status"]`))); s != "success" {
				t.Errorf("the newest message's status is %q, want success", s)
			}
			// Each message's status and attempts depend on retries under
			// load; the order the demo played them in does not.
			return viewport("the emulator's messages", pageStructure(ctx, t,
				[]string{"h2:has(+ #messages)", "#messages"}, "",
				[]pageText{
					{name: "message", selector: "#messages tr[data-message-id]",
						cells: []string{`[data-testid="msg-interface"]`, `[data-testid="msg-scenario"]`, `[data-testid="msg-subscription"]`}},
					{name: "newest status", selector: newest + ` [data-testid="msg-status"]`},
				}))
		},
	}, {
		file:    "emulator-message.png",
		caption: "One message: the renewal's refreshInstance, with its last error (异常信息, none here), the Re-drive (重新启动) button and each attempt's signed request and the server's signed answer.",
		take: func(t *testing.T) picture {
			link := Get(ctx, t, "the renewal's message", chromedp.Evaluate[string](`(() => {
				const row = [...document.querySelectorAll('#messages tr[data-message-id]')].find(r =>
					r.querySelector('[data-testid="msg-interface"]').textContent === 'refreshInstance' &&
					r.querySelector('[data-testid="msg-scenario"]').textContent === 'renewal' &&
					r.querySelector('[data-testid="msg-subscription"]').textContent === 'sub-000001');
				return row ? row.querySelector('a[data-testid="msg-link"]').href : '';
			})()`))
			if link == "" {
				t.Fatal("the emulator lists no refreshInstance message of sub-000001's renewal")
			}
			Do(ctx, t, "open the message", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.ID("attempts")))
			if s := Get(ctx, t, "message status", chromedp.Text(chromedp.CSS(`[data-testid="message-status"]`))); s != "success" {
				t.Errorf("message status %q, want success", s)
			}
			attempt := `#attempts section[data-attempt="1"]`
			if h := Get(ctx, t, "response headers", chromedp.Text(chromedp.CSS(attempt+` [data-testid="response-headers"]`))); !strings.Contains(h, "Body-Sign") {
				t.Errorf("the answer's headers lack Body-Sign: %q", h)
			}
			if b := Get(ctx, t, "re-drive button", chromedp.Text(chromedp.ID("redrive-button"))); !strings.Contains(b, "重新启动") {
				t.Errorf("the re-drive button says %q, want 重新启动 in it", b)
			}
			end := attempt + ` [data-testid="response-body"]`
			return pageTo(ctx, t, end, pageStructure(ctx, t, []string{"body"}, end, []pageText{
				{name: "status", selector: `[data-testid="message-status"]`},
				{name: "request headers", selector: attempt + ` [data-testid="request-headers"]`, headerNames: true},
				{name: "response headers", selector: attempt + ` [data-testid="response-headers"]`, headerNames: true},
			}))
		},
	}, {
		file:    "console-instances.png",
		caption: "The server's console: the instances the demo's purchases created, with their orders, status and expiry.",
		take: func(t *testing.T) picture {
			Do(ctx, t, "log in to the console",
				chromedp.Navigate(k.URL+"/admin/"),
				chromedp.WaitVisible(chromedp.ID("login")),
				chromedp.SendKeys(chromedp.ID("token"), demo.token),
				chromedp.Click(chromedp.ID("login-button")),
				chromedp.WaitVisible(chromedp.ID("instances")),
			)
			allInView(ctx, t, `#instances thead th`)
			for _, id := range demo.instances {
				inView(ctx, t, `#instances tr[data-instance-id="`+id+`"]`)
			}
			// Instances updated in the same millisecond may swap places.
			return viewport("the console's instances", pageStructure(ctx, t, []string{"body"}, "", []pageText{
				{name: "instances", selector: "#instances tr[data-instance-id]", distinct: true,
					cells: []string{`[data-testid="instance-link"]`, `[data-field="status"]`, `[data-field="test"]`}},
			}))
		},
	}, {
		file:    "console-instance.png",
		caption: "One instance in the console, the first lifecycle's: its state, its app info with the memo 演示实例, and the calls the emulator made for it.",
		take: func(t *testing.T) picture {
			Do(ctx, t, "open the instance",
				chromedp.Click(chromedp.CSS(`#instances tr[data-instance-id="`+first+`"] a[data-testid="instance-link"]`)),
				chromedp.WaitVisible(chromedp.ID("instance")),
			)
			if m := Get(ctx, t, "memo", chromedp.Text(chromedp.CSS(`#app-info [data-field="memo"]`))); !strings.Contains(m, "演示实例") {
				t.Errorf("the instance's memo is %q, want 演示实例 in it", m)
			}
			calls := Get(ctx, t, "calls", chromedp.Text(chromedp.ID("calls")))
			for _, activity := range []string{"newInstance", "refreshInstance", "releaseInstance"} {
				if !strings.Contains(calls, activity) {
					t.Errorf("the instance's calls lack %s:\n%s", activity, calls)
				}
			}
			// A retry under load adds a call, marked repeat: the set of
			// activities stays.
			return pageTo(ctx, t, "#calls", pageStructure(ctx, t, []string{"body"}, "#calls", []pageText{
				{name: "status", selector: `#instance [data-field="status"]`},
				{name: "memo", selector: `#app-info [data-field="memo"]`},
				{name: "calls", selector: "#calls tr[data-activity]", attr: "data-activity", distinct: true},
			}))
		},
	}, {
		file:    "demo.png",
		caption: "koobridge demo in a terminal: each call of the lifecycles it played against its own server, then the addresses, tokens and keys of what keeps running.",
		take: func(t *testing.T) picture {
			// Taken last: the demo printed everything before the browser
			// could open the pages it prints.
			out := k.Stderr()
			for _, want := range []string{"SCENARIO", "newInstance", "releaseInstance", "They keep running", "admin token"} {
				if !strings.Contains(out, want) {
					t.Errorf("the demo's output lacks %q:\n%s", want, out)
				}
			}
			page := filepath.Join(t.TempDir(), "demo.html")
			cmd := "koobridge " + strings.Join(slices.Concat(args, []string{"--listen", strings.TrimPrefix(k.URL, "http://")}), " ")
			if strings.Contains(cmd, os.TempDir()) {
				t.Errorf("the command %q names a temporary path", cmd)
			}
			if err := os.WriteFile(page, []byte(terminalPage(cmd, out)), 0o644); err != nil {
				t.Fatal(err)
			}
			Do(ctx, t, "show the output", chromedp.Navigate("file://"+page), chromedp.WaitVisible(chromedp.ID("terminal")))
			if shown := Get(ctx, t, "the terminal's text", chromedp.TextContent(chromedp.ID("output"))); shown != out {
				t.Errorf("the terminal shows %q, want the demo's output %q", shown, out)
			}
			if over := Get(ctx, t, "overflow", chromedp.Evaluate[bool](`(() => { const e = document.getElementById('output'); return e.scrollWidth > e.clientWidth; })()`)); over {
				t.Error("the demo's output is wider than the terminal")
			}
			height := Get(ctx, t, "terminal height", chromedp.Evaluate[int](`Math.round(document.getElementById('terminal').getBoundingClientRect().height)`))
			if height > maxPageHeight {
				t.Fatalf("the demo's output is %d px tall, more than the %d px a picture may have", height, maxPageHeight)
			}
			return picture{Get(ctx, t, "screenshot of the terminal", chromedp.Screenshot(chromedp.ID("terminal"))), shotWidth, height, demoStructure(cmd, out)}
		},
	}}

	for _, s := range shots {
		t.Run(strings.TrimSuffix(s.file, ".png"), func(t *testing.T) {
			// docs/screenshots.md shows the picture with the caption the
			// page is checked against.
			if !bytes.Contains(docs, []byte("(images/"+s.file+")")) || !bytes.Contains(docs, []byte(s.caption)) {
				t.Errorf("docs/screenshots.md does not show images/%s with the caption %q", s.file, s.caption)
			}
			pic := s.take(t)
			checkPicture(t, pic.png, pic.width, pic.height)
			if t.Failed() {
				return // a picture of a page that did not show its caption is not kept
			}
			txt := filepath.Join(imagesDir, structureFile(s.file))
			why := outOfDate(s.file, txt, pic.structure)
			if !updating() {
				if why != "" {
					t.Error(why)
				}
				return
			}
			if why != "" {
				t.Logf("taken again: %s", why)
			}
			if err := os.WriteFile(filepath.Join(imagesDir, s.file), pic.png, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(txt, []byte(pic.structure), 0o644); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// scrollToSection scrolls the page so that the heading of the table with
// the id is at the top of the viewport (or the table, if no heading comes
// before it).
func scrollToSection(ctx context.Context, t *testing.T, id string) {
	t.Helper()
	js := fmt.Sprintf(`(() => {
		let el = document.getElementById(%q);
		if (!el) return false;
		for (let p = el.previousElementSibling; p; p = p.previousElementSibling) {
			if (p.tagName === 'H2') { el = p; break; }
		}
		el.scrollIntoView({block: 'start'});
		scrollBy(0, -12); // the heading's top margin
		return true;
	})()`, id)
	if !Get(ctx, t, "scroll to #"+id, chromedp.Evaluate[bool](js)) {
		t.Fatalf("the page has no #%s", id)
	}
}

// maxPageHeight bounds the pictures pageTo takes, so a page that grows
// without end does not end up as a huge picture in docs/images.
const maxPageHeight = 2000

// pageTo takes a picture of the page from its top down to the bottom of
// the element the CSS selector matches (and a margin): it makes the
// viewport shotWidth wide and that tall, takes the picture and sets the
// viewport back. It returns the picture, with the structure given.
func pageTo(ctx context.Context, t *testing.T, sel, structure string) picture {
	t.Helper()
	bottom := fmt.Sprintf(`(() => {
		const e = document.querySelector(%q);
		return e ? Math.ceil(e.getBoundingClientRect().bottom + scrollY) + 16 : 0;
	})()`, sel)
	h := Get(ctx, t, "the bottom of "+sel, chromedp.Evaluate[int](bottom))
	if h == 0 {
		t.Fatalf("the page has no %s", sel)
	}
	if h > maxPageHeight {
		t.Fatalf("%s ends %d px down the page, more than the %d px a picture may have", sel, h, maxPageHeight)
	}
	Do(ctx, t, "make the viewport as tall as the page down to "+sel,
		chromedp.EmulateViewport(shotWidth, int64(h)), chromedp.Evaluate[chromedp.Void](`scrollTo(0, 0)`))
	// The taller viewport must not have moved the element.
	if again := Get(ctx, t, "the bottom of "+sel, chromedp.Evaluate[int](bottom)); again != h {
		t.Fatalf("%s moved from %d to %d px when the viewport grew", sel, h, again)
	}
	pic := Screenshot(ctx, t, "the page down to "+sel)
	Do(ctx, t, "set the viewport back", chromedp.EmulateViewport(shotWidth, shotHeight))
	return picture{pic, shotWidth, h, structure}
}

// inView fails the test unless the element the CSS selector matches is
// entirely inside the viewport, so the screenshot shows it.
func inView(ctx context.Context, t *testing.T, sel string) {
	t.Helper()
	js := fmt.Sprintf(`(() => {
		const e = document.querySelector(%q);
		if (!e) return 'missing';
		const r = e.getBoundingClientRect();
		if (r.width === 0 || r.height === 0) return 'not shown';
		if (r.top < 0 || r.left < 0 || r.bottom > innerHeight || r.right > innerWidth)
			return 'outside the viewport: ' + [r.left, r.top, r.right, r.bottom].map(Math.round).join(',') + ' in ' + innerWidth + 'x' + innerHeight;
		return '';
	})()`, sel)
	if problem := Get(ctx, t, "where "+sel+" is", chromedp.Evaluate[string](js)); problem != "" {
		t.Errorf("%s: %s, so the screenshot does not show it", sel, problem)
	}
}

// allInView fails the test unless every element the CSS selector matches
// (at least one) is entirely inside the viewport: a table's every column,
// say, not cut at its right edge.
func allInView(ctx context.Context, t *testing.T, sel string) {
	t.Helper()
	js := fmt.Sprintf(`[...document.querySelectorAll(%q)].map((e, i) => {
		const r = e.getBoundingClientRect();
		if (r.width === 0 || r.height === 0) return '#' + (i + 1) + ' (' + e.textContent.trim().slice(0, 40) + ') is not shown';
		if (r.top < 0 || r.left < 0 || r.bottom > innerHeight || r.right > innerWidth)
			return '#' + (i + 1) + ' (' + e.textContent.trim().slice(0, 40) + ') is outside the viewport: ' +
				[r.left, r.top, r.right, r.bottom].map(Math.round).join(',') + ' in ' + innerWidth + 'x' + innerHeight;
		return '';
	}).filter(Boolean).concat(document.querySelector(%q) ? [] : ['none matches'])`, sel, sel)
	for _, problem := range Get(ctx, t, "where each "+sel+" is", chromedp.Evaluate[[]string](js)) {
		t.Errorf("%s: %s, so the screenshot does not show it", sel, problem)
	}
}

// terminalPage is an HTML page showing a command and its output as a
// terminal would.
func terminalPage(cmd, out string) string {
	return `<!doctype html>
<html><head><meta charset="utf-8"><title>koobridge demo</title>
<style>
body { margin: 0; background: #1e1e1e; }
#terminal { width: 1280px; box-sizing: border-box; padding: 14px 18px; background: #1e1e1e; color: #d4d4d4;
  font: 13px/1.45 "DejaVu Sans Mono", monospace; }
#terminal .prompt { color: #6a9955; }
#output { margin: 0; white-space: pre-wrap; overflow-wrap: anywhere; font: inherit; }
</style></head>
<body><div id="terminal"><div><span class="prompt">$</span> ` + html.EscapeString(cmd) + `</div><pre id="output">` +
		html.EscapeString(out) + `</pre></div></body></html>
`
}

// checkPicture fails the test unless pic is a PNG of w x h pixels with
// enough distinct colours to be a page rather than a blank.
func checkPicture(t *testing.T, pic []byte, w, h int) {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(pic))
	if err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != w || b.Dy() != h {
		t.Errorf("screenshot is %dx%d, want %dx%d", b.Dx(), b.Dy(), w, h)
	}
	if n := colours(img, 64); n < 16 {
		t.Errorf("screenshot has %d distinct colours: a blank page", n)
	}
}

// colours counts img's distinct colours, stopping at limit.
func colours(img image.Image, limit int) int {
	seen := map[[4]uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, a := img.At(x, y).RGBA()
			seen[[4]uint32{r, g, bl, a}] = true
			if len(seen) >= limit {
				return len(seen)
			}
		}
	}
	return len(seen)
}
