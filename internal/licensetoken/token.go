package licensetoken

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/koobridge/koobridge/internal/license"
	"github.com/koobridge/koobridge/internal/store"
)

// alg is the JWS algorithm of the tokens (RFC 8037 §3.1).
const alg = "EdDSA"

// Claims are the claims of a license token.
type Claims struct {
	License     string `json:"license"`
	Fingerprint string `json:"fingerprint"` // the device fingerprint as the client sent it
	Status      string `json:"status"`      // "active", "frozen" or "released"
	// Expires is the license's expiry, RFC 3339 in UTC; absent when
	// KooGallery gave none.
	Expires string `json:"expires,omitempty"`
	// ValidUntil is the end of the offline grace, RFC 3339 in UTC: the
	// client may trust the token without asking again until then.
	ValidUntil string `json:"validUntil"`
	IssuedAt   int64  `json:"iat"` // NumericDate: seconds since 1970 UTC
}

// Sign returns the license token of v, signed with the key that signs now:
// the newest past its staging (the first key, made on first use, at once).
func (r *Ring) Sign(ctx context.Context, v license.Verdict) (string, error) {
	switch {
	case v.License == "":
		return "", errors.New("licensetoken: sign: the verdict has no license code")
	case !validStatus(v.Status):
		return "", fmt.Errorf("licensetoken: sign %s: status %q: want active, frozen or released", v.License, v.Status)
	case v.ValidUntil.IsZero():
		return "", fmt.Errorf("licensetoken: sign %s: the verdict has no validUntil", v.License)
	}
	c := Claims{
		License: v.License, Fingerprint: v.Fingerprint, Status: v.Status,
		ValidUntil: formatTime(v.ValidUntil), IssuedAt: r.cfg.Now().Unix(),
	}
	if !v.Expires.IsZero() {
		c.Expires = formatTime(v.Expires)
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("licensetoken: sign %s: %w", v.License, err)
	}
	r.mu.Lock()
	k, err := r.current(ctx)
	r.mu.Unlock()
	if err != nil {
		return "", fmt.Errorf("licensetoken: sign %s: %w", v.License, err)
	}
	header, err := json.Marshal(struct {
		Alg string `json:"alg"`
		Typ string `json:"typ"`
		Kid string `json:"kid"`
	}{alg, "JWT", k.id})
	if err != nil {
		return "", fmt.Errorf("licensetoken: sign %s: %w", v.License, err)
	}
	return signCompact(k.private, header, payload), nil
}

// validStatus reports whether s is a status a token may carry.
func validStatus(s string) bool {
	switch store.LicenseStatus(s) {
	case store.LicenseActive, store.LicenseFrozen, store.LicenseReleased:
		return true
	}
	return false
}

// formatTime writes t as the tokens do: RFC 3339 in UTC, in seconds.
func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// signCompact returns the JWS compact serialization (RFC 7515 §7.1) of
// payload under header, signed with Ed25519 (RFC 8037 §3.1): the
// signature covers the ASCII of BASE64URL(header) '.' BASE64URL(payload).
func signCompact(key ed25519.PrivateKey, header, payload []byte) string {
	input := b64(header) + "." + b64(payload)
	return input + "." + b64(ed25519.Sign(key, []byte(input)))
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
