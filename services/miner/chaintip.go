package miner

import (
	"bytes"
	"context"
	"fmt"

	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/btcmesh/btcmesh/proto/btcmesh/events/v1"
)

// handleChainTip updates the mempool when the active chain moves: the
// transactions of connected blocks and their conflicts leave it, and the
// transactions of disconnected blocks are offered to it again.
func (s *Service) handleChainTip(ctx context.Context, data []byte) {
	ev := &eventsv1.ChainTip{}
	if err := proto.Unmarshal(data, ev); err != nil {
		s.log.Warn("bad chain tip event", "err", err)
		return
	}
	s.forgetTip()

	var disconnected []*wire.MsgBlock
	for _, h := range ev.GetDisconnected() {
		block, hash, err := s.readBlock(ctx, h)
		if err != nil {
			s.log.Warn("cannot read disconnected block", "hash", hash.String(), "err", err)
			continue
		}
		disconnected = append(disconnected, block)
	}
	for _, h := range ev.GetConnected() {
		block, hash, err := s.readBlock(ctx, h)
		if err != nil {
			s.log.Warn("cannot read connected block", "hash", hash.String(), "err", err)
			continue
		}
		s.removeBlockTxs(block, hash)
	}
	// Oldest disconnected block first, so parents come back before children.
	resubmitted := 0
	for i := len(disconnected) - 1; i >= 0; i-- {
		for _, tx := range disconnected[i].Transactions[1:] {
			var buf bytes.Buffer
			if err := tx.Serialize(&buf); err != nil {
				continue
			}
			if _, err := s.submitTx(ctx, buf.Bytes(), -1, "reorg"); err != nil {
				s.log.Debug("disconnected tx not re-accepted", "txid", tx.TxHash().String(), "err", err)
				continue
			}
			resubmitted++
		}
	}
	s.log.Debug("chain tip applied to mempool", "height", ev.GetHeight(),
		"connected", len(ev.GetConnected()), "disconnected", len(ev.GetDisconnected()), "resubmitted", resubmitted)
}

// readBlock fetches and decodes a block from the block store.
func (s *Service) readBlock(ctx context.Context, rawHash []byte) (*wire.MsgBlock, chainhash.Hash, error) {
	var hash chainhash.Hash
	if len(rawHash) != chainhash.HashSize {
		return nil, hash, fmt.Errorf("block hash of %d bytes", len(rawHash))
	}
	copy(hash[:], rawHash)
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	raw, err := s.store.Get(cctx, hash)
	cancel()
	if err != nil {
		return nil, hash, err
	}
	block := &wire.MsgBlock{}
	if err := block.Deserialize(bytes.NewReader(raw)); err != nil {
		return nil, hash, fmt.Errorf("decode block %s: %w", hash, err)
	}
	if len(block.Transactions) == 0 {
		return nil, hash, fmt.Errorf("block %s has no transactions", hash)
	}
	return block, hash, nil
}
