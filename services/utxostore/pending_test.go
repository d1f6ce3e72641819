package utxostore

import (
	"context"
	"testing"
	"time"

	"github.com/btcsuite/btcd/wire/v2"
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
		if _, err := st.connect(b, h); err != nil {
			t.Fatalf("connect %d: %v", h, err)
		}
		blocks, prev = append(blocks, b), b.BlockHash()
	}
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
