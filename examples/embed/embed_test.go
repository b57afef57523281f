package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/koobridge/koobridge/emulator/mockapi"
	"github.com/koobridge/koobridge/isv"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
)

const (
	testKey = "embed-test-key-0123456789"
	testAK  = "embed-ak"
	testSK  = "embed-sk"
)

// seller is the embedding service under test, running for real on a
// loopback port, with KooGallery's Open API imitated over HTTP.
type seller struct {
	url     string
	openAPI *mockapi.Handler
	product *product
}

func startSeller(t *testing.T) *seller {
	t.Helper()
	openAPI := mockapi.NewHandler(testAK, testSK)
	apiSrv := httptest.NewServer(openAPI)
	t.Cleanup(apiSrv.Close)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := newProduct()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, ln, config{
			db:      filepath.Join(t.TempDir(), "embed.db"),
			key:     testKey,
			dataKey: bytes.Repeat([]byte{7}, isv.DataKeySize),
			openAPI: isv.OpenAPI{URL: apiSrv.URL, AK: testAK, SK: testSK},
		}, p)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	s := &seller{url: "http://" + ln.Addr().String(), openAPI: openAPI, product: p}
	s.waitUp(t)
	return s
}

// waitUp waits until the service answers (run opens the database first).
func (s *seller) waitUp(t *testing.T) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get(s.url + "/tenants/none")
		if err == nil {
			resp.Body.Close()
			return
		}
	}
	t.Fatal("the service did not come up")
}

// call signs body as KooGallery does and POSTs it to the production path.
func (s *seller) call(t *testing.T, body any) (protocol.ResultCode, map[string]any) {
	t.Helper()
	b, err := protocol.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	var nb [16]byte
	_, _ = rand.Read(nb[:])
	nonce := hex.EncodeToString(nb[:])
	ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
	u := s.url + isv.DefaultProducePath + "?signature=" + sign.V2Signature(testKey, nonce, ts, b) + "&timestamp=" + ts + "&nonce=" + nonce
	resp, err := http.Post(u, "application/json;charset=utf8", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	reply, _ := io.ReadAll(resp.Body)
	if err := sign.VerifyBodySign(testKey, resp.Header.Get(sign.BodySignHeader), reply); err != nil {
		t.Fatalf("Body-Sign of %s: %v", reply, err)
	}
	var m map[string]any
	if err := json.Unmarshal(reply, &m); err != nil {
		t.Fatalf("reply %s: %v", reply, err)
	}
	code, _ := m["resultCode"].(string)
	return protocol.ResultCode(code), m
}

// order registers an order for customer with the imitated Query Order.
func (s *seller) order(id, customer string) {
	s.openAPI.AddOrder(protocol.OrderInfo{
		OrderID: protocol.FlexString(id), OrderType: "NEW",
		CreateTime: protocol.FlexString(protocol.FormatTime14(time.Now().UTC())),
		OrderLine: []protocol.OrderLine{{
			OrderLineID: protocol.FlexString(id + "-000001"), ChargingMode: protocol.ChargingPeriod,
			PeriodType: "month", PeriodNumber: "1",
			ExpireTime:  protocol.FlexString(protocol.FormatTime14(time.Now().UTC().AddDate(0, 1, 0))),
			ProductInfo: protocol.ProductInfoList{{ProductID: "p-1", SKUCode: "sku-1", LinearValue: "1"}},
		}},
		BuyerInfo: &protocol.BuyerInfo{CustomerID: protocol.FlexString(customer), CustomerName: "Acme"},
	})
}

func newInstance(orderID string) protocol.NewInstanceRequest {
	return protocol.NewInstanceRequest{ActivityName: protocol.ActivityNewInstance, BusinessID: "b-" + orderID, OrderID: orderID, OrderLineID: orderID + "-000001"}
}

func TestPurchaseReachesTheProduct(t *testing.T) {
	s := startSeller(t)
	s.order("CS-EMBED-1", "customer-1")
	code, reply := s.call(t, newInstance("CS-EMBED-1"))
	if code != protocol.CodeSuccess && code != protocol.CodeProcessing {
		t.Fatalf("newInstance: %s %v", code, reply)
	}
	id, _ := reply["instanceId"].(string)
	if id == "" {
		t.Fatalf("newInstance gave no instanceId: %v", reply)
	}
	// KooGallery polls queryInstance until the app info is there.
	var front string
	for deadline := time.Now().Add(10 * time.Second); front == "" && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		code, reply := s.call(t, protocol.QueryInstanceRequest{ActivityName: protocol.ActivityQueryInstance, InstanceID: id})
		if code == protocol.CodeSuccess {
			info := reply["info"].([]any)[0].(map[string]any)
			front, _ = info["appInfo"].(map[string]any)["frontEndUrl"].(string)
		}
	}
	if want := "https://app.example.com/tenants/" + id; front != want {
		t.Fatalf("frontEndUrl %q, want %q", front, want)
	}
	// The product's own page beside the production interface.
	resp, err := http.Get(s.url + "/tenants/" + id)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := "tenant " + id + " is active\n"; string(page) != want {
		t.Errorf("tenant page %q, want %q", page, want)
	}

	// A freeze reaches the product through the job queue.
	if code, reply := s.call(t, protocol.UpdateInstanceStatusRequest{ActivityName: protocol.ActivityUpdateInstanceStatus, InstanceID: id, Status: protocol.StatusFreeze}); code != protocol.CodeSuccess {
		t.Fatalf("FREEZE: %s %v", code, reply)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if st, _ := s.product.status(id); st == "frozen" {
			break
		}
		if time.Now().After(deadline) {
			st, _ := s.product.status(id)
			t.Fatalf("tenant is %q after FREEZE, want frozen", st)
		}
	}
}

func TestRefusedPurchase(t *testing.T) {
	s := startSeller(t)
	s.order("CS-EMBED-2", "sold-out-customer")
	for i := range 2 { // the repeat gets the same refusal, without a new attempt
		code, reply := s.call(t, newInstance("CS-EMBED-2"))
		if code != protocol.CodeSoldOut || reply["resultMsg"] != "no seats left this month" {
			t.Fatalf("call %d: newInstance answered %s %v, want 000106 with the product's message", i+1, code, reply)
		}
	}
	s.product.mu.Lock()
	n := strings.Count(strings.Join(s.product.events, " "), "instance.created")
	s.product.mu.Unlock()
	if n != 1 {
		t.Errorf("the product was asked %d times to create the refused instance, want once", n)
	}
}
