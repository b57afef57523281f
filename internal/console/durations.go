package console

import (
	"strconv"
	"time"
)

// formatDuration is how every console page shows a duration (a call's
// latency, a usage push attempt's): whole microseconds below a
// millisecond ("420 µs"), milliseconds to a tenth below a second
// ("1.3 ms", "120.0 ms"), seconds to a hundredth from there ("10.00 s").
// Something that took time never reads "0.0 ms". A zero duration is one
// recorded in whole milliseconds, before schema version 7 kept
// microseconds, that was under one.
func formatDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "< 1 ms"
	case d < time.Microsecond:
		return "< 1 µs"
	case d < time.Millisecond:
		return strconv.FormatInt(d.Microseconds(), 10) + " µs"
	}
	// Rounded first, so 999.96 ms reads "1.00 s", not "1000.0 ms".
	if r := d.Round(100 * time.Microsecond); r < time.Second {
		return strconv.FormatFloat(float64(r)/float64(time.Millisecond), 'f', 1, 64) + " ms"
	}
	return strconv.FormatFloat(float64(d.Round(10*time.Millisecond))/float64(time.Second), 'f', 2, 64) + " s"
}

// millis is a duration as the admin API's latencyMs and durationMs give
// it: milliseconds, to the microsecond.
func millis(d time.Duration) float64 {
	return float64(d.Microseconds()) / 1000
}
