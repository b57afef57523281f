package ssoapp

import (
	"bytes"
	"os"
	"testing"
)

// TestVerbatimCopy: this package is the sample app's relying party
// (examples/sso-app/ssoapp, a module of its own that koobridge cannot
// import), copied byte for byte so that "koobridge demo" runs exactly the
// code a vendor reads. Change the original and copy it here.
func TestVerbatimCopy(t *testing.T) {
	original, err := os.ReadFile("../../../../examples/sso-app/ssoapp/ssoapp.go")
	if err != nil {
		t.Fatal(err)
	}
	copied, err := os.ReadFile("ssoapp.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(original, copied) {
		t.Fatal("cmd/koobridge/internal/ssoapp/ssoapp.go differs from examples/sso-app/ssoapp/ssoapp.go: copy the original over it")
	}
}
