// Command license-client is the client half of koobridge's license
// service, as the vendor's software in the field would carry it: it
// activates a KooGallery license code through the vendor's koobridge
// (never with the vendor's AK/SK), checks it, and verifies the signed
// license token offline with the koobridge's published Ed25519 keys, using
// go-jose, a JOSE library koobridge does not share code with.
//
//	license-client -url https://licenses.vendor.example activate PL0001 '04:7C:16:5E:E3:5D|||BFEBFBFF00090672'
//	license-client -url https://licenses.vendor.example check    PL0001 '04:7C:16:5E:E3:5D|||BFEBFBFF00090672'
//
// It keeps the last good token in -state; when koobridge cannot be
// reached, check answers from that token until its validUntil (the
// offline grace) has passed.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Claims are what a license token says.
type Claims struct {
	License     string    `json:"license"`
	Fingerprint string    `json:"fingerprint"`
	Status      string    `json:"status"`
	Expires     time.Time `json:"expires,omitzero"`
	ValidUntil  time.Time `json:"validUntil"`
	IssuedAt    int64     `json:"iat"`
}

// Answer is the license service's reply to activate and check.
type Answer struct {
	License    string `json:"license"`
	Status     string `json:"status"`
	Expires    string `json:"expires"`
	ValidUntil string `json:"validUntil"`
	Cached     bool   `json:"cached"`
	Token      string `json:"token"`
}

// ServiceError is an error answer of the license service.
type ServiceError struct {
	HTTPStatus int
	Code       string `json:"error"`
	Message    string `json:"message"`
}

// Error implements error.
func (e *ServiceError) Error() string {
	return fmt.Sprintf("license service: HTTP %d: %s: %s", e.HTTPStatus, e.Code, e.Message)
}

// Client talks to a koobridge license service.
type Client struct {
	BaseURL string // e.g. https://licenses.vendor.example
	HTTP    *http.Client
}

// Activate activates code for this device.
func (c *Client) Activate(ctx context.Context, code, fingerprint string) (Answer, error) {
	return c.post(ctx, "/api/v1/licenses/activate", code, fingerprint)
}

// Check checks code for this device.
func (c *Client) Check(ctx context.Context, code, fingerprint string) (Answer, error) {
	return c.post(ctx, "/api/v1/licenses/check", code, fingerprint)
}

func (c *Client) post(ctx context.Context, path, code, fingerprint string) (Answer, error) {
	body, err := json.Marshal(map[string]string{"license": code, "deviceFingerprint": fingerprint})
	if err != nil {
		return Answer{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(c.BaseURL, "/")+path, bytes.NewReader(body))
	if err != nil {
		return Answer{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return Answer{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return Answer{}, err
	}
	if resp.StatusCode != http.StatusOK {
		e := &ServiceError{HTTPStatus: resp.StatusCode}
		if err := json.Unmarshal(data, e); err != nil {
			return Answer{}, fmt.Errorf("license service: HTTP %d", resp.StatusCode)
		}
		return Answer{}, e
	}
	var a Answer
	if err := json.Unmarshal(data, &a); err != nil {
		return Answer{}, fmt.Errorf("license service: undecodable answer: %w", err)
	}
	return a, nil
}

// Keys fetches the service's public keys (a JWK set).
func (c *Client) Keys(ctx context.Context) (jose.JSONWebKeySet, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(c.BaseURL, "/")+"/api/v1/licenses/keys", nil)
	if err != nil {
		return jose.JSONWebKeySet{}, err
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return jose.JSONWebKeySet{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return jose.JSONWebKeySet{}, fmt.Errorf("license keys: HTTP %d", resp.StatusCode)
	}
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&set); err != nil {
		return jose.JSONWebKeySet{}, fmt.Errorf("license keys: %w", err)
	}
	return set, nil
}

// ErrBadToken means a token does not verify or does not belong to this
// license and device.
var ErrBadToken = errors.New("license token does not verify")

// Verify checks token's EdDSA signature against keys and that it was
// issued for code and fingerprint, and returns its claims. It does not
// judge the status or the times: see Usable.
func Verify(token string, keys jose.JSONWebKeySet, code, fingerprint string) (Claims, error) {
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		return Claims{}, fmt.Errorf("%w: %v", ErrBadToken, err)
	}
	if len(jws.Signatures) != 1 {
		return Claims{}, fmt.Errorf("%w: want one signature", ErrBadToken)
	}
	found := keys.Key(jws.Signatures[0].Header.KeyID)
	if len(found) != 1 {
		return Claims{}, fmt.Errorf("%w: unknown key %q", ErrBadToken, jws.Signatures[0].Header.KeyID)
	}
	payload, err := jws.Verify(found[0])
	if err != nil {
		return Claims{}, fmt.Errorf("%w: %v", ErrBadToken, err)
	}
	var c Claims
	if err := json.Unmarshal(payload, &c); err != nil {
		return Claims{}, fmt.Errorf("%w: claims: %v", ErrBadToken, err)
	}
	if c.License != code || c.Fingerprint != fingerprint {
		return Claims{}, fmt.Errorf("%w: issued for another license or device", ErrBadToken)
	}
	return c, nil
}

// Usable reports whether the software may run on claims at now: the
// license is active, not expired, and the offline grace has not run out.
func Usable(c Claims, now time.Time) error {
	switch {
	case c.Status != "active":
		return fmt.Errorf("license %s is %s", c.License, c.Status)
	case !c.Expires.IsZero() && !now.Before(c.Expires):
		return fmt.Errorf("license %s expired at %s", c.License, c.Expires.Format(time.RFC3339))
	case !now.Before(c.ValidUntil):
		return fmt.Errorf("license %s was last confirmed too long ago (valid until %s)", c.License, c.ValidUntil.Format(time.RFC3339))
	}
	return nil
}
