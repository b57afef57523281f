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
// queue holds at most maxPendingLedger rows and maxLedgerBytes of them (a
// queryInstance of 100 ids has a reply of some 50 kB), and a handler that
// finds it full waits for a place (see ServeHTTP).

const (
	// maxPendingLedger is how many rows may wait to be written.
	maxPendingLedger = 1024
	// maxLedgerBytes is how much row data (request and reply) may wait;
	// a row larger than that waits until nothing else does.
	maxLedgerBytes = 4 << 20
	// maxLedgerBatch and maxLedgerBatchBytes bound one write.
	maxLedgerBatch      = 256
	maxLedgerBatchBytes = 1 << 20
	// ledgerTimeout bounds one write of the ledger.
	ledgerTimeout = 5 * time.Second
)

// ledgerRow is a row to write, or (written set) a marker that Wait waits
// for: closed once every row queued before it is written.
type ledgerRow struct {
	call    store.Call
	size    int64 // rowSize(call), counted in Server.ledgerBytes
	written chan struct{}
}

// rowSize is what a row holds in memory, about.
func rowSize(c store.Call) int64 {
	return int64(len(c.Request) + len(c.Response) + len(c.ResultMsg) + 256)
}

// reserveLedger waits until size more bytes of rows may wait (at once when
// none do) and counts them; when it must wait it calls first before (the
// handler flushes its reply).
func (s *Server) reserveLedger(size int64, first func()) {
	full := func() bool { return s.ledgerBytes > 0 && s.ledgerBytes+size > s.maxLedgerBytes }
	s.ledgerMu.Lock()
	if full() {
		s.ledgerMu.Unlock()
		first() // not under the lock: it writes to the connection
		s.ledgerMu.Lock()
		for full() {
			s.ledgerFreed.Wait()
		}
	}
	s.ledgerBytes += size
	s.ledgerMu.Unlock()
}

// releaseLedger uncounts rows written.
func (s *Server) releaseLedger(size int64) {
	s.ledgerMu.Lock()
	s.ledgerBytes -= size
	s.ledgerMu.Unlock()
	s.ledgerFreed.Broadcast()
}

// writeLedger writes the rows queued on q, for the life of the process.
func (s *Server) writeLedger(q <-chan ledgerRow) {
	batch := make([]store.Call, 0, maxLedgerBatch)
	var markers []chan struct{}
	var size int64
	take := func(r ledgerRow) {
		if r.written != nil {
			markers = append(markers, r.written)
		} else {
			batch = append(batch, r.call)
			size += r.size
		}
	}
	for r := range q {
		take(r)
	gather:
		for len(batch) < maxLedgerBatch && size < maxLedgerBatchBytes {
			select {
			case r := <-q:
				take(r)
			default:
				break gather
			}
		}
		if len(batch) > 0 {
			s.insertCalls(batch)
			s.releaseLedger(size)
		}
		for _, m := range markers {
			close(m)
		}
		clear(batch)
		batch, markers, size = batch[:0], markers[:0], 0
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
