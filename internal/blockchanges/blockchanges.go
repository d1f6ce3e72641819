// Package blockchanges is what connecting a block does to the UTXO set —
// per transaction, its txid, the outpoints it spends and its outputs — and
// its wire form, utxostore's BlockChanges. The blockvalidator, which has
// decoded and hashed the block already, sends it to the utxostore instead
// of the serialized block, so the store neither decodes nor hashes the
// block again.
package blockchanges

import (
	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/btcutil/v2"
	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"

	utxostorev1 "github.com/btcmesh/btcmesh/proto/btcmesh/utxostore/v1"

	"github.com/btcmesh/btcmesh/internal/packed"
	"github.com/btcmesh/btcmesh/internal/rules"
)

// Changes is one block's changes.
type Changes struct {
	// Hash is the block's hash; Parent its parent's.
	Hash, Parent chainhash.Hash
	// Txs are the block's transactions in block order.
	Txs []Tx
}

// Tx is one transaction's part of Changes.
type Tx struct {
	// Txid is the transaction's id.
	Txid chainhash.Hash
	// Spends are the outpoints its inputs spend, in input order; nil for
	// the coinbase.
	Spends []wire.OutPoint
	// Outs are all its outputs.
	Outs []*wire.TxOut
}

// Coinbase reports whether t, the i-th transaction of its block, is the
// coinbase: the first, spending nothing.
func (t *Tx) Coinbase(i int) bool { return i == 0 && len(t.Spends) == 0 }

// Of reads blk's changes, hashing every transaction.
func Of(blk *wire.MsgBlock) *Changes {
	ch := &Changes{Hash: blk.BlockHash(), Parent: blk.Header.PrevBlock, Txs: make([]Tx, len(blk.Transactions))}
	for i, tx := range blk.Transactions {
		t := &ch.Txs[i]
		t.Txid, t.Outs = tx.TxHash(), tx.TxOut
		if i == 0 && blockchain.IsCoinBaseTx(tx) {
			continue
		}
		t.Spends = make([]wire.OutPoint, len(tx.TxIn))
		for j, in := range tx.TxIn {
			t.Spends[j] = in.PreviousOutPoint
		}
	}
	return ch
}

// Proto encodes blk's changes for ConnectBlockRequest.changes, with the
// hashes blk has cached (or computes once).
func Proto(blk *btcutil.Block) *utxostorev1.BlockChanges {
	msg := blk.MsgBlock()
	pb := &utxostorev1.BlockChanges{Hash: blk.Hash()[:], PrevHash: msg.Header.PrevBlock[:],
		Txs: make([]*utxostorev1.TxChanges, len(msg.Transactions))}
	nIn, nOut := 0, 0
	for _, tx := range msg.Transactions {
		nIn += len(tx.TxIn)
		nOut += len(tx.TxOut)
	}
	// One backing array each for every transaction's spends and outputs.
	spends := make([]byte, 0, nIn*packed.OutPointLen)
	outs := make([]byte, 0, nOut*(8+1+34))
	txs := make([]utxostorev1.TxChanges, len(msg.Transactions))
	for i, tx := range blk.Transactions() {
		mtx := tx.MsgTx()
		t := &txs[i]
		t.Txid = tx.Hash()[:]
		if !(i == 0 && blockchain.IsCoinBaseTx(mtx)) {
			start := len(spends)
			for _, in := range mtx.TxIn {
				spends = packed.AppendOutPoint(spends, in.PreviousOutPoint)
			}
			t.Spends = spends[start:len(spends):len(spends)]
		}
		start := len(outs)
		for _, o := range mtx.TxOut {
			outs = packed.AppendOutput(outs, o)
		}
		t.Outputs = outs[start:len(outs):len(outs)]
		pb.Txs[i] = t
	}
	return pb
}

// FromProto checks and reads a ConnectBlockRequest's changes; every
// malformed field is an InvalidArgument naming it. The outputs' scripts
// stay those of pb.
func FromProto(pb *utxostorev1.BlockChanges) (*Changes, error) {
	ch := &Changes{Txs: make([]Tx, len(pb.GetTxs()))}
	if err := hashArg(&ch.Hash, pb.GetHash(), "changes.hash"); err != nil {
		return nil, err
	}
	if err := hashArg(&ch.Parent, pb.GetPrevHash(), "changes.prev_hash"); err != nil {
		return nil, err
	}
	if len(ch.Txs) == 0 {
		return nil, rules.InvalidArgument("changes.txs is empty: a block has at least its coinbase")
	}
	// One backing array each for every transaction's spends and outputs
	// (ends[i] is where transaction i's outputs end in outs).
	nSpends, outBytes := 0, 0
	for _, t := range pb.GetTxs() {
		nSpends += len(t.GetSpends()) / packed.OutPointLen
		outBytes += len(t.GetOutputs())
	}
	spends := make([]wire.OutPoint, nSpends)
	outs := make([]wire.TxOut, 0, outBytes/(8+1+22)+1)
	ends := make([]int, len(ch.Txs))
	for i, t := range pb.GetTxs() {
		c := &ch.Txs[i]
		if err := hashArg(&c.Txid, t.GetTxid(), "changes.txs[].txid"); err != nil {
			return nil, err
		}
		raw := t.GetSpends()
		if len(raw) == 0 && i > 0 {
			return nil, rules.InvalidArgument("changes.txs[%d] spends nothing: only the first transaction (the coinbase) may", i)
		}
		if n := len(raw) / packed.OutPointLen; n > 0 {
			c.Spends, spends = spends[:n:n], spends[n:]
		}
		if err := packed.ReadOutPoints(c.Spends, raw); err != nil {
			return nil, rules.InvalidArgument("changes.txs[%d].spends: %v", i, err)
		}
		first := len(outs)
		for rest := t.GetOutputs(); len(rest) > 0; {
			var o wire.TxOut
			var err error
			if rest, err = packed.NextOutput(rest, &o); err != nil {
				return nil, rules.InvalidArgument("changes.txs[%d].outputs, output %d: %v", i, len(outs)-first, err)
			}
			outs = append(outs, o)
		}
		ends[i] = len(outs)
	}
	start := 0
	for i := range ch.Txs {
		c := &ch.Txs[i]
		c.Outs = make([]*wire.TxOut, ends[i]-start)
		for k := range c.Outs {
			c.Outs[k] = &outs[start+k]
		}
		start = ends[i]
	}
	return ch, nil
}

// hashArg copies a 32-byte hash argument, or names the field that is not
// one.
func hashArg(dst *chainhash.Hash, b []byte, field string) error {
	if len(b) != chainhash.HashSize {
		return rules.InvalidArgument("%s is %d bytes, want %d", field, len(b), chainhash.HashSize)
	}
	copy(dst[:], b)
	return nil
}
