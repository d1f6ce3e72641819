package utxostore

import (
	"bytes"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcutil/v2"
	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	utxostorev1 "github.com/btcmesh/btcmesh/proto/btcmesh/utxostore/v1"

	"github.com/btcmesh/btcmesh/internal/blockchanges"
	"github.com/btcmesh/btcmesh/internal/coin"
	"github.com/btcmesh/btcmesh/internal/packed"
	"github.com/btcmesh/btcmesh/internal/rules"
)

// prepare sends PrepareConnect for b at height.
func (n *node) prepare(b *wire.MsgBlock, height int32, bip30 bool) (*utxostorev1.PrepareConnectResponse, error) {
	return n.c.PrepareConnect(ctx(n.t), &utxostorev1.PrepareConnectRequest{
		Changes: blockchanges.Proto(btcutil.NewBlock(b)), Height: height, CheckBip30: bip30})
}

// connectPrepared sends ConnectBlock naming b by prepared_hash.
func (n *node) connectPrepared(b *wire.MsgBlock, height int32) error {
	h := b.BlockHash()
	_, err := n.c.ConnectBlock(ctx(n.t), &utxostorev1.ConnectBlockRequest{PreparedHash: h[:], Height: height})
	return err
}

// TestPrepareThenConnectByHash prepares a block, checks the coins it
// answers and that it changed nothing, connects it by hash and compares
// the set with a store that connected the same block from its bytes.
func TestPrepareThenConnectByHash(t *testing.T) {
	n, ref := serve(t, t.TempDir()), serve(t, t.TempDir())
	genesis := *regtest(t).Params.GenesisHash
	cb1 := coinbaseTx(1, 0, wire.NewTxOut(50e8, p2wpkh(1)), wire.NewTxOut(50e8, p2wpkh(2)))
	b1 := makeBlock(genesis, 1, cb1)
	b2 := makeBlock(b1.BlockHash(), 2, coinbaseTx(2, 0, wire.NewTxOut(50e8, p2wpkh(3))))
	// Block 3: A spends cb1:0, B spends A:0 in the same block.
	txA := spendTx([]wire.OutPoint{op(cb1, 0)}, wire.NewTxOut(30e8, p2wpkh(4)), wire.NewTxOut(19e8, p2wpkh(5)))
	txB := spendTx([]wire.OutPoint{op(txA, 0)}, wire.NewTxOut(29e8, p2wpkh(6)))
	b3 := makeBlock(b2.BlockHash(), 3, coinbaseTx(3, 0, wire.NewTxOut(52e8, p2wpkh(7))), txA, txB)
	for _, s := range []*node{n, ref} {
		s.mustConnect(b1, 1)
		s.mustConnect(b2, 2)
	}
	before := n.stats()

	resp, err := n.prepare(b3, 3, true)
	if err != nil {
		t.Fatalf("prepare: %v", err)
	}
	if h := b2.BlockHash(); !bytes.Equal(resp.TipHash, h[:]) || resp.TipHeight != 2 {
		t.Fatalf("prepare answered tip %x/%d, want b2/2", resp.TipHash, resp.TipHeight)
	}
	want := []coin.Coin{
		{Height: 1, Coinbase: true, Amount: 50e8, Script: p2wpkh(1)},
		{Height: 3, Amount: 30e8, Script: p2wpkh(4)},
	}
	rest := resp.PackedSpent
	for i, w := range want {
		var v []byte
		if v, rest, err = packed.NextRecord(rest); err != nil {
			t.Fatalf("spent coin %d: %v", i, err)
		}
		c, _, err := coin.Decode(v)
		if err != nil || c.Height != w.Height || c.Coinbase != w.Coinbase || c.Amount != w.Amount || !bytes.Equal(c.Script, w.Script) {
			t.Fatalf("spent coin %d: %+v (%v), want %+v", i, c, err, w)
		}
	}
	if len(rest) != 0 {
		t.Fatalf("%d bytes after the last spent coin", len(rest))
	}
	sameSet(t, "after prepare", before, n.stats())
	if r := n.lookup(op(cb1, 0)); !r.Utxos[0].Found {
		t.Fatal("prepare spent a coin")
	}

	if err := n.connectPrepared(b3, 4); status.Code(err) != codes.NotFound {
		t.Fatalf("prepared block at another height: want NotFound, got %v", err)
	}
	if err := n.connectPrepared(b3, 3); err != nil {
		t.Fatalf("connect prepared: %v", err)
	}
	ref.mustConnect(b3, 3)
	sameSet(t, "prepared connect vs connect from bytes", ref.stats(), n.stats())
	if h, height := n.tip(); h != b3.BlockHash() || height != 3 {
		t.Fatalf("tip %s/%d, want b3/3", h, height)
	}
	if err := n.connectPrepared(b3, 3); status.Code(err) != codes.NotFound {
		t.Fatalf("a preparation used twice: want NotFound, got %v", err)
	}
	// Its undo data is complete: disconnecting restores the set.
	n.mustDisconnect(b3)
	sameSet(t, "after disconnecting the prepared block", before, n.stats())
}

// TestPreparationGoesStale checks that a preparation is used only on the
// tip it was made on, and only until another block is prepared or
// connected.
func TestPreparationGoesStale(t *testing.T) {
	n := serve(t, t.TempDir())
	genesis := *regtest(t).Params.GenesisHash
	cb1 := coinbaseTx(1, 0, wire.NewTxOut(50e8, p2wpkh(1)))
	b1 := makeBlock(genesis, 1, cb1)
	n.mustConnect(b1, 1)
	b2a := makeBlock(b1.BlockHash(), 2, coinbaseTx(2, 1, wire.NewTxOut(1, p2wpkh(2))))
	b2b := makeBlock(b1.BlockHash(), 3, coinbaseTx(2, 2, wire.NewTxOut(1, p2wpkh(3))))

	// Another block connected from its changes since.
	if _, err := n.prepare(b2a, 2, false); err != nil {
		t.Fatal(err)
	}
	n.mustConnect(b2b, 2)
	if err := n.connectPrepared(b2a, 2); status.Code(err) != codes.NotFound {
		t.Fatalf("preparation after another connect: want NotFound, got %v", err)
	}
	// A later preparation replaces an earlier one.
	n.mustDisconnect(b2b)
	if _, err := n.prepare(b2a, 2, false); err != nil {
		t.Fatal(err)
	}
	if _, err := n.prepare(b2b, 2, false); err != nil {
		t.Fatal(err)
	}
	if err := n.connectPrepared(b2a, 2); status.Code(err) != codes.NotFound {
		t.Fatalf("replaced preparation: want NotFound, got %v", err)
	}
	// The tip moved after preparing.
	b3 := makeBlock(b2b.BlockHash(), 4, coinbaseTx(3, 0, wire.NewTxOut(1, p2wpkh(4))))
	n.mustConnect(b2b, 2)
	if _, err := n.prepare(b3, 3, false); err != nil {
		t.Fatal(err)
	}
	n.mustDisconnect(b2b)
	if err := n.connectPrepared(b3, 3); status.Code(err) != codes.NotFound {
		t.Fatalf("preparation on a tip since disconnected: want NotFound, got %v", err)
	}
	if h, height := n.tip(); h != b1.BlockHash() || height != 1 {
		t.Fatalf("tip %s/%d after refused connects, want b1/1", h, height)
	}
}

// TestPrepareRejects checks PrepareConnect's rules and arguments, and
// ConnectBlock's prepared_hash arguments; nothing changes the set.
func TestPrepareRejects(t *testing.T) {
	n := serve(t, t.TempDir())
	genesis := *regtest(t).Params.GenesisHash
	cb1 := coinbaseTx(1, 0, wire.NewTxOut(50e8, p2wpkh(1)))
	b1 := makeBlock(genesis, 1, cb1)
	n.mustConnect(b1, 1)
	before := n.stats()

	missing := spendTx([]wire.OutPoint{{Hash: chainhash.Hash{9}, Index: 1}}, wire.NewTxOut(1, p2wpkh(2)))
	bad := makeBlock(b1.BlockHash(), 2, coinbaseTx(2, 0), missing)
	_, err := n.prepare(bad, 2, true)
	if re, ok := rules.FromStatus(err); !ok || re.Kind != rules.MissingInputs || status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("missing input: want FailedPrecondition %s, got %v", rules.MissingInputs, err)
	}
	if err := n.connectPrepared(bad, 2); status.Code(err) != codes.NotFound {
		t.Fatalf("failed preparation connected: want NotFound, got %v", err)
	}

	// A block repeating b1's coinbase overwrites its unspent output: BIP30
	// when asked for, before the missing input; allowed otherwise (the
	// duplicate-coinbase blocks of 2010).
	dup := makeBlock(b1.BlockHash(), 3, cb1, missing)
	if re, ok := rules.FromStatus(func() error { _, err := n.prepare(dup, 2, true); return err }()); !ok || re.Kind != rules.BIP30 {
		t.Fatalf("overwrite with check_bip30: want %s, got %v", rules.BIP30, re)
	}
	dupOK := makeBlock(b1.BlockHash(), 4, cb1)
	if _, err := n.prepare(dupOK, 2, false); err != nil {
		t.Fatalf("overwrite without check_bip30: %v", err)
	}

	orphan := makeBlock(chainhash.Hash{0xee}, 5, coinbaseTx(2, 0))
	_, err = n.prepare(orphan, 2, false)
	if re, ok := rules.FromStatus(err); !ok || re.Kind != notTip {
		t.Fatalf("wrong parent: want %s, got %v", notTip, err)
	}

	ok2 := makeBlock(b1.BlockHash(), 6, coinbaseTx(2, 0))
	h := ok2.BlockHash()
	for name, req := range map[string]*utxostorev1.PrepareConnectRequest{
		"no changes": {Height: 2},
		"height 0":   {Changes: blockchanges.Proto(btcutil.NewBlock(ok2))},
		"bad hash":   {Changes: &utxostorev1.BlockChanges{Hash: []byte{1}, PrevHash: h[:]}, Height: 2},
	} {
		if _, err := n.c.PrepareConnect(ctx(t), req); status.Code(err) != codes.InvalidArgument {
			t.Fatalf("PrepareConnect %s: want InvalidArgument, got %v", name, err)
		}
	}
	for name, req := range map[string]*utxostorev1.ConnectBlockRequest{
		"short prepared_hash":       {PreparedHash: h[:31], Height: 2},
		"prepared_hash and changes": {PreparedHash: h[:], Changes: blockchanges.Proto(btcutil.NewBlock(ok2)), Height: 2},
		"prepared_hash and block":   {PreparedHash: h[:], Block: ser(t, ok2), Height: 2},
		"prepared_hash at height 0": {PreparedHash: h[:]},
	} {
		if _, err := n.c.ConnectBlock(ctx(t), req); status.Code(err) != codes.InvalidArgument {
			t.Fatalf("ConnectBlock %s: want InvalidArgument, got %v", name, err)
		}
	}
	sameSet(t, "after every refusal", before, n.stats())
	if _, err := n.prepare(ok2, 2, true); err != nil {
		t.Fatal(err)
	}
	if err := n.connectPrepared(ok2, 2); err != nil {
		t.Fatalf("connect prepared after refusals: %v", err)
	}
}

// TestLargeBlockLookups prepares blocks of more than parallelLookups
// inputs on two cores, so the reads of the inputs' coins are split
// between goroutines: the coins must come back in input order, an
// in-block spend and the coins of both halves must resolve, and a
// missing coin or a double spend in the second half must be the
// rejection, naming its transaction and input.
func TestLargeBlockLookups(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	n := serve(t, t.TempDir())
	genesis := *regtest(t).Params.GenesisHash
	const funded = 1200
	var outs []*wire.TxOut
	for i := range funded {
		outs = append(outs, wire.NewTxOut(int64(1000+i), p2wpkh(uint32(i))))
	}
	cb1 := coinbaseTx(1, 0, outs...)
	b1 := makeBlock(genesis, 1, cb1)
	n.mustConnect(b1, 1)
	spends := func(lo, hi int) []wire.OutPoint {
		var ops []wire.OutPoint
		for i := lo; i < hi; i++ {
			ops = append(ops, op(cb1, uint32(i)))
		}
		return ops
	}
	// A spends 600 coins, B spends A's output then 100 more, C the rest.
	txA := spendTx(spends(0, 600), wire.NewTxOut(5000, p2wpkh(5000)))
	txB := spendTx(append([]wire.OutPoint{op(txA, 0)}, spends(600, 700)...), wire.NewTxOut(6000, p2wpkh(6000)))
	cIns := spends(700, funded)
	if len(cIns)+701+600 < 2*parallelLookups {
		t.Fatal("the block is too small to split its lookups")
	}
	block := func(nonce uint32, c []wire.OutPoint) (*wire.MsgBlock, *wire.MsgTx) {
		txC := spendTx(c, wire.NewTxOut(7000, p2wpkh(7000)))
		return makeBlock(b1.BlockHash(), nonce, coinbaseTx(2, 0, wire.NewTxOut(50e8, p2wpkh(9000))), txA, txB, txC), txC
	}

	// The last input of C names a coin that never existed, then one A
	// spent: both are C's input 499.
	for name, last := range map[string]wire.OutPoint{
		"missing coin": {Hash: chainhash.Hash{0x77}, Index: 1},
		"double spend": op(cb1, 3),
	} {
		bad := append(append([]wire.OutPoint(nil), cIns[:len(cIns)-1]...), last)
		blk, txC := block(2, bad)
		_, err := n.prepare(blk, 2, true)
		re, ok := rules.FromStatus(err)
		if !ok || re.Kind != rules.MissingInputs || !strings.Contains(re.Detail, txC.TxHash().String()) ||
			!strings.Contains(re.Detail, fmt.Sprintf("input %d ", len(cIns)-1)) {
			t.Fatalf("%s: want %s naming tx %s input %d, got %v", name, rules.MissingInputs, txC.TxHash(), len(cIns)-1, err)
		}
	}

	blk, _ := block(3, cIns)
	resp, err := n.prepare(blk, 2, true)
	if err != nil {
		t.Fatalf("prepare: %v", err)
	}
	// Input order: A's 600 coins, A's output, B's 100, C's 500.
	var want []int64
	for i := range 600 {
		want = append(want, int64(1000+i))
	}
	want = append(want, 5000)
	for i := 600; i < funded; i++ {
		want = append(want, int64(1000+i))
	}
	rest := resp.PackedSpent
	for k, amount := range want {
		var v []byte
		if v, rest, err = packed.NextRecord(rest); err != nil {
			t.Fatalf("spent coin %d: %v", k, err)
		}
		if c, _, err := coin.Decode(v); err != nil || c.Amount != amount {
			t.Fatalf("spent coin %d: %+v (%v), want amount %d", k, c, err, amount)
		}
	}
	if len(rest) != 0 {
		t.Fatalf("%d bytes after the last spent coin", len(rest))
	}
	if err := n.connectPrepared(blk, 2); err != nil {
		t.Fatalf("connect prepared: %v", err)
	}
	if r := n.lookup(op(cb1, 0), op(cb1, funded-1), op(txA, 0)); r.Utxos[0].Found || r.Utxos[1].Found || r.Utxos[2].Found {
		t.Fatal("a spent coin is still in the set")
	}
}
