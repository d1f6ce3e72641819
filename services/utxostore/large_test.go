package utxostore

import (
	"errors"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/btcsuite/btcd/wire/v2"

	"github.com/btcmesh/btcmesh/internal/blockchanges"
)

// TestLargeBlockIsOneTransaction connects and disconnects a ~4 MB block
// with 20,000 inputs and 20,000 outputs: with the default memtable it fits
// one badger transaction (otherwise badger answers ErrTxnTooBig), and it
// is undone exactly.
func TestLargeBlockIsOneTransaction(t *testing.T) {
	const fan = 20000
	n := serve(t, t.TempDir())
	genesis := *regtest(t).Params.GenesisHash
	cb1 := coinbaseTx(1, 0, wire.NewTxOut(50e8, p2wpkh(1)))
	b1 := makeBlock(genesis, 1, cb1)
	n.mustConnect(b1, 1)

	var outs []*wire.TxOut
	for i := 0; i < fan; i++ {
		outs = append(outs, wire.NewTxOut(100_000, p2wpkh(uint32(i))))
	}
	fanout := spendTx([]wire.OutPoint{op(cb1, 0)}, outs...)
	fanoutID := fanout.TxHash()
	b2 := makeBlock(b1.BlockHash(), 2, coinbaseTx(2, 0, wire.NewTxOut(50e8, p2wpkh(2))), fanout)
	n.mustConnect(b2, 2)
	before := n.stats()
	if before.Txouts != fan+1 {
		t.Fatalf("txouts %d after fan-out", before.Txouts)
	}

	// 20 transactions of 1,000 inputs and 1,000 outputs, witnesses padding
	// the block to ~4 MB.
	txs := []*wire.MsgTx{coinbaseTx(3, 0, wire.NewTxOut(50e8, p2wpkh(3)))}
	for k := 0; k < 20; k++ {
		tx := wire.NewMsgTx(2)
		for i := 0; i < fan/20; i++ {
			tx.AddTxIn(&wire.TxIn{
				PreviousOutPoint: wire.OutPoint{Hash: fanoutID, Index: uint32(k*fan/20 + i)},
				Witness:          wire.TxWitness{make([]byte, 120)},
				Sequence:         0xffffffff,
			})
			tx.AddTxOut(wire.NewTxOut(99_000, p2wpkh(uint32(1<<20+k*fan/20+i))))
		}
		txs = append(txs, tx)
	}
	big := makeBlock(b2.BlockHash(), 3, txs...)
	raw := ser(t, big)
	if len(raw) < 3_800_000 || len(raw) > 4_000_000 {
		t.Fatalf("big block is %d bytes, want ~4 MB", len(raw))
	}
	// Control: with a memtable far below the floor Validate enforces, the
	// same block overflows one badger transaction and leaves nothing behind.
	small := smallStore(t, 16, b1, b2)
	if _, err := small.connect(blockchanges.Of(big), 3); !errors.Is(err, badger.ErrTxnTooBig) {
		t.Fatalf("with a 16 MiB memtable want ErrTxnTooBig, got %v", err)
	}
	if tip, _ := small.tip(); tip.height != 2 {
		t.Fatalf("failed connect moved the tip to %d", tip.height)
	}
	_ = small.close()

	n.mustConnect(big, 3)
	after := n.stats()
	if after.Txouts != fan+2 || after.Height != 3 || after.TotalAmount != 50e8*2+fan*99_000 {
		t.Fatalf("stats after the big block: %v", after)
	}
	r := n.lookup(wire.OutPoint{Hash: fanoutID}, wire.OutPoint{Hash: fanoutID, Index: fan - 1}, op(txs[20], 999), op(txs[1], 0))
	if r.Utxos[0].Found || r.Utxos[1].Found || !r.Utxos[2].Found || !r.Utxos[3].Found {
		t.Fatal("big block's spends or outputs missing")
	}
	if after.DiskSize <= 0 || after.DiskSize > 512<<20 {
		t.Fatalf("disk_size %d is not plausible", after.DiskSize)
	}
	n.mustDisconnect(big)
	sameSet(t, "big block connect+disconnect", before, n.stats())
	t.Logf("block of %d bytes connected and disconnected as single transactions", len(raw))
}

// smallStore opens a fresh store with the given memtable size (bypassing
// Config.Validate's floor) and connects blocks from height 1.
func smallStore(t *testing.T, memTableMB int, blocks ...*wire.MsgBlock) *store {
	t.Helper()
	st, err := openStore(storeOptions{dir: t.TempDir(), cacheMB: 16, memTableMB: memTableMB,
		genesis: *regtest(t).Params.GenesisHash}, discardLog())
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range blocks {
		if _, err := st.connect(blockchanges.Of(b), int32(i+1)); err != nil {
			_ = st.close()
			t.Fatalf("small store, block %d: %v", i+1, err)
		}
	}
	return st
}
