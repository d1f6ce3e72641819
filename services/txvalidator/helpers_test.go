package txvalidator

import (
	"bytes"
	"context"
	"math/big"
	"testing"
	"time"

	"github.com/btcsuite/btcd/address/v2"
	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/schnorr"
	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/txscript/v2"
	"github.com/btcsuite/btcd/wire/v2"
	"github.com/nats-io/nats.go"

	commonv1 "github.com/btcmesh/btcmesh/proto/btcmesh/common/v1"
	txvalidatorv1 "github.com/btcmesh/btcmesh/proto/btcmesh/txvalidator/v1"

	"github.com/btcmesh/btcmesh/internal/chain"
	"github.com/btcmesh/btcmesh/internal/grpcclient"
	"github.com/btcmesh/btcmesh/internal/runner"
	"github.com/btcmesh/btcmesh/internal/testenv"
)

// Chain context used by most tests (regtest: every soft fork active).
const (
	testHeight = 500
	testMTP    = 1_700_000_000
	testTime   = testMTP + 600
)

func testContext() *txvalidatorv1.ChainContext {
	return &txvalidatorv1.ChainContext{Height: testHeight, MedianTimePast: testMTP, BlockTime: testTime}
}

// env is a running txvalidator reachable over gRPC and NATS.
type env struct {
	svc    *Service
	deps   runner.Deps
	nc     *nats.Conn
	client txvalidatorv1.TxValidatorServiceClient
}

// regtestEngine returns an engine with cfg on regtest, called in
// process (no gRPC or NATS), and the network.
func regtestEngine(t testing.TB, cfg Config) (*engine, chain.Network) {
	t.Helper()
	net, err := chain.Lookup("regtest")
	if err != nil {
		t.Fatal(err)
	}
	m, err := newMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	return newEngine(net, cfg, m), net
}

func startEnv(t *testing.T, cfg Config) *env {
	t.Helper()
	nc := testenv.NATS(t)
	deps := testenv.Deps(t, nc)
	svc, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	addr := testenv.Listener(t)
	testenv.Serve(t, addr, svc)
	cc, err := grpcclient.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return &env{svc: svc, deps: deps, nc: nc, client: txvalidatorv1.NewTxValidatorServiceClient(cc)}
}

func (e *env) validate(t *testing.T, req *txvalidatorv1.ValidateRequest) *txvalidatorv1.ValidateResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := e.client.Validate(ctx, req)
	if err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if len(resp.GetResults()) != len(req.GetJobs()) {
		t.Fatalf("%d results for %d jobs", len(resp.GetResults()), len(req.GetJobs()))
	}
	return resp
}

// kind of output a test key can receive and spend.
type kind int

const (
	p2pkh kind = iota
	p2wpkh
	p2tr
	p2wpkhUncompressed
)

// wallet is one key and the scripts it can spend.
type wallet struct {
	priv *btcec.PrivateKey
}

func newWallet(seed byte) *wallet {
	b := bytes.Repeat([]byte{seed}, 32)
	priv, _ := btcec.PrivKeyFromBytes(b)
	return &wallet{priv: priv}
}

func (w *wallet) pkScript(t testing.TB, k kind) []byte {
	t.Helper()
	pub := w.priv.PubKey()
	var (
		s   []byte
		err error
	)
	switch k {
	case p2pkh:
		s, err = txscript.NewScriptBuilder().AddOp(txscript.OP_DUP).AddOp(txscript.OP_HASH160).
			AddData(address.Hash160(pub.SerializeCompressed())).AddOp(txscript.OP_EQUALVERIFY).
			AddOp(txscript.OP_CHECKSIG).Script()
	case p2wpkh:
		s, err = txscript.NewScriptBuilder().AddOp(txscript.OP_0).
			AddData(address.Hash160(pub.SerializeCompressed())).Script()
	case p2wpkhUncompressed:
		s, err = txscript.NewScriptBuilder().AddOp(txscript.OP_0).
			AddData(address.Hash160(pub.SerializeUncompressed())).Script()
	case p2tr:
		s, err = txscript.NewScriptBuilder().AddOp(txscript.OP_1).
			AddData(schnorr.SerializePubKey(txscript.ComputeTaprootKeyNoScript(pub))).Script()
	}
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// coin is a spendable output with its prevout metadata.
type coin struct {
	op       wire.OutPoint
	kind     kind
	value    int64
	height   int32
	coinbase bool
	mtp      int64
	w        *wallet
}

func fundingCoin(w *wallet, k kind, n uint32, value int64) coin {
	var h chainhash.Hash
	h[0], h[1], h[31] = byte(n), byte(n>>8), 0xaa
	return coin{op: wire.OutPoint{Hash: h, Index: n}, kind: k, value: value, height: 100, mtp: testMTP - 100000, w: w}
}

// txSpec describes a transaction to build and sign.
type txSpec struct {
	version  int32
	lockTime uint32
	sequence []uint32 // per input; default 0xffffffff
	coins    []coin
	outs     []*wire.TxOut
}

// build signs spec and returns the transaction and its job.
func build(t testing.TB, spec txSpec) (*wire.MsgTx, *txvalidatorv1.TxJob) {
	t.Helper()
	tx := wire.NewMsgTx(spec.version)
	if spec.version == 0 {
		tx.Version = 2
	}
	tx.LockTime = spec.lockTime
	prevOuts := map[wire.OutPoint]*wire.TxOut{}
	job := &txvalidatorv1.TxJob{}
	for i, c := range spec.coins {
		seq := uint32(wire.MaxTxInSequenceNum)
		if i < len(spec.sequence) {
			seq = spec.sequence[i]
		}
		in := wire.NewTxIn(&c.op, nil, nil)
		in.Sequence = seq
		tx.AddTxIn(in)
		pk := c.w.pkScript(t, c.kind)
		prevOuts[c.op] = wire.NewTxOut(c.value, pk)
		job.Prevouts = append(job.Prevouts, &txvalidatorv1.Prevout{
			Output:         &commonv1.TxOut{Value: c.value, PkScript: pk},
			Height:         c.height,
			Coinbase:       c.coinbase,
			MedianTimePast: c.mtp,
		})
	}
	for _, o := range spec.outs {
		tx.AddTxOut(o)
	}
	sigHashes := txscript.NewTxSigHashes(tx, txscript.NewMultiPrevOutFetcher(prevOuts))
	for i, c := range spec.coins {
		pk := prevOuts[c.op].PkScript
		switch c.kind {
		case p2pkh:
			ss, err := txscript.SignatureScript(tx, i, pk, txscript.SigHashAll, c.w.priv, true)
			if err != nil {
				t.Fatal(err)
			}
			tx.TxIn[i].SignatureScript = ss
		case p2wpkh, p2wpkhUncompressed:
			wit, err := txscript.WitnessSignature(tx, sigHashes, i, c.value, pk, txscript.SigHashAll, c.w.priv, c.kind == p2wpkh)
			if err != nil {
				t.Fatal(err)
			}
			tx.TxIn[i].Witness = wit
		case p2tr:
			wit, err := txscript.TaprootWitnessSignature(tx, sigHashes, i, c.value, pk, txscript.SigHashDefault, c.w.priv)
			if err != nil {
				t.Fatal(err)
			}
			tx.TxIn[i].Witness = wit
		}
	}
	job.Tx = serialize(t, tx)
	return tx, job
}

func serialize(t testing.TB, tx *wire.MsgTx) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := tx.Serialize(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// corruptSig flips a bit inside input i's signature (scriptSig or witness).
func corruptSig(t testing.TB, tx *wire.MsgTx, i int) {
	t.Helper()
	in := tx.TxIn[i]
	if len(in.Witness) > 0 {
		sig := append([]byte(nil), in.Witness[0]...)
		sig[10] ^= 0x01
		in.Witness[0] = sig
		return
	}
	pushes, err := txscript.PushedData(in.SignatureScript)
	if err != nil || len(pushes) != 2 {
		t.Fatalf("unexpected scriptSig: %v", err)
	}
	sig := append([]byte(nil), pushes[0]...)
	sig[10] ^= 0x01
	ss, err := txscript.NewScriptBuilder().AddData(sig).AddData(pushes[1]).Script()
	if err != nil {
		t.Fatal(err)
	}
	in.SignatureScript = ss
}

// highS rewrites a DER signature (with hash type byte) to use N-S, which
// is consensus-valid but breaks the LOW_S policy.
func highS(t testing.TB, sig []byte) []byte {
	t.Helper()
	der, hashType := sig[:len(sig)-1], sig[len(sig)-1]
	if der[0] != 0x30 || der[2] != 0x02 {
		t.Fatal("not DER")
	}
	rLen := int(der[3])
	r := der[4 : 4+rLen]
	if der[4+rLen] != 0x02 {
		t.Fatal("not DER")
	}
	sLen := int(der[5+rLen])
	s := new(big.Int).SetBytes(der[6+rLen : 6+rLen+sLen])
	s.Sub(btcec.S256().N, s)
	sb := s.Bytes()
	if sb[0]&0x80 != 0 {
		sb = append([]byte{0}, sb...)
	}
	out := []byte{0x30, byte(4 + len(r) + len(sb)), 0x02, byte(len(r))}
	out = append(out, r...)
	out = append(out, 0x02, byte(len(sb)))
	out = append(out, sb...)
	return append(out, hashType)
}

func out(t testing.TB, w *wallet, k kind, v int64) *wire.TxOut {
	return wire.NewTxOut(v, w.pkScript(t, k))
}

func fullReq(policy bool, jobs ...*txvalidatorv1.TxJob) *txvalidatorv1.ValidateRequest {
	return &txvalidatorv1.ValidateRequest{Jobs: jobs, Context: testContext(), Mode: txvalidatorv1.Mode_MODE_FULL, Policy: policy}
}

func wantValid(t *testing.T, r *txvalidatorv1.TxResult) {
	t.Helper()
	if !r.GetValid() {
		t.Fatalf("want valid, got %v: %s", r.GetRejection().GetRule(), r.GetRejection().GetDetail())
	}
	if r.GetFailedInput() != -1 {
		t.Fatalf("valid result with failed_input %d", r.GetFailedInput())
	}
}

func wantRule(t *testing.T, r *txvalidatorv1.TxResult, rule string) {
	t.Helper()
	if r.GetValid() {
		t.Fatalf("want %s, got valid", rule)
	}
	if r.GetRejection().GetRule() != rule {
		t.Fatalf("want %s, got %s: %s", rule, r.GetRejection().GetRule(), r.GetRejection().GetDetail())
	}
}
