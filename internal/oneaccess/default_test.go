package oneaccess

import (
	"errors"
	"net/http"
	"testing"
)

// TestDefaultHTTPClient: without an HTTPClient, requests time out after
// DefaultTimeout and redirects are not followed.
func TestDefaultHTTPClient(t *testing.T) {
	c, err := New(Config{DomainName: "https://idp.example", ClientID: "c", ClientSecret: "s"})
	if err != nil {
		t.Fatal(err)
	}
	hc := c.cfg.HTTPClient
	if hc.Timeout != DefaultTimeout || DefaultTimeout.Seconds() != 10 {
		t.Errorf("timeout %v, want 10s", hc.Timeout)
	}
	if hc.CheckRedirect == nil || !errors.Is(hc.CheckRedirect(&http.Request{}, nil), http.ErrUseLastResponse) {
		t.Error("the default client follows redirects")
	}
	if c.cfg.Now == nil || c.cfg.Scope != DefaultScope {
		t.Errorf("defaults not filled: Now %v, Scope %q", c.cfg.Now != nil, c.cfg.Scope)
	}
}
