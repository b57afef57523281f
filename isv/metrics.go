package isv

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/koobridge/koobridge/protocol"
)

// metrics are the server's Prometheus collectors. They always exist, so the
// handler never checks for nil; they are registered only when the Config
// names a Registerer.
type metrics struct {
	calls        *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	authFailures *prometheus.CounterVec
	jobs         *prometheus.CounterVec
	ledgerErrors prometheus.Counter
}

// durationBuckets reach KooGallery's 5 s timeout and beyond, with detail
// below the 3 s provisioning budget.
var durationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 4, 5, 7.5, 10}

func newMetrics() *metrics {
	return &metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "koobridge_calls_total",
			Help: "Production-interface calls answered, by activity and result code.",
		}, []string{"activity", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "koobridge_call_duration_seconds",
			Help:    "Time from receiving a production-interface call to writing its reply.",
			Buckets: durationBuckets,
		}, []string{"activity"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "koobridge_auth_failures_total",
			Help: "Calls answered 000001 (authentication failed), by the check that failed.",
		}, []string{"reason"}),
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "koobridge_jobs_total",
			Help: "Background job attempts, by kind and outcome (done, retry, dead).",
		}, []string{"kind", "outcome"}),
		ledgerErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "koobridge_ledger_errors_total",
			Help: "Calls whose ledger row could not be written.",
		}),
	}
}

func (m *metrics) register(r prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.calls, m.duration, m.authFailures, m.jobs, m.ledgerErrors} {
		if err := r.Register(c); err != nil {
			return fmt.Errorf("isv: register metrics: %w", err)
		}
	}
	return nil
}

func (m *metrics) observeCall(activity string, code protocol.ResultCode, d time.Duration) {
	a := activityLabel(activity)
	m.calls.WithLabelValues(a, string(code)).Inc()
	m.duration.WithLabelValues(a).Observe(d.Seconds())
}

func (m *metrics) jobOutcome(kind, outcome string) {
	m.jobs.WithLabelValues(kind, outcome).Inc()
}

// servedActivities are the activities this transport hands to the
// lifecycle service: the seven SaaS V2 basic interfaces.
var servedActivities = map[string]bool{
	protocol.ActivityNewInstance:          true,
	protocol.ActivityQueryInstance:        true,
	protocol.ActivityRefreshInstance:      true,
	protocol.ActivityUpdateInstanceStatus: true,
	protocol.ActivityReleaseInstance:      true,
	protocol.ActivityUpgradeInstance:      true,
	protocol.ActivityChangeInstanceCheck:  true,
}

// activityLabel bounds the activity label to the served activities, so a
// caller cannot create label values at will.
func activityLabel(activity string) string {
	if servedActivities[activity] {
		return activity
	}
	return "unknown"
}
