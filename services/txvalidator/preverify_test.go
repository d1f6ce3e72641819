package txvalidator

import (
	"testing"

	"github.com/btcsuite/btcd/wire/v2"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/btcmesh/btcmesh/internal/libsecp"
	"github.com/btcmesh/btcmesh/internal/rules"
)

// TestPreverify checks the libsecp256k1 path through the engine: every
// single-key ECDSA input (P2PKH, P2WPKH with a compressed or an
// uncompressed key, a high-s signature under consensus flags) is
// pre-verified and the transaction is valid; a taproot input is left to
// the engine; a broken signature is not pre-verified and is rejected at
// its input. With and without a process-wide signature cache.
func TestPreverify(t *testing.T) {
	for _, entries := range []int{0, 1000} {
		e := startEnv(t, Config{SigCacheEntries: entries, Workers: 2})
		alice, bob := newWallet(3), newWallet(4)
		count := func() int { return int(testutil.ToFloat64(e.svc.eng.m.preverified)) }
		want := func(n int) int {
			if libsecp.Linked {
				return n
			}
			return 0
		}

		before := count()
		_, j := build(t, txSpec{
			coins: []coin{fundingCoin(alice, p2pkh, 1, 50_000), fundingCoin(alice, p2wpkh, 2, 50_000),
				fundingCoin(alice, p2wpkhUncompressed, 3, 50_000), fundingCoin(alice, p2tr, 4, 50_000)},
			outs: []*wire.TxOut{out(t, bob, p2wpkh, 190_000)},
		})
		wantValid(t, e.validate(t, fullReq(false, j)).GetResults()[0])
		if got := count() - before; got != want(3) {
			t.Errorf("cache %d: %d inputs pre-verified, want %d (%s)", entries, got, want(3), libsecp.Name)
		}

		before = count()
		tx, j := build(t, txSpec{
			coins: []coin{fundingCoin(alice, p2wpkh, 5, 50_000)},
			outs:  []*wire.TxOut{out(t, bob, p2wpkh, 40_000)},
		})
		tx.TxIn[0].Witness[0] = highS(t, tx.TxIn[0].Witness[0])
		j.Tx = serialize(t, tx)
		wantValid(t, e.validate(t, fullReq(false, j)).GetResults()[0])
		if got := count() - before; got != want(1) {
			t.Errorf("cache %d: high-s signature: %d pre-verified, want %d", entries, got, want(1))
		}

		before = count()
		tx, j = build(t, txSpec{
			coins: []coin{fundingCoin(alice, p2wpkh, 6, 50_000), fundingCoin(alice, p2pkh, 7, 50_000)},
			outs:  []*wire.TxOut{out(t, bob, p2wpkh, 90_000)},
		})
		corruptSig(t, tx, 1)
		j.Tx = serialize(t, tx)
		r := e.validate(t, fullReq(false, j)).GetResults()[0]
		wantRule(t, r, string(rules.ScriptFailed))
		if r.GetFailedInput() != 1 {
			t.Errorf("failed_input %d, want 1", r.GetFailedInput())
		}
		if got := count() - before; got > want(1) {
			t.Errorf("cache %d: %d pre-verified, want at most %d (the corrupted one must not be)", entries, got, want(1))
		}
	}
}
