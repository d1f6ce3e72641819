package p2p

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/btcsuite/btcd/addrmgr"
	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"

	headersv1 "github.com/btcmesh/btcmesh/proto/btcmesh/headers/v1"
	p2pv1 "github.com/btcmesh/btcmesh/proto/btcmesh/p2p/v1"

	"github.com/btcmesh/btcmesh/internal/blockstore"
	"github.com/btcmesh/btcmesh/internal/bus"
	"github.com/btcmesh/btcmesh/internal/grpcclient"
	"github.com/btcmesh/btcmesh/internal/runner"
)

// Tuning constants.
const (
	// maxInflightPerPeer bounds blocks requested from one peer at a time.
	maxInflightPerPeer = 16
	// defaultStallTimeout is how long a requested block may take before it
	// is asked of another peer.
	defaultStallTimeout = 60 * time.Second
	// banThreshold is the misbehaviour score that gets a peer banned.
	banThreshold = 100
	// targetOutbound is how many discovered outbound peers to keep.
	targetOutbound = 8
	// rpcTimeout bounds calls to other services.
	rpcTimeout = 30 * time.Second
	// progressInterval is how often sync progress is logged while behind.
	progressInterval = 10 * time.Second
)

// Service is the p2p service.
type Service struct {
	p2pv1.UnimplementedP2PServiceServer

	cfg   Config
	deps  runner.Deps
	log   *slog.Logger
	subj  bus.Subjects
	ready *runner.ReadySignal
	m     *metrics
	sm    *syncMetrics
	bans  *banList
	txs   *txCache

	// closeHeaders releases the headers channel.
	closeHeaders func() error
	headers      headersv1.HeaderServiceClient

	// Set in Run before any peer exists.
	ctx   context.Context
	js    jetstream.JetStream
	store *blockstore.Store
	wg    sync.WaitGroup

	mu        sync.Mutex
	conns     map[*peerState]struct{}
	manual    map[string]context.CancelFunc // added nodes by address
	listeners []net.Listener
	book      *addrmgr.AddrManager // address book; nil without discovery

	transports transportMemo // v1-only addresses (BIP324 fallback)

	tipHash    atomic.Pointer[chainhash.Hash]
	tipHeight  atomic.Int32
	bestHeader atomic.Int32

	syncMu       sync.Mutex
	inflight     map[chainhash.Hash]*blockReq
	received     map[chainhash.Hash]time.Time
	stallers     map[chainhash.Hash]*peerState
	sched        schedState
	txreq        *txRequests
	kickCh       chan struct{}
	blocksRecv   atomic.Int64
	stallTimeout time.Duration
}

// New builds the service; it dials nothing until calls are made.
func New(cfg Config, deps runner.Deps) (*Service, error) {
	if cfg.MaxPeers == 0 {
		cfg.MaxPeers = DefaultMaxPeers
	}
	if cfg.BanDuration == 0 {
		cfg.BanDuration = DefaultBanDuration
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	deps.Log = deps.Logger()
	m, err := newMetrics(deps.Metrics)
	if err != nil {
		return nil, err
	}
	bans, err := newBanList(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	hconn, closeHeaders, err := grpcclient.Connect(cfg.HeadersAddr, deps.Local)
	if err != nil {
		return nil, fmt.Errorf("headers client: %w", err)
	}
	s := &Service{
		cfg:          cfg,
		deps:         deps,
		log:          deps.Log,
		subj:         bus.NewSubjects(deps.Network.Name),
		ready:        runner.NewReadySignal(),
		m:            m,
		bans:         bans,
		txs:          newTxCache(txCacheSize),
		closeHeaders: closeHeaders,
		headers:      headersv1.NewHeaderServiceClient(hconn),
		conns:        make(map[*peerState]struct{}),
		manual:       make(map[string]context.CancelFunc),
		inflight:     make(map[chainhash.Hash]*blockReq),
		received:     make(map[chainhash.Hash]time.Time),
		stallers:     make(map[chainhash.Hash]*peerState),
		sched:        schedState{fullTip: -1},
		txreq:        newTxRequests(),
		kickCh:       make(chan struct{}, 1),
		stallTimeout: defaultStallTimeout,
	}
	s.tipHeight.Store(-1)
	s.bestHeader.Store(-1)
	if s.sm, err = newSyncMetrics(deps.Metrics, s); err != nil {
		return nil, err
	}
	if s.discoveryEnabled() {
		s.book = newAddrBook(cfg.DataDir)
	}
	return s, nil
}

// Name is "p2p".
func (s *Service) Name() string { return "p2p" }

// Ready is closed once the service accepts peers and serves its API.
func (s *Service) Ready() <-chan struct{} { return s.ready.C() }

// RegisterGRPC registers btcmesh.p2p.v1.P2PService.
func (s *Service) RegisterGRPC(srv grpc.ServiceRegistrar) { p2pv1.RegisterP2PServiceServer(srv, s) }

// Run opens the block store, subscribes to chain-tip and tx-accepted
// events, starts the listener and the outbound connections, and serves
// until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	defer s.closeHeaders()
	if s.deps.NATS == nil {
		return errors.New("p2p needs a NATS connection")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.ctx = ctx

	js, err := jetstream.New(s.deps.NATS)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	s.js = js
	if s.store, err = blockstore.Open(ctx, js, s.subj.BlockBucket(), 1, s.deps.Blocks); err != nil {
		return err
	}
	if _, err := bus.EnsureBlockStream(ctx, js, s.subj, bus.StreamOptions{}); err != nil {
		return err
	}

	tipSub, err := s.deps.NATS.Subscribe(s.subj.ChainTip(), s.onChainTipMsg)
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", s.subj.ChainTip(), err)
	}
	defer func() { _ = tipSub.Unsubscribe() }()
	txSub, err := s.deps.NATS.Subscribe(s.subj.TxAccepted(), s.onTxAcceptedMsg)
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", s.subj.TxAccepted(), err)
	}
	defer func() { _ = txSub.Unsubscribe() }()

	if s.cfg.Listen != "" {
		l, err := net.Listen("tcp", s.cfg.Listen)
		if err != nil {
			return fmt.Errorf("--p2p-listen %s: %w", s.cfg.Listen, err)
		}
		s.mu.Lock()
		s.listeners = append(s.listeners, l)
		s.mu.Unlock()
		s.log.Info("p2p listening", "addr", l.Addr().String())
		s.goFunc(func() { s.acceptLoop(ctx, l) })
	}

	s.goFunc(func() { s.refreshChainInfo(ctx, true) })
	s.goFunc(func() { s.syncLoop(ctx) })

	port := s.deps.Network.Params.DefaultPort
	for _, a := range s.cfg.Connect {
		s.addManual(withDefaultPort(a, port))
	}
	for _, a := range s.cfg.AddNode {
		s.addManual(withDefaultPort(a, port))
	}
	if s.book != nil {
		s.book.Start() // loads peers.json
		defer func() { _ = s.book.Stop() }()
		s.goFunc(func() { s.discover(ctx) })
	}

	s.ready.Set()
	s.log.Info("p2p started", "network", s.deps.Network.Name, "max_peers", s.cfg.MaxPeers,
		"connect", s.cfg.Connect, "addnode", s.cfg.AddNode, "dns_seeds", s.discoveryEnabled())
	<-ctx.Done()

	s.mu.Lock()
	for _, l := range s.listeners {
		_ = l.Close()
	}
	for _, c := range s.manual {
		c()
	}
	conns := make([]*peerState, 0, len(s.conns))
	for ps := range s.conns {
		conns = append(conns, ps)
	}
	s.mu.Unlock()
	for _, ps := range conns {
		ps.p.Disconnect()
	}
	s.wg.Wait()
	s.log.Info("p2p stopped")
	return nil
}

// goFunc runs f in a goroutine that Run waits for.
func (s *Service) goFunc(f func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
}

// kick wakes the block scheduler.
func (s *Service) kick() {
	select {
	case s.kickCh <- struct{}{}:
	default:
	}
}

// rpcCtx is a context for one call to another service.
func (s *Service) rpcCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(s.ctx, rpcTimeout)
}

// refreshChainInfo reads the active tip and best header from the headers
// service; with retry it keeps trying until the first success.
func (s *Service) refreshChainInfo(ctx context.Context, retry bool) {
	for {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		resp, err := s.headers.GetChainInfo(cctx, &headersv1.GetChainInfoRequest{})
		cancel()
		if err == nil {
			if tip := resp.GetTip(); tip != nil {
				if h, herr := chainhash.NewHash(tip.GetHash()); herr == nil {
					s.tipHash.Store(h)
				}
				s.tipHeight.Store(tip.GetHeight())
			}
			if bh := resp.GetBestHeader(); bh != nil && bh.GetHeight() > s.bestHeader.Load() {
				s.bestHeader.Store(bh.GetHeight())
			}
			return
		}
		if !retry || ctx.Err() != nil {
			return
		}
		s.log.Debug("chain info not available yet", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(2 * time.Second):
		}
	}
}

// newestBlock feeds the start height of our version message.
func (s *Service) newestBlock() (*chainhash.Hash, int32, error) {
	h := s.tipHash.Load()
	if h == nil {
		h = s.deps.Network.Params.GenesisHash
	}
	return h, max(s.tipHeight.Load(), 0), nil
}

// isBehind is true while the best header is well ahead of the active tip.
func (s *Service) isBehind() bool {
	return s.bestHeader.Load() > s.tipHeight.Load()+6
}

// NATS message handlers are thin: decode, then act.
func (s *Service) onChainTipMsg(msg *nats.Msg) { s.handleChainTip(msg.Data) }

func (s *Service) onTxAcceptedMsg(msg *nats.Msg) { s.handleTxAccepted(msg.Data) }
