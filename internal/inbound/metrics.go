package inbound

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/koobridge/koobridge/protocol"
)

// metrics are the pipeline's Prometheus collectors. They always exist, so
// the pipeline never checks for nil; they are registered only when the
// Config names a Registerer.
type metrics struct {
	calls        *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	authFailures *prometheus.CounterVec
	jobs         *prometheus.CounterVec
	ledgerErrors prometheus.Counter
	// served bounds the label values: family name → its activities.
	served map[string]map[string]bool
}

// durationBuckets reach KooGallery's 5 s timeout and beyond, with detail
// below the 3 s provisioning budget.
var durationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 4, 5, 7.5, 10}

func newMetrics(families []*Family) *metrics {
	served := map[string]map[string]bool{}
	for _, f := range families {
		served[f.Name] = map[string]bool{}
		for _, a := range f.Activities {
			served[f.Name][a] = true
		}
	}
	return &metrics{
		served: served,
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "koobridge_calls_total",
			Help: "Production-interface calls answered, by family, activity and result code.",
		}, []string{"family", "activity", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "koobridge_call_duration_seconds",
			Help:    "Time from receiving a production-interface call to writing its reply.",
			Buckets: durationBuckets,
		}, []string{"family", "activity"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "koobridge_auth_failures_total",
			Help: "Calls answered 000001 (authentication failed), by family and the check that failed.",
		}, []string{"family", "reason"}),
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
			return fmt.Errorf("inbound: register metrics: %w", err)
		}
	}
	return nil
}

func (m *metrics) observeCall(family, activity string, code protocol.ResultCode, d time.Duration) {
	f, a := m.labels(family, activity)
	m.calls.WithLabelValues(f, a, string(code)).Inc()
	m.duration.WithLabelValues(f, a).Observe(d.Seconds())
}

func (m *metrics) jobOutcome(kind, outcome string) {
	m.jobs.WithLabelValues(kind, outcome).Inc()
}

// labels bounds the family and activity labels to the families and the
// activities they serve, so a caller cannot create label values at will:
// anything else is "unknown".
func (m *metrics) labels(family, activity string) (string, string) {
	acts, ok := m.served[family]
	if !ok {
		return "unknown", "unknown"
	}
	if !acts[activity] {
		activity = "unknown"
	}
	return family, activity
}
