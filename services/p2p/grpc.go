package p2p

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	p2pv1 "github.com/btcmesh/btcmesh/proto/btcmesh/p2p/v1"

	"github.com/btcmesh/btcmesh/internal/rules"
	"github.com/btcmesh/btcmesh/internal/version"
)

// minRelayFeeBTCPerKvB is the relay fee GetNetworkInfo reports (Core's default).
const minRelayFeeBTCPerKvB = 0.00001

// GetPeerInfo lists the peers that completed the handshake.
func (s *Service) GetPeerInfo(context.Context, *p2pv1.GetPeerInfoRequest) (*p2pv1.GetPeerInfoResponse, error) {
	resp := &p2pv1.GetPeerInfoResponse{}
	for _, ps := range s.readyPeers() {
		st := ps.p.StatsSnapshot()
		ps.mu.Lock()
		score, hdrs, blocks := ps.score, ps.syncedHeaders, ps.syncedBlocks
		ps.mu.Unlock()
		local := ""
		if la := ps.p.LocalAddr(); la != nil {
			local = la.String()
		}
		transport := "v1"
		if st.V2Connection {
			transport = "v2"
		}
		resp.Peers = append(resp.Peers, &p2pv1.PeerInfo{
			Id:                    st.ID,
			Addr:                  st.Addr,
			AddrLocal:             local,
			Services:              fmt.Sprintf("%016x", uint64(st.Services)),
			Inbound:               st.Inbound,
			Version:               int32(st.Version),
			Subver:                st.UserAgent,
			StartingHeight:        st.StartingHeight,
			SyncedHeaders:         hdrs,
			SyncedBlocks:          blocks,
			ConnTime:              st.ConnTime.Unix(),
			LastSend:              unixOrZero(st.LastSend),
			LastRecv:              unixOrZero(st.LastRecv),
			BytesSent:             st.BytesSent,
			BytesRecv:             st.BytesRecv,
			PingTime:              float64(st.LastPingMicros) / 1e6,
			TransportProtocolType: transport,
			BanScore:              score,
			RelayTxes:             ps.relayTxs.Load(),
		})
	}
	return resp, nil
}

func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

// GetNetworkInfo summarises the networking state.
func (s *Service) GetNetworkInfo(context.Context, *p2pv1.GetNetworkInfoRequest) (*p2pv1.GetNetworkInfoResponse, error) {
	resp := &p2pv1.GetNetworkInfoResponse{
		Version:         numericVersion(version.Version),
		Subversion:      version.UserAgent(),
		ProtocolVersion: int32(protocolVersion),
		LocalServices:   fmt.Sprintf("%016x", uint64(s.services())),
		NetworkActive:   true,
		RelayFee:        minRelayFeeBTCPerKvB,
	}
	for _, ps := range s.readyPeers() {
		resp.Connections++
		if ps.inbound {
			resp.ConnectionsIn++
		} else {
			resp.ConnectionsOut++
		}
	}
	s.mu.Lock()
	for _, l := range s.listeners {
		resp.LocalAddresses = append(resp.LocalAddresses, l.Addr().String())
	}
	s.mu.Unlock()
	return resp, nil
}

// numericVersion encodes "major.minor.patch[-x]" as Core does (10000*major + 100*minor + patch).
func numericVersion(v string) int32 {
	v, _, _ = strings.Cut(v, "-")
	parts := strings.Split(v, ".")
	mul := []int32{10000, 100, 1}
	var out int32
	for i := 0; i < len(parts) && i < len(mul); i++ {
		n, err := strconv.Atoi(parts[i])
		if err != nil {
			return 0
		}
		out += int32(n) * mul[i]
	}
	return out
}

// AddNode adds (keeps connected), removes, or tries once a peer address.
func (s *Service) AddNode(_ context.Context, req *p2pv1.AddNodeRequest) (*p2pv1.AddNodeResponse, error) {
	if err := validPeerAddr(req.GetAddr()); err != nil {
		return nil, rules.InvalidArgument("addr %q: %v", req.GetAddr(), err)
	}
	cmd := req.GetCommand()
	if cmd != "add" && cmd != "remove" && cmd != "onetry" {
		return nil, rules.InvalidArgument("command must be add, remove or onetry, got %q", cmd)
	}
	if err := s.requireRunning(); err != nil {
		return nil, err
	}
	addr := withDefaultPort(req.GetAddr(), s.deps.Network.Params.DefaultPort)
	switch cmd {
	case "add":
		if !s.addManual(addr) {
			return nil, status.Errorf(codes.AlreadyExists, "node %s already added", addr)
		}
	case "remove":
		if !s.removeManual(addr) {
			return nil, status.Errorf(codes.NotFound, "node %s has not been added", addr)
		}
	case "onetry":
		ctx := s.ctx
		s.goFunc(func() {
			if _, err := s.connect(ctx, addr, true); err != nil {
				s.log.Info("onetry connect failed", "addr", addr, "err", err)
			}
		})
	}
	return &p2pv1.AddNodeResponse{}, nil
}

// requireRunning fails calls that need Run's context before it started.
func (s *Service) requireRunning() error {
	select {
	case <-s.ready.C():
		return nil
	default:
		return status.Error(codes.Unavailable, "p2p service is starting")
	}
}

// DisconnectNode drops a peer by address or id.
func (s *Service) DisconnectNode(_ context.Context, req *p2pv1.DisconnectNodeRequest) (*p2pv1.DisconnectNodeResponse, error) {
	addr, id := req.GetAddr(), req.GetId()
	if addr != "" && id != 0 {
		return nil, rules.InvalidArgument("give either addr or id, not both")
	}
	if addr == "" && id <= 0 {
		return nil, rules.InvalidArgument("give addr or a positive id")
	}
	found := false
	for _, ps := range s.allConns() {
		if (addr != "" && ps.p.Addr() == addr) || (addr == "" && ps.p.ID() == id) {
			ps.p.Disconnect()
			found = true
		}
	}
	if !found {
		return nil, status.Error(codes.NotFound, "node not found in connected nodes")
	}
	return &p2pv1.DisconnectNodeResponse{}, nil
}

// SetBan adds or removes a ban on an IP or subnet.
func (s *Service) SetBan(_ context.Context, req *p2pv1.SetBanRequest) (*p2pv1.SetBanResponse, error) {
	cmd := req.GetCommand()
	if cmd != "add" && cmd != "remove" {
		return nil, rules.InvalidArgument("command must be add or remove, got %q", cmd)
	}
	n, err := parseSubnet(req.GetSubnet())
	if err != nil {
		return nil, rules.InvalidArgument("%v", err)
	}
	if cmd == "remove" {
		if err := s.bans.remove(n); err != nil {
			if errors.Is(err, errNotBanned) {
				return nil, status.Errorf(codes.NotFound, "unban failed: %s was not banned", n)
			}
			return nil, status.Error(codes.Internal, err.Error())
		}
		s.log.Info("unbanned", "subnet", n.String())
		return &p2pv1.SetBanResponse{}, nil
	}
	if req.GetBanTime() < 0 {
		return nil, rules.InvalidArgument("ban_time must be >= 0, got %d", req.GetBanTime())
	}
	var until time.Time
	switch {
	case req.GetAbsolute():
		until = time.Unix(req.GetBanTime(), 0)
		if !until.After(time.Now()) {
			return nil, rules.InvalidArgument("absolute ban_time %d is not in the future", req.GetBanTime())
		}
	case req.GetBanTime() == 0:
		until = time.Now().Add(s.cfg.BanDuration)
	default:
		until = time.Now().Add(time.Duration(req.GetBanTime()) * time.Second)
	}
	if err := s.banSubnet(n, until, "manually added"); err != nil {
		if errors.Is(err, errAlreadyBanned) {
			return nil, status.Errorf(codes.AlreadyExists, "%s is already banned", n)
		}
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &p2pv1.SetBanResponse{}, nil
}

// ListBanned lists the bans in force.
func (s *Service) ListBanned(context.Context, *p2pv1.ListBannedRequest) (*p2pv1.ListBannedResponse, error) {
	resp := &p2pv1.ListBannedResponse{}
	for _, b := range s.bans.list() {
		resp.Bans = append(resp.Bans, &p2pv1.Ban{Address: b.Subnet, BanCreated: b.Created, BannedUntil: b.Until, Reason: b.Reason})
	}
	return resp, nil
}

// ClearBanned lifts every ban.
func (s *Service) ClearBanned(context.Context, *p2pv1.ClearBannedRequest) (*p2pv1.ClearBannedResponse, error) {
	if err := s.bans.clear(); err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	s.log.Info("ban list cleared")
	return &p2pv1.ClearBannedResponse{}, nil
}
