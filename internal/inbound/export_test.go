package inbound

// SetMaxPendingLedger changes how many ledger rows may be written behind
// their replies at once.
func SetMaxPendingLedger(s *Server, n int) { s.pending = make(chan struct{}, n) }
