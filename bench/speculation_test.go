package bench

import (
	"bytes"
	"testing"
	"time"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/wire/v2"

	blockvalidatorv1 "github.com/btcmesh/btcmesh/proto/btcmesh/blockvalidator/v1"
)

// TestMutatedMempoolBlocks submits, on the single-process wiring, broken
// copies of a block whose transactions the mempool validated, then the
// block itself. Such a block is speculated on before its sanity checks
// (blockvalidator's prepareSteps): the copies must still be rejected by
// the rule they break, leave the tip where it was, and leave nothing
// behind for the real block (no invalid mark, no stored bytes), all but
// one of them having its very hash.
func TestMutatedMempoolBlocks(t *testing.T) {
	if testing.Short() {
		t.Skip("starts every block-path service")
	}
	g := newGen(t, 4)
	coins := g.fund(t, 1, 30)
	txs := g.spendMany(t, coins, 3, 1000) // ten transactions
	good := g.block(t, txsFee(coins, txs), txs...)

	node := startMesh(t, true)
	for _, mb := range g.blocks[:len(g.blocks)-1] {
		node.submit(t, serialize(t, mb))
	}
	node.mempool(t, txs)
	deadline := time.Now().Add(30 * time.Second)
	for node.gauge(t, "btcmesh_blockvalidator_script_cache_entries") < float64(len(txs)) {
		if time.Now().After(deadline) {
			t.Fatal("the blockvalidator's script cache never learnt the mempool's transactions")
		}
		time.Sleep(20 * time.Millisecond)
	}

	// A different merkle root (with the proof of work redone): another
	// hash, the same transactions.
	badRoot := *good
	badRoot.Header.MerkleRoot[0] ^= 1
	target := blockchain.CompactToBig(badRoot.Header.Bits)
	for hash := badRoot.Header.BlockHash(); blockchain.HashToBig(&hash).Cmp(target) > 0; hash = badRoot.Header.BlockHash() {
		badRoot.Header.Nonce++
	}
	// The last transaction twice (eleven make the tree's last level odd):
	// the same merkle root, so the same header and hash (CVE-2012-2459).
	dup := *good
	dup.Transactions = append(append([]*wire.MsgTx(nil), good.Transactions...), good.Transactions[len(good.Transactions)-1])
	if dup.BlockHash() != good.BlockHash() {
		t.Fatal("the duplicated transaction changed the block hash")
	}

	// Witnesses the header commits to only through the coinbase: a
	// changed commitment nonce (every other transaction still the one
	// the mempool validated, so the block is speculated on and would be
	// stored early), a changed signature, every witness stripped. Each
	// has the real block's hash.
	nonce := withTxs(good, 0, func(tx *wire.MsgTx) { tx.TxIn[0].Witness[0][0] ^= 1 })
	sig := withTxs(good, len(good.Transactions)-1, func(tx *wire.MsgTx) { tx.TxIn[0].Witness[0][5] ^= 1 })
	stripped := withTxs(good, -1, func(tx *wire.MsgTx) {
		for _, in := range tx.TxIn {
			in.Witness = nil
		}
	})
	for _, c := range []struct {
		name  string
		block *wire.MsgBlock
		rule  string
	}{
		{"bad merkle root", &badRoot, "bad-txnmrklroot"},
		{"duplicated transaction", &dup, "bad-txns-duplicate"},
		{"changed witness nonce", nonce, "bad-witness-merkle-match"},
		{"changed signature", sig, "bad-witness-merkle-match"},
		{"stripped witnesses", stripped, "bad-witness-nonce-size"},
	} {
		if c.block != &badRoot && c.block.BlockHash() != good.BlockHash() {
			t.Fatalf("%s: the mutation changed the block hash", c.name)
		}
		resp := node.submitResp(t, serialize(t, c.block))
		if resp.GetResult() != blockvalidatorv1.SubmitResult_SUBMIT_RESULT_REJECTED || resp.GetRejectReason() != c.rule {
			t.Fatalf("%s: %s %s (%s), want rejected by %s", c.name, resp.GetResult(), resp.GetRejectReason(),
				resp.GetRejectDetail(), c.rule)
		}
		if tip := resp.GetTipHeight(); tip != g.height-1 {
			t.Fatalf("%s: tip height %d after the rejection, want %d", c.name, tip, g.height-1)
		}
	}
	// The real block connects, and the block store holds it, not one of
	// the copies with its hash.
	raw := serialize(t, good)
	node.submit(t, raw)
	hash := good.BlockHash()
	got, err := node.bv.GetBlock(t.Context(), &blockvalidatorv1.GetBlockRequest{Hash: hash[:]})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.GetBlock(), raw) {
		t.Fatal("the block store holds a mutated copy of the connected block")
	}
}

// withTxs returns a copy of b whose transaction k (every one when k is
// negative) is changed by change; the other transactions are shared.
func withTxs(b *wire.MsgBlock, k int, change func(*wire.MsgTx)) *wire.MsgBlock {
	c := *b
	c.Transactions = append([]*wire.MsgTx(nil), b.Transactions...)
	for i, tx := range c.Transactions {
		if k < 0 || i == k {
			c.Transactions[i] = tx.Copy()
			change(c.Transactions[i])
		}
	}
	return &c
}
