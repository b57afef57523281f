// Package sign implements every signature and cipher of the KooGallery
// protocol: the V2 URL signature, the joint-operation Kit header signature,
// the V1 authToken, the Body-Sign response header, the usage-push signature,
// the credential AES with its SHA1PRNG key derivation, RSA-OAEP decryption of
// Kit client secrets and APIG SDK-HMAC-SHA256 signing of Open API requests.
//
// The package does no I/O beyond reading the clock and crypto/rand, and
// imports nothing else from koobridge.
package sign

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"strings"
)

// hmacSHA256 returns HMAC-SHA256(key, msg).
func hmacSHA256(key, msg []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)
}

// equalFoldConstantTime reports whether two hex strings are equal, ignoring
// ASCII case, in time that depends only on their lengths.
func equalFoldConstantTime(got, want string) bool {
	if len(got) != len(want) {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.ToLower(got)), []byte(strings.ToLower(want))) == 1
}
