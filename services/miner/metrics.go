package miner

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the miner's Prometheus collectors.
type metrics struct {
	mempoolTxs   prometheus.Gauge
	mempoolBytes prometheus.Gauge
	accepted     prometheus.Counter
	rejected     *prometheus.CounterVec
	blocksMined  prometheus.Counter
	hashes       prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		mempoolTxs: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "btcmesh_miner_mempool_transactions", Help: "Transactions in the mempool.",
		}),
		mempoolBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "btcmesh_miner_mempool_bytes", Help: "Serialized size of the mempool's transactions.",
		}),
		accepted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "btcmesh_miner_accepted_total", Help: "Transactions accepted to the mempool.",
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "btcmesh_miner_rejected_total", Help: "Transactions rejected from the mempool, by rule.",
		}, []string{"rule"}),
		blocksMined: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "btcmesh_miner_blocks_mined_total", Help: "Blocks mined and accepted.",
		}),
		hashes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "btcmesh_miner_hashes_total", Help: "Block header hashes computed.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.mempoolTxs, m.mempoolBytes, m.accepted, m.rejected, m.blocksMined, m.hashes} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register miner metrics: %w", err)
		}
	}
	return m, nil
}
