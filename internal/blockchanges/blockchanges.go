// Package blockchanges is what connecting a block does to the UTXO set —
// per transaction, its txid, the outpoints it spends and its outputs — and
// its wire form, utxostore's BlockChanges. The blockvalidator, which has
// decoded and hashed the block already, sends it to the utxostore instead
// of the serialized block, so the store neither decodes nor hashes the
// block again.
package blockchanges

import (
	"encoding/binary"

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

// Proto encodes blk's changes for ConnectBlockRequest.changes, in the
// packed form (packed_txs), with the hashes blk has cached (or computes
// once).
func Proto(blk *btcutil.Block) *utxostorev1.BlockChanges {
	msg := blk.MsgBlock()
	size := binary.MaxVarintLen64
	for _, tx := range msg.Transactions {
		size += chainhash.HashSize + 2*binary.MaxVarintLen64 + len(tx.TxIn)*packed.OutPointLen
		for _, o := range tx.TxOut {
			size += 8 + binary.MaxVarintLen64 + len(o.PkScript)
		}
	}
	b := binary.AppendUvarint(make([]byte, 0, size), uint64(len(msg.Transactions)))
	for i, tx := range blk.Transactions() {
		mtx := tx.MsgTx()
		b = append(b, tx.Hash()[:]...)
		if i == 0 && blockchain.IsCoinBaseTx(mtx) {
			b = binary.AppendUvarint(b, 0)
		} else {
			b = binary.AppendUvarint(b, uint64(len(mtx.TxIn)))
			for _, in := range mtx.TxIn {
				b = packed.AppendOutPoint(b, in.PreviousOutPoint)
			}
		}
		b = binary.AppendUvarint(b, uint64(len(mtx.TxOut)))
		for _, o := range mtx.TxOut {
			b = packed.AppendOutput(b, o)
		}
	}
	return &utxostorev1.BlockChanges{Hash: blk.Hash()[:], PrevHash: msg.Header.PrevBlock[:], PackedTxs: b}
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
	if len(pb.GetPackedTxs()) > 0 {
		if len(ch.Txs) > 0 {
			return nil, rules.InvalidArgument("changes sets both txs and packed_txs")
		}
		return ch, readPacked(ch, pb.GetPackedTxs())
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

// readPacked reads packed_txs into ch (see the field's documentation). A
// first pass checks the whole form and counts what it holds, so that the
// second fills one backing array each for the spends and the outputs.
func readPacked(ch *Changes, b []byte) error {
	n, nSpends, nOuts, err := scanPacked(b)
	if err != nil {
		return err
	}
	ch.Txs = make([]Tx, n)
	spends := make([]wire.OutPoint, nSpends)
	outs := make([]wire.TxOut, nOuts)
	outPtrs := make([]*wire.TxOut, nOuts)
	_, k := binary.Uvarint(b)
	b = b[k:]
	for i := range ch.Txs {
		t := &ch.Txs[i]
		copy(t.Txid[:], b)
		b = b[chainhash.HashSize:]
		m, k := binary.Uvarint(b)
		b = b[k:]
		if m > 0 {
			t.Spends, spends = spends[:m:m], spends[m:]
			_ = packed.ReadOutPoints(t.Spends, b[:m*packed.OutPointLen]) // checked by scanPacked
			b = b[m*packed.OutPointLen:]
		}
		m, k = binary.Uvarint(b)
		b = b[k:]
		t.Outs, outPtrs = outPtrs[:m:m], outPtrs[m:]
		for o := range t.Outs {
			b, _ = packed.NextOutput(b, &outs[0]) // checked by scanPacked
			t.Outs[o], outs = &outs[0], outs[1:]
		}
	}
	return nil
}

// scanPacked checks packed_txs and returns how many transactions, spends
// and outputs it holds; a malformed form is an InvalidArgument naming
// the transaction.
func scanPacked(b []byte) (txs, spends, outs int, err error) {
	bad := func(f string, a ...any) (int, int, int, error) {
		return 0, 0, 0, rules.InvalidArgument("changes.packed_txs: "+f, a...)
	}
	n, k := binary.Uvarint(b)
	// Every transaction takes at least its txid and two counts.
	if k <= 0 || n == 0 || n > uint64(len(b)-k)/(chainhash.HashSize+2) {
		return bad("bad transaction count")
	}
	b = b[k:]
	for i := range int(n) {
		if len(b) < chainhash.HashSize {
			return bad("transaction %d: truncated txid", i)
		}
		b = b[chainhash.HashSize:]
		m, k := binary.Uvarint(b)
		if k <= 0 || m > uint64(len(b)-k)/packed.OutPointLen {
			return bad("transaction %d: bad spend count", i)
		}
		if m == 0 && i > 0 {
			return bad("transaction %d spends nothing: only the first transaction (the coinbase) may", i)
		}
		spends += int(m)
		b = b[k+int(m)*packed.OutPointLen:]
		m, k = binary.Uvarint(b)
		if k <= 0 || m > uint64(len(b)-k)/9 {
			return bad("transaction %d: bad output count", i)
		}
		b = b[k:]
		for o := range int(m) {
			var out wire.TxOut
			if b, err = packed.NextOutput(b, &out); err != nil {
				return bad("transaction %d, output %d: %v", i, o, err)
			}
		}
		outs += int(m)
	}
	if len(b) != 0 {
		return bad("%d bytes after the last transaction", len(b))
	}
	return int(n), spends, outs, nil
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
