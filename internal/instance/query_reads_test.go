package instance_test

import (
	"context"
	"sync"
	"testing"

	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/protocol"
)

// reads counts the store's instance reads.
type reads struct {
	store.Store
	mu      sync.Mutex
	byID    int      // InstancesByID calls
	unknown []string // ids read one by one that have no instance
}

func (r *reads) Instance(ctx context.Context, id string) (store.Instance, error) {
	in, err := r.Store.Instance(ctx, id)
	if err != nil {
		r.mu.Lock()
		r.unknown = append(r.unknown, id)
		r.mu.Unlock()
	}
	return in, err
}

func (r *reads) InstancesByID(ctx context.Context, ids []string) ([]store.Instance, error) {
	r.mu.Lock()
	r.byID++
	r.mu.Unlock()
	return r.Store.InstancesByID(ctx, ids)
}

// TestQueryInstanceReadsOnce checks that a queryInstance of several ids
// reads them in one query and answers in the order asked.
func TestQueryInstanceReadsOnce(t *testing.T) {
	r := &reads{}
	e := newEnv(t, options{wrap: func(st store.Store) store.Store { r.Store = st; return r }})
	a, b, c := e.newActive("CS-R-1"), e.newActive("CS-R-2"), e.newActive("CS-R-3")
	r.mu.Lock()
	r.byID, r.unknown = 0, nil
	r.mu.Unlock()

	out := e.do(queryReq(c + ",nope," + a + "," + b))
	resp := out.Response.(protocol.QueryInstanceResponse)
	if out.Code != protocol.CodeSuccess || len(resp.Info) != 3 {
		t.Fatalf("queryInstance: %s, %d entries", out.Code, len(resp.Info))
	}
	for i, want := range []string{c, a, b} {
		if resp.Info[i].InstanceID != want {
			t.Errorf("entry %d is %s, want %s (the order asked)", i, resp.Info[i].InstanceID, want)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byID != 1 || len(r.unknown) != 0 {
		t.Errorf("%d reads of several instances and %v read one by one, want one read of all", r.byID, r.unknown)
	}
}
