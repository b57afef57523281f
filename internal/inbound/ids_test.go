package inbound

import (
	"strings"
	"testing"
)

func TestRequestIDValidation(t *testing.T) {
	tests := []struct {
		in   string
		keep bool
	}{
		{"abc-123_x.y:z", true},
		{strings.Repeat("a", 64), true},
		{strings.Repeat("a", 65), false},
		{"", false},
		{"has space", false},
		{"new\nline", false},
		{"ünïcode", false},
	}
	for _, tt := range tests {
		got := requestID(tt.in)
		if tt.keep && got != tt.in {
			t.Errorf("requestID(%q) = %q, want it kept", tt.in, got)
		}
		if !tt.keep && (got == tt.in || len(got) != 32) {
			t.Errorf("requestID(%q) = %q, want a fresh 32-hex id", tt.in, got)
		}
	}
	if a, b := requestID(""), requestID(""); a == b {
		t.Error("two generated request ids are equal")
	}
}

func TestPeekActivity(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"activity":"newInstance"}`, "newInstance"},
		{`{"activity":1}`, ""},
		{`not json`, ""},
		{`{"activity":"` + strings.Repeat("x", 100) + `"}`, strings.Repeat("x", maxActivityLen)},
		{"\xef\xbb\xbf" + `{"activity":"orderNotify"}`, "orderNotify"},
		{`{"Activity":"orderNotify"}`, ""},
		{`{"orderId":{"activity":"inner"},"activity":"orderNotify"}`, "orderNotify"},
		{`{"activity":"orderNotify","orderId":"` + strings.Repeat("9", 100), "orderNotify"},
		{`["activity","orderNotify"]`, ""},
	}
	for _, tt := range tests {
		if got := peekActivity("POST", []byte(tt.in), nil); got != tt.want {
			t.Errorf("peekActivity(%s) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
