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
	// reorgs, reorgDepth and disconnected follow reorganisations of the
	// active chain (see noteTipChange).
	reorgs       prometheus.Counter
	reorgDepth   prometheus.Histogram
	disconnected prometheus.Counter
	// unwound counts the blocks disconnected by the reorganisation in
	// progress (0: none); guarded by Service.mu.
	unwound int
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
		reorgs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "btcmesh_headers_reorgs_total",
			Help: "Reorganisations of the active chain (counted at their first disconnected block).",
		}),
		reorgDepth: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "btcmesh_headers_reorg_depth_blocks",
			Help:    "Blocks disconnected by one reorganisation, observed when the chain moves forward again.",
			Buckets: []float64{1, 2, 3, 4, 6, 10, 20, 50, 100},
		}),
		disconnected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "btcmesh_headers_disconnected_blocks_total",
			Help: "Blocks disconnected from the active chain.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.bestHeight, m.tipHeight, m.accepted, m.rejected, m.reorgs, m.reorgDepth, m.disconnected} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register headers metrics: %w", err)
		}
	}
	return m, nil
}

// noteTipChange records a move of the active tip that disconnected and
// connected blocks. blockvalidator unwinds a reorganisation one
// SetActiveTip per block (each to the parent), then connects the new
// branch; so a reorganisation starts at the first disconnect (reorgs is
// counted then, for prompt alerts) and ends at the first move that
// connects a block, when its depth (every block disconnected since) is
// observed. A single move that both disconnects and connects is a whole
// reorganisation. Call with Service.mu held.
func (m *metrics) noteTipChange(disconnected, connected int) {
	if disconnected > 0 {
		if m.unwound == 0 {
			m.reorgs.Inc()
		}
		m.unwound += disconnected
		m.disconnected.Add(float64(disconnected))
	}
	if connected > 0 && m.unwound > 0 {
		m.reorgDepth.Observe(float64(m.unwound))
		m.unwound = 0
	}
}
