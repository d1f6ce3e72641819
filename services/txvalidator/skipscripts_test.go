package txvalidator

import (
	"testing"

	"github.com/btcsuite/btcd/wire/v2"

	txvalidatorv1 "github.com/btcmesh/btcmesh/proto/btcmesh/txvalidator/v1"

	"github.com/btcmesh/btcmesh/internal/rules"
)

// TestSkipScripts: skip_scripts leaves out the scripts only; every other
// MODE_FULL check still runs and fee and sigop cost are still reported.
func TestSkipScripts(t *testing.T) {
	e := startEnv(t, Config{SigCacheEntries: 0, Workers: 2})
	alice, bob := newWallet(21), newWallet(22)

	tx, job := build(t, txSpec{
		coins: []coin{fundingCoin(alice, p2wpkh, 0, 100_000), fundingCoin(alice, p2wpkh, 1, 100_000)},
		outs:  []*wire.TxOut{out(t, bob, p2wpkh, 190_000)},
	})
	corruptSig(t, tx, 1)
	bad := &txvalidatorv1.TxJob{Tx: serialize(t, tx), Prevouts: job.Prevouts}
	wantRule(t, e.validate(t, fullReq(false, bad)).GetResults()[0], string(rules.ScriptFailed))

	bad.SkipScripts = true
	r := e.validate(t, fullReq(false, bad)).GetResults()[0]
	wantValid(t, r)
	if r.GetFee() != 10_000 || r.GetSigopCost() != 2 {
		t.Fatalf("skip_scripts: fee %d sigop cost %d, want 10000 and 2", r.GetFee(), r.GetSigopCost())
	}

	// Spending more than the inputs is still caught.
	_, greedy := build(t, txSpec{
		coins: []coin{fundingCoin(alice, p2wpkh, 2, 100_000)},
		outs:  []*wire.TxOut{out(t, bob, p2wpkh, 100_001)},
	})
	greedy.SkipScripts = true
	wantRule(t, e.validate(t, fullReq(false, greedy)).GetResults()[0], string(rules.InBelowOut))

	// So is an immature coinbase.
	young := fundingCoin(alice, p2wpkh, 3, 100_000)
	young.coinbase, young.height = true, testHeight-10
	_, imm := build(t, txSpec{coins: []coin{young}, outs: []*wire.TxOut{out(t, bob, p2wpkh, 90_000)}})
	imm.SkipScripts = true
	wantRule(t, e.validate(t, fullReq(false, imm)).GetResults()[0], string(rules.PrematureCoinbaseSpend))
}
