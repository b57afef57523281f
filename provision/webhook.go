package provision

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/koobridge/koobridge/internal/mask"
	"github.com/koobridge/koobridge/protocol"
)

// Headers of a webhook delivery.
const (
	// HeaderEvent carries the event type, e.g. "instance.created".
	HeaderEvent = "Koobridge-Event"
	// HeaderDelivery carries the event id: the same on every retry of one
	// event, so the vendor can drop repeats.
	HeaderDelivery = "Koobridge-Delivery"
	// HeaderIdempotencyKey repeats the event id under the name many HTTP
	// frameworks already understand.
	HeaderIdempotencyKey = "Idempotency-Key"
	// HeaderSignature is "t=<unix seconds>,v1=<hex HMAC-SHA256>"; see
	// SignWebhook.
	HeaderSignature = "Koobridge-Signature"
)

// WebhookTolerance is how far a delivery's signature time may be from the
// vendor's clock before VerifyWebhook rejects it as a replay.
const WebhookTolerance = 5 * time.Minute

// DefaultWebhookTimeout bounds one delivery when WebhookConfig.Timeout is 0.
const DefaultWebhookTimeout = 10 * time.Second

// maxReplyBytes limits what is read of a vendor's reply (webhook body or
// exec stdout).
const maxReplyBytes = 1 << 20

// maxErrorSnippet is how much of a reply an error message quotes.
const maxErrorSnippet = 200

// WebhookConfig configures a Webhook.
type WebhookConfig struct {
	// URL receives the POSTs (http or https; https in production).
	URL string
	// Secret is the shared HMAC key for Koobridge-Signature. Required.
	Secret string
	// Timeout bounds one delivery, reply included (default 10s).
	Timeout time.Duration
	// Client sends the requests. The default verifies TLS certificates and
	// does not follow redirects (a 3xx is reported as a retryable error).
	Client *http.Client
}

// Webhook delivers events to the vendor as signed HTTP POSTs of the Event
// JSON. Every delivery is signed anew with the current time; the event id
// stays the same across retries.
type Webhook struct {
	url     string
	target  string // the URL without user info or query, for error messages
	secret  string
	timeout time.Duration
	client  *http.Client
}

// NewWebhook checks cfg and returns a Webhook.
func NewWebhook(cfg WebhookConfig) (*Webhook, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("provision: webhook URL must be an absolute http or https URL")
	}
	if cfg.Secret == "" {
		return nil, errors.New("provision: webhook secret is required")
	}
	if cfg.Timeout < 0 {
		return nil, errors.New("provision: webhook timeout must not be negative")
	}
	w := &Webhook{
		url:     cfg.URL,
		target:  (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String(),
		secret:  cfg.Secret,
		timeout: cfg.Timeout,
		client:  cfg.Client,
	}
	if w.timeout == 0 {
		w.timeout = DefaultWebhookTimeout
	}
	if w.client == nil {
		w.client = &http.Client{
			Transport: http.DefaultTransport.(*http.Transport).Clone(),
			// A redirected POST turns into a GET in net/http; better to
			// tell the operator the URL is wrong.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return w, nil
}

// Provision POSTs ev once and reads the vendor's Result from the reply.
//
// A 2xx reply succeeds; its body is a JSON Result (an empty body is fine
// except for instance.created, which needs appInfo.frontEndUrl unless the
// event says AppInfoOptional, and license.requested, which needs a
// license; for change.check a missing "allowed" means allowed). A reply to
// instance.created, 2xx or 4xx, whose body is
// {"resultCode":"000106","resultMsg":"…"} with one of the business codes
// refuses the purchase: Provision returns the *Refusal. A 4xx other than
// 408, 425 and 429 means the vendor rejected the event and returns a
// Permanent error, as does a 2xx reply that cannot be used (not JSON,
// over 1 MiB, no app info for instance.created, no usable license for
// license.requested). Everything else (408,
// 425, 429, 5xx, 3xx, timeouts, connection failures) is a retryable error.
func (w *Webhook) Provision(ctx context.Context, ev Event) (Result, error) {
	if ev.ID == "" || ev.Type == "" {
		return Result{}, Permanent(fmt.Errorf("provision: webhook %s: event without id or type", w.target))
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return Result{}, Permanent(fmt.Errorf("provision: webhook: encode event: %w", err))
	}
	fail := func(format string, args ...any) error {
		msg := fmt.Sprintf(format, args...)
		return fmt.Errorf("provision: webhook %s: %s %s: %s", w.target, ev.Type, ev.ID, w.redact(ev, msg))
	}

	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return Result{}, Permanent(fail("build request: invalid URL or method"))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "koobridge-webhook/1")
	req.Header.Set(HeaderEvent, string(ev.Type))
	req.Header.Set(HeaderDelivery, ev.ID)
	req.Header.Set(HeaderIdempotencyKey, ev.ID)
	req.Header.Set(HeaderSignature, SignWebhook(w.secret, time.Now(), body))

	resp, err := w.client.Do(req)
	if err != nil {
		// url.Error repeats the full URL, which may hold a token; keep
		// only the cause.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		switch {
		case parent.Err() != nil:
			return Result{}, fail("deliver: %v", parent.Err())
		case ctx.Err() != nil:
			return Result{}, fail("no reply within %s", w.timeout)
		}
		return Result{}, fail("deliver: %v", err)
	}
	defer resp.Body.Close()
	reply, readErr := io.ReadAll(io.LimitReader(resp.Body, maxReplyBytes+1))
	quote := func() string { return snippet([]byte(w.redact(ev, string(reply)))) }

	switch code := resp.StatusCode; {
	case code >= 200 && code <= 299:
		if readErr != nil {
			return Result{}, fail("HTTP %d: read reply: %v", code, readErr)
		}
		if len(reply) > maxReplyBytes {
			return Result{}, Permanent(fail("HTTP %d: reply body exceeds %d bytes", code, maxReplyBytes))
		}
		res, err := decodeResult(ev, reply)
		if err != nil {
			return Result{}, asRefusal(err, func(err error) error { return Permanent(fail("HTTP %d: %v", code, err)) })
		}
		return res, nil
	case code >= 400 && code <= 499 && code != http.StatusRequestTimeout &&
		code != http.StatusTooEarly && code != http.StatusTooManyRequests:
		// A refusal may come with a 4xx status too (409 Conflict, say).
		if _, err := decodeResult(ev, reply); err != nil && readErr == nil && len(reply) <= maxReplyBytes {
			var r *Refusal
			if errors.As(err, &r) {
				return Result{}, r
			}
		}
		return Result{}, Permanent(fail("vendor rejected the event: HTTP %d: %s", code, quote()))
	default:
		return Result{}, fail("HTTP %d: %s", code, quote())
	}
}

// redact removes the secret and ev's device fingerprint from text quoted
// from elsewhere (a vendor that echoes headers or the event back, say).
func (w *Webhook) redact(ev Event, s string) string {
	return redactDevice(ev, strings.ReplaceAll(s, w.secret, "[redacted]"))
}

// minDevicePart is the shortest part of a device fingerprint redactDevice
// looks for on its own: shorter ones are too common to say anything.
const minDevicePart = 4

// redactDevice removes the device fingerprint of a license.requested event
// from text quoted from the vendor, since an error goes to the log, the
// job and the admin API and a fingerprint is personal data: the whole of
// it, as sent and as JSON escapes it (an echo of the event), then each of
// its parts (a MAC, a disk id: §D.3 joins them with | and commas) of at
// least minDevicePart characters, longest first.
func redactDevice(ev Event, s string) string {
	if ev.LicenseRequest == nil || strings.TrimSpace(ev.LicenseRequest.DeviceFingerprint) == "" {
		return s
	}
	fp := ev.LicenseRequest.DeviceFingerprint
	forms := []string{fp}
	if b, err := json.Marshal(fp); err == nil {
		forms = append(forms, string(b[1:len(b)-1]))
	}
	parts := strings.FieldsFunc(fp, func(r rune) bool { return r == '|' || r == ',' })
	slices.SortFunc(parts, func(a, b string) int { return len(b) - len(a) })
	for _, p := range parts {
		if p = strings.TrimSpace(p); len(p) >= minDevicePart {
			forms = append(forms, p)
		}
	}
	for _, f := range forms {
		if f != "" {
			s = strings.ReplaceAll(s, f, "[device]")
		}
	}
	return s
}

// SignWebhook returns the Koobridge-Signature header value for body sent
// at t: "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>".
func SignWebhook(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + webhookMAC(secret, ts, body)
}

func webhookMAC(secret, ts string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// VerifyWebhook is the vendor's check of a delivery, for vendors written
// in Go: header is the Koobridge-Signature value, body the raw request
// body. It fails if the header is malformed, its time is more than
// WebhookTolerance away from now, or no v1 signature matches (several v1
// values are allowed, compared in constant time). Dropping repeated event
// ids is left to the vendor's own storage.
func VerifyWebhook(secret, header string, body []byte, now time.Time) error {
	var ts string
	var sigs []string
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		switch k {
		case "t":
			ts = v
		case "v1":
			sigs = append(sigs, v)
		}
	}
	sec, err := strconv.ParseUint(ts, 10, 63)
	if err != nil {
		return errors.New("provision: webhook signature: missing or bad t")
	}
	if len(sigs) == 0 {
		return errors.New("provision: webhook signature: missing v1")
	}
	if d := now.Sub(time.Unix(int64(sec), 0)); d > WebhookTolerance || d < -WebhookTolerance {
		return errors.New("provision: webhook signature: timestamp outside the tolerance")
	}
	want, _ := hex.DecodeString(webhookMAC(secret, ts, body))
	for _, s := range sigs {
		got, err := hex.DecodeString(s)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return errors.New("provision: webhook signature: no signature matches")
}

// decodeResult reads a vendor's reply (webhook body or exec stdout) to ev.
// A reply to instance.created whose resultCode is a business code
// (000100–000107 but 000104) is a refusal: the error is the *Refusal
// itself. Any other resultCode but 000000 is an unusable reply, and so is
// a reply to license.requested without a license that passes
// LicenseFile.Check.
func decodeResult(ev Event, data []byte) (Result, error) {
	typ := ev.Type
	var r struct {
		AppInfo    *AppInfo     `json:"appInfo"`
		Allowed    *bool        `json:"allowed"`
		Reason     string       `json:"reason"`
		ResultCode *string      `json:"resultCode"`
		ResultMsg  string       `json:"resultMsg"`
		License    *LicenseFile `json:"license"`
	}
	if data = bytes.TrimSpace(data); len(data) > 0 {
		if err := json.Unmarshal(data, &r); err != nil {
			return Result{}, fmt.Errorf("reply is not a JSON result object: %v", err)
		}
	}
	if r.ResultCode != nil && *r.ResultCode != "000000" {
		code := *r.ResultCode
		switch {
		case typ == EventCreated && IsRefusalCode(code):
			return Result{}, Refuse(code, r.ResultMsg)
		case typ == EventCreated:
			return Result{}, fmt.Errorf("reply has resultCode %q: a refusal must use 000100–000103 or 000105–000107", printable([]byte(code)))
		default:
			return Result{}, fmt.Errorf("reply has resultCode %q: only instance.created may be refused", printable([]byte(code)))
		}
	}
	res := Result{AppInfo: r.AppInfo, Reason: r.Reason}
	if typ == EventChangeCheck {
		// Vendors that do not care about changes allow them by saying nothing.
		res.Allowed = r.Allowed == nil || *r.Allowed
	} else {
		res.Allowed = r.Allowed != nil && *r.Allowed
	}
	if a := res.AppInfo; a != nil && *a == (AppInfo{}) {
		res.AppInfo = nil // "appInfo": {} says nothing
	}
	if a := res.AppInfo; a != nil {
		if strings.TrimSpace(a.FrontEndURL) == "" {
			return Result{}, errors.New("reply has appInfo without frontEndUrl")
		}
		// KooGallery's AppInfo limits, so a bad reply fails here, naming
		// the field, rather than in a later queryInstance.
		wire := protocol.AppInfo{FrontEndURL: a.FrontEndURL, AdminURL: a.AdminURL, UserName: a.UserName, Password: a.Password, Memo: a.Memo}
		if err := wire.Validate(); err != nil {
			return Result{}, fmt.Errorf("reply: %w", err)
		}
	}
	if typ == EventCreated && res.AppInfo == nil && !ev.AppInfoOptional {
		return Result{}, errors.New("reply to instance.created has no appInfo.frontEndUrl")
	}
	if typ == EventLicenseRequested {
		if r.License == nil {
			return Result{}, errors.New("reply to license.requested has no license")
		}
		if err := r.License.Check(); err != nil {
			return Result{}, fmt.Errorf("reply: %w", err)
		}
		res.License = r.License
	}
	return res, nil
}

// MaxLicenseCharacters is the longest license string KooGallery takes
// (the upload's characters, license-openapi.md §C.7), in characters.
const MaxLicenseCharacters = 1024

// maxLicenseFileName bounds a license file's name; the upload's file_name
// has no documented limit (UNCONFIRMED), 255 is what file systems take.
const maxLicenseFileName = 255

// Check reports whether f is a license koobridge can hand on: exactly one
// of Characters (at most MaxLicenseCharacters characters of valid UTF-8,
// no NUL, not only white space) or a file (FileName and non-empty Content). A file name is a
// plain name: valid UTF-8, at most 255 bytes, without path separators or
// control characters, not "." or "..". The error names the field and
// never quotes the license.
func (f *LicenseFile) Check() error {
	switch hasChars, hasFile := f.Characters != "", f.FileName != "" || len(f.Content) > 0; {
	case hasChars && hasFile:
		return errors.New("license: give either characters or fileName with content, not both")
	case !hasChars && !hasFile:
		return errors.New("license: empty: give characters, or fileName with content")
	case hasChars:
		if strings.TrimSpace(f.Characters) == "" {
			return errors.New("license.characters: blank (only white space)")
		}
		if !utf8.ValidString(f.Characters) || strings.ContainsRune(f.Characters, 0) {
			return errors.New("license.characters: not valid UTF-8 text (or holds NUL)")
		}
		if n := utf8.RuneCountInString(f.Characters); n > MaxLicenseCharacters {
			return fmt.Errorf("license.characters: %d characters, at most %d", n, MaxLicenseCharacters)
		}
		return nil
	}
	switch name := f.FileName; {
	case name == "":
		return errors.New("license.fileName: missing (a license file needs a name)")
	case len(f.Content) == 0:
		return errors.New("license.content: empty")
	case len(name) > maxLicenseFileName:
		return fmt.Errorf("license.fileName: longer than %d bytes", maxLicenseFileName)
	case !utf8.ValidString(name), name == ".", name == "..",
		strings.ContainsAny(name, `/\`), strings.ContainsFunc(name, unicode.IsControl):
		return errors.New("license.fileName: not a plain file name (path separators, control characters, . or ..)")
	}
	return nil
}

// asRefusal returns err when it is a *Refusal (passed on as it is, since
// its message is the vendor's answer to the buyer), and otherwise wrap(err).
func asRefusal(err error, wrap func(error) error) error {
	var r *Refusal
	if errors.As(err, &r) {
		return r
	}
	return wrap(err)
}

// snippet quotes at most maxErrorSnippet bytes of a reply for an error
// message.
func snippet(b []byte) string {
	truncated := len(b) > maxErrorSnippet
	if truncated {
		b = b[:maxErrorSnippet]
	}
	s := printable(b)
	if s == "" {
		return "(empty body)"
	}
	if truncated {
		s += "…"
	}
	return s
}

// printable turns bytes from elsewhere (a vendor's reply, a command's
// standard error) into one line of valid UTF-8 for an error message:
// invalid sequences dropped, control characters as spaces, and personal
// data and secrets masked (package mask), since the message goes to the
// log, the job and the admin API, and a vendor may echo an event back
// (order.notified carries the buyer's phone and e-mail in clear).
func printable(b []byte) string {
	s := strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(string(b), ""))
	return strings.TrimSpace(mask.Text(s))
}
