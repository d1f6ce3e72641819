package miner

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/btcutil/v2"
	"github.com/btcsuite/btcd/chaincfg/v2"
	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"
)

type fixedTime struct{ t time.Time }

func (f fixedTime) AdjustedTime() time.Time         { return f.t }
func (f fixedTime) AddTimeSample(string, time.Time) {}
func (f fixedTime) Offset() time.Duration           { return 0 }

func TestAssembleBlockCoinbaseAndCommitment(t *testing.T) {
	params := &chaincfg.RegressionNetParams
	pk := []byte{0x00, 0x14, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9}
	spend := makeTx([]wire.OutPoint{confirmedOutpoint(1)}, 2, true)
	legacy := makeTx([]wire.OutPoint{confirmedOutpoint(2)}, 1, false)
	now := time.Unix(1_700_000_000, 0)
	for _, height := range []int32{1, 16, 17, 128, 150_000, 500_000} {
		tip := tipInfo{hash: chainhash.Hash{1, 2, 3}, height: height - 1, mtp: now.Unix() - 600, bits: params.PowLimitBits}
		tmpl, err := assembleBlock(params, tip, params.PowLimitBits, true, pk, 42, []*wire.MsgTx{spend, legacy}, 1234, now)
		if err != nil {
			t.Fatal(err)
		}
		blk := btcutil.NewBlock(tmpl.block)
		cb := blk.Transactions()[0]
		if err := blockchain.CheckSerializedHeight(cb, height); err != nil {
			t.Fatalf("height %d: %v", height, err)
		}
		if err := blockchain.ValidateWitnessCommitment(blk); err != nil {
			t.Fatalf("height %d: witness commitment: %v", height, err)
		}
		if _, ok := blockchain.ExtractWitnessCommitment(cb); !ok {
			t.Fatalf("height %d: no commitment output", height)
		}
		want := blockchain.CalcBlockSubsidy(height, params) + 1234
		if got := cb.MsgTx().TxOut[0].Value; got != want {
			t.Fatalf("height %d: coinbase pays %d, want %d", height, got, want)
		}
		if !bytes.Equal(cb.MsgTx().TxOut[0].PkScript, pk) {
			t.Fatal("coinbase pays to the wrong script")
		}
		if in := cb.MsgTx().TxIn[0]; in.Sequence != wire.MaxTxInSequenceNum || len(in.SignatureScript) < 2 || len(in.SignatureScript) > 100 {
			t.Fatalf("coinbase input: sequence %x script %d bytes", in.Sequence, len(in.SignatureScript))
		}
		if tmpl.block.Header.MerkleRoot != blockchain.CalcMerkleRoot(blk.Transactions(), false) {
			t.Fatal("merkle root mismatch")
		}
		if tmpl.block.Header.PrevBlock != tip.hash || tmpl.height != height {
			t.Fatal("header does not build on tip")
		}
		if tmpl.block.Header.Timestamp.Unix() != now.Unix() {
			t.Fatalf("timestamp %v, want now", tmpl.block.Header.Timestamp)
		}
	}
}

func TestAssembleBlockTimestampAfterMTP(t *testing.T) {
	params := &chaincfg.RegressionNetParams
	now := time.Unix(1_700_000_000, 0)
	tip := tipInfo{height: 10, mtp: now.Unix() + 100}
	tmpl, err := assembleBlock(params, tip, params.PowLimitBits, true, []byte{0x51}, 1, nil, 0, now)
	if err != nil {
		t.Fatal(err)
	}
	if got := tmpl.block.Header.Timestamp.Unix(); got != tip.mtp+1 {
		t.Fatalf("timestamp %d, want MTP+1 %d", got, tip.mtp+1)
	}
}

func TestSetExtraNonceKeepsCommitment(t *testing.T) {
	params := &chaincfg.RegressionNetParams
	spend := makeTx([]wire.OutPoint{confirmedOutpoint(1)}, 1, true)
	tmpl, err := assembleBlock(params, tipInfo{height: 99}, params.PowLimitBits, true, []byte{0x51}, 1, []*wire.MsgTx{spend}, 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	before := tmpl.block.Header.MerkleRoot
	if err := setExtraNonce(tmpl.block, 100, 2); err != nil {
		t.Fatal(err)
	}
	if tmpl.block.Header.MerkleRoot == before {
		t.Fatal("merkle root unchanged after a new extranonce")
	}
	blk := btcutil.NewBlock(tmpl.block)
	if err := blockchain.ValidateWitnessCommitment(blk); err != nil {
		t.Fatal(err)
	}
	if err := blockchain.CheckSerializedHeight(blk.Transactions()[0], 100); err != nil {
		t.Fatal(err)
	}
	if tmpl.block.Header.MerkleRoot != blockchain.CalcMerkleRoot(blk.Transactions(), false) {
		t.Fatal("merkle root mismatch")
	}
}

func TestSolveBlockRegtest(t *testing.T) {
	params := &chaincfg.RegressionNetParams
	tmpl, err := assembleBlock(params, tipInfo{hash: *params.GenesisHash, height: 0, mtp: params.GenesisBlock.Header.Timestamp.Unix()},
		params.PowLimitBits, true, []byte{0x51}, 7, nil, 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ok, tries, err := solveBlock(context.Background(), tmpl.block, 1, 4, 1_000_000, func() uint64 { return 8 })
	if err != nil || !ok {
		t.Fatalf("solve: %v %v", ok, err)
	}
	if tries == 0 {
		t.Fatal("no hashes counted")
	}
	blk := btcutil.NewBlock(tmpl.block)
	if err := blockchain.CheckBlockSanity(blk, params.PowLimit, fixedTime{time.Now()}); err != nil {
		t.Fatalf("solved block fails sanity: %v", err)
	}
}

func TestSolveBlockStopsAtMaxTries(t *testing.T) {
	params := &chaincfg.MainNetParams
	tmpl, err := assembleBlock(params, tipInfo{height: 0}, params.PowLimitBits, true, []byte{0x51}, 7, nil, 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ok, tries, err := solveBlock(context.Background(), tmpl.block, 1, 3, 5000, func() uint64 { return 8 })
	if err != nil || ok {
		t.Fatalf("solve on mainnet difficulty: %v %v", ok, err)
	}
	if tries != 5000 {
		t.Fatalf("tries %d, want 5000", tries)
	}
}

func TestSolveBlockNewExtraNonceOnExhaustion(t *testing.T) {
	params := &chaincfg.MainNetParams
	tmpl, err := assembleBlock(params, tipInfo{height: 0}, params.PowLimitBits, true, []byte{0x51}, 7, nil, 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	roots := map[chainhash.Hash]bool{tmpl.block.Header.MerkleRoot: true}
	var extra []uint64
	next := func() uint64 {
		extra = append(extra, uint64(100+len(extra)))
		return extra[len(extra)-1]
	}
	// Nonce space of 100 per extranonce, 350 tries: three new extranonces.
	ok, tries, err := solveInSpace(context.Background(), tmpl.block, 1, 2, 350, 100, func() uint64 {
		v := next()
		return v
	})
	if err != nil || ok || tries != 350 {
		t.Fatalf("solve: ok=%v tries=%d err=%v", ok, tries, err)
	}
	if len(extra) != 3 {
		t.Fatalf("extranonce changed %d times, want 3", len(extra))
	}
	roots[tmpl.block.Header.MerkleRoot] = true
	if len(roots) != 2 {
		t.Fatal("merkle root did not change with the extranonce")
	}
	blk := btcutil.NewBlock(tmpl.block)
	if err := blockchain.CheckSerializedHeight(blk.Transactions()[0], 1); err != nil {
		t.Fatal(err)
	}
	if tmpl.block.Header.MerkleRoot != blockchain.CalcMerkleRoot(blk.Transactions(), false) {
		t.Fatal("merkle root does not match the new coinbase")
	}
}

func TestHashMeetsTarget(t *testing.T) {
	target := targetLE(0x207fffff) // 0x7fffff << 232
	var low, high chainhash.Hash
	low[31] = 0x7f
	high[31] = 0x80
	if !hashMeetsTarget(&low, &target) || hashMeetsTarget(&high, &target) {
		t.Fatal("target comparison wrong")
	}
	eq := chainhash.Hash(target)
	if !hashMeetsTarget(&eq, &target) {
		t.Fatal("hash equal to target must pass")
	}
}
