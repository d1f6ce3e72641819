package utxostore

import (
	"context"
	"testing"
	"time"

	"github.com/btcsuite/btcd/wire/v2"

	"github.com/btcmesh/btcmesh/internal/blockchanges"
)

// TestPendingStaysWithinOneFlush connects and then disconnects blocks
// whose changes together exceed what one badger transaction holds, with
// no timed flush (an hour): the store must flush between blocks, in both
// directions, and end with exactly the set it started from.
func TestPendingStaysWithinOneFlush(t *testing.T) {
	st := mustOpenStore(t, storeOptions{cacheMB: 16, memTableMB: 16, flushEvery: time.Hour, coinCacheMB: 1})
	genesis := st.cur.hash
	before, err := st.stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	const perBlock = 6000
	prev := genesis
	var blocks []*wire.MsgBlock
	for h := int32(1); h <= 8; h++ {
		outs := make([]*wire.TxOut, perBlock)
		for i := range outs {
			outs[i] = wire.NewTxOut(1000, p2wpkh(uint32(h)<<16|uint32(i)))
		}
		b := makeBlock(prev, uint32(h), coinbaseTx(h, 0, outs...))
		if _, err := st.connect(blockchanges.Of(b), h); err != nil {
			t.Fatalf("connect %d: %v", h, err)
		}
		blocks, prev = append(blocks, b), b.BlockHash()
	}
	st.settle(t)
	if 8*perBlock <= st.txnEntries/2 {
		t.Fatalf("the chain (%d writes) fits half a flush (%d): the test proves nothing", 8*perBlock, st.txnEntries/2)
	}
	if st.flushed.height == 0 {
		t.Fatal("no flush while connecting past half a transaction's worth of changes")
	}
	if n := st.pend.entries(); n > st.txnEntries/2+perBlock+2 {
		t.Fatalf("%d pending writes after connecting, one flush holds %d", n, st.txnEntries)
	}
	flushedAtTip := st.flushed.height
	for i := len(blocks) - 1; i >= 0; i-- {
		if _, err := st.disconnect(blocks[i]); err != nil {
			t.Fatalf("disconnect %d: %v", i+1, err)
		}
	}
	st.settle(t)
	if st.flushed.height == flushedAtTip {
		t.Fatal("no flush while disconnecting past half a transaction's worth of changes")
	}
	after, err := st.stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if after.tip.hash != genesis || after.txouts != before.txouts || after.hashSerialized != before.hashSerialized {
		t.Fatalf("after connect and disconnect: tip %s, %d txouts (want %d), set hash differs: %v",
			after.tip.hash, after.txouts, before.txouts, after.hashSerialized != before.hashSerialized)
	}
}

// settle waits for the background flush, if one runs.
func (s *store) settle(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.reap(true); err != nil {
		t.Fatal(err)
	}
}

// TestBackgroundFlushLayers connects, disconnects and reconnects blocks
// while a background flush writes the layer below, spending coins that
// only that layer holds and undoing blocks whose undo records it holds,
// then checks every lookup and the set hash against a store that writes
// each block at once.
func TestBackgroundFlushLayers(t *testing.T) {
	bg := mustOpenStore(t, storeOptions{cacheMB: 16, memTableMB: 64, flushEvery: time.Hour, coinCacheMB: 0})
	ref := mustOpenStore(t, storeOptions{cacheMB: 16, memTableMB: 64, flushEvery: 0, coinCacheMB: 0})
	const n = 4000
	outs := func(tag uint32, k int) []*wire.TxOut {
		o := make([]*wire.TxOut, k)
		for i := range o {
			o[i] = wire.NewTxOut(int64(1000+i), p2wpkh(tag<<16|uint32(i)))
		}
		return o
	}
	// Block 1 creates n coins; block 2 spends half of them and creates
	// more; block 3 spends block 2's coins and the rest of block 1's.
	cb1 := coinbaseTx(1, 0, outs(1, n)...)
	b1 := makeBlock(bg.cur.hash, 1, cb1)
	var half1, rest1 []wire.OutPoint
	for i := range n {
		if i%2 == 0 {
			half1 = append(half1, op(cb1, uint32(i)))
		} else {
			rest1 = append(rest1, op(cb1, uint32(i)))
		}
	}
	tx2 := spendTx(half1, outs(2, n/2)...)
	b2 := makeBlock(b1.BlockHash(), 2, coinbaseTx(2, 0, outs(3, 1)...), tx2)
	tx3 := spendTx(append(allOuts(tx2, n/2), rest1...), outs(4, 10)...)
	b3 := makeBlock(b2.BlockHash(), 3, coinbaseTx(3, 0, outs(5, 1)...), tx3)

	flushBehind := func() {
		bg.mu.Lock()
		bg.startFlush()
		bg.mu.Unlock()
	}
	steps := []struct {
		name string
		do   func(st *store) error
		bg   bool // start a background flush on bg after the step
	}{
		{"connect 1", func(st *store) error { _, err := st.connect(blockchanges.Of(b1), 1); return err }, true},
		{"connect 2", func(st *store) error { _, err := st.connect(blockchanges.Of(b2), 2); return err }, true},
		{"connect 3", func(st *store) error { _, err := st.connect(blockchanges.Of(b3), 3); return err }, true},
		{"disconnect 3", func(st *store) error { _, err := st.disconnect(b3); return err }, true},
		{"disconnect 2", func(st *store) error { _, err := st.disconnect(b2); return err }, false},
		{"connect 2 again", func(st *store) error { _, err := st.connect(blockchanges.Of(b2), 2); return err }, true},
		{"connect 3 again", func(st *store) error { _, err := st.connect(blockchanges.Of(b3), 3); return err }, false},
	}
	probe := append(append(append(allOuts(cb1, n), allOuts(tx2, n/2)...), allOuts(tx3, 10)...), op(b3.Transactions[0], 0))
	for _, step := range steps {
		for _, st := range []*store{bg, ref} {
			if err := step.do(st); err != nil {
				t.Fatalf("%s: %v", step.name, err)
			}
		}
		bg.mu.Lock()
		inflight := bg.inflight != nil
		bg.mu.Unlock()
		t.Logf("%s: flush in flight %v", step.name, inflight)
		got, _, err := bg.lookupMany(probe)
		if err != nil {
			t.Fatal(err)
		}
		want, _, err := ref.lookupMany(probe)
		if err != nil {
			t.Fatal(err)
		}
		for i := range probe {
			if !sameLookup(got[i], want[i]) {
				t.Fatalf("%s (flush in flight: %v): %s is %+v, want %+v", step.name, inflight, probe[i], got[i], want[i])
			}
		}
		if step.bg {
			flushBehind()
		}
	}
	sameStoreSet(t, "background-flushed against per-block", bg, ref)
}
