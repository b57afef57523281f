package mockapi_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/koobridge/koobridge/emulator/mockapi"
	"github.com/koobridge/koobridge/internal/openapi/openapitest"
	"github.com/koobridge/koobridge/protocol"
)

// part is one multipart part of an upload body.
type part struct {
	name, filename, contentType string
	body                        string
}

// multipartBody writes parts and returns the body and its Content-Type.
func multipartBody(t *testing.T, parts ...part) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for _, p := range parts {
		h := textproto.MIMEHeader{}
		disp := `form-data; name="` + p.name + `"`
		if p.filename != "" {
			disp += `; filename="` + p.filename + `"`
		}
		h.Set("Content-Disposition", disp)
		if p.contentType != "" {
			h.Set("Content-Type", p.contentType)
		}
		pw, err := w.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pw.Write([]byte(p.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), w.FormDataContentType()
}

// upload is a signed upload of parts for event.
func upload(t *testing.T, event string, parts ...part) call {
	body, ct := multipartBody(t, parts...)
	return call{method: http.MethodPost, path: mockapi.UploadPath(event), body: body, apigSK: testSK,
		headers: map[string]string{"Content-Type": ct}}
}

func hexSum(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

const (
	testEvent   = "EV-0001"
	licenseFile = "-----BEGIN LICENSE-----\nSERIAL=42\n-----END LICENSE-----\n"
)

func fileReq(sum string) part {
	return part{name: "isvUpdateFileReq", contentType: "application/json",
		body: `{"type":"FILE","file_name":"license.lic","sha256":"` + sum + `"}`}
}

func filePart(content string) part {
	return part{name: "file", filename: "license.lic", contentType: "application/octet-stream", body: content}
}

func newUploadServer(t *testing.T) *openapitest.Server {
	t.Helper()
	srv := openapitest.NewServer(t, testAK, testSK)
	srv.SetClock(func() time.Time { return testNow })
	if err := srv.AddLicenseEvent(mockapi.LicenseEvent{EventID: testEvent, InstanceID: "inst-1"}); err != nil {
		t.Fatal(err)
	}
	return srv
}

// TestUpload checks the multipart upload (license-openapi.md §C.7): the
// parts, the type's fields, the sha256 of the file, the event.
func TestUpload(t *testing.T) {
	sum := hexSum(licenseFile)
	unsignedPayload := func(c call) call { c.headers["X-Sdk-Content-Sha256"] = "UNSIGNED-PAYLOAD"; return c }
	withCT := func(c call, ct string) call { c.headers["Content-Type"] = ct; return c }
	tests := []struct {
		name     string
		call     call
		status   int
		code     string
		msg      string
		accepted bool
		size     int // bytes of license content recorded
	}{
		{name: "file", call: upload(t, testEvent, fileReq(sum), filePart(licenseFile)), status: 200, code: "CBC.0000", accepted: true, size: len(licenseFile)},
		{name: "file, uppercase sha256", call: upload(t, testEvent, fileReq(strings.ToUpper(sum)), filePart(licenseFile)), status: 200, code: "CBC.0000", accepted: true, size: len(licenseFile)},
		{name: "file, request part as a plain field", call: upload(t, testEvent, part{name: "isvUpdateFileReq", body: `{"type":"FILE","file_name":"l.lic","sha256":"` + sum + `"}`}, filePart(licenseFile)),
			status: 200, code: "CBC.0000", accepted: true, size: len(licenseFile)},
		{name: "file, unsigned payload", call: unsignedPayload(upload(t, testEvent, fileReq(sum), filePart(licenseFile))), status: 200, code: "CBC.0000", accepted: true, size: len(licenseFile)},
		{name: "characters", call: upload(t, testEvent, part{name: "isvUpdateFileReq", body: `{"type":"CHARACTERS","characters":"LIC-123-456"}`}), status: 200, code: "CBC.0000", accepted: true, size: 11},
		{name: "characters with their sha256", call: upload(t, testEvent, part{name: "isvUpdateFileReq", body: `{"type":"CHARACTERS","characters":"LIC-1","sha256":"` + hexSum("LIC-1") + `"}`}),
			status: 200, code: "CBC.0000", accepted: true, size: 5},
		{name: "an unknown part is ignored", call: upload(t, testEvent, fileReq(sum), filePart(licenseFile), part{name: "note", body: "x"}), status: 200, code: "CBC.0000", accepted: true, size: len(licenseFile)},
		{name: "sha256 of another file", call: upload(t, testEvent, fileReq(hexSum("other")), filePart(licenseFile)), status: 400, code: "CBC.0101", msg: "sha256", size: len(licenseFile)},
		{name: "sha256 base64", call: upload(t, testEvent, fileReq("n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg="), filePart(licenseFile)), status: 400, code: "CBC.0101", msg: "sha256", size: len(licenseFile)},
		{name: "file without sha256", call: upload(t, testEvent, part{name: "isvUpdateFileReq", body: `{"type":"FILE","file_name":"l.lic"}`}, filePart(licenseFile)), status: 400, code: "CBC.0101", msg: "sha256"},
		{name: "file without file_name", call: upload(t, testEvent, part{name: "isvUpdateFileReq", body: `{"type":"FILE","sha256":"` + sum + `"}`}, filePart(licenseFile)), status: 400, code: "CBC.0101", msg: "file_name"},
		{name: "file without the file part", call: upload(t, testEvent, fileReq(sum)), status: 400, code: "CBC.0101", msg: "file part"},
		{name: "empty file", call: upload(t, testEvent, fileReq(hexSum("")), filePart("")), status: 200, code: "91381037", msg: "empty"},
		{name: "two files", call: upload(t, testEvent, fileReq(sum), filePart(licenseFile), filePart(licenseFile)), status: 400, code: "CBC.0101", msg: "twice"},
		{name: "two requests", call: upload(t, testEvent, fileReq(sum), fileReq(sum), filePart(licenseFile)), status: 400, code: "CBC.0101", msg: "twice"},
		{name: "no request part", call: upload(t, testEvent, filePart(licenseFile)), status: 400, code: "CBC.0101", msg: "isvUpdateFileReq is missing"},
		{name: "request not JSON", call: upload(t, testEvent, part{name: "isvUpdateFileReq", body: `type=FILE`}, filePart(licenseFile)), status: 400, code: "CBC.0101", msg: "isvUpdateFileReq"},
		{name: "unknown type", call: upload(t, testEvent, part{name: "isvUpdateFileReq", body: `{"type":"STREAM"}`}), status: 400, code: "CBC.0101", msg: "type"},
		{name: "characters of 1025", call: upload(t, testEvent, part{name: "isvUpdateFileReq", body: `{"type":"CHARACTERS","characters":"` + strings.Repeat("c", 1025) + `"}`}), status: 400, code: "CBC.0101", msg: "characters"},
		{name: "characters with a NUL", call: upload(t, testEvent, part{name: "isvUpdateFileReq", body: `{"type":"CHARACTERS","characters":"a\u0000b"}`}), status: 200, code: "91381037", size: 3},
		{name: "characters with a file part", call: upload(t, testEvent, part{name: "isvUpdateFileReq", body: `{"type":"CHARACTERS","characters":"x"}`}, filePart(licenseFile)), status: 400, code: "CBC.0101", msg: "CHARACTERS"},
		{name: "JSON body", call: withCT(upload(t, testEvent, fileReq(sum)), "application/json"), status: 400, code: "CBC.0101", msg: "multipart/form-data"},
		{name: "unknown event", call: upload(t, "EV-NONE", fileReq(sum), filePart(licenseFile)), status: 200, code: "91381034", msg: "EV-NONE", size: len(licenseFile)},
		{name: "unsigned", call: func() call { c := upload(t, testEvent, fileReq(sum), filePart(licenseFile)); c.apigSK = ""; return c }(), status: 401, code: "APIGW.0301"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newUploadServer(t)
			got := tt.call.do(t, srv)
			if got.Status != tt.status || got.Code != tt.code {
				t.Errorf("answer %d %s, want %d %s", got.Status, got.Raw, tt.status, tt.code)
			}
			if !strings.Contains(got.Msg, tt.msg) {
				t.Errorf("error_msg %q does not contain %q", got.Msg, tt.msg)
			}
			ev, _ := srv.LicenseEvent(testEvent)
			if ev.Uploaded != tt.accepted {
				t.Errorf("event uploaded %v, want %v", ev.Uploaded, tt.accepted)
			}
			ups := srv.LicenseUploads()
			if tt.status == http.StatusUnauthorized {
				if len(ups) != 0 {
					t.Errorf("a request refused by the gateway was recorded: %+v", ups)
				}
				return
			}
			if len(ups) != 1 {
				t.Fatalf("%d uploads recorded, want 1", len(ups))
			}
			u := ups[0]
			if u.Accepted != tt.accepted || u.Code != tt.code || u.Message != got.Msg || u.Size != tt.size || len(u.Content) != tt.size || u.Duplicate || u.Fault {
				t.Errorf("upload recorded %+v, answered %s", u, got.Raw)
			}
			if tt.accepted && (u.SHA256 != hexSum(string(u.Content)) || !ev.UploadedAt.Equal(testNow) || ev.SHA256 != u.SHA256) {
				t.Errorf("accepted upload %+v, event %+v", u, ev)
			}
		})
	}
}

// TestUploadLarge: a file over MaxUploadContent is accepted, with its
// whole SHA-256 and size, and kept in part.
func TestUploadLarge(t *testing.T) {
	srv := newUploadServer(t)
	big := strings.Repeat("L", mockapi.MaxUploadContent+10)
	if got := upload(t, testEvent, fileReq(hexSum(big)), filePart(big)).do(t, srv); got.Code != protocol.CBCSuccess {
		t.Fatalf("upload: %s", got.Raw)
	}
	u := srv.LicenseUploads()[0]
	if !u.Accepted || u.Size != len(big) || u.SHA256 != hexSum(big) || len(u.Content) != mockapi.MaxUploadContent || !u.ContentTruncated {
		t.Errorf("upload recorded: size %d, sha %s, %d bytes kept, truncated %v", u.Size, u.SHA256, len(u.Content), u.ContentTruncated)
	}
}

// TestUploadOnce: a second upload of the same license (the same SHA-256)
// for an accepted event is an idempotent success, CBC.0000, recorded as a
// duplicate; another license for it is UploadDuplicateCode, recorded as a
// duplicate; the event keeps the first, also when it is added again.
func TestUploadOnce(t *testing.T) {
	const other = "-----BEGIN LICENSE-----\nSERIAL=43\n-----END LICENSE-----\n"
	tests := []struct {
		name     string
		again    call
		status   int
		code     string
		msg      string
		sameHash bool
	}{
		{"the same file", upload(t, testEvent, fileReq(hexSum(licenseFile)), filePart(licenseFile)), 200, protocol.CBCSuccess, "already accepted", true},
		{"the same license as characters", upload(t, testEvent, part{name: "isvUpdateFileReq", body: `{"type":"CHARACTERS","characters":` + strconv.Quote(licenseFile) + `}`}),
			200, protocol.CBCSuccess, "already accepted", true},
		{"another file", upload(t, testEvent, fileReq(hexSum(other)), filePart(other)), 200, mockapi.UploadDuplicateCode, "another license", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newUploadServer(t)
			if got := upload(t, testEvent, fileReq(hexSum(licenseFile)), filePart(licenseFile)).do(t, srv); got.Code != protocol.CBCSuccess {
				t.Fatalf("first upload: %s", got.Raw)
			}
			first, _ := srv.LicenseEvent(testEvent)
			if err := srv.AddLicenseEvent(mockapi.LicenseEvent{EventID: testEvent, InstanceID: "inst-1"}); err != nil {
				t.Fatal(err)
			}
			got := tt.again.do(t, srv)
			if got.Status != tt.status || got.Code != tt.code || !strings.Contains(got.Msg, tt.msg) {
				t.Errorf("second upload: %d %s, want %d %s saying %q", got.Status, got.Raw, tt.status, tt.code, tt.msg)
			}
			ups := srv.LicenseUploads()
			if len(ups) != 2 || !ups[0].Accepted || ups[1].Accepted || !ups[1].Duplicate || ups[1].Code != tt.code ||
				(ups[1].SHA256 == ups[0].SHA256) != tt.sameHash {
				t.Errorf("uploads %+v, want one accepted and one duplicate", ups)
			}
			if ev, _ := srv.LicenseEvent(testEvent); ev != first || !ev.Uploaded || ev.SHA256 != hexSum(licenseFile) {
				t.Errorf("event %+v, want it as the first upload left it: %+v", ev, first)
			}
			if evs := srv.LicenseEvents(); len(evs) != 1 {
				t.Errorf("events %+v, want one", evs)
			}
		})
	}
}

// TestUploadFailures: the next n uploads fail with the code asked (by
// its table's status), are recorded as faults, and the one after is
// accepted.
func TestUploadFailures(t *testing.T) {
	tests := []struct {
		name, code string
		wantCode   string
		status     int
	}{
		{name: "default", wantCode: "CBC.0999", status: 500},
		{name: "inner error", code: protocol.OnlineLicenseInnerError, wantCode: "91381036", status: 200},
		{name: "illegal operation", code: protocol.CBCIllegalOperation, wantCode: "CBC.0150", status: 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newUploadServer(t)
			srv.SetUploadFailures(3, tt.code)
			c := upload(t, testEvent, fileReq(hexSum(licenseFile)), filePart(licenseFile))
			for i := range 3 {
				if got := c.do(t, srv); got.Status != tt.status || got.Code != tt.wantCode {
					t.Errorf("upload %d: %d %s, want %d %s", i+1, got.Status, got.Raw, tt.status, tt.wantCode)
				}
			}
			if got := c.do(t, srv); got.Code != protocol.CBCSuccess {
				t.Errorf("upload 4: %s", got.Raw)
			}
			ups := srv.LicenseUploads()
			if len(ups) != 4 {
				t.Fatalf("%d uploads recorded, want 4", len(ups))
			}
			for i, u := range ups[:3] {
				if !u.Fault || u.Accepted || u.Code != tt.wantCode || u.EventID != testEvent {
					t.Errorf("upload %d recorded %+v", i+1, u)
				}
			}
			if !ups[3].Accepted || ups[3].Fault {
				t.Errorf("upload 4 recorded %+v", ups[3])
			}
		})
	}
}

// TestUploadLicenseFault: the license endpoints' fault reaches the upload
// path with the upload's codes.
func TestUploadLicenseFault(t *testing.T) {
	srv := newUploadServer(t)
	c := upload(t, testEvent, fileReq(hexSum(licenseFile)), filePart(licenseFile))
	for _, tt := range []struct {
		f      mockapi.Fault
		status int
		code   string
	}{
		{mockapi.Fault{Status: 503, Count: 1}, 503, "CBC.0999"},
		{mockapi.Fault{Status: 400, Count: 1}, 400, "CBC.0101"},
		{mockapi.Fault{Status: 200, Code: protocol.OnlineLicenseApplicationDenied, Count: 1}, 200, "91381038"},
	} {
		srv.SetLicenseFault(tt.f)
		if got := c.do(t, srv); got.Status != tt.status || got.Code != tt.code {
			t.Errorf("fault %+v: %d %s, want %d %s", tt.f, got.Status, got.Raw, tt.status, tt.code)
		}
	}
	if got := c.do(t, srv); got.Code != protocol.CBCSuccess {
		t.Errorf("after the faults: %s", got.Raw)
	}
}
