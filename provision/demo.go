package provision

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// DefaultDemoURL is the base URL of the demo provisioner's made-up product.
// The .invalid top-level domain never resolves (RFC 2606), so nobody
// mistakes a demo instance for a real one.
const DefaultDemoURL = "https://demo.koobridge.invalid"

// Demo is the built-in provisioner: it provisions nothing and invents app
// info for each instance, a front-end URL and an admin account with a
// strong random password. koobridge uses it for KooGallery's debug calls
// and dial tests, and `koobridge serve --provisioner demo` for a trial run.
type Demo struct {
	baseURL string
}

// NewDemo returns a demo provisioner whose URLs start with baseURL
// (DefaultDemoURL when empty).
func NewDemo(baseURL string) *Demo {
	if baseURL == "" {
		baseURL = DefaultDemoURL
	}
	return &Demo{baseURL: strings.TrimRight(baseURL, "/")}
}

// Provision answers instance.created with new app info (none when the
// event says AppInfoOptional: an online-license product has no front end),
// change.check with Allowed and license.requested with a demo license
// string (see demoLicense); every other event succeeds with an empty
// Result. The password is random on every call: idempotency is the
// caller's job (it stores the first answer and never asks again).
func (d *Demo) Provision(ctx context.Context, ev Event) (Result, error) {
	if err := ctx.Err(); err != nil {
		return Result{}, fmt.Errorf("provision: demo: %w", err)
	}
	switch ev.Type {
	case EventCreated:
		if ev.AppInfoOptional {
			return Result{}, nil
		}
		password, err := demoPassword()
		if err != nil {
			return Result{}, err
		}
		id := url.PathEscape(ev.Instance.ID)
		return Result{AppInfo: &AppInfo{
			FrontEndURL: d.baseURL + "/t/" + id,
			AdminURL:    d.baseURL + "/admin/" + id,
			UserName:    "admin-" + shortID(ev.Instance.ID),
			Password:    password,
			Memo:        "Demo instance 演示实例",
		}}, nil
	case EventChangeCheck:
		return Result{Allowed: true}, nil
	case EventLicenseRequested:
		if ev.LicenseRequest == nil {
			return Result{}, Permanent(errors.New("provision: demo: license.requested without licenseRequest"))
		}
		return Result{License: &LicenseFile{Characters: demoLicense(ev)}}, nil
	default:
		return Result{}, nil
	}
}

// demoLicense is the demo's license string for a license request: a line
// naming what it licenses (the instance, or the order of a license 1.0
// purchase), its validity and the device's hash (never the fingerprint
// itself), ending in a check value. It is derived from the request alone,
// so the same request always gets the same license, as KooGallery asks of a
// repeated request. It is not a real license: nothing signs it.
func demoLicense(ev Event) string {
	r := ev.LicenseRequest
	subject := "instance=" + ev.Instance.ID
	if r.Kind == "legacy" && ev.Order != nil {
		subject = "order=" + ev.Order.OrderID
	}
	when := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format(time.RFC3339)
	}
	device := "any"
	if r.DeviceFingerprint != "" {
		sum := sha256.Sum256([]byte(r.DeviceFingerprint))
		device = hex.EncodeToString(sum[:8])
	}
	line := fmt.Sprintf("KOOBRIDGE-DEMO-LICENSE kind=%s %s event=%s from=%s until=%s device=%s",
		r.Kind, subject, r.EventID, when(r.EffectiveTime), when(r.ExpireTime), device)
	sum := sha256.Sum256([]byte(line))
	line += " check=" + hex.EncodeToString(sum[:8])
	if utf8.RuneCountInString(line) > MaxLicenseCharacters { // ids are at most 64 characters: never
		line = string([]rune(line)[:MaxLicenseCharacters])
	}
	return line
}

// shortID is the first 8 letters and digits of an instance id, lower case,
// so that account names stay short and typeable.
func shortID(id string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(id) {
		if r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)) {
			b.WriteRune(r)
			if b.Len() == 8 {
				break
			}
		}
	}
	if b.Len() == 0 {
		return "user"
	}
	return b.String()
}

// Password alphabet: look-alike characters (I l O 0 1) are left out, and
// the symbols are ones that need no quoting in URLs' user info, JSON or a
// shell's double quotes.
const (
	pwUpper  = "ABCDEFGHJKLMNPQRSTUVWXYZ"
	pwLower  = "abcdefghijkmnpqrstuvwxyz"
	pwDigit  = "23456789"
	pwSymbol = "!#%*+-=@^_~"
	pwAll    = pwUpper + pwLower + pwDigit + pwSymbol

	// demoPasswordLen characters of a 67-character alphabet: about 145 bits.
	demoPasswordLen = 24
)

// demoPassword draws demoPasswordLen characters uniformly from pwAll with
// crypto/rand and starts over until every class is present, which keeps
// the result uniform over the passwords that satisfy the rule.
func demoPassword() (string, error) {
	size := big.NewInt(int64(len(pwAll)))
	buf := make([]byte, demoPasswordLen)
	for {
		for i := range buf {
			n, err := rand.Int(rand.Reader, size)
			if err != nil {
				return "", fmt.Errorf("provision: demo password: %w", err)
			}
			buf[i] = pwAll[n.Int64()]
		}
		pw := string(buf)
		if strings.ContainsAny(pw, pwUpper) && strings.ContainsAny(pw, pwLower) &&
			strings.ContainsAny(pw, pwDigit) && strings.ContainsAny(pw, pwSymbol) {
			return pw, nil
		}
	}
}
