package p2p

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the p2p service's Prometheus collectors.
type metrics struct {
	peers          *prometheus.GaugeVec
	bytesReceived  prometheus.Counter
	bytesSent      prometheus.Counter
	blocksReceived prometheus.Counter
	headersRecv    prometheus.Counter
	bans           prometheus.Counter
	blockStalls    prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		peers: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "btcmesh_p2p_peers",
			Help: "Connected peers that completed the handshake, by direction.",
		}, []string{"direction"}),
		bytesReceived: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "btcmesh_p2p_bytes_received_total",
			Help: "Bytes of Bitcoin messages received from peers.",
		}),
		bytesSent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "btcmesh_p2p_bytes_sent_total",
			Help: "Bytes of Bitcoin messages sent to peers.",
		}),
		blocksReceived: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "btcmesh_p2p_blocks_received_total",
			Help: "Blocks received from peers and put in the block store.",
		}),
		headersRecv: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "btcmesh_p2p_headers_received_total",
			Help: "Block headers received from peers.",
		}),
		blockStalls: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "btcmesh_p2p_block_stalls_total",
			Help: "Block requests given to another peer after the first stalled.",
		}),
		bans: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "btcmesh_p2p_bans_total",
			Help: "Bans made, by misbehaviour or by setban.",
		}),
	}
	m.peers.WithLabelValues("inbound")
	m.peers.WithLabelValues("outbound")
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.peers, m.bytesReceived, m.bytesSent, m.blocksReceived, m.headersRecv, m.bans, m.blockStalls} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register p2p metrics: %w", err)
		}
	}
	return m, nil
}
