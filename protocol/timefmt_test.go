package protocol

import (
	"testing"
	"time"
)

func TestTimeRoundTrips(t *testing.T) {
	tm := time.Date(2024, 2, 29, 23, 59, 58, 123e6, time.UTC)
	tests := []struct {
		name   string
		format func(time.Time) string
		parse  func(string) (time.Time, error)
		want   string
		exact  time.Time // what parsing want gives
	}{
		{"millis", FormatMillis, ParseMillis, "1709251198123", tm},
		{"time14", FormatTime14, ParseTime14, "20240229235958", tm.Truncate(time.Second)},
		{"time17", FormatTime17, ParseTime17, "20240229235958123", tm},
		{"kit GMT+8", FormatKitTime, ParseKitTime, "20240301075958123", tm},
		{"usage", FormatUsageTime, ParseUsageTime, "20240229T235958Z", tm.Truncate(time.Second)},
		{"sdk date", FormatSDKDate, ParseSDKDate, "20240229T235958Z", tm.Truncate(time.Second)},
		{"license", FormatLicenseTime, ParseLicenseTime, "2024-02-29 23:59:58 z", tm.Truncate(time.Second)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.format(tm); got != tc.want {
				t.Fatalf("format = %q, want %q", got, tc.want)
			}
			got, err := tc.parse(tc.want)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if !got.Equal(tc.exact) {
				t.Fatalf("parse = %v, want %v", got, tc.exact)
			}
			if tc.format(got) != tc.want {
				t.Fatalf("round trip = %q", tc.format(got))
			}
		})
	}
	// A non-UTC input formats as UTC (or GMT+8 for Kit).
	local := tm.In(time.FixedZone("X", -5*3600))
	if got := FormatTime14(local); got != "20240229235958" {
		t.Errorf("FormatTime14(non-UTC) = %q", got)
	}
	if got := FormatKitTime(local); got != "20240301075958123" {
		t.Errorf("FormatKitTime(non-UTC) = %q", got)
	}
	kit, _ := ParseKitTime("20220413093539534")
	if want := time.Date(2022, 4, 13, 1, 35, 39, 534e6, time.UTC); !kit.Equal(want) {
		t.Errorf("ParseKitTime example = %v, want %v", kit.UTC(), want)
	}
}

func TestTimeRejects(t *testing.T) {
	tests := []struct {
		name  string
		parse func(string) (time.Time, error)
		in    []string
	}{
		{"millis", ParseMillis, []string{"", "-1", "12a", "1.5", "1234567890123456789", " 1"}},
		{"time14", ParseTime14, []string{"", "2024010100000", "202401010000000", "20241301000000", "20240230000000",
			"20240101240000", "20240101006000", "2024010100000a", "+0240101000000", "20240101 00000", "20240229235958123"}},
		{"time17", ParseTime17, []string{"20240101000000", "202401010000000000", "20240101000000-12", "20241232000000000"}},
		{"expire", ParseExpireTime, []string{"", "2024010100000", "202401010000000", "2024010100000000", "20240431000000"}},
		{"kit", ParseKitTime, []string{"20220413093539", "2022041309353953x", "20220013093539534"}},
		{"usage", ParseUsageTime, []string{"", "20240101T000000", "20240101T000000z", "20240101 000000Z", "20241301T000000Z",
			"2024-01-01T00:00:00Z", "20240101T0000000Z"}},
		{"license", ParseLicenseTime, []string{"", "2023-13-27 10:30:15 z", "yesterday", "2023-10-27", "2023-10-27 10:30 z"}},
	}
	for _, tc := range tests {
		for _, in := range tc.in {
			if got, err := tc.parse(in); err == nil {
				t.Errorf("%s(%q) = %v, want error", tc.name, in, got)
			}
		}
	}
}

func TestParseLicenseTimeForms(t *testing.T) {
	want := time.Date(2023, 10, 27, 10, 30, 15, 0, time.UTC)
	for _, in := range []string{"2023-10-27 10:30:15 z", "2023-10-27 10:30:15 Z", "2023-10-27 10:30:15Z", "2023-10-27 10:30:15",
		"2023-10-27T10:30:15", "2023-10-27T10:30:15Z", "2023-10-27T18:30:15+08:00", "20231027103015", "20231027103015000",
		" 2023-10-27 10:30:15 UTC "} {
		got, err := ParseLicenseTime(in)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseLicenseTime(%q) = %v, %v", in, got, err)
		}
	}
}
