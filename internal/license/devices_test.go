package license_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/koobridge/koobridge/internal/license"
	"github.com/koobridge/koobridge/internal/store"
)

// TestDeviceID: a device is the hex HMAC-SHA256 of its upper-cased
// fingerprint under the device key: not the bare SHA-256 (reversible for a
// MAC address alone), the same for a fingerprint in lower case, another
// under another key.
func TestDeviceID(t *testing.T) {
	e := newEnv(t, dialects[0].Open(t), options{})
	other := e.service(t, func(cfg *license.Config) { cfg.DeviceKey = bytes.Repeat([]byte{7}, license.MinDeviceKey) })
	id := e.svc.DeviceID(fp)
	bare := sha256.Sum256([]byte(fp))
	mac := hmac.New(sha256.New, deviceKey)
	mac.Write([]byte(strings.ToUpper(fp)))
	tests := []struct {
		name string
		got  string
		same bool
	}{
		{"the documented HMAC", hex.EncodeToString(mac.Sum(nil)), true},
		{"the fingerprint in lower case", e.svc.DeviceID(strings.ToLower(fp)), true},
		{"the bare SHA-256", hex.EncodeToString(bare[:]), false},
		{"another key", other.DeviceID(fp), false},
		{"another fingerprint", e.svc.DeviceID(fp + "|2"), false},
	}
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(id) {
		t.Fatalf("device id %q, want 64 lower-case hex digits", id)
	}
	for _, tc := range tests {
		if (tc.got == id) != tc.same {
			t.Errorf("%s: %s, same as %s: want %v", tc.name, tc.got, id, tc.same)
		}
	}

	// A client sending its fingerprint in lower case keeps its seat.
	ctx := context.Background()
	e.issue(t, "PL-ID", 1)
	if _, err := e.svc.Activate(ctx, "PL-ID", fp); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Activate(ctx, "PL-ID", strings.ToLower(fp)); err != nil {
		t.Errorf("activate in lower case: %v", err)
	}
	if _, err := e.svc.Check(ctx, "PL-ID", strings.ToLower(fp)); err != nil {
		t.Errorf("check in lower case: %v", err)
	}
	devices, err := e.st.LicenseDevices(ctx, "PL-ID", false)
	if err != nil || len(devices) != 1 || devices[0].Device != id {
		t.Errorf("devices %+v (%v), want one: %s", devices, err, id)
	}
}

// TestDeviceKeyRequired: New refuses a missing or short device key;
// DeviceKeyFrom derives a key long enough, stable per data key.
func TestDeviceKeyRequired(t *testing.T) {
	e := newEnv(t, dialects[0].Open(t), options{})
	for _, key := range [][]byte{nil, bytes.Repeat([]byte{1}, license.MinDeviceKey-1)} {
		cfg := e.cfg
		cfg.DeviceKey = key
		if _, err := license.New(cfg); err == nil || !strings.Contains(err.Error(), "DeviceKey") {
			t.Errorf("New with a %d-byte device key: %v, want an error naming DeviceKey", len(key), err)
		}
	}
	a, b := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	ka := license.DeviceKeyFrom(a)
	if len(ka) < license.MinDeviceKey || !bytes.Equal(ka, license.DeviceKeyFrom(a)) || bytes.Equal(ka, license.DeviceKeyFrom(b)) || bytes.Equal(ka, a) {
		t.Errorf("DeviceKeyFrom: %x (from %x), %x (from %x)", ka, a, license.DeviceKeyFrom(b), b)
	}
	cfg := e.cfg
	cfg.DeviceKey = ka
	if _, err := license.New(cfg); err != nil {
		t.Errorf("New with a derived key: %v", err)
	}
}

// TestReleaseDevice: releasing a device frees its seat for another
// device (the released one must activate again), with a history row and
// no vendor event; an unknown code or device is store.ErrNotFound and
// writes nothing.
func TestReleaseDevice(t *testing.T) {
	forEachDialect(t, options{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.issue(t, "PL-DEV", 1)
		if _, err := e.svc.Activate(ctx, "PL-DEV", "old-machine"); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Activate(ctx, "PL-DEV", "new-machine"); !errors.Is(err, license.ErrNoSeat) {
			t.Fatalf("second device of one seat: %v, want ErrNoSeat", err)
		}
		old := e.svc.DeviceID("old-machine")
		before := e.code(t, "PL-DEV")

		refused := []struct {
			name, code, device string
			test               bool
		}{
			{"unknown code", "PL-NONE", old, false},
			{"the debug twin of the code", "PL-DEV", old, true},
			{"unknown device", "PL-DEV", e.svc.DeviceID("never-seen"), false},
			{"the fingerprint instead of its id", "PL-DEV", "old-machine", false},
		}
		for _, tc := range refused {
			if err := e.svc.ReleaseDevice(ctx, tc.code, tc.test, tc.device); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("%s: %v, want store.ErrNotFound", tc.name, err)
			}
		}
		if c := e.code(t, "PL-DEV"); c.Version != before.Version {
			t.Errorf("refused releases changed the code: version %d, was %d", c.Version, before.Version)
		}
		if _, err := e.st.LicenseCode(ctx, "PL-NONE", false); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("releasing a device of an unknown code recorded the code: %v", err)
		}

		if err := e.svc.ReleaseDevice(ctx, "PL-DEV", false, old); err != nil {
			t.Fatalf("release: %v", err)
		}
		if err := e.svc.ReleaseDevice(ctx, "PL-DEV", false, old); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("release again: %v, want store.ErrNotFound", err)
		}
		if _, err := e.svc.Check(ctx, "PL-DEV", "old-machine"); !errors.Is(err, license.ErrNotActivated) {
			t.Errorf("check of the released device: %v, want ErrNotActivated", err)
		}
		if _, err := e.svc.Activate(ctx, "PL-DEV", "new-machine"); err != nil {
			t.Errorf("the new device after the release: %v", err)
		}
		if got := e.history(t, "PL-DEV", false); strings.Join(got, ",") != "activated,device,device-released,device" {
			t.Errorf("history %v", got)
		}
		evs, err := e.st.LicenseEvents(ctx, "PL-DEV", false, 10)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			if ev.Kind == "device-released" && (ev.Source != "admin" || !strings.Contains(ev.Detail, old)) {
				t.Errorf("history row %+v, want source admin naming the device", ev)
			}
		}
		e.settle(t, license.KindEvent)
		if got := eventTypes(e.real.delivered()); strings.Join(got, ",") != "license.activated:PL-DEV" {
			t.Errorf("delivered %v, want license.activated only", got)
		}
	})
}

// interposed is the store with a hook run before the first transaction
// that starts once it is armed: the moment between a client operation's
// reads and its write.
type interposed struct {
	store.Store
	armed  atomic.Bool
	before func()
}

func (s *interposed) Tx(ctx context.Context, fn func(ctx context.Context, tx store.Tx) error) error {
	if s.armed.CompareAndSwap(true, false) {
		s.before()
	}
	return s.Store.Tx(ctx, fn)
}

// TestDeviceReleasedDuringCall: a device an operator releases while a
// check or an activation of it is under way, its seat then taken by
// another machine, is not put back by the call: the check answers
// ErrNotActivated, the activation counts the seats again and answers
// ErrNoSeat; the other machine keeps the only seat.
func TestDeviceReleasedDuringCall(t *testing.T) {
	tests := []struct {
		name string
		call func(s *license.Service, ctx context.Context, code, fingerprint string) (license.Verdict, error)
		want error
	}{
		{"check", (*license.Service).Check, license.ErrNotActivated},
		{"activate", (*license.Service).Activate, license.ErrNoSeat},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			forEachDialect(t, options{}, func(t *testing.T, e *env) {
				ctx := context.Background()
				e.issue(t, "PL-INF", 1)
				if _, err := e.svc.Activate(ctx, "PL-INF", "machine-a"); err != nil {
					t.Fatal(err)
				}
				st := &interposed{Store: e.st, before: func() {
					// The operator releases machine A; machine B takes
					// the freed seat.
					if err := e.svc.ReleaseDevice(ctx, "PL-INF", false, e.svc.DeviceID("machine-a")); err != nil {
						t.Errorf("release machine A: %v", err)
					}
					if _, err := e.svc.Activate(ctx, "PL-INF", "machine-b"); err != nil {
						t.Errorf("activate machine B: %v", err)
					}
				}}
				svc := e.service(t, func(cfg *license.Config) { cfg.Store = st })
				st.armed.Store(true)
				v, err := tc.call(svc, ctx, "PL-INF", "machine-a")
				if !errors.Is(err, tc.want) {
					t.Errorf("%s of machine A released meanwhile: %+v %v, want %v", tc.name, v, err, tc.want)
				}
				if st.armed.Load() {
					t.Fatal("the release did not happen during the call")
				}
				devices, err := e.st.LicenseDevices(ctx, "PL-INF", false)
				if err != nil || len(devices) != 1 || devices[0].Device != e.svc.DeviceID("machine-b") {
					t.Errorf("devices %+v (%v), want machine B only", devices, err)
				}
				if got := e.history(t, "PL-INF", false); strings.Join(got, ",") != "activated,device,device-released,device" {
					t.Errorf("history %v", got)
				}
			})
		})
	}
}
