package blockvalidator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/btcsuite/btcd/btcutil/v2"
	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	headersv1 "github.com/btcmesh/btcmesh/proto/btcmesh/headers/v1"
	utxostorev1 "github.com/btcmesh/btcmesh/proto/btcmesh/utxostore/v1"

	"github.com/btcmesh/btcmesh/internal/rules"
)

// blockCache holds blocks already decoded during one processing step, so
// that a just-submitted block is not read back from the store.
type blockCache map[chainhash.Hash]*btcutil.Block

// callCtx bounds one call to another service.
func callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, rpcTimeout)
}

// hashFrom converts 32 raw bytes from a proto into a hash.
func hashFrom(b []byte) (chainhash.Hash, error) {
	var h chainhash.Hash
	if len(b) != chainhash.HashSize {
		return h, fmt.Errorf("hash has %d bytes, want %d", len(b), chainhash.HashSize)
	}
	copy(h[:], b)
	return h, nil
}

// getHeader looks a block up in the index; found is false when the index
// does not know it.
func (s *Service) getHeader(ctx context.Context, hash chainhash.Hash) (*headersv1.HeaderInfo, bool, error) {
	cctx, cancel := callCtx(ctx)
	defer cancel()
	resp, err := s.headers.GetHeader(cctx, &headersv1.GetHeaderRequest{Hash: hash[:]})
	if status.Code(err) == codes.NotFound {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("headers.GetHeader %s: %w", hash, err)
	}
	if resp.GetInfo() == nil || len(resp.GetInfo().GetHash()) == 0 {
		return nil, false, nil
	}
	return resp.GetInfo(), true, nil
}

// setStatus records a block's validation status in the index.
func (s *Service) setStatus(ctx context.Context, hash chainhash.Hash, st headersv1.BlockStatus, reason string) error {
	cctx, cancel := callCtx(ctx)
	defer cancel()
	_, err := s.headers.SetBlockStatus(cctx, &headersv1.SetBlockStatusRequest{Hash: hash[:], Status: st, Reason: reason})
	if err != nil {
		return fmt.Errorf("headers.SetBlockStatus %s %s: %w", hash, st, err)
	}
	return nil
}

// setActiveTip tells the index which block the UTXO set reflects.
func (s *Service) setActiveTip(ctx context.Context, hash chainhash.Hash) error {
	cctx, cancel := callCtx(ctx)
	defer cancel()
	resp, err := s.headers.SetActiveTip(cctx, &headersv1.SetActiveTipRequest{Hash: hash[:]})
	if err != nil {
		return fmt.Errorf("headers.SetActiveTip %s: %w", hash, err)
	}
	s.setTip(resp.GetTip())
	return nil
}

// setActiveTipValid records a connected block as fully valid and as the
// active tip in one call (SetActiveTip with mark_valid); a headers service
// that predates mark_valid gets the SetBlockStatus call as well.
func (s *Service) setActiveTipValid(ctx context.Context, hash chainhash.Hash) error {
	cctx, cancel := callCtx(ctx)
	defer cancel()
	resp, err := s.headers.SetActiveTip(cctx, &headersv1.SetActiveTipRequest{Hash: hash[:], MarkValid: true})
	if err != nil {
		return fmt.Errorf("headers.SetActiveTip %s: %w", hash, err)
	}
	if resp.GetTip().GetStatus() != headersv1.BlockStatus_BLOCK_STATUS_VALID {
		if err := s.setStatus(ctx, hash, headersv1.BlockStatus_BLOCK_STATUS_VALID, ""); err != nil {
			return err
		}
	}
	s.setTip(resp.GetTip())
	return nil
}

// maxTipLag is how many connected blocks the headers index may not know
// yet while a connect run goes on.
const maxTipLag = 16

// syncTip tells the headers index this service's tip, valid, if blocks
// were connected since it last did (see commit); the caller holds s.mu.
func (s *Service) syncTip(ctx context.Context) error {
	if s.tipUnsent == 0 {
		return nil
	}
	hash, _ := s.tip()
	if err := s.setActiveTipValid(ctx, hash); err != nil {
		return err
	}
	s.tipUnsent = 0
	return nil
}

// markInvalid records that a block broke a rule.
func (s *Service) markInvalid(ctx context.Context, hash chainhash.Hash, re *rules.RuleError) error {
	s.metrics.rejected.WithLabelValues(string(re.Kind)).Inc()
	s.log.Info("block invalid", "hash", hash.String(), "rule", string(re.Kind), "detail", re.Detail)
	return s.setStatus(ctx, hash, headersv1.BlockStatus_BLOCK_STATUS_INVALID, string(re.Kind))
}

// loadBlock returns a block from the cache or the block store.
func (s *Service) loadBlock(ctx context.Context, hash chainhash.Hash, cache blockCache) (*btcutil.Block, error) {
	if b, ok := cache[hash]; ok {
		return b, nil
	}
	raw, err := s.store.Get(ctx, hash)
	if err != nil {
		return nil, err
	}
	b, err := decodeBlock(raw)
	if err != nil {
		return nil, fmt.Errorf("stored block %s: %w", hash, err)
	}
	return b, nil
}

// reconcile makes the header index agree with the UTXO set, whose tip is
// the truth after a crash between ConnectBlock and SetActiveTip. An empty
// UTXO set gets the genesis block first.
func (s *Service) reconcile(ctx context.Context, genesisRaw []byte) error {
	cctx, cancel := callCtx(ctx)
	tipResp, err := s.utxo.GetTip(cctx, &utxostorev1.GetTipRequest{})
	cancel()
	if err != nil {
		return fmt.Errorf("utxostore.GetTip: %w", err)
	}
	genesisHash := *s.deps.Network.Params.GenesisHash
	var tip chainhash.Hash
	if len(tipResp.GetTipHash()) == chainhash.HashSize {
		copy(tip[:], tipResp.GetTipHash())
	}
	if tipResp.GetTipHeight() < 0 || tip == (chainhash.Hash{}) {
		cctx, cancel := callCtx(ctx)
		_, err := s.utxo.ConnectBlock(cctx, &utxostorev1.ConnectBlockRequest{Block: genesisRaw, Height: 0})
		cancel()
		if err != nil {
			return fmt.Errorf("connect genesis block to utxostore: %w", err)
		}
		tip = genesisHash
		s.log.Info("genesis block connected", "hash", tip.String())
	}
	s.forgetMTP(-1)
	info, found, err := s.getHeader(ctx, tip)
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("utxostore tip %s is unknown to the headers service", tip)
	}
	// The UTXO set only ever holds fully validated blocks, so its tip is
	// valid even if the crash came before SetBlockStatus(VALID).
	if info.GetStatus() != headersv1.BlockStatus_BLOCK_STATUS_VALID {
		if err := s.setStatus(ctx, tip, headersv1.BlockStatus_BLOCK_STATUS_VALID, ""); err != nil {
			return err
		}
	}
	if err := s.setActiveTip(ctx, tip); err != nil {
		return err
	}
	s.log.Info("chain reconciled", "tip", tip.String(), "height", info.GetHeight())
	return nil
}

// activateBestChain moves the active chain to the most-work chain whose
// blocks are stored and not invalid, disconnecting and connecting blocks
// in the order the headers service plans. A block that breaks a rule is
// marked invalid and the plan is asked for again. It returns the rule
// each block marked invalid broke.
//
// Connecting is pipelined: while one block connects, the next ones are
// validated speculatively on top of it (see startSpec); a speculation
// that fails in any way is discarded and its block validated again on the
// sequential path, which alone decides that a block is invalid.
func (s *Service) activateBestChain(ctx context.Context, cache blockCache) (map[chainhash.Hash]*rules.RuleError, error) {
	failures := make(map[chainhash.Hash]*rules.RuleError)
	var lastTip chainhash.Hash
	stalled := 0
	for {
		if err := ctx.Err(); err != nil {
			return failures, err
		}
		cctx, cancel := callCtx(ctx)
		plan, err := s.headers.GetConnectPlan(cctx, &headersv1.GetConnectPlanRequest{MaxConnect: planMaxConnect})
		cancel()
		if err != nil {
			return failures, fmt.Errorf("headers.GetConnectPlan: %w", err)
		}
		if len(plan.GetToDisconnect()) == 0 && len(plan.GetToConnect()) == 0 {
			return failures, nil
		}
		invalidBefore := len(failures)
		if len(plan.GetToDisconnect()) > 0 {
			s.dropSpecs() // they assumed the chain being disconnected
		}
		for _, d := range plan.GetToDisconnect() {
			if err := s.disconnect(ctx, d); err != nil {
				return failures, err
			}
		}
		done, err := s.connectAll(ctx, plan.GetToConnect(), cache, failures)
		if err != nil {
			return failures, err
		}
		// The plan named the best candidate: once all of it connected
		// (and it was not cut short) there is nothing left to do.
		if done && len(plan.GetToConnect()) < planMaxConnect && len(failures) == invalidBefore {
			if tip, _ := s.tip(); bytes.Equal(tip[:], plan.GetTarget().GetHash()) {
				return failures, nil
			}
		}
		// Guard against a plan that never changes (an index bug would
		// otherwise spin here forever).
		tip, _ := s.tip()
		if tip == lastTip && len(failures) == invalidBefore {
			stalled++
			if stalled >= 3 {
				return failures, fmt.Errorf("connect plan makes no progress at tip %s", tip)
			}
		} else {
			stalled = 0
		}
		lastTip = tip
	}
}

// connectAll connects the plan's blocks in order, validating up to
// lookahead blocks ahead speculatively. It stops at the first block that
// breaks a rule (recorded in failures and marked invalid); done reports
// that every block connected. The headers index knows the tip when it
// returns.
func (s *Service) connectAll(ctx context.Context, infos []*headersv1.HeaderInfo, cache blockCache, failures map[chainhash.Hash]*rules.RuleError) (bool, error) {
	done, err := s.connectRun(ctx, infos, cache, failures)
	if serr := s.syncTip(ctx); err == nil {
		err = serr
	}
	return done, err
}

// connectRun is connectAll's body.
func (s *Service) connectRun(ctx context.Context, infos []*headersv1.HeaderInfo, cache blockCache, failures map[chainhash.Hash]*rules.RuleError) (bool, error) {
	defer s.dropSpecs()
	cands := make([]*cand, 0, len(infos))
	// known: median time past of the plan's blocks, ancestors of the
	// blocks after them.
	known := make(map[int32]int64, len(infos))
	load := func(j int) error {
		for len(cands) <= j {
			c, err := s.loadCand(ctx, infos[len(cands)], cache)
			if err != nil {
				return err
			}
			cands = append(cands, c)
		}
		return nil
	}
	for i := range infos {
		start := time.Now()
		if err := load(min(i+lookahead, len(infos)-1)); err != nil {
			return false, err
		}
		c := cands[i]
		base, _ := s.tip()
		// Launch the speculations of this block (unless one runs, e.g.
		// started when the block arrived) and of the next ones on top of
		// it.
		for j := i; j <= min(i+lookahead, len(infos)-1); j++ {
			if _, ok := s.specs[cands[j].hash]; ok {
				continue
			}
			kn := make(map[int32]int64, j-i)
			for k := i; k < j; k++ {
				kn[cands[k].height] = cands[k].info.GetMedianTimePast()
			}
			for ht, v := range known {
				kn[ht] = v
			}
			s.startSpec(ctx, cands[j], base, cands[i:j], kn)
		}
		sp := s.specs[c.hash]
		verdict := sp.result(ctx)
		prepared := verdict == nil && sp.prepared
		sp.cancel()
		delete(s.specs, c.hash)
		if err := ctx.Err(); err != nil {
			return false, err
		}
		if verdict != nil {
			// Sequential path: later speculations built on this block's
			// view are void too.
			s.dropSpecs()
			if err := c.wait(ctx); err != nil {
				return false, err
			}
			var err error
			prepared, err = s.validate(ctx, c, nil, known)
			var re *rules.RuleError
			if errors.As(err, &re) {
				failures[c.hash] = re
				if err := s.markInvalid(ctx, c.hash, re); err != nil {
					return false, err
				}
				return false, nil // replan: the index leads back to the best valid chain
			}
			if err != nil {
				return false, err
			}
		}
		if err := s.commit(ctx, c, prepared, start); err != nil {
			return false, err
		}
		known[c.height] = c.info.GetMedianTimePast()
	}
	return true, nil
}

// disconnect undoes the active tip block d.
func (s *Service) disconnect(ctx context.Context, d *headersv1.HeaderInfo) error {
	hash, err := hashFrom(d.GetHash())
	if err != nil {
		return fmt.Errorf("disconnect plan: %w", err)
	}
	raw, err := s.store.Get(ctx, hash)
	if err != nil {
		return fmt.Errorf("disconnect %s: %w", hash, err)
	}
	var hdr wire.BlockHeader
	if err := hdr.Deserialize(bytes.NewReader(raw)); err != nil {
		return fmt.Errorf("disconnect %s: decode header: %w", hash, err)
	}
	cctx, cancel := callCtx(ctx)
	_, err = s.utxo.DisconnectBlock(cctx, &utxostorev1.DisconnectBlockRequest{Block: raw})
	cancel()
	if err != nil {
		return fmt.Errorf("utxostore.DisconnectBlock %s: %w", hash, err)
	}
	s.forgetMTP(d.GetHeight())
	if err := s.setActiveTip(ctx, hdr.PrevBlock); err != nil {
		return err
	}
	s.log.Info("block disconnected", "height", d.GetHeight(), "hash", hash.String())
	return nil
}
