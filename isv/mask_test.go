package isv

import (
	"strings"
	"testing"
)

func TestMaskJSON(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{
			name: "ids stay, order kept by name",
			in:   `{"orderLineId":"L-1","activity":"newInstance","orderId":"CS2211181819B4LVS","testFlag":"1"}`,
			want: `{"activity":"newInstance","orderId":"CS2211181819B4LVS","orderLineId":"L-1","testFlag":"1"}`,
		},
		{
			name: "app info credentials",
			in:   `{"info":[{"instanceId":"i-1","appInfo":{"frontEndUrl":"https://x","userName":"admin","password":"S3cr3t!pw","memo":"\u4e2d"}}],"resultCode":"000000"}`,
			want: `{"info":[{"appInfo":{"frontEndUrl":"https://x","memo":"中","password":"******","userName":"a***"},"instanceId":"i-1"}],"resultCode":"000000"}`,
		},
		{
			name: "buyer data anywhere",
			in:   `{"buyerInfo":{"customerId":"c1","mobilePhone":"13912345678","email":"buyer@example.com"},"clientSecret":"abc","mobile":13912345678}`,
			want: `{"buyerInfo":{"customerId":"c1","email":"b***@example.com","mobilePhone":"139****5678"},"clientSecret":"******","mobile":"139****5678"}`,
		},
		{
			name: "secret object masked inside",
			in:   `{"accessToken":{"value":"tok","kind":"bearer"},"phones":["+8613912345678","12345"]}`,
			want: `{"accessToken":{"kind":"******","value":"******"},"phones":["+86****5678","****"]}`,
		},
		{
			name: "empty values stay empty, numbers kept",
			in:   `{"password":"","usageValue":12.5000,"email":null}`,
			want: `{"email":null,"password":"","usageValue":12.5000}`,
		},
		{
			name: "not JSON: masked as text",
			in:   `{"activity":"newInstance","password":"hunter2", mobile 13912345678 a@b.cn`,
			want: `{"activity":"newInstance","password":"******", mobile 139****5678 a***@b.cn`,
		},
		{
			name: "two values: masked as text",
			in:   `{"a":1} {"token":"x"}`,
			want: `{"a":1} {"token":"******"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := maskJSON([]byte(tt.in)); got != tt.want {
				t.Errorf("maskJSON(%s)\n got %s\nwant %s", tt.in, got, tt.want)
			}
		})
	}
}

func TestMaskJSONCapsLength(t *testing.T) {
	big := `{"memo":"` + strings.Repeat("中", maxLedgerText) + `"}`
	got := maskJSON([]byte(big))
	if len(got) > maxLedgerText+64 {
		t.Fatalf("masked text is %d bytes, want about %d", len(got), maxLedgerText)
	}
	if !strings.HasSuffix(got, "bytes)") || !strings.Contains(got, "truncated") {
		t.Fatalf("truncation not marked: ...%s", got[len(got)-40:])
	}
}

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
	}
	for _, tt := range tests {
		if got := peekActivity([]byte(tt.in)); got != tt.want {
			t.Errorf("peekActivity(%s) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
