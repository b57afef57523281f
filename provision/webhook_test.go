package provision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

const testSecret = "whsec-0123456789abcdef0123456789abcdef"

// delivery is one request a test vendor received.
type delivery struct {
	method string
	header http.Header
	body   []byte
}

// vendor is a real HTTP server standing in for the vendor's product: it
// records every delivery and answers with status and body.
type vendor struct {
	srv        *httptest.Server
	mu         sync.Mutex
	deliveries []delivery
}

func newVendor(t *testing.T, status int, body string) *vendor {
	t.Helper()
	v := &vendor{}
	v.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		v.mu.Lock()
		v.deliveries = append(v.deliveries, delivery{r.Method, r.Header.Clone(), b})
		v.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if status >= 300 && status < 400 {
			// A real redirect, to a path that would answer 2xx: it must
			// not be followed.
			w.Header().Set("Location", "http://"+r.Host+"/elsewhere")
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(v.srv.Close)
	return v
}

func (v *vendor) last(t *testing.T) delivery {
	t.Helper()
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.deliveries) == 0 {
		t.Fatal("vendor received nothing")
	}
	return v.deliveries[len(v.deliveries)-1]
}

func newTestWebhook(t *testing.T, url string) *Webhook {
	t.Helper()
	w, err := NewWebhook(WebhookConfig{URL: url, Secret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func testEvent(typ EventType) Event {
	ev := Event{
		ID:   string(typ) + ":inst-1",
		Type: typ,
		Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Instance: Instance{
			ID: "inst-1", OrderID: "CS2211181819B4LVS", OrderLineID: "CS2211181819B4LVS-000001",
			SKUCode: "sku-1", ChargingMode: "PERIOD", CustomerName: "客户 <&>", Status: "provisioning",
		},
	}
	if typ == EventChangeCheck {
		ev.Change = &Product{SKUCode: "sku-2"}
	}
	return ev
}

const createdReply = `{"appInfo":{"frontEndUrl":"https://app.example.com/t/inst-1","userName":"admin","password":"pw","memo":"中文"}}`

func TestWebhookDelivery(t *testing.T) {
	v := newVendor(t, http.StatusOK, createdReply)
	w := newTestWebhook(t, v.srv.URL+"/hooks/koobridge")
	ev := testEvent(EventCreated)
	res, err := w.Provision(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if res.AppInfo == nil || res.AppInfo.FrontEndURL != "https://app.example.com/t/inst-1" || res.AppInfo.Memo != "中文" {
		t.Errorf("Result = %+v", res)
	}

	d := v.last(t)
	if d.method != http.MethodPost {
		t.Errorf("method = %s", d.method)
	}
	for name, want := range map[string]string{
		"Content-Type":       "application/json",
		"Koobridge-Event":    "instance.created",
		"Koobridge-Delivery": ev.ID,
		"Idempotency-Key":    ev.ID,
	} {
		if got := d.header.Get(name); got != want {
			t.Errorf("header %s = %q, want %q", name, got, want)
		}
	}
	if err := VerifyWebhook(testSecret, d.header.Get(HeaderSignature), d.body, time.Now()); err != nil {
		t.Errorf("signature does not verify: %v (header %q)", err, d.header.Get(HeaderSignature))
	}
	if err := VerifyWebhook("other-secret", d.header.Get(HeaderSignature), d.body, time.Now()); err == nil {
		t.Error("signature verifies with another secret")
	}
	var got Event
	if err := json.Unmarshal(d.body, &got); err != nil {
		t.Fatal(err)
	}
	if got.ID != ev.ID || got.Type != ev.Type || !got.Time.Equal(ev.Time) || got.Instance != ev.Instance {
		t.Errorf("delivered event = %+v, want %+v", got, ev)
	}

	// A retry of the same event carries the same idempotency key.
	if _, err := w.Provision(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	if d2 := v.last(t); d2.header.Get(HeaderDelivery) != ev.ID || d2.header.Get(HeaderIdempotencyKey) != ev.ID {
		t.Errorf("retry headers = %v", d2.header)
	}
}

func TestWebhookReplies(t *testing.T) {
	tests := []struct {
		name        string
		typ         EventType
		body        string
		wantErr     string // "" = success
		wantAllowed bool
		wantReason  string
		wantApp     bool
	}{
		{name: "created", typ: EventCreated, body: createdReply, wantApp: true},
		{name: "created empty body", typ: EventCreated, body: "", wantErr: "no appInfo.frontEndUrl"},
		{name: "created empty object", typ: EventCreated, body: "{}", wantErr: "no appInfo.frontEndUrl"},
		{name: "created empty appInfo", typ: EventCreated, body: `{"appInfo":{}}`, wantErr: "no appInfo.frontEndUrl"},
		{name: "created appInfo without url", typ: EventCreated, body: `{"appInfo":{"userName":"a"}}`, wantErr: "without frontEndUrl"},
		{name: "created url too long", typ: EventCreated, body: `{"appInfo":{"frontEndUrl":"https://x/` + strings.Repeat("a", 600) + `"}}`, wantErr: "appInfo.frontEndUrl: longer than 512"},
		{name: "created memo of 1024 characters", typ: EventCreated, body: `{"appInfo":{"frontEndUrl":"https://x","memo":"` + strings.Repeat("文", 1024) + `"}}`, wantApp: true},
		{name: "created memo too long", typ: EventCreated, body: `{"appInfo":{"frontEndUrl":"https://x","memo":"` + strings.Repeat("文", 1025) + `"}}`, wantErr: "appInfo.memo: longer than 1024"},
		{name: "created not JSON", typ: EventCreated, body: "<html>OK</html>", wantErr: "not a JSON result object"},
		{name: "created JSON array", typ: EventCreated, body: "[]", wantErr: "not a JSON result object"},
		{name: "renewed empty body", typ: EventRenewed, body: ""},
		{name: "renewed whitespace", typ: EventRenewed, body: " \n"},
		{name: "released null", typ: EventReleased, body: "null"},
		{name: "upgraded new appInfo", typ: EventUpgraded, body: createdReply, wantApp: true},
		{name: "unknown fields ignored", typ: EventFrozen, body: `{"ok":true,"extra":[1,2]}`},
		{name: "change allowed by silence", typ: EventChangeCheck, body: "", wantAllowed: true},
		{name: "change allowed by empty object", typ: EventChangeCheck, body: "{}", wantAllowed: true},
		{name: "change allowed", typ: EventChangeCheck, body: `{"allowed":true}`, wantAllowed: true},
		{name: "change refused", typ: EventChangeCheck, body: `{"allowed":false,"reason":"downgrade not supported"}`, wantReason: "downgrade not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newVendor(t, http.StatusOK, tt.body)
			res, err := newTestWebhook(t, v.srv.URL).Provision(context.Background(), testEvent(tt.typ))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				if !errors.Is(err, ErrPermanent) {
					t.Errorf("unusable 2xx reply is not permanent: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Allowed != tt.wantAllowed || res.Reason != tt.wantReason || (res.AppInfo != nil) != tt.wantApp {
				t.Errorf("Result = %+v (AppInfo %v)", res, res.AppInfo)
			}
		})
	}
}

func TestWebhookStatusClasses(t *testing.T) {
	tests := []struct {
		status    int
		permanent bool
	}{
		{201, false}, {204, false}, // success; checked separately below
		{400, true}, {401, true}, {403, true}, {404, true}, {409, true}, {410, true}, {422, true},
		{408, false}, {425, false}, {429, false},
		{500, false}, {502, false}, {503, false}, {504, false},
		{302, false}, {307, false},
	}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			body := `{"error":"nope"}`
			v := newVendor(t, tt.status, body)
			_, err := newTestWebhook(t, v.srv.URL).Provision(context.Background(), testEvent(EventRenewed))
			if tt.status < 300 {
				if err != nil {
					t.Fatalf("HTTP %d: %v", tt.status, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("HTTP %d succeeded", tt.status)
			}
			if got := errors.Is(err, ErrPermanent); got != tt.permanent {
				t.Errorf("HTTP %d: permanent = %v, want %v (%v)", tt.status, got, tt.permanent, err)
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("HTTP %d", tt.status)) || !strings.Contains(err.Error(), body) {
				t.Errorf("error %q lacks the status or the body", err)
			}
			v.mu.Lock()
			n := len(v.deliveries)
			v.mu.Unlock()
			if n != 1 {
				t.Errorf("vendor got %d requests, want 1 (redirect followed?)", n)
			}
		})
	}
}

func TestWebhookErrorText(t *testing.T) {
	// The vendor echoes our secret (it should not, but errors must not
	// carry it on), and the URL holds a token.
	long := strings.Repeat("x", 190) + testSecret + strings.Repeat("y", 500)
	v := newVendor(t, http.StatusInternalServerError, long)
	w := newTestWebhook(t, v.srv.URL+"/hook?token=url-token-123")
	_, err := w.Provision(context.Background(), testEvent(EventRenewed))
	if err == nil {
		t.Fatal("HTTP 500 succeeded")
	}
	msg := err.Error()
	for _, bad := range []string{testSecret, testSecret[:10], "url-token-123", "yyy"} {
		if strings.Contains(msg, bad) {
			t.Errorf("error %q contains %q", msg, bad)
		}
	}
	if !strings.Contains(msg, "HTTP 500") || !strings.Contains(msg, strings.Repeat("x", 190)) {
		t.Errorf("error %q lacks the status or the start of the body", msg)
	}
	if n := strings.Count(msg, "x"); n > 200 {
		t.Errorf("error quotes %d bytes of body", n)
	}
}

func TestWebhookTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })

	w, err := NewWebhook(WebhookConfig{URL: srv.URL, Secret: testSecret, Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.Provision(context.Background(), testEvent(EventCreated))
	if err == nil || errors.Is(err, ErrPermanent) || !strings.Contains(err.Error(), "no reply within 200ms") {
		t.Fatalf("error = %v, want a retryable timeout", err)
	}

	// The caller's own deadline (the job's lease) also stops a delivery.
	w, _ = NewWebhook(WebhookConfig{URL: srv.URL, Secret: testSecret, Timeout: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = w.Provision(ctx, testEvent(EventCreated))
	if err == nil || errors.Is(err, ErrPermanent) || !strings.Contains(err.Error(), "deadline exceeded") {
		t.Fatalf("error = %v, want a retryable deadline error", err)
	}
}

func TestWebhookTransportError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	_, err = newTestWebhook(t, "http://"+addr+"/hook").Provision(context.Background(), testEvent(EventCreated))
	if err == nil || errors.Is(err, ErrPermanent) {
		t.Fatalf("error = %v, want a retryable connection error", err)
	}
}

func TestWebhookBodyLimit(t *testing.T) {
	reply := `{"appInfo":{"frontEndUrl":"https://x"}}`
	tests := []struct {
		name    string
		size    int
		wantErr bool
	}{
		{"exactly 1 MiB", 1 << 20, false},
		{"1 MiB and a byte", 1<<20 + 1, true},
		{"8 MiB", 8 << 20, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := reply + strings.Repeat(" ", tt.size-len(reply))
			v := newVendor(t, http.StatusOK, body)
			res, err := newTestWebhook(t, v.srv.URL).Provision(context.Background(), testEvent(EventCreated))
			if !tt.wantErr {
				if err != nil || res.AppInfo == nil {
					t.Fatalf("Provision = %+v, %v", res, err)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrPermanent) || !strings.Contains(err.Error(), "exceeds") {
				t.Fatalf("error = %v, want a permanent size error", err)
			}
		})
	}
}

func TestNewWebhookConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  WebhookConfig
	}{
		{"no URL", WebhookConfig{Secret: "s"}},
		{"relative URL", WebhookConfig{URL: "/hook", Secret: "s"}},
		{"ftp URL", WebhookConfig{URL: "ftp://vendor.example.com/hook", Secret: "s"}},
		{"no host", WebhookConfig{URL: "https:///hook", Secret: "s"}},
		{"no secret", WebhookConfig{URL: "https://vendor.example.com/hook"}},
		{"negative timeout", WebhookConfig{URL: "https://vendor.example.com/hook", Secret: "s", Timeout: -time.Second}},
	}
	for _, tt := range tests {
		if _, err := NewWebhook(tt.cfg); err == nil {
			t.Errorf("%s: NewWebhook accepted %+v", tt.name, tt.cfg)
		}
	}
	if _, err := NewWebhook(WebhookConfig{URL: "https://vendor.example.com/hook", Secret: "s"}); err != nil {
		t.Errorf("valid config rejected: %v", err)
	}
}

func TestWebhookEventWithoutID(t *testing.T) {
	v := newVendor(t, http.StatusOK, "")
	_, err := newTestWebhook(t, v.srv.URL).Provision(context.Background(), Event{Type: EventRenewed})
	if err == nil || !errors.Is(err, ErrPermanent) {
		t.Fatalf("error = %v, want permanent", err)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.deliveries) != 0 {
		t.Error("an event without an id was delivered")
	}
}

func TestVerifyWebhook(t *testing.T) {
	body := []byte(`{"id":"e1","type":"instance.created"}`)
	at := time.Unix(1767225600, 0)
	good := SignWebhook(testSecret, at, body)
	v1 := strings.SplitN(good, "v1=", 2)[1]
	tests := []struct {
		name   string
		secret string
		header string
		body   []byte
		now    time.Time
		ok     bool
	}{
		{"good", testSecret, good, body, at, true},
		{"good, clock 5 min ahead", testSecret, good, body, at.Add(5 * time.Minute), true},
		{"good, clock 5 min behind", testSecret, good, body, at.Add(-5 * time.Minute), true},
		{"spaces and upper-case hex", testSecret, "t=1767225600, v1=" + strings.ToUpper(v1), body, at, true},
		{"second v1 matches", testSecret, "t=1767225600,v1=00ff,v1=" + v1, body, at, true},
		{"stale", testSecret, good, body, at.Add(5*time.Minute + time.Second), false},
		{"future", testSecret, good, body, at.Add(-5*time.Minute - time.Second), false},
		{"tampered body", testSecret, good, []byte(`{"id":"e2","type":"instance.created"}`), at, false},
		{"body with trailing newline", testSecret, good, append(append([]byte{}, body...), '\n'), at, false},
		{"wrong secret", "whsec-other", good, body, at, false},
		{"t changed", testSecret, "t=1767225601,v1=" + v1, body, at, false},
		{"no t", testSecret, "v1=" + v1, body, at, false},
		{"negative t", testSecret, "t=-1,v1=" + v1, body, at, false},
		{"no v1", testSecret, "t=1767225600", body, at, false},
		{"bad hex", testSecret, "t=1767225600,v1=zz", body, at, false},
		{"empty", testSecret, "", body, at, false},
	}
	for _, tt := range tests {
		err := VerifyWebhook(tt.secret, tt.header, tt.body, tt.now)
		if (err == nil) != tt.ok {
			t.Errorf("%s: VerifyWebhook = %v, want ok %v", tt.name, err, tt.ok)
		}
	}
	// A known answer, computed with openssl dgst -sha256 -hmac (the
	// example in docs/provisioning.md).
	if want := "t=1767225600,v1=6a4ed5e5bb49126ec0901c1ee467c86e53cf206444cedc2f7fe32f5101b8ff7d"; good != want {
		t.Errorf("SignWebhook = %q, want %q", good, want)
	}
}
