package postgres

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/store"
)

// TestSilentNetworkBounded: a database that stops answering without
// closing anything (packets dropped) makes a bare statement wait until TCP
// gives up, minutes later. store.WithTimeout, which serve puts around every
// store, turns it into store.ErrUnavailable, and the store works again once
// the network does.
func TestSilentNetworkBounded(t *testing.T) {
	dsn, schema := newSchema(t)
	pdsn, proxy := proxiedDSN(t, dsn)
	raw := openStore(t, pdsn, schema, WithMaxConns(2), WithMinConns(1))
	s := store.WithTimeout(raw, 2*time.Second)
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping before the freeze: %v", err)
	}

	proxy.freeze(true)
	ops := map[string]func(ctx context.Context) error{
		"InsertCall": func(ctx context.Context) error {
			_, err := s.InsertCall(ctx, store.Call{Activity: "frozen"})
			return err
		},
		"Tx": func(ctx context.Context) error {
			return s.Tx(ctx, func(ctx context.Context, tx store.Tx) error {
				_, err := tx.InsertInstance(ctx, store.Instance{ID: "frozen", OrderID: "F", OrderLineID: "F-1", Status: store.StatusProvisioning})
				return err
			})
		},
	}
	for name, op := range ops {
		done := make(chan error, 1)
		go func() { done <- op(context.Background()) }()
		select {
		case err := <-done:
			if !errors.Is(err, store.ErrUnavailable) {
				t.Errorf("%s on a silent network: %v, want store.ErrUnavailable", name, err)
			}
		case <-time.After(90 * time.Second):
			t.Fatalf("%s on a silent network is still waiting after 90 s", name)
		}
	}

	proxy.freeze(false)
	proxy.cut(false) // the frozen connections are broken now; new ones go through
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := s.Ping(t.Context())
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Ping after the network came back: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := raw.Instance(t.Context(), "frozen"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the transaction cut short by the timeout left its row: %v", err)
	}
}
