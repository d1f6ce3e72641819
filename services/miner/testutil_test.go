package miner

import (
	"bytes"
	"testing"

	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"
)

// confirmedOutpoint is a made-up outpoint standing for a confirmed coin.
func confirmedOutpoint(n byte) wire.OutPoint {
	var h chainhash.Hash
	h[0], h[31] = n, 0xcc
	return wire.OutPoint{Hash: h, Index: uint32(n)}
}

// makeTx spends ins and creates outs outputs of 1000 sat each; witness
// adds a dummy witness to each input.
func makeTx(ins []wire.OutPoint, outs int, witness bool) *wire.MsgTx {
	tx := wire.NewMsgTx(2)
	for _, op := range ins {
		in := wire.NewTxIn(&op, []byte{0x51}, nil)
		if witness {
			in.SignatureScript = nil
			in.Witness = wire.TxWitness{bytes.Repeat([]byte{0x01}, 72), bytes.Repeat([]byte{0x02}, 33)}
		}
		tx.AddTxIn(in)
	}
	for range outs {
		tx.AddTxOut(wire.NewTxOut(1000, []byte{0x00, 0x14, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}))
	}
	return tx
}

// newEntry wraps tx as a mempool entry paying fee, with parents found in p.
func newEntry(t *testing.T, p *pool, tx *wire.MsgTx, fee int64) *entry {
	t.Helper()
	var buf bytes.Buffer
	if err := tx.Serialize(&buf); err != nil {
		t.Fatal(err)
	}
	e := &entry{tx: tx, raw: buf.Bytes(), txid: tx.TxHash(), wtxid: tx.WitnessHash(), fee: fee,
		weight: weightOf(tx), parents: map[chainhash.Hash]struct{}{}}
	e.vsize = policyVSize(e.weight, 0)
	for _, in := range tx.TxIn {
		if _, ok := p.entries[in.PreviousOutPoint.Hash]; ok {
			e.parents[in.PreviousOutPoint.Hash] = struct{}{}
		}
	}
	return e
}

func outpoint(tx *wire.MsgTx, i uint32) wire.OutPoint {
	return wire.OutPoint{Hash: tx.TxHash(), Index: i}
}
