package p2p

import (
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/btcsuite/btcd/peer"
	"github.com/btcsuite/btcd/wire/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/btcmesh/btcmesh/internal/chain"
	"github.com/btcmesh/btcmesh/internal/testenv"
)

// On a public network the addresses peers send (addr and addrv2) go into
// the address book, which is saved in the data directory and loaded by
// the next run; regtest keeps no book.
func TestAddressBookPersists(t *testing.T) {
	dir := t.TempDir()
	deps := testenv.Deps(t, nil)
	if s, err := New(Config{HeadersAddr: "127.0.0.1:1", DataDir: dir}, deps); err != nil || s.book != nil {
		t.Fatalf("regtest service has an address book (%v)", err)
	}
	n, err := chain.Lookup("testnet3")
	if err != nil {
		t.Fatal(err)
	}
	deps.Network = n
	deps.Metrics = prometheus.NewRegistry()
	s, err := New(Config{HeadersAddr: "127.0.0.1:1", DataDir: dir}, deps)
	if err != nil || s.book == nil {
		t.Fatalf("no address book on testnet3: %v", err)
	}
	s.book.Start()
	ps := newPeerState(false)
	ps.p = peer.NewInboundPeer(&peer.Config{ChainParams: n.Params})
	v1 := wire.NewMsgAddr()
	for i := range 20 {
		_ = v1.AddAddress(wire.NewNetAddressIPPort(net.IPv4(8, byte(i), 1, 1), 18333, wire.SFNodeNetwork))
	}
	_ = v1.AddAddress(wire.NewNetAddressIPPort(net.IPv4(9, 9, 9, 9), 18333, wire.SFNodeWitness)) // not a full node
	s.onAddr(ps, v1)
	v2 := wire.NewMsgAddrV2()
	for i := range 10 {
		v2.AddrList = append(v2.AddrList, wire.NetAddressV2FromBytes(time.Now(), wire.SFNodeNetwork, net.IPv4(23, byte(i), 2, 2).To4(), 18333))
	}
	s.onAddrV2(ps, v2)
	if got := s.book.NumAddresses(); got != 30 {
		t.Fatalf("book has %d addresses, want 30", got)
	}
	if err := s.book.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "peers.json")); err != nil {
		t.Fatalf("address book not saved: %v", err)
	}
	deps.Metrics = prometheus.NewRegistry()
	s2, err := New(Config{HeadersAddr: "127.0.0.1:1", DataDir: dir}, deps)
	if err != nil {
		t.Fatal(err)
	}
	s2.book.Start()
	defer func() { _ = s2.book.Stop() }()
	if got := s2.book.NumAddresses(); got != 30 {
		t.Fatalf("reloaded book has %d addresses, want 30", got)
	}
}
