package store

import (
	"context"
	"time"
)

// This file holds the state of the OpenID Connect provider of package sso
// (single sign-on for joint-operation products): its signing keys, and its
// short-lived records (authorization requests and their codes, sign-in
// sessions, access and refresh tokens). They live in the database so that
// every replica serves every step of a sign-in.
//
// Idempotency rests on keys:
//   - sso keys: generation (two replicas creating generation n make one key)
//   - sso records: (kind, id), and (kind, lookup) when lookup is set

// SSOKey is one signing key of the provider. The key of the highest
// Generation signs; package sso decides how long older ones stay
// published.
type SSOKey struct {
	Generation    int64  // 1, 2, …
	ID            string // the JWK "kid"
	Algorithm     string // "RS256"
	PrivateSealed string // the private key, PKCS#8 DER in base64, sealed (package seal)
	CreatedAt     time.Time
}

// SSORecord is one record of the provider's short-lived state. Package sso
// owns the meaning of Kind and the JSON in Data (secrets in it sealed); the
// store keeps them as given.
type SSORecord struct {
	Kind      string // e.g. "authreq", "session", "refresh"
	ID        string
	Lookup    string    // a second key, unique within Kind; "" for none
	Data      string    // JSON
	ExpiresAt time.Time // required
	CreatedAt time.Time
	UpdatedAt time.Time
	Version   int64 // 0 when inserted, incremented by every UpdateSSORecord
}

// SSO stores the provider's keys and records. Reading a record does not
// check its expiry: package sso does, with its own clock.
type SSO interface {
	// SSOKeys lists the signing keys, newest Generation first.
	SSOKeys(ctx context.Context) ([]SSOKey, error)
	// InsertSSOKey inserts k unless a key of the same Generation (or ID)
	// exists, and reports whether it inserted. A zero CreatedAt is stored
	// as now.
	InsertSSOKey(ctx context.Context, k SSOKey) (inserted bool, err error)
	// InsertSSORecord inserts r unless a record of the same (Kind, ID), or
	// of the same (Kind, Lookup) when Lookup is set, exists, and reports
	// whether it inserted. r.Version is ignored (stored as 0); zero
	// CreatedAt and UpdatedAt are stored as now.
	InsertSSORecord(ctx context.Context, r SSORecord) (inserted bool, err error)
	// SSORecord reads one record; ErrNotFound if absent.
	SSORecord(ctx context.Context, kind, id string) (SSORecord, error)
	// SSORecordByLookup reads the record of kind whose Lookup is lookup
	// (never ""); ErrNotFound if absent.
	SSORecordByLookup(ctx context.Context, kind, lookup string) (SSORecord, error)
	// UpdateSSORecord writes Lookup, Data, ExpiresAt and UpdatedAt (zero:
	// now) of the record of (r.Kind, r.ID) when its stored Version equals
	// r.Version, and sets the stored Version to r.Version+1: ErrConflict
	// when the Version moved on or the Lookup is another record's,
	// ErrNotFound when absent.
	UpdateSSORecord(ctx context.Context, r SSORecord) error
	// DeleteSSORecord deletes one record and reports whether it existed:
	// of two concurrent deletes of one record, exactly one sees true.
	DeleteSSORecord(ctx context.Context, kind, id string) (bool, error)
	// DeleteExpiredSSORecords deletes the records whose ExpiresAt is at or
	// before now and reports how many.
	DeleteExpiredSSORecords(ctx context.Context, now time.Time) (int64, error)
}
