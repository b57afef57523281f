package inbound

// SetLedgerLimits changes how many ledger rows, and how many bytes of
// them, may wait to be written behind their replies. Call it before the
// first call.
func SetLedgerLimits(s *Server, rows int, bytes int64) {
	// The writer started by New reads the old queue, empty and never
	// closed; one for the new one.
	s.ledger = make(chan ledgerRow, rows)
	s.maxLedgerBytes = bytes
	go s.writeLedger(s.ledger)
}
