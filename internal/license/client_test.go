package license_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/koobridge/koobridge/emulator/mockapi"
	"github.com/koobridge/koobridge/internal/license"
	"github.com/koobridge/koobridge/internal/openapi"
	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/provision"
)

const fp = "04:7C:16:5E:E3:5D|001B_444A_488B_5CEC.||BFEBFBFF00090672"

// TestInvalidInput: a bad code or fingerprint is ErrInvalid naming the
// field, never echoing the fingerprint, and nothing is asked or written.
func TestInvalidInput(t *testing.T) {
	e := newEnv(t, dialects[0].Open(t), options{})
	e.issue(t, "PL-OK", 1)
	tests := []struct {
		name, code, fingerprint, field string
	}{
		{"code missing", "", fp, "license is missing"},
		{"code too long", strings.Repeat("A", 65), fp, "license is longer than 64"},
		{"code with a space", "PL OK", fp, "license must be printable ASCII"},
		{"code not ASCII", "PL-É", fp, "license must be printable ASCII"},
		{"code with NUL", "PL\x00", fp, "license must be printable ASCII"},
		{"fingerprint missing", "PL-OK", "", "deviceFingerprint is missing"},
		{"fingerprint too long", "PL-OK", strings.Repeat("F", 5121), "deviceFingerprint is longer than 5120"},
		{"fingerprint not UTF-8", "PL-OK", "AA|\xff\xfe|BB", "deviceFingerprint is not valid UTF-8"},
		{"fingerprint with NUL", "PL-OK", "AA|\x00SECRET|BB", "deviceFingerprint contains a control character"},
		{"fingerprint with a newline", "PL-OK", "AA|SECRET\n|BB", "deviceFingerprint contains a control character"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for op, call := range map[string]func(context.Context, string, string) (license.Verdict, error){
				"activate": e.svc.Activate, "check": e.svc.Check,
			} {
				_, err := call(context.Background(), tc.code, tc.fingerprint)
				if !errors.Is(err, license.ErrInvalid) || !strings.Contains(err.Error(), tc.field) {
					t.Errorf("%s: err %v, want ErrInvalid naming %q", op, err, tc.field)
				}
				if err != nil && strings.Contains(err.Error(), "SECRET") {
					t.Errorf("%s: the error shows the fingerprint: %v", op, err)
				}
			}
		})
	}
	// The limits themselves are accepted.
	if _, err := e.svc.Activate(context.Background(), "PL-OK", strings.Repeat("F", 5120)); err != nil {
		t.Fatalf("5120-byte fingerprint: %v", err)
	}
	if all, _ := e.activations("PL-OK"); all != 1 {
		t.Errorf("KooGallery got %d activations, want 1 (the valid call's)", all)
	}
	codes, err := e.st.LicenseCodes(context.Background(), store.LicenseCodeFilter{})
	if err != nil || len(codes) != 1 || codes[0].Code != "PL-OK" {
		t.Errorf("recorded codes %+v (%v), want PL-OK only", codes, err)
	}
}

// TestActivate: the first activation asks KooGallery, stores what it
// said, binds the device and tells the vendor; the same device again, or
// Check, does not ask again.
func TestActivate(t *testing.T) {
	forEachDialect(t, options{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.issue(t, "PL-A", 2)
		v, err := e.svc.Activate(ctx, "PL-A", fp)
		if err != nil {
			t.Fatal(err)
		}
		now := e.clk.Now()
		want := license.Verdict{License: "PL-A", Fingerprint: fp, Status: "active", Expires: now.AddDate(1, 0, 0), ValidUntil: now.Add(168 * time.Hour)}
		if !v.Expires.Equal(want.Expires) || !v.ValidUntil.Equal(want.ValidUntil) || v.Status != want.Status || v.License != want.License || v.Fingerprint != fp || v.Cached {
			t.Errorf("verdict %+v, want %+v", v, want)
		}
		c := e.code(t, "PL-A")
		if !c.ActivatedAt.Equal(now) || c.Amount != 2 || c.ProductID != "P-PL-A" || c.OrderID != "CS-PL-A" || c.RemoteStatus != "ALIVE" {
			t.Errorf("stored code %+v", c)
		}
		for range 2 {
			if _, err := e.svc.Activate(ctx, "PL-A", fp); err != nil {
				t.Fatal(err)
			}
			if _, err := e.svc.Check(ctx, "PL-A", fp); err != nil {
				t.Fatal(err)
			}
		}
		if all, _ := e.activations("PL-A"); all != 1 {
			t.Errorf("KooGallery got %d activations, want 1", all)
		}
		if n := e.queries("PL-A"); n != 0 {
			t.Errorf("KooGallery got %d queries within the check interval, want 0", n)
		}
		devices, err := e.st.LicenseDevices(ctx, "PL-A", false)
		if err != nil || len(devices) != 1 || devices[0].Device != e.svc.DeviceID(fp) {
			t.Fatalf("devices %+v (%v), want the fingerprint's hash only", devices, err)
		}
		if got := e.history(t, "PL-A", false); strings.Join(got, ",") != "activated,device" {
			t.Errorf("history %v, want activated,device", got)
		}
		evs, err := e.st.LicenseEvents(ctx, "PL-A", false, 10)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			if strings.Contains(ev.Detail, "BFEBFBFF") {
				t.Errorf("history keeps the fingerprint: %s", ev.Detail)
			}
		}
		e.settle(t, license.KindEvent)
		got := e.real.delivered()
		if len(got) != 1 || got[0].Type != provision.EventLicenseActivated || got[0].Test ||
			*got[0].License != (provision.License{Code: "PL-A", Status: "active", ExpireTime: now.AddDate(1, 0, 0), OrderID: "CS-PL-A", ProductID: "P-PL-A", Amount: 2}) {
			t.Errorf("delivered %+v, want one license.activated with the code", got)
		}
	})
}

// TestActivateOnce: many clients activating one code at once, in two
// processes (each with its own locks), make one successful activation at
// KooGallery and one license.activated; every client gets its seat.
func TestActivateOnce(t *testing.T) {
	forEachDialect(t, options{}, func(t *testing.T, e *env) {
		e.issue(t, "PL-RACE", 40)
		services := []*license.Service{e.svc, e.replica(t)}
		var wg sync.WaitGroup
		errs := make(chan error, 40)
		for i := range 40 {
			svc := services[i%2]
			wg.Go(func() {
				if _, err := svc.Activate(context.Background(), "PL-RACE", fmt.Sprintf("%s|device-%d", fp, i)); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("activate: %v", err)
		}
		all, ok := e.activations("PL-RACE")
		if ok != 1 || all > 2 {
			t.Errorf("KooGallery got %d activations, %d successful; want one success and at most one per process", all, ok)
		}
		devices, err := e.st.LicenseDevices(context.Background(), "PL-RACE", false)
		if err != nil || len(devices) != 40 {
			t.Errorf("%d devices bound (%v), want 40", len(devices), err)
		}
		e.settle(t, license.KindEvent)
		if got := eventTypes(e.real.delivered()); len(got) != 1 || got[0] != "license.activated:PL-RACE" {
			t.Errorf("delivered %v, want one license.activated", got)
		}
	})
}

// TestSeats: the device policy bounds the devices of a code; a bound
// device takes no new seat; two devices racing for the last seat do not
// both get it.
func TestSeats(t *testing.T) {
	tests := []struct {
		name    string
		policy  license.DevicePolicy
		amount  int
		devices int // distinct devices activating one after another
		bound   int // how many get a seat
	}{
		{"amount 2", license.DevicesAmount, 2, 4, 2},
		{"amount 1 (the default policy)", "", 1, 3, 1},
		{"unlimited", license.DevicesUnlimited, 1, 5, 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, dialects[0].Open(t), options{devices: tc.policy})
			ctx := context.Background()
			e.issue(t, "PL-S", tc.amount)
			for i := range tc.devices {
				_, err := e.svc.Activate(ctx, "PL-S", fmt.Sprintf("dev-%d", i))
				if want := i < tc.bound; want != (err == nil) || !want && !errors.Is(err, license.ErrNoSeat) {
					t.Fatalf("device %d: %v, want a seat: %v", i, err, want)
				}
			}
			// The first device again takes no new seat, and checks.
			if _, err := e.svc.Activate(ctx, "PL-S", "dev-0"); err != nil {
				t.Errorf("bound device again: %v", err)
			}
			if _, err := e.svc.Check(ctx, "PL-S", "dev-0"); err != nil {
				t.Errorf("bound device check: %v", err)
			}
			if tc.bound < tc.devices {
				_, err := e.svc.Check(ctx, "PL-S", fmt.Sprintf("dev-%d", tc.devices-1))
				if !errors.Is(err, license.ErrNotActivated) || !strings.Contains(err.Error(), "this device has not activated the license code") {
					t.Errorf("check of a device without a seat: %v", err)
				}
			}
			devices, err := e.st.LicenseDevices(ctx, "PL-S", false)
			if err != nil || len(devices) != tc.bound {
				t.Errorf("%d devices (%v), want %d", len(devices), err, tc.bound)
			}
		})
	}
	t.Run("race for the last seats", func(t *testing.T) {
		forEachDialect(t, options{}, func(t *testing.T, e *env) {
			e.issue(t, "PL-LAST", 3)
			services := []*license.Service{e.svc, e.replica(t)}
			var mu sync.Mutex
			seated, refused := 0, 0
			var wg sync.WaitGroup
			for i := range 12 {
				wg.Go(func() {
					_, err := services[i%2].Activate(context.Background(), "PL-LAST", fmt.Sprintf("dev-%d", i))
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err == nil:
						seated++
					case errors.Is(err, license.ErrNoSeat):
						refused++
					default:
						t.Errorf("activate: %v", err)
					}
				})
			}
			wg.Wait()
			devices, err := e.st.LicenseDevices(context.Background(), "PL-LAST", false)
			if seated != 3 || refused != 9 || err != nil || len(devices) != 3 {
				t.Errorf("%d seated, %d refused, %d devices (%v); want 3, 9, 3", seated, refused, len(devices), err)
			}
		})
	})
}

// TestActivateRefusals: KooGallery's answers map onto the package's
// errors: only a refusal of the license code itself is ErrRefused; the
// gateway refusing koobridge, a parameter refused, a code koobridge does
// not know are koobridge's problem (ErrUnavailable, logged at error level
// naming the cause); an unknown code stores nothing.
func TestActivateRefusals(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, e *env)
		want    error
		stored  bool // a code row exists afterwards
		active  bool // it counts as activated
		queries int
		logged  string // what the error-level log names; "" for no error log
	}{
		{"unknown code", func(*testing.T, *env) {}, license.ErrUnknown, false, false, 0, ""},
		{"not received by the buyer", func(t *testing.T, e *env) {
			_ = e.api.IssueLicense(mockapi.LicenseCode{Code: "PL-R", Amount: 1, Undelivered: true})
		}, license.ErrRefused, false, false, 0, ""},
		{"KooGallery down", func(t *testing.T, e *env) {
			e.issue(t, "PL-R", 1)
			e.api.SetLicenseFault(mockapi.Fault{Status: http.StatusServiceUnavailable})
		}, license.ErrUnavailable, false, false, 0, ""},
		{"expired before activation", func(t *testing.T, e *env) {
			_ = e.api.IssueLicense(mockapi.LicenseCode{Code: "PL-R", Amount: 1, Status: protocol.LicenseStatusExpired})
		}, license.ErrRefused, false, false, 1, ""},
		{"activated elsewhere, alive", func(t *testing.T, e *env) {
			e.issue(t, "PL-R", 1)
			e.api.UpdateLicense("PL-R", func(c *mockapi.LicenseCode) { c.Activated, c.ActivatedAt = true, e.clk.Now().Add(-time.Hour) })
		}, nil, true, true, 1, ""},
		{"activated elsewhere, then released", func(t *testing.T, e *env) {
			e.issue(t, "PL-R", 1)
			e.api.UpdateLicense("PL-R", func(c *mockapi.LicenseCode) {
				c.Activated, c.ActivatedAt, c.Status = true, e.clk.Now().Add(-time.Hour), protocol.LicenseStatusReleased
			})
		}, license.ErrRefused, false, false, 1, ""},
		{"the gateway refuses the AK/SK", func(t *testing.T, e *env) {
			e.issue(t, "PL-R", 1)
			bad, err := openapi.New(openapi.Config{BaseURL: e.api.URL(), AK: testAK, SK: "not-the-secret", Now: e.clk.Now})
			if err != nil {
				t.Fatal(err)
			}
			e.svc = e.service(t, func(cfg *license.Config) { cfg.OpenAPI = bad })
		}, license.ErrUnavailable, false, false, 0, "APIGW.0301"},
		{"the IAM user may not call the API", func(t *testing.T, e *env) {
			e.issue(t, "PL-R", 1)
			e.api.SetLicenseFault(mockapi.Fault{Status: http.StatusForbidden, Code: "APIGW.0302"})
		}, license.ErrUnavailable, false, false, 0, "APIGW.0302"},
		{"a parameter refused", func(t *testing.T, e *env) {
			e.issue(t, "PL-R", 1)
			e.api.SetLicenseFault(mockapi.Fault{Status: http.StatusBadRequest, Code: "92020002"})
		}, license.ErrUnavailable, false, false, 0, "92020002"},
		{"an error code koobridge does not know", func(t *testing.T, e *env) {
			e.issue(t, "PL-R", 1)
			e.api.SetLicenseFault(mockapi.Fault{Status: http.StatusBadRequest, Code: "92029999"})
		}, license.ErrUnavailable, false, false, 0, "92029999"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, dialects[0].Open(t), options{})
			tc.setup(t, e)
			_, err := e.svc.Activate(context.Background(), "PL-R", fp)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("activate: %v, want %v", err, tc.want)
			}
			if tc.want != license.ErrRefused && errors.Is(err, license.ErrRefused) {
				t.Errorf("activate: %v is also ErrRefused", err)
			}
			c, err := e.st.LicenseCode(context.Background(), "PL-R", false)
			if stored := err == nil; stored != tc.stored || tc.active != (err == nil && !c.ActivatedAt.IsZero()) {
				t.Errorf("stored %v (%+v), want stored %v, activated %v", stored, c, tc.stored, tc.active)
			}
			if n := e.queries("PL-R"); n != tc.queries {
				t.Errorf("%d queries, want %d", n, tc.queries)
			}
			var errorLines []string
			for _, line := range strings.Split(e.logs.String(), "\n") {
				if strings.Contains(line, "level=ERROR") {
					errorLines = append(errorLines, line)
				}
			}
			switch {
			case tc.logged == "" && len(errorLines) > 0:
				t.Errorf("error-level log %q, want none", errorLines)
			case tc.logged != "" && (len(errorLines) != 1 || !strings.Contains(errorLines[0], tc.logged) || !strings.Contains(errorLines[0], "PL-R")):
				t.Errorf("error-level log %q, want one line naming %s and the code", errorLines, tc.logged)
			}
		})
	}
}

// TestActivateAgainAfterNotActivated: Activate of a code whose query
// comes due and answers "not activated" (92020011) activates it again
// within the same call; the vendor hears license.activated again.
func TestActivateAgainAfterNotActivated(t *testing.T) {
	forEachDialect(t, options{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.issue(t, "PL-NA", 1)
		if _, err := e.svc.Activate(ctx, "PL-NA", fp); err != nil {
			t.Fatal(err)
		}
		e.settle(t, license.KindEvent) // delivered before the clock jumps over its lease
		e.api.UpdateLicense("PL-NA", func(c *mockapi.LicenseCode) { c.Activated = false })
		e.clk.Advance(25 * time.Hour)
		v, err := e.svc.Activate(ctx, "PL-NA", fp)
		if err != nil || v.Status != "active" || v.Cached {
			t.Fatalf("activate after KooGallery lost the activation: %+v %v, want active", v, err)
		}
		if all, ok := e.activations("PL-NA"); all != 2 || ok != 2 {
			t.Errorf("%d activations (%d ok), want 2", all, ok)
		}
		if c := e.code(t, "PL-NA"); !c.ActivatedAt.Equal(e.clk.Now()) {
			t.Errorf("activated at %v, want now", c.ActivatedAt)
		}
		if got := e.history(t, "PL-NA", false); strings.Join(got, ",") != "activated,device,deactivated,activated" {
			t.Errorf("history %v", got)
		}
		if v, err := e.svc.Check(ctx, "PL-NA", fp); err != nil || v.Status != "active" {
			t.Errorf("check afterwards: %+v %v", v, err)
		}
		e.settle(t, license.KindEvent)
		if got := eventTypes(e.real.delivered()); strings.Join(got, ",") != "license.activated:PL-NA,license.activated:PL-NA" {
			t.Errorf("delivered %v, want license.activated twice", got)
		}
	})
}

// TestActivationRecordedWhenClientLeaves: the client hanging up once
// KooGallery activated the code does not lose the activation: it is
// stored with its amount, and the next clients are not sent to KooGallery
// again.
func TestActivationRecordedWhenClientLeaves(t *testing.T) {
	forEachDialect(t, options{}, func(t *testing.T, e *env) {
		e.issue(t, "PL-CX", 3)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		leaving := e.service(t, func(cfg *license.Config) {
			cfg.OpenAPI = reshaped{OpenAPI: e.client(t), afterActivate: cancel}
		})
		if _, err := leaving.Activate(ctx, "PL-CX", "dev-0"); !errors.Is(err, context.Canceled) {
			t.Errorf("activate of the client that left: %v, want context.Canceled", err)
		}
		c := e.code(t, "PL-CX")
		if c.ActivatedAt.IsZero() || c.Amount != 3 || c.RemoteStatus != "ALIVE" {
			t.Fatalf("code %+v, want activated with amount 3", c)
		}
		for i := range 3 {
			if _, err := e.svc.Activate(context.Background(), "PL-CX", fmt.Sprintf("dev-%d", i)); err != nil {
				t.Errorf("device %d of 3 seats: %v", i, err)
			}
		}
		if all, ok := e.activations("PL-CX"); all != 1 || ok != 1 {
			t.Errorf("%d activations (%d ok), want 1", all, ok)
		}
		if got := e.history(t, "PL-CX", false); len(got) != 4 || got[0] != "activated" {
			t.Errorf("history %v, want activated and 3 devices", got)
		}
	})
}

// TestSeatsByAmount: the amount KooGallery tells (on activation, or on
// the query that confirms an activation made elsewhere) bounds the
// devices; while it is unknown the devices are not counted, which is
// logged once per code.
func TestSeatsByAmount(t *testing.T) {
	tests := []struct {
		name      string
		elsewhere bool // KooGallery activated the code before koobridge asked
		strip     bool // the activation answer carries no amount
		query     string
		amount    int // the code's amount afterwards
		seated    int // of 5 devices
	}{
		{"activation tells 3", false, false, "", 3, 3},
		{"activation tells none", false, true, "", 0, 5},
		{"activated elsewhere, the query tells 3", true, false, "3", 3, 3},
		{"activated elsewhere, the query tells \"2\"", true, false, `"2"`, 2, 2},
		{"activated elsewhere, the query tells none", true, false, "", 0, 5},
		{"activated elsewhere, the query tells 0", true, false, "0", 0, 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			forEachDialect(t, options{}, func(t *testing.T, e *env) {
				ctx := context.Background()
				e.issue(t, "PL-AM", 3)
				if tc.elsewhere {
					e.api.UpdateLicense("PL-AM", func(c *mockapi.LicenseCode) { c.Activated, c.ActivatedAt = true, e.clk.Now().Add(-time.Minute) })
				}
				api := reshaped{OpenAPI: e.client(t)}
				if tc.strip {
					api.activated = withoutAmount
				}
				if tc.query != "" {
					api.queried = withAmount(tc.query)
				}
				svc := e.service(t, func(cfg *license.Config) { cfg.OpenAPI = api })
				seated := 0
				for i := range 5 {
					_, err := svc.Activate(ctx, "PL-AM", fmt.Sprintf("dev-%d", i))
					switch {
					case err == nil:
						seated++
					case !errors.Is(err, license.ErrNoSeat):
						t.Fatalf("device %d: %v", i, err)
					}
				}
				if c := e.code(t, "PL-AM"); seated != tc.seated || c.Amount != tc.amount {
					t.Errorf("%d devices seated, amount %d; want %d, %d", seated, c.Amount, tc.seated, tc.amount)
				}
				warned := strings.Count(e.logs.String(), "has not told the amount bought")
				if want := tc.amount == 0; (warned == 1) != want || warned > 1 {
					t.Errorf("the unknown amount was logged %d times, want once: %v", warned, want)
				}
			})
		})
	}
}

// TestAmountLearntFromQuery: a code activated without an amount learns it
// from a query that carries it; from then on it bounds new devices, the
// devices already bound keep their seats.
func TestAmountLearntFromQuery(t *testing.T) {
	forEachDialect(t, options{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.issue(t, "PL-AQ", 2)
		svc := e.service(t, func(cfg *license.Config) {
			cfg.OpenAPI = reshaped{OpenAPI: e.client(t), activated: withoutAmount, queried: withAmount("2")}
		})
		for i := range 3 {
			if _, err := svc.Activate(ctx, "PL-AQ", fmt.Sprintf("dev-%d", i)); err != nil {
				t.Fatalf("device %d while the amount is unknown: %v", i, err)
			}
		}
		e.clk.Advance(25 * time.Hour)
		if _, err := svc.Check(ctx, "PL-AQ", "dev-0"); err != nil {
			t.Fatal(err)
		}
		if c := e.code(t, "PL-AQ"); c.Amount != 2 {
			t.Fatalf("amount %d after the query, want 2", c.Amount)
		}
		if _, err := svc.Activate(ctx, "PL-AQ", "dev-3"); !errors.Is(err, license.ErrNoSeat) {
			t.Errorf("a new device once the amount is known: %v, want ErrNoSeat", err)
		}
		for i := range 3 {
			if _, err := svc.Check(ctx, "PL-AQ", fmt.Sprintf("dev-%d", i)); err != nil {
				t.Errorf("bound device %d: %v", i, err)
			}
		}
		if got := e.history(t, "PL-AQ", false); got[len(got)-1] != "checked" {
			t.Errorf("history %v, want the query that told the amount last", got)
		}
	})
}

// TestCheck: Check asks KooGallery at most once per check interval,
// whatever the number of clients; maps its statuses; answers from the
// cache while KooGallery is down, within the grace only; and reflects a
// freeze or release of the production interface at once.
func TestCheck(t *testing.T) {
	forEachDialect(t, options{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		if _, err := e.svc.Check(ctx, "PL-C", fp); !errors.Is(err, license.ErrNotActivated) {
			t.Fatalf("check of a code never activated: %v", err)
		}
		e.issue(t, "PL-C", 1)
		if _, err := e.svc.Activate(ctx, "PL-C", fp); err != nil {
			t.Fatal(err)
		}
		// Within the interval: no query.
		e.clk.Advance(23 * time.Hour)
		v, err := e.svc.Check(ctx, "PL-C", fp)
		if err != nil || v.Status != "active" || v.Cached || !v.ValidUntil.Equal(e.clk.Now().Add(168*time.Hour)) {
			t.Fatalf("check within the interval: %+v, %v", v, err)
		}
		if n := e.queries("PL-C"); n != 0 {
			t.Fatalf("%d queries within the interval", n)
		}
		// Due: 20 concurrent checks in two processes make at most one
		// query per process.
		e.clk.Advance(2 * time.Hour)
		services := []*license.Service{e.svc, e.replica(t)}
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Go(func() {
				if v, err := services[i%2].Check(ctx, "PL-C", fp); err != nil || v.Status != "active" || v.Cached {
					t.Errorf("check: %+v %v", v, err)
				}
			})
		}
		wg.Wait()
		if n := e.queries("PL-C"); n < 1 || n > 2 {
			t.Fatalf("%d queries for 20 checks, want one (at most one per process)", n)
		}
		confirmed := e.clk.Now()
		if c := e.code(t, "PL-C"); !c.CheckedAt.Equal(confirmed) || c.RemoteStatus != "ALIVE" {
			t.Fatalf("code after the query: %+v", c)
		}

		// KooGallery down: the cache answers within the grace.
		e.api.SetLicenseFault(mockapi.Fault{Status: http.StatusServiceUnavailable})
		e.clk.Advance(100 * time.Hour)
		v, err = e.svc.Check(ctx, "PL-C", fp)
		if err != nil || v.Status != "active" || !v.Cached || !v.ValidUntil.Equal(confirmed.Add(192*time.Hour)) {
			t.Fatalf("check while KooGallery is down, within the grace: %+v, %v", v, err)
		}
		e.clk.Advance(68*time.Hour + time.Second) // past confirmed + grace
		if _, err := e.svc.Check(ctx, "PL-C", fp); !errors.Is(err, license.ErrUnavailable) {
			t.Fatalf("check past the grace: %v, want ErrUnavailable", err)
		}
		// Back: once the retry interval after the failed query is over,
		// the query confirms again.
		e.api.SetLicenseFault(mockapi.Fault{})
		e.clk.Advance(license.QueryRetry)
		if v, err = e.svc.Check(ctx, "PL-C", fp); err != nil || v.Cached || v.Status != "active" {
			t.Fatalf("check after KooGallery is back: %+v, %v", v, err)
		}

		// KooGallery's statuses.
		for _, tc := range []struct{ remote, want string }{
			{protocol.LicenseStatusExpired, "frozen"},
			{protocol.LicenseStatusAlive, "active"},
			{protocol.LicenseStatusReleased, "released"},
		} {
			e.api.UpdateLicense("PL-C", func(c *mockapi.LicenseCode) { c.Status = tc.remote })
			e.clk.Advance(25 * time.Hour)
			v, err := e.svc.Check(ctx, "PL-C", fp)
			if err != nil || v.Status != tc.want || tc.want != "active" && !v.ValidUntil.Equal(e.clk.Now()) {
				t.Errorf("KooGallery says %s: %+v, %v; want %s", tc.remote, v, err, tc.want)
			}
		}
		if got := e.history(t, "PL-C", false); strings.Join(got, ",") != "activated,device,checked,checked,checked" {
			t.Errorf("history %v: a query is recorded only when it changed something", got)
		}
	})
}

// TestCheckProductionStatus: a freeze or release of the production
// interface answers at once, without asking KooGallery.
func TestCheckProductionStatus(t *testing.T) {
	forEachDialect(t, options{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.issue(t, "PL-F", 1)
		if _, err := e.svc.Activate(ctx, "PL-F", fp); err != nil {
			t.Fatal(err)
		}
		steps := []struct {
			name string
			call func() (license.Answer, error)
			want string
		}{
			{"freeze", func() (license.Answer, error) {
				return e.svc.SetStatus(ctx, protocol.UpdateLicenseCodeStatusRequest{ActivityName: "updateLicenseCodeStatus", License: "PL-F", Status: "FREEZE"})
			}, "frozen"},
			{"unfreeze", func() (license.Answer, error) {
				return e.svc.SetStatus(ctx, protocol.UpdateLicenseCodeStatusRequest{ActivityName: "updateLicenseCodeStatus", License: "PL-F", Status: "UNFREEZE"})
			}, "active"},
			{"release", func() (license.Answer, error) {
				return e.svc.Release(ctx, protocol.ReleaseLicenseCodeRequest{ActivityName: "releaseLicenseCode", License: "PL-F"})
			}, "released"},
		}
		for _, st := range steps {
			if a, err := st.call(); err != nil || a.Code != protocol.CodeSuccess {
				t.Fatalf("%s: %+v %v", st.name, a, err)
			}
			e.clk.Advance(30 * time.Hour) // a query would be due
			for op, call := range map[string]func(context.Context, string, string) (license.Verdict, error){"check": e.svc.Check, "activate": e.svc.Activate} {
				v, err := call(ctx, "PL-F", fp)
				if err != nil || v.Status != st.want {
					t.Errorf("%s after %s: %+v %v, want %s", op, st.name, v, err, st.want)
				}
				if st.want != "active" && !v.ValidUntil.Equal(e.clk.Now()) {
					t.Errorf("%s after %s: valid until %v, want now", op, st.name, v.ValidUntil)
				}
			}
		}
		// Only the active step asked KooGallery.
		if n := e.queries("PL-F"); n != 1 {
			t.Errorf("%d queries, want 1 (while active)", n)
		}
	})
}

// TestCheckNotActivatedAtKooGallery: KooGallery saying the code is not
// activated (92020011) clears koobridge's activation; Activate activates
// it again.
func TestCheckNotActivatedAtKooGallery(t *testing.T) {
	e := newEnv(t, dialects[0].Open(t), options{})
	ctx := context.Background()
	e.issue(t, "PL-N", 1)
	if _, err := e.svc.Activate(ctx, "PL-N", fp); err != nil {
		t.Fatal(err)
	}
	e.settle(t, license.KindEvent) // delivered before the clock jumps over its lease
	e.api.UpdateLicense("PL-N", func(c *mockapi.LicenseCode) { c.Activated = false })
	e.clk.Advance(25 * time.Hour)
	if _, err := e.svc.Check(ctx, "PL-N", fp); !errors.Is(err, license.ErrNotActivated) {
		t.Fatalf("check: %v, want ErrNotActivated", err)
	}
	if c := e.code(t, "PL-N"); !c.ActivatedAt.IsZero() {
		t.Fatalf("activation kept: %+v", c)
	}
	if _, err := e.svc.Check(ctx, "PL-N", fp); !errors.Is(err, license.ErrNotActivated) {
		t.Fatalf("second check: %v, want ErrNotActivated", err)
	}
	if v, err := e.svc.Activate(ctx, "PL-N", fp); err != nil || v.Status != "active" {
		t.Fatalf("activate again: %+v %v", v, err)
	}
	if all, ok := e.activations("PL-N"); all != 2 || ok != 2 {
		t.Errorf("%d activations (%d ok), want 2", all, ok)
	}
	if got := e.history(t, "PL-N", false); strings.Join(got, ",") != "activated,device,deactivated,activated" {
		t.Errorf("history %v", got)
	}
	e.settle(t, license.KindEvent)
	if got := eventTypes(e.real.delivered()); len(got) != 2 {
		t.Errorf("delivered %v, want license.activated twice", got)
	}
}

// TestNoOpenAPI: without an Open API client the client operations are
// unavailable.
func TestNoOpenAPI(t *testing.T) {
	e := newEnv(t, dialects[0].Open(t), options{noAPI: true})
	for op, call := range map[string]func(context.Context, string, string) (license.Verdict, error){"check": e.svc.Check, "activate": e.svc.Activate} {
		if _, err := call(context.Background(), "PL-X", fp); !errors.Is(err, license.ErrUnavailable) {
			t.Errorf("%s: %v, want ErrUnavailable", op, err)
		}
	}
}

// TestNilClient: a nil *openapi.Client is no client, not a panic.
func TestNilClient(t *testing.T) {
	e := newEnv(t, dialects[0].Open(t), options{noAPI: true})
	cfg := e.cfg
	var none *openapi.Client
	cfg.OpenAPI = none
	svc, err := license.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Activate(context.Background(), "PL-X", fp); !errors.Is(err, license.ErrUnavailable) {
		t.Errorf("activate: %v, want ErrUnavailable", err)
	}
}

// TestQueryRetryAfterFailure: a query that failed (an outage, throttling,
// the gateway refusing the AK/SK) is not sent again for the code before
// the retry interval (5 minutes, or the check interval when shorter),
// the cache answering meanwhile; once KooGallery answers again the check
// interval applies.
func TestQueryRetryAfterFailure(t *testing.T) {
	faults := []struct {
		name  string
		fault mockapi.Fault
	}{
		{"throttled", mockapi.Fault{Status: http.StatusTooManyRequests}},
		{"down", mockapi.Fault{Status: http.StatusServiceUnavailable}},
		{"the gateway refuses the AK/SK", mockapi.Fault{Status: http.StatusUnauthorized}},
	}
	intervals := []struct {
		check, retry time.Duration
	}{
		{24 * time.Hour, license.QueryRetry},
		{2 * time.Minute, 2 * time.Minute},
	}
	for _, f := range faults {
		for _, iv := range intervals {
			t.Run(fmt.Sprintf("%s, check interval %v", f.name, iv.check), func(t *testing.T) {
				e := newEnv(t, dialects[0].Open(t), options{})
				ctx := context.Background()
				var n atomic.Int64
				svc := e.service(t, func(cfg *license.Config) {
					cfg.OpenAPI = reshaped{OpenAPI: e.client(t), queries: &n}
					cfg.CheckInterval = iv.check
				})
				e.issue(t, "PL-Q", 1)
				if _, err := svc.Activate(ctx, "PL-Q", fp); err != nil {
					t.Fatal(err)
				}
				steps := []struct {
					name    string
					advance time.Duration
					fault   bool
					checks  int
					queries int64 // sent so far
					cached  bool
				}{
					{"due, failing", iv.check, true, 10, 1, true},
					{"just before the retry", iv.retry - time.Second, true, 3, 1, true},
					{"the retry", time.Second, true, 3, 2, true},
					{"KooGallery back, within the retry", time.Second, false, 1, 2, true},
					{"KooGallery back, after the retry", iv.retry, false, 3, 3, false},
				}
				for _, st := range steps {
					e.clk.Advance(st.advance)
					if st.fault {
						e.api.SetLicenseFault(f.fault)
					} else {
						e.api.SetLicenseFault(mockapi.Fault{})
					}
					for range st.checks {
						if v, err := svc.Check(ctx, "PL-Q", fp); err != nil || v.Status != "active" || v.Cached != st.cached {
							t.Fatalf("%s: check %+v %v, want active, cached %v", st.name, v, err, st.cached)
						}
					}
					if got := n.Load(); got != st.queries {
						t.Fatalf("%s: %d queries sent, want %d", st.name, got, st.queries)
					}
				}
			})
		}
	}
}

// TestProductionChangeForgetsStaleAnswer: after KooGallery's query said
// EXPIRED, a renewal into the future or an UNFREEZE from the production
// interface makes the next check ask again instead of answering the
// stale status; an ALIVE answer is kept (no new query), with the
// renewal's expiry.
func TestProductionChangeForgetsStaleAnswer(t *testing.T) {
	tests := []struct {
		name    string
		remote  string // what the due query says first
		first   string // the verdict then
		call    func(e *env, future time.Time) (license.Answer, error)
		queries int // after the call's check
		expires bool
	}{
		{"renewal after EXPIRED", protocol.LicenseStatusExpired, "frozen", renew, 2, true},
		{"UNFREEZE after EXPIRED", protocol.LicenseStatusExpired, "frozen", unfreeze, 2, false},
		{"renewal after ALIVE", protocol.LicenseStatusAlive, "active", renew, 1, true},
		{"UNFREEZE after ALIVE", protocol.LicenseStatusAlive, "active", unfreeze, 1, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			forEachDialect(t, options{}, func(t *testing.T, e *env) {
				ctx := context.Background()
				e.issue(t, "PL-RN", 1)
				if _, err := e.svc.Activate(ctx, "PL-RN", fp); err != nil {
					t.Fatal(err)
				}
				e.api.UpdateLicense("PL-RN", func(c *mockapi.LicenseCode) { c.Status = tc.remote })
				e.clk.Advance(25 * time.Hour)
				if v, err := e.svc.Check(ctx, "PL-RN", fp); err != nil || v.Status != tc.first {
					t.Fatalf("due check: %+v %v, want %s", v, err, tc.first)
				}
				// KooGallery alive again, with a year more; the production
				// interface says so.
				future := e.clk.Now().AddDate(1, 0, 0)
				e.api.UpdateLicense("PL-RN", func(c *mockapi.LicenseCode) { c.Status, c.Expire = protocol.LicenseStatusAlive, future })
				if a, err := tc.call(e, future); err != nil || a.Code != protocol.CodeSuccess {
					t.Fatalf("production call: %+v %v", a, err)
				}
				e.clk.Advance(time.Hour)
				v, err := e.svc.Check(ctx, "PL-RN", fp)
				if err != nil || v.Status != "active" || v.Cached {
					t.Errorf("check after the call: %+v %v, want active", v, err)
				}
				if tc.expires && !v.Expires.Equal(future) {
					t.Errorf("expires %v, want the renewal's %v", v.Expires, future)
				}
				if n := e.queries("PL-RN"); n != tc.queries {
					t.Errorf("%d queries, want %d", n, tc.queries)
				}
			})
		})
	}
}

// renew sends a renewal of PL-RN to future.
func renew(e *env, future time.Time) (license.Answer, error) {
	return e.svc.Refresh(context.Background(), protocol.RefreshLicenseCodeRequest{ActivityName: protocol.ActivityRefreshLicenseCode, Scene: protocol.SceneRenewal,
		OrderID: "R1", OrderLineID: "R1-1", License: "PL-RN", ExpireTime: future.UTC().Format("20060102150405")})
}

// unfreeze sends UNFREEZE of PL-RN.
func unfreeze(e *env, _ time.Time) (license.Answer, error) {
	return e.svc.SetStatus(context.Background(), protocol.UpdateLicenseCodeStatusRequest{ActivityName: protocol.ActivityUpdateLicenseCodeStatus,
		License: "PL-RN", Status: protocol.StatusUnfreeze})
}

// TestProductionCallConfirms: a renewal into the future or an UNFREEZE
// from the production interface is KooGallery vouching for the code: the
// offline grace runs from it, however long ago the code was activated or
// last queried, and whatever the last query said. A renewal into the past
// vouches for nothing.
func TestProductionCallConfirms(t *testing.T) {
	tests := []struct {
		name     string
		remote   string // what the last query said, long before the call
		call     func(e *env) (license.Answer, error)
		confirms bool
	}{
		{"renewal after EXPIRED", protocol.LicenseStatusExpired, func(e *env) (license.Answer, error) { return renew(e, e.clk.Now().AddDate(1, 0, 0)) }, true},
		{"renewal after ALIVE", protocol.LicenseStatusAlive, func(e *env) (license.Answer, error) { return renew(e, e.clk.Now().AddDate(1, 0, 0)) }, true},
		{"UNFREEZE after EXPIRED", protocol.LicenseStatusExpired, func(e *env) (license.Answer, error) { return unfreeze(e, time.Time{}) }, true},
		{"UNFREEZE of an active code after ALIVE", protocol.LicenseStatusAlive, func(e *env) (license.Answer, error) { return unfreeze(e, time.Time{}) }, true},
		{"renewal into the past", protocol.LicenseStatusAlive, func(e *env) (license.Answer, error) { return renew(e, e.clk.Now().Add(-time.Hour)) }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			forEachDialect(t, options{}, func(t *testing.T, e *env) {
				ctx := context.Background()
				var queries atomic.Int64
				svc := e.service(t, func(cfg *license.Config) { cfg.OpenAPI = reshaped{OpenAPI: e.client(t), queries: &queries} })
				e.issue(t, "PL-RN", 1)
				if _, err := svc.Activate(ctx, "PL-RN", fp); err != nil {
					t.Fatal(err)
				}
				e.settle(t, license.KindEvent) // delivered before the clock jumps over its lease
				e.api.UpdateLicense("PL-RN", func(c *mockapi.LicenseCode) { c.Status = tc.remote })
				e.clk.Advance(25 * time.Hour)
				if _, err := svc.Check(ctx, "PL-RN", fp); err != nil {
					t.Fatalf("the query: %v", err)
				}
				// 300 days without a check, then the production call, then
				// KooGallery's Open API down.
				e.clk.Advance(300 * 24 * time.Hour)
				confirmed := e.clk.Now()
				if a, err := tc.call(e); err != nil || a.Code != protocol.CodeSuccess {
					t.Fatalf("production call: %+v %v", a, err)
				}
				if c := e.code(t, "PL-RN"); c.ConfirmedAt.Equal(confirmed) != tc.confirms {
					t.Errorf("confirmed at %v, want %v: %v", c.ConfirmedAt, confirmed, tc.confirms)
				}
				e.settle(t, license.KindEvent)
				e.api.SetLicenseFault(mockapi.Fault{Status: http.StatusServiceUnavailable})
				e.clk.Advance(time.Hour)
				v, err := svc.Check(ctx, "PL-RN", fp)
				if !tc.confirms {
					if !errors.Is(err, license.ErrUnavailable) {
						t.Errorf("check while KooGallery is down: %+v %v, want ErrUnavailable", v, err)
					}
					return
				}
				if err != nil || v.Status != "active" || !v.Cached || !v.ValidUntil.Equal(e.clk.Now().Add(168*time.Hour)) {
					t.Fatalf("check while KooGallery is down: %+v %v, want active from the cache for the grace", v, err)
				}
				// Near the end of the grace from the call, a query is asked
				// (the cached answer was forgotten or is due) and the cache
				// answers until the grace runs out.
				e.clk.Advance(confirmed.Add(168*time.Hour - time.Second).Sub(e.clk.Now()))
				if v, err := svc.Check(ctx, "PL-RN", fp); err != nil || !v.Cached || !v.ValidUntil.Equal(confirmed.Add(192*time.Hour)) {
					t.Errorf("check just within the grace: %+v %v, want active from the cache until the call + 8 days", v, err)
				}
				e.clk.Advance(license.QueryRetry)
				if v, err := svc.Check(ctx, "PL-RN", fp); !errors.Is(err, license.ErrUnavailable) {
					t.Errorf("check past the grace: %+v %v, want ErrUnavailable", v, err)
				}
				if n := queries.Load(); n != 4 {
					t.Errorf("%d queries sent, want 4: the first, then one per check after the call", n)
				}
			})
		})
	}
}

// TestRenewalOverActivationEstimate: a renewal never shortens an expiry
// the production interface or a query told, but activate's expire_time is
// an estimate only (§A.8.1): a renewal earlier than it is taken.
func TestRenewalOverActivationEstimate(t *testing.T) {
	type step func(t *testing.T, e *env, base time.Time)
	activate := func(t *testing.T, e *env, _ time.Time) {
		if _, err := e.svc.Activate(context.Background(), "PL-EST", fp); err != nil {
			t.Fatalf("activate: %v", err)
		}
	}
	query := func(t *testing.T, e *env, _ time.Time) {
		e.settle(t, license.KindEvent) // delivered before the clock jumps over its lease
		e.clk.Advance(25 * time.Hour)
		if _, err := e.svc.Check(context.Background(), "PL-EST", fp); err != nil {
			t.Fatalf("check: %v", err)
		}
	}
	renewTo := func(order string, months int) step {
		return func(t *testing.T, e *env, base time.Time) {
			a, err := e.svc.Refresh(context.Background(), protocol.RefreshLicenseCodeRequest{ActivityName: protocol.ActivityRefreshLicenseCode,
				Scene: protocol.SceneRenewal, OrderID: order, OrderLineID: order + "-1", License: "PL-EST",
				ExpireTime: base.AddDate(0, months, 0).UTC().Format("20060102150405")})
			if err != nil || a.Code != protocol.CodeSuccess {
				t.Fatalf("renewal %s: %+v %v", order, a, err)
			}
		}
	}
	tests := []struct {
		name      string
		steps     []step
		months    int // the expiry afterwards, from the start; KooGallery's is 12
		estimated bool
	}{
		{"activation only", []step{activate}, 12, true},
		{"renewal earlier than the activation's estimate", []step{activate, renewTo("R1", 6)}, 6, false},
		{"renewal later than the activation's estimate", []step{activate, renewTo("R1", 24)}, 24, false},
		{"renewal earlier than a query's expiry", []step{activate, query, renewTo("R1", 6)}, 12, false},
		{"renewal earlier than an earlier renewal", []step{activate, renewTo("R1", 24), renewTo("R2", 6)}, 24, false},
		{"activation after a renewal", []step{renewTo("R1", 6), activate}, 6, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			forEachDialect(t, options{}, func(t *testing.T, e *env) {
				base := e.clk.Now()
				e.issue(t, "PL-EST", 1)
				for _, st := range tc.steps {
					st(t, e, base)
				}
				c := e.code(t, "PL-EST")
				if want := base.AddDate(0, tc.months, 0); !c.ExpireTime.Equal(want) || c.ExpireEstimated != tc.estimated {
					t.Errorf("expiry %v, estimated %v; want %v, %v", c.ExpireTime, c.ExpireEstimated, want, tc.estimated)
				}
			})
		})
	}
}
