package blockchanges

import (
	"reflect"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcutil/v2"
	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	utxostorev1 "github.com/btcmesh/btcmesh/proto/btcmesh/utxostore/v1"

	"github.com/btcmesh/btcmesh/internal/rules"
)

// testBlock has a coinbase with an OP_RETURN output, a transaction of two
// inputs and three outputs, and one spending an output of the block.
func testBlock() *wire.MsgBlock {
	cb := wire.NewMsgTx(2)
	cb.AddTxIn(&wire.TxIn{PreviousOutPoint: wire.OutPoint{Index: wire.MaxPrevOutIndex}, SignatureScript: []byte{1, 2}})
	cb.AddTxOut(wire.NewTxOut(50e8, []byte{0x51}))
	cb.AddTxOut(wire.NewTxOut(0, []byte{0x6a, 0x01, 0x02}))
	two := wire.NewMsgTx(2)
	two.AddTxIn(&wire.TxIn{PreviousOutPoint: wire.OutPoint{Hash: chainhash.Hash{7}, Index: 3}})
	two.AddTxIn(&wire.TxIn{PreviousOutPoint: wire.OutPoint{Hash: chainhash.Hash{8}, Index: 0x01020304}})
	for i := range 3 {
		two.AddTxOut(wire.NewTxOut(int64(100+i), []byte{0x00, 0x14, byte(i)}))
	}
	chained := wire.NewMsgTx(2)
	chained.AddTxIn(&wire.TxIn{PreviousOutPoint: wire.OutPoint{Hash: two.TxHash(), Index: 2}})
	chained.AddTxOut(wire.NewTxOut(1, []byte{0x51}))
	blk := wire.NewMsgBlock(wire.NewBlockHeader(4, &chainhash.Hash{9}, &chainhash.Hash{}, 0x207fffff, 1))
	for _, tx := range []*wire.MsgTx{cb, two, chained} {
		_ = blk.AddTransaction(tx)
	}
	return blk
}

func TestProtoRoundTrip(t *testing.T) {
	blk := testBlock()
	want := Of(blk)
	if want.Hash != blk.BlockHash() || want.Parent != (chainhash.Hash{9}) || len(want.Txs) != 3 {
		t.Fatalf("Of: %+v", want)
	}
	if !want.Txs[0].Coinbase(0) || want.Txs[1].Coinbase(1) || want.Txs[0].Spends != nil {
		t.Fatal("Of: only the first transaction is the coinbase, with no spends")
	}
	if got := want.Txs[1].Spends[1]; got.Hash != (chainhash.Hash{8}) || got.Index != 0x01020304 {
		t.Fatalf("Of: spend %v", got)
	}
	// Through the wire form, as the blockvalidator sends it.
	wireForm, err := proto.Marshal(Proto(btcutil.NewBlock(blk)))
	if err != nil {
		t.Fatal(err)
	}
	var pb utxostorev1.BlockChanges
	if err := proto.Unmarshal(wireForm, &pb); err != nil {
		t.Fatal(err)
	}
	got, err := FromProto(&pb)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, want)
	}
}

func TestFromProtoRejects(t *testing.T) {
	good := func() *utxostorev1.BlockChanges { return Proto(btcutil.NewBlock(testBlock())) }
	for _, c := range []struct {
		name, field string
		edit        func(*utxostorev1.BlockChanges)
	}{
		{"short hash", "changes.hash", func(pb *utxostorev1.BlockChanges) { pb.Hash = pb.Hash[:31] }},
		{"no parent", "changes.prev_hash", func(pb *utxostorev1.BlockChanges) { pb.PrevHash = nil }},
		{"no transactions", "changes.txs", func(pb *utxostorev1.BlockChanges) { pb.Txs = nil }},
		{"long txid", "changes.txs[].txid", func(pb *utxostorev1.BlockChanges) { pb.Txs[2].Txid = make([]byte, 33) }},
		{"torn outpoint", "changes.txs[1].spends", func(pb *utxostorev1.BlockChanges) { pb.Txs[1].Spends = pb.Txs[1].Spends[:40] }},
		{"second coinbase", "changes.txs[2]", func(pb *utxostorev1.BlockChanges) { pb.Txs[2].Spends = nil }},
		{"torn output", "changes.txs[1].outputs, output 2", func(pb *utxostorev1.BlockChanges) { pb.Txs[1].Outputs = pb.Txs[1].Outputs[:len(pb.Txs[1].Outputs)-1] }},
	} {
		pb := good()
		c.edit(pb)
		_, err := FromProto(pb)
		if status.Code(rules.ToStatus(err)) != codes.InvalidArgument || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s: want InvalidArgument naming %s, got %v", c.name, c.field, err)
		}
	}
}
