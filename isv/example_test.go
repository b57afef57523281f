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
