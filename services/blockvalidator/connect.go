package blockvalidator

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/btcsuite/btcd/blockchain"

	commonv1 "github.com/btcmesh/btcmesh/proto/btcmesh/common/v1"
	headersv1 "github.com/btcmesh/btcmesh/proto/btcmesh/headers/v1"
	txvalidatorv1 "github.com/btcmesh/btcmesh/proto/btcmesh/txvalidator/v1"
	utxostorev1 "github.com/btcmesh/btcmesh/proto/btcmesh/utxostore/v1"

	"github.com/btcmesh/btcmesh/internal/rules"
)

// connect validates the block c with its UTXOs and, when every rule
// holds, applies it to the UTXO set and makes it the active tip. The
// block's parent must be the active tip. Rule violations come back as
// *rules.RuleError; any other error means a dependency failed.
func (s *Service) connect(ctx context.Context, c *headersv1.HeaderInfo, cache blockCache) error {
	start := time.Now()
	hash, err := hashFrom(c.GetHash())
	if err != nil {
		return fmt.Errorf("connect plan: %w", err)
	}
	h := c.GetHeight()
	block, err := s.loadBlock(ctx, hash, cache)
	if err != nil {
		return fmt.Errorf("connect %s: %w", hash, err)
	}
	raw, err := block.Bytes()
	if err != nil {
		return fmt.Errorf("connect %s: serialize: %w", hash, err)
	}
	params := s.deps.Network.Params
	txs := block.Transactions()

	refs, external, nInputs, err := resolveInputs(txs)
	if err != nil {
		return err
	}
	lookup := external
	checkBIP30 := !bip30Exception(h, hash, params)
	if checkBIP30 && bip30MaySkip(h, params) {
		// The block's parent is the active tip: BIP34's activation block
		// is the active chain's block at that height.
		cctx, cancel := callCtx(ctx)
		bresp, err := s.headers.GetHeadersByHeight(cctx, &headersv1.GetHeadersByHeightRequest{Heights: []int32{params.BIP0034Height}})
		cancel()
		if err != nil {
			return fmt.Errorf("headers.GetHeadersByHeight for BIP34 activation block: %w", err)
		}
		infos := bresp.GetInfos()
		checkBIP30 = !(len(infos) == 1 && bytes.Equal(infos[0].GetHash(), params.BIP0034Hash[:]))
	}
	if checkBIP30 {
		lookup = append(external[:len(external):len(external)], bip30Outpoints(txs)...)
	}
	var utxos []*utxostorev1.Utxo
	if len(lookup) > 0 {
		req := &utxostorev1.GetUtxosRequest{Outpoints: make([]*commonv1.OutPoint, len(lookup))}
		for i := range lookup {
			req.Outpoints[i] = &commonv1.OutPoint{Txid: lookup[i].Hash[:], Index: lookup[i].Index}
		}
		cctx, cancel := callCtx(ctx)
		resp, err := s.utxo.GetUtxos(cctx, req)
		cancel()
		if err != nil {
			return fmt.Errorf("utxostore.GetUtxos for %s: %w", hash, err)
		}
		if len(resp.GetUtxos()) != len(lookup) {
			return fmt.Errorf("utxostore.GetUtxos answered %d of %d outpoints", len(resp.GetUtxos()), len(lookup))
		}
		utxos = resp.GetUtxos()
	}
	// BIP30 first, as Core's ConnectBlock checks it before any input.
	if checkBIP30 {
		for i := len(external); i < len(lookup); i++ {
			if utxos[i].GetFound() {
				return rules.New(rules.BIP30, "block %s overwrites unspent output %s", hash, lookup[i])
			}
		}
	}
	for i, op := range external {
		if !utxos[i].GetFound() {
			return rules.New(rules.MissingInputs, "block %s spends %s, which does not exist or is spent", hash, op)
		}
	}

	// Median time past of the block before each spent coin's block (for
	// BIP68 time locks) and of the parent, in one call.
	heightSet := map[int32]struct{}{max(h-1, 0): {}}
	for i := range external {
		heightSet[max(utxos[i].GetHeight()-1, 0)] = struct{}{}
	}
	heights := make([]int32, 0, len(heightSet))
	for ht := range heightSet {
		heights = append(heights, ht)
	}
	cctx, cancel := callCtx(ctx)
	hresp, err := s.headers.GetHeadersByHeight(cctx, &headersv1.GetHeadersByHeightRequest{Heights: heights})
	cancel()
	if err != nil {
		return fmt.Errorf("headers.GetHeadersByHeight for %s: %w", hash, err)
	}
	if len(hresp.GetInfos()) != len(heights) {
		return fmt.Errorf("headers.GetHeadersByHeight answered %d of %d heights", len(hresp.GetInfos()), len(heights))
	}
	mtp := make(map[int32]int64, len(heights))
	for i, info := range hresp.GetInfos() {
		if info.GetHeight() != heights[i] || len(info.GetHash()) == 0 {
			return fmt.Errorf("headers has no active block at height %d", heights[i])
		}
		mtp[heights[i]] = info.GetMedianTimePast()
	}
	parentMTP := mtp[max(h-1, 0)]

	// One MODE_FULL job per non-coinbase transaction.
	var fees, sigops int64
	if len(txs) > 1 {
		locs, err := block.TxLoc()
		if err != nil {
			return fmt.Errorf("connect %s: locate transactions: %w", hash, err)
		}
		jobs := make([]*txvalidatorv1.TxJob, 0, len(txs)-1)
		for i := 1; i < len(txs); i++ {
			prevouts := make([]*txvalidatorv1.Prevout, len(refs[i]))
			for j, ref := range refs[i] {
				if ref.local {
					prevouts[j] = &txvalidatorv1.Prevout{
						Output:         &commonv1.TxOut{Value: ref.out.Value, PkScript: ref.out.PkScript},
						Height:         h,
						Coinbase:       ref.coinbase,
						MedianTimePast: parentMTP,
					}
					continue
				}
				u := utxos[ref.ext]
				prevouts[j] = &txvalidatorv1.Prevout{
					Output:         u.GetOutput(),
					Height:         u.GetHeight(),
					Coinbase:       u.GetCoinbase(),
					MedianTimePast: mtp[max(u.GetHeight()-1, 0)],
				}
			}
			loc := locs[i]
			jobs = append(jobs, &txvalidatorv1.TxJob{Tx: raw[loc.TxStart : loc.TxStart+loc.TxLen], Prevouts: prevouts})
		}
		vresp, err := s.validateTxs(ctx, txs, &txvalidatorv1.ValidateRequest{
			Jobs: jobs,
			Context: &txvalidatorv1.ChainContext{
				Height:         h,
				MedianTimePast: parentMTP,
				BlockTime:      block.MsgBlock().Header.Timestamp.Unix(),
			},
			Mode: txvalidatorv1.Mode_MODE_FULL,
		})
		if err != nil {
			return fmt.Errorf("validate scripts of %s: %w", hash, err)
		}
		for k, r := range vresp.GetResults() {
			tx := txs[k+1]
			if !r.GetValid() {
				rule := r.GetRejection().GetRule()
				if rule == "" {
					rule = string(rules.ScriptFailed)
				}
				return rules.New(rules.Kind(rule), "transaction %s: %s", tx.Hash(), r.GetRejection().GetDetail())
			}
			fees += r.GetFee()
			sigops += r.GetSigopCost()
		}
	}
	cbCost, err := blockchain.GetSigOpCost(txs[0], true, nil, true, s.deps.Network.SegwitActive(h))
	if err != nil {
		return rules.FromBtcd(err)
	}
	if err := checkSigOpCost(sigops + int64(cbCost)); err != nil {
		return err
	}
	if err := checkCoinbaseAmount(txs[0], h, fees, params); err != nil {
		return err
	}

	cctx, cancel = callCtx(ctx)
	_, err = s.utxo.ConnectBlock(cctx, &utxostorev1.ConnectBlockRequest{Block: raw, Height: h})
	cancel()
	if err != nil {
		return fmt.Errorf("utxostore.ConnectBlock %s: %w", hash, err)
	}
	if err := s.setStatus(ctx, hash, headersv1.BlockStatus_BLOCK_STATUS_VALID, ""); err != nil {
		return err
	}
	if err := s.setActiveTip(ctx, hash); err != nil {
		return err
	}
	elapsed := time.Since(start)
	s.connected.Add(1)
	s.metrics.connected.Inc()
	s.metrics.connectSecond.Observe(elapsed.Seconds())
	s.log.Info("block connected", "height", h, "hash", hash.String(), "txs", len(txs),
		"inputs", nInputs, "fees", fees, "duration", elapsed.String())
	return nil
}
