package openapi_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/koobridge/koobridge/emulator/mockapi"
	"github.com/koobridge/koobridge/internal/openapi"
	"github.com/koobridge/koobridge/internal/openapi/openapitest"
	"github.com/koobridge/koobridge/protocol"
)

const (
	testAK = "TESTAK0123456789"
	testSK = "test-secret-key-do-not-log-0123456789"
)

func newClient(t *testing.T, cfg openapi.Config) *openapi.Client {
	t.Helper()
	if cfg.AK == "" {
		cfg.AK = testAK
	}
	if cfg.SK == "" {
		cfg.SK = testSK
	}
	c, err := openapi.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func sampleOrder(id string) protocol.OrderInfo {
	return protocol.OrderInfo{
		OrderID:    protocol.FlexString(id),
		OrderType:  protocol.OrderTypeNew,
		CreateTime: "20260101120000",
		OrderLine: []protocol.OrderLine{{
			OrderLineID:  protocol.FlexString(id + "-000001"),
			ChargingMode: protocol.ChargingPeriod,
			ExpireTime:   "20270101235959",
			PeriodType:   "month",
			PeriodNumber: "3",
			ProductInfo: protocol.ProductInfoList{{
				ProductID: "OFFI1", SKUCode: "sku-1", LinearValue: "10", ProductName: "商品",
			}},
		}},
		BuyerInfo: &protocol.BuyerInfo{CustomerID: "cust-1", CustomerName: "buyer"},
	}
}

// closedURL returns an http URL on 127.0.0.1 where nothing listens.
func closedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

func TestQueryOrderSuccess(t *testing.T) {
	srv := openapitest.NewServer(t, testAK, testSK)
	// A space and a plus in the ID check that both sides agree on the
	// canonical query.
	id := "CS2601 0101+X"
	srv.AddOrder(sampleOrder(id))
	c := newClient(t, openapi.Config{BaseURL: srv.URL()})

	info, err := c.QueryOrder(context.Background(), id, id+"-000001")
	if err != nil {
		t.Fatalf("QueryOrder: %v", err)
	}
	if string(info.OrderID) != id || string(info.OrderType) != "NEW" || string(info.CreateTime) != "20260101120000" {
		t.Errorf("order = %+v", info)
	}
	line, ok := info.Line(id + "-000001")
	if !ok {
		t.Fatalf("line missing in %+v", info.OrderLine)
	}
	if line.ChargingMode != "PERIOD" || line.ExpireTime != "20270101235959" || line.PeriodType != "month" || line.PeriodNumber != "3" {
		t.Errorf("line = %+v", line)
	}
	if len(line.ProductInfo) != 1 || line.ProductInfo[0].SKUCode != "sku-1" || line.ProductInfo[0].LinearValue != "10" || line.ProductInfo[0].ProductName != "商品" {
		t.Errorf("productInfo = %+v", line.ProductInfo)
	}
	if info.BuyerInfo == nil || info.BuyerInfo.CustomerID != "cust-1" {
		t.Errorf("buyerInfo = %+v", info.BuyerInfo)
	}
	if n := srv.QueryOrderCalls(); n != 1 {
		t.Errorf("QueryOrderCalls = %d, want 1", n)
	}
}

func TestQueryOrderErrors(t *testing.T) {
	tests := []struct {
		name      string
		sk        string
		now       func() time.Time
		fault     mockapi.Fault
		orderID   string
		lineID    string
		retryable bool
		status    int
		code      string
	}{
		{name: "wrong SK", sk: "another-secret", orderID: mockapi.MockPeriodYearNew, status: 401, code: "APIGW.0301"},
		{name: "clock 20 minutes off", now: func() time.Time { return time.Now().Add(20 * time.Minute) }, orderID: mockapi.MockPeriodYearNew, status: 401, code: "APIGW.0301"},
		{name: "unknown order", orderID: "NOSUCHORDER", status: 400, code: "CBC.0101"},
		{name: "unknown order line", orderID: mockapi.MockPeriodYearNew, lineID: "OTHER-000001", status: 400, code: "CBC.0101"},
		{name: "HTTP 500", fault: mockapi.Fault{Status: 500}, orderID: mockapi.MockPeriodYearNew, retryable: true, status: 500, code: "CBC.0999"},
		{name: "HTTP 502 without JSON", fault: mockapi.Fault{Status: 502, Body: "<html>bad gateway</html>"}, orderID: "X", retryable: true, status: 502},
		{name: "throttled", fault: mockapi.Fault{Status: 429}, orderID: "X", retryable: true, status: 429, code: "APIG.0308"},
		{name: "internal error code in a 200", fault: mockapi.Fault{Status: 200, Body: `{"resultCode":"MKT.0999","resultMsg":"busy"}`}, orderID: "X", retryable: true, status: 200, code: "MKT.0999"},
		{name: "HTTP 403 not authorised", fault: mockapi.Fault{Status: 403, Body: `{"error_code":"APIGW.0302","error_msg":"no"}`}, orderID: "X", status: 403, code: "APIGW.0302"},
		{name: "success without orderInfo", fault: mockapi.Fault{Status: 200, Body: `{"resultCode":"MKT.0000","resultMsg":"Success"}`}, orderID: "X", retryable: true, status: 200, code: "MKT.0000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := openapitest.NewServer(t, testAK, testSK)
			srv.SetFault(tt.fault)
			c := newClient(t, openapi.Config{BaseURL: srv.URL(), SK: tt.sk, Now: tt.now})
			lineID := tt.lineID
			if lineID == "" {
				lineID = tt.orderID + "-000001"
			}
			info, err := c.QueryOrder(context.Background(), tt.orderID, lineID)
			if err == nil {
				t.Fatalf("QueryOrder = %+v, want an error", info)
			}
			if got := openapi.Retryable(err); got != tt.retryable {
				t.Errorf("Retryable(%v) = %v, want %v", err, got, tt.retryable)
			}
			var e *openapi.Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is not an *openapi.Error", err)
			}
			if e.HTTPStatus != tt.status || e.Code != tt.code {
				t.Errorf("Error = %+v, want status %d code %q", e, tt.status, tt.code)
			}
			for _, secret := range []string{testSK, "another-secret"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q contains the SK", err)
				}
			}
		})
	}
}

func TestQueryOrderTimeout(t *testing.T) {
	srv := openapitest.NewServer(t, testAK, testSK)
	srv.SetFault(mockapi.Fault{Delay: time.Minute})
	c := newClient(t, openapi.Config{BaseURL: srv.URL(), HTTPClient: &http.Client{Timeout: 200 * time.Millisecond}})
	_, err := c.QueryOrder(context.Background(), mockapi.MockPeriodYearNew, "")
	if !openapi.Retryable(err) {
		t.Fatalf("QueryOrder error = %v, want a retryable one", err)
	}
	var e *openapi.Error
	if errors.As(err, &e) {
		t.Errorf("a timeout is not an answer, got %+v", e)
	}
}

func TestQueryOrderContextDeadline(t *testing.T) {
	srv := openapitest.NewServer(t, testAK, testSK)
	srv.SetFault(mockapi.Fault{Delay: time.Minute})
	c := newClient(t, openapi.Config{BaseURL: srv.URL()})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := c.QueryOrder(ctx, mockapi.MockPeriodYearNew, "")
	if !openapi.Retryable(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("QueryOrder error = %v, want retryable and DeadlineExceeded", err)
	}
}

func TestQueryOrderDroppedConnection(t *testing.T) {
	srv := openapitest.NewServer(t, testAK, testSK)
	fallback := openapitest.NewServer(t, testAK, testSK)
	srv.SetFault(mockapi.Fault{Drop: true})
	c := newClient(t, openapi.Config{BaseURL: srv.URL(), FallbackURL: fallback.URL()})
	_, err := c.QueryOrder(context.Background(), mockapi.MockPeriodYearNew, "")
	if !openapi.Retryable(err) {
		t.Fatalf("QueryOrder error = %v, want a retryable one", err)
	}
	// The base host was reached, so the fallback is not for this failure.
	if n := fallback.QueryOrderCalls(); n != 0 {
		t.Errorf("fallback got %d calls, want 0", n)
	}
}

func TestQueryOrderFallback(t *testing.T) {
	fallback := openapitest.NewServer(t, testAK, testSK)
	c := newClient(t, openapi.Config{BaseURL: closedURL(t), FallbackURL: fallback.URL()})
	info, err := c.QueryOrder(context.Background(), mockapi.MockOneTimeNew, mockapi.MockOneTimeNew+"-000001")
	if err != nil {
		t.Fatalf("QueryOrder: %v", err)
	}
	if info.OrderID != mockapi.MockOneTimeNew {
		t.Errorf("orderId = %q", info.OrderID)
	}
	if n := fallback.QueryOrderCalls(); n != 1 {
		t.Errorf("fallback got %d calls, want 1", n)
	}
}

func TestQueryOrderFallbackOnTLSFailure(t *testing.T) {
	// A certificate nobody trusts: the default client refuses the handshake.
	untrusted := httptest.NewTLSServer(http.NotFoundHandler())
	t.Cleanup(untrusted.Close)
	fallback := openapitest.NewServer(t, testAK, testSK)
	c := newClient(t, openapi.Config{BaseURL: untrusted.URL, FallbackURL: fallback.URL()})
	if _, err := c.QueryOrder(context.Background(), mockapi.MockOnDemand, ""); err != nil {
		t.Fatalf("QueryOrder: %v", err)
	}
	if n := fallback.QueryOrderCalls(); n != 1 {
		t.Errorf("fallback got %d calls, want 1", n)
	}
}

func TestQueryOrderFallbackNotUsedForAnswers(t *testing.T) {
	base := openapitest.NewServer(t, testAK, testSK)
	fallback := openapitest.NewServer(t, testAK, testSK)
	base.SetFault(mockapi.Fault{Status: 503})
	c := newClient(t, openapi.Config{BaseURL: base.URL(), FallbackURL: fallback.URL()})
	if _, err := c.QueryOrder(context.Background(), mockapi.MockOnDemand, ""); !openapi.Retryable(err) {
		t.Fatalf("QueryOrder error = %v, want a retryable one", err)
	}
	if n := fallback.QueryOrderCalls(); n != 0 {
		t.Errorf("fallback got %d calls, want 0", n)
	}
}

func TestQueryOrderUnreachableWithoutFallback(t *testing.T) {
	c := newClient(t, openapi.Config{BaseURL: closedURL(t)})
	_, err := c.QueryOrder(context.Background(), mockapi.MockOnDemand, "")
	if !openapi.Retryable(err) {
		t.Fatalf("QueryOrder error = %v, want a retryable one", err)
	}
}

func TestQueryOrderBothUnreachable(t *testing.T) {
	c := newClient(t, openapi.Config{BaseURL: closedURL(t), FallbackURL: closedURL(t)})
	_, err := c.QueryOrder(context.Background(), mockapi.MockOnDemand, "")
	if !openapi.Retryable(err) {
		t.Fatalf("QueryOrder error = %v, want a retryable one", err)
	}
}

func TestQueryOrderFaultCount(t *testing.T) {
	srv := openapitest.NewServer(t, testAK, testSK)
	srv.SetFault(mockapi.Fault{Status: 500, Count: 2})
	c := newClient(t, openapi.Config{BaseURL: srv.URL()})
	for i := range 2 {
		if _, err := c.QueryOrder(context.Background(), mockapi.MockOnDemand, ""); !openapi.Retryable(err) {
			t.Fatalf("call %d: error = %v, want a retryable one", i+1, err)
		}
	}
	if _, err := c.QueryOrder(context.Background(), mockapi.MockOnDemand, ""); err != nil {
		t.Fatalf("call 3: %v", err)
	}
	if n := srv.QueryOrderCalls(); n != 3 {
		t.Errorf("QueryOrderCalls = %d, want 3", n)
	}
}

func TestQueryOrderMockOrders(t *testing.T) {
	srv := openapitest.NewServer(t, testAK, testSK)
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	srv.SetClock(func() time.Time { return now })
	c := newClient(t, openapi.Config{BaseURL: srv.URL(), Now: func() time.Time { return now }})
	tests := []struct {
		id, orderType, charging, periodType, expire string
	}{
		{mockapi.MockPeriodYearNew, "NEW", "PERIOD", "year", "20271123235959"},
		{mockapi.MockOneTimeNew, "NEW", "ONE_TIME", "", ""},
		{mockapi.MockOnDemand, "NEW", "ON_DEMAND", "", ""},
		{mockapi.MockOnDemandPkg, "NEW", "ON_DEMAND_PKG", "", ""},
		{mockapi.MockPeriodDayTrial, "TRIAL", "PERIOD", "day", "20261130235959"},
		{mockapi.MockMonthTrialToFormal, "TRIAL_TO_FORMAL", "PERIOD", "month", "20271123235959"},
		{mockapi.MockMonthUnsubscribe, "UNSUBSCRIBE", "PERIOD", "month", "20271123235959"},
		{mockapi.MockMonthRenew, "RENEW", "PERIOD", "month", "20271123235959"},
		{mockapi.MockMonthChange, "CHANGE", "PERIOD", "month", "20271123235959"},
	}
	if len(tests) != len(mockapi.MockOrderIDs) {
		t.Fatalf("%d cases for %d mock orders", len(tests), len(mockapi.MockOrderIDs))
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			info, err := c.QueryOrder(context.Background(), tt.id, tt.id+"-000001")
			if err != nil {
				t.Fatalf("QueryOrder: %v", err)
			}
			line, ok := info.Line(tt.id + "-000001")
			if !ok {
				t.Fatalf("no line %s-000001 in %+v", tt.id, info.OrderLine)
			}
			if string(info.OrderType) != tt.orderType || string(line.ChargingMode) != tt.charging ||
				string(line.PeriodType) != tt.periodType || string(line.ExpireTime) != tt.expire {
				t.Errorf("got orderType %s chargingMode %s periodType %q expireTime %q",
					info.OrderType, line.ChargingMode, line.PeriodType, line.ExpireTime)
			}
			if len(line.ProductInfo) != 1 || line.ProductInfo[0].ProductID == "" || line.ProductInfo[0].SKUCode == "" {
				t.Errorf("productInfo = %+v", line.ProductInfo)
			}
			if info.BuyerInfo == nil || info.BuyerInfo.CustomerID == "" || string(info.CreateTime) != "20261123100000" {
				t.Errorf("buyerInfo %+v createTime %s", info.BuyerInfo, info.CreateTime)
			}
		})
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name    string
		cfg     openapi.Config
		wantErr bool
	}{
		{name: "defaults", cfg: openapi.Config{AK: "ak", SK: "s3cr3t-value"}},
		{name: "no SK", cfg: openapi.Config{AK: "ak"}, wantErr: true},
		{name: "no AK", cfg: openapi.Config{SK: "s3cr3t-value"}, wantErr: true},
		{name: "AK with a comma", cfg: openapi.Config{AK: "a,k", SK: "s3cr3t-value"}, wantErr: true},
		{name: "ftp base", cfg: openapi.Config{AK: "ak", SK: "s3cr3t-value", BaseURL: "ftp://example.com"}, wantErr: true},
		{name: "base without host", cfg: openapi.Config{AK: "ak", SK: "s3cr3t-value", BaseURL: "https://"}, wantErr: true},
		{name: "bad fallback", cfg: openapi.Config{AK: "ak", SK: "s3cr3t-value", FallbackURL: "::"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := openapi.New(tt.cfg)
			if (err != nil) != tt.wantErr {
				t.Fatalf("New error = %v, want error %v", err, tt.wantErr)
			}
			if err != nil && tt.cfg.SK != "" && strings.Contains(err.Error(), tt.cfg.SK) {
				t.Errorf("error %q contains the SK", err)
			}
		})
	}
}

func TestErrorText(t *testing.T) {
	e := &openapi.Error{HTTPStatus: 401, Code: "APIGW.0301", Message: "verify aksk signature fail"}
	if got, want := e.Error(), "openapi: HTTP 401: APIGW.0301: verify aksk signature fail"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if openapi.Retryable(nil) || openapi.Retryable(e) {
		t.Error("Retryable is true for nil or a final answer")
	}
}

// TestDefaultClientKeepsConnections checks that the default client keeps a
// connection for each of the calls it makes at once, instead of dialling
// (with TLS, a handshake) for most of them again on the next burst, as
// http.DefaultTransport's two idle connections per host would.
func TestDefaultClientKeepsConnections(t *testing.T) {
	const inFlight, bursts = 16, 3
	api := mockapi.NewHandler(testAK, testSK)
	api.AddOrder(sampleOrder("CS1"))
	var (
		mu      sync.Mutex
		waiting int
		release = make(chan struct{})
		dials   atomic.Int32
	)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Hold each burst's calls until all of them are in flight, so
		// that every one needs a connection of its own.
		mu.Lock()
		waiting++
		if waiting == inFlight {
			waiting = 0
			close(release)
			release = make(chan struct{})
			mu.Unlock()
		} else {
			ch := release
			mu.Unlock()
			<-ch
		}
		api.ServeHTTP(w, r)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			dials.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	c := newClient(t, openapi.Config{BaseURL: srv.URL})

	for range bursts {
		var wg sync.WaitGroup
		for range inFlight {
			wg.Go(func() {
				if _, err := c.QueryOrder(context.Background(), "CS1", "CS1-000001"); err != nil {
					t.Errorf("QueryOrder: %v", err)
				}
			})
		}
		wg.Wait()
	}
	if n := dials.Load(); n > inFlight {
		t.Errorf("%d bursts of %d calls at once opened %d connections, want at most %d", bursts, inFlight, n, inFlight)
	}
}
