package miner

import (
	"testing"

	"github.com/btcsuite/btcd/wire/v2"
)

func TestPoolConflictAndOutputs(t *testing.T) {
	p := newPool()
	a := makeTx([]wire.OutPoint{confirmedOutpoint(1)}, 2, false)
	p.add(newEntry(t, p, a, 1000))

	// A different transaction spending the same coin conflicts with a.
	dbl := makeTx([]wire.OutPoint{confirmedOutpoint(2), confirmedOutpoint(1)}, 1, false)
	op, by, ok := p.conflict(dbl)
	if !ok || op != confirmedOutpoint(1) || by != a.TxHash() {
		t.Fatalf("conflict = %v %v %v, want %v spent by %v", op, by, ok, confirmedOutpoint(1), a.TxHash())
	}
	// Spending a's outputs is no conflict, and the outputs are known.
	child := makeTx([]wire.OutPoint{outpoint(a, 0)}, 1, false)
	if _, _, ok := p.conflict(child); ok {
		t.Fatal("child of a reported as conflicting")
	}
	if out, ok := p.output(outpoint(a, 1)); !ok || out.Value != 1000 {
		t.Fatalf("output(a:1) = %v %v", out, ok)
	}
	if _, ok := p.output(outpoint(a, 2)); ok {
		t.Fatal("output(a:2) exists, a has 2 outputs")
	}
	if p.bytes != int64(len(p.entries[a.TxHash()].raw)) {
		t.Fatalf("bytes = %d", p.bytes)
	}
}

// chain builds: a (confirmed input 1) -> b -> c, and d (confirmed input 2).
func buildChain(t *testing.T) (*pool, []*wire.MsgTx) {
	p := newPool()
	a := makeTx([]wire.OutPoint{confirmedOutpoint(1)}, 2, false)
	p.add(newEntry(t, p, a, 1000))
	b := makeTx([]wire.OutPoint{outpoint(a, 0)}, 1, false)
	p.add(newEntry(t, p, b, 1000))
	c := makeTx([]wire.OutPoint{outpoint(b, 0)}, 1, false)
	p.add(newEntry(t, p, c, 1000))
	d := makeTx([]wire.OutPoint{confirmedOutpoint(2)}, 1, false)
	p.add(newEntry(t, p, d, 1000))
	return p, []*wire.MsgTx{a, b, c, d}
}

func TestRemoveForBlockMinedKeepsDescendants(t *testing.T) {
	p, txs := buildChain(t)
	a, b, c, d := txs[0], txs[1], txs[2], txs[3]
	coinbase := makeTx([]wire.OutPoint{{Index: wire.MaxPrevOutIndex}}, 1, false)
	block := []*wire.MsgTx{coinbase, a}
	mined, conflicts := p.removeForBlock(block)
	if mined != 1 || conflicts != 0 {
		t.Fatalf("mined %d conflicts %d, want 1 0", mined, conflicts)
	}
	if _, ok := p.entries[a.TxHash()]; ok {
		t.Fatal("mined tx still in mempool")
	}
	for _, tx := range []*wire.MsgTx{b, c, d} {
		if _, ok := p.entries[tx.TxHash()]; !ok {
			t.Fatalf("%v removed, want kept", tx.TxHash())
		}
	}
	if len(p.entries[b.TxHash()].parents) != 0 {
		t.Fatal("b still lists mined a as parent")
	}
	if _, ok := p.spends[confirmedOutpoint(1)]; ok {
		t.Fatal("mined tx's input still indexed")
	}
	if _, ok := p.spends[outpoint(a, 0)]; !ok {
		t.Fatal("b's spend of a:0 dropped")
	}
	// Idempotent.
	if m, c := p.removeForBlock(block); m != 0 || c != 0 {
		t.Fatalf("second removal: %d %d", m, c)
	}
}

func TestRemoveForBlockConflictRemovesDescendants(t *testing.T) {
	p, txs := buildChain(t)
	a, b, c, d := txs[0], txs[1], txs[2], txs[3]
	// A block transaction double-spends a's input.
	rival := makeTx([]wire.OutPoint{confirmedOutpoint(1)}, 3, false)
	coinbase := makeTx([]wire.OutPoint{{Index: wire.MaxPrevOutIndex}}, 1, false)
	mined, conflicts := p.removeForBlock([]*wire.MsgTx{coinbase, rival})
	if mined != 0 || conflicts != 3 {
		t.Fatalf("mined %d conflicts %d, want 0 3", mined, conflicts)
	}
	for _, tx := range []*wire.MsgTx{a, b, c} {
		if _, ok := p.entries[tx.TxHash()]; ok {
			t.Fatalf("%v kept, want removed", tx.TxHash())
		}
	}
	if _, ok := p.entries[d.TxHash()]; !ok {
		t.Fatal("unrelated d removed")
	}
	if len(p.spends) != 1 {
		t.Fatalf("spends index has %d entries, want 1 (d's)", len(p.spends))
	}
	if p.bytes != int64(len(p.entries[d.TxHash()].raw)) {
		t.Fatalf("bytes = %d after removals", p.bytes)
	}
}

func TestWithDescendantsOrder(t *testing.T) {
	p, txs := buildChain(t)
	got := p.withDescendants(txs[0].TxHash())
	want := []wire.OutPoint{outpoint(txs[0], 0), outpoint(txs[1], 0), outpoint(txs[2], 0)}
	if len(got) != len(want) {
		t.Fatalf("got %d descendants, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i].Hash {
			t.Fatalf("position %d: %v, want %v", i, got[i], want[i].Hash)
		}
	}
}

func TestTrimEvictsLowestWithDescendants(t *testing.T) {
	p := newPool()
	low := makeTx([]wire.OutPoint{confirmedOutpoint(1)}, 1, false)
	p.add(newEntry(t, p, low, 100))
	lowChild := makeTx([]wire.OutPoint{outpoint(low, 0)}, 1, false)
	p.add(newEntry(t, p, lowChild, 150))
	high := makeTx([]wire.OutPoint{confirmedOutpoint(2)}, 1, false)
	p.add(newEntry(t, p, high, 100000))
	// CPFP: a cheap parent protected by a rich child.
	cheap := makeTx([]wire.OutPoint{confirmedOutpoint(3)}, 1, false)
	p.add(newEntry(t, p, cheap, 50))
	rich := makeTx([]wire.OutPoint{outpoint(cheap, 0)}, 1, false)
	p.add(newEntry(t, p, rich, 200000))

	limit := p.bytes - 1 // force exactly one eviction round
	evicted := p.trim(limit)
	if len(evicted) != 2 || evicted[0].txid != lowChild.TxHash() || evicted[1].txid != low.TxHash() {
		t.Fatalf("evicted %d entries, want low and its child", len(evicted))
	}
	for _, tx := range []*wire.MsgTx{high, cheap, rich} {
		if _, ok := p.entries[tx.TxHash()]; !ok {
			t.Fatalf("%v evicted", tx.TxHash())
		}
	}
	if p.bytes > limit {
		t.Fatalf("bytes %d over limit %d", p.bytes, limit)
	}
}

func TestReAddedParentRelinksChildren(t *testing.T) {
	p := newPool()
	parent := makeTx([]wire.OutPoint{confirmedOutpoint(1)}, 1, false)
	child := makeTx([]wire.OutPoint{outpoint(parent, 0)}, 1, false)
	// The child is in the pool while its parent is confirmed ...
	p.add(newEntry(t, p, child, 1000))
	// ... then the parent's block is disconnected and it comes back.
	p.add(newEntry(t, p, parent, 1000))
	if _, ok := p.entries[child.TxHash()].parents[parent.TxHash()]; !ok {
		t.Fatal("child does not list the re-added parent")
	}
}
