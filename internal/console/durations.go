package console

import (
	"time"

	"github.com/koobridge/koobridge/internal/durationtext"
)

// formatDuration is how every console page shows a duration (a call's
// latency, a usage push attempt's): durationtext's form, shared with the
// emulator's pages ("420 µs", "1.34 ms", "2.35 s"), so something that took
// time never reads "0.0 ms". A zero duration is one recorded in whole
// milliseconds, before schema version 7 kept microseconds, that was under
// one.
func formatDuration(d time.Duration) string {
	if d <= 0 {
		return "< 1 ms"
	}
	return durationtext.Format(d)
}

// millis is a duration as the admin API's latencyMs and durationMs give
// it: milliseconds, to the microsecond.
func millis(d time.Duration) float64 {
	return float64(d.Microseconds()) / 1000
}
