package protocol

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Generous caps for fields whose spec table prints no length.
const (
	maxID       = 64   // identifiers without a printed length
	maxFreeText = 1024 // free text without a printed length
)

// FieldError reports one invalid request field. The server answers it with
// CodeInvalidParam and the Error text as resultMsg.
type FieldError struct {
	Field   string // JSON or query name of the field, e.g. "orderId" or "userList[2].role"
	Problem string // what is wrong, e.g. "missing"
}

// Error returns "invalid parameter <field>: <problem>".
func (e *FieldError) Error() string {
	return "invalid parameter " + e.Field + ": " + e.Problem
}

// DecodeError reports a request body or query that could not be decoded at
// all (malformed JSON, wrong JSON types). The server answers it with
// CodeInvalidParam.
type DecodeError struct {
	What string // what was being decoded, e.g. "v2 body"
	Err  error  // the underlying error
}

// Error returns "protocol: decode <what>: <err>".
func (e *DecodeError) Error() string { return "protocol: decode " + e.What + ": " + e.Err.Error() }

// Unwrap returns the underlying error.
func (e *DecodeError) Unwrap() error { return e.Err }

// ResultCodeFor maps an error from this package to the result code to
// answer: nil → CodeSuccess; *FieldError, *DecodeError and JSON syntax or
// type errors → CodeInvalidParam; anything else → CodeInternal.
func ResultCodeFor(err error) ResultCode {
	if err == nil {
		return CodeSuccess
	}
	var fe *FieldError
	var de *DecodeError
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	if errors.As(err, &fe) || errors.As(err, &de) || errors.As(err, &se) || errors.As(err, &te) {
		return CodeInvalidParam
	}
	return CodeInternal
}

// checker collects the first failing field; later checks are no-ops, so a
// Validate method reads as the spec table, top to bottom.
type checker struct {
	err *FieldError
}

func (c *checker) fail(field, problem string) {
	if c.err == nil {
		c.err = &FieldError{Field: field, Problem: problem}
	}
}

func (c *checker) ok() bool { return c.err == nil }

// result returns the first failure as an error, or a true nil.
func (c *checker) result() error {
	if c.err == nil {
		return nil
	}
	return c.err
}

// length checks the rune count of v against max.
func (c *checker) length(field, v string, max int) {
	if c.ok() && utf8.RuneCountInString(v) > max {
		c.fail(field, fmt.Sprintf("longer than %d characters", max))
	}
}

// required checks that v is present (not blank) and not longer than max.
func (c *checker) required(field, v string, max int) {
	if !c.ok() {
		return
	}
	if strings.TrimSpace(v) == "" {
		c.fail(field, "missing")
		return
	}
	c.length(field, v, max)
}

// optional checks only the length of v.
func (c *checker) optional(field, v string, max int) { c.length(field, v, max) }

// activity checks the activity field of a request.
func (c *checker) activity(got, want string, max int) {
	c.required("activity", got, max)
	if c.ok() && got != want {
		c.fail("activity", "must be "+want)
	}
}

// oneOf checks that a present v is one of allowed.
func (c *checker) oneOf(field, v string, allowed ...string) {
	if !c.ok() {
		return
	}
	for _, a := range allowed {
		if v == a {
			return
		}
	}
	c.fail(field, "must be "+orList(allowed))
}

// timeFormat checks that a present v parses; problem names the format.
func (c *checker) timeFormat(field, v string, parse func(string) (time.Time, error), problem string) {
	if !c.ok() || v == "" {
		return
	}
	if _, err := parse(v); err != nil {
		c.fail(field, problem)
	}
}

// digits checks that a present v is a non-negative integer of at most max digits.
func (c *checker) digits(field, v string, max int) {
	if !c.ok() || v == "" {
		return
	}
	if len(v) > max || !allDigits(v) {
		c.fail(field, fmt.Sprintf("not an integer of at most %d digits", max))
	}
}

// decimal checks that a present v is a decimal number (sign allowed) with
// at most maxFrac fractional digits and at most maxLen characters.
func (c *checker) decimal(field, v string, maxLen, maxFrac int) {
	if !c.ok() || v == "" {
		return
	}
	if len(v) > maxLen || !isDecimal(v, maxFrac) {
		c.fail(field, fmt.Sprintf("not a decimal number with at most %d decimals", maxFrac))
	}
}

// isDecimal reports whether s is [-]digits[.digits] with at most maxFrac
// fractional digits.
func isDecimal(s string, maxFrac int) bool {
	s = strings.TrimPrefix(s, "-")
	intPart, frac, hasDot := strings.Cut(s, ".")
	if intPart == "" || !allDigits(intPart) {
		return false
	}
	if hasDot && (frac == "" || !allDigits(frac) || len(frac) > maxFrac) {
		return false
	}
	return true
}

func orList(allowed []string) string {
	switch len(allowed) {
	case 0:
		return "empty"
	case 1:
		return allowed[0]
	}
	return strings.Join(allowed[:len(allowed)-1], ", ") + " or " + allowed[len(allowed)-1]
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Problems reported for time fields.
const (
	problemTime14       = "not yyyyMMddHHmmss"
	problemTime17       = "not yyyyMMddHHmmssSSS"
	problemExpireTime   = "not yyyyMMddHHmmss[SSS]"
	problemUsageTime    = "not yyyyMMdd'T'HHmmss'Z'"
	problemLicenseTime  = "not a date and time (yyyy-MM-dd HH:mm:ss z or yyyyMMddHHmmss)"
	problemKitTimeStamp = "not yyyyMMddHHmmssSSS (GMT+8)"
)
