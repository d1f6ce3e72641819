package test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"net"
	"sort"
	"sync"
	"testing"

	"github.com/btcsuite/btcd/blockchain/fullblocktests"
	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/txscript/v2"
	"github.com/btcsuite/btcd/wire/v2"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	blockvalidatorv1 "github.com/btcmesh/btcmesh/proto/btcmesh/blockvalidator/v1"
	commonv1 "github.com/btcmesh/btcmesh/proto/btcmesh/common/v1"
	headersv1 "github.com/btcmesh/btcmesh/proto/btcmesh/headers/v1"
	utxostorev1 "github.com/btcmesh/btcmesh/proto/btcmesh/utxostore/v1"

	"github.com/btcmesh/btcmesh/internal/chain"
	"github.com/btcmesh/btcmesh/internal/grpcclient"
	"github.com/btcmesh/btcmesh/internal/runner"
	"github.com/btcmesh/btcmesh/internal/testenv"
	"github.com/btcmesh/btcmesh/services/blockvalidator"
	"github.com/btcmesh/btcmesh/services/headers"
	"github.com/btcmesh/btcmesh/services/txvalidator"
	"github.com/btcmesh/btcmesh/services/utxostore"
)

// fbNode is the block path wired as in single-process mode (headers,
// utxostore, the txvalidator pool on NATS and the blockvalidator on one
// gRPC address), except that the blockvalidator reaches the utxostore
// through proxy, which observes disconnects.
type fbNode struct {
	bv    blockvalidatorv1.BlockValidatorServiceClient
	hdrs  headersv1.HeaderServiceClient
	utxo  utxostorev1.UtxoStoreServiceClient
	proxy *fbUtxoProxy
}

func startFbNode(t *testing.T, net chain.Network) *fbNode {
	t.Helper()
	nc := testenv.NATS(t)
	deps := func() runner.Deps {
		return runner.Deps{Log: testenv.Logger(), Metrics: prometheus.NewRegistry(), NATS: nc, Network: net}
	}
	addr := testenv.Listener(t)
	cc, err := grpcclient.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	proxy := &fbUtxoProxy{real: utxostorev1.NewUtxoStoreServiceClient(cc), expects: map[chainhash.Hash][]*fbExpect{}}
	proxyAddr := proxy.serve(t)

	hs, err := headers.New(headers.Config{DataDir: t.TempDir()}, deps())
	if err != nil {
		t.Fatal(err)
	}
	ucfg := utxostore.DefaultConfig()
	ucfg.DataDir = t.TempDir()
	us, err := utxostore.New(ucfg, deps())
	if err != nil {
		t.Fatal(err)
	}
	tv, err := txvalidator.New(txvalidator.DefaultConfig(), deps())
	if err != nil {
		t.Fatal(err)
	}
	bv, err := blockvalidator.New(blockvalidator.Config{HeadersAddr: addr, UtxoStoreAddr: proxyAddr}, deps())
	if err != nil {
		t.Fatal(err)
	}
	testenv.Serve(t, addr, us, hs, tv, bv)
	return &fbNode{
		bv:    blockvalidatorv1.NewBlockValidatorServiceClient(cc),
		hdrs:  headersv1.NewHeaderServiceClient(cc),
		utxo:  utxostorev1.NewUtxoStoreServiceClient(cc),
		proxy: proxy,
	}
}

// fbExpect is one BlockDisconnectExpectUTXO and what was seen.
type fbExpect struct {
	item    fullblocktests.BlockDisconnectExpectUTXO
	checked int
	failure string
}

// fbUtxoProxy passes every UtxoStoreService call through to the real
// utxostore. Right after a DisconnectBlock succeeds, and before the
// blockvalidator hears back, it checks the suite's expectations for that
// block against the real UTXO set: this is the state btcd's test inspects
// in its block-disconnected notification.
type fbUtxoProxy struct {
	utxostorev1.UnimplementedUtxoStoreServiceServer
	real utxostorev1.UtxoStoreServiceClient

	mu           sync.Mutex
	expects      map[chainhash.Hash][]*fbExpect
	all          []*fbExpect
	connected    int
	prepared     int // of connected: named by prepared_hash
	disconnected int
}

func (p *fbUtxoProxy) serve(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.MaxRecvMsgSize(grpcclient.MaxMessageBytes), grpc.MaxSendMsgSize(grpcclient.MaxMessageBytes))
	utxostorev1.RegisterUtxoStoreServiceServer(srv, p)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)
	return l.Addr().String()
}

func (p *fbUtxoProxy) expect(item fullblocktests.BlockDisconnectExpectUTXO) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e := &fbExpect{item: item}
	p.expects[item.BlockHash] = append(p.expects[item.BlockHash], e)
	p.all = append(p.all, e)
}

func (p *fbUtxoProxy) results() []fbExpect {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]fbExpect, len(p.all))
	for i, e := range p.all {
		out[i] = *e
	}
	return out
}

func (p *fbUtxoProxy) moves() (connected, prepared, disconnected int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.connected, p.prepared, p.disconnected
}

func (p *fbUtxoProxy) GetUtxos(ctx context.Context, req *utxostorev1.GetUtxosRequest) (*utxostorev1.GetUtxosResponse, error) {
	return p.real.GetUtxos(ctx, req)
}

func (p *fbUtxoProxy) ConnectBlock(ctx context.Context, req *utxostorev1.ConnectBlockRequest) (*utxostorev1.ConnectBlockResponse, error) {
	resp, err := p.real.ConnectBlock(ctx, req)
	if err == nil {
		p.mu.Lock()
		p.connected++
		if len(req.GetPreparedHash()) > 0 {
			p.prepared++
		}
		p.mu.Unlock()
	}
	return resp, err
}

func (p *fbUtxoProxy) PrepareConnect(ctx context.Context, req *utxostorev1.PrepareConnectRequest) (*utxostorev1.PrepareConnectResponse, error) {
	return p.real.PrepareConnect(ctx, req)
}

func (p *fbUtxoProxy) DisconnectBlock(ctx context.Context, req *utxostorev1.DisconnectBlockRequest) (*utxostorev1.DisconnectBlockResponse, error) {
	resp, err := p.real.DisconnectBlock(ctx, req)
	if err != nil {
		return resp, err
	}
	var hdr wire.BlockHeader
	if herr := hdr.Deserialize(bytes.NewReader(req.GetBlock())); herr != nil {
		return resp, err
	}
	hash := hdr.BlockHash()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.disconnected++
	for _, e := range p.expects[hash] {
		op := e.item.OutPoint
		got, gerr := p.real.GetUtxos(ctx, &utxostorev1.GetUtxosRequest{
			Outpoints: []*commonv1.OutPoint{{Txid: op.Hash[:], Index: op.Index}},
		})
		e.checked++
		switch {
		case gerr != nil:
			e.failure = fmt.Sprintf("GetUtxos after disconnecting %s: %v", hash, gerr)
		case len(got.GetUtxos()) != 1:
			e.failure = fmt.Sprintf("GetUtxos answered %d entries", len(got.GetUtxos()))
		case got.GetUtxos()[0].GetFound() != e.item.Expected:
			e.failure = fmt.Sprintf("after disconnecting %s, output %s unspent=%v, want %v",
				hash, op, got.GetUtxos()[0].GetFound(), e.item.Expected)
		}
	}
	return resp, err
}

func (p *fbUtxoProxy) GetTip(ctx context.Context, req *utxostorev1.GetTipRequest) (*utxostorev1.GetTipResponse, error) {
	return p.real.GetTip(ctx, req)
}

func (p *fbUtxoProxy) GetStats(ctx context.Context, req *utxostorev1.GetStatsRequest) (*utxostorev1.GetStatsResponse, error) {
	return p.real.GetStats(ctx, req)
}

// fbCoin is one unspent output of the test's own UTXO model.
type fbCoin struct {
	height   int32
	coinbase bool
	amount   int64
	script   []byte
}

// fbUtxoStats are the gettxoutsetinfo figures of the model.
type fbUtxoStats struct {
	transactions, txouts, bogosize, totalAmount int64
	hashSerialized                              chainhash.Hash
}

// fbUnspendable is Core's CScript::IsUnspendable: such outputs never enter
// the UTXO set.
func fbUnspendable(script []byte) bool {
	return (len(script) > 0 && script[0] == txscript.OP_RETURN) || len(script) > txscript.MaxScriptSize
}

// fbComputeUtxoStats applies chain[1:] (chain[0] is genesis, whose coinbase
// is not spendable) to an empty set and summarises it the way utxostore
// documents hash_serialized: SHA256d over, in (txid bytes, vout) order,
// txid || vout LE32 || (height<<1|coinbase) LE32 || amount LE64 ||
// compact-size script length || script.
func fbComputeUtxoStats(chain []*wire.MsgBlock) (fbUtxoStats, error) {
	set := map[wire.OutPoint]fbCoin{}
	for h := 1; h < len(chain); h++ {
		for i, tx := range chain[h].Transactions {
			if i > 0 {
				for _, in := range tx.TxIn {
					if _, ok := set[in.PreviousOutPoint]; !ok {
						return fbUtxoStats{}, fmt.Errorf("block at height %d spends missing %s", h, in.PreviousOutPoint)
					}
					delete(set, in.PreviousOutPoint)
				}
			}
			txid := tx.TxHash()
			for vout, out := range tx.TxOut {
				if fbUnspendable(out.PkScript) {
					continue
				}
				set[wire.OutPoint{Hash: txid, Index: uint32(vout)}] = fbCoin{
					height: int32(h), coinbase: i == 0, amount: out.Value, script: out.PkScript,
				}
			}
		}
	}
	ops := make([]wire.OutPoint, 0, len(set))
	for op := range set {
		ops = append(ops, op)
	}
	sort.Slice(ops, func(a, b int) bool {
		if c := bytes.Compare(ops[a].Hash[:], ops[b].Hash[:]); c != 0 {
			return c < 0
		}
		return ops[a].Index < ops[b].Index
	})
	var st fbUtxoStats
	hasher := sha256.New()
	var last *chainhash.Hash
	for i := range ops {
		op := ops[i]
		c := set[op]
		if last == nil || *last != op.Hash {
			st.transactions++
			last = &ops[i].Hash
		}
		st.txouts++
		st.totalAmount += c.amount
		st.bogosize += 32 + 4 + 4 + 8 + 2 + int64(len(c.script))
		var buf bytes.Buffer
		buf.Write(op.Hash[:])
		_ = binary.Write(&buf, binary.LittleEndian, op.Index)
		code := uint32(c.height) << 1
		if c.coinbase {
			code |= 1
		}
		_ = binary.Write(&buf, binary.LittleEndian, code)
		_ = binary.Write(&buf, binary.LittleEndian, c.amount)
		_ = wire.WriteVarBytes(&buf, 0, c.script)
		hasher.Write(buf.Bytes())
	}
	st.hashSerialized = sha256.Sum256(hasher.Sum(nil))
	return st, nil
}
