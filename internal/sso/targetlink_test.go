package sso

import (
	"net/url"
	"testing"
)

func TestTargetLink(t *testing.T) {
	for _, tc := range []struct{ initiate, want string }{
		{"https://app.example.com/initiate-login", "https://app.example.com/"},
		{"https://app.example.com", "https://app.example.com/"},
		{"https://app.example.com/shop/initiate-login", "https://app.example.com/shop/"},
		{"https://app.example.com:8443/a/b/start?x=1", "https://app.example.com:8443/a/b/"},
	} {
		u, err := url.Parse(tc.initiate)
		if err != nil {
			t.Fatal(err)
		}
		if got := targetLink(u); got != tc.want {
			t.Errorf("targetLink(%s) = %s, want %s", tc.initiate, got, tc.want)
		}
	}
}
