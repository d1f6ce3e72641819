package p2p

import (
	"testing"
	"time"

	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/peer"
	"github.com/btcsuite/btcd/wire/v2"

	"github.com/btcmesh/btcmesh/internal/testenv"
)

// A transaction announced by two peers is asked of one at a time; when
// that one answers notfound, the other is asked.
func TestTxRequestedFromOnePeerAtATime(t *testing.T) {
	n := startNode(t, testenv.NATS(t), t.TempDir())
	h := chainhash.Hash{1, 2, 3}
	gotA, gotB := make(chan *wire.MsgGetData, 4), make(chan *wire.MsgGetData, 4)
	a := dialPeer(t, n.p2pAddr, peer.MessageListeners{OnGetData: func(_ *peer.Peer, m *wire.MsgGetData) { gotA <- m }})
	b := dialPeer(t, n.p2pAddr, peer.MessageListeners{OnGetData: func(_ *peer.Peer, m *wire.MsgGetData) { gotB <- m }})
	a.waitHandshake(t)
	b.waitHandshake(t)
	waitFor(t, "two peers", func() bool { return len(n.peers(t)) == 2 })

	inv := wire.NewMsgInv()
	_ = inv.AddInvVect(wire.NewInvVect(wire.InvTypeTx, &h))
	a.p.QueueMessage(inv, nil)
	select {
	case m := <-gotA:
		if len(m.InvList) != 1 || m.InvList[0].Hash != h {
			t.Fatalf("getdata %v", m.InvList)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("announcer not asked")
	}
	b.p.QueueMessage(inv, nil)
	select {
	case m := <-gotB:
		t.Fatalf("asked the second announcer while the first is being asked: %v", m.InvList)
	case <-time.After(500 * time.Millisecond):
	}
	nf := wire.NewMsgNotFound()
	_ = nf.AddInvVect(wire.NewInvVect(wire.InvTypeWitnessTx, &h))
	a.p.QueueMessage(nf, nil)
	select {
	case m := <-gotB:
		if len(m.InvList) != 1 || m.InvList[0].Hash != h {
			t.Fatalf("getdata %v", m.InvList)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("second announcer not asked after notfound")
	}
	select {
	case m := <-gotA:
		t.Fatalf("first peer asked again: %v", m.InvList)
	case <-time.After(200 * time.Millisecond):
	}
}
