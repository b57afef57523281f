package openapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
)

// Paths of the usage pushes (saas-v2.md §7.2, saas-v1-joint-login.md
// §A.5.8).
const (
	UsagePushPath    = "/api/mkp-openapi-public/global/v1/isv/usage-data"
	OldUsagePushPath = "/rest/marketplace/v1/isv/usage-data"
)

// Headers of the new usage push, besides the APIG ones.
const (
	usageSignatureHeader = "signature"
	usageTSHeader        = "ts"
	usageNonceHeader     = "nonce"
)

// usageSuccess is the usage push's only success code.
var usageSuccess = []string{protocol.MKTSuccess}

// UsagePushResult is KooGallery's answer to a usage push, filled in as far
// as an answer came: HTTPStatus is 0 when none came (transport failure,
// timeout), Code and Message are empty when the body had none. Code is
// MKT.0000 only for a success, but a success code is not success by
// itself (it must come with a 2xx): the error of the push decides.
type UsagePushResult struct {
	HTTPStatus int
	Code       string // error_code
	Message    string // error_msg
	// Rejected lists the records the answer refused one by one, when it
	// lists any. The name and shape of that list are UNCONFIRMED
	// (saas-v2.md §7.2), so it is read tolerantly (see PushUsage).
	Rejected []RejectedUsage
}

// RejectedUsage is one record a usage push answer refused. Fields the
// answer did not carry are empty.
type RejectedUsage struct {
	MeteringSN, InstanceID, BeginTime, EndTime string
	Code, Message                              string
}

// PushUsage sends a new usage push (saas-v2.md §7.2): POST
// /api/mkp-openapi-public/global/v1/isv/usage-data. body is sent byte for
// byte, as built by the caller with its keys in natural (ascending) order,
// and signed as sent: the signature, ts (Unix milliseconds by the client's
// clock) and nonce (32 random hex digits) headers are computed with key,
// the key bound to the seller's basic interfaces
// (sign.UsageSignature). The request is APIG-signed with the AK/SK too,
// as every other call: whether KooGallery needs that is UNCONFIRMED, and
// the two do not conflict. Each try, the fallback host's included, gets a
// fresh ts and nonce.
//
// Success is MKT.0000 with a 2xx status. The result is filled in as far as
// an answer came, whatever the error, so every attempt can be recorded. A
// retryable error (transport failure, timeout, HTTP 5xx, 408 or 429,
// MKT.0999, throttling, an undecodable 5xx answer) wraps ErrUnavailable;
// any other is an *Error matching its code's sentinel: ErrInputCheckFailed
// (MKT.0100), ErrInvalidParam (MKT.0101), ErrBodySignature (MKT.0102),
// ErrParamError (MKT.0199), ErrIllegalOperation (MKT.0150),
// ErrNoAuthority (MKT.0151), ErrIllegalToken (MKT.0154),
// ErrUsageInstanceNotFound (MKT.9001), ErrUsageInvalid (MKT.9002),
// ErrUsageTooMany (MKT.9003), ErrUsageTooOld (MKT.9004), ErrAuthentication
// and ErrNotAuthorized (APIGW.*). The MKT codes listed are final even
// though KooGallery answers several of them with HTTP 500: sending the same
// records again gets the same answer.
//
// Per-record refusals are read from any array of the answer (top level,
// or inside a data object, or data itself) whose elements are objects
// with a metering_sn or instance_id, except an array named usage_records
// (an echo of the request) or one whose name speaks of success or
// acceptance; each element's code comes from error_code or code, its
// message from error_msg, msg, message or reason. Unknown fields never
// fail the decode.
func (c *Client) PushUsage(ctx context.Context, key string, body []byte) (UsagePushResult, error) {
	if key == "" {
		return UsagePushResult{}, errors.New("openapi: push usage: no usage key")
	}
	if err := checkPushBody(body); err != nil {
		return UsagePushResult{}, fmt.Errorf("openapi: push usage: %w", err)
	}
	headers := func(h http.Header) error {
		nonce, err := usageNonce()
		if err != nil {
			return err
		}
		ts := strconv.FormatInt(c.cfg.Now().UnixMilli(), 10)
		h.Set(usageTSHeader, ts)
		h.Set(usageNonceHeader, nonce)
		h.Set(usageSignatureHeader, sign.UsageSignature(key, ts, nonce, body))
		return nil
	}
	res, err := c.pushUsage(ctx, headers, UsagePushPath, body)
	if err != nil {
		return res, fmt.Errorf("openapi: push usage: %w", err)
	}
	return res, nil
}

// PushUsageOld sends the old usage push (saas-v1-joint-login.md §A.5.8,
// for V1 products): POST /rest/marketplace/v1/isv/usage-data, APIG-signed
// with the AK/SK only; records carry product_id and no metering_sn. body
// is sent byte for byte. The answer is read as for PushUsage, with the
// same result, errors and sentinels.
func (c *Client) PushUsageOld(ctx context.Context, body []byte) (UsagePushResult, error) {
	if err := checkPushBody(body); err != nil {
		return UsagePushResult{}, fmt.Errorf("openapi: push usage (old): %w", err)
	}
	res, err := c.pushUsage(ctx, nil, OldUsagePushPath, body)
	if err != nil {
		return res, fmt.Errorf("openapi: push usage (old): %w", err)
	}
	return res, nil
}

// checkPushBody refuses a body that is not one JSON object: nothing
// KooGallery could accept, so it is not worth a request.
func checkPushBody(body []byte) error {
	t := bytes.TrimSpace(body)
	if len(t) == 0 || t[0] != '{' || !json.Valid(t) {
		return errors.New("body is not a JSON object")
	}
	return nil
}

// usageNonce returns 16 random bytes in lower-case hex.
func usageNonce() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("nonce: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// pushUsage sends body to path and reads the answer.
func (c *Client) pushUsage(ctx context.Context, extra headerFunc, path string, body []byte) (UsagePushResult, error) {
	a, err := c.sendWith(ctx, extra, jsonContentType, http.MethodPost, path, nil, body)
	if err != nil {
		// An answer too large to read still has its status.
		var e *Error
		if errors.As(err, &e) {
			return UsagePushResult{HTTPStatus: e.HTTPStatus}, err
		}
		return UsagePushResult{}, err
	}
	res := UsagePushResult{HTTPStatus: a.status}
	var env envelope
	if json.Unmarshal(a.body, &env) != nil || env.code() == "" {
		return res, answerError(a.status, "", "undecodable answer: "+snippet(a.body))
	}
	res.Code, res.Message = env.code(), env.msg()
	res.Rejected = rejectedUsage(a.body)
	switch {
	case !slices.Contains(usageSuccess, res.Code):
		return res, usageAnswerError(a.status, res.Code, res.Message)
	case a.status/100 != 2:
		// Whether the records were kept is unknown; sending them again is
		// safe, KooGallery ignores duplicates.
		return res, answerError(a.status, res.Code, "success code with a non-2xx HTTP status")
	}
	return res, nil
}

// finalUsageCodes are the usage push codes that sending the same records
// again cannot change, although several come with HTTP 500.
var finalUsageCodes = map[string]bool{
	protocol.MKTInputCheckFailed:     true,
	protocol.MKTInvalidParam:         true,
	protocol.MKTInvalidBodySignature: true,
	protocol.MKTParamError:           true,
	protocol.MKTIllegalOperation:     true,
	protocol.MKTNoAuthority:          true,
	protocol.MKTIllegalToken:         true,
	protocol.MKTInstanceNotFound:     true,
	protocol.MKTInvalidUsageEntities: true,
	protocol.MKTTooManyRecords:       true,
	protocol.MKTBeginTimeTooOld:      true,
}

// usageAnswerError is answerError with the usage push's final codes kept
// final whatever the HTTP status.
func usageAnswerError(status int, code, msg string) error {
	if finalUsageCodes[code] {
		return &Error{HTTPStatus: status, Code: code, Message: msg}
	}
	return answerError(status, code, msg)
}

// rejectedUsage finds the per-record refusals in a usage push answer (see
// PushUsage). It returns nil when there are none or the body is not an
// object.
func rejectedUsage(body []byte) []RejectedUsage {
	var top map[string]json.RawMessage
	if json.Unmarshal(body, &top) != nil {
		return nil
	}
	var out []RejectedUsage
	for _, name := range sortedKeys(top) {
		if name == "data" {
			continue
		}
		out = append(out, rejectedList(name, top[name])...)
	}
	if data := bytes.TrimSpace(top["data"]); len(data) > 0 {
		switch data[0] {
		case '[':
			out = append(out, rejectedList("data", data)...)
		case '{':
			var inner map[string]json.RawMessage
			if json.Unmarshal(data, &inner) == nil {
				for _, name := range sortedKeys(inner) {
					out = append(out, rejectedList(name, inner[name])...)
				}
			}
		}
	}
	return out
}

// sortedKeys returns m's keys in order, so that refusals from several
// lists come out the same way every time.
func sortedKeys(m map[string]json.RawMessage) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// rejectedList reads the array member name as a list of refused records:
// its elements that are objects with a metering_sn or an instance_id.
// Anything else (not an array, an echo of the request, a list of
// successes, elements of other shapes) gives nothing.
func rejectedList(name string, raw json.RawMessage) []RejectedUsage {
	lower := strings.ToLower(name)
	if lower == "usage_records" || strings.Contains(lower, "succ") || strings.Contains(lower, "accept") {
		return nil
	}
	t := bytes.TrimSpace(raw)
	if len(t) == 0 || t[0] != '[' {
		return nil
	}
	var elems []json.RawMessage
	if json.Unmarshal(t, &elems) != nil {
		return nil
	}
	var out []RejectedUsage
	for _, el := range elems {
		var r struct {
			MeteringSN protocol.FlexString `json:"metering_sn"`
			InstanceID protocol.FlexString `json:"instance_id"`
			BeginTime  protocol.FlexString `json:"begin_time"`
			EndTime    protocol.FlexString `json:"end_time"`
			ErrorCode  protocol.FlexString `json:"error_code"`
			Code       protocol.FlexString `json:"code"`
			ErrorMsg   protocol.FlexString `json:"error_msg"`
			Msg        protocol.FlexString `json:"msg"`
			Message    protocol.FlexString `json:"message"`
			Reason     protocol.FlexString `json:"reason"`
		}
		el = bytes.TrimSpace(el)
		if len(el) == 0 || el[0] != '{' || json.Unmarshal(el, &r) != nil {
			continue
		}
		if r.MeteringSN == "" && r.InstanceID == "" {
			continue
		}
		out = append(out, RejectedUsage{
			MeteringSN: string(r.MeteringSN),
			InstanceID: string(r.InstanceID),
			BeginTime:  string(r.BeginTime),
			EndTime:    string(r.EndTime),
			Code:       strings.TrimSpace(string(firstNonEmpty(r.ErrorCode, r.Code))),
			Message:    string(firstNonEmpty(r.ErrorMsg, r.Msg, r.Message, r.Reason)),
		})
	}
	return out
}

// firstNonEmpty returns the first non-empty value.
func firstNonEmpty(vs ...protocol.FlexString) protocol.FlexString {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}
