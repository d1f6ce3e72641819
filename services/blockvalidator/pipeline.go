package blockvalidator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/btcsuite/btcd/btcutil/v2"
	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/txscript/v2"
	"github.com/btcsuite/btcd/wire/v2"

	headersv1 "github.com/btcmesh/btcmesh/proto/btcmesh/headers/v1"
)

// lookahead is how many blocks after the one being connected are
// validated speculatively while it connects.
const lookahead = 2

// errSpeculation voids a speculative validation; the block is then
// validated again on the sequential path.
var errSpeculation = errors.New("speculation void")

// cand is one block to validate and connect, loaded in the background.
type cand struct {
	info   *headersv1.HeaderInfo // the plan's entry (nil for a block validated ahead of its plan)
	hash   chainhash.Hash
	height int32

	loaded chan struct{} // closed once block, raw and err are set
	block  *btcutil.Block
	raw    []byte
	err    error
}

// loadedCand wraps a block already decoded.
func loadedCand(hash chainhash.Hash, height int32, block *btcutil.Block, raw []byte) *cand {
	c := &cand{hash: hash, height: height, loaded: make(chan struct{}), block: block, raw: raw}
	close(c.loaded)
	return c
}

// loadCand starts loading the plan entry info's block (from cache when
// there).
func (s *Service) loadCand(ctx context.Context, info *headersv1.HeaderInfo, cache blockCache) (*cand, error) {
	hash, err := hashFrom(info.GetHash())
	if err != nil {
		return nil, fmt.Errorf("connect plan: %w", err)
	}
	c := &cand{info: info, hash: hash, height: info.GetHeight(), loaded: make(chan struct{})}
	if b, ok := cache[hash]; ok {
		c.block = b
		c.raw, c.err = b.Bytes()
		close(c.loaded)
		return c, nil
	}
	go func() {
		defer close(c.loaded)
		c.block, c.err = s.loadBlock(ctx, hash, nil)
		if c.err == nil {
			c.raw, c.err = c.block.Bytes()
		}
		if c.err != nil {
			c.err = fmt.Errorf("connect %s: %w", hash, c.err)
		}
	}()
	return c, nil
}

// wait blocks until c is loaded.
func (c *cand) wait(ctx context.Context) error {
	select {
	case <-c.loaded:
		return c.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// overlayCoin is an output created by a block ahead of the one validated.
type overlayCoin struct {
	out      *wire.TxOut
	height   int32
	coinbase bool
}

// overlay is the UTXO changes of blocks not yet connected (in chain
// order) between the utxostore's tip and a speculatively validated block.
type overlay struct {
	created map[wire.OutPoint]overlayCoin
	spent   map[wire.OutPoint]struct{}
	// tips are the utxostore tips a lookup may see: the base and every
	// pending block (they may connect while the lookup runs).
	tips map[chainhash.Hash]struct{}
}

// newOverlay applies pending (in chain order, loaded) on top of base.
func newOverlay(base chainhash.Hash, pending []*cand) *overlay {
	ov := &overlay{
		created: make(map[wire.OutPoint]overlayCoin),
		spent:   make(map[wire.OutPoint]struct{}),
		tips:    map[chainhash.Hash]struct{}{base: {}},
	}
	for _, c := range pending {
		ov.tips[c.hash] = struct{}{}
		for i, tx := range c.block.Transactions() {
			msg := tx.MsgTx()
			if i > 0 {
				for _, in := range msg.TxIn {
					delete(ov.created, in.PreviousOutPoint)
					ov.spent[in.PreviousOutPoint] = struct{}{}
				}
			}
			txid := *tx.Hash()
			for k, out := range msg.TxOut {
				op := wire.OutPoint{Hash: txid, Index: uint32(k)}
				if txscript.IsUnspendable(out.PkScript) {
					// The utxostore never holds it: spending it fails.
					delete(ov.created, op)
					ov.spent[op] = struct{}{}
					continue
				}
				delete(ov.spent, op)
				ov.created[op] = overlayCoin{out: out, height: c.height, coinbase: i == 0}
			}
		}
	}
	return ov
}

// empty reports that ov holds no block: the store's tip is the parent of
// the block validated through it.
func (ov *overlay) empty() bool { return len(ov.tips) == 1 }

// spec is a speculative validation of one block running in the background.
type spec struct {
	c      *cand
	cancel context.CancelFunc
	done   chan struct{}
	err    error // nil: every rule holds on top of the block's parent
	// prepared says the utxostore resolved the block's connect (see
	// validate).
	prepared bool
}

// startSpec validates c in the background on top of base (the
// utxostore's tip) and pending, the blocks between base and c, which
// must be c's ancestors in chain order. known gives the median time past
// of heights the active chain does not hold yet. The caller holds s.mu.
func (s *Service) startSpec(ctx context.Context, c *cand, base chainhash.Hash, pending []*cand, known map[int32]int64) *spec {
	sctx, cancel := context.WithCancel(ctx)
	sp := &spec{c: c, cancel: cancel, done: make(chan struct{})}
	pending = append([]*cand(nil), pending...)
	go func() {
		defer close(sp.done)
		if err := c.wait(sctx); err != nil {
			sp.err = err
			return
		}
		for _, p := range pending {
			if err := p.wait(sctx); err != nil {
				sp.err = err
				return
			}
		}
		sp.prepared, sp.err = s.validate(sctx, c, newOverlay(base, pending), known)
	}()
	s.specs[c.hash] = sp
	return sp
}

// result waits for sp and returns its verdict.
func (sp *spec) result(ctx context.Context) error {
	select {
	case <-sp.done:
		return sp.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// dropSpecs cancels every speculative validation and waits for them to
// stop; the caller holds s.mu.
func (s *Service) dropSpecs() {
	for h, sp := range s.specs {
		sp.cancel()
		<-sp.done
		delete(s.specs, h)
	}
}

// dropSpec cancels and forgets the speculation for hash, if any.
func (s *Service) dropSpec(hash chainhash.Hash) {
	if sp, ok := s.specs[hash]; ok {
		sp.cancel()
		<-sp.done
		delete(s.specs, hash)
	}
}

// trace times the phases of one block's processing and logs them at debug
// level (--log-level debug), so slow steps can be found in production.
type trace struct {
	on    bool
	start time.Time
	last  time.Time
	parts []any
}

func (s *Service) newTrace() *trace {
	if !s.log.Enabled(context.Background(), slog.LevelDebug) {
		return &trace{}
	}
	now := time.Now()
	return &trace{on: true, start: now, last: now}
}

func (t *trace) mark(name string) {
	if !t.on {
		return
	}
	now := time.Now()
	t.parts = append(t.parts, name, now.Sub(t.last).Round(100*time.Microsecond).String())
	t.last = now
}

func (t *trace) done(s *Service, what string, hash chainhash.Hash, speculative bool) {
	if !t.on {
		return
	}
	attrs := append([]any{"step", what, "hash", hash.String(), "speculative", speculative,
		"total", time.Since(t.start).Round(100 * time.Microsecond).String()}, t.parts...)
	s.log.Debug("block phases", attrs...)
}
