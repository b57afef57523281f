package sign

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// EncryptType is the KooGallery encryptType value that selects the AES key
// size of the credential cipher (saas-v2.md §4.1).
type EncryptType string

// The encryptType values KooGallery defines. Both are AES-CBC with PKCS#5/7
// padding; no GCM variant is documented for SaaS products (UNCONFIRMED item
// 12), so none is offered.
const (
	EncryptAES256 EncryptType = "1" // AES-256-CBC, the KooGallery default
	EncryptAES128 EncryptType = "2" // AES-128-CBC
)

// ParseEncryptType parses an encryptType value. Surrounding white space is
// ignored, and an empty value means the documented default, EncryptAES256,
// because the field is optional on the wire. Any other value is an error
// that names it.
func ParseEncryptType(s string) (EncryptType, error) {
	switch v := strings.TrimSpace(s); v {
	case "", string(EncryptAES256):
		return EncryptAES256, nil
	case string(EncryptAES128):
		return EncryptAES128, nil
	default:
		return "", fmt.Errorf("sign: parse encryptType: unknown value %q (want \"1\" for AES-256 or \"2\" for AES-128)", s)
	}
}

// KeyBits returns the AES key size in bits that t selects, or 0 if t is not
// a known encryptType.
func (t EncryptType) KeyBits() int {
	switch t {
	case EncryptAES256:
		return 256
	case EncryptAES128:
		return 128
	default:
		return 0
	}
}

// String returns the wire value of t.
func (t EncryptType) String() string { return string(t) }

// DeriveAESKey reproduces Java
// KeyGenerator.getInstance("AES").init(bits, random), where random is a fresh
// SecureRandom.getInstance("SHA1PRNG") seeded with the UTF-8 bytes of key:
// the way KooGallery's Java sample turns the Key string into an AES key
// (saas-v2.md §4.2). bits must be 128, 192 or 256. The 128-bit key is always
// the first 16 bytes of the 256-bit key.
func DeriveAESKey(key string, bits int) ([]byte, error) {
	switch bits {
	case 128, 192, 256:
	default:
		return nil, fmt.Errorf("sign: derive AES key: unsupported key size %d bits (want 128, 192 or 256)", bits)
	}
	return sha1PRNG([]byte(key), bits/8), nil
}

// sha1PRNG returns the first n bytes produced by a freshly created Sun
// SHA1PRNG whose only seed is seed. Seeding before first use replaces the
// self-seeding, which is what makes the Java sample deterministic.
func sha1PRNG(seed []byte, n int) []byte {
	state := sha1.Sum(seed)
	out := make([]byte, 0, n+sha1.Size)
	for len(out) < n {
		block := sha1.Sum(state[:])
		out = append(out, block[:]...)
		sha1PRNGUpdate(&state, &block)
	}
	return out[:n]
}

// sha1PRNGUpdate is Java's SHA1PRNG updateState: state += out + 1, byte by
// byte from index 0, in Java's signed-byte arithmetic. The carry is an
// arithmetic shift of a signed sum, so it can be -1, 0 or 1; an unsigned
// 0/1 carry gives a different state and thus a wrong second output block
// (a wrong 256-bit key whose first 20 bytes still match).
func sha1PRNGUpdate(state, out *[sha1.Size]byte) {
	carry := 1
	changed := false
	for i := range state {
		v := int(int8(state[i])) + int(int8(out[i])) + carry
		t := byte(v)
		changed = changed || t != state[i]
		state[i] = t
		carry = v >> 8
	}
	if !changed {
		state[0]++
	}
}

// credentialIVLen is the length of the IV prefix, in bytes.
const credentialIVLen = aes.BlockSize

// ivAlphabet is the character set of KooGallery's IVs (saas-v2.md §4.3).
const ivAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// CredentialCipher encrypts and decrypts KooGallery's sensitive fields in the
// format iv + base64(AES-CBC-PKCS7(key, iv, utf8(plaintext))), where iv is 16
// characters used directly as the IV bytes (saas-v2.md §4.3). The AES key is
// derived once, by DeriveAESKey, when the cipher is made. A CredentialCipher
// is safe for concurrent use.
type CredentialCipher struct {
	t     EncryptType
	block cipher.Block // immutable after creation
}

// NewCredentialCipher returns a cipher for the Key string key and the key
// size selected by t. key must not be empty: an empty Key is a configuration
// mistake, not a key.
func NewCredentialCipher(key string, t EncryptType) (*CredentialCipher, error) {
	if key == "" {
		return nil, errors.New("sign: new credential cipher: empty key")
	}
	bits := t.KeyBits()
	if bits == 0 {
		return nil, fmt.Errorf("sign: new credential cipher: unknown encryptType %q", string(t))
	}
	k, err := DeriveAESKey(key, bits)
	if err != nil {
		return nil, fmt.Errorf("sign: new credential cipher: %w", err)
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, fmt.Errorf("sign: new credential cipher: %w", err)
	}
	return &CredentialCipher{t: t, block: block}, nil
}

// Type returns the encryptType the cipher was made for, to be sent
// alongside encrypted values.
func (c *CredentialCipher) Type() EncryptType { return c.t }

// Encrypt encrypts plaintext under a fresh random IV from RandomIV.
// plaintext must be valid UTF-8.
func (c *CredentialCipher) Encrypt(plaintext string) (string, error) {
	iv, err := RandomIV()
	if err != nil {
		return "", fmt.Errorf("sign: encrypt credential: %w", err)
	}
	return c.EncryptWithIV(plaintext, iv)
}

// EncryptWithIV encrypts plaintext with the given IV, which must be exactly
// 16 bytes long. Any 16 bytes are accepted; KooGallery itself uses 16
// characters from [A-Za-z0-9], which RandomIV produces. Reusing an IV with
// the same key reveals equal prefixes, so outside tests use Encrypt.
// plaintext must be valid UTF-8, so that whatever is encrypted also
// decrypts.
func (c *CredentialCipher) EncryptWithIV(plaintext, iv string) (string, error) {
	if len(iv) != credentialIVLen {
		return "", fmt.Errorf("sign: encrypt credential: IV is %d bytes, want %d", len(iv), credentialIVLen)
	}
	if !utf8.ValidString(plaintext) {
		return "", errors.New("sign: encrypt credential: plaintext is not valid UTF-8")
	}
	pad := aes.BlockSize - len(plaintext)%aes.BlockSize
	buf := make([]byte, len(plaintext)+pad)
	copy(buf, plaintext)
	for i := len(plaintext); i < len(buf); i++ {
		buf[i] = byte(pad)
	}
	cipher.NewCBCEncrypter(c.block, []byte(iv)).CryptBlocks(buf, buf)
	return iv + base64.StdEncoding.EncodeToString(buf), nil
}

// Decrypt decrypts a value in the iv + base64 format. It is strict: the
// base64 must be canonical standard base64 with padding and no line breaks,
// the ciphertext a whole, non-zero number of AES blocks, the PKCS#7 padding
// exact and the plaintext valid UTF-8; anything else is an error. Errors
// never contain the plaintext.
func (c *CredentialCipher) Decrypt(s string) (string, error) {
	if len(s) < credentialIVLen {
		return "", fmt.Errorf("sign: decrypt credential: value is %d bytes, shorter than the %d-byte IV", len(s), credentialIVLen)
	}
	iv, enc := s[:credentialIVLen], s[credentialIVLen:]
	if enc == "" {
		return "", errors.New("sign: decrypt credential: no ciphertext after the IV")
	}
	ct, err := decodeCredentialBase64(enc)
	if err != nil {
		return "", fmt.Errorf("sign: decrypt credential: %w", err)
	}
	if len(ct)%aes.BlockSize != 0 {
		return "", fmt.Errorf("sign: decrypt credential: ciphertext is %d bytes, not a multiple of %d", len(ct), aes.BlockSize)
	}
	cipher.NewCBCDecrypter(c.block, []byte(iv)).CryptBlocks(ct, ct)
	pt, err := pkcs7Unpad(ct)
	if err != nil {
		return "", fmt.Errorf("sign: decrypt credential: %w (wrong key, key size or IV?)", err)
	}
	if !utf8.Valid(pt) {
		return "", errors.New("sign: decrypt credential: plaintext is not valid UTF-8 (wrong key, key size or IV?)")
	}
	return string(pt), nil
}

// DecryptOrPlain returns the decryption of s when s looks encrypted (see
// LooksEncrypted) and decrypts cleanly to valid UTF-8, and s unchanged
// otherwise. It serves fields that may arrive encrypted or in clear text
// (saas-v2.md §4.4, UNCONFIRMED item 4).
func (c *CredentialCipher) DecryptOrPlain(s string) string {
	if !LooksEncrypted(s) {
		return s
	}
	pt, err := c.Decrypt(s)
	if err != nil {
		return s
	}
	return pt
}

// LooksEncrypted reports whether s has the shape of an encrypted value: 16
// printable ASCII characters (space through tilde) followed by canonical
// standard base64 of a whole, non-zero number of AES blocks. It does not
// prove that s decrypts.
func LooksEncrypted(s string) bool {
	if len(s) <= credentialIVLen {
		return false
	}
	for i := range credentialIVLen {
		if s[i] < ' ' || s[i] > '~' {
			return false
		}
	}
	enc := s[credentialIVLen:]
	if len(enc)%4 != 0 {
		return false
	}
	ct, err := decodeCredentialBase64(enc)
	return err == nil && len(ct)%aes.BlockSize == 0
}

// RandomIV returns 16 characters drawn uniformly from [A-Za-z0-9] with
// crypto/rand, the IV shape KooGallery uses.
func RandomIV() (string, error) {
	var iv [credentialIVLen]byte
	var buf [32]byte
	n := 0
	for n < len(iv) {
		if _, err := rand.Read(buf[:]); err != nil {
			return "", fmt.Errorf("sign: random IV: %w", err)
		}
		for _, b := range buf {
			// Reject bytes at or above 248 (4*62) so every character is
			// equally likely.
			if int(b) >= 4*len(ivAlphabet) {
				continue
			}
			iv[n] = ivAlphabet[int(b)%len(ivAlphabet)]
			n++
			if n == len(iv) {
				break
			}
		}
	}
	return string(iv[:]), nil
}

// decodeCredentialBase64 decodes canonical standard base64. Go's decoder
// skips CR and LF even in strict mode; they are refused here so that every
// accepted value re-encodes to itself.
func decodeCredentialBase64(s string) ([]byte, error) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, errors.New("bad base64: contains a line break")
	}
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("bad base64: %w", err)
	}
	if len(b) == 0 {
		return nil, errors.New("bad base64: empty ciphertext")
	}
	return b, nil
}

// pkcs7Unpad removes PKCS#7 padding for AES blocks from b, which is a
// non-empty whole number of blocks.
func pkcs7Unpad(b []byte) ([]byte, error) {
	n := int(b[len(b)-1])
	if n == 0 || n > aes.BlockSize {
		return nil, errors.New("bad padding")
	}
	for _, p := range b[len(b)-n:] {
		if int(p) != n {
			return nil, errors.New("bad padding")
		}
	}
	return b[:len(b)-n], nil
}
