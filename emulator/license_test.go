package emulator

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/koobridge/koobridge/emulator/mockapi"
	"github.com/koobridge/koobridge/internal/testseller"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
)

const testLicenseKey = "EmulatorLicenseKey-0123456789abcdef"

// withLicenseKey gives the emulator the license key licenseSeller
// verifies by default.
func withLicenseKey(c *Config) { c.LicenseKey = testLicenseKey }

// licenseCall is one call a licenseSeller got.
type licenseCall struct {
	path     string
	activity string
	body     map[string]any
}

// licenseSeller is a seller of license products for the tests, written
// from the spec: it checks the URL signature (license-openapi.md §A.6)
// with its key, nonce and timestamp included, decodes and validates the
// body with protocol, answers the code set for the activity (000000
// unless told; fail[activity] first calls answer 000005) with a Body-Sign
// made with the same key, and, for getLicenseAsync, uploads a license
// through upload when set, before answering.
type licenseSeller struct {
	t   *testing.T
	key string
	ver *sign.Verifier

	mu        sync.Mutex
	calls     []licenseCall
	fail      map[string]int
	seq       map[string][]protocol.ResultCode // answered in turn, before code
	code      map[string]protocol.ResultCode
	instances map[string]string // orderLineId → instanceId
	upload    func(eventID string)
	noAppInfo bool // queryInstance answers the instance without appInfo
}

func newLicenseSeller(t *testing.T, key string) *licenseSeller {
	return &licenseSeller{
		t: t, key: key,
		ver:       &sign.Verifier{Keys: []string{key}, Nonces: sign.NewMemoryNonces()},
		fail:      map[string]int{},
		seq:       map[string][]protocol.ResultCode{},
		code:      map[string]protocol.ResultCode{},
		instances: map[string]string{},
	}
}

func (s *licenseSeller) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	q := r.URL.Query()
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	activity, _ := m["activity"].(string)
	s.mu.Lock()
	s.calls = append(s.calls, licenseCall{path: r.URL.Path, activity: activity, body: m})
	s.mu.Unlock()

	resp := protocol.NewResponse(protocol.CodeSuccess, "")
	var err error
	if _, err = s.ver.VerifyV2(r.Context(), q.Get("signature"), q.Get("timestamp"), q.Get("nonce"), raw); err != nil {
		resp = protocol.NewResponse(protocol.CodeAuthFailed, "")
	} else {
		var req protocol.V2Request
		if strings.HasSuffix(activity, "LicenseCode") || strings.HasSuffix(activity, "LicenseCodeStatus") {
			req, err = protocol.DecodeLicense(raw)
		} else {
			req, err = protocol.DecodeV2(raw)
		}
		if err == nil {
			err = req.Validate()
		}
		if err != nil {
			resp = protocol.ErrorResponse(err)
		}
	}
	s.mu.Lock()
	if resp.ResultCode == protocol.CodeSuccess {
		if s.fail[activity] > 0 {
			s.fail[activity]--
			resp = protocol.NewResponse(protocol.CodeInternal, "")
		} else if seq := s.seq[activity]; len(seq) > 0 {
			resp = protocol.NewResponse(seq[0], "")
			s.seq[activity] = seq[1:]
		} else if c, ok := s.code[activity]; ok {
			resp = protocol.NewResponse(c, "")
		}
	}
	var reply any = resp
	switch activity {
	case protocol.ActivityNewInstance:
		line, _ := m["orderLineId"].(string)
		id, ok := s.instances[line]
		if !ok {
			id = "lic-inst-" + NewNonce()[:8]
			s.instances[line] = id
		}
		reply = protocol.NewInstanceResponse{Response: resp, InstanceID: id}
	case protocol.ActivityQueryInstance:
		id, _ := m["instanceId"].(string)
		info := protocol.InstanceInfo{InstanceID: id, AppInfo: &protocol.AppInfo{FrontEndURL: "https://lic.example/" + id}}
		if s.noAppInfo {
			info.AppInfo = nil
		}
		reply = protocol.QueryInstanceResponse{Response: resp, Info: []protocol.InstanceInfo{info}}
	}
	upload := s.upload
	s.mu.Unlock()
	if activity == protocol.ActivityGetLicenseAsync && resp.ResultCode.Success() && upload != nil {
		ev, _ := m["eventId"].(string)
		upload(ev)
	}
	b, _ := protocol.Marshal(reply)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set(sign.BodySignHeader, sign.BodySign(s.key, b))
	_, _ = w.Write(b)
}

// got returns the calls so far.
func (s *licenseSeller) got() []licenseCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]licenseCall(nil), s.calls...)
}

// openAPI serves the emulator's mocked Open API over real HTTP and signs
// requests to it as a seller does.
type openAPI struct {
	t           *testing.T
	url, ak, sk string
}

func serveOpenAPI(t *testing.T, e *Emulator) openAPI {
	srv := httptest.NewServer(e.OpenAPIHandler())
	t.Cleanup(srv.Close)
	return openAPI{t: t, url: srv.URL, ak: testAK, sk: testSK}
}

// post sends a signed POST and returns the status and error_code.
func (o openAPI) post(path, contentType string, body []byte) (int, string) {
	req, err := http.NewRequest(http.MethodPost, o.url+path, bytes.NewReader(body))
	if err != nil {
		o.t.Error(err)
		return 0, ""
	}
	req.Header.Set("Content-Type", contentType)
	if err := (sign.APIGSigner{AK: o.ak, SK: o.sk}).Sign(req, body, time.Now()); err != nil {
		o.t.Error(err)
		return 0, ""
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		o.t.Error(err)
		return 0, ""
	}
	defer resp.Body.Close()
	var r struct {
		Code string `json:"error_code"`
	}
	raw, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(raw, &r)
	return resp.StatusCode, r.Code
}

// uploadFile uploads content as the FILE license of event.
func (o openAPI) uploadFile(event, content string) string {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	sum := sha256.Sum256([]byte(content))
	req, _ := json.Marshal(protocol.IsvUpdateFileReq{Type: protocol.UploadTypeFile, FileName: "license.lic", SHA256: hex.EncodeToString(sum[:])})
	_ = mw.WriteField("isvUpdateFileReq", string(req))
	fw, _ := mw.CreateFormFile("file", "license.lic")
	_, _ = fw.Write([]byte(content))
	_ = mw.Close()
	_, code := o.post(mockapi.UploadPath(event), mw.FormDataContentType(), buf.Bytes())
	return code
}

// licenseEnv is an emulator playing toward a licenseSeller, with its
// mocked Open API served.
type licenseEnv struct {
	env
	seller *licenseSeller
	api    openAPI
}

func startLicense(t *testing.T, adjust func(*Config)) licenseEnv {
	seller := newLicenseSeller(t, testLicenseKey)
	v := start(t, seller, func(c *Config) {
		withLicenseKey(c)
		if adjust != nil {
			adjust(c)
		}
	})
	return licenseEnv{env: v, seller: seller, api: serveOpenAPI(t, v.e)}
}

var licenseCodeRE = regexp.MustCompile(`^PL[A-Z2-9]{14}$`)

// TestLicensePurchase: buying the license-code product issues a code to
// the mocked Open API (ALIVE, not activated, the order's expiry, product
// and amount) and calls the seller not at all.
func TestLicensePurchase(t *testing.T) {
	for _, tt := range []struct {
		name     string
		test     bool
		quantity int
		amount   int
	}{
		{name: "one", quantity: 0, amount: 1},
		{name: "three", quantity: 3, amount: 3},
		{name: "debug", test: true, amount: 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v := startLicense(t, nil)
			run, sub := v.purchase(PurchaseRequest{ProductID: LicenseProductID, Quantity: tt.quantity, Test: tt.test})
			if !run.OK || len(run.Messages) != 0 || run.Scenario != "purchase" || run.LicenseCode != sub.LicenseCode {
				t.Fatalf("run %+v, want ok without messages, with the code %s", run, sub.LicenseCode)
			}
			if sub.Status != StatusActive || !licenseCodeRE.MatchString(sub.LicenseCode) || sub.InstanceID != "" || sub.LinearValue != tt.amount {
				t.Errorf("subscription %+v, want active with a license code", sub)
			}
			if d := sub.ExpireTime.Sub(v.e.Now()); !tt.test && (d < 27*24*time.Hour || d > 32*24*time.Hour) {
				t.Errorf("expiry %v away, want a month", d)
			}
			c, ok := v.e.License(sub.LicenseCode)
			if !ok || c.Status != protocol.LicenseStatusAlive || c.Amount != tt.amount || c.OrderID != sub.OrderID ||
				c.ProductID != LicenseProductID || !c.Expire.Equal(sub.ExpireTime) || c.Activated || c.Checked || c.Test {
				t.Errorf("license %+v, want ALIVE, amount %d, order %s, expiry %v, not activated", c, tt.amount, sub.OrderID, sub.ExpireTime)
			}
			if tt.test != strings.HasPrefix(sub.OrderID, "MOCK") {
				t.Errorf("order %s for test=%v", sub.OrderID, tt.test)
			}
			info := queryOrder(t, v.e, sub.OrderID)
			if string(info.OrderType) != protocol.OrderTypeNew {
				t.Errorf("Query Order %+v", info)
			}
			if n := len(v.seller.got()); n != 0 {
				t.Errorf("the seller got %d calls, want none", n)
			}
			// The code activates through the mocked Open API.
			body, _ := json.Marshal(protocol.LicenseActivateRequest{License: sub.LicenseCode})
			if status, code := v.api.post(mockapi.LicenseActivatePath, "application/json", body); status != 200 || code != protocol.LicenseSuccess {
				t.Errorf("activate: %d %s", status, code)
			}
		})
	}
}

// TestLicenseScenarios plays the license-code lifecycle on one
// subscription and checks each call (path, URL signature with the license
// key, fields) and what it changes in the subscription and the mocked
// Open API.
func TestLicenseScenarios(t *testing.T) {
	v := startLicense(t, nil)
	_, sub := v.purchase(PurchaseRequest{ProductID: LicenseProductID})
	code := sub.LicenseCode
	type want struct {
		scenario string
		calls    []string // activities, in order
		status   string   // subscription status after
		license  string   // mocked Open API status after
		expire   func(before Subscription) time.Time
		check    func(t *testing.T, before, after Subscription, calls []licenseCall)
	}
	fieldsOf := func(c licenseCall) []string {
		var ks []string
		for k := range c.body {
			ks = append(ks, k)
		}
		return ks
	}
	steps := []want{
		{scenario: "renewal", calls: []string{"refreshLicenseCode"}, status: StatusActive, license: "ALIVE",
			expire: func(b Subscription) time.Time { return b.ExpireTime.AddDate(0, 1, 0) },
			check: func(t *testing.T, b, a Subscription, calls []licenseCall) {
				m := calls[0].body
				if m["scene"] != "RENEWAL" || m["license"] != code || m["expireTime"] != protocol.FormatTime14(a.ExpireTime) ||
					m["orderId"] != a.Orders[len(a.Orders)-1] || m["orderLineId"] != a.Orders[len(a.Orders)-1]+"-000001" || m["productId"] != nil || len(m) != 6 {
					t.Errorf("refreshLicenseCode %v (fields %v)", m, fieldsOf(calls[0]))
				}
				if info := queryOrder(t, v.e, a.Orders[len(a.Orders)-1]); string(info.OrderType) != protocol.OrderTypeRenew {
					t.Errorf("renewal order type %s", info.OrderType)
				}
			}},
		{scenario: "unsubscribe-renewal", calls: []string{"refreshLicenseCode"}, status: StatusActive, license: "ALIVE",
			expire: func(b Subscription) time.Time { return b.ExpireTime.AddDate(0, -1, 0) },
			check: func(t *testing.T, b, a Subscription, calls []licenseCall) {
				if m := calls[0].body; m["scene"] != "UNSUBSCRIBE_RENEWAL_PERIOD" || m["expireTime"] != protocol.FormatTime14(a.ExpireTime) {
					t.Errorf("refreshLicenseCode %v", m)
				}
			}},
		{scenario: "renewal-change", calls: []string{"refreshLicenseCode"}, status: StatusActive, license: "ALIVE",
			expire: func(b Subscription) time.Time { return b.ExpireTime.AddDate(1, 0, 0) },
			check: func(t *testing.T, b, a Subscription, calls []licenseCall) {
				if m := calls[0].body; m["scene"] != "RENEWAL" || m["productId"] != LicenseProductID || a.PeriodType != "year" {
					t.Errorf("refreshLicenseCode %v, period %s", m, a.PeriodType)
				}
			}},
		{scenario: "expire", calls: []string{"updateLicenseCodeStatus"}, status: StatusFrozen, license: "EXPIRED",
			expire: func(b Subscription) time.Time { return b.ExpireTime },
			check: func(t *testing.T, b, a Subscription, calls []licenseCall) {
				if m := calls[0].body; m["status"] != "FREEZE" || m["license"] != code || len(m) != 3 {
					t.Errorf("updateLicenseCodeStatus %v", m)
				}
				if a.Clock.Before(b.ExpireTime) || !v.e.Now().Before(b.ExpireTime) {
					t.Errorf("the subscription's clock %v, the emulator's %v: want the subscription's alone at the expiry %v", a.Clock, v.e.Now(), b.ExpireTime)
				}
			}},
		{scenario: "unfreeze", calls: []string{"refreshLicenseCode", "updateLicenseCodeStatus"}, status: StatusActive, license: "ALIVE",
			expire: func(b Subscription) time.Time { return b.ExpireTime.AddDate(1, 0, 0) },
			check: func(t *testing.T, b, a Subscription, calls []licenseCall) {
				if m := calls[1].body; m["status"] != "UNFREEZE" {
					t.Errorf("updateLicenseCodeStatus %v", m)
				}
			}},
		{scenario: "expire", calls: []string{"updateLicenseCodeStatus"}, status: StatusFrozen, license: "EXPIRED",
			expire: func(b Subscription) time.Time { return b.ExpireTime }},
		{scenario: "release", calls: []string{"releaseLicenseCode"}, status: StatusReleased, license: "RELEASED",
			expire: func(b Subscription) time.Time { return b.ExpireTime },
			check: func(t *testing.T, b, a Subscription, calls []licenseCall) {
				if m := calls[0].body; m["license"] != code || m["orderId"] != nil || len(m) != 2 {
					t.Errorf("releaseLicenseCode %v, want no order", m)
				}
				if a.Clock.Before(b.ExpireTime.Add(retention)) {
					t.Errorf("the subscription's clock %v did not pass the 15-day freeze", a.Clock)
				}
			}},
	}
	for i, st := range steps {
		before, _ := v.e.Subscription(sub.ID)
		n := len(v.seller.got())
		run, after := v.play(sub.ID, st.scenario)
		if !run.OK || len(run.Messages) != len(st.calls) || run.LicenseCode != code {
			t.Fatalf("step %d %s: run %+v", i, st.scenario, run)
		}
		calls := v.seller.got()[n:]
		if len(calls) != len(st.calls) {
			t.Fatalf("step %d %s: the seller got %d calls, want %v", i, st.scenario, len(calls), st.calls)
		}
		for j, c := range calls {
			if c.path != "/license" || c.activity != st.calls[j] || c.body["testFlag"] != nil {
				t.Errorf("step %d %s: call %d %s %s %v, want %s at /license", i, st.scenario, j, c.path, c.activity, c.body, st.calls[j])
			}
			if m, _ := v.e.Message(run.Messages[j]); m.Family != "license" || m.Status != MessageSuccess || m.Interface != st.calls[j] {
				t.Errorf("step %d %s: message %+v", i, st.scenario, m)
			}
		}
		if after.Status != st.status || !after.ExpireTime.Equal(st.expire(before)) {
			t.Errorf("step %d %s: subscription %s expiring %v, want %s expiring %v", i, st.scenario, after.Status, after.ExpireTime, st.status, st.expire(before))
		}
		if c, _ := v.e.License(code); c.Status != st.license || !c.Expire.Equal(after.ExpireTime) {
			t.Errorf("step %d %s: license %s expiring %v, want %s expiring %v", i, st.scenario, c.Status, c.Expire, st.license, after.ExpireTime)
		}
		if st.check != nil {
			st.check(t, before, after, calls)
		}
	}
}

// TestLicenseUnsubscribe: releaseLicenseCode with the UNSUBSCRIBE order,
// on a debug subscription (testFlag "1", MOCK orders).
func TestLicenseUnsubscribe(t *testing.T) {
	v := startLicense(t, nil)
	_, sub := v.purchase(PurchaseRequest{ProductID: LicenseProductID, Test: true})
	run, after := v.play(sub.ID, "unsubscribe")
	if !run.OK || after.Status != StatusReleased {
		t.Fatalf("run %+v, subscription %s", run, after.Status)
	}
	calls := v.seller.got()
	m := calls[len(calls)-1].body
	if m["activity"] != "releaseLicenseCode" || m["orderId"] != mockapi.MockMonthUnsubscribe || m["orderLineId"] != mockapi.MockMonthUnsubscribe+"-000001" || m["testFlag"] != "1" {
		t.Errorf("releaseLicenseCode %v, want the unsubscribe order and testFlag 1", m)
	}
	if msg, _ := v.e.Message(run.Messages[0]); !msg.Test {
		t.Errorf("message %+v not marked test", msg)
	}
	if _, err := v.e.Play(context.Background(), sub.ID, "renewal"); !errors.Is(err, ErrConflict) {
		t.Errorf("renewal of a released code: %v, want ErrConflict", err)
	}
}

// TestDebugLicenseRenewals: a debug (testFlag "1") license-code
// subscription renewed twice, renewed then frozen and unfrozen, or
// renewed, cut back and renewed again, against the test seller, which
// keys a renewal on its order line: every call succeeds at the first
// attempt, each refreshLicenseCode on a fresh order of its own (not the
// canned MOCK* one, whose second use with a later expireTime the seller
// would refuse as a conflict).
func TestDebugLicenseRenewals(t *testing.T) {
	for _, tt := range []struct {
		name      string
		scenarios []string
	}{
		{"renewal twice", []string{"renewal", "renewal"}},
		{"renewal, expire, unfreeze", []string{"renewal", "expire", "unfreeze"}},
		{"renewal, unsubscribe-renewal, renewal", []string{"renewal", "unsubscribe-renewal", "renewal"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			seller := testseller.NewWithKeys(testseller.Keys{Basic: testKey, License: testLicenseKey}, testseller.Faults{})
			v := start(t, seller, func(c *Config) { withLicenseKey(c); c.NoRetry = true })
			_, sub := v.purchase(PurchaseRequest{ProductID: LicenseProductID, Test: true})
			orders := map[string]bool{}
			for _, sc := range tt.scenarios {
				run, _ := v.play(sub.ID, sc)
				if !run.OK {
					t.Fatalf("%s: %s", sc, run.Err)
				}
				for _, id := range run.Messages {
					m, _ := v.e.Message(id)
					var b map[string]any
					if err := json.Unmarshal([]byte(m.Body), &b); err != nil || b["testFlag"] != "1" || !m.Test {
						t.Errorf("%s: %s sent %s, want testFlag 1", sc, m.Interface, m.Body)
					}
					if m.Interface != protocol.ActivityRefreshLicenseCode {
						continue
					}
					order, _ := b["orderId"].(string)
					if strings.HasPrefix(order, "MOCK") || orders[order] || b["orderLineId"] != order+"-000001" {
						t.Errorf("%s: refreshLicenseCode on order %q (line %v), want a fresh order of its own", sc, order, b["orderLineId"])
					}
					orders[order] = true
				}
			}
			if s, _ := v.e.Subscription(sub.ID); s.Status != StatusActive {
				t.Errorf("subscription %s at the end, want active", s.Status)
			}
		})
	}
}

// TestLicenseBodySignOptional: a license answer without a Body-Sign
// (UNCONFIRMED whether KooGallery wants one) breaks body-sign, unless
// BodySignOptional.
func TestLicenseBodySignOptional(t *testing.T) {
	for _, optional := range []bool{false, true} {
		seller := testseller.NewWithKeys(testseller.Keys{Basic: testKey, License: testLicenseKey}, testseller.Faults{NoBodySign: true})
		v := start(t, seller, func(c *Config) { withLicenseKey(c); c.NoRetry = true; c.BodySignOptional = optional })
		_, sub := v.purchase(PurchaseRequest{ProductID: LicenseProductID})
		run, _ := v.play(sub.ID, "renewal")
		m, _ := v.e.Message(run.Messages[0])
		if broken := m.Attempts[0].Has(RuleBodySign); broken == optional || run.OK != optional {
			t.Errorf("BodySignOptional %v: body-sign broken %v, run %+v", optional, broken, run)
		}
	}
}

// TestLicenseResultCodeSpec: a wrong resultCode cites where the
// family's codes are listed: license-openapi.md §A.5 for the license-code
// calls, §C.6 for getLicenseAsync, saas-v2.md §5 for the online-license
// instance calls (V2's).
func TestLicenseResultCodeSpec(t *testing.T) {
	for _, tt := range []struct {
		product, scenario, activity string
		want                        string
	}{
		{LicenseProductID, "renewal", protocol.ActivityRefreshLicenseCode, "license-openapi.md §A.5"},
		{LicenseProductID, "unsubscribe", protocol.ActivityReleaseLicenseCode, "license-openapi.md §A.5"},
		{OnlineLicenseProductID, scenarioRequestLicense, protocol.ActivityGetLicenseAsync, "license-openapi.md §C.6"},
		{OnlineLicenseProductID, "renewal", protocol.ActivityRefreshInstance, "saas-v2.md §5"},
	} {
		t.Run(tt.activity, func(t *testing.T) {
			v := startLicense(t, func(c *Config) { c.NoRetry = true })
			_, sub := v.purchase(PurchaseRequest{ProductID: tt.product})
			v.seller.mu.Lock()
			v.seller.code[tt.activity] = protocol.CodeInternal
			v.seller.mu.Unlock()
			run, _ := v.play(sub.ID, tt.scenario)
			m, _ := v.e.Message(run.Messages[0])
			var spec string
			for _, x := range m.Attempts[0].Violations {
				if x.Rule == RuleResultCode {
					spec = x.Spec
				}
			}
			if spec != tt.want || !strings.Contains(m.LastError, "("+tt.want+")") {
				t.Errorf("result-code spec %q, last error %q; want %s", spec, m.LastError, tt.want)
			}
		})
	}
}

// TestLicenseRetry: a license-code call that keeps failing is attempted
// 61 times, 2 minutes apart (the first and 60 retries, license-openapi.md
// §A.4), then fails; one that succeeds on a retry applies its change.
func TestLicenseRetry(t *testing.T) {
	v := startLicense(t, func(c *Config) { c.TimeScale = 3600 * 60 })
	_, sub := v.purchase(PurchaseRequest{ProductID: LicenseProductID})
	v.seller.mu.Lock()
	v.seller.fail[protocol.ActivityReleaseLicenseCode] = 1000
	v.seller.mu.Unlock()
	run, _ := v.play(sub.ID, "unsubscribe")
	if run.OK || len(run.Messages) != 1 {
		t.Fatalf("run %+v, want a failed first attempt", run)
	}
	id := run.Messages[0]
	waitFor(t, "the retries to end", func() bool {
		m, _ := v.e.Message(id)
		return m.Status == MessageFailed
	})
	m, _ := v.e.Message(id)
	if n := len(m.Attempts) + m.DroppedAttempts; n != 61 {
		t.Errorf("%d attempts, want 61", n)
	}
	first, last := m.Attempts[0].At, m.Attempts[len(m.Attempts)-1].At
	if d := last.Sub(first); d != 120*time.Minute {
		t.Errorf("attempts span %v, want 120m", d)
	}
	for i := 1; i < len(m.Attempts) && i < keepFirst; i++ {
		if d := m.Attempts[i].At.Sub(m.Attempts[i-1].At); d != 2*time.Minute {
			t.Errorf("attempt %d came %v after the one before, want 2m", i+1, d)
		}
	}
	if !m.Deadline.Equal(first.Add(120*time.Minute)) || m.Attempts[0].ResultCode != protocol.CodeInternal {
		t.Errorf("deadline %v (first %v), first code %s", m.Deadline, first, m.Attempts[0].ResultCode)
	}
	if s, _ := v.e.Subscription(sub.ID); s.Status != StatusActive {
		t.Errorf("subscription %s after a failed release, want active", s.Status)
	}

	// Two failures, then success on the second retry.
	_, sub2 := v.purchase(PurchaseRequest{ProductID: LicenseProductID})
	v.seller.mu.Lock()
	v.seller.fail[protocol.ActivityReleaseLicenseCode] = 2
	v.seller.mu.Unlock()
	run, _ = v.play(sub2.ID, "unsubscribe")
	waitFor(t, "the release to succeed on a retry", func() bool {
		s, _ := v.e.Subscription(sub2.ID)
		return s.Status == StatusReleased
	})
	if m, _ := v.e.Message(run.Messages[0]); len(m.Attempts) != 3 || m.Status != MessageSuccess {
		t.Errorf("message %s: %d attempts, %s; want 3, success", m.ID, len(m.Attempts), m.Status)
	}
	if p := v.e.policyFor(LicenseCode, protocol.ActivityRefreshLicenseCode); p != (RetryPolicy{2 * time.Minute, 2 * time.Hour}) {
		t.Errorf("refreshLicenseCode policy %+v", p)
	}
}

// TestLicenseKeysAndTargets: the license calls go to LicenseTarget (by
// default the origin of Target + /license) signed with the license key,
// and an answer's Body-Sign must be the license key's.
func TestLicenseKeysAndTargets(t *testing.T) {
	t.Run("basic key signature refused", func(t *testing.T) {
		// The seller expects the license key; the emulator has none, so it
		// signs with Key.
		seller := newLicenseSeller(t, testLicenseKey)
		v := start(t, seller, nil)
		_, sub := v.purchase(PurchaseRequest{ProductID: LicenseProductID})
		run, _ := v.play(sub.ID, "renewal")
		m, _ := v.e.Message(run.Messages[0])
		if run.OK || m.Attempts[0].ResultCode != protocol.CodeAuthFailed {
			t.Errorf("run %+v, attempt %+v: want 000001", run, m.Attempts[0])
		}
	})
	t.Run("body-sign with another key", func(t *testing.T) {
		seller := newLicenseSeller(t, testLicenseKey)
		seller.ver.Keys = []string{testLicenseKey}
		wrong := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rec := httptest.NewRecorder()
			seller.ServeHTTP(rec, r)
			for k, vs := range rec.Header() {
				w.Header()[k] = vs
			}
			w.Header().Set(sign.BodySignHeader, sign.BodySign(testKey, rec.Body.Bytes()))
			_, _ = w.Write(rec.Body.Bytes())
		})
		v := start(t, wrong, func(c *Config) { withLicenseKey(c); c.NoRetry = true })
		_, sub := v.purchase(PurchaseRequest{ProductID: LicenseProductID})
		run, _ := v.play(sub.ID, "renewal")
		m, _ := v.e.Message(run.Messages[0])
		if run.OK || !m.Attempts[0].Has(RuleBodySign) {
			t.Errorf("run %+v: want a body-sign violation, got %+v", run, m.Attempts[0].Violations)
		}
	})
	t.Run("license target", func(t *testing.T) {
		seller := newLicenseSeller(t, testLicenseKey)
		mux := http.NewServeMux()
		mux.Handle("/isv/lic", seller)
		v := start(t, mux, func(c *Config) {
			withLicenseKey(c)
			c.LicenseTarget = strings.TrimSuffix(c.Target, "/produce") + "/isv/lic?t=1"
		})
		_, sub := v.purchase(PurchaseRequest{ProductID: LicenseProductID})
		if run, _ := v.play(sub.ID, "renewal"); !run.OK {
			t.Fatalf("run %+v", run)
		}
		if calls := seller.got(); len(calls) != 1 || calls[0].path != "/isv/lic" {
			t.Errorf("calls %+v, want one at /isv/lic", calls)
		}
		if c := v.e.Config(); c.OnlineLicenseTarget != c.LicenseTarget {
			t.Errorf("OnlineLicenseTarget %q, want LicenseTarget %q", c.OnlineLicenseTarget, c.LicenseTarget)
		}
	})
}

var (
	eventRE       = regexp.MustCompile(`^EV[0-9A-F]{32}$`)
	licenseTimeRE = regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d z$`)
	fingerprintRE = regexp.MustCompile(`^([0-9A-F]{2}:){5}[0-9A-F]{2}\|[0-9A-F]{4}(_[0-9A-F]{4}){3}\.\|\|[0-9A-F]{16}$`)
)

// TestOnlineLicense: the online-license product's purchase is newInstance
// at the license target, signed with the license key; request-license
// sends getLicenseAsync and succeeds once the seller uploaded the license
// for its eventId; the lifecycle goes through the same family.
func TestOnlineLicense(t *testing.T) {
	v := startLicense(t, nil)
	v.seller.upload = func(ev string) {
		if code := v.api.uploadFile(ev, "LICENSE FOR "+ev); code != protocol.CBCSuccess {
			t.Errorf("upload for %s: %s", ev, code)
		}
	}
	run, sub := v.purchase(PurchaseRequest{ProductID: OnlineLicenseProductID})
	if !run.OK || sub.Status != StatusActive || sub.InstanceID == "" || sub.LicenseCode != "" {
		t.Fatalf("purchase %+v, subscription %+v", run, sub)
	}
	calls := v.seller.got()
	if len(calls) != 1 || calls[0].path != "/license" || calls[0].activity != "newInstance" {
		t.Fatalf("purchase calls %+v, want newInstance at /license", calls)
	}
	if m, _ := v.e.Message(run.Messages[0]); m.Family != "online-license" {
		t.Errorf("message family %s", m.Family)
	}

	run, after := v.play(sub.ID, scenarioRequestLicense)
	if !run.OK || len(run.Messages) != 1 || len(after.LicenseEvents) != 1 {
		t.Fatalf("request-license %+v, events %v", run, after.LicenseEvents)
	}
	ev := after.LicenseEvents[0]
	m := v.seller.got()[1].body
	if m["activity"] != "getLicenseAsync" || m["eventId"] != ev || !eventRE.MatchString(ev) || m["instanceId"] != sub.InstanceID || m["testFlag"] != nil {
		t.Errorf("getLicenseAsync %v", m)
	}
	eff, _ := m["effectiveTime"].(string)
	if !licenseTimeRE.MatchString(eff) {
		t.Errorf("effectiveTime %q, want the \"2023-10-27 10:30:15 z\" style", eff)
	}
	if got, err := protocol.ParseLicenseTime(eff); err != nil || got.Sub(v.e.Now()) > time.Second || v.e.Now().Sub(got) > time.Minute {
		t.Errorf("effectiveTime %q (%v, %v), want now %v", eff, got, err, v.e.Now())
	}
	if m["expireTime"] != protocol.FormatLicenseTime(sub.ExpireTime) {
		t.Errorf("expireTime %v, want %s", m["expireTime"], protocol.FormatLicenseTime(sub.ExpireTime))
	}
	if fp, _ := m["deviceFingerprint"].(string); !fingerprintRE.MatchString(fp) {
		t.Errorf("deviceFingerprint %q is not in the §D.3 format", fp)
	}
	ups := v.e.LicenseUploads()
	if len(ups) != 1 || !ups[0].Accepted || ups[0].EventID != ev || string(ups[0].Content) != "LICENSE FOR "+ev {
		t.Errorf("uploads %+v", ups)
	}
	if evs := v.e.LicenseEvents(); len(evs) != 1 || !evs[0].Uploaded || evs[0].InstanceID != sub.InstanceID {
		t.Errorf("events %+v", evs)
	}

	for _, tt := range []struct{ scenario, activity, status string }{
		{"renewal", "refreshInstance", StatusActive},
		{"expire", "updateInstanceStatus", StatusFrozen},
		{"unfreeze", "updateInstanceStatus", StatusActive},
		{"query", "queryInstance", StatusActive},
		{"unsubscribe", "releaseInstance", StatusReleased},
	} {
		run, after := v.play(sub.ID, tt.scenario)
		calls := v.seller.got()
		last := calls[len(calls)-1]
		if !run.OK || after.Status != tt.status || last.activity != tt.activity || last.path != "/license" {
			t.Errorf("%s: run %+v, status %s, last call %s %s", tt.scenario, run, after.Status, last.path, last.activity)
		}
	}
	if p := v.e.policyFor(OnlineLicense, protocol.ActivityNewInstance); p != (RetryPolicy{2 * time.Minute, 2 * time.Hour}) {
		t.Errorf("newInstance policy %+v, want every 2m for 2h", p)
	}
}

// TestRequestLicenseOutcomes: the upload arriving after a 000004, the
// upload never arriving within the window, a refused getLicenseAsync, a
// fingerprint given.
func TestRequestLicenseOutcomes(t *testing.T) {
	t.Run("000004 then an upload", func(t *testing.T) {
		v := startLicense(t, nil)
		_, sub := v.purchase(PurchaseRequest{ProductID: OnlineLicenseProductID, Test: true})
		v.seller.code[protocol.ActivityGetLicenseAsync] = protocol.CodeProcessing
		done := make(chan string, 1)
		go func() {
			deadline := time.Now().Add(10 * time.Second)
			for time.Now().Before(deadline) {
				if evs := v.e.LicenseEvents(); len(evs) == 1 {
					done <- v.api.uploadFile(evs[0].EventID, "async license")
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
			done <- "no event"
		}()
		run, after := v.play(sub.ID, scenarioRequestLicense)
		if code := <-done; code != protocol.CBCSuccess {
			t.Fatalf("upload: %s", code)
		}
		if !run.OK {
			t.Fatalf("run %+v", run)
		}
		m, _ := v.e.Message(run.Messages[0])
		if m.Attempts[0].ResultCode != protocol.CodeProcessing || !m.Test || body(t, m)["testFlag"] != "1" {
			t.Errorf("message %+v", m)
		}
		if len(after.LicenseEvents) != 1 {
			t.Errorf("events %v", after.LicenseEvents)
		}
	})
	t.Run("no upload", func(t *testing.T) {
		v := startLicense(t, func(c *Config) { c.TimeScale = 3600 * 100; c.LicenseUploadWindow = 30 * time.Minute })
		_, sub := v.purchase(PurchaseRequest{ProductID: OnlineLicenseProductID})
		start := v.e.Now()
		run, _ := v.play(sub.ID, scenarioRequestLicense)
		if run.OK || !strings.Contains(run.Err, "step 2 (await license upload): no license was uploaded for event EV") || !strings.Contains(run.Err, "30 min") {
			t.Fatalf("run %+v, want the wait to fail", run)
		}
		if d := v.e.Now().Sub(start); d < 30*time.Minute {
			t.Errorf("gave up after %v emulated, want 30m", d)
		}
		// The subscription is free again: a second request plays.
		v.seller.upload = func(ev string) { v.api.uploadFile(ev, "late") }
		if run, after := v.play(sub.ID, scenarioRequestLicense); !run.OK || len(after.LicenseEvents) != 2 {
			t.Errorf("second request %+v, events %v", run, after.LicenseEvents)
		}
	})
	t.Run("refused", func(t *testing.T) {
		v := startLicense(t, func(c *Config) { c.NoRetry = true })
		_, sub := v.purchase(PurchaseRequest{ProductID: OnlineLicenseProductID})
		v.seller.code[protocol.ActivityGetLicenseAsync] = protocol.CodeFingerprintRequired
		run, _ := v.play(sub.ID, scenarioRequestLicense)
		m, _ := v.e.Message(run.Messages[0])
		if run.OK || !strings.Contains(run.Err, "step 1 (getLicenseAsync)") || !m.Attempts[0].Has(RuleResultCode) {
			t.Errorf("run %+v, attempt %+v", run, m.Attempts[0])
		}
	})
	t.Run("fingerprint given", func(t *testing.T) {
		v := startLicense(t, nil)
		v.seller.upload = func(ev string) { v.api.uploadFile(ev, "fp") }
		_, sub := v.purchase(PurchaseRequest{ProductID: OnlineLicenseProductID})
		const fp = "04:7C:16:5E:E3:5D|001B_444A_488B_5CEC.||BFEBFBFF00090672"
		run, err := v.e.PlayWith(context.Background(), sub.ID, scenarioRequestLicense, PlayOptions{DeviceFingerprint: fp})
		if err != nil || !run.OK {
			t.Fatalf("run %+v, %v", run, err)
		}
		calls := v.seller.got()
		if got := calls[len(calls)-1].body["deviceFingerprint"]; got != fp {
			t.Errorf("deviceFingerprint %v, want %s", got, fp)
		}
	})
}

// TestGetLicenseDuplicates: getLicenseAsync delivered twice at once
// answered 000004 and 000000 is one outcome (the application taken, the
// license being generated or done), so the duplicates agree; taken and
// refused disagree. Which copy gets which code is up to the race; the
// check is on the set.
func TestGetLicenseDuplicates(t *testing.T) {
	for _, tt := range []struct {
		name   string
		codes  []protocol.ResultCode
		broken bool
	}{
		{"000004 then 000000", []protocol.ResultCode{protocol.CodeProcessing, protocol.CodeSuccess}, false},
		{"000000 then 000004", []protocol.ResultCode{protocol.CodeSuccess, protocol.CodeProcessing}, false},
		{"000000 twice", []protocol.ResultCode{protocol.CodeSuccess, protocol.CodeSuccess}, false},
		{"000004 then 000901", []protocol.ResultCode{protocol.CodeProcessing, protocol.CodeOutsideOrderValidity}, true},
		{"000000 then 000902", []protocol.ResultCode{protocol.CodeSuccess, protocol.CodeExpiryRequired}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v := startLicense(t, func(c *Config) { c.NoRetry = true })
			v.seller.upload = func(ev string) { v.api.uploadFile(ev, "LICENSE FOR "+ev) }
			_, sub := v.purchase(PurchaseRequest{ProductID: OnlineLicenseProductID})
			v.seller.mu.Lock()
			v.seller.seq[protocol.ActivityGetLicenseAsync] = tt.codes
			v.seller.mu.Unlock()
			v.e.SetFaults(Faults{Duplicates: 1})
			run, _ := v.play(sub.ID, scenarioRequestLicense)
			v.e.SetFaults(Faults{})
			m, _ := v.e.Message(run.Messages[0])
			if len(m.Attempts) != 2 {
				t.Fatalf("%d attempts, want the call and its duplicate", len(m.Attempts))
			}
			if got := m.Attempts[0].Has(RuleIdempotent); got != tt.broken || (!tt.broken && !run.OK) {
				t.Errorf("idempotent violation %v (want %v), run %+v", got, tt.broken, run)
			}
		})
	}
	for _, tt := range []struct {
		iface string
		code  protocol.ResultCode
		want  []protocol.ResultCode
	}{
		{protocol.ActivityGetLicenseAsync, protocol.CodeProcessing, []protocol.ResultCode{protocol.CodeSuccess, protocol.CodeProcessing}},
		{protocol.ActivityGetLicenseAsync, protocol.CodeInstanceNotFound, []protocol.ResultCode{protocol.CodeInstanceNotFound}},
		{protocol.ActivityNewInstance, protocol.CodeProcessing, []protocol.ResultCode{protocol.CodeProcessing}},
	} {
		if got := Equivalent(tt.iface, tt.code); !slices.Equal(got, tt.want) {
			t.Errorf("Equivalent(%s, %s) = %v, want %v", tt.iface, tt.code, got, tt.want)
		}
	}
}

// TestOnlineLicenseBasicKey: with OnlineLicenseKey KeyBasic the
// online-license calls are signed (and their Body-Sign checked) with the
// basic key, the license-code calls still with the license key.
func TestOnlineLicenseBasicKey(t *testing.T) {
	seller := newLicenseSeller(t, testKey)
	v := start(t, seller, func(c *Config) { withLicenseKey(c); c.OnlineLicenseKey = KeyBasic })
	if run, _ := v.purchase(PurchaseRequest{ProductID: OnlineLicenseProductID}); !run.OK {
		t.Errorf("online-license purchase with the basic key: %+v", run)
	}
	_, sub := v.purchase(PurchaseRequest{ProductID: LicenseProductID})
	run, _ := v.play(sub.ID, "renewal")
	if m, _ := v.e.Message(run.Messages[0]); run.OK || m.Attempts[0].ResultCode != protocol.CodeAuthFailed {
		t.Errorf("a license-code call verified with the basic key: run %+v", run)
	}
}

// TestLicenseRefusals: what the license products and scenarios refuse.
func TestLicenseRefusals(t *testing.T) {
	v := startLicense(t, nil)
	_, lic := v.purchase(PurchaseRequest{ProductID: LicenseProductID})
	_, online := v.purchase(PurchaseRequest{ProductID: OnlineLicenseProductID})
	ctx := context.Background()
	for _, tt := range []struct {
		name string
		err  error
		want string
	}{
		{"trial of a license product", func() error {
			_, err := v.e.Purchase(ctx, PurchaseRequest{ProductID: LicenseProductID, Scenario: "trial"})
			return err
		}(), "scenario trial is not played on license products"},
		{"order-notify of a license product", func() error {
			_, err := v.e.Purchase(ctx, PurchaseRequest{ProductID: OnlineLicenseProductID, Scenario: "order-notify"})
			return err
		}(), "not played on online-license products"},
		{"negative quantity", func() error {
			_, err := v.e.Purchase(ctx, PurchaseRequest{ProductID: LicenseProductID, Quantity: -1})
			return err
		}(), "quantity -1"},
		{"quantity too large", func() error {
			_, err := v.e.Purchase(ctx, PurchaseRequest{ProductID: LicenseProductID, Quantity: MaxQuantity + 1})
			return err
		}(), "quantity"},
		{"request-license on a license code", func() error {
			_, err := v.e.Play(ctx, lic.ID, scenarioRequestLicense)
			return err
		}(), "not for license products"},
		{"query on a license code", func() error {
			_, err := v.e.Play(ctx, lic.ID, "query")
			return err
		}(), "not for license products"},
		{"fingerprint on renewal", func() error {
			_, err := v.e.PlayWith(ctx, online.ID, "renewal", PlayOptions{DeviceFingerprint: "x"})
			return err
		}(), "deviceFingerprint is taken by request-license only"},
		{"fingerprint too long", func() error {
			_, err := v.e.PlayWith(ctx, online.ID, scenarioRequestLicense, PlayOptions{DeviceFingerprint: strings.Repeat("F", 1025)})
			return err
		}(), "at most 1024"},
		{"license product with a trial", v.e.AddProduct(Product{ID: "L1", SKU: "L1", ChargingMode: protocol.ChargingPeriod, PeriodType: "month", PeriodNumber: 1, TrialDays: 3, Protocol: ProtocolLicense}), "no trial"},
		{"pay-per-use license product", v.e.AddProduct(Product{ID: "L2", SKU: "L2", ChargingMode: protocol.ChargingOnDemand, Protocol: ProtocolOnlineLicense}), "PERIOD or ONE_TIME"},
	} {
		if tt.err == nil || !strings.Contains(tt.err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error with %q", tt.name, tt.err, tt.want)
		}
	}
	if n := len(v.seller.got()); n != 1 {
		t.Errorf("the seller got %d calls, want the one newInstance", n)
	}
}

// TestTestLicenseCodes: test codes (license-openapi.md §A.7) have no
// order and an editable validity; activating and querying them through
// the mocked Open API shows them activated (已激活) and checked (已检测).
func TestTestLicenseCodes(t *testing.T) {
	v := startLicense(t, nil)
	cs, err := v.e.CreateTestLicenses(TestLicenseRequest{Count: 2, Amount: 5})
	if err != nil || len(cs) != 2 {
		t.Fatalf("CreateTestLicenses: %v %+v", err, cs)
	}
	for _, c := range cs {
		if !c.Test || c.Amount != 5 || c.ProductID != LicenseProductID || c.Status != "ALIVE" || !licenseCodeRE.MatchString(c.Code) ||
			c.Expire.Sub(v.e.Now()) < DefaultTestLicenseValidity-time.Minute {
			t.Errorf("test code %+v", c)
		}
	}
	code := cs[0].Code
	body, _ := json.Marshal(protocol.LicenseActivateRequest{License: code})
	if _, got := v.api.post(mockapi.LicenseActivatePath, "application/json", body); got != protocol.LicenseSuccess {
		t.Fatalf("activate: %s", got)
	}
	if c, _ := v.e.License(code); !c.Activated || c.Checked {
		t.Errorf("after activation %+v", c)
	}
	body, _ = json.Marshal(protocol.LicenseQueryRequest{License: code})
	if _, got := v.api.post(mockapi.LicenseQueryPath, "application/json", body); got != protocol.LicenseSuccess {
		t.Fatalf("query: %s", got)
	}
	if c, _ := v.e.License(code); !c.Activated || !c.Checked || c.Queries != 1 {
		t.Errorf("after the query %+v", c)
	}
	past := v.e.Now().Add(-time.Hour)
	c, err := v.e.SetTestLicenseExpiry(code, past)
	if err != nil || !c.Expire.Equal(past.UTC().Truncate(time.Second)) || c.Status != "EXPIRED" {
		t.Errorf("SetTestLicenseExpiry: %+v, %v; want EXPIRED", c, err)
	}
	_, sub := v.purchase(PurchaseRequest{ProductID: LicenseProductID})
	if _, err := v.e.SetTestLicenseExpiry(sub.LicenseCode, past); !errors.Is(err, ErrConflict) {
		t.Errorf("a purchased code's expiry edited: %v", err)
	}
	if _, err := v.e.SetTestLicenseExpiry("PLNOPE", past); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown code: %v", err)
	}
	if _, err := v.e.CreateTestLicenses(TestLicenseRequest{Count: MaxTestLicenses + 1}); err == nil {
		t.Error("101 test codes created")
	}
	und, _ := v.e.CreateTestLicenses(TestLicenseRequest{Undelivered: true})
	body, _ = json.Marshal(protocol.LicenseActivateRequest{License: und[0].Code})
	if _, got := v.api.post(mockapi.LicenseActivatePath, "application/json", body); got != protocol.LicenseNotReceived {
		t.Errorf("activate an undelivered code: %s, want 92020004", got)
	}
}

// TestLicenseFaults: the faults reach the license Open API: its status
// and code for LicenseAPICount requests, and upload failures.
func TestLicenseFaults(t *testing.T) {
	v := startLicense(t, nil)
	cs, _ := v.e.CreateTestLicenses(TestLicenseRequest{})
	body, _ := json.Marshal(protocol.LicenseActivateRequest{License: cs[0].Code})
	v.e.SetFaults(Faults{LicenseAPIStatus: 200, LicenseAPICount: 1, UploadFailures: 2, UploadFailureCode: protocol.OnlineLicenseInnerError})
	if status, code := v.api.post(mockapi.LicenseActivatePath, "application/json", body); status != 200 || code != protocol.LicenseInternalError {
		t.Errorf("under the fault: %d %s, want 200 92020001", status, code)
	}
	if _, code := v.api.post(mockapi.LicenseActivatePath, "application/json", body); code != protocol.LicenseSuccess {
		t.Errorf("after the fault: %s", code)
	}
	if err := v.e.openapi.AddLicenseEvent(mockapi.LicenseEvent{EventID: "EV1"}); err != nil {
		t.Fatal(err)
	}
	// After two failures the third is accepted; the same license again is
	// an idempotent success, another one is refused.
	for i, up := range []struct{ content, want string }{
		{"lic", "91381036"}, {"lic", "91381036"}, {"lic", "CBC.0000"}, {"lic", "CBC.0000"}, {"other", mockapi.UploadDuplicateCode},
	} {
		if got := v.api.uploadFile("EV1", up.content); got != up.want {
			t.Errorf("upload %d: %s, want %s", i+1, got, up.want)
		}
	}
	var accepted int
	for _, u := range v.e.LicenseUploads() {
		if u.Accepted {
			accepted++
		}
	}
	if accepted != 1 {
		t.Errorf("%d uploads accepted, want 1", accepted)
	}
	v.e.SetFaults(Faults{LicenseAPIStatus: 503, LicenseAPICode: "APIGW.0201"})
	if status, code := v.api.post(mockapi.LicenseQueryPath, "application/json", body); status != 503 || code != "APIGW.0201" {
		t.Errorf("gateway fault: %d %s", status, code)
	}
	v.e.SetFaults(Faults{})
	if _, code := v.api.post(mockapi.LicenseQueryPath, "application/json", body); code != protocol.LicenseSuccess {
		t.Errorf("faults off: %s", code)
	}
}

// TestLicenseJSONAPI: the license endpoints of the JSON API.
func TestLicenseJSONAPI(t *testing.T) {
	w := startWeb(t)
	run := w.buy(PurchaseRequest{ProductID: LicenseProductID, Quantity: 2})
	if status, raw := w.do("POST", "/api/emulator/purchases", `{"productId":"`+LicenseProductID+`"}`); status != http.StatusCreated || !strings.Contains(string(raw), `"messages":[],"ok":true,"licenseCode":"PL`) {
		t.Errorf("a purchase without calls: %d %s, want messages []", status, raw)
	}
	var sub Subscription
	w.call("GET", "/api/emulator/subscriptions/"+run.SubscriptionID, nil, http.StatusOK, &sub)
	if !licenseCodeRE.MatchString(sub.LicenseCode) || sub.LinearValue != 2 {
		t.Fatalf("subscription %+v, want a license code", sub)
	}
	var c License
	w.call("GET", "/api/emulator/license-codes/"+sub.LicenseCode, nil, http.StatusOK, &c)
	if c.Code != sub.LicenseCode || c.Amount != 2 || c.Status != "ALIVE" || c.Activated {
		t.Errorf("license-codes/{code}: %+v", c)
	}
	var created []License
	w.call("POST", "/api/emulator/test-license-codes", map[string]any{"count": 2, "validity": "48h", "amount": 3}, http.StatusCreated, &created)
	if len(created) != 2 || !created[0].Test || created[0].Amount != 3 || created[0].Expire.Sub(w.e.Now()) > 48*time.Hour || created[0].Expire.Sub(w.e.Now()) < 47*time.Hour {
		t.Fatalf("created %+v", created)
	}
	at := time.Date(2031, 1, 2, 3, 4, 5, 0, time.UTC)
	var edited License
	w.call("PUT", "/api/emulator/test-license-codes/"+url.PathEscape(created[0].Code), map[string]any{"expireTime": at}, http.StatusOK, &edited)
	if !edited.Expire.Equal(at) {
		t.Errorf("edited %+v, want expiry %v", edited, at)
	}
	var tests, all []License
	w.call("GET", "/api/emulator/test-license-codes", nil, http.StatusOK, &tests)
	w.call("GET", "/api/emulator/license-codes", nil, http.StatusOK, &all)
	if len(tests) != 2 || len(all) != 4 {
		t.Errorf("%d test codes, %d codes; want 2 and 4", len(tests), len(all))
	}
	for _, path := range []string{"license-activations", "license-queries", "license-usage", "license-uploads", "license-events"} {
		if status, raw := w.do("GET", "/api/emulator/"+path, nil); status != http.StatusOK || strings.TrimSpace(string(raw)) != "[]" {
			t.Errorf("GET %s: %d %s, want []", path, status, raw)
		}
	}
	for _, tt := range []struct {
		name, method, path, body string
		status                   int
		want                     string
	}{
		{"validity and expireTime", "POST", "/api/emulator/test-license-codes", `{"validity":"1h","expireTime":"2030-01-01T00:00:00Z"}`, 400, "not both"},
		{"negative validity", "POST", "/api/emulator/test-license-codes", `{"validity":"-1h"}`, 400, "validity must be positive"},
		{"too many", "POST", "/api/emulator/test-license-codes", `{"count":101}`, 400, "count 101"},
		{"unknown field", "POST", "/api/emulator/test-license-codes", `{"codes":1}`, 400, "unknown field"},
		{"no validity", "PUT", "/api/emulator/test-license-codes/" + created[1].Code, `{}`, 400, "is required"},
		{"unknown code", "PUT", "/api/emulator/test-license-codes/PLNOPE", `{"validity":"1h"}`, 404, "not found"},
		{"purchased code", "PUT", "/api/emulator/test-license-codes/" + sub.LicenseCode, `{"validity":"1h"}`, 409, "not a test code"},
		{"unknown license", "GET", "/api/emulator/license-codes/PLNOPE", ``, 404, "no such license code"},
		{"quantity", "POST", "/api/emulator/purchases", `{"productId":"` + LicenseProductID + `","quantity":-2}`, 400, "quantity -2"},
		{"fingerprint on renewal", "POST", "/api/emulator/subscriptions/" + sub.ID + "/play", `{"scenario":"renewal","deviceFingerprint":"x"}`, 400, "deviceFingerprint is taken by request-license only"},
	} {
		status, raw := w.do(tt.method, tt.path, tt.body)
		if status != tt.status || !strings.Contains(string(raw), tt.want) {
			t.Errorf("%s: %d %s, want %d with %q", tt.name, status, raw, tt.status, tt.want)
		}
	}
	if c, _ := w.e.License(created[1].Code); !c.Expire.Equal(created[1].Expire) {
		t.Errorf("a refused PUT changed %+v", c)
	}
}

// TestLicenseWebPage: the dashboard shows a subscription's license code,
// /licenses the codes with their flags, the uploads, and forms for test
// codes and their validity.
func TestLicenseWebPage(t *testing.T) {
	w := startWeb(t)
	if status, loc := w.form("/purchase", url.Values{"product": {LicenseProductID}, "quantity": {"4"}}); status != http.StatusSeeOther || !strings.Contains(w.flash(loc), ", license code PL") {
		t.Fatalf("buy: %d %s (%q)", status, loc, w.flash(loc))
	}
	sub := w.e.Subscriptions()[0]
	if c, _ := w.e.License(sub.LicenseCode); c.Amount != 4 {
		t.Errorf("amount %d, want the quantity 4", c.Amount)
	}
	_, dash := w.page("/")
	if !strings.Contains(dash, `<td data-testid="sub-license"><a href="/licenses#license-`+sub.LicenseCode+`">`+sub.LicenseCode+`</a></td>`) {
		t.Errorf("the dashboard does not show the license code %s", sub.LicenseCode)
	}
	if strings.Contains(dash, `id="notify-`+LicenseProductID+`"`) || !strings.Contains(dash, `id="quantity-`+LicenseProductID+`"`) || !strings.Contains(dash, `id="notify-OFFI-EMU-PERIOD"`) {
		t.Error("the license product offers Notify order, or no quantity; or the V2 product no Notify order")
	}
	if status, loc := w.form("/test-license-codes", url.Values{"count": {"2"}, "validity": {"48h"}}); status != http.StatusSeeOther || !strings.Contains(w.flash(loc), "test license codes PL") {
		t.Fatalf("test codes: %d %s", status, loc)
	}
	var test License
	for _, c := range w.e.Licenses() {
		if c.Test {
			test = c
		}
	}
	if status, loc := w.form("/test-license-codes/"+test.Code, url.Values{"validity": {"240h"}}); status != http.StatusSeeOther || !strings.Contains(w.flash(loc), "valid until") {
		t.Fatalf("validity: %d %s", status, loc)
	}
	if c, _ := w.e.License(test.Code); c.Expire.Sub(w.e.Now()) < 239*time.Hour {
		t.Errorf("validity not edited: %+v", c)
	}
	if status, _ := w.formPage("/test-license-codes/"+sub.LicenseCode, url.Values{"validity": {"1h"}}); status != http.StatusConflict {
		t.Errorf("editing a purchased code: %d, want 409", status)
	}
	if status, page := w.formPage("/test-license-codes", url.Values{"validity": {"1 d 1 d"}}); status != http.StatusBadRequest || !strings.Contains(page, "validity: &#34;1 d 1 d&#34; is ambiguous") {
		t.Errorf("a bad validity: %d, want 400 saying why\n%s", status, page)
	}
	if err := w.e.openapi.AddLicenseEvent(mockapi.LicenseEvent{EventID: "EVWEB", InstanceID: "i1"}); err != nil {
		t.Fatal(err)
	}
	api := openAPI{t: t, url: w.srv.URL, ak: "web-ak", sk: "web-sk"}
	if code := api.uploadFile("EVWEB", "web license"); code != protocol.CBCSuccess {
		t.Fatalf("upload: %s", code)
	}
	status, page := w.page("/licenses")
	if status != http.StatusOK {
		t.Fatalf("/licenses: %d", status)
	}
	for _, want := range []string{
		`<tr id="license-` + sub.LicenseCode + `" data-license-code="` + sub.LicenseCode + `">`,
		`<td data-testid="license-amount">4</td>`,
		`<td data-testid="license-activated">no</td>`,
		`id="validity-` + test.Code + `"`,
		`<td data-testid="upload-event">EVWEB</td>`,
		`<td data-testid="upload-outcome">accepted</td>`,
		`<td data-testid="event-uploaded">yes, `,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("/licenses lacks %s", want)
		}
	}
	if strings.Contains(page, `id="validity-`+sub.LicenseCode+`"`) || strings.Contains(page, "web license") {
		t.Error("a purchased code offers a validity form, or the page shows the license content")
	}

	form := url.Values{"licenseApiStatus": {"503"}, "licenseApiCode": {"APIGW.0201"}, "licenseApiLatency": {"1s"}, "licenseApiCount": {"2"},
		"uploadFailures": {"3"}, "uploadFailureCode": {"CBC.0999"}}
	if status, _ := w.form("/faults", form); status != http.StatusSeeOther {
		t.Fatalf("faults form: %d", status)
	}
	want := Faults{LicenseAPIStatus: 503, LicenseAPICode: "APIGW.0201", LicenseAPILatency: time.Second, LicenseAPICount: 2, UploadFailures: 3, UploadFailureCode: "CBC.0999"}
	if got := w.e.Faults(); got != want {
		t.Errorf("faults %+v, want %+v", got, want)
	}
	if _, page := w.page("/faults"); !strings.Contains(page, `id="uploadFailures" value="3"`) || !strings.Contains(page, `id="licenseApiCode" value="APIGW.0201"`) {
		t.Error("the faults page does not show the license faults")
	}
}

// TestOnlineLicenseAsyncPurchase: an online-license newInstance answered
// 000004 is polled until queryInstance shows the instance, which needs no
// appInfo (the product has no front end); a SaaS V2 instance still does.
func TestOnlineLicenseAsyncPurchase(t *testing.T) {
	v := startLicense(t, nil)
	v.seller.code[protocol.ActivityNewInstance] = protocol.CodeProcessing
	v.seller.noAppInfo = true
	run, sub := v.purchase(PurchaseRequest{ProductID: OnlineLicenseProductID})
	if run.OK || !run.Pending {
		t.Fatalf("purchase answered 000004: run %+v; want pending", run)
	}
	if err := v.e.Advance(2 * DefaultPollInterval); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the instance polled active without appInfo", func() bool {
		s, _ := v.e.Subscription(sub.ID)
		return s.Status == StatusActive
	})
	if r, _ := v.e.Outcome(run.ID); !r.OK || r.Pending {
		t.Errorf("the purchase polled active: run %+v; want ok", r)
	}
	var polls int
	for _, c := range v.seller.got() {
		if c.activity == protocol.ActivityQueryInstance {
			polls++
		}
	}
	if polls == 0 {
		t.Fatal("the 000004 purchase was not polled")
	}
	for _, m := range v.e.Messages(MessageFilter{}) {
		if m.Interface == protocol.ActivityQueryInstance {
			for _, a := range m.Attempts {
				if len(a.Violations) > 0 {
					t.Errorf("a poll without appInfo broke %v", a.Violations)
				}
			}
		}
	}
}
