package txvalidator

import (
	"fmt"
	"testing"

	"github.com/btcsuite/btcd/address/v2"
	"github.com/btcsuite/btcd/txscript/v2"
	"github.com/btcsuite/btcd/wire/v2"
	"github.com/prometheus/client_golang/prometheus/testutil"

	commonv1 "github.com/btcmesh/btcmesh/proto/btcmesh/common/v1"
	txvalidatorv1 "github.com/btcmesh/btcmesh/proto/btcmesh/txvalidator/v1"

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

// TestSettledP2WPKHAgreesWithEngine checks the fast path against btcd's
// engine: over every combination of key encoding, hash type, signature
// form and flag set, an input preverify settles (so the engine does not
// run) is one the engine, verifying on its own, accepts. The canonical
// spend must be settled, and some engine-valid spends must not be, so
// both paths are exercised.
func TestSettledP2WPKHAgreesWithEngine(t *testing.T) {
	if !libsecp.Linked {
		t.Skip("no libsecp256k1 in this build: nothing is settled ahead of the engine")
	}
	e, net := regtestEngine(t, Config{Workers: 1})
	w := newWallet(9)
	pub := w.priv.PubKey()
	hybrid := pub.SerializeUncompressed()
	hybrid[0] = 0x06 | hybrid[64]&1

	flagSets := map[string]txscript.ScriptFlags{
		"consensus":      net.ScriptFlags(testHeight),
		"policy":         net.PolicyScriptFlags(testHeight),
		"witness only":   txscript.ScriptVerifyWitness,
		"witness, p2sh":  txscript.ScriptVerifyWitness | txscript.ScriptBip16,
		"none":           0,
		"standard+witns": txscript.StandardVerifyFlags,
	}
	keys := map[string][]byte{
		"compressed":   pub.SerializeCompressed(),
		"uncompressed": pub.SerializeUncompressed(),
		"hybrid":       hybrid,
	}
	hashTypes := []txscript.SigHashType{txscript.SigHashAll, txscript.SigHashNone, txscript.SigHashSingle,
		txscript.SigHashAll | txscript.SigHashAnyOneCanPay, txscript.SigHashSingle | txscript.SigHashAnyOneCanPay,
		0x00, 0x04, 0x84, 0x41}
	sigForms := []string{"low-s", "high-s", "padded-r"}

	var settled, engineOnly, canonical int
	for keyName, key := range keys {
		for _, programKey := range []string{"compressed", "uncompressed"} {
			program := address.Hash160(keys[programKey])
			pk := append([]byte{txscript.OP_0, 20}, program...)
			for _, ht := range hashTypes {
				for _, form := range sigForms {
					tx := wire.NewMsgTx(2)
					tx.AddTxIn(wire.NewTxIn(&wire.OutPoint{Index: 3}, nil, nil))
					tx.AddTxOut(out(t, w, p2wpkh, 40_000))
					prev := txscript.NewCannedPrevOutputFetcher(pk, 50_000)
					sigHashes := txscript.NewTxSigHashes(tx, prev)
					sig, err := txscript.RawTxInWitnessSignature(tx, sigHashes, 0, 50_000, pk, ht, w.priv)
					if err != nil {
						t.Fatal(err)
					}
					switch form {
					case "high-s":
						sig = highS(t, sig)
					case "padded-r":
						sig = padR(sig)
					}
					tx.TxIn[0].Witness = wire.TxWitness{sig, key}
					for flagName, flags := range flagSets {
						j := &job{tx: tx, sigHashes: sigHashes, fetcher: nil,
							prevouts: []*txvalidatorv1.Prevout{{Output: &commonv1.TxOut{Value: 50_000, PkScript: pk}}},
							sigCache: txscript.NewSigCache(4), start: 0, end: 1}
						isSettled := e.preverify(j, 0, flags)
						// The engine on its own: no cache entry to find.
						j.sigCache = nil
						j.fetcher = txscript.NewMultiPrevOutFetcher(map[wire.OutPoint]*wire.TxOut{
							tx.TxIn[0].PreviousOutPoint: wire.NewTxOut(50_000, pk)})
						engineErr := e.execute(j, 0, flags)
						name := fmt.Sprintf("key %s, program of %s key, hash type %#x, %s, flags %s", keyName, programKey, ht, form, flagName)
						switch {
						case isSettled && engineErr != nil:
							t.Errorf("%s: settled, but the engine rejects it: %v", name, engineErr)
						case isSettled:
							settled++
						case engineErr == nil:
							engineOnly++
						}
						if keyName == "compressed" && programKey == "compressed" && ht == txscript.SigHashAll &&
							form == "low-s" && flagName == "consensus" {
							canonical++
							if !isSettled {
								t.Errorf("%s: the canonical spend was not settled", name)
							}
						}
					}
				}
			}
		}
	}
	if canonical != 1 || settled == 0 || engineOnly == 0 {
		t.Fatalf("canonical %d, settled %d, engine-only valid %d: want 1 and some of each", canonical, settled, engineOnly)
	}
	t.Logf("%d combinations settled ahead of the engine, %d valid only through the engine", settled, engineOnly)
}

// padR re-encodes a DER signature (with hash type byte) with a needless
// leading zero on R: the same numbers, but not strict DER (BIP66).
func padR(sig []byte) []byte {
	der, hashType := sig[:len(sig)-1], sig[len(sig)-1]
	rLen := int(der[3])
	out := []byte{0x30, der[1] + 1, 0x02, byte(rLen + 1), 0x00}
	out = append(out, der[4:]...)
	return append(out, hashType)
}
