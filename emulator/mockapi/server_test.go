package mockapi_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/koobridge/koobridge/emulator/mockapi"
	"github.com/koobridge/koobridge/internal/openapi/openapitest"
	"github.com/koobridge/koobridge/protocol/sign"
)

func TestServerRejectsAndRoutes(t *testing.T) {
	const ak, sk = "AK1", "SK1"
	srv := openapitest.NewServer(t, ak, sk)
	tests := []struct {
		name     string
		method   string
		path     string
		signWith string // "" = unsigned
		status   int
		body     string
	}{
		{name: "unsigned", method: "GET", path: mockapi.QueryOrderPath + "?orderId=MOCKONDEMAND",
			status: 401, body: `{"error_code":"APIGW.0301","error_msg":"Incorrect IAM authentication information: Authorization format incorrect"}`},
		{name: "wrong SK", method: "GET", path: mockapi.QueryOrderPath + "?orderId=MOCKONDEMAND", signWith: "other",
			status: 401, body: `{"error_code":"APIGW.0301","error_msg":"Incorrect IAM authentication information: verify aksk signature fail"}`},
		{name: "POST", method: "POST", path: mockapi.QueryOrderPath + "?orderId=MOCKONDEMAND", signWith: sk, status: 404},
		{name: "unknown path", method: "GET", path: "/api/nothing", signWith: sk, status: 404},
		{name: "no orderId", method: "GET", path: mockapi.QueryOrderPath, signWith: sk,
			status: 400, body: `{"resultCode":"CBC.0101","resultMsg":"orderId is required"}`},
		{name: "unknown order", method: "GET", path: mockapi.QueryOrderPath + "?orderId=NOPE", signWith: sk,
			status: 400, body: `{"resultCode":"CBC.0101","resultMsg":"invalid orderId"}`},
		{name: "mock order", method: "GET", path: mockapi.QueryOrderPath + "?orderId=MOCKONDEMAND&orderLineId=MOCKONDEMAND-000001", signWith: sk, status: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, srv.URL()+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json;charset=UTF-8")
			if tt.signWith != "" {
				if err := (sign.APIGSigner{AK: ak, SK: tt.signWith}).Sign(req, nil, time.Now()); err != nil {
					t.Fatal(err)
				}
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status {
				t.Errorf("status %d, want %d (body %s)", resp.StatusCode, tt.status, b)
			}
			if tt.body != "" && string(b) != tt.body {
				t.Errorf("body %s, want %s", b, tt.body)
			}
			if tt.status == 200 && !strings.Contains(string(b), `"resultCode":"MKT.0000"`) {
				t.Errorf("body %s has no success code", b)
			}
		})
	}
	if n := srv.QueryOrderCalls(); n != 6 {
		t.Errorf("QueryOrderCalls = %d, want 6", n)
	}
}

func TestMockOrderUnknown(t *testing.T) {
	if _, ok := mockapi.MockOrder("MOCKSOMETHINGELSE", time.Now()); ok {
		t.Error("MockOrder accepted an unknown ID")
	}
	for _, id := range mockapi.MockOrderIDs {
		info, ok := mockapi.MockOrder(id, time.Now())
		if !ok || string(info.OrderID) != id || len(info.OrderLine) != 1 || string(info.OrderLine[0].OrderLineID) != id+"-000001" {
			t.Errorf("MockOrder(%s) = %+v, %v", id, info, ok)
		}
	}
}
