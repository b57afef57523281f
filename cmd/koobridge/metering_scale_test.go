package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/store/postgres/pgtest"
	"github.com/koobridge/koobridge/internal/usage"
	"github.com/koobridge/koobridge/internal/usageapi"
)

// The metering scale run (issue 15, "Tests and measurements"): usage
// records reported through the usage API of real "koobridge serve"
// processes, summed per instance and hour, and pushed to a real
// "koobridge emulate" whose usage pushes fail or time out at random. The
// CI size runs by default; KOOBRIDGE_METERING_SCALE=full runs the million
// records over 1,000 instances and logs the measurements bench/RESULTS.md
// records (see its Metering section for the command).

const (
	meteringKey     = "metering-scale-key-0123456789"
	meteringToken   = "metering-usage-token-0123456789abcdef"
	meteringProduct = "OFFI-EMU-ONDEMAND" // the emulator's pay-per-use product
	// meteringBatch is the records per request: the API's maximum.
	meteringBatch = 1000
)

// meteringPlan is the usage a scale run reports: perPeriod records for
// each instance and each of hours closed hours, the first beginning at
// start (the instances' orders were placed in the hour before). Batches
// hold whole periods (an hour of one instance is never split over two
// requests): a record that arrives for a period already pushed is billed
// in the instance's current hour (docs/metering.md), which closes up to
// an hour after the run, so a run that pushes while it ingests must not
// split one.
type meteringPlan struct {
	instances, hours, perPeriod int
	failRate                    float64 // the emulator's usageFailRate
	// outage is how long after the last record acknowledged the pushes
	// go on failing at most (0: until every period is billed). It bounds
	// the CI run: faults in a row double the backoff from 1 s each time.
	outage  time.Duration
	clients int // concurrent requests
	start   time.Time
}

// meteringPlanFromEnv is the CI size, or the full size with
// KOOBRIDGE_METERING_SCALE=full; KOOBRIDGE_METERING_FAIL_RATE and
// KOOBRIDGE_METERING_CLIENTS override the fail rate (0.3) and the
// concurrent requests (4), and KOOBRIDGE_METERING_SERVE_ARGS adds flags
// to every serve process (space-separated, e.g. "--job-workers 16"), for
// experiments.
func meteringPlanFromEnv(t *testing.T) (meteringPlan, bool) {
	t.Helper()
	// Many short periods at CI size: 10,000 periods make ten pushes or
	// more, so the faults meet several of them.
	p := meteringPlan{instances: 100, hours: 100, perPeriod: 2, failRate: 0.3, outage: time.Minute, clients: 4}
	full := false
	switch s := os.Getenv("KOOBRIDGE_METERING_SCALE"); s {
	case "", "ci":
	case "full":
		p.instances, p.hours, p.perPeriod, p.outage, full = 1000, 20, 50, 0, true
	default:
		t.Fatalf("KOOBRIDGE_METERING_SCALE=%q: want ci or full", s)
	}
	if s := os.Getenv("KOOBRIDGE_METERING_FAIL_RATE"); s != "" {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || f < 0 || f > 1 {
			t.Fatalf("KOOBRIDGE_METERING_FAIL_RATE=%q: want 0 to 1", s)
		}
		p.failRate = f
	}
	if s := os.Getenv("KOOBRIDGE_METERING_CLIENTS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 64 {
			t.Fatalf("KOOBRIDGE_METERING_CLIENTS=%q: want 1 to 64", s)
		}
		p.clients = n
	}
	// The hours end at the last whole hour: every record is in a closed
	// period, pushed as soon as the seal job runs.
	p.start = time.Now().UTC().Truncate(time.Hour).Add(-time.Duration(p.hours) * time.Hour)
	return p, full
}

func (p meteringPlan) records() int         { return p.instances * p.hours * p.perPeriod }
func (p meteringPlan) periods() int         { return p.instances * p.hours }
func (p meteringPlan) periodsPerBatch() int { return max(1, meteringBatch/p.perPeriod) }
func (p meteringPlan) batches() int {
	return (p.periods() + p.periodsPerBatch() - 1) / p.periodsPerBatch()
}

// value is the usage of record j of instance i in hour h, in
// ten-thousandths: 0.0001 to 20, four decimals, the same on every call.
func (p meteringPlan) value(i, h, j int) int64 {
	x := uint64(i)*1_000_003 + uint64(h)*10_007 + uint64(j)*101 + 7
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	return int64(x%200_000) + 1
}

// periodTotal is what instance i reported for hour h.
func (p meteringPlan) periodTotal(i, h int) int64 {
	var sum int64
	for j := range p.perPeriod {
		sum += p.value(i, h, j)
	}
	return sum
}

// units writes ten-thousandths as a JSON number: 15000 is 1.5.
func units(u int64) string {
	s := strconv.FormatInt(u/10000, 10)
	if frac := u % 10000; frac != 0 {
		s += "." + strings.TrimRight(strconv.FormatInt(frac+10000, 10)[1:], "0")
	}
	return s
}

// body is the request of batch b for the instances ids: its periods are
// hour-major (every instance's first hour, then the second, …), so the
// older hours are reported first, as a product reporting as it goes would.
func (p meteringPlan) body(b int, ids []string) []byte {
	var buf bytes.Buffer
	buf.Grow(meteringBatch * 140)
	buf.WriteString(`{"records":[`)
	first := true
	for q := b * p.periodsPerBatch(); q < min((b+1)*p.periodsPerBatch(), p.periods()); q++ {
		h, i := q/p.instances, q%p.instances
		hour := p.start.Add(time.Duration(h) * time.Hour)
		for j := range p.perPeriod {
			if !first {
				buf.WriteByte(',')
			}
			first = false
			at := hour.Add(time.Duration(j) * time.Hour / time.Duration(p.perPeriod)).Add(time.Second)
			fmt.Fprintf(&buf, `{"idempotencyKey":"m-%d-%d-%d","instanceId":%q,"value":%s,"time":%q}`,
				i, h, j, ids[i], units(p.value(i, h, j)), at.Format(time.RFC3339))
		}
	}
	buf.WriteString(`]}`)
	return buf.Bytes()
}

// usageAnswer is the usage API's answer.
type usageAnswer struct {
	Results []struct {
		IdempotencyKey string `json:"idempotencyKey"`
		Status         string `json:"status"`
		Error          string `json:"error"`
	} `json:"results"`
	Error string `json:"error"`
}

// postUsage sends one batch and returns the answer; a 503 (nothing
// acknowledged) is sent again, as the API asks.
func postUsage(ctx context.Context, client *http.Client, base string, body []byte) (usageAnswer, error) {
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+usageapi.Path, bytes.NewReader(body))
		if err != nil {
			return usageAnswer{}, err
		}
		req.Header.Set("Authorization", "Bearer "+meteringToken)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return usageAnswer{}, err
		}
		raw, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return usageAnswer{}, fmt.Errorf("read answer: %w", err)
		}
		if resp.StatusCode == http.StatusServiceUnavailable && attempt < 10 {
			time.Sleep(time.Second)
			continue
		}
		var a usageAnswer
		if err := json.Unmarshal(raw, &a); err != nil {
			return usageAnswer{}, fmt.Errorf("status %d, answer %.200q: %w", resp.StatusCode, raw, err)
		}
		if resp.StatusCode != http.StatusOK {
			return a, fmt.Errorf("status %d: %s", resp.StatusCode, a.Error)
		}
		return a, nil
	}
}

// ingestStats is what sending the batches measured.
type ingestStats struct {
	first, lastAck time.Time // the first request sent, the last answer read
	elapsed        time.Duration
}

func (s ingestStats) rate(records int) float64 { return float64(records) / s.elapsed.Seconds() }

// ingest sends the first n batches of the plan, batch b to
// bases[b%len(bases)], p.clients at a time, and checks that every record
// was answered want.
func (p meteringPlan) ingest(t *testing.T, bases []string, ids []string, n int, want string) ingestStats {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := loadClient(waitLong)
	var (
		next    atomic.Int64
		mu      sync.Mutex
		lastAck time.Time
		errs    []error
	)
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
		cancel()
	}
	first := time.Now()
	var wg sync.WaitGroup
	for range p.clients {
		wg.Go(func() {
			for ctx.Err() == nil {
				b := int(next.Add(1) - 1)
				if b >= n {
					return
				}
				body := p.body(b, ids)
				a, err := postUsage(ctx, client, bases[b%len(bases)], body)
				if err != nil {
					fail(fmt.Errorf("batch %d: %w", b, err))
					return
				}
				at := time.Now()
				for _, r := range a.Results {
					if r.Status != want {
						fail(fmt.Errorf("batch %d: record %s is %s, want %s: %s", b, r.IdempotencyKey, r.Status, want, r.Error))
						return
					}
				}
				if n := bytes.Count(body, []byte(`"idempotencyKey"`)); len(a.Results) != n {
					fail(fmt.Errorf("batch %d: %d results for %d records", b, len(a.Results), n))
					return
				}
				mu.Lock()
				if at.After(lastAck) {
					lastAck = at
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return ingestStats{first: first, lastAck: lastAck, elapsed: lastAck.Sub(first)}
}

// meteringWorld is one run's processes: the emulator and the replicas of
// koobridge serve, all on one database.
type meteringWorld struct {
	em    *emulateProc
	bases []string
}

// startMeteringWorld starts the emulator (KooGallery and its Open API),
// then replicas serve processes on db pushing every second without
// settling, the first at the address the emulator calls.
func startMeteringWorld(t *testing.T, db string, replicas int, extra ...string) *meteringWorld {
	t.Helper()
	first := "127.0.0.1:" + strconv.Itoa(freePort(t))
	em := startEmulate(t, "--listen", "127.0.0.1:0", "--target", "http://"+first+"/produce",
		"--key", meteringKey, "--ak", testAK, "--sk", testSK)
	w := &meteringWorld{em: em}
	for r := range replicas {
		listen := "127.0.0.1:0"
		if r == 0 {
			listen = first
		}
		args := append([]string{"--listen", listen, "--db", db, "--key", meteringKey, "--data-key", replicaDataKey,
			"--ak", testAK, "--sk", testSK, "--openapi-url", em.base, "--admin-token", adminToken,
			"--usage-token", meteringToken, "--usage-push-interval", "1s", "--usage-settle", "0s"}, extra...)
		args = append(args, strings.Fields(os.Getenv("KOOBRIDGE_METERING_SERVE_ARGS"))...)
		w.bases = append(w.bases, startServe(t, args...).base)
	}
	return w
}

// setFaults replaces the emulator's faults.
func (w *meteringWorld) setFaults(t *testing.T, body string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, w.em.base+"/api/emulator/faults", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT faults %s: %d %s", body, resp.StatusCode, raw)
	}
}

// buy places n pay-per-use purchases, eight at a time, the orders placed
// in the hour before first (purchase i at first - 1 - i%60 minutes, so
// that every billed hour is after the start), and returns the instance
// IDs koobridge answered, in purchase order, checking they are n
// distinct instances.
//
// The order times are spread because the emulator's order IDs are the
// order time's minute and five random characters: a thousand orders in
// one minute repeat an ID about once in 70 runs, and koobridge rightly
// takes the second purchase for a repeat of the first (one instance for
// two subscriptions).
func (w *meteringWorld) buy(t *testing.T, n int, first time.Time) []string {
	t.Helper()
	orderTime := func(i int) time.Time { return first.Add(-time.Duration(1+i%60) * time.Minute) }
	subs := make([]string, n)
	errs := make([]error, n)
	client := loadClient(2 * waitLong)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				body := fmt.Sprintf(`{"productId":%q,"orderTime":%q}`, meteringProduct, orderTime(i).Format(time.RFC3339))
				status, raw, err := emulatorPurchase(client, w.em.base, body)
				if err != nil {
					errs[i] = err
					continue
				}
				var r emRun
				if err := json.Unmarshal(raw, &r); err != nil || status != http.StatusCreated || !r.OK {
					errs[i] = fmt.Errorf("purchase %d: %d %s", i, status, raw)
					continue
				}
				subs[i] = r.SubscriptionID
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	var list []struct {
		ID         string    `json:"id"`
		OrderID    string    `json:"orderId"`
		InstanceID string    `json:"instanceId"`
		StartTime  time.Time `json:"startTime"`
	}
	getJSON(t, w.em.base+"/api/emulator/subscriptions", "", &list)
	type sub struct{ order, instance string }
	byID := map[string]sub{}
	for _, s := range list {
		byID[s.ID] = sub{s.OrderID, s.InstanceID}
		if s.StartTime.IsZero() || !s.StartTime.Before(first) {
			t.Fatalf("subscription %s started %s, want its order time, before %s", s.ID, s.StartTime, first)
		}
	}
	ids := make([]string, n)
	bought := map[string]int{}
	for i, id := range subs {
		s := byID[id]
		if s.instance == "" {
			t.Fatalf("subscription %s has no instance", id)
		}
		if j, ok := bought[s.instance]; ok {
			t.Fatalf("purchases %d and %d (order %s) have one instance, %s: two orders with one ID?", j, i, s.order, s.instance)
		}
		bought[s.instance] = i
		ids[i] = s.instance
	}
	return ids
}

// billed is the emulator's GET /api/emulator/usage.
type billed struct {
	Instances []struct {
		InstanceID string `json:"instanceId"`
		Total      int64  `json:"totalUnits"`
		Records    int    `json:"records"`
		Duplicates int    `json:"duplicates"`
		Periods    []struct {
			Begin      time.Time `json:"begin"`
			End        time.Time `json:"end"`
			MeteringSN string    `json:"meteringSn"`
			Value      int64     `json:"valueUnits"`
			Received   time.Time `json:"received"`
			API        string    `json:"api"`
			Duplicates int       `json:"duplicates"`
		} `json:"periods"`
	} `json:"instances"`
}

// billed is what the emulator has billed, with every instance's periods
// (up to 1000 each, more than a plan has) when periods is set, else the
// totals only (cheap: the emulator copies no periods).
func (w *meteringWorld) billed(t *testing.T, periods bool) billed {
	t.Helper()
	n := "0"
	if periods {
		n = "1000"
	}
	var b billed
	getJSON(t, w.em.base+"/api/emulator/usage?periods="+n, "", &b)
	return b
}

// waitBilled waits until the emulator has kept as many periods as the
// plan has (never more: the checks after it say which are wrong) and
// returns its view. The faults end p.outage after lastAck, if set.
func (w *meteringWorld) waitBilled(t *testing.T, p meteringPlan, lastAck time.Time, within time.Duration) billed {
	t.Helper()
	deadline := time.Now().Add(within)
	for ended := false; ; {
		if !ended && p.outage > 0 && time.Since(lastAck) > p.outage {
			w.setFaults(t, `{}`)
			ended = true
			t.Logf("the usage push faults end %v after the last record was acknowledged", p.outage)
		}
		b := w.billed(t, false)
		kept := 0
		for _, in := range b.Instances {
			kept += in.Records
		}
		if kept >= p.periods() {
			return w.billed(t, true)
		}
		if time.Now().After(deadline) {
			w.diagnose(t, p, b)
			t.Fatalf("after %v the emulator has kept %d of the %d periods", within, kept, p.periods())
		}
		time.Sleep(time.Second)
	}
}

// waitJobsDone waits until no job is available or running, fails the
// test if any is dead, and returns the jobs.
func waitJobsDone(t *testing.T, base string, within time.Duration) []queueJob {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		jobs := queueJobs(t, base)
		busy := slices.ContainsFunc(jobs, func(j queueJob) bool { return j.State == "available" || j.State == "running" })
		if !busy {
			for _, j := range jobs {
				if j.State != "done" {
					t.Errorf("job %d (%s %s) is %s after %d attempts: %s", j.ID, j.Kind, j.UniqueKey, j.State, j.Attempts, j.LastError)
				}
			}
			return jobs
		}
		if time.Now().After(deadline) {
			t.Fatalf("jobs still to run after %v", within)
		}
		time.Sleep(time.Second)
	}
}

// diagnose logs what koobridge knows of the periods the emulator has not
// billed: the summary by state, the periods not accepted and their
// pushes, from the admin API.
func (w *meteringWorld) diagnose(t *testing.T, p meteringPlan, b billed) {
	t.Helper()
	var short []string
	for _, in := range b.Instances {
		if in.Records < p.hours {
			short = append(short, fmt.Sprintf("%s (%d of %d hours)", in.InstanceID, in.Records, p.hours))
		}
	}
	t.Logf("instances billed short: %d: %.2000s", len(short), strings.Join(short, ", "))
	get := func(path string) string {
		_, body := httpGet(t, w.bases[0]+path, adminToken)
		return body
	}
	t.Logf("usage summary: %s", get("/admin/api/usage"))
	pushes := map[string]bool{}
	for _, state := range []string{"open", "pushing", "rejected", "dead"} {
		body := get("/admin/api/usage/periods?limit=50&state=" + state)
		t.Logf("%s periods: %.4000s", state, body)
		var page struct {
			Periods []struct {
				PushID int64 `json:"pushId"`
			} `json:"periods"`
		}
		_ = json.Unmarshal([]byte(body), &page)
		for _, per := range page.Periods {
			if per.PushID != 0 {
				pushes[strconv.FormatInt(per.PushID, 10)] = true
			}
		}
	}
	t.Logf("pending pushes: %.4000s", get("/admin/api/usage/pushes?state=pending"))
	for id := range pushes {
		t.Logf("push %s: %.3000s", id, get("/admin/api/usage/pushes/"+id))
	}
}

// checkBilled checks the emulator's view against the plan: every
// instance's every hour kept once, with the metering_sn of that instance
// and hour, its value the sum of its records, the instance's total what
// was ingested (exact ten-thousandths). It returns the time the last
// period was received and the duplicates the emulator ignored.
func checkBilled(t *testing.T, p meteringPlan, ids []string, b billed) (last time.Time, dups int) {
	t.Helper()
	index := map[string]int{}
	for i, id := range ids {
		index[id] = i
	}
	seen := map[string]bool{}
	for _, in := range b.Instances {
		i, ok := index[in.InstanceID]
		if !ok {
			t.Errorf("billed instance %s was not bought", in.InstanceID)
			continue
		}
		seen[in.InstanceID] = true
		dups += in.Duplicates
		var want int64
		for h := range p.hours {
			want += p.periodTotal(i, h)
		}
		if in.Total != want {
			t.Errorf("instance %s: billed %d ten-thousandths, ingested %d", in.InstanceID, in.Total, want)
		}
		if in.Records != p.hours || len(in.Periods) != p.hours {
			t.Errorf("instance %s: %d records kept (%d periods listed), want one per hour: %d", in.InstanceID, in.Records, len(in.Periods), p.hours)
		}
		hours := map[int]bool{}
		for _, per := range in.Periods {
			d := per.Begin.Sub(p.start)
			h := int(d / time.Hour)
			switch {
			case d%time.Hour != 0 || h < 0 || h >= p.hours || !per.End.Equal(per.Begin.Add(time.Hour)):
				t.Errorf("instance %s: a period %s to %s, not one of the plan's hours", in.InstanceID, per.Begin, per.End)
				continue
			case hours[h]:
				t.Errorf("instance %s: hour %s kept twice", in.InstanceID, per.Begin)
			}
			hours[h] = true
			if sn := usage.MeteringSN(in.InstanceID, per.Begin); per.MeteringSN != sn {
				t.Errorf("instance %s, hour %s: metering_sn %s, want %s", in.InstanceID, per.Begin, per.MeteringSN, sn)
			}
			if want := p.periodTotal(i, h); per.Value != want {
				t.Errorf("instance %s, hour %s: value %d, want %d", in.InstanceID, per.Begin, per.Value, want)
			}
			if per.API != "new" {
				t.Errorf("instance %s, hour %s: pushed with the %s push, want the new one", in.InstanceID, per.Begin, per.API)
			}
			if per.Received.After(last) {
				last = per.Received
			}
		}
	}
	for _, id := range ids {
		if !seen[id] {
			t.Errorf("instance %s: nothing billed", id)
		}
	}
	return last, dups
}

// usageLogRecord is one entry of the emulator's GET /api/emulator/usage/records.
type usageLogRecord struct {
	InstanceID string `json:"instanceId"`
	MeteringSN string `json:"meteringSn"`
	BeginTime  string `json:"beginTime"`
	Duplicate  bool   `json:"duplicate"`
}

// checkUsageLog checks every record the emulator received (its log keeps
// the last 10,000, duplicates included): one metering_sn per period,
// derived from the instance and the period, never another. It returns how
// many records it checked.
func checkUsageLog(t *testing.T, w *meteringWorld) int {
	t.Helper()
	var recs []usageLogRecord
	getJSON(t, w.em.base+"/api/emulator/usage/records", "", &recs)
	sns := map[string]string{} // instance/begin → sn
	for _, r := range recs {
		k := r.InstanceID + "/" + r.BeginTime
		if sn, ok := sns[k]; ok && sn != r.MeteringSN {
			t.Errorf("instance %s, period %s: two metering_sn, %s and %s", r.InstanceID, r.BeginTime, sn, r.MeteringSN)
		}
		sns[k] = r.MeteringSN
	}
	return len(recs)
}

// pushFaults counts the faults the emulator played on usage pushes, as
// far as its request log reaches (the last 1000 requests).
func pushFaults(t *testing.T, w *meteringWorld) map[string]int {
	t.Helper()
	var reqs []struct {
		Path  string `json:"path"`
		Fault string `json:"fault"`
	}
	getJSON(t, w.em.base+"/api/emulator/openapi-requests", "", &reqs)
	faults := map[string]int{}
	for _, r := range reqs {
		if strings.Contains(r.Path, "usage-data") && r.Fault != "" {
			faults[r.Fault]++
		}
	}
	return faults
}

// meteringResult is one run's measurements.
type meteringResult struct {
	target      string
	ingest      ingestStats
	toPush      time.Duration // last record acknowledged → last period received by the emulator
	wall        time.Duration // first record sent → last period received
	pushes      int           // send jobs: one per push
	attempts    int           // their attempts, all told
	maxAttempts int
	faults      map[string]int
	duplicates  int
}

// runMetering is one whole run: the world on db, the purchases, the
// usage reported over HTTP to the replicas in turn, and the checks.
func runMetering(t *testing.T, p meteringPlan, db string, replicas int, extra ...string) meteringResult {
	t.Helper()
	w := startMeteringWorld(t, db, replicas, extra...)
	began := time.Now()
	ids := w.buy(t, p.instances, p.start)
	t.Logf("%d pay-per-use instances bought (orders placed in the hour before %s) in %v", len(ids), p.start.Format(time.RFC3339), time.Since(began).Round(time.Millisecond))
	w.setFaults(t, fmt.Sprintf(`{"usageFailRate":%v}`, p.failRate))

	st := p.ingest(t, w.bases, ids, p.batches(), usage.Accepted)
	t.Logf("ingested %d records in %d batches over %d replica(s), %d clients: %v, %.0f records/s",
		p.records(), p.batches(), replicas, p.clients, st.elapsed.Round(time.Millisecond), st.rate(p.records()))

	// The same batches again, to the other replica: every record is a
	// duplicate and adds nothing.
	p.ingest(t, slices.Concat(w.bases[1:], w.bases[:1]), ids, min(3, p.batches()), usage.Duplicate)
	// A key used again with other content is refused, naming the key.
	checkReusedKey(t, w.bases[len(w.bases)-1], p, ids)

	// A held push costs the serve side its Open API timeout (10 s), then
	// the job's backoff: a period that meets several faults in a row waits
	// a minute or more.
	b := w.waitBilled(t, p, st.lastAck, 5*time.Minute)
	last, _ := checkBilled(t, p, ids, b)
	res := meteringResult{ingest: st, toPush: last.Sub(st.lastAck), wall: last.Sub(st.first)}

	// Then the outage ends, and every send job finishes (the retries of
	// pushes whose answer was lost included): the emulator still holds
	// each period once. Faults go on until now, so a push may still be
	// in its backoff (doubling from 1 s) after several faults in a row.
	w.setFaults(t, `{}`)
	for _, j := range waitJobsDone(t, w.bases[0], 5*time.Minute) {
		if j.Kind == usage.KindSend {
			res.pushes++
			res.attempts += j.Attempts
			res.maxAttempts = max(res.maxAttempts, j.Attempts)
		}
	}
	t.Log(jobTimeline(t, w.bases[0]))
	_, res.duplicates = checkBilled(t, p, ids, w.billed(t, true))
	logged := checkUsageLog(t, w)
	res.faults = pushFaults(t, w)
	t.Logf("last period received %v after the last record was acknowledged; %d pushes sent in %d attempts (at most %d for one); faults among the usage pushes in the emulator's request log: %v; %d duplicate records ignored; %d logged records checked",
		res.toPush.Round(time.Millisecond), res.pushes, res.attempts, res.maxAttempts, res.faults, res.duplicates, logged)
	return res
}

// checkReusedKey sends the first record of the plan again with another
// value: refused, and nothing is added (checkBilled would see it).
func checkReusedKey(t *testing.T, base string, p meteringPlan, ids []string) {
	t.Helper()
	body := fmt.Sprintf(`{"records":[{"idempotencyKey":"m-0-0-0","instanceId":%q,"value":%s,"time":%q}]}`,
		ids[0], units(p.value(0, 0, 0)+1), p.start.Add(time.Second).Format(time.RFC3339))
	a, err := postUsage(context.Background(), loadClient(waitLong), base, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Results) != 1 || a.Results[0].Status != usage.Rejected || !strings.Contains(a.Results[0].Error, "idempotencyKey") {
		t.Errorf("a key used again with another value: %+v, want rejected naming idempotencyKey", a.Results)
	}
}

// memIngester is the bare ceiling's store: it takes every record and
// keeps nothing but a count.
type memIngester struct{ n atomic.Int64 }

func (m *memIngester) Ingest(_ context.Context, in []usage.Input) ([]usage.Result, error) {
	out := make([]usage.Result, len(in))
	for i, r := range in {
		out[i] = usage.Result{IdempotencyKey: r.IdempotencyKey, Status: usage.Accepted}
	}
	m.n.Add(int64(len(in)))
	return out, nil
}

// bareCeiling sends the plan's batches to the usage API's own handler
// (token check, strict decoding, per-record answers) over an Ingester that
// stores nothing, in this process: what the HTTP API costs without the
// database.
func bareCeiling(t *testing.T, p meteringPlan) ingestStats {
	t.Helper()
	mem := &memIngester{}
	h, err := usageapi.New(usageapi.Config{Usage: mem, Tokens: []string{meteringToken}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	ids := make([]string, p.instances)
	for i := range ids {
		ids[i] = fmt.Sprintf("bare-instance-%04d", i)
	}
	st := p.ingest(t, []string{srv.URL}, ids, p.batches(), usage.Accepted)
	if got := mem.n.Load(); got != int64(p.records()) {
		t.Fatalf("the bare handler took %d records, want %d", got, p.records())
	}
	return st
}

// TestMeteringScale: usage records reported to koobridge serve over the
// usage API (batches of 1000, the bearer token), summed per instance and
// hour, pushed to koobridge emulate while a share of the pushes fail (500
// MKT.0999), time out without keeping anything, or keep the records and
// time out (a retry must be a duplicate): every instance's every hour is
// billed once, with the metering_sn of that hour, and the billed totals
// are exactly what was ingested. On SQLite, and on PostgreSQL with two
// replicas on one schema ingesting in turn. CI size: 20,000 records over
// 100 instances and 20 hours; KOOBRIDGE_METERING_SCALE=full: 1,000,000
// records over 1,000 instances, the runs one after the other, measured
// beside the bare ceiling.
func TestMeteringScale(t *testing.T) {
	p, full := meteringPlanFromEnv(t)
	koobridgeBinary(t) // build first; skips with -short
	if full {
		load, _ := os.ReadFile("/proc/loadavg") // what else ran beside the measurement
		t.Logf("load average at the start: %s", bytes.TrimSpace(load))
	}
	t.Logf("plan: %d records = %d instances x %d hours x %d records per hour, %d batches of up to %d records, %d clients, usageFailRate %v",
		p.records(), p.instances, p.hours, p.perPeriod, p.batches(), p.periodsPerBatch()*p.perPeriod, p.clients, p.failRate)
	var (
		mu      sync.Mutex
		results []meteringResult
	)
	keep := func(r meteringResult) {
		mu.Lock()
		results = append(results, r)
		mu.Unlock()
	}
	if full { // the ceiling is a measurement: at full size only
		t.Run("bare", func(t *testing.T) { keep(meteringResult{target: "bare", ingest: bareCeiling(t, p)}) })
	}
	t.Run("sqlite", func(t *testing.T) {
		if !full {
			t.Parallel()
		}
		r := runMetering(t, p, "sqlite:"+filepath.Join(t.TempDir(), "metering.db"), 1)
		r.target = "sqlite"
		keep(r)
	})
	t.Run("postgres-2-replicas", func(t *testing.T) {
		if !full {
			t.Parallel()
		}
		dsn := pgtest.Schema(t, pgtest.DSN(t))
		r := runMetering(t, p, dsn, 2, "--db-max-conns", "8")
		r.target = "postgres-2-replicas"
		keep(r)
	})
	t.Cleanup(func() {
		// The table bench/RESULTS.md records.
		for _, r := range results {
			t.Logf("| %s | %d | %.0f | %v | %v | %v | %d pushes, %d attempts, at most %d | %v | %d |", r.target, p.records(), r.ingest.rate(p.records()),
				r.ingest.elapsed.Round(10*time.Millisecond), r.toPush.Round(10*time.Millisecond), r.wall.Round(10*time.Millisecond),
				r.pushes, r.attempts, r.maxAttempts, r.faults, r.duplicates)
		}
	})
}

// timedJob is a job of the admin API with its times.
type timedJob struct {
	ID        int64     `json:"id"`
	Kind      string    `json:"kind"`
	Attempts  int       `json:"attempts"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"` // when done, for a job done
}

// jobTimeline summarises where the push side spent its time, from the
// jobs (all done): how long the seal jobs ran and how many at once, and
// how long each push took from sealed to answered.
func jobTimeline(t *testing.T, base string) string {
	t.Helper()
	var jobs []timedJob
	before := ""
	for {
		var page struct {
			Jobs []timedJob `json:"jobs"`
			Next string     `json:"next"`
		}
		getJSON(t, base+"/admin/api/jobs?limit=1000&before="+before, adminToken, &page)
		jobs = append(jobs, page.Jobs...)
		if page.Next == "" {
			break
		}
		before = page.Next
	}
	type edge struct {
		at time.Time
		d  int
	}
	var (
		seals, sends []time.Duration
		edges        []edge
		attempts     = map[int]int{}
	)
	for _, j := range jobs {
		d := j.UpdatedAt.Sub(j.CreatedAt)
		switch j.Kind {
		case usage.KindSeal:
			seals = append(seals, d)
			edges = append(edges, edge{j.CreatedAt, 1}, edge{j.UpdatedAt, -1})
		case usage.KindSend:
			sends = append(sends, d)
			attempts[j.Attempts]++
		}
	}
	slices.SortFunc(edges, func(a, b edge) int { return cmp.Or(a.at.Compare(b.at), a.d-b.d) })
	at, most := 0, 0
	for _, e := range edges {
		at += e.d
		most = max(most, at)
	}
	q := func(ds []time.Duration, f float64) time.Duration {
		if len(ds) == 0 {
			return 0
		}
		slices.Sort(ds)
		return ds[int(f*float64(len(ds)-1))].Round(10 * time.Millisecond)
	}
	return fmt.Sprintf("jobs: %d seal jobs (longest %v, at most %d at once); %d pushes, sealed to answered: median %v, 90th percentile %v, longest %v; pushes by attempts %v",
		len(seals), q(seals, 1), most, len(sends), q(sends, 0.5), q(sends, 0.9), q(sends, 1), attempts)
}
