package utxostore

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcutil/v2"
	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	utxostorev1 "github.com/btcmesh/btcmesh/proto/btcmesh/utxostore/v1"

	"github.com/btcmesh/btcmesh/internal/blockchanges"
	"github.com/btcmesh/btcmesh/internal/rules"
)

// chainSpec builds a deterministic chain: every block's coinbase pays
// outs outputs, and from height 2 a transaction spends all outputs of the
// previous block's coinbase into as many new ones, the last of which is
// spent again inside the same block. fork changes every txid and hash.
func chainSpec(parent chainhash.Hash, from, to int32, outs int, fork byte) []*wire.MsgBlock {
	var blocks []*wire.MsgBlock
	var prevCB *wire.MsgTx
	for h := from; h <= to; h++ {
		var cbOuts []*wire.TxOut
		for i := 0; i < outs; i++ {
			cbOuts = append(cbOuts, wire.NewTxOut(int64(1000+i), p2wpkh(uint32(h)<<16|uint32(i))))
		}
		cbOuts = append(cbOuts, wire.NewTxOut(0, []byte{0x6a, 0x01, fork}))
		cb := coinbaseTx(h, fork, cbOuts...)
		txs := []*wire.MsgTx{cb}
		if prevCB != nil {
			var ins []wire.OutPoint
			var newOuts []*wire.TxOut
			prevID := prevCB.TxHash()
			for i := 0; i < outs; i++ {
				ins = append(ins, wire.OutPoint{Hash: prevID, Index: uint32(i)})
				newOuts = append(newOuts, wire.NewTxOut(int64(900+i), p2wpkh(uint32(h)<<16|uint32(i)|0x8000)))
			}
			spend := spendTx(ins, newOuts...)
			chained := spendTx([]wire.OutPoint{op(spend, uint32(outs-1))}, wire.NewTxOut(1, p2wpkh(uint32(fork))))
			txs = append(txs, spend, chained)
		}
		b := makeBlock(parent, uint32(h)|uint32(fork)<<24, txs...)
		blocks = append(blocks, b)
		parent, prevCB = b.BlockHash(), cb
	}
	return blocks
}

func TestDisconnectRestoresExactly(t *testing.T) {
	n := serve(t, t.TempDir())
	genesis := *regtest(t).Params.GenesisHash
	empty := n.stats()
	blocks := chainSpec(genesis, 1, 4, 5, 0)
	for i, b := range blocks[:3] {
		n.mustConnect(b, int32(i+1))
	}
	before := n.stats()
	spent := blocks[3].Transactions[1].TxIn[0].PreviousOutPoint
	orig := n.lookup(spent).Utxos[0]
	if !orig.Found || !orig.Coinbase || orig.Height != 3 {
		t.Fatalf("prevout before the spend: %v", orig)
	}

	n.mustConnect(blocks[3], 4)
	after := n.stats()
	if bytes.Equal(after.HashSerialized, before.HashSerialized) {
		t.Fatal("connect did not change the set's hash")
	}
	if n.lookup(spent).Utxos[0].Found {
		t.Fatal("spent output still found")
	}
	resp := n.mustDisconnect(blocks[3])
	if resp.TipHeight != 3 {
		t.Fatalf("tip height after disconnect %d", resp.TipHeight)
	}
	sameSet(t, "connect+disconnect", before, n.stats())
	if got := n.lookup(spent).Utxos[0]; !got.Found || got.Height != orig.Height || got.Coinbase != orig.Coinbase ||
		got.Output.Value != orig.Output.Value || !bytes.Equal(got.Output.PkScript, orig.Output.PkScript) {
		t.Fatalf("restored %v, want %v", got, orig)
	}
	// The undo record is gone: disconnecting the same block again fails.
	if _, err := n.c.DisconnectBlock(ctx(t), disconnectReq(t, blocks[3])); err == nil {
		t.Fatal("disconnecting a block that is no longer the tip must fail")
	}
	// Unwind to genesis: the set is empty again, with genesis as tip.
	for i := 2; i >= 0; i-- {
		n.mustDisconnect(blocks[i])
	}
	sameSet(t, "back to genesis", empty, n.stats())
	if v := n.metric("btcmesh_utxostore_txouts"); v != 0 {
		t.Fatalf("txouts gauge %v after unwinding", v)
	}
}

func TestReorgMatchesDirectConnect(t *testing.T) {
	genesis := *regtest(t).Params.GenesisHash
	main := chainSpec(genesis, 1, 5, 4, 0)
	// The fork shares blocks 1-2 and replaces 3-5. Its block 3 spends block
	// 2's coinbase like the main chain's block 3 did.
	fork := chainSpec(main[1].BlockHash(), 3, 5, 4, 7)
	fork[0].Transactions = append(fork[0].Transactions[:1],
		spendTx(allOuts(main[1].Transactions[0], 4), wire.NewTxOut(5, p2wpkh(77))))

	n := serve(t, t.TempDir())
	for i, b := range main {
		n.mustConnect(b, int32(i+1))
	}
	if _, h := n.tip(); h != 5 {
		t.Fatalf("tip height %d", h)
	}
	for i := 4; i >= 2; i-- {
		n.mustDisconnect(main[i])
	}
	mid := n.stats()
	for i, b := range fork {
		n.mustConnect(b, int32(i+3))
	}
	if h, height := n.tip(); h != fork[2].BlockHash() || height != 5 {
		t.Fatalf("tip after reorg %s/%d", h, height)
	}

	ref := serve(t, t.TempDir())
	ref.mustConnect(main[0], 1)
	ref.mustConnect(main[1], 2)
	sameSet(t, "after disconnecting 3", ref.stats(), mid)
	for i, b := range fork {
		ref.mustConnect(b, int32(i+3))
	}
	sameSet(t, "reorged vs direct", ref.stats(), n.stats())
	// An output only the old branch created is gone; the fork's is there.
	r := n.lookup(op(main[2].Transactions[0], 0), op(fork[2].Transactions[0], 0))
	if r.Utxos[0].Found || !r.Utxos[1].Found {
		t.Fatalf("after reorg: old branch output found=%v, new found=%v", r.Utxos[0].Found, r.Utxos[1].Found)
	}
}

func allOuts(tx *wire.MsgTx, n int) []wire.OutPoint {
	var ops []wire.OutPoint
	id := tx.TxHash()
	for i := 0; i < n; i++ {
		ops = append(ops, wire.OutPoint{Hash: id, Index: uint32(i)})
	}
	return ops
}

func TestRestartKeepsState(t *testing.T) {
	dir := t.TempDir()
	genesis := *regtest(t).Params.GenesisHash
	blocks := chainSpec(genesis, 1, 6, 3, 0)
	var before []byte
	var beforeStats = struct{ txouts, amount int64 }{}
	t.Run("first run", func(t *testing.T) {
		n := serve(t, dir)
		for i, b := range blocks[:4] {
			n.mustConnect(b, int32(i+1))
		}
		s := n.stats()
		before = s.HashSerialized
		beforeStats.txouts, beforeStats.amount = s.Txouts, s.TotalAmount
	})
	t.Run("second run", func(t *testing.T) {
		n := serve(t, dir)
		if h, height := n.tip(); h != blocks[3].BlockHash() || height != 4 {
			t.Fatalf("tip after restart %s/%d", h, height)
		}
		s := n.stats()
		if !bytes.Equal(s.HashSerialized, before) || s.Txouts != beforeStats.txouts || s.TotalAmount != beforeStats.amount {
			t.Fatalf("set changed across restart: %v", s)
		}
		if v := n.metric("btcmesh_utxostore_txouts"); v != float64(s.Txouts) {
			t.Fatalf("txouts gauge %v after restart, want %d", v, s.Txouts)
		}
		// Undo data survived too: disconnect 4, then go on to 6.
		n.mustDisconnect(blocks[3])
		for i, b := range blocks[3:] {
			n.mustConnect(b, int32(i+4))
		}
	})
	t.Run("other network refused", func(t *testing.T) {
		st, err := openStore(storeOptions{dir: dir, cacheMB: 16, memTableMB: 64, genesis: chainhash.Hash{1}}, discardLog())
		if err == nil {
			_ = st.close()
			t.Fatal("a store of another network must be refused")
		}
	})
}

// TestConnectChangesMatchesBlock connects a chain as the blockvalidator
// does (ConnectBlockRequest.changes) and as a serialized block: the sets
// must be the same after every block, and a block connected from its
// changes must disconnect from the block itself.
func TestConnectChangesMatchesBlock(t *testing.T) {
	genesis := *regtest(t).Params.GenesisHash
	blocks := chainSpec(genesis, 1, 4, 3, 0)
	byBlock, byChanges := serve(t, t.TempDir()), serve(t, t.TempDir())
	connectChanges := func(b *wire.MsgBlock, height int32) error {
		_, err := byChanges.c.ConnectBlock(ctx(t), &utxostorev1.ConnectBlockRequest{
			Changes: blockchanges.Proto(btcutil.NewBlock(b)), Height: height})
		return err
	}
	for i, b := range blocks {
		byBlock.mustConnect(b, int32(i+1))
		if err := connectChanges(b, int32(i+1)); err != nil {
			t.Fatalf("connect changes of block %d: %v", i+1, err)
		}
		sameSet(t, fmt.Sprintf("block %d", i+1), byBlock.stats(), byChanges.stats())
	}
	byBlock.mustDisconnect(blocks[3])
	byChanges.mustDisconnect(blocks[3])
	sameSet(t, "after disconnecting 4", byBlock.stats(), byChanges.stats())

	// A spend of a missing coin is refused as from a block; so are
	// requests that carry both forms, or changes that do not parse.
	missing := blocks[3].Copy()
	missing.Transactions[1].TxIn[0].PreviousOutPoint.Index = 99
	if re, ok := rules.FromStatus(connectChanges(missing, 4)); !ok || re.Kind != rules.MissingInputs {
		t.Fatalf("changes spending a missing coin: want %s, got %v", rules.MissingInputs, re)
	}
	both := &utxostorev1.ConnectBlockRequest{Block: ser(t, blocks[3]), Changes: blockchanges.Proto(btcutil.NewBlock(blocks[3])), Height: 4}
	if _, err := byChanges.c.ConnectBlock(ctx(t), both); status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "not both") {
		t.Fatalf("block and changes: want InvalidArgument, got %v", err)
	}
	torn := blockchanges.Proto(btcutil.NewBlock(blocks[3]))
	torn.PackedTxs = torn.PackedTxs[:len(torn.PackedTxs)-1]
	if _, err := byChanges.c.ConnectBlock(ctx(t), &utxostorev1.ConnectBlockRequest{Changes: torn, Height: 4}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("torn changes: want InvalidArgument, got %v", err)
	}
	if _, err := byChanges.c.ConnectBlock(ctx(t), &utxostorev1.ConnectBlockRequest{Height: 4}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("neither block nor changes: want InvalidArgument, got %v", err)
	}
	sameSet(t, "after the refusals", byBlock.stats(), byChanges.stats())
	if err := connectChanges(blocks[3], 4); err != nil {
		t.Fatalf("reconnect changes of block 4: %v", err)
	}
}
