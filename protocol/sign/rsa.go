package sign

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	_ "crypto/sha1" // registers crypto.SHA1 for the OAEP variants
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// MinRSAKeyBits is the smallest RSA key ParseRSAPrivateKeyPEM and
// ParseRSAPublicKeyPEM accept. KooGallery asks for keys of at least 3072
// bits; 2048 is accepted so that existing keys and quick tests work, and is
// still considered safe.
const MinRSAKeyBits = 2048

// oaepVariant is one OAEP parameter set a clientSecret may have been
// encrypted with.
type oaepVariant struct {
	name          string
	hash, mgfHash crypto.Hash
}

// clientSecretVariants are tried in order by DecryptClientSecret. The OAEP
// hash and MGF1 hash KooGallery uses are UNCONFIRMED (saas-v2.md item 13,
// saas-v1-joint-login.md B.3), so every likely combination is tried: a
// mismatched variant fails OAEP's integrity check rather than yielding a
// wrong plaintext. SHA-256/MGF1-SHA-1 is what Java's
// "RSA/ECB/OAEPWithSHA-256AndMGF1Padding" does by default.
var clientSecretVariants = []oaepVariant{
	{"OAEP(SHA-256, MGF1-SHA-256)", crypto.SHA256, crypto.SHA256},
	{"OAEP(SHA-256, MGF1-SHA-1)", crypto.SHA256, crypto.SHA1},
	{"OAEP(SHA-1, MGF1-SHA-1)", crypto.SHA1, crypto.SHA1},
}

// DecryptClientSecret decrypts the clientSecret of an applicationSync call,
// which KooGallery encrypts with RSA-OAEP under the seller's public key.
//
// The encoding of the ciphertext is UNCONFIRMED (base64 assumed), so it is
// decoded tolerantly: white space is ignored and standard or URL-safe base64,
// with or without padding, is accepted. A ciphertext shorter than the key
// (leading zero bytes dropped) is zero-extended, and one with an extra
// leading zero byte (as Java's BigInteger.toByteArray adds) is trimmed,
// before the length is checked. Then the OAEP variants are tried in order:
// OAEP(SHA-256, MGF1-SHA-256), OAEP(SHA-256, MGF1-SHA-1), OAEP(SHA-1,
// MGF1-SHA-1). The error, if none works, names every attempt and never
// contains the secret.
func DecryptClientSecret(priv *rsa.PrivateKey, ciphertext string) (string, error) {
	if priv == nil {
		return "", errors.New("sign: decrypt client secret: no private key")
	}
	ct, err := decodeTolerantBase64(ciphertext)
	if err != nil {
		return "", fmt.Errorf("sign: decrypt client secret: %w", err)
	}
	k := priv.Size()
	switch {
	case len(ct) == k+1 && ct[0] == 0:
		ct = ct[1:]
	case len(ct) < k && len(ct) > 0:
		ct = append(make([]byte, k-len(ct)), ct...)
	}
	if len(ct) != k {
		return "", fmt.Errorf("sign: decrypt client secret: ciphertext is %d bytes, want %d for a %d-bit key", len(ct), k, priv.N.BitLen())
	}
	names := make([]string, 0, len(clientSecretVariants))
	for _, v := range clientSecretVariants {
		pt, err := priv.Decrypt(nil, ct, &rsa.OAEPOptions{Hash: v.hash, MGFHash: v.mgfHash})
		if err == nil {
			return string(pt), nil
		}
		names = append(names, v.name)
	}
	// The per-attempt errors are all rsa.ErrDecryption by design (no
	// oracle), so only the attempts are named.
	return "", fmt.Errorf("sign: decrypt client secret: no OAEP variant decrypts it (tried %s): wrong private key or corrupted ciphertext", strings.Join(names, ", "))
}

// EncryptClientSecret encrypts secret the way DecryptClientSecret expects it
// first: RSA-OAEP with SHA-256 and MGF1-SHA-256, empty label, standard
// base64 with padding. It is for the emulator and tests.
func EncryptClientSecret(pub *rsa.PublicKey, secret string) (string, error) {
	if pub == nil {
		return "", errors.New("sign: encrypt client secret: no public key")
	}
	// rsa.EncryptOAEPWithOptions (a separate MGF1 hash) needs go1.26 and
	// go.mod says go1.25; with one hash for both, EncryptOAEP is enough.
	ct, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, []byte(secret), nil)
	if err != nil {
		return "", fmt.Errorf("sign: encrypt client secret: %w", err)
	}
	return base64.StdEncoding.EncodeToString(ct), nil
}

// ParseRSAPrivateKeyPEM parses the seller's RSA private key from PEM. Both
// PKCS#1 ("RSA PRIVATE KEY") and PKCS#8 ("PRIVATE KEY") are accepted, and
// blocks of other types before the key (a certificate, say) are skipped.
// Encrypted PEM, non-RSA keys and keys shorter than MinRSAKeyBits are
// rejected.
func ParseRSAPrivateKeyPEM(pemBytes []byte) (*rsa.PrivateKey, error) {
	block, err := findPEMBlock(pemBytes, "RSA PRIVATE KEY", "PRIVATE KEY")
	if err != nil {
		return nil, fmt.Errorf("sign: parse RSA private key: %w", err)
	}
	if _, ok := block.Headers["DEK-Info"]; ok {
		return nil, errors.New("sign: parse RSA private key: encrypted PEM is not supported; decrypt it first")
	}
	var key *rsa.PrivateKey
	// Mislabelled blocks are common, so both encodings are tried whatever
	// the label says; DER of one never parses as the other.
	p1, err1 := x509.ParsePKCS1PrivateKey(block.Bytes)
	p8, err8 := x509.ParsePKCS8PrivateKey(block.Bytes)
	switch {
	case err1 == nil:
		key = p1
	case err8 == nil:
		k, ok := p8.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("sign: parse RSA private key: PKCS#8 key is %T, not RSA", p8)
		}
		key = k
	case block.Type == "PRIVATE KEY":
		return nil, fmt.Errorf("sign: parse RSA private key: %w", err8)
	default:
		return nil, fmt.Errorf("sign: parse RSA private key: %w", err1)
	}
	if bits := key.N.BitLen(); bits < MinRSAKeyBits {
		return nil, fmt.Errorf("sign: parse RSA private key: key is %d bits, want at least %d (KooGallery asks for 3072)", bits, MinRSAKeyBits)
	}
	return key, nil
}

// ParseRSAPublicKeyPEM parses an RSA public key from PEM: PKIX ("PUBLIC
// KEY") or PKCS#1 ("RSA PUBLIC KEY"). Keys shorter than MinRSAKeyBits are
// rejected.
func ParseRSAPublicKeyPEM(pemBytes []byte) (*rsa.PublicKey, error) {
	block, err := findPEMBlock(pemBytes, "PUBLIC KEY", "RSA PUBLIC KEY")
	if err != nil {
		return nil, fmt.Errorf("sign: parse RSA public key: %w", err)
	}
	var key *rsa.PublicKey
	pkix, errX := x509.ParsePKIXPublicKey(block.Bytes)
	p1, err1 := x509.ParsePKCS1PublicKey(block.Bytes)
	switch {
	case errX == nil:
		k, ok := pkix.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("sign: parse RSA public key: key is %T, not RSA", pkix)
		}
		key = k
	case err1 == nil:
		key = p1
	case block.Type == "PUBLIC KEY":
		return nil, fmt.Errorf("sign: parse RSA public key: %w", errX)
	default:
		return nil, fmt.Errorf("sign: parse RSA public key: %w", err1)
	}
	if bits := key.N.BitLen(); bits < MinRSAKeyBits {
		return nil, fmt.Errorf("sign: parse RSA public key: key is %d bits, want at least %d (KooGallery asks for 3072)", bits, MinRSAKeyBits)
	}
	return key, nil
}

// findPEMBlock returns the first PEM block in data whose type is one of
// types.
func findPEMBlock(data []byte, types ...string) (*pem.Block, error) {
	var seen []string
	for {
		block, rest := pem.Decode(data)
		if block == nil {
			break
		}
		for _, t := range types {
			if block.Type == t {
				return block, nil
			}
		}
		seen = append(seen, fmt.Sprintf("%q", block.Type))
		data = rest
	}
	if len(seen) == 0 {
		return nil, errors.New("no PEM block found")
	}
	return nil, fmt.Errorf("no %s PEM block (found %s)", strings.Join(types, " or "), strings.Join(seen, ", "))
}

// decodeTolerantBase64 decodes standard or URL-safe base64, padded or not,
// ignoring all ASCII white space.
func decodeTolerantBase64(s string) ([]byte, error) {
	s = strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\r', '\n', '\v', '\f':
			return -1
		}
		return r
	}, s)
	if s == "" {
		return nil, errors.New("empty ciphertext")
	}
	var enc *base64.Encoding
	switch {
	case strings.ContainsAny(s, "-_"):
		enc = base64.URLEncoding
	default:
		enc = base64.StdEncoding
	}
	if !strings.HasSuffix(s, "=") {
		enc = enc.WithPadding(base64.NoPadding)
	}
	b, err := enc.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("bad base64: %w", err)
	}
	return b, nil
}
