package p2p

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg/v2"
	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/peer"
	"github.com/btcsuite/btcd/wire/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/btcmesh/btcmesh/proto/btcmesh/events/v1"
	headersv1 "github.com/btcmesh/btcmesh/proto/btcmesh/headers/v1"
	p2pv1 "github.com/btcmesh/btcmesh/proto/btcmesh/p2p/v1"

	"github.com/btcmesh/btcmesh/internal/blockstore"
	"github.com/btcmesh/btcmesh/internal/bus"
	"github.com/btcmesh/btcmesh/internal/grpcclient"
	"github.com/btcmesh/btcmesh/internal/runner"
	"github.com/btcmesh/btcmesh/internal/testenv"
	"github.com/btcmesh/btcmesh/internal/version"
)

// fakeHeaders serves only the HeaderService methods p2p calls, over a
// chain that holds the regtest genesis block alone.
type fakeHeaders struct {
	headersv1.UnimplementedHeaderServiceServer
	ready *runner.ReadySignal

	mu        sync.Mutex
	reject    string   // reject rule for every submitted header
	missing   [][]byte // blocks GetMissingBlocks reports
	submitted int
}

func newFakeHeaders() *fakeHeaders { return &fakeHeaders{ready: runner.NewReadySignal()} }

func (f *fakeHeaders) Name() string { return "headers" }
func (f *fakeHeaders) RegisterGRPC(s grpc.ServiceRegistrar) {
	headersv1.RegisterHeaderServiceServer(s, f)
}
func (f *fakeHeaders) Ready() <-chan struct{}        { return f.ready.C() }
func (f *fakeHeaders) Run(ctx context.Context) error { f.ready.Set(); <-ctx.Done(); return nil }

func genesisInfo() *headersv1.HeaderInfo {
	g := chaincfg.RegressionNetParams.GenesisBlock
	var buf bytes.Buffer
	_ = g.Header.Serialize(&buf)
	h := g.BlockHash()
	return &headersv1.HeaderInfo{Hash: h[:], Height: 0, Header: buf.Bytes()}
}

func (f *fakeHeaders) GetChainInfo(context.Context, *headersv1.GetChainInfoRequest) (*headersv1.GetChainInfoResponse, error) {
	return &headersv1.GetChainInfoResponse{Network: "regtest", Tip: genesisInfo(), BestHeader: genesisInfo()}, nil
}

func (f *fakeHeaders) GetBlockLocator(context.Context, *headersv1.GetBlockLocatorRequest) (*headersv1.GetBlockLocatorResponse, error) {
	return &headersv1.GetBlockLocatorResponse{Locator: [][]byte{genesisInfo().Hash}}, nil
}

func (f *fakeHeaders) GetHeader(context.Context, *headersv1.GetHeaderRequest) (*headersv1.GetHeaderResponse, error) {
	return &headersv1.GetHeaderResponse{Info: genesisInfo()}, nil
}

func (f *fakeHeaders) LocateHeaders(context.Context, *headersv1.LocateHeadersRequest) (*headersv1.LocateHeadersResponse, error) {
	return &headersv1.LocateHeadersResponse{}, nil
}

func (f *fakeHeaders) SubmitHeaders(_ context.Context, req *headersv1.SubmitHeadersRequest) (*headersv1.SubmitHeadersResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.submitted += len(req.Headers)
	if f.reject != "" {
		return &headersv1.SubmitHeadersResponse{RejectRule: f.reject, RejectDetail: "fake rejection"}, nil
	}
	resp := &headersv1.SubmitHeadersResponse{Accepted: int32(len(req.Headers))}
	for i, raw := range req.Headers {
		var bh wire.BlockHeader
		_ = bh.Deserialize(bytes.NewReader(raw))
		h := bh.BlockHash()
		resp.Results = append(resp.Results, &headersv1.HeaderInfo{Hash: h[:], Height: int32(i + 1), Header: raw})
	}
	return resp, nil
}

func (f *fakeHeaders) GetMissingBlocks(context.Context, *headersv1.GetMissingBlocksRequest) (*headersv1.GetMissingBlocksResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	resp := &headersv1.GetMissingBlocksResponse{}
	for _, h := range f.missing {
		resp.Blocks = append(resp.Blocks, &headersv1.HeaderInfo{Hash: h, Height: 0})
	}
	return resp, nil
}

// node is a p2p service served over gRPC with a fake headers service.
type node struct {
	svc     *Service
	headers *fakeHeaders
	client  p2pv1.P2PServiceClient
	p2pAddr string
	nc      *nats.Conn
}

func startNode(t *testing.T, nc *nats.Conn, dataDir string) *node {
	t.Helper()
	addr := testenv.Listener(t)
	fh := newFakeHeaders()
	svc, err := New(Config{
		HeadersAddr: addr, DataDir: dataDir, Listen: "127.0.0.1:0",
		MaxPeers: 8, BanDuration: time.Hour, AllowSelfConns: true,
	}, testenv.Deps(t, nc))
	if err != nil {
		t.Fatal(err)
	}
	testenv.Serve(t, addr, fh, svc)
	cc, err := grpcclient.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	n := &node{svc: svc, headers: fh, client: p2pv1.NewP2PServiceClient(cc), nc: nc}
	ni, err := n.client.GetNetworkInfo(ctxT(t), &p2pv1.GetNetworkInfoRequest{})
	if err != nil || len(ni.LocalAddresses) != 1 {
		t.Fatalf("network info: %v %v", ni, err)
	}
	n.p2pAddr = ni.LocalAddresses[0]
	return n
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// testPeer is a Bitcoin peer built with btcd's peer package.
type testPeer struct {
	p      *peer.Peer
	conn   net.Conn
	verack chan struct{}
}

func dialPeer(t *testing.T, addr string, l peer.MessageListeners) *testPeer {
	t.Helper()
	tp := &testPeer{verack: make(chan struct{})}
	l.OnVerAck = func(*peer.Peer, *wire.MsgVerAck) { close(tp.verack) }
	cfg := &peer.Config{
		UserAgentName: "testpeer", UserAgentVersion: "1.0.0",
		ChainParams:     &chaincfg.RegressionNetParams,
		Services:        wire.SFNodeNetwork | wire.SFNodeWitness,
		ProtocolVersion: wire.ProtocolVersion, AllowSelfConns: true,
		TrickleInterval: 100 * time.Millisecond,
		Listeners:       l,
	}
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	p, err := peer.NewOutboundPeer(cfg, addr)
	if err != nil {
		t.Fatal(err)
	}
	p.AssociateConnection(conn)
	tp.p, tp.conn = p, conn
	t.Cleanup(p.Disconnect)
	return tp
}

func (tp *testPeer) waitHandshake(t *testing.T) {
	t.Helper()
	select {
	case <-tp.verack:
	case <-tp.p.Done():
		t.Fatal("peer disconnected during handshake")
	case <-time.After(10 * time.Second):
		t.Fatal("handshake timed out")
	}
}

func (tp *testPeer) waitDisconnect(t *testing.T, what string) {
	t.Helper()
	select {
	case <-tp.p.Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: peer still connected", what)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (n *node) peers(t *testing.T) []*p2pv1.PeerInfo {
	t.Helper()
	resp, err := n.client.GetPeerInfo(ctxT(t), &p2pv1.GetPeerInfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return resp.Peers
}

func TestHandshakePeerInfoAndHeadersSync(t *testing.T) {
	nc := testenv.NATS(t)
	n := startNode(t, nc, t.TempDir())

	gotGetHeaders := make(chan *wire.MsgGetHeaders, 4)
	tp := dialPeer(t, n.p2pAddr, peer.MessageListeners{
		OnGetHeaders: func(_ *peer.Peer, m *wire.MsgGetHeaders) { gotGetHeaders <- m },
	})
	tp.waitHandshake(t)

	// Our node advertised the right version, services and user agent.
	if tp.p.ProtocolVersion() != 70016 {
		t.Errorf("protocol version %d", tp.p.ProtocolVersion())
	}
	if tp.p.Services() != wire.SFNodeNetwork|wire.SFNodeWitness|wire.SFNodeNetworkLimited {
		t.Errorf("services %v", tp.p.Services())
	}
	if tp.p.UserAgent() != version.UserAgent() {
		t.Errorf("user agent %q", tp.p.UserAgent())
	}

	waitFor(t, "peer in getpeerinfo", func() bool { return len(n.peers(t)) == 1 })
	pi := n.peers(t)[0]
	if !pi.Inbound || !strings.HasSuffix(pi.Subver, "/testpeer:1.0.0/") || pi.Version != 70016 || pi.Services != "0000000000000009" {
		t.Errorf("peer info %+v", pi)
	}
	if g := testutil.ToFloat64(n.svc.m.peers.WithLabelValues("inbound")); g != 1 {
		t.Errorf("inbound peers gauge %v", g)
	}
	if testutil.ToFloat64(n.svc.m.bytesReceived) == 0 || testutil.ToFloat64(n.svc.m.bytesSent) == 0 {
		t.Error("byte counters did not move")
	}
	ni, err := n.client.GetNetworkInfo(ctxT(t), &p2pv1.GetNetworkInfoRequest{})
	if err != nil || ni.Connections != 1 || ni.ConnectionsIn != 1 || ni.ProtocolVersion != 70016 {
		t.Errorf("network info %+v %v", ni, err)
	}

	// Headers-first sync starts with getheaders from our locator.
	select {
	case m := <-gotGetHeaders:
		if len(m.BlockLocatorHashes) == 0 || *m.BlockLocatorHashes[0] != *chaincfg.RegressionNetParams.GenesisHash {
			t.Errorf("locator %v", m.BlockLocatorHashes)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no getheaders")
	}

	// Headers we send are submitted to the headers service.
	hdrs := wire.NewMsgHeaders()
	bh := chaincfg.RegressionNetParams.GenesisBlock.Header
	bh.Nonce++
	_ = hdrs.AddBlockHeader(&bh)
	tp.p.QueueMessage(hdrs, nil)
	waitFor(t, "headers submitted", func() bool {
		n.headers.mu.Lock()
		defer n.headers.mu.Unlock()
		return n.headers.submitted == 1
	})
	waitFor(t, "synced_headers", func() bool { p := n.peers(t); return len(p) == 1 && p[0].SyncedHeaders == 1 })

	// DisconnectNode by id drops it; an unknown id is NotFound.
	if _, err := n.client.DisconnectNode(ctxT(t), &p2pv1.DisconnectNodeRequest{Id: 99999}); status.Code(err) != codes.NotFound {
		t.Errorf("disconnect unknown id: %v", err)
	}
	if _, err := n.client.DisconnectNode(ctxT(t), &p2pv1.DisconnectNodeRequest{Id: pi.Id}); err != nil {
		t.Fatal(err)
	}
	tp.waitDisconnect(t, "disconnectnode")
	waitFor(t, "empty peer table", func() bool { return len(n.peers(t)) == 0 })
	if g := testutil.ToFloat64(n.svc.m.peers.WithLabelValues("inbound")); g != 0 {
		t.Errorf("inbound peers gauge %v after disconnect", g)
	}
	if testutil.ToFloat64(n.svc.m.headersRecv) != 1 {
		t.Error("headers counter")
	}
}

func TestSetBanDisconnectsRefusesAndPersists(t *testing.T) {
	nc := testenv.NATS(t)
	dir := t.TempDir()
	n := startNode(t, nc, dir)

	tp := dialPeer(t, n.p2pAddr, peer.MessageListeners{})
	tp.waitHandshake(t)
	waitFor(t, "peer connected", func() bool { return len(n.peers(t)) == 1 })

	ctx := ctxT(t)
	for _, bad := range []*p2pv1.SetBanRequest{
		{Subnet: "not-an-ip", Command: "add"},
		{Subnet: "10.0.0.0/99", Command: "add"},
		{Subnet: "127.0.0.1", Command: "ban"},
		{Subnet: "127.0.0.1", Command: "add", BanTime: 10, Absolute: true},
	} {
		if _, err := n.client.SetBan(ctx, bad); status.Code(err) != codes.InvalidArgument {
			t.Errorf("setban %v: want InvalidArgument, got %v", bad, err)
		}
	}
	if _, err := n.client.SetBan(ctx, &p2pv1.SetBanRequest{Subnet: "127.0.0.1", Command: "add"}); err != nil {
		t.Fatal(err)
	}
	tp.waitDisconnect(t, "setban")
	lb, err := n.client.ListBanned(ctx, &p2pv1.ListBannedRequest{})
	if err != nil || len(lb.Bans) != 1 || lb.Bans[0].Address != "127.0.0.1/32" {
		t.Fatalf("listbanned %v %v", lb, err)
	}
	if until := lb.Bans[0].BannedUntil - lb.Bans[0].BanCreated; until < 3590 || until > 3610 {
		t.Errorf("ban length %d s, want the configured hour", until)
	}

	// A banned peer is refused.
	again := dialPeer(t, n.p2pAddr, peer.MessageListeners{})
	again.waitDisconnect(t, "banned reconnect")

	// The ban survives a restart on the same data directory.
	n2 := startNode(t, nc, dir)
	lb, err = n2.client.ListBanned(ctx, &p2pv1.ListBannedRequest{})
	if err != nil || len(lb.Bans) != 1 || lb.Bans[0].Address != "127.0.0.1/32" {
		t.Fatalf("listbanned after restart %v %v", lb, err)
	}
	third := dialPeer(t, n2.p2pAddr, peer.MessageListeners{})
	third.waitDisconnect(t, "banned after restart")

	// Unban, then the peer gets in.
	if _, err := n2.client.SetBan(ctx, &p2pv1.SetBanRequest{Subnet: "127.0.0.1/32", Command: "remove"}); err != nil {
		t.Fatal(err)
	}
	if _, err := n2.client.SetBan(ctx, &p2pv1.SetBanRequest{Subnet: "127.0.0.1/32", Command: "remove"}); status.Code(err) != codes.NotFound {
		t.Errorf("second unban: %v", err)
	}
	fourth := dialPeer(t, n2.p2pAddr, peer.MessageListeners{})
	fourth.waitHandshake(t)
	if _, err := n2.client.ClearBanned(ctx, &p2pv1.ClearBannedRequest{}); err != nil {
		t.Fatal(err)
	}
}

func TestInvalidHeaderBansPeer(t *testing.T) {
	nc := testenv.NATS(t)
	n := startNode(t, nc, t.TempDir())
	n.headers.mu.Lock()
	n.headers.reject = "high-hash"
	n.headers.mu.Unlock()

	tp := dialPeer(t, n.p2pAddr, peer.MessageListeners{})
	tp.waitHandshake(t)
	hdrs := wire.NewMsgHeaders()
	bh := chaincfg.RegressionNetParams.GenesisBlock.Header
	_ = hdrs.AddBlockHeader(&bh)
	tp.p.QueueMessage(hdrs, nil)
	tp.waitDisconnect(t, "invalid header")

	lb, err := n.client.ListBanned(ctxT(t), &p2pv1.ListBannedRequest{})
	if err != nil || len(lb.Bans) != 1 || !strings.Contains(lb.Bans[0].Reason, "high-hash") {
		t.Fatalf("listbanned %v %v", lb, err)
	}
}

func TestGarbageDisconnectsAndNodeKeepsServing(t *testing.T) {
	nc := testenv.NATS(t)
	n := startNode(t, nc, t.TempDir())

	// Garbage instead of a handshake.
	raw, err := net.Dial("tcp", n.p2pAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	_, _ = raw.Write(bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef}, 64))
	_ = raw.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, raw); err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("garbage connection was not closed")
		}
	}

	// Garbage after a handshake: a frame with our magic and a bad checksum.
	tp := dialPeer(t, n.p2pAddr, peer.MessageListeners{})
	tp.waitHandshake(t)
	waitFor(t, "first peer", func() bool { return len(n.peers(t)) == 1 })
	frame := make([]byte, 24+8)
	magic := uint32(chaincfg.RegressionNetParams.Net)
	frame[0], frame[1], frame[2], frame[3] = byte(magic), byte(magic>>8), byte(magic>>16), byte(magic>>24)
	copy(frame[4:], "ping")
	frame[16] = 8
	_, _ = tp.conn.Write(frame)
	tp.waitDisconnect(t, "malformed message")
	waitFor(t, "first peer gone", func() bool { return len(n.peers(t)) == 0 })

	second := dialPeer(t, n.p2pAddr, peer.MessageListeners{})
	second.waitHandshake(t)
	waitFor(t, "second peer", func() bool { p := n.peers(t); return len(p) == 1 && strings.HasSuffix(p[0].Subver, "/testpeer:1.0.0/") })
}

func TestBlockDownloadStoresAndPublishes(t *testing.T) {
	nc := testenv.NATS(t)
	n := startNode(t, nc, t.TempDir())
	genesis := chaincfg.RegressionNetParams.GenesisBlock
	ghash := genesis.BlockHash()

	received := make(chan *eventsv1.BlockReceived, 4)
	sub, err := nc.Subscribe(bus.NewSubjects("regtest").BlockReceived(), func(m *nats.Msg) {
		var ev eventsv1.BlockReceived
		if proto.Unmarshal(m.Data, &ev) == nil {
			received <- &ev
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()

	asked := make(chan wire.InvType, 4)
	var tp *testPeer
	tp = dialPeer(t, n.p2pAddr, peer.MessageListeners{
		OnGetData: func(p *peer.Peer, m *wire.MsgGetData) {
			for _, iv := range m.InvList {
				if iv.Hash == ghash {
					asked <- iv.Type
					p.QueueMessageWithEncoding(genesis, nil, wire.WitnessEncoding)
				}
			}
		},
	})
	tp.waitHandshake(t)
	n.headers.mu.Lock()
	n.headers.missing = [][]byte{ghash[:]}
	n.headers.mu.Unlock()

	select {
	case typ := <-asked:
		if typ != wire.InvTypeWitnessBlock {
			t.Errorf("asked with %v, want MSG_WITNESS_BLOCK", typ)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("block never requested")
	}
	select {
	case ev := <-received:
		if !bytes.Equal(ev.Hash, ghash[:]) {
			t.Errorf("event hash %x", ev.Hash)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no block.received event")
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	store, err := blockstore.Open(ctxT(t), js, bus.NewSubjects("regtest").BlockBucket(), 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := store.Get(ctxT(t), ghash)
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	_ = genesis.Serialize(&want)
	if !bytes.Equal(stored, want.Bytes()) {
		t.Error("stored block differs")
	}

	// The stored block is served back to a peer that asks for it.
	got := make(chan *wire.MsgBlock, 1)
	other := dialPeer(t, n.p2pAddr, peer.MessageListeners{
		OnBlock:    func(_ *peer.Peer, m *wire.MsgBlock, _ []byte) { got <- m },
		OnNotFound: func(*peer.Peer, *wire.MsgNotFound) { t.Error("notfound for a stored block") },
	})
	other.waitHandshake(t)
	gd := wire.NewMsgGetData()
	_ = gd.AddInvVect(wire.NewInvVect(wire.InvTypeBlock, &ghash))
	other.p.QueueMessage(gd, nil)
	select {
	case b := <-got:
		if b.BlockHash() != ghash {
			t.Error("served the wrong block")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("block not served")
	}
}

func TestTxRelay(t *testing.T) {
	nc := testenv.NATS(t)
	n := startNode(t, nc, t.TempDir())
	subj := bus.NewSubjects("regtest")

	invs := make(chan *wire.InvVect, 4)
	txs := make(chan *wire.MsgTx, 4)
	nf := make(chan *wire.MsgNotFound, 4)
	tp := dialPeer(t, n.p2pAddr, peer.MessageListeners{
		OnInv: func(_ *peer.Peer, m *wire.MsgInv) {
			for _, iv := range m.InvList {
				invs <- iv
			}
		},
		OnTx:       func(_ *peer.Peer, m *wire.MsgTx) { txs <- m },
		OnNotFound: func(_ *peer.Peer, m *wire.MsgNotFound) { nf <- m },
	})
	tp.waitHandshake(t)
	waitFor(t, "peer", func() bool { return len(n.peers(t)) == 1 })

	// An accepted tx is announced and served.
	tx := chaincfg.RegressionNetParams.GenesisBlock.Transactions[0].Copy()
	var raw bytes.Buffer
	_ = tx.Serialize(&raw)
	txid := tx.TxHash()
	wtxid := tx.WitnessHash()
	ev := &eventsv1.TxAccepted{Txid: txid[:], Wtxid: wtxid[:], FeeRate: 5000, Tx: raw.Bytes()}
	if err := bus.Publish(nc, subj.TxAccepted(), ev); err != nil {
		t.Fatal(err)
	}
	select {
	case iv := <-invs:
		if iv.Type != wire.InvTypeTx || iv.Hash != txid {
			t.Errorf("inv %v", iv)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no tx inv")
	}
	gd := wire.NewMsgGetData()
	_ = gd.AddInvVect(wire.NewInvVect(wire.InvTypeTx, &txid))
	unknown := chainhash.Hash{1}
	_ = gd.AddInvVect(wire.NewInvVect(wire.InvTypeTx, &unknown))
	tp.p.QueueMessage(gd, nil)
	select {
	case got := <-txs:
		if got.TxHash() != txid {
			t.Error("wrong tx served")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("tx not served")
	}
	select {
	case m := <-nf:
		if len(m.InvList) != 1 || m.InvList[0].Hash != unknown {
			t.Errorf("notfound %v", m.InvList)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no notfound")
	}

	// A tx from a peer goes to tx.received.
	recv := make(chan *eventsv1.TxReceived, 1)
	sub, err := nc.Subscribe(subj.TxReceived(), func(m *nats.Msg) {
		var ev eventsv1.TxReceived
		if proto.Unmarshal(m.Data, &ev) == nil {
			recv <- &ev
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	tx2 := tx.Copy()
	tx2.LockTime = 7
	tp.p.QueueMessage(tx2, nil)
	select {
	case ev := <-recv:
		var got wire.MsgTx
		if err := got.Deserialize(bytes.NewReader(ev.Tx)); err != nil || got.TxHash() != tx2.TxHash() {
			t.Errorf("tx.received carried the wrong tx: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no tx.received")
	}

	// A feefilter above the fee rate stops announcements.
	tp.p.QueueMessage(wire.NewMsgFeeFilter(10000), nil)
	waitFor(t, "feefilter", func() bool {
		for _, ps := range n.svc.readyPeers() {
			if ps.feeFilter.Load() == 10000 {
				return true
			}
		}
		return false
	})
	tx3 := tx.Copy()
	tx3.LockTime = 9
	raw.Reset()
	_ = tx3.Serialize(&raw)
	txid3 := tx3.TxHash()
	_ = bus.Publish(nc, subj.TxAccepted(), &eventsv1.TxAccepted{Txid: txid3[:], FeeRate: 5000, Tx: raw.Bytes()})
	select {
	case iv := <-invs:
		t.Errorf("announced %v despite feefilter", iv)
	case <-time.After(time.Second):
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--p2p-listen", "nope"}, "--p2p-listen"},
		{[]string{"--connect", "1.2.3.4:99999"}, "--connect"},
		{[]string{"--addnode", "a b"}, "--addnode"},
		{[]string{"--max-peers", "-1"}, "--max-peers"},
		{[]string{"--p2p-ban-duration", "0s"}, "--p2p-ban-duration"},
	} {
		cfg := Config{HeadersAddr: "127.0.0.1:1"}
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		cfg.RegisterFlags(fs)
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got %v, want an error naming %s", tc.args, err, tc.want)
		}
	}
	cfg := Config{HeadersAddr: "127.0.0.1:1", Listen: "127.0.0.1:18444"}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	if err := fs.Parse([]string{"--connect", "127.0.0.1", "--connect", "[::1]:18445", "--addnode", "example.com:8333"}); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.MaxPeers != 125 || cfg.BanDuration != 24*time.Hour || len(cfg.Connect) != 2 || cfg.Listen != "127.0.0.1:18444" {
		t.Errorf("defaults %+v", cfg)
	}
	if got := withDefaultPort("127.0.0.1", "18444"); got != "127.0.0.1:18444" {
		t.Errorf("default port: %s", got)
	}
	if got := withDefaultPort("::1", "18444"); got != "[::1]:18444" {
		t.Errorf("default port v6: %s", got)
	}
}

func TestAddNodeOutboundReconnectAndMaxPeers(t *testing.T) {
	nc := testenv.NATS(t)
	a := startNode(t, nc, t.TempDir())
	b := startNode(t, nc, t.TempDir())
	ctx := ctxT(t)

	for _, bad := range []*p2pv1.AddNodeRequest{
		{Addr: b.p2pAddr, Command: "connect"},
		{Addr: "", Command: "add"},
		{Addr: "1.2.3.4:70000", Command: "add"},
	} {
		if _, err := a.client.AddNode(ctx, bad); status.Code(err) != codes.InvalidArgument {
			t.Errorf("addnode %v: want InvalidArgument, got %v", bad, err)
		}
	}
	if _, err := a.client.AddNode(ctx, &p2pv1.AddNodeRequest{Addr: b.p2pAddr, Command: "add"}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.client.AddNode(ctx, &p2pv1.AddNodeRequest{Addr: b.p2pAddr, Command: "add"}); status.Code(err) != codes.AlreadyExists {
		t.Errorf("second add: %v", err)
	}
	waitFor(t, "outbound peer", func() bool { p := a.peers(t); return len(p) == 1 && !p[0].Inbound })
	waitFor(t, "inbound peer", func() bool { p := b.peers(t); return len(p) == 1 && p[0].Inbound })
	if sv := b.peers(t)[0].Subver; sv != version.UserAgent() {
		t.Errorf("subver seen by the other node %q, want %q", sv, version.UserAgent())
	}

	// Dropped, it reconnects.
	first := a.peers(t)[0].Id
	if _, err := a.client.DisconnectNode(ctx, &p2pv1.DisconnectNodeRequest{Addr: b.p2pAddr}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "reconnect", func() bool { p := a.peers(t); return len(p) == 1 && p[0].Id != first })

	if _, err := a.client.AddNode(ctx, &p2pv1.AddNodeRequest{Addr: b.p2pAddr, Command: "remove"}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.client.AddNode(ctx, &p2pv1.AddNodeRequest{Addr: b.p2pAddr, Command: "remove"}); status.Code(err) != codes.NotFound {
		t.Errorf("second remove: %v", err)
	}

	// --max-peers bounds inbound connections.
	b.svc.cfg.MaxPeers = 1
	extra := dialPeer(t, b.p2pAddr, peer.MessageListeners{})
	extra.waitDisconnect(t, "over max-peers")
}

func TestChainTipAnnounced(t *testing.T) {
	nc := testenv.NATS(t)
	n := startNode(t, nc, t.TempDir())

	invs := make(chan *wire.MsgInv, 4)
	hdrs := make(chan *wire.MsgHeaders, 4)
	plain := dialPeer(t, n.p2pAddr, peer.MessageListeners{OnInv: func(_ *peer.Peer, m *wire.MsgInv) { invs <- m }})
	plain.waitHandshake(t)
	wants := dialPeer(t, n.p2pAddr, peer.MessageListeners{
		OnInv:     func(_ *peer.Peer, m *wire.MsgInv) { t.Errorf("inv to a sendheaders peer: %v", m.InvList) },
		OnHeaders: func(_ *peer.Peer, m *wire.MsgHeaders) { hdrs <- m },
	})
	wants.waitHandshake(t)
	wants.p.QueueMessage(wire.NewMsgSendHeaders(), nil)
	waitFor(t, "peers", func() bool { return len(n.svc.readyPeers()) == 2 })
	waitFor(t, "sendheaders", func() bool {
		for _, ps := range n.svc.readyPeers() {
			if ps.p.WantsHeaders() {
				return true
			}
		}
		return false
	})

	tip := chainhash.Hash{7}
	ev := &eventsv1.ChainTip{Hash: tip[:], Height: 1, Connected: [][]byte{tip[:]}}
	if err := bus.Publish(nc, bus.NewSubjects("regtest").ChainTip(), ev); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-invs:
		if len(m.InvList) != 1 || m.InvList[0].Hash != tip || m.InvList[0].Type != wire.InvTypeBlock {
			t.Errorf("inv %v", m.InvList)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no block inv")
	}
	select {
	case m := <-hdrs:
		if len(m.Headers) != 1 {
			t.Errorf("%d headers announced", len(m.Headers))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no headers announcement")
	}
	if n.svc.tipHeight.Load() != 1 {
		t.Errorf("tip height %d", n.svc.tipHeight.Load())
	}
	// The same tip again is not announced twice.
	_ = bus.Publish(nc, bus.NewSubjects("regtest").ChainTip(), ev)
	select {
	case m := <-invs:
		t.Errorf("announced again: %v", m.InvList)
	case <-time.After(500 * time.Millisecond):
	}
}
