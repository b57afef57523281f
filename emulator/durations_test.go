package emulator

import (
	"math"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Issue 16: the pages printed raw Go durations ("1.956098ms").
func TestFormatDuration(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{0, "0 s"},
		{500, "500 ns"},
		{1956098 * time.Nanosecond, "1.96 ms"},
		{850 * time.Microsecond, "850 µs"},
		{999600 * time.Nanosecond, "1 ms"},
		{12345 * time.Nanosecond, "12.3 µs"},
		{1200 * time.Millisecond, "1.2 s"},
		{12345 * time.Millisecond, "12.3 s"},
		{59960 * time.Millisecond, "1 min"},
		{90 * time.Second, "1 min 30 s"},
		{-90 * time.Second, "-1 min 30 s"},
		{2*time.Hour + 5*time.Minute + 10*time.Second, "2 h 5 min"},
		{23*time.Hour + 59*time.Minute + 59*time.Second, "1 d"},
		{744 * time.Hour, "31 d"},
		{31*24*time.Hour + 2*time.Hour + 13*time.Minute, "31 d 2 h"},
		{MaxAdvance, "3652 d 12 h"},
		{math.MinInt64, "-106751 d 23 h"},
	} {
		if got := formatDuration(tt.d); got != tt.want {
			t.Errorf("formatDuration(%d) = %q, want %q", int64(tt.d), got, tt.want)
		}
	}
}

// A form field holds a duration exactly, in the pages' units, and reads
// back what it held; typed durations are read in either form.
func TestDurationInput(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{0, ""},
		{2 * time.Second, "2 s"},
		{1500 * time.Millisecond, "1.5 s"},
		{-2 * time.Minute, "-2 min"},
		{90 * time.Second, "1 min 30 s"},
		{time.Hour + 5*time.Second, "1 h 5 s"},
		{1956098 * time.Nanosecond, "1.956098 ms"},
		{MaxTotalAdvance + time.Nanosecond, "876600 h 0.000000001 s"},
	} {
		got := durationInput(tt.d)
		if got != tt.want {
			t.Errorf("durationInput(%v) = %q, want %q", tt.d, got, tt.want)
		}
		if tt.d == 0 {
			continue
		}
		if back, err := parseDuration(got); err != nil || back != tt.d {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", got, back, err, tt.d)
		}
	}
	for _, tt := range []struct {
		in   string
		want time.Duration
	}{
		{"24h", 24 * time.Hour},
		{" 24 h ", 24 * time.Hour},
		{"1h30m", 90 * time.Minute},
		{"1 min 30 s", 90 * time.Second},
		{"-90s", -90 * time.Second},
		{"- 90 s", -90 * time.Second},
		{"31 d", 744 * time.Hour},
		{"1.96 ms", 1960 * time.Microsecond},
		{"850 µs", 850 * time.Microsecond},
		{"850us", 850 * time.Microsecond},
		{"0", 0},
	} {
		if got, err := parseDuration(tt.in); err != nil || got != tt.want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "soon", "s", "1", "1 x", "1 s s", "1..5 s", "200000 d", "-"} {
		if got, err := parseDuration(bad); err == nil {
			t.Errorf("parseDuration(%q) = %v, want an error", bad, got)
		}
	}
}

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
	if shown != formatDuration(msg.Attempts[0].Duration) || goDuration.MatchString(shown) {
		t.Errorf("attempt duration shown %q; want %q", shown, formatDuration(msg.Attempts[0].Duration))
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
