package sign

import (
	"errors"
	"testing"
)

const (
	specUsageBody = `{"usage_records":[{"begin_time":"20240101T000000Z","end_time":"20240101T010000Z","instance_id":"inst-001","metering_sn":"sn-0001","record_time":"20240101T010500Z","usage_value":"1.5"}]}`
	specUsageSig  = "+2YsktCXbDxEKrfCH1FLNyOEgn6hSU9wwMmFh4Dk7IA="
)

func TestUsageSignatureKnownAnswer(t *testing.T) {
	// saas-v2.md §2.5, usage signature with the §2.5 ts and nonce.
	if got := UsageSignature(specKey, specTimestamp, specNonce, []byte(specUsageBody)); got != specUsageSig {
		t.Errorf("UsageSignature = %s, want %s", got, specUsageSig)
	}
	// The message is exactly "ts=…&nonce=…&body=…".
	msg := "ts=" + specTimestamp + "&nonce=" + specNonce + "&body=" + specUsageBody
	if want := b64(hmacSHA256([]byte(specKey), []byte(msg))); specUsageSig != want {
		t.Errorf("spec vector %s disagrees with the formula: %s", specUsageSig, want)
	}
}

func TestVerifyUsageSignature(t *testing.T) {
	body := []byte(specUsageBody)
	tests := []struct {
		name, key, ts, nonce, sig string
		body                      []byte
		want                      error
	}{
		{"good", specKey, specTimestamp, specNonce, specUsageSig, body, nil},
		{"wrong key", "other", specTimestamp, specNonce, specUsageSig, body, ErrSignature},
		{"other ts", specKey, "1680508066619", specNonce, specUsageSig, body, ErrSignature},
		{"other nonce", specKey, specTimestamp, "n", specUsageSig, body, ErrSignature},
		{"tampered body", specKey, specTimestamp, specNonce, specUsageSig, body[1:], ErrSignature},
		{"hex instead of base64", specKey, specTimestamp, specNonce, "fb662c92d0976c3c442ab7c21f514b37", body, ErrSignature},
		{"not base64", specKey, specTimestamp, specNonce, "%%%", body, ErrSignature},
		{"no signature", specKey, specTimestamp, specNonce, "", body, ErrMissing},
		{"no ts", specKey, "", specNonce, specUsageSig, body, ErrMissing},
		{"no nonce", specKey, specTimestamp, "", specUsageSig, body, ErrMissing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifyUsageSignature(tt.key, tt.ts, tt.nonce, tt.sig, tt.body)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
}
