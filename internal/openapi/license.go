package openapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/koobridge/koobridge/protocol"
)

// Paths of the license Open APIs (license-openapi.md §A.8, §C.7, §E.1).
const (
	LicenseActivatePath   = "/api/mkp-openapi-public/global/v1/license/activate"
	LicenseActivateV2Path = "/api/mkp-openapi-public/global/v2/license/activate"
	LicenseQueryPath      = "/api/mkp-openapi-public/global/v1/license/heartbeat"
	LicenseQueryV2Path    = "/api/mkp-openapi-public/global/v2/license/heartbeat"
	SoftwareUsagePath     = "/api/mkp-openapi-public/global/v2/license/software-usage-info"
)

// LicenseUploadPath returns the path of the license upload for an
// online-license event (§C.7).
func LicenseUploadPath(eventID string) string {
	return "/api/mkp-openapi-public/global/v1/market-event/" + eventID + "/file"
}

// MaxLicenseBatch is the most codes one batch call (v2 activate, v2 query)
// and the most entries one software-usage report may carry.
const MaxLicenseBatch = 100

// The success codes: 92020000 for the license-code APIs, CBC.0000 for the
// upload (MKT.0000 too: Query Order's live mock answers it for CBC.0000).
var (
	licenseSuccess = []string{protocol.LicenseSuccess}
	uploadSuccess  = []string{protocol.CBCSuccess, protocol.MKTSuccess}
)

// ActivateLicense activates one code (v1): POST
// /api/mkp-openapi-public/global/v1/license/activate. A zero realEffect
// leaves real_effect_time out; otherwise it is sent in UTC, yyyyMMddHHmmss.
// The returned info's expire_time is only KooGallery's estimate: query the
// code for the real one.
//
// A code already active answers ErrLicenseIllegalState. A success without
// data.license_code_info (or with one that does not decode) returns an
// error wrapping ErrIncompleteAnswer: the code was activated, so it is not
// retryable; query the code for its state.
func (c *Client) ActivateLicense(ctx context.Context, code string, realEffect time.Time) (protocol.LicenseCodeInfo, error) {
	req := protocol.LicenseActivateRequest{License: code, RealEffectTime: effectTime(realEffect)}
	if err := firstError(checkText("license", code), req.Validate()); err != nil {
		return protocol.LicenseCodeInfo{}, fmt.Errorf("openapi: activate license: %w", err)
	}
	env, status, err := c.postJSON(ctx, LicenseActivatePath, req, licenseSuccess)
	if err != nil {
		return protocol.LicenseCodeInfo{}, fmt.Errorf("openapi: activate license %s: %w", code, err)
	}
	var data protocol.LicenseActivateData
	if !present(env.Data) {
		return protocol.LicenseCodeInfo{}, fmt.Errorf("openapi: activate license %s: %w", code,
			incomplete(status, env, false, "success without data.license_code_info"))
	}
	if err := json.Unmarshal(env.Data, &data); err != nil {
		return protocol.LicenseCodeInfo{}, fmt.Errorf("openapi: activate license %s: %w", code,
			incomplete(status, env, false, "undecodable data: "+snippet(env.Data)))
	}
	info, err := data.Info()
	if err != nil {
		return protocol.LicenseCodeInfo{}, fmt.Errorf("openapi: activate license %s: %w", code,
			incomplete(status, env, false, "success without a decodable data.license_code_info"))
	}
	return info, nil
}

// ActivateLicenses activates 1 to MaxLicenseBatch codes at once (v2):
// POST /api/mkp-openapi-public/global/v2/license/activate. realEffect is
// as for ActivateLicense. A batch holding an invalid code is refused whole
// (ErrLicenseInvalidInBatch); activate the codes one by one to learn which.
// Whether the answer carries per-code results is UNCONFIRMED; any data is
// ignored.
func (c *Client) ActivateLicenses(ctx context.Context, codes []string, realEffect time.Time) error {
	req := protocol.LicenseActivateV2Request{LicenseList: codes, RealEffectTime: effectTime(realEffect)}
	if err := firstError(checkCodeList(codes), req.Validate()); err != nil {
		return fmt.Errorf("openapi: activate %d licenses: %w", len(codes), err)
	}
	if _, _, err := c.postJSON(ctx, LicenseActivateV2Path, req, licenseSuccess); err != nil {
		return fmt.Errorf("openapi: activate %d licenses: %w", len(codes), err)
	}
	return nil
}

// QueryLicense asks for one code's state (v1 "heartbeat"): POST
// /api/mkp-openapi-public/global/v1/license/heartbeat. The deprecated
// heartbeatInfo is not sent (ReportSoftwareUsage replaces it). An answer
// without license_code is taken as the code asked for; one for another
// code is an error.
//
// A success without data, or with data lacking a status, returns a
// retryable error wrapping ErrIncompleteAnswer (a query changes nothing,
// so asking again is safe).
func (c *Client) QueryLicense(ctx context.Context, code string) (protocol.LicenseInfo, error) {
	req := protocol.LicenseQueryRequest{License: code}
	if err := firstError(checkText("license", code), req.Validate()); err != nil {
		return protocol.LicenseInfo{}, fmt.Errorf("openapi: query license: %w", err)
	}
	env, status, err := c.postJSON(ctx, LicenseQueryPath, req, licenseSuccess)
	if err != nil {
		return protocol.LicenseInfo{}, fmt.Errorf("openapi: query license %s: %w", code, err)
	}
	if !present(env.Data) {
		return protocol.LicenseInfo{}, fmt.Errorf("openapi: query license %s: %w", code,
			incomplete(status, env, true, "success without data"))
	}
	var info protocol.LicenseInfo
	if err := json.Unmarshal(env.Data, &info); err != nil {
		return protocol.LicenseInfo{}, fmt.Errorf("openapi: query license %s: %w", code,
			incomplete(status, env, true, "undecodable data: "+snippet(env.Data)))
	}
	infos, err := checkInfos(status, env, []string{code}, []protocol.LicenseInfo{info})
	if err != nil {
		return protocol.LicenseInfo{}, fmt.Errorf("openapi: query license %s: %w", code, err)
	}
	return infos[0], nil
}

// QueryLicenses asks for the state of 1 to MaxLicenseBatch codes (v2
// "heartbeat"): POST /api/mkp-openapi-public/global/v2/license/heartbeat
// with {"license_list": [...]}.
//
// The answer's shape is UNCONFIRMED, so data is read tolerantly: a list of
// LicenseInfo, one LicenseInfo object, an object with exactly one list
// member (whatever its name) holding them, or a JSON string holding any of
// these. Every entry must name one of the codes asked for, once (an entry
// without license_code is accepted only when one code was asked for) and
// carry a status. Codes the answer leaves out are left out of the result;
// a batch holding an invalid code is refused whole
// (ErrLicenseInvalidInBatch).
func (c *Client) QueryLicenses(ctx context.Context, codes []string) ([]protocol.LicenseInfo, error) {
	// The list rules are those of the v2 activate body, whose Validate
	// checks license_list.
	if err := firstError(checkCodeList(codes), protocol.LicenseActivateV2Request{LicenseList: codes}.Validate()); err != nil {
		return nil, fmt.Errorf("openapi: query %d licenses: %w", len(codes), err)
	}
	req := struct {
		LicenseList []string `json:"license_list"`
	}{codes}
	env, status, err := c.postJSON(ctx, LicenseQueryV2Path, req, licenseSuccess)
	if err != nil {
		return nil, fmt.Errorf("openapi: query %d licenses: %w", len(codes), err)
	}
	if !present(env.Data) {
		return nil, fmt.Errorf("openapi: query %d licenses: %w", len(codes),
			incomplete(status, env, true, "success without data"))
	}
	list, err := decodeLicenseList(env.Data)
	if err != nil {
		return nil, fmt.Errorf("openapi: query %d licenses: %w", len(codes),
			incomplete(status, env, true, "undecodable data: "+err.Error()))
	}
	infos, err := checkInfos(status, env, codes, list)
	if err != nil {
		return nil, fmt.Errorf("openapi: query %d licenses: %w", len(codes), err)
	}
	return infos, nil
}

// ReportSoftwareUsage sends software usage statistics (v2): POST
// /api/mkp-openapi-public/global/v2/license/software-usage-info.
//
// The answer's data (the entries that failed KooGallery's check, under a
// name beginning check_fail_, UNCONFIRMED) is returned as sent; a data
// that is not an object is kept under the name "data". The response is
// returned with an error answer too, whenever its body decoded, so those
// entries can be read either way.
func (c *Client) ReportSoftwareUsage(ctx context.Context, req protocol.SoftwareUsageInfoRequest) (protocol.SoftwareUsageInfoResponse, error) {
	if err := firstError(checkUsage(req), req.Validate()); err != nil {
		return protocol.SoftwareUsageInfoResponse{}, fmt.Errorf("openapi: report software usage: %w", err)
	}
	env, _, err := c.postJSON(ctx, SoftwareUsagePath, req, licenseSuccess)
	resp := protocol.SoftwareUsageInfoResponse{ErrorCode: protocol.FlexString(env.code()), ErrorMsg: protocol.FlexString(env.msg())}
	if present(env.Data) {
		if json.Unmarshal(env.Data, &resp.Data) != nil {
			resp.Data = map[string]json.RawMessage{"data": env.Data}
		}
	}
	if err != nil {
		return resp, fmt.Errorf("openapi: report software usage of %d licenses: %w", len(req.UsageInfo), err)
	}
	return resp, nil
}

// LicenseUpload is the license of an online-license event (§C.7): exactly
// one of Characters (a license string, at most 1024 characters) or
// FileName and Content (a license file, sent as a stream with its SHA-256).
type LicenseUpload struct {
	Characters string
	FileName   string
	Content    []byte
}

// UploadLicense uploads the license of the online-license event eventID
// (getLicenseAsync's eventId): POST
// /api/mkp-openapi-public/global/v1/market-event/{event_id}/file,
// multipart/form-data with the JSON part isvUpdateFileReq (type, and
// characters, or file_name and sha256, the lower-case hex SHA-256 of the
// content: hex is UNCONFIRMED) and, for a file, the part file. The
// signature covers the exact multipart bytes sent (see sendTo).
//
// Success is CBC.0000 (or MKT.0000). The license content never appears in
// an error.
func (c *Client) UploadLicense(ctx context.Context, eventID string, f LicenseUpload) error {
	fileReq, err := f.request()
	if err == nil {
		err = protocol.CheckEventID(eventID)
	}
	if err != nil {
		return fmt.Errorf("openapi: upload license: %w", err)
	}
	body, contentType, err := multipartBody(fileReq, f)
	if err != nil {
		return fmt.Errorf("openapi: upload license for event %s: %w", eventID, err)
	}
	a, err := c.sendAs(ctx, contentType, http.MethodPost, LicenseUploadPath(eventID), nil, body)
	if err == nil {
		_, err = checkAnswer(a, uploadSuccess)
	}
	if err != nil {
		return fmt.Errorf("openapi: upload license for event %s: %w", eventID, err)
	}
	return nil
}

// request checks f and returns its isvUpdateFileReq.
func (f LicenseUpload) request() (protocol.IsvUpdateFileReq, error) {
	file := f.FileName != "" || f.Content != nil
	switch {
	case f.Characters != "" && file:
		return protocol.IsvUpdateFileReq{}, errors.New("a license upload has either characters or a file, not both")
	case f.Characters != "":
		// A license string may hold line breaks; NUL and invalid UTF-8
		// would not survive the JSON part unchanged.
		if !utf8.ValidString(f.Characters) || strings.ContainsRune(f.Characters, 0) {
			return protocol.IsvUpdateFileReq{}, &protocol.FieldError{Field: "characters", Problem: "not valid UTF-8 text without NUL"}
		}
		r := protocol.IsvUpdateFileReq{Type: protocol.UploadTypeCharacters, Characters: f.Characters}
		return r, r.Validate()
	case !file:
		return protocol.IsvUpdateFileReq{}, errors.New("a license upload needs characters or a file")
	case len(f.Content) == 0:
		return protocol.IsvUpdateFileReq{}, &protocol.FieldError{Field: "file", Problem: "empty"}
	}
	if err := checkText("file_name", f.FileName); err != nil {
		return protocol.IsvUpdateFileReq{}, err
	}
	if strings.ContainsAny(f.FileName, `/\`) || f.FileName == "." || f.FileName == ".." {
		return protocol.IsvUpdateFileReq{}, &protocol.FieldError{Field: "file_name", Problem: "not a plain file name"}
	}
	r := protocol.IsvUpdateFileReq{Type: protocol.UploadTypeFile, FileName: f.FileName, SHA256: hexSHA256(f.Content)}
	return r, r.Validate()
}

// multipartBody writes the upload's parts: isvUpdateFileReq as JSON (with
// its own Content-Type, which a server binding the part to an object
// needs), then the file.
func multipartBody(fileReq protocol.IsvUpdateFileReq, f LicenseUpload) (body []byte, contentType string, err error) {
	js, err := json.Marshal(fileReq)
	if err != nil {
		return nil, "", fmt.Errorf("encode isvUpdateFileReq: %w", err)
	}
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	h := make(textproto.MIMEHeader)
	h.Set("Content-Disposition", `form-data; name="isvUpdateFileReq"`)
	h.Set("Content-Type", "application/json")
	part, err := w.CreatePart(h)
	if err == nil {
		_, err = part.Write(js)
	}
	if err == nil && fileReq.Type == protocol.UploadTypeFile {
		if part, err = w.CreateFormFile("file", f.FileName); err == nil {
			_, err = part.Write(f.Content)
		}
	}
	if err == nil {
		err = w.Close()
	}
	if err != nil {
		return nil, "", fmt.Errorf("write multipart body: %w", err)
	}
	return buf.Bytes(), w.FormDataContentType(), nil
}

// envelope is what every license Open API answer carries: error_code and
// error_msg (resultCode/resultMsg are read too, as Query Order spells
// them) and the call's data, decoded by the call.
type envelope struct {
	ErrorCode  protocol.FlexString `json:"error_code"`
	ErrorMsg   protocol.FlexString `json:"error_msg"`
	ResultCode protocol.FlexString `json:"resultCode"`
	ResultMsg  protocol.FlexString `json:"resultMsg"`
	Data       json.RawMessage     `json:"data"`
}

func (e envelope) code() string {
	if c := strings.TrimSpace(string(e.ErrorCode)); c != "" {
		return c
	}
	return strings.TrimSpace(string(e.ResultCode))
}

func (e envelope) msg() string {
	if e.ErrorMsg != "" {
		return string(e.ErrorMsg)
	}
	return string(e.ResultMsg)
}

// postJSON sends req as JSON to path and checks the answer.
func (c *Client) postJSON(ctx context.Context, path string, req any, success []string) (env envelope, status int, err error) {
	body, err := json.Marshal(req)
	if err != nil {
		return envelope{}, 0, fmt.Errorf("encode request: %w", err)
	}
	a, err := c.send(ctx, http.MethodPost, path, nil, body)
	if err != nil {
		return envelope{}, 0, err
	}
	env, err = checkAnswer(a, success)
	return env, a.status, err
}

// checkAnswer decodes a's envelope and decides the outcome by the body's
// code, never by the HTTP status alone: a failure code is an error
// whatever the status (92020001 comes with HTTP 200 in one published
// copy), and a body without a code is an error too. A success code counts
// only with a 2xx status: with another status the answer contradicts
// itself (something between us and the API failed), so it is an *Error,
// retryable for a 5xx like any server error; a query asked again is
// harmless, and an activate asked again answers ErrLicenseIllegalState,
// which tells the caller to query the code. The envelope is returned
// whenever it decoded, error or not.
func checkAnswer(a answer, success []string) (envelope, error) {
	var env envelope
	if err := json.Unmarshal(a.body, &env); err != nil || env.code() == "" {
		return envelope{}, answerError(a.status, "", "undecodable answer: "+snippet(a.body))
	}
	if !slices.Contains(success, env.code()) {
		return env, answerError(a.status, env.code(), env.msg())
	}
	if a.status/100 != 2 {
		return env, answerError(a.status, env.code(), "success code with a non-2xx HTTP status")
	}
	return env, nil
}

// incomplete is the error of a success answer without the data the call
// returns; retryable says whether asking again is safe.
func incomplete(status int, env envelope, retryable bool, msg string) error {
	e := &Error{HTTPStatus: status, Code: env.code(), Message: msg}
	if retryable {
		return fmt.Errorf("%w: %w: %w", ErrUnavailable, ErrIncompleteAnswer, e)
	}
	return fmt.Errorf("%w: %w", ErrIncompleteAnswer, e)
}

// present reports whether a JSON member was sent with a value other than
// null.
func present(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) > 0 && !bytes.Equal(t, []byte("null"))
}

// decodeLicenseList reads the v2 query's data in any of the shapes
// QueryLicenses accepts.
func decodeLicenseList(raw json.RawMessage) ([]protocol.LicenseInfo, error) {
	t := bytes.TrimSpace(raw)
	if len(t) > 0 && t[0] == '"' {
		var s string
		if err := json.Unmarshal(t, &s); err != nil {
			return nil, err
		}
		t = bytes.TrimSpace([]byte(s))
		if len(t) > 0 && t[0] == '"' {
			return nil, errors.New("a JSON string inside a JSON string")
		}
	}
	if len(t) == 0 {
		return nil, errors.New("empty")
	}
	switch t[0] {
	case '[':
		var list []protocol.LicenseInfo
		if err := json.Unmarshal(t, &list); err != nil {
			return nil, err
		}
		return list, nil
	case '{':
		var members map[string]json.RawMessage
		if err := json.Unmarshal(t, &members); err != nil {
			return nil, err
		}
		_, code := members["license_code"]
		_, status := members["status"]
		if code || status {
			var info protocol.LicenseInfo
			if err := json.Unmarshal(t, &info); err != nil {
				return nil, err
			}
			return []protocol.LicenseInfo{info}, nil
		}
		var lists []string
		for name, v := range members {
			if v := bytes.TrimSpace(v); len(v) > 0 && v[0] == '[' {
				lists = append(lists, name)
			}
		}
		if len(lists) != 1 {
			slices.Sort(lists)
			return nil, fmt.Errorf("an object with %d lists %v, want one list of license infos", len(lists), lists)
		}
		var list []protocol.LicenseInfo
		if err := json.Unmarshal(members[lists[0]], &list); err != nil {
			return nil, fmt.Errorf("%s: %w", lists[0], err)
		}
		return list, nil
	}
	return nil, fmt.Errorf("neither a list nor an object: %s", snippet(t))
}

// checkInfos checks the license infos of a query answer against the codes
// asked for: each names one of them, once, and has a status. An info
// without license_code is taken as the only code asked for.
func checkInfos(status int, env envelope, codes []string, infos []protocol.LicenseInfo) ([]protocol.LicenseInfo, error) {
	seen := make(map[string]bool, len(infos))
	for i := range infos {
		info := &infos[i]
		info.LicenseCode = strings.TrimSpace(info.LicenseCode)
		if info.LicenseCode == "" && len(codes) == 1 {
			info.LicenseCode = codes[0]
		}
		switch {
		case info.LicenseCode == "":
			return nil, incomplete(status, env, true, fmt.Sprintf("data entry %d without license_code", i))
		case !slices.Contains(codes, info.LicenseCode):
			return nil, &Error{HTTPStatus: status, Code: env.code(), Message: fmt.Sprintf("answer for license code %q, not asked for", snippet([]byte(info.LicenseCode)))}
		case seen[info.LicenseCode]:
			return nil, &Error{HTTPStatus: status, Code: env.code(), Message: fmt.Sprintf("license code %s answered twice", info.LicenseCode)}
		case strings.TrimSpace(info.Status) == "":
			return nil, incomplete(status, env, true, fmt.Sprintf("license code %s without status", info.LicenseCode))
		}
		seen[info.LicenseCode] = true
	}
	return infos, nil
}

// effectTime formats a real_effect_time: "" for the zero time.
func effectTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return protocol.FormatTime14(t)
}

// checkText refuses what the protocol validators let through but JSON or
// a URL would change or make ambiguous: invalid UTF-8 and control
// characters (NUL included). Its error names the field, never the value.
func checkText(field, v string) error {
	if !utf8.ValidString(v) {
		return &protocol.FieldError{Field: field, Problem: "not valid UTF-8"}
	}
	if strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return &protocol.FieldError{Field: field, Problem: "contains a control character"}
	}
	return nil
}

// checkCodeList checks each code's text and refuses a code listed twice.
func checkCodeList(codes []string) error {
	seen := make(map[string]bool, len(codes))
	for i, code := range codes {
		field := fmt.Sprintf("license_list[%d]", i)
		if err := checkText(field, code); err != nil {
			return err
		}
		if seen[code] {
			return &protocol.FieldError{Field: field, Problem: "listed twice"}
		}
		seen[code] = true
	}
	return nil
}

// checkUsage checks the text of a software-usage report's codes and
// identifiers.
func checkUsage(req protocol.SoftwareUsageInfoRequest) error {
	for i, e := range req.UsageInfo {
		if err := checkText(fmt.Sprintf("usage_info[%d].license", i), e.License); err != nil {
			return err
		}
		for j, it := range e.SoftwareUsageInfo {
			if err := checkText(fmt.Sprintf("usage_info[%d].software_usage_Info[%d].id", i, j), it.ID); err != nil {
				return err
			}
		}
	}
	return nil
}

// firstError returns the first non-nil error.
func firstError(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
