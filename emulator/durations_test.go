package emulator

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/koobridge/koobridge/internal/durationtext"
)

// goDuration matches Go's duration form: a number with a unit straight
// after it ("1.956098ms", "2s", "1h0m0s").
var goDuration = regexp.MustCompile(`\d(ns|µs|us|ms|s|m|h)\b`)

// The message page and the usage page write durations one way.
func TestWebDurations(t *testing.T) {
	w := startWeb(t)
	if status, _ := w.form("/purchase", url.Values{"product": {w.product("PERIOD").ID}}); status != http.StatusSeeOther {
		t.Fatalf("buy: %d", status)
	}
	msg := w.e.Messages(MessageFilter{})[0]
	_, body := w.page("/messages/" + msg.ID)
	shown := between(body, `<span data-testid="attempt-duration">`, `</span>`)
	if shown != durationtext.Format(msg.Attempts[0].Duration) || goDuration.MatchString(shown) {
		t.Errorf("attempt duration shown %q; want %q", shown, durationtext.Format(msg.Attempts[0].Duration))
	}
	if status, _ := w.form("/clock/advance", url.Values{"duration": {"36h"}}); status != http.StatusSeeOther {
		t.Fatalf("advance: %d", status)
	}
	_, loc := w.form("/clock/advance", url.Values{"duration": {"1 min 30 s"}})
	if flash := w.flash(loc); !strings.HasPrefix(flash, "clock advanced by 1 min 30 s to ") {
		t.Errorf("advance flash %q", flash)
	}
	if status, page := w.formPage("/clock/advance", url.Values{"duration": {"11 y"}}); status != http.StatusBadRequest || goDuration.MatchString(between(page, "<main>", "</main>")) {
		t.Errorf("a refused advance: %d\n%s", status, page)
	}
	if status, page := w.formPage("/clock/advance", url.Values{"duration": {"3660 d"}}); status != http.StatusBadRequest || !strings.Contains(page, "3660 d is more than 3652 d 12 h at once") {
		t.Errorf("an advance beyond the limit: %d\n%s", status, page)
	}
}

// between returns the text of s after the first open and before the
// next end; "" when open is not there.
func between(s, open, end string) string {
	i := strings.Index(s, open)
	if i < 0 {
		return ""
	}
	s = s[i+len(open):]
	if j := strings.Index(s, end); j >= 0 {
		s = s[:j]
	}
	return s
}
