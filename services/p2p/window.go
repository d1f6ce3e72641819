package p2p

import (
	"time"

	"github.com/btcsuite/btcd/chainhash/v2"
)

// Block download window (Core's BLOCK_DOWNLOAD_WINDOW and stalling rule).
const (
	// downloadWindow bounds how far past the active tip blocks are
	// requested, so that unconnected blocks do not pile up.
	downloadWindow = 1024
	// windowStallTimeout is how long the block the window waits on (the
	// lowest one in flight) may take, while the window is full and other
	// peers have free slots, before it is asked of another peer.
	windowStallTimeout = 5 * time.Second
)

// stallWindow re-queues the lowest block in flight when it has held the
// full window back for windowStallTimeout; called with syncMu held.
// It reports whether it did.
func (s *Service) stallWindow(now time.Time) bool {
	var low *blockReq
	var lowHash chainhash.Hash
	for h, req := range s.inflight {
		if low == nil || req.height < low.height {
			low, lowHash = req, h
		}
	}
	if low == nil || now.Sub(low.at) < windowStallTimeout {
		return false
	}
	delete(s.inflight, lowHash)
	delete(low.peer.inflight, lowHash)
	s.stallers[lowHash] = low.peer
	s.m.blockStalls.Inc()
	s.log.Info("block download window stalled, asking another peer", "hash", lowHash.String(),
		"height", low.height, "peer", low.peer.id(), "waited", now.Sub(low.at).Round(time.Millisecond).String())
	return true
}
