package mockapi

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/koobridge/koobridge/protocol"
)

// The license upload path is uploadPrefix + {event_id} + uploadSuffix
// (license-openapi.md §C.7); UploadPath builds it.
const (
	uploadPrefix = "/api/mkp-openapi-public/global/v1/market-event/"
	uploadSuffix = "/file"
)

// Multipart part names of the upload.
const (
	uploadReqPart  = "isvUpdateFileReq"
	uploadFilePart = "file"
)

// Error codes of the upload for what the guide leaves open: an event no
// getLicenseAsync issued is "license application invalid"; a further
// upload of another license for an event whose license was already
// accepted is "application denied" and is recorded as a duplicate. The
// same license again (the same SHA-256: a seller that crashed after the
// acceptance, before recording it, uploads the same bytes again) is an
// idempotent success, CBC.0000, recorded as a duplicate too. A seller's
// upload job that gets UploadDuplicateCode for its own event can take its
// first upload as accepted.
const (
	UploadUnknownEventCode = protocol.OnlineLicenseApplicationInvalid // 91381034
	UploadDuplicateCode    = protocol.OnlineLicenseApplicationDenied  // 91381038
)

// UploadPath returns the upload path of an event.
func UploadPath(eventID string) string {
	return uploadPrefix + url.PathEscape(eventID) + uploadSuffix
}

// uploadEvent returns the event ID of an upload path.
func uploadEvent(path string) (string, bool) {
	rest, ok := strings.CutPrefix(path, uploadPrefix)
	if !ok {
		return "", false
	}
	id, ok := strings.CutSuffix(rest, uploadSuffix)
	if !ok || id == "" || strings.Contains(id, "/") {
		return "", false
	}
	return id, true
}

func isUploadPath(path string) bool {
	_, ok := uploadEvent(path)
	return ok
}

// LicenseEvent is a license application: a getLicenseAsync KooGallery
// sent (license-openapi.md §C.6), whose eventId the seller's upload
// names.
type LicenseEvent struct {
	EventID     string    `json:"eventId"`
	InstanceID  string    `json:"instanceId"`
	Test        bool      `json:"test,omitempty"`
	RequestedAt time.Time `json:"requestedAt"` // by the license clock
	// Uploaded reports that an upload was accepted, at UploadedAt, with
	// SHA256 the hex SHA-256 of the license accepted.
	Uploaded   bool      `json:"uploaded"`
	UploadedAt time.Time `json:"uploadedAt,omitzero"`
	SHA256     string    `json:"sha256,omitempty"`
}

// LicenseUpload is one upload request that passed the gateway, whatever
// its outcome.
type LicenseUpload struct {
	At       time.Time `json:"at"` // by the license clock
	EventID  string    `json:"eventId"`
	Type     string    `json:"type,omitempty"` // CHARACTERS or FILE
	FileName string    `json:"fileName,omitempty"`
	SHA256   string    `json:"sha256,omitempty"` // hex SHA-256 of the license received
	Size     int       `json:"size"`             // bytes of the license received
	Code     string    `json:"code"`             // error_code answered
	// Message is the error_msg answered: what was wrong with a refused
	// upload.
	Message string `json:"message,omitempty"`
	// Accepted marks the upload taken as the event's license: one per
	// event.
	Accepted bool `json:"accepted"`
	// Duplicate marks an upload for an event already accepted: answered
	// CBC.0000 when it is the same license (the same SHA-256), else
	// UploadDuplicateCode. Fault marks one failed by SetUploadFailures.
	Duplicate bool `json:"duplicate,omitempty"`
	Fault     bool `json:"fault,omitempty"`
	// Content is the license received (the characters, or the file), its
	// first MaxUploadContent bytes (ContentTruncated says some were cut;
	// SHA256 and Size are the whole license's). It is never written in
	// JSON.
	Content          []byte `json:"-"`
	ContentTruncated bool   `json:"contentTruncated,omitempty"`
}

// Bounds of the upload log: uploads are kept with their content, so fewer
// of them than of the other license records, and a large file only in
// part.
const (
	MaxLicenseUploads = 1000
	MaxUploadContent  = 64 << 10
)

// AddLicenseEvent registers a license application, so that an upload for
// its EventID (1 to 64 characters) is accepted. RequestedAt is set by the
// license clock when zero. Adding an event again (KooGallery resends a
// getLicenseAsync with its eventId) keeps whether it was uploaded, when
// and what.
func (h *Handler) AddLicenseEvent(ev LicenseEvent) error {
	if ev.EventID == "" || utf8.RuneCountInString(ev.EventID) > 64 || strings.Contains(ev.EventID, "/") {
		return fmt.Errorf("mockapi: add license event: eventId %q: want 1 to 64 characters without /", ev.EventID)
	}
	if ev.RequestedAt.IsZero() {
		ev.RequestedAt = h.licenseNow()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if old, ok := h.lic.events[ev.EventID]; ok {
		ev.Uploaded, ev.UploadedAt, ev.SHA256 = old.Uploaded, old.UploadedAt, old.SHA256
	} else {
		h.lic.eventOrder = append(h.lic.eventOrder, ev.EventID)
		if len(h.lic.eventOrder) > MaxLicenseRecords {
			delete(h.lic.events, h.lic.eventOrder[0])
			h.lic.eventOrder = h.lic.eventOrder[1:]
		}
	}
	h.lic.events[ev.EventID] = &ev
	return nil
}

// LicenseEvent returns one license application.
func (h *Handler) LicenseEvent(id string) (LicenseEvent, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ev, ok := h.lic.events[id]
	if !ok {
		return LicenseEvent{}, false
	}
	return *ev, true
}

// LicenseEvents lists the last MaxLicenseRecords license applications,
// oldest first.
func (h *Handler) LicenseEvents() []LicenseEvent {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]LicenseEvent, 0, len(h.lic.eventOrder))
	for _, id := range h.lic.eventOrder {
		out = append(out, *h.lic.events[id])
	}
	return out
}

// LicenseUploads lists the upload requests that passed the gateway,
// oldest first (the last MaxLicenseUploads), failures and duplicates
// included.
func (h *Handler) LicenseUploads() []LicenseUpload {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lic.uploads.list()
}

// SetUploadFailures makes the next n uploads that pass the gateway fail
// with code (empty: CBC.0999, HTTP 500; a code of the spec's tables is
// answered with its HTTP status, another with 400) before their body is
// read; they are recorded with Fault set. n of 0 switches it off.
func (h *Handler) SetUploadFailures(n int, code string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lic.failUploads, h.lic.failCode = max(n, 0), code
}

// takeUploadFailure counts one failure off SetUploadFailures and returns
// its code, or "" when uploads succeed.
func (h *Handler) takeUploadFailure() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.lic.failUploads <= 0 {
		return ""
	}
	h.lic.failUploads--
	if h.lic.failCode == "" {
		return protocol.CBCInternalError
	}
	return h.lic.failCode
}

// upload answers a license upload (license-openapi.md §C.7) whose gateway
// checks have passed: multipart/form-data with the isvUpdateFileReq JSON
// and, for FILE, the file whose hex SHA-256 is sha256.
func (h *Handler) upload(w http.ResponseWriter, r *http.Request, body []byte) {
	now := h.licenseNow()
	event, _ := uploadEvent(r.URL.Path)
	rec := LicenseUpload{At: now, EventID: event}
	if code := h.takeUploadFailure(); code != "" {
		msg := "internal error"
		if info, ok := protocol.LookupOpenAPICode(code); ok {
			msg = info.Meaning
		}
		rec.Code, rec.Message, rec.Fault = code, msg, true
		h.recordUpload(rec)
		writeJSON(w, licenseStatus(code), gatewayError{code, msg})
		return
	}
	req, content, fail := parseUpload(r.Header.Get("Content-Type"), body)
	rec.Type, rec.FileName = req.Type, req.FileName
	if content != nil {
		sum := sha256.Sum256(content)
		rec.SHA256, rec.Size = hex.EncodeToString(sum[:]), len(content)
		rec.Content = bytes.Clone(content[:min(len(content), MaxUploadContent)])
		rec.ContentTruncated = len(content) > MaxUploadContent
	}
	again := false
	if fail == nil {
		again, fail = h.acceptUpload(event, rec.SHA256, now)
	}
	if fail != nil {
		rec.Code, rec.Message, rec.Duplicate = fail.code, fail.msg, fail.code == UploadDuplicateCode
		h.recordUpload(rec)
		fail.write(w)
		return
	}
	msg := "success"
	if again {
		msg = "success: this license was already accepted for the event"
	}
	rec.Code, rec.Message, rec.Accepted, rec.Duplicate = protocol.CBCSuccess, msg, !again, again
	h.recordUpload(rec)
	writeJSON(w, http.StatusOK, gatewayError{protocol.CBCSuccess, msg})
}

// acceptUpload marks event uploaded with the license whose hex SHA-256 is
// sum, or says why it cannot be. again reports the same license uploaded
// once more for an event already accepted: a success that changes nothing.
func (h *Handler) acceptUpload(event, sum string, now time.Time) (again bool, fail *licenseFail) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ev, ok := h.lic.events[event]
	switch {
	case !ok:
		return false, lfail(UploadUnknownEventCode, "license application invalid: no license was applied for with event %s", event)
	case ev.Uploaded && ev.SHA256 == sum:
		return true, nil
	case ev.Uploaded:
		return false, lfail(UploadDuplicateCode, "application denied: another license for event %s was already accepted", event)
	}
	ev.Uploaded, ev.UploadedAt, ev.SHA256 = true, now, sum
	return false, nil
}

func (h *Handler) recordUpload(rec LicenseUpload) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lic.uploads.add(rec)
}

// parseUpload reads the multipart body: exactly one isvUpdateFileReq part
// (a JSON object, valid per protocol.IsvUpdateFileReq.Validate) and, for
// FILE only, exactly one file part. Other parts are ignored. It returns
// the license content (the file, or the characters) when it got that far.
func parseUpload(contentType string, body []byte) (protocol.IsvUpdateFileReq, []byte, *licenseFail) {
	var req protocol.IsvUpdateFileReq
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		return req, nil, lfail(protocol.CBCInvalidParam, "invalid parameter: Content-Type %q: want multipart/form-data with a boundary", contentType)
	}
	parts := map[string][]byte{}
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return req, nil, lfail(protocol.CBCInvalidParam, "invalid parameter: malformed multipart body: %v", err)
		}
		name := p.FormName()
		b, err := io.ReadAll(p)
		if err != nil {
			return req, nil, lfail(protocol.CBCInvalidParam, "invalid parameter: malformed multipart body: %v", err)
		}
		if name != uploadReqPart && name != uploadFilePart {
			continue
		}
		if _, dup := parts[name]; dup {
			return req, nil, lfail(protocol.CBCInvalidParam, "invalid parameter: part %s appears twice", name)
		}
		parts[name] = b
	}
	raw, ok := parts[uploadReqPart]
	if !ok {
		return req, nil, lfail(protocol.CBCInvalidParam, "invalid parameter: part %s is missing", uploadReqPart)
	}
	if err := decodeStrict(raw, &req); err != nil {
		return protocol.IsvUpdateFileReq{}, nil, lfail(protocol.CBCInvalidParam, "invalid parameter %s: not a JSON object of the documented fields: %v", uploadReqPart, err)
	}
	if err := req.Validate(); err != nil {
		return req, nil, lfail(protocol.CBCInvalidParam, "invalid parameter %s: %v", uploadReqPart, err)
	}
	file, hasFile := parts[uploadFilePart]
	var content []byte
	switch req.Type {
	case protocol.UploadTypeFile:
		if !hasFile {
			return req, nil, lfail(protocol.CBCInvalidParam, "invalid parameter: a FILE upload needs the %s part", uploadFilePart)
		}
		content = file
		if len(file) == 0 {
			return req, content, lfail(protocol.OnlineLicenseInvalidFormat, "invalid license format: the file is empty")
		}
	default: // CHARACTERS, per Validate
		if hasFile {
			return req, nil, lfail(protocol.CBCInvalidParam, "invalid parameter: a CHARACTERS upload carries the license in characters, not in a %s part", uploadFilePart)
		}
		content = []byte(req.Characters)
		if !utf8.ValidString(req.Characters) || strings.ContainsRune(req.Characters, 0) {
			return req, content, lfail(protocol.OnlineLicenseInvalidFormat, "invalid license format: characters must be UTF-8 text without NUL")
		}
	}
	if req.SHA256 != "" {
		sum := sha256.Sum256(content)
		if !strings.EqualFold(req.SHA256, hex.EncodeToString(sum[:])) {
			return req, content, lfail(protocol.CBCInvalidParam, "invalid parameter sha256: it is not the hex SHA-256 of the license received")
		}
	}
	return req, content, nil
}
