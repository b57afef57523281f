// Package durationtext writes durations for a person and reads back what a
// person types: one form for every page, flash and error of the emulator,
// the console and the demo's table, so "1.956098ms" (Go's form, for
// programs) never reaches a page.
package durationtext

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Format writes a duration for a person, the one way every page,
// flash and error does: three significant digits below a
// minute ("850 µs", "1.96 ms", "1.2 s", "12.3 s"), whole units above it
// ("1 min 30 s", "2 h 5 min", "31 d 2 h"), and "0 s" for zero. Go's own
// form ("1.956098ms", "744h0m0s") is for programs: the JSON API keeps it.
func Format(d time.Duration) string {
	switch {
	case d == 0:
		return "0 s"
	case d == math.MinInt64:
		d++ // its negation does not fit; a nanosecond is lost in the rounding anyway
	}
	if d < 0 {
		return "-" + Format(-d)
	}
	if d < time.Minute {
		r := roundSignificant(d, 3)
		if r < time.Minute {
			return significant(r)
		}
		d = r // 59.96 s is a minute
	}
	if d < time.Hour {
		if r := d.Round(time.Second); r < time.Hour {
			return twoUnits(r, time.Minute, "min", time.Second, "s")
		}
		d = time.Hour
	}
	if d < 24*time.Hour {
		if r := d.Round(time.Minute); r < 24*time.Hour {
			return twoUnits(r, time.Hour, "h", time.Minute, "min")
		}
		d = 24 * time.Hour
	}
	return twoUnits(d.Round(time.Hour), 24*time.Hour, "d", time.Hour, "h")
}

// roundSignificant rounds d (positive) to n significant decimal digits.
func roundSignificant(d time.Duration, n int) time.Duration {
	digits := len(strconv.FormatInt(int64(d), 10))
	if digits <= n {
		return d
	}
	return d.Round(time.Duration(math.Pow10(digits - n)))
}

// significant writes d (below a minute, rounded) in the largest unit in
// which it is at least 1, without trailing zeros.
func significant(d time.Duration) string {
	unit, name := time.Duration(1), "ns"
	switch {
	case d >= time.Second:
		unit, name = time.Second, "s"
	case d >= time.Millisecond:
		unit, name = time.Millisecond, "ms"
	case d >= time.Microsecond:
		unit, name = time.Microsecond, "µs"
	}
	return strconv.FormatFloat(float64(d)/float64(unit), 'f', -1, 64) + " " + name
}

// twoUnits writes d as whole big units and whole small ones, leaving out
// a zero small part: "2 h 5 min", "2 h".
func twoUnits(d, big time.Duration, bigName string, small time.Duration, smallName string) string {
	s := fmt.Sprintf("%d %s", d/big, bigName)
	if rest := (d % big) / small; rest != 0 {
		s += fmt.Sprintf(" %d %s", rest, smallName)
	}
	return s
}

// Input writes a duration into a form field: exact, so that a
// form saved again unchanged keeps it, in the units a person reads
// ("2 s", "1 min 30 s", "1.5 s", "250 ms"); Parse reads it back.
// Zero is empty: the field's "off".
func Input(d time.Duration) string {
	if d == 0 {
		return ""
	}
	// Go's form is exact; it only needs spaces and "min" for "m".
	var b strings.Builder
	s := d.String()
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && (s[j] == '-' || s[j] == '.' || '0' <= s[j] && s[j] <= '9') {
			j++
		}
		k := j
		for k < len(s) && !(s[k] == '.' || '0' <= s[k] && s[k] <= '9') {
			k++
		}
		num, unit := s[i:j], s[j:k]
		i = k
		if strings.TrimPrefix(num, "-") == "0" {
			continue // "2m0s" is "2 min"
		}
		if unit == "m" {
			unit = "min"
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(num + " " + unit)
	}
	return b.String()
}

// goUnits maps the units Parse reads to Go's; a day is 24 h.
var goUnits = map[string]string{
	"ns": "ns", "us": "us", "µs": "µs", "μs": "μs", "ms": "ms",
	"s": "s", "m": "m", "min": "m", "h": "h", "d": "h",
}

// unitRank orders the units, largest first: a duration names each at
// most once, in this order.
var unitRank = map[string]int{"d": 0, "h": 1, "m": 2, "min": 2, "s": 3, "ms": 4, "us": 5, "µs": 5, "μs": 5, "ns": 6}

// ErrSyntax is what Parse says of text it cannot read.
var ErrSyntax = errors.New("not a duration like 2 s or 1 min 30 s")

// ErrUnitOrder is what Parse says of a unit named twice or after a
// smaller one ("1 s 1 s", "30 s 1 min"), which a person may mean
// otherwise than the sum.
var ErrUnitOrder = errors.New("ambiguous: write each unit once, largest first, like 1 h 30 min")

// ErrTooLong is what Parse says of more than 292 years.
var ErrTooLong = errors.New("too long a duration (at most 292 years)")

// Parse reads a duration a person typed or a form field held:
// Go's form ("90s", "1h30m", "1.5ms"), the pages' form with spaces and
// "min" ("1 min 30 s", "1.96 ms"), and days ("31 d"). An optional sign
// comes first; each unit at most once, largest first (ErrUnitOrder).
// Each part is read exactly, as time.ParseDuration does. Text it cannot
// read is ErrSyntax, more than fits a time.Duration ErrTooLong.
func Parse(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	neg := false
	if rest, ok := strings.CutPrefix(s, "-"); ok {
		neg, s = true, rest
	} else {
		s = strings.TrimPrefix(s, "+")
	}
	s = strings.TrimSpace(s)
	switch s {
	case "":
		return 0, ErrSyntax
	case "0":
		return 0, nil
	}
	isNum := func(r rune) bool { return r == '.' || '0' <= r && r <= '9' }
	var total time.Duration
	last := -1 // the rank of the unit before
	for s != "" {
		i := strings.IndexFunc(s, func(r rune) bool { return !isNum(r) })
		if i < 0 {
			i = len(s)
		}
		num := s[:i]
		if !validNumber(num) {
			return 0, ErrSyntax
		}
		s = strings.TrimLeftFunc(s[i:], unicode.IsSpace)
		j := strings.IndexFunc(s, func(r rune) bool { return isNum(r) || unicode.IsSpace(r) })
		if j < 0 {
			j = len(s)
		}
		unit := s[:j]
		s = strings.TrimLeftFunc(s[j:], unicode.IsSpace)
		goUnit, ok := goUnits[unit]
		if !ok {
			return 0, ErrSyntax
		}
		rank := unitRank[unit]
		if rank <= last {
			return 0, ErrUnitOrder
		}
		last = rank
		// The number is well formed: time.ParseDuration fails only when
		// the part does not fit. A negative duration's parts are read
		// negative, as the most negative one is a nanosecond longer than
		// the most positive.
		if neg {
			num = "-" + num
		}
		part, err := time.ParseDuration(num + goUnit)
		if err != nil {
			return 0, ErrTooLong
		}
		if unit == "d" {
			if part > math.MaxInt64/24 || part < math.MinInt64/24 {
				return 0, ErrTooLong
			}
			part *= 24
		}
		if part > 0 && part > math.MaxInt64-total || part < 0 && part < math.MinInt64-total {
			return 0, ErrTooLong
		}
		total += part
	}
	return total, nil
}

// validNumber reports whether num is a number time.ParseDuration reads:
// digits with at most one point, and a digit on at least one side of it.
func validNumber(num string) bool {
	whole, frac, _ := strings.Cut(num, ".")
	digits := func(s string) bool { return strings.Trim(s, "0123456789") == "" }
	return whole+frac != "" && digits(whole) && digits(frac)
}
