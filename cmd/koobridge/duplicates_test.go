package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/koobridge/koobridge/emulator"
	"github.com/koobridge/koobridge/internal/store/postgres/pgtest"
)

// TestDuplicateDeliveriesAgainstServe is the check of concurrent
// duplicates: with the emulator's fault {"duplicates":2} on, KooGallery
// delivers every call three times at once, and every purchase of every
// product (and an order notification) against a real "koobridge serve"
// must pass the emulator's own checks, its idempotency check included
// (every copy answered alike). Once on SQLite, once on PostgreSQL.
func TestDuplicateDeliveriesAgainstServe(t *testing.T) {
	dbs := []struct {
		name string
		dsn  func(t *testing.T) string
	}{
		{"sqlite", func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "dup.db") }},
		{"postgres", func(t *testing.T) string { return pgtest.Schema(t, pgtest.DSN(t)) }},
	}
	for _, db := range dbs {
		t.Run(db.name, func(t *testing.T) {
			const key, generalKey = "duplicates-key-0123456789", "duplicates-general-key-987654"
			// The emulator's Open API listens first, so that serve can be
			// pointed at it; the emulator itself needs serve's address.
			var emu atomic.Pointer[emulator.Emulator]
			api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if e := emu.Load(); e != nil {
					e.OpenAPIHandler().ServeHTTP(w, r)
					return
				}
				http.Error(w, "emulator not ready", http.StatusServiceUnavailable)
			}))
			defer api.Close()
			p := startServe(t, "--db", db.dsn(t), "--key", key, "--general-key", generalKey,
				"--ak", testAK, "--sk", testSK, "--data-key", newDataKey(t), "--openapi-url", api.URL, "--listen", "127.0.0.1:0")
			em, err := emulator.New(emulator.Config{
				Target: p.base + "/produce", Key: key, GeneralKey: generalKey, AK: testAK, SK: testSK,
				TimeScale: 360, NoRetry: true,
			})
			if err != nil {
				t.Fatal(err)
			}
			defer em.Close()
			emu.Store(em)
			em.SetFaults(emulator.Faults{Duplicates: 2})

			ctx := context.Background()
			for _, prod := range em.Products() {
				if prod.Protocol == emulator.ProtocolLicense || prod.Protocol == emulator.ProtocolOnlineLicense {
					continue // the license products' calls are not V2's (their own end-to-end tests)
				}
				scenarios := []string{"purchase", "order-notify"}
				if prod.Protocol == emulator.ProtocolV1 {
					scenarios = scenarios[:1] // order notification is a V2-era interface
				}
				for _, scenario := range scenarios {
					run, err := em.Purchase(ctx, emulator.PurchaseRequest{ProductID: prod.ID, Scenario: scenario})
					if err != nil {
						t.Fatalf("%s of %s: %v", scenario, prod.ID, err)
					}
					if !run.OK {
						t.Errorf("%s of %s failed: %s", scenario, prod.ID, run.Err)
					}
					for _, id := range run.Messages {
						m, _ := em.Message(id)
						for _, a := range m.Attempts {
							for _, v := range a.Violations {
								t.Errorf("%s of %s: %s broke %s: %s", scenario, prod.ID, m.Interface, v.Rule, v.Message)
							}
						}
						if n := len(m.Attempts); n != 3 {
							t.Errorf("%s: %d deliveries recorded, want 3 (the fault's duplicates)", m.Interface, n)
						}
					}
				}
			}
			if code := p.stop(t, syscall.SIGTERM); code != 0 {
				t.Errorf("serve exit %d", code)
			}
		})
	}
}
