package licenseapi

import (
	"net/http"
	"testing"
	"time"
)

// TestClientAddress: the limit's key is the peer's address; IPv4 in IPv6
// counts as IPv4, IPv6 by its /64, and a forwarded-for header is not
// believed.
func TestClientAddress(t *testing.T) {
	for _, tc := range []struct{ remote, want string }{
		{"192.0.2.7:51234", "192.0.2.7"},
		{"[::ffff:192.0.2.7]:51234", "192.0.2.7"},
		{"[2001:db8:1:2:aaaa:bbbb:cccc:dddd]:443", "2001:db8:1:2::/64"},
		{"[2001:db8:1:2::1]:443", "2001:db8:1:2::/64"},
		{"[fe80::1%eth0]:80", "fe80::/64"},
		{"not an address", "not an address"},
	} {
		r := &http.Request{RemoteAddr: tc.remote, Header: http.Header{"X-Forwarded-For": {"198.51.100.1"}}}
		if got := clientAddress(r); got != tc.want {
			t.Errorf("clientAddress(%q) = %q, want %q", tc.remote, got, tc.want)
		}
	}
}

// TestLimiter: a bucket holds a minute's worth, refills evenly, reports
// the wait until the next token, and keys do not share buckets; idle
// buckets are dropped.
func TestLimiter(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newLimiter(6) // a token every 10 s
	for i := range 6 {
		if ok, _ := l.take("a", t0); !ok {
			t.Fatalf("take %d refused", i)
		}
	}
	steps := []struct {
		at   time.Duration
		key  string
		ok   bool
		wait time.Duration
	}{
		{0, "a", false, 10 * time.Second},
		{0, "b", true, 0},
		{4 * time.Second, "a", false, 6 * time.Second},
		{10 * time.Second, "a", true, 0},
		{10 * time.Second, "a", false, 10 * time.Second},
		{25 * time.Second, "a", true, 0},
		{25 * time.Second, "a", false, 5 * time.Second},
	}
	for i, s := range steps {
		ok, wait := l.take(s.key, t0.Add(s.at))
		if ok != s.ok || (wait-s.wait).Abs() > time.Millisecond {
			t.Errorf("step %d (%s at %v): %v %v, want %v %v", i, s.key, s.at, ok, wait, s.ok, s.wait)
		}
	}
	// Two minutes on, both buckets are full again and swept away.
	if ok, _ := l.take("c", t0.Add(2*time.Minute)); !ok {
		t.Fatal("take after two minutes refused")
	}
	if len(l.buckets) != 1 {
		t.Errorf("%d buckets after the sweep, want 1 (c)", len(l.buckets))
	}
	for i := range 6 {
		if ok, _ := l.take("a", t0.Add(2*time.Minute)); !ok {
			t.Fatalf("a full bucket again: take %d refused", i)
		}
	}
}
