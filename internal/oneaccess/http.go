package oneaccess

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Endpoint names, as errors give them.
const (
	tokenEndpoint       = "token endpoint"
	userInfoEndpoint    = "userinfo endpoint"
	casValidateEndpoint = "CAS serviceValidate endpoint"
)

// answer is an HTTP answer read whole.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// send sends req to the named endpoint and reads its answer, at most
// maxResponseBytes. Errors name the endpoint and its URL without query
// (the CAS ticket travels in it) and never wrap a *url.Error, whose
// text would repeat the URL.
func (c *Client) send(req *http.Request, name string) (answer, error) {
	where := name + " " + stripQuery(req.URL)
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return answer{}, fmt.Errorf("oneaccess: %s: %w", where, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return answer{}, fmt.Errorf("oneaccess: %s: reading the answer: %w", where, err)
	}
	if len(body) > maxResponseBytes {
		return answer{}, fmt.Errorf("oneaccess: %s: answer larger than %d bytes", where, maxResponseBytes)
	}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return answer{}, fmt.Errorf("oneaccess: %s: HTTP %d redirect, not followed", where, resp.StatusCode)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: body}, nil
}

// stripQuery is u without query and fragment, for error texts.
func stripQuery(u *url.URL) string {
	v := *u
	v.RawQuery, v.ForceQuery, v.Fragment, v.RawFragment = "", false, "", ""
	return v.String()
}

// endpointError is a plain error about the named endpoint's answer.
func (c *Client) endpointError(u *url.URL, name, format string, args ...any) error {
	return fmt.Errorf("oneaccess: %s %s: %s", name, stripQuery(u), fmt.Sprintf(format, args...))
}

// decodeJSON decodes body, which must be exactly one JSON object, into v.
func decodeJSON(body []byte, v any) error {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return errors.New("answer is not a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	if err := dec.Decode(v); err != nil {
		// The decoder's text names a type or a single character, never a
		// value of the body.
		return fmt.Errorf("answer is not the documented JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("answer has data after its JSON object")
	}
	return nil
}

// maxTextBytes bounds a Code or Description taken from an answer.
const maxTextBytes = 256

// clean makes text from the identity center fit for an error: the given
// credentials (and their URL-encoded forms) replaced by "[redacted]",
// control characters by spaces, at most maxTextBytes bytes.
func clean(s string, credentials ...string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	for _, cr := range credentials {
		if cr == "" {
			continue
		}
		for _, form := range []string{cr, url.QueryEscape(cr), url.PathEscape(cr)} {
			s = strings.ReplaceAll(s, form, "[redacted]")
		}
	}
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if len(s) > maxTextBytes {
		cut := maxTextBytes
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

// newRequest builds a request with ctx, the Accept header and, for a
// body, its content type.
func newRequest(ctx context.Context, method string, u string, body io.Reader, contentType string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) { // its text would repeat the URL
			err = ue.Err
		}
		return nil, fmt.Errorf("oneaccess: building the request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return req, nil
}
