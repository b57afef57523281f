package seal

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func newTestSealer(t *testing.T) *Sealer {
	t.Helper()
	k, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	key, err := ParseKey(k)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRoundTrip(t *testing.T) {
	s := newTestSealer(t)
	for _, plain := range []string{"", "P@ssw0rd!", "密码 with ünïcode", strings.Repeat("x", 5000)} {
		sealed, err := s.Seal(plain)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(sealed, "v1:") {
			t.Errorf("Seal = %q, want v1: prefix", sealed)
		}
		if plain != "" && strings.Contains(sealed, plain) {
			t.Errorf("sealed value contains the plaintext")
		}
		got, err := s.Open(sealed)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if got != plain {
			t.Errorf("Open = %q, want %q", got, plain)
		}
	}
}

func TestSealIsRandomised(t *testing.T) {
	s := newTestSealer(t)
	a, _ := s.Seal("same")
	b, _ := s.Seal("same")
	if a == b {
		t.Error("two seals of the same text are equal; the nonce is not random")
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(a, "v1:"))
	if err != nil {
		t.Fatal(err)
	}
	// 12-byte nonce, 4 bytes of text, 16-byte tag.
	if len(raw) != 12+4+16 {
		t.Errorf("sealed length = %d, want %d", len(raw), 12+4+16)
	}
}

func TestOpenRejects(t *testing.T) {
	s := newTestSealer(t)
	const secret = "hunter2-secret"
	good, err := s.Seal(secret)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(good, "v1:"))
	flip := func(i int) string {
		b := bytes.Clone(raw)
		b[i] ^= 0x01
		return "v1:" + base64.StdEncoding.EncodeToString(b)
	}
	other := newTestSealer(t)
	otherSealed, _ := other.Seal(secret)

	tests := []struct {
		name   string
		sealed string
		want   error
	}{
		{"empty", "", ErrVersion},
		{"no version", strings.TrimPrefix(good, "v1:"), ErrVersion},
		{"future version", "v2:" + strings.TrimPrefix(good, "v1:"), ErrVersion},
		{"bad base64", "v1:!!!not base64!!!", ErrMalformed},
		{"url alphabet", "v1:" + base64.URLEncoding.EncodeToString(append(bytes.Repeat([]byte{0xfb}, 30), raw...)), ErrMalformed},
		{"too short", "v1:" + base64.StdEncoding.EncodeToString(raw[:20]), ErrMalformed},
		{"tampered nonce", flip(0), ErrAuth},
		{"tampered ciphertext", flip(13), ErrAuth},
		{"tampered tag", flip(len(raw) - 1), ErrAuth},
		{"truncated tag", "v1:" + base64.StdEncoding.EncodeToString(raw[:len(raw)-1]), ErrAuth},
		{"wrong key", otherSealed, ErrAuth},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Open(tt.sealed)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Open error = %v, want %v", err, tt.want)
			}
			if got != "" {
				t.Errorf("Open returned %q with an error", got)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q contains the plaintext", err)
			}
		})
	}
}

func TestParseKey(t *testing.T) {
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(0xf0 + i%16) // bytes that make '+' '/' vs '-' '_' differ
	}
	tests := []struct {
		name    string
		in      string
		wantErr string
	}{
		{"std padded", base64.StdEncoding.EncodeToString(key), ""},
		{"std raw", base64.RawStdEncoding.EncodeToString(key), ""},
		{"url padded", base64.URLEncoding.EncodeToString(key), ""},
		{"url raw", base64.RawURLEncoding.EncodeToString(key), ""},
		{"trailing newline", base64.StdEncoding.EncodeToString(key) + "\n", ""},
		{"empty", "", "empty"},
		{"16 bytes", base64.StdEncoding.EncodeToString(key[:16]), "got 16 bytes"},
		{"33 bytes", base64.StdEncoding.EncodeToString(append(key, 1)), "got 33 bytes"},
		{"not base64", "this is not a key at all!", "not valid base64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseKey(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseKey error = %v, want one containing %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), strings.TrimSpace(tt.in)) && tt.in != "" {
					t.Errorf("error %q contains the key text", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseKey: %v", err)
			}
			if !bytes.Equal(got, key) {
				t.Errorf("ParseKey = %x, want %x", got, key)
			}
		})
	}
}

func TestGenerateKey(t *testing.T) {
	a, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := GenerateKey()
	if a == b {
		t.Error("GenerateKey returned the same key twice")
	}
	raw, err := base64.StdEncoding.DecodeString(a)
	if err != nil || len(raw) != 32 {
		t.Fatalf("GenerateKey = %q: not base64 of 32 bytes (%v)", a, err)
	}
}

func TestNewSealerKeyLength(t *testing.T) {
	for _, n := range []int{0, 16, 24, 31, 33} {
		if _, err := NewSealer(make([]byte, n)); err == nil {
			t.Errorf("NewSealer accepted a %d-byte key", n)
		}
	}
}
