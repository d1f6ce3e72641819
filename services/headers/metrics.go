package headers

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the service's Prometheus collectors.
type metrics struct {
	bestHeight prometheus.Gauge
	tipHeight  prometheus.Gauge
	accepted   prometheus.Counter
	rejected   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		bestHeight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "btcmesh_headers_best_header_height",
			Help: "Height of the best (most-work, not invalid) header.",
		}),
		tipHeight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "btcmesh_headers_active_tip_height",
			Help: "Height of the active chain's tip.",
		}),
		accepted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "btcmesh_headers_accepted_total",
			Help: "New headers added to the index.",
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "btcmesh_headers_rejected_total",
			Help: "Headers rejected, by the rule they broke.",
		}, []string{"rule"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.bestHeight, m.tipHeight, m.accepted, m.rejected} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register headers metrics: %w", err)
		}
	}
	return m, nil
}
