package sign

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var t0 = time.UnixMilli(1_700_000_000_123)

func fixedNow() time.Time { return t0 }

func msText(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

// flavour is a signature function under test, with the verify method of the
// same flavour.
type flavour struct {
	name   string
	sign   func(key, nonce, ts string, body []byte) string
	verify func(v *Verifier, ctx context.Context, sig, ts, nonce string, body []byte) (int, error)
}

var flavours = []flavour{
	{"v2", V2Signature, (*Verifier).VerifyV2},
	{"kit form A", KitSignature, (*Verifier).VerifyKit},
	{"kit form B", KitSignatureHashed, (*Verifier).VerifyKit},
}

func TestVerifier(t *testing.T) {
	body := []byte(specBody)
	now := msText(t0)
	tests := []struct {
		name     string
		keys     []string
		signKey  string
		sig      func(string) string // transforms the correct signature
		ts       string
		nonce    string
		body     []byte // sent body; nil: body
		tamper   bool   // sign the original body, send body
		wantIdx  int
		wantErr  error
		errNames []string // words the error message must contain
	}{
		{name: "good upper case", sig: strings.ToUpper, wantIdx: 0},
		{name: "good lower case", sig: strings.ToLower, wantIdx: 0},
		{name: "wrong key", signKey: "wrong", wantErr: ErrSignature},
		{name: "rotation: second key", keys: []string{"old-key", specKey}, wantIdx: 1},
		{name: "rotation: first key", keys: []string{specKey, "new-key"}, wantIdx: 0},
		{name: "same key twice reports the first", keys: []string{specKey, specKey}, wantIdx: 0},
		{name: "tampered body", body: []byte(strings.Replace(specBody, `"1"`, `"0"`, 1)), tamper: true, wantErr: ErrSignature},
		{name: "body with a trailing newline", body: []byte(specBody + "\n"), tamper: true, wantErr: ErrSignature},
		{name: "truncated signature", sig: func(s string) string { return s[:63] }, wantErr: ErrSignature},
		{name: "signature with a trailing space", sig: func(s string) string { return s + " " }, wantErr: ErrSignature},
		{name: "stale by 61s", ts: msText(t0.Add(-61 * time.Second)), wantErr: ErrStaleTimestamp},
		{name: "future by 61s", ts: msText(t0.Add(61 * time.Second)), wantErr: ErrFutureTimestamp},
		{name: "stale by 60.001s", ts: msText(t0.Add(-60*time.Second - time.Millisecond)), wantErr: ErrStaleTimestamp},
		{name: "exactly 60s old", ts: msText(t0.Add(-60 * time.Second)), wantIdx: 0},
		{name: "exactly 60s ahead", ts: msText(t0.Add(60 * time.Second)), wantIdx: 0},
		{name: "10-digit seconds", ts: strconv.FormatInt(t0.Unix(), 10), wantIdx: 0},
		{name: "10-digit seconds stale", ts: strconv.FormatInt(t0.Unix()-61, 10), wantErr: ErrStaleTimestamp},
		{name: "timestamp abc", ts: "abc", wantErr: ErrMalformedTimestamp},
		{name: "timestamp 12 digits", ts: now[:12], wantErr: ErrMalformedTimestamp},
		{name: "timestamp 14 digits", ts: now + "0", wantErr: ErrMalformedTimestamp},
		{name: "timestamp negative", ts: "-" + now[1:], wantErr: ErrMalformedTimestamp},
		{name: "timestamp plus sign", ts: "+" + now[1:], wantErr: ErrMalformedTimestamp},
		{name: "timestamp overflow", ts: "99999999999999999999", wantErr: ErrMalformedTimestamp},
		{name: "timestamp with space", ts: now[:12] + " ", wantErr: ErrMalformedTimestamp},
		{name: "timestamp fractional", ts: now[:9] + ".123", wantErr: ErrMalformedTimestamp},
		{name: "missing timestamp", ts: "-", wantErr: ErrMissing, errNames: []string{"timestamp"}},
		{name: "missing signature", sig: func(string) string { return "" }, wantErr: ErrMissing, errNames: []string{"signature"}},
		{name: "missing nonce", nonce: "-", wantErr: ErrMissing, errNames: []string{"nonce"}},
		{name: "nonce of 128 bytes", nonce: strings.Repeat("n", 128), wantIdx: 0},
		{name: "nonce of 129 bytes", nonce: strings.Repeat("n", 129), wantErr: ErrMalformedNonce},
		{name: "no keys", keys: []string{}, wantErr: ErrNoKeys},
		{name: "empty body", body: []byte{}, wantIdx: 0},
	}
	for _, f := range flavours {
		for _, tt := range tests {
			t.Run(f.name+"/"+tt.name, func(t *testing.T) {
				keys := tt.keys
				if keys == nil {
					keys = []string{specKey}
				}
				signKey := specKey
				if tt.signKey != "" {
					signKey = tt.signKey
				}
				ts := tt.ts
				switch ts {
				case "":
					ts = now
				case "-":
					ts = ""
				}
				nonce := tt.nonce
				switch nonce {
				case "":
					nonce = specNonce
				case "-":
					nonce = ""
				}
				b := body
				if tt.body != nil {
					b = tt.body
				}
				signed := b
				if tt.tamper {
					signed = body
				}
				sig := f.sign(signKey, nonce, ts, signed)
				if tt.sig != nil {
					sig = tt.sig(sig)
				}
				v := &Verifier{Keys: keys, Now: fixedNow, Nonces: NewMemoryNoncesWithClock(fixedNow)}
				idx, err := f.verify(v, t.Context(), sig, ts, nonce, b)
				if tt.wantErr != nil {
					if !errors.Is(err, tt.wantErr) || idx != -1 {
						t.Fatalf("= %d, %v; want -1, %v", idx, err, tt.wantErr)
					}
					for _, w := range tt.errNames {
						if !strings.Contains(err.Error(), w) {
							t.Errorf("error %q does not name %q", err, w)
						}
					}
					return
				}
				if err != nil || idx != tt.wantIdx {
					t.Fatalf("= %d, %v; want %d, nil", idx, err, tt.wantIdx)
				}
			})
		}
	}
}

func TestVerifierMissingNamesAll(t *testing.T) {
	v := &Verifier{Keys: []string{specKey}}
	_, err := v.VerifyV2(t.Context(), "", "", "", nil)
	if !errors.Is(err, ErrMissing) {
		t.Fatalf("err = %v, want ErrMissing", err)
	}
	for _, w := range []string{"signature", "timestamp", "nonce"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not name %s", err, w)
		}
	}
}

func TestVerifierNoKeysFailsClosed(t *testing.T) {
	ts := msText(t0)
	sig := V2Signature(specKey, "n", ts, nil)
	for _, v := range []*Verifier{{}, {Keys: nil, Now: fixedNow}} {
		if _, err := v.VerifyV2(t.Context(), sig, ts, "n", nil); !errors.Is(err, ErrNoKeys) || !errors.Is(err, ErrSignature) {
			t.Errorf("err = %v, want ErrNoKeys and ErrSignature", err)
		}
	}
}

func TestVerifierKitRejectsV2UpperCaseOfFormA(t *testing.T) {
	// Form A and form B are different strings; a V2 verifier must not take form A.
	ts := msText(t0)
	v := &Verifier{Keys: []string{specKey}, Now: fixedNow}
	if _, err := v.VerifyV2(t.Context(), KitSignature(specKey, "n", ts, []byte(specKitBody)), ts, "n", []byte(specKitBody)); !errors.Is(err, ErrSignature) {
		t.Errorf("VerifyV2 accepted a kit form A signature: %v", err)
	}
}

func TestVerifierWindow(t *testing.T) {
	v := &Verifier{Keys: []string{specKey}, Now: fixedNow, Window: 5 * time.Minute}
	for _, d := range []time.Duration{-5 * time.Minute, 5 * time.Minute} {
		ts := msText(t0.Add(d))
		if _, err := v.VerifyV2(t.Context(), V2Signature(specKey, "n", ts, nil), ts, "n", nil); err != nil {
			t.Errorf("offset %v inside a 5m window: %v", d, err)
		}
	}
	ts := msText(t0.Add(-5*time.Minute - time.Second))
	if _, err := v.VerifyV2(t.Context(), V2Signature(specKey, "n", ts, nil), ts, "n", nil); !errors.Is(err, ErrStaleTimestamp) {
		t.Errorf("outside a 5m window: err = %v, want ErrStaleTimestamp", err)
	}
}

func TestVerifierReplay(t *testing.T) {
	for _, f := range flavours {
		t.Run(f.name, func(t *testing.T) {
			v := &Verifier{Keys: []string{specKey}, Now: fixedNow, Nonces: NewMemoryNoncesWithClock(fixedNow)}
			ts, body := msText(t0), []byte(specBody)
			sig := f.sign(specKey, specNonce, ts, body)
			if _, err := f.verify(v, t.Context(), sig, ts, specNonce, body); err != nil {
				t.Fatalf("first call: %v", err)
			}
			if _, err := f.verify(v, t.Context(), sig, ts, specNonce, body); !errors.Is(err, ErrReplayedNonce) {
				t.Fatalf("replay: err = %v, want ErrReplayedNonce", err)
			}
			// A new signature over another body cannot reuse the nonce either.
			other := []byte("{}")
			if _, err := f.verify(v, t.Context(), f.sign(specKey, specNonce, ts, other), ts, specNonce, other); !errors.Is(err, ErrReplayedNonce) {
				t.Fatalf("reused nonce, other body: err = %v, want ErrReplayedNonce", err)
			}
		})
	}
}

func TestVerifierForgeryDoesNotConsumeNonce(t *testing.T) {
	for _, f := range flavours {
		t.Run(f.name, func(t *testing.T) {
			v := &Verifier{Keys: []string{specKey}, Now: fixedNow, Nonces: NewMemoryNoncesWithClock(fixedNow)}
			ts, body := msText(t0), []byte(specBody)
			forged := f.sign("attacker-key", specNonce, ts, body)
			if _, err := f.verify(v, t.Context(), forged, ts, specNonce, body); !errors.Is(err, ErrSignature) {
				t.Fatalf("forged call: err = %v, want ErrSignature", err)
			}
			stale := msText(t0.Add(-2 * time.Minute))
			if _, err := f.verify(v, t.Context(), f.sign(specKey, specNonce, stale, body), stale, specNonce, body); !errors.Is(err, ErrStaleTimestamp) {
				t.Fatalf("stale call: err = %v, want ErrStaleTimestamp", err)
			}
			if _, err := f.verify(v, t.Context(), f.sign(specKey, specNonce, ts, body), ts, specNonce, body); err != nil {
				t.Fatalf("legitimate call after a forgery: %v", err)
			}
		})
	}
}

func TestVerifierConcurrentDuplicates(t *testing.T) {
	v := &Verifier{Keys: []string{"old", specKey}, Now: fixedNow, Nonces: NewMemoryNoncesWithClock(fixedNow)}
	ts, body := msText(t0), []byte(specBody)
	sig := V2Signature(specKey, specNonce, ts, body)
	const n = 50
	var ok, replayed atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range n {
		wg.Go(func() {
			<-start
			idx, err := v.VerifyV2(context.Background(), sig, ts, specNonce, body)
			switch {
			case err == nil && idx == 1:
				ok.Add(1)
			case errors.Is(err, ErrReplayedNonce):
				replayed.Add(1)
			default:
				t.Errorf("unexpected result %d, %v", idx, err)
			}
		})
	}
	close(start)
	wg.Wait()
	if ok.Load() != 1 || replayed.Load() != n-1 {
		t.Fatalf("successes = %d, replays = %d; want 1 and %d", ok.Load(), replayed.Load(), n-1)
	}
}

func TestVerifierNonceExpiry(t *testing.T) {
	clock := newTestClock(t0)
	v := &Verifier{Keys: []string{specKey}, Now: clock.Now, Nonces: NewMemoryNoncesWithClock(clock.Now)}
	call := func() error {
		ts := msText(clock.Now())
		_, err := v.VerifyV2(t.Context(), V2Signature(specKey, "nonce-1", ts, nil), ts, "nonce-1", nil)
		return err
	}
	if err := call(); err != nil {
		t.Fatalf("first call: %v", err)
	}
	clock.Advance(59 * time.Second)
	if err := call(); !errors.Is(err, ErrReplayedNonce) {
		t.Fatalf("59s later: err = %v, want ErrReplayedNonce", err)
	}
	clock.Advance(2 * time.Second)
	if err := call(); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
}

// recordingNonces records what the verifier asks it to remember.
type recordingNonces struct {
	nonce   string
	expires time.Time
	err     error
}

func (r *recordingNonces) Remember(_ context.Context, nonce string, expires time.Time) error {
	r.nonce, r.expires = nonce, expires
	return r.err
}

func TestVerifierNonceExpiresAt(t *testing.T) {
	tests := []struct {
		name   string
		offset time.Duration // timestamp - now
		want   time.Time
	}{
		{"timestamp now", 0, t0.Add(DefaultWindow)},
		{"timestamp in the past: at least now + window", -30 * time.Second, t0.Add(DefaultWindow)},
		{"timestamp in the future: timestamp + window", 30 * time.Second, t0.Add(30*time.Second + DefaultWindow)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recordingNonces{}
			v := &Verifier{Keys: []string{specKey}, Now: fixedNow, Nonces: rec}
			ts := msText(t0.Add(tt.offset))
			if _, err := v.VerifyV2(t.Context(), V2Signature(specKey, "n", ts, nil), ts, "n", nil); err != nil {
				t.Fatal(err)
			}
			if rec.nonce != "n" || !rec.expires.Equal(tt.want) {
				t.Errorf("remembered %q until %v, want %q until %v", rec.nonce, rec.expires, "n", tt.want)
			}
		})
	}
}

func TestVerifierNonceStoreFailureFailsClosed(t *testing.T) {
	down := errors.New("database is down")
	v := &Verifier{Keys: []string{specKey}, Now: fixedNow, Nonces: &recordingNonces{err: down}}
	ts := msText(t0)
	idx, err := v.VerifyV2(t.Context(), V2Signature(specKey, "n", ts, nil), ts, "n", nil)
	if !errors.Is(err, down) || idx != -1 {
		t.Fatalf("= %d, %v; want -1 and the store's error", idx, err)
	}
}

func TestVerifierSortedBodyFallback(t *testing.T) {
	sent := []byte(`{ "orderId": "o1", "activity": "newInstance", "n": 1.50, "x": {"b": "<&>", "a": [1, 2]} }`)
	sorted := []byte(`{"activity":"newInstance","n":1.50,"orderId":"o1","x":{"a":[1,2],"b":"<&>"}}`)
	ts := msText(t0)
	sig := V2Signature(specKey, "n", ts, sorted)
	tests := []struct {
		name     string
		fallback bool
		body     []byte
		want     error
	}{
		{"off", false, sent, ErrSignature},
		{"on", true, sent, nil},
		{"on, raw body still first", true, sorted, nil},
		{"on, not JSON", true, []byte("not json"), ErrSignature},
		{"on, JSON with trailing data", true, append(sent[:len(sent):len(sent)], '}'), ErrSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := &Verifier{Keys: []string{specKey}, Now: fixedNow, SortedBodyFallback: tt.fallback}
			_, err := v.VerifyV2(t.Context(), sig, ts, "n", tt.body)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestParseTimestamp(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"1680508066618", time.UnixMilli(1680508066618), true},
		{"0000000000000", time.UnixMilli(0), true},
		{"1680508066", time.Unix(1680508066, 0), true},
		{"", time.Time{}, false},
		{"168050806661", time.Time{}, false},
		{"16805080666180", time.Time{}, false},
		{"-680508066618", time.Time{}, false},
		{"168050806661x", time.Time{}, false},
		{"１６８０５０８０６６", time.Time{}, false}, // full-width digits
	}
	for _, tt := range tests {
		got, err := ParseTimestamp(tt.in)
		if tt.ok && (err != nil || !got.Equal(tt.want)) || !tt.ok && !errors.Is(err, ErrMalformedTimestamp) {
			t.Errorf("ParseTimestamp(%q) = %v, %v", tt.in, got, err)
		}
	}
}
