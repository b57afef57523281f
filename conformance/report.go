package conformance

import (
	"strings"
	"time"

	"github.com/koobridge/koobridge/emulator"
	"github.com/koobridge/koobridge/protocol"
)

// Report is what one run of the suite found.
type Report struct {
	Target   string        `json:"target"`
	Profile  string        `json:"profile"`
	Deadline time.Duration `json:"deadline"`
	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"duration"`
	// OpenAPI is the address the mocked Open API listened on, and
	// OpenAPICalls how many requests the seller made to it (Query Order).
	OpenAPI      string `json:"openapi"`
	OpenAPICalls int    `json:"openapiCalls"`
	Cases        []Case `json:"cases"`
}

// Case is one check of the suite and its outcome. IDs such as
// "period/purchase" or "edge/wrong-signature" are stable: docs/conformance.md
// lists them and CI configurations may refer to them.
type Case struct {
	ID    string `json:"id"`
	Title string `json:"title"`
	// Spec is the section of the specification the case checks.
	Spec string `json:"spec"`
	Pass bool   `json:"pass"`
	// Skipped is true, and Pass false, for a case that checks an optional
	// interface the seller answered 000002 to: it does not implement it
	// (saas-v2.md §1.3, §3.0). A skipped case is not a failure.
	Skipped bool `json:"skipped,omitempty"`
	// Note is what a case found worth saying besides its failures
	// (edge/deadline: the slowest answer; a skipped case: why).
	Note     string        `json:"note,omitempty"`
	Duration time.Duration `json:"duration"`
	Failures []Failure     `json:"failures,omitempty"`
	// Exchanges are the calls the case made, in order, with what came back.
	Exchanges []Exchange `json:"exchanges,omitempty"`
}

// Failure is one broken rule. Rule is an emulator.Rule (the checks every
// answer gets) or one of the suite's own rules (RuleIdempotentNewInstance
// and the other Rule constants of this package).
type Failure struct {
	Rule    string `json:"rule"`
	Message string `json:"message"`
	Spec    string `json:"spec"`
}

// Exchange is one call to the seller: what was sent and what came back.
type Exchange struct {
	Interface  string               `json:"interface"`
	MessageID  string               `json:"messageId,omitempty"`
	Request    emulator.HTTPRecord  `json:"request"`
	Response   *emulator.HTTPRecord `json:"response,omitempty"` // nil when nothing came back
	Duration   time.Duration        `json:"duration"`
	ResultCode protocol.ResultCode  `json:"resultCode,omitempty"`
	Violations []emulator.Violation `json:"violations,omitempty"`
}

// Passed reports whether every case passed or was skipped.
func (r *Report) Passed() bool { return len(r.Failed()) == 0 }

// Failed returns the cases that failed, in run order.
func (r *Report) Failed() []Case {
	var out []Case
	for _, c := range r.Cases {
		if !c.Pass && !c.Skipped {
			out = append(out, c)
		}
	}
	return out
}

// Skipped returns the cases that were skipped, in run order.
func (r *Report) Skipped() []Case {
	var out []Case
	for _, c := range r.Cases {
		if c.Skipped {
			out = append(out, c)
		}
	}
	return out
}

// Case returns the case with the given ID.
func (r *Report) Case(id string) (Case, bool) {
	for _, c := range r.Cases {
		if c.ID == id {
			return c, true
		}
	}
	return Case{}, false
}

// Has reports whether the case broke rule.
func (c Case) Has(rule string) bool {
	for _, f := range c.Failures {
		if f.Rule == rule {
			return true
		}
	}
	return false
}

// suite is the JUnit test suite a case belongs to: the part of its ID
// before the slash ("period", "edge", …).
func (c Case) suite() string {
	suite, _, _ := strings.Cut(c.ID, "/")
	return suite
}
