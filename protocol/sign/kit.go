package sign

import "encoding/hex"

// KitSignature returns the joint-operation Kit x-sign header value in form A
// (saas-v2.md §2.3), lowercase hex:
//
//	hex(HMAC(key, key + nonce + timestamp + body))
//
// with the raw body and no inner HMAC.
func KitSignature(key, nonce, timestamp string, body []byte) string {
	msg := make([]byte, 0, len(key)+len(nonce)+len(timestamp)+len(body))
	msg = append(msg, key...)
	msg = append(msg, nonce...)
	msg = append(msg, timestamp...)
	msg = append(msg, body...)
	return hex.EncodeToString(hmacSHA256([]byte(key), msg))
}

// KitSignatureHashed returns the Kit x-sign header value in form B
// (saas-v2.md §2.3): the basic-interface formula with the inner body HMAC,
// that is V2Signature in lowercase hex.
//
// The spec leaves open which form KooGallery sends (UNCONFIRMED), so
// Verifier.VerifyKit accepts both; senders should use KitSignature.
func KitSignatureHashed(key, nonce, timestamp string, body []byte) string {
	return v2Signature(key, nonce, timestamp, body)
}
