// Package storetest is the conformance suite for the interfaces of package
// store, gathered by store.Store and store.Tx: both dialects (sqlite,
// postgres) run the same tests, so they behave alike down to the error
// values.
//
// Usage, in an implementation's tests:
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store {
//			s, err := mystore.Open(t.Context(), dsnForATestDatabase(t))
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// The suite covers the documented semantics of every method, the
// idempotency guarantees under concurrency (50 goroutines racing on one
// order line's instance and its order notification, one nonce, one
// operation; 20 workers racing for 10 jobs) and transaction rollback. Times given to the store have millisecond
// precision, the precision every implementation keeps.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/store"
)

// Run runs the suite. open is called once per subtest and must return a
// new, empty store that it closes when the subtest ends (t.Cleanup).
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	groups := []struct {
		name  string
		tests []test
	}{
		{"Instances", instanceTests},
		{"Operations", operationTests},
		{"Nonces", nonceTests},
		{"Calls", callTests},
		{"Jobs", jobTests},
		{"OrderNotifications", orderNotificationTests},
		{"Tenants", tenantTests},
		{"SSO", ssoTests},
		{"Licenses", licenseTests},
		{"Usage", usageTests},
		{"Tx", txTests},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) {
					tc.run(t, open(t))
				})
			}
		})
	}
}

// test is one case of the suite; it gets a fresh store.
type test struct {
	name string
	run  func(t *testing.T, s store.Store)
}

// base is the time the suite's fixed timestamps are built from. It has
// millisecond precision, like every time the suite stores.
var base = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// at returns base moved by d.
func at(d time.Duration) time.Time { return base.Add(d) }

// inTx runs fn in a transaction and fails the test if it fails.
func inTx(t *testing.T, s store.Store, fn func(ctx context.Context, tx store.Tx) error) {
	t.Helper()
	if err := s.Tx(t.Context(), fn); err != nil {
		t.Fatalf("Tx: %v", err)
	}
}

// Race starts n goroutines running fn(i) at the same moment and waits for
// all of them: the tests of every store use it to race on one row.
func Race(n int, fn func(i int)) {
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			fn(i)
		}()
	}
	close(start)
	wg.Wait()
}

// normTime drops the monotonic reading and the location, so times from
// different sources compare with reflect.DeepEqual.
func normTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.Round(0).UTC()
}

// wantErr fails the test unless errors.Is(err, want).
func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got error %v, want %v", what, err, want)
	}
}

// noErr fails the test if err is not nil.
func noErr(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// diff reports the fields in which two structs of the same type differ,
// as "Field: got …, want …" lines; "" when they are equal.
func diff(got, want any) string {
	g, w := reflect.ValueOf(got), reflect.ValueOf(want)
	out := ""
	for i := range g.NumField() {
		gf, wf := g.Field(i).Interface(), w.Field(i).Interface()
		if !reflect.DeepEqual(gf, wf) {
			out += fmt.Sprintf("\n  %s: got %#v, want %#v", g.Type().Field(i).Name, gf, wf)
		}
	}
	return out
}
