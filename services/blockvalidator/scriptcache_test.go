package blockvalidator

import (
	"testing"

	"github.com/btcsuite/btcd/btcutil/v2"
	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/txscript/v2"
	"github.com/btcsuite/btcd/wire/v2"

	"github.com/btcmesh/btcmesh/internal/chain"
)

func TestScriptCache(t *testing.T) {
	net, err := chain.Lookup("mainnet")
	if err != nil {
		t.Fatal(err)
	}
	c, err := newScriptCache(net, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.max = 3
	w := func(b byte) chainhash.Hash { return chainhash.Hash{b} }

	if c.covers(w(1), 500_000) {
		t.Fatal("empty cache covers a transaction")
	}
	c.add(w(1), 500_000)
	if !c.covers(w(1), 500_000) || !c.covers(w(1), 800_000) {
		t.Fatal("entry validated under policy flags does not cover consensus flags")
	}
	// An entry whose flags lack one the block needs does not serve it.
	c.mu.Lock()
	c.entries[w(1)] = scriptEntry{flags: net.ScriptFlags(500_000), height: 500_000}
	c.mu.Unlock()
	if c.covers(w(1), net.TaprootHeight) {
		t.Fatal("entry without TAPROOT covers a block where taproot is active")
	}
	if !c.covers(w(1), 500_001) {
		t.Fatal("entry does not cover a block with the same consensus flags")
	}
	if net.ScriptFlags(net.TaprootHeight)&txscript.ScriptVerifyTaproot == 0 {
		t.Fatal("test assumption: taproot flag at TaprootHeight")
	}

	// Bounded: the oldest entry goes first.
	c.add(w(2), 1)
	c.add(w(3), 1)
	c.add(w(4), 1)
	if c.covers(w(1), 1) || !c.covers(w(2), 1) || !c.covers(w(4), 1) {
		t.Fatal("eviction did not drop the oldest entry only")
	}

	// Connected transactions are forgotten.
	tx := wire.NewMsgTx(2)
	tx.AddTxIn(&wire.TxIn{PreviousOutPoint: wire.OutPoint{Index: 7}, Witness: wire.TxWitness{{1}}})
	tx.AddTxOut(&wire.TxOut{Value: 1})
	wtxid := tx.WitnessHash()
	c.add(wtxid, 1)
	if !c.covers(wtxid, 1) {
		t.Fatal("added transaction not covered")
	}
	c.forget([]*btcutil.Tx{btcutil.NewTx(tx)})
	if c.covers(wtxid, 1) {
		t.Fatal("forgotten transaction still covered")
	}
}
