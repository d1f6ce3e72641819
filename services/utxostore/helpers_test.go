package utxostore

import (
	"bytes"
	"context"
	"encoding/binary"
	"log/slog"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	commonv1 "github.com/btcmesh/btcmesh/proto/btcmesh/common/v1"
	utxostorev1 "github.com/btcmesh/btcmesh/proto/btcmesh/utxostore/v1"

	"github.com/btcmesh/btcmesh/internal/chain"
	"github.com/btcmesh/btcmesh/internal/grpcclient"
	"github.com/btcmesh/btcmesh/internal/runner"
	"github.com/btcmesh/btcmesh/internal/testenv"
)

// p2wpkh is a 22-byte standard-looking script whose program encodes n.
func p2wpkh(n uint32) []byte {
	s := make([]byte, 22)
	s[0], s[1] = 0x00, 0x14
	binary.BigEndian.PutUint32(s[2:], n)
	return s
}

func coinbaseTx(height int32, tag byte, outs ...*wire.TxOut) *wire.MsgTx {
	tx := wire.NewMsgTx(2)
	sig := []byte{4, byte(height), byte(height >> 8), byte(height >> 16), byte(height >> 24), 1, tag}
	tx.AddTxIn(&wire.TxIn{
		PreviousOutPoint: wire.OutPoint{Index: wire.MaxPrevOutIndex},
		SignatureScript:  sig, Sequence: 0xffffffff,
	})
	for _, o := range outs {
		tx.AddTxOut(o)
	}
	return tx
}

func spendTx(ins []wire.OutPoint, outs ...*wire.TxOut) *wire.MsgTx {
	tx := wire.NewMsgTx(2)
	for _, op := range ins {
		tx.AddTxIn(&wire.TxIn{PreviousOutPoint: op, Sequence: 0xffffffff})
	}
	for _, o := range outs {
		tx.AddTxOut(o)
	}
	return tx
}

func makeBlock(prev chainhash.Hash, nonce uint32, txs ...*wire.MsgTx) *wire.MsgBlock {
	var merkle chainhash.Hash
	blk := wire.NewMsgBlock(wire.NewBlockHeader(4, &prev, &merkle, 0x207fffff, nonce))
	blk.Header.Timestamp = time.Unix(1_700_000_000+int64(nonce), 0)
	for _, tx := range txs {
		_ = blk.AddTransaction(tx)
	}
	return blk
}

func ser(t testing.TB, b *wire.MsgBlock) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := b.Serialize(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func op(tx *wire.MsgTx, i uint32) wire.OutPoint { return wire.OutPoint{Hash: tx.TxHash(), Index: i} }

func regtest(t testing.TB) chain.Network {
	t.Helper()
	n, err := chain.Lookup("regtest")
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// node is one served utxostore.
type node struct {
	c   utxostorev1.UtxoStoreServiceClient
	reg *prometheus.Registry
	t   testing.TB
}

// serve runs the utxostore on dir over real gRPC until t ends.
func serve(t testing.TB, dir string) *node {
	t.Helper()
	cfg := DefaultConfig()
	cfg.DataDir, cfg.CacheMB = dir, 16
	reg := prometheus.NewRegistry()
	svc, err := New(cfg, runner.Deps{Log: testenv.Logger(), Metrics: reg, Network: regtest(t)})
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
	return &node{c: utxostorev1.NewUtxoStoreServiceClient(cc), reg: reg, t: t}
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

func (n *node) connect(b *wire.MsgBlock, height int32) error {
	_, err := n.c.ConnectBlock(ctx(n.t), &utxostorev1.ConnectBlockRequest{Block: ser(n.t, b), Height: height})
	return err
}

func (n *node) mustConnect(b *wire.MsgBlock, height int32) {
	n.t.Helper()
	resp, err := n.c.ConnectBlock(ctx(n.t), &utxostorev1.ConnectBlockRequest{Block: ser(n.t, b), Height: height})
	if err != nil {
		n.t.Fatalf("connect height %d: %v", height, err)
	}
	if h := b.BlockHash(); !bytes.Equal(resp.TipHash, h[:]) || resp.TipHeight != height {
		n.t.Fatalf("connect answered tip %x/%d, want %s/%d", resp.TipHash, resp.TipHeight, h, height)
	}
}

func (n *node) mustDisconnect(b *wire.MsgBlock) *utxostorev1.DisconnectBlockResponse {
	n.t.Helper()
	resp, err := n.c.DisconnectBlock(ctx(n.t), &utxostorev1.DisconnectBlockRequest{Block: ser(n.t, b)})
	if err != nil {
		n.t.Fatalf("disconnect %s: %v", b.BlockHash(), err)
	}
	if !bytes.Equal(resp.TipHash, b.Header.PrevBlock[:]) {
		n.t.Fatalf("disconnect answered tip %x, want parent %s", resp.TipHash, b.Header.PrevBlock)
	}
	return resp
}

func (n *node) stats() *utxostorev1.GetStatsResponse {
	n.t.Helper()
	s, err := n.c.GetStats(ctx(n.t), &utxostorev1.GetStatsRequest{})
	if err != nil {
		n.t.Fatalf("stats: %v", err)
	}
	return s
}

func (n *node) tip() (chainhash.Hash, int32) {
	n.t.Helper()
	r, err := n.c.GetTip(ctx(n.t), &utxostorev1.GetTipRequest{})
	if err != nil {
		n.t.Fatalf("tip: %v", err)
	}
	var h chainhash.Hash
	copy(h[:], r.TipHash)
	return h, r.TipHeight
}

func (n *node) lookup(ops ...wire.OutPoint) *utxostorev1.GetUtxosResponse {
	n.t.Helper()
	req := &utxostorev1.GetUtxosRequest{}
	for _, o := range ops {
		req.Outpoints = append(req.Outpoints, &commonv1.OutPoint{Txid: o.Hash[:], Index: o.Index})
	}
	r, err := n.c.GetUtxos(ctx(n.t), req)
	if err != nil {
		n.t.Fatalf("lookup: %v", err)
	}
	if len(r.Utxos) != len(ops) {
		n.t.Fatalf("lookup answered %d utxos for %d outpoints", len(r.Utxos), len(ops))
	}
	return r
}

// sameSet compares the parts of two stats that describe the set itself.
func sameSet(t testing.TB, what string, a, b *utxostorev1.GetStatsResponse) {
	t.Helper()
	a2, b2 := proto.Clone(a).(*utxostorev1.GetStatsResponse), proto.Clone(b).(*utxostorev1.GetStatsResponse)
	a2.DiskSize, b2.DiskSize = 0, 0
	if !proto.Equal(a2, b2) {
		t.Fatalf("%s: stats differ:\n%v\n%v", what, a2, b2)
	}
}

// gauge reads a metric's value from the registry.
func (n *node) metric(name string) float64 {
	n.t.Helper()
	mfs, err := n.reg.Gather()
	if err != nil {
		n.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		m := mf.GetMetric()[0]
		switch {
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	n.t.Fatalf("metric %s not found", name)
	return 0
}

func disconnectReq(t testing.TB, b *wire.MsgBlock) *utxostorev1.DisconnectBlockRequest {
	return &utxostorev1.DisconnectBlockRequest{Block: ser(t, b)}
}

func discardLog() *slog.Logger { return testenv.Logger() }

// mustOpenStore opens a store in a fresh directory on regtest's genesis
// with o's tuning, closed when the test ends.
func mustOpenStore(t *testing.T, o storeOptions) *store {
	t.Helper()
	o.dir, o.genesis = t.TempDir(), *regtest(t).Params.GenesisHash
	st, err := openStore(o, discardLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.close() })
	return st
}

// sameLookup reports whether two lookups answer the same coin.
func sameLookup(a, b lookup) bool {
	return a.found == b.found && a.coin.Height == b.coin.Height && a.coin.Coinbase == b.coin.Coinbase &&
		a.coin.Amount == b.coin.Amount && bytes.Equal(a.coin.Script, b.coin.Script)
}

// sameStoreSet fails unless stores a and b (flushed by the scan) hold the
// same set at the same tip.
func sameStoreSet(t testing.TB, what string, a, b *store) {
	t.Helper()
	sa, err := a.stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	sb, err := b.stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if sa.hashSerialized != sb.hashSerialized || sa.txouts != sb.txouts || sa.tip != sb.tip {
		t.Fatalf("%s: sets differ (tips %+v and %+v)", what, sa.tip, sb.tip)
	}
}
