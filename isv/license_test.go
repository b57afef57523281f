package isv_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/isv"
	"github.com/koobridge/koobridge/protocol"
)

const licenseKey = "license-key-0123456789abcdef"

// TestLicenseRoutes: each license family answers at its route, verifies
// with its key type and Body-Signs with it; the license-code calls are not
// served at the production path, the license 1.0 ones are (beside V1).
func TestLicenseRoutes(t *testing.T) {
	e := newEnv(t, func(c *isv.Config) { c.Keys.License = []string{licenseKey} })
	refresh := `{"activity":"refreshLicenseCode","expireTime":"20300101000000","license":"PL-ROUTE-1","orderId":"CS-R1","orderLineId":"CS-R1-000001","scene":"RENEWAL"}`
	tests := []struct {
		name string
		body string
		rq   request
		sign string // the key the reply is Body-Signed with
		want protocol.ResultCode
	}{
		{"license code with the license key", refresh, request{path: "/license", key: licenseKey}, licenseKey, protocol.CodeSuccess},
		{"license code with the basic key", refresh, request{path: "/license", key: key1}, licenseKey, protocol.CodeAuthFailed},
		{"license code at the production path", refresh, request{key: key1}, key1, protocol.CodeInvalidParam},
		{"online license with the license key", newInstanceBody("ORDER-OL-1", "ORDER-OL-1-000001"), request{path: "/license", key: licenseKey}, licenseKey, ""},
		{"online license with the basic key", newInstanceBody("ORDER-OL-2", "ORDER-OL-2-000001"), request{path: "/license", key: key1}, licenseKey, protocol.CodeAuthFailed},
	}
	e.addOrder("ORDER-OL-1", "ORDER-OL-1-000001", "sku")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(t, tc.body, tc.rq)
			checkReply(t, r, http.StatusOK, tc.sign)
			if tc.want == "" {
				// A purchase: provisioned at once or asynchronously.
				if c := r.code(); c != string(protocol.CodeSuccess) && c != string(protocol.CodeProcessing) {
					t.Fatalf("resultCode %s (%s), want 000000 or 000004", c, r.msg())
				}
				return
			}
			wantCode(t, r, tc.want)
		})
	}

	// License 1.0 is a GET with the basic key's authToken, at the production
	// path beside SaaS V1 and at the license path.
	for _, path := range []string{"/produce", "/license"} {
		q := v1Query(t, key1, map[string]string{"activity": "releaseLicense", "orderId": "CS-L1", "instanceId": "NO-SUCH-INSTANCE"})
		resp, err := http.Get(e.http.URL + path + "?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var body struct{ ResultCode string }
		if err := json.Unmarshal(raw, &body); err != nil || body.ResultCode != string(protocol.CodeInstanceNotFound) {
			t.Errorf("releaseLicense of an unknown instance at %s: %s, want 000003", path, raw)
		}
	}
}

// TestLicenseOnlineKeyType: --online-license-key-type basic moves online
// license to the basic key and leaves license codes on the license key.
func TestLicenseOnlineKeyType(t *testing.T) {
	e := newEnv(t, func(c *isv.Config) {
		c.Keys.License = []string{licenseKey}
		c.Licenses.OnlineKeys = isv.KeyTypeBasic
	})
	e.addOrder("ORDER-OL-3", "ORDER-OL-3-000001", "sku")
	r := e.do(t, newInstanceBody("ORDER-OL-3", "ORDER-OL-3-000001"), request{path: "/license", key: key1})
	checkReply(t, r, http.StatusOK, key1)
	if c := r.code(); c != string(protocol.CodeSuccess) && c != string(protocol.CodeProcessing) {
		t.Fatalf("online newInstance signed with the basic key: %s (%s)", c, r.msg())
	}
	refresh := `{"activity":"releaseLicenseCode","license":"PL-ROUTE-2"}`
	wantCode(t, e.call(t, refresh, request{path: "/license", key: licenseKey}), protocol.CodeSuccess)
}

// TestLicenseSettings: settings that cannot work are refused by New.
func TestLicenseSettings(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*isv.Config)
		want string
	}{
		{"license path is the production path", func(c *isv.Config) { c.LicensePath = "/produce" }, "production path"},
		{"retention below the grace", func(c *isv.Config) { c.Licenses.Grace = 48 * 3600e9; c.Licenses.KeyRetention = 24 * 3600e9 }, "shorter than the offline grace"},
		{"unknown online key type", func(c *isv.Config) { c.Licenses.OnlineKeys = "kit" }, "online-license key type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			cfg := isv.Config{Keys: isv.Keys{Basic: []string{key1}}, DB: store.NewDB(e.st), DataKey: sealKey(t), OpenAPI: isv.OpenAPI{URL: e.orders.URL(), AK: testAK, SK: testSK}, Provisioner: e.prov}
			tc.edit(&cfg)
			_, err := isv.New(cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want an error saying %q", err, tc.want)
			}
		})
	}
}

// TestLicenseServiceWithoutOpenAPI: without AK/SK the license service
// answers activate 503 unavailable (it cannot ask KooGallery), and serves
// its key set.
func TestLicenseServiceWithoutOpenAPI(t *testing.T) {
	e := newEnv(t)
	hs := httptest.NewServer(e.srv.LicenseHandler())
	defer hs.Close()
	resp, err := http.Post(hs.URL+isv.LicensePathPrefix+"activate", "application/json",
		strings.NewReader(`{"license":"PL-1","deviceFingerprint":"AA:BB|||"}`))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(raw), `"unavailable"`) {
		t.Fatalf("activate without AK/SK: HTTP %d %s, want 503 unavailable", resp.StatusCode, raw)
	}
	resp, err = http.Get(hs.URL + isv.LicensePathPrefix + "keys")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(raw), `"keys"`) {
		t.Fatalf("keys: HTTP %d %s", resp.StatusCode, raw)
	}
}
