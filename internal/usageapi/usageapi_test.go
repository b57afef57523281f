package usageapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/jobs"
	"github.com/koobridge/koobridge/internal/lockbuf"
	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/internal/store/dbtest"
	"github.com/koobridge/koobridge/internal/usage"
	"github.com/koobridge/koobridge/internal/usageapi"
	"github.com/koobridge/koobridge/protocol"
)

const (
	token    = "usage-token-0123456789abcdef"
	rotated  = "usage-token-rotated-fedcba9876"
	basicKey = "basic-key-of-the-usageapi-tests"
)

// now is the service's clock: fixed, so that "in the future" and the
// instances' start are exact.
var now = time.Now().UTC().Truncate(time.Hour).Add(30 * time.Minute)

// env is the handler on a real httptest server in front of a real
// usage.Service on a fresh database holding three instances: "ppu"
// (pay-per-use, started two hours ago), "ppu2" (the same) and "period"
// (yearly).
type env struct {
	st   store.Store
	url  string
	logs *lockbuf.Buffer
}

func newEnv(t *testing.T, st store.Store) *env {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler)
	runner := jobs.NewRunner(jobs.Config{Store: st, Logger: quiet, Now: func() time.Time { return now }})
	svc, err := usage.New(usage.Config{
		Store: st, Key: basicKey, Jobs: runner, Logger: quiet, Now: func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range []struct{ id, mode string }{
		{"ppu", protocol.ChargingOnDemand}, {"ppu2", protocol.ChargingOnDemand}, {"period", protocol.ChargingPeriod},
	} {
		created := now.Add(-2 * time.Hour)
		err := st.Tx(context.Background(), func(ctx context.Context, tx store.Tx) error {
			_, err := tx.InsertInstance(ctx, store.Instance{
				ID: in.id, OrderID: "O-" + in.id, OrderLineID: "L-" + in.id, OrderState: store.OrderFetched,
				ProductID: "P-1", ChargingMode: in.mode, Status: store.StatusActive, CreatedAt: created, UpdatedAt: created,
			})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	e := &env{st: st, logs: &lockbuf.Buffer{}}
	h, err := usageapi.New(usageapi.Config{Usage: svc, Tokens: []string{token, rotated},
		Logger: slog.New(slog.NewJSONHandler(e.logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	e.url = srv.URL
	return e
}

// reply is one answer as received.
type reply struct {
	status int
	header http.Header
	raw    []byte
}

// errorText is the "error" of an answer that is not 200, failing the test
// when the answer is not {"error": "..."} in JSON.
func (r reply) errorText(t *testing.T) string {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var b struct {
		Error string `json:"error"`
	}
	d := json.NewDecoder(bytes.NewReader(r.raw))
	d.DisallowUnknownFields()
	if err := d.Decode(&b); err != nil || b.Error == "" {
		t.Fatalf("answer %d is not {\"error\":\"...\"}: %v: %s", r.status, err, r.raw)
	}
	return b.Error
}

// results decodes a 200 answer.
func (r reply) results(t *testing.T) []usageapi.Result {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("HTTP %d, want 200: %s", r.status, r.raw)
	}
	var b usageapi.Response
	d := json.NewDecoder(bytes.NewReader(r.raw))
	d.DisallowUnknownFields()
	if err := d.Decode(&b); err != nil {
		t.Fatalf("answer: %v: %s", err, r.raw)
	}
	return b.Results
}

// req is one request; the zero value is a POST to the API's path with the
// token and Content-Type application/json.
type req struct {
	method  string
	path    string // with its query, if any
	auth    []string
	noAuth  bool
	ctype   []string
	noType  bool
	body    io.Reader
	chunked bool // send the body without a Content-Length
}

func (e *env) send(t *testing.T, body string, rq req) reply {
	t.Helper()
	if rq.method == "" {
		rq.method = http.MethodPost
	}
	if rq.path == "" {
		rq.path = usageapi.Path
	}
	var r io.Reader = strings.NewReader(body)
	if rq.body != nil {
		r = rq.body
	}
	if rq.chunked {
		r = struct{ io.Reader }{r} // hides the length
	}
	hr, err := http.NewRequest(rq.method, e.url+rq.path, r)
	if err != nil {
		t.Fatal(err)
	}
	if !rq.noAuth {
		if rq.auth == nil {
			rq.auth = []string{"Bearer " + token}
		}
		for _, a := range rq.auth {
			hr.Header.Add("Authorization", a)
		}
	}
	if !rq.noType {
		if rq.ctype == nil {
			rq.ctype = []string{"application/json"}
		}
		for _, c := range rq.ctype {
			hr.Header.Add("Content-Type", c)
		}
	}
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatalf("%s %s: %v", rq.method, rq.path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, raw: raw}
}

// at is a time inside the current hour, before now, as RFC 3339.
var at = now.Add(-10 * time.Minute).Format(time.RFC3339)

// record is one record of a request body.
func record(key, instance, value string) string {
	return fmt.Sprintf(`{"idempotencyKey":%q,"instanceId":%q,"value":%s,"time":%q}`, key, instance, value, at)
}

// batch is a request body of records.
func batch(records ...string) string {
	return `{"records":[` + strings.Join(records, ",") + `]}`
}

// total is what the store summed for an instance, in ten-thousandths.
func (e *env) total(t *testing.T, id string) int64 {
	t.Helper()
	totals, err := e.st.UsageTotals(context.Background(), []string{id})
	if err != nil {
		t.Fatal(err)
	}
	return totals[id].Total
}

// TestRefused: requests refused as a whole, before any record is read, get
// the status and an error naming the problem, and store nothing.
func TestRefused(t *testing.T) {
	e := newEnv(t, dbtest.Dialects[0].Open(t))
	good := batch(record("k1", "ppu", "1"))
	many := make([]string, usage.MaxBatch+1)
	for i := range many {
		many[i] = record(fmt.Sprintf("m%d", i), "ppu", "1")
	}
	huge := `{"records":[` + record("big", "ppu", "1") + `],"pad":"` + strings.Repeat("x", usageapi.MaxBody) + `"}`
	cases := []struct {
		name   string
		body   string
		rq     req
		status int
		want   string // in the error
	}{
		{"no Authorization", good, req{noAuth: true}, 401, "bearer token"},
		{"wrong token", good, req{auth: []string{"Bearer not-the-usage-token-at-all"}}, 401, "bearer token"},
		{"two Authorization headers", good, req{auth: []string{"Bearer " + token, "Bearer " + token}}, 401, "bearer token"},
		{"Basic", good, req{auth: []string{"Basic dXNhZ2U6" + token}}, 401, "bearer token"},
		{"token without the scheme", good, req{auth: []string{token}}, 401, "bearer token"},
		{"GET", "", req{method: http.MethodGet}, 405, "use POST"},
		{"PUT", good, req{method: http.MethodPut}, 405, "use POST"},
		{"GET without a token", "", req{method: http.MethodGet, noAuth: true}, 405, "use POST"},
		{"other path", good, req{path: "/api/v1/usage/x"}, 404, "no such endpoint: /api/v1/usage/x"},
		{"trailing slash", good, req{path: "/api/v1/usage/"}, 404, "no such endpoint"},
		{"query parameters", good, req{path: usageapi.Path + "?instanceId=ppu"}, 400, "no query parameters"},
		{"no Content-Type", good, req{noType: true}, 415, "Content-Type application/json (none was given)"},
		{"text/plain", good, req{ctype: []string{"text/plain"}}, 415, "Content-Type application/json"},
		{"two Content-Types", good, req{ctype: []string{"application/json", "application/json"}}, 415, "more than once"},
		{"a charset other than UTF-8", good, req{ctype: []string{"application/json; charset=latin1"}}, 415, "charset=utf-8"},
		{"too large", huge, req{}, 413, "larger than 1048576 bytes"},
		{"too large, chunked", huge, req{chunked: true}, 413, "larger than 1048576 bytes"},
		{"not JSON", `{"records":[`, req{}, 400, "request body: invalid JSON at byte 12"},
		{"empty body", ``, req{}, 400, "request body: invalid JSON at byte 0: empty body"},
		{"trailing data", good + `{}`, req{}, 400, "unexpected data after the value"},
		{"duplicate key", `{"records":[` + record("d1", "ppu", "1") + `],"records":[]}`, req{}, 400, "invalid parameter records: duplicate key"},
		{"duplicate key apart from case", `{"records":[` + record("d2", "ppu", "1") + `],"Records":[]}`, req{}, 400, "invalid parameter Records: duplicate key (the same as records apart from letter case)"},
		{"duplicate key in a record", batch(`{"idempotencyKey":"d3","instanceId":"ppu","value":1,"value":2,"time":"` + at + `"}`), req{}, 400, "records[0].value: duplicate key"},
		{"duplicate key in a record apart from case", batch(`{"idempotencyKey":"d4","instanceId":"ppu","value":1,"Value":2,"time":"` + at + `"}`), req{}, 400, "records[0].Value: duplicate key (the same as value apart from letter case)"},
		{"invalid UTF-8", batch("{\"idempotencyKey\":\"u\xff\",\"instanceId\":\"ppu\"," + `"value":1,"time":"` + at + `"}`), req{}, 400, "records[0].idempotencyKey: not valid UTF-8"},
		{"lone surrogate", batch(`{"idempotencyKey":"u\ud800","instanceId":"ppu","value":1,"time":"` + at + `"}`), req{}, 400, "records[0].idempotencyKey: contains a lone surrogate"},
		{"NUL", batch(`{"idempotencyKey":"n\u0000","instanceId":"ppu","value":1,"time":"` + at + `"}`), req{}, 400, "records[0].idempotencyKey: contains a NUL character"},
		{"unknown top-level field", `{"records":[` + record("x1", "ppu", "1") + `],"batch":"b1"}`, req{}, 400, `unknown field "batch"`},
		{"records missing", `{}`, req{}, 400, "records: missing"},
		{"null body", `null`, req{}, 400, "request body: not a JSON object"},
		{"array body", `[` + record("a1", "ppu", "1") + `]`, req{}, 400, "request body: not a JSON object"},
		{"records an object", `{"records":` + record("o1", "ppu", "1") + `}`, req{}, 400, "records: must be an array"},
		{"records a string", `{"records":"k1"}`, req{}, 400, "records: must be an array"},
		{"records null", `{"records":null}`, req{}, 400, "records: must be an array"},
		{"records empty", `{"records":[]}`, req{}, 400, "records: empty"},
		{"1001 records", batch(many...), req{}, 400, "records: 1001 records: at most 1000 per request"},
		{"a record not an object", batch(record("r1", "ppu", "1"), `"r2"`), req{}, 400, "records[1]: must be an object"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.send(t, c.body, c.rq)
			if r.status != c.status {
				t.Fatalf("HTTP %d, want %d: %s", r.status, c.status, r.raw)
			}
			if msg := r.errorText(t); !strings.Contains(msg, c.want) {
				t.Errorf("error %q, want it to contain %q", msg, c.want)
			}
			if cc := r.header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control %q, want no-store", cc)
			}
			switch c.status {
			case 401:
				if got := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer ") {
					t.Errorf("WWW-Authenticate %q, want a Bearer challenge", got)
				}
			case 405:
				if got := r.header.Values("Allow"); len(got) != 1 || got[0] != http.MethodPost {
					t.Errorf("Allow %q, want POST", got)
				}
			}
			if strings.Contains(string(r.raw), token) {
				t.Errorf("the answer shows the token: %s", r.raw)
			}
		})
	}
	if got := e.total(t, "ppu"); got != 0 {
		t.Errorf("refused requests stored usage: total %d", got)
	}
	// The same records, sent properly, are taken: the refusals above were
	// about the requests alone.
	if res := e.send(t, good, req{}).results(t); len(res) != 1 || res[0].Status != usage.Accepted {
		t.Errorf("the good batch: %+v", res)
	}
	// Either token of a rotation, and the charset parameter, are fine.
	r := e.send(t, batch(record("k2", "ppu", "2")), req{auth: []string{"Bearer " + rotated}, ctype: []string{"application/json; charset=UTF-8"}})
	if res := r.results(t); len(res) != 1 || res[0].Status != usage.Accepted {
		t.Errorf("the rotated token: %+v", res)
	}
	if got := e.total(t, "ppu"); got != 30000 {
		t.Errorf("total %d, want 30000 (1 + 2)", got)
	}
}

// TestOff: without tokens the API does not exist.
func TestOff(t *testing.T) {
	st := dbtest.Dialects[0].Open(t)
	runner := jobs.NewRunner(jobs.Config{Store: st})
	svc, err := usage.New(usage.Config{Store: st, Key: basicKey, Jobs: runner})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := usageapi.New(usageapi.Config{}); err == nil {
		t.Error("New without a usage service: no error")
	}
	for _, tokens := range [][]string{nil, {""}} {
		h, err := usageapi.New(usageapi.Config{Usage: svc, Tokens: tokens})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(h)
		e := &env{url: srv.URL}
		for _, rq := range []req{{}, {auth: []string{"Bearer "}}, {method: http.MethodGet}} {
			if r := e.send(t, batch(record("k1", "ppu", "1")), rq); r.status != http.StatusNotFound {
				t.Errorf("tokens %q, %s: HTTP %d, want 404: %s", tokens, rq.method, r.status, r.raw)
			}
		}
		srv.Close()
	}
}

// TestRecords: a record whose fields are wrong is rejected naming the
// field, the others of its batch are taken; results come in request
// order; a key sent again is a duplicate; what was accepted is summed.
func TestRecords(t *testing.T) {
	for _, d := range dbtest.Dialects {
		t.Run(d.Name, func(t *testing.T) {
			e := newEnv(t, d.Open(t))
			future := now.Add(5 * time.Minute).Format(time.RFC3339)
			cases := []struct {
				raw    string
				status string
				want   string // the error, exactly ("" when accepted)
			}{
				{record("a1", "ppu", "1.5"), usage.Accepted, ""},
				{record("s1", "ppu", `"1.5"`), usage.Rejected, "value: must be a number, not a string"},
				{`{"idempotencyKey":"s2","instanceId":"ppu","value":1,"time":1765016100}`, usage.Rejected, "time: must be a string, not a number"},
				{`{"idempotencyKey":"s3","instanceId":"ppu","value":null,"time":"` + at + `"}`, usage.Rejected, "value: must be a number, not null"},
				{`{"idempotencyKey":"s4","instanceId":null,"value":1,"time":"` + at + `"}`, usage.Rejected, "instanceId: must be a string, not null"},
				{`{"idempotencyKey":"s5","instanceId":["ppu"],"value":1,"time":"` + at + `"}`, usage.Rejected, "instanceId: must be a string, not an array"},
				{`{"idempotencyKey":"s6","instanceId":"ppu","value":true,"time":"` + at + `"}`, usage.Rejected, "value: must be a number, not a boolean"},
				{`{"idempotencyKey":"s7","instanceId":"ppu","value":{},"time":"` + at + `"}`, usage.Rejected, "value: must be a number, not an object"},
				{`{"idempotencyKey":"u1","instanceId":"ppu","value":1,"time":"` + at + `","unit":"GB"}`, usage.Rejected, "unit: unknown field (the fields are idempotencyKey, instanceId, value, time)"},
				{`{"idempotencyKey":"m1","value":1,"time":"` + at + `"}`, usage.Rejected, "instanceId: missing"},
				{`{"idempotencyKey":"m2","instanceId":"ppu","time":"` + at + `"}`, usage.Rejected, "value: missing"},
				{`{"idempotencyKey":"m3","instanceId":"ppu","value":1}`, usage.Rejected, "time: missing"},
				{`{"idempotencyKey":"t1","instanceId":"ppu","value":1,"time":"2026-12-06 10:15:00"}`, usage.Rejected, `time: "2026-12-06 10:15:00" is not an RFC 3339 time such as 2026-12-06T10:15:00Z`},
				{`{"idempotencyKey":"t2","instanceId":"ppu","value":1,"time":"2026-12-06T10:15:00"}`, usage.Rejected, `time: "2026-12-06T10:15:00" is not an RFC 3339 time such as 2026-12-06T10:15:00Z`},
				{`{"idempotencyKey":"t3","instanceId":"ppu","value":1,"time":"` + future + `"}`, usage.Rejected, "time: " + future + " is in the future"},
				{record("a2", "ppu2", "2"), usage.Accepted, ""},
				{record("v1", "ppu", "1.00001"), usage.Rejected, "value: 1.00001 has more than 4 decimals"},
				{record("v2", "ppu", "0"), usage.Rejected, "value: 0: must be more than 0"},
				{record("v3", "ppu", "-1"), usage.Rejected, "value: -1: must be more than 0"},
				{record("v4", "ppu", "1e3"), usage.Rejected, "value: write it without an exponent, at most 4 decimals"},
				{record("v5", "ppu", "100000000"), usage.Rejected, "value: 100000000: more than 99999999.9999"},
				{record("i1", "nope", "1"), usage.Rejected, "instanceId: unknown instance nope"},
				{record("i2", "period", "1"), usage.Rejected, "instanceId: instance period is not pay-per-use (chargingMode PERIOD)"},
				{record("k sp", "ppu", "1"), usage.Rejected, "idempotencyKey: only printable ASCII characters without spaces"},
				{record(strings.Repeat("k", 129), "ppu", "1"), usage.Rejected, "idempotencyKey: longer than 128 characters"},
				{record("a3", "ppu", "0.0001"), usage.Accepted, ""},
				{record("a1", "ppu", "1.5"), usage.Duplicate, ""},
				{record("a2", "ppu", "3"), usage.Rejected, "idempotencyKey: already used by record 15 of this batch with other content"},
			}
			var recs []string
			for _, c := range cases {
				recs = append(recs, c.raw)
			}
			res := e.send(t, batch(recs...), req{}).results(t)
			if len(res) != len(cases) {
				t.Fatalf("%d results for %d records", len(res), len(cases))
			}
			for i, c := range cases {
				var key struct {
					IdempotencyKey any `json:"idempotencyKey"`
				}
				if err := json.Unmarshal([]byte(c.raw), &key); err != nil {
					t.Fatal(err)
				}
				if k, _ := key.IdempotencyKey.(string); res[i].IdempotencyKey != k {
					t.Errorf("result %d is for key %q, want %q (request order)", i, res[i].IdempotencyKey, k)
				}
				if res[i].Status != c.status || res[i].Error != c.want {
					t.Errorf("record %d %s: %s %q, want %s %q", i, c.raw, res[i].Status, res[i].Error, c.status, c.want)
				}
			}
			if got := e.total(t, "ppu"); got != 15001 {
				t.Errorf("ppu: total %d, want 15001 (1.5 + 0.0001)", got)
			}
			if got := e.total(t, "ppu2"); got != 20000 {
				t.Errorf("ppu2: total %d, want 20000", got)
			}

			// The batch again, as after a lost answer: nothing is added,
			// the records taken are duplicates, the others rejected again.
			res = e.send(t, batch(recs...), req{}).results(t)
			for i, c := range cases {
				want := c.status
				if want == usage.Accepted {
					want = usage.Duplicate
				}
				if res[i].Status != want {
					t.Errorf("again, record %d %s: %s %q, want %s", i, c.raw, res[i].Status, res[i].Error, want)
				}
			}
			if got := e.total(t, "ppu"); got != 15001 {
				t.Errorf("after the batch again: ppu total %d, want 15001", got)
			}

			// A key taken before, with other content, is refused.
			res = e.send(t, batch(record("a1", "ppu", "2.5"), record("a4", "ppu", "1")), req{}).results(t)
			if res[0].Status != usage.Rejected || res[0].Error != "idempotencyKey: already used for a record with other content" {
				t.Errorf("a1 with another value: %+v", res[0])
			}
			if res[1].Status != usage.Accepted {
				t.Errorf("a4 beside it: %+v", res[1])
			}
			if got := e.total(t, "ppu"); got != 25001 {
				t.Errorf("ppu: total %d, want 25001", got)
			}

			// A batch whose records all fail to decode is answered
			// without the service.
			res = e.send(t, batch(record("s1", "ppu", `"1"`)), req{}).results(t)
			if len(res) != 1 || res[0].Status != usage.Rejected || res[0].Error != "value: must be a number, not a string" {
				t.Errorf("a lone bad record: %+v", res)
			}
		})
	}
}

// failing is an Ingester whose database is down.
type failing struct {
	calls int
	last  []usage.Input
}

func (f *failing) Ingest(_ context.Context, in []usage.Input) ([]usage.Result, error) {
	f.calls++
	f.last = in
	return nil, errors.New("connection refused by 10.0.0.7:5432")
}

// TestUnavailable: when the records cannot be stored the whole batch is
// answered 503 with Retry-After, and nothing of it acknowledged.
func TestUnavailable(t *testing.T) {
	f := &failing{}
	logs := &lockbuf.Buffer{}
	h, err := usageapi.New(usageapi.Config{Usage: f, Tokens: []string{token}, Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	e := &env{url: srv.URL}
	r := e.send(t, batch(record("k1", "ppu", "1"), record("bad", "ppu", `"1"`)), req{})
	if r.status != http.StatusServiceUnavailable {
		t.Fatalf("HTTP %d, want 503: %s", r.status, r.raw)
	}
	if ra := r.header.Get("Retry-After"); ra == "" {
		t.Error("no Retry-After")
	}
	msg := r.errorText(t)
	if !strings.Contains(msg, "send the batch again") || strings.Contains(msg, "10.0.0.7") {
		t.Errorf("error %q: want the advice, without the database's address", msg)
	}
	if f.calls != 1 {
		t.Errorf("Ingest called %d times, want 1", f.calls)
	}
	if !strings.Contains(logs.String(), "records not stored") || strings.Contains(logs.String(), token) {
		t.Errorf("log: want the failure logged, without the token: %s", logs.String())
	}

	// Records that fail to decode go to the service too, with their
	// problem, so that it answers and counts them: the fake saw the
	// string value's.
	if len(f.last) != 2 || f.last[1].Problem != "value: must be a number, not a string" || f.last[0].Problem != "" {
		t.Errorf("the service was given %+v", f.last)
	}
}

// TestUnavailableStore: the same with a real service whose database is
// closed.
func TestUnavailableStore(t *testing.T) {
	st := dbtest.Dialects[0].Open(t)
	e := newEnv(t, st)
	if res := e.send(t, batch(record("k1", "ppu", "1")), req{}).results(t); res[0].Status != usage.Accepted {
		t.Fatalf("before: %+v", res)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	r := e.send(t, batch(record("k2", "ppu", "1")), req{})
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
		t.Fatalf("HTTP %d, Retry-After %q; want 503 with Retry-After: %s", r.status, r.header.Get("Retry-After"), r.raw)
	}
	if msg := r.errorText(t); !strings.Contains(msg, "nothing of it was acknowledged") {
		t.Errorf("error %q", msg)
	}
}
