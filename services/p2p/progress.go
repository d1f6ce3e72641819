package p2p

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// syncMetrics are the sync-progress collectors: heights read live, rate
// and ETA set at each progress report.
type syncMetrics struct {
	blocksPerSecond prometheus.Gauge
	etaSeconds      prometheus.Gauge
}

func newSyncMetrics(reg prometheus.Registerer, s *Service) (*syncMetrics, error) {
	m := &syncMetrics{
		blocksPerSecond: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "btcmesh_p2p_sync_blocks_per_second",
			Help: "Blocks connected per second over the last progress interval.",
		}),
		etaSeconds: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "btcmesh_p2p_sync_eta_seconds",
			Help: "Estimated seconds until the active tip reaches the best header (0 when synced, -1 when unknown).",
		}),
	}
	if reg == nil {
		return m, nil
	}
	cs := []prometheus.Collector{m.blocksPerSecond, m.etaSeconds,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "btcmesh_p2p_sync_header_height",
			Help: "Height of the best known header.",
		}, func() float64 { return float64(s.bestHeader.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "btcmesh_p2p_sync_block_height",
			Help: "Height of the active tip (blocks connected).",
		}, func() float64 { return float64(s.tipHeight.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "btcmesh_p2p_blocks_in_flight",
			Help: "Blocks requested from peers and not received yet.",
		}, func() float64 {
			s.syncMu.Lock()
			defer s.syncMu.Unlock()
			return float64(len(s.inflight))
		}),
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register p2p sync metrics: %w", err)
		}
	}
	return m, nil
}

// reportProgress logs and exports sync progress: header and block
// heights, blocks connected per second since the last report (prevTip at
// prevAt) and the time left at that rate.
func (s *Service) reportProgress(prevTip int32, prevAt time.Time) {
	tip, best := s.tipHeight.Load(), s.bestHeader.Load()
	rate := 0.0
	if el := time.Since(prevAt).Seconds(); el > 0 && prevTip >= 0 && tip > prevTip {
		rate = float64(tip-prevTip) / el
	}
	eta := -1.0
	switch {
	case best <= tip:
		eta = 0
	case rate > 0:
		eta = float64(best-tip) / rate
	}
	s.sm.blocksPerSecond.Set(rate)
	s.sm.etaSeconds.Set(eta)
	if best <= tip {
		return
	}
	s.syncMu.Lock()
	inflight := len(s.inflight)
	s.syncMu.Unlock()
	etaStr := "unknown"
	if eta >= 0 {
		etaStr = (time.Duration(eta) * time.Second).String()
	}
	s.log.Info("sync progress", "header_height", best, "block_height", tip,
		"progress", fmt.Sprintf("%.2f%%", 100*float64(max(tip, 0))/float64(max(best, 1))),
		"blocks_per_s", fmt.Sprintf("%.1f", rate), "eta", etaStr,
		"peers", len(s.readyPeers()), "in_flight", inflight)
}
