package bearer

import (
	"net/http/httptest"
	"testing"
)

func TestAllow(t *testing.T) {
	tokens := New("first-token-0123456789", "", "second-token-0123456789")
	for _, c := range []struct {
		name    string
		headers []string
		want    bool
	}{
		{"first", []string{"Bearer first-token-0123456789"}, true},
		{"second", []string{"Bearer second-token-0123456789"}, true},
		{"scheme in lower case", []string{"bearer first-token-0123456789"}, true},
		{"wrong token", []string{"Bearer first-token-012345678"}, false},
		{"empty token", []string{"Bearer "}, false},
		{"other scheme", []string{"Basic first-token-0123456789"}, false},
		{"no scheme", []string{"first-token-0123456789"}, false},
		{"none", nil, false},
		{"twice", []string{"Bearer first-token-0123456789", "Bearer first-token-0123456789"}, false},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		for _, h := range c.headers {
			r.Header.Add("Authorization", h)
		}
		if got := tokens.Allow(r); got != c.want {
			t.Errorf("%s: Allow = %v, want %v", c.name, got, c.want)
		}
	}
	if !New("").Empty() || New("x").Empty() {
		t.Error("Empty")
	}
}
