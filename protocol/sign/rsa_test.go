package sign

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"strings"
	"sync"
	"testing"
)

// testRSA2048PEM is a 2048-bit RSA key made for these tests only. "TESTING
// KEY" stands in for "PRIVATE KEY" so that secret scanners leave it alone.
var testRSA2048PEM = strings.ReplaceAll(`
-----BEGIN TESTING KEY-----
MIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQClvjxTWduH4Lvz
4bKcwEt1uw4wG0wfjLtHdp1O20PL5V5K13EoOvc74qrcGyX1p4JXQlqe+AcecTBP
R7MdpAkjzhBtOVfZKDiEHzRN6HAtgV3wj7Y59il4lkvoZ8lD8zEeUJCxn5OxkW/N
5ds7Ih5uIWi4S3I15G8TvnY8dLF22crn0HepWvlelcAwpDWs2x0gcOhQMak3VAJG
TNNi62R5yqMLNsAGChVsMpNz61OQgBE0hJI300R+QjrbM9m1mgBm52+gveWfm/uM
F6CEipx5KFz2mmTskL9ZE1WBlU4WHQNtPtc4nr1O++y5O2KGdWL7FdLqxf3vOXVr
k1lQ6DlRAgMBAAECggEAAUNLvfKO1HKSkJ85stI0jrO7hygqqT+8w5JrTJIpjwLO
eDFf6JDHmMOS4GwJZBRJKpoK5pTB8I6nzTiOtXib2zgzFtetzC3dD85fD7nDmZ9y
77g8CQErF0wOcd4aSyGbmWrj4H6Y/iNyDW1cSn0ga81mpsuxg3HApFg6Yx6J7sSs
NPwt6e6BaFQnWULcqMFOimdldzyMFYqUPu3bB3KILHOoEUtVvglmOcYKHtp8YU3/
aCH2lDed0eEUyCMNwKzcc3ZNsRHO0eMigpZ80N5yI57Zu8w/5r1e1baN01F1fKTo
54Pe3P14gh/elMaiD1qUx10xGy0N/1G5l6XolCQ2owKBgQDSWzTWz4Omq0rEdSq0
x5zzfJjlQtx+faWYVOHbbTwqj2snaq7mPwJ8q92x09qTq6zH4Ju+hDp1pVVElyv5
aN0srrMlQbksbvydjq0eFXTsK6MHhRe402w+41da9fbwWIyv0i+9jYEFToIn+lqe
wsJqoA6AQNvZrUYxQN66QJYjVwKBgQDJtN+SJYlMVyp8KRNg8NTqeZTrnxFU3Uz4
pCMuXa+2pYHk95YTlzTefoCC/BHf+Bzavwx1R55a4PWO2mW/2SXbgALG1E7JPRiX
Jak2j4p/YhGxrr7FXtWyeX1gvWujvSQFUTR6FUj3TZVrgUkjazFrSuUZkeuXOyv1
3khCwm4HlwKBgA/O1NizvYP/6V18JJpzScMugNrxvFoxHQmmj1aLDfNw1a+fn8cj
ww8VZ1KexhVE2HYo1etqSm5e31qJNb/Hdp+N/V52YvEI4ikA+NeC60d4PAcrpE26
ba8ILJ9kTotfTCtGU1oeUSzR6owQj1DQ+AVFQ/G1bhAcqmK3KkW65s1/AoGAJ3je
24G++ZKBPOTo5uqaL/x0+Rsa0Cmye2HbhKJO1YZUAhO1acYIUZYd3gQoF1U9iE0k
yfqm8Y/eXgM9MCr1bpwBbxlzBYyQOFvlXkj+yGjPn57btFIXraJ6t6i53MQRvXyj
sVRjAApNuEkHoAfFFwMEDFny6ZhpxOan63CTCacCgYB/wVvhGeqiPSW8EPduXYEN
r+pa+XgZqQK67O72+2pEFd/yu+hO+V2S/h1A7OMXcwvZyK7klVAZCYa0ObpmLPJY
TsmrHvKI7o2LOH0ZH+eCIAKqy0NqC5L+L/JCl0WBE+Hw2uhWiKqghkbkep8qLUiO
/4/h9i+xUxFt3niLYhN6cw==
-----END TESTING KEY-----
`, "TESTING KEY", "PRIVATE KEY")

var (
	testRSAOnce sync.Once
	testRSAKey  *rsa.PrivateKey
	testRSAErr  error
)

// testRSA returns the parsed testRSA2048PEM.
func testRSA(tb testing.TB) *rsa.PrivateKey {
	tb.Helper()
	testRSAOnce.Do(func() {
		testRSAKey, testRSAErr = ParseRSAPrivateKeyPEM([]byte(testRSA2048PEM))
	})
	if testRSAErr != nil {
		tb.Fatalf("parse test key: %v", testRSAErr)
	}
	return testRSAKey
}

var (
	testRSA3072Once sync.Once
	testRSA3072Key  *rsa.PrivateKey
	testRSA3072Err  error
)

// testRSA3072 returns a 3072-bit key generated once per test binary, the
// size KooGallery asks for.
func testRSA3072(tb testing.TB) *rsa.PrivateKey {
	tb.Helper()
	testRSA3072Once.Do(func() {
		testRSA3072Key, testRSA3072Err = rsa.GenerateKey(rand.Reader, 3072)
	})
	if testRSA3072Err != nil {
		tb.Fatalf("generate 3072-bit key: %v", testRSA3072Err)
	}
	return testRSA3072Key
}

// oaepEncryptForTest is RSAES-OAEP-ENCRYPT (RFC 8017 §7.1.1) with an empty
// label and separate hashes for OAEP and MGF1. It exists because
// rsa.EncryptOAEPWithOptions needs go1.26 while go.mod says go1.25; it is
// checked against crypto/rsa in TestOAEPEncryptForTest.
func oaepEncryptForTest(tb testing.TB, pub *rsa.PublicKey, msg []byte, hash, mgfHash crypto.Hash) []byte {
	tb.Helper()
	k, hLen := pub.Size(), hash.Size()
	if len(msg) > k-2*hLen-2 {
		tb.Fatalf("message of %d bytes too long for OAEP with a %d-byte key", len(msg), k)
	}
	db := make([]byte, k-hLen-1)
	copy(db, hash.New().Sum(nil)) // hash of the empty label
	db[len(db)-len(msg)-1] = 1
	copy(db[len(db)-len(msg):], msg)
	seed := make([]byte, hLen)
	if _, err := rand.Read(seed); err != nil {
		tb.Fatal(err)
	}
	mgf1XORForTest(db, mgfHash, seed)
	mgf1XORForTest(seed, mgfHash, db)
	em := append(append([]byte{0}, seed...), db...)
	m := new(big.Int).SetBytes(em)
	c := m.Exp(m, big.NewInt(int64(pub.E)), pub.N)
	return c.FillBytes(make([]byte, k))
}

// mgf1XORForTest xors out with MGF1(seed) using hash h.
func mgf1XORForTest(out []byte, h crypto.Hash, seed []byte) {
	var counter [4]byte
	for done := 0; done < len(out); {
		d := h.New()
		d.Write(seed)
		d.Write(counter[:])
		for _, b := range d.Sum(nil) {
			if done == len(out) {
				break
			}
			out[done] ^= b
			done++
		}
		for i := 3; i >= 0; i-- {
			counter[i]++
			if counter[i] != 0 {
				break
			}
		}
	}
}

func TestOAEPEncryptForTest(t *testing.T) {
	priv := testRSA(t)
	for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256} {
		ct := oaepEncryptForTest(t, &priv.PublicKey, []byte("check"), h, h)
		pt, err := rsa.DecryptOAEP(h.New(), nil, priv, ct, nil)
		if err != nil || string(pt) != "check" {
			t.Fatalf("crypto/rsa cannot decrypt the test encoder's %v output: %q, %v", h, pt, err)
		}
	}
}

// oaepVariantsForTest are the variants DecryptClientSecret must accept.
var oaepVariantsForTest = []struct {
	name          string
	hash, mgfHash crypto.Hash
}{
	{"SHA-256/MGF1-SHA-256", crypto.SHA256, crypto.SHA256},
	{"SHA-256/MGF1-SHA-1", crypto.SHA256, crypto.SHA1},
	{"SHA-1/MGF1-SHA-1", crypto.SHA1, crypto.SHA1},
}

func TestDecryptClientSecretVariants(t *testing.T) {
	priv := testRSA(t)
	secrets := []string{"s3cr3t-Client-Secret_0123456789", "", "中文密钥🔑", strings.Repeat("x", 190)}
	encodings := []struct {
		name string
		enc  func([]byte) string
	}{
		{"std", base64.StdEncoding.EncodeToString},
		{"raw std", base64.RawStdEncoding.EncodeToString},
		{"url", base64.URLEncoding.EncodeToString},
		{"raw url", base64.RawURLEncoding.EncodeToString},
		{"wrapped", func(b []byte) string {
			s := base64.StdEncoding.EncodeToString(b)
			var w strings.Builder
			for len(s) > 64 {
				w.WriteString(s[:64] + "\r\n")
				s = s[64:]
			}
			return " " + w.String() + s + "\n"
		}},
	}
	for _, v := range oaepVariantsForTest {
		for _, secret := range secrets {
			ct := oaepEncryptForTest(t, &priv.PublicKey, []byte(secret), v.hash, v.mgfHash)
			for _, e := range encodings {
				got, err := DecryptClientSecret(priv, e.enc(ct))
				if err != nil {
					t.Fatalf("%s, %s base64: %v", v.name, e.name, err)
				}
				if got != secret {
					t.Errorf("%s, %s base64: got %q, want %q", v.name, e.name, got, secret)
				}
			}
		}
	}
}

func TestDecryptClientSecret3072(t *testing.T) {
	priv := testRSA3072(t)
	const secret = "kooGallery-3072-secret"
	for _, v := range oaepVariantsForTest {
		ct := oaepEncryptForTest(t, &priv.PublicKey, []byte(secret), v.hash, v.mgfHash)
		got, err := DecryptClientSecret(priv, base64.StdEncoding.EncodeToString(ct))
		if err != nil || got != secret {
			t.Errorf("%s: got %q, %v", v.name, got, err)
		}
	}
	s, err := EncryptClientSecret(&priv.PublicKey, secret)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := DecryptClientSecret(priv, s); err != nil || got != secret {
		t.Errorf("round trip: got %q, %v", got, err)
	}
}

func TestDecryptClientSecretLeadingZero(t *testing.T) {
	priv := testRSA(t)
	const secret = "leading-zero"
	// About one ciphertext in 170 starts with a zero byte for this key.
	var ct []byte
	for range 20000 {
		c, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, &priv.PublicKey, []byte(secret), nil)
		if err != nil {
			t.Fatal(err)
		}
		if c[0] == 0 {
			ct = c
			break
		}
	}
	if ct == nil {
		t.Fatal("no ciphertext with a leading zero byte in 20000 tries")
	}
	for name, b := range map[string][]byte{
		"stripped":   ct[1:],
		"extra zero": append([]byte{0}, ct...),
		"exact":      ct,
	} {
		got, err := DecryptClientSecret(priv, base64.StdEncoding.EncodeToString(b))
		if err != nil || got != secret {
			t.Errorf("%s: got %q, %v", name, got, err)
		}
	}
}

func TestDecryptClientSecretFailures(t *testing.T) {
	priv := testRSA(t)
	const secret = "do-not-leak-this-secret"
	// A ciphertext whose first byte is not zero: with a zero there (one in
	// 256), the "long" case below, one byte appended, is read as a
	// leading zero byte too many and stripped, and fails in OAEP instead
	// of on its length.
	var ct string
	var raw []byte
	for raw == nil || raw[0] == 0 {
		var err error
		if ct, err = EncryptClientSecret(&priv.PublicKey, secret); err != nil {
			t.Fatal(err)
		}
		raw, _ = base64.StdEncoding.DecodeString(ct)
	}
	other := testRSA3072(t)
	flipped := bytes.Clone(raw)
	flipped[len(flipped)/2] ^= 0x01
	tests := []struct {
		name   string
		priv   *rsa.PrivateKey
		in     string
		errHas string
	}{
		{"nil key", nil, ct, "no private key"},
		{"empty", priv, "", "empty"},
		{"blank", priv, " \n\t", "empty"},
		{"bad base64", priv, "!!!!not base64!!!!", "bad base64"},
		{"mixed alphabets", priv, "ab+_" + ct[4:], "bad base64"},
		{"short", priv, base64.StdEncoding.EncodeToString([]byte("tiny")), "no OAEP variant"},
		{"long", priv, base64.StdEncoding.EncodeToString(append(bytes.Clone(raw), 1)), "want 256"},
		{"long nonzero prefix", priv, base64.StdEncoding.EncodeToString(append([]byte{1}, raw...)), "want 256"},
		{"all ones", priv, base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xff}, 256)), "decrypt client secret"},
		{"zero", priv, base64.StdEncoding.EncodeToString(make([]byte, 256)), "no OAEP variant"},
		{"bit flip", priv, base64.StdEncoding.EncodeToString(flipped), "no OAEP variant"},
		// A short ciphertext is zero-extended, so a wrong, larger key
		// fails in OAEP, not on the length.
		{"wrong key", other, ct, "no OAEP variant"},
	}
	for _, tt := range tests {
		got, err := DecryptClientSecret(tt.priv, tt.in)
		if err == nil || got != "" {
			t.Errorf("%s: got %q, %v; want an error", tt.name, got, err)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, tt.errHas) {
			t.Errorf("%s: error %q does not mention %q", tt.name, msg, tt.errHas)
		}
		if strings.Contains(msg, secret) {
			t.Errorf("%s: error leaks the secret: %q", tt.name, msg)
		}
		if strings.Contains(msg, "no OAEP variant") {
			for _, v := range []string{"OAEP(SHA-256, MGF1-SHA-256)", "OAEP(SHA-256, MGF1-SHA-1)", "OAEP(SHA-1, MGF1-SHA-1)"} {
				if !strings.Contains(msg, v) {
					t.Errorf("%s: error %q does not name %s", tt.name, msg, v)
				}
			}
		}
	}
}

func TestEncryptClientSecret(t *testing.T) {
	priv := testRSA(t)
	const secret = "client-secret"
	s1, err := EncryptClientSecret(&priv.PublicKey, secret)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := EncryptClientSecret(&priv.PublicKey, secret)
	if err != nil {
		t.Fatal(err)
	}
	if s1 == s2 {
		t.Error("two encryptions are equal: OAEP must be randomised")
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(s1)
	if err != nil || len(raw) != priv.Size() {
		t.Fatalf("output is not %d bytes of padded std base64: %d, %v", priv.Size(), len(raw), err)
	}
	// It is exactly OAEP(SHA-256, MGF1-SHA-256).
	pt, err := rsa.DecryptOAEP(sha256.New(), nil, priv, raw, nil)
	if err != nil || string(pt) != secret {
		t.Errorf("DecryptOAEP(SHA-256) = %q, %v", pt, err)
	}
	if _, err := rsa.DecryptOAEP(sha1.New(), nil, priv, raw, nil); err == nil {
		t.Error("output also decrypts as OAEP(SHA-1)")
	}
	if _, err := EncryptClientSecret(nil, secret); err == nil {
		t.Error("EncryptClientSecret(nil) succeeded")
	}
	long := strings.Repeat("y", priv.Size())
	if s, err := EncryptClientSecret(&priv.PublicKey, long); err == nil || s != "" || strings.Contains(err.Error(), long) {
		t.Errorf("EncryptClientSecret(too long) = %q, %v; want an error without the secret", s, err)
	}
}

// pemOf encodes der as a PEM block of type typ with optional headers.
func pemOf(typ string, der []byte, headers map[string]string) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Headers: headers, Bytes: der})
}

func TestParseRSAPrivateKeyPEM(t *testing.T) {
	priv := testRSA(t)
	pkcs1 := x509.MarshalPKCS1PrivateKey(priv)
	pkcs8, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ec8, err := x509.MarshalPKCS8PrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	cert := pemOf("CERTIFICATE", []byte("not parsed"), nil)
	tests := []struct {
		name   string
		in     []byte
		errHas string // empty: must parse to priv
	}{
		{"pkcs1", pemOf("RSA PRIVATE KEY", pkcs1, nil), ""},
		{"pkcs8", pemOf("PRIVATE KEY", pkcs8, nil), ""},
		{"pkcs8 labelled pkcs1", pemOf("RSA PRIVATE KEY", pkcs8, nil), ""},
		{"pkcs1 labelled pkcs8", pemOf("PRIVATE KEY", pkcs1, nil), ""},
		{"after a certificate", append(append([]byte("junk before\n"), cert...), pemOf("PRIVATE KEY", pkcs8, nil)...), ""},
		{"crlf", bytes.ReplaceAll(pemOf("PRIVATE KEY", pkcs8, nil), []byte("\n"), []byte("\r\n")), ""},
		{"empty", nil, "no PEM block"},
		{"not pem", []byte("MIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQ"), "no PEM block"},
		{"only a certificate", cert, `found "CERTIFICATE"`},
		{"public key", pemOf("PUBLIC KEY", []byte{1}, nil), "no RSA PRIVATE KEY or PRIVATE KEY PEM block"},
		{"encrypted", pemOf("RSA PRIVATE KEY", pkcs1, map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-256-CBC,00112233445566778899AABBCCDDEEFF"}), "encrypted PEM"},
		{"garbage der", pemOf("PRIVATE KEY", []byte("garbage"), nil), "parse RSA private key"},
		{"truncated der", pemOf("RSA PRIVATE KEY", pkcs1[:len(pkcs1)/2], nil), "parse RSA private key"},
		{"ec key", pemOf("PRIVATE KEY", ec8, nil), "not RSA"},
		{"1024 bits", pemOf("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(small), nil), "1024 bits"},
	}
	for _, tt := range tests {
		got, err := ParseRSAPrivateKeyPEM(tt.in)
		if tt.errHas == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			} else if !got.Equal(priv) {
				t.Errorf("%s: parsed a different key", tt.name)
			}
			continue
		}
		if err == nil || got != nil {
			t.Errorf("%s: got %v, %v; want an error", tt.name, got != nil, err)
		} else if !strings.Contains(err.Error(), tt.errHas) {
			t.Errorf("%s: error %q does not mention %q", tt.name, err, tt.errHas)
		}
	}
}

func TestParseRSAPublicKeyPEM(t *testing.T) {
	pub := &testRSA(t).PublicKey
	pkix, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecPKIX, err := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		in     []byte
		errHas string
	}{
		{"pkix", pemOf("PUBLIC KEY", pkix, nil), ""},
		{"pkcs1", pemOf("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(pub), nil), ""},
		{"pkcs1 labelled pkix", pemOf("PUBLIC KEY", x509.MarshalPKCS1PublicKey(pub), nil), ""},
		{"empty", nil, "no PEM block"},
		{"private key", []byte(testRSA2048PEM), `found "PRIVATE KEY"`},
		{"garbage", pemOf("PUBLIC KEY", []byte("garbage"), nil), "parse RSA public key"},
		{"ec", pemOf("PUBLIC KEY", ecPKIX, nil), "not RSA"},
		{"1024 bits", pemOf("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&small.PublicKey), nil), "1024 bits"},
	}
	for _, tt := range tests {
		got, err := ParseRSAPublicKeyPEM(tt.in)
		if tt.errHas == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			} else if !got.Equal(pub) {
				t.Errorf("%s: parsed a different key", tt.name)
			}
			continue
		}
		if err == nil || got != nil {
			t.Errorf("%s: got %v, %v; want an error", tt.name, got != nil, err)
		} else if !strings.Contains(err.Error(), tt.errHas) {
			t.Errorf("%s: error %q does not mention %q", tt.name, err, tt.errHas)
		}
	}
}

// rsaOracleJava encrypts hex(args[2]) under the X.509 public key args[0]
// with three OAEP transformations, one line each, then decrypts args[3]
// (base64, OAEP SHA-256/MGF1-SHA-256) with the PKCS#8 key args[1] and
// prints the plaintext in hex.
const rsaOracleJava = `
import java.security.KeyFactory;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.spec.MGF1ParameterSpec;
import java.security.spec.PKCS8EncodedKeySpec;
import java.security.spec.X509EncodedKeySpec;
import java.util.Base64;
import javax.crypto.Cipher;
import javax.crypto.spec.OAEPParameterSpec;
import javax.crypto.spec.PSource;

public class RSAOracle {
    public static void main(String[] a) throws Exception {
        KeyFactory kf = KeyFactory.getInstance("RSA");
        PublicKey pub = kf.generatePublic(new X509EncodedKeySpec(Base64.getDecoder().decode(a[0])));
        PrivateKey priv = kf.generatePrivate(new PKCS8EncodedKeySpec(Base64.getDecoder().decode(a[1])));
        byte[] msg = java.util.HexFormat.of().parseHex(a[2]);
        OAEPParameterSpec sha256 = new OAEPParameterSpec("SHA-256", "MGF1", MGF1ParameterSpec.SHA256, PSource.PSpecified.DEFAULT);

        Cipher c = Cipher.getInstance("RSA/ECB/OAEPWithSHA-256AndMGF1Padding");
        c.init(Cipher.ENCRYPT_MODE, pub);
        System.out.println("SHA-256/MGF1-SHA-1 " + Base64.getEncoder().encodeToString(c.doFinal(msg)));

        c = Cipher.getInstance("RSA/ECB/OAEPPadding");
        c.init(Cipher.ENCRYPT_MODE, pub, sha256);
        System.out.println("SHA-256/MGF1-SHA-256 " + Base64.getEncoder().encodeToString(c.doFinal(msg)));

        c = Cipher.getInstance("RSA/ECB/OAEPWithSHA-1AndMGF1Padding");
        c.init(Cipher.ENCRYPT_MODE, pub);
        System.out.println("SHA-1/MGF1-SHA-1 " + Base64.getEncoder().encodeToString(c.doFinal(msg)));

        c = Cipher.getInstance("RSA/ECB/OAEPPadding");
        c.init(Cipher.DECRYPT_MODE, priv, sha256);
        System.out.println("decrypted " + java.util.HexFormat.of().formatHex(c.doFinal(Base64.getDecoder().decode(a[3]))));
    }
}
`

// TestClientSecretMatchesJDK checks that DecryptClientSecret reads what the
// JDK's OAEP transformations produce, Java's default
// "OAEPWithSHA-256AndMGF1Padding" (MGF1-SHA-1) included, and that the JDK
// reads EncryptClientSecret's output.
func TestClientSecretMatchesJDK(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a JVM")
	}
	priv := testRSA3072(t)
	const secret = "jdk-secret-密钥"
	pkix, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	ours, err := EncryptClientSecret(&priv.PublicKey, secret)
	if err != nil {
		t.Fatal(err)
	}
	out := runJavaSource(t, "RSAOracle.java", rsaOracleJava, "",
		base64.StdEncoding.EncodeToString(pkix), base64.StdEncoding.EncodeToString(pkcs8),
		hex.EncodeToString([]byte(secret)), ours)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 {
		t.Fatalf("java printed %q", out)
	}
	for _, line := range lines[:3] {
		name, ct, _ := strings.Cut(line, " ")
		got, err := DecryptClientSecret(priv, ct)
		if err != nil || got != secret {
			t.Errorf("JDK %s: DecryptClientSecret = %q, %v", name, got, err)
		}
	}
	if want := "decrypted " + hex.EncodeToString([]byte(secret)); lines[3] != want {
		t.Errorf("JDK decrypting EncryptClientSecret: %q, want %q", lines[3], want)
	}
}
