package p2p

import (
	"context"
	"errors"
	"net"
	"strings"
	"time"

	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/peer"
	"github.com/btcsuite/btcd/wire/v2"

	"github.com/btcmesh/btcmesh/internal/version"
)

// ourServices are the services btcmesh advertises.
const ourServices = wire.SFNodeNetwork | wire.SFNodeWitness

// protocolVersion is the protocol version btcmesh speaks.
const protocolVersion = wire.ProtocolVersion // 70016

// trickleInterval is how often queued tx inventory is flushed to a peer.
const trickleInterval = 2 * time.Second

// userAgentParts splits internal/version's "/name:ver/" for btcd's peer,
// which builds the same string from a name and a version.
func userAgentParts() (name, ver string) {
	ua := strings.Trim(version.UserAgent(), "/")
	name, ver, _ = strings.Cut(ua, ":")
	return name, ver
}

// peerConfig builds btcd's peer configuration with our listeners bound to ps.
func (s *Service) peerConfig(ps *peerState) *peer.Config {
	name, ver := userAgentParts()
	return &peer.Config{
		NewestBlock:      s.newestBlock,
		UserAgentName:    name,
		UserAgentVersion: ver,
		ChainParams:      s.deps.Network.Params,
		Services:         s.services(),
		ProtocolVersion:  protocolVersion,
		UsingV2Conn:      s.cfg.V2Transport, // inbound: v2 or v1, as the peer starts
		TrickleInterval:  trickleInterval,
		AllowSelfConns:   s.cfg.AllowSelfConns,
		Listeners: peer.MessageListeners{
			OnVersion: func(_ *peer.Peer, msg *wire.MsgVersion) *wire.MsgReject {
				ps.relayTxs.Store(!msg.DisableRelayTx)
				return nil
			},
			OnVerAck:      func(*peer.Peer, *wire.MsgVerAck) { s.peerReady(ps) },
			OnHeaders:     func(_ *peer.Peer, msg *wire.MsgHeaders) { s.onHeaders(ps, msg) },
			OnInv:         func(_ *peer.Peer, msg *wire.MsgInv) { s.onInv(ps, msg) },
			OnBlock:       func(_ *peer.Peer, msg *wire.MsgBlock, buf []byte) { s.onBlock(ps, msg, buf) },
			OnTx:          func(_ *peer.Peer, msg *wire.MsgTx) { s.onTx(ps, msg) },
			OnGetData:     func(_ *peer.Peer, msg *wire.MsgGetData) { s.onGetData(ps, msg) },
			OnGetHeaders:  func(_ *peer.Peer, msg *wire.MsgGetHeaders) { s.onGetHeaders(ps, msg) },
			OnGetBlocks:   func(_ *peer.Peer, msg *wire.MsgGetBlocks) { s.onGetBlocks(ps, msg) },
			OnNotFound:    func(_ *peer.Peer, msg *wire.MsgNotFound) { s.onNotFound(ps, msg) },
			OnFeeFilter:   func(_ *peer.Peer, msg *wire.MsgFeeFilter) { ps.feeFilter.Store(msg.MinFee) },
			OnAddr:        func(_ *peer.Peer, msg *wire.MsgAddr) { s.onAddr(ps, msg) },
			OnAddrV2:      func(_ *peer.Peer, msg *wire.MsgAddrV2) { s.onAddrV2(ps, msg) },
			OnSendHeaders: func(*peer.Peer, *wire.MsgSendHeaders) {},
			OnPong:        func(*peer.Peer, *wire.MsgPong) { ps.lastPong.Store(time.Now().UnixNano()) },
			OnRead: func(_ *peer.Peer, n int, _ wire.Message, err error) {
				s.m.bytesReceived.Add(float64(n))
				s.onReadError(ps, err)
			},
			OnWrite: func(_ *peer.Peer, n int, _ wire.Message, _ error) {
				s.m.bytesSent.Add(float64(n))
			},
		},
	}
}

// onReadError disconnects a peer that sent a malformed message. btcd's
// peer package does so itself except on regtest from 127.0.0.1, where it
// lets malformed messages through for its regression tests.
func (s *Service) onReadError(ps *peerState, err error) {
	var me *wire.MessageError
	if err == nil || !errors.As(err, &me) {
		return
	}
	if ps.p.Connected() {
		s.log.Info("malformed message, disconnecting", "addr", ps.p.Addr(), "err", err)
		ps.p.Disconnect()
	}
}

// attach starts btcd's peer on conn and tracks it until it disconnects.
func (s *Service) attach(ps *peerState, p *peer.Peer, conn net.Conn) {
	ps.p = p
	first := true // onCommand runs on the peer's one reading goroutine
	sc := &sniffConn{Conn: conn, magic: s.deps.Network.Params.Net, userAgent: version.UserAgent(), onCommand: func(cmd string) {
		if first && cmd != wire.CmdVersion && ps.inbound {
			// A v1 peer that does not start with version: btcd's peer
			// drops it, but with v2 transport on it would wait for a
			// BIP324 key until the handshake timeout. Drop it now.
			s.log.Info("first message is not version, disconnecting", "addr", conn.RemoteAddr().String(), "command", cmd)
			go p.Disconnect()
		}
		first = false
		if cmd == wire.CmdWTxIdRelay {
			ps.wtxidRelay.Store(true)
		}
	}, sendWtxidRelay: func() { ps.wtxidSent.Store(true) }}
	s.mu.Lock()
	s.conns[ps] = struct{}{}
	s.mu.Unlock()
	// The whole handshake (a BIP324 key exchange included) must finish
	// within handshakeTimeout: a v2 responder otherwise waits on junk for
	// btcd's 30 s negotiation timeout.
	_ = conn.SetReadDeadline(time.Now().Add(handshakeTimeout))
	p.AssociateConnection(sc)
	s.goFunc(func() {
		if waitHandshake(s.ctx, p) {
			_ = conn.SetReadDeadline(time.Time{})
		}
		<-p.Done()
		s.removePeer(ps)
	})
}

// peerReady runs when the version handshake completed.
func (s *Service) peerReady(ps *peerState) {
	if s.bans.banned(hostIP(ps.p.Addr())) && !ps.manual {
		ps.p.Disconnect()
		return
	}
	ps.lastPong.Store(time.Now().UnixNano())
	ps.ready.Store(true)
	s.m.peers.WithLabelValues(ps.direction()).Inc()
	s.log.Info("peer connected", "peer", ps.id(), "addr", ps.p.Addr(), "inbound", ps.inbound,
		"user_agent", ps.p.UserAgent(), "version", ps.p.ProtocolVersion(), "height", ps.p.StartingHeight())
	s.goFunc(func() {
		if ps.p.ProtocolVersion() >= wire.SendHeadersVersion {
			ps.p.QueueMessage(wire.NewMsgSendHeaders(), nil)
		}
		s.afterHandshake(ps)
		s.requestHeaders(ps, nil)
		s.kick()
	})
}

// removePeer forgets a disconnected peer and re-queues its blocks.
func (s *Service) removePeer(ps *peerState) {
	s.mu.Lock()
	delete(s.conns, ps)
	s.mu.Unlock()
	if ps.ready.Swap(false) {
		s.m.peers.WithLabelValues(ps.direction()).Dec()
		s.log.Info("peer disconnected", "peer", ps.id(), "addr", ps.p.Addr())
	}
	s.syncMu.Lock()
	for h := range ps.inflight {
		delete(s.inflight, h)
	}
	ps.inflight = make(map[chainhash.Hash]struct{})
	for h, st := range s.stallers {
		if st == ps {
			delete(s.stallers, h)
		}
	}
	s.syncMu.Unlock()
	s.kick()
}

// acceptLoop accepts inbound peers until the listener closes.
func (s *Service) acceptLoop(ctx context.Context, l net.Listener) {
	for {
		conn, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn("accept failed", "err", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		addr := conn.RemoteAddr().String()
		if s.bans.banned(hostIP(addr)) {
			s.log.Info("refused banned peer", "addr", addr)
			_ = conn.Close()
			continue
		}
		if n := s.connCount(); n >= s.cfg.MaxPeers {
			s.log.Info("refused peer: too many connections", "addr", addr, "connections", n)
			_ = conn.Close()
			continue
		}
		ps := newPeerState(true)
		s.attach(ps, peer.NewInboundPeer(s.peerConfig(ps)), conn)
	}
}

func (s *Service) connCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// dial connects to addr and starts an outbound peer, with BIP324 v2
// transport when v2 is set (see connect for the fallback to v1).
func (s *Service) dial(ctx context.Context, addr string, manual, v2 bool) (*peerState, error) {
	d := net.Dialer{Timeout: 10 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	ps := newPeerState(false)
	ps.manual = manual
	ps.auto = !manual
	cfg := s.peerConfig(ps)
	cfg.UsingV2Conn = v2
	p, err := peer.NewOutboundPeer(cfg, conn.RemoteAddr().String())
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	s.attach(ps, p, conn)
	return ps, nil
}

// addManual keeps addr connected (reconnecting with backoff) until
// removed; it returns false when addr was already added.
func (s *Service) addManual(addr string) bool {
	s.mu.Lock()
	if _, ok := s.manual[addr]; ok {
		s.mu.Unlock()
		return false
	}
	ctx, cancel := context.WithCancel(s.ctx)
	s.manual[addr] = cancel
	s.mu.Unlock()
	s.goFunc(func() { s.keepConnected(ctx, addr) })
	return true
}

// removeManual stops reconnecting to addr; false when it was not added.
func (s *Service) removeManual(addr string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	cancel, ok := s.manual[addr]
	if ok {
		cancel()
		delete(s.manual, addr)
	}
	return ok
}

// keepConnected dials addr, waits for the connection to end and dials
// again, backing off from 1 s to 1 min while it keeps failing.
func (s *Service) keepConnected(ctx context.Context, addr string) {
	const minBackoff, maxBackoff = time.Second, time.Minute
	backoff := minBackoff
	for ctx.Err() == nil {
		start := time.Now()
		ps, err := s.connect(ctx, addr, true)
		if err != nil {
			s.log.Debug("connect failed", "addr", addr, "err", err, "retry_in", backoff.String())
		} else {
			select {
			case <-ps.p.Done():
			case <-ctx.Done():
				return
			}
			if time.Since(start) > time.Minute {
				backoff = minBackoff
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

// discoveryEnabled: DNS seeds only without --connect, off regtest, not disabled.
func (s *Service) discoveryEnabled() bool {
	return len(s.cfg.Connect) == 0 && s.deps.Network.Name != "regtest" && !s.cfg.NoDNSSeeds &&
		len(s.deps.Network.Params.DNSSeeds) > 0
}

// misbehave raises a peer's score; at banThreshold the peer is banned
// and disconnected (manual peers are only logged, as Bitcoin Core does).
func (s *Service) misbehave(ps *peerState, points int32, reason string) {
	ps.mu.Lock()
	ps.score += points
	score := ps.score
	ps.mu.Unlock()
	s.log.Warn("peer misbehaving", "peer", ps.id(), "addr", ps.p.Addr(), "points", points, "score", score, "reason", reason)
	if score < banThreshold {
		return
	}
	if ps.manual {
		s.log.Warn("not banning manually connected peer", "peer", ps.id(), "addr", ps.p.Addr())
		return
	}
	ip := hostIP(ps.p.Addr())
	if ip == nil {
		ps.p.Disconnect()
		return
	}
	n, _ := parseSubnet(ip.String())
	if err := s.banSubnet(n, time.Now().Add(s.cfg.BanDuration), reason); err != nil && !errors.Is(err, errAlreadyBanned) {
		s.log.Error("ban failed", "addr", ps.p.Addr(), "err", err)
	}
	ps.p.Disconnect()
}

// banSubnet records a ban and disconnects every peer inside it.
func (s *Service) banSubnet(n *net.IPNet, until time.Time, reason string) error {
	if err := s.bans.add(n, until, reason); err != nil {
		return err
	}
	s.m.bans.Inc()
	s.log.Warn("banned", "subnet", n.String(), "until", until.UTC().Format(time.RFC3339), "reason", reason)
	for _, ps := range s.allConns() {
		if ip := hostIP(ps.p.Addr()); ip != nil && n.Contains(ip) {
			ps.p.Disconnect()
		}
	}
	return nil
}

// allConns lists every connection, handshake done or not.
func (s *Service) allConns() []*peerState {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*peerState, 0, len(s.conns))
	for ps := range s.conns {
		out = append(out, ps)
	}
	return out
}

// readyPeers lists peers that completed the handshake.
func (s *Service) readyPeers() []*peerState {
	all := s.allConns()
	out := all[:0]
	for _, ps := range all {
		if ps.ready.Load() && ps.p.Connected() {
			out = append(out, ps)
		}
	}
	return out
}
