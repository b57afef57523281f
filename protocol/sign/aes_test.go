package sign

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"sync"
	"testing"
)

// Known-answer vectors from saas-v1-joint-login.md §A.7 and saas-v2.md §2.5.
const (
	aesKeyV1 = "9fa6c870-8bb0-4e9b-b71e-4c223300156f"
	aesKeyV2 = "TestAccessKey-0123456789abcdef"
)

func TestDeriveAESKeyVectors(t *testing.T) {
	tests := []struct {
		key  string
		bits int
		want string
	}{
		{aesKeyV1, 128, "6de9c7fe5a9cd34b86611483e5124a8f"},
		{aesKeyV1, 256, "6de9c7fe5a9cd34b86611483e5124a8fdd1fc74c4f54543ee7cd43c5195a3198"},
		{"abcde", 128, "8dc54f2e15823c98aea063e339a5d4c5"},
		{"abcde", 256, "8dc54f2e15823c98aea063e339a5d4c53d1a471adbf839311f5083e7778f46fb"},
		{aesKeyV2, 128, "83fc146d5a76a7b889dcde61e2a98a95"},
		{aesKeyV2, 256, "83fc146d5a76a7b889dcde61e2a98a95fda82f39aa51c943fff883881e22b66b"},
	}
	for _, tt := range tests {
		got, err := DeriveAESKey(tt.key, tt.bits)
		if err != nil {
			t.Fatalf("DeriveAESKey(%q, %d): %v", tt.key, tt.bits, err)
		}
		if h := hex.EncodeToString(got); h != tt.want {
			t.Errorf("DeriveAESKey(%q, %d) = %s, want %s", tt.key, tt.bits, h, tt.want)
		}
	}
}

// deriveUnsignedCarry is the tempting but wrong SHA1PRNG emulation with
// unsigned bytes and a 0/1 carry. It exists only to show that it differs.
func deriveUnsignedCarry(key string, n int) []byte {
	state := sha1.Sum([]byte(key))
	var out []byte
	for len(out) < n {
		block := sha1.Sum(state[:])
		out = append(out, block[:]...)
		carry := 1
		for i := range state {
			v := int(state[i]) + int(block[i]) + carry
			state[i] = byte(v)
			carry = v >> 8
		}
	}
	return out[:n]
}

func TestDeriveAESKeyUnsignedCarryIsWrong(t *testing.T) {
	const wrong256 = "6de9c7fe5a9cd34b86611483e5124a8fdd1fc74cde8a1bff5eba6f3b2c09372c"
	naive := hex.EncodeToString(deriveUnsignedCarry(aesKeyV1, 32))
	if naive != wrong256 {
		t.Fatalf("unsigned-carry variant = %s, want the documented wrong key %s", naive, wrong256)
	}
	got, err := DeriveAESKey(aesKeyV1, 256)
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(got) == wrong256 {
		t.Fatal("DeriveAESKey uses the unsigned carry")
	}
	// The two agree on the first output block, which is why 128-bit tests
	// alone cannot catch the mistake.
	if !bytes.Equal(got[:20], deriveUnsignedCarry(aesKeyV1, 20)) {
		t.Error("first SHA1PRNG block differs between the variants")
	}
}

func TestDeriveAESKeySizes(t *testing.T) {
	for _, bits := range []int{-128, 0, 64, 127, 129, 160, 255, 384, 512} {
		if k, err := DeriveAESKey("abcde", bits); err == nil || k != nil {
			t.Errorf("DeriveAESKey(_, %d) = %x, %v; want nil, error", bits, k, err)
		}
	}
	k256, _ := DeriveAESKey("abcde", 256)
	for _, bits := range []int{128, 192, 256} {
		k, err := DeriveAESKey("abcde", bits)
		if err != nil {
			t.Fatalf("DeriveAESKey(_, %d): %v", bits, err)
		}
		if len(k) != bits/8 || !bytes.Equal(k, k256[:bits/8]) {
			t.Errorf("DeriveAESKey(_, %d) = %x, want prefix of %x", bits, k, k256)
		}
	}
}

// aesVector is one encryption known-answer vector.
type aesVector struct {
	key       string
	t         EncryptType
	iv        string
	plaintext string
	want      string
}

var aesVectors = []aesVector{
	// saas-v1-joint-login.md §A.7
	{aesKeyV1, EncryptAES256, "A1b2C3d4E5f6G7h8", "admin", "A1b2C3d4E5f6G7h8AE/O9ZzEdvIfCGWCDtOkLw=="},
	{aesKeyV1, EncryptAES128, "A1b2C3d4E5f6G7h8", "admin", "A1b2C3d4E5f6G7h8r9nJcNFNHV27ys2x+zjRfg=="},
	{aesKeyV1, EncryptAES256, "A1b2C3d4E5f6G7h8", "13800000000", "A1b2C3d4E5f6G7h8XKPcuk44623skZ2ACEboPA=="},
	// saas-v2.md §2.5
	{aesKeyV2, EncryptAES256, "Ab3dEf7hIj1lMn5p", "15905222222", "Ab3dEf7hIj1lMn5pz5NWj6Cpnc+9ulS10QznFg=="},
	{aesKeyV2, EncryptAES128, "Ab3dEf7hIj1lMn5p", "15905222222", "Ab3dEf7hIj1lMn5pWM2fa8+tJAAJOmw0Hm72YA=="},
	{aesKeyV2, EncryptAES256, "Ab3dEf7hIj1lMn5p", "P@ssw0rd!中文", "Ab3dEf7hIj1lMn5pjcqxlKfimuT00Whnt/oE2A=="},
}

func mustCredentialCipher(tb testing.TB, key string, t EncryptType) *CredentialCipher {
	tb.Helper()
	c, err := NewCredentialCipher(key, t)
	if err != nil {
		tb.Fatalf("NewCredentialCipher(%q, %q): %v", key, t, err)
	}
	return c
}

func TestCredentialCipherVectors(t *testing.T) {
	for _, v := range aesVectors {
		c := mustCredentialCipher(t, v.key, v.t)
		if c.Type() != v.t {
			t.Errorf("Type() = %q, want %q", c.Type(), v.t)
		}
		got, err := c.EncryptWithIV(v.plaintext, v.iv)
		if err != nil {
			t.Fatalf("EncryptWithIV(%q) with type %s: %v", v.plaintext, v.t, err)
		}
		if got != v.want {
			t.Errorf("EncryptWithIV(%q) with type %s = %s, want %s", v.plaintext, v.t, got, v.want)
		}
		pt, err := c.Decrypt(v.want)
		if err != nil {
			t.Fatalf("Decrypt(%s) with type %s: %v", v.want, v.t, err)
		}
		if pt != v.plaintext {
			t.Errorf("Decrypt(%s) with type %s = %q, want %q", v.want, v.t, pt, v.plaintext)
		}
		if !LooksEncrypted(v.want) {
			t.Errorf("LooksEncrypted(%s) = false", v.want)
		}
		if got := c.DecryptOrPlain(v.want); got != v.plaintext {
			t.Errorf("DecryptOrPlain(%s) = %q, want %q", v.want, got, v.plaintext)
		}
	}
}

func TestCredentialCipherRoundTrip(t *testing.T) {
	keys := []string{
		aesKeyV1,
		"k",
		"密钥-Schlüssel-ключ-🔑",
		"a+b/c=d==",
		"+/+/+/+/====",
		strings.Repeat("long key ", 200),
	}
	plaintexts := []string{
		"",
		"a",
		"exactly16bytes!!",
		"user@example.com",
		"P@ssw0rd!中文",
		"emoji 🙂 and NUL \x00 inside",
		strings.Repeat("0123456789", 1000),
	}
	for _, key := range keys {
		for _, typ := range []EncryptType{EncryptAES256, EncryptAES128} {
			c := mustCredentialCipher(t, key, typ)
			for _, pt := range plaintexts {
				s, err := c.Encrypt(pt)
				if err != nil {
					t.Fatalf("Encrypt: %v", err)
				}
				checkIV(t, s[:16])
				wantLen := 16 + base64.StdEncoding.EncodedLen((len(pt)/16+1)*16)
				if len(s) != wantLen {
					t.Errorf("len(Encrypt(%d bytes)) = %d, want %d", len(pt), len(s), wantLen)
				}
				if !LooksEncrypted(s) {
					t.Errorf("LooksEncrypted(Encrypt(...)) = false for %s", s)
				}
				got, err := c.Decrypt(s)
				if err != nil {
					t.Fatalf("Decrypt(Encrypt(%.20q)) with key %.20q type %s: %v", pt, key, typ, err)
				}
				if got != pt {
					t.Errorf("Decrypt(Encrypt(%.20q)) = %.20q", pt, got)
				}
			}
		}
	}
}

func TestEncryptWithIV(t *testing.T) {
	c := mustCredentialCipher(t, aesKeyV1, EncryptAES256)
	// Any 16 bytes make an IV, even if they are not 16 characters.
	iv := "中文中文abcd" // 12 + 4 bytes
	s, err := c.EncryptWithIV("admin", iv)
	if err != nil {
		t.Fatalf("EncryptWithIV with a 16-byte non-ASCII IV: %v", err)
	}
	if got, err := c.Decrypt(s); err != nil || got != "admin" {
		t.Errorf("Decrypt = %q, %v; want admin", got, err)
	}
	for _, iv := range []string{"", "A1b2C3d4E5f6G7h", "A1b2C3d4E5f6G7h8X", "中文中文中文"} {
		if s, err := c.EncryptWithIV("admin", iv); err == nil || s != "" {
			t.Errorf("EncryptWithIV with %d-byte IV = %q, %v; want error", len(iv), s, err)
		}
	}
	if s, err := c.EncryptWithIV("bad \xff utf-8", "A1b2C3d4E5f6G7h8"); err == nil || s != "" {
		t.Errorf("EncryptWithIV(invalid UTF-8) = %q, %v; want error", s, err)
	}
}

// cbcRaw encrypts raw (a whole number of blocks, padding included) so tests
// can build malformed ciphertexts.
func cbcRaw(t *testing.T, key, iv string, bits int, raw []byte) string {
	t.Helper()
	k, err := DeriveAESKey(key, bits)
	if err != nil {
		t.Fatal(err)
	}
	b, err := aes.NewCipher(k)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]byte, len(raw))
	cipher.NewCBCEncrypter(b, []byte(iv)).CryptBlocks(out, raw)
	return iv + base64.StdEncoding.EncodeToString(out)
}

func TestDecryptErrors(t *testing.T) {
	const iv = "A1b2C3d4E5f6G7h8"
	c := mustCredentialCipher(t, aesKeyV1, EncryptAES256)
	padded := func(s string, pad byte, n int) []byte {
		return append([]byte(s), bytes.Repeat([]byte{pad}, n)...)
	}
	good := "A1b2C3d4E5f6G7h8AE/O9ZzEdvIfCGWCDtOkLw=="
	tests := []struct {
		name, in, errHas string
	}{
		{"empty", "", "shorter"},
		{"short", "A1b2C3d4", "shorter"},
		{"iv only", iv, "no ciphertext"},
		{"bad base64", iv + "!!!!", "bad base64"},
		{"unpadded base64", strings.TrimRight(good, "="), "bad base64"},
		{"non-canonical base64", good[:len(good)-3] + "x==", "bad base64"},
		{"line break", good[:30] + "\n" + good[30:], "line break"},
		{"url-safe base64", iv + "_-__" + good[20:], "bad base64"},
		{"partial block", iv + base64.StdEncoding.EncodeToString(make([]byte, 15)), "not a multiple"},
		{"block and a half", iv + base64.StdEncoding.EncodeToString(make([]byte, 24)), "not a multiple"},
		{"pad zero", cbcRaw(t, aesKeyV1, iv, 256, padded("0123456789abcde", 0, 1)), "bad padding"},
		{"pad too big", cbcRaw(t, aesKeyV1, iv, 256, padded("0123456789abcde", 17, 1)), "bad padding"},
		{"pad inconsistent", cbcRaw(t, aesKeyV1, iv, 256, append([]byte("0123456789ab\x03\x04\x03"), 3)), "bad padding"},
		{"invalid utf-8", cbcRaw(t, aesKeyV1, iv, 256, padded("\xff\xfe", 14, 14)), "UTF-8"},
		{"wrong key size", "A1b2C3d4E5f6G7h8r9nJcNFNHV27ys2x+zjRfg==", "bad padding"},
	}
	for _, tt := range tests {
		got, err := c.Decrypt(tt.in)
		if err == nil || got != "" {
			t.Errorf("%s: Decrypt(%q) = %q, %v; want error", tt.name, tt.in, got, err)
			continue
		}
		if !strings.Contains(err.Error(), tt.errHas) {
			t.Errorf("%s: error %q does not mention %q", tt.name, err, tt.errHas)
		}
		if c.DecryptOrPlain(tt.in) != tt.in {
			t.Errorf("%s: DecryptOrPlain changed a value that does not decrypt", tt.name)
		}
	}
	// A wrong key must not reveal the plaintext, whatever it yields.
	other := mustCredentialCipher(t, "another key", EncryptAES256)
	if got, err := other.Decrypt(good); err == nil || strings.Contains(err.Error(), "admin") || got != "" {
		t.Errorf("Decrypt with the wrong key = %q, %v; want an error without the plaintext", got, err)
	}
}

func TestParseEncryptType(t *testing.T) {
	tests := []struct {
		in   string
		want EncryptType
		bits int
		ok   bool
	}{
		{"1", EncryptAES256, 256, true},
		{"2", EncryptAES128, 128, true},
		{" 1 ", EncryptAES256, 256, true},
		{"\t2\n", EncryptAES128, 128, true},
		{"", EncryptAES256, 256, true}, // optional field, documented default
		{"0", "", 0, false},
		{"3", "", 0, false},
		{"01", "", 0, false},
		{"AES256", "", 0, false},
		{"1 2", "", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseEncryptType(tt.in)
		if tt.ok != (err == nil) || got != tt.want {
			t.Errorf("ParseEncryptType(%q) = %q, %v; want %q, ok=%v", tt.in, got, err, tt.want, tt.ok)
			continue
		}
		if err != nil && !strings.Contains(err.Error(), tt.in) {
			t.Errorf("ParseEncryptType(%q) error %q does not name the value", tt.in, err)
		}
		if got.KeyBits() != tt.bits {
			t.Errorf("%q.KeyBits() = %d, want %d", got, got.KeyBits(), tt.bits)
		}
	}
}

func TestNewCredentialCipherErrors(t *testing.T) {
	tests := []struct {
		key string
		t   EncryptType
	}{
		{"", EncryptAES256},
		{"k", ""},
		{"k", "3"},
		{"k", " 1"},
	}
	for _, tt := range tests {
		if c, err := NewCredentialCipher(tt.key, tt.t); err == nil || c != nil {
			t.Errorf("NewCredentialCipher(%q, %q) = %v, %v; want error", tt.key, tt.t, c, err)
		}
	}
}

func TestLooksEncrypted(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"A1b2C3d4E5f6G7h8AE/O9ZzEdvIfCGWCDtOkLw==", true},
		{"A1b2 3d4E5f6G7~8AE/O9ZzEdvIfCGWCDtOkLw==", true}, // printable, not alphanumeric
		{"A1b2C3d4E5f6G7h8" + base64.StdEncoding.EncodeToString(make([]byte, 48)), true},
		{"", false},
		{"13800000000", false},
		{"user@example.com", false},
		{"someone.long@example-company.com", false},
		{"A1b2C3d4E5f6G7h8", false},
		{"A1b2C3d4E5f6G7h\x01AE/O9ZzEdvIfCGWCDtOkLw==", false},
		{"A1b2C3d4E5f6G7h\xc3AE/O9ZzEdvIfCGWCDtOkLw==", false},
		{"A1b2C3d4E5f6G7h8AE/O9ZzEdvIfCGWCDtOkLw=", false},
		{"A1b2C3d4E5f6G7h8AE/O9ZzEdvIfCGWCDtOkLw", false},
		{"A1b2C3d4E5f6G7h8AE/O9ZzEdvIfCGWC\nDtOkLw==", false},
		{"A1b2C3d4E5f6G7h8" + base64.StdEncoding.EncodeToString(make([]byte, 15)), false},
		{"A1b2C3d4E5f6G7h8" + base64.StdEncoding.EncodeToString(make([]byte, 17)), false},
	}
	for _, tt := range tests {
		if got := LooksEncrypted(tt.in); got != tt.want {
			t.Errorf("LooksEncrypted(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestDecryptOrPlain(t *testing.T) {
	c := mustCredentialCipher(t, aesKeyV2, EncryptAES256)
	tests := []struct{ in, want string }{
		{"Ab3dEf7hIj1lMn5pz5NWj6Cpnc+9ulS10QznFg==", "15905222222"},
		{"15905222222", "15905222222"},
		{"buyer@example.com", "buyer@example.com"},
		{"", ""},
		// The right shape under the other key size: kept as it is.
		{"Ab3dEf7hIj1lMn5pWM2fa8+tJAAJOmw0Hm72YA==", "Ab3dEf7hIj1lMn5pWM2fa8+tJAAJOmw0Hm72YA=="},
	}
	for _, tt := range tests {
		if got := c.DecryptOrPlain(tt.in); got != tt.want {
			t.Errorf("DecryptOrPlain(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// checkIV fails t unless iv is 16 characters from [A-Za-z0-9].
func checkIV(t *testing.T, iv string) {
	t.Helper()
	if len(iv) != 16 {
		t.Fatalf("IV %q has length %d, want 16", iv, len(iv))
	}
	for _, r := range iv {
		if !strings.ContainsRune(ivAlphabet, r) {
			t.Fatalf("IV %q contains %q, outside [A-Za-z0-9]", iv, r)
		}
	}
}

func TestRandomIV(t *testing.T) {
	seen := map[rune]bool{}
	ivs := map[string]bool{}
	for range 1000 {
		iv, err := RandomIV()
		if err != nil {
			t.Fatal(err)
		}
		checkIV(t, iv)
		ivs[iv] = true
		for _, r := range iv {
			seen[r] = true
		}
	}
	// 16000 uniform draws miss one of 62 characters with probability
	// about 62*(61/62)^16000, far below 1e-100.
	if len(seen) != len(ivAlphabet) {
		t.Errorf("RandomIV used %d distinct characters, want %d", len(seen), len(ivAlphabet))
	}
	if len(ivs) != 1000 {
		t.Errorf("RandomIV repeated itself: %d distinct of 1000", len(ivs))
	}
}

func TestCredentialCipherConcurrent(t *testing.T) {
	c := mustCredentialCipher(t, aesKeyV1, EncryptAES256)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			pt := strings.Repeat("x", i*7)
			for range 200 {
				s, err := c.Encrypt(pt)
				if err != nil {
					t.Error(err)
					return
				}
				if got, err := c.Decrypt(s); err != nil || got != pt {
					t.Errorf("Decrypt = %q, %v; want %q", got, err, pt)
					return
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkDeriveAESKey(b *testing.B) {
	for b.Loop() {
		if _, err := DeriveAESKey(aesKeyV1, 256); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncrypt(b *testing.B) {
	c := mustCredentialCipher(b, aesKeyV1, EncryptAES256)
	for b.Loop() {
		if _, err := c.Encrypt("P@ssw0rd!中文-13800000000"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecrypt(b *testing.B) {
	c := mustCredentialCipher(b, aesKeyV1, EncryptAES256)
	s, err := c.Encrypt("P@ssw0rd!中文-13800000000")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := c.Decrypt(s); err != nil {
			b.Fatal(err)
		}
	}
}
