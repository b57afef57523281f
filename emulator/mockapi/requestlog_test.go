package mockapi_test

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/koobridge/koobridge/emulator/mockapi"
)

func TestPathScopedFault(t *testing.T) {
	srv := newUsageServer(t)
	srv.SetFault(mockapi.Fault{Status: http.StatusServiceUnavailable, Path: mockapi.UsagePath, Count: 2})
	query := call{method: http.MethodGet, path: mockapi.QueryOrderPath + "?orderId=MOCKONDEMAND", apigSK: testSK}
	push := func() call {
		return signedNew(testUsageKey, testNow, newBody(t, rec("inst-1", "sn-1", testNow.Add(-time.Hour))))
	}
	steps := []struct {
		call   call
		status int
		code   string
	}{
		{query, 200, "MKT.0000"}, // other path: untouched, not counted
		{query, 200, "MKT.0000"},
		{push(), 503, "MKT.0999"},
		{query, 200, "MKT.0000"},
		{push(), 503, "MKT.0999"},
		{push(), 200, "MKT.0000"}, // Count used up
	}
	for i, s := range steps {
		if got := s.call.do(t, srv); got.Status != s.status || got.Code != s.code {
			t.Errorf("step %d: answer %d %s, want %d %s", i, got.Status, got.Raw, s.status, s.code)
		}
	}

	// A dropped connection on one path leaves the others answering.
	srv.SetFault(mockapi.Fault{Drop: true, Path: mockapi.QueryOrderPath})
	if got := push().do(t, srv); got.Status != 200 {
		t.Errorf("push during a Query Order drop: %d %s", got.Status, got.Raw)
	}
	req, err := http.NewRequest(http.MethodGet, srv.URL()+mockapi.QueryOrderPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	// A fresh connection: the transport retries a GET that fails on a
	// reused one, which would log two drops.
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	if resp, err := fresh.Do(req); err == nil {
		resp.Body.Close()
		t.Errorf("Query Order answered %d during a drop", resp.StatusCode)
	}

	want := []string{"", "", "status", "", "status", "", "", "drop"}
	// The drop is logged once the connection is closed, which the client
	// may see first: wait for the entry rather than race it.
	for deadline := time.Now().Add(10 * time.Second); len(srv.Requests()) < len(want) && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	var faults []string
	for _, r := range srv.Requests() {
		faults = append(faults, r.Fault)
	}
	if fmt.Sprint(faults) != fmt.Sprint(want) {
		t.Errorf("logged faults %q, want %q", faults, want)
	}
}

func TestRequestLog(t *testing.T) {
	srv := newUsageServer(t)
	signedQuery := call{method: http.MethodGet, path: mockapi.QueryOrderPath + "?orderId=MOCKONDEMAND", apigSK: testSK}
	unsigned := call{method: http.MethodGet, path: mockapi.QueryOrderPath + "?orderId=MOCKONDEMAND"}
	push := signedNew(testUsageKey, testNow, newBody(t, rec("inst-1", "sn-1", testNow.Add(-time.Hour))))
	pushSig := push.headers["signature"]

	signedQuery.do(t, srv)
	unsigned.do(t, srv)
	push.do(t, srv)
	call{method: http.MethodGet, path: "/nothing", apigSK: testSK}.do(t, srv)
	srv.SetFault(mockapi.Fault{Delay: time.Millisecond, Count: 1})
	signedQuery.do(t, srv)
	srv.SetFault(mockapi.Fault{Status: 502, Body: "<html>bad gateway</html>", Count: 1})
	signedQuery.do(t, srv)

	want := []mockapi.Request{
		{At: testNow, Method: "GET", Path: mockapi.QueryOrderPath, Query: "orderId=MOCKONDEMAND", Status: 200, Code: "MKT.0000"},
		{At: testNow, Method: "GET", Path: mockapi.QueryOrderPath, Query: "orderId=MOCKONDEMAND", Status: 401, Code: "APIGW.0301"},
		{At: testNow, Method: "POST", Path: mockapi.UsagePath, Status: 200, Code: "MKT.0000"},
		{At: testNow, Method: "GET", Path: "/nothing", Status: 404, Code: "APIGW.0101"},
		{At: testNow, Method: "GET", Path: mockapi.QueryOrderPath, Query: "orderId=MOCKONDEMAND", Status: 200, Code: "MKT.0000", Fault: "delay"},
		{At: testNow, Method: "GET", Path: mockapi.QueryOrderPath, Query: "orderId=MOCKONDEMAND", Status: 502, Fault: "status"},
	}
	got := srv.Requests()
	if len(got) != len(want) {
		t.Fatalf("%d requests logged, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		g := got[i]
		g.Duration = 0 // real time, not asserted
		if g != want[i] {
			t.Errorf("request %d = %+v, want %+v", i, g, want[i])
		}
	}
	dump := fmt.Sprintf("%+v", got)
	for _, secret := range []string{testSK, testUsageKey, "SDK-HMAC-SHA256", pushSig} {
		if strings.Contains(dump, secret) {
			t.Errorf("request log holds %q", secret)
		}
	}
	if n := srv.QueryOrderCalls(); n != 4 {
		t.Errorf("QueryOrderCalls = %d, want 4", n)
	}
}

func TestRequestLogBound(t *testing.T) {
	srv := newUsageServer(t)
	const sent = mockapi.MaxRequests + 5
	for i := range sent {
		resp, err := http.Get(srv.URL() + "/bound?n=" + strconv.Itoa(i))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	got := srv.Requests()
	if len(got) != mockapi.MaxRequests {
		t.Fatalf("%d requests logged, want %d", len(got), mockapi.MaxRequests)
	}
	// Oldest first: the first 5 are forgotten.
	for i, r := range got {
		if want := "n=" + strconv.Itoa(i+5); r.Query != want {
			t.Fatalf("request %d has query %q, want %q", i, r.Query, want)
		}
	}
}
