package emulator

import (
	"net/http"
)

// setupOpenAPI configures the Open API imitation: the usage key, the
// clocks and which instances exist.
//
// The imitation checks X-Sdk-Date and the usage ts against the wall clock,
// not the emulated one: the seller signs with its own (real) clock, and an
// emulated clock that runs fast or was advanced would make every signature
// stale. License codes live on the emulated clock, on which their expiries
// are set: the imitation reads it without its own lock held, and the
// emulator never asks it for the time (License, Licenses) with e.mu held.
func (e *Emulator) setupOpenAPI() {
	e.openapi.SetUsageKey(e.cfg.Key)
	e.openapi.SetClock(e.cfg.Now)
	e.openapi.SetLicenseClock(e.Now)
	e.openapi.SetInstanceCheck(func(id string) bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		return e.known[id]
	})
}

// OpenAPIHandler serves the mocked Open API only (Query Order, usage push
// new and old, the license APIs and the license upload), for a seller
// whose Open API URL points here.
func (e *Emulator) OpenAPIHandler() http.Handler { return e.openapi }

// UsageRecords lists the usage records sellers pushed, oldest first,
// duplicates included (flagged).
func (e *Emulator) UsageRecords() []UsageRecord {
	recs := e.openapi.UsageRecords()
	out := make([]UsageRecord, len(recs))
	for i, r := range recs {
		out[i] = UsageRecord{
			Received:           r.Received,
			API:                r.API,
			InstanceID:         r.InstanceID,
			ProductID:          r.ProductID,
			MeteringSN:         r.MeteringSN,
			BeginTime:          r.BeginTime,
			EndTime:            r.EndTime,
			RecordTime:         r.RecordTime,
			UsageValue:         r.UsageValue,
			RelatedPkgInstance: r.RelatedPkgInstance,
			Duplicate:          r.Duplicate,
		}
	}
	return out
}

// OpenAPIRequests lists the last requests the mocked Open API received,
// oldest first (mockapi.MaxRequests of them at most).
func (e *Emulator) OpenAPIRequests() []OpenAPIRequest {
	reqs := e.openapi.Requests()
	out := make([]OpenAPIRequest, len(reqs))
	for i, r := range reqs {
		out[i] = OpenAPIRequest{
			At:       r.At,
			Method:   r.Method,
			Path:     r.Path,
			Query:    r.Query,
			Status:   r.Status,
			Code:     r.Code,
			Fault:    r.Fault,
			Duration: r.Duration,
		}
	}
	return out
}
