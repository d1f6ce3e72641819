package p2p

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/btcsuite/btcd/btcutil/v2"
	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"

	eventsv1 "github.com/btcmesh/btcmesh/proto/btcmesh/events/v1"
	headersv1 "github.com/btcmesh/btcmesh/proto/btcmesh/headers/v1"

	"github.com/btcmesh/btcmesh/internal/bus"
	"github.com/btcmesh/btcmesh/internal/mutation"
)

// Misbehaviour points.
const (
	pointsInvalidHeader = 100
	pointsUnconnecting  = 20
	// pointsUnconnectingBlock: an unrequested block whose parent is
	// unknown (Core's BLOCK_MISSING_PREV).
	pointsUnconnectingBlock = 100
	// pointsInvFlood: more inventory than invBurst/invPerSecond allow.
	pointsInvFlood = 100
	// pointsEmptyVin: a transaction (alone or in a block) without
	// inputs, invalid by consensus (bad-txns-vin-empty).
	pointsEmptyVin = 100
	// pointsMutatedBlock: a block whose transactions or witnesses are not
	// those its header commits to (Core's IsBlockMutated).
	pointsMutatedBlock    = 100
	maxUnconnectingBefore = 10
)

// requestHeaders sends getheaders with a locator of our best header
// chain, preceded by from when set (to continue after a full batch).
func (s *Service) requestHeaders(ps *peerState, from *chainhash.Hash) {
	ctx, cancel := s.rpcCtx()
	defer cancel()
	resp, err := s.headers.GetBlockLocator(ctx, &headersv1.GetBlockLocatorRequest{FromBestHeader: true})
	if err != nil {
		s.log.Warn("get block locator failed", "err", err)
		return
	}
	msg := wire.NewMsgGetHeaders()
	if from != nil {
		_ = msg.AddBlockLocatorHash(from)
	}
	for _, b := range resp.GetLocator() {
		h, err := chainhash.NewHash(b)
		if err != nil {
			continue
		}
		if from != nil && h.IsEqual(from) {
			continue
		}
		if msg.AddBlockLocatorHash(h) != nil {
			break
		}
	}
	if len(msg.BlockLocatorHashes) == 0 {
		_ = msg.AddBlockLocatorHash(s.deps.Network.Params.GenesisHash)
	}
	ps.p.QueueMessage(msg, nil)
}

// onHeaders submits a peer's headers to the headers service.
func (s *Service) onHeaders(ps *peerState, msg *wire.MsgHeaders) {
	ps.headersAnswered()
	n := len(msg.Headers)
	if n == 0 {
		return
	}
	s.m.headersRecv.Add(float64(n))
	raw := make([][]byte, 0, n)
	for _, h := range msg.Headers {
		var buf bytes.Buffer
		buf.Grow(wire.MaxBlockHeaderPayload)
		if err := h.Serialize(&buf); err != nil {
			return
		}
		raw = append(raw, buf.Bytes())
	}
	ctx, cancel := s.rpcCtx()
	resp, err := s.headers.SubmitHeaders(ctx, &headersv1.SubmitHeadersRequest{Headers: raw})
	cancel()
	if err != nil {
		s.log.Warn("submit headers failed", "peer", ps.id(), "err", err)
		return
	}
	last := msg.Headers[n-1].BlockHash()
	for _, h := range msg.Headers {
		ps.markKnown(h.BlockHash())
	}
	if results := resp.GetResults(); len(results) > 0 {
		top := results[len(results)-1].GetHeight()
		ps.noteHeight(top, -1)
		for {
			cur := s.bestHeader.Load()
			if top <= cur || s.bestHeader.CompareAndSwap(cur, top) {
				break
			}
		}
	}
	if rule := resp.GetRejectRule(); rule != "" {
		s.misbehave(ps, pointsInvalidHeader, fmt.Sprintf("invalid header: %s %s", rule, resp.GetRejectDetail()))
		return
	}
	if resp.GetOrphan() {
		// The headers do not connect: ask from our locator again, and
		// punish peers that keep sending such.
		ps.mu.Lock()
		ps.unconnecting++
		tooMany := ps.unconnecting%maxUnconnectingBefore == 0
		ps.mu.Unlock()
		if tooMany {
			s.misbehave(ps, pointsUnconnecting, "headers that do not connect")
		}
		s.requestHeaders(ps, nil)
		return
	}
	ps.mu.Lock()
	ps.unconnecting = 0
	ps.mu.Unlock()
	if n == wire.MaxBlockHeadersPerMsg {
		s.requestHeaders(ps, &last)
	}
	s.kick()
}

// onInv: block announcements trigger getheaders, unknown txs getdata.
func (s *Service) onInv(ps *peerState, msg *wire.MsgInv) {
	now := time.Now()
	if !ps.spendInv(len(msg.InvList), now) {
		s.misbehave(ps, pointsInvFlood, fmt.Sprintf("inv flood (%d entries in the last message)", len(msg.InvList)))
		return
	}
	var getdata []*wire.InvVect
	blocks := false
	for _, iv := range msg.InvList {
		switch iv.Type {
		case wire.InvTypeBlock, wire.InvTypeWitnessBlock:
			ps.markKnown(iv.Hash)
			ps.p.UpdateLastAnnouncedBlock(&iv.Hash)
			blocks = true
		case wire.InvTypeTx, wire.InvTypeWitnessTx, invTypeWTx:
			ps.markKnown(iv.Hash)
			if s.isBehind() || s.txs.has(iv.Hash) {
				continue
			}
			t := wire.InvTypeTx
			if iv.Type == invTypeWTx {
				t = invTypeWTx
			} else if ps.p.IsWitnessEnabled() {
				t = wire.InvTypeWitnessTx
			}
			// One peer at a time per transaction; others are remembered.
			if !s.txreq.announce(ps, iv.Hash, t) {
				continue
			}
			getdata = append(getdata, wire.NewInvVect(t, &iv.Hash))
		}
	}
	if blocks && ps.mayAskHeaders(now) {
		s.requestHeaders(ps, nil)
	}
	for len(getdata) > 0 {
		k := min(len(getdata), wire.MaxInvPerMsg)
		gd := wire.NewMsgGetDataSizeHint(uint(k))
		for _, iv := range getdata[:k] {
			_ = gd.AddInvVect(iv)
		}
		ps.p.QueueMessage(gd, nil)
		getdata = getdata[k:]
	}
}

// onBlock stores a block and hands it to the blockvalidator.
func (s *Service) onBlock(ps *peerState, msg *wire.MsgBlock, buf []byte) {
	hash := msg.BlockHash()
	ps.markKnown(hash)
	s.syncMu.Lock()
	first, asked := s.inflight[hash]
	s.syncMu.Unlock()
	var height int32 // the block's, from its request or its header
	if asked {
		height = first.height
	} else {
		var ok bool
		if height, ok = s.acceptUnrequested(ps, msg); !ok {
			return
		}
	}
	s.syncMu.Lock()
	req, requested := s.inflight[hash]
	if requested {
		delete(s.inflight, hash)
		delete(req.peer.inflight, hash)
		ps.noteHeight(req.height, req.height)
	}
	delete(s.stallers, hash)
	s.received[hash] = time.Now()
	s.syncMu.Unlock()

	if hasEmptyVin(msg.Transactions...) {
		s.misbehave(ps, pointsEmptyVin, "block with a transaction without inputs")
		return
	}
	// Only the block its hash names goes into the block store (a
	// mutated copy stored first would stand in for the real one): the
	// sender of anything else is banned, and the block is asked for
	// again elsewhere.
	if err := mutation.Check(btcutil.NewBlock(msg), s.deps.Network.SegwitActive(height)); err != nil {
		s.forgetReceived(hash)
		s.misbehave(ps, pointsMutatedBlock, fmt.Sprintf("mutated block %s: %v", hash, err))
		return
	}
	raw := buf
	if len(raw) == 0 || !ps.p.IsWitnessEnabled() {
		var b bytes.Buffer
		if err := msg.Serialize(&b); err != nil {
			return
		}
		raw = b.Bytes()
	}
	ctx, cancel := s.rpcCtx()
	defer cancel()
	if err := s.store.Put(ctx, hash, raw); err != nil {
		s.log.Error("store block failed", "hash", hash.String(), "err", err)
		s.forgetReceived(hash)
		return
	}
	ev := &eventsv1.BlockReceived{Hash: hash[:], Source: fmt.Sprintf("peer %d", ps.id())}
	if err := bus.PublishDurable(ctx, s.js, s.subj.BlockReceived(), ev); err != nil {
		s.log.Error("publish block received failed", "hash", hash.String(), "err", err)
		s.forgetReceived(hash)
		return
	}
	s.m.blocksReceived.Inc()
	s.blocksRecv.Add(1)
	s.log.Debug("block received", "hash", hash.String(), "peer", ps.id(), "requested", requested, "bytes", len(raw))
	s.kick()
}

// acceptUnrequested vets a block nobody asked for, as Bitcoin Core does:
// its header is submitted first and must be valid and connect to the
// header chain. A peer sending one that is not is banned (Core punishes
// invalid and missing-parent blocks alike) and the block is dropped
// unstored, so unrequested junk never reaches the block store.
func (s *Service) acceptUnrequested(ps *peerState, msg *wire.MsgBlock) (height int32, ok bool) {
	var buf bytes.Buffer
	if err := msg.Header.Serialize(&buf); err != nil {
		return 0, false
	}
	ctx, cancel := s.rpcCtx()
	resp, err := s.headers.SubmitHeaders(ctx, &headersv1.SubmitHeadersRequest{Headers: [][]byte{buf.Bytes()}})
	cancel()
	if err != nil {
		s.log.Warn("submit header of unrequested block failed", "peer", ps.id(), "err", err)
		return 0, false
	}
	if rule := resp.GetRejectRule(); rule != "" {
		s.misbehave(ps, pointsInvalidHeader, fmt.Sprintf("unrequested block with invalid header: %s %s", rule, resp.GetRejectDetail()))
		return 0, false
	}
	if resp.GetOrphan() {
		s.misbehave(ps, pointsUnconnectingBlock, "unrequested block that does not connect")
		return 0, false
	}
	if len(resp.GetResults()) == 0 {
		s.log.Warn("headers answered an unrequested block's header without a result", "peer", ps.id())
		return 0, false
	}
	return resp.GetResults()[0].GetHeight(), true
}

// hasEmptyVin reports a transaction without inputs. Such a transaction
// is invalid by consensus, and the witness serialization that the block
// store and the mempool decode cannot carry it (a zero input count reads
// as the segwit marker), so it is refused here rather than stored or
// published as bytes nobody can decode.
func hasEmptyVin(txs ...*wire.MsgTx) bool {
	for _, tx := range txs {
		if len(tx.TxIn) == 0 {
			return true
		}
	}
	return false
}

func (s *Service) forgetReceived(h chainhash.Hash) {
	s.syncMu.Lock()
	delete(s.received, h)
	s.syncMu.Unlock()
}

// onNotFound frees the slots of blocks a peer says it lacks.
func (s *Service) onNotFound(ps *peerState, msg *wire.MsgNotFound) {
	s.syncMu.Lock()
	for _, iv := range msg.InvList {
		if req, ok := s.inflight[iv.Hash]; ok && req.peer == ps {
			delete(s.inflight, iv.Hash)
			delete(ps.inflight, iv.Hash)
			s.stallers[iv.Hash] = ps
		}
	}
	s.syncMu.Unlock()
	for _, iv := range msg.InvList {
		if iv.Type == wire.InvTypeTx || iv.Type == wire.InvTypeWitnessTx || iv.Type == invTypeWTx {
			if p, typ := s.txreq.failed(ps, iv.Hash); p != nil {
				askTx(p, []*wire.InvVect{wire.NewInvVect(typ, &iv.Hash)})
			}
		}
	}
	s.kick()
}

// syncLoop schedules block downloads when woken and every second, and
// logs progress while behind.
func (s *Service) syncLoop(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	progress := time.NewTicker(progressInterval)
	defer progress.Stop()
	lastTip, lastAt := s.tipHeight.Load(), time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kickCh:
		case <-tick.C:
			s.expireReceived()
			if lastTip < 0 { // the tip was not known yet at the last report
				lastTip, lastAt = s.tipHeight.Load(), time.Now()
			}
			for p, ivs := range s.txreq.expire(time.Now()) {
				askTx(p, ivs)
			}
		case <-progress.C:
			s.refreshChainInfo(ctx, false)
			s.checkPings(time.Now())
			s.reportProgress(lastTip, lastAt)
			lastTip, lastAt = s.tipHeight.Load(), time.Now()
		}
		s.scheduleBlocks(ctx)
	}
}

// expireReceived forgets received blocks after a while: by then the
// headers service knows their data is stored.
func (s *Service) expireReceived() {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	for h, at := range s.received {
		if time.Since(at) > 2*time.Minute {
			delete(s.received, h)
		}
	}
}

// scheduleBlocks re-requests stalled blocks and asks peers with free
// slots for the blocks the headers service says are missing.
func (s *Service) scheduleBlocks(ctx context.Context) {
	now := time.Now()
	peers := s.readyPeers()
	s.syncMu.Lock()
	for h, req := range s.inflight {
		if now.Sub(req.at) > s.stallTimeout {
			s.sched.at = time.Time{} // ask again now
			delete(s.inflight, h)
			delete(req.peer.inflight, h)
			s.stallers[h] = req.peer
			s.m.blockStalls.Inc()
			s.log.Info("block download stalled, asking another peer", "hash", h.String(), "peer", req.peer.id())
		}
	}
	var dl []*peerState
	free := 0
	for _, ps := range peers {
		if ps.p.Services()&wire.SFNodeWitness == 0 {
			continue
		}
		dl = append(dl, ps)
		free += max(maxInflightPerPeer-len(ps.inflight), 0)
	}
	skip := free == 0 || s.skipSchedule(now, free)
	if !skip {
		s.sched.at = now
	}
	s.syncMu.Unlock()
	if skip {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, rpcTimeout)
	resp, err := s.headers.GetMissingBlocks(cctx, &headersv1.GetMissingBlocksRequest{MaxBlocks: 1024})
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			s.log.Debug("get missing blocks failed", "err", err)
		}
		return
	}
	reqs := make(map[*peerState]*wire.MsgGetData)
	tipHeight := max(s.tipHeight.Load(), 0)
	windowEnd := tipHeight + downloadWindow
	windowFull := false
	s.syncMu.Lock()
	for _, info := range resp.GetBlocks() {
		if free == 0 {
			break
		}
		if info.GetHeight() > windowEnd {
			windowFull = true
			break
		}
		h, err := chainhash.NewHash(info.GetHash())
		if err != nil {
			continue
		}
		if _, ok := s.inflight[*h]; ok {
			continue
		}
		if _, ok := s.received[*h]; ok {
			continue
		}
		ps := pickPeer(dl, info.GetHeight(), s.stallers[*h])
		if ps == nil {
			continue
		}
		ps.inflight[*h] = struct{}{}
		s.inflight[*h] = &blockReq{peer: ps, height: info.GetHeight(), at: now}
		free--
		gd := reqs[ps]
		if gd == nil {
			gd = wire.NewMsgGetData()
			reqs[ps] = gd
		}
		_ = gd.AddInvVect(wire.NewInvVect(wire.InvTypeWitnessBlock, h))
	}
	s.sched.fullTip = -1
	if windowFull {
		s.sched.fullTip = tipHeight
	}
	stalled := windowFull && free > 0 && len(dl) > 1 && s.stallWindow(now)
	if stalled {
		s.sched = schedState{fullTip: -1} // re-request it at once
	}
	s.syncMu.Unlock()
	if stalled {
		s.kick()
	}
	for ps, gd := range reqs {
		ps.p.QueueMessage(gd, nil)
	}
}

// pickPeer chooses the least loaded peer with a free slot that is
// believed to have the block, avoiding the one that stalled on it when
// another can serve. Called with syncMu held.
func pickPeer(peers []*peerState, height int32, avoid *peerState) *peerState {
	var best, fallback *peerState
	for _, ps := range peers {
		if len(ps.inflight) >= maxInflightPerPeer || ps.bestHeight() < height {
			continue
		}
		if ps == avoid {
			fallback = ps
			continue
		}
		if best == nil || len(ps.inflight) < len(best.inflight) {
			best = ps
		}
	}
	if best == nil {
		return fallback
	}
	return best
}
