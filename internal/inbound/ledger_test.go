package inbound_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/inbound"
	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/internal/store/sqlite"
)

// gatedStore holds every ledger write until gate is closed.
type gatedStore struct {
	*sqlite.Store
	gate chan struct{}
}

func (g gatedStore) InsertCall(ctx context.Context, c store.Call) (int64, error) {
	<-g.gate
	return g.Store.InsertCall(ctx, c)
}

func (g gatedStore) InsertCalls(ctx context.Context, calls []store.Call) error {
	<-g.gate
	return g.Store.InsertCalls(ctx, calls)
}

// newGatedPipeline is newPipeline on a store whose ledger writes wait for
// the returned gate, with at most maxRows rows and maxBytes of them
// waiting behind replies;
// its client sends every call on one connection.
func newGatedPipeline(t *testing.T, maxRows int, maxBytes int64) (p *pipeline, s *inbound.Server, open func(), client *http.Client) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "kb.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	gate := make(chan struct{})
	var once sync.Once
	open = func() { once.Do(func() { close(gate) }) }
	// Registered after the server's cleanup, so it runs first: a failed
	// test must not leave handlers waiting on the gate.
	defer t.Cleanup(open)
	rec := &served{}
	s, err = inbound.New(inbound.Config{
		Families: []*inbound.Family{family("v2", http.MethodPost, "/produce", inbound.KeyBasic, inbound.URLSignature, rec, "queryInstance")},
		Keys:     inbound.Keys{inbound.KeyBasic: {basicKey}},
		Store:    gatedStore{Store: st, gate: gate},
		Logger:   slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	inbound.SetLedgerLimits(s, maxRows, maxBytes)
	p = &pipeline{st: st, srv: httptest.NewServer(s), rec: rec}
	t.Cleanup(p.srv.Close)
	client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxConnsPerHost: 1}}
	t.Cleanup(client.CloseIdleConnections)
	return p, s, open, client
}

func (p *pipeline) doWith(t *testing.T, c *http.Client, value string) string {
	t.Helper()
	resp, err := c.Do(p.urlSigned(t, "/produce", basicKey, `{"activity":"queryInstance","value":"`+value+`"}`, ""))
	if err != nil {
		t.Errorf("call %s: %v", value, err)
		return ""
	}
	// Read to the end, so the connection is kept for the next call.
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		t.Errorf("call %s: read the reply: %v", value, err)
	}
	resp.Body.Close()
	return resp.Status
}

func ledgerRows(t *testing.T, st *sqlite.Store) int {
	t.Helper()
	calls, err := st.Calls(context.Background(), store.CallFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return len(calls)
}

// TestLedgerWrittenBehindTheReply checks that the next call on a
// connection does not wait for the previous call's ledger row, and that
// Wait waits for the rows still being written.
func TestLedgerWrittenBehindTheReply(t *testing.T) {
	p, s, open, client := newGatedPipeline(t, 16, 1<<20)
	p.doWith(t, client, "first")
	// The same connection: served although the first row is not written.
	p.doWith(t, client, "second")
	if n := ledgerRows(t, p.st); n != 0 {
		t.Fatalf("%d ledger rows written through a closed gate", n)
	}
	// As at shutdown: the handlers have returned (they do not wait for
	// their rows: Close would block otherwise), then Wait.
	p.srv.Close()
	waited := make(chan struct{})
	go func() {
		s.Wait()
		close(waited)
	}()
	select {
	case <-waited:
		t.Fatal("Wait returned while two ledger rows were still being written")
	case <-time.After(50 * time.Millisecond):
	}
	open()
	<-waited
	if n := ledgerRows(t, p.st); n != 2 {
		t.Errorf("%d ledger rows after Wait, want 2", n)
	}
}

// TestLedgerBackpressure checks that once the queue of rows is full (in
// rows or in bytes) a handler waits for a place before it returns, so that
// the next call on its connection waits too, and that no row is lost
// meanwhile.
func TestLedgerBackpressure(t *testing.T) {
	for _, tc := range []struct {
		name  string
		rows  int
		bytes int64
		// most is how many calls a connection gets answers to with the
		// ledger stuck, the one that waits included.
		most int
	}{
		// The writer holds one batch of what was queued (two rows at
		// most), the queue one more, the next handler waits with its
		// reply flushed: by the fourth call the connection waits.
		{"rows", 1, 1 << 20, 4},
		// Every row is over the byte limit alone: the writer holds the
		// first, the second call's handler waits with its reply
		// flushed, and the third call waits for it.
		{"bytes", 1024, 1, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, s, open, client := newGatedPipeline(t, tc.rows, tc.bytes)
			served := 0
			for served < tc.most+1 {
				done := make(chan struct{})
				go func() {
					p.doWith(t, client, fmt.Sprint("call-", served))
					close(done)
				}()
				select {
				case <-done:
					served++
					continue
				case <-time.After(time.Second):
				}
				// This call waits behind a handler that waits for the queue.
				open()
				<-done
				served++
				break
			}
			if served > tc.most {
				t.Fatalf("%d calls served on one connection with the ledger stuck, want at most %d before one waits", served, tc.most)
			}
			// As at shutdown: the handlers return (the last may still be
			// waiting for a place after its reply went), then Wait.
			p.srv.Close()
			s.Wait()
			if n := ledgerRows(t, p.st); n != served {
				t.Errorf("%d ledger rows, want %d", n, served)
			}
		})
	}
}
