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

	"github.com/btcmesh/btcmesh/internal/packed"
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
	// Through the wire, in the packed form the blockvalidator sends and
	// in the message form.
	for name, form := range map[string]*utxostorev1.BlockChanges{
		"packed": Proto(btcutil.NewBlock(blk)), "messages": messageForm(want)} {
		wireForm, err := proto.Marshal(form)
		if err != nil {
			t.Fatal(err)
		}
		var pb utxostorev1.BlockChanges
		if err := proto.Unmarshal(wireForm, &pb); err != nil {
			t.Fatal(err)
		}
		got, err := FromProto(&pb)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s round trip:\n got %+v\nwant %+v", name, got, want)
		}
	}
}

// messageForm is ch in BlockChanges' message form (txs), as a client
// other than the blockvalidator may send it.
func messageForm(ch *Changes) *utxostorev1.BlockChanges {
	pb := &utxostorev1.BlockChanges{Hash: ch.Hash[:], PrevHash: ch.Parent[:]}
	for _, tx := range ch.Txs {
		t := &utxostorev1.TxChanges{Txid: tx.Txid[:]}
		for _, op := range tx.Spends {
			t.Spends = packed.AppendOutPoint(t.Spends, op)
		}
		for _, o := range tx.Outs {
			t.Outputs = packed.AppendOutput(t.Outputs, o)
		}
		pb.Txs = append(pb.Txs, t)
	}
	return pb
}

func TestFromProtoRejects(t *testing.T) {
	messages := func() *utxostorev1.BlockChanges { return messageForm(Of(testBlock())) }
	packedForm := func() *utxostorev1.BlockChanges { return Proto(btcutil.NewBlock(testBlock())) }
	// Offsets into the packed form of testBlock: the count, the
	// coinbase's txid, its spend count (0) and output count (2).
	const txTwo = 1 + 32 + 1 + 1 + (8 + 1 + 1) + (8 + 1 + 3)
	for _, c := range []struct {
		name, field string
		form        func() *utxostorev1.BlockChanges
		edit        func(*utxostorev1.BlockChanges)
	}{
		{"short hash", "changes.hash", packedForm, func(pb *utxostorev1.BlockChanges) { pb.Hash = pb.Hash[:31] }},
		{"no parent", "changes.prev_hash", messages, func(pb *utxostorev1.BlockChanges) { pb.PrevHash = nil }},
		{"no transactions", "changes.txs", messages, func(pb *utxostorev1.BlockChanges) { pb.Txs = nil }},
		{"long txid", "changes.txs[].txid", messages, func(pb *utxostorev1.BlockChanges) { pb.Txs[2].Txid = make([]byte, 33) }},
		{"torn outpoint", "changes.txs[1].spends", messages, func(pb *utxostorev1.BlockChanges) { pb.Txs[1].Spends = pb.Txs[1].Spends[:40] }},
		{"second coinbase", "changes.txs[2]", messages, func(pb *utxostorev1.BlockChanges) { pb.Txs[2].Spends = nil }},
		{"torn output", "changes.txs[1].outputs, output 2", messages, func(pb *utxostorev1.BlockChanges) { pb.Txs[1].Outputs = pb.Txs[1].Outputs[:len(pb.Txs[1].Outputs)-1] }},
		{"both forms", "both txs and packed_txs", packedForm, func(pb *utxostorev1.BlockChanges) { pb.Txs = messages().Txs }},
		{"packed count too big", "changes.packed_txs: bad transaction count", packedForm, func(pb *utxostorev1.BlockChanges) { pb.PackedTxs[0] = 100 }},
		{"packed truncated", "changes.packed_txs: transaction 2, output 0", packedForm, func(pb *utxostorev1.BlockChanges) { pb.PackedTxs = pb.PackedTxs[:len(pb.PackedTxs)-1] }},
		{"packed trailing bytes", "changes.packed_txs: 1 bytes after", packedForm, func(pb *utxostorev1.BlockChanges) { pb.PackedTxs = append(pb.PackedTxs, 0) }},
		{"packed second coinbase", "changes.packed_txs: transaction 1 spends nothing", packedForm, func(pb *utxostorev1.BlockChanges) { pb.PackedTxs[txTwo+32] = 0 }},
		{"packed spends past the end", "changes.packed_txs: transaction 1: bad spend count", packedForm, func(pb *utxostorev1.BlockChanges) { pb.PackedTxs[txTwo+32] = 100 }},
	} {
		pb := c.form()
		c.edit(pb)
		_, err := FromProto(pb)
		if status.Code(rules.ToStatus(err)) != codes.InvalidArgument || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s: want InvalidArgument naming %s, got %v", c.name, c.field, err)
		}
	}
}
