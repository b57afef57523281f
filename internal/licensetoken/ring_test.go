package licensetoken_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/koobridge/koobridge/internal/license"
	"github.com/koobridge/koobridge/internal/licensetoken"
	"github.com/koobridge/koobridge/internal/seal"
	"github.com/koobridge/koobridge/internal/store"
)

// retention is the Retention of the tests' rings.
const retention = 168 * time.Hour

// clock is a clock the tests move.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newSealer(t *testing.T) *seal.Sealer {
	t.Helper()
	key := make([]byte, seal.KeySize)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	s, err := seal.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newRing(t *testing.T, st store.Licenses, s *seal.Sealer, c *clock) *licensetoken.Ring {
	t.Helper()
	r, err := licensetoken.New(licensetoken.Config{Store: st, Sealer: s, Retention: retention, Now: c.Now,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// parseSet reads a JWK set with go-jose, which checks each key.
func parseSet(t *testing.T, b []byte) jose.JSONWebKeySet {
	t.Helper()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(b, &set); err != nil {
		t.Fatalf("go-jose refuses the JWK set %s: %v", b, err)
	}
	return set
}

func setKids(set jose.JSONWebKeySet) []string {
	out := []string{}
	for _, k := range set.Keys {
		out = append(out, k.KeyID)
	}
	return out
}

// verifyJose verifies token with go-jose against set and returns its
// header and payload; the error is go-jose's.
func verifyJose(token string, set jose.JSONWebKeySet) (jose.Header, []byte, error) {
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		return jose.Header{}, nil, err
	}
	h := jws.Signatures[0].Header
	keys := set.Key(h.KeyID)
	if len(keys) != 1 {
		return h, nil, errors.New("no key " + h.KeyID + " in the set")
	}
	payload, err := jws.Verify(keys[0])
	return h, payload, err
}

var (
	t0      = time.Date(2026, 3, 1, 8, 30, 15, 0, time.UTC)
	expires = time.Date(2027, 3, 1, 0, 0, 0, 0, time.FixedZone("GMT+8", 8*3600))
)

// TestTokenVerifiesWithGoJose: tokens of every status verify with go-jose
// against the published JWK set, with the header and claims the license
// service documents (expires absent when unknown, times RFC 3339 in UTC).
func TestTokenVerifiesWithGoJose(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.Name, func(t *testing.T) {
			c := &clock{t: t0}
			r := newRing(t, d.Open(t), newSealer(t), c)
			for _, tc := range []struct {
				name string
				v    license.Verdict
				want string
			}{
				{"active", license.Verdict{License: "PL0001", Fingerprint: "04:7C:16:5E:E3:5D|001B_444A.||BFEBFBFF00090672", Status: "active",
					Expires: expires, ValidUntil: t0.Add(168 * time.Hour)},
					`{"license":"PL0001","fingerprint":"04:7C:16:5E:E3:5D|001B_444A.||BFEBFBFF00090672","status":"active","expires":"2027-02-28T16:00:00Z","validUntil":"2026-03-08T08:30:15Z","iat":1772353815}`},
				{"frozen without expiry", license.Verdict{License: "PL0002", Fingerprint: "|||", Status: "frozen", ValidUntil: t0},
					`{"license":"PL0002","fingerprint":"|||","status":"frozen","validUntil":"2026-03-01T08:30:15Z","iat":1772353815}`},
				{"released, cached", license.Verdict{License: "PL0003", Fingerprint: "AA", Status: "released", Expires: t0, ValidUntil: t0, Cached: true},
					`{"license":"PL0003","fingerprint":"AA","status":"released","expires":"2026-03-01T08:30:15Z","validUntil":"2026-03-01T08:30:15Z","iat":1772353815}`},
			} {
				t.Run(tc.name, func(t *testing.T) {
					token, err := r.Sign(t.Context(), tc.v)
					if err != nil {
						t.Fatal(err)
					}
					jwks, err := r.JWKS(t.Context())
					if err != nil {
						t.Fatal(err)
					}
					set := parseSet(t, jwks)
					if len(set.Keys) != 1 || set.Keys[0].Algorithm != "EdDSA" || set.Keys[0].Use != "sig" {
						t.Fatalf("JWK set %s, want one EdDSA signing key", jwks)
					}
					h, payload, err := verifyJose(token, set)
					if err != nil {
						t.Fatalf("go-jose: %v", err)
					}
					if h.Algorithm != "EdDSA" || h.ExtraHeaders["typ"] != "JWT" || h.KeyID != set.Keys[0].KeyID {
						t.Errorf("header %+v", h)
					}
					if string(payload) != tc.want {
						t.Errorf("claims\n got %s\nwant %s", payload, tc.want)
					}
				})
			}
		})
	}
}

// TestJWKSFormat: the published key is exactly the documented JWK, and its
// x is the stored public key.
func TestJWKSFormat(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.Name, func(t *testing.T) {
			st := d.Open(t)
			r := newRing(t, st, newSealer(t), &clock{t: t0})
			got, err := r.JWKS(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			keys, err := st.LicenseKeys(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if len(keys) != 1 || keys[0].Generation != 1 || !strings.HasPrefix(keys[0].ID, "g1-") {
				t.Fatalf("stored keys %+v, want generation 1 named g1-…", keys)
			}
			want := `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + keys[0].Public + `","kid":"` + keys[0].ID + `","alg":"EdDSA","use":"sig"}]}`
			if string(got) != want {
				t.Errorf("JWKS\n got %s\nwant %s", got, want)
			}
			if strings.Contains(keys[0].PrivateSealed, keys[0].Public) || !strings.HasPrefix(keys[0].PrivateSealed, "v1:") {
				t.Errorf("the private key is not sealed: %q", keys[0].PrivateSealed)
			}
		})
	}
}

// tamper changes a token the ways an attacker would.
var tampers = []struct {
	name string
	f    func(t *testing.T, token string) string
}{
	{"payload status changed", func(t *testing.T, token string) string {
		p := strings.Split(token, ".")
		claims, _ := base64.RawURLEncoding.DecodeString(p[1])
		changed := bytes.Replace(claims, []byte(`"status":"frozen"`), []byte(`"status":"active"`), 1)
		if bytes.Equal(changed, claims) {
			t.Fatal("nothing to change")
		}
		return p[0] + "." + base64.RawURLEncoding.EncodeToString(changed) + "." + p[2]
	}},
	{"signature bit flipped", func(t *testing.T, token string) string {
		p := strings.Split(token, ".")
		sig, _ := base64.RawURLEncoding.DecodeString(p[2])
		sig[10] ^= 1
		return p[0] + "." + p[1] + "." + base64.RawURLEncoding.EncodeToString(sig)
	}},
	{"signature cut", func(t *testing.T, token string) string {
		return token[:len(token)-4]
	}},
	{"alg none", func(t *testing.T, token string) string {
		p := strings.Split(token, ".")
		h, _ := base64.RawURLEncoding.DecodeString(p[0])
		h = bytes.Replace(h, []byte(`"alg":"EdDSA"`), []byte(`"alg":"none"`), 1)
		return base64.RawURLEncoding.EncodeToString(h) + "." + p[1] + "."
	}},
	{"unknown kid of a later generation", func(t *testing.T, token string) string {
		p := strings.Split(token, ".")
		h, _ := base64.RawURLEncoding.DecodeString(p[0])
		h = regexp.MustCompile(`"kid":"[^"]*"`).ReplaceAll(h, []byte(`"kid":"g9-AAAAAAAAAAAAAAAA"`))
		return base64.RawURLEncoding.EncodeToString(h) + "." + p[1] + "." + p[2]
	}},
	{"extra header member", func(t *testing.T, token string) string {
		p := strings.Split(token, ".")
		h, _ := base64.RawURLEncoding.DecodeString(p[0])
		h = bytes.Replace(h, []byte(`{`), []byte(`{"crit":["exp"],`), 1)
		return base64.RawURLEncoding.EncodeToString(h) + "." + p[1] + "." + p[2]
	}},
	{"signed by another key with the same kid", func(t *testing.T, token string) string {
		p := strings.Split(token, ".")
		_, other, _ := ed25519.GenerateKey(nil)
		return p[0] + "." + p[1] + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(other, []byte(p[0]+"."+p[1])))
	}},
}

// TestTamperedTokenRefused: go-jose refuses a token whose
// payload or signature was changed, or re-signed by another key.
func TestTamperedTokenRefused(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.Name, func(t *testing.T) {
			r := newRing(t, d.Open(t), newSealer(t), &clock{t: t0})
			token, err := r.Sign(t.Context(), license.Verdict{License: "PL1", Fingerprint: "F", Status: "frozen", ValidUntil: t0})
			if err != nil {
				t.Fatal(err)
			}
			jwks, err := r.JWKS(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			set := parseSet(t, jwks)
			if _, _, err := verifyJose(token, set); err != nil {
				t.Fatalf("the untouched token: %v", err)
			}
			for _, tc := range tampers {
				t.Run(tc.name, func(t *testing.T) {
					bad := tc.f(t, token)
					if _, payload, err := verifyJose(bad, set); err == nil {
						t.Errorf("go-jose accepted it: %s", payload)
					}
				})
			}
		})
	}
}

// TestReplicasAndRotation: two replicas that sign their first token at the
// same moment store one key, which signs at once. After a rotation on one,
// the new key is published at once by it (by the other within
// RefreshInterval) but the old key keeps signing on both until Staging has
// passed; then both sign with the new key. Both publish [new, old] until
// Retention after the new key started signing, then [new], and the old
// key's tokens stop verifying.
func TestReplicasAndRotation(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.Name, func(t *testing.T) {
			st, s, c := d.Open(t), newSealer(t), &clock{t: t0}
			a, b := newRing(t, st, s, c), newRing(t, st, s, c)
			v := license.Verdict{License: "PL1", Fingerprint: "F", Status: "active", ValidUntil: t0.Add(time.Hour)}

			tokens := make([]string, 2)
			errs := make([]error, 2)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i, r := range []*licensetoken.Ring{a, b} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					tokens[i], errs[i] = r.Sign(context.Background(), v)
				}()
			}
			close(start)
			wg.Wait()
			if errs[0] != nil || errs[1] != nil {
				t.Fatal(errs)
			}
			stored := storedKids(t, st)
			if len(stored) != 1 {
				t.Fatalf("stored %v after two first signings, want one key", stored)
			}
			old := stored[1]
			for i, tok := range tokens {
				if kid := tokenKid(t, tok); kid != old {
					t.Errorf("replica %d signed with %s, want %s", i, kid, old)
				}
			}

			c.Add(time.Hour)
			rotated := c.Now()
			kid, signsAt, err := a.Rotate(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if !signsAt.Equal(rotated.Add(licensetoken.Staging)) {
				t.Errorf("Rotate says the new key signs at %v, want %v (Staging after the rotation)", signsAt, rotated.Add(licensetoken.Staging))
			}
			stored = storedKids(t, st)
			if len(stored) != 2 || stored[1] != old || stored[2] != kid || !strings.HasPrefix(kid, "g2-") {
				t.Fatalf("stored %v after rotation to %s, want generations 1 (%s) and 2", stored, kid, old)
			}
			signer := func(r *licensetoken.Ring) string {
				t.Helper()
				tok, err := r.Sign(t.Context(), v)
				if err != nil {
					t.Fatal(err)
				}
				return tokenKid(t, tok)
			}
			if got := signer(a); got != old {
				t.Errorf("the rotating replica signs with %s at once, want the old %s until the new key is staged", got, old)
			}
			jwks, err := a.JWKS(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if got := setKids(parseSet(t, jwks)); !reflect.DeepEqual(got, []string{kid, old}) {
				t.Errorf("the rotating replica publishes %v at once, want [%s %s]", got, kid, old)
			}
			c.Add(licensetoken.Staging - time.Second)
			for i, r := range []*licensetoken.Ring{a, b} {
				if got := signer(r); got != old {
					t.Errorf("replica %d signs with %s a second before the staging ends, want %s", i, got, old)
				}
			}
			c.Add(time.Second)
			newTok, err := b.Sign(t.Context(), v)
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range []*licensetoken.Ring{a, b} {
				if got := signer(r); got != kid {
					t.Errorf("replica %d signs with %s once staged, want %s", i, got, kid)
				}
				jwks, err := r.JWKS(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				set := parseSet(t, jwks)
				if _, _, err := verifyJose(newTok, set); err != nil {
					t.Errorf("replica %d's key set does not verify the new key's token: %v", i, err)
				}
				if got := setKids(set); !reflect.DeepEqual(got, []string{kid, old}) {
					t.Errorf("replica %d publishes %v after rotation, want [%s %s]", i, got, kid, old)
				}
				if _, _, err := verifyJose(tokens[0], set); err != nil {
					t.Errorf("replica %d: the old key's token does not verify during the retention: %v", i, err)
				}
			}

			// The old key signed until signsAt: it is trusted until
			// Retention after that.
			c.Add(retention - time.Second)
			if jwks, err := b.JWKS(t.Context()); err != nil {
				t.Fatal(err)
			} else if _, _, err := verifyJose(tokens[0], parseSet(t, jwks)); err != nil {
				t.Errorf("the old key's token is refused a second before the retention ends: %v", err)
			}
			c.Add(time.Second)
			for i, r := range []*licensetoken.Ring{a, b} {
				jwks, err := r.JWKS(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				set := parseSet(t, jwks)
				if got := setKids(set); !reflect.DeepEqual(got, []string{kid}) {
					t.Errorf("replica %d publishes %v after the retention, want [%s]", i, got, kid)
				}
				if _, _, err := verifyJose(tokens[0], set); err == nil {
					t.Errorf("replica %d: the old key's token still verifies with go-jose", i)
				}
			}
			if got := storedKids(t, st); !reflect.DeepEqual(got, stored) {
				t.Errorf("stored %v after the retention, want %v (keys are kept, only unpublished)", got, stored)
			}
		})
	}
}

// TestRotationNeverOutrunsPublishedKeys: around a rotation on replica a,
// every token either replica signs verifies with every key set either
// replica served in the KeySetMaxAge before (what a client or proxy may
// still have cached when it fetches the set again on an unknown kid).
// Without staging, a signs with the new key while b's set lacks it.
func TestRotationNeverOutrunsPublishedKeys(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.Name, func(t *testing.T) {
			st, s, c := d.Open(t), newSealer(t), &clock{t: t0}
			rings := []*licensetoken.Ring{newRing(t, st, s, c), newRing(t, st, s, c)}
			v := license.Verdict{License: "PL1", Fingerprint: "F", Status: "active", ValidUntil: t0.Add(time.Hour)}
			type served struct {
				at  time.Time
				set jose.JSONWebKeySet
			}
			var sets []served
			const step = 10 * time.Second
			kids := map[string]bool{}
			for i := 0; i < int((licensetoken.Staging+3*licensetoken.KeySetMaxAge)/step); i++ {
				if i == int(licensetoken.KeySetMaxAge/step) {
					if _, _, err := rings[0].Rotate(t.Context()); err != nil {
						t.Fatal(err)
					}
				}
				for _, r := range rings {
					jwks, err := r.JWKS(t.Context())
					if err != nil {
						t.Fatal(err)
					}
					sets = append(sets, served{c.Now(), parseSet(t, jwks)})
				}
				for ri, r := range rings {
					tok, err := r.Sign(t.Context(), v)
					if err != nil {
						t.Fatal(err)
					}
					kids[tokenKid(t, tok)] = true
					for _, sv := range sets {
						if c.Now().Sub(sv.at) > licensetoken.KeySetMaxAge {
							continue
						}
						if _, _, err := verifyJose(tok, sv.set); err != nil {
							t.Fatalf("%v after the start: replica %d's token (kid %s) does not verify with a set served %v before (%v): %v",
								c.Now().Sub(t0), ri, tokenKid(t, tok), c.Now().Sub(sv.at), setKids(sv.set), err)
						}
					}
				}
				c.Add(step)
			}
			if len(kids) != 2 {
				t.Errorf("tokens were signed with %v, want the old key, then the new", kids)
			}
		})
	}
}

// TestRotationSchedule: which key signs and which are published over two
// rotations, the second while the first key it replaces is still staged;
// and what Rotate says about when each starts signing.
func TestRotationSchedule(t *testing.T) {
	st, s, c := dialects[0].Open(t), newSealer(t), &clock{t: t0}
	r := newRing(t, st, s, c)
	// The first key, made by Rotate on an empty store, signs at once.
	g1, at1, err := r.Rotate(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(g1, "g1-") || !at1.Equal(t0) {
		t.Fatalf("the first Rotate: %s signing at %v, want g1-… at once (%v)", g1, at1, t0)
	}
	c.Add(time.Hour)
	rot2 := c.Now()
	g2, at2, err := r.Rotate(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	c.Add(2 * time.Minute)
	rot3 := c.Now()
	g3, at3, err := r.Rotate(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !at2.Equal(rot2.Add(licensetoken.Staging)) || !at3.Equal(rot3.Add(licensetoken.Staging)) {
		t.Errorf("Rotate says %v and %v, want Staging after each rotation (%v, %v)", at2, at3,
			rot2.Add(licensetoken.Staging), rot3.Add(licensetoken.Staging))
	}
	v := license.Verdict{License: "PL1", Fingerprint: "F", Status: "active", ValidUntil: t0}
	for _, tc := range []struct {
		name      string
		at        time.Time
		signer    string
		published []string
	}{
		{"both staged", rot3, g1, []string{g3, g2, g1}},
		{"a second before g2 signs", at2.Add(-time.Second), g1, []string{g3, g2, g1}},
		{"g2 signs", at2, g2, []string{g3, g2, g1}},
		{"g3 signs", at3, g3, []string{g3, g2, g1}},
		{"g1 a second before its retention ends", at2.Add(retention - time.Second), g3, []string{g3, g2, g1}},
		{"g1 out", at2.Add(retention), g3, []string{g3, g2}},
		{"g2 out", at3.Add(retention), g3, []string{g3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.mu.Lock()
			c.t = tc.at
			c.mu.Unlock()
			tok, err := r.Sign(t.Context(), v)
			if err != nil {
				t.Fatal(err)
			}
			if got := tokenKid(t, tok); got != tc.signer {
				t.Errorf("signs with %s, want %s", got, tc.signer)
			}
			jwks, err := r.JWKS(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if got := setKids(parseSet(t, jwks)); !reflect.DeepEqual(got, tc.published) {
				t.Errorf("publishes %v, want %v", got, tc.published)
			}
			keys, err := st.LicenseKeys(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			printed, err := licensetoken.PublicJWKS(keys, tc.at, retention)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(printed, jwks) {
				t.Errorf("PublicJWKS %s, the ring publishes %s", printed, jwks)
			}
		})
	}
}

// TestConcurrentRotate: two replicas rotating at once make one new
// generation and both report its kid.
func TestConcurrentRotate(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.Name, func(t *testing.T) {
			st, s, c := d.Open(t), newSealer(t), &clock{t: t0}
			rings := []*licensetoken.Ring{newRing(t, st, s, c), newRing(t, st, s, c)}
			if _, err := rings[0].JWKS(t.Context()); err != nil {
				t.Fatal(err)
			}
			kids := make([]string, 2)
			errs := make([]error, 2)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i, r := range rings {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					kids[i], _, errs[i] = r.Rotate(context.Background())
				}()
			}
			close(start)
			wg.Wait()
			if errs[0] != nil || errs[1] != nil {
				t.Fatal(errs)
			}
			stored := storedKids(t, st)
			switch {
			case len(stored) == 2 && kids[0] == stored[2] && kids[1] == stored[2]:
				// both rotated to the same generation 2
			case len(stored) == 3 && kids[0] != kids[1] && (kids[0] == stored[3] || kids[1] == stored[3]):
				// one rotated after the other had finished
			default:
				t.Fatalf("rotations reported %v, stored %v", kids, stored)
			}
		})
	}
}

// TestWrongDataKey: a replica with another data key cannot sign, and its
// error holds neither the sealed nor the opened key; nor can it rotate,
// which would seal the new key with a data key the others do not have.
func TestWrongDataKey(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.Name, func(t *testing.T) {
			st, c := d.Open(t), &clock{t: t0}
			if _, err := newRing(t, st, newSealer(t), c).JWKS(t.Context()); err != nil {
				t.Fatal(err)
			}
			keys, err := st.LicenseKeys(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			_, err = newRing(t, st, newSealer(t), c).Sign(t.Context(), license.Verdict{License: "PL1", Status: "active", ValidUntil: t0})
			if !errors.Is(err, seal.ErrAuth) {
				t.Fatalf("Sign with another data key: %v, want seal.ErrAuth", err)
			}
			if strings.Contains(err.Error(), keys[0].PrivateSealed[3:20]) {
				t.Errorf("the error shows the sealed key: %v", err)
			}
			if kid, _, err := newRing(t, st, newSealer(t), c).Rotate(t.Context()); !errors.Is(err, seal.ErrAuth) {
				t.Fatalf("Rotate with another data key: %q, %v; want seal.ErrAuth", kid, err)
			}
			if got := storedKids(t, st); len(got) != 1 || got[1] != keys[0].ID {
				t.Errorf("stored %v after a refused rotation, want only %s", got, keys[0].ID)
			}
		})
	}
}

// TestSignRefusesIncompleteVerdict: a verdict without code, with an
// unknown status or without validUntil is not signed.
func TestSignRefusesIncompleteVerdict(t *testing.T) {
	r := newRing(t, dialects[0].Open(t), newSealer(t), &clock{t: t0})
	for _, tc := range []struct {
		name string
		v    license.Verdict
		want string
	}{
		{"no code", license.Verdict{Status: "active", ValidUntil: t0}, "no license code"},
		{"unknown status", license.Verdict{License: "PL1", Status: "ALIVE", ValidUntil: t0}, `status "ALIVE"`},
		{"no status", license.Verdict{License: "PL1", ValidUntil: t0}, `status ""`},
		{"no validUntil", license.Verdict{License: "PL1", Status: "active"}, "no validUntil"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := r.Sign(t.Context(), tc.v)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Sign = %q, %v; want an error about %s", tok, err, tc.want)
			}
		})
	}
}

// TestNewRefusesIncompleteConfig: each required setting is checked.
func TestNewRefusesIncompleteConfig(t *testing.T) {
	st, s := dialects[0].Open(t), newSealer(t)
	for _, tc := range []struct {
		name string
		cfg  licensetoken.Config
		want string
	}{
		{"no store", licensetoken.Config{Sealer: s, Retention: time.Hour}, "Store"},
		{"no sealer", licensetoken.Config{Store: st, Retention: time.Hour}, "Sealer"},
		{"no retention", licensetoken.Config{Store: st, Sealer: s}, "Retention"},
		{"negative retention", licensetoken.Config{Store: st, Sealer: s, Retention: -time.Hour}, "Retention"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := licensetoken.New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want an error naming %s", err, tc.want)
			}
		})
	}
}

// TestPublicJWKS: the set printed from stored keys alone, in any order.
func TestPublicJWKS(t *testing.T) {
	x := func(b byte) string { return base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{b}, 32)) }
	k1 := store.LicenseKey{Generation: 1, ID: "g1-a", Public: x(1), CreatedAt: t0}
	k2 := store.LicenseKey{Generation: 2, ID: "g2-b", Public: x(2), CreatedAt: t0.Add(24 * time.Hour)}
	k3 := store.LicenseKey{Generation: 3, ID: "g3-c", Public: x(3), CreatedAt: t0.Add(48 * time.Hour)}
	for _, tc := range []struct {
		name string
		keys []store.LicenseKey
		now  time.Time
		want []string
	}{
		{"none", nil, t0, []string{}},
		{"one", []store.LicenseKey{k1}, t0.Add(10000 * time.Hour), []string{"g1-a"}},
		{"all within retention, unsorted", []store.LicenseKey{k1, k3, k2}, t0.Add(48 * time.Hour), []string{"g3-c", "g2-b", "g1-a"}},
		{"oldest a second before out", []store.LicenseKey{k3, k2, k1}, t0.Add(24*time.Hour + licensetoken.Staging + retention - time.Second),
			[]string{"g3-c", "g2-b", "g1-a"}},
		{"oldest out", []store.LicenseKey{k3, k2, k1}, t0.Add(24*time.Hour + licensetoken.Staging + retention), []string{"g3-c", "g2-b"}},
		{"only the newest", []store.LicenseKey{k3, k2, k1}, t0.Add(48*time.Hour + licensetoken.Staging + retention), []string{"g3-c"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := licensetoken.PublicJWKS(tc.keys, tc.now, retention)
			if err != nil {
				t.Fatal(err)
			}
			if got := setKids(parseSet(t, b)); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("kids %v, want %v (%s)", got, tc.want, b)
			}
		})
	}
	bad := k1
	bad.Public = "AAAA"
	if b, err := licensetoken.PublicJWKS([]store.LicenseKey{bad}, t0, retention); err == nil {
		t.Errorf("a 3-byte public key was published: %s", b)
	}
}

func storedKids(t *testing.T, st store.Licenses) map[int64]string {
	t.Helper()
	keys, err := st.LicenseKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	out := map[int64]string{}
	for _, k := range keys {
		out[k.Generation] = k.ID
	}
	return out
}

func tokenKid(t *testing.T, token string) string {
	t.Helper()
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		t.Fatal(err)
	}
	return jws.Signatures[0].Header.KeyID
}
