package sign

import (
	"strings"
	"testing"
)

const specKitBody = `{"instanceId":"inst-001","tenantId":"t1","flag":"1","testFlag":"1"}`

func TestKitSignatureKnownAnswer(t *testing.T) {
	// saas-v2.md §2.5, form A.
	const want = "5608b271054794bf7a43d2f3136586f6a94f8f0e8903fd3fffc9e7308ae1555b"
	if got := KitSignature(specKey, specNonce, specTimestamp, []byte(specKitBody)); got != want {
		t.Errorf("KitSignature = %s, want %s", got, want)
	}
}

func TestKitSignatureHashed(t *testing.T) {
	// Form B over the §2.5 request body is the §2.5 V2 signature in lowercase.
	const want = "a64b1bfce1a372de15ef4377957528e7f7b0ce4944d4caea7b7363339df27c82"
	if got := KitSignatureHashed(specKey, specNonce, specTimestamp, []byte(specBody)); got != want {
		t.Errorf("KitSignatureHashed(request body) = %s, want %s", got, want)
	}
	for _, body := range []string{specBody, specKitBody, "", "{}"} {
		b := []byte(body)
		formB := KitSignatureHashed(specKey, specNonce, specTimestamp, b)
		if want := strings.ToLower(V2Signature(specKey, specNonce, specTimestamp, b)); formB != want {
			t.Errorf("KitSignatureHashed(%q) = %s, want lower(V2Signature) %s", body, formB, want)
		}
		if formA := KitSignature(specKey, specNonce, specTimestamp, b); formA == formB {
			t.Errorf("forms A and B agree for %q", body)
		}
	}
}
