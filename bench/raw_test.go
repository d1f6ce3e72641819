package bench

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/btcsuite/btcd/txscript/v2"
	"github.com/btcsuite/btcd/wire/v2"

	"github.com/btcmesh/btcmesh/internal/libsecp"
)

// sigJob is one parsed signature with its public key and message.
type sigJob struct {
	sig  *ecdsa.Signature
	pub  *btcec.PublicKey
	hash []byte
	// der and pubKey are the signature (without its hash type) and key
	// as the transaction carries them, for libsecp256k1.
	der, pubKey []byte
}

// sigJobs extracts every P2WPKH signature of txs (spending coins, in
// order) with the BIP143 message it signs.
func sigJobs(t testing.TB, coins []coin, txs []*wire.MsgTx) []sigJob {
	t.Helper()
	byOp := make(map[wire.OutPoint]coin, len(coins))
	for _, c := range coins {
		byOp[c.op] = c
	}
	var jobs []sigJob
	for _, tx := range txs {
		prev := make(map[wire.OutPoint]*wire.TxOut, len(tx.TxIn))
		for _, in := range tx.TxIn {
			c := byOp[in.PreviousOutPoint]
			prev[in.PreviousOutPoint] = &wire.TxOut{Value: c.value, PkScript: c.key.pkScript}
		}
		hashes := txscript.NewTxSigHashes(tx, txscript.NewMultiPrevOutFetcher(prev))
		for i, in := range tx.TxIn {
			c := byOp[in.PreviousOutPoint]
			raw := in.Witness[0]
			sig, err := ecdsa.ParseDERSignature(raw[:len(raw)-1])
			if err != nil {
				t.Fatal(err)
			}
			pub, err := btcec.ParsePubKey(in.Witness[1])
			if err != nil {
				t.Fatal(err)
			}
			h, err := txscript.CalcWitnessSigHash(c.key.pkScript, hashes, txscript.SigHashAll, tx, i, c.value)
			if err != nil {
				t.Fatal(err)
			}
			jobs = append(jobs, sigJob{sig: sig, pub: pub, hash: h, der: raw[:len(raw)-1], pubKey: in.Witness[1]})
		}
	}
	return jobs
}

// verifyAll verifies jobs with btcd's verifier (parsed signatures and
// keys) on GOMAXPROCS goroutines and returns the time.
func verifyAll(t testing.TB, jobs []sigJob) time.Duration {
	t.Helper()
	return verifyEach(t, jobs, func(j *sigJob) bool { return j.sig.Verify(j.hash, j.pub) })
}

// verifyAllLibsecp verifies jobs with libsecp256k1 (from their encodings,
// as btcmesh's validators do) on GOMAXPROCS goroutines and returns the
// time; 0 in a build without cgo.
func verifyAllLibsecp(t testing.TB, jobs []sigJob) time.Duration {
	t.Helper()
	if !libsecp.Linked {
		return 0
	}
	return verifyEach(t, jobs, func(j *sigJob) bool { return libsecp.VerifyECDSA(j.pubKey, j.der, j.hash) })
}

func verifyEach(t testing.TB, jobs []sigJob, verify func(*sigJob) bool) time.Duration {
	t.Helper()
	var next atomic.Int64
	var bad atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(jobs) {
					return
				}
				if !verify(&jobs[i]) {
					bad.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	d := time.Since(start)
	if bad.Load() != 0 {
		t.Fatalf("%d signatures did not verify", bad.Load())
	}
	return d
}
