package openapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync/atomic"
	"unicode"

	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
)

// Client calls the KooGallery Open API. It is safe for concurrent use.
type Client struct {
	cfg      Config
	base     *url.URL
	fallback *url.URL
}

// param is one query parameter; a slice keeps the order we write them in.
type param struct{ name, value string }

// answer is what the API said: the HTTP status and the body, read whole.
type answer struct {
	status int
	body   []byte
}

// send signs and sends one request to the base URL. When the base host
// cannot be reached at all (no connection was made: DNS, connect or TLS
// failure) and a fallback is configured, it tries the fallback once.
func (c *Client) send(ctx context.Context, method, path string, query []param, body []byte) (answer, error) {
	return c.sendAs(ctx, jsonContentType, method, path, query, body)
}

// sendAs is send with a body of the given Content-Type.
func (c *Client) sendAs(ctx context.Context, contentType, method, path string, query []param, body []byte) (answer, error) {
	return c.sendWith(ctx, nil, contentType, method, path, query, body)
}

// headerFunc sets a call's own headers on a request before it is
// APIG-signed (they are not among the headers the APIG signature covers).
type headerFunc func(http.Header) error

// sendWith is sendAs with extra headers. extra (nil for none) is called
// once per try, so the fallback try carries fresh values too: a usage
// push's ts and nonce must never be reused.
func (c *Client) sendWith(ctx context.Context, extra headerFunc, contentType, method, path string, query []param, body []byte) (answer, error) {
	a, connected, err := c.sendTo(ctx, c.base, extra, contentType, method, path, query, body)
	if err != nil && !connected && c.fallback != nil && ctx.Err() == nil {
		var ferr error
		a, _, ferr = c.sendTo(ctx, c.fallback, extra, contentType, method, path, query, body)
		if ferr != nil {
			return answer{}, fmt.Errorf("%w (after %w)", ferr, err)
		}
		return a, nil
	}
	return a, err
}

// sendTo sends one signed request to base. connected reports whether a
// connection to the host was obtained, which tells an unreachable host
// from one that failed later.
func (c *Client) sendTo(ctx context.Context, base *url.URL, extra headerFunc, contentType, method, path string, query []param, body []byte) (a answer, connected bool, err error) {
	u := *base
	u.Path = base.Path + path
	u.RawQuery = encodeQuery(query)
	host := u.Host

	var got atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(httptrace.GotConnInfo) { got.Store(true) },
	})
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return answer{}, false, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "koobridge")
	if contentType != jsonContentType {
		// The signer would mark a non-JSON body UNSIGNED-PAYLOAD, as the
		// official SDK does; whether the gateway accepts that for a
		// multipart upload is UNCONFIRMED (license-openapi.md §C.7). The
		// real hash signs the exact bytes sent and reads the same to a
		// gateway that hashes the body itself.
		req.Header.Set(sign.APIGContentSHA256Header, hexSHA256(body))
	}
	if extra != nil {
		if err := extra(req.Header); err != nil {
			return answer{}, false, fmt.Errorf("set headers: %w", err)
		}
	}
	signer := sign.APIGSigner{AK: c.cfg.AK, SK: c.cfg.SK}
	if err := signer.SignHeaders(req, body, c.cfg.Now(), []string{"host", "content-type"}); err != nil {
		return answer{}, false, fmt.Errorf("sign request: %w", err)
	}

	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return answer{}, got.Load(), fmt.Errorf("%w: %s %s: %w", ErrUnavailable, method, host, unwrapURLError(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return answer{}, true, fmt.Errorf("%w: %s %s: read answer: %w", ErrUnavailable, method, host, err)
	}
	if len(data) > maxResponseBytes {
		return answer{}, true, &Error{HTTPStatus: resp.StatusCode, Message: "answer larger than 4 MiB"}
	}
	return answer{status: resp.StatusCode, body: data}, true, nil
}

// jsonContentType is the Content-Type of the JSON requests.
const jsonContentType = "application/json;charset=UTF-8"

// hexSHA256 returns the lower-case hex SHA-256 of b.
func hexSHA256(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// unwrapURLError drops the *url.Error layer, whose text repeats the whole
// URL, and keeps the cause.
func unwrapURLError(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

// encodeQuery writes name=value pairs RFC 3986-escaped (space as %20, not
// "+", so the gateway and our canonical query agree on every byte).
func encodeQuery(query []param) string {
	var b strings.Builder
	for i, p := range query {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(escape(p.name))
		b.WriteByte('=')
		b.WriteString(escape(p.value))
	}
	return b.String()
}

func escape(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

// answerError turns a non-success answer into an *Error, wrapped with
// ErrUnavailable when waiting may help: server errors, timeouts and
// throttling (HTTP 5xx, 408, 429, or an internal-error or rate-limit
// code). Authentication failures and other 4xx answers are final.
func answerError(status int, code, msg string) error {
	e := &Error{HTTPStatus: status, Code: code, Message: msg}
	if retryableAnswer(status, code) {
		return fmt.Errorf("%w: %w", ErrUnavailable, e)
	}
	return e
}

func retryableAnswer(status int, code string) bool {
	switch code {
	case "MKT.0999", "CBC.0999", "CBC.0250", "APIG.0308",
		protocol.LicenseInternalError, protocol.OnlineLicenseInnerError:
		return true
	}
	return status >= 500 || status == http.StatusRequestTimeout || status == http.StatusTooManyRequests
}

// snippet returns the start of an undecodable body as printable text, for
// an error message.
func snippet(body []byte) string {
	const max = 120
	s := string(body)
	if len(s) > max {
		s = s[:max] + "…"
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return ' '
	}, s)
}
