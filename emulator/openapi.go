package emulator

import (
	"net/http"

	"github.com/koobridge/koobridge/emulator/mockapi"
	"github.com/koobridge/koobridge/protocol"
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
	e.openapi.SetInstanceLookup(func(id string) (mockapi.UsageInstance, bool) {
		e.mu.Lock()
		defer e.mu.Unlock()
		sub, ok := e.known[id]
		if !ok {
			return mockapi.UsageInstance{}, false
		}
		// The usage push runs on the wall clock, as the seller's pushes do;
		// the bounds were taken to it when they happened.
		return mockapi.UsageInstance{Start: sub.WallStartTime, Released: sub.WallReleaseTime}, true
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

// Billed lists, per instance, what the usage pushes billed: the kept
// records (the first of each period) summed exactly, and the duplicates
// ignored, since the emulator started; instances in the order their first
// record came. Nothing is forgotten (a million records take a few hundred
// MB); UsageRecords is only the log of the last 10,000. Billed copies
// every period: with many records use BilledLatest, BilledTotals or
// BilledInstance.
func (e *Emulator) Billed() []BilledInstance {
	b := e.openapi.Billed()
	out := make([]BilledInstance, len(b))
	for i, in := range b {
		out[i] = billedInstance(in)
	}
	return out
}

// BilledLatest is Billed with only each instance's last n periods (the
// latest received, oldest first; PeriodsOmitted counts the others): only
// those are copied under the Open API's lock, so it stays cheap with
// millions of records, where Billed holds up the pushes while it copies
// them all. n < 1 is BilledTotals.
func (e *Emulator) BilledLatest(n int) []BilledInstance {
	if n < 1 {
		return e.BilledTotals()
	}
	b := e.openapi.BilledLatest(n)
	out := make([]BilledInstance, len(b))
	for i, in := range b {
		out[i] = billedInstance(in)
		out[i].PeriodsOmitted = in.Records - len(in.Periods)
	}
	return out
}

// BilledInstance is Billed for one instance; false when no record for it
// was received.
func (e *Emulator) BilledInstance(id string) (BilledInstance, bool) {
	in, ok := e.openapi.BilledInstance(id)
	if !ok {
		return BilledInstance{}, false
	}
	return billedInstance(in), true
}

// BilledTotals is Billed without the periods (nil): cheap with millions
// of records.
func (e *Emulator) BilledTotals() []BilledInstance {
	b := e.openapi.BilledTotals()
	out := make([]BilledInstance, len(b))
	for i, in := range b {
		out[i] = billedInstance(in)
		out[i].Periods = nil
	}
	return out
}

func billedInstance(in mockapi.BilledInstance) BilledInstance {
	out := BilledInstance{
		InstanceID: in.InstanceID, Total: in.Total, TotalText: protocol.DecimalFromUnits(in.Total).String(),
		Records: in.Records, Duplicates: in.Duplicates, Periods: make([]BilledPeriod, len(in.Periods)),
	}
	for i, p := range in.Periods {
		out.Periods[i] = BilledPeriod{
			Begin: p.Begin, End: p.End, MeteringSN: p.MeteringSN, Value: p.Value, ValueText: protocol.DecimalFromUnits(p.Value).String(),
			Received: p.Received, API: p.API, RelatedPkgInstance: p.RelatedPkgInstance, Duplicates: p.Duplicates,
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
