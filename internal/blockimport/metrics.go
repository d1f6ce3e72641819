package blockimport

import "github.com/prometheus/client_golang/prometheus"

// metrics are the btcmesh_import_* collectors.
type metrics struct {
	blocks     *prometheus.CounterVec
	bytesRead  prometheus.Counter
	filesBytes prometheus.Gauge
	skipped    prometheus.Gauge
	tipHeight  prometheus.Gauge
	rate       prometheus.Gauge
	eta        prometheus.Gauge
	pending    prometheus.Gauge
}

// newMetrics creates the collectors and registers them on reg (when set).
func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		blocks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "btcmesh_import_blocks_total",
			Help: "Blocks read from the files, by outcome: imported, side_chain, already_present, duplicate, rejected, undecodable, orphan."},
			[]string{"result"}),
		bytesRead: prometheus.NewCounter(prometheus.CounterOpts{Name: "btcmesh_import_read_bytes_total",
			Help: "Bytes of the block files consumed."}),
		filesBytes: prometheus.NewGauge(prometheus.GaugeOpts{Name: "btcmesh_import_files_bytes",
			Help: "Total size of the block files being imported."}),
		skipped: prometheus.NewGauge(prometheus.GaugeOpts{Name: "btcmesh_import_skipped_bytes",
			Help: "Bytes of the files skipped as damaged or foreign (padding excluded)."}),
		tipHeight: prometheus.NewGauge(prometheus.GaugeOpts{Name: "btcmesh_import_tip_height",
			Help: "Height of the active chain tip after the last submitted block."}),
		rate: prometheus.NewGauge(prometheus.GaugeOpts{Name: "btcmesh_import_blocks_per_second",
			Help: "Blocks imported or found present per second over the last progress interval."}),
		eta: prometheus.NewGauge(prometheus.GaugeOpts{Name: "btcmesh_import_eta_seconds",
			Help: "Estimated seconds left, from the file bytes not yet done (read bytes of blocks still waiting for their parent count as not done) and the rate so far (-1 unknown)."}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{Name: "btcmesh_import_waiting_blocks",
			Help: "Blocks read ahead of their parent, waiting for it."}),
	}
	if reg != nil {
		reg.MustRegister(m.blocks, m.bytesRead, m.filesBytes, m.skipped, m.tipHeight, m.rate, m.eta, m.pending)
	}
	return m
}
