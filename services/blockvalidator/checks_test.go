package blockvalidator

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/btcutil/v2"
	"github.com/btcsuite/btcd/chaincfg/v2"
	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/txscript/v2"
	"github.com/btcsuite/btcd/wire/v2"

	"github.com/btcmesh/btcmesh/internal/chain"
	"github.com/btcmesh/btcmesh/internal/rules"
)

func regtest(t *testing.T) chain.Network {
	t.Helper()
	n, err := chain.Lookup("regtest")
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func coinbaseTx(t *testing.T, height int32, value int64) *wire.MsgTx {
	t.Helper()
	script, err := txscript.NewScriptBuilder().AddInt64(int64(height)).AddData([]byte("btcmesh")).Script()
	if err != nil {
		t.Fatal(err)
	}
	tx := wire.NewMsgTx(1)
	tx.AddTxIn(&wire.TxIn{
		PreviousOutPoint: wire.OutPoint{Index: wire.MaxPrevOutIndex},
		SignatureScript:  script,
		Sequence:         wire.MaxTxInSequenceNum,
	})
	tx.AddTxOut(&wire.TxOut{Value: value, PkScript: []byte{txscript.OP_TRUE}})
	return tx
}

func spendTx(prev wire.OutPoint, value int64) *wire.MsgTx {
	tx := wire.NewMsgTx(2)
	tx.AddTxIn(&wire.TxIn{PreviousOutPoint: prev, Sequence: wire.MaxTxInSequenceNum})
	tx.AddTxOut(&wire.TxOut{Value: value, PkScript: []byte{txscript.OP_TRUE}})
	return tx
}

func makeBlock(ts time.Time, txs ...*wire.MsgTx) *btcutil.Block {
	mb := &wire.MsgBlock{Header: wire.BlockHeader{Version: 0x20000000, Timestamp: ts, Bits: 0x207fffff}}
	for _, tx := range txs {
		mb.AddTransaction(tx)
	}
	b := btcutil.NewBlock(mb)
	mb.Header.MerkleRoot = blockchain.CalcMerkleRoot(b.Transactions(), false)
	return btcutil.NewBlock(mb)
}

func kindOf(t *testing.T, err error) rules.Kind {
	t.Helper()
	if err == nil {
		return ""
	}
	k, ok := rules.KindOf(err)
	if !ok {
		t.Fatalf("not a rule error: %v", err)
	}
	return k
}

func TestDecodeBlock(t *testing.T) {
	var buf bytes.Buffer
	if err := regtest(t).Params.GenesisBlock.Serialize(&buf); err != nil {
		t.Fatal(err)
	}
	b, err := decodeBlock(buf.Bytes())
	if err != nil {
		t.Fatalf("genesis: %v", err)
	}
	if *b.Hash() != *regtest(t).Params.GenesisHash {
		t.Fatalf("hash %s, want genesis", b.Hash())
	}
	if _, err := decodeBlock(append(buf.Bytes(), 0)); err == nil || !strings.Contains(err.Error(), "trailing") {
		t.Fatalf("trailing byte: err = %v", err)
	}
	if _, err := decodeBlock(buf.Bytes()[:100]); err == nil {
		t.Fatal("truncated block decoded")
	}
}

func TestCheckContextual(t *testing.T) {
	net := regtest(t)
	now := time.Unix(1_700_000_000, 0)
	mtp := now.Add(-time.Hour).Unix()

	good := makeBlock(now, coinbaseTx(t, 5, 50e8))
	if err := checkContextual(good, 5, mtp, net, false); err != nil {
		t.Fatalf("good block: %v", err)
	}
	if k := kindOf(t, checkContextual(good, 6, mtp, net, false)); k != "bad-cb-height" {
		t.Fatalf("wrong height: kind %q, want bad-cb-height", k)
	}

	// Height-locked transaction, not final at height 5.
	locked := spendTx(wire.OutPoint{Hash: chainhash.Hash{1}}, 1)
	locked.LockTime = 10
	locked.TxIn[0].Sequence = 0
	if k := kindOf(t, checkContextual(makeBlock(now, coinbaseTx(t, 5, 50e8), locked), 5, mtp, net, false)); k != rules.NonFinal {
		t.Fatalf("height lock: kind %q, want %s", k, rules.NonFinal)
	}

	// Time lock between parent MTP and block time: non-final under BIP113
	// (CSV active), final when the block's own time counts.
	timeLocked := spendTx(wire.OutPoint{Hash: chainhash.Hash{2}}, 1)
	timeLocked.LockTime = uint32(now.Add(-time.Minute).Unix())
	timeLocked.TxIn[0].Sequence = 0
	blk := makeBlock(now, coinbaseTx(t, 5, 50e8), timeLocked)
	if k := kindOf(t, checkContextual(blk, 5, mtp, net, false)); k != rules.NonFinal {
		t.Fatalf("time lock with CSV: kind %q, want %s", k, rules.NonFinal)
	}
	preCSV := net
	preCSV.CSVHeight, preCSV.SegwitHeight = 1000, 1000
	if err := checkContextual(blk, 5, mtp, preCSV, false); err != nil {
		t.Fatalf("time lock before CSV (block time cutoff): %v", err)
	}

	// Witness data: without a commitment after segwit, and at all before it.
	wit := spendTx(wire.OutPoint{Hash: chainhash.Hash{3}}, 1)
	wit.TxIn[0].Witness = wire.TxWitness{{1, 2, 3}}
	wblk := makeBlock(now, coinbaseTx(t, 5, 50e8), wit)
	if k := kindOf(t, checkContextual(wblk, 5, mtp, net, false)); k != "unexpected-witness" {
		t.Fatalf("witness without commitment: kind %q", k)
	}
	if k := kindOf(t, checkContextual(wblk, 5, mtp, preCSV, false)); k != "unexpected-witness" {
		t.Fatalf("witness before segwit: kind %q", k)
	}
}

func TestResolveInputs(t *testing.T) {
	cb := coinbaseTx(t, 3, 50e8)
	ext := wire.OutPoint{Hash: chainhash.Hash{9}, Index: 1}
	a := spendTx(ext, 10)
	aHash := a.TxHash()
	b := spendTx(wire.OutPoint{Hash: aHash, Index: 0}, 5) // spends a, earlier in the block
	cbSpend := spendTx(wire.OutPoint{Hash: cb.TxHash(), Index: 0}, 5)
	blk := makeBlock(time.Now(), cb, a, b, cbSpend)
	refs, external, n, err := resolveInputs(blk.Transactions())
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 || len(external) != 1 || external[0] != ext {
		t.Fatalf("inputs %d, external %v", n, external)
	}
	if refs[1][0].local || refs[1][0].ext != 0 {
		t.Fatalf("a's input should be external #0: %+v", refs[1][0])
	}
	if !refs[2][0].local || refs[2][0].out.Value != 10 || refs[2][0].coinbase {
		t.Fatalf("b's input should be a's output: %+v", refs[2][0])
	}
	if !refs[3][0].local || !refs[3][0].coinbase {
		t.Fatalf("coinbase spend should be local and coinbase: %+v", refs[3][0])
	}

	// Double spend across transactions.
	c := spendTx(ext, 3)
	_, _, _, err = resolveInputs(makeBlock(time.Now(), cb, a, c).Transactions())
	if !errors.Is(err, rules.MissingInputs) {
		t.Fatalf("double spend: %v", err)
	}
	// Spending an output of a later transaction goes to the lookup (and
	// will not be found there).
	_, external, _, err = resolveInputs(makeBlock(time.Now(), cb, b, a).Transactions())
	if err != nil || len(external) != 2 {
		t.Fatalf("later output: err %v, external %v", err, external)
	}
}

func TestBIP30AndAmounts(t *testing.T) {
	net := regtest(t)
	p := net.Params
	// Regtest has no BIP34 activation hash: BIP30 is always checked, as
	// in Core and btcd.
	if bip30MaySkip(0, p) || bip30MaySkip(2, p) || bip30MaySkip(500000, p) {
		t.Fatal("bip30MaySkip must be false on regtest (no BIP0034Hash)")
	}
	mp := &chaincfg.MainNetParams
	if bip30MaySkip(mp.BIP0034Height, mp) || !bip30MaySkip(mp.BIP0034Height+1, mp) ||
		!bip30MaySkip(500000, mp) || bip30MaySkip(bip34ImpliesBIP30Limit, mp) {
		t.Fatal("bip30MaySkip wrong on mainnet")
	}
	if bip30Exception(91842, chainhash.Hash{}, p) {
		t.Fatal("regtest has no BIP30 exceptions")
	}
	cb := btcutil.NewTx(coinbaseTx(t, 1, 50e8+100))
	if err := checkCoinbaseAmount(cb, 1, 100, p); err != nil {
		t.Fatalf("subsidy+fees: %v", err)
	}
	if !errors.Is(checkCoinbaseAmount(cb, 1, 99, p), rules.BadCoinbaseAmount) {
		t.Fatal("one satoshi too much not caught")
	}
	// Regtest halves every 150 blocks.
	if !errors.Is(checkCoinbaseAmount(btcutil.NewTx(coinbaseTx(t, 150, 50e8)), 150, 0, p), rules.BadCoinbaseAmount) {
		t.Fatal("halving ignored")
	}
	if checkSigOpCost(blockchain.MaxBlockSigOpsCost) != nil || !errors.Is(checkSigOpCost(blockchain.MaxBlockSigOpsCost+1), rules.BadBlockSigops) {
		t.Fatal("sigop limit wrong")
	}
}

func TestConfig(t *testing.T) {
	var c Config
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	c.RegisterFlags(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if c.MaxOrphans != 100 || c.ScriptTimeout != 30*time.Second || c.Validate() != nil {
		t.Fatalf("defaults: %+v", c)
	}
	if err := fs.Parse([]string{"--blockvalidator-orphans", "0"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "--blockvalidator-orphans") {
		t.Fatalf("orphans 0: %v", err)
	}
	c.MaxOrphans = 5
	c.ScriptTimeout = -time.Second
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "--blockvalidator-script-timeout") {
		t.Fatalf("negative timeout: %v", err)
	}
}
