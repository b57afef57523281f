package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// A screenshot's structure is the text it shows that stays the same from
// one run of the demo to the next: headings, column headers, labels,
// buttons and the texts its caption is about, with every run-specific
// value (ports, tokens, IDs, times, durations, paths, counts) masked.
// TestScreenshots keeps it beside the picture, in docs/images/<name>.txt,
// and fails when a fresh run's differs, so a picture that no longer shows
// what the page or the demo shows is noticed.

// structureKinds are the elements whose text is a page's structure.
const structureKinds = "h1,h2,h3,h4,p,tr,dt,label,button,legend,caption,summary,nav a,header a,.filters,input[placeholder],input[type=submit]"

// pageText is a text a picture's caption is about: one line per element
// the selector matches, or, with distinct, the sorted set of those lines
// on one line (for lists whose order or length a retry under load may
// change). A line is the element's text, or its attribute attr, or the
// texts of the cells (selectors inside it) joined by " | ", or, with
// headerNames, the names of the HTTP headers it lists.
type pageText struct {
	name        string
	selector    string
	cells       []string
	attr        string
	headerNames bool
	distinct    bool
}

// structureJS collects, in document order, the structure of the elements
// the scope selectors match (a scope that matches nothing says so),
// stopping at the end of the element until matches, if any; then the
// values of each pageText. A table row gives its header cells only. text
// reads a select as its chosen option and an input as its placeholder,
// leaves out what the page does not show (a closed details' content, say)
// and puts a space between elements that have no text between them.
const structureJS = `((scopes, until, texts, kinds) => {
	const shown = e => e.checkVisibility ? e.checkVisibility() : e.getClientRects().length > 0;
	const text = e => {
		const c = e.cloneNode(true);
		const live = e.querySelectorAll('*'), copy = c.querySelectorAll('*');
		for (let i = live.length - 1; i >= 0; i--) {
			const l = live[i], k = copy[i];
			if (k.nextSibling && k.nextSibling.nodeType === Node.ELEMENT_NODE) k.after(' ');
			if (l.tagName === 'SELECT') k.replaceWith(l.selectedOptions.length ? l.selectedOptions[0].text : '');
			else if (l.tagName === 'INPUT') k.replaceWith(l.type === 'hidden' ? '' : (l.placeholder || ''));
			else if (l.tagName !== 'BR' && !shown(l)) k.replaceWith('');
		}
		return c.textContent.replace(/\s+/g, ' ').trim();
	};
	const end = until ? document.querySelector(until) : null;
	const scope = [];
	if (until && !end) scope.push('missing: ' + until);
	for (const sel of scopes) {
		const roots = document.querySelectorAll(sel);
		if (roots.length === 0) scope.push('missing: ' + sel);
		for (const root of roots) {
			for (const e of [root, ...root.querySelectorAll(kinds)]) {
				if (!e.matches(kinds) || !shown(e)) continue;
				if (end && !end.contains(e) && (end.compareDocumentPosition(e) & Node.DOCUMENT_POSITION_FOLLOWING)) continue;
				const tag = e.tagName.toLowerCase();
				if (tag === 'tr') {
					const heads = [...e.querySelectorAll('th')].map(text);
					if (heads.length) scope.push('th: ' + heads.join(' | '));
				} else if (tag === 'input') {
					scope.push('input: ' + (e.type === 'submit' ? e.value : e.placeholder));
				} else {
					const t = text(e);
					if (t) scope.push((tag === 'a' ? 'link' : e.matches('.filters') ? 'filters' : tag) + ': ' + t);
				}
			}
		}
	}
	return {scope, texts: texts.map(t => ({name: t.name, distinct: t.distinct,
		values: [...document.querySelectorAll(t.selector)].map(e => {
			if (t.attr) return e.getAttribute(t.attr) || '';
			if (t.headerNames) return e.textContent.split('\n').map(l => l.split(':')[0].trim()).filter(Boolean).join(', ');
			if (t.cells && t.cells.length) return t.cells.map(c => { const x = e.querySelector(c); return x ? text(x) : 'missing ' + c; }).join(' | ');
			if (e.tagName === 'TR') return [...e.cells].map(text).join(' | ');
			return text(e);
		})}))};
})`

// pageStructure returns the structure of what the tab shows: the
// headings, header rows, labels, buttons and paragraphs in the scopes
// (down to the end of until, when not empty), each line once, then the
// texts, with the run-specific values masked (maskRunValues).
func pageStructure(ctx context.Context, t *testing.T, scopes []string, until string, texts []pageText) string {
	t.Helper()
	type jsText struct {
		Name        string   `json:"name"`
		Selector    string   `json:"selector"`
		Cells       []string `json:"cells"`
		Attr        string   `json:"attr"`
		HeaderNames bool     `json:"headerNames"`
		Distinct    bool     `json:"distinct"`
	}
	js := make([]jsText, len(texts))
	for i, x := range texts {
		js[i] = jsText{x.name, x.selector, x.cells, x.attr, x.headerNames, x.distinct}
	}
	args, err := json.Marshal([]any{scopes, until, js, structureKinds})
	if err != nil {
		t.Fatal(err)
	}
	type found struct {
		Scope []string `json:"scope"`
		Texts []struct {
			Name     string   `json:"name"`
			Distinct bool     `json:"distinct"`
			Values   []string `json:"values"`
		} `json:"texts"`
	}
	f := Get(ctx, t, "the page's structure", chromedp.Evaluate[found](structureJS+"(..."+string(args)+")"))
	var lines []string
	// A label or a button each row repeats is part of the structure once.
	seen := map[string]bool{}
	for _, l := range f.Scope {
		if l = maskRunValues(l); !seen[l] {
			seen[l] = true
			lines = append(lines, l)
		}
	}
	for _, x := range f.Texts {
		values := make([]string, len(x.Values))
		for i, v := range x.Values {
			values[i] = maskRunValues(v)
		}
		switch {
		case len(values) == 0:
			lines = append(lines, x.Name+": missing")
		case x.Distinct:
			slices.Sort(values)
			lines = append(lines, x.Name+": "+strings.Join(slices.Compact(values), ", "))
		default:
			for _, v := range values {
				lines = append(lines, x.Name+": "+v)
			}
		}
	}
	return strings.Join(lines, "\n") + "\n"
}

// runValues are what differs from one demo run to the next, in the order
// they are masked (paths and UUIDs before the numbers in them), each with
// what stands in its place.
var runValues = []struct {
	re   *regexp.Regexp
	mask string
	// keep, when set, says which matches are left as they are.
	keep func(string) bool
}{
	// Absolute paths, such as the demo's temporary database.
	{regexp.MustCompile(`(^|[\s(])/[^\s)]+`), "${1}<path>", nil},
	{regexp.MustCompile(`\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b`), "<uuid>", nil},
	// Dates and times as the pages and the demo write them.
	{regexp.MustCompile(`\b\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?(?:Z| UTC|[+-]\d{2}:\d{2})?`), "<time>", nil},
	{regexp.MustCompile(`\b((?:\d{1,3}\.){3}\d{1,3}|localhost|\[[0-9a-f:]+\]):\d+\b`), "${1}:<port>", nil},
	// Durations as durationtext writes them ("604 µs", "2 min 3 s").
	{regexp.MustCompile(`\b\d+(?:\.\d+)? (?:ns|µs|ms|s|min|h|d)\b(?: \d+(?:\.\d+)? (?:ns|µs|ms|s|min|h|d)\b)*`), "<duration>", nil},
	// The emulator's order IDs (CS, yyMMddHHmm, a random suffix) and
	// license codes (PL and 14 random characters).
	{regexp.MustCompile(`\bCS\d{10}[0-9A-Z]+\b`), "<order>", nil},
	{regexp.MustCompile(`\bPL[0-9A-Z]{14}\b`), "<license-code>", nil},
	// Keys, tokens, tenant IDs.
	{regexp.MustCompile(`\b[0-9a-f]{16,}\b`), "<hex>", nil},
	// Counts, result codes and numbered IDs (sub-000001): a retry under
	// load may change them. IPv4 addresses stay.
	{regexp.MustCompile(`\b\d+(?:\.\d+){0,3}\b`), "<n>", func(s string) bool { return strings.Count(s, ".") == 3 }},
	{regexp.MustCompile(`[ \t]+`), " ", nil},
}

// maskRunValues replaces the values of one run of the demo in a line of
// text with placeholders, so that the line reads the same in every run,
// and collapses its runs of blanks.
func maskRunValues(line string) string {
	for _, v := range runValues {
		if v.keep == nil {
			line = v.re.ReplaceAllString(line, v.mask)
			continue
		}
		line = v.re.ReplaceAllStringFunc(line, func(s string) string {
			if v.keep(s) {
				return s
			}
			return v.mask
		})
	}
	return strings.TrimRight(line, " ")
}

// demoStructure is the structure of the demo's terminal: the command and
// every line it printed, masked (maskRunValues), with the lifecycle
// table's rows cut to their scenario and call, which every run plays in
// the same order (its results, statuses and times depend on the run).
func demoStructure(cmd, out string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "$ %s\n", maskRunValues(cmd))
	inTable := false
	for line := range strings.SplitSeq(strings.TrimRight(out, "\n"), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) > 0 && f[0] == "SCENARIO":
			inTable = true
		case len(f) == 0:
			inTable = false
		case inTable && len(f) >= 2:
			line = f[0] + " " + f[1]
		}
		b.WriteString(maskRunValues(line))
		b.WriteByte('\n')
	}
	return b.String()
}

// structureFile is the file beside a picture in docs/images that keeps
// its structure: demo.png's is demo.txt.
func structureFile(picture string) string {
	return strings.TrimSuffix(picture, ".png") + ".txt"
}

// outOfDate returns why the structure got differs from the one kept in
// file, or "" when they are the same.
func outOfDate(picture, file, got string) string {
	want, err := os.ReadFile(file)
	if err != nil {
		return fmt.Sprintf("docs/images/%s is out of date: run %s\n(%v)", picture, updateCommand, err)
	}
	if string(want) == got {
		return ""
	}
	return fmt.Sprintf("docs/images/%s is out of date: run %s\n--- docs/images/%s (the picture's)\n+++ this run's\n%s",
		picture, updateCommand, structureFile(picture), lineDiff(string(want), got))
}

// updateCommand takes the pictures again and keeps their structures.
const updateCommand = "go -C e2e test -run TestScreenshots ./... -args -update-screenshots"

// lineDiff returns the lines only in a ("-") and only in b ("+"), in
// order, with the line before each change for context ("  "): the
// longest common subsequence of their lines is what they share.
func lineDiff(a, b string) string {
	x := strings.Split(strings.TrimSuffix(a, "\n"), "\n")
	y := strings.Split(strings.TrimSuffix(b, "\n"), "\n")
	// lcs[i][j] is the length of the longest common subsequence of x[i:]
	// and y[j:].
	lcs := make([][]int, len(x)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(y)+1)
	}
	for i := len(x) - 1; i >= 0; i-- {
		for j := len(y) - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var d strings.Builder
	last := "" // the last shared line, shown before a change
	shown := true
	change := func(sign, line string) {
		if !shown {
			d.WriteString("  " + last + "\n")
			shown = true
		}
		d.WriteString(sign + line + "\n")
	}
	i, j := 0, 0
	for i < len(x) || j < len(y) {
		switch {
		case i < len(x) && j < len(y) && x[i] == y[j]:
			last, shown = x[i], false
			i++
			j++
		case i < len(x) && (j == len(y) || lcs[i+1][j] >= lcs[i][j+1]):
			change("-", x[i])
			i++
		default:
			change("+", y[j])
			j++
		}
	}
	return d.String()
}

// Two runs of the demo print different ports, tokens, IDs, times and
// durations, and under load a different result: their structures are the
// same. A line the demo prints differently, or a new column, changes it.
func TestDemoStructure(t *testing.T) {
	const cmd = "koobridge demo --emulator-listen 127.0.0.1:0 --app-listen 127.0.0.1:0 --listen 127.0.0.1:46629"
	const run1 = `koobridge demo: server http://127.0.0.1:46629, emulator http://127.0.0.1:33783, database /tmp/koobridge-demo-4285335375/koobridge-demo.db

SCENARIO          CALL                     RESULT  INSTANCE                              STATUS    EXPIRES     TOOK
purchase          newInstance              000000  678220ca-1682-4cca-8b62-c1e2c2c01663  active    2027-01-07  3.84 ms
renewal           refreshLicenseCode       000000                                        active    2027-02-07  604 µs
request-license   getLicenseAsync          000000  0ff85d21-4a85-4818-b2c1-01f6ed656871  active    2027-01-07  1.41 ms

They keep running (Ctrl-C stops them):
  server console   http://127.0.0.1:46629/admin/   (admin token: d1e52dd1449e4a32ac689df1ce7f3a75)
Sign in to the sample app: open http://127.0.0.1:44407/login?tenant=278ca9eb386623db24ac31613c884c1b
  user name user001, password emulator-password (every user of the tenant has it; 495 of them are authorised)
  koobridge license activate --url http://127.0.0.1:46629 --license PL3ZQF788XSUUAEV
  Open API         http://127.0.0.1:33783   (AK b7302035a0f9ae82ed033641b3828995, SK 529e51114e0607896c631b58ca22e8bd)
`
	const run2 = `koobridge demo: server http://127.0.0.1:18480, emulator http://127.0.0.1:18490, database /var/tmp/koobridge-demo-9/koobridge-demo.db

SCENARIO          CALL                     RESULT  INSTANCE                              STATUS    EXPIRES     TOOK
purchase          newInstance              000000  945a7fdd-4573-496f-873c-cc1e9c40ff46  active    2027-01-07  13 ms
renewal           refreshLicenseCode       000000                                        active    2027-02-07  1 min 2 s
request-license   getLicenseAsync          000004  e6e9b393-a448-46d4-9366-2e891dd48228  provisioning 2027-01-07  2.5 s

They keep running (Ctrl-C stops them):
  server console   http://127.0.0.1:18480/admin/   (admin token: dafb01e08b63ca536eb689e2d1f60afe)
Sign in to the sample app: open http://127.0.0.1:18470/login?tenant=e5fc7fc035dcc752828ec2e21292fd9c
  user name user001, password emulator-password (every user of the tenant has it; 500 of them are authorised)
  koobridge license activate --url http://127.0.0.1:18480 --license PL5W9UEQ5U8PDWKU
  Open API         http://127.0.0.1:18490   (AK 5fa8b210ecf93ffe225c6d3a3bdd6a99, SK 680e8d459fad3f7c6e33d5de103fe2fa)
`
	base := demoStructure(cmd, run1)
	if got := demoStructure(strings.ReplaceAll(cmd, "46629", "18480"), run2); got != base {
		t.Fatalf("two runs' structures differ:\n%s", lineDiff(base, got))
	}
	for _, want := range []string{
		"$ koobridge demo --emulator-listen 127.0.0.1:<port> --app-listen 127.0.0.1:<port> --listen 127.0.0.1:<port>\n",
		"koobridge demo: server http://127.0.0.1:<port>, emulator http://127.0.0.1:<port>, database <path>\n",
		"SCENARIO CALL RESULT INSTANCE STATUS EXPIRES TOOK\npurchase newInstance\nrenewal refreshLicenseCode\nrequest-license getLicenseAsync\n\n",
		" server console http://127.0.0.1:<port>/admin/ (admin token: <hex>)\n",
		"open http://127.0.0.1:<port>/login?tenant=<hex>\n",
		"--license <license-code>\n",
		"(AK <hex>, SK <hex>)\n",
	} {
		if !strings.Contains(base, want) {
			t.Errorf("the structure lacks %q:\n%s", want, base)
		}
	}
	for name, changed := range map[string]string{
		"a printed line": strings.Replace(run1, "They keep running", "They run on", 1),
		"a new line":     strings.Replace(run1, "\nSign in", "\nsample app's users: 500\nSign in", 1),
		"a new column":   strings.Replace(run1, "EXPIRES     TOOK", "EXPIRES     TOOK  ATTEMPTS", 1),
		"another call":   strings.Replace(run1, "refreshLicenseCode", "refreshInstance", 1),
		"a dropped line": strings.Replace(run1, "  koobridge license activate --url http://127.0.0.1:46629 --license PL3ZQF788XSUUAEV\n", "", 1),
	} {
		if demoStructure(cmd, changed) == base {
			t.Errorf("%s leaves the structure as it was", name)
		}
	}
}

// Each value a run makes up is masked; the words around it are not.
func TestMaskRunValues(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"Instance 678220ca-1682-4cca-8b62-c1e2c2c01663", "Instance <uuid>"},
		{"2027-03-22 00:35 · +105 d ahead", "<time> · +<duration> ahead"},
		{"at 2026-12-07 00:35:25 UTC, 1.04 ms · resultCode 000000", "at <time>, <duration> · resultCode <n>"},
		{"placeholder 2026-01-02T15:04:05Z", "placeholder <time>"},
		{"CS2612070035SFNBY | PL3ZQF788XSUUAEV", "<order> | <license-code>"},
		{"sub-000001 OFFI-EMU-ONLINELICENSE v2 7 days 1 month", "sub-<n> OFFI-EMU-ONLINELICENSE v2 <n> days <n> month"},
		{"goes to 127.0.0.1:8091", "goes to 127.0.0.1:<port>"},
		{"database /tmp/koobridge-demo-1/koobridge-demo.db", "database <path>"},
		{"http://127.0.0.1:46629/produce (key: 6bacdc8502f0c7a6920bfb5b0cb45180)", "http://127.0.0.1:<port>/produce (key: <hex>)"},
		{"Re-drive (重新启动)   Last error (异常信息)", "Re-drive (重新启动) Last error (异常信息)"},
	} {
		if got := maskRunValues(c.in); got != c.want {
			t.Errorf("maskRunValues(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// The diff shows what was taken away and what came, after the line
// before the change.
func TestLineDiff(t *testing.T) {
	for _, c := range []struct{ name, a, b, want string }{
		{"same", "a\nb\n", "a\nb\n", ""},
		{"changed", "h1: X\nth: ID | Clock\np: note\n", "h1: X\nth: ID | Time\np: note\n", "  h1: X\n-th: ID | Clock\n+th: ID | Time\n"},
		{"added at the end", "a\n", "a\nb\n", "  a\n+b\n"},
		{"removed first", "a\nb\n", "b\n", "-a\n"},
	} {
		if got := lineDiff(c.a, c.b); got != c.want {
			t.Errorf("%s: lineDiff = %q, want %q", c.name, got, c.want)
		}
	}
}
