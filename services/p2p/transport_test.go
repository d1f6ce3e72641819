package p2p

import (
	"bytes"
	"net"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg/v2"
	"github.com/btcsuite/btcd/peer"
	"github.com/btcsuite/btcd/wire/v2"
	"github.com/nats-io/nats.go"

	p2pv1 "github.com/btcmesh/btcmesh/proto/btcmesh/p2p/v1"

	"github.com/btcmesh/btcmesh/internal/grpcclient"
	"github.com/btcmesh/btcmesh/internal/testenv"
)

// frames decodes a stream of v1 frames into their commands.
func frames(t *testing.T, b []byte) []string {
	t.Helper()
	var cmds []string
	r := bytes.NewReader(b)
	for r.Len() > 0 {
		_, msg, _, err := wire.ReadMessageN(r, wire.ProtocolVersion, chaincfg.RegressionNetParams.Net)
		if err == wire.ErrUnknownMessage {
			cmds = append(cmds, "unknown") // btcd's wire package skips wtxidrelay
			continue
		} else if err != nil {
			t.Fatalf("bad frame: %v", err)
		}
		if v, ok := msg.(*wire.MsgVersion); ok {
			cmds = append(cmds, "version "+v.UserAgent)
			continue
		}
		cmds = append(cmds, msg.Command())
	}
	return cmds
}

// writeLikePeer writes msgs through c as btcd's peer does: header, then
// payload, in separate writes.
func writeLikePeer(t *testing.T, c *sniffConn, msgs ...wire.Message) {
	t.Helper()
	for _, m := range msgs {
		var buf bytes.Buffer
		if _, err := wire.WriteMessageN(&buf, m, wire.ProtocolVersion, chaincfg.RegressionNetParams.Net); err != nil {
			t.Fatal(err)
		}
		b := buf.Bytes()
		for _, part := range [][]byte{b[:wire.MessageHeaderSize], b[wire.MessageHeaderSize:]} {
			if len(part) == 0 {
				continue
			}
			if n, err := c.Write(part); err != nil || n != len(part) {
				t.Fatalf("write %d: %d %v", len(part), n, err)
			}
		}
	}
}

// Our handshake gets a BIP339 wtxidrelay right before sendaddrv2 (so only
// to peers of protocol 70016 and up, and before verack); nothing else
// changes but the version's user agent.
func TestSniffConnSendsWtxidRelay(t *testing.T) {
	me := wire.NewNetAddressIPPort(net.ParseIP("127.0.0.1"), 18444, ourServices)
	ver := wire.NewMsgVersion(me, me, 7, 0)
	sent := 0
	for _, tc := range []struct {
		name string
		msgs []wire.Message
		want []string
		sent int
	}{
		{"70016", []wire.Message{ver, wire.NewMsgSendAddrV2(), wire.NewMsgVerAck(), wire.NewMsgPing(1)},
			[]string{"version /btcmesh:test/", "unknown", "sendaddrv2", "verack", "ping"}, 1},
		{"old peer", []wire.Message{ver, wire.NewMsgVerAck(), wire.NewMsgSendAddrV2(), wire.NewMsgPing(1)},
			[]string{"version /btcmesh:test/", "verack", "sendaddrv2", "ping"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cc := &chunkConn{}
			sent = 0
			sc := &sniffConn{Conn: cc, magic: chaincfg.RegressionNetParams.Net, userAgent: "/btcmesh:test/",
				sendWtxidRelay: func() { sent++ }}
			writeLikePeer(t, sc, tc.msgs...)
			got := frames(t, cc.out.Bytes())
			if len(got) != len(tc.want) {
				t.Fatalf("frames %q, want %q", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("frames %q, want %q", got, tc.want)
				}
			}
			if tc.sent == 1 && !bytes.Contains(cc.out.Bytes(), wtxidRelayFrame(chaincfg.RegressionNetParams.Net)) {
				t.Fatal("no wtxidrelay frame written")
			}
			if sent != tc.sent {
				t.Fatalf("callback ran %d times, want %d", sent, tc.sent)
			}
		})
	}
	// A stream that is not v1 (a BIP324 v2 handshake) passes unchanged,
	// even in small writes.
	cc := &chunkConn{}
	sc := &sniffConn{Conn: cc, magic: chaincfg.RegressionNetParams.Net, userAgent: "/x/", sendWtxidRelay: func() { t.Fatal("inserted into v2") }}
	stream := bytes.Repeat([]byte{0xa5, 0x17, 0x3c}, 100)
	for b := stream; len(b) > 0; {
		k := min(len(b), 7)
		if _, err := sc.Write(b[:k]); err != nil {
			t.Fatal(err)
		}
		b = b[k:]
	}
	if !bytes.Equal(cc.out.Bytes(), stream) {
		t.Fatal("v2 stream altered or held back")
	}
}

// startNodeWith is startNode with the Config adjusted by mod.
func startNodeWith(t *testing.T, nc *nats.Conn, mod func(*Config)) *node {
	t.Helper()
	addr := testenv.Listener(t)
	fh := newFakeHeaders()
	cfg := Config{HeadersAddr: addr, DataDir: t.TempDir(), Listen: "127.0.0.1:0",
		MaxPeers: 8, BanDuration: time.Hour, AllowSelfConns: true}
	mod(&cfg)
	svc, err := New(cfg, testenv.Deps(t, nc))
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

// listenPeers accepts test peers (btcd's peer package), with or without
// v2 transport, and returns the listening address.
func listenPeers(t *testing.T, v2 bool) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	svc := wire.SFNodeNetwork | wire.SFNodeWitness
	if v2 {
		svc |= wire.SFNodeP2PV2
	}
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			p := peer.NewInboundPeer(&peer.Config{
				UserAgentName: "testpeer", UserAgentVersion: "1.0.0",
				ChainParams: &chaincfg.RegressionNetParams, Services: svc,
				ProtocolVersion: wire.ProtocolVersion, AllowSelfConns: true, UsingV2Conn: v2,
			})
			p.AssociateConnection(conn)
			t.Cleanup(p.Disconnect)
		}
	}()
	return l.Addr().String()
}

func (n *node) transports(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, p := range n.peers(t) {
		out[p.Addr] = p.TransportProtocolType
	}
	return out
}

// BIP324: with v2 transport on, inbound peers may use v2 or v1, and an
// outbound connection uses v2 where the peer speaks it and falls back to
// v1 (remembering so) where it does not.
func TestV2Transport(t *testing.T) {
	nc := testenv.NATS(t)
	n := startNodeWith(t, nc, func(c *Config) { c.V2Transport = true })
	if got := n.svc.services(); got&wire.SFNodeP2PV2 == 0 {
		t.Fatalf("services %v lack NODE_P2P_V2", got)
	}

	// Inbound v2.
	tp := dialPeerV2(t, n.p2pAddr)
	tp.waitHandshake(t)
	if !tp.p.StatsSnapshot().V2Connection {
		t.Fatal("inbound connection did not use v2")
	}
	// Inbound v1 still works.
	tp1 := dialPeer(t, n.p2pAddr, peer.MessageListeners{})
	tp1.waitHandshake(t)
	waitFor(t, "two inbound peers", func() bool { return len(n.peers(t)) == 2 })
	tr := n.transports(t)
	local1 := tp1.conn.LocalAddr().String()
	if tr[local1] != "v1" || len(tr) != 2 {
		t.Fatalf("transports %v (v1 peer %s)", tr, local1)
	}

	// Outbound to a v2 peer, and to a v1-only peer (fallback).
	v2addr, v1addr := listenPeers(t, true), listenPeers(t, false)
	for _, a := range []string{v2addr, v1addr} {
		if _, err := n.client.AddNode(ctxT(t), &p2pv1.AddNodeRequest{Addr: a, Command: "onetry"}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "outbound peers", func() bool { return len(n.peers(t)) == 4 })
	tr = n.transports(t)
	if tr[v2addr] != "v2" || tr[v1addr] != "v1" {
		t.Fatalf("outbound transports %v; want %s v2 and %s v1", tr, v2addr, v1addr)
	}
	if !n.svc.transports.useV1(v1addr) || n.svc.transports.useV1(v2addr) {
		t.Fatal("v1-only address not remembered (or v2 one wrongly)")
	}
}

// dialPeerV2 is dialPeer with BIP324 v2 transport.
func dialPeerV2(t *testing.T, addr string) *testPeer {
	t.Helper()
	tp := &testPeer{verack: make(chan struct{})}
	cfg := &peer.Config{
		UserAgentName: "testpeer", UserAgentVersion: "1.0.0",
		ChainParams:     &chaincfg.RegressionNetParams,
		Services:        wire.SFNodeNetwork | wire.SFNodeWitness | wire.SFNodeP2PV2,
		ProtocolVersion: wire.ProtocolVersion, AllowSelfConns: true, UsingV2Conn: true,
		Listeners: peer.MessageListeners{OnVerAck: func(*peer.Peer, *wire.MsgVerAck) { close(tp.verack) }},
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

// A peer that has not answered a ping for pingTimeout is dropped; one
// that answers stays.
func TestPingTimeout(t *testing.T) {
	n := startNode(t, testenv.NATS(t), t.TempDir())
	quiet := dialPeer(t, n.p2pAddr, peer.MessageListeners{})
	alive := dialPeer(t, n.p2pAddr, peer.MessageListeners{})
	quiet.waitHandshake(t)
	alive.waitHandshake(t)
	waitFor(t, "two peers", func() bool { return len(n.svc.readyPeers()) == 2 })
	for _, ps := range n.svc.readyPeers() {
		if ps.p.Addr() == quiet.conn.LocalAddr().String() {
			ps.lastPong.Store(time.Now().Add(-pingTimeout - time.Minute).UnixNano())
		}
	}
	n.svc.checkPings(time.Now())
	quiet.waitDisconnectQuiet(t)
	waitFor(t, "one peer left", func() bool { return len(n.svc.readyPeers()) == 1 })
	if !alive.p.Connected() {
		t.Fatal("answering peer dropped")
	}
}

func (tp *testPeer) waitDisconnectQuiet(t *testing.T) {
	t.Helper()
	select {
	case <-tp.p.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("peer not disconnected")
	}
}
