package blockvalidator

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/btcutil/v2"
	"github.com/btcsuite/btcd/chainhash/v2"

	blockvalidatorv1 "github.com/btcmesh/btcmesh/proto/btcmesh/blockvalidator/v1"
	headersv1 "github.com/btcmesh/btcmesh/proto/btcmesh/headers/v1"

	"github.com/btcmesh/btcmesh/internal/mutation"
	"github.com/btcmesh/btcmesh/internal/rules"
)

// submit decodes and processes one block, then the orphans it unblocks,
// and reports the outcome for the block. Rule violations are results, not
// errors; an error means the block could not be decoded
// (rules.InvalidArgument) or a dependency failed.
func (s *Service) submit(ctx context.Context, raw []byte, stored bool) (*blockvalidatorv1.SubmitBlockResponse, error) {
	tr := s.newTrace()
	block, err := decodeBlock(raw)
	if err != nil {
		return nil, rules.InvalidArgument("block decode failed: %v", err)
	}
	tr.mark("decode")
	s.mu.Lock()
	defer s.mu.Unlock()
	tr.mark("wait")
	resp, indexed, err := s.process(ctx, block, raw, stored, tr)
	if err != nil {
		return nil, err
	}
	if indexed {
		s.processOrphans(ctx, *block.Hash(), nil)
	}
	s.noteOrphans()
	tip, height := s.tip()
	resp.TipHash = tip[:]
	resp.TipHeight = height
	return resp, nil
}

// reject fills resp as REJECTED by err's rule.
func (s *Service) reject(resp *blockvalidatorv1.SubmitBlockResponse, hash chainhash.Hash, err error) *blockvalidatorv1.SubmitBlockResponse {
	re := asRuleError(err)
	resp.Result = blockvalidatorv1.SubmitResult_SUBMIT_RESULT_REJECTED
	resp.RejectReason = string(re.Kind)
	resp.RejectDetail = re.Detail
	s.metrics.rejected.WithLabelValues(string(re.Kind)).Inc()
	s.log.Info("block rejected", "hash", hash.String(), "rule", string(re.Kind), "detail", re.Detail)
	return resp
}

// asRuleError returns err as a *rules.RuleError, naming unknown errors by
// their text.
func asRuleError(err error) *rules.RuleError {
	var re *rules.RuleError
	if errors.As(rules.FromBtcd(err), &re) {
		return re
	}
	return &rules.RuleError{Kind: rules.Kind(err.Error())}
}

// process runs one block through every step; the caller holds s.mu.
// indexed reports whether the block's header is now in the index (so
// orphans waiting for it can be processed). stored says the block store
// already holds raw. tr times the steps.
func (s *Service) process(ctx context.Context, block *btcutil.Block, raw []byte, stored bool, tr *trace) (*blockvalidatorv1.SubmitBlockResponse, bool, error) {
	defer s.dropSpecs()
	hash := *block.Hash()
	resp, indexed, pending, err := s.prepare(ctx, block, raw, stored, false, nil, tr)
	if err != nil || !pending {
		return resp, indexed, err
	}

	// 6. Move the active chain.
	failures, err := s.activateBestChain(ctx, blockCache{hash: block})
	if err != nil {
		return nil, false, err
	}

	tr.mark("activate")
	tr.done(s, "process", hash, false)
	resp, err = s.outcome(ctx, hash, resp, failures)
	if err != nil {
		return nil, false, err
	}
	return resp, true, nil
}

// prepare runs the steps of one block that come before activating the
// best chain: the duplicate check, sanity, the header, the contextual
// checks and storing it with HAVE_DATA. pending reports that the block is
// stored and its fate is up to activateBestChain (resp is then only
// partly filled: see outcome); otherwise resp is the final answer.
// indexed is as for process. sane says the block already passed the
// context-free sanity checks (the intake runs them ahead, in parallel).
// With a batch, the HAVE_DATA mark is left to the batch (see batchState).
// The caller holds s.mu and, after activating, drops the speculations
// prepare started.
func (s *Service) prepare(ctx context.Context, block *btcutil.Block, raw []byte, stored, sane bool, b *batchState, tr *trace) (resp *blockvalidatorv1.SubmitBlockResponse, indexed, pending bool, err error) {
	resp, indexed, err = s.prepareSteps(ctx, block, raw, stored, sane, b, tr)
	if err == nil && resp == nil {
		return &blockvalidatorv1.SubmitBlockResponse{Hash: block.Hash()[:]}, true, true, nil
	}
	s.dropSpec(*block.Hash()) // the block goes no further
	if err != nil {
		return nil, false, false, err
	}
	return resp, indexed, false, nil
}

// prepareSteps is prepare's body: a nil resp (and nil error) means the
// block is stored and awaits activation.
func (s *Service) prepareSteps(ctx context.Context, block *btcutil.Block, raw []byte, stored, sane bool, b *batchState, tr *trace) (*blockvalidatorv1.SubmitBlockResponse, bool, error) {
	hash := *block.Hash()
	resp := &blockvalidatorv1.SubmitBlockResponse{Hash: hash[:]}

	// A block that extends the active tip and whose transactions the
	// mempool validated is validated against the UTXO set from here on,
	// while the steps below run (see startSpec), the first of them
	// included: its verdict counts only if they all pass, and prepare
	// cancels it otherwise (a block already known is answered and
	// dropped). Its proof of work is checked first, and nothing it asks
	// for runs scripts.
	prev := block.MsgBlock().Header.PrevBlock
	if tip, tipHeight := s.tip(); tip == prev && s.mempoolValidated(block, tipHeight+1) {
		s.startSpec(ctx, loadedCand(hash, tipHeight+1, block, raw), tip, nil, nil)
	}

	// 1. Already known? The parent's entry, which the contextual checks
	// need, is looked up meanwhile (over gRPC, one round trip fewer on
	// the block's path).
	parentCh := make(chan headerLookup, 1)
	go func() {
		info, ok, err := s.getHeader(ctx, prev)
		parentCh <- headerLookup{info, ok, err}
	}()
	known, found, err := s.getHeader(ctx, hash)
	if err != nil {
		return nil, false, err
	}
	if found {
		switch {
		case known.GetStatus() == headersv1.BlockStatus_BLOCK_STATUS_INVALID:
			resp.Result = blockvalidatorv1.SubmitResult_SUBMIT_RESULT_DUPLICATE_INVALID
			resp.RejectReason = known.GetInvalidReason()
			return resp, true, nil
		case known.GetStatus() == headersv1.BlockStatus_BLOCK_STATUS_VALID || known.GetOnActiveChain(),
			known.GetStatus() == headersv1.BlockStatus_BLOCK_STATUS_HAVE_DATA:
			resp.Result = blockvalidatorv1.SubmitResult_SUBMIT_RESULT_DUPLICATE
			return resp, true, nil
		}
		// Header only (headers-first sync): validate the block.
	}
	if s.orphans.has(hash) {
		resp.Result = blockvalidatorv1.SubmitResult_SUBMIT_RESULT_ORPHAN
		return resp, false, nil
	}

	// 2. Context-free sanity. A failure here does not mark the header
	// invalid: the transactions may have been mutated by a relayer while
	// the header is fine.
	if !sane {
		if err := s.checkSanity(block); err != nil {
			if mutation.Is(asRuleError(err).Kind) {
				if err := s.dropMutated(ctx, hash, stored); err != nil {
					return nil, false, err
				}
			}
			return s.reject(resp, hash, err), found, nil
		}
	}

	tr.mark("sanity")
	// A block speculated on from the start (it extends the tip and its
	// proof of work holds) is, having passed sanity, the block its hash
	// names: it is stored while its header and contextual checks run.
	// Should they fail, the block stays stored, unused, as a block that
	// fails to connect does; its proof of work is what that costs.
	// Its witnesses are checked first (the header commits to them only
	// through the coinbase): bytes kept under a hash must be the block
	// the hash names (see package mutation). A block failing that is
	// not stored here; the contextual checks reject it as mutated.
	var putDone chan error
	witnessChecked, witnessHeight := false, int32(-1)
	if sp, early := s.specs[hash]; early && !stored &&
		mutation.CheckWitness(block, s.deps.Network.SegwitActive(sp.c.height)) == nil {
		witnessChecked, witnessHeight = true, sp.c.height
		putDone = make(chan error, 1)
		go func() { putDone <- s.store.Put(ctx, hash, raw) }()
		defer func() {
			if putDone != nil {
				<-putDone
			}
		}()
	}

	// 3. The header.
	var hdr bytes.Buffer
	if err := block.MsgBlock().Header.Serialize(&hdr); err != nil {
		return nil, false, fmt.Errorf("serialize header %s: %w", hash, err)
	}
	cctx, cancel := callCtx(ctx)
	hresp, err := s.headers.SubmitHeaders(cctx, &headersv1.SubmitHeadersRequest{Headers: [][]byte{hdr.Bytes()}})
	cancel()
	if err != nil {
		if re, ok := rules.FromStatus(err); ok {
			return s.reject(resp, hash, re), false, nil
		}
		return nil, false, fmt.Errorf("headers.SubmitHeaders %s: %w", hash, err)
	}
	if hresp.GetOrphan() {
		o := &orphan{hash: hash, parent: prev, block: block, raw: raw, stored: stored}
		for _, ev := range s.orphans.add(o) {
			s.log.Info("orphan block evicted", "hash", ev.String())
		}
		s.noteOrphans()
		s.log.Info("orphan block held", "hash", hash.String(), "parent", o.parent.String(), "orphans", s.orphans.len())
		resp.Result = blockvalidatorv1.SubmitResult_SUBMIT_RESULT_ORPHAN
		return resp, false, nil
	}
	if rule := hresp.GetRejectRule(); rule != "" {
		return s.reject(resp, hash, &rules.RuleError{Kind: rules.Kind(rule), Detail: hresp.GetRejectDetail()}), false, nil
	}
	if len(hresp.GetResults()) == 0 {
		return nil, false, fmt.Errorf("headers.SubmitHeaders %s: no result and no rejection", hash)
	}
	info := hresp.GetResults()[0]
	if info.GetStatus() == headersv1.BlockStatus_BLOCK_STATUS_INVALID {
		reason := info.GetInvalidReason()
		if reason == "" {
			reason = string(rules.BadPrevBlock)
		}
		return s.reject(resp, hash, &rules.RuleError{Kind: rules.Kind(reason), Detail: "block or an ancestor is invalid"}), true, nil
	}
	height := info.GetHeight()
	pl := <-parentCh
	if pl.err == nil && !pl.found {
		// Unknown before SubmitHeaders, so indexed since (by p2p's
		// headers-first sync): ask again.
		pl.info, pl.found, pl.err = s.getHeader(ctx, prev)
	}
	parent, ok, err := pl.info, pl.found, pl.err
	if err != nil {
		return nil, false, err
	}
	if !ok {
		return nil, false, fmt.Errorf("parent of %s vanished from the index", hash)
	}

	tr.mark("header")
	// When the block extends the active tip, validate it against the
	// UTXO set now (unless it started above), while the contextual checks
	// run, it is stored and the connect plan is asked for (the plan will
	// most likely connect it). A failure below cancels it.
	tip, _ := s.tip()
	if _, started := s.specs[hash]; !started && tip == prev {
		c := loadedCand(hash, height, block, raw)
		s.startSpec(ctx, c, tip, nil, map[int32]int64{height - 1: parent.GetMedianTimePast()})
	}

	// 4. Checks that need the height and parent but no UTXOs. A block
	// whose witnesses are not those its hash commits to is rejected
	// without marking the hash invalid, and a copy stored before is
	// dropped, so that the real block can still arrive (Core's
	// BLOCK_MUTATED).
	err = checkContextual(block, height, parent.GetMedianTimePast(), s.deps.Network, witnessChecked && witnessHeight == height)
	if err != nil {
		s.dropSpec(hash)
		re := asRuleError(err)
		if mutation.Is(re.Kind) {
			if err := s.dropMutated(ctx, hash, stored); err != nil {
				return nil, false, err
			}
			return s.reject(resp, hash, re), true, nil
		}
		if err := s.setStatus(ctx, hash, headersv1.BlockStatus_BLOCK_STATUS_INVALID, string(re.Kind)); err != nil {
			return nil, false, err
		}
		return s.reject(resp, hash, re), true, nil
	}

	tr.mark("contextual")
	// 5. Store it (or wait until it is stored).
	switch {
	case putDone != nil:
		err := <-putDone
		putDone = nil
		if err != nil {
			return nil, false, err
		}
	case !stored:
		if err := s.store.Put(ctx, hash, raw); err != nil {
			return nil, false, err
		}
	}
	tr.mark("put")
	if b != nil {
		b.haveData = append(b.haveData, hash)
	} else if err := s.setStatus(ctx, hash, headersv1.BlockStatus_BLOCK_STATUS_HAVE_DATA, ""); err != nil {
		return nil, false, err
	}

	tr.mark("store")
	return nil, true, nil
}

// dropMutated deletes the copy of the block hash from the block store
// when stored says one was there: it failed a mutation rule, so it is not
// the block its hash names, and the real block must find the name free.
func (s *Service) dropMutated(ctx context.Context, hash chainhash.Hash, stored bool) error {
	if !stored {
		return nil
	}
	return s.store.Delete(ctx, hash)
}

// mempoolValidated reports whether block, at height, may be speculated
// on before its header and sanity are checked: its proof of work holds
// and the script cache covers every transaction but the coinbase (so the
// speculation runs no script).
func (s *Service) mempoolValidated(block *btcutil.Block, height int32) bool {
	if blockchain.CheckProofOfWork(block, s.deps.Network.Params.PowLimit) != nil {
		return false
	}
	txs := block.Transactions()
	for _, tx := range txs[min(1, len(txs)):] {
		if !s.scripts.covers(*tx.WitnessHash(), height) {
			return false
		}
	}
	return len(txs) > 1
}

// headerLookup is getHeader's answer, passed from a goroutine.
type headerLookup struct {
	info  *headersv1.HeaderInfo
	found bool
	err   error
}

// checkSanity runs the context-free block checks (btcd's CheckBlockSanity:
// proof of work, merkle root, sizes, transaction sanity, timestamp).
func (s *Service) checkSanity(block *btcutil.Block) error {
	return blockchain.CheckBlockSanity(block, s.deps.Network.Params.PowLimit, s.timeSource)
}

// outcome fills resp with where the block hash, stored by prepare, ended
// up after activateBestChain returned failures (step 7).
func (s *Service) outcome(ctx context.Context, hash chainhash.Hash, resp *blockvalidatorv1.SubmitBlockResponse, failures map[chainhash.Hash]*rules.RuleError) (*blockvalidatorv1.SubmitBlockResponse, error) {
	// The active tip needs no question.
	if tip, _ := s.tip(); tip == hash {
		resp.Result = blockvalidatorv1.SubmitResult_SUBMIT_RESULT_ACCEPTED
		return resp, nil
	}
	after, found, err := s.getHeader(ctx, hash)
	if err != nil {
		return nil, err
	}
	switch {
	case !found:
		return nil, fmt.Errorf("block %s vanished from the index", hash)
	case after.GetOnActiveChain():
		resp.Result = blockvalidatorv1.SubmitResult_SUBMIT_RESULT_ACCEPTED
	case after.GetStatus() == headersv1.BlockStatus_BLOCK_STATUS_INVALID:
		resp.Result = blockvalidatorv1.SubmitResult_SUBMIT_RESULT_REJECTED
		if re, ok := failures[hash]; ok {
			resp.RejectReason, resp.RejectDetail = string(re.Kind), re.Detail
		} else if anc, re, err := s.failedAncestor(ctx, after, failures); err != nil {
			return nil, err
		} else if re != nil {
			// An ancestor connected in this call broke a rule (the block
			// was not known invalid when it arrived): report that rule,
			// as btcd's ProcessBlock and Core's log do.
			resp.RejectReason = string(re.Kind)
			resp.RejectDetail = fmt.Sprintf("ancestor %s: %s", anc, re.Detail)
		} else {
			// An ancestor broke the rule; the index names it.
			resp.RejectReason = after.GetInvalidReason()
		}
	default:
		resp.Result = blockvalidatorv1.SubmitResult_SUBMIT_RESULT_SIDE_CHAIN
	}
	return resp, nil
}

// processOrphans processes, recursively, the orphans whose parent became
// known; the caller holds s.mu. With batch non-nil (batched intake) the
// orphans are only prepared and those awaiting activation are added to
// batch: the caller activates the best chain once for all of them.
func (s *Service) processOrphans(ctx context.Context, parent chainhash.Hash, batch *batchState) {
	queue := []chainhash.Hash{parent}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, o := range s.orphans.takeChildren(p) {
			var resp *blockvalidatorv1.SubmitBlockResponse
			var indexed bool
			var err error
			if batch != nil {
				var pending bool
				resp, indexed, pending, err = s.prepare(ctx, o.block, o.raw, o.stored, false, batch, s.newTrace())
				if err == nil && pending {
					batch.cache[o.hash] = o.block
				}
			} else {
				resp, indexed, err = s.process(ctx, o.block, o.raw, o.stored, s.newTrace())
			}
			if err != nil {
				s.log.Error("orphan processing failed", "hash", o.hash.String(), "err", err)
				s.orphans.add(o) // keep it for the next try
				continue
			}
			s.log.Info("orphan block processed", "hash", o.hash.String(), "result", resp.GetResult().String(),
				"reason", resp.GetRejectReason())
			if indexed {
				queue = append(queue, o.hash)
			}
		}
	}
}

// failedAncestor walks back from an invalid block through its invalid
// ancestors to the one whose rule violation is recorded in failures (the
// blocks marked invalid while activating the chain in this call). It
// returns a nil rule when none of them is.
func (s *Service) failedAncestor(ctx context.Context, info *headersv1.HeaderInfo, failures map[chainhash.Hash]*rules.RuleError) (chainhash.Hash, *rules.RuleError, error) {
	if len(failures) == 0 {
		return chainhash.Hash{}, nil, nil
	}
	for info.GetStatus() == headersv1.BlockStatus_BLOCK_STATUS_INVALID && len(info.GetHeader()) >= 36 {
		var parent chainhash.Hash
		copy(parent[:], info.GetHeader()[4:36])
		if re, ok := failures[parent]; ok {
			return parent, re, nil
		}
		next, found, err := s.getHeader(ctx, parent)
		if err != nil || !found {
			return chainhash.Hash{}, nil, err
		}
		info = next
	}
	return chainhash.Hash{}, nil, nil
}
