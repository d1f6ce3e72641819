package utxostore

import (
	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"
)

// pendingCoin is one outpoint changed since the last flush.
type pendingCoin struct {
	// val is the encoded coin now unspent at the outpoint; nil means the
	// outpoint holds no coin (it was spent or disconnected).
	val []byte
	// fresh means badger does not hold the outpoint, so that spending the
	// coin again needs no write at all (Bitcoin Core's FRESH flag).
	fresh bool
}

// pending is what blocks connected and disconnected since the last flush
// changed, kept in memory until flush writes it to badger in one atomic
// transaction with the tip record, as Bitcoin Core keeps its coins cache
// until a periodic flush. An output created and spent between two flushes
// never reaches badger.
//
// Reading the set at the store's tip (store.cur) means: pending first,
// then badger, which holds exactly the flushed tip's set; an outpoint
// pending does not name has the same coin (or none) in both.
//
// While a flush writes in the background, the layer it writes is frozen
// and becomes base of a new, live layer: reads ask the live layer, then
// base, then badger. Badger, for the live layer, means badger once base
// is written (its FRESH flags say so), and a flush writes base before
// the live layer, so the order of writes keeps every flag right.
type pending struct {
	coins map[wire.OutPoint]pendingCoin
	// undo are the undo records of blocks connected since the flush;
	// undoGone are flushed records whose block was disconnected since.
	undo     map[chainhash.Hash][]byte
	undoGone map[chainhash.Hash]struct{}
	// bytes approximates what a flush writes (keys and values).
	bytes int
	// base is the frozen layer a background flush is writing (nil when
	// none); it never has a base of its own and is never changed.
	base *pending
}

func newPending() *pending {
	return &pending{
		coins:    make(map[wire.OutPoint]pendingCoin),
		undo:     make(map[chainhash.Hash][]byte),
		undoGone: make(map[chainhash.Hash]struct{}),
	}
}

// entries is how many badger writes a flush makes (besides the tip).
func (p *pending) entries() int { return len(p.coins) + len(p.undo) + len(p.undoGone) }

// get returns the outpoint's coin as pending (with its base) knows it: ok
// is false when neither names the outpoint (badger answers); val is nil
// when the outpoint is named as holding no coin.
func (p *pending) get(op wire.OutPoint) (val []byte, ok bool) {
	e, ok := p.coins[op]
	if !ok && p.base != nil {
		e, ok = p.base.coins[op]
	}
	return e.val, ok
}

// spend records that the coin at op, unspent at the tip, is gone.
func (p *pending) spend(op wire.OutPoint) {
	if e, ok := p.coins[op]; ok && e.fresh {
		delete(p.coins, op) // never written: nothing to delete
		return
	}
	// Not named (badger holds it) or named but not fresh.
	p.coins[op] = pendingCoin{}
	p.bytes += coinKeyLen
}

// create records val as the coin at op. existed says op held a coin at
// the tip before (an overwrite).
func (p *pending) create(op wire.OutPoint, val []byte, existed bool) {
	e, ok := p.coins[op]
	switch {
	case ok:
		// Named: badger holds op exactly when the entry is not fresh.
		p.coins[op] = pendingCoin{val: val, fresh: e.fresh}
	default:
		// Not named: badger holds the tip's state of op.
		p.coins[op] = pendingCoin{val: val, fresh: !existed}
	}
	p.bytes += coinKeyLen + len(val)
}

// addUndo records a connected block's undo record.
func (p *pending) addUndo(hash chainhash.Hash, rec []byte) {
	p.undo[hash] = rec
	p.bytes += 1 + chainhash.HashSize + len(rec)
}

// dropUndo forgets a disconnected block's undo record.
func (p *pending) dropUndo(hash chainhash.Hash) {
	if _, ok := p.undo[hash]; ok {
		delete(p.undo, hash)
		return
	}
	p.undoGone[hash] = struct{}{}
}

// undoOf returns a block's undo record if pending (or its base) holds
// it; gone reports that the flushed record is deleted.
func (p *pending) undoOf(hash chainhash.Hash) (rec []byte, ok, gone bool) {
	if rec, ok = p.undo[hash]; ok {
		return rec, true, false
	}
	if _, gone = p.undoGone[hash]; gone || p.base == nil {
		return nil, false, gone
	}
	return p.base.undoOf(hash)
}
