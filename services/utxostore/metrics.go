package utxostore

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the service's Prometheus collectors.
type metrics struct {
	txouts      prometheus.Gauge
	tipHeight   prometheus.Gauge
	connect     prometheus.Histogram
	disconnect  prometheus.Histogram
	lookups     prometheus.Counter
	totalAmount prometheus.Gauge
	spent       prometheus.Counter
	cacheHits   prometheus.Counter
	filterSkips prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		txouts: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "btcmesh_utxostore_txouts", Help: "Unspent transaction outputs in the set.",
		}),
		tipHeight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "btcmesh_utxostore_tip_height", Help: "Height of the block the set reflects.",
		}),
		connect: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "btcmesh_utxostore_connect_seconds", Help: "Time to apply one block (one badger transaction).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		disconnect: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "btcmesh_utxostore_disconnect_seconds", Help: "Time to undo one block.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		lookups: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "btcmesh_utxostore_lookups_total", Help: "Outpoints looked up through GetUtxos.",
		}),
		totalAmount: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "btcmesh_utxostore_total_amount_satoshis", Help: "Sum of all unspent outputs.",
		}),
		spent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "btcmesh_utxostore_spent_total", Help: "Outputs spent by connected blocks.",
		}),
		cacheHits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "btcmesh_utxostore_connect_cache_hits_total",
			Help: "Outputs spent by connected blocks that were found in the coin cache instead of read from disk.",
		}),
		filterSkips: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "btcmesh_utxostore_filter_skips_total",
			Help: "Lookups of outpoints that hold no coin answered by the key filter instead of read from disk.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.txouts, m.tipHeight, m.connect, m.disconnect, m.lookups, m.totalAmount, m.spent, m.cacheHits, m.filterSkips} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register utxostore metrics: %w", err)
		}
	}
	return m, nil
}

// setTip updates the gauges from a committed tip.
func (m *metrics) setTip(t tipState) {
	m.txouts.Set(float64(t.txouts))
	m.tipHeight.Set(float64(t.height))
	m.totalAmount.Set(float64(t.amount))
}
