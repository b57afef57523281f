package sign

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
)

// BodySignHeader is the response header that carries the Body-Sign value.
const BodySignHeader = "Body-Sign"

// BodySignType is the only sign_type KooGallery defines.
const BodySignType = "HMAC-SHA256"

// BodySign returns the Body-Sign header value for a response body
// (saas-v1-joint-login.md §A.3, saas-v2.md §2.4), in exactly the form
// Huawei documents:
//
//	sign_type="HMAC-SHA256", signature="<base64std(HMAC(key, body))>"
//
// body must be the exact bytes written to the wire.
func BodySign(key string, body []byte) string {
	return `sign_type="` + BodySignType + `", signature="` + bodySignature(key, body) + `"`
}

func bodySignature(key string, body []byte) string {
	return base64.StdEncoding.EncodeToString(hmacSHA256([]byte(key), body))
}

// ParseBodySign splits a Body-Sign header value into its sign_type and
// signature. It is tolerant of layout: the two parameters may come in any
// order, with optional spaces around "," and "=", and with or without
// double quotes; names are matched ignoring case and unknown parameters
// are ignored. It rejects a missing sign_type or signature, a sign_type
// other than HMAC-SHA256, a repeated parameter, and a signature that is
// not the standard base64 of a 32-byte MAC.
func ParseBodySign(header string) (signType, signature string, err error) {
	var haveType, haveSig bool
	for part := range strings.SplitSeq(header, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, value, ok := strings.Cut(part, "=")
		if !ok {
			return "", "", fmt.Errorf("sign: parse body-sign: parameter %q has no '=': %w", part, ErrMalformedBodySign)
		}
		name = strings.TrimSpace(name)
		if name == "" || strings.ContainsAny(name, " \t\"") {
			return "", "", fmt.Errorf("sign: parse body-sign: bad parameter name %q: %w", name, ErrMalformedBodySign)
		}
		value, err = unquote(strings.TrimSpace(value))
		if err != nil {
			return "", "", fmt.Errorf("sign: parse body-sign: parameter %q: %w", name, err)
		}
		switch {
		case strings.EqualFold(name, "sign_type"):
			if haveType {
				return "", "", fmt.Errorf("sign: parse body-sign: sign_type appears twice: %w", ErrMalformedBodySign)
			}
			signType, haveType = value, true
		case strings.EqualFold(name, "signature"):
			if haveSig {
				return "", "", fmt.Errorf("sign: parse body-sign: signature appears twice: %w", ErrMalformedBodySign)
			}
			signature, haveSig = value, true
		}
	}
	switch {
	case !haveSig || signature == "":
		return "", "", fmt.Errorf("sign: parse body-sign: no signature: %w", ErrMissing)
	case !haveType || signType == "":
		return "", "", fmt.Errorf("sign: parse body-sign: no sign_type: %w", ErrMissing)
	case !strings.EqualFold(signType, BodySignType):
		return "", "", fmt.Errorf("sign: parse body-sign: sign_type %q is not %s: %w", signType, BodySignType, ErrMalformedBodySign)
	}
	mac, err := base64.StdEncoding.Strict().DecodeString(signature)
	if err != nil {
		return "", "", fmt.Errorf("sign: parse body-sign: signature is not base64: %w: %w", ErrMalformedBodySign, err)
	}
	if len(mac) != sha256.Size {
		return "", "", fmt.Errorf("sign: parse body-sign: signature is %d bytes, want %d: %w", len(mac), sha256.Size, ErrMalformedBodySign)
	}
	return signType, signature, nil
}

// unquote removes one pair of surrounding double quotes, if present.
func unquote(s string) (string, error) {
	q1 := strings.HasPrefix(s, `"`)
	q2 := len(s) >= 2 && strings.HasSuffix(s, `"`)
	switch {
	case q1 && q2:
		s = strings.TrimSpace(s[1 : len(s)-1])
	case q1 || strings.HasSuffix(s, `"`):
		return "", fmt.Errorf("unbalanced quotes: %w", ErrMalformedBodySign)
	}
	if strings.Contains(s, `"`) {
		return "", fmt.Errorf("quote inside value: %w", ErrMalformedBodySign)
	}
	return s, nil
}

// VerifyBodySign checks a Body-Sign header value against body and key,
// comparing the MACs in constant time.
func VerifyBodySign(key, header string, body []byte) error {
	_, signature, err := ParseBodySign(header)
	if err != nil {
		return err
	}
	got, _ := base64.StdEncoding.DecodeString(signature) // checked by ParseBodySign
	if !hmac.Equal(got, hmacSHA256([]byte(key), body)) {
		return fmt.Errorf("sign: verify body-sign: signature does not match the body: %w", ErrSignature)
	}
	return nil
}
