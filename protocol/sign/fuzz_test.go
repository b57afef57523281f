package sign

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"testing"
)

// verifyErrors are the sentinels a verifier may return; every error must
// wrap one of them.
var verifyErrors = []error{
	ErrMissing, ErrSignature, ErrStaleTimestamp, ErrFutureTimestamp,
	ErrMalformedTimestamp, ErrReplayedNonce, ErrMalformedNonce, ErrNoKeys,
	ErrMalformedParams, ErrMalformedBodySign,
}

func isVerifyError(err error) bool {
	for _, want := range verifyErrors {
		if errors.Is(err, want) {
			return true
		}
	}
	return false
}

// fuzzVerifier fuzzes one signature flavour: arbitrary input never panics,
// is accepted only with a correct signature, and a freshly signed call
// always verifies.
func fuzzVerifier(f *testing.F, fl flavour, accepts func(key, sig, ts, nonce string, body []byte) bool) {
	ts := msText(t0)
	f.Add(specKey, fl.sign(specKey, specNonce, ts, []byte(specBody)), ts, specNonce, []byte(specBody))
	f.Add(specKey, "", "", "", []byte(nil))
	f.Add("", "00", "1680508066", "n", []byte("{}"))
	f.Add("密钥+/=", strings.Repeat("A", 64), "-680508066618", strings.Repeat("n", 129), []byte(`{"a":1}`))
	f.Fuzz(func(t *testing.T, key, sig, timestamp, nonce string, body []byte) {
		v := &Verifier{Keys: []string{key}, Now: fixedNow, Nonces: NewMemoryNoncesWithClock(fixedNow), SortedBodyFallback: len(body)%2 == 0}
		idx, err := fl.verify(v, t.Context(), sig, timestamp, nonce, body)
		switch {
		case err != nil && (idx != -1 || !isVerifyError(err)):
			t.Fatalf("= %d, %v: want -1 and a sentinel error", idx, err)
		case err == nil && idx != 0:
			t.Fatalf("accepted with key index %d, want 0", idx)
		case err == nil && !accepts(key, sig, timestamp, nonce, body) && !acceptsSorted(v, accepts, key, sig, timestamp, nonce, body):
			t.Fatalf("accepted a wrong signature %q", sig)
		case err == nil && len(nonce) > MaxNonceLen:
			t.Fatalf("accepted a %d-byte nonce", len(nonce))
		}

		// A fresh, correctly signed call always verifies, in either case.
		if nonce == "" || len(nonce) > MaxNonceLen {
			nonce = "fresh-nonce"
		}
		v = &Verifier{Keys: []string{"other", key}, Now: fixedNow, Nonces: NewMemoryNoncesWithClock(fixedNow)}
		good := fl.sign(key, nonce, ts, body)
		if idx, err := fl.verify(v, t.Context(), strings.ToUpper(good), ts, nonce, body); err != nil || idx != 1 && key != "other" {
			t.Fatalf("fresh call = %d, %v; want 1, nil", idx, err)
		}
		if _, err := fl.verify(v, t.Context(), strings.ToLower(good), ts, nonce, body); !errors.Is(err, ErrReplayedNonce) {
			t.Fatalf("replayed call: err = %v, want ErrReplayedNonce", err)
		}
	})
}

// acceptsSorted reports whether sig signs the sorted re-serialisation of
// body and v allows that fallback.
func acceptsSorted(v *Verifier, accepts func(key, sig, ts, nonce string, body []byte) bool, key, sig, ts, nonce string, body []byte) bool {
	sorted, ok := sortedJSON(body)
	return v.SortedBodyFallback && ok && accepts(key, sig, ts, nonce, sorted)
}

func FuzzVerifyV2(f *testing.F) {
	fuzzVerifier(f, flavours[0], func(key, sig, ts, nonce string, body []byte) bool {
		return strings.EqualFold(sig, V2Signature(key, nonce, ts, body))
	})
}

func FuzzVerifyKit(f *testing.F) {
	accepts := func(key, sig, ts, nonce string, body []byte) bool {
		return strings.EqualFold(sig, KitSignature(key, nonce, ts, body)) ||
			strings.EqualFold(sig, KitSignatureHashed(key, nonce, ts, body))
	}
	// Form A signs, and form B must verify too: alternate by key length.
	f.Add("k", "", "", "", []byte(nil))
	fuzzVerifier(f, flavour{"kit", func(key, nonce, ts string, body []byte) string {
		if len(key)%2 == 0 {
			return KitSignature(key, nonce, ts, body)
		}
		return KitSignatureHashed(key, nonce, ts, body)
	}, (*Verifier).VerifyKit}, accepts)
}

func FuzzAuthTokenJSON(f *testing.F) {
	f.Add(v1Key, v1KitToken, []byte(v1KitBody))
	f.Add("k", "", []byte(`{"timeStamp":"1","a":{"b":[1,2,{"c":null}]},"d":1e3,"e":true}`))
	f.Add("k", "x", []byte(`{"a":"1","a":"2","timeStamp":"1"}`))
	f.Add("k", "x", []byte(`[]`))
	f.Add("k", "x", []byte(`{"timeStamp":"1"} {}`))
	f.Fuzz(func(t *testing.T, key, token string, body []byte) {
		tok, err := AuthTokenJSON(key, body)
		switch {
		case err != nil && (tok != "" || !isVerifyError(err)):
			t.Fatalf("= %q, %v: want empty and a sentinel error", tok, err)
		case err == nil && !json.Valid(body):
			t.Fatalf("signed invalid JSON %q", body)
		case err == nil:
			if err := VerifyAuthTokenJSON(key, tok, body); err != nil {
				t.Fatalf("own token does not verify: %v", err)
			}
		}
		if VerifyAuthTokenJSON(key, token, body) == nil && strings.ReplaceAll(token, " ", "+") != tok {
			t.Fatalf("accepted token %q, want %q", token, tok)
		}

		// Any body that decodes to a JSON object, given a timeStamp, signs
		// and verifies.
		var m map[string]any
		if json.Unmarshal(body, &m) != nil || m == nil {
			return
		}
		if ts, ok := m["timeStamp"].(string); !ok || ts == "" {
			m["timeStamp"] = "20220413093539534"
		}
		object, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		tok, err = AuthTokenJSON(key, object)
		if err != nil {
			t.Fatalf("AuthTokenJSON(%s): %v", object, err)
		}
		if err := VerifyAuthTokenJSON(key, tok, object); err != nil {
			t.Fatalf("round trip of %s: %v", object, err)
		}
	})
}

func FuzzAuthTokenQuery(f *testing.F) {
	f.Add(v1Key, v1GetQuery+"&authToken="+url.QueryEscape(v1GetToken))
	f.Add("oldkey123", licenseV1Q)
	f.Add("k", "a=1&a=2&timeStamp=1")
	f.Add("k", "timeStamp=1&x=%zz")
	f.Add("k", "timeStamp=1&x=a+b%26c&authToken=abc")
	f.Fuzz(func(t *testing.T, key, raw string) {
		q, _ := url.ParseQuery(raw) // keep what parses, as a server would
		if err := VerifyAuthTokenQuery(key, q); err == nil {
			want, _ := AuthTokenQuery(key, q)
			if strings.ReplaceAll(q.Get("authToken"), " ", "+") != want {
				t.Fatalf("accepted authToken %q, want %q", q.Get("authToken"), want)
			}
		} else if !isVerifyError(err) {
			t.Fatalf("VerifyAuthTokenQuery: %v is not a sentinel error", err)
		}
		tok, err := AuthTokenQuery(key, q)
		if err != nil {
			if tok != "" || !errors.Is(err, ErrMissing) && !errors.Is(err, ErrMalformedParams) {
				t.Fatalf("= %q, %v", tok, err)
			}
			return
		}
		q.Set("authToken", tok)
		if err := VerifyAuthTokenQuery(key, q); err != nil {
			t.Fatalf("own token does not verify: %v", err)
		}
		// Through the wire: encode, parse, verify.
		wire, err := url.ParseQuery(q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		if err := VerifyAuthTokenQuery(key, wire); err != nil {
			t.Fatalf("after encoding %q: %v", q.Encode(), err)
		}
	})
}

func FuzzParseBodySign(f *testing.F) {
	f.Add(`sign_type="HMAC-SHA256", signature="TqHrax4nGMCqfFPsub8jnfn6V0MhK5bWa0lTIOZGsIQ="`, v1Key, []byte(`{"resultCode":"000000","resultMsg":"success."}`))
	f.Add(`signature=TqHrax4nGMCqfFPsub8jnfn6V0MhK5bWa0lTIOZGsIQ= , sign_type = hmac-sha256`, "k", []byte(nil))
	f.Add(`sign_type="HMAC-SHA256", signature="a"b"`, "k", []byte("x"))
	f.Add(`"`, "", []byte(""))
	f.Add(`,=,"=",`, "", []byte(""))
	f.Fuzz(func(t *testing.T, header, key string, body []byte) {
		st, sig, err := ParseBodySign(header)
		if err != nil {
			if st != "" || sig != "" || !isVerifyError(err) {
				t.Fatalf("= %q, %q, %v", st, sig, err)
			}
		} else {
			mac, derr := base64.StdEncoding.DecodeString(sig)
			if !strings.EqualFold(st, BodySignType) || derr != nil || len(mac) != 32 {
				t.Fatalf("accepted sign_type %q, signature %q", st, sig)
			}
		}
		if VerifyBodySign(key, header, body) == nil {
			mac, _ := base64.StdEncoding.DecodeString(sig)
			if b64(mac) != bodySignature(key, body) {
				t.Fatalf("accepted %q for a body it does not sign", header)
			}
		}

		h := BodySign(key, body)
		st, sig, err = ParseBodySign(h)
		if err != nil || st != BodySignType || sig != bodySignature(key, body) {
			t.Fatalf("ParseBodySign(BodySign) = %q, %q, %v", st, sig, err)
		}
		if err := VerifyBodySign(key, h, body); err != nil {
			t.Fatalf("VerifyBodySign(BodySign): %v", err)
		}
	})
}

func FuzzVerifyUsageSignature(f *testing.F) {
	f.Add(specKey, specTimestamp, specNonce, specUsageSig, []byte(specUsageBody))
	f.Add("k", "", "", "", []byte(nil))
	f.Add("k", "1", "n", "%%%", []byte("{}"))
	f.Fuzz(func(t *testing.T, key, ts, nonce, sig string, body []byte) {
		err := VerifyUsageSignature(key, ts, nonce, sig, body)
		if err == nil {
			mac, derr := base64.StdEncoding.DecodeString(sig)
			if derr != nil || b64(mac) != UsageSignature(key, ts, nonce, body) {
				t.Fatalf("accepted a wrong signature %q", sig)
			}
		} else if !isVerifyError(err) {
			t.Fatalf("%v is not a sentinel error", err)
		}
		if ts == "" || nonce == "" {
			return
		}
		if err := VerifyUsageSignature(key, ts, nonce, UsageSignature(key, ts, nonce, body), body); err != nil {
			t.Fatalf("round trip: %v", err)
		}
	})
}
