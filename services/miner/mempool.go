package miner

import (
	"sort"

	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"
)

// entry is one mempool transaction. Its fields never change after it is
// inserted, except parents (a parent that gets mined stops being one).
type entry struct {
	tx      *wire.MsgTx
	raw     []byte
	txid    chainhash.Hash
	wtxid   chainhash.Hash
	fee     int64
	vsize   int64
	weight  int64
	sigops  int64
	time    int64
	height  int32
	parents map[chainhash.Hash]struct{}
}

// feeRate is the entry's own fee rate in sat/kvB.
func (e *entry) feeRate() int64 { return feeRate(e.fee, e.vsize) }

// feeRate returns fee per 1000 virtual bytes.
func feeRate(fee, vsize int64) int64 {
	if vsize <= 0 {
		return 0
	}
	return fee * 1000 / vsize
}

// pool is the mempool's state. It is not safe for concurrent use; the
// Service guards it with one mutex.
type pool struct {
	entries map[chainhash.Hash]*entry
	// spends maps an outpoint to the mempool transaction that spends it.
	spends map[wire.OutPoint]chainhash.Hash
	// bytes is the sum of the serialized sizes of all entries.
	bytes int64
}

func newPool() *pool {
	return &pool{entries: map[chainhash.Hash]*entry{}, spends: map[wire.OutPoint]chainhash.Hash{}}
}

// conflict returns the mempool transaction spending one of tx's inputs.
func (p *pool) conflict(tx *wire.MsgTx) (wire.OutPoint, chainhash.Hash, bool) {
	for _, in := range tx.TxIn {
		if by, ok := p.spends[in.PreviousOutPoint]; ok {
			return in.PreviousOutPoint, by, true
		}
	}
	return wire.OutPoint{}, chainhash.Hash{}, false
}

// output returns the output op names when a mempool transaction created it.
func (p *pool) output(op wire.OutPoint) (*wire.TxOut, bool) {
	e, ok := p.entries[op.Hash]
	if !ok || int(op.Index) >= len(e.tx.TxOut) {
		return nil, false
	}
	return e.tx.TxOut[op.Index], true
}

// add inserts e; the caller has checked it has no conflict and is not
// present yet.
func (p *pool) add(e *entry) {
	p.entries[e.txid] = e
	for _, in := range e.tx.TxIn {
		p.spends[in.PreviousOutPoint] = e.txid
	}
	// A transaction coming back (from a disconnected block) may already
	// have children in the pool: it becomes their parent again.
	for i := range e.tx.TxOut {
		if child, ok := p.spends[wire.OutPoint{Hash: e.txid, Index: uint32(i)}]; ok {
			if ce, ok := p.entries[child]; ok {
				ce.parents[e.txid] = struct{}{}
			}
		}
	}
	p.bytes += int64(len(e.raw))
}

// children returns the mempool transactions spending an output of txid.
func (p *pool) children(txid chainhash.Hash) []chainhash.Hash {
	e, ok := p.entries[txid]
	if !ok {
		return nil
	}
	var out []chainhash.Hash
	seen := map[chainhash.Hash]struct{}{}
	for i := range e.tx.TxOut {
		child, ok := p.spends[wire.OutPoint{Hash: txid, Index: uint32(i)}]
		if !ok {
			continue
		}
		if _, dup := seen[child]; !dup {
			seen[child] = struct{}{}
			out = append(out, child)
		}
	}
	return out
}

// descendants returns txid and every mempool transaction depending on it,
// parents before children.
func (p *pool) withDescendants(txid chainhash.Hash) []chainhash.Hash {
	if _, ok := p.entries[txid]; !ok {
		return nil
	}
	// Depth-first post-order gives children before parents; reverse it.
	var order []chainhash.Hash
	seen := map[chainhash.Hash]struct{}{}
	var visit func(h chainhash.Hash)
	visit = func(h chainhash.Hash) {
		if _, ok := seen[h]; ok {
			return
		}
		seen[h] = struct{}{}
		for _, c := range p.children(h) {
			visit(c)
		}
		order = append(order, h)
	}
	visit(txid)
	for i, j := 0, len(order)-1; i < j; i, j = i+1, j-1 {
		order[i], order[j] = order[j], order[i]
	}
	return order
}

// removeOne takes txid out of the pool, leaving its descendants (whose
// parent link to it is dropped). It returns the removed entry.
func (p *pool) removeOne(txid chainhash.Hash) *entry {
	e, ok := p.entries[txid]
	if !ok {
		return nil
	}
	for _, c := range p.children(txid) {
		if ce, ok := p.entries[c]; ok {
			delete(ce.parents, txid)
		}
	}
	for _, in := range e.tx.TxIn {
		if by, ok := p.spends[in.PreviousOutPoint]; ok && by == txid {
			delete(p.spends, in.PreviousOutPoint)
		}
	}
	delete(p.entries, txid)
	p.bytes -= int64(len(e.raw))
	return e
}

// removeWithDescendants removes txid and everything depending on it.
func (p *pool) removeWithDescendants(txid chainhash.Hash) []*entry {
	var out []*entry
	order := p.withDescendants(txid)
	for i := len(order) - 1; i >= 0; i-- {
		if e := p.removeOne(order[i]); e != nil {
			out = append(out, e)
		}
	}
	return out
}

// removeForBlock removes the block's transactions (their descendants stay:
// they now spend confirmed outputs) and every mempool transaction that
// double-spends one of the block's inputs, with its descendants. It is
// idempotent. It returns how many were mined and how many conflicted.
func (p *pool) removeForBlock(txs []*wire.MsgTx) (mined, conflicts int) {
	hashes := make([]chainhash.Hash, len(txs))
	for i, tx := range txs {
		hashes[i] = tx.TxHash()
		if p.removeOne(hashes[i]) != nil {
			mined++
		}
	}
	for i, tx := range txs {
		if i == 0 && isCoinbase(tx) {
			continue
		}
		for _, in := range tx.TxIn {
			by, ok := p.spends[in.PreviousOutPoint]
			if !ok || by == hashes[i] {
				continue
			}
			conflicts += len(p.removeWithDescendants(by))
		}
	}
	return mined, conflicts
}

// evictionScore is a transaction's fee rate for eviction, judged with its
// descendants as Core does: the higher of its own rate and its package's,
// so that a well-paying child protects its parent (CPFP).
func (p *pool) evictionScore(txid chainhash.Hash) int64 {
	e := p.entries[txid]
	var fee, vsize int64
	for _, d := range p.withDescendants(txid) {
		de := p.entries[d]
		fee += de.fee
		vsize += de.vsize
	}
	return max(e.feeRate(), feeRate(fee, vsize))
}

// trim evicts the lowest-scoring transactions, each with its descendants,
// until the pool is within maxBytes, returning what it evicted. Scores are
// computed once per call.
func (p *pool) trim(maxBytes int64) []*entry {
	if p.bytes <= maxBytes {
		return nil
	}
	type scored struct {
		txid  chainhash.Hash
		score int64
	}
	all := make([]scored, 0, len(p.entries))
	for h := range p.entries {
		all = append(all, scored{h, p.evictionScore(h)})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].score < all[j].score })
	var out []*entry
	for _, s := range all {
		if p.bytes <= maxBytes {
			break
		}
		out = append(out, p.removeWithDescendants(s.txid)...)
	}
	return out
}

// isCoinbase reports whether tx has the coinbase's single null input.
func isCoinbase(tx *wire.MsgTx) bool {
	if len(tx.TxIn) != 1 {
		return false
	}
	prev := tx.TxIn[0].PreviousOutPoint
	return prev.Index == wire.MaxPrevOutIndex && prev.Hash == (chainhash.Hash{})
}
