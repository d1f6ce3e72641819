package p2p

import (
	"bytes"
	"context"
	"sync"
	"time"

	"github.com/btcsuite/btcd/peer"
	"github.com/btcsuite/btcd/wire/v2"
)

// handshakeTimeout bounds the version handshake, key exchange included.
const handshakeTimeout = 15 * time.Second

// v1RetryAfter is how long an address that refused a BIP324 v2 handshake
// is dialled with v1 before v2 is tried again.
const v1RetryAfter = 24 * time.Hour

// services are the service flags btcmesh advertises: a full archive node
// (NODE_NETWORK, NODE_NETWORK_LIMITED as Core does, NODE_WITNESS) and,
// with v2 transport enabled, NODE_P2P_V2 (BIP324).
func (s *Service) services() wire.ServiceFlag {
	f := ourServices | wire.SFNodeNetworkLimited
	if s.cfg.V2Transport {
		f |= wire.SFNodeP2PV2
	}
	return f
}

// transportMemo remembers addresses that answered a v2 handshake as a
// v1-only node (Core's and btcd's fallback: reconnect with v1).
type transportMemo struct {
	mu sync.Mutex
	v1 map[string]time.Time // address -> when it refused v2
}

func (m *transportMemo) useV1(addr string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	at, ok := m.v1[addr]
	if ok && time.Since(at) > v1RetryAfter {
		delete(m.v1, addr)
		return false
	}
	return ok
}

func (m *transportMemo) markV1(addr string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.v1 == nil {
		m.v1 = make(map[string]time.Time)
	}
	m.v1[addr] = time.Now()
}

// connect dials addr, with BIP324 v2 transport when enabled and the
// address is not known to be v1-only, and waits for the handshake. When a
// v2 attempt fails the way a v1-only peer makes it fail, the address is
// remembered as v1-only and dialled again with v1 at once.
func (s *Service) connect(ctx context.Context, addr string, manual bool) (*peerState, error) {
	v2 := s.cfg.V2Transport && !s.transports.useV1(addr)
	ps, err := s.dial(ctx, addr, manual, v2)
	if err != nil || !v2 {
		return ps, err
	}
	if waitHandshake(ctx, ps.p) || !ps.p.ShouldDowngradeToV1() {
		return ps, nil
	}
	s.transports.markV1(addr)
	s.log.Info("peer does not speak v2 transport, reconnecting with v1", "addr", addr)
	return s.dial(ctx, addr, manual, false)
}

// waitHandshake waits until p completed the version handshake (true) or
// disconnected (false).
func waitHandshake(ctx context.Context, p *peer.Peer) bool {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for !p.VerAckReceived() {
		select {
		case <-p.Done():
			return false
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
	return true
}

// wtxidRelayFrame is a v1-framed BIP339 wtxidrelay message (empty payload).
func wtxidRelayFrame(magic wire.BitcoinNet) []byte {
	var buf bytes.Buffer
	_, _ = wire.WriteMessageN(&buf, wire.NewMsgWTxIdRelay(), wire.ProtocolVersion, magic)
	return buf.Bytes()
}

// pingTimeout is how long a peer may leave our pings (sent every 2
// minutes by btcd's peer) unanswered before it is dropped (Core: 20 min).
// btcd's own stall handler does not time pings out.
const pingTimeout = 20 * time.Minute

// checkPings disconnects peers that stopped answering pings.
func (s *Service) checkPings(now time.Time) {
	for _, ps := range s.readyPeers() {
		if last := time.Unix(0, ps.lastPong.Load()); now.Sub(last) > pingTimeout {
			s.log.Info("ping timeout, disconnecting", "peer", ps.id(), "addr", ps.p.Addr(),
				"last_pong", last.UTC().Format(time.RFC3339))
			ps.p.Disconnect()
		}
	}
}
