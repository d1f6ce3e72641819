package blockvalidator

import (
	"testing"
	"time"

	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/txscript/v2"
	"github.com/btcsuite/btcd/wire/v2"
)

// TestOverlay checks the UTXO changes of pending blocks that a
// speculative validation sees: outputs they create (at their height, with
// the coinbase flag), outputs they spend (even ones they created), and
// unspendable outputs as absent.
func TestOverlay(t *testing.T) {
	ext := wire.OutPoint{Hash: chainhash.Hash{9}, Index: 1}
	cb1 := coinbaseTx(t, 11, 50e8)
	a := spendTx(ext, 10)
	a.AddTxOut(&wire.TxOut{Value: 0, PkScript: []byte{txscript.OP_RETURN, 1, 2}})
	b1 := makeBlock(time.Now(), cb1, a)
	cb2 := coinbaseTx(t, 12, 50e8)
	aOut := wire.OutPoint{Hash: a.TxHash(), Index: 0}
	b := spendTx(aOut, 5)
	b2 := makeBlock(time.Now(), cb2, b)

	base := chainhash.Hash{1}
	c1 := loadedCand(*b1.Hash(), 11, b1, nil)
	c2 := loadedCand(*b2.Hash(), 12, b2, nil)
	ov := newOverlay(base, []*cand{c1, c2})

	for _, h := range []chainhash.Hash{base, c1.hash, c2.hash} {
		if _, ok := ov.tips[h]; !ok {
			t.Errorf("tip %s not allowed", h)
		}
	}
	if _, ok := ov.spent[ext]; !ok {
		t.Error("outpoint spent by the first pending block is not spent")
	}
	if _, ok := ov.created[aOut]; ok {
		t.Error("output created then spent by pending blocks is still there")
	}
	if _, ok := ov.spent[aOut]; !ok {
		t.Error("output created then spent by pending blocks is not spent")
	}
	opRet := wire.OutPoint{Hash: a.TxHash(), Index: 1}
	if _, ok := ov.created[opRet]; ok {
		t.Error("unspendable output is spendable in the overlay")
	}
	cbOut, ok := ov.created[wire.OutPoint{Hash: cb2.TxHash(), Index: 0}]
	if !ok || !cbOut.coinbase || cbOut.height != 12 || cbOut.out.Value != 50e8 {
		t.Errorf("second coinbase output: %+v (found %v)", cbOut, ok)
	}
	bOut, ok := ov.created[wire.OutPoint{Hash: b.TxHash(), Index: 0}]
	if !ok || bOut.coinbase || bOut.height != 12 {
		t.Errorf("b's output: %+v (found %v)", bOut, ok)
	}
}
