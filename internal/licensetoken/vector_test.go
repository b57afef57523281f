package licensetoken

import (
	"crypto"
	"crypto/ed25519"
	"encoding/base64"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

// TestRFC8037Vector: the Ed25519 signing of RFC 8037 Appendix A (A.1 key,
// A.3 thumbprint, A.4 signature) gives the published values byte for byte.
func TestRFC8037Vector(t *testing.T) {
	const (
		d       = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"
		x       = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
		thumb   = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
		payload = "Example of Ed25519 signing"
		want    = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc." +
			"hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
	)
	seed, err := base64.RawURLEncoding.DecodeString(d)
	if err != nil {
		t.Fatal(err)
	}
	key := ed25519.NewKeyFromSeed(seed)
	if got := b64(key.Public().(ed25519.PublicKey)); got != x {
		t.Fatalf("public key %s, want %s", got, x)
	}
	if got := thumbprint(x); got != thumb {
		t.Errorf("thumbprint %s, want %s", got, thumb)
	}
	if got := signCompact(key, []byte(`{"alg":"EdDSA"}`), []byte(payload)); got != want {
		t.Errorf("signed\n got %s\nwant %s", got, want)
	}
}

// TestThumbprintMatchesGoJose: the kid's thumbprint is the one go-jose
// computes for random keys too, not only for the RFC's.
func TestThumbprintMatchesGoJose(t *testing.T) {
	for range 8 {
		pub, _, err := ed25519.GenerateKey(nil)
		if err != nil {
			t.Fatal(err)
		}
		want, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		if got := thumbprint(b64(pub)); got != b64(want) {
			t.Fatalf("thumbprint %s, go-jose %s", got, b64(want))
		}
	}
}
