package conformance

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/koobridge/koobridge/emulator"
	"github.com/koobridge/koobridge/protocol/sign"
)

// maxShownBody bounds each body the text report prints.
const maxShownBody = 4096

// WriteText writes the report for people: one line per case with PASS,
// FAIL or SKIP, and for each failure which rule broke, the spec section,
// and every call of the case with what was sent and what came back; then a
// summary.
func (r *Report) WriteText(w io.Writer) error { return r.writeText(w, false) }

// WriteTextVerbose writes the report as WriteText does, with the calls of
// passed and skipped cases too.
func (r *Report) WriteTextVerbose(w io.Writer) error { return r.writeText(w, true) }

func (r *Report) writeText(w io.Writer, verbose bool) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "koobridge conformance: target %s, profile %s, deadline %v\n", r.Target, r.Profile, r.Deadline)
	fmt.Fprintf(bw, "started %s, took %v\n", r.Started.UTC().Format(time.RFC3339), r.Duration.Round(time.Millisecond))
	fmt.Fprintf(bw, "mocked Open API on %s: the seller made %d requests to it", r.OpenAPI, r.OpenAPICalls)
	if r.OpenAPICalls == 0 {
		fmt.Fprintf(bw, " (a seller that calls Query Order must have its Open API URL set to http://%s)", r.OpenAPI)
	}
	fmt.Fprint(bw, "\n\n")
	width := 0
	for _, c := range r.Cases {
		width = max(width, len(c.ID))
	}
	for _, c := range r.Cases {
		fmt.Fprintf(bw, "%s  %-*s  %s [%s]\n", c.verdict(), width, c.ID, c.Title, c.Spec)
		if c.Note != "" {
			fmt.Fprintf(bw, "      %s\n", c.Note)
		}
		failed := !c.Pass && !c.Skipped
		if !failed && !verbose {
			continue
		}
		for _, f := range c.Failures {
			fmt.Fprintf(bw, "      rule %s: %s (%s)\n", f.Rule, f.Message, f.Spec)
		}
		for i, x := range c.Exchanges {
			writeExchange(bw, i+1, x)
		}
		if failed || len(c.Exchanges) > 0 {
			fmt.Fprintln(bw)
		}
	}
	failed, skipped := len(r.Failed()), len(r.Skipped())
	fmt.Fprintf(bw, "\n%d cases: %d passed, %d failed, %d skipped", len(r.Cases), len(r.Cases)-failed-skipped, failed, skipped)
	if failed > 0 {
		fmt.Fprintf(bw, " (rules broken: %s)", strings.Join(r.brokenRules(), ", "))
		fmt.Fprintln(bw, "\nFAIL")
	} else {
		fmt.Fprintln(bw, "\nPASS")
	}
	return bw.Flush()
}

// verdict is the case's outcome as the text report shows it.
func (c Case) verdict() string {
	switch {
	case c.Skipped:
		return "SKIP"
	case c.Pass:
		return "PASS"
	}
	return "FAIL"
}

// brokenRules lists the rules failed cases broke, sorted.
func (r *Report) brokenRules() []string {
	seen := map[string]bool{}
	for _, c := range r.Failed() {
		for _, f := range c.Failures {
			seen[f.Rule] = true
		}
	}
	out := make([]string, 0, len(seen))
	for rule := range seen {
		out = append(out, rule)
	}
	sort.Strings(out)
	return out
}

func writeExchange(w io.Writer, n int, x Exchange) {
	code := string(x.ResultCode)
	if code == "" {
		code = "none"
	}
	usageAPI := x.Interface == usageAPIInterface // the seller's own API: no resultCode, no Body-Sign
	if usageAPI {
		fmt.Fprintf(w, "      #%d %s in %v\n", n, x.Interface, x.Duration.Round(10*time.Microsecond))
	} else {
		fmt.Fprintf(w, "      #%d %s: resultCode %s in %v\n", n, x.Interface, code, x.Duration.Round(10*time.Microsecond))
	}
	fmt.Fprintf(w, "         sent:     %s %s\n", x.Request.Method, x.Request.URL)
	fmt.Fprintf(w, "                   %s\n", shown(x.Request.Body))
	switch {
	case x.Response == nil:
		fmt.Fprintf(w, "         received: nothing\n")
	case usageAPI:
		fmt.Fprintf(w, "         received: HTTP %d, Content-Type: %s\n", x.Response.Status, headerOr(x.Response.Header, "Content-Type"))
		fmt.Fprintf(w, "                   %s\n", shown(strings.TrimSpace(x.Response.Body)))
	default:
		fmt.Fprintf(w, "         received: HTTP %d, Content-Type: %s, %s: %s\n", x.Response.Status,
			headerOr(x.Response.Header, "Content-Type"), sign.BodySignHeader, shownBodySign(headerOr(x.Response.Header, sign.BodySignHeader)))
		fmt.Fprintf(w, "                   %s\n", shown(x.Response.Body))
	}
	for _, v := range x.Violations {
		fmt.Fprintf(w, "         broke %s\n", violationText(v))
	}
}

func violationText(v emulator.Violation) string {
	return fmt.Sprintf("%s: %s (%s)", v.Rule, v.Message, v.Spec)
}

// headerOr returns a header of a recorded exchange, or "(none)".
func headerOr(h map[string]string, name string) string {
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return "(none)"
}

// shownBodySign shortens a Body-Sign header for the report: the
// signature parameter keeps its first four characters, enough to tell one
// from another, and the other parameters (sign_type) stay as they are. The
// header is split leniently, so a wrong one is shown the same way; one
// with no signature parameter is cut.
func shownBodySign(v string) string {
	if v == "(none)" {
		return v
	}
	parts := strings.Split(v, ",")
	found := false
	for i, part := range parts {
		name, value, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(name), "signature") {
			parts[i] = strings.TrimSpace(part)
			continue
		}
		found = true
		value = strings.Trim(strings.TrimSpace(value), `"`)
		parts[i] = strings.TrimSpace(name) + `="` + cut(value, 4) + `"`
	}
	if !found {
		return strconv.Quote(cut(v, 16)) + " (malformed: no signature)"
	}
	return strings.Join(parts, ", ")
}

// cut returns the first n characters of s, followed by "…" when there are
// more.
func cut(s string, n int) string {
	for i := range s {
		if n == 0 {
			return s[:i] + "…"
		}
		n--
	}
	return s
}

// shown quotes a body for the report, cut at maxShownBody bytes.
func shown(body string) string {
	if body == "" {
		return "(empty body)"
	}
	if len(body) > maxShownBody {
		body = fmt.Sprintf("%s… (%d bytes in all)", body[:maxShownBody], len(body))
	}
	// Keep a pretty-printed body inside its indentation.
	return strings.ReplaceAll(body, "\n", "\n                   ")
}
