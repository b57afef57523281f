package licensetoken

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/koobridge/koobridge/internal/license"
	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/protocol"
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

// ErrInvalidToken is the error of Verify for a token that is malformed,
// signed by a key not published, or whose signature does not verify.
var ErrInvalidToken = errors.New("licensetoken: invalid token")

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

// Verify checks a token signed by any replica's Ring on the same
// database: its header (alg EdDSA, a kid, nothing else understood), that
// its key is published now, and its signature; it returns its claims.
// A kid of a generation the Ring does not know yet makes it read the
// keys again, so a key made by Rotate on another replica verifies at once.
// Verify does not judge the claims: the caller compares status and
// validUntil with its needs. Errors wrap ErrInvalidToken, except when the
// keys cannot be read.
func (r *Ring) Verify(ctx context.Context, token string) (Claims, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return Claims{}, fmt.Errorf("%w: not a compact JWS (want three dot-separated parts, got %d)", ErrInvalidToken, len(parts))
	}
	raw := make([][]byte, 3)
	for i, p := range parts {
		b, err := base64.RawURLEncoding.DecodeString(p)
		if err != nil {
			return Claims{}, fmt.Errorf("%w: part %d is not base64url without padding", ErrInvalidToken, i+1)
		}
		raw[i] = b
	}
	h, err := protocol.DecodeStrictStrings(raw[0], "token header", "alg", "typ", "kid")
	if err != nil {
		return Claims{}, fmt.Errorf("%w: header: %v", ErrInvalidToken, err)
	}
	if h["alg"] != alg {
		return Claims{}, fmt.Errorf("%w: alg %q, want %s", ErrInvalidToken, h["alg"], alg)
	}
	pub, err := r.publicKey(ctx, h["kid"])
	if err != nil {
		return Claims{}, err
	}
	if !ed25519.Verify(pub, []byte(parts[0]+"."+parts[1]), raw[2]) {
		return Claims{}, fmt.Errorf("%w: the signature does not verify", ErrInvalidToken)
	}
	var c Claims
	if err := json.Unmarshal(raw[1], &c); err != nil {
		return Claims{}, fmt.Errorf("%w: claims: %v", ErrInvalidToken, err)
	}
	return c, nil
}

// maxKid bounds the kids Verify looks up (ours are about 20 bytes).
const maxKid = 64

// publicKey returns the published key kid. A kid of a generation newer
// than the newest this Ring knows (made by Rotate on another replica)
// makes it read the keys again; other unknown kids do not, so made-up
// kids cannot make every Verify read the database.
func (r *Ring) publicKey(ctx context.Context, kid string) (ed25519.PublicKey, error) {
	if kid == "" {
		return nil, fmt.Errorf("%w: the header has no kid", ErrInvalidToken)
	}
	if len(kid) > maxKid {
		return nil, fmt.Errorf("%w: the kid is longer than %d bytes", ErrInvalidToken, maxKid)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	keys, err := r.keys(ctx, false)
	if err != nil {
		return nil, fmt.Errorf("licensetoken: verify: %w", err)
	}
	if gen, ok := kidGeneration(kid); ok && gen > keys[0].Generation {
		if keys, err = r.keys(ctx, true); err != nil {
			return nil, fmt.Errorf("licensetoken: verify: %w", err)
		}
	}
	for _, k := range published(keys, r.cfg.Now(), r.cfg.Retention) {
		if k.ID == kid {
			return decodePublic(k)
		}
	}
	return nil, fmt.Errorf("%w: kid %q is not a published key", ErrInvalidToken, kid)
}

// kidGeneration reads the generation from a kid made by keyID.
func kidGeneration(kid string) (int64, bool) {
	rest, ok := strings.CutPrefix(kid, "g")
	if !ok {
		return 0, false
	}
	digits, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	gen, err := strconv.ParseInt(digits, 10, 64)
	return gen, err == nil && gen > 0
}
