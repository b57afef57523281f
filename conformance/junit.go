package conformance

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"time"
)

// JUnit XML, as CI systems read it (the Ant/Jenkins schema GitHub Actions
// reporters and GitLab's test reports accept).
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr"`
	Properties []junitProperty `xml:"properties>property,omitempty"`
	Cases      []junitCase     `xml:"testcase"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
	Skipped   *junitSkipped `xml:"skipped,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitSkipped struct {
	Message string `xml:"message,attr"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }

// WriteJUnit writes the report as JUnit XML: one testsuite per profile and
// one for the edge cases, one testcase per case, for a failed case a
// <failure> whose message lists the broken rules and whose text holds
// each rule with its spec section, for a skipped case a <skipped> that
// says why, and for every case its note and calls (what was sent and what
// came back) in <system-out>, once.
func (r *Report) WriteJUnit(w io.Writer) error {
	out := junitSuites{Name: "koobridge conformance", Time: seconds(r.Duration)}
	index := map[string]int{}
	var durations []time.Duration // by suite index
	for _, c := range r.Cases {
		name := c.suite()
		i, ok := index[name]
		if !ok {
			i = len(out.Suites)
			index[name] = i
			durations = append(durations, 0)
			out.Suites = append(out.Suites, junitSuite{
				Name:      name,
				Timestamp: r.Started.UTC().Format("2006-01-02T15:04:05"),
				Properties: []junitProperty{
					{Name: "target", Value: r.Target},
					{Name: "profile", Value: r.Profile},
					{Name: "deadline", Value: r.Deadline.String()},
				},
			})
		}
		s := &out.Suites[i]
		durations[i] += c.Duration
		jc := junitCase{Name: c.ID, Classname: "conformance." + name, Time: seconds(c.Duration), SystemOut: systemOut(c)}
		switch {
		case c.Skipped:
			jc.Skipped = &junitSkipped{Message: c.Note}
			s.Skipped++
			out.Skipped++
		case !c.Pass:
			jc.Failure = junitFailureOf(c)
			s.Failures++
			out.Failures++
		}
		s.Tests++
		out.Tests++
		s.Cases = append(s.Cases, jc)
	}
	for i, d := range durations {
		out.Suites[i].Time = seconds(d)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return fmt.Errorf("conformance: junit: %w", err)
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("conformance: junit: %w", err)
	}
	if _, err := io.WriteString(w, "\n"); err != nil {
		return fmt.Errorf("conformance: junit: %w", err)
	}
	return nil
}

// systemOut is a case's note and every call it made, as the text report
// shows them.
func systemOut(c Case) string {
	var b bytes.Buffer
	if c.Note != "" {
		b.WriteString(c.Note + "\n")
	}
	for i, x := range c.Exchanges {
		writeExchange(&b, i+1, x)
	}
	return b.String()
}

func junitFailureOf(c Case) *junitFailure {
	var msgs, rules []string
	for _, f := range c.Failures {
		msgs = append(msgs, f.Rule+": "+f.Message)
		rules = append(rules, f.Rule)
	}
	var text bytes.Buffer
	fmt.Fprintf(&text, "%s: %s [%s]\n", c.ID, c.Title, c.Spec)
	for _, f := range c.Failures {
		fmt.Fprintf(&text, "rule %s: %s (%s)\n", f.Rule, f.Message, f.Spec)
	}
	return &junitFailure{
		Message: strings.Join(msgs, "; "),
		Type:    strings.Join(dedupe(rules), ","),
		Text:    text.String(),
	}
}

func dedupe(ss []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
