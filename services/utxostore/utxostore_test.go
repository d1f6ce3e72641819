package utxostore

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	commonv1 "github.com/btcmesh/btcmesh/proto/btcmesh/common/v1"
	utxostorev1 "github.com/btcmesh/btcmesh/proto/btcmesh/utxostore/v1"

	"github.com/btcmesh/btcmesh/internal/coin"
	"github.com/btcmesh/btcmesh/internal/packed"
	"github.com/btcmesh/btcmesh/internal/rules"
)

func TestConfigFlagsAndValidation(t *testing.T) {
	var c Config
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	c.RegisterFlags(fs)
	if err := fs.Parse([]string{"--utxostore-cache-mb=0"}); err != nil {
		t.Fatal(err)
	}
	c.DataDir = t.TempDir()
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "--utxostore-cache-mb") {
		t.Fatalf("want an error naming --utxostore-cache-mb, got %v", err)
	}
	c.CacheMB, c.MemTableMB = 8, 8
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "--utxostore-memtable-mb") {
		t.Fatalf("want an error naming --utxostore-memtable-mb, got %v", err)
	}
	c = DefaultConfig()
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "--datadir") {
		t.Fatalf("want an error naming --datadir, got %v", err)
	}
	c.DataDir = "x"
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	c.FlushInterval = -time.Second
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "--utxostore-flush-interval") {
		t.Fatalf("want an error naming --utxostore-flush-interval, got %v", err)
	}
	c.FlushInterval, c.FilterMB = 0, -1
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "--utxostore-filter-mb") {
		t.Fatalf("want an error naming --utxostore-filter-mb, got %v", err)
	}
}

func TestUnspendable(t *testing.T) {
	if !unspendable([]byte{0x6a, 1, 2}) || !unspendable(make([]byte, 10001)) || unspendable(make([]byte, 10000)) || unspendable(nil) {
		t.Fatal("unspendable misclassifies")
	}
}

func TestConnectLookupIntraBlockSpendAndStats(t *testing.T) {
	n := serve(t, t.TempDir())
	genesis := *regtest(t).Params.GenesisHash
	if h, height := n.tip(); h != genesis || height != 0 {
		t.Fatalf("new store tip %s/%d, want genesis/0", h, height)
	}
	if s := n.stats(); s.Txouts != 0 || s.Height != 0 || s.DiskSize <= 0 {
		t.Fatalf("new store stats %v", s)
	}

	cb1 := coinbaseTx(1, 0, wire.NewTxOut(50e8, p2wpkh(1)), wire.NewTxOut(0, []byte{0x6a, 0x24, 0xaa}))
	b1 := makeBlock(genesis, 1, cb1)
	n.mustConnect(b1, 1)
	cb2 := coinbaseTx(2, 0, wire.NewTxOut(50e8, p2wpkh(2)))
	b2 := makeBlock(b1.BlockHash(), 2, cb2)
	n.mustConnect(b2, 2)

	// Block 3: A spends cb1:0 into two outputs, B spends A:0 in the same block.
	txA := spendTx([]wire.OutPoint{op(cb1, 0)}, wire.NewTxOut(30e8, p2wpkh(3)), wire.NewTxOut(19e8, p2wpkh(4)))
	txB := spendTx([]wire.OutPoint{op(txA, 0)}, wire.NewTxOut(29e8, p2wpkh(5)))
	cb3 := coinbaseTx(3, 0, wire.NewTxOut(50e8+2e8, p2wpkh(6)))
	b3 := makeBlock(b2.BlockHash(), 3, cb3, txA, txB)
	n.mustConnect(b3, 3)

	missing := wire.OutPoint{Hash: chainhash.Hash{1}, Index: 0}
	r := n.lookup(op(cb1, 0), op(cb1, 1), op(cb2, 0), op(txA, 0), op(txA, 1), op(txB, 0), op(cb3, 0), missing)
	wantFound := []bool{false, false, true, false, true, true, true, false}
	for i, u := range r.Utxos {
		if u.Found != wantFound[i] {
			t.Fatalf("utxo %d found=%v, want %v", i, u.Found, wantFound[i])
		}
	}
	if b3h := b3.BlockHash(); !bytes.Equal(r.TipHash, b3h[:]) || r.TipHeight != 3 {
		t.Fatalf("lookup tip %x/%d", r.TipHash, r.TipHeight)
	}
	if u := r.Utxos[2]; !u.Coinbase || u.Height != 2 || u.Output.Value != 50e8 || !bytes.Equal(u.Output.PkScript, p2wpkh(2)) {
		t.Fatalf("cb2:0 = %v", u)
	}
	if u := r.Utxos[4]; u.Coinbase || u.Height != 3 || u.Output.Value != 19e8 {
		t.Fatalf("A:1 = %v", u)
	}

	s := n.stats()
	// Unspent: cb2:0, A:1, B:0, cb3:0 over 4 transactions.
	if s.Txouts != 4 || s.Transactions != 4 || s.Height != 3 || s.TotalAmount != 50e8+19e8+29e8+52e8 {
		t.Fatalf("stats %v", s)
	}
	if s.Bogosize != 4*(50+22) || len(s.HashSerialized) != 32 || s.DiskSize <= 0 {
		t.Fatalf("stats %v", s)
	}
	if b3h := b3.BlockHash(); !bytes.Equal(s.BestBlock, b3h[:]) {
		t.Fatal("best block is not the tip")
	}
	if v := n.metric("btcmesh_utxostore_txouts"); v != 4 {
		t.Fatalf("txouts gauge %v", v)
	}
	if v := n.metric("btcmesh_utxostore_tip_height"); v != 3 {
		t.Fatalf("tip height gauge %v", v)
	}
	if v := n.metric("btcmesh_utxostore_lookups_total"); v != 8 {
		t.Fatalf("lookups counter %v", v)
	}
	if v := n.metric("btcmesh_utxostore_connect_seconds"); v != 3 {
		t.Fatalf("connect histogram count %v", v)
	}
	// The set's hash does not depend on how it was reached, only on content;
	// and it changes with content.
	b4 := makeBlock(b3.BlockHash(), 4, coinbaseTx(4, 0, wire.NewTxOut(1, p2wpkh(7))))
	n.mustConnect(b4, 4)
	if bytes.Equal(n.stats().HashSerialized, s.HashSerialized) {
		t.Fatal("hash_serialized did not change with the set")
	}
}

func TestRejectedBlocksChangeNothing(t *testing.T) {
	n := serve(t, t.TempDir())
	genesis := *regtest(t).Params.GenesisHash
	cb1 := coinbaseTx(1, 0, wire.NewTxOut(50e8, p2wpkh(1)), wire.NewTxOut(50e8, p2wpkh(2)))
	b1 := makeBlock(genesis, 1, cb1)
	n.mustConnect(b1, 1)
	before := n.stats()

	// A good spend followed by a spend of an output that never existed.
	good := spendTx([]wire.OutPoint{op(cb1, 0)}, wire.NewTxOut(49e8, p2wpkh(3)))
	bad := spendTx([]wire.OutPoint{{Hash: chainhash.Hash{9}, Index: 3}}, wire.NewTxOut(1, p2wpkh(4)))
	b2 := makeBlock(b1.BlockHash(), 2, coinbaseTx(2, 0, wire.NewTxOut(50e8, p2wpkh(5))), good, bad)
	err := n.connect(b2, 2)
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("missing input: want FailedPrecondition, got %v", err)
	}
	if re, ok := rules.FromStatus(err); !ok || !errors.Is(re, rules.MissingInputs) {
		t.Fatalf("missing input: want rule %s, got %v", rules.MissingInputs, err)
	}
	sameSet(t, "after missing input", before, n.stats())
	if r := n.lookup(op(cb1, 0), op(good, 0)); !r.Utxos[0].Found || r.Utxos[1].Found {
		t.Fatal("a rejected block left writes behind")
	}

	// Two transactions spending the same output in one block.
	dbl1 := spendTx([]wire.OutPoint{op(cb1, 1)}, wire.NewTxOut(1, p2wpkh(6)))
	dbl2 := spendTx([]wire.OutPoint{op(cb1, 1)}, wire.NewTxOut(2, p2wpkh(7)))
	b2 = makeBlock(b1.BlockHash(), 3, coinbaseTx(2, 0, wire.NewTxOut(50e8, p2wpkh(5))), dbl1, dbl2)
	if re, ok := rules.FromStatus(n.connect(b2, 2)); !ok || re.Kind != rules.MissingInputs {
		t.Fatalf("double spend in a block: want %s, got %v", rules.MissingInputs, re)
	}
	// Spending an OP_RETURN output (never stored) or a later tx's output.
	ret := coinbaseTx(2, 1, wire.NewTxOut(0, []byte{0x6a}))
	later := spendTx([]wire.OutPoint{op(cb1, 1)}, wire.NewTxOut(1, p2wpkh(8)))
	early := spendTx([]wire.OutPoint{op(later, 0)}, wire.NewTxOut(1, p2wpkh(9)))
	for name, blk := range map[string]*wire.MsgBlock{
		"spends OP_RETURN":     makeBlock(b1.BlockHash(), 4, ret, spendTx([]wire.OutPoint{op(ret, 0)})),
		"spends a later tx":    makeBlock(b1.BlockHash(), 5, coinbaseTx(2, 2), early, later),
		"spends its own block": makeBlock(b1.BlockHash(), 6, coinbaseTx(2, 3), spendTx([]wire.OutPoint{{Hash: b1.BlockHash()}})),
	} {
		if re, ok := rules.FromStatus(n.connect(blk, 2)); !ok || re.Kind != rules.MissingInputs {
			t.Fatalf("%s: want %s, got %v", name, rules.MissingInputs, re)
		}
	}

	// Wrong parent and wrong height name both blocks / heights.
	orphan := makeBlock(chainhash.Hash{0xee}, 7, coinbaseTx(2, 0))
	err = n.connect(orphan, 2)
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), b1.BlockHash().String()) ||
		!strings.Contains(err.Error(), (chainhash.Hash{0xee}).String()) {
		t.Fatalf("wrong parent: %v", err)
	}
	ok2 := makeBlock(b1.BlockHash(), 8, coinbaseTx(2, 0))
	err = n.connect(ok2, 5)
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "height 5") ||
		!strings.Contains(err.Error(), "height 1") {
		t.Fatalf("wrong height: %v", err)
	}
	// Bad bytes, zero height.
	_, err = n.c.ConnectBlock(ctx(t), &utxostorev1.ConnectBlockRequest{Block: []byte{1, 2, 3}, Height: 2})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("garbage block: want InvalidArgument, got %v", err)
	}
	if err := n.connect(ok2, 0); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("height 0: want InvalidArgument, got %v", err)
	}
	if _, err := n.c.GetUtxos(ctx(t), &utxostorev1.GetUtxosRequest{Outpoints: []*commonv1.OutPoint{{Txid: []byte{1}}}}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("short txid: want InvalidArgument, got %v", err)
	}
	// Disconnecting a block that is not the tip.
	_, err = n.c.DisconnectBlock(ctx(t), &utxostorev1.DisconnectBlockRequest{Block: ser(t, ok2)})
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("disconnect non-tip: want FailedPrecondition, got %v", err)
	}
	sameSet(t, "after all rejections", before, n.stats())
	// And the store still accepts the right block.
	n.mustConnect(ok2, 2)
}

// TestPackedLookupMatchesMessages asks for the same outpoints (found,
// spent, never created) as messages and packed: the answers must agree.
func TestPackedLookupMatchesMessages(t *testing.T) {
	n := serve(t, t.TempDir())
	genesis := *regtest(t).Params.GenesisHash
	blocks := chainSpec(genesis, 1, 3, 3, 0)
	for i, b := range blocks {
		n.mustConnect(b, int32(i+1))
	}
	ops := []wire.OutPoint{
		op(blocks[2].Transactions[0], 0), // unspent coinbase output
		op(blocks[0].Transactions[0], 1), // spent by block 2
		op(blocks[2].Transactions[1], 1), // unspent, not a coinbase
		{Hash: chainhash.Hash{3}, Index: 7},
	}
	msgs := n.lookup(ops...)
	req := &utxostorev1.GetUtxosRequest{}
	for _, o := range ops {
		req.PackedOutpoints = packed.AppendOutPoint(req.PackedOutpoints, o)
	}
	resp, err := n.c.GetUtxos(ctx(t), req)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(resp.TipHash, msgs.TipHash) || resp.TipHeight != 3 || len(resp.Utxos) != 0 {
		t.Fatalf("packed answer: tip %x/%d, %d message answers", resp.TipHash, resp.TipHeight, len(resp.Utxos))
	}
	rest := resp.PackedUtxos
	for i, m := range msgs.Utxos {
		var v []byte
		if v, rest, err = packed.NextRecord(rest); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if (len(v) > 0) != m.Found {
			t.Fatalf("outpoint %d: packed found=%v, messages found=%v", i, len(v) > 0, m.Found)
		}
		if !m.Found {
			continue
		}
		c, _, err := coin.Decode(v)
		if err != nil || c.Amount != m.Output.Value || !bytes.Equal(c.Script, m.Output.PkScript) ||
			c.Height != m.Height || c.Coinbase != m.Coinbase {
			t.Fatalf("outpoint %d: packed %+v (%v), messages %v", i, c, err, m)
		}
	}
	if len(rest) != 0 || !msgs.Utxos[0].Found || msgs.Utxos[1].Found || !msgs.Utxos[2].Found || msgs.Utxos[3].Found {
		t.Fatalf("answers: %v, %d bytes left", msgs.Utxos, len(rest))
	}

	torn := &utxostorev1.GetUtxosRequest{PackedOutpoints: req.PackedOutpoints[:40]}
	if _, err := n.c.GetUtxos(ctx(t), torn); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("torn packed outpoints: want InvalidArgument, got %v", err)
	}
	both := &utxostorev1.GetUtxosRequest{PackedOutpoints: req.PackedOutpoints, Outpoints: []*commonv1.OutPoint{{Txid: make([]byte, 32)}}}
	if _, err := n.c.GetUtxos(ctx(t), both); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("both forms: want InvalidArgument, got %v", err)
	}
}
