package conformance

import (
	"bytes"
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
// within Config.UsageWait; and queryInstance's usageInfo.

// DefaultUsageWait is how long the metering profile waits for the
// seller's usage pushes unless Config.UsageWait says otherwise.
const DefaultUsageWait = 5 * time.Minute

// Suite rules of the metering profile.
const (
	RuleUsageAPI        = "usage-api"        // the usage API answers each record, in order: accepted for new usage
	RuleUsageIdempotent = "usage-idempotent" // a repeated record is a duplicate; its key with other content is rejected
	RuleUsageValidation = "usage-validation" // usage before the start, in the future, over-precise or of an unknown instance is rejected
	RuleUsagePushed     = "usage-pushed"     // every period with usage is pushed, within the wait
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
	hours                   [meteringHours]int64 // accepted usage per hour, ten-thousandths
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
		for _, id := range []string{"report", "repeat", "conflict", "before-start", "future", "precision", "unknown-instance", "no-token", "pushed", "once", "totals", "query"} {
			cr := r.begin("metering/"+id, meteringTitles[id], suiteSpec[meteringRules[id]])
			cr.fail(RuleNotRun, "not run: metering/purchase left no pay-per-use instance to report usage of")
			r.end(cr)
		}
		return
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
	"once":             "each hour arrives once: one kept record and one metering_sn per (instance, hour), retries carrying the same",
	"totals":           "what KooGallery billed per hour and per instance is what was reported",
	"query":            "queryInstance's usageInfo is the instance's cumulative usage",
}

// meteringRules are the rules the metering cases check, by case name.
var meteringRules = map[string]string{
	"report": RuleUsageAPI, "repeat": RuleUsageIdempotent, "conflict": RuleUsageIdempotent,
	"before-start": RuleUsageValidation, "future": RuleUsageValidation, "precision": RuleUsageValidation,
	"unknown-instance": RuleUsageValidation, "no-token": RuleUsageAPI, "pushed": RuleUsagePushed,
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
// two hours in one batch and the last in another, and checks every one is
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
	if err != nil {
		return 0, false
	}
	ip, frac, _ := strings.Cut(d.String(), ".")
	i, _ := strconv.ParseInt(ip, 10, 64)
	f, _ := strconv.ParseInt(frac+strings.Repeat("0", 4-len(frac)), 10, 64)
	return i*10000 + f, true
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

// meteringPushes waits for the pushes, then judges them.
func (r *runner) meteringPushes(ctx context.Context, subs []*meterSub, start, posted time.Time) {
	pushed, once, totals := r.meteringCase("pushed"), r.meteringCase("once"), r.meteringCase("totals")
	defer func() {
		r.end(pushed)
		r.end(once)
		r.end(totals)
	}()
	want := map[hourKey]int64{}
	for _, s := range subs {
		for h, u := range s.hours {
			if u > 0 {
				want[hourKey{s.instanceID, start.Add(time.Duration(h) * time.Hour).Unix()}] = u
			}
		}
	}
	if len(want) == 0 {
		for _, cr := range []*caseRun{pushed, once, totals} {
			cr.fail(RuleNotRun, "not run: metering/report had no usage accepted")
		}
		return
	}
	deadline := posted.Add(r.usageWait())
	billed := r.waitPushes(ctx, subs, want, deadline)

	// pushed: every hour arrived, within the wait.
	var slowest time.Duration
	for k := range want {
		p, found := keptPeriod(billed[k.instance], k.begin)
		switch {
		case !found:
			pushed.fail(RuleUsagePushed, "instance %s, hour %s: not pushed within %v of the report", k.instance, time.Unix(k.begin, 0).UTC().Format(time.RFC3339), r.usageWait())
		case p.Received.Sub(posted) > r.usageWait():
			pushed.fail(RuleUsagePushed, "instance %s, hour %s: pushed %v after the report, more than %v", k.instance, p.Begin.Format(time.RFC3339), p.Received.Sub(posted).Round(time.Second), r.usageWait())
		default:
			slowest = max(slowest, p.Received.Sub(posted))
		}
	}
	if len(pushed.c.Failures) > 0 {
		if refused := r.refusedPushes(); refused != "" {
			pushed.c.Note = "the mocked Open API refused usage pushes: " + refused
		}
	} else {
		pushed.c.Note = fmt.Sprintf("%d hours pushed, the last %v after the report", len(want), slowest.Round(time.Millisecond))
	}

	// once: per instance, kept records are exactly the hours with usage,
	// and every record of an hour carried one metering_sn.
	sns := map[hourKey]map[string]bool{}
	retries := 0
	for _, rec := range r.e.UsageRecords() {
		b, err := protocol.ParseUsageTime(rec.BeginTime)
		if err != nil || !slices.ContainsFunc(subs, func(s *meterSub) bool { return s.instanceID == rec.InstanceID }) {
			continue
		}
		k := hourKey{rec.InstanceID, b.Unix()}
		if sns[k] == nil {
			sns[k] = map[string]bool{}
		}
		sns[k][rec.MeteringSN] = true
		if rec.Duplicate {
			retries++
		}
	}
	for k, set := range sns {
		if len(set) > 1 {
			once.fail(RuleUsageOnce, "instance %s, hour %s: pushed under %d metering_sn (%s): every push of a period must carry the same one", k.instance,
				time.Unix(k.begin, 0).UTC().Format(time.RFC3339), len(set), strings.Join(sortedKeys(set), ", "))
		}
	}
	for _, s := range subs {
		for _, p := range billed[s.instanceID].Periods {
			if _, ok := want[hourKey{s.instanceID, p.Begin.Unix()}]; !ok || !p.End.Equal(p.Begin.Add(time.Hour)) {
				once.fail(RuleUsageOnce, "instance %s: a record for %s to %s (metering_sn %s, %s) was kept beside the hours with usage: a period billed twice, or usage where none was reported",
					s.instanceID, p.Begin.Format(time.RFC3339), p.End.Format(time.RFC3339), p.MeteringSN, p.ValueText)
			}
		}
	}
	if retries > 0 && len(once.c.Failures) == 0 {
		once.c.Note = fmt.Sprintf("%d repeated records were ignored as duplicates (retries carrying the same metering_sn)", retries)
	}

	// totals: per hour and per instance.
	for _, s := range subs {
		in := billed[s.instanceID]
		for h, u := range s.hours {
			p, found := keptPeriod(in, start.Add(time.Duration(h)*time.Hour).Unix())
			if found && p.Value != u {
				totals.fail(RuleUsageTotals, "instance %s, hour %s: billed %s, reported %s", s.instanceID, p.Begin.Format(time.RFC3339), p.ValueText, formatUnits(u))
			}
		}
		if in.Total != s.total() {
			totals.fail(RuleUsageTotals, "instance %s: billed %s in all, reported %s", s.instanceID, in.TotalText, formatUnits(s.total()))
		}
	}
}

// usageWait is Config.UsageWait or its default.
func (r *runner) usageWait() time.Duration {
	if r.cfg.UsageWait > 0 {
		return r.cfg.UsageWait
	}
	return DefaultUsageWait
}

// waitPushes polls the emulator until every hour of want is billed, the
// deadline passes or ctx ends, and returns what was billed per instance.
func (r *runner) waitPushes(ctx context.Context, subs []*meterSub, want map[hourKey]int64, deadline time.Time) map[string]emulator.BilledInstance {
	billed := map[string]emulator.BilledInstance{}
	for {
		for _, s := range subs {
			billed[s.instanceID], _ = r.e.BilledInstance(s.instanceID)
		}
		all := true
		for k := range want {
			if _, found := keptPeriod(billed[k.instance], k.begin); !found {
				all = false
				break
			}
		}
		if all || !time.Now().Before(deadline) {
			return billed
		}
		select {
		case <-ctx.Done():
			return billed
		case <-time.After(meteringPoll):
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
