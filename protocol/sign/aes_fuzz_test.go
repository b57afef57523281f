package sign

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzDecrypt checks that Decrypt never panics, that everything it accepts
// is valid UTF-8 and re-encrypts under the same IV to the very same string,
// and that LooksEncrypted and DecryptOrPlain agree with it.
func FuzzDecrypt(f *testing.F) {
	for _, v := range aesVectors {
		f.Add(v.want)
	}
	f.Add("")
	f.Add("A1b2C3d4E5f6G7h8")
	f.Add("13800000000")
	f.Add("A1b2C3d4E5f6G7h8AE/O9ZzEdvIfCGWCDtOkLw=")
	f.Add("A1b2C3d4E5f6G7h8AE/O9ZzEdvIfCGWC\nDtOkLw==")
	f.Add("A1b2C3d4E5f6G7h8" + base64.StdEncoding.EncodeToString(make([]byte, 32)))
	ciphers := []*CredentialCipher{
		mustCredentialCipher(f, aesKeyV1, EncryptAES256),
		mustCredentialCipher(f, aesKeyV1, EncryptAES128),
		mustCredentialCipher(f, aesKeyV2, EncryptAES256),
		mustCredentialCipher(f, aesKeyV2, EncryptAES128),
	}
	f.Fuzz(func(t *testing.T, s string) {
		looks := LooksEncrypted(s)
		for _, c := range ciphers {
			pt, err := c.Decrypt(s)
			plain := c.DecryptOrPlain(s)
			if err != nil {
				if pt != "" {
					t.Fatalf("Decrypt(%q) returned %q with error %v", s, pt, err)
				}
				if plain != s {
					t.Fatalf("DecryptOrPlain(%q) = %q for a value Decrypt rejects", s, plain)
				}
				continue
			}
			if !utf8.ValidString(pt) {
				t.Fatalf("Decrypt(%q) = %q, not valid UTF-8", s, pt)
			}
			re, err := c.EncryptWithIV(pt, s[:16])
			if err != nil {
				t.Fatalf("EncryptWithIV(Decrypt(%q)): %v", s, err)
			}
			if re != s {
				t.Fatalf("Decrypt(%q) then EncryptWithIV = %q", s, re)
			}
			printableIV := true
			for i := range 16 {
				printableIV = printableIV && s[i] >= ' ' && s[i] <= '~'
			}
			if looks != printableIV {
				t.Fatalf("LooksEncrypted(%q) = %v for a decryptable value with printable IV %v", s, looks, printableIV)
			}
			if want := map[bool]string{true: pt, false: s}[looks]; plain != want {
				t.Fatalf("DecryptOrPlain(%q) = %q, want %q", s, plain, want)
			}
		}
		if !looks {
			return
		}
		// The shape LooksEncrypted promises.
		ct, err := base64.StdEncoding.Strict().DecodeString(s[16:])
		if err != nil || len(ct) == 0 || len(ct)%16 != 0 || strings.ContainsAny(s, "\r\n") {
			t.Fatalf("LooksEncrypted(%q) = true for a malformed value", s)
		}
	})
}

// FuzzDeriveAESKey checks that DeriveAESKey never panics, is deterministic,
// returns keys of the requested length, and that shorter keys are prefixes
// of the 256-bit key, as with Java's SHA1PRNG stream.
func FuzzDeriveAESKey(f *testing.F) {
	f.Add(aesKeyV1)
	f.Add(aesKeyV2)
	f.Add("abcde")
	f.Add("")
	f.Add("密钥+/=🔑")
	f.Fuzz(func(t *testing.T, key string) {
		k256, err := DeriveAESKey(key, 256)
		if err != nil || len(k256) != 32 {
			t.Fatalf("DeriveAESKey(%q, 256) = %x, %v", key, k256, err)
		}
		for _, bits := range []int{128, 192} {
			k, err := DeriveAESKey(key, bits)
			if err != nil || len(k) != bits/8 {
				t.Fatalf("DeriveAESKey(%q, %d) = %x, %v", key, bits, k, err)
			}
			if !bytes.Equal(k, k256[:bits/8]) {
				t.Fatalf("DeriveAESKey(%q, %d) = %x, not a prefix of the 256-bit key %x", key, bits, k, k256)
			}
		}
		again, _ := DeriveAESKey(key, 256)
		if !bytes.Equal(again, k256) {
			t.Fatalf("DeriveAESKey(%q, 256) is not deterministic", key)
		}
		// The second SHA1PRNG block is where the signed carry matters; the
		// first block is plain SHA1(SHA1(key)).
		if !bytes.Equal(k256[:20], deriveUnsignedCarry(key, 20)) {
			t.Fatalf("DeriveAESKey(%q): first block is not SHA1(SHA1(key))", key)
		}
	})
}

// FuzzDecryptClientSecret checks that DecryptClientSecret never panics on
// garbage, returns an empty string with every error, and that whatever it
// accepts round-trips through EncryptClientSecret.
func FuzzDecryptClientSecret(f *testing.F) {
	priv := testRSA(f)
	for _, secret := range []string{"secret", "", "中文"} {
		for _, v := range oaepVariantsForTest {
			f.Add(base64.StdEncoding.EncodeToString(oaepEncryptForTest(f, &priv.PublicKey, []byte(secret), v.hash, v.mgfHash)))
		}
	}
	f.Add("")
	f.Add("!!!!")
	f.Add("AAAA")
	f.Add(base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{0xff}, 256)))
	f.Fuzz(func(t *testing.T, s string) {
		pt, err := DecryptClientSecret(priv, s)
		if err != nil {
			if pt != "" {
				t.Fatalf("DecryptClientSecret returned %q with error %v", pt, err)
			}
			if !strings.HasPrefix(err.Error(), "sign: decrypt client secret: ") {
				t.Fatalf("error without context: %v", err)
			}
			return
		}
		ct, err := EncryptClientSecret(&priv.PublicKey, pt)
		if err != nil {
			t.Fatalf("EncryptClientSecret(DecryptClientSecret(%q)): %v", s, err)
		}
		if again, err := DecryptClientSecret(priv, ct); err != nil || again != pt {
			t.Fatalf("round trip of %q = %q, %v", pt, again, err)
		}
	})
}

// FuzzParseRSAPrivateKeyPEM checks that the PEM parser never panics and
// that any key it returns is a valid RSA key of at least MinRSAKeyBits.
func FuzzParseRSAPrivateKeyPEM(f *testing.F) {
	f.Add([]byte(testRSA2048PEM))
	f.Add([]byte("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n"))
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: X\n\nAAAA\n-----END PRIVATE KEY-----\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		key, err := ParseRSAPrivateKeyPEM(data)
		if (key == nil) == (err == nil) {
			t.Fatalf("ParseRSAPrivateKeyPEM = %v, %v: want exactly one of key and error", key != nil, err)
		}
		if key == nil {
			return
		}
		if key.N.BitLen() < MinRSAKeyBits {
			t.Fatalf("accepted a %d-bit key", key.N.BitLen())
		}
		if err := key.Validate(); err != nil {
			t.Fatalf("accepted an invalid key: %v", err)
		}
	})
}

// FuzzParseRSAPublicKeyPEM checks that the PEM parser never panics and that
// any key it returns has at least MinRSAKeyBits.
func FuzzParseRSAPublicKeyPEM(f *testing.F) {
	f.Add([]byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"))
	f.Add([]byte("-----BEGIN RSA PUBLIC KEY-----\nMAoCAwEAAQIDAQAB\n-----END RSA PUBLIC KEY-----\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		key, err := ParseRSAPublicKeyPEM(data)
		if (key == nil) == (err == nil) {
			t.Fatalf("ParseRSAPublicKeyPEM = %v, %v: want exactly one of key and error", key != nil, err)
		}
		if key != nil && key.N.BitLen() < MinRSAKeyBits {
			t.Fatalf("accepted a %d-bit key", key.N.BitLen())
		}
	})
}
