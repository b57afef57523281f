package emulator

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strings"

	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
)

// Rule names one check the emulator applies to a seller's answer, as the
// Seller Center debugger (saas-v1-joint-login.md Part D.1) and the
// conformance suite do. A Violation carries one.
type Rule string

// The rules every answer is checked against, in the order the debugger
// applies them. Later checks are skipped when an earlier one makes them
// meaningless (no body to parse, no JSON to read fields from).
const (
	RuleReachable     Rule = "reachable"      // the address answered at all
	RuleDeadline      Rule = "deadline"       // the answer came within the deadline
	RuleHTTPStatus    Rule = "http-status"    // HTTP 200
	RuleContentType   Rule = "content-type"   // application/json
	RuleJSON          Rule = "json"           // a parseable JSON object
	RuleBodySign      Rule = "body-sign"      // Body-Sign present, well formed and matching the body
	RuleResultCode    Rule = "result-code"    // the resultCode the situation calls for
	RuleRequiredField Rule = "required-field" // mandatory reply fields present
	RuleFieldLength   Rule = "field-length"   // reply fields within their lengths
	RuleMemoEscape    Rule = "memo-escape"    // non-ASCII in appInfo.memo written as \uXXXX
	RuleIdempotent    Rule = "idempotent"     // duplicate deliveries got the same answer
)

// Spec sections the rules come from, cited in every Violation so a vendor
// can read the requirement behind a failure.
var ruleSpec = map[Rule]string{
	RuleReachable:     "saas-v1-joint-login.md §A.3 (生产地址不可达), saas-v2.md §1.1",
	RuleDeadline:      "saas-v2.md §1.1 (timeout), §6.4",
	RuleHTTPStatus:    "saas-v2.md §1.1 (HTTP status 200)",
	RuleContentType:   "saas-v2.md §1.1 (Content-Type: application/json)",
	RuleJSON:          "saas-v2.md §1.1 (JSON body with resultCode)",
	RuleBodySign:      "saas-v2.md §2.4, saas-v1-joint-login.md §A.3 (Body-Sign)",
	RuleResultCode:    "saas-v2.md §5",
	RuleRequiredField: "saas-v2.md §1.4",
	RuleFieldLength:   "saas-v2.md §3 (field tables)",
	RuleMemoEscape:    "saas-v2.md §3.2 (AppInfo.memo)",
	RuleIdempotent:    "saas-v2.md §6.1",
}

// Violation is one broken rule in one answer.
type Violation struct {
	Rule    Rule   `json:"rule"`
	Message string `json:"message"`
	Spec    string `json:"spec"`
}

func (v Violation) String() string {
	return fmt.Sprintf("%s: %s (%s)", v.Rule, v.Message, v.Spec)
}

func violation(r Rule, format string, args ...any) Violation {
	return Violation{Rule: r, Message: fmt.Sprintf(format, args...), Spec: ruleSpec[r]}
}

// replyCheck holds what an answer is checked against.
type replyCheck struct {
	key         string                // Body-Sign key; "" skips the Body-Sign check
	keyOptional bool                  // a missing Body-Sign is no violation
	expect      []protocol.ResultCode // acceptable resultCodes
	iface       string                // interface name, for its field rules
	codeSpec    string                // the resultCodes' spec section; "" means ruleSpec's
	fieldRule   func(iface string, code protocol.ResultCode, body []byte) []Violation
}

// checkReply applies the debugger's checks to an answer that arrived (the
// transport and deadline checks are the caller's). It returns the
// resultCode found (empty when there is none) and every violation.
func checkReply(rc replyCheck, status int, header http.Header, body []byte) (protocol.ResultCode, []Violation) {
	var vs []Violation
	if status != http.StatusOK {
		vs = append(vs, violation(RuleHTTPStatus, "调测失败,接口响应httpCode=%d: want 200", status))
	}
	ct := header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
		vs = append(vs, violation(RuleContentType, "调测失败,响应content-type格式错误: got %q, want application/json", ct))
	}
	var fields map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&fields); err != nil || fields == nil || dec.More() {
		if err == nil {
			err = errors.New("not a single JSON object")
		}
		return "", append(vs, violation(RuleJSON, "调测失败,解析响应体失败: %v", err))
	}
	if rc.key != "" {
		h := header.Values(sign.BodySignHeader)
		switch {
		case len(h) == 0 && rc.keyOptional:
		case len(h) == 0:
			vs = append(vs, violation(RuleBodySign, "调测失败,生产接口响应头缺少Body-Sign (http header->bodySign is empty)"))
		case len(h) > 1:
			vs = append(vs, violation(RuleBodySign, "调测失败,Body-Sign格式错误: %d Body-Sign headers", len(h)))
		default:
			if typ, _, err := sign.ParseBodySign(h[0]); err != nil || typ != sign.BodySignType {
				vs = append(vs, violation(RuleBodySign, "调测失败,Body-Sign格式错误 (sign_type is not equals HMAC-SHA256 or signature is empty): %q", h[0]))
			} else if err := sign.VerifyBodySign(rc.key, h[0], body); err != nil {
				vs = append(vs, violation(RuleBodySign, "调测失败,Body-Sign签名错误: the signature does not match the body bytes with the bound key"))
			}
		}
	}
	var code protocol.ResultCode
	raw, ok := fields["resultCode"]
	if !ok || json.Unmarshal(raw, &code) != nil || strings.TrimSpace(string(code)) == "" {
		return "", append(vs, violation(RuleRequiredField, "调测失败,接口响应缺少resultCode"))
	}
	if len(code) != 6 {
		vs = append(vs, violation(RuleFieldLength, "调测失败,字段resultCode长度不合法: %q", code))
	}
	var msg string
	if raw, ok := fields["resultMsg"]; ok && json.Unmarshal(raw, &msg) == nil && len([]rune(msg)) > 255 {
		vs = append(vs, violation(RuleFieldLength, "调测失败,字段resultMsg长度不合法: %d characters, at most 255", len([]rune(msg))))
	}
	if len(rc.expect) > 0 && !slices.Contains(rc.expect, code) {
		v := violation(RuleResultCode, "调用失败,生产接口resultCode返回错误: got %s (%s), want %s", code, code.Meaning(), codeList(rc.expect))
		v.Spec = cmp.Or(rc.codeSpec, v.Spec)
		vs = append(vs, v)
	}
	if rc.fieldRule != nil {
		vs = append(vs, rc.fieldRule(rc.iface, code, body)...)
	}
	return code, vs
}

func codeList(codes []protocol.ResultCode) string {
	s := make([]string, len(codes))
	for i, c := range codes {
		s[i] = string(c)
	}
	return strings.Join(s, " or ")
}

// fieldViolation turns a protocol validation error into the debugger's
// "missing field" or "field length" failure.
func fieldViolation(err error) []Violation {
	if err == nil {
		return nil
	}
	var fe *protocol.FieldError
	if errors.As(err, &fe) {
		if fe.Problem == "missing" {
			return []Violation{violation(RuleRequiredField, "调测失败,接口响应缺少%s", fe.Field)}
		}
		return []Violation{violation(RuleFieldLength, "调测失败,字段%s长度不合法: %s", fe.Field, fe.Problem)}
	}
	return []Violation{violation(RuleJSON, "调测失败,解析响应体失败: %v", err)}
}

// v2Fields checks the mandatory fields and lengths of a V2 answer
// (saas-v2.md §1.4 and the reply tables of §3).
func v2Fields(iface string, code protocol.ResultCode, body []byte) []Violation {
	switch iface {
	case protocol.ActivityNewInstance:
		var r protocol.NewInstanceResponse
		if err := json.Unmarshal(body, &r); err != nil {
			return fieldViolation(&protocol.DecodeError{What: "newInstance reply", Err: err})
		}
		return fieldViolation(r.Validate())
	case protocol.ActivityQueryInstance:
		if code != protocol.CodeSuccess {
			return nil
		}
		var r protocol.QueryInstanceResponse
		if err := json.Unmarshal(body, &r); err != nil {
			return fieldViolation(&protocol.DecodeError{What: "queryInstance reply", Err: err})
		}
		vs := fieldViolation(r.Validate())
		return append(vs, memoEscapes(body)...)
	}
	return nil
}

// memoEscapes checks that every appInfo.memo in the raw body is pure ASCII:
// KooGallery wants non-ASCII written as \uXXXX escapes (saas-v2.md §3.2).
func memoEscapes(body []byte) []Violation {
	var r struct {
		Info []struct {
			AppInfo *struct {
				Memo json.RawMessage `json:"memo"`
			} `json:"appInfo"`
		} `json:"info"`
	}
	if json.Unmarshal(body, &r) != nil {
		return nil
	}
	var vs []Violation
	for i, in := range r.Info {
		if in.AppInfo == nil {
			continue
		}
		for _, b := range in.AppInfo.Memo {
			if b >= 0x80 {
				vs = append(vs, violation(RuleMemoEscape, "info[%d].appInfo.memo carries raw non-ASCII characters; write them as \\uXXXX escapes", i))
				break
			}
		}
	}
	return vs
}
