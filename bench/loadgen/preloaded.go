package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/koobridge/koobridge/bench/internal/fixture"
	"github.com/koobridge/koobridge/protocol"
)

// batch is the most instance ids one queryInstance may name.
const batch = 100

// runPreloaded measures a server whose database bench/preload filled with
// o.preloaded instances: queryInstance of one random active instance, then
// of 100 (closed loop: o.concurrency clients send as fast as they are
// answered), then of 100 again in an open loop at half the rate the closed
// loop reached, then newInstance for fresh order lines.
func runPreloaded(o options, client *http.Client) {
	seed := uint32(o.seed)
	one := func(int, int) []byte {
		return queryBody(fixture.InstanceID(seed, activeInstance(o.preloaded)))
	}
	hundred := func(int, int) []byte { return queryBody(randomIDs(seed, o.preloaded, batch)...) }
	all := func(r reply) bool { return r.ResultCode == protocol.CodeSuccess && len(r.Info) == batch }

	oneRes := run(o, one, client, func(r reply) bool { return r.ResultCode == protocol.CodeSuccess && len(r.Info) == 1 }, nil)
	fmt.Printf("| %s | queryInstance | %s |\n", o.label, oneRes)
	closed := run(o, hundred, client, all, nil)
	fmt.Printf("| %s | queryInstance, %d ids | %s |\n", o.label, batch, closed)
	rate := closed.rate() / 2
	if rate > 0 {
		open := openLoop(o, rate, func() []byte { return hundred(0, 0) }, all)
		fmt.Printf("| %s | queryInstance, %d ids, open loop at %.0f/s | %s |\n", o.label, batch, rate, open)
	}
	newRes := run(o, newInstanceBody(o), client, answered, nil)
	fmt.Printf("| %s | newInstance | %s |\n", o.label, newRes)
}

func queryBody(ids ...string) []byte {
	return mustJSON(map[string]string{"activity": "queryInstance", "instanceId": strings.Join(ids, ",")})
}

// activeInstance is a random active preloaded instance: the others are
// answered differently (a failed one changes the whole reply's code).
func activeInstance(n int) int {
	for {
		if i := rand.IntN(n); fixture.Status(i) == fixture.StatusActive {
			return i
		}
	}
}

// randomIDs is k distinct random active preloaded instances (fewer if
// there are not that many).
func randomIDs(seed uint32, n, k int) []string {
	seen := make(map[int]bool, k)
	ids := make([]string, 0, k)
	for tries := 0; len(ids) < k && tries < 100*k; tries++ {
		if i := activeInstance(n); !seen[i] {
			seen[i] = true
			ids = append(ids, fixture.InstanceID(seed, i))
		}
	}
	return ids
}

// openLoop sends bodies made by next at a fixed rate for o.duration,
// whether or not earlier calls were answered, as independent buyers and
// KooGallery's systems do, and measures each call's latency from the time
// it was due, not from when it was sent: a server that falls behind shows
// as latency (a closed loop would slow down with it and hide the queue).
// A connection is opened for every call that finds none idle.
func openLoop(o options, rate float64, next func() []byte, ok func(reply) bool) result {
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4 * o.concurrency}}
	defer client.CloseIdleConnections()
	interval := time.Duration(float64(time.Second) / rate)
	var (
		mu    sync.Mutex
		total result
		wg    sync.WaitGroup
	)
	start := time.Now()
	for i := 0; ; i++ {
		due := start.Add(time.Duration(i) * interval)
		if due.Sub(start) >= o.duration {
			break
		}
		time.Sleep(time.Until(due))
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := next()
			rep, err := post(client, signedURL(o, body), body)
			lat := time.Since(due)
			mu.Lock()
			defer mu.Unlock()
			total.requests++
			total.latencies = append(total.latencies, lat)
			if err != nil || !ok(rep) {
				total.errors++
			}
		}()
	}
	wg.Wait()
	// The rate offered: calls due in the window over the window.
	total.elapsed = o.duration
	return total
}

// adminList is one admin API list the admin phase reads.
type adminList struct {
	label, path string
}

// adminLists are the lists the console and the admin API show, as an
// operator opens them: each first page, the next pages, and pages
// filtered as support filters them, on common and on rare values (a rare
// value is where a filter without an index of its own reads the whole
// table).
func adminLists(o options) []adminList {
	if o.preloaded == 0 {
		return []adminList{{"instances", "/admin/api/instances"}, {"calls", "/admin/api/calls"}, {"jobs", "/admin/api/jobs"}}
	}
	seed := uint32(o.seed)
	n := activeInstance(o.preloaded)
	id, order := url.QueryEscape(fixture.InstanceID(seed, n)), url.QueryEscape(fixture.OrderID(seed, n))
	now := time.Now().UTC()
	ago := func(d time.Duration) string { return url.QueryEscape(now.Add(-d).Format(time.RFC3339)) }
	const day = 24 * time.Hour
	return []adminList{
		{"instances", "/admin/api/instances"},
		{"instances?after=(middle)", "/admin/api/instances?after=" + fixture.InstanceID(seed, o.preloaded/2)[:8]},
		{"instances?status=active", "/admin/api/instances?status=active"},
		{"instances?status=failed", "/admin/api/instances?status=failed"},
		{"instances?test=true (none)", "/admin/api/instances?test=true"},
		{"instances?order=(one)", "/admin/api/instances?order=" + order},
		{"instances/(one), with its calls", "/admin/api/instances/" + id},
		{"calls", "/admin/api/calls"},
		{"calls?instance=(one)", "/admin/api/calls?instance=" + id},
		{"calls?order=(one)", "/admin/api/calls?order=" + order},
		{"calls?activity=newInstance", "/admin/api/calls?activity=newInstance"},
		{"calls?code=000001", "/admin/api/calls?code=000001"},
		{"calls?code=000005 (none)", "/admin/api/calls?code=000005"},
		{"calls?since=(24 h ago)", "/admin/api/calls?since=" + ago(day)},
		{"calls?since=(8 days ago)&until=(7 days ago)", "/admin/api/calls?since=" + ago(8*day) + "&until=" + ago(7*day)},
		{"jobs", "/admin/api/jobs"},
		{"jobs?state=done", "/admin/api/jobs?state=done"},
		{"jobs?state=dead", "/admin/api/jobs?state=dead"},
		{"jobs?kind=provision", "/admin/api/jobs?kind=provision"},
		{"jobs?kind=license-usage (few)", "/admin/api/jobs?kind=license-usage"},
	}
}

// runAdmin reads each admin list o.adminMax times, one request at a time
// (for at most 3 s per list after the first), from the first URL's
// server, and reports the latency of each list.
func runAdmin(o options) {
	base, err := url.Parse(o.urls[0])
	if err != nil {
		fail(err)
	}
	client := &http.Client{Timeout: 60 * time.Second}
	for _, l := range adminLists(o) {
		u := base.ResolveReference(&url.URL{Path: "/"}).String() + strings.TrimPrefix(l.path, "/")
		var res result
		start := time.Now()
		for res.requests < o.adminMax && (res.requests == 0 || time.Since(start) < 3*time.Second) {
			t0 := time.Now()
			err := adminGet(client, u, o.adminToken)
			res.latencies = append(res.latencies, time.Since(t0))
			res.requests++
			if err != nil {
				res.errors++
				fmt.Fprintf(os.Stderr, "loadgen: GET %s: %v\n", l.path, err)
			}
		}
		res.elapsed = time.Since(start)
		fmt.Printf("| %s | GET %s | %s |\n", o.label, l.label, res)
	}
}

// adminGet reads one admin API page and checks that it is a JSON object.
func adminGet(client *http.Client, u, token string) error {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d: %.200s", resp.StatusCode, body)
	}
	var v map[string]json.RawMessage
	if err := json.Unmarshal(body, &v); err != nil {
		return errors.New("answer is not a JSON object")
	}
	return nil
}
