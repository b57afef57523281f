package provision

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestDemoCreated(t *testing.T) {
	d := NewDemo("")
	ev := Event{ID: "instance.created:1", Type: EventCreated, Instance: Instance{ID: "3F2504E0-4F89-11D3-9A0C-0305E82C3301"}}
	res, err := d.Provision(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	a := res.AppInfo
	if a == nil {
		t.Fatal("no AppInfo for instance.created")
	}
	if want := "https://demo.koobridge.invalid/t/3F2504E0-4F89-11D3-9A0C-0305E82C3301"; a.FrontEndURL != want {
		t.Errorf("FrontEndURL = %q, want %q", a.FrontEndURL, want)
	}
	if want := "https://demo.koobridge.invalid/admin/3F2504E0-4F89-11D3-9A0C-0305E82C3301"; a.AdminURL != want {
		t.Errorf("AdminURL = %q, want %q", a.AdminURL, want)
	}
	if a.UserName != "admin-3f2504e0" {
		t.Errorf("UserName = %q, want admin-3f2504e0", a.UserName)
	}
	if !hasNonASCII(a.Memo) {
		t.Errorf("Memo = %q, want a non-ASCII part", a.Memo)
	}
	checkPassword(t, a.Password)

	// The demo's answer must pass the same checks as a vendor's reply.
	b, _ := json.Marshal(res)
	if _, err := decodeResult(Event{Type: EventCreated}, b); err != nil {
		t.Errorf("demo result rejected by decodeResult: %v", err)
	}

	res2, err := d.Provision(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if res2.AppInfo.Password == a.Password {
		t.Error("two provisionings produced the same password")
	}
}

func checkPassword(t *testing.T, pw string) {
	t.Helper()
	if utf8.RuneCountInString(pw) < 20 {
		t.Errorf("password %q shorter than 20", pw)
	}
	var upper, lower, digit, symbol bool
	for _, r := range pw {
		switch {
		case r > unicode.MaxASCII:
			t.Errorf("password has non-ASCII %q", r)
		case unicode.IsUpper(r):
			upper = true
		case unicode.IsLower(r):
			lower = true
		case unicode.IsDigit(r):
			digit = true
		default:
			symbol = true
		}
	}
	if !upper || !lower || !digit || !symbol {
		t.Errorf("password %q lacks a class: upper %v lower %v digit %v symbol %v", pw, upper, lower, digit, symbol)
	}
}

func TestDemoPasswordClasses(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		pw, err := demoPassword()
		if err != nil {
			t.Fatal(err)
		}
		checkPassword(t, pw)
		if seen[pw] {
			t.Fatalf("password %q repeated", pw)
		}
		seen[pw] = true
	}
}

func TestDemoBaseURLAndShortID(t *testing.T) {
	tests := []struct {
		base, id, wantFront, wantUser string
	}{
		{"https://trial.example.com/", "abc", "https://trial.example.com/t/abc", "admin-abc"},
		{"http://127.0.0.1:8080", "inst/../x y", "http://127.0.0.1:8080/t/inst%2F..%2Fx%20y", "admin-instxy"},
		{"", "--__--", "https://demo.koobridge.invalid/t/--__--", "admin-user"},
		{"", "03pf80c2bae96vc49b80b917bea776d7", "https://demo.koobridge.invalid/t/03pf80c2bae96vc49b80b917bea776d7", "admin-03pf80c2"},
	}
	for _, tt := range tests {
		res, err := NewDemo(tt.base).Provision(context.Background(), Event{ID: "e", Type: EventCreated, Instance: Instance{ID: tt.id}})
		if err != nil {
			t.Fatal(err)
		}
		if res.AppInfo.FrontEndURL != tt.wantFront || res.AppInfo.UserName != tt.wantUser {
			t.Errorf("NewDemo(%q) id %q: front %q user %q, want %q %q", tt.base, tt.id,
				res.AppInfo.FrontEndURL, res.AppInfo.UserName, tt.wantFront, tt.wantUser)
		}
	}
}

func TestDemoOtherEvents(t *testing.T) {
	d := NewDemo("")
	for _, typ := range []EventType{EventRenewed, EventFrozen, EventUnfrozen, EventUpgraded, EventReleased, EventChangeCheck} {
		res, err := d.Provision(context.Background(), Event{ID: "e", Type: typ, Instance: Instance{ID: "i"}})
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		if res.AppInfo != nil {
			t.Errorf("%s: AppInfo = %+v, want nil", typ, res.AppInfo)
		}
		if want := typ == EventChangeCheck; res.Allowed != want {
			t.Errorf("%s: Allowed = %v, want %v", typ, res.Allowed, want)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := d.Provision(ctx, Event{ID: "e", Type: EventCreated}); err == nil {
		t.Error("Provision with a cancelled context succeeded")
	}
}

func hasNonASCII(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return r > unicode.MaxASCII }) >= 0
}
