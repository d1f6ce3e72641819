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
	// windowRefill: once a pass found the window full (every block up to
	// its end in flight or received), the missing blocks are asked of the
	// headers service again only after the tip moved on this many blocks
	// or after windowRecheck, not at every connected block: each answer
	// lists up to 1024 headers, most of them already received.
	windowRefill = maxInflightPerPeer
	// windowRecheck bounds how long a pass may be skipped.
	windowRecheck = time.Second
	// refillSlots: while blocks are in flight, more are asked for once at
	// least this many slots are free, not at every block received.
	refillSlots = maxInflightPerPeer / 2
)

// schedState is what the last scheduling pass that asked the headers
// service found; guarded by Service.syncMu.
type schedState struct {
	at      time.Time
	fullTip int32 // active tip height when the window was full; -1 when not
}

// skipSchedule reports that a pass now could not request a block that
// the last one could not, so the missing-block list need not be asked
// for; called with syncMu held.
func (s *Service) skipSchedule(now time.Time, free int) bool {
	if now.Sub(s.sched.at) >= windowRecheck {
		return false
	}
	if len(s.inflight) > 0 && free < refillSlots {
		return true
	}
	return s.sched.fullTip >= 0 && s.tipHeight.Load() < s.sched.fullTip+windowRefill
}

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
