// Package usageapi is the usage API of the vendor's product
// (docs/metering.md): POST /api/v1/usage with a bearer token and a batch of
// up to 1000 usage records, answered per record. A record acknowledged
// accepted or duplicate is durable; the idempotency keys make sending a
// batch again safe after any failure.
package usageapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/koobridge/koobridge/internal/bearer"
	"github.com/koobridge/koobridge/internal/jsonreq"
	"github.com/koobridge/koobridge/internal/usage"
	"github.com/koobridge/koobridge/protocol"
)

// Path is where the API answers.
const Path = "/api/v1/usage"

// MaxBody bounds a request body: 1000 records of some 200 bytes fit many
// times over.
const MaxBody = 1 << 20

// Ingester stores usage records: *usage.Service.
type Ingester interface {
	Ingest(ctx context.Context, in []usage.Input) ([]usage.Result, error)
}

// Config configures the handler.
type Config struct {
	Usage Ingester
	// Tokens are the bearer tokens accepted (several during a rotation).
	// None: every request is answered 404, the API is off.
	Tokens []string
	Logger *slog.Logger
}

type handler struct {
	usage  Ingester
	tokens bearer.Tokens
	log    *slog.Logger
}

// New returns the handler of Path.
func New(cfg Config) (http.Handler, error) {
	if cfg.Usage == nil {
		return nil, errors.New("usageapi: no usage service")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &handler{usage: cfg.Usage, tokens: bearer.New(cfg.Tokens...), log: cfg.Logger}, nil
}

// Result is the answer for one record.
type Result struct {
	IdempotencyKey string `json:"idempotencyKey"`
	Status         string `json:"status"` // accepted, duplicate or rejected
	Error          string `json:"error,omitempty"`
}

// Response is the answer to a request that was read: one result per
// record, in the request's order.
type Response struct {
	Results []Result `json:"results"`
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.tokens.Empty() {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	if r.URL.Path != Path {
		writeError(w, http.StatusNotFound, "no such endpoint: "+r.URL.Path)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, "use POST")
		return
	}
	if !h.tokens.Allow(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="koobridge usage"`)
		writeError(w, http.StatusUnauthorized, "missing or wrong bearer token")
		return
	}
	if r.URL.RawQuery != "" {
		writeError(w, http.StatusBadRequest, "the request takes no query parameters: send the records in the JSON body")
		return
	}
	body, status, problem := jsonreq.Read(w, r, MaxBody)
	if status != 0 {
		writeError(w, status, problem)
		return
	}
	in, problems, err := decode(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	results, err := h.ingest(r.Context(), in, problems)
	if err != nil {
		h.log.WarnContext(r.Context(), "usage API: records not stored", "records", len(in), "err", err)
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "the records could not be stored (database unavailable): send the batch again; nothing of it was acknowledged")
		return
	}
	out := Response{Results: make([]Result, len(results))}
	for i, res := range results {
		out.Results[i] = Result{IdempotencyKey: res.IdempotencyKey, Status: res.Status, Error: res.Error}
	}
	writeJSON(w, http.StatusOK, out)
}

// ingest passes the records to the service, those that did not decode
// with their problem (answered rejected, and counted, by the service).
func (h *handler) ingest(ctx context.Context, in []usage.Input, problems []string) ([]usage.Result, error) {
	for i, p := range problems {
		in[i].Problem = p
	}
	return h.usage.Ingest(ctx, in)
}

// Record fields, and their kinds.
var fields = map[string]string{
	"idempotencyKey": "a string", "instanceId": "a string", "value": "a number", "time": "a string",
}

// fieldOrder is the order record fields are checked in.
var fieldOrder = []string{"idempotencyKey", "instanceId", "value", "time"}

// decode reads a request body: strictly as JSON (package protocol's
// checks), an object with exactly "records", an array of 1 to 1000
// objects. A record whose fields are wrong is answered rejected with its
// problem (problems[i]); the body as a whole is refused only when it is
// not such an array.
func decode(body []byte) ([]usage.Input, []string, error) {
	if err := protocol.CheckStrictJSON(body, "request body"); err != nil {
		return nil, nil, errors.New(strings.TrimPrefix(err.Error(), "protocol: decode "))
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return nil, nil, fmt.Errorf("request body: %v", err)
	}
	for k := range top {
		if k != "records" {
			return nil, nil, fmt.Errorf("request body: unknown field %q (the body is {\"records\":[…]})", k)
		}
	}
	raw, ok := top["records"]
	if !ok {
		return nil, nil, errors.New(`request body: records: missing (the body is {"records":[…]})`)
	}
	var list []json.RawMessage
	if kind(raw) != '[' || json.Unmarshal(raw, &list) != nil {
		return nil, nil, errors.New("records: must be an array")
	}
	switch {
	case len(list) == 0:
		return nil, nil, errors.New("records: empty")
	case len(list) > usage.MaxBatch:
		return nil, nil, fmt.Errorf("records: %d records: at most %d per request", len(list), usage.MaxBatch)
	}
	in := make([]usage.Input, len(list))
	problems := make([]string, len(list))
	for i, r := range list {
		if kind(r) != '{' {
			return nil, nil, fmt.Errorf("records[%d]: must be an object", i)
		}
		in[i], problems[i] = decodeRecord(r)
	}
	return in, problems, nil
}

// decodeRecord reads one record; problem is why it is rejected.
func decodeRecord(raw json.RawMessage) (in usage.Input, problem string) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return in, "not an object"
	}
	// The key first, so a rejection can name its record.
	if v, ok := m["idempotencyKey"]; ok && kind(v) == '"' {
		_ = json.Unmarshal(v, &in.IdempotencyKey)
	}
	// In a fixed order, so that a record with several problems is always
	// answered with the same one.
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		if _, known := fields[k]; !known {
			return in, fmt.Sprintf("%s: unknown field (the fields are idempotencyKey, instanceId, value, time)", k)
		}
	}
	for _, k := range fieldOrder {
		v, ok := m[k]
		if !ok {
			return in, k + ": missing"
		}
		want, got := fields[k], kind(v)
		if want == "a number" && got != 'n' || want == "a string" && got != '"' {
			return in, fmt.Sprintf("%s: must be %s, not %s", k, want, noun(got))
		}
	}
	_ = json.Unmarshal(m["instanceId"], &in.InstanceID)
	in.Value = string(bytes.TrimSpace(m["value"]))
	var ts string
	_ = json.Unmarshal(m["time"], &ts)
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return in, fmt.Sprintf("time: %q is not an RFC 3339 time such as 2026-12-06T10:15:00Z", ts)
	}
	in.Time = t
	return in, ""
}

// kind is the kind of a JSON value by its first byte: '{', '[', '"', 'n'
// (a number), 't' (a boolean), 'z' (null).
func kind(v json.RawMessage) byte {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return 0
	}
	switch c := v[0]; {
	case c == '{' || c == '[' || c == '"':
		return c
	case c == 't' || c == 'f':
		return 't'
	case c == 'n':
		return 'z'
	default:
		return 'n'
	}
}

func noun(k byte) string {
	switch k {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't':
		return "a boolean"
	case 'z':
		return "null"
	}
	return "a number"
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, struct {
		Error string `json:"error"`
	}{msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"internal error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
