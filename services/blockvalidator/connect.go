package blockvalidator

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/btcutil/v2"
	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	headersv1 "github.com/btcmesh/btcmesh/proto/btcmesh/headers/v1"
	utxostorev1 "github.com/btcmesh/btcmesh/proto/btcmesh/utxostore/v1"

	"github.com/btcmesh/btcmesh/internal/blockchanges"
	"github.com/btcmesh/btcmesh/internal/coin"
	"github.com/btcmesh/btcmesh/internal/packed"
	"github.com/btcmesh/btcmesh/internal/rules"
	"github.com/btcmesh/btcmesh/internal/txcheck"
)

// utxoAt is one spent (or BIP30-checked) output as the view answers it.
type utxoAt struct {
	found    bool
	out      wire.TxOut
	height   int32
	coinbase bool
}

// validate checks every rule of connecting c on top of its parent: inputs
// exist and are unspent, BIP30, every transaction (amounts, fees, locks,
// scripts) through the txvalidator pool, sigop cost and the coinbase
// amount. It changes nothing.
//
// The UTXO view is the utxostore's set, seen through ov when c's parent
// is not connected yet (speculation: ov holds the blocks between the
// store's tip and c); ov nil or empty means c's parent is the store's
// tip. Then the store resolves the block's inputs as its connect will
// (PrepareConnect), and prepared reports that it kept that work for
// commit. known gives the median time past of heights the active chain
// may not hold yet. Rule violations come back as *rules.RuleError; any
// other error means a dependency failed (or, with ov, that the
// speculation is void).
func (s *Service) validate(ctx context.Context, c *cand, ov *overlay, known map[int32]int64) (prepared bool, err error) {
	hash, h, block := c.hash, c.height, c.block
	params := s.deps.Network.Params
	txs := block.Transactions()
	tr := s.newTrace()

	checkBIP30 := !bip30Exception(h, hash, params)
	if checkBIP30 && bip30MaySkip(h, params) {
		// The block's parent is (or will be) the active tip: BIP34's
		// activation block is the active chain's block at that height.
		cctx, cancel := callCtx(ctx)
		bresp, err := s.headers.GetHeadersByHeight(cctx, &headersv1.GetHeadersByHeightRequest{Heights: []int32{params.BIP0034Height}})
		cancel()
		if err != nil {
			return false, fmt.Errorf("headers.GetHeadersByHeight for BIP34 activation block: %w", err)
		}
		infos := bresp.GetInfos()
		checkBIP30 = !(len(infos) == 1 && bytes.Equal(infos[0].GetHash(), params.BIP0034Hash[:]))
	}

	// The coin every input spends, in block order.
	var spent []utxoAt
	if ov == nil || ov.empty() {
		if spent, err = s.prepareConnect(ctx, c, checkBIP30); err != nil {
			return false, err
		}
		prepared = true
	} else if spent, err = s.overlayInputs(ctx, hash, h, ov, txs, checkBIP30); err != nil {
		return false, err
	}
	tr.mark("utxos")

	// Median time past of the block before each spent coin's block (for
	// BIP68 time locks) and of the parent.
	heights := map[int32]struct{}{max(h-1, 0): {}}
	for i := range spent {
		heights[max(spent[i].height-1, 0)] = struct{}{}
	}
	mtp, err := s.mediansAt(ctx, heights, known)
	if err != nil {
		return false, fmt.Errorf("median time past for %s: %w", hash, err)
	}
	parentMTP := mtp[max(h-1, 0)]
	tr.mark("mtp")

	// Every input's spent output, in one backing array: what the checks
	// of the non-coinbase transactions need besides the block.
	var fees, sigops int64
	if len(txs) > 1 {
		pv := make([][]txcheck.Prevout, len(txs))
		all := make([]txcheck.Prevout, len(spent))
		for k := range spent {
			u := &spent[k]
			all[k] = txcheck.Prevout{Output: &u.out, Height: u.height, Coinbase: u.coinbase,
				MedianTimePast: mtp[max(u.height-1, 0)]}
		}
		for i := 1; i < len(txs); i++ {
			n := len(txs[i].MsgTx().TxIn)
			pv[i], all = all[:n:n], all[n:]
		}
		cc := txcheck.Context{Height: h, MedianTimePast: parentMTP, BlockTime: block.MsgBlock().Header.Timestamp.Unix()}
		outcomes, err := s.validateTxs(ctx, c, pv, cc)
		if err != nil {
			return false, fmt.Errorf("validate scripts of %s: %w", hash, err)
		}
		for k, o := range outcomes {
			if o.err != nil {
				kind, detail := txcheck.Rejection(o.err)
				return false, rules.New(kind, "transaction %s: %s", txs[k+1].Hash(), detail)
			}
			fees += o.fee
			sigops += o.sigops
		}
	}
	tr.mark("txs")
	cbCost, err := blockchain.GetSigOpCost(txs[0], true, nil, true, s.deps.Network.SegwitActive(h))
	if err != nil {
		return false, rules.FromBtcd(err)
	}
	if err := checkSigOpCost(sigops + int64(cbCost)); err != nil {
		return false, err
	}
	if err := checkCoinbaseAmount(txs[0], h, fees, params); err != nil {
		return false, err
	}
	tr.done(s, "validate", hash, ov != nil)
	return prepared, nil
}

// overlayInputs returns the coin every input of txs (the block at height
// h) spends, in block order: created earlier in the block, or as the store
// and then ov (the blocks ahead of it) answer it. With checkBIP30 it fails
// when an output of txs overwrites an unspent coin (BIP30 is checked
// first, as Core's ConnectBlock checks it before any input).
func (s *Service) overlayInputs(ctx context.Context, hash chainhash.Hash, h int32, ov *overlay, txs []*btcutil.Tx, checkBIP30 bool) ([]utxoAt, error) {
	refs, external, nIn, err := resolveInputs(txs)
	if err != nil {
		return nil, err
	}
	var bip30 []wire.OutPoint
	if checkBIP30 {
		bip30 = bip30Outpoints(txs)
	}
	// One batched lookup of what the overlay does not answer.
	all := append(external[:len(external):len(external)], bip30...)
	found := make([]utxoAt, len(all))
	var ask []int // indexes into all sent to the store
	for i, op := range all {
		if oc, ok := ov.created[op]; ok {
			found[i] = utxoAt{found: true, out: *oc.out, height: oc.height, coinbase: oc.coinbase}
			continue
		}
		if _, ok := ov.spent[op]; ok {
			continue // spent by a block ahead of the one validated
		}
		ask = append(ask, i)
	}
	if err := s.lookupUtxos(ctx, hash, all, ask, found, ov); err != nil {
		return nil, err
	}
	for i := len(external); i < len(all); i++ {
		if found[i].found {
			return nil, rules.New(rules.BIP30, "block %s overwrites unspent output %s", hash, all[i])
		}
	}
	for i, op := range external {
		if !found[i].found {
			return nil, rules.New(rules.MissingInputs, "block %s spends %s, which does not exist or is spent", hash, op)
		}
	}
	spent := make([]utxoAt, 0, nIn)
	for _, tx := range refs[min(1, len(refs)):] {
		for _, ref := range tx {
			if ref.local {
				spent = append(spent, utxoAt{found: true, out: *ref.out, height: h, coinbase: ref.coinbase})
				continue
			}
			spent = append(spent, found[ref.ext])
		}
	}
	return spent, nil
}

// prepareConnect asks the store to resolve c's connect on its tip
// (PrepareConnect, which checks that every input exists and is unspent
// and, with checkBIP30, BIP30) and returns the coin every input of c
// spends, in block order.
func (s *Service) prepareConnect(ctx context.Context, c *cand, checkBIP30 bool) ([]utxoAt, error) {
	cctx, cancel := callCtx(ctx)
	resp, err := s.utxo.PrepareConnect(cctx, &utxostorev1.PrepareConnectRequest{
		Changes: blockchanges.Proto(c.block), Height: c.height, CheckBip30: checkBIP30})
	cancel()
	if err != nil {
		if re, ok := rules.FromStatus(err); ok && (re.Kind == rules.MissingInputs || re.Kind == rules.BIP30) {
			return nil, re
		}
		return nil, fmt.Errorf("utxostore.PrepareConnect %s: %w", c.hash, err)
	}
	txs := c.block.Transactions()
	nIn := 0
	for _, tx := range txs[min(1, len(txs)):] {
		nIn += len(tx.MsgTx().TxIn)
	}
	spent := make([]utxoAt, nIn)
	rest := resp.GetPackedSpent()
	for k := range spent {
		var v []byte
		if v, rest, err = packed.NextRecord(rest); err != nil {
			return nil, fmt.Errorf("utxostore.PrepareConnect %s: coin of input %d of %d: %w", c.hash, k, nIn, err)
		}
		cn, _, err := coin.Decode(v)
		if err != nil {
			return nil, fmt.Errorf("utxostore.PrepareConnect %s: coin of input %d of %d: %w", c.hash, k, nIn, err)
		}
		spent[k] = utxoAt{found: true, out: wire.TxOut{Value: cn.Amount, PkScript: cn.Script},
			height: cn.Height, coinbase: cn.Coinbase}
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("utxostore.PrepareConnect %s: %d bytes after the last input's coin", c.hash, len(rest))
	}
	return spent, nil
}

// commit applies the validated block c to the UTXO set (by naming it when
// validate prepared it, sending its changes otherwise or when the store
// no longer holds the preparation) and makes it this service's tip; the headers index learns it (valid, and the active tip)
// every maxTipLag blocks and when the connect run ends (syncTip). The UTXO
// store's tip is the truth after a crash in between (reconcile).
func (s *Service) commit(ctx context.Context, c *cand, prepared bool, start time.Time) error {
	tr := s.newTrace()
	connect := func(req *utxostorev1.ConnectBlockRequest) error {
		cctx, cancel := callCtx(ctx)
		defer cancel()
		_, err := s.utxo.ConnectBlock(cctx, req)
		return err
	}
	var err error
	if prepared {
		err = connect(&utxostorev1.ConnectBlockRequest{PreparedHash: c.hash[:], Height: c.height})
	}
	if !prepared || status.Code(err) == codes.NotFound {
		err = connect(&utxostorev1.ConnectBlockRequest{Changes: blockchanges.Proto(c.block), Height: c.height})
	}
	if err != nil {
		return fmt.Errorf("utxostore.ConnectBlock %s: %w", c.hash, err)
	}
	tr.mark("utxostore")
	s.setTipLocal(c.hash, c.height)
	if s.tipUnsent++; s.tipUnsent >= maxTipLag {
		if err := s.syncTip(ctx); err != nil {
			return err
		}
	}
	tr.mark("headers")
	tr.done(s, "commit", c.hash, false)
	if c.info != nil {
		s.noteMTP(c.height, c.info.GetMedianTimePast())
	}
	elapsed := time.Since(start)
	s.connected.Add(1)
	s.metrics.connected.Inc()
	s.metrics.connectSecond.Observe(elapsed.Seconds())
	txs := c.block.Transactions()
	inputs := 0
	for _, tx := range txs[1:] {
		inputs += len(tx.MsgTx().TxIn)
	}
	s.log.Info("block connected", "height", c.height, "hash", c.hash.String(), "txs", len(txs),
		"inputs", inputs, "duration", elapsed.String())
	return nil
}

// lookupChunk is how many outpoints one GetUtxos call carries; a block's
// lookups run as several calls at once.
const lookupChunk = 512

// lookupUtxos asks the utxostore for the outpoints all[i] of every i in
// ask, in concurrent calls, filling utxos. With ov, each call's snapshot
// must be a state the overlay completes (a tip in ov.tips): every
// outpoint the overlay does not answer has the same coin in all of them.
func (s *Service) lookupUtxos(ctx context.Context, hash chainhash.Hash, all []wire.OutPoint, ask []int, utxos []utxoAt, ov *overlay) error {
	g, gctx := errgroup.WithContext(ctx)
	for lo := 0; lo < len(ask); lo += lookupChunk {
		part := ask[lo:min(lo+lookupChunk, len(ask))]
		g.Go(func() error {
			req := &utxostorev1.GetUtxosRequest{PackedOutpoints: make([]byte, 0, len(part)*packed.OutPointLen)}
			for _, i := range part {
				req.PackedOutpoints = packed.AppendOutPoint(req.PackedOutpoints, all[i])
			}
			cctx, cancel := callCtx(gctx)
			resp, err := s.utxo.GetUtxos(cctx, req)
			cancel()
			if err != nil {
				return fmt.Errorf("utxostore.GetUtxos for %s: %w", hash, err)
			}
			if ov != nil {
				tip, err := hashFrom(resp.GetTipHash())
				if err != nil {
					return fmt.Errorf("utxostore.GetUtxos tip: %w", err)
				}
				if _, ok := ov.tips[tip]; !ok {
					return fmt.Errorf("%w: utxo snapshot at %s is not on the speculated chain", errSpeculation, tip)
				}
			}
			rest := resp.GetPackedUtxos()
			for k, i := range part {
				var v []byte
				if v, rest, err = packed.NextRecord(rest); err != nil {
					return fmt.Errorf("utxostore.GetUtxos answer %d of %d: %w", k, len(part), err)
				}
				if len(v) == 0 {
					continue
				}
				c, _, err := coin.Decode(v)
				if err != nil {
					return fmt.Errorf("utxostore.GetUtxos answer for %s: %w", all[i], err)
				}
				utxos[i] = utxoAt{found: true, out: wire.TxOut{Value: c.Amount, PkScript: c.Script},
					height: c.Height, coinbase: c.Coinbase}
			}
			if len(rest) != 0 {
				return fmt.Errorf("utxostore.GetUtxos answered more than %d outpoints", len(part))
			}
			return nil
		})
	}
	return g.Wait()
}

// mediansAt returns the median time past of the active chain's blocks at
// heights: from known (blocks of the chain being connected), the cache of
// the active chain, or one headers call for the rest.
func (s *Service) mediansAt(ctx context.Context, heights map[int32]struct{}, known map[int32]int64) (map[int32]int64, error) {
	out := make(map[int32]int64, len(heights))
	var ask []int32
	s.mtpMu.Lock()
	for ht := range heights {
		if v, ok := known[ht]; ok {
			out[ht] = v
			continue
		}
		if int(ht) < len(s.mtpCache) && s.mtpCache[ht] != 0 {
			out[ht] = s.mtpCache[ht]
			continue
		}
		ask = append(ask, ht)
	}
	s.mtpMu.Unlock()
	if len(ask) == 0 {
		return out, nil
	}
	cctx, cancel := callCtx(ctx)
	hresp, err := s.headers.GetHeadersByHeight(cctx, &headersv1.GetHeadersByHeightRequest{Heights: ask})
	cancel()
	if err != nil {
		return nil, fmt.Errorf("headers.GetHeadersByHeight: %w", err)
	}
	if len(hresp.GetInfos()) != len(ask) {
		return nil, fmt.Errorf("headers.GetHeadersByHeight answered %d of %d heights", len(hresp.GetInfos()), len(ask))
	}
	for i, info := range hresp.GetInfos() {
		if info.GetHeight() != ask[i] || len(info.GetHash()) == 0 {
			return nil, fmt.Errorf("headers has no active block at height %d", ask[i])
		}
		out[ask[i]] = info.GetMedianTimePast()
		s.noteMTP(ask[i], info.GetMedianTimePast())
	}
	return out, nil
}

// noteMTP caches the median time past of the active chain's block at
// height.
func (s *Service) noteMTP(height int32, mtp int64) {
	if height < 0 || mtp == 0 {
		return
	}
	s.mtpMu.Lock()
	defer s.mtpMu.Unlock()
	if int(height) >= len(s.mtpCache) {
		s.mtpCache = append(s.mtpCache, make([]int64, int(height)+1-len(s.mtpCache))...)
	}
	s.mtpCache[height] = mtp
}

// forgetMTP drops the cached active-chain blocks from height up (their
// block was disconnected); a negative height drops everything.
func (s *Service) forgetMTP(height int32) {
	s.mtpMu.Lock()
	defer s.mtpMu.Unlock()
	if height < 0 {
		s.mtpCache = nil
		return
	}
	if int(height) < len(s.mtpCache) {
		s.mtpCache = s.mtpCache[:height]
	}
}
