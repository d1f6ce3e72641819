package p2p

import (
	"bytes"
	"errors"
	"fmt"
	"sync"

	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/btcmesh/btcmesh/proto/btcmesh/events/v1"
	headersv1 "github.com/btcmesh/btcmesh/proto/btcmesh/headers/v1"

	"github.com/btcmesh/btcmesh/internal/blockstore"
	"github.com/btcmesh/btcmesh/internal/bus"
)

// invTypeWTx is BIP339's MSG_WTX (inventory by wtxid).
const invTypeWTx wire.InvType = 5

// txCacheSize bounds the recently accepted transactions kept for getdata.
const txCacheSize = 5000

// maxHeadersAnnounce is the most blocks announced with a headers message;
// longer moves are announced with an inv of the tip.
const maxHeadersAnnounce = 8

// txEntry is one accepted transaction.
type txEntry struct {
	txid, wtxid chainhash.Hash
	tx          *wire.MsgTx
}

// txCache keeps the last accepted transactions by txid and wtxid.
type txCache struct {
	mu    sync.Mutex
	max   int
	byID  map[chainhash.Hash]*txEntry
	order []*txEntry
}

func newTxCache(n int) *txCache {
	return &txCache{max: n, byID: make(map[chainhash.Hash]*txEntry)}
}

func (c *txCache) add(e *txEntry) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.byID[e.txid]; ok {
		return false
	}
	c.byID[e.txid] = e
	c.byID[e.wtxid] = e
	c.order = append(c.order, e)
	if len(c.order) > c.max {
		old := c.order[0]
		c.order = c.order[1:]
		delete(c.byID, old.txid)
		delete(c.byID, old.wtxid)
	}
	return true
}

func (c *txCache) get(h chainhash.Hash) *txEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byID[h]
}

func (c *txCache) has(h chainhash.Hash) bool { return c.get(h) != nil }

// handleChainTip announces a new active tip to every peer lacking it.
func (s *Service) handleChainTip(data []byte) {
	var ev eventsv1.ChainTip
	if err := proto.Unmarshal(data, &ev); err != nil {
		s.log.Warn("bad chain tip event", "err", err)
		return
	}
	tip, err := chainhash.NewHash(ev.GetHash())
	if err != nil {
		return
	}
	s.tipHash.Store(tip)
	s.tipHeight.Store(ev.GetHeight())
	if ev.GetHeight() > s.bestHeader.Load() {
		s.bestHeader.Store(ev.GetHeight())
	}
	s.kick()
	if s.isBehind() {
		return // no announcements during initial sync
	}
	var connected []chainhash.Hash
	for _, b := range ev.GetConnected() {
		if h, err := chainhash.NewHash(b); err == nil {
			connected = append(connected, *h)
		}
	}
	if len(connected) == 0 || connected[len(connected)-1] != *tip {
		connected = append(connected, *tip)
	}
	var headers []*wire.BlockHeader // fetched once, when a peer wants them
	fetched := false
	for _, ps := range s.readyPeers() {
		if ps.knows(*tip) {
			continue
		}
		if ps.p.WantsHeaders() && len(connected) <= maxHeadersAnnounce {
			if !fetched {
				headers, fetched = s.fetchHeaders(connected), true
			}
			if len(headers) == len(connected) {
				msg := wire.NewMsgHeaders()
				for i, h := range headers {
					if ps.knows(connected[i]) {
						continue
					}
					_ = msg.AddBlockHeader(h)
				}
				for _, h := range connected {
					ps.markKnown(h)
				}
				ps.p.QueueMessage(msg, nil)
				continue
			}
		}
		for _, h := range connected {
			ps.markKnown(h)
		}
		inv := wire.NewMsgInv()
		_ = inv.AddInvVect(wire.NewInvVect(wire.InvTypeBlock, tip))
		ps.p.QueueMessage(inv, nil)
	}
}

// fetchHeaders reads block headers from the headers service (nil on error).
func (s *Service) fetchHeaders(hashes []chainhash.Hash) []*wire.BlockHeader {
	out := make([]*wire.BlockHeader, 0, len(hashes))
	for _, h := range hashes {
		ctx, cancel := s.rpcCtx()
		resp, err := s.headers.GetHeader(ctx, &headersv1.GetHeaderRequest{Hash: h[:]})
		cancel()
		if err != nil {
			s.log.Warn("get header failed", "hash", h.String(), "err", err)
			return nil
		}
		var bh wire.BlockHeader
		if err := bh.Deserialize(bytes.NewReader(resp.GetInfo().GetHeader())); err != nil {
			return nil
		}
		out = append(out, &bh)
	}
	return out
}

// handleTxAccepted caches an accepted tx and announces it to peers.
func (s *Service) handleTxAccepted(data []byte) {
	var ev eventsv1.TxAccepted
	if err := proto.Unmarshal(data, &ev); err != nil {
		s.log.Warn("bad tx accepted event", "err", err)
		return
	}
	var tx wire.MsgTx
	if err := tx.Deserialize(bytes.NewReader(ev.GetTx())); err != nil {
		s.log.Warn("undecodable accepted tx", "err", err)
		return
	}
	e := &txEntry{txid: tx.TxHash(), wtxid: tx.WitnessHash(), tx: &tx}
	if !s.txs.add(e) {
		return
	}
	for _, ps := range s.readyPeers() {
		if !ps.relayTxs.Load() || ps.feeFilter.Load() > ev.GetFeeRate() {
			continue
		}
		if !ps.markKnown(e.txid) {
			continue
		}
		// BIP339: by wtxid (MSG_WTX) once both sides sent wtxidrelay,
		// else by txid (MSG_TX).
		if ps.wtxidRelay.Load() && ps.wtxidSent.Load() {
			ps.markKnown(e.wtxid)
			ps.p.QueueInventory(wire.NewInvVect(invTypeWTx, &e.wtxid))
			continue
		}
		ps.p.QueueInventory(wire.NewInvVect(wire.InvTypeTx, &e.txid))
	}
}

// onTx hands a relayed transaction to the mempool.
func (s *Service) onTx(ps *peerState, msg *wire.MsgTx) {
	txid := msg.TxHash()
	ps.markKnown(txid)
	s.txreq.received(txid, msg.WitnessHash())
	if hasEmptyVin(msg) {
		s.misbehave(ps, pointsEmptyVin, "transaction without inputs")
		return
	}
	var buf bytes.Buffer
	if err := msg.Serialize(&buf); err != nil {
		return
	}
	ev := &eventsv1.TxReceived{Tx: buf.Bytes(), Source: fmt.Sprintf("peer %d", ps.id())}
	if err := bus.Publish(s.deps.NATS, s.subj.TxReceived(), ev); err != nil {
		s.log.Warn("publish tx received failed", "txid", txid.String(), "err", err)
	}
}

// onGetData serves blocks from the block store and txs from the cache.
func (s *Service) onGetData(ps *peerState, msg *wire.MsgGetData) {
	var notFound []*wire.InvVect
	for _, iv := range msg.InvList {
		switch iv.Type {
		case wire.InvTypeBlock, wire.InvTypeWitnessBlock:
			blk, err := s.loadBlock(iv.Hash)
			if err != nil {
				if !errors.Is(err, blockstore.ErrNotFound) {
					s.log.Warn("read block failed", "hash", iv.Hash.String(), "err", err)
				}
				notFound = append(notFound, iv)
				continue
			}
			enc := wire.BaseEncoding
			if iv.Type == wire.InvTypeWitnessBlock {
				enc = wire.WitnessEncoding
			}
			done := make(chan struct{}, 1)
			ps.p.QueueMessageWithEncoding(blk, done, enc)
			select {
			case <-done:
			case <-ps.p.Done():
				return
			}
		case wire.InvTypeTx, wire.InvTypeWitnessTx, invTypeWTx:
			e := s.txs.get(iv.Hash)
			if e == nil || (iv.Type == invTypeWTx && e.wtxid != iv.Hash) || (iv.Type != invTypeWTx && e.txid != iv.Hash) {
				notFound = append(notFound, iv)
				continue
			}
			enc := wire.WitnessEncoding
			if iv.Type == wire.InvTypeTx {
				enc = wire.BaseEncoding
			}
			ps.markKnown(e.txid)
			ps.p.QueueMessageWithEncoding(e.tx, nil, enc)
		default:
			notFound = append(notFound, iv)
		}
	}
	if len(notFound) > 0 {
		nf := wire.NewMsgNotFound()
		for _, iv := range notFound {
			_ = nf.AddInvVect(iv)
		}
		ps.p.QueueMessage(nf, nil)
	}
}

func (s *Service) loadBlock(h chainhash.Hash) (*wire.MsgBlock, error) {
	ctx, cancel := s.rpcCtx()
	defer cancel()
	raw, err := s.store.Get(ctx, h)
	if err != nil {
		return nil, err
	}
	var blk wire.MsgBlock
	if err := blk.Deserialize(bytes.NewReader(raw)); err != nil {
		return nil, fmt.Errorf("decode stored block %s: %w", h, err)
	}
	return &blk, nil
}

// locate asks the headers service for the headers after a locator.
func (s *Service) locate(locator []*chainhash.Hash, stop chainhash.Hash, maxN int32) ([]*wire.BlockHeader, error) {
	req := &headersv1.LocateHeadersRequest{MaxHeaders: maxN}
	for _, h := range locator {
		req.Locator = append(req.Locator, h[:])
	}
	if stop != (chainhash.Hash{}) {
		req.Stop = stop[:]
	}
	ctx, cancel := s.rpcCtx()
	defer cancel()
	resp, err := s.headers.LocateHeaders(ctx, req)
	if err != nil {
		return nil, err
	}
	out := make([]*wire.BlockHeader, 0, len(resp.GetHeaders()))
	for _, raw := range resp.GetHeaders() {
		var bh wire.BlockHeader
		if err := bh.Deserialize(bytes.NewReader(raw)); err != nil {
			return nil, fmt.Errorf("decode located header: %w", err)
		}
		out = append(out, &bh)
	}
	return out, nil
}

// onGetHeaders answers with headers from the headers service.
func (s *Service) onGetHeaders(ps *peerState, msg *wire.MsgGetHeaders) {
	hdrs, err := s.locate(msg.BlockLocatorHashes, msg.HashStop, wire.MaxBlockHeadersPerMsg)
	if err != nil {
		s.log.Warn("locate headers failed", "peer", ps.id(), "err", err)
		return
	}
	out := wire.NewMsgHeaders()
	for _, h := range hdrs {
		_ = out.AddBlockHeader(h)
		ps.markKnown(h.BlockHash())
	}
	ps.p.QueueMessage(out, nil)
}

// onGetBlocks answers with an inv of up to 500 block hashes.
func (s *Service) onGetBlocks(ps *peerState, msg *wire.MsgGetBlocks) {
	hdrs, err := s.locate(msg.BlockLocatorHashes, msg.HashStop, wire.MaxBlocksPerMsg)
	if err != nil {
		s.log.Warn("locate headers failed", "peer", ps.id(), "err", err)
		return
	}
	if len(hdrs) == 0 {
		return
	}
	inv := wire.NewMsgInv()
	for _, h := range hdrs {
		bh := h.BlockHash()
		_ = inv.AddInvVect(wire.NewInvVect(wire.InvTypeBlock, &bh))
	}
	ps.p.QueueMessage(inv, nil)
}
