package tenant_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/koobridge/koobridge/internal/store/sqlite"
	"github.com/koobridge/koobridge/protocol"
)

// BenchmarkSyncUsers500 authorises 500 new users in one authSync (one
// transaction: lock, read, 500 upserts with sealed contact data, one event
// sealed with its delivery job), on SQLite. Repeat is the same call again:
// the read and the comparison, no write. decode-only is the ceiling:
// the body decoded and validated, nothing stored.
func BenchmarkSyncUsers500(b *testing.B) {
	st, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "kb.db"))
	if err != nil {
		b.Fatal(err)
	}
	e := newEnv(b, st, nil)
	users := func(round int) protocol.AuthSyncRequest {
		list := make([]protocol.KitUser, 500)
		for i := range list {
			list[i] = user(fmt.Sprintf("u%d-%03d", round, i), "1", true)
			list[i].Mobile, list[i].Email = "13912345678", fmt.Sprintf("u%03d@example.com", i)
		}
		r := authSync(1, list...)
		r.TenantID = fmt.Sprintf("t%d", round)
		return r
	}
	ctx := context.Background()
	round := 0 // every request of every run is a tenant of its own
	b.Run("new", func(b *testing.B) {
		reqs := make([]protocol.AuthSyncRequest, b.N)
		for i := range reqs {
			round++
			reqs[i] = users(round)
		}
		b.ResetTimer()
		for i := range b.N {
			if res, err := e.svc.SyncUsers(ctx, reqs[i]); err != nil || !res.Changed {
				b.Fatal(res, err)
			}
		}
	})
	// The ceiling: decoding and validating the same call's body, storing
	// nothing.
	b.Run("decode-only", func(b *testing.B) {
		body, err := protocol.Marshal(users(-2))
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(body)))
		b.ResetTimer()
		for range b.N {
			r, err := protocol.DecodeKit(protocol.KitAuthSync, body)
			if err != nil {
				b.Fatal(err)
			}
			if err := r.Validate(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("repeat", func(b *testing.B) {
		req := users(-1)
		if _, err := e.svc.SyncUsers(ctx, req); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for range b.N {
			if res, err := e.svc.SyncUsers(ctx, req); err != nil || res.Changed {
				b.Fatal(res, err)
			}
		}
	})
}
