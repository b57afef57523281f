package isv_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/koobridge/koobridge/isv"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
	"github.com/koobridge/koobridge/provision"
	"github.com/koobridge/koobridge/store"
)

// product is the vendor's own product, reached through a Go Provisioner.
type product struct {
	mu      sync.Mutex
	tenants map[string]string // instance id → customer
}

func (p *product) Provision(_ context.Context, ev provision.Event) (provision.Result, error) {
	if ev.Type != provision.EventCreated {
		return provision.Result{}, nil
	}
	p.mu.Lock()
	p.tenants[ev.Instance.ID] = ev.Instance.CustomerID
	p.mu.Unlock()
	return provision.Result{AppInfo: &provision.AppInfo{FrontEndURL: "https://app.example.com/t/" + ev.Instance.ID}}, nil
}

// orders stands in for KooGallery's Query Order (leave Config.Orders nil
// and set Config.OpenAPI's AK and SK to call the real one).
type orders struct{}

func (orders) QueryOrder(_ context.Context, orderID, lineID string) (*protocol.OrderInfo, error) {
	return &protocol.OrderInfo{
		OrderID: protocol.FlexString(orderID), OrderType: "NEW",
		OrderLine: []protocol.OrderLine{{OrderLineID: protocol.FlexString(lineID), ChargingMode: protocol.ChargingPeriod,
			ProductInfo: protocol.ProductInfoList{{ProductID: "prod-1", SKUCode: "sku-1"}}}},
		BuyerInfo: &protocol.BuyerInfo{CustomerID: "customer-42"},
	}, nil
}

// Example mounts the production interface in a vendor's own HTTP server,
// with the vendor's product as a Go Provisioner, and plays one purchase as
// KooGallery would.
func Example() {
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	dir, err := os.MkdirTemp("", "koobridge-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	db, err := store.Open(ctx, filepath.Join(dir, "koobridge.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	p := &product{tenants: map[string]string{}}
	const key = "the-key-bound-to-the-basic-interfaces"
	srv, err := isv.New(isv.Config{
		Keys:            isv.Keys{Basic: []string{key}},
		DB:              db,
		DataKey:         bytes.Repeat([]byte{1}, isv.DataKeySize), // from a secret store in real life
		Orders:          orders{},
		Provisioner:     p,
		TestProvisioner: p,
		Logger:          slog.New(slog.DiscardHandler),
	})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	for _, path := range srv.Paths() {
		mux.Handle(path, srv.Handler())
	}
	web := httptest.NewServer(mux)
	defer web.Close()
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() { stop(); <-done }()

	// KooGallery's call: a newInstance signed with the basic key.
	body := `{"activity":"newInstance","businessId":"b-1","orderId":"CS-EXAMPLE","orderLineId":"CS-EXAMPLE-000001"}`
	ts, nonce := strconv.FormatInt(time.Now().UnixMilli(), 10), "example-nonce-1"
	url := web.URL + "/produce?signature=" + sign.V2Signature(key, nonce, ts, []byte(body)) + "&timestamp=" + ts + "&nonce=" + nonce
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	var answer protocol.NewInstanceResponse
	if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil {
		log.Fatal(err)
	}
	p.mu.Lock()
	customer := p.tenants[answer.InstanceID]
	p.mu.Unlock()
	fmt.Println("resultCode:", answer.ResultCode)
	fmt.Println("tenant created for:", customer)
	// Output:
	// resultCode: 000000
	// tenant created for: customer-42
}

// ExampleServer_LicenseHandler serves a license product: KooGallery's
// license-code calls at the license path, and the license service for the
// vendor's software in the field beside them, whose tokens verify with the
// published Ed25519 keys.
func ExampleServer_LicenseHandler() {
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	dir, err := os.MkdirTemp("", "koobridge-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	db, err := store.Open(ctx, filepath.Join(dir, "koobridge.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	const key, licenseKey = "the-key-bound-to-the-basic-interfaces", "the-key-bound-to-the-license-interfaces"
	srv, err := isv.New(isv.Config{
		Keys:    isv.Keys{Basic: []string{key}, License: []string{licenseKey}},
		DB:      db,
		DataKey: bytes.Repeat([]byte{1}, isv.DataKeySize), // from a secret store in real life
		// The license service asks KooGallery's Open API with these.
		OpenAPI:     isv.OpenAPI{AK: "the-access-key-id", SK: "the-secret-access-key"},
		Provisioner: provision.NewDemo(""),
		Logger:      slog.New(slog.DiscardHandler),
	})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	for _, path := range srv.Paths() {
		mux.Handle(path, srv.Handler())
	}
	mux.Handle(isv.LicensePathPrefix, srv.LicenseHandler())
	web := httptest.NewServer(mux)
	defer web.Close()
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() { stop(); <-done }()

	// KooGallery freezes a code: signed with the License key, at /license.
	body := `{"activity":"updateLicenseCodeStatus","license":"PL-EXAMPLE-1","status":"FREEZE"}`
	ts, nonce := strconv.FormatInt(time.Now().UnixMilli(), 10), "example-nonce-2"
	url := web.URL + isv.DefaultLicensePath + "?signature=" + sign.V2Signature(licenseKey, nonce, ts, []byte(body)) + "&timestamp=" + ts + "&nonce=" + nonce
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		log.Fatal(err)
	}
	var answer protocol.Response
	err = json.NewDecoder(resp.Body).Decode(&answer)
	resp.Body.Close()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("freeze:", answer.ResultCode)

	// The keys the vendor's software verifies license tokens with.
	resp, err = http.Get(web.URL + isv.LicensePathPrefix + "keys")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	var set struct {
		Keys []struct{ Kty, Crv, Alg string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		log.Fatal(err)
	}
	for _, k := range set.Keys {
		fmt.Println("token key:", k.Kty, k.Crv, k.Alg)
	}
	// Output:
	// freeze: 000000
	// token key: OKP Ed25519 EdDSA
}

// payPerUseOrders stands in for Query Order with pay-per-use orders.
type payPerUseOrders struct{}

func (payPerUseOrders) QueryOrder(_ context.Context, orderID, lineID string) (*protocol.OrderInfo, error) {
	return &protocol.OrderInfo{
		OrderID: protocol.FlexString(orderID), OrderType: "NEW",
		OrderLine: []protocol.OrderLine{{OrderLineID: protocol.FlexString(lineID), ChargingMode: protocol.ChargingOnDemand,
			ProductInfo: protocol.ProductInfoList{{ProductID: "prod-api-calls", SKUCode: "sku-per-call"}}}},
		BuyerInfo: &protocol.BuyerInfo{CustomerID: "customer-42"},
	}, nil
}

// ExampleServer_ReportUsage reports the usage of a pay-per-use instance
// from the vendor's Go code: koobridge stores each record before it
// answers, sums it in its hourly billing period and pushes the period to
// KooGallery once it has closed. Sending a batch again (after a timeout,
// a crash) is safe: the idempotency keys make the records answered before
// duplicates.
func ExampleServer_ReportUsage() {
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	dir, err := os.MkdirTemp("", "koobridge-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	db, err := store.Open(ctx, filepath.Join(dir, "koobridge.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	const key = "the-key-bound-to-the-basic-interfaces"
	srv, err := isv.New(isv.Config{
		Keys:        isv.Keys{Basic: []string{key}},
		DB:          db,
		DataKey:     bytes.Repeat([]byte{1}, isv.DataKeySize), // from a secret store in real life
		Orders:      payPerUseOrders{},
		Provisioner: provision.NewDemo(""),
		// The same records over HTTP: POST isv.UsagePath with this
		// bearer token (mount srv.UsageHandler() there).
		Usage:  isv.UsageConfig{Tokens: []string{"the-usage-api-token-0123456789abcdef"}},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		log.Fatal(err)
	}
	web := httptest.NewServer(srv.Handler())
	defer web.Close()
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() { stop(); <-done }()

	// KooGallery sells the pay-per-use product: newInstance.
	body := `{"activity":"newInstance","businessId":"b-2","orderId":"CS-PAYG","orderLineId":"CS-PAYG-000001"}`
	ts, nonce := strconv.FormatInt(time.Now().UnixMilli(), 10), "example-nonce-3"
	url := web.URL + "/produce?signature=" + sign.V2Signature(key, nonce, ts, []byte(body)) + "&timestamp=" + ts + "&nonce=" + nonce
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		log.Fatal(err)
	}
	var answer protocol.NewInstanceResponse
	err = json.NewDecoder(resp.Body).Decode(&answer)
	resp.Body.Close()
	if err != nil {
		log.Fatal(err)
	}

	// The vendor's product meters the instance. Each record's key is the
	// ID of the measurement in the vendor's own data, so that a record
	// sent twice carries the same key.
	now := time.Now()
	batch := []isv.UsageRecord{
		{IdempotencyKey: "meter-7/evt-0001", InstanceID: answer.InstanceID, Value: "1.5", Time: now},
		{IdempotencyKey: "meter-7/evt-0002", InstanceID: answer.InstanceID, Value: "2", Time: now},
		{IdempotencyKey: "meter-7/evt-0003", InstanceID: answer.InstanceID, Value: "0.00001", Time: now},
	}
	for range 2 { // the second time as after a lost answer
		results, err := srv.ReportUsage(ctx, batch)
		if err != nil {
			log.Fatal(err) // nothing was stored: send the batch again later
		}
		for _, r := range results {
			if r.Status == isv.UsageRejected {
				fmt.Println(r.IdempotencyKey, r.Status+":", r.Error) // fix it, send it again
				continue
			}
			fmt.Println(r.IdempotencyKey, r.Status) // stored: done with it
		}
	}
	// Output:
	// meter-7/evt-0001 accepted
	// meter-7/evt-0002 accepted
	// meter-7/evt-0003 rejected: value: 0.00001 has more than 4 decimals
	// meter-7/evt-0001 duplicate
	// meter-7/evt-0002 duplicate
	// meter-7/evt-0003 rejected: value: 0.00001 has more than 4 decimals
}
