// Package jsonreq reads the JSON request bodies of koobridge's own small
// APIs (the license service, the usage API): one Content-Type,
// application/json, and a bounded body, with the HTTP status and a
// message naming the problem when the request is refused.
package jsonreq

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
)

// Read checks r's Content-Type and reads its body, at most max bytes.
// status is 0 when the body was read; otherwise it is the status to
// refuse the request with (400, 413 or 415) and problem says why.
func Read(w http.ResponseWriter, r *http.Request, max int64) (body []byte, status int, problem string) {
	if p := CheckContentType(r.Header.Values("Content-Type")); p != "" {
		return nil, http.StatusUnsupportedMediaType, p
	}
	tooLarge := fmt.Sprintf("the body is larger than %d bytes", max)
	if r.ContentLength > max {
		return nil, http.StatusRequestEntityTooLarge, tooLarge
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, http.StatusRequestEntityTooLarge, tooLarge
		}
		return nil, http.StatusBadRequest, "the body could not be read"
	}
	return body, 0, ""
}

// CheckContentType accepts exactly one Content-Type, application/json,
// with no parameter but charset=utf-8; it returns the problem otherwise.
func CheckContentType(values []string) string {
	const want = "the body must be JSON, sent with Content-Type application/json"
	if len(values) != 1 {
		if len(values) == 0 {
			return want + " (none was given)"
		}
		return want + " (Content-Type was given more than once)"
	}
	mt, params, err := mime.ParseMediaType(values[0])
	if err != nil || mt != "application/json" {
		return want
	}
	for k, v := range params {
		if k != "charset" || !strings.EqualFold(v, "utf-8") {
			return want + " (the only parameter accepted is charset=utf-8)"
		}
	}
	return ""
}
