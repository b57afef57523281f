package inbound

// SetMaxPendingLedger changes how many ledger rows may be written behind
// their replies at once.
// Call it before the first call.
func SetMaxPendingLedger(s *Server, n int) {
	// The writer started by New reads the old queue, empty and never
	// closed; one for the new one.
	s.ledger = make(chan ledgerRow, n)
	go s.writeLedger(s.ledger)
}
