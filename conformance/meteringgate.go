package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/koobridge/koobridge/emulator/mockapi"
)

// usageGate stands in front of the mocked Open API while the suite runs
// the metering profile. It notes every usage push as it arrives, on the
// wall clock the seller pushes by, whatever the Open API answers; and,
// once armed, it makes the first push the Open API keeps fail: the records
// are kept, then the answer is held until the seller gives up (the
// emulator's kept-then-held failure, made deterministic and one-shot), so
// the seller has to send the push again, and its retry must carry the
// same metering_sn (saas-v2.md §7.2).
type usageGate struct {
	next http.Handler

	mu       sync.Mutex
	armed    bool
	pending  int       // pushes being answered or held
	last     time.Time // when a push last arrived or was let go
	pushes   []gatePush
	records  int           // records remembered over all pushes
	dropped  int           // pushes not remembered (maxGateRecords reached)
	held     int           // index in pushes of the held push; -1 none
	heldFor  time.Duration // how long it was held, once let go
	released bool          // the held push has been let go
	cut      bool          // nobody gave up: the gate cut the connection
}

// gatePush is one usage push as the gate saw it.
type gatePush struct {
	at      time.Time      // arrival, wall clock
	records []pushedRecord // nil when the body is not a usage push
}

// pushedRecord is what the gate reads of a record of either push API.
type pushedRecord struct {
	InstanceID string `json:"instance_id"`
	BeginTime  string `json:"begin_time"`
	EndTime    string `json:"end_time"`
	MeteringSN string `json:"metering_sn"`
}

const (
	// maxGateBody is how much of a push body the gate reads: as much as
	// the mocked Open API takes.
	maxGateBody = 4<<20 + 1
	// maxGateRecords bounds the records the gate remembers: far more than
	// the profile's pushes carry, so a seller pushing in a loop does not
	// grow the suite without end.
	maxGateRecords = 100000
)

func newUsageGate(next http.Handler) *usageGate {
	return &usageGate{next: next, held: -1}
}

// arm makes the gate hold the next push the Open API keeps.
func (g *usageGate) arm() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.armed = g.held < 0
}

// ServeHTTP passes every request on; usage pushes are noted first, and
// the first one kept after arm is held.
func (g *usageGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != mockapi.UsagePath && r.URL.Path != mockapi.OldUsagePath {
		g.next.ServeHTTP(w, r)
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, maxGateBody))
	// The Open API reads the body again, whole: what was read, then the rest.
	r.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(body), r.Body), r.Body}
	i, armed := g.arrive(body)
	defer g.leave()
	if !armed {
		g.next.ServeHTTP(w, r)
		return
	}
	answer := &bufferedAnswer{header: http.Header{}}
	g.next.ServeHTTP(answer, r)
	if answer.code() != http.StatusOK || !g.takeHold(i) {
		answer.copyTo(w)
		return
	}
	g.hold(r.Context())
}

// arrive notes a push; it returns its index (-1 when not remembered) and
// whether the gate is armed.
func (g *usageGate) arrive(body []byte) (int, bool) {
	var push struct {
		Records []pushedRecord `json:"usage_records"`
	}
	if json.Unmarshal(body, &push) != nil {
		push.Records = nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.pending++
	g.last = time.Now()
	if g.records+len(push.Records) > maxGateRecords {
		g.dropped++
		return -1, g.armed
	}
	g.records += len(push.Records)
	g.pushes = append(g.pushes, gatePush{at: g.last, records: push.Records})
	return len(g.pushes) - 1, g.armed
}

func (g *usageGate) leave() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.pending--
	g.last = time.Now()
}

// takeHold makes push i the held one if the gate is still armed.
func (g *usageGate) takeHold(i int) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.armed || i < 0 {
		return false
	}
	g.armed, g.held = false, i
	return true
}

// hold answers nothing until the seller gives up; after
// mockapi.UsageHoldMax it cuts the connection, as the emulator's own held
// pushes do.
func (g *usageGate) hold(ctx context.Context) {
	began := time.Now()
	t := time.NewTimer(mockapi.UsageHoldMax)
	defer t.Stop()
	cut := false
	select {
	case <-ctx.Done():
	case <-t.C:
		cut = true
	}
	g.mu.Lock()
	g.heldFor, g.released, g.cut = time.Since(began), true, cut
	g.mu.Unlock()
	if cut {
		panic(http.ErrAbortHandler) // closes the connection without an answer
	}
}

// gateView is a copy of what the gate has seen.
type gateView struct {
	pushes   []gatePush
	dropped  int
	pending  int
	last     time.Time
	held     int
	heldFor  time.Duration
	released bool
	cut      bool
}

func (g *usageGate) view() gateView {
	g.mu.Lock()
	defer g.mu.Unlock()
	// pushes is append-only and its entries are never changed: a copy of
	// the slice header is a stable view.
	return gateView{pushes: g.pushes[:len(g.pushes):len(g.pushes)], dropped: g.dropped, pending: g.pending, last: g.last,
		held: g.held, heldFor: g.heldFor, released: g.released, cut: g.cut}
}

// bufferedAnswer keeps an answer until the gate decides whether to pass
// it on.
type bufferedAnswer struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedAnswer) Header() http.Header { return b.header }

func (b *bufferedAnswer) WriteHeader(status int) {
	if b.status == 0 {
		b.status = status
	}
}

func (b *bufferedAnswer) Write(p []byte) (int, error) {
	b.WriteHeader(http.StatusOK)
	return b.body.Write(p)
}

func (b *bufferedAnswer) code() int {
	if b.status == 0 {
		return http.StatusOK
	}
	return b.status
}

func (b *bufferedAnswer) copyTo(w http.ResponseWriter) {
	for k, v := range b.header {
		w.Header()[k] = v
	}
	w.WriteHeader(b.code())
	_, _ = w.Write(b.body.Bytes())
}
