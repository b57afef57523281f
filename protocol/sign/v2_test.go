package sign

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
)

// Inputs of saas-v2.md §2.5.
const (
	specKey       = "TestAccessKey-0123456789abcdef"
	specNonce     = "50D83FDECAED6CCD8EF597F2A577950527928BA287D04E6036E92B2806FD17DA"
	specTimestamp = "1680508066618"
	specBody      = `{"activity":"newInstance","businessId":"87b94795-0603-4e24-8ae5-69420d60e3c8","orderId":"CS2211181819B4LVS","orderLineId":"CS2211181819B4LVS-000001","testFlag":"1"}`
)

func TestV2KnownAnswers(t *testing.T) {
	tests := []struct {
		name                  string
		key, nonce, timestamp string
		body                  string
		bodyHash, signature   string
	}{
		{
			name: "saas-v2 §2.5",
			key:  specKey, nonce: specNonce, timestamp: specTimestamp, body: specBody,
			bodyHash:  "10a571044bbfa4da77841395fb33e79725d25a1264c6d52540e4f17f1cc3a30d",
			signature: "A64B1BFCE1A372DE15EF4377957528E7F7B0CE4944D4CAEA7B7363339DF27C82",
		},
		{
			name: "license-openapi §A.6",
			key:  "test-access-key-0123456789", nonce: "RLLUammMSInlrNWb", timestamp: "1666677988730",
			body:      `{"activity":"releaseLicenseCode","license":"PL0000000001","testFlag":"1"}`,
			bodyHash:  "0c77a6c4e767d76d50a63f92a78cfe2d9989a4d9dd4fb8d40bf07e8a23f2a90e",
			signature: "55E70F1EBCABB20AAEF33A1BCB649662A5EE329CB72E3AC2CC9EE04D28A6C006",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := V2BodyHash(tt.key, []byte(tt.body)); got != tt.bodyHash {
				t.Errorf("V2BodyHash = %s, want %s", got, tt.bodyHash)
			}
			if got := V2Signature(tt.key, tt.nonce, tt.timestamp, []byte(tt.body)); got != tt.signature {
				t.Errorf("V2Signature = %s, want %s", got, tt.signature)
			}
		})
	}
}

func TestV2SignatureChangesWithEveryInput(t *testing.T) {
	base := V2Signature(specKey, specNonce, specTimestamp, []byte(specBody))
	variants := map[string]string{
		"key":       V2Signature(specKey+"x", specNonce, specTimestamp, []byte(specBody)),
		"nonce":     V2Signature(specKey, specNonce+"x", specTimestamp, []byte(specBody)),
		"timestamp": V2Signature(specKey, specNonce, "1680508066619", []byte(specBody)),
		"body":      V2Signature(specKey, specNonce, specTimestamp, []byte(specBody+" ")),
		"empty":     V2Signature(specKey, specNonce, specTimestamp, nil),
	}
	for name, got := range variants {
		if got == base {
			t.Errorf("changing %s did not change the signature", name)
		}
	}
}

// oracleV2 computes the V2 signature straight from the spec's formula with
// crypto/hmac, independently of the package's helpers.
func oracleV2(key, nonce, ts string, body []byte) string {
	inner := hmac.New(sha256.New, []byte(key))
	inner.Write(body)
	outer := hmac.New(sha256.New, []byte(key))
	outer.Write([]byte(key + nonce + ts + hex.EncodeToString(inner.Sum(nil))))
	return strings.ToUpper(hex.EncodeToString(outer.Sum(nil)))
}

func TestUnusualKeys(t *testing.T) {
	keys := []string{
		"密钥-ключ-κλειδί",
		"a+b/c=",
		"QUJD+/==",
		"ä+/=é\u00a0tab\tkey",
		"x",                             // shorter than any sample key
		strings.Repeat("long-key/", 20), // longer than the SHA-256 block
	}
	body := []byte(specBody)
	for _, key := range keys {
		t.Run(key, func(t *testing.T) {
			if got, want := V2Signature(key, specNonce, specTimestamp, body), oracleV2(key, specNonce, specTimestamp, body); got != want {
				t.Errorf("V2Signature = %s, want %s", got, want)
			}
			m := hmac.New(sha256.New, []byte(key))
			m.Write([]byte(key + specNonce + specTimestamp))
			m.Write(body)
			if got, want := KitSignature(key, specNonce, specTimestamp, body), hex.EncodeToString(m.Sum(nil)); got != want {
				t.Errorf("KitSignature = %s, want %s", got, want)
			}
			if err := VerifyBodySign(key, BodySign(key, body), body); err != nil {
				t.Errorf("Body-Sign round trip: %v", err)
			}
			if err := VerifyUsageSignature(key, specTimestamp, specNonce, UsageSignature(key, specTimestamp, specNonce, body), body); err != nil {
				t.Errorf("usage round trip: %v", err)
			}
			params := map[string]string{"activity": "newInstance", "timeStamp": "20170725025113409"}
			q := map[string][]string{"activity": {"newInstance"}, "timeStamp": {"20170725025113409"}, "authToken": {AuthToken(key, "20170725025113409", params)}}
			if err := VerifyAuthTokenQuery(key, q); err != nil {
				t.Errorf("authToken round trip: %v", err)
			}
			v := &Verifier{Keys: []string{"other", key}, Now: fixedNow, Nonces: NewMemoryNoncesWithClock(fixedNow)}
			ts := msText(fixedNow())
			if i, err := v.VerifyV2(t.Context(), V2Signature(key, "n1", ts, body), ts, "n1", body); err != nil || i != 1 {
				t.Errorf("VerifyV2 = %d, %v; want 1, nil", i, err)
			}
		})
	}
}
