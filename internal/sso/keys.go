package sso

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/koobridge/koobridge/internal/store"
)

// Signing keys. The key of the highest generation signs; a new generation
// is made when the newest is KeyRotation old (on first start: when there is
// none). A replaced key stays in the JWKS for KeyGrace after its successor
// was made, so ID tokens it signed still verify at the apps (and as
// id_token_hint) while they live. Two replicas that make the same
// generation at once store one key: the generation is the primary key.

// keyBits is the size of the RSA signing keys.
const keyBits = 2048

// keyCacheFor is how long a replica keeps the keys it read.
const keyCacheFor = time.Minute

// signingKey is an RSA key of one generation; it implements op.SigningKey
// and op.Key (its public half).
type signingKey struct {
	generation int64
	id         string
	private    *rsa.PrivateKey
	created    time.Time
}

func (k signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k signingKey) Key() any                                    { return k.private }
func (k signingKey) ID() string                                  { return k.id }

// publicKey is the published half of a signing key.
type publicKey struct{ k signingKey }

func (p publicKey) ID() string                         { return p.k.id }
func (p publicKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (p publicKey) Use() string                        { return "sig" }
func (p publicKey) Key() any                           { return &p.k.private.PublicKey }

// keys returns the keys, newest first, making a new generation when the
// newest is due; cached for a minute.
func (p *Provider) keys(ctx context.Context) ([]signingKey, error) {
	p.keysMu.Lock()
	defer p.keysMu.Unlock()
	now := p.now()
	if len(p.keysCache) > 0 && now.Sub(p.keysAt) < keyCacheFor && now.Sub(p.keysCache[0].created) < p.cfg.KeyRotation {
		return p.keysCache, nil
	}
	keys, err := p.loadKeys(ctx)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 || now.Sub(keys[0].created) >= p.cfg.KeyRotation {
		next := int64(1)
		if len(keys) > 0 {
			next = keys[0].generation + 1
		}
		if err := p.makeKey(ctx, next, now); err != nil {
			return nil, err
		}
		if keys, err = p.loadKeys(ctx); err != nil {
			return nil, err
		}
		if len(keys) == 0 {
			return nil, fmt.Errorf("sso: signing key of generation %d not stored", next)
		}
	}
	p.keysCache, p.keysAt = keys, now
	return keys, nil
}

func (p *Provider) loadKeys(ctx context.Context) ([]signingKey, error) {
	stored, err := p.st.SSOKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("sso: read signing keys: %w", err)
	}
	out := make([]signingKey, 0, len(stored))
	for _, s := range stored {
		der, err := p.sealer.Open(s.PrivateSealed)
		if err != nil {
			return nil, fmt.Errorf("sso: signing key %s: %w", s.ID, err)
		}
		raw, err := base64.StdEncoding.DecodeString(der)
		if err != nil {
			return nil, fmt.Errorf("sso: signing key %s: not base64", s.ID)
		}
		k, err := x509.ParsePKCS8PrivateKey(raw)
		if err != nil {
			return nil, fmt.Errorf("sso: signing key %s: %w", s.ID, err)
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("sso: signing key %s: not RSA", s.ID)
		}
		out = append(out, signingKey{generation: s.Generation, id: s.ID, private: rk, created: s.CreatedAt})
	}
	return out, nil
}

// makeKey generates and stores the key of generation gen (a replica that
// loses the race to store it uses the winner's).
func (p *Provider) makeKey(ctx context.Context, gen int64, now time.Time) error {
	k, err := rsa.GenerateKey(rand.Reader, keyBits)
	if err != nil {
		return fmt.Errorf("sso: generate signing key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return fmt.Errorf("sso: encode signing key: %w", err)
	}
	sealed, err := p.sealer.Seal(base64.StdEncoding.EncodeToString(der))
	if err != nil {
		return fmt.Errorf("sso: seal signing key: %w", err)
	}
	id, err := randomID()
	if err != nil {
		return err
	}
	kid := fmt.Sprintf("g%d-%s", gen, id[:16])
	inserted, err := p.st.InsertSSOKey(ctx, store.SSOKey{
		Generation: gen, ID: kid, Algorithm: string(jose.RS256), PrivateSealed: sealed, CreatedAt: now,
	})
	if err != nil {
		return fmt.Errorf("sso: store signing key: %w", err)
	}
	if inserted {
		p.log.InfoContext(ctx, "sso: new signing key", "kid", kid, "generation", gen)
	}
	return nil
}

// SigningKey implements op.Storage: the newest key.
func (s *storage) SigningKey(ctx context.Context) (op.SigningKey, error) {
	keys, err := (*Provider)(s).keys(ctx)
	if err != nil {
		return nil, err
	}
	return keys[0], nil
}

// SignatureAlgorithms implements op.Storage.
func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

// KeySet implements op.Storage: the newest key and the replaced ones
// still within their grace.
func (s *storage) KeySet(ctx context.Context) ([]op.Key, error) {
	p := (*Provider)(s)
	keys, err := p.keys(ctx)
	if err != nil {
		return nil, err
	}
	now := p.now()
	out := []op.Key{publicKey{keys[0]}}
	for i := 1; i < len(keys); i++ {
		if now.Sub(keys[i-1].created) >= p.cfg.KeyGrace {
			break
		}
		out = append(out, publicKey{keys[i]})
	}
	return out, nil
}
