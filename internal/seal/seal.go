// Package seal encrypts secrets at rest: the app-info passwords koobridge
// keeps for KooGallery's queryInstance. It uses AES-256-GCM with a random
// 12-byte nonce per value and a versioned text format, so a value sealed
// today can still be opened after the format grows a second version:
//
//	"v1:" + base64std(nonce || ciphertext || tag)
//
// Errors never contain the plaintext or the key.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// KeySize is the length of a data key in bytes (AES-256).
const KeySize = 32

// prefix marks the only format version so far.
const prefix = "v1:"

// Errors returned by Open. Match them with errors.Is.
var (
	// ErrVersion means the value is not in a format this version knows.
	ErrVersion = errors.New("seal: unknown format version")
	// ErrMalformed means the value is not valid base64 or too short.
	ErrMalformed = errors.New("seal: malformed sealed value")
	// ErrAuth means the value was tampered with or sealed with another key.
	ErrAuth = errors.New("seal: authentication failed (wrong key or tampered value)")
)

// Sealer seals and opens values with one data key. It is safe for
// concurrent use.
type Sealer struct {
	aead cipher.AEAD
}

// NewSealer returns a Sealer for a 32-byte key.
func NewSealer(key []byte) (*Sealer, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("seal: key must be %d bytes, got %d", KeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

// ParseKey decodes a data key written as base64 of 32 bytes, in the
// standard or URL-safe alphabet, with or without padding. Surrounding
// white space (a trailing newline in a key file) is ignored.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("seal: key is empty")
	}
	for _, enc := range []*base64.Encoding{
		base64.StdEncoding, base64.RawStdEncoding,
		base64.URLEncoding, base64.RawURLEncoding,
	} {
		key, err := enc.DecodeString(s)
		if err != nil {
			continue
		}
		if len(key) != KeySize {
			return nil, fmt.Errorf("seal: key must be base64 of %d bytes, got %d bytes", KeySize, len(key))
		}
		return key, nil
	}
	return nil, errors.New("seal: key is not valid base64")
}

// GenerateKey returns a new random data key, base64-encoded (standard
// alphabet, padded), ready for ParseKey.
func GenerateKey() (string, error) {
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return "", fmt.Errorf("seal: generate key: %w", err)
	}
	return base64.StdEncoding.EncodeToString(key), nil
}

// Seal encrypts plaintext with a fresh random nonce. Sealing the same
// text twice gives different results.
func (s *Sealer) Seal(plaintext string) (string, error) {
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("seal: nonce: %w", err)
	}
	out := s.aead.Seal(nonce, nonce, []byte(plaintext), nil)
	return prefix + base64.StdEncoding.EncodeToString(out), nil
}

// Open decrypts a value made by Seal. It fails with ErrVersion,
// ErrMalformed or ErrAuth (wrapped); the error never includes the value.
func (s *Sealer) Open(sealed string) (string, error) {
	rest, ok := strings.CutPrefix(sealed, prefix)
	if !ok {
		return "", fmt.Errorf("%w (want %q prefix)", ErrVersion, prefix)
	}
	raw, err := base64.StdEncoding.DecodeString(rest)
	if err != nil {
		return "", fmt.Errorf("%w: not standard base64", ErrMalformed)
	}
	ns := s.aead.NonceSize()
	if len(raw) < ns+s.aead.Overhead() {
		return "", fmt.Errorf("%w: %d bytes is too short", ErrMalformed, len(raw))
	}
	plain, err := s.aead.Open(nil, raw[:ns], raw[ns:], nil)
	if err != nil {
		return "", ErrAuth
	}
	return string(plain), nil
}
