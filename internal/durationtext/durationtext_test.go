package durationtext

import (
	"errors"
	"math"
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
		{(3652*24 + 12) * time.Hour, "3652 d 12 h"},
		{math.MinInt64, "-106751 d 23 h"},
	} {
		if got := Format(tt.d); got != tt.want {
			t.Errorf("Format(%d) = %q, want %q", int64(tt.d), got, tt.want)
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
		{876600*time.Hour + time.Nanosecond, "876600 h 0.000000001 s"},
	} {
		got := Input(tt.d)
		if got != tt.want {
			t.Errorf("Input(%v) = %q, want %q", tt.d, got, tt.want)
		}
		if tt.d == 0 {
			continue
		}
		if back, err := Parse(got); err != nil || back != tt.d {
			t.Errorf("Parse(%q) = %v, %v; want %v", got, back, err, tt.d)
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
		if got, err := Parse(tt.in); err != nil || got != tt.want {
			t.Errorf("Parse(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "soon", "s", "1", "1 x", "1 s s", "1..5 s", "200000 d", "-"} {
		if got, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) = %v, want an error", bad, got)
		}
	}
}

// Review of issue 16, item 2: what does not fit a duration is too long
// (it said "not a duration like …"), and a unit named twice or after a
// smaller one is refused (it was summed: "30 s 1 min" was 90 s).
func TestParseRefuses(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want error
	}{
		{"2562048h", ErrTooLong},
		{"9223372036854775808ns", ErrTooLong},
		{"-2562048 h", ErrTooLong},
		{"-9223372036854775809ns", ErrTooLong},
		{"-106752 d", ErrTooLong},
		{"2562047 h 48 min", ErrTooLong},
		{"200000 d", ErrTooLong},
		{"1 s 1 s", ErrUnitOrder},
		{"30 s 1 min", ErrUnitOrder},
		{"1 min 1 m", ErrUnitOrder},
		{"1 h 2 d", ErrUnitOrder},
		{"5 ms 1 s", ErrUnitOrder},
		{"1 us 1 µs", ErrUnitOrder},
		{"1m1m", ErrUnitOrder},
		{"1..5 s", ErrSyntax},
		{". s", ErrSyntax},
		{"soon", ErrSyntax},
		{"1", ErrSyntax},
	} {
		if got, err := Parse(tt.in); !errors.Is(err, tt.want) {
			t.Errorf("Parse(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	// The largest first, each once, reads; so does what Input writes.
	for _, tt := range []struct {
		in   string
		want time.Duration
	}{
		{"1 d 2 h 3 min 4 s 5 ms 6 µs 7 ns", 26*time.Hour + 3*time.Minute + 4*time.Second + 5*time.Millisecond + 6*time.Microsecond + 7},
		{"2562047h", 2562047 * time.Hour},
		{".5 s", 500 * time.Millisecond},
		{"1. s", time.Second},
		{"9223372036854775807ns", math.MaxInt64},
		{Input(math.MaxInt64), math.MaxInt64},
		{Input(math.MinInt64), math.MinInt64},
		{"-9223372036854775808ns", math.MinInt64},
		{Input(-26*time.Hour - 90*time.Second), -26*time.Hour - 90*time.Second},
	} {
		if got, err := Parse(tt.in); err != nil || got != tt.want {
			t.Errorf("Parse(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}
