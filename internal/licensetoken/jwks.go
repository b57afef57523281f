package licensetoken

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/koobridge/koobridge/internal/store"
)

// JWK is the public half of a token key as a JSON Web Key (RFC 7517,
// with the OKP key type of RFC 8037).
type JWK struct {
	Kty string `json:"kty"` // "OKP"
	Crv string `json:"crv"` // "Ed25519"
	X   string `json:"x"`   // the public key, base64url without padding
	Kid string `json:"kid"`
	Alg string `json:"alg"` // "EdDSA"
	Use string `json:"use"` // "sig"
}

// JWKSet is a JWK set: {"keys":[…]}.
type JWKSet struct {
	Keys []JWK `json:"keys"`
}

// PublicJWKS returns the JWK set of keys as a Ring publishes it at now: the
// key of the highest generation, then each older key that still signs or
// whose successor started signing (Staging after it was made) less than
// retention before now. It needs no data key, so that
// "koobridge license pubkey" can print the set from the database alone.
// keys need not be sorted; an empty keys gives {"keys":[]}.
func PublicJWKS(keys []store.LicenseKey, now time.Time, retention time.Duration) ([]byte, error) {
	keys = slices.Clone(keys)
	sortNewestFirst(keys)
	set := JWKSet{Keys: []JWK{}}
	for _, k := range published(keys, now, retention) {
		if _, err := decodePublic(k); err != nil {
			return nil, err
		}
		set.Keys = append(set.Keys, JWK{Kty: "OKP", Crv: "Ed25519", X: k.Public, Kid: k.ID, Alg: alg, Use: "sig"})
	}
	b, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("licensetoken: encode JWK set: %w", err)
	}
	return b, nil
}

// published returns the keys (newest first) that verify tokens at now:
// the newest, and each older one until retention after its successor
// started signing, which is Staging after the successor was made (a
// replaced key signs until then, so its tokens are trusted offline until
// retention after). Once a successor is older, so are the successors of
// every older key.
func published(keys []store.LicenseKey, now time.Time, retention time.Duration) []store.LicenseKey {
	if len(keys) == 0 {
		return nil
	}
	n := 1
	for n < len(keys) && now.Sub(keys[n-1].CreatedAt) < Staging+retention {
		n++
	}
	return keys[:n]
}

// sortNewestFirst sorts keys by generation, highest first.
func sortNewestFirst(keys []store.LicenseKey) {
	slices.SortFunc(keys, func(a, b store.LicenseKey) int {
		switch {
		case a.Generation > b.Generation:
			return -1
		case a.Generation < b.Generation:
			return 1
		}
		return 0
	})
}
