package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/koobridge/koobridge/emulator"
	"github.com/koobridge/koobridge/internal/testseller"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
)

const testLicenseKey = "conformance-license-key-1122334455"

// testUploadWindow is the upload window of the tests: 10 emulated
// minutes, under 2 s of wall time, ample for the test seller's upload
// (milliseconds).
const testUploadWindow = 10 * time.Minute

// licenseIDs and onlineLicenseIDs are the cases of the license and
// online-license profiles, in run order.
var (
	licenseIDs = []string{
		"license/renewal", "license/unsubscribe-renewal", "license/renewal-change", "license/expire", "license/unfreeze",
		"license/late-renewal-retry", "license/release", "license/unsubscribe", "license/unknown-code", "license/debug-renewal",
		"license/debug-apart", "license/wrong-key", "license/stale-timestamp", "license/replayed-nonce", "license/missing-license",
		"license/bad-expire-time", "license/unknown-status", "license/unknown-activity", "license/duplicate-key",
	}
	onlineLicenseIDs = []string{
		"online-license/purchase", "online-license/repeat-new-instance", "online-license/query", "online-license/renewal",
		"online-license/unsubscribe-renewal", "online-license/request-license", "online-license/repeat-request",
		"online-license/period-without-expiry", "online-license/unknown-instance", "online-license/expire",
		"online-license/unfreeze", "online-license/release", "online-license/unsubscribe",
	}
)

// runLicense runs the suite against a testseller with keys k and faults
// f whose Open API is the suite's listener; a cfg.LicenseTarget or
// cfg.OnlineLicenseTarget names the seller's host:port as "{host}". An
// empty cfg.LicenseKey means testLicenseKey.
func runLicense(t *testing.T, k testseller.Keys, f testseller.Faults, cfg Config) *Report {
	t.Helper()
	return runLicenseWith(t, k, f, nil, cfg)
}

// runLicenseWith is runLicense with the seller behind wrap, when set.
func runLicenseWith(t *testing.T, k testseller.Keys, f testseller.Faults, wrap func(http.Handler) http.Handler, cfg Config) *Report {
	t.Helper()
	ln := listen(t)
	var s http.Handler = testseller.NewWithKeys(k, f).WithOpenAPI("http://"+ln.Addr().String(), testAK, testSK)
	if wrap != nil {
		s = wrap(s)
	}
	seller := httptest.NewServer(s)
	t.Cleanup(seller.Close)
	host := strings.TrimPrefix(seller.URL, "http://")
	cfg.Target = seller.URL + "/produce"
	cfg.LicenseTarget = strings.ReplaceAll(cfg.LicenseTarget, "{host}", host)
	cfg.OnlineLicenseTarget = strings.ReplaceAll(cfg.OnlineLicenseTarget, "{host}", host)
	if cfg.LicenseKey == "" {
		cfg.LicenseKey = testLicenseKey
	}
	cfg.Key, cfg.AK, cfg.SK, cfg.OpenAPI = testKey, testAK, testSK, ln
	if cfg.LicenseUploadWindow == 0 {
		cfg.LicenseUploadWindow = testUploadWindow
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r, err := Run(ctx, cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if !ln.closed.Load() {
		t.Error("Run did not close the Open API listener")
	}
	return r
}

// licenseSeller is the keys of a seller with a license key of its own.
var licenseSeller = testseller.Keys{Basic: testKey, License: testLicenseKey}

// bothLicenseProfiles is the profile list of most license tests.
const bothLicenseProfiles = ProfileLicense + "," + ProfileOnlineLicense

// TestLicenseProfilesPass: the correct seller passes both profiles; each
// case made the calls it says, to the license path, answered with a
// Body-Sign made with the license key; the license was uploaded.
func TestLicenseProfilesPass(t *testing.T) {
	r := runLicense(t, licenseSeller, testseller.Faults{}, Config{Profile: bothLicenseProfiles})
	want := append(append(slices.Clone(licenseIDs), onlineLicenseIDs...), "edge/deadline")
	if got := caseIDs(r); !slices.Equal(got, want) {
		t.Fatalf("case IDs:\n got %q\nwant %q", got, want)
	}
	if !r.Passed() || len(r.Skipped()) != 0 || r.Profile != bothLicenseProfiles {
		t.Fatalf("a correct seller: passed %v, skipped %d, profile %q:%s", r.Passed(), len(r.Skipped()), r.Profile, describe(r))
	}
	// Calls per case: the scenario calls twice at once, then once more
	// (license), or twice at once (online license).
	calls := map[string]int{
		"license/renewal": 3, "license/expire": 3, "license/unfreeze": 6, "license/late-renewal-retry": 1,
		"license/release":     6, // the freeze first, then the release
		"license/unsubscribe": 3, "license/unknown-code": 2, "license/debug-renewal": 4, "license/debug-apart": 2,
		"license/wrong-key": 4, "license/stale-timestamp": 4, "license/replayed-nonce": 3, "license/duplicate-key": 1,
		"online-license/purchase": 2, "online-license/repeat-new-instance": 1, "online-license/request-license": 2,
		"online-license/repeat-request": 1, "online-license/period-without-expiry": 1, "online-license/unknown-instance": 2,
	}
	for _, c := range r.Cases {
		if c.Title == "" || c.Spec == "" {
			t.Errorf("%s: no title or spec", c.ID)
		}
		if n, ok := calls[c.ID]; ok && len(c.Exchanges) != n {
			t.Errorf("%s: %d calls, want %d", c.ID, len(c.Exchanges), n)
		}
		if c.ID == "edge/deadline" {
			continue
		}
		if len(c.Exchanges) == 0 {
			t.Errorf("%s made no call", c.ID)
		}
		for _, x := range c.Exchanges {
			if !strings.Contains(x.Request.URL, "/license?") {
				t.Errorf("%s: %s went to %s, not the license path", c.ID, x.Interface, x.Request.URL)
			}
			if x.Response == nil || sign.VerifyBodySign(testLicenseKey, x.Response.Header[sign.BodySignHeader], []byte(x.Response.Body)) != nil {
				t.Errorf("%s: the answer to %s is not signed with the license key", c.ID, x.Interface)
			}
		}
	}
	debug, _ := r.Case("license/debug-renewal")
	for _, x := range debug.Exchanges {
		if !strings.Contains(x.Request.Body, `"testFlag":"1"`) || !strings.Contains(x.Request.Body, `"orderId":"CS`) {
			t.Errorf("license/debug-renewal sent %s, want a fresh CS* order with testFlag 1", x.Request.Body)
		}
	}
	renewal, _ := r.Case("license/renewal")
	late, _ := r.Case("license/late-renewal-retry")
	if strings.Contains(late.Title, "changes nothing") {
		t.Errorf("license/late-renewal-retry claims what a black-box suite cannot see: %q", late.Title)
	}
	if late.Exchanges[0].Request.Body != renewal.Exchanges[0].Request.Body {
		t.Errorf("the late retry sent %s, not the first renewal %s", late.Exchanges[0].Request.Body, renewal.Exchanges[0].Request.Body)
	}
	if c, _ := r.Case("license/wrong-key"); c.Note != "" {
		t.Errorf("license/wrong-key note %q with a license key of its own", c.Note)
	}
	if c, _ := r.Case("online-license/request-license"); !strings.Contains(c.Note, "uploaded as FILE") {
		t.Errorf("online-license/request-license note %q", c.Note)
	}
	if c, _ := r.Case("online-license/repeat-request"); !strings.Contains(c.Note, "watched for") || strings.Contains(c.Note, "more times") {
		t.Errorf("online-license/repeat-request note %q", c.Note)
	}
	// The seller asked Query Order for the monthly instance's charging
	// mode and uploaded the license: both reached the suite.
	if r.OpenAPICalls < 2 {
		t.Errorf("the seller made %d requests to the mocked Open API, want Query Order and the upload", r.OpenAPICalls)
	}
}

// TestLicenseFaultsNamed runs both profiles against sellers with one
// fault each: exactly the cases that check that behaviour fail, with the
// rules given, the first failure of the case saying what is given.
func TestLicenseFaultsNamed(t *testing.T) {
	bodySign := string(emulator.RuleBodySign)
	every := map[string][]string{}
	for _, id := range append(slices.Clone(licenseIDs), onlineLicenseIDs...) {
		every[id] = []string{bodySign}
	}
	tests := []struct {
		name    string
		faults  testseller.Faults
		want    map[string][]string
		message map[string]string
	}{
		{"LicenseBasicKeyBodySign", testseller.Faults{LicenseBasicKeyBodySign: true}, every,
			map[string]string{"license/renewal": "it is made with the basic key; answers to license calls are signed with the key bound to the license interfaces"}},
		{"LicenseAnyKey", testseller.Faults{LicenseAnyKey: true}, map[string][]string{"license/wrong-key": {RuleLicenseKey}},
			map[string]string{"license/wrong-key": "the seller accepted a releaseLicenseCode signed with the basic key: it verifies license calls with the basic-interface key"}},
		{"LicenseUnknownCodeRefused", testseller.Faults{LicenseUnknownCodeRefused: true}, map[string][]string{
			"license/renewal": {RuleLicenseUnknownCode}, "license/unsubscribe-renewal": {RuleNotRun}, "license/renewal-change": {RuleLicenseUnknownCode},
			"license/expire": {RuleLicenseUnknownCode}, "license/unfreeze": {RuleLicenseUnknownCode}, "license/late-renewal-retry": {RuleNotRun},
			"license/release": {RuleLicenseUnknownCode}, "license/unsubscribe": {RuleLicenseUnknownCode}, "license/unknown-code": {RuleLicenseUnknownCode},
			"license/debug-renewal": {RuleLicenseUnknownCode}, "license/debug-apart": {RuleLicenseUnknownCode}, "license/wrong-key": {RuleLicenseUnknownCode},
			"license/stale-timestamp": {RuleLicenseUnknownCode}, "license/replayed-nonce": {RuleLicenseUnknownCode},
		}, map[string]string{"license/unknown-code": "answered 000003 (instance does not exist) to updateLicenseCodeStatus FREEZE of license code PL"}},
		{"LicenseStaleRenewalRefused", testseller.Faults{LicenseStaleRenewalRefused: true}, map[string][]string{
			"license/late-renewal-retry": {RuleIdempotentLicense},
		}, map[string]string{"license/late-renewal-retry": "answered 000002 (invalid request parameter) to refreshLicenseCode RENEWAL of license code PL"}},
		{"LicenseDebugMixed", testseller.Faults{LicenseDebugMixed: true}, map[string][]string{
			"license/debug-apart": {RuleLicenseDebugApart},
		}, map[string]string{"license/debug-apart": "answered 000002 (invalid request parameter) to a real (testFlag 0) refreshLicenseCode RENEWAL of license code PL"}},
		{"SkipSignature", testseller.Faults{SkipSignature: true}, map[string][]string{
			"license/wrong-key": {RuleLicenseKey}, "license/stale-timestamp": {RuleTimestamp}, "license/replayed-nonce": {RuleNonce},
		}, map[string]string{"license/stale-timestamp": "the seller accepted a releaseLicenseCode whose timestamp was 2m0s old"}},
		{"SkipValidation", testseller.Faults{SkipValidation: true}, map[string][]string{
			"license/missing-license": {RuleValidation}, "license/bad-expire-time": {RuleValidation},
			"license/unknown-status": {RuleValidation}, "license/unknown-activity": {RuleValidation},
		}, map[string]string{"license/unknown-status": `the seller answered 000000 to an updateLicenseCodeStatus with status "PAUSE"`}},
		{"OnlineLicenseNoUpload", testseller.Faults{OnlineLicenseNoUpload: true}, map[string][]string{
			"online-license/request-license": {RuleLicenseUpload}, "online-license/repeat-request": {RuleNotRun},
		}, map[string]string{"online-license/request-license": "but no license was accepted for it within 10m0s (emulated): no upload came"}},
		{"OnlineLicenseWrongSHA256", testseller.Faults{OnlineLicenseWrongSHA256: true}, map[string][]string{
			"online-license/request-license": {RuleLicenseUpload}, "online-license/repeat-request": {RuleNotRun},
		}, map[string]string{"online-license/request-license": "every upload was refused: CBC.0101 invalid parameter sha256"}},
		{"OnlineLicenseRegenerates", testseller.Faults{OnlineLicenseRegenerates: true}, map[string][]string{
			"online-license/repeat-request": {RuleLicenseUploadOnce},
		}, map[string]string{"online-license/repeat-request": "another license was uploaded for event EV"}},
		{"OnlineLicenseNoExpiryCheck", testseller.Faults{OnlineLicenseNoExpiryCheck: true}, map[string][]string{
			"online-license/period-without-expiry": {RuleLicenseExpiry},
		}, map[string]string{"online-license/period-without-expiry": "answered 000004 (request is being processed) to a getLicenseAsync of the monthly instance"}},
		{"UnknownInstanceOK", testseller.Faults{UnknownInstanceOK: true}, map[string][]string{
			"online-license/unknown-instance": {RuleUnknownInstance},
		}, map[string]string{"online-license/unknown-instance": "answered 000004 (request is being processed) to getLicenseAsync of instanceId conformance-never-issued-"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runLicense(t, licenseSeller, tt.faults, Config{Profile: bothLicenseProfiles})
			wantRules(t, r, tt.want)
			for id, text := range tt.message {
				c, _ := r.Case(id)
				if len(c.Failures) == 0 || !strings.Contains(c.Failures[0].Message, text) {
					t.Errorf("%s: failures %+v, want the first to say %q", id, c.Failures, text)
				}
			}
			if r.Passed() {
				t.Error("Passed() is true")
			}
		})
	}
}

// TestLicenseRepeatDiffers: a seller that answers a repeat 000005 fails
// the license cases that deliver a call again, license/renewal among
// them, with idempotent-license (and the result-code of the answer, or
// not-run for a case whose scenario it stopped); which of two concurrent
// deliveries is the repeat is up to the race, so which later cases run
// is too. Nothing else fails.
func TestLicenseRepeatDiffers(t *testing.T) {
	r := runLicense(t, licenseSeller, testseller.Faults{LicenseRepeatDiffers: true}, Config{Profile: bothLicenseProfiles})
	if c, _ := r.Case("license/renewal"); !c.Has(RuleIdempotentLicense) || !strings.Contains(c.Failures[len(c.Failures)-1].Message, "answered") {
		t.Errorf("license/renewal: %+v, want idempotent-license", c.Failures)
	}
	allowed := []string{RuleIdempotentLicense, string(emulator.RuleResultCode), RuleNotRun}
	lifecycle := []string{"license/renewal", "license/unsubscribe-renewal", "license/renewal-change", "license/expire", "license/unfreeze",
		"license/late-renewal-retry", "license/release", "license/unsubscribe", "license/debug-renewal"}
	for _, c := range r.Cases {
		switch {
		case !slices.Contains(lifecycle, c.ID):
			if !c.Pass {
				t.Errorf("%s failed: %+v", c.ID, c.Failures)
			}
		case c.Pass:
			t.Errorf("%s passed; every call it makes is delivered again", c.ID)
		default:
			for _, rule := range rulesOf(c) {
				if !slices.Contains(allowed, rule) {
					t.Errorf("%s broke %s: %+v", c.ID, rule, c.Failures)
				}
			}
		}
	}
}

// takenLater answers getLicenseAsync of an event, from its (n+1)th
// delivery on, code where the seller behind it answers 000004 (repeating
// its first answer): with 000000, a seller that says success once the
// license is made; with another code, one that refuses what it took.
func takenLater(n int, code protocol.ResultCode) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		var mu sync.Mutex
		seen := map[string]int{}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			var req struct {
				Activity string `json:"activity"`
				EventID  string `json:"eventId"`
			}
			_ = json.Unmarshal(body, &req)
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			reply := rec.Body.Bytes()
			if req.Activity == protocol.ActivityGetLicenseAsync {
				mu.Lock()
				seen[req.EventID]++
				later := seen[req.EventID] > n
				mu.Unlock()
				var resp protocol.Response
				if later && json.Unmarshal(reply, &resp) == nil && resp.ResultCode == protocol.CodeProcessing {
					reply, _ = json.Marshal(protocol.NewResponse(code, resp.ResultMsg))
					rec.Header().Set(sign.BodySignHeader, sign.BodySign(testLicenseKey, reply))
				}
			}
			maps.Copy(w.Header(), rec.Header())
			w.WriteHeader(rec.Code)
			_, _ = w.Write(reply)
		})
	}
}

// TestGetLicenseTakenLater: a seller that answers a repeated
// getLicenseAsync 000000 where the first was 000004 (the license made
// meanwhile) passes: the duplicates delivered at once (n 1: 000004 and
// 000000 at once) and the delivery after the answer (n 2) agree, the
// latter noted. One that switches from taken to refused fails
// online-license/repeat-request with idempotent-license, naming both
// codes.
func TestGetLicenseTakenLater(t *testing.T) {
	for _, tt := range []struct {
		name  string
		n     int
		code  protocol.ResultCode
		fails bool
		note  string // of online-license/repeat-request
	}{
		{"000000 to the concurrent duplicate", 1, protocol.CodeSuccess, false, ""},
		{"000000 to the delivery after the answer", 2, protocol.CodeSuccess, false, "answered 000000 (success), the first delivery answered 000004"},
		{"000002 to the delivery after the answer", 2, protocol.CodeInvalidParam, true, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := runLicenseWith(t, licenseSeller, testseller.Faults{}, takenLater(tt.n, tt.code), Config{Profile: ProfileOnlineLicense})
			repeat, _ := r.Case("online-license/repeat-request")
			if !tt.fails {
				if !r.Passed() {
					t.Fatalf("failed:%s", describe(r))
				}
				if !strings.Contains(repeat.Note, tt.note) {
					t.Errorf("online-license/repeat-request note %q, want %q", repeat.Note, tt.note)
				}
				return
			}
			wantRules(t, r, map[string][]string{"online-license/repeat-request": {RuleIdempotentLicense}})
			if len(repeat.Failures) == 0 || !strings.Contains(repeat.Failures[0].Message, "answered 000002") ||
				!strings.Contains(repeat.Failures[0].Message, "000000 or 000004: taken") {
				t.Errorf("online-license/repeat-request failures %+v, want the codes named", repeat.Failures)
			}
		})
	}
}

// TestLicenseKeysAndTargets: the license calls go to LicenseTarget, the
// online-license calls to OnlineLicenseTarget, signed with the key of
// OnlineLicenseKey's type; with no license key of its own only a made-up
// key is tried in license/wrong-key, which says so.
func TestLicenseKeysAndTargets(t *testing.T) {
	t.Run("targets", func(t *testing.T) {
		r := runLicense(t, licenseSeller, testseller.Faults{}, Config{Profile: bothLicenseProfiles,
			LicenseTarget: "http://{host}/vendor/license", OnlineLicenseTarget: "http://{host}/online/license"})
		if !r.Passed() {
			t.Fatalf("failed:%s", describe(r))
		}
		for _, c := range r.Cases {
			for _, x := range c.Exchanges {
				path := "/vendor/license?"
				if strings.HasPrefix(c.ID, ProfileOnlineLicense+"/") {
					path = "/online/license?"
				}
				if !strings.Contains(x.Request.URL, path) && c.ID != "edge/deadline" {
					t.Errorf("%s: %s went to %s, want %s", c.ID, x.Interface, x.Request.URL, path)
				}
			}
		}
	})
	t.Run("online license with the basic key", func(t *testing.T) {
		// The seller verifies online license with its license key, here
		// the basic key; the suite's own license key is another.
		keys := testseller.Keys{Basic: testKey, License: testKey}
		r := runLicense(t, keys, testseller.Faults{}, Config{Profile: ProfileOnlineLicense, LicenseKey: "another-license-key", OnlineLicenseKey: emulator.KeyBasic})
		if !r.Passed() {
			t.Fatalf("failed:%s", describe(r))
		}
		r = runLicense(t, keys, testseller.Faults{}, Config{Profile: ProfileOnlineLicense, LicenseKey: "another-license-key"})
		if c, _ := r.Case("online-license/purchase"); c.Pass || c.Exchanges[0].ResultCode != protocol.CodeAuthFailed {
			t.Errorf("online-license/purchase signed with the suite's license key, which the seller does not have: %+v", c.Failures)
		}
	})
	t.Run("no license key", func(t *testing.T) {
		r := runLicense(t, testseller.Keys{Basic: testKey}, testseller.Faults{}, Config{Profile: ProfileLicense, LicenseKey: testKey})
		if !r.Passed() {
			t.Fatalf("failed:%s", describe(r))
		}
		c, _ := r.Case("license/wrong-key")
		if len(c.Exchanges) != 2 || !strings.Contains(c.Note, "the license key is the basic key") {
			t.Errorf("license/wrong-key: %d calls, note %q; want a made-up key only, and a note", len(c.Exchanges), c.Note)
		}
	})
}

// TestLicenseReport: the license profiles have a JUnit suite each, and
// the text report shows the license path and the upload failure.
func TestLicenseReport(t *testing.T) {
	r := runLicense(t, licenseSeller, testseller.Faults{OnlineLicenseWrongSHA256: true}, Config{Profile: bothLicenseProfiles})
	var junit, text bytes.Buffer
	if err := r.WriteJUnit(&junit); err != nil {
		t.Fatal(err)
	}
	doc := parseJUnit(t, junit.Bytes())
	if doc.Tests != len(licenseIDs)+len(onlineLicenseIDs)+1 || doc.Failures != 2 || len(doc.Suites) != 3 {
		t.Errorf("JUnit: tests %d, failures %d, %d suites; want %d, 2 and 3 (license, online-license, edge)", doc.Tests, doc.Failures, len(doc.Suites), len(licenseIDs)+len(onlineLicenseIDs)+1)
	}
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"FAIL  online-license/request-license", "rule license-upload: ", "license-openapi.md §C.6, §C.7",
		"PASS  license/renewal", "cases: 31 passed, 2 failed, 0 skipped (rules broken: license-upload, not-run)",
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, text.String())
		}
	}
	if strings.Contains(text.String(), testLicenseKey) || strings.Contains(text.String(), testSK) {
		t.Error("the report contains the license key or the SK")
	}
}

// TestLicenseConfig: the license settings Run refuses.
func TestLicenseConfig(t *testing.T) {
	good := Config{Target: "http://127.0.0.1:1/produce", Key: "k", AK: "a", SK: "s", Profile: bothLicenseProfiles}
	if err := good.Validate(); err != nil {
		t.Fatalf("good config: %v", err)
	}
	for _, tt := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"license target", func(c *Config) { c.LicenseTarget = "ftp://x/license" }, `LicenseTarget "ftp://x/license"`},
		{"online-license target", func(c *Config) { c.OnlineLicenseTarget = "license" }, `OnlineLicenseTarget "license"`},
		{"online-license key type", func(c *Config) { c.OnlineLicenseKey = emulator.KeyKit }, `OnlineLicenseKey "kit": want license or basic`},
		{"upload window", func(c *Config) { c.LicenseUploadWindow = -time.Second }, "LicenseUploadWindow -1s is negative"},
		{"profile", func(c *Config) { c.Profile = "licence" }, "license, online-license, metering, all"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			tt.edit(&c)
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate = %v, want an error naming %s", err, tt.want)
			}
		})
	}
}
