package txvalidator

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the txvalidator's Prometheus collectors.
type metrics struct {
	jobs           *prometheus.CounterVec
	inputsVerified prometheus.Counter
	preverified    prometheus.Counter
	inputsSettled  prometheus.Counter
	rejected       *prometheus.CounterVec
	batchSeconds   *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "btcmesh_txvalidator_jobs_total",
			Help: "Transactions validated, by mode and transport.",
		}, []string{"mode", "transport"}),
		inputsVerified: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "btcmesh_txvalidator_inputs_verified_total",
			Help: "Input scripts executed.",
		}),
		preverified: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "btcmesh_txvalidator_sigs_preverified_total",
			Help: "ECDSA signatures verified with libsecp256k1 ahead of the script engine (0 in a build without cgo).",
		}),
		inputsSettled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "btcmesh_txvalidator_inputs_settled_total",
			Help: "P2WPKH inputs whose every script rule was checked ahead of the engine (signature with libsecp256k1, key hash, encodings), so the engine did not run.",
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "btcmesh_txvalidator_rejected_total",
			Help: "Transactions rejected, by rule.",
		}, []string{"rule"}),
		batchSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "btcmesh_txvalidator_batch_seconds",
			Help:    "Time to validate one request batch, by transport.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"transport"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.jobs, m.inputsVerified, m.preverified, m.inputsSettled, m.rejected, m.batchSeconds} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register txvalidator metrics: %w", err)
		}
	}
	return m, nil
}
