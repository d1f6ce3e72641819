package test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/btcutil/v2"
	"github.com/btcsuite/btcd/chaincfg/v2"
	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/txscript/v2"
	"github.com/btcsuite/btcd/wire/v2"
	"github.com/nats-io/nats.go/jetstream"

	blockvalidatorv1 "github.com/btcmesh/btcmesh/proto/btcmesh/blockvalidator/v1"
	commonv1 "github.com/btcmesh/btcmesh/proto/btcmesh/common/v1"
	eventsv1 "github.com/btcmesh/btcmesh/proto/btcmesh/events/v1"
	headersv1 "github.com/btcmesh/btcmesh/proto/btcmesh/headers/v1"
	utxostorev1 "github.com/btcmesh/btcmesh/proto/btcmesh/utxostore/v1"

	"github.com/btcmesh/btcmesh/internal/blockstore"
	"github.com/btcmesh/btcmesh/internal/bus"
	"github.com/btcmesh/btcmesh/internal/teststack"
)

// plPipeline is the block path wired as in single-process mode: headers,
// utxostore, the txvalidator pool and the blockvalidator on one address.
type plPipeline struct {
	params *chaincfg.Params
	bv     blockvalidatorv1.BlockValidatorServiceClient
	utxo   utxostorev1.UtxoStoreServiceClient
	hdrs   headersv1.HeaderServiceClient
	js     jetstream.JetStream
}

func startPlPipeline(t *testing.T) *plPipeline {
	t.Helper()
	st := teststack.New(t)
	cc := st.Serve(t)
	js, err := jetstream.New(st.NATS)
	if err != nil {
		t.Fatal(err)
	}
	return &plPipeline{
		params: st.Network.Params,
		bv:     blockvalidatorv1.NewBlockValidatorServiceClient(cc),
		utxo:   utxostorev1.NewUtxoStoreServiceClient(cc),
		hdrs:   headersv1.NewHeaderServiceClient(cc),
		js:     js,
	}
}

// plNode is a block the test built: enough to build on top of it.
type plNode struct {
	hash   chainhash.Hash
	height int32
	time   time.Time
	block  *wire.MsgBlock
}

func (p *plPipeline) genesis() plNode {
	g := p.params.GenesisBlock
	return plNode{hash: *p.params.GenesisHash, height: 0, time: g.Header.Timestamp, block: g}
}

var plOpTrue = []byte{txscript.OP_TRUE}

// plCoinbase pays value to OP_TRUE, committing to height (BIP34); tag makes
// coinbases of competing branches differ.
func plCoinbase(t *testing.T, height int32, value int64, tag byte) *wire.MsgTx {
	t.Helper()
	script, err := txscript.NewScriptBuilder().AddInt64(int64(height)).AddData([]byte{tag, 'b', 'm'}).Script()
	if err != nil {
		t.Fatal(err)
	}
	tx := wire.NewMsgTx(1)
	tx.AddTxIn(&wire.TxIn{PreviousOutPoint: wire.OutPoint{Index: wire.MaxPrevOutIndex}, SignatureScript: script,
		Sequence: wire.MaxTxInSequenceNum})
	tx.AddTxOut(&wire.TxOut{Value: value, PkScript: plOpTrue})
	return tx
}

// plSpend spends OP_TRUE outputs into OP_TRUE outputs of the given values.
func plSpend(prev []wire.OutPoint, values ...int64) *wire.MsgTx {
	tx := wire.NewMsgTx(2)
	for _, op := range prev {
		tx.AddTxIn(&wire.TxIn{PreviousOutPoint: op, Sequence: wire.MaxTxInSequenceNum})
	}
	for _, v := range values {
		tx.AddTxOut(&wire.TxOut{Value: v, PkScript: plOpTrue})
	}
	return tx
}

// plOpts tweak a block away from valid.
type plOpts struct {
	tag         byte
	extraReward int64
	fees        int64
	badMerkle   bool
}

// build makes a solved block on parent with txs after the plCoinbase.
func (p *plPipeline) build(t *testing.T, parent plNode, o plOpts, txs ...*wire.MsgTx) plNode {
	t.Helper()
	h := parent.height + 1
	cb := plCoinbase(t, h, blockchain.CalcBlockSubsidy(h, p.params)+o.fees+o.extraReward, o.tag)
	mb := &wire.MsgBlock{Header: wire.BlockHeader{
		Version:   0x20000000,
		PrevBlock: parent.hash,
		Timestamp: parent.time.Add(10 * time.Minute),
		Bits:      p.params.PowLimitBits,
	}}
	mb.AddTransaction(cb)
	for _, tx := range txs {
		mb.AddTransaction(tx)
	}
	mb.Header.MerkleRoot = blockchain.CalcMerkleRoot(btcutil.NewBlock(mb).Transactions(), false)
	if o.badMerkle {
		mb.Header.MerkleRoot[0] ^= 0xff
	}
	target := blockchain.CompactToBig(p.params.PowLimitBits)
	for {
		hash := mb.Header.BlockHash()
		if blockchain.HashToBig(&hash).Cmp(target) <= 0 {
			return plNode{hash: hash, height: h, time: mb.Header.Timestamp, block: mb}
		}
		mb.Header.Nonce++
	}
}

func plSerialize(t *testing.T, b *wire.MsgBlock) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := b.Serialize(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func (p *plPipeline) submit(t *testing.T, n plNode) *blockvalidatorv1.SubmitBlockResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := p.bv.SubmitBlock(ctx, &blockvalidatorv1.SubmitBlockRequest{Block: plSerialize(t, n.block)})
	if err != nil {
		t.Fatalf("SubmitBlock %s (height %d): %v", n.hash, n.height, err)
	}
	return resp
}

func (p *plPipeline) mustResult(t *testing.T, n plNode, want blockvalidatorv1.SubmitResult, reason string) *blockvalidatorv1.SubmitBlockResponse {
	t.Helper()
	resp := p.submit(t, n)
	if resp.GetResult() != want || resp.GetRejectReason() != reason {
		t.Fatalf("block %d %s: result %s reason %q (%s), want %s %q", n.height, n.hash, resp.GetResult(),
			resp.GetRejectReason(), resp.GetRejectDetail(), want, reason)
	}
	return resp
}

func (p *plPipeline) status(t *testing.T) *blockvalidatorv1.GetStatusResponse {
	t.Helper()
	st, err := p.bv.GetStatus(context.Background(), &blockvalidatorv1.GetStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func (p *plPipeline) assertTip(t *testing.T, n plNode) {
	t.Helper()
	st := p.status(t)
	if st.GetTipHeight() != n.height || !bytes.Equal(st.GetTipHash(), n.hash[:]) {
		t.Fatalf("tip is %d %x, want %d %s", st.GetTipHeight(), st.GetTipHash(), n.height, n.hash)
	}
	ut, err := p.utxo.GetTip(context.Background(), &utxostorev1.GetTipRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if ut.GetTipHeight() != n.height || !bytes.Equal(ut.GetTipHash(), n.hash[:]) {
		t.Fatalf("utxostore tip is %d, want %d", ut.GetTipHeight(), n.height)
	}
}

// unspent reports, for each outpoint, whether the UTXO set holds it.
func (p *plPipeline) unspent(t *testing.T, ops ...wire.OutPoint) []bool {
	t.Helper()
	req := &utxostorev1.GetUtxosRequest{}
	for _, op := range ops {
		req.Outpoints = append(req.Outpoints, &commonv1.OutPoint{Txid: op.Hash[:], Index: op.Index})
	}
	resp, err := p.utxo.GetUtxos(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]bool, len(ops))
	for i, u := range resp.GetUtxos() {
		out[i] = u.GetFound()
	}
	return out
}

func plCbOut(n plNode) wire.OutPoint { return wire.OutPoint{Hash: n.block.Transactions[0].TxHash()} }

func TestBlockPipeline(t *testing.T) {
	p := startPlPipeline(t)
	accepted := blockvalidatorv1.SubmitResult_SUBMIT_RESULT_ACCEPTED
	rejected := blockvalidatorv1.SubmitResult_SUBMIT_RESULT_REJECTED

	// 101 blocks on genesis.
	chain := []plNode{p.genesis()}
	for i := 1; i <= 101; i++ {
		n := p.build(t, chain[len(chain)-1], plOpts{})
		resp := p.mustResult(t, n, accepted, "")
		if resp.GetTipHeight() != int32(i) || !bytes.Equal(resp.GetTipHash(), n.hash[:]) {
			t.Fatalf("block %d accepted but tip is %d", i, resp.GetTipHeight())
		}
		chain = append(chain, n)
	}
	p.assertTip(t, chain[101])
	if st := p.status(t); st.GetBlocksConnected() != 101 {
		t.Fatalf("blocks connected %d, want 101", st.GetBlocksConnected())
	}
	p.mustResult(t, chain[50], blockvalidatorv1.SubmitResult_SUBMIT_RESULT_DUPLICATE, "")

	// Block 102 spends block 1's (now mature) plCoinbase.
	const fee = 1000
	subsidy := blockchain.CalcBlockSubsidy(1, p.params)
	spendTx := plSpend([]wire.OutPoint{plCbOut(chain[1])}, subsidy/2, subsidy/2-fee)
	b102 := p.build(t, chain[101], plOpts{fees: fee}, spendTx)
	p.mustResult(t, b102, accepted, "")
	chain = append(chain, b102)
	out0 := wire.OutPoint{Hash: spendTx.TxHash(), Index: 0}
	out1 := wire.OutPoint{Hash: spendTx.TxHash(), Index: 1}
	if got := p.unspent(t, plCbOut(chain[1]), out0, out1, plCbOut(b102)); got[0] || !got[1] || !got[2] || !got[3] {
		t.Fatalf("after plSpend: unspent(cb1, out0, out1, cb102) = %v, want [false true true true]", got)
	}

	// Invalid blocks leave the tip alone.
	p.mustResult(t, p.build(t, b102, plOpts{badMerkle: true}), rejected, "bad-txnmrklroot")
	greedy := p.build(t, b102, plOpts{extraReward: 1})
	p.mustResult(t, greedy, rejected, "bad-cb-amount")
	p.mustResult(t, greedy, blockvalidatorv1.SubmitResult_SUBMIT_RESULT_DUPLICATE_INVALID, "bad-cb-amount")
	p.assertTip(t, b102)

	// An orphan waits for its parent. A103 spends out1.
	txA := plSpend([]wire.OutPoint{out1}, subsidy/2-2*fee)
	a103 := p.build(t, b102, plOpts{fees: fee}, txA)
	a104 := p.build(t, a103, plOpts{})
	p.mustResult(t, a104, blockvalidatorv1.SubmitResult_SUBMIT_RESULT_ORPHAN, "")
	if st := p.status(t); st.GetOrphans() != 1 {
		t.Fatalf("orphans %d, want 1", st.GetOrphans())
	}
	p.mustResult(t, a103, accepted, "")
	p.assertTip(t, a104)
	if st := p.status(t); st.GetOrphans() != 0 {
		t.Fatalf("orphans %d after parent arrived, want 0", st.GetOrphans())
	}

	// A side chain from 102 (B103 spends out0) overtakes: reorg.
	txB := plSpend([]wire.OutPoint{out0}, subsidy/2-fee)
	b103 := p.build(t, b102, plOpts{tag: 1, fees: fee}, txB)
	b104 := p.build(t, b103, plOpts{tag: 1})
	b105 := p.build(t, b104, plOpts{tag: 1})
	p.mustResult(t, b103, blockvalidatorv1.SubmitResult_SUBMIT_RESULT_SIDE_CHAIN, "")
	p.mustResult(t, b104, blockvalidatorv1.SubmitResult_SUBMIT_RESULT_SIDE_CHAIN, "")
	p.assertTip(t, a104)
	p.mustResult(t, b105, accepted, "")
	p.assertTip(t, b105)
	txAOut := wire.OutPoint{Hash: txA.TxHash()}
	txBOut := wire.OutPoint{Hash: txB.TxHash()}
	got := p.unspent(t, out0, out1, txAOut, txBOut, plCbOut(a103), plCbOut(b103), plCbOut(b105))
	want := []bool{false, true, false, true, false, true, true}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("after reorg: unspent(out0, out1, txA, txB, cbA103, cbB103, cbB105) = %v, want %v", got, want)
		}
	}
	info, err := p.hdrs.GetHeader(context.Background(), &headersv1.GetHeaderRequest{Hash: a103.hash[:]})
	if err != nil {
		t.Fatal(err)
	}
	if info.GetInfo().GetOnActiveChain() {
		t.Fatal("a103 still on the active chain after the reorg")
	}

	// A block arriving through the block store and block.received.
	b106 := p.build(t, b105, plOpts{tag: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	subjects := bus.NewSubjects("regtest")
	store, err := blockstore.Open(ctx, p.js, subjects.BlockBucket(), 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Put(ctx, b106.hash, plSerialize(t, b106.block)); err != nil {
		t.Fatal(err)
	}
	if err := bus.PublishDurable(ctx, p.js, subjects.BlockReceived(),
		&eventsv1.BlockReceived{Hash: b106.hash[:], Source: "test"}); err != nil {
		t.Fatal(err)
	}
	for p.status(t).GetTipHeight() != b106.height {
		if ctx.Err() != nil {
			t.Fatal("block from block.received was not connected")
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.assertTip(t, b106)
	got2, err := p.bv.GetBlock(ctx, &blockvalidatorv1.GetBlockRequest{Hash: b103.hash[:]})
	if err != nil || !bytes.Equal(got2.GetBlock(), plSerialize(t, b103.block)) {
		t.Fatalf("GetBlock b103: %v", err)
	}

	// Rules checked while connecting: a spent input, an immature coinbase.
	p.mustResult(t, p.build(t, b106, plOpts{tag: 2}, plSpend([]wire.OutPoint{out0}, 1000)), rejected,
		"bad-txns-inputs-missingorspent")
	p.mustResult(t, p.build(t, b106, plOpts{tag: 3}, plSpend([]wire.OutPoint{plCbOut(b105)}, 1000)), rejected,
		"bad-txns-premature-spend-of-coinbase")
	p.assertTip(t, b106)
}
