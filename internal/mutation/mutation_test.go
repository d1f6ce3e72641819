package mutation

import (
	"errors"
	"testing"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/btcutil/v2"
	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/txscript/v2"
	"github.com/btcsuite/btcd/wire/v2"

	"github.com/btcmesh/btcmesh/internal/rules"
)

// segwitBlock builds a block of a coinbase committing to its witnesses
// and two spends with a witness each (three transactions: the merkle
// tree's last level is odd).
func segwitBlock() *wire.MsgBlock {
	cb := wire.NewMsgTx(1)
	cb.AddTxIn(&wire.TxIn{PreviousOutPoint: wire.OutPoint{Index: wire.MaxPrevOutIndex},
		SignatureScript: []byte{0x51, 0x51}, Witness: wire.TxWitness{make([]byte, 32)}})
	cb.AddTxOut(&wire.TxOut{Value: 50e8, PkScript: []byte{txscript.OP_TRUE}})
	mb := &wire.MsgBlock{Header: wire.BlockHeader{Version: 4}}
	mb.AddTransaction(cb)
	for i := range 2 {
		tx := wire.NewMsgTx(2)
		tx.AddTxIn(&wire.TxIn{PreviousOutPoint: wire.OutPoint{Hash: chainhash.Hash{byte(i + 1)}},
			Witness: wire.TxWitness{{byte(i), 2, 3}}})
		tx.AddTxOut(&wire.TxOut{Value: 1, PkScript: []byte{txscript.OP_TRUE}})
		mb.AddTransaction(tx)
	}
	cb.AddTxOut(&wire.TxOut{PkScript: CommitmentScript(btcutil.NewBlock(mb).Transactions(), cb.TxIn[0].Witness[0])})
	mb.Header.MerkleRoot = blockchain.CalcMerkleRoot(btcutil.NewBlock(mb).Transactions(), false)
	return mb
}

// changed copies b with transaction k (every one when negative) changed.
func changed(b *wire.MsgBlock, k int, change func(*wire.MsgTx)) *wire.MsgBlock {
	c := *b
	c.Transactions = nil
	for i, tx := range b.Transactions {
		if k < 0 || i == k {
			tx = tx.Copy()
			change(tx)
		}
		c.Transactions = append(c.Transactions, tx)
	}
	return &c
}

func TestCheck(t *testing.T) {
	good := segwitBlock()
	dup := *good
	dup.Transactions = append(append([]*wire.MsgTx(nil), good.Transactions...), good.Transactions[2])
	badRoot := *good
	badRoot.Header.MerkleRoot[0] ^= 1
	noWitness := changed(good, -1, func(tx *wire.MsgTx) {
		for _, in := range tx.TxIn {
			in.Witness = nil
		}
	})
	plain := changed(noWitness, 0, func(tx *wire.MsgTx) { tx.TxOut = tx.TxOut[:1] })
	plain.Header.MerkleRoot = blockchain.CalcMerkleRoot(btcutil.NewBlock(plain).Transactions(), false)

	for _, c := range []struct {
		name   string
		block  *wire.MsgBlock
		segwit bool
		want   rules.Kind // "" for none
	}{
		{"committed witnesses", good, true, ""},
		{"no witness, no commitment", plain, true, ""},
		{"no witness before segwit", plain, false, ""},
		{"witness before segwit", good, false, UnexpectedWitness},
		{"changed transaction", changed(good, 1, func(tx *wire.MsgTx) { tx.LockTime++ }), true, BadMerkleRoot},
		{"changed merkle root", &badRoot, true, BadMerkleRoot},
		{"duplicated last transaction", &dup, true, DuplicateTx},
		{"stripped witnesses", noWitness, true, BadWitnessNonce},
		{"changed witness", changed(good, 2, func(tx *wire.MsgTx) { tx.TxIn[0].Witness[0][1]++ }), true, BadWitnessRoot},
		{"changed witness nonce", changed(good, 0, func(tx *wire.MsgTx) { tx.TxIn[0].Witness[0][0]++ }), true, BadWitnessRoot},
		{"witness without commitment", changed(plain, 1, func(tx *wire.MsgTx) { tx.TxIn[0].Witness = wire.TxWitness{{1}} }), true, UnexpectedWitness},
	} {
		err := Check(btcutil.NewBlock(c.block), c.segwit)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v, want no mutation", c.name, err)
		case c.want != "" && !errors.Is(err, c.want):
			t.Errorf("%s: %v, want %s", c.name, err, c.want)
		case c.want != "" && !Is(c.want):
			t.Errorf("%s: Is(%s) is false", c.name, c.want)
		}
	}
	if Is(rules.MissingInputs) || Is("bad-cb-height") {
		t.Error("Is holds for a rule no mutation breaks")
	}
}
