package headers

import (
	"testing"

	"github.com/btcsuite/btcd/wire/v2"
	"github.com/prometheus/client_golang/prometheus/testutil"

	headersv1 "github.com/btcmesh/btcmesh/proto/btcmesh/headers/v1"

	"github.com/btcmesh/btcmesh/internal/testenv"
)

// TestReorgMetrics unwinds a chain one block per SetActiveTip, as
// blockvalidator does, then connects another branch: one reorganisation
// of depth 2 is counted, and a plain extension counts none.
func TestReorgMetrics(t *testing.T) {
	h := start(t, testenv.NATS(t), t.TempDir())
	setTip := func(x wire.BlockHeader) {
		t.Helper()
		if _, err := h.cl.SetActiveTip(ctx(t), &headersv1.SetActiveTipRequest{Hash: hashOf(x)}); err != nil {
			t.Fatal(err)
		}
	}
	expect := func(what string, reorgs, disconnected float64, depths uint64, depthSum float64) {
		t.Helper()
		m := h.svc.metrics
		if got := testutil.ToFloat64(m.reorgs); got != reorgs {
			t.Errorf("%s: btcmesh_headers_reorgs_total = %v, want %v", what, got, reorgs)
		}
		if got := testutil.ToFloat64(m.disconnected); got != disconnected {
			t.Errorf("%s: btcmesh_headers_disconnected_blocks_total = %v, want %v", what, got, disconnected)
		}
		mfs, err := h.reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != "btcmesh_headers_reorg_depth_blocks" {
				continue
			}
			hist := mf.GetMetric()[0].GetHistogram()
			if hist.GetSampleCount() != depths || hist.GetSampleSum() != depthSum {
				t.Errorf("%s: depth histogram count %d sum %v, want %d %v", what, hist.GetSampleCount(), hist.GetSampleSum(), depths, depthSum)
			}
			return
		}
		t.Errorf("%s: btcmesh_headers_reorg_depth_blocks not gathered", what)
	}

	a := chainOn(genesis(), 4, 1) // a1..a4
	h.submit(a...)
	h.setStatus(statusHaveData, "", a...)
	for _, x := range a {
		setTip(x)
	}
	expect("extension", 0, 0, 0, 0)

	b := chainOn(a[1], 3, 2) // b3..b5 on a2
	h.submit(b...)
	h.setStatus(statusHaveData, "", b...)
	setTip(a[2]) // a4 disconnected: the reorganisation starts
	expect("first disconnect", 1, 1, 0, 0)
	setTip(a[1]) // a3 disconnected
	expect("second disconnect", 1, 2, 0, 0)
	setTip(b[0]) // b3 connected: it ends, depth 2
	expect("new branch", 1, 2, 1, 2)
	setTip(b[2])
	expect("extension of the new branch", 1, 2, 1, 2)

	// One move that disconnects and connects is a whole reorganisation.
	setTip(a[3])
	expect("jump back to a4", 2, 5, 2, 5)
}
