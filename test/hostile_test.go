package test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/btcutil/v2"
	"github.com/btcsuite/btcd/chaincfg/v2"
	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/peer"
	"github.com/btcsuite/btcd/txscript/v2"
	"github.com/btcsuite/btcd/wire/v2"

	headersv1 "github.com/btcmesh/btcmesh/proto/btcmesh/headers/v1"
	p2pv1 "github.com/btcmesh/btcmesh/proto/btcmesh/p2p/v1"

	"github.com/btcmesh/btcmesh/internal/grpcclient"
	"github.com/btcmesh/btcmesh/internal/testenv"
)

// hsChain is a regtest chain built in the test: blocks[i] is at height i.
type hsChain struct {
	mu     sync.Mutex
	blocks []*wire.MsgBlock
	height map[chainhash.Hash]int
	shown  int // blocks served to peers: heights 0..shown
}

func newHsChain(t *testing.T, n int) *hsChain {
	t.Helper()
	params := &chaincfg.RegressionNetParams
	c := &hsChain{blocks: []*wire.MsgBlock{params.GenesisBlock}, height: map[chainhash.Hash]int{*params.GenesisHash: 0}}
	for h := 1; h <= n; h++ {
		parent := c.blocks[h-1]
		script, err := txscript.NewScriptBuilder().AddInt64(int64(h)).AddData([]byte("honest")).Script()
		if err != nil {
			t.Fatal(err)
		}
		cb := wire.NewMsgTx(1)
		cb.AddTxIn(&wire.TxIn{PreviousOutPoint: wire.OutPoint{Index: wire.MaxPrevOutIndex}, SignatureScript: script,
			Sequence: wire.MaxTxInSequenceNum})
		cb.AddTxOut(&wire.TxOut{Value: blockchain.CalcBlockSubsidy(int32(h), params), PkScript: []byte{txscript.OP_TRUE}})
		b := &wire.MsgBlock{Header: wire.BlockHeader{
			Version: 0x20000000, PrevBlock: parent.BlockHash(),
			Timestamp: parent.Header.Timestamp.Add(10 * time.Minute), Bits: params.PowLimitBits,
		}}
		b.AddTransaction(cb)
		b.Header.MerkleRoot = blockchain.CalcMerkleRoot(btcutil.NewBlock(b).Transactions(), false)
		solve(&b.Header, true)
		c.blocks = append(c.blocks, b)
		c.height[b.BlockHash()] = h
	}
	return c
}

// solve sets the nonce so the header meets (valid) or misses (!valid)
// the regtest target.
func solve(h *wire.BlockHeader, valid bool) {
	target := blockchain.CompactToBig(chaincfg.RegressionNetParams.PowLimitBits)
	for {
		hash := h.BlockHash()
		if (blockchain.HashToBig(&hash).Cmp(target) <= 0) == valid {
			return
		}
		h.Nonce++
	}
}

func (c *hsChain) tip() (chainhash.Hash, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.blocks[c.shown].BlockHash(), c.shown
}

// locate answers getheaders from the shown part of the chain.
func (c *hsChain) locate(m *wire.MsgGetHeaders) *wire.MsgHeaders {
	c.mu.Lock()
	defer c.mu.Unlock()
	start := 0
	for _, h := range m.BlockLocatorHashes {
		if ht, ok := c.height[*h]; ok && ht <= c.shown {
			start = ht
			break
		}
	}
	out := wire.NewMsgHeaders()
	for h := start + 1; h <= c.shown && len(out.Headers) < wire.MaxBlockHeadersPerMsg; h++ {
		_ = out.AddBlockHeader(&c.blocks[h].Header)
		if c.blocks[h].BlockHash() == m.HashStop {
			break
		}
	}
	return out
}

func (c *hsChain) block(hash chainhash.Hash) *wire.MsgBlock {
	c.mu.Lock()
	defer c.mu.Unlock()
	if h, ok := c.height[hash]; ok && h <= c.shown {
		return c.blocks[h]
	}
	return nil
}

// honestPeer serves the chain to the node with btcd's peer package.
func honestPeer(t *testing.T, addr string, c *hsChain) *peer.Peer {
	t.Helper()
	verack := make(chan struct{})
	cfg := &peer.Config{
		UserAgentName: "honest", UserAgentVersion: "1.0.0",
		ChainParams: &chaincfg.RegressionNetParams, Services: wire.SFNodeNetwork | wire.SFNodeWitness,
		ProtocolVersion: wire.ProtocolVersion, AllowSelfConns: true, TrickleInterval: 100 * time.Millisecond,
		NewestBlock: func() (*chainhash.Hash, int32, error) { h, n := c.tip(); return &h, int32(n), nil },
		Listeners: peer.MessageListeners{
			OnVerAck:     func(*peer.Peer, *wire.MsgVerAck) { close(verack) },
			OnGetHeaders: func(p *peer.Peer, m *wire.MsgGetHeaders) { p.QueueMessage(c.locate(m), nil) },
			OnGetData: func(p *peer.Peer, m *wire.MsgGetData) {
				nf := wire.NewMsgNotFound()
				for _, iv := range m.InvList {
					if b := c.block(iv.Hash); b != nil {
						p.QueueMessageWithEncoding(b, nil, wire.WitnessEncoding)
					} else {
						_ = nf.AddInvVect(iv)
					}
				}
				if len(nf.InvList) > 0 {
					p.QueueMessage(nf, nil)
				}
			},
		},
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
	t.Cleanup(p.Disconnect)
	select {
	case <-verack:
	case <-time.After(20 * time.Second):
		t.Fatal("honest peer: no handshake")
	}
	return p
}

// rawPeer is a hand-driven connection from its own loopback address, so
// that banning it bans no one else.
type rawPeer struct {
	name   string
	ip     string
	conn   net.Conn
	closed chan struct{}
}

func dialRaw(t *testing.T, name, ip, addr string) *rawPeer {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("%s: dial from %s: %v", name, ip, err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &rawPeer{name: name, ip: ip, conn: conn, closed: make(chan struct{})}
}

func (r *rawPeer) send(t *testing.T, b []byte) {
	t.Helper()
	_ = r.conn.SetWriteDeadline(time.Now().Add(20 * time.Second))
	_, _ = r.conn.Write(b) // the node may already have hung up
}

func (r *rawPeer) sendMsg(t *testing.T, m wire.Message) {
	t.Helper()
	var buf bytes.Buffer
	if _, err := wire.WriteMessageWithEncodingN(&buf, m, wire.ProtocolVersion, chaincfg.RegressionNetParams.Net, wire.WitnessEncoding); err != nil {
		t.Fatal(err)
	}
	r.send(t, buf.Bytes())
}

// handshake does the version/verack exchange, then drains what the node
// sends, closing r.closed when the node hangs up.
func (r *rawPeer) handshake(t *testing.T) {
	t.Helper()
	r.sendMsg(t, hsVersion(0))
	_ = r.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		m, _, err := wire.ReadMessage(r.conn, wire.ProtocolVersion, chaincfg.RegressionNetParams.Net)
		if errors.Is(err, wire.ErrUnknownMessage) {
			continue
		}
		if err != nil {
			t.Fatalf("%s: handshake: %v", r.name, err)
		}
		if _, ok := m.(*wire.MsgVerAck); ok {
			break
		}
	}
	_ = r.conn.SetReadDeadline(time.Time{})
	r.sendMsg(t, wire.NewMsgVerAck())
	r.drain()
}

func (r *rawPeer) drain() {
	go func() {
		_, _ = io.Copy(io.Discard, r.conn)
		close(r.closed)
	}()
}

// disconnected reports whether the node hung up within d.
func (r *rawPeer) disconnected(d time.Duration) bool {
	if d <= 0 {
		select {
		case <-r.closed:
			return true
		default:
			return false
		}
	}
	select {
	case <-r.closed:
		return true
	case <-time.After(d):
		return false
	}
}

func hsVersion(lastBlock int32) *wire.MsgVersion {
	me := wire.NewNetAddressIPPort(net.ParseIP("127.0.0.1"), 0, wire.SFNodeNetwork|wire.SFNodeWitness)
	you := wire.NewNetAddressIPPort(net.ParseIP("127.0.0.1"), 18444, 0)
	var nonce [8]byte
	_, _ = rand.Read(nonce[:])
	n := uint64(0)
	for _, b := range nonce {
		n = n<<8 | uint64(b)
	}
	v := wire.NewMsgVersion(me, you, n, lastBlock)
	v.Services = wire.SFNodeNetwork | wire.SFNodeWitness
	v.UserAgent = "/hostile:0.0.1/"
	return v
}

// frame frames payload under cmd for magic, with a correct checksum
// unless badSum.
func frame(magic wire.BitcoinNet, cmd string, payload []byte, badSum bool) []byte {
	h := make([]byte, wire.MessageHeaderSize, wire.MessageHeaderSize+len(payload))
	h[0], h[1], h[2], h[3] = byte(magic), byte(magic>>8), byte(magic>>16), byte(magic>>24)
	copy(h[4:16], cmd)
	n := len(payload)
	h[16], h[17], h[18], h[19] = byte(n), byte(n>>8), byte(n>>16), byte(n>>24)
	copy(h[20:24], chainhash.DoubleHashB(payload)[:4])
	if badSum {
		h[20] ^= 0xff
	}
	return append(h, payload...)
}

// TestHostilePeers runs the node binary, syncs it from an honest peer,
// sets hostile peers on it, and checks that each is disconnected (or
// banned, for consensus-level misbehaviour) while the node keeps syncing
// from the honest peer to its new tip.
func TestHostilePeers(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: starts the btcmesh binary")
	}
	// Hostile peers dial from their own loopback address; make sure the
	// host routes 127.0.0.0/8 (Linux does).
	probe, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pd := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.9")}}
	if c, err := pd.Dial("tcp", probe.Addr().String()); err != nil {
		_ = probe.Close()
		t.Skipf("cannot dial from 127.0.0.9: %v", err)
	} else {
		_ = c.Close()
	}
	_ = probe.Close()

	grpcAddr, p2pAddr := testenv.FreeAddr(t), testenv.FreeAddr(t)
	start(t, "node", grpcAddr, "node",
		"--datadir", t.TempDir(), "--grpc-listen", grpcAddr,
		"--metrics-listen", testenv.FreeAddr(t), "--nats-listen", "127.0.0.1:0", "--p2p-listen", p2pAddr)
	cc, err := grpcclient.Dial(grpcAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	p2p := p2pv1.NewP2PServiceClient(cc)
	hdrs := headersv1.NewHeaderServiceClient(cc)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	waitTip := func(what string, want chainhash.Hash, height int) {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for {
			ci, err := hdrs.GetChainInfo(ctx, &headersv1.GetChainInfoRequest{})
			if err == nil && ci.GetTip().GetHeight() == int32(height) && bytes.Equal(ci.GetTip().GetHash(), want[:]) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: tip %d %x, want %d %s (err %v)", what, ci.GetTip().GetHeight(), ci.GetTip().GetHash(), height, want, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	// The honest peer serves 20 of its 40 blocks first.
	chain := newHsChain(t, 40)
	chain.shown = 20
	honest := honestPeer(t, p2pAddr, chain)
	tip20, _ := chain.tip()
	waitTip("initial sync", tip20, 20)

	magic := chaincfg.RegressionNetParams.Net
	genesisHash := *chaincfg.RegressionNetParams.GenesisHash
	type hostileCase struct {
		name   string
		ip     string
		banned bool // misbehaviour that gets the IP banned, not only disconnected
		run    func(t *testing.T, r *rawPeer)
	}
	// Framing errors come from 127.0.0.1, where btcd's peer package lets
	// malformed messages through on regtest and the p2p service itself
	// must hang up; the rest come from their own addresses.
	cases := []hostileCase{
		{name: "garbage before handshake", ip: "127.0.0.11", run: func(t *testing.T, r *rawPeer) {
			junk := make([]byte, 512)
			_, _ = rand.Read(junk)
			r.drain()
			r.send(t, junk)
		}},
		{name: "message before version", ip: "127.0.0.12", run: func(t *testing.T, r *rawPeer) {
			r.drain()
			r.sendMsg(t, wire.NewMsgPing(1))
		}},
		{name: "oversized length", ip: "127.0.0.1", run: func(t *testing.T, r *rawPeer) {
			r.handshake(t)
			f := frame(magic, wire.CmdBlock, nil, false)
			f[16], f[17], f[18], f[19] = 0xff, 0xff, 0xff, 0x7f
			r.send(t, f)
		}},
		{name: "wrong network magic", ip: "127.0.0.1", run: func(t *testing.T, r *rawPeer) {
			r.handshake(t)
			r.send(t, frame(chaincfg.MainNetParams.Net, wire.CmdPing, make([]byte, 8), false))
		}},
		{name: "bad checksum", ip: "127.0.0.1", run: func(t *testing.T, r *rawPeer) {
			r.handshake(t)
			r.send(t, frame(magic, wire.CmdPing, make([]byte, 8), true))
		}},
		{name: "garbage after handshake", ip: "127.0.0.13", run: func(t *testing.T, r *rawPeer) {
			r.handshake(t)
			junk := make([]byte, 4096)
			_, _ = rand.Read(junk)
			r.send(t, junk)
		}},
		{name: "second version", ip: "127.0.0.14", run: func(t *testing.T, r *rawPeer) {
			r.handshake(t)
			r.sendMsg(t, hsVersion(0))
		}},
		{name: "unrequested block that does not connect", ip: "127.0.0.15", banned: true, run: func(t *testing.T, r *rawPeer) {
			r.handshake(t)
			b := &wire.MsgBlock{Header: chain.blocks[21].Header, Transactions: chain.blocks[21].Transactions}
			b.Header.PrevBlock = chainhash.Hash{0xba, 0xd}
			solve(&b.Header, true)
			r.sendMsg(t, b)
		}},
		{name: "headers that do not connect", ip: "127.0.0.16", banned: true, run: func(t *testing.T, r *rawPeer) {
			r.handshake(t)
			for i := 0; i < 60 && !r.disconnected(0); i++ {
				h := chain.blocks[1].Header
				h.PrevBlock = chainhash.Hash{byte(i), 0xee}
				solve(&h, true)
				r.sendMsg(t, &wire.MsgHeaders{Headers: []*wire.BlockHeader{&h}})
				time.Sleep(20 * time.Millisecond)
			}
		}},
		{name: "header with bad proof of work", ip: "127.0.0.17", banned: true, run: func(t *testing.T, r *rawPeer) {
			r.handshake(t)
			h := chain.blocks[1].Header
			h.PrevBlock = genesisHash
			h.Timestamp = h.Timestamp.Add(time.Second)
			solve(&h, false)
			r.sendMsg(t, &wire.MsgHeaders{Headers: []*wire.BlockHeader{&h}})
		}},
		{name: "inv flood", ip: "127.0.0.18", banned: true, run: func(t *testing.T, r *rawPeer) {
			r.handshake(t)
			for i := 0; i < 6 && !r.disconnected(0); i++ {
				inv := wire.NewMsgInvSizeHint(wire.MaxInvPerMsg)
				for j := 0; j < wire.MaxInvPerMsg; j++ {
					var h chainhash.Hash
					_, _ = rand.Read(h[:])
					_ = inv.AddInvVect(wire.NewInvVect(wire.InvTypeTx, &h))
				}
				r.sendMsg(t, inv)
			}
		}},
	}
	// Run them all at once, the honest peer still connected.
	var wg sync.WaitGroup
	results := make([]error, len(cases))
	for i, c := range cases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := dialRaw(t, c.name, c.ip, p2pAddr)
			c.run(t, r)
			if !r.disconnected(30 * time.Second) {
				results[i] = fmt.Errorf("%s: still connected", c.name)
			}
		}()
	}
	wg.Wait()
	for _, err := range results {
		if err != nil {
			t.Error(err)
		}
	}

	lb, err := p2p.ListBanned(ctx, &p2pv1.ListBannedRequest{})
	if err != nil {
		t.Fatal(err)
	}
	bans := map[string]string{}
	for _, b := range lb.GetBans() {
		bans[b.GetAddress()] = b.GetReason()
	}
	for _, c := range cases {
		reason, ok := bans[c.ip+"/32"]
		if c.banned && !ok {
			t.Errorf("%s: %s not banned (bans %v)", c.name, c.ip, bans)
		}
		if c.banned {
			t.Logf("%s: banned: %s", c.name, reason)
		}
	}
	if r, ok := bans["127.0.0.1/32"]; ok {
		t.Fatalf("the honest peer's address was banned: %s", r)
	}

	// The honest peer is still there, alone, and the node follows it to
	// its new tip.
	select {
	case <-honest.Done():
		t.Fatal("honest peer was disconnected")
	default:
	}
	pi, err := p2p.GetPeerInfo(ctx, &p2pv1.GetPeerInfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(pi.GetPeers()) != 1 || !strings.HasSuffix(pi.GetPeers()[0].GetSubver(), "/honest:1.0.0/") {
		for _, p := range pi.GetPeers() {
			t.Logf("peer %s %s", p.GetAddr(), p.GetSubver())
		}
		t.Errorf("want only the honest peer connected, have %d peers", len(pi.GetPeers()))
	}
	chain.mu.Lock()
	chain.shown = 40
	chain.mu.Unlock()
	ann := wire.NewMsgHeaders()
	for h := 21; h <= 40; h++ {
		_ = ann.AddBlockHeader(&chain.blocks[h].Header)
	}
	honest.QueueMessage(ann, nil)
	tip40, _ := chain.tip()
	waitTip("sync after the attack", tip40, 40)
}
