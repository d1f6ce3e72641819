package p2p

// Hostile-peer unit tests against one p2p service with the fake headers
// service of p2p_test.go. The full scenario (an honest peer serving a real
// chain to the node binary while hostile peers attack) is
// test/hostile_test.go.

import (
	"bytes"
	"crypto/rand"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg/v2"
	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/peer"
	"github.com/btcsuite/btcd/wire/v2"

	p2pv1 "github.com/btcmesh/btcmesh/proto/btcmesh/p2p/v1"

	"github.com/btcmesh/btcmesh/internal/blockstore"
	"github.com/btcmesh/btcmesh/internal/testenv"
)

func (n *node) banReason(t *testing.T, subnet string) (string, bool) {
	t.Helper()
	lb, err := n.client.ListBanned(ctxT(t), &p2pv1.ListBannedRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range lb.Bans {
		if b.Address == subnet {
			return b.Reason, true
		}
	}
	return "", false
}

// An unrequested block whose header the headers service rejects is
// dropped unstored and its sender banned.
func TestUnrequestedBadBlockBansAndIsNotStored(t *testing.T) {
	nc := testenv.NATS(t)
	n := startNode(t, nc, t.TempDir())
	n.headers.mu.Lock()
	n.headers.reject = "high-hash"
	n.headers.mu.Unlock()

	tp := dialPeer(t, n.p2pAddr, peer.MessageListeners{})
	tp.waitHandshake(t)
	blk := *chaincfg.RegressionNetParams.GenesisBlock
	blk.Header.Nonce++
	tp.p.QueueMessageWithEncoding(&blk, nil, wire.WitnessEncoding)
	tp.waitDisconnect(t, "unrequested bad block")
	reason, ok := n.banReason(t, "127.0.0.1/32")
	if !ok || !strings.Contains(reason, "unrequested block") || !strings.Contains(reason, "high-hash") {
		t.Fatalf("ban %q %v", reason, ok)
	}
	if _, err := n.svc.store.Get(ctxT(t), blk.BlockHash()); !errors.Is(err, blockstore.ErrNotFound) {
		t.Errorf("unrequested bad block was stored (err %v)", err)
	}
}

// A requested block is stored without its header being submitted again,
// and an unrequested one with a valid header is accepted.
func TestUnrequestedValidBlockAccepted(t *testing.T) {
	nc := testenv.NATS(t)
	n := startNode(t, nc, t.TempDir())
	tp := dialPeer(t, n.p2pAddr, peer.MessageListeners{})
	tp.waitHandshake(t)
	blk := chaincfg.RegressionNetParams.GenesisBlock
	tp.p.QueueMessageWithEncoding(blk, nil, wire.WitnessEncoding)
	waitFor(t, "block stored", func() bool {
		_, err := n.svc.store.Get(ctxT(t), blk.BlockHash())
		return err == nil
	})
	if _, banned := n.banReason(t, "127.0.0.1/32"); banned {
		t.Fatal("peer banned for a valid block")
	}
}

// A block whose bytes are not those its header commits to (here, a
// witness on a coinbase that commits to none: the same hash) bans its
// sender and is not stored, so the real block, sent next, is.
func TestMutatedBlockBansAndIsNotStored(t *testing.T) {
	nc := testenv.NATS(t)
	n := startNode(t, nc, t.TempDir())
	real := chaincfg.RegressionNetParams.GenesisBlock
	mutated := *real
	cb := real.Transactions[0].Copy()
	cb.TxIn[0].Witness = wire.TxWitness{make([]byte, 32)}
	mutated.Transactions = []*wire.MsgTx{cb}
	if mutated.BlockHash() != real.BlockHash() {
		t.Fatal("the witness changed the block hash")
	}

	tp := dialPeer(t, n.p2pAddr, peer.MessageListeners{})
	tp.waitHandshake(t)
	tp.p.QueueMessageWithEncoding(&mutated, nil, wire.WitnessEncoding)
	tp.waitDisconnect(t, "mutated block")
	reason, ok := n.banReason(t, "127.0.0.1/32")
	if !ok || !strings.Contains(reason, "mutated block") || !strings.Contains(reason, "unexpected-witness") {
		t.Fatalf("ban %q %v", reason, ok)
	}
	if _, err := n.svc.store.Get(ctxT(t), real.BlockHash()); !errors.Is(err, blockstore.ErrNotFound) {
		t.Fatalf("mutated block was stored (err %v)", err)
	}

	if _, err := n.client.ClearBanned(ctxT(t), &p2pv1.ClearBannedRequest{}); err != nil {
		t.Fatal(err)
	}
	honest := dialPeer(t, n.p2pAddr, peer.MessageListeners{})
	honest.waitHandshake(t)
	honest.p.QueueMessageWithEncoding(real, nil, wire.WitnessEncoding)
	var want bytes.Buffer
	if err := real.Serialize(&want); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "real block stored", func() bool {
		got, err := n.svc.store.Get(ctxT(t), real.BlockHash())
		return err == nil && bytes.Equal(got, want.Bytes())
	})
}

// A peer announcing far more inventory than any honest node is banned.
func TestInvFloodBans(t *testing.T) {
	nc := testenv.NATS(t)
	n := startNode(t, nc, t.TempDir())
	tp := dialPeer(t, n.p2pAddr, peer.MessageListeners{})
	tp.waitHandshake(t)
	for i := 0; i < 4; i++ {
		inv := wire.NewMsgInvSizeHint(wire.MaxInvPerMsg)
		for j := 0; j < wire.MaxInvPerMsg; j++ {
			var h chainhash.Hash
			_, _ = rand.Read(h[:])
			_ = inv.AddInvVect(wire.NewInvVect(wire.InvTypeTx, &h))
		}
		tp.p.QueueMessage(inv, nil)
	}
	tp.waitDisconnect(t, "inv flood")
	if reason, ok := n.banReason(t, "127.0.0.1/32"); !ok || !strings.Contains(reason, "inv flood") {
		t.Fatalf("ban %q %v", reason, ok)
	}
}

// Block invs trigger at most one outstanding getheaders per peer.
func TestBlockInvGetHeadersRateLimited(t *testing.T) {
	nc := testenv.NATS(t)
	n := startNode(t, nc, t.TempDir())
	var getheaders atomic.Int32
	tp := dialPeer(t, n.p2pAddr, peer.MessageListeners{
		OnGetHeaders: func(*peer.Peer, *wire.MsgGetHeaders) { getheaders.Add(1) },
	})
	tp.waitHandshake(t)
	waitFor(t, "getheaders at connect", func() bool { return getheaders.Load() == 1 })
	announce := func(b byte) {
		inv := wire.NewMsgInv()
		_ = inv.AddInvVect(wire.NewInvVect(wire.InvTypeBlock, &chainhash.Hash{b}))
		tp.p.QueueMessage(inv, nil)
	}
	for i := byte(1); i <= 5; i++ {
		announce(i)
	}
	waitFor(t, "getheaders for the first inv", func() bool { return getheaders.Load() == 2 })
	time.Sleep(500 * time.Millisecond)
	if got := getheaders.Load(); got != 2 {
		t.Fatalf("%d getheaders after 5 block invs, want 2", got)
	}
	// Once answered, the next inv asks again.
	tp.p.QueueMessage(wire.NewMsgHeaders(), nil)
	time.Sleep(200 * time.Millisecond)
	announce(6)
	waitFor(t, "getheaders after an answer", func() bool { return getheaders.Load() == 3 })
}

// The budget refills over time: an honest trickle never runs out.
func TestSpendInvBudget(t *testing.T) {
	ps := newPeerState(true)
	now := time.Unix(1700000000, 0)
	if !ps.spendInv(wire.MaxInvPerMsg, now) || !ps.spendInv(wire.MaxInvPerMsg, now) {
		t.Fatal("two full inv messages at once refused")
	}
	if ps.spendInv(1, now) {
		t.Fatal("budget not exhausted")
	}
	ps = newPeerState(true)
	for i := 0; i < 10000; i++ { // 1000 entries every 200 ms: 5000/s, for 2000 s
		now = now.Add(200 * time.Millisecond)
		if !ps.spendInv(1000, now) {
			t.Fatalf("sustained 5000/s refused after %d messages", i)
		}
	}
}

// A transaction without inputs (which fuzzing showed cannot be published
// in a form the mempool decodes) gets its sender banned, unpublished.
func TestEmptyVinTxBans(t *testing.T) {
	nc := testenv.NATS(t)
	n := startNode(t, nc, t.TempDir())
	// Only a peer without the witness service bit gets its txs decoded
	// with the base encoding, where btcd accepts zero inputs.
	conn, err := net.Dial("tcp", n.p2pAddr)
	if err != nil {
		t.Fatal(err)
	}
	verack := make(chan struct{})
	p, err := peer.NewOutboundPeer(&peer.Config{
		UserAgentName: "legacy", UserAgentVersion: "1.0.0", ChainParams: &chaincfg.RegressionNetParams,
		Services: wire.SFNodeNetwork, ProtocolVersion: wire.ProtocolVersion, AllowSelfConns: true,
		Listeners: peer.MessageListeners{OnVerAck: func(*peer.Peer, *wire.MsgVerAck) { close(verack) }},
	}, n.p2pAddr)
	if err != nil {
		t.Fatal(err)
	}
	p.AssociateConnection(conn)
	t.Cleanup(p.Disconnect)
	tp := &testPeer{p: p, conn: conn, verack: verack}
	tp.waitHandshake(t)
	tx := wire.NewMsgTx(2)
	tx.AddTxOut(wire.NewTxOut(1000, []byte{0x51}))
	tp.p.QueueMessageWithEncoding(tx, nil, wire.BaseEncoding)
	tp.waitDisconnect(t, "tx without inputs")
	if reason, ok := n.banReason(t, "127.0.0.1/32"); !ok || !strings.Contains(reason, "without inputs") {
		t.Fatalf("ban %q %v", reason, ok)
	}
}
