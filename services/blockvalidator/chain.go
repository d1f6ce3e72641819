package blockvalidator

import (
	"bytes"
	"context"
	"errors"
	"fmt"

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
		for _, d := range plan.GetToDisconnect() {
			if err := s.disconnect(ctx, d); err != nil {
				return failures, err
			}
		}
		for _, c := range plan.GetToConnect() {
			hash, err := hashFrom(c.GetHash())
			if err != nil {
				return failures, fmt.Errorf("connect plan: %w", err)
			}
			err = s.connect(ctx, c, cache)
			var re *rules.RuleError
			if errors.As(err, &re) {
				failures[hash] = re
				if err := s.markInvalid(ctx, hash, re); err != nil {
					return failures, err
				}
				break // replan: the index leads back to the best valid chain
			}
			if err != nil {
				return failures, err
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
	if err := s.setActiveTip(ctx, hdr.PrevBlock); err != nil {
		return err
	}
	s.log.Info("block disconnected", "height", d.GetHeight(), "hash", hash.String())
	return nil
}
