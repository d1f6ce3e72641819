package p2p

import (
	"context"
	"net"
	"strconv"
	"time"

	"github.com/btcsuite/btcd/addrmgr"
	"github.com/btcsuite/btcd/wire/v2"
)

// minRelayFeeSatPerKvB is the fee rate below which we do not want
// transactions announced (our feefilter, BIP133): Core's default.
const minRelayFeeSatPerKvB = 1000

// newAddrBook is the persisted address book for outbound connections on
// public networks: btcd's address manager (new/tried buckets), saved as
// peers.json in dir every few minutes and on stop.
func newAddrBook(dir string) *addrmgr.AddrManager {
	return addrmgr.New(dir, net.LookupIP)
}

// afterHandshake runs the post-verack exchanges: our feefilter (BIP133),
// getaddr to outbound peers when we look for peers, and marking
// discovered peers good in the address book.
func (s *Service) afterHandshake(ps *peerState) {
	if ps.p.ProtocolVersion() >= wire.FeeFilterVersion {
		ps.p.QueueMessage(wire.NewMsgFeeFilter(minRelayFeeSatPerKvB), nil)
	}
	if s.book == nil || ps.inbound {
		return
	}
	if s.book.NeedMoreAddresses() {
		ps.p.QueueMessage(wire.NewMsgGetAddr(), nil)
	}
	if ps.auto {
		na := ps.p.NA()
		s.book.Connected(na)
		s.book.Good(na)
		s.book.SetServices(na, ps.p.Services())
	}
}

// discover seeds the address book from the network's DNS seeds when it
// holds too few addresses, then keeps targetOutbound outbound connections
// to addresses from the book.
func (s *Service) discover(ctx context.Context) {
	if s.book.NeedMoreAddresses() {
		port, _ := strconv.Atoi(s.deps.Network.Params.DefaultPort)
		for _, seed := range s.deps.Network.Params.DNSSeeds {
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			ips, err := net.DefaultResolver.LookupIP(cctx, "ip", seed.Host)
			cancel()
			if err != nil {
				s.log.Debug("dns seed failed", "seed", seed.Host, "err", err)
				continue
			}
			var addrs []*wire.NetAddressV2
			for _, ip := range ips {
				addrs = append(addrs, wire.NetAddressV2FromBytes(time.Now().Add(-24*time.Hour), wire.SFNodeNetwork, ip, uint16(port)))
			}
			if len(addrs) > 0 {
				s.book.AddAddresses(addrs, addrs[0])
			}
			s.log.Info("dns seed resolved", "seed", seed.Host, "addresses", len(ips))
		}
	}
	s.log.Info("address book loaded", "addresses", s.book.NumAddresses())
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		s.fillOutbound(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// fillOutbound starts connections to addresses from the book up to the
// target, at most one per network group (/16 for IPv4), as Core does.
func (s *Service) fillOutbound(ctx context.Context) {
	s.mu.Lock()
	auto, connected, groups := 0, make(map[string]bool), make(map[string]bool)
	for ps := range s.conns {
		connected[ps.p.Addr()] = true
		if !ps.inbound {
			if na := ps.p.NA(); na != nil {
				groups[addrmgr.GroupKey(na)] = true
			}
		}
		if ps.auto {
			auto++
		}
	}
	need := min(targetOutbound-auto, s.cfg.MaxPeers-len(s.conns))
	s.mu.Unlock()
	for tries := 0; need > 0 && tries < 50; tries++ {
		ka := s.book.GetAddress()
		if ka == nil {
			return
		}
		na := ka.NetAddress()
		legacy := na.ToLegacy()
		if legacy == nil || legacy.IP == nil {
			continue // no Tor/I2P dialling
		}
		addr := net.JoinHostPort(legacy.IP.String(), strconv.Itoa(int(na.Port)))
		// Like Core: recently tried addresses only now and then.
		if connected[addr] || groups[addrmgr.GroupKey(na)] || s.bans.banned(legacy.IP) ||
			(time.Since(ka.LastAttempt()) < 10*time.Minute && tries < 30) {
			continue
		}
		s.book.Attempt(na)
		connected[addr], groups[addrmgr.GroupKey(na)] = true, true
		need--
		s.goFunc(func() {
			if _, err := s.connect(ctx, addr, false); err != nil {
				s.log.Debug("outbound connect failed", "addr", addr, "err", err)
			}
		})
	}
}

// onAddr learns addresses (addr, pre-BIP155) for the address book.
func (s *Service) onAddr(ps *peerState, msg *wire.MsgAddr) {
	if s.book == nil {
		return
	}
	var addrs []*wire.NetAddressV2
	for _, na := range msg.AddrList {
		if na.IP == nil || !na.HasService(wire.SFNodeNetwork) {
			continue
		}
		addrs = append(addrs, wire.NetAddressV2FromBytes(na.Timestamp, na.Services, na.IP, na.Port))
	}
	s.learn(ps, addrs)
}

// onAddrV2 learns addresses (addrv2, BIP155) for the address book.
func (s *Service) onAddrV2(ps *peerState, msg *wire.MsgAddrV2) {
	if s.book == nil {
		return
	}
	var addrs []*wire.NetAddressV2
	for _, na := range msg.AddrList {
		if na != nil && na.Addr != nil && na.HasService(wire.SFNodeNetwork) {
			addrs = append(addrs, na)
		}
	}
	s.learn(ps, addrs)
}

func (s *Service) learn(ps *peerState, addrs []*wire.NetAddressV2) {
	if len(addrs) == 0 {
		return
	}
	src := ps.p.NA()
	if src == nil {
		src = addrs[0]
	}
	s.book.AddAddresses(addrs, src)
}
