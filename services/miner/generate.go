package miner

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/btcsuite/btcd/address/v2"
	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/btcutil/v2"
	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/txscript/v2"
	"github.com/btcsuite/btcd/wire/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	blockvalidatorv1 "github.com/btcmesh/btcmesh/proto/btcmesh/blockvalidator/v1"

	"github.com/btcmesh/btcmesh/internal/rules"
)

const (
	// defaultMaxTries caps the nonces tried per block in Generate.
	defaultMaxTries = 1_000_000
	// maxCoinbasePkScript bounds the payout script so the coinbase fits
	// in the weight a template keeps back for it.
	maxCoinbasePkScript = 520
	// hashBatch is how many nonces a hashing worker claims at a time.
	hashBatch = 4096
	// tipWait bounds the wait for the headers service to report a block
	// just accepted as the tip, before the next block is built on it.
	tipWait = 10 * time.Second
)

// buildTemplate builds an unsolved block on the active tip paying to pkScript.
func (s *Service) buildTemplate(ctx context.Context, pkScript []byte) (*template, error) {
	if !s.started() {
		return nil, status.Error(codes.Unavailable, "miner is starting")
	}
	params := s.deps.Network.Params
	if !params.PoWNoRetargeting {
		return nil, status.Error(codes.Unimplemented, "mining is only supported on regtest")
	}
	tip, err := s.chainTip(ctx, true)
	if err != nil {
		return nil, err
	}
	height := tip.height + 1
	segwit := s.deps.Network.SegwitActive(height)
	// Without retargeting every block carries its parent's bits, which on
	// regtest are the proof-of-work limit.
	bits := params.PowLimitBits
	if tip.bits != 0 {
		bits = tip.bits
	}

	cb, err := newCoinbase(height, 0, pkScript, 0, segwit)
	if err != nil {
		return nil, err
	}
	cbWeight := weightOf(cb) + 4*(wire.MaxBlockHeaderPayload+wire.MaxVarIntPayload)
	cbSigOps := int64(blockchain.CountSigOps(btcutil.NewTx(cb))) * blockchain.WitnessScaleFactor
	maxWeight := maxBlockWeight - max(coinbaseWeightRes, cbWeight)
	maxSigOps := maxBlockSigOpsCost - max(coinbaseSigOpsRes, cbSigOps)

	s.mu.Lock()
	txs, fees := s.selectLocked(height, tip.mtp, segwit, maxWeight, maxSigOps)
	s.mu.Unlock()

	return assembleBlock(params, tip, bits, segwit, pkScript, s.extraNonce.Add(1), txs, fees, time.Now())
}

// selectLocked picks the template's transactions; call with s.mu held.
// Transactions not final in the new block (and their descendants) and,
// before segwit, witness transactions are left out.
func (s *Service) selectLocked(height int32, mtp int64, segwit bool, maxWeight, maxSigOps int64) ([]*wire.MsgTx, int64) {
	excluded := map[chainhash.Hash]struct{}{}
	lockTime := time.Unix(mtp, 0)
	for h, e := range s.pool.entries {
		if (!segwit && e.tx.HasWitness()) || !blockchain.IsFinalizedTransaction(btcutil.NewTx(e.tx), height, lockTime) {
			for _, d := range s.pool.withDescendants(h) {
				excluded[d] = struct{}{}
			}
		}
	}
	cands := make([]candidate, 0, len(s.pool.entries))
	entries := make([]*entry, 0, len(s.pool.entries))
	for h, e := range s.pool.entries {
		if _, ok := excluded[h]; ok {
			continue
		}
		c := candidate{txid: h, fee: e.fee, weight: e.weight, sigops: e.sigops}
		for p := range e.parents {
			c.parents = append(c.parents, p)
		}
		cands = append(cands, c)
		entries = append(entries, e)
	}
	order := selectTransactions(cands, maxWeight, maxSigOps)
	txs := make([]*wire.MsgTx, len(order))
	var fees int64
	for i, idx := range order {
		txs[i] = entries[idx].tx
		fees += entries[idx].fee
	}
	return txs, fees
}

// generate mines n blocks paying to addr and submits each; it returns the
// hashes of the blocks mined, fewer than n when maxTries ran out.
func (s *Service) generate(ctx context.Context, n int32, addr string, maxTries uint64) ([]chainhash.Hash, error) {
	params := s.deps.Network.Params
	if n < 0 {
		return nil, rules.InvalidArgument("blocks must be >= 0, got %d", n)
	}
	a, err := address.DecodeAddress(addr, params)
	if err != nil {
		return nil, rules.InvalidArgument("invalid address %q: %v", addr, err)
	}
	if !a.IsForNet(params) {
		return nil, rules.InvalidArgument("address %q is not for %s", addr, s.deps.Network.Name)
	}
	pkScript, err := txscript.PayToAddrScript(a)
	if err != nil {
		return nil, rules.InvalidArgument("address %q: %v", addr, err)
	}
	if maxTries == 0 {
		maxTries = defaultMaxTries
	}

	s.genMu.Lock()
	defer s.genMu.Unlock()
	var hashes []chainhash.Hash
	for range n {
		t, err := s.buildTemplate(ctx, pkScript)
		if err != nil {
			return hashes, err
		}
		ok, tries, err := solveBlock(ctx, t.block, t.height, s.cfg.Workers, maxTries, func() uint64 { return s.extraNonce.Add(1) })
		s.metrics.hashes.Add(float64(tries))
		if err != nil {
			return hashes, err
		}
		if !ok {
			s.log.Info("generate stopped: max tries reached", "height", t.height, "tries", tries)
			return hashes, nil
		}
		hash, err := s.submitBlock(ctx, t.block)
		if err != nil {
			return hashes, err
		}
		hashes = append(hashes, hash)
		s.metrics.blocksMined.Inc()
		s.removeBlockTxs(t.block, hash)
		s.log.Info("block mined", "height", t.height, "hash", hash.String(), "txs", len(t.block.Transactions), "fees", t.fees)
		if err := s.waitForTip(ctx, hash); err != nil {
			return hashes, err
		}
	}
	return hashes, nil
}

// submitBlock hands a solved block to the blockvalidator; anything but
// ACCEPTED is an error carrying the reject reason.
func (s *Service) submitBlock(ctx context.Context, block *wire.MsgBlock) (chainhash.Hash, error) {
	hash := block.BlockHash()
	raw, err := serializeBlock(block)
	if err != nil {
		return hash, err
	}
	cctx, cancel := context.WithTimeout(ctx, 2*callTimeout)
	resp, err := s.blocks.SubmitBlock(cctx, &blockvalidatorv1.SubmitBlockRequest{Block: raw})
	cancel()
	if err != nil {
		return hash, fmt.Errorf("submit block %s: %w", hash, err)
	}
	if resp.GetResult() != blockvalidatorv1.SubmitResult_SUBMIT_RESULT_ACCEPTED {
		reason := resp.GetRejectReason()
		if reason == "" {
			return hash, status.Errorf(codes.Aborted, "mined block %s was not accepted: %s", hash, resp.GetResult())
		}
		return hash, rules.New(rules.Kind(reason), "mined block %s was not accepted (%s): %s", hash, resp.GetResult(), resp.GetRejectDetail())
	}
	return hash, nil
}

// waitForTip waits until the headers service reports hash as the tip, so
// the next template builds on it.
func (s *Service) waitForTip(ctx context.Context, hash chainhash.Hash) error {
	deadline := time.Now().Add(tipWait)
	for {
		tip, err := s.chainTip(ctx, true)
		if err != nil {
			return err
		}
		if tip.hash == hash || time.Now().After(deadline) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// solveBlock searches for a header hash at or below the target, with
// workers goroutines, trying at most maxTries nonces. When the 2^32
// nonces of one coinbase are exhausted it sets a new extranonce and goes
// on. It reports whether block was solved (its header then holds the
// nonce) and how many hashes it computed.
func solveBlock(ctx context.Context, block *wire.MsgBlock, height int32, workers int, maxTries uint64, nextExtraNonce func() uint64) (bool, uint64, error) {
	return solveInSpace(ctx, block, height, workers, maxTries, 1<<32, nextExtraNonce)
}

// solveInSpace is solveBlock with a nonce space of space values per
// extranonce (2^32 in a real header; smaller in tests).
func solveInSpace(ctx context.Context, block *wire.MsgBlock, height int32, workers int, maxTries, space uint64, nextExtraNonce func() uint64) (bool, uint64, error) {
	target := targetLE(block.Header.Bits)
	var tries uint64
	for tries < maxTries {
		budget := min(maxTries-tries, space)
		nonce, found, done, err := searchNonces(ctx, &block.Header, &target, workers, budget)
		tries += done
		if err != nil {
			return false, tries, err
		}
		if found {
			block.Header.Nonce = nonce
			return true, tries, nil
		}
		if tries >= maxTries {
			break
		}
		if err := setExtraNonce(block, height, nextExtraNonce()); err != nil {
			return false, tries, err
		}
	}
	return false, tries, nil
}

// searchNonces tries nonces [0, budget) on header (budget <= 2^32), the
// workers claiming batches from a shared counter.
func searchNonces(ctx context.Context, header *wire.BlockHeader, target *[32]byte, workers int, budget uint64) (uint32, bool, uint64, error) {
	var buf bytes.Buffer
	if err := header.Serialize(&buf); err != nil {
		return 0, false, 0, fmt.Errorf("serialize header: %w", err)
	}
	base := buf.Bytes()
	var (
		next   atomic.Uint64
		done   atomic.Uint64
		found  atomic.Bool
		result atomic.Uint32
		wg     sync.WaitGroup
	)
	for range max(workers, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var hdr [wire.MaxBlockHeaderPayload]byte
			copy(hdr[:], base)
			for !found.Load() && ctx.Err() == nil {
				start := next.Add(hashBatch) - hashBatch
				if start >= budget {
					return
				}
				end := min(start+hashBatch, budget)
				for n := start; n < end; n++ {
					binary.LittleEndian.PutUint32(hdr[76:], uint32(n))
					h := chainhash.DoubleHashH(hdr[:])
					if hashMeetsTarget(&h, target) {
						if found.CompareAndSwap(false, true) {
							result.Store(uint32(n))
						}
						done.Add(n - start + 1)
						return
					}
				}
				done.Add(end - start)
			}
		}()
	}
	wg.Wait()
	if found.Load() {
		return result.Load(), true, done.Load(), nil
	}
	return 0, false, done.Load(), ctx.Err()
}

// targetLE is the compact target as a 32-byte little-endian number, the
// byte order of a block hash.
func targetLE(bits uint32) [32]byte {
	be := targetBytes(bits)
	var out [32]byte
	for i := range 32 {
		out[i] = be[31-i]
	}
	return out
}

// hashMeetsTarget compares two little-endian 256-bit numbers: h <= target.
func hashMeetsTarget(h *chainhash.Hash, target *[32]byte) bool {
	for i := 31; i >= 0; i-- {
		if h[i] != target[i] {
			return h[i] < target[i]
		}
	}
	return true
}

// serializeBlock encodes a block with witnesses.
func serializeBlock(block *wire.MsgBlock) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(block.SerializeSize())
	if err := block.Serialize(&buf); err != nil {
		return nil, fmt.Errorf("serialize block: %w", err)
	}
	return buf.Bytes(), nil
}
