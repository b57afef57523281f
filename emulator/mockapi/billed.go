package mockapi

import (
	"math"
	"slices"
	"time"

	"github.com/koobridge/koobridge/protocol"
)

// MaxUsageUnits is the largest usage_value the imitation takes, in
// ten-thousandths: 99999999.9999, the Double(12,4) of saas-v2.md §7.2.
const MaxUsageUnits = 999999999999

// BilledInstance is what the imitation has billed one instance: the
// records it kept (the first for each period), summed exactly, and how
// many records it ignored as duplicates.
type BilledInstance struct {
	InstanceID string
	// Total is the sum of the kept records' usage_value in
	// ten-thousandths (1.5 is 15000).
	Total int64
	// Records is how many records were kept; Duplicates how many records
	// for the instance were ignored (the same metering_sn, or the same
	// instance and period, as a record kept before).
	Records    int
	Duplicates int
	// Periods are the kept records, in the order received.
	Periods []BilledPeriod
}

// BilledPeriod is one kept record: one metering period of an instance.
type BilledPeriod struct {
	Begin, End         time.Time
	MeteringSN         string // "" for the old push
	Value              int64  // usage_value in ten-thousandths
	Received           time.Time
	API                string // UsageAPINew or UsageAPIOld
	RelatedPkgInstance string
	// Duplicates counts the later records ignored for this period: the
	// same instance and period, or the same metering_sn.
	Duplicates int
}

// parseUnits reads a usage_value that protocol's Validate accepted (at
// most 4 decimals, greater than 0) as ten-thousandths. ok is false when
// it is more than MaxUsageUnits.
func parseUnits(v string) (int64, bool) {
	d, err := protocol.ParseDecimal(v)
	if err != nil || d.Units() > MaxUsageUnits {
		return 0, false
	}
	return d.Units(), true
}

// ledger is what the imitation has billed: every kept record and the
// duplicate keys, for the life of the Handler (nothing is forgotten, so a
// retry days later is still recognised). It is built to hold millions of
// records: periods are stored compactly and a record's metering_sn is the
// only string kept per period beyond the instance's own.
type ledger struct {
	instances map[string]*billedInstance
	order     []*billedInstance // by first record received
	bySN      map[string]periodRef
}

type billedInstance struct {
	id       string
	total    int64
	records  int
	dups     int
	periods  []billedPeriod
	byPeriod map[[2]int64]int32 // begin, end (Unix seconds) → index in periods
}

// billedPeriod is BilledPeriod in about a hundred bytes.
type billedPeriod struct {
	begin, end int64 // Unix seconds
	received   int64 // Unix nanoseconds
	value      int64
	sn         string
	pkg        string
	dups       int32
	old        bool // the old push
}

type periodRef struct {
	in *billedInstance
	i  int32
}

func newLedger() ledger {
	return ledger{instances: make(map[string]*billedInstance), bySN: make(map[string]periodRef)}
}

func (l *ledger) instance(id string) *billedInstance {
	in := l.instances[id]
	if in == nil {
		in = &billedInstance{id: id, byPeriod: make(map[[2]int64]int32)}
		l.instances[id] = in
		l.order = append(l.order, in)
	}
	return in
}

// add bills r (checked: times and value parse) unless it repeats a kept
// record, first one wins (saas-v2.md §7.2). It reports whether r was a
// duplicate.
func (l *ledger) add(r UsageRecord, value int64) (duplicate bool) {
	begin, _ := protocol.ParseUsageTime(r.BeginTime)
	end, _ := protocol.ParseUsageTime(r.EndTime)
	key := [2]int64{begin.Unix(), end.Unix()}
	in := l.instance(r.InstanceID)
	ref, dup := periodRef{}, false
	if i, ok := in.byPeriod[key]; ok {
		ref, dup = periodRef{in, i}, true
	} else if r.MeteringSN != "" {
		ref, dup = l.bySN[r.MeteringSN]
	}
	if dup {
		in.dups++
		ref.in.periods[ref.i].dups++
		return true
	}
	in.periods = append(in.periods, billedPeriod{
		begin: key[0], end: key[1], received: r.Received.UnixNano(), value: value,
		sn: r.MeteringSN, pkg: r.RelatedPkgInstance, old: r.API == UsageAPIOld,
	})
	i := int32(len(in.periods) - 1)
	in.byPeriod[key] = i
	if r.MeteringSN != "" {
		l.bySN[r.MeteringSN] = periodRef{in, i}
	}
	in.records++
	// Values are at most MaxUsageUnits: over nine million of the largest
	// fit; beyond, the total stays at the largest int64 rather than wrap.
	if in.total > math.MaxInt64-value {
		in.total = math.MaxInt64
	} else {
		in.total += value
	}
	return false
}

// snapshot copies what add changes, so that the caller can export it
// without the handler's lock: each instance's last n periods (all with n
// < 0, none with 0) as a flat copy, cheap beside the export.
func (l *ledger) snapshot(n int) []billedInstance {
	out := make([]billedInstance, len(l.order))
	for i, in := range l.order {
		out[i] = billedInstance{id: in.id, total: in.total, records: in.records, dups: in.dups}
		if n != 0 {
			from := 0
			if n > 0 {
				from = max(len(in.periods)-n, 0)
			}
			out[i].periods = slices.Clone(in.periods[from:])
		}
	}
	return out
}

func (in *billedInstance) export(periods bool) BilledInstance {
	b := BilledInstance{InstanceID: in.id, Total: in.total, Records: in.records, Duplicates: in.dups}
	if !periods {
		return b
	}
	b.Periods = make([]BilledPeriod, len(in.periods))
	for i, p := range in.periods {
		api := UsageAPINew
		if p.old {
			api = UsageAPIOld
		}
		b.Periods[i] = BilledPeriod{
			Begin: time.Unix(p.begin, 0).UTC(), End: time.Unix(p.end, 0).UTC(),
			MeteringSN: p.sn, Value: p.value, Received: time.Unix(0, p.received),
			API: api, RelatedPkgInstance: p.pkg, Duplicates: int(p.dups),
		}
	}
	return b
}

// export turns a snapshot into the exported form.
func export(snap []billedInstance, periods bool) []BilledInstance {
	out := make([]BilledInstance, len(snap))
	for i := range snap {
		out[i] = snap[i].export(periods)
	}
	return out
}

// Billed returns, per instance, what the usage pushes billed: every kept
// record and the duplicates ignored, since the Handler was made (unlike
// UsageRecords, nothing is forgotten). Instances are in the order their
// first record came.
//
// Billed copies the whole ledger under the handler's lock, which holds up
// the pushes: with many records use BilledLatest, BilledTotals or
// BilledInstance.
func (h *Handler) Billed() []BilledInstance {
	h.mu.Lock()
	snap := h.billed.snapshot(-1)
	h.mu.Unlock()
	return export(snap, true)
}

// BilledLatest is Billed with only each instance's last n periods (the
// latest received, still oldest first); Records tells how many there
// are. Only those are copied under the handler's lock, so it stays cheap
// with millions of records. n < 1 is BilledTotals.
func (h *Handler) BilledLatest(n int) []BilledInstance {
	if n < 1 {
		return h.BilledTotals()
	}
	h.mu.Lock()
	snap := h.billed.snapshot(n)
	h.mu.Unlock()
	return export(snap, true)
}

// BilledTotals is Billed without the periods: cheap with millions of
// records.
func (h *Handler) BilledTotals() []BilledInstance {
	h.mu.Lock()
	snap := h.billed.snapshot(0)
	h.mu.Unlock()
	return export(snap, false)
}

// BilledInstance returns what was billed for one instance, and false when
// no record for it was received.
func (h *Handler) BilledInstance(id string) (BilledInstance, bool) {
	h.mu.Lock()
	in, ok := h.billed.instances[id]
	if !ok {
		h.mu.Unlock()
		return BilledInstance{}, false
	}
	snap := billedInstance{id: in.id, total: in.total, records: in.records, dups: in.dups, periods: slices.Clone(in.periods)}
	h.mu.Unlock()
	return snap.export(true), true
}
