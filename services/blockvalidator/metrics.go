package blockvalidator

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the block validator's Prometheus collectors.
type metrics struct {
	connected     prometheus.Counter
	rejected      *prometheus.CounterVec
	connectSecond prometheus.Histogram
	orphans       prometheus.Gauge
	tipHeight     prometheus.Gauge
	intakeBatch   prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		connected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "btcmesh_blockvalidator_blocks_connected_total",
			Help: "Blocks connected to the active chain.",
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "btcmesh_blockvalidator_blocks_rejected_total",
			Help: "Blocks rejected, by the rule they broke.",
		}, []string{"rule"}),
		connectSecond: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "btcmesh_blockvalidator_connect_seconds",
			Help:    "Time to validate and connect one block.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 14),
		}),
		orphans: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "btcmesh_blockvalidator_orphans",
			Help: "Orphan blocks held waiting for their parent.",
		}),
		tipHeight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "btcmesh_blockvalidator_tip_height",
			Help: "Height of the active chain's tip.",
		}),
		intakeBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "btcmesh_blockvalidator_intake_batch_blocks",
			Help:    "block.received events processed as one batch (one chain activation).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 8),
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.connected, m.rejected, m.connectSecond, m.orphans, m.tipHeight, m.intakeBatch} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register blockvalidator metrics: %w", err)
		}
	}
	return m, nil
}
