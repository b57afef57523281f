package mockapi_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/koobridge/koobridge/emulator/mockapi"
	"github.com/koobridge/koobridge/internal/openapi/openapitest"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
)

const (
	testAK       = "AK-usage"
	testSK       = "SK-usage-secret"
	testUsageKey = "usage-key-0123456789"
	testNonce    = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
)

// testNow is the handler clock of the usage tests.
var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// newUsageServer returns a server on testNow with testUsageKey set.
func newUsageServer(t *testing.T) *openapitest.Server {
	t.Helper()
	srv := openapitest.NewServer(t, testAK, testSK)
	srv.SetClock(func() time.Time { return testNow })
	srv.SetUsageKey(testUsageKey)
	return srv
}

// call describes one request to the imitation.
type call struct {
	method, path string
	body         []byte
	headers      map[string]string // set as given (ts, nonce, signature...)
	apigSK       string            // sign with testAK and this SK; "" leaves it unsigned
	apigAt       time.Time         // X-Sdk-Date; zero means testNow
}

// reply is an answer of the imitation; Code and Msg hold error_code and
// error_msg, or resultCode and resultMsg.
type reply struct {
	Status int
	Code   string `json:"error_code"`
	Msg    string `json:"error_msg"`
	Result string `json:"resultCode"`
	RMsg   string `json:"resultMsg"`
	Raw    string
}

func (c call) do(t *testing.T, srv *openapitest.Server) reply {
	t.Helper()
	req, err := http.NewRequest(c.method, srv.URL()+c.path, bytes.NewReader(c.body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json;charset=UTF-8")
	for k, v := range c.headers {
		req.Header.Set(k, v)
	}
	if c.apigSK != "" {
		at := c.apigAt
		if at.IsZero() {
			at = testNow
		}
		if err := (sign.APIGSigner{AK: testAK, SK: c.apigSK}).Sign(req, c.body, at); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := reply{Status: resp.StatusCode, Raw: string(b)}
	_ = json.Unmarshal(b, &r) // non-JSON answers keep empty codes
	if r.Code == "" {
		r.Code, r.Msg = r.Result, r.RMsg
	}
	return r
}

// signedNew returns a new-push call signed with key at ts.
func signedNew(key string, ts time.Time, body []byte) call {
	return signedNewTS(key, strconv.FormatInt(ts.UnixMilli(), 10), body)
}

// signedNewTS returns a new-push call signed with key and the ts header
// tsText, whatever it says.
func signedNewTS(key, tsText string, body []byte) call {
	return call{method: http.MethodPost, path: mockapi.UsagePath, body: body, headers: map[string]string{
		"ts": tsText, "nonce": testNonce, "signature": sign.UsageSignature(key, tsText, testNonce, body),
	}}
}

// oldPush returns an old-push call signed with sk ("" unsigned).
func oldPush(sk string, body []byte) call {
	return call{method: http.MethodPost, path: mockapi.OldUsagePath, body: body, apigSK: sk}
}

// rec returns a valid new-push record of one hour starting at begin.
func rec(instance, sn string, begin time.Time) protocol.UsageRecord {
	return protocol.UsageRecord{
		BeginTime:  protocol.FormatUsageTime(begin),
		EndTime:    protocol.FormatUsageTime(begin.Add(time.Hour)),
		InstanceID: instance,
		MeteringSN: sn,
		RecordTime: protocol.FormatUsageTime(begin.Add(time.Hour + 5*time.Minute)),
		UsageValue: "1.5",
	}
}

// oldRec returns a valid old-push record of one hour starting at begin.
func oldRec(instance string, begin time.Time) protocol.OldUsageRecord {
	r := rec(instance, "", begin)
	return protocol.OldUsageRecord{BeginTime: r.BeginTime, EndTime: r.EndTime, InstanceID: instance,
		ProductID: "OFFI-1", RecordTime: r.RecordTime, UsageValue: r.UsageValue}
}

func newBody(t *testing.T, recs ...protocol.UsageRecord) []byte {
	t.Helper()
	return mustJSON(t, protocol.UsagePushRequest{UsageRecords: recs})
}

func oldBody(t *testing.T, recs ...protocol.OldUsageRecord) []byte {
	t.Helper()
	return mustJSON(t, protocol.OldUsagePushRequest{UsageRecords: recs})
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
