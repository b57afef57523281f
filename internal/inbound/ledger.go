package inbound

import (
	"context"
	"time"

	"github.com/koobridge/koobridge/internal/store"
)

// The ledger writer. Each call's row is built (and masked) by its handler
// and queued; one goroutine writes the rows queued together with one
// InsertCalls, one transaction and one statement per few dozen rows
// instead of one each. A row waits only for the batch before it; the
// queue holds at most maxPendingLedger rows, and a handler that finds it
// full waits for a place (see ServeHTTP).

const (
	// maxPendingLedger is how many rows may wait to be written: a few
	// kilobytes each.
	maxPendingLedger = 1024
	// maxLedgerBatch is the most rows one write takes.
	maxLedgerBatch = 256
	// ledgerTimeout bounds one write of the ledger.
	ledgerTimeout = 5 * time.Second
)

// ledgerRow is a row to write, or (written set) a marker that Wait waits
// for: closed once every row queued before it is written.
type ledgerRow struct {
	call    store.Call
	written chan struct{}
}

// writeLedger writes the rows queued on q, for the life of the process.
func (s *Server) writeLedger(q <-chan ledgerRow) {
	batch := make([]store.Call, 0, maxLedgerBatch)
	var markers []chan struct{}
	take := func(r ledgerRow) {
		if r.written != nil {
			markers = append(markers, r.written)
		} else {
			batch = append(batch, r.call)
		}
	}
	for r := range q {
		take(r)
	gather:
		for len(batch) < maxLedgerBatch {
			select {
			case r := <-q:
				take(r)
			default:
				break gather
			}
		}
		if len(batch) > 0 {
			s.insertCalls(batch)
		}
		for _, m := range markers {
			close(m)
		}
		clear(batch)
		batch, markers = batch[:0], markers[:0]
	}
}

// insertCalls writes one batch. A failure is logged and counted; the
// replies are already on their way.
func (s *Server) insertCalls(batch []store.Call) {
	ctx, cancel := context.WithTimeout(context.Background(), ledgerTimeout)
	defer cancel()
	if err := s.st.InsertCalls(ctx, batch); err != nil {
		s.metrics.ledgerErrors.Add(float64(len(batch)))
		s.log.Error("ledger write failed", "rows", len(batch),
			"first_request_id", batch[0].RequestID, "last_request_id", batch[len(batch)-1].RequestID, "error", err)
	}
}
