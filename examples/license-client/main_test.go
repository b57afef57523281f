package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// service is a stand-in license service for the client's own tests: it
// signs the claims the test sets with an Ed25519 key. The end-to-end test
// in koobridge's cmd/koobridge runs this client against a real koobridge.
type service struct {
	key    ed25519.PrivateKey
	claims Claims
	tamper bool
}

func (s *service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/api/v1/licenses/keys":
		set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: s.key.Public(), KeyID: "k1", Algorithm: "EdDSA", Use: "sig"}}}
		_ = json.NewEncoder(w).Encode(set)
	case "/api/v1/licenses/activate", "/api/v1/licenses/check":
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: s.key}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		payload, _ := json.Marshal(s.claims)
		jws, err := signer.Sign(payload)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		token, _ := jws.CompactSerialize()
		if s.tamper {
			parts := strings.Split(token, ".")
			other, _ := json.Marshal(Claims{License: s.claims.License, Fingerprint: s.claims.Fingerprint, Status: "active", ValidUntil: s.claims.ValidUntil})
			parts[1] = base64.RawURLEncoding.EncodeToString(other)
			token = strings.Join(parts, ".")
		}
		_ = json.NewEncoder(w).Encode(Answer{License: s.claims.License, Status: s.claims.Status, Token: token})
	default:
		http.NotFound(w, r)
	}
}

func TestRun(t *testing.T) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	active := Claims{License: "PL1", Fingerprint: "FP", Status: "active", Expires: now.Add(24 * time.Hour), ValidUntil: now.Add(time.Hour)}
	frozen := active
	frozen.Status = "frozen"
	graceOver := active
	graceOver.ValidUntil = now.Add(-time.Minute)
	tests := []struct {
		name   string
		claims Claims
		tamper bool
		args   []string
		want   int
	}{
		{"active", active, false, []string{"activate", "PL1", "FP"}, 0},
		{"frozen", frozen, false, []string{"check", "PL1", "FP"}, 2},
		{"grace over", graceOver, false, []string{"check", "PL1", "FP"}, 2},
		{"tampered", frozen, true, []string{"check", "PL1", "FP"}, 1},
		{"another device", active, false, []string{"check", "PL1", "OTHER"}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(&service{key: key, claims: tc.claims, tamper: tc.tamper})
			defer srv.Close()
			var out, errOut bytes.Buffer
			got := run(context.Background(), append([]string{"-url", srv.URL}, tc.args...), &out, &errOut)
			if got != tc.want {
				t.Fatalf("exit %d, want %d; stdout %s stderr %s", got, tc.want, out.String(), errOut.String())
			}
		})
	}
}

func TestOffline(t *testing.T) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	srv := httptest.NewServer(&service{key: key, claims: Claims{License: "PL1", Fingerprint: "FP", Status: "active", ValidUntil: now.Add(time.Hour)}})
	state := filepath.Join(t.TempDir(), "state.json")
	var out, errOut bytes.Buffer
	if got := run(context.Background(), []string{"-url", srv.URL, "-state", state, "check", "PL1", "FP"}, &out, &errOut); got != 0 {
		t.Fatalf("online check: exit %d: %s", got, errOut.String())
	}
	srv.Close()
	out.Reset()
	if got := run(context.Background(), []string{"-url", srv.URL, "-state", state, "check", "PL1", "FP"}, &out, &errOut); got != 0 {
		t.Fatalf("offline check: exit %d: %s", got, errOut.String())
	}
	var res struct{ Offline bool }
	if err := json.Unmarshal(out.Bytes(), &res); err != nil || !res.Offline {
		t.Fatalf("offline check printed %s (err %v), want offline true", out.String(), err)
	}
	// Without a kept token an unreachable service is an error.
	if got := run(context.Background(), []string{"-url", srv.URL, "check", "PL1", "FP"}, &out, &errOut); got != 1 {
		t.Fatalf("offline check without state: exit %d, want 1", got)
	}
}
