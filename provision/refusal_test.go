package provision

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
)

func TestRefusalErrorMasked(t *testing.T) {
	err := Refuse(CodeMobileInUse, "Mobile 13912345678 / bob@example.com is already used")
	var r *Refusal
	if !errors.As(err, &r) || r.Message != "Mobile 13912345678 / bob@example.com is already used" {
		t.Fatalf("refusal %v: the message for the buyer must stay as written", err)
	}
	if msg := err.Error(); strings.Contains(msg, "13912345678") || strings.Contains(msg, "bob@example.com") || !strings.Contains(msg, "139****5678") {
		t.Errorf("Error() = %q: personal data must be masked in what is logged", msg)
	}
}

func TestRefuse(t *testing.T) {
	tests := []struct {
		name, code, msg string
		wantCode        string // "" when Refuse must not give a *Refusal
		wantMsg         string
	}{
		{name: "sold out", code: CodeSoldOut, msg: "all seats taken", wantCode: "000106", wantMsg: "all seats taken"},
		{name: "no message", code: CodeAlreadyPurchased, wantCode: "000103", wantMsg: "the product cannot be purchased again"},
		{name: "invalid UTF-8 dropped", code: CodeMobileInUse, msg: "in use\xff", wantCode: "000101", wantMsg: "in use"},
		{name: "long message cut", code: CodeNoResources, msg: strings.Repeat("满", 300), wantCode: "000100", wantMsg: strings.Repeat("满", 255)},
		{name: "000104 is an internal error, not a refusal", code: "000104", msg: "x"},
		{name: "success is not a refusal", code: "000000"},
		{name: "unknown code", code: "999999"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Refuse(tc.code, tc.msg)
			if !errors.Is(err, ErrPermanent) {
				t.Fatalf("Refuse(%q) = %v: not permanent", tc.code, err)
			}
			var r *Refusal
			if got := errors.As(err, &r); got != (tc.wantCode != "") {
				t.Fatalf("Refuse(%q) = %#v: refusal %v, want %v", tc.code, err, got, tc.wantCode != "")
			}
			if r != nil && (r.Code != tc.wantCode || r.Message != tc.wantMsg) {
				t.Errorf("Refuse(%q, %q) = {%q, %q}, want {%q, %q}", tc.code, tc.msg, r.Code, r.Message, tc.wantCode, tc.wantMsg)
			}
		})
	}
}

// TestRefusalReplies checks that the webhook and the exec adapter turn a
// business resultCode in the vendor's reply into a *Refusal, only for
// instance.created and only with the business codes.
func TestRefusalReplies(t *testing.T) {
	tests := []struct {
		name     string
		typ      EventType
		status   int
		body     string
		wantCode string // a refusal with this code
		wantErr  string // otherwise a permanent error containing this
	}{
		{name: "2xx refusal", typ: EventCreated, status: 200, body: `{"resultCode":"000106","resultMsg":"sold out today"}`, wantCode: "000106"},
		{name: "409 refusal", typ: EventCreated, status: 409, body: `{"resultCode":"000103","resultMsg":"bought already"}`, wantCode: "000103"},
		{name: "internal error code", typ: EventCreated, status: 200, body: `{"resultCode":"000104"}`, wantErr: "a refusal must use"},
		{name: "refusal of another event", typ: EventRenewed, status: 200, body: `{"resultCode":"000106"}`, wantErr: "only instance.created may be refused"},
		{name: "success code is no refusal", typ: EventRenewed, status: 200, body: `{"resultCode":"000000"}`},
	}
	for _, tc := range tests {
		check := func(t *testing.T, res Result, err error) {
			t.Helper()
			var r *Refusal
			switch {
			case tc.wantCode != "":
				if !errors.As(err, &r) || r.Code != tc.wantCode {
					t.Fatalf("got %v, want a refusal %s", err, tc.wantCode)
				}
				if !strings.Contains(tc.body, r.Message) || r.Message == "" {
					t.Errorf("refusal message %q is not the vendor's", r.Message)
				}
			case tc.wantErr != "":
				if err == nil || errors.As(err, &r) || !errors.Is(err, ErrPermanent) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want a permanent non-refusal error containing %q", err, tc.wantErr)
				}
			default:
				if err != nil {
					t.Fatalf("got %v, want success", err)
				}
			}
		}
		t.Run("webhook "+tc.name, func(t *testing.T) {
			v := newVendor(t, tc.status, tc.body)
			res, err := newTestWebhook(t, v.srv.URL).Provision(context.Background(), testEvent(tc.typ))
			check(t, res, err)
		})
		if tc.status != http.StatusOK {
			continue
		}
		t.Run("exec "+tc.name, func(t *testing.T) {
			e, err := NewExec(ExecConfig{Command: []string{script(t, "cat >/dev/null\necho '"+tc.body+"'\n")}})
			if err != nil {
				t.Fatal(err)
			}
			res, err := e.Provision(context.Background(), testEvent(tc.typ))
			check(t, res, err)
		})
	}
}

// TestVendorTextMasked: a vendor that echoes an event back in an error
// reply (or on standard error) puts the buyer's phone and e-mail into
// koobridge's error text, which is logged and stored: they are masked.
func TestVendorTextMasked(t *testing.T) {
	const echo = `invalid payload: {"buyer":{"mobilePhone":"13987654321","email":"buyer.person@example.com"},"password":"hunter22"}`
	check := func(t *testing.T, err error) {
		t.Helper()
		if err == nil {
			t.Fatal("no error")
		}
		msg := err.Error()
		for _, secret := range []string{"13987654321", "buyer.person@example.com", "hunter22"} {
			if strings.Contains(msg, secret) {
				t.Errorf("error %q quotes %q", msg, secret)
			}
		}
		if !strings.Contains(msg, "invalid payload") || !strings.Contains(msg, "139****4321") {
			t.Errorf("error %q lost the vendor's words", msg)
		}
	}
	t.Run("webhook", func(t *testing.T) {
		v := newVendor(t, http.StatusBadRequest, echo)
		_, err := newTestWebhook(t, v.srv.URL).Provision(context.Background(), testEvent(EventCreated))
		check(t, err)
	})
	t.Run("exec", func(t *testing.T) {
		e, err := NewExec(ExecConfig{Command: []string{script(t, "cat >/dev/null\necho '"+echo+"' >&2\nexit 1\n")}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.Provision(context.Background(), testEvent(EventCreated))
		check(t, err)
	})
}
