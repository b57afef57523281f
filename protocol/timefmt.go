package protocol

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// GMT8 is the fixed GMT+8 zone of Kit timeStamp values. It is a fixed
// offset so the package needs no tzdata.
var GMT8 = time.FixedZone("GMT+8", 8*3600)

const (
	layout14        = "20060102150405"
	layoutUsageTime = "20060102T150405Z"
)

// ParseMillis parses a Unix time in milliseconds (the timestamp query
// parameter, x-timestamp and the usage-push ts header): decimal digits only,
// 1 to 18 of them.
func ParseMillis(s string) (time.Time, error) {
	if s == "" || len(s) > 18 || !allDigits(s) {
		return time.Time{}, fmt.Errorf("protocol: parse millis %q: not decimal digits", s)
	}
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("protocol: parse millis %q: %w", s, err)
	}
	return time.UnixMilli(ms).UTC(), nil
}

// FormatMillis formats t as Unix milliseconds.
func FormatMillis(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

// parseDigits parses s of exactly n digits with the 14-digit layout in loc,
// plus a 3-digit millisecond suffix when n is 17, and checks that the value
// formats back to s (so month 13 or 31 February are rejected).
func parseDigits(s string, n int, loc *time.Location) (time.Time, error) {
	if len(s) != n || !allDigits(s) {
		return time.Time{}, fmt.Errorf("protocol: parse time %q: want %d digits", s, n)
	}
	t, err := time.ParseInLocation(layout14, s[:14], loc)
	if err != nil {
		return time.Time{}, fmt.Errorf("protocol: parse time %q: %w", s, err)
	}
	if n == 17 {
		ms, _ := strconv.Atoi(s[14:])
		t = t.Add(time.Duration(ms) * time.Millisecond)
	}
	if t.Format(layout14) != s[:14] {
		return time.Time{}, fmt.Errorf("protocol: parse time %q: not a valid date", s)
	}
	return t, nil
}

func format17(t time.Time) string {
	return t.Format(layout14) + fmt.Sprintf("%03d", t.Nanosecond()/int(time.Millisecond))
}

// ParseTime14 parses yyyyMMddHHmmss in UTC.
func ParseTime14(s string) (time.Time, error) { return parseDigits(s, 14, time.UTC) }

// FormatTime14 formats t as yyyyMMddHHmmss in UTC.
func FormatTime14(t time.Time) string { return t.UTC().Format(layout14) }

// ParseTime17 parses yyyyMMddHHmmssSSS in UTC.
func ParseTime17(s string) (time.Time, error) { return parseDigits(s, 17, time.UTC) }

// FormatTime17 formats t as yyyyMMddHHmmssSSS in UTC.
func FormatTime17(t time.Time) string { return format17(t.UTC()) }

// ParseExpireTime parses an expireTime: the tables say yyyyMMddHHmmss, the
// refreshInstance example has 17 digits, so both are accepted (UTC).
func ParseExpireTime(s string) (time.Time, error) {
	if len(s) == 17 {
		return ParseTime17(s)
	}
	return ParseTime14(s)
}

// ParseKitTime parses a Kit timeStamp: yyyyMMddHHmmssSSS in GMT+8.
func ParseKitTime(s string) (time.Time, error) { return parseDigits(s, 17, GMT8) }

// FormatKitTime formats t as yyyyMMddHHmmssSSS in GMT+8.
func FormatKitTime(t time.Time) string { return format17(t.In(GMT8)) }

// ParseUsageTime parses yyyyMMdd'T'HHmmss'Z' (UTC), the usage-push time format.
func ParseUsageTime(s string) (time.Time, error) {
	if len(s) != len(layoutUsageTime) {
		return time.Time{}, fmt.Errorf("protocol: parse usage time %q: want %d characters", s, len(layoutUsageTime))
	}
	t, err := time.ParseInLocation(layoutUsageTime, s, time.UTC)
	if err != nil {
		return time.Time{}, fmt.Errorf("protocol: parse usage time %q: %w", s, err)
	}
	if t.Format(layoutUsageTime) != s {
		return time.Time{}, fmt.Errorf("protocol: parse usage time %q: not a valid date", s)
	}
	return t, nil
}

// FormatUsageTime formats t as yyyyMMdd'T'HHmmss'Z' in UTC.
func FormatUsageTime(t time.Time) string { return t.UTC().Format(layoutUsageTime) }

// ParseSDKDate parses an X-Sdk-Date header (same layout as ParseUsageTime).
func ParseSDKDate(s string) (time.Time, error) { return ParseUsageTime(s) }

// FormatSDKDate formats t as an X-Sdk-Date header value.
func FormatSDKDate(t time.Time) string { return FormatUsageTime(t) }

var errLicenseTime = errors.New("protocol: parse license time: unrecognised format")

// ParseLicenseTime parses the effectiveTime/expireTime of getLicenseAsync,
// always as UTC. The documented example is "2023-10-27 10:30:15 z"; since
// the format is only shown by example, this also accepts a trailing "Z",
// "UTC" or nothing, a "T" separator, RFC 3339, and the 14- and 17-digit
// forms used everywhere else.
func ParseLicenseTime(s string) (time.Time, error) {
	v := strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t.UTC(), nil
	}
	if allDigits(v) && (len(v) == 14 || len(v) == 17) {
		return ParseExpireTime(v)
	}
	for _, suffix := range []string{"z", "Z", "UTC", "utc", "GMT", "gmt"} {
		if cut, ok := strings.CutSuffix(v, suffix); ok {
			v = strings.TrimSpace(cut)
			break
		}
	}
	for _, layout := range []string{"2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006-01-02 15:04:05.000", "2006-01-02T15:04:05.000"} {
		if len(v) != len(layout) {
			continue
		}
		if t, err := time.ParseInLocation(layout, v, time.UTC); err == nil && t.Format(layout) == v {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%w: %q", errLicenseTime, s)
}

// FormatLicenseTime formats t the way the getLicenseAsync example writes
// it: "2006-01-02 15:04:05 z" in UTC.
func FormatLicenseTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05") + " z" }
