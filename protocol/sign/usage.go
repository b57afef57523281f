package sign

import (
	"crypto/hmac"
	"encoding/base64"
	"fmt"
)

// UsageSignature returns the signature header of a usage push to
// KooGallery (saas-v2.md §7.2):
//
//	base64std(HMAC(key, "ts=" + ts + "&nonce=" + nonce + "&body=" + body))
//
// where key is the key bound to the basic interfaces, ts the Unix time in
// milliseconds as sent in the ts header, and body the exact bytes sent.
func UsageSignature(key, ts, nonce string, body []byte) string {
	return base64.StdEncoding.EncodeToString(usageMAC(key, ts, nonce, body))
}

func usageMAC(key, ts, nonce string, body []byte) []byte {
	msg := make([]byte, 0, len("ts=&nonce=&body=")+len(ts)+len(nonce)+len(body))
	msg = append(msg, "ts="...)
	msg = append(msg, ts...)
	msg = append(msg, "&nonce="...)
	msg = append(msg, nonce...)
	msg = append(msg, "&body="...)
	msg = append(msg, body...)
	return hmacSHA256([]byte(key), msg)
}

// VerifyUsageSignature checks the signature header of a usage push, as the
// emulator's Open API does. It compares MACs in constant time. It checks
// neither the age of ts nor nonce reuse; those need a clock and a store,
// which the caller owns.
func VerifyUsageSignature(key, ts, nonce, signature string, body []byte) error {
	switch {
	case signature == "":
		return fmt.Errorf("sign: verify usage signature: no signature: %w", ErrMissing)
	case ts == "":
		return fmt.Errorf("sign: verify usage signature: no ts: %w", ErrMissing)
	case nonce == "":
		return fmt.Errorf("sign: verify usage signature: no nonce: %w", ErrMissing)
	}
	got, err := base64.StdEncoding.DecodeString(signature)
	if err != nil {
		return fmt.Errorf("sign: verify usage signature: not base64: %w", ErrSignature)
	}
	if !hmac.Equal(got, usageMAC(key, ts, nonce, body)) {
		return fmt.Errorf("sign: verify usage signature: signature does not match: %w", ErrSignature)
	}
	return nil
}
