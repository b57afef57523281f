package testseller

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
)

const (
	testKey        = "TestAccessKey-0123456789abcdef"
	testGeneralKey = "TestGeneralKey-fedcba9876543210"
	testKitKey     = "TestKitKey-00112233445566778899"
)

// keyFor is the key a call with body is signed with, and its answer's
// Body-Sign made with, as KooGallery binds them: the general key for
// orderNotify, the basic key for everything else.
func keyFor(body []byte) string {
	if peekActivity(body) == "orderNotify" {
		return testGeneralKey
	}
	return testKey
}

// reply is one answer as received.
type reply struct {
	status     int
	header     http.Header
	raw        []byte
	code       protocol.ResultCode
	msg        string
	instanceID string
	info       []protocol.InstanceInfo
	key        string // the key the reply's Body-Sign must be made with
}

// env is one seller running behind real HTTP.
type env struct {
	t   *testing.T
	s   *Seller
	srv *httptest.Server
}

func start(t *testing.T, f Faults) env {
	t.Helper()
	s := NewWithKeys(Keys{Basic: testKey, General: testGeneralKey, Kit: testKitKey, License: testLicenseKey}, f)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return env{t: t, s: s, srv: srv}
}

// signedURL is the production URL with the V2 query parameters for body.
func signedURL(base, key, nonce, timestamp string, body []byte) string {
	q := url.Values{}
	q.Set("signature", sign.V2Signature(key, nonce, timestamp, body))
	q.Set("timestamp", timestamp)
	q.Set("nonce", nonce)
	return base + "?" + q.Encode()
}

func nowMillis() string { return millis(time.Now()) }

// send makes one request and decodes the JSON answer; anything but a JSON
// object with resultCode is fatal.
func (e env) send(method, u string, body []byte) reply {
	e.t.Helper()
	return e.sendWith(method, u, body, nil, keyFor(body))
}

// sendWith is send with extra request headers and the key the answer's
// Body-Sign must be made with.
func (e env) sendWith(method, u string, body []byte, header http.Header, key string) reply {
	e.t.Helper()
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		e.t.Fatalf("new request: %v", err)
	}
	req.Header.Set("Content-Type", "application/json;charset=utf8")
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("read reply: %v", err)
	}
	var v struct {
		ResultCode protocol.ResultCode     `json:"resultCode"`
		ResultMsg  string                  `json:"resultMsg"`
		InstanceID string                  `json:"instanceId"`
		Info       []protocol.InstanceInfo `json:"info"`
	}
	if err := json.Unmarshal(raw, &v); err != nil || v.ResultCode == "" {
		e.t.Fatalf("reply %q is not a JSON answer with resultCode (err %v)", raw, err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, raw: raw,
		code: v.ResultCode, msg: v.ResultMsg, instanceID: v.InstanceID, info: v.Info, key: key}
}

// postRaw sends body signed now with a fresh nonce, with the key of its
// activity's interface type.
func (e env) postRaw(body []byte) reply {
	e.t.Helper()
	return e.postWith(keyFor(body), body)
}

// postWith sends body signed now with a fresh nonce and key.
func (e env) postWith(key string, body []byte) reply {
	e.t.Helper()
	return e.send(http.MethodPost, signedURL(e.srv.URL, key, rand.Text(), nowMillis(), body), body)
}

// call sends fields as a signed JSON body.
func (e env) call(fields map[string]any) reply {
	e.t.Helper()
	body, err := json.Marshal(fields)
	if err != nil {
		e.t.Fatalf("marshal: %v", err)
	}
	return e.postRaw(body)
}

// create makes an instance for orderID's first line and returns its ID.
func (e env) create(orderID string) string {
	e.t.Helper()
	r := e.call(newInstance(orderID, orderID+"-000001"))
	if r.code != protocol.CodeSuccess && r.code != protocol.CodeProcessing || r.instanceID == "" {
		e.t.Fatalf("newInstance %s: %s %q, instanceId %q", orderID, r.code, r.msg, r.instanceID)
	}
	return r.instanceID
}

// wireProblem says what is wrong with the form of a correct seller's
// reply, or "" when nothing is.
func wireProblem(r reply) string {
	switch {
	case r.status != http.StatusOK:
		return "HTTP status " + strconv.Itoa(r.status)
	case r.header.Get("Content-Type") != "application/json;charset=UTF-8":
		return "Content-Type " + r.header.Get("Content-Type")
	}
	if err := sign.VerifyBodySign(r.key, r.header.Get(sign.BodySignHeader), r.raw); err != nil {
		return "Body-Sign: " + err.Error()
	}
	for _, c := range r.raw {
		if c >= 0x80 {
			return "non-ASCII byte in the body"
		}
	}
	return ""
}

func checkWire(t *testing.T, r reply) {
	t.Helper()
	if p := wireProblem(r); p != "" {
		t.Errorf("reply %s: %s", r.raw, p)
	}
}

func newInstance(orderID, lineID string) map[string]any {
	return map[string]any{"activity": "newInstance", "orderId": orderID, "orderLineId": lineID,
		"businessId": rand.Text(), "testFlag": "1"}
}

func orderNotify(orderID, lineID, testFlag string) map[string]any {
	m := map[string]any{"activity": "orderNotify", "orderId": orderID, "orderLineId": lineID, "testFlag": testFlag}
	if testFlag == "" {
		delete(m, "testFlag")
	}
	return m
}

// marshal encodes a call's fields.
func marshal(t *testing.T, fields map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(fields)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return b
}

func queryInstance(ids string) map[string]any {
	return map[string]any{"activity": "queryInstance", "instanceId": ids}
}

func refreshInstance(id, scene, expire string) map[string]any {
	return map[string]any{"activity": "refreshInstance", "instanceId": id, "scene": scene,
		"orderId": "CSRENEW", "orderLineId": "CSRENEW-000001", "expireTime": expire}
}

func updateStatus(id, status string) map[string]any {
	return map[string]any{"activity": "updateInstanceStatus", "instanceId": id, "status": status}
}

func releaseInstance(id string) map[string]any {
	return map[string]any{"activity": "releaseInstance", "instanceId": id}
}

func upgradeInstance(id string) map[string]any {
	return map[string]any{"activity": "upgradeInstance", "instanceId": id, "orderId": "CSUPG", "orderLineId": "CSUPG-000001"}
}

func changeCheck(id string) map[string]any {
	return map[string]any{"activity": "changeInstanceCheck", "instanceId": id,
		"productInfo": map[string]any{"productId": "P1", "skuCode": "SKU1", "linearValue": 2}}
}

// snapshot returns a copy of an instance's state.
func (s *Seller) snapshot(t *testing.T, id string) instance {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	in, ok := s.instances[id]
	if !ok {
		t.Fatalf("instance %s does not exist", id)
	}
	return *in
}
