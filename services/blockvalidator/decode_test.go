package blockvalidator

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/btcsuite/btcd/btcutil/v2"
	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"
)

// bigBlock serializes a block of n transactions, every third without a
// witness, with scripts and witnesses of varied lengths (some long
// enough for three-byte compact sizes).
func bigBlock(t testing.TB, n int) []byte {
	t.Helper()
	mb := &wire.MsgBlock{Header: wire.BlockHeader{Version: 4, Nonce: 7}}
	cb := wire.NewMsgTx(1)
	cb.AddTxIn(&wire.TxIn{PreviousOutPoint: wire.OutPoint{Index: wire.MaxPrevOutIndex}, SignatureScript: []byte{1, 2},
		Witness: wire.TxWitness{make([]byte, 32)}})
	cb.AddTxOut(&wire.TxOut{Value: 50e8, PkScript: []byte{0x51}})
	mb.AddTransaction(cb)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 1; i < n; i++ {
		tx := wire.NewMsgTx(2)
		for j := range 1 + i%3 {
			in := &wire.TxIn{PreviousOutPoint: wire.OutPoint{Hash: chainhash.Hash{byte(i), byte(i >> 8), byte(j)}, Index: uint32(j)},
				SignatureScript: make([]byte, rng.IntN(3)*40), Sequence: uint32(i)}
			if i%3 != 0 {
				in.Witness = wire.TxWitness{make([]byte, 72), make([]byte, 33)}
				if i%50 == 1 {
					in.Witness = append(in.Witness, make([]byte, 300))
				}
			}
			tx.AddTxIn(in)
		}
		for range 1 + i%2 {
			tx.AddTxOut(&wire.TxOut{Value: int64(i), PkScript: make([]byte, 22+rng.IntN(300))})
		}
		tx.LockTime = uint32(i)
		mb.AddTransaction(tx)
	}
	var buf bytes.Buffer
	if err := mb.Serialize(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// decodeWire is decodeBlock's reference: wire's own block decoder and
// the canonical-size check.
func decodeWire(raw []byte) (*wire.MsgBlock, error) {
	mb, err := decodeSequential(raw)
	if err == nil && mb.SerializeSize() != len(raw) {
		err = fmt.Errorf("non-canonical")
	}
	return mb, err
}

// TestDecodeParallelMatchesWire decodes a large block on every core and
// checks it against wire's sequential decoder: the same transactions and
// hashes, and, over thousands of damaged copies (bytes changed, cut or
// inserted), the same verdict and the same block whenever both accept.
func TestDecodeParallelMatchesWire(t *testing.T) {
	raw := bigBlock(t, 600)
	if _, ok := decodeParallel(raw); !ok {
		t.Fatal("the parallel decoder declined a well-formed block")
	}
	same := func(name string, raw []byte) {
		t.Helper()
		want, werr := decodeWire(raw)
		got, gerr := decodeBlock(raw)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("%s: wire says %v, decodeBlock says %v", name, werr, gerr)
		}
		if werr != nil {
			return
		}
		if got.MsgBlock().Header != want.Header || len(got.Transactions()) != len(want.Transactions) {
			t.Fatalf("%s: header or transaction count differ", name)
		}
		for k, tx := range got.Transactions() {
			if *tx.Hash() != want.Transactions[k].TxHash() || *tx.WitnessHash() != want.Transactions[k].WitnessHash() {
				t.Fatalf("%s: transaction %d differs", name, k)
			}
		}
	}
	same("intact", raw)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 1500 {
		b := bytes.Clone(raw)
		at := wire.MaxBlockHeaderPayload + rng.IntN(len(raw)-wire.MaxBlockHeaderPayload)
		switch i % 4 {
		case 0:
			b[at] = byte(rng.IntN(256))
		case 1:
			b[at] ^= 0x80
		case 2:
			b = b[:at]
		case 3:
			b = append(b[:at:at], append([]byte{byte(rng.IntN(256))}, raw[at:]...)...)
		}
		same(fmt.Sprintf("damage %d at %d", i, at), b)
	}
}

// BenchmarkDecodeBlock decodes and hashes a 1,000-transaction block: on
// every core (decodeBlock) and with wire's sequential decoder.
func BenchmarkDecodeBlock(b *testing.B) {
	raw := bigBlock(b, 1000)
	b.SetBytes(int64(len(raw)))
	b.Run("parallel", func(b *testing.B) {
		for b.Loop() {
			if _, err := decodeBlock(raw); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("sequential", func(b *testing.B) {
		for b.Loop() {
			mb, err := decodeWire(raw)
			if err != nil {
				b.Fatal(err)
			}
			hashTxs(btcutil.NewBlock(mb).Transactions())
		}
	})
}
