package headers

import (
	"testing"
	"time"

	headersv1 "github.com/btcmesh/btcmesh/proto/btcmesh/headers/v1"

	"github.com/btcmesh/btcmesh/internal/testenv"
)

// TestDeferredWrites follows a block's hot path (its header alone, then
// HAVE_DATA, then SetActiveTip with mark_valid): the header and the tip
// are not written on their own, HAVE_DATA carries the header to disk, and
// a crash that loses the deferred tip and VALID mark leaves an index that
// loads, holds every stored block, and takes the tip back (as
// blockvalidator's reconcile does). Without a crash the timer writes the
// deferred changes.
func TestDeferredWrites(t *testing.T) {
	nc := testenv.NATS(t)
	dir := t.TempDir()
	h, stop := startStoppable(t, nc, dir)
	chain := chainOn(genesis(), 2, 1)
	pending := func() (int, bool) {
		h.svc.mu.Lock()
		defer h.svc.mu.Unlock()
		return len(h.svc.lazy.nodes), h.svc.lazy.tip
	}
	h.submit(chain[0])
	if n, _ := pending(); n != 1 {
		t.Fatalf("a single header: %d deferred entries, want 1", n)
	}
	h.setStatus(statusHaveData, "", chain[0])
	if n, tip := pending(); n != 0 || tip {
		t.Fatalf("after HAVE_DATA: %d deferred entries, tip %v", n, tip)
	}
	if _, err := h.cl.SetActiveTip(ctx(t), &headersv1.SetActiveTipRequest{Hash: hashOf(chain[0]), MarkValid: true}); err != nil {
		t.Fatal(err)
	}
	if n, tip := pending(); n != 1 || !tip {
		t.Fatalf("after SetActiveTip: %d deferred entries, tip %v", n, tip)
	}
	// The timer writes them.
	deadline := time.Now().Add(5 * flushDelay)
	for {
		if n, tip := pending(); n == 0 && !tip {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("deferred changes never written")
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Block 2, then a crash that loses what is deferred.
	h.submit(chain[1])
	h.setStatus(statusHaveData, "", chain[1])
	if _, err := h.cl.SetActiveTip(ctx(t), &headersv1.SetActiveTipRequest{Hash: hashOf(chain[1]), MarkValid: true}); err != nil {
		t.Fatal(err)
	}
	h.svc.mu.Lock()
	h.svc.lazy.timer.Stop()
	h.svc.lazy.timer = nil
	clear(h.svc.lazy.nodes)
	h.svc.lazy.tip = false
	h.svc.mu.Unlock()
	stop()

	h = start(t, nc, dir)
	if i := h.get(chain[0]); i.Status != statusValid || !i.OnActiveChain {
		t.Fatalf("block 1 after the crash: %+v", i)
	}
	if i := h.get(chain[1]); i.Status != statusHaveData || i.OnActiveChain {
		t.Fatalf("block 2 after the crash: %+v (want stored, not active)", i)
	}
	// Reconcile: the UTXO store's tip is block 2.
	resp, err := h.cl.SetActiveTip(ctx(t), &headersv1.SetActiveTipRequest{Hash: hashOf(chain[1]), MarkValid: true})
	if err != nil || resp.Tip.Status != statusValid || resp.Tip.Height != 2 {
		t.Fatalf("reconcile: %v %+v", err, resp.GetTip())
	}
}
