package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/textproto"
	"strings"
	"time"

	"github.com/koobridge/koobridge/emulator/mockapi"
)

// demoSuiteDialTimeout bounds the connect to the conformance address: on
// loopback a refusal is immediate, and an address that swallows packets
// must not hold up the server's Query Order for long.
const demoSuiteDialTimeout = 2 * time.Second

// demoSuiteTimeout bounds one forwarded Query Order; the server's own
// client gives up sooner.
const demoSuiteTimeout = 30 * time.Second

// demoOpenAPI is the Open API the demo's server is pointed at, served on
// the emulator's address. A conformance run against the demo brings its
// own emulator and mocked Open API (on --openapi-listen), and the server
// must ask that one about the suite's orders, while the demo's own
// emulator keeps answering for the orders it placed. So Query Order is
// routed by the order: one the demo's emulator placed (knows) goes to
// the emulator; any other goes to suite, where a conformance run listens,
// as it came with its Host header (the suite verifies the APIG signature,
// which covers the host), less the hop-by-hop headers (dropHopHeaders); when nothing listens there it goes
// to the emulator, which answers that the order does not exist. Every
// other request (usage pushes, the license APIs, the emulator's page and
// JSON API) goes to the emulator.
type demoOpenAPI struct {
	emulator http.Handler
	knows    func(orderID string) bool
	suite    string // host:port
	client   *http.Client
	log      *slog.Logger
}

// errDemoDial marks a failed connect to the suite's address: nothing
// listens there, so the request was never sent.
var errDemoDial = errors.New("nothing listens at the conformance address")

func newDemoOpenAPI(emu http.Handler, knows func(string) bool, suite string, log *slog.Logger) *demoOpenAPI {
	dialer := &net.Dialer{Timeout: demoSuiteDialTimeout}
	transport := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, fmt.Errorf("%w: %w", errDemoDial, err)
			}
			return c, nil
		},
		// A fresh connection per request: a suite that stopped leaves no
		// pooled connection behind, and a new run is found at once.
		DisableKeepAlives: true,
		// No Accept-Encoding added: the request goes on as it came.
		DisableCompression: true,
	}
	return &demoOpenAPI{
		emulator: emu, knows: knows, suite: suite, log: log,
		client: &http.Client{
			Transport: transport,
			Timeout:   demoSuiteTimeout,
			// The suite's answer goes back as it is, redirects included.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

func (d *demoOpenAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet || r.URL.Path != mockapi.QueryOrderPath || d.knows(r.URL.Query().Get("orderId")) {
		d.emulator.ServeHTTP(w, r)
		return
	}
	if !d.forward(w, r) {
		d.emulator.ServeHTTP(w, r)
	}
}

// hopHeaders are connection-level headers (RFC 9110 §7.6.1), not sent on.
var hopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// dropHopHeaders removes from h the headers that concern only the
// connection it came on: those the Connection header names (RFC 9110
// §7.6.1: a forwarder must drop them), then hopHeaders, Connection
// itself included. This cannot break the suite's check of the APIG
// signature: the signer never signs hopHeaders, and a header that a
// Connection header names is one the client's side added for its own hop
// (the server's Open API client sends no Connection header of its own).
func dropHopHeaders(h http.Header) {
	for _, v := range h.Values("Connection") {
		for name := range strings.SplitSeq(v, ",") {
			if name = textproto.TrimString(name); name != "" {
				h.Del(name)
			}
		}
	}
	for _, name := range hopHeaders {
		h.Del(name)
	}
}

// forward sends r to the suite's address and copies its answer to w. It
// returns false, having written nothing, when nothing listens there; r's
// body is then still unread.
func (d *demoOpenAPI) forward(w http.ResponseWriter, r *http.Request) bool {
	// A Query Order has no body; a request that has one is sent on with
	// it all the same, and kept for the emulator should nothing listen.
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, "read request: "+err.Error(), http.StatusBadRequest)
		return true
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	out, err := http.NewRequestWithContext(r.Context(), r.Method, "http://"+d.suite+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		d.fail(w, err)
		return true
	}
	out.Header = r.Header.Clone()
	dropHopHeaders(out.Header)
	// The signature covers the host the server signed for: the demo's.
	out.Host = r.Host
	if len(body) == 0 {
		out.Body, out.ContentLength = http.NoBody, 0
	}
	resp, err := d.client.Do(out)
	if errors.Is(err, errDemoDial) {
		return false
	}
	if err != nil {
		d.fail(w, err)
		return true
	}
	defer resp.Body.Close()
	answer := resp.Header.Clone()
	dropHopHeaders(answer)
	for k, v := range answer {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	if _, err := io.Copy(w, resp.Body); err != nil {
		d.log.Error("demo: copy the conformance suite's Query Order answer", "suite", d.suite, "err", err)
	}
	return true
}

// fail answers a Query Order the suite's address took but did not answer
// the way the gateway answers an unreachable backend: 502, which the
// server retries.
func (d *demoOpenAPI) fail(w http.ResponseWriter, err error) {
	d.log.Error("demo: forward Query Order to the conformance suite", "suite", d.suite, "err", err)
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(http.StatusBadGateway)
	_ = json.NewEncoder(w).Encode(map[string]string{
		"error_code": "APIG.0202",
		"error_msg":  "koobridge demo: the conformance suite at " + d.suite + " did not answer",
	})
}
