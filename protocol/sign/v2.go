package sign

import (
	"encoding/hex"
	"strings"
)

// V2BodyHash returns the lowercase hex HMAC-SHA256 of body under key: the
// payloadHash of the V2 URL signature (saas-v2.md §2.2).
func V2BodyHash(key string, body []byte) string {
	return hex.EncodeToString(hmacSHA256([]byte(key), body))
}

// V2Signature returns the upper-case hex V2 URL signature that KooGallery
// puts in the signature query parameter of basic-interface, license and
// order-notify calls:
//
//	hex(HMAC(key, key + nonce + timestamp + V2BodyHash(key, body)))
//
// timestamp is the decimal text exactly as sent. Upper case matches the
// documented examples; verifiers compare case-insensitively.
func V2Signature(key, nonce, timestamp string, body []byte) string {
	return strings.ToUpper(v2Signature(key, nonce, timestamp, body))
}

// v2Signature is V2Signature in lowercase hex, the form the verifier
// compares against.
func v2Signature(key, nonce, timestamp string, body []byte) string {
	msg := make([]byte, 0, len(key)+len(nonce)+len(timestamp)+64)
	msg = append(msg, key...)
	msg = append(msg, nonce...)
	msg = append(msg, timestamp...)
	msg = hex.AppendEncode(msg, hmacSHA256([]byte(key), body))
	return hex.EncodeToString(hmacSHA256([]byte(key), msg))
}
