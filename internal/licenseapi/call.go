package licenseapi

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/koobridge/koobridge/internal/jsonreq"
	"github.com/koobridge/koobridge/internal/license"
	"github.com/koobridge/koobridge/protocol"
)

// Limits of a request.
const (
	// maxBody caps a request body: two fields of at most 5 KiB fit many
	// times over.
	maxBody = 16 << 10
	// maxCode is the length of a license code in the Open API (§A.8.1).
	maxCode = 64
	// maxFingerprint is the most a device fingerprint may be (§D.3:
	// 5 KB).
	maxFingerprint = 5 << 10
)

// Fields of the request body.
const (
	fieldLicense     = "license"
	fieldFingerprint = "deviceFingerprint"
)

// answer is the JSON of a verdict.
type answer struct {
	License string `json:"license"`
	Status  string `json:"status"`
	// Expires is absent when KooGallery gave no expiry.
	Expires    string `json:"expires,omitempty"`
	ValidUntil string `json:"validUntil"`
	Cached     bool   `json:"cached"`
	Token      string `json:"token"`
}

// serveCall answers activate or check: the address limit, the strict
// request, the code limit, then op and the signed token.
func (h *handler) serveCall(w http.ResponseWriter, r *http.Request, name string,
	op func(ctx context.Context, code, fingerprint string) (license.Verdict, error)) {
	ctx := r.Context()
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, codeMethod, r.Method+" is not allowed: "+name+" is a POST with a JSON body")
		return
	}
	addr := clientAddress(r)
	if ok, wait := h.byAddr.take(addr, h.cfg.Now()); !ok {
		h.log.WarnContext(ctx, "license service: rate limited", "op", name, "limit", "address", "remote", addr)
		writeRetry(w, http.StatusTooManyRequests, codeRateLimited,
			fmt.Sprintf("more than %d requests a minute from this address", h.cfg.RatePerAddress), wait)
		return
	}
	code, fingerprint, status, msg := readRequest(w, r)
	if status != 0 {
		h.log.InfoContext(ctx, "license service: refused request", "op", name, "remote", addr, "status", status, "problem", msg)
		writeError(w, status, codeInvalid, msg)
		return
	}
	if ok, wait := h.byCode.take(code, h.cfg.Now()); !ok {
		h.log.WarnContext(ctx, "license service: rate limited", "op", name, "limit", "license", "license", code, "remote", addr)
		writeRetry(w, http.StatusTooManyRequests, codeRateLimited,
			fmt.Sprintf("more than %d requests a minute for license %s", h.cfg.RatePerCode, code), wait)
		return
	}

	v, err := op(ctx, code, fingerprint)
	if err != nil {
		h.writeFailure(w, r, name, code, err)
		return
	}
	token, err := h.cfg.Tokens.Sign(ctx, v)
	if err != nil {
		h.log.ErrorContext(ctx, "license service: sign token", "op", name, "license", code, "error", err)
		writeError(w, http.StatusInternalServerError, codeInternal, "the license token could not be signed")
		return
	}
	a := answer{License: v.License, Status: v.Status, ValidUntil: formatTime(v.ValidUntil), Cached: v.Cached, Token: token}
	if !v.Expires.IsZero() {
		a.Expires = formatTime(v.Expires)
	}
	h.log.InfoContext(ctx, "license service: answered", "op", name, "license", code, "status", v.Status, "cached", v.Cached, "remote", addr)
	writeJSON(w, http.StatusOK, a)
}

// formatTime writes t as the answers and tokens do: RFC 3339 in UTC.
func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// writeFailure answers an error of Activate or Check with the fixed
// message of its category (classify); the error itself, which may carry
// KooGallery's or its gateway's text, is logged. Package license's errors
// never hold the fingerprint, so the log may have them whole; an error it
// does not name is answered 500 without detail.
func (h *handler) writeFailure(w http.ResponseWriter, r *http.Request, name, code string, err error) {
	ctx := r.Context()
	status, category, message, known := classify(err, code)
	switch {
	case !known && ctx.Err() != nil:
		// The client went away; nobody reads the answer.
		h.log.InfoContext(ctx, "license service: client gone", "op", name, "license", code)
		writeRetry(w, http.StatusServiceUnavailable, codeUnavailable, "the request was cancelled", unavailableRetry)
	case !known:
		h.log.ErrorContext(ctx, "license service: failed", "op", name, "license", code, "error", err)
		writeError(w, status, category, message)
	case status == http.StatusServiceUnavailable:
		h.log.WarnContext(ctx, "license service: unavailable", "op", name, "license", code, "error", err)
		writeRetry(w, status, category, message, unavailableRetry)
	default:
		h.log.InfoContext(ctx, "license service: refused", "op", name, "license", code, "answer", category, "error", err)
		writeError(w, status, category, message)
	}
}

// readRequest reads and checks the body; status is 0 when it is good,
// else the HTTP status to refuse it with and msg the problem.
func readRequest(w http.ResponseWriter, r *http.Request) (code, fingerprint string, status int, msg string) {
	if r.URL.RawQuery != "" {
		return "", "", http.StatusBadRequest, "the request takes no query parameters: send license and deviceFingerprint in the JSON body"
	}
	body, status, msg := jsonreq.Read(w, r, maxBody)
	if status != 0 {
		return "", "", status, msg
	}
	fields, err := protocol.DecodeStrictStrings(body, "request body", fieldLicense, fieldFingerprint)
	if err != nil {
		return "", "", http.StatusBadRequest, strings.TrimPrefix(err.Error(), "protocol: decode ")
	}
	code, fingerprint = fields[fieldLicense], fields[fieldFingerprint]
	if problem := checkCode(code); problem != "" {
		return "", "", http.StatusBadRequest, "invalid parameter " + fieldLicense + ": " + problem
	}
	if problem := checkFingerprint(fingerprint); problem != "" {
		return "", "", http.StatusBadRequest, "invalid parameter " + fieldFingerprint + ": " + problem
	}
	return code, fingerprint, 0, ""
}

// checkCode checks a license code: printable ASCII without spaces, as
// KooGallery's codes are, at most maxCode bytes.
func checkCode(code string) string {
	switch {
	case code == "":
		return "missing"
	case len(code) > maxCode:
		return fmt.Sprintf("longer than %d characters", maxCode)
	}
	for i := 0; i < len(code); i++ {
		if c := code[i]; c <= ' ' || c >= 0x7f {
			return "may hold only printable ASCII characters without spaces"
		}
	}
	return ""
}

// checkFingerprint checks a device fingerprint (§D.3: MAC|disk|board|CPU,
// upper case, at most 5 KB): required, without control characters. Its
// content is not judged further: a component may be empty, and the
// client's machine decides what it holds.
func checkFingerprint(fp string) string {
	switch {
	case fp == "":
		return "missing"
	case len(fp) > maxFingerprint:
		return fmt.Sprintf("longer than %d bytes", maxFingerprint)
	case !utf8.ValidString(fp):
		return "not valid UTF-8"
	}
	for _, c := range fp {
		if c < ' ' || c == 0x7f || (c >= 0x80 && c < 0xa0) {
			return "contains a control character"
		}
	}
	return ""
}
