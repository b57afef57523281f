package onlinelicense_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/koobridge/koobridge/emulator/mockapi"
	"github.com/koobridge/koobridge/internal/grant"
	"github.com/koobridge/koobridge/internal/inbound"
	"github.com/koobridge/koobridge/internal/instance"
	"github.com/koobridge/koobridge/internal/jobs"
	"github.com/koobridge/koobridge/internal/onlinelicense"
	"github.com/koobridge/koobridge/internal/openapi"
	"github.com/koobridge/koobridge/internal/openapi/openapitest"
	"github.com/koobridge/koobridge/internal/seal"
	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/internal/store/dbtest"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
	"github.com/koobridge/koobridge/provision"
)

const (
	licenseKey = "license-key-0123456789"
	basicKey   = "basic-key-0123456789"
	testAK     = "AKONLINE0123456789"
	testSK     = "sk-online-secret-0123456789"
	// waitFor bounds every poll; generous for a loaded 2-core machine.
	waitFor     = 30 * time.Second
	fingerprint = "04:7C:16:5E:E3:5D|001B_444A_488B_5CEC.||BFEBFBFF00090672"
)

var dialects = dbtest.Dialects

// vendor is the vendor's product behind the demo provisioner: it counts
// the events by type.
type vendor struct {
	mu     sync.Mutex
	events []provision.Event
	// noLicense makes the generator refuse license.requested for good.
	noLicense bool
}

func (v *vendor) Provision(ctx context.Context, ev provision.Event) (provision.Result, error) {
	v.mu.Lock()
	v.events = append(v.events, ev)
	refuse := v.noLicense && ev.Type == provision.EventLicenseRequested
	v.mu.Unlock()
	if refuse {
		return provision.Result{}, provision.Permanent(errors.New("no license for this product today"))
	}
	return provision.NewDemo("").Provision(ctx, ev)
}

// setNoLicense switches the generator's refusal on or off.
func (v *vendor) setNoLicense(on bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.noLicense = on
}

func (v *vendor) of(typ provision.EventType) []provision.Event {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []provision.Event
	for _, ev := range v.events {
		if ev.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}

// options of an env.
type options struct {
	keys                inbound.KeyType
	fingerprintRequired bool
}

// env is the online-license family behind the real inbound pipeline on a
// real database, served over HTTP: the instance state machine and the
// grants on one job runner, Query Order and the license upload answered
// by the Open API imitation over HTTP.
type env struct {
	st       store.Store
	api      *openapitest.Server
	vendor   *vendor
	srv      *httptest.Server
	key      string // the key the calls are signed with
	grantSvc *grant.Service
}

// forEachDialect runs fn against a fresh env on each database.
func forEachDialect(t *testing.T, o options, fn func(t *testing.T, e *env)) {
	for _, d := range dialects {
		t.Run(d.Name, func(t *testing.T) { fn(t, newEnv(t, d.Open(t), o)) })
	}
}

var sealKey = func() []byte {
	k := make([]byte, seal.KeySize)
	for i := range k {
		k[i] = byte(3 * (i + 1))
	}
	return k
}()

func newEnv(t *testing.T, st store.Store, o options) *env {
	t.Helper()
	t.Cleanup(func() { st.Close() })
	quiet := slog.New(slog.DiscardHandler)
	api := openapitest.NewServer(t, testAK, testSK)
	client, err := openapi.New(openapi.Config{BaseURL: api.URL(), AK: testAK, SK: testSK})
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := seal.NewSealer(sealKey)
	if err != nil {
		t.Fatal(err)
	}
	v := &vendor{}
	runner := jobs.NewRunner(jobs.Config{Store: st, Workers: 3, Poll: 10 * time.Millisecond, Logger: quiet,
		Backoff: func(int) time.Duration { return 5 * time.Millisecond }})
	instances, err := instance.New(instance.Config{
		Store: st, Orders: client, Provisioner: v, Sealer: sealer, Budget: 5 * time.Second, Jobs: runner, Logger: quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	grants, err := grant.New(grant.Config{
		DeviceKey: testDeviceKey, Store: st, Provisioner: v, Uploader: client, Sealer: sealer, Jobs: runner, Budget: 5 * time.Second, Logger: quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := onlinelicense.New(onlinelicense.Config{
		Instances: instances, Grants: grants, Store: st, Keys: o.keys, FingerprintRequired: o.fingerprintRequired,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, js := range []map[string]jobs.HandlerFunc{instances.Jobs(), grants.Jobs()} {
		if err := runner.RegisterAll(js); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = runner.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; instances.Wait(); grants.Wait() })
	in, err := inbound.New(inbound.Config{
		Families: []*inbound.Family{svc.Family("/license")},
		Keys:     inbound.Keys{inbound.KeyLicense: {licenseKey}, inbound.KeyBasic: {basicKey}},
		Store:    st,
		Logger:   quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(in)
	t.Cleanup(srv.Close)
	key := licenseKey
	if o.keys == inbound.KeyBasic {
		key = basicKey
	}
	return &env{st: st, api: api, vendor: v, srv: srv, key: key, grantSvc: grants}
}

// reply is an answer as received.
type reply struct {
	status     int
	body       string
	code       string
	msg        string
	instanceID string
}

var nonceSeq atomic.Int64

// postAt sends body to /license signed in the URL with key at ts (Unix
// ms), as KooGallery does, and checks the reply's Body-Sign (always the
// family's key).
func (e *env) postAt(t *testing.T, key, ts, body string) reply {
	t.Helper()
	nonce := "nonce-" + strconv.FormatInt(nonceSeq.Add(1), 10) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	q := "signature=" + sign.V2Signature(key, nonce, ts, []byte(body)) + "&timestamp=" + ts + "&nonce=" + nonce
	resp, err := http.Post(e.srv.URL+"/license?"+q, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		protocol.Response
		InstanceID string `json:"instanceId"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("reply %q: %v", b, err)
	}
	if err := sign.VerifyBodySign(e.key, resp.Header.Get(sign.BodySignHeader), b); err != nil {
		t.Errorf("Body-Sign does not verify with the family's key: %v", err)
	}
	return reply{status: resp.StatusCode, body: string(b), code: string(r.ResultCode), msg: r.ResultMsg, instanceID: r.InstanceID}
}

// post sends body signed with key now.
func (e *env) post(t *testing.T, key, body string) reply {
	t.Helper()
	return e.postAt(t, key, strconv.FormatInt(time.Now().UnixMilli(), 10), body)
}

// call posts body signed with the family's key and wants code.
func (e *env) call(t *testing.T, body, code string) reply {
	t.Helper()
	r := e.post(t, e.key, body)
	if r.code != code || r.status != http.StatusOK {
		t.Fatalf("%s: answered %d %s %q, want %s", body, r.status, r.code, r.msg, code)
	}
	return r
}

// addOrder makes Query Order answer order with one line of charging.
func (e *env) addOrder(order, charging string) {
	e.api.AddOrder(protocol.OrderInfo{
		OrderID: protocol.FlexString(order), OrderType: protocol.OrderTypeNew, CreateTime: "20261201000000",
		OrderLine: []protocol.OrderLine{{
			OrderLineID: protocol.FlexString(order + "-1"), ChargingMode: protocol.FlexString(charging),
			ExpireTime: "20271231235959", PeriodType: "year", PeriodNumber: "1",
			ProductInfo: protocol.ProductInfoList{{ProductID: "OFFI-ONLINE-1", SKUCode: "sku-1", LinearValue: "3", ProductName: "CAD seats"}},
		}},
		BuyerInfo: &protocol.BuyerInfo{CustomerID: "cust-1", CustomerName: "ACME"},
	})
}

// buy makes an active online-license instance of a new order of
// charging and returns its id.
func (e *env) buy(t *testing.T, order, charging string) string {
	t.Helper()
	e.addOrder(order, charging)
	r := e.post(t, e.key, newInstance(order, ""))
	if (r.code != "000000" && r.code != "000004") || r.instanceID == "" {
		t.Fatalf("newInstance %s: %s %q", order, r.code, r.body)
	}
	eventually(t, "instance "+r.instanceID+" active", func() bool {
		inst, err := e.st.Instance(context.Background(), r.instanceID)
		return err == nil && inst.Status == store.StatusActive
	})
	return r.instanceID
}

// grants lists the online grants of instance id.
func (e *env) grants(t *testing.T, id string) []store.LicenseGrant {
	t.Helper()
	gs, err := e.st.LicenseGrants(context.Background(), store.LicenseGrantFilter{Kind: store.GrantOnline, InstanceID: id, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return gs
}

// uploaded waits until the grant of (event, fingerprint) is uploaded and
// returns it.
func (e *env) uploaded(t *testing.T, event, fp string) store.LicenseGrant {
	t.Helper()
	var g store.LicenseGrant
	eventually(t, "the license of "+event+" uploaded", func() bool {
		var err error
		g, err = e.st.LicenseGrant(context.Background(), store.GrantOnline, e.grantSvc.OnlineKey(event, fp))
		return err == nil && g.State == store.GrantUploaded
	})
	return g
}

// accepted lists the uploads the Open API accepted for event.
func (e *env) accepted(event string) []mockapi.LicenseUpload {
	var out []mockapi.LicenseUpload
	for _, u := range e.api.LicenseUploads() {
		if u.EventID == event && u.Accepted {
			out = append(out, u)
		}
	}
	return out
}

// apply registers event with the Open API imitation (KooGallery sent it)
// and returns the getLicenseAsync body; extra is appended as JSON members.
func (e *env) apply(t *testing.T, instanceID, event, extra string) string {
	t.Helper()
	if err := e.api.AddLicenseEvent(mockapi.LicenseEvent{EventID: event, InstanceID: instanceID}); err != nil {
		t.Fatal(err)
	}
	return getLicense(instanceID, event, extra)
}

// Bodies.
func newInstance(order, extra string) string {
	return `{"activity":"newInstance","businessId":"biz-` + order + `","orderId":"` + order + `","orderLineId":"` + order + `-1"` + extra + `}`
}

func getLicense(instanceID, event, extra string) string {
	return `{"activity":"getLicenseAsync","instanceId":"` + instanceID + `","eventId":"` + event +
		`","effectiveTime":"2026-12-06 10:30:15 z"` + extra + `}`
}

const (
	withExpiry = `,"expireTime":"2027-12-06 10:30:15 z"`
	withDevice = `,"deviceFingerprint":"` + fingerprint + `"`
)

// eventually polls cond until it holds or waitFor passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// testDeviceKey keys the device hashes in these tests.
var testDeviceKey = []byte("koobridge test device key, 32 bytes or more")
