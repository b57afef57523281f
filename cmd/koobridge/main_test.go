package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Inputs of the self-generated vectors in spec/saas-v2.md §2.5.
const (
	v2Key   = "TestAccessKey-0123456789abcdef"
	v2Nonce = "50D83FDECAED6CCD8EF597F2A577950527928BA287D04E6036E92B2806FD17DA"
	v2TS    = "1680508066618"
	v2Body  = `{"activity":"newInstance","businessId":"87b94795-0603-4e24-8ae5-69420d60e3c8","orderId":"CS2211181819B4LVS","orderLineId":"CS2211181819B4LVS-000001","testFlag":"1"}`
	v1Key   = "9fa6c870-8bb0-4e9b-b71e-4c223300156f"
)

type cliResult struct {
	code           int
	stdout, stderr string
}

func runCLI(t *testing.T, stdin string, args ...string) cliResult {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, strings.NewReader(stdin), &out, &errOut)
	return cliResult{code: code, stdout: out.String(), stderr: errOut.String()}
}

// TestSpecVectors reproduces every vector of the spec files through the CLI,
// with the exact output shapes other tools script against.
func TestSpecVectors(t *testing.T) {
	tests := []struct {
		name  string
		stdin string
		args  []string
		want  string
	}{
		{"v2 signature", v2Body,
			[]string{"sign", "v2", "--key", v2Key, "--nonce", v2Nonce, "--timestamp", v2TS},
			"A64B1BFCE1A372DE15EF4377957528E7F7B0CE4944D4CAEA7B7363339DF27C82"},
		{"kit x-sign", `{"instanceId":"inst-001","tenantId":"t1","flag":"1","testFlag":"1"}`,
			[]string{"sign", "kit", "--key", v2Key, "--nonce", v2Nonce, "--timestamp", v2TS},
			"5608b271054794bf7a43d2f3136586f6a94f8f0e8903fd3fffc9e7308ae1555b"},
		{"body-sign v2 key", `{"resultCode":"000000","resultMsg":"success","instanceId":"inst-001"}`,
			[]string{"sign", "body", "--key", v2Key},
			`sign_type="HMAC-SHA256", signature="m170lIqQUVIcBE0YAhIubMAxxKwYV2PhJnGUTLTac0Q="`},
		{"body-sign v1 key", `{"resultCode":"000000","resultMsg":"success."}`,
			[]string{"sign", "body", "--key", v1Key},
			`sign_type="HMAC-SHA256", signature="TqHrax4nGMCqfFPsub8jnfn6V0MhK5bWa0lTIOZGsIQ="`},
		{"usage signature", `{"usage_records":[{"begin_time":"20240101T000000Z","end_time":"20240101T010000Z","instance_id":"inst-001","metering_sn":"sn-0001","record_time":"20240101T010500Z","usage_value":"1.5"}]}`,
			[]string{"sign", "usage", "--key", v2Key, "--nonce", v2Nonce, "--timestamp", v2TS},
			"+2YsktCXbDxEKrfCH1FLNyOEgn6hSU9wwMmFh4Dk7IA="},
		{"v1 authToken", "",
			[]string{"sign", "v1", "--key", v1Key, "activity=newInstance", "businessId=61e834ba", "customerId=68cbc86a",
				"orderId=CS1906666666ABCDE", "testFlag=1", "timeStamp=20170725025113409"},
			"YOo1GGluq53mv2z+k/t3Yl5tM9eC1I3RubYPTVvxtmk="},
		{"v1 authToken, legacy license", "",
			[]string{"sign", "v1", "--key", "oldkey123", "activity=getLicense", "businessId=b1", "customerId=c1",
				"orderId=o1", "productId=p1", "timeStamp=20240101120000000"},
			"dteC4joQtZG3c5cmnTIGKppEyAFsFKD58YfB5LpjlUc="},
		{"v1 authToken skips authToken and empty values", "",
			[]string{"sign", "v1", "--key", v1Key, "authToken=ignored", "customerName=", "activity=newInstance",
				"businessId=61e834ba", "customerId=68cbc86a", "orderId=CS1906666666ABCDE", "testFlag=1",
				"timeStamp=20170725025113409"},
			"YOo1GGluq53mv2z+k/t3Yl5tM9eC1I3RubYPTVvxtmk="},
		{"license 2.0 signature (lower-case input vector, upper-case output)", `{"activity":"releaseLicenseCode","license":"PL0000000001","testFlag":"1"}`,
			[]string{"sign", "v2", "--key", "test-access-key-0123456789", "--nonce", "RLLUammMSInlrNWb", "--timestamp", "1666677988730"},
			"55E70F1EBCABB20AAEF33A1BCB649662A5EE329CB72E3AC2CC9EE04D28A6C006"},
		{"apig, Huawei documentation example", "",
			[]string{"sign", "apig", "--ak", "QTWAOYTTINDUT2QVKYUC", "--sk", "MFyfvK41ba2giqM7Uio6PznpdUKGpownRZlmVmHc",
				"--method", "GET", "--url", "https://service.region.example.com/v1/77b6a44cba5143ab91d13ab9a8ff44fd/vpcs?limit=2&marker=13551d6b-755d-4757-b956-536f674975c0",
				"--header", "Content-Type: application/json", "--date", "20191115T033655Z"},
			"SDK-HMAC-SHA256 Access=QTWAOYTTINDUT2QVKYUC, SignedHeaders=content-type;host;x-sdk-date, Signature=7be6668032f70418fcc22abc52071e57aff61b84a1d2381bb430d6870f4f6ebe"},
		{"apig, KooGallery license activate", "",
			[]string{"sign", "apig", "--ak", "AK", "--sk", "123", "--method", "post",
				"--url", "https://mkt.myhuaweicloud.com/api/mkp-openapi-public/global/v1/license/activate",
				"--header", "content-type: application/json", "--header", "x-stage: RELEASE", "--date", "20240317T144237Z"},
			"SDK-HMAC-SHA256 Access=AK, SignedHeaders=content-type;host;x-sdk-date;x-stage, Signature=77595ad624b6e4e49990b8c4e84bf1c287457fca61069c4e60b9b6765b52053d"},
		{"apig, huaweicloud-sdk-go-v3 signer test (only x-sdk-date signed)", "",
			[]string{"sign", "apig", "--ak", "AccessKey", "--sk", "SecretKey", "--method", "GET",
				"--url", "https://example.huaweicloud.com/path?limit=1", "--date", "20060102T150405Z", "--signed-headers", "x-sdk-date"},
			"SDK-HMAC-SHA256 Access=AccessKey, SignedHeaders=x-sdk-date, Signature=5a2ce64c865e0e6046321c6f3d5a77ba8413eeaf355c3166c03d58d02ac79624"},
		{"encrypt type 1", "",
			[]string{"encrypt", "--key", v2Key, "--type", "1", "--iv", "Ab3dEf7hIj1lMn5p", "15905222222"},
			"Ab3dEf7hIj1lMn5pz5NWj6Cpnc+9ulS10QznFg=="},
		{"encrypt type 2", "",
			[]string{"encrypt", "--key", v2Key, "--type", "2", "--iv", "Ab3dEf7hIj1lMn5p", "15905222222"},
			"Ab3dEf7hIj1lMn5pWM2fa8+tJAAJOmw0Hm72YA=="},
		{"encrypt non-ASCII", "",
			[]string{"encrypt", "--key", v2Key, "--type", "1", "--iv", "Ab3dEf7hIj1lMn5p", "P@ssw0rd!中文"},
			"Ab3dEf7hIj1lMn5pjcqxlKfimuT00Whnt/oE2A=="},
		{"encrypt v1 key, AES-256", "",
			[]string{"encrypt", "--key", v1Key, "--iv", "A1b2C3d4E5f6G7h8", "admin"},
			"A1b2C3d4E5f6G7h8AE/O9ZzEdvIfCGWCDtOkLw=="},
		{"encrypt v1 key, AES-128", "",
			[]string{"encrypt", "--key", v1Key, "--type", "2", "--iv", "A1b2C3d4E5f6G7h8", "admin"},
			"A1b2C3d4E5f6G7h8r9nJcNFNHV27ys2x+zjRfg=="},
		{"encrypt v1 key, mobile", "",
			[]string{"encrypt", "--key", v1Key, "--type", "1", "--iv", "A1b2C3d4E5f6G7h8", "13800000000"},
			"A1b2C3d4E5f6G7h8XKPcuk44623skZ2ACEboPA=="},
		{"decrypt type 1", "",
			[]string{"decrypt", "--key", v2Key, "--type", "1", "Ab3dEf7hIj1lMn5pz5NWj6Cpnc+9ulS10QznFg=="},
			"15905222222"},
		{"decrypt type 2", "",
			[]string{"decrypt", "--key", v2Key, "--type", "2", "Ab3dEf7hIj1lMn5pWM2fa8+tJAAJOmw0Hm72YA=="},
			"15905222222"},
		{"decrypt non-ASCII", "",
			[]string{"decrypt", "--key", v2Key, "--type", "1", "Ab3dEf7hIj1lMn5pjcqxlKfimuT00Whnt/oE2A=="},
			"P@ssw0rd!中文"},
		{"verify v2", v2Body,
			[]string{"verify", "v2", "--key", v2Key, "--nonce", v2Nonce, "--timestamp", v2TS,
				"--signature", "a64b1bfce1a372de15ef4377957528e7f7b0ce4944d4caea7b7363339df27c82"},
			"ok"},
		{"verify v2, second of two keys", v2Body,
			[]string{"verify", "v2", "--key", "old-key", "--key", v2Key, "--nonce", v2Nonce, "--timestamp", v2TS,
				"--signature", "A64B1BFCE1A372DE15EF4377957528E7F7B0CE4944D4CAEA7B7363339DF27C82"},
			"ok (key 2)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, tt.stdin, tt.args...)
			if r.code != exitOK {
				t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
			}
			if got := strings.TrimSuffix(r.stdout, "\n"); got != tt.want {
				t.Errorf("stdout = %q, want %q", got, tt.want)
			}
			if r.stderr != "" {
				t.Errorf("stderr = %q, want nothing", r.stderr)
			}
		})
	}
}

// TestKeysWithSpecialCharacters checks that keys are used byte for byte:
// non-ASCII, "+", "/" and "=" must survive flag parsing and every primitive.
func TestKeysWithSpecialCharacters(t *testing.T) {
	for _, key := range []string{"ключ+/=密钥", "a+b/c==", "=leading", "with space"} {
		t.Run(key, func(t *testing.T) {
			sig := runCLI(t, v2Body, "sign", "v2", "--key", key, "--nonce", "n1", "--timestamp", v2TS)
			if sig.code != exitOK {
				t.Fatalf("sign: exit %d: %s", sig.code, sig.stderr)
			}
			ok := runCLI(t, v2Body, "verify", "v2", "--key", key, "--nonce", "n1", "--timestamp", v2TS,
				"--signature", strings.TrimSpace(sig.stdout))
			if ok.code != exitOK {
				t.Fatalf("verify: exit %d: %s", ok.code, ok.stderr)
			}
			other := runCLI(t, v2Body, "verify", "v2", "--key", key+"x", "--nonce", "n1", "--timestamp", v2TS,
				"--signature", strings.TrimSpace(sig.stdout))
			if other.code != exitRejected {
				t.Fatalf("verify with another key: exit %d, want %d", other.code, exitRejected)
			}
			for _, typ := range []string{"1", "2"} {
				enc := runCLI(t, "", "encrypt", "--key", key, "--type", typ, "secret 密码")
				if enc.code != exitOK {
					t.Fatalf("encrypt: exit %d: %s", enc.code, enc.stderr)
				}
				dec := runCLI(t, "", "decrypt", "--key", key, "--type", typ, strings.TrimSpace(enc.stdout))
				if dec.code != exitOK || strings.TrimSpace(dec.stdout) != "secret 密码" {
					t.Fatalf("decrypt type %s: exit %d, out %q, err %q", typ, dec.code, dec.stdout, dec.stderr)
				}
			}
		})
	}
}

func TestEncryptRandomIV(t *testing.T) {
	a := runCLI(t, "", "encrypt", "--key", v2Key, "hello")
	b := runCLI(t, "", "encrypt", "--key", v2Key, "hello")
	if a.code != exitOK || b.code != exitOK {
		t.Fatalf("exit %d / %d: %s %s", a.code, b.code, a.stderr, b.stderr)
	}
	ivShape := regexp.MustCompile(`^[A-Za-z0-9]{16}[A-Za-z0-9+/]+=*\n$`)
	if !ivShape.MatchString(a.stdout) {
		t.Errorf("output %q is not 16 alphanumerics + base64", a.stdout)
	}
	if a.stdout == b.stdout {
		t.Errorf("two encryptions without --iv gave the same output %q", a.stdout)
	}
	dec := runCLI(t, "", "decrypt", "--key", v2Key, strings.TrimSpace(a.stdout))
	if strings.TrimSpace(dec.stdout) != "hello" {
		t.Errorf("decrypt = %q, %q", dec.stdout, dec.stderr)
	}
}

func TestKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(path, []byte(v2Key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, v2Body, "sign", "v2", "--key-file", path, "--nonce", v2Nonce, "--timestamp", v2TS)
	if got := strings.TrimSpace(r.stdout); got != "A64B1BFCE1A372DE15EF4377957528E7F7B0CE4944D4CAEA7B7363339DF27C82" {
		t.Errorf("sign with --key-file = %q (exit %d, %s)", got, r.code, r.stderr)
	}
}

// TestRejections covers verification failures (exit 1) and bad input (exit 2):
// each must explain itself on stderr and print nothing on stdout.
func TestRejections(t *testing.T) {
	tests := []struct {
		name    string
		stdin   string
		args    []string
		code    int
		errText string
	}{
		{"verify wrong signature", v2Body, []string{"verify", "v2", "--key", v2Key, "--nonce", v2Nonce, "--timestamp", v2TS, "--signature", strings.Repeat("0", 64)}, exitRejected, "signature"},
		{"verify tampered body", v2Body + " ", []string{"verify", "v2", "--key", v2Key, "--nonce", v2Nonce, "--timestamp", v2TS, "--signature", "A64B1BFCE1A372DE15EF4377957528E7F7B0CE4944D4CAEA7B7363339DF27C82"}, exitRejected, "signature"},
		{"verify stale with --window", v2Body, []string{"verify", "v2", "--key", v2Key, "--nonce", v2Nonce, "--timestamp", v2TS, "--window", "60s", "--signature", "A64B1BFCE1A372DE15EF4377957528E7F7B0CE4944D4CAEA7B7363339DF27C82"}, exitRejected, "stale"},
		{"verify missing signature", v2Body, []string{"verify", "v2", "--key", v2Key, "--nonce", v2Nonce, "--timestamp", v2TS}, exitUsage, "--signature"},
		{"verify 12-digit timestamp", v2Body, []string{"verify", "v2", "--key", v2Key, "--nonce", v2Nonce, "--timestamp", "168050806661", "--signature", "00"}, exitUsage, "--timestamp"},
		{"verify overlong nonce", v2Body, []string{"verify", "v2", "--key", v2Key, "--nonce", strings.Repeat("n", 129), "--timestamp", v2TS, "--signature", "00"}, exitUsage, "--nonce"},
		{"verify empty key", v2Body, []string{"verify", "v2", "--key", "", "--nonce", v2Nonce, "--timestamp", v2TS, "--signature", "00"}, exitUsage, "--key"},
		{"sign v2 missing key", v2Body, []string{"sign", "v2", "--nonce", v2Nonce, "--timestamp", v2TS}, exitUsage, "--key"},
		{"sign v2 missing nonce", v2Body, []string{"sign", "v2", "--key", v2Key, "--timestamp", v2TS}, exitUsage, "--nonce"},
		{"sign v2 non-numeric timestamp", v2Body, []string{"sign", "v2", "--key", v2Key, "--nonce", "n", "--timestamp", "12:00"}, exitUsage, "--timestamp"},
		{"sign v2 unknown flag", v2Body, []string{"sign", "v2", "--key", v2Key, "--bogus"}, exitUsage, "bogus"},
		{"sign v2 stray argument", v2Body, []string{"sign", "v2", "--key", v2Key, "--nonce", "n", "--timestamp", "1", "extra"}, exitUsage, "extra"},
		{"sign without subcommand", "", []string{"sign"}, exitUsage, "subcommand"},
		{"unknown command", "", []string{"frobnicate"}, exitUsage, "frobnicate"},
		{"sign v1 without timeStamp", "", []string{"sign", "v1", "--key", v1Key, "activity=newInstance"}, exitUsage, "timeStamp"},
		{"sign v1 not name=value", "", []string{"sign", "v1", "--key", v1Key, "activity", "timeStamp=1"}, exitUsage, "name=value"},
		{"sign v1 duplicate", "", []string{"sign", "v1", "--key", v1Key, "a=1", "a=2", "timeStamp=1"}, exitUsage, "twice"},
		{"sign apig relative url", "", []string{"sign", "apig", "--ak", "a", "--sk", "s", "--method", "GET", "--url", "/path"}, exitUsage, "--url"},
		{"sign apig bad date", "", []string{"sign", "apig", "--ak", "a", "--sk", "s", "--method", "GET", "--url", "https://h/p", "--date", "2019-11-15"}, exitUsage, "--date"},
		{"sign apig bad header", "", []string{"sign", "apig", "--ak", "a", "--sk", "s", "--method", "GET", "--url", "https://h/p", "--header", "novalue"}, exitUsage, "--header"},
		{"sign apig missing sk", "", []string{"sign", "apig", "--ak", "a", "--method", "GET", "--url", "https://h/p"}, exitUsage, "--sk"},
		{"encrypt bad type", "", []string{"encrypt", "--key", v2Key, "--type", "3", "x"}, exitUsage, "--type"},
		{"encrypt short iv", "", []string{"encrypt", "--key", v2Key, "--iv", "short", "x"}, exitUsage, "--iv"},
		{"encrypt no value", "", []string{"encrypt", "--key", v2Key}, exitUsage, "VALUE"},
		{"encrypt two values", "", []string{"encrypt", "--key", v2Key, "a", "b"}, exitUsage, "VALUE"},
		{"encrypt both key sources", "", []string{"encrypt", "--key", v2Key, "--key-file", "/nonexistent", "x"}, exitUsage, "not both"},
		{"encrypt missing key file", "", []string{"encrypt", "--key-file", "/nonexistent/key", "x"}, exitUsage, "key-file"},
		{"decrypt garbage", "", []string{"decrypt", "--key", v2Key, "not-a-ciphertext"}, exitUsage, "decrypt"},
		{"decrypt with the wrong key", "", []string{"decrypt", "--key", "other", "Ab3dEf7hIj1lMn5pz5NWj6Cpnc+9ulS10QznFg=="}, exitUsage, "decrypt"},
		{"version with argument", "", []string{"version", "x"}, exitUsage, "unexpected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, tt.stdin, tt.args...)
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d (stderr %q)", r.code, tt.code, r.stderr)
			}
			if !strings.Contains(r.stderr, tt.errText) {
				t.Errorf("stderr %q does not mention %q", r.stderr, tt.errText)
			}
			if r.stdout != "" {
				t.Errorf("stdout = %q, want nothing", r.stdout)
			}
		})
	}
}

func TestSecretsStayOffStderr(t *testing.T) {
	const key = "super-secret-key-value"
	r := runCLI(t, "", "decrypt", "--key", key, "AAAAAAAAAAAAAAAA"+"AAAAAAAAAAAAAAAAAAAAAA==")
	if r.code != exitUsage {
		t.Fatalf("exit %d", r.code)
	}
	if strings.Contains(r.stderr, key) {
		t.Errorf("stderr %q contains the key", r.stderr)
	}
}

func TestVersion(t *testing.T) {
	r := runCLI(t, "", "version")
	if r.code != exitOK || !strings.HasPrefix(r.stdout, "koobridge ") {
		t.Errorf("version: exit %d, %q", r.code, r.stdout)
	}
}

// TestBinaryExitCodes builds the real binary and checks what a script sees:
// the output streams and the exit status of a separate process.
func TestBinaryExitCodes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	bin := filepath.Join(t.TempDir(), "koobridge")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	tests := []struct {
		stdin string
		args  []string
		code  int
		out   string
	}{
		{v2Body, []string{"sign", "v2", "--key", v2Key, "--nonce", v2Nonce, "--timestamp", v2TS}, 0, "A64B1BFCE1A372DE15EF4377957528E7F7B0CE4944D4CAEA7B7363339DF27C82\n"},
		{v2Body, []string{"verify", "v2", "--key", v2Key, "--nonce", v2Nonce, "--timestamp", v2TS, "--signature", "00"}, 1, ""},
		{"", []string{"encrypt", "--key", v2Key, "--type", "9", "x"}, 2, ""},
	}
	for _, tt := range tests {
		cmd := exec.Command(bin, tt.args...)
		cmd.Stdin = strings.NewReader(tt.stdin)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("%v: %v", tt.args, err)
		}
		if code != tt.code || stdout.String() != tt.out {
			t.Errorf("%v: exit %d stdout %q, want exit %d stdout %q (stderr %q)", tt.args[:2], code, stdout.String(), tt.code, tt.out, stderr.String())
		}
		if code != 0 && !strings.HasPrefix(stderr.String(), "koobridge: ") {
			t.Errorf("%v: stderr %q does not start with the program name", tt.args[:2], stderr.String())
		}
	}
}

// TestSignAPIGAddedHeader: for a body that is not JSON the signer adds and
// signs X-Sdk-Content-Sha256, so the CLI must tell the caller to send it.
func TestSignAPIGAddedHeader(t *testing.T) {
	r := runCLI(t, "--boundary--", "sign", "apig", "--ak", "AK", "--sk", "SK", "--method", "POST",
		"--url", "https://mkt.myhuaweicloud.com/api/mkp-openapi-public/global/v1/market-event/e1/file",
		"--header", "Content-Type: multipart/form-data; boundary=b", "--date", "20240317T144237Z")
	if r.code != exitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if !strings.Contains(r.stdout, "SignedHeaders=content-type;host;x-sdk-content-sha256;x-sdk-date,") {
		t.Errorf("Authorization %q does not sign the added header", r.stdout)
	}
	if !strings.Contains(r.stderr, "also send the signed header X-Sdk-Content-Sha256: UNSIGNED-PAYLOAD") {
		t.Errorf("stderr %q does not name the added header", r.stderr)
	}
}
