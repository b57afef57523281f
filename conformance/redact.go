package conformance

import (
	"net/url"
	"strings"

	"github.com/koobridge/koobridge/emulator"
)

// shownParams are the query parameters whose values the report shows: the
// ones the suite adds to every call (the emulator has already replaced the
// signature by "[redacted]").
var shownParams = map[string]bool{"timestamp": true, "nonce": true, "signature": true}

// redactURL is raw as the report shows it: a password in the userinfo
// becomes "xxxxx" and the value of every query parameter the target itself
// carries (a tenant token, an API key) becomes "[redacted]". Reports end up
// in CI logs and artifacts.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "[unparsable URL]"
	}
	if u.RawQuery != "" {
		parts := strings.Split(u.RawQuery, "&")
		for i, p := range parts {
			if k, _, _ := strings.Cut(p, "="); !shownParams[k] {
				parts[i] = k + "=[redacted]"
			}
		}
		u.RawQuery = strings.Join(parts, "&")
	}
	return u.Redacted()
}

// redactRecord returns the request record with its URL redacted.
func redactRecord(r emulator.HTTPRecord) emulator.HTTPRecord {
	if r.URL != "" {
		r.URL = redactURL(r.URL)
	}
	return r
}
