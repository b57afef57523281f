// Package bearer checks the bearer tokens of koobridge's own HTTP APIs in
// constant time.
package bearer

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

// Tokens is a set of accepted tokens, kept as SHA-256 digests so that a
// comparison takes the same time whatever the token's length.
type Tokens struct {
	digests [][sha256.Size]byte
}

// New returns the set of tokens; empty tokens are left out.
func New(tokens ...string) Tokens {
	var t Tokens
	for _, tok := range tokens {
		if tok != "" {
			t.digests = append(t.digests, sha256.Sum256([]byte(tok)))
		}
	}
	return t
}

// Empty reports whether no token is accepted.
func (t Tokens) Empty() bool { return len(t.digests) == 0 }

// Allow reports whether r carries exactly one Authorization header,
// "Bearer <token>" (the scheme in any case), with one of the tokens. Every token is compared, so
// the time taken does not tell which one matched.
func (t Tokens) Allow(r *http.Request) bool {
	h := r.Header.Values("Authorization")
	if len(h) != 1 {
		return false
	}
	// The scheme name is case-insensitive (RFC 9110 §11.1).
	scheme, tok, ok := strings.Cut(h[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	match := 0
	for _, d := range t.digests {
		match |= subtle.ConstantTimeCompare(got[:], d[:])
	}
	return match == 1
}
