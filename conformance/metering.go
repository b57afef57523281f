package conformance

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/koobridge/koobridge/emulator"
	"github.com/koobridge/koobridge/emulator/mockapi"
	"github.com/koobridge/koobridge/protocol"
)

// The metering profile (ProfileMetering) tells the seller, through its
// usage API, of known usage on pay-per-use instances bought three hours
// back, then checks what the seller pushed to the mocked Open API: every
// (instance, hour) once, with one metering_sn, adding up to what was told,
// within Config.UsageWait and before KooGallery's next collection, no
// period before it ends, and the first push kept, whose answer the suite
// withholds (usageGate), sent again; and queryInstance's usageInfo.

// DefaultUsageWait is how long the metering profile waits for the
// seller's usage pushes unless Config.UsageWait says otherwise.
const DefaultUsageWait = 5 * time.Minute

// DefaultUsageQuiet is how long no push may arrive, after every hour has,
// before the metering profile judges, unless Config.UsageQuiet says
// otherwise: twice a push interval of 5 s.
const DefaultUsageQuiet = 10 * time.Second

// usageCollection bounds how long after its usage was reported a closed
// hour may be pushed: KooGallery collects hourly products at minute 15 of
// each hour (saas-v2.md §7.2), so usage of a closed hour reported just
// after a collection must be pushed within 15 minutes to make the next.
const usageCollection = 15 * time.Minute

// meteringClockSkew is how far ahead of the suite's clock a pushed
// record's end_time may be before it counts as pushed early: the seller's
// clock may run a little ahead.
const meteringClockSkew = 5 * time.Second

// Suite rules of the metering profile.
const (
	RuleUsageAPI        = "usage-api"        // the usage API answers each record, in order: accepted for new usage
	RuleUsageIdempotent = "usage-idempotent" // a repeated record is a duplicate; its key with other content is rejected
	RuleUsageValidation = "usage-validation" // usage before the start, in the future, over-precise or of an unknown instance is rejected
	RuleUsagePushed     = "usage-pushed"     // every period with usage is pushed, within the wait
	RuleUsageOnTime     = "usage-on-time"    // a closed period is pushed before KooGallery's next collection
	RuleUsageNotEarly   = "usage-not-early"  // no period is pushed before it ends
	RuleUsageRetry      = "usage-retry"      // a push whose answer was lost is sent again
	RuleUsageOnce       = "usage-once"       // one record per period, with one metering_sn, nothing kept twice
	RuleUsageTotals     = "usage-totals"     // what KooGallery billed is what was reported
	RuleUsageInfo       = "usage-info"       // queryInstance's usageInfo is the usage reported
)

func init() {
	for rule, spec := range map[string]string{
		RuleUsageAPI:        "docs/metering.md (the usage API: POST {\"records\":[…]}, a result per record)",
		RuleUsageIdempotent: "docs/metering.md (idempotencyKey: the same content again is a duplicate, other content is rejected)",
		RuleUsageValidation: "saas-v2.md §7.2 (usage_value > 0, ≤ 4 decimals; begin_time not before the resource start), docs/metering.md",
		RuleUsagePushed:     "saas-v2.md §7.2 (hourly products: collected at minute 15, report within 2 h)",
		RuleUsageOnTime:     "saas-v2.md §7.2 (hourly products: collected at minute 15 of each hour)",
		RuleUsageNotEarly:   "saas-v2.md §7.2 (end_time: the metering period's end; usage collected after the period)",
		RuleUsageRetry:      "saas-v2.md §7.2 (on transport failure retry with the same metering_sn), §6.1",
		RuleUsageOnce:       "saas-v2.md §7.2, §6.1 (metering_sn unique, the same on every retry; one record per instance and period)",
		RuleUsageTotals:     "saas-v2.md §7.2 (usage_value: the period's usage)",
		RuleUsageInfo:       "saas-v2.md §3.2 (usageInfo: the cumulative usage of a pay-per-use instance)",
	} {
		suiteSpec[rule] = spec
	}
}

// meteringHours is how many closed hours the profile reports usage in.
const meteringHours = 3

// meteringPoll is how often the profile looks for the seller's pushes.
const meteringPoll = 250 * time.Millisecond

// meterSub is one pay-per-use instance the profile reports usage of.
type meterSub struct {
	subID, instanceID, mode string
	hours                   [meteringHours]int64     // accepted usage per hour, ten-thousandths
	reported                [meteringHours]time.Time // when each hour's usage was accepted
}

func (m *meterSub) total() int64 {
	var t int64
	for _, u := range m.hours {
		t += u
	}
	return t
}

// usageRecord is a record of the seller's usage API.
type usageRecord struct {
	IdempotencyKey string      `json:"idempotencyKey"`
	InstanceID     string      `json:"instanceId"`
	Value          json.Number `json:"value"`
	Time           string      `json:"time"`
}

// usageResult is the usage API's answer for one record.
type usageResult struct {
	IdempotencyKey string `json:"idempotencyKey"`
	Status         string `json:"status"`
	Error          string `json:"error"`
}

// Statuses of a usage API result.
const (
	usageAccepted  = "accepted"
	usageDuplicate = "duplicate"
	usageRejected  = "rejected"
)

// metering runs the metering profile.
func (r *runner) metering(ctx context.Context) {
	// Whole hours, so that the first hour with usage begins at the
	// instances' start (a period's begin_time may not precede it).
	start := time.Now().UTC().Truncate(time.Hour).Add(-meteringHours * time.Hour)
	subs := r.meteringPurchase(ctx, start)
	if len(subs) == 0 {
		ids := []string{"report", "repeat", "conflict", "before-start", "future", "precision", "unknown-instance", "no-token"}
		for _, id := range append(append(ids, meteringPushCases...), "query") {
			cr := r.begin("metering/"+id, meteringTitles[id], suiteSpec[meteringRules[id]])
			cr.fail(RuleNotRun, "not run: metering/purchase left no pay-per-use instance to report usage of")
			r.end(cr)
		}
		return
	}
	if r.gate != nil {
		r.gate.arm() // the first push kept from now on is held
	}
	run := emulator.NewNonce()[:12] // keys of this run: a rerun against the same seller reports afresh
	batches := r.meteringReport(ctx, subs, start, run)
	posted := time.Now()
	r.meteringRefusals(ctx, subs, start, run, batches)
	r.meteringPushes(ctx, subs, start, posted)
	r.meteringQuery(ctx, subs)
}

// meteringTitles are the titles of the metering cases, by case name.
var meteringTitles = map[string]string{
	"purchase":         "pay-per-use instances bought three hours back (orderTime): an ON_DEMAND one and an ON_DEMAND_PKG package",
	"report":           "usage reported over the three closed hours is accepted, record by record, in order",
	"repeat":           "a batch reported again is answered duplicate, record by record",
	"conflict":         "an idempotencyKey reported again with another value is rejected",
	"before-start":     "usage before the instance started is rejected",
	"future":           "usage an hour ahead is rejected",
	"precision":        "a value with 5 decimals is rejected",
	"unknown-instance": "usage of an instance never issued is rejected",
	"no-token":         "the usage API refuses a request without the bearer token, or with a wrong one (401)",
	"pushed":           "every hour with usage of every instance is pushed to KooGallery within the wait",
	"on-time":          "each closed hour is pushed before KooGallery's next collection: within 15 minutes (or the wait, if shorter) of its report",
	"not-early":        "no period is pushed before its end_time: only closed periods, with all their usage",
	"retry":            "the first push kept, whose answer is then lost (held until the seller gives up), is sent again",
	"once":             "each hour arrives once: one kept record and one metering_sn per (instance, hour) over every push received, retries carrying the same",
	"totals":           "what KooGallery billed per hour and per instance is what was reported",
	"query":            "queryInstance's usageInfo is the instance's cumulative usage",
}

// meteringRules are the rules the metering cases check, by case name.
var meteringRules = map[string]string{
	"report": RuleUsageAPI, "repeat": RuleUsageIdempotent, "conflict": RuleUsageIdempotent,
	"before-start": RuleUsageValidation, "future": RuleUsageValidation, "precision": RuleUsageValidation,
	"unknown-instance": RuleUsageValidation, "no-token": RuleUsageAPI, "pushed": RuleUsagePushed,
	"on-time": RuleUsageOnTime, "not-early": RuleUsageNotEarly, "retry": RuleUsageRetry,
	"once": RuleUsageOnce, "totals": RuleUsageTotals, "query": RuleUsageInfo,
}

func (r *runner) meteringCase(name string) *caseRun {
	spec := suiteSpec[meteringRules[name]]
	if name == "purchase" {
		spec = "saas-v2.md §3.1, §7.2"
	}
	return r.begin("metering/"+name, meteringTitles[name], spec)
}

// meteringPurchase buys one instance of each pay-per-use charging mode,
// placed at start; it returns those usable.
func (r *runner) meteringPurchase(ctx context.Context, start time.Time) []*meterSub {
	cr := r.meteringCase("purchase")
	defer r.end(cr)
	var subs []*meterSub
	for _, mode := range []string{protocol.ChargingOnDemand, protocol.ChargingOnDemandPkg} {
		p, ok := r.product(mode)
		if !ok {
			cr.fail(RuleScenario, "internal: the emulator has no %s product", mode)
			continue
		}
		sub, usable := r.purchaseWith(ctx, cr, emulator.PurchaseRequest{ProductID: p.ID, OrderTime: start}, nil)
		if usable {
			subs = append(subs, &meterSub{subID: sub.ID, instanceID: sub.InstanceID, mode: mode})
		}
	}
	return subs
}

// meteringValue is the usage of record k of hour h of instance i, in
// ten-thousandths: different everywhere, with 1 to 4 decimals.
func meteringValue(i, h, k int) int64 {
	return int64(10000*(i+1) + 2500*h + 1234*k + 1)
}

// formatUnits writes ten-thousandths as decimal text: 15000 is "1.5".
func formatUnits(u int64) string {
	s := strconv.FormatInt(u/10000, 10)
	if frac := u % 10000; frac != 0 {
		s += "." + strings.TrimRight(strconv.FormatInt(frac+10000, 10)[1:], "0")
	}
	return s
}

// meteringReport reports two records per hour per instance, the first
// hour in one batch and the others in another, and checks every one is
// accepted. It returns the batches as sent.
func (r *runner) meteringReport(ctx context.Context, subs []*meterSub, start time.Time, run string) [][]usageRecord {
	cr := r.meteringCase("report")
	defer r.end(cr)
	batches := make([][]usageRecord, 2)
	for i, s := range subs {
		for h := range meteringHours {
			for k := range 2 {
				rec := usageRecord{
					IdempotencyKey: fmt.Sprintf("conformance-%s-%d-%d-%d", run, i, h, k),
					InstanceID:     s.instanceID,
					Value:          json.Number(formatUnits(meteringValue(i, h, k))),
					Time:           start.Add(time.Duration(h)*time.Hour + time.Duration(5+20*k)*time.Minute).Format(time.RFC3339),
				}
				b := min(h, 1)
				batches[b] = append(batches[b], rec)
			}
		}
	}
	for _, batch := range batches {
		res, ok := r.reportUsage(ctx, cr, batch, r.cfg.UsageToken)
		if !ok {
			continue
		}
		answered := time.Now()
		for j, got := range res {
			rec := batch[j]
			if got.Status != usageAccepted {
				cr.fail(RuleUsageAPI, "record %s (instance %s, %s at %s) answered %s, want accepted", rec.IdempotencyKey, rec.InstanceID, rec.Value, rec.Time, describeResult(got))
				continue
			}
			i, h := r.meteringIndex(subs, rec, start)
			if i >= 0 {
				u, _ := parseUnits(string(rec.Value))
				subs[i].hours[h] += u
				subs[i].reported[h] = answered
			}
		}
	}
	return batches
}

// meteringIndex finds the instance and hour a record reports.
func (r *runner) meteringIndex(subs []*meterSub, rec usageRecord, start time.Time) (int, int) {
	t, _ := time.Parse(time.RFC3339, rec.Time)
	h := int(t.Sub(start) / time.Hour)
	i := slices.IndexFunc(subs, func(s *meterSub) bool { return s.instanceID == rec.InstanceID })
	if h < 0 || h >= meteringHours {
		return -1, 0
	}
	return i, h
}

// parseUnits reads decimal text with at most 4 decimals as ten-thousandths.
func parseUnits(v string) (int64, bool) {
	d, err := protocol.ParseDecimal(v)
	return d.Units(), err == nil
}

func describeResult(res usageResult) string {
	if res.Error != "" {
		return fmt.Sprintf("%s (%s)", res.Status, res.Error)
	}
	return strconv.Quote(res.Status)
}

// meteringRefusals runs the cases the seller must answer duplicate or
// rejected.
func (r *runner) meteringRefusals(ctx context.Context, subs []*meterSub, start time.Time, run string, batches [][]usageRecord) {
	id := subs[0].instanceID
	one := func(key, value string, at time.Time) []usageRecord {
		return []usageRecord{{IdempotencyKey: fmt.Sprintf("conformance-%s-%s", run, key), InstanceID: id, Value: json.Number(value), Time: at.Format(time.RFC3339)}}
	}
	conflict := slices.Clone(batches[1][:1])
	u, _ := parseUnits(string(conflict[0].Value))
	conflict[0].Value = json.Number(formatUnits(u + 10000))
	unknown := one("unknown", "1", start.Add(time.Hour))
	unknown[0].InstanceID = "conformance-never-issued-" + run
	for _, c := range []struct {
		name  string
		batch []usageRecord
		want  string
		why   string
	}{
		{"repeat", batches[1], usageDuplicate, "it was accepted before with the same content"},
		{"conflict", conflict, usageRejected, "its key was accepted before with another value"},
		{"before-start", one("before-start", "1", start.Add(-30*time.Minute)), usageRejected, "the instance started at " + start.Format(time.RFC3339)},
		{"future", one("future", "1", time.Now().Add(time.Hour).Truncate(time.Second)), usageRejected, "it is an hour ahead"},
		{"precision", one("precision", "1.00001", start.Add(time.Hour)), usageRejected, "KooGallery takes at most 4 decimals"},
		{"unknown-instance", unknown, usageRejected, "the instance was never issued"},
	} {
		if ctx.Err() != nil {
			return
		}
		cr := r.meteringCase(c.name)
		res, ok := r.reportUsage(ctx, cr, c.batch, r.cfg.UsageToken)
		for j, got := range res {
			if ok && got.Status != c.want {
				cr.fail(meteringRules[c.name], "record %s (%s at %s) answered %s, want %s: %s", c.batch[j].IdempotencyKey, c.batch[j].Value, c.batch[j].Time, describeResult(got), c.want, c.why)
			}
		}
		r.end(cr)
	}
	r.meteringNoToken(ctx, one("no-token", "1", start.Add(time.Hour)))
}

// meteringNoToken sends a record without the token and with a wrong one:
// both must be refused with 401, and the record not taken.
func (r *runner) meteringNoToken(ctx context.Context, batch []usageRecord) {
	cr := r.meteringCase("no-token")
	defer r.end(cr)
	for _, token := range []string{"", "wrong-" + emulator.NewNonce()} {
		status, body, err := r.postUsage(ctx, cr, batch, token)
		what := "without a token"
		if token != "" {
			what = "with a wrong token"
		}
		switch {
		case err != nil:
			cr.fail(RuleUsageAPI, "the usage API %s: %v", what, err)
		case status != http.StatusUnauthorized:
			cr.fail(RuleUsageAPI, "the usage API answered HTTP %d %s, want 401: %s", status, what, cut(body, 200))
		}
	}
}

// reportUsage posts batch with token and reads the per-record answer; ok
// is false (and the case failed) when the answer is not one result per
// record, in order.
func (r *runner) reportUsage(ctx context.Context, cr *caseRun, batch []usageRecord, token string) ([]usageResult, bool) {
	status, body, err := r.postUsage(ctx, cr, batch, token)
	if err != nil {
		cr.fail(RuleUsageAPI, "the usage API: %v", err)
		return nil, false
	}
	if status != http.StatusOK {
		cr.fail(RuleUsageAPI, "the usage API answered HTTP %d, want 200 with a result per record: %s", status, cut(body, 300))
		return nil, false
	}
	var out struct {
		Results []usageResult `json:"results"`
	}
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		cr.fail(RuleUsageAPI, "the usage API's answer is not {\"results\":[…]}: %v", err)
		return nil, false
	}
	if len(out.Results) != len(batch) {
		cr.fail(RuleUsageAPI, "the usage API answered %d results for %d records", len(out.Results), len(batch))
		return nil, false
	}
	for j, res := range out.Results {
		if res.IdempotencyKey != batch[j].IdempotencyKey {
			cr.fail(RuleUsageAPI, "result %d is for idempotencyKey %q, want %q: results come in the order of the records", j, res.IdempotencyKey, batch[j].IdempotencyKey)
			return nil, false
		}
		switch res.Status {
		case usageAccepted, usageDuplicate:
		case usageRejected:
			if res.Error == "" {
				cr.fail(RuleUsageAPI, "record %s was rejected without an error saying why", res.IdempotencyKey)
			}
		default:
			cr.fail(RuleUsageAPI, "record %s answered status %q: want accepted, duplicate or rejected", res.IdempotencyKey, res.Status)
		}
	}
	return out.Results, true
}

// usageAPIInterface names the usage API's exchanges in the report.
const usageAPIInterface = "usage API"

// maxUsageAnswer bounds the usage API answer read.
const maxUsageAnswer = 1 << 20

// postUsage posts batch to the usage API, recording the exchange (without
// the token).
func (r *runner) postUsage(ctx context.Context, cr *caseRun, batch []usageRecord, token string) (int, string, error) {
	body, err := json.Marshal(struct {
		Records []usageRecord `json:"records"`
	}{batch})
	if err != nil {
		return 0, "", fmt.Errorf("internal: encode the records: %w", err)
	}
	x := Exchange{Interface: usageAPIInterface, Request: emulator.HTTPRecord{Method: http.MethodPost, URL: emulator.RedactURL(r.cfg.UsageURL), Body: string(body)}}
	defer func() { cr.c.Exchanges = append(cr.c.Exchanges, x) }()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.cfg.UsageURL, bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	began := time.Now()
	resp, err := r.httpClient().Do(req)
	x.Duration = time.Since(began)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxUsageAnswer))
	x.Response = &emulator.HTTPRecord{Status: resp.StatusCode, Header: map[string]string{"Content-Type": resp.Header.Get("Content-Type")}, Body: string(b)}
	if err != nil {
		return 0, "", fmt.Errorf("read the answer: %w", err)
	}
	return resp.StatusCode, string(b), nil
}

func (r *runner) httpClient() *http.Client {
	if r.cfg.HTTPClient != nil {
		return r.cfg.HTTPClient
	}
	return http.DefaultClient
}

// hourKey names an hour of an instance.
type hourKey struct {
	instance string
	begin    int64 // Unix seconds
}

func (k hourKey) hour() string { return time.Unix(k.begin, 0).UTC().Format(time.RFC3339) }

// sortedHours returns the keys of m by instance, then hour: failures are
// listed in a stable order.
func sortedHours[V any](m map[hourKey]V) []hourKey {
	keys := make([]hourKey, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b hourKey) int {
		if c := strings.Compare(a.instance, b.instance); c != 0 {
			return c
		}
		return cmp.Compare(a.begin, b.begin)
	})
	return keys
}

// meteringPushCases are the cases judging the pushes, in report order.
var meteringPushCases = []string{"pushed", "on-time", "not-early", "retry", "once", "totals"}

// pushFacts is what the pushes are judged on: what was reported, and
// what arrived.
type pushFacts struct {
	subs     []*meterSub
	want     map[hourKey]int64     // usage reported per (instance, hour)
	reported map[hourKey]time.Time // when each hour's usage was reported
	posted   time.Time             // when the report ended
	wait     time.Duration
	billed   map[string]emulator.BilledInstance // what the mocked Open API kept
	gate     gateView                           // every push, as it arrived
}

// meteringPushes watches the pushes until they have settled, then judges
// them.
func (r *runner) meteringPushes(ctx context.Context, subs []*meterSub, start, posted time.Time) {
	cases := map[string]*caseRun{}
	for _, id := range meteringPushCases {
		cases[id] = r.meteringCase(id)
	}
	defer func() {
		for _, id := range meteringPushCases {
			r.end(cases[id])
		}
	}()
	f := &pushFacts{subs: subs, want: map[hourKey]int64{}, reported: map[hourKey]time.Time{}, posted: posted, wait: r.usageWait()}
	for _, s := range subs {
		for h, u := range s.hours {
			if u > 0 {
				k := hourKey{s.instanceID, start.Add(time.Duration(h) * time.Hour).Unix()}
				f.want[k], f.reported[k] = u, s.reported[h]
			}
		}
	}
	if len(f.want) == 0 {
		for _, id := range meteringPushCases {
			cases[id].fail(RuleNotRun, "not run: metering/report had no usage accepted")
		}
		return
	}
	r.watchPushes(ctx, f, posted.Add(f.wait), r.usageQuiet())
	// Read again once settled: what came during the quiet window counts.
	r.readPushes(f)
	f.judgePushed(cases["pushed"])
	if len(cases["pushed"].c.Failures) > 0 {
		if refused := r.refusedPushes(); refused != "" {
			cases["pushed"].c.Note = "the mocked Open API refused usage pushes: " + refused
		}
	}
	f.judgeOnTime(cases["on-time"])
	f.judgeNotEarly(cases["not-early"])
	f.judgeRetry(cases["retry"])
	f.judgeOnce(cases["once"])
	f.judgeTotals(cases["totals"], start)
}

// usageWait is Config.UsageWait or its default.
func (r *runner) usageWait() time.Duration {
	if r.cfg.UsageWait > 0 {
		return r.cfg.UsageWait
	}
	return DefaultUsageWait
}

// usageQuiet is Config.UsageQuiet or its default.
func (r *runner) usageQuiet() time.Duration {
	if r.cfg.UsageQuiet > 0 {
		return r.cfg.UsageQuiet
	}
	return DefaultUsageQuiet
}

// readPushes reads what the mocked Open API kept and what the gate saw.
func (r *runner) readPushes(f *pushFacts) {
	f.billed = map[string]emulator.BilledInstance{}
	for _, s := range f.subs {
		f.billed[s.instanceID], _ = r.e.BilledInstance(s.instanceID)
	}
	f.gate = gateView{held: -1}
	if r.gate != nil {
		f.gate = r.gate.view()
	}
}

// watchPushes polls until the pushes have settled (pushFacts.settled), the
// deadline passes or ctx ends.
func (r *runner) watchPushes(ctx context.Context, f *pushFacts, deadline time.Time, quiet time.Duration) {
	for {
		r.readPushes(f)
		now := time.Now()
		if f.settled(now, quiet) || !now.Before(deadline) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(meteringPoll):
		}
	}
}

// settled reports whether every hour reported is kept, the held push has
// been let go and sent again, and no push has arrived for quiet: judging
// earlier would miss a period pushed twice a few seconds apart.
func (f *pushFacts) settled(now time.Time, quiet time.Duration) bool {
	for k := range f.want {
		if _, found := keptPeriod(f.billed[k.instance], k.begin); !found {
			return false
		}
	}
	g := f.gate
	if g.held >= 0 {
		if missing, _ := f.notRetried(); !g.released || len(missing) > 0 {
			return false
		}
	}
	return g.pending == 0 && now.Sub(g.last) >= quiet
}

// ours reports whether id is an instance the profile bought.
func (f *pushFacts) ours(id string) bool {
	return slices.ContainsFunc(f.subs, func(s *meterSub) bool { return s.instanceID == id })
}

// key names the hour a pushed record is for; false for a record of
// another instance or without a readable begin_time.
func (f *pushFacts) key(rec pushedRecord) (hourKey, bool) {
	b, err := protocol.ParseUsageTime(rec.BeginTime)
	if err != nil || !f.ours(rec.InstanceID) {
		return hourKey{}, false
	}
	return hourKey{rec.InstanceID, b.Unix()}, true
}

// notRetried lists the hours of the held push that no later push carried,
// and when the last of the others was sent again.
func (f *pushFacts) notRetried() ([]hourKey, time.Time) {
	g := f.gate
	if g.held < 0 {
		return nil, time.Time{}
	}
	again := map[hourKey]time.Time{}
	for _, p := range g.pushes[g.held+1:] {
		for _, rec := range p.records {
			if k, ok := f.key(rec); ok && again[k].IsZero() {
				again[k] = p.at
			}
		}
	}
	var (
		missing []hourKey
		last    time.Time
	)
	for _, rec := range g.pushes[g.held].records {
		k, ok := f.key(rec)
		switch {
		case !ok || slices.Contains(missing, k):
		case again[k].IsZero():
			missing = append(missing, k)
		case again[k].After(last):
			last = again[k]
		}
	}
	return missing, last
}

// judgePushed: every hour arrived, within the wait.
func (f *pushFacts) judgePushed(cr *caseRun) {
	var slowest time.Duration
	for _, k := range sortedHours(f.want) {
		p, found := keptPeriod(f.billed[k.instance], k.begin)
		switch {
		case !found:
			cr.fail(RuleUsagePushed, "instance %s, hour %s: not pushed within %v of the report", k.instance, k.hour(), f.wait)
		case p.Received.Sub(f.posted) > f.wait:
			cr.fail(RuleUsagePushed, "instance %s, hour %s: pushed %v after the report, more than %v", k.instance, k.hour(), p.Received.Sub(f.posted).Round(time.Second), f.wait)
		default:
			slowest = max(slowest, p.Received.Sub(f.posted))
		}
	}
	if len(cr.c.Failures) == 0 {
		cr.c.Note = fmt.Sprintf("%d hours pushed, the last %v after the report", len(f.want), slowest.Round(time.Millisecond))
	}
}

// judgeOnTime: each hour's kept record arrived soon enough after its
// usage was reported. All three hours have closed when the usage is
// reported, so KooGallery's next collection (minute 15 of the hour) is at
// most 15 minutes away; the bound is that, or the wait when shorter.
func (f *pushFacts) judgeOnTime(cr *caseRun) {
	bound := min(f.wait, usageCollection)
	var (
		slowest time.Duration
		kept    int
	)
	for _, k := range sortedHours(f.want) {
		p, found := keptPeriod(f.billed[k.instance], k.begin)
		if !found {
			continue // metering/pushed names it
		}
		kept++
		d := p.Received.Sub(f.reported[k])
		if d > bound {
			cr.fail(RuleUsageOnTime, "instance %s, hour %s: pushed %v after its usage was reported, later than %v (the smaller of the wait and 15 min): KooGallery collects an hourly product's usage at minute 15, so a closed hour must be pushed before the next collection",
				k.instance, k.hour(), d.Round(time.Second), bound)
			continue
		}
		slowest = max(slowest, d)
	}
	if len(cr.c.Failures) > 0 {
		return
	}
	cr.c.Note = fmt.Sprintf("%d hours kept, each within %v of its report (the bound: %v, the smaller of the wait and 15 min)", kept, slowest.Round(time.Millisecond), bound)
	if kept < len(f.want) {
		cr.c.Note += fmt.Sprintf("; %d never arrived (metering/pushed)", len(f.want)-kept)
	}
}

// judgeNotEarly: no record arrived before its period's end_time, whatever
// the Open API answered.
func (f *pushFacts) judgeNotEarly(cr *caseRun) {
	seen := map[pushedRecord]bool{}
	n := 0
	for _, p := range f.gate.pushes {
		for _, rec := range p.records {
			end, err := protocol.ParseUsageTime(rec.EndTime)
			if err != nil || !f.ours(rec.InstanceID) {
				continue
			}
			n++
			if !end.After(p.at.Add(meteringClockSkew)) || seen[rec] {
				continue
			}
			seen[rec] = true
			begin := rec.BeginTime
			if b, err := protocol.ParseUsageTime(rec.BeginTime); err == nil {
				begin = b.Format(time.RFC3339)
			}
			cr.fail(RuleUsageNotEarly, "instance %s: a record for %s to %s (metering_sn %s) arrived at %s, %v before its period ends: push a period once it has closed, with all its usage",
				rec.InstanceID, begin, end.Format(time.RFC3339), rec.MeteringSN, p.at.UTC().Format(time.RFC3339), end.Sub(p.at).Round(time.Second))
		}
	}
	if len(cr.c.Failures) == 0 {
		cr.c.Note = fmt.Sprintf("%d records received, none before its period's end", n)
	}
}

// judgeRetry: the push the gate held was sent again.
func (f *pushFacts) judgeRetry(cr *caseRun) {
	g := f.gate
	switch {
	case g.held < 0:
		cr.fail(RuleNotRun, "not run: the mocked Open API kept no usage push, so there was none to hold (metering/pushed)")
		return
	case !g.released:
		cr.fail(RuleUsageRetry, "the push the mocked Open API kept, then did not answer, was still waiting for its answer when the wait (%v) ended: a usage push needs a timeout, then a retry", f.wait)
		return
	}
	gaveUp := fmt.Sprintf("the seller gave up after %v", g.heldFor.Round(100*time.Millisecond))
	if g.cut {
		gaveUp = fmt.Sprintf("the seller did not give up: the connection was cut after %v", g.heldFor.Round(time.Second))
	}
	missing, last := f.notRetried()
	for _, k := range missing {
		cr.fail(RuleUsageRetry, "instance %s, hour %s: the push the mocked Open API kept, then did not answer (%s), was not sent again within the wait: a push whose answer is lost must be sent again, with the same metering_sn (KooGallery keeps the first and ignores the repeat)",
			k.instance, k.hour(), gaveUp)
	}
	if len(missing) == 0 {
		held := g.pushes[g.held]
		cr.c.Note = fmt.Sprintf("the first push kept (%d records) was held unanswered, %s; it was sent again, the last of it %v after the held push arrived",
			len(held.records), gaveUp, last.Sub(held.at).Round(time.Millisecond))
	}
}

// judgeOnce: per instance, the kept records are exactly the hours with
// usage, and every record received for an hour, retries and refused
// pushes included, carried one metering_sn.
func (f *pushFacts) judgeOnce(cr *caseRun) {
	sns := map[hourKey]map[string]bool{}
	for _, p := range f.gate.pushes {
		for _, rec := range p.records {
			if k, ok := f.key(rec); ok {
				if sns[k] == nil {
					sns[k] = map[string]bool{}
				}
				sns[k][rec.MeteringSN] = true
			}
		}
	}
	for _, k := range sortedHours(sns) {
		if set := sns[k]; len(set) > 1 {
			cr.fail(RuleUsageOnce, "instance %s, hour %s: pushed under %d metering_sn (%s): every push of a period, retries included, must carry the same one", k.instance,
				k.hour(), len(set), strings.Join(sortedKeys(set), ", "))
		}
	}
	duplicates := 0
	for _, s := range f.subs {
		in := f.billed[s.instanceID]
		duplicates += in.Duplicates
		for _, p := range in.Periods {
			if _, ok := f.want[hourKey{s.instanceID, p.Begin.Unix()}]; !ok || !p.End.Equal(p.Begin.Add(time.Hour)) {
				cr.fail(RuleUsageOnce, "instance %s: a record for %s to %s (metering_sn %s, %s) was kept beside the hours with usage: a period billed twice, or usage where none was reported",
					s.instanceID, p.Begin.Format(time.RFC3339), p.End.Format(time.RFC3339), p.MeteringSN, p.ValueText)
			}
		}
	}
	if len(cr.c.Failures) == 0 {
		cr.c.Note = fmt.Sprintf("one metering_sn per hour over %d pushes; %d records received again were ignored as duplicates", len(f.gate.pushes), duplicates)
	}
	if f.gate.dropped > 0 {
		cr.c.Note = strings.TrimPrefix(cr.c.Note+fmt.Sprintf("; %d pushes past the first %d records were not read", f.gate.dropped, maxGateRecords), "; ")
	}
}

// judgeTotals: what was billed per hour and per instance is what was
// reported.
func (f *pushFacts) judgeTotals(cr *caseRun, start time.Time) {
	for _, s := range f.subs {
		in := f.billed[s.instanceID]
		for h, u := range s.hours {
			p, found := keptPeriod(in, start.Add(time.Duration(h)*time.Hour).Unix())
			if found && p.Value != u {
				cr.fail(RuleUsageTotals, "instance %s, hour %s: billed %s, reported %s", s.instanceID, p.Begin.Format(time.RFC3339), p.ValueText, formatUnits(u))
			}
		}
		if in.Total != s.total() {
			cr.fail(RuleUsageTotals, "instance %s: billed %s in all, reported %s", s.instanceID, in.TotalText, formatUnits(s.total()))
		}
	}
}

// keptPeriod finds the kept record of the period beginning at begin.
func keptPeriod(in emulator.BilledInstance, begin int64) (emulator.BilledPeriod, bool) {
	for _, p := range in.Periods {
		if p.Begin.Unix() == begin {
			return p, true
		}
	}
	return emulator.BilledPeriod{}, false
}

// refusedPushes sums up the usage pushes the mocked Open API did not take:
// each error code with how many times it was answered.
func (r *runner) refusedPushes() string {
	counts := map[string]int{}
	for _, req := range r.e.OpenAPIRequests() {
		if req.Path != mockapi.UsagePath && req.Path != mockapi.OldUsagePath || req.Code == protocol.MKTSuccess {
			continue
		}
		code := req.Code
		if code == "" {
			code = fmt.Sprintf("HTTP %d", req.Status)
		}
		counts[code]++
	}
	var parts []string
	for _, code := range sortedKeys(counts) {
		parts = append(parts, fmt.Sprintf("%s ×%d", code, counts[code]))
	}
	return strings.Join(parts, ", ")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// meteringQuery plays queryInstance on each instance: its usageInfo must
// hold the usage reported (for a package, the entry of its own usage).
func (r *runner) meteringQuery(ctx context.Context, subs []*meterSub) {
	cr := r.meteringCase("query")
	defer r.end(cr)
	for _, s := range subs {
		if ctx.Err() != nil {
			return
		}
		before := len(cr.c.Exchanges)
		run, err := r.e.Play(ctx, s.subID, "query")
		r.addRun(cr, run, err)
		if err != nil {
			continue
		}
		var reply *protocol.QueryInstanceResponse
		for _, x := range cr.c.Exchanges[before:] {
			var q protocol.QueryInstanceResponse
			if x.Interface == protocol.ActivityQueryInstance && x.Response != nil && x.ResultCode == protocol.CodeSuccess &&
				json.Unmarshal([]byte(x.Response.Body), &q) == nil {
				reply = &q
			}
		}
		if reply == nil {
			continue // the emulator's checks have said what was wrong
		}
		want := formatUnits(s.total())
		var seen []string
		found := false
		for _, in := range reply.Info {
			if in.InstanceID != s.instanceID {
				continue
			}
			for _, u := range in.UsageInfo {
				seen = append(seen, fmt.Sprintf("%s (relatedInstanceId %q)", u.UsageValue.String(), u.RelatedInstanceID))
				if (u.RelatedInstanceID == "" || u.RelatedInstanceID == s.instanceID) && u.UsageValue.String() == want {
					found = true
				}
			}
		}
		if !found {
			got := "no usageInfo"
			if len(seen) > 0 {
				got = "usageInfo " + strings.Join(seen, ", ")
			}
			cr.fail(RuleUsageInfo, "queryInstance for %s instance %s answered %s, want a usageValue of %s: the usage reported", s.mode, s.instanceID, got, want)
		}
	}
}
