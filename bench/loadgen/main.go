// Command loadgen sends signed KooGallery V2 calls at a production
// interface and reports throughput and latency, for bench/RESULTS.md.
//
// It runs two phases against -url: newInstance for fresh order lines, then
// queryInstance for the instances the first phase created. With
// -preloaded it runs the phases of a database bench/preload filled
// instead (see runPreloaded), and with -admin-token it then reads the admin
// API's lists (see runAdmin). Given several
// URLs (-url repeated, or a comma-separated list), it sends the calls to
// them in turn, as a round-robin load balancer in front of replicas would. With
// -openapi-listen it also serves the Query Order Open API (APIG-verified)
// that koobridge serve calls for every new order line, answering every
// order as a one-month PERIOD purchase.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
)

type options struct {
	urls        urlList
	key         string
	label       string
	duration    time.Duration
	concurrency int
	openapi     string
	ak, sk      string
	runID       string
	preloaded   int
	seed        uint
	adminToken  string
	adminMax    int
}

func main() {
	var o options
	flag.Var(&o.urls, "url", "a production interface URL (for example http://127.0.0.1:8080/produce); repeat it or separate URLs with commas to spread the load over replicas in turn")
	flag.StringVar(&o.key, "key", "", "the KooGallery key the server accepts")
	flag.StringVar(&o.label, "label", "", "a name for this target in the report")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "how long each phase runs")
	flag.IntVar(&o.concurrency, "concurrency", 16, "concurrent clients")
	flag.StringVar(&o.openapi, "openapi-listen", "", "serve the Query Order Open API on this address and keep serving after the run until killed")
	flag.StringVar(&o.ak, "ak", "bench-ak", "AK the Open API accepts")
	flag.StringVar(&o.sk, "sk", "bench-sk", "SK the Open API accepts")
	flag.StringVar(&o.runID, "run", strconv.FormatInt(time.Now().UnixNano(), 36), "prefix for order ids, unique per run")
	flag.IntVar(&o.preloaded, "preloaded", 0, "the server's database holds this many instances from bench/preload: query them (1 and 100 ids per call, closed then open loop), then create more")
	flag.UintVar(&o.seed, "seed", 1, "the -seed bench/preload was given")
	flag.StringVar(&o.adminToken, "admin-token", "", "after the calls, read the admin API's lists with this token")
	flag.IntVar(&o.adminMax, "admin-requests", 50, "requests per admin list, one at a time (fewer if they take longer than 3 s in all)")
	flag.Parse()

	if o.openapi != "" {
		ln, err := net.Listen("tcp", o.openapi)
		if err != nil {
			fail(err)
		}
		fmt.Fprintf(os.Stderr, "openapi listening %s\n", ln.Addr())
		go func() { fail(http.Serve(ln, openAPI(o.ak, o.sk))) }()
		if len(o.urls) == 0 {
			select {} // serve only
		}
	}
	if len(o.urls) == 0 || o.key == "" {
		fmt.Fprintln(os.Stderr, "loadgen: -url and -key are required")
		os.Exit(2)
	}
	if o.preloaded != 0 && o.preloaded < 1000 {
		// Fewer hold fewer than 100 active instances for one queryInstance.
		fmt.Fprintln(os.Stderr, "loadgen: -preloaded needs at least 1000 instances")
		os.Exit(2)
	}
	client := &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: o.concurrency, MaxConnsPerHost: o.concurrency},
	}
	if o.preloaded > 0 {
		runPreloaded(o, client)
	} else {
		runFresh(o, client)
	}
	if o.adminToken != "" {
		runAdmin(o)
	}
}

// runFresh creates instances, then queries them.
func runFresh(o options, client *http.Client) {
	var ids idList
	newRes := run(o, newInstanceBody(o), client, answered, &ids)
	if ids.len() == 0 {
		fail(errors.New("no instance was created; is the server configured with the same key?"))
	}
	queryRes := run(o, func(int, int) []byte {
		return mustJSON(map[string]string{"activity": "queryInstance", "instanceId": ids.random()})
	}, client, answered, nil)
	fmt.Printf("| %s | newInstance | %s |\n", o.label, newRes)
	fmt.Printf("| %s | queryInstance | %s |\n", o.label, queryRes)
}

// newInstanceBody makes newInstance calls for fresh order lines.
func newInstanceBody(o options) func(worker, seq int) []byte {
	return func(worker, seq int) []byte {
		order := fmt.Sprintf("BENCH%s-%d-%d", o.runID, worker, seq)
		return mustJSON(map[string]string{
			"activity": "newInstance", "orderId": order, "orderLineId": order + "-000001",
			"businessId": fmt.Sprintf("biz-%s-%d-%d", o.runID, worker, seq),
		})
	}
}

// urlList is the -url flag: every use adds its comma-separated URLs.
type urlList []string

func (l *urlList) String() string { return strings.Join(*l, ",") }

func (l *urlList) Set(s string) error {
	for u := range strings.SplitSeq(s, ",") {
		if u = strings.TrimSpace(u); u != "" {
			*l = append(*l, u)
		}
	}
	return nil
}

// callSeq picks the target of each call in turn across all workers.
var callSeq atomic.Int64

// nonceSeq numbers nonces across all phases of a run: a nonce used twice
// is a replay, which the server rightly rejects.
var nonceSeq atomic.Int64

// result summarises one phase.
type result struct {
	requests, errors int
	elapsed          time.Duration
	latencies        []time.Duration
}

// rate is the phase's requests per second.
func (r result) rate() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.requests) / r.elapsed.Seconds()
}

func (r result) String() string {
	slices.Sort(r.latencies)
	pct := func(p float64) float64 {
		if len(r.latencies) == 0 {
			return 0
		}
		i := int(p * float64(len(r.latencies)-1))
		return float64(r.latencies[i].Microseconds()) / 1000
	}
	return fmt.Sprintf("%d | %d | %.0f | %.2f | %.2f",
		r.requests, r.errors, r.rate(), pct(0.50), pct(0.99))
}

// answered accepts a reply with result code 000000 or 000004.
func answered(r reply) bool {
	return r.ResultCode == protocol.CodeSuccess || r.ResultCode == protocol.CodeProcessing
}

// run sends bodies made by next from o.concurrency workers for o.duration.
// Replies ok refuses count as errors. When ids is not nil the instanceId
// of every accepted reply is added to it.
func run(o options, next func(worker, seq int) []byte, client *http.Client, ok func(reply) bool, ids *idList) result {
	ctx, cancel := context.WithTimeout(context.Background(), o.duration)
	defer cancel()
	var (
		mu    sync.Mutex
		total result
		wg    sync.WaitGroup
	)
	start := time.Now()
	for w := range o.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var local result
			for seq := 0; ctx.Err() == nil; seq++ {
				body := next(w, seq)
				url := signedURL(o, body)
				t0 := time.Now()
				rep, err := post(client, url, body)
				local.latencies = append(local.latencies, time.Since(t0))
				local.requests++
				if err != nil || !ok(rep) {
					local.errors++
					continue
				}
				if ids != nil && rep.InstanceID != "" {
					ids.add(rep.InstanceID)
				}
			}
			mu.Lock()
			total.requests += local.requests
			total.errors += local.errors
			total.latencies = append(total.latencies, local.latencies...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	total.elapsed = time.Since(start)
	return total
}

// reply is what the load generator reads of an answer.
type reply struct {
	ResultCode protocol.ResultCode `json:"resultCode"`
	InstanceID string              `json:"instanceId"`
	Info       []json.RawMessage   `json:"info"` // queryInstance
}

// signedURL is the next target in turn with the signature of body.
func signedURL(o options, body []byte) string {
	nonce := fmt.Sprintf("%s-%d", o.runID, nonceSeq.Add(1))
	ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
	target := o.urls[int(callSeq.Add(1)-1)%len(o.urls)]
	return fmt.Sprintf("%s?signature=%s&timestamp=%s&nonce=%s", target, sign.V2Signature(o.key, nonce, ts, body), ts, nonce)
}

func post(client *http.Client, url string, body []byte) (reply, error) {
	resp, err := client.Post(url, "application/json;charset=utf8", bytes.NewReader(body))
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	var r reply
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&r); err != nil {
		return reply{}, err
	}
	return r, nil
}

// openAPI answers Query Order for any order id, after checking the APIG
// signature as KooGallery's gateway does.
func openAPI(ak, sk string) http.Handler {
	lookup := func(a string) (string, bool) { return sk, a == ak }
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := sign.VerifyAPIG(r, nil, lookup, time.Now(), 0); err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write(mustJSON(map[string]string{"error_code": "APIGW.0301", "error_msg": err.Error()}))
			return
		}
		order, line := r.URL.Query().Get("orderId"), r.URL.Query().Get("orderLineId")
		now := time.Now().UTC()
		info := protocol.OrderInfo{
			OrderID: protocol.FlexString(order), OrderType: "NEW", CreateTime: protocol.FlexString(protocol.FormatTime14(now)),
			OrderLine: []protocol.OrderLine{{
				OrderLineID: protocol.FlexString(line), ChargingMode: "PERIOD", PeriodType: "month", PeriodNumber: "1",
				ExpireTime:  protocol.FlexString(protocol.FormatTime14(now.AddDate(0, 1, 0))),
				ProductInfo: protocol.ProductInfoList{{ProductID: "bench-product", SKUCode: "bench-sku", LinearValue: "10", ProductName: "bench"}},
			}},
			BuyerInfo: &protocol.BuyerInfo{CustomerID: "bench-customer", CustomerName: "bench"},
		}
		body, _ := protocol.Marshal(map[string]any{"resultCode": "MKT.0000", "resultMsg": "success", "orderInfo": info})
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
}

// idList is a concurrency-safe list of instance ids.
type idList struct {
	mu  sync.Mutex
	ids []string
}

func (l *idList) add(id string) { l.mu.Lock(); l.ids = append(l.ids, id); l.mu.Unlock() }
func (l *idList) len() int      { l.mu.Lock(); defer l.mu.Unlock(); return len(l.ids) }
func (l *idList) random() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ids[rand.IntN(len(l.ids))]
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "loadgen:", err)
	os.Exit(1)
}
