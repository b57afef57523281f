package sign

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// runJavaSource writes src to dir/name and runs it with the JDK's
// single-file source launcher (JDK 11+), feeding it stdin. It skips the
// test when no java is on PATH.
func runJavaSource(t *testing.T, name, src, stdin string, args ...string) string {
	t.Helper()
	java, err := exec.LookPath("java")
	if err != nil {
		t.Skip("java is not on PATH: skipping the cross-check against the JDK (install a JDK 11+ to run it)")
	}
	file := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	// A guard against a hung JVM, not a timing assertion.
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, java, append([]string{"-Dfile.encoding=UTF-8", file}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("java %s: %v\n%s", name, err, stderr.String())
	}
	return stdout.String()
}

// aesOracleJava derives keys and encrypts exactly as KooGallery's Java
// sample does. Each input line is hex(utf8 key) TAB hex(utf8 plaintext) TAB
// iv; each output line is hex(key128) hex(key192) hex(key256)
// enc256(plaintext) enc128(plaintext), tab-separated.
const aesOracleJava = `
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.security.SecureRandom;
import java.util.Base64;
import javax.crypto.Cipher;
import javax.crypto.KeyGenerator;
import javax.crypto.spec.IvParameterSpec;
import javax.crypto.spec.SecretKeySpec;

public class AESOracle {
    static byte[] unhex(String s) {
        byte[] b = new byte[s.length() / 2];
        for (int i = 0; i < b.length; i++) {
            b[i] = (byte) Integer.parseInt(s.substring(2 * i, 2 * i + 2), 16);
        }
        return b;
    }

    static String hex(byte[] b) {
        StringBuilder sb = new StringBuilder();
        for (byte x : b) sb.append(String.format("%02x", x & 0xff));
        return sb.toString();
    }

    static byte[] key(String key, int bits) throws Exception {
        KeyGenerator kg = KeyGenerator.getInstance("AES");
        SecureRandom r = SecureRandom.getInstance("SHA1PRNG");
        r.setSeed(key.getBytes("UTF-8"));
        kg.init(bits, r);
        return kg.generateKey().getEncoded();
    }

    static String enc(byte[] key, String iv, String pt) throws Exception {
        Cipher c = Cipher.getInstance("AES/CBC/PKCS5Padding");
        c.init(Cipher.ENCRYPT_MODE, new SecretKeySpec(key, "AES"),
               new IvParameterSpec(iv.getBytes(StandardCharsets.US_ASCII)));
        return iv + Base64.getEncoder().encodeToString(c.doFinal(pt.getBytes("UTF-8")));
    }

    public static void main(String[] args) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        StringBuilder out = new StringBuilder();
        String line;
        while ((line = in.readLine()) != null) {
            if (line.isEmpty()) continue;
            String[] f = line.split("\t", -1);
            String key = new String(unhex(f[0]), StandardCharsets.UTF_8);
            String pt = new String(unhex(f[1]), StandardCharsets.UTF_8);
            byte[] k128 = key(key, 128), k192 = key(key, 192), k256 = key(key, 256);
            out.append(hex(k128)).append('\t').append(hex(k192)).append('\t').append(hex(k256))
               .append('\t').append(enc(k256, f[2], pt)).append('\t').append(enc(k128, f[2], pt)).append('\n');
        }
        System.out.print(out);
    }
}
`

// randomJavaText returns a random valid UTF-8 string of up to maxRunes runes
// mixing ASCII (with + / =), Latin-1, Cyrillic, CJK and astral characters.
func randomJavaText(r *rand.Rand, maxRunes int) string {
	ranges := [][2]rune{
		{0x21, 0x7e}, {0x21, 0x7e}, {0x21, 0x7e},
		{0xa0, 0xff}, {0x400, 0x4ff}, {0x4e00, 0x9fff}, {0x1f300, 0x1f64f},
	}
	var b strings.Builder
	for range r.IntN(maxRunes + 1) {
		if r.IntN(8) == 0 {
			b.WriteByte("+/= "[r.IntN(4)])
			continue
		}
		rg := ranges[r.IntN(len(ranges))]
		b.WriteRune(rg[0] + rune(r.IntN(int(rg[1]-rg[0]+1))))
	}
	return b.String()
}

// TestAESMatchesJDK checks DeriveAESKey and CredentialCipher against the JDK
// itself (KeyGenerator + SHA1PRNG + AES/CBC/PKCS5Padding) for ~200 keys.
func TestAESMatchesJDK(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a JVM")
	}
	type jcase struct{ key, plaintext, iv string }
	cases := []jcase{
		{aesKeyV1, "admin", "A1b2C3d4E5f6G7h8"},
		{aesKeyV2, "P@ssw0rd!中文", "Ab3dEf7hIj1lMn5p"},
		{"abcde", "", "0000000000000000"},
		{"", "empty key", "AAAAAAAAAAAAAAAA"},
		{"+/=", "x", "zzzzzzzzzzzzzzzz"},
		{"a+b/c==", strings.Repeat("long ", 100), "Zz09Zz09Zz09Zz09"},
		{strings.Repeat("密钥🔑", 300), "13800000000", "Ab3dEf7hIj1lMn5p"},
	}
	r := rand.New(rand.NewPCG(20240101, 3))
	for range 200 {
		iv, err := RandomIV()
		if err != nil {
			t.Fatal(err)
		}
		cases = append(cases, jcase{randomJavaText(r, 70), randomJavaText(r, 40), iv})
	}
	var in strings.Builder
	for _, c := range cases {
		fmt.Fprintf(&in, "%x\t%x\t%s\n", c.key, c.plaintext, c.iv)
	}
	lines := strings.Split(strings.TrimSpace(runJavaSource(t, "AESOracle.java", aesOracleJava, in.String())), "\n")
	if len(lines) != len(cases) {
		t.Fatalf("java printed %d lines for %d cases", len(lines), len(cases))
	}
	bad := 0
	for i, c := range cases {
		f := strings.Split(lines[i], "\t")
		if len(f) != 5 {
			t.Fatalf("java line %d: %q", i, lines[i])
		}
		var got []string
		for _, bits := range []int{128, 192, 256} {
			k, err := DeriveAESKey(c.key, bits)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, hex.EncodeToString(k))
		}
		for _, typ := range []EncryptType{EncryptAES256, EncryptAES128} {
			var s string
			if c.key == "" {
				// NewCredentialCipher refuses an empty Key; the derivation
				// above still covers it.
				s = f[len(got)]
			} else {
				var err error
				s, err = mustCredentialCipher(t, c.key, typ).EncryptWithIV(c.plaintext, c.iv)
				if err != nil {
					t.Fatal(err)
				}
			}
			got = append(got, s)
		}
		for j := range f {
			if got[j] != f[j] {
				bad++
				if bad <= 5 {
					t.Errorf("case %d (key %q), field %d: got %s, JDK %s", i, c.key, j, got[j], f[j])
				}
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%d fields of %d cases differ from the JDK", bad, len(cases))
	}
}
