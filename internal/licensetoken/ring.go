// Package licensetoken signs the license tokens of the license service for
// the vendor's client software: compact JWS (RFC 7515) signed with Ed25519
// (alg EdDSA, RFC 8037), verified by the client against a JWK set koobridge
// publishes, without a network round trip.
//
// The keys are koobridge's own, kept in the store like the single sign-on
// keys of package sso. The first is made on first use and signs at once; a
// new one is made by Rotate (the operator's "koobridge license
// rotate-key") and is staged: published at once, it signs only once it is
// older than Staging, so that by then every replica publishes it and every
// key set a client or proxy cached without it has expired. Until then the
// previous key signs. A key that was replaced stays published (and
// trusted) for Retention after its successor started signing, so tokens it
// signed keep verifying while a client may still hold them offline:
// rotation is not revocation. The 32-byte seed
// is sealed with the data key (package seal); the public key is stored in
// the clear, so the key set can be printed without the data key
// (PublicJWKS). Two replicas that make the same generation at once store
// one key: the generation is the primary key.
package licensetoken

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/koobridge/koobridge/internal/seal"
	"github.com/koobridge/koobridge/internal/store"
)

// RefreshInterval is how long a Ring uses the keys it read before reading
// them again: a key made by Rotate on one replica is published by every
// replica within it.
const RefreshInterval = time.Minute

// KeySetMaxAge is how long a client or proxy may cache the published key
// set (the max-age of GET /api/v1/licenses/keys): short against Retention,
// so a client learns a new key within minutes of a rotation.
const KeySetMaxAge = 5 * time.Minute

// Staging is how long a key made by Rotate is published before it signs:
// every replica has read it after RefreshInterval, and a key set cached
// before that has expired KeySetMaxAge later. A client that fetches the
// set again on a kid it does not know then always finds the kid.
const Staging = RefreshInterval + KeySetMaxAge

// Config configures a Ring.
type Config struct {
	// Store keeps the keys; required.
	Store store.Licenses
	// Sealer seals and opens the private keys (the data key); required.
	Sealer *seal.Sealer
	// Retention is how long a replaced key stays published after its
	// successor was made; it must be positive, and at least the offline
	// grace of the license service, or tokens the client still trusts
	// offline stop verifying after a rotation.
	Retention time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives the making of keys; nil means slog.Default().
	Logger *slog.Logger
}

// Ring signs license tokens with the newest key past its staging and
// publishes the keys that verify them. It is safe for concurrent use; replicas on one
// database share its keys.
type Ring struct {
	cfg Config
	log *slog.Logger

	mu       sync.Mutex
	stored   []store.LicenseKey // newest generation first; nil until read
	loadedAt time.Time
	signer   *signingKey // the signing key, opened; nil until needed
}

// signingKey is the opened private half of a stored key.
type signingKey struct {
	id      string
	private ed25519.PrivateKey
}

// New returns a Ring. It reads nothing yet: the first Sign, JWKS or
// Rotate reads the keys (and makes the first one when there is none).
func New(cfg Config) (*Ring, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("licensetoken: Config.Store is required")
	case cfg.Sealer == nil:
		return nil, errors.New("licensetoken: Config.Sealer is required")
	case cfg.Retention <= 0:
		return nil, fmt.Errorf("licensetoken: Config.Retention %v: want a positive duration", cfg.Retention)
	}
	r := &Ring{cfg: cfg, log: cfg.Logger}
	if r.cfg.Now == nil {
		r.cfg.Now = time.Now
	}
	if r.log == nil {
		r.log = slog.Default()
	}
	return r, nil
}

// keys returns the stored keys, newest first, read again when the cache
// is RefreshInterval old or force is set, and makes generation 1 when there is
// none. The caller holds r.mu.
func (r *Ring) keys(ctx context.Context, force bool) ([]store.LicenseKey, error) {
	now := r.cfg.Now()
	age := now.Sub(r.loadedAt)
	if !force && r.stored != nil && age >= 0 && age < RefreshInterval {
		return r.stored, nil
	}
	keys, err := r.load(ctx)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		if _, err := r.makeKey(ctx, 1, now); err != nil {
			return nil, err
		}
		if keys, err = r.load(ctx); err != nil {
			return nil, err
		}
		if len(keys) == 0 {
			return nil, errors.New("licensetoken: the key of generation 1 was not stored")
		}
	}
	r.stored, r.loadedAt = keys, now
	return keys, nil
}

// load reads the stored keys, newest first.
func (r *Ring) load(ctx context.Context) ([]store.LicenseKey, error) {
	keys, err := r.cfg.Store.LicenseKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("licensetoken: read keys: %w", err)
	}
	sortNewestFirst(keys)
	return keys, nil
}

// makeKey generates and stores the key of generation gen; a replica that
// loses the race to store it uses the winner's. It reports the kid it
// made, whether or not it was the one stored.
func (r *Ring) makeKey(ctx context.Context, gen int64, now time.Time) (string, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", fmt.Errorf("licensetoken: generate key: %w", err)
	}
	sealed, err := r.cfg.Sealer.Seal(base64.StdEncoding.EncodeToString(priv.Seed()))
	if err != nil {
		return "", fmt.Errorf("licensetoken: seal key: %w", err)
	}
	x := base64.RawURLEncoding.EncodeToString(pub)
	kid := keyID(gen, x)
	inserted, err := r.cfg.Store.InsertLicenseKey(ctx, store.LicenseKey{
		Generation: gen, ID: kid, Public: x, PrivateSealed: sealed, CreatedAt: now,
	})
	if err != nil {
		return "", fmt.Errorf("licensetoken: store key of generation %d: %w", gen, err)
	}
	if inserted {
		r.log.InfoContext(ctx, "licensetoken: new token signing key", "kid", kid, "generation", gen)
	}
	return kid, nil
}

// keyID names the key of generation gen with public key x: its generation
// and the start of its RFC 7638 thumbprint, so that a kid tells the
// generation at a glance and is the same wherever it is computed.
func keyID(gen int64, x string) string {
	return fmt.Sprintf("g%d-%s", gen, thumbprint(x)[:16])
}

// thumbprint is the RFC 7638 JWK thumbprint (SHA-256, base64url) of the
// Ed25519 public key x: the hash of its required members in
// lexicographic order, without white space.
func thumbprint(x string) string {
	h := sha256.Sum256([]byte(`{"crv":"Ed25519","kty":"OKP","x":"` + x + `"}`))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// current returns the key that signs now, opened. The caller holds r.mu.
func (r *Ring) current(ctx context.Context) (*signingKey, error) {
	keys, err := r.keys(ctx, false)
	if err != nil {
		return nil, err
	}
	signer := signing(keys, r.cfg.Now())
	if r.signer != nil && r.signer.id == signer.ID {
		return r.signer, nil
	}
	k, err := r.open(signer)
	if err != nil {
		return nil, err
	}
	r.signer = k
	return k, nil
}

// signing returns the key of keys (newest first, not empty) that signs at
// now: the newest one past its staging, or, while none is, the oldest
// stored, which is the first key ever made and signed at once.
func signing(keys []store.LicenseKey, now time.Time) store.LicenseKey {
	for _, k := range keys {
		if now.Sub(k.CreatedAt) >= Staging {
			return k
		}
	}
	return keys[len(keys)-1]
}

// signsFrom returns when keys[i] (keys newest first) starts signing: the
// oldest stored key at once, any other once past its staging.
func signsFrom(keys []store.LicenseKey, i int) time.Time {
	if i == len(keys)-1 {
		return keys[i].CreatedAt
	}
	return keys[i].CreatedAt.Add(Staging)
}

// open unseals the private half of k and checks it against the public
// half stored beside it.
func (r *Ring) open(k store.LicenseKey) (*signingKey, error) {
	plain, err := r.cfg.Sealer.Open(k.PrivateSealed)
	if err != nil {
		return nil, fmt.Errorf("licensetoken: key %s: %w", k.ID, err)
	}
	seed, err := base64.StdEncoding.DecodeString(plain)
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("licensetoken: key %s: the sealed value is not a base64 Ed25519 seed", k.ID)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	pub, err := decodePublic(k)
	if err != nil {
		return nil, err
	}
	if !pub.Equal(priv.Public()) {
		return nil, fmt.Errorf("licensetoken: key %s: the stored public key does not belong to its private key", k.ID)
	}
	return &signingKey{id: k.ID, private: priv}, nil
}

// decodePublic decodes the public half of a stored key.
func decodePublic(k store.LicenseKey) (ed25519.PublicKey, error) {
	raw, err := base64.RawURLEncoding.DecodeString(k.Public)
	if err != nil || len(raw) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("licensetoken: key %s: the public key is not base64url of %d bytes", k.ID, ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(raw), nil
}

// Rotate makes a new key and returns its kid and when it starts signing.
// The key is published at once (on every replica within RefreshInterval)
// and signs after Staging; the first key ever made signs at once. The
// replaced key keeps signing until then and stays published for
// Retention after. It refuses (seal.ErrAuth) when the Sealer cannot open the
// current key: the new one would be sealed with a data key the other
// replicas do not have. When another replica rotates at the same moment,
// both end with the same new key, whose kid is returned.
func (r *Ring) Rotate(ctx context.Context) (kid string, signsAt time.Time, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	keys, err := r.load(ctx)
	if err != nil {
		return "", time.Time{}, err
	}
	next := int64(1)
	if len(keys) > 0 {
		// A key sealed with another data key would stop every replica
		// from signing: prove the Sealer opens the current key first.
		if _, err := r.open(keys[0]); err != nil {
			return "", time.Time{}, fmt.Errorf("licensetoken: rotate: %w", err)
		}
		next = keys[0].Generation + 1
	}
	if _, err := r.makeKey(ctx, next, r.cfg.Now()); err != nil {
		return "", time.Time{}, err
	}
	r.stored = nil // read again, with the new key
	keys, err = r.keys(ctx, true)
	if err != nil {
		return "", time.Time{}, err
	}
	for i, k := range keys {
		if k.Generation == next {
			return k.ID, signsFrom(keys, i), nil
		}
	}
	return "", time.Time{}, fmt.Errorf("licensetoken: the key of generation %d was not stored", next)
}

// JWKS returns the public keys that verify tokens now, as a JWK set
// (RFC 7517), newest first: a staged key, the signing key, then the
// replaced keys still within Retention. It makes the first key when there is none, so the set is
// never empty.
func (r *Ring) JWKS(ctx context.Context) ([]byte, error) {
	r.mu.Lock()
	keys, err := r.keys(ctx, false)
	r.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return PublicJWKS(keys, r.cfg.Now(), r.cfg.Retention)
}
