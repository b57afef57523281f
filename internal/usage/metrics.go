package usage

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// oldestTimeout bounds the query behind the oldest-unpushed gauge.
const oldestTimeout = 2 * time.Second

// metrics are the service's Prometheus metrics.
type metrics struct {
	records  *prometheus.CounterVec // records answered, by status
	pushed   prometheus.Counter     // periods sealed into a push
	periods  *prometheus.CounterVec // periods answered for good, by state
	attempts *prometheus.CounterVec // push attempts, by outcome
	oldest   prometheus.GaugeFunc
}

func newMetrics(s *Service) *metrics {
	return &metrics{
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "koobridge_usage_records_total",
			Help: "Usage records the vendor's product reported, by status (accepted, duplicate, rejected).",
		}, []string{"status"}),
		pushed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "koobridge_usage_periods_pushed_total",
			Help: "Billing periods sealed into a usage push to KooGallery (a period split out of a refused push counts again).",
		}),
		periods: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "koobridge_usage_periods_total",
			Help: "Billing periods KooGallery answered for good, by state (accepted, rejected, dead).",
		}, []string{"state"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "koobridge_usage_push_attempts_total",
			Help: "Usage push attempts, by outcome (accepted; refused: KooGallery refused records; failed: retried).",
		}, []string{"outcome"}),
		oldest: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "koobridge_usage_oldest_unpushed_seconds",
			Help: "How long ago the oldest billing period not yet accepted or refused (open or pushing) ended; 0 when none.",
		}, func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), oldestTimeout)
			defer cancel()
			end, ok, err := s.store.OldestUnpushedUsage(ctx)
			if err != nil || !ok {
				return 0
			}
			return max(0, s.now().Sub(end).Seconds())
		}),
	}
}

func (m *metrics) register(r prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.records, m.pushed, m.periods, m.attempts, m.oldest} {
		if err := r.Register(c); err != nil {
			return err
		}
	}
	return nil
}
