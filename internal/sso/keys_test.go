package sso_test

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/koobridge/koobridge/internal/seal"
	"github.com/koobridge/koobridge/internal/sso"
	"github.com/koobridge/koobridge/internal/store"
)

// newReplicas starts n providers on one database with one data key and
// one clock, each behind its own HTTP server, as replicas of koobridge
// are; it returns their issuer URLs.
func newReplicas(t *testing.T, st store.Store, c *clock, n int) []string {
	t.Helper()
	dataKey := make([]byte, seal.KeySize)
	_, _ = rand.Read(dataKey)
	var issuers []string
	for range n {
		var h http.Handler
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
		t.Cleanup(srv.Close)
		p, err := sso.New(sso.Config{Issuer: srv.URL, Store: st, DataKey: dataKey, Now: c.Now,
			Clients: []sso.Client{{ID: clientID, Secret: clientSecret, RedirectURIs: []string{appRedirect}}}})
		if err != nil {
			t.Fatal(err)
		}
		h = p.Handler()
		issuers = append(issuers, srv.URL)
	}
	return issuers
}

// publishedKey is a key of a JWKS, as much as the test compares.
type publishedKey struct {
	Kid string `json:"kid"`
	Kty string `json:"kty"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	N   string `json:"n"`
	E   string `json:"e"`
}

// jwks reads the JWKS of issuer.
func jwks(issuer string) ([]publishedKey, error) {
	resp, err := http.Get(issuer + "/keys")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, errors.New(resp.Status + ": " + string(b))
	}
	var set struct {
		Keys []publishedKey `json:"keys"`
	}
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, err
	}
	return set.Keys, nil
}

// jwksAtOnce reads the JWKS of every issuer at the same moment and returns
// them in the issuers' order.
func jwksAtOnce(t *testing.T, issuers []string) [][]publishedKey {
	t.Helper()
	out := make([][]publishedKey, len(issuers))
	errs := make([]error, len(issuers))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, iss := range issuers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			out[i], errs[i] = jwks(iss)
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("JWKS of replica %d: %v", i, err)
		}
	}
	return out
}

func kids(keys []publishedKey) []string {
	out := []string{}
	for _, k := range keys {
		out = append(out, k.Kid)
	}
	return out
}

// storedKids are the kids of the stored signing keys by generation.
func storedKids(t *testing.T, st store.Store) map[int64]string {
	t.Helper()
	keys, err := st.SSOKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	out := map[int64]string{}
	for _, k := range keys {
		out[k.Generation] = k.ID
	}
	return out
}

// TestKeyReplicasAndRotation: two replicas on one database that need the
// first signing key at the same moment store one key and publish the same
// one; once it is KeyRotation old both make and publish one new key with
// the old one after it; KeyGrace after that, only the new one.
func TestKeyReplicasAndRotation(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			st := d.open(t)
			c := &clock{t: time.Now().UTC()}
			issuers := newReplicas(t, st, c, 2)

			first := jwksAtOnce(t, issuers)
			stored := storedKids(t, st)
			if len(stored) != 1 || stored[1] == "" {
				t.Fatalf("stored keys after the first start %v, want generation 1 only", stored)
			}
			old := stored[1]
			for i, keys := range first {
				if !reflect.DeepEqual(kids(keys), []string{old}) {
					t.Errorf("replica %d publishes %v, want [%s]", i, kids(keys), old)
				}
				if k := keys[0]; k.Kty != "RSA" || k.Alg != "RS256" || k.Use != "sig" || k.N == "" || k.E == "" {
					t.Errorf("replica %d publishes %+v, want an RSA RS256 signing key", i, k)
				}
			}
			if !reflect.DeepEqual(first[0], first[1]) {
				t.Errorf("the replicas publish different keys:\n%+v\n%+v", first[0], first[1])
			}

			c.Add(sso.DefaultKeyRotation + time.Hour)
			rotated := jwksAtOnce(t, issuers)
			stored = storedKids(t, st)
			if len(stored) != 2 || stored[1] != old || stored[2] == "" || stored[2] == old {
				t.Fatalf("stored keys after rotation %v, want generation 1 (%s) and a new generation 2", stored, old)
			}
			for i, keys := range rotated {
				if want := []string{stored[2], old}; !reflect.DeepEqual(kids(keys), want) {
					t.Errorf("replica %d publishes %v after rotation, want %v", i, kids(keys), want)
				}
			}
			if !reflect.DeepEqual(rotated[0], rotated[1]) {
				t.Errorf("the replicas publish different keys after rotation:\n%+v\n%+v", rotated[0], rotated[1])
			}
			if !reflect.DeepEqual(rotated[0][1], first[0][0]) {
				t.Errorf("the replaced key changed: %+v, was %+v", rotated[0][1], first[0][0])
			}

			c.Add(sso.DefaultKeyGrace)
			for i, keys := range jwksAtOnce(t, issuers) {
				if want := []string{stored[2]}; !reflect.DeepEqual(kids(keys), want) {
					t.Errorf("replica %d publishes %v after the grace, want %v", i, kids(keys), want)
				}
			}
			if got := storedKids(t, st); !reflect.DeepEqual(got, stored) {
				t.Errorf("stored keys after the grace %v, want %v", got, stored)
			}
		})
	}
}

// TestCodeExchangedConcurrently: one code exchanged by 8 clients at once
// is redeemed exactly once; every other exchange is refused with
// invalid_grant.
func TestCodeExchangedConcurrently(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		e.fake.set(func(f *fakeOneAccess) { f.user = "alice" })
		for round := range 4 {
			f := newFlow()
			q := e.authorize(f, tenantID)
			const n = 8
			toks := make([]*oauth2.Token, n)
			errs := make([]error, n)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					toks[i], errs[i] = e.oauth.Exchange(e.ctx, q.Get("code"), oauth2.VerifierOption(f.verifier))
				}()
			}
			close(start)
			wg.Wait()
			won := -1
			for i := range n {
				switch {
				case errs[i] == nil && won >= 0:
					t.Errorf("round %d: exchanges %d and %d of one code both succeeded", round, won, i)
				case errs[i] == nil:
					won = i
				case !isOAuthError(errs[i], "invalid_grant"):
					t.Errorf("round %d: exchange %d: %v, want invalid_grant", round, i, errs[i])
				}
			}
			if won < 0 {
				t.Fatalf("round %d: no exchange succeeded: %v", round, errs)
			}
			if idt := e.verify(toks[won], f.nonce); idt.Subject != "alice@acme" {
				t.Errorf("round %d: sub %q", round, idt.Subject)
			}
		}
	})
}
