package p2p

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestPeersGaugeStartsAtZero: btcmesh_p2p_peers exports both directions
// at 0 before any peer connects, so "no peers" alerts see a 0, not an
// absent series.
func TestPeersGaugeStartsAtZero(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := newMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(m.peers, "btcmesh_p2p_peers"); n != 2 {
		t.Fatalf("%d btcmesh_p2p_peers series before any peer, want 2 (inbound, outbound)", n)
	}
	for _, d := range []string{"inbound", "outbound"} {
		if v := testutil.ToFloat64(m.peers.WithLabelValues(d)); v != 0 {
			t.Errorf("btcmesh_p2p_peers{direction=%q} = %v, want 0", d, v)
		}
	}
}
