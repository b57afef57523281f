package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/koobridge/koobridge/protocol/sign"
)

// TestKeygenRSA makes a key pair and checks it end to end: serve reads the
// private key (flag, environment and YAML), and a secret encrypted to the
// printed public key, as KooGallery does, decrypts with it.
func TestKeygenRSA(t *testing.T) {
	prefix := filepath.Join(t.TempDir(), "seller")
	r := runCLI(t, "", "keygen", "rsa", "--out", prefix)
	if r.code != 0 {
		t.Fatalf("keygen rsa: exit %d: %s", r.code, r.stderr)
	}
	info, err := os.Stat(prefix + ".pem")
	if err != nil {
		t.Fatal(err)
	}
	if mode := info.Mode().Perm(); mode != 0o600 {
		t.Errorf("private key mode %o, want 600", mode)
	}
	der, err := base64.StdEncoding.DecodeString(strings.TrimSpace(r.stdout))
	if err != nil {
		t.Fatalf("stdout is not one line of base64: %q", r.stdout)
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		t.Fatalf("printed public key: %v", err)
	}
	rsaPub := pub.(*rsa.PublicKey)
	if bits := rsaPub.N.BitLen(); bits != 3072 {
		t.Errorf("key size %d, want 3072", bits)
	}
	pemPub, err := os.ReadFile(prefix + ".pub.pem")
	if err != nil {
		t.Fatal(err)
	}
	if block, _ := pem.Decode(pemPub); block == nil || block.Type != "PUBLIC KEY" || string(block.Bytes) != string(der) {
		t.Error("the .pub.pem file does not hold the printed public key")
	}
	if strings.Contains(r.stdout+r.stderr, "PRIVATE") {
		t.Error("the private key was printed")
	}
	secret, err := sign.EncryptClientSecret(rsaPub, "client-secret")
	if err != nil {
		t.Fatal(err)
	}
	for name, args := range map[string][]string{
		"flag": append([]string{"--rsa-private-key-file", prefix + ".pem"}, base...),
		"yaml": append([]string{"--config", writeFile(t, "k.yaml", "rsa-private-key-file: "+prefix+".pem\n")}, base...),
	} {
		c, err := resolveArgs(t, args, nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got, err := sign.DecryptClientSecret(c.rsaKey, secret); err != nil || got != "client-secret" {
			t.Errorf("%s: decrypt with the configured key: %q, %v", name, got, err)
		}
	}
	c, err := resolveArgs(t, base, map[string]string{"KOOBRIDGE_RSA_PRIVATE_KEY_FILE": prefix + ".pem"})
	if err != nil || c.rsaKey == nil {
		t.Errorf("from the environment: %v", err)
	}

	// Never overwritten.
	if r := runCLI(t, "", "keygen", "rsa", "--out", prefix); r.code != 2 || !strings.Contains(r.stderr, "exists") {
		t.Errorf("second keygen into the same files: exit %d, %s", r.code, r.stderr)
	}
	if r := runCLI(t, "", "keygen", "rsa", "--out", prefix+"2", "--bits", "2048"); r.code != 2 || !strings.Contains(r.stderr, "3072") {
		t.Errorf("--bits 2048: exit %d, %s", r.code, r.stderr)
	}
}

// TestRSAPrivateKeyRejections: serve refuses a file that is not a usable
// key, naming the file but never its content.
func TestRSAPrivateKeyRejections(t *testing.T) {
	small, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	smallPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(small)})
	tests := []struct {
		name, content, want string
	}{
		{"not PEM", "hello", "not a PEM RSA private key"},
		{"2048 bits", string(smallPEM), "2048-bit key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := writeFile(t, "key.pem", tt.content)
			_, err := resolveArgs(t, append([]string{"--rsa-private-key-file", file}, base...), nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), file) {
				t.Fatalf("err = %v, want one naming %s and saying %q", err, file, tt.want)
			}
			if strings.Contains(err.Error(), "MII") {
				t.Error("the error quotes the key")
			}
		})
	}
	if _, err := resolveArgs(t, append([]string{"--rsa-private-key-file", "/nonexistent/key.pem"}, base...), nil); err == nil {
		t.Error("a missing key file was accepted")
	}
}
