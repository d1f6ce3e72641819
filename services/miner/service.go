package miner

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"

	blockvalidatorv1 "github.com/btcmesh/btcmesh/proto/btcmesh/blockvalidator/v1"
	headersv1 "github.com/btcmesh/btcmesh/proto/btcmesh/headers/v1"
	minerv1 "github.com/btcmesh/btcmesh/proto/btcmesh/miner/v1"
	utxostorev1 "github.com/btcmesh/btcmesh/proto/btcmesh/utxostore/v1"

	"github.com/btcmesh/btcmesh/internal/blockstore"
	"github.com/btcmesh/btcmesh/internal/bus"
	"github.com/btcmesh/btcmesh/internal/grpcclient"
	"github.com/btcmesh/btcmesh/internal/runner"
	"github.com/btcmesh/btcmesh/internal/scriptpool"
)

// Timeouts of calls to other services.
const (
	callTimeout = 30 * time.Second
	// scriptAttempts is how many times a script batch is sent before failing.
	scriptAttempts = 3
)

// Service is the miner: mempool, block templates and hashing.
type Service struct {
	cfg     Config
	deps    runner.Deps
	log     *slog.Logger
	subj    bus.Subjects
	metrics *metrics
	ready   *runner.ReadySignal

	// Set up by Run.
	headers   headersv1.HeaderServiceClient
	utxos     utxostorev1.UtxoStoreServiceClient
	blocks    blockvalidatorv1.BlockValidatorServiceClient
	scripts   runner.ScriptValidator
	store     *blockstore.Store
	startedCh chan struct{}

	mu   sync.Mutex // guards pool and generation
	pool *pool
	// generation counts blocks applied to the mempool, so that an
	// acceptance that raced with a block is redone.
	generation uint64

	tipMu sync.Mutex // guards tip
	tip   *tipInfo

	genMu      sync.Mutex // one Generate at a time
	extraNonce atomic.Uint64
}

// New builds the miner; it does no I/O.
func New(cfg Config, deps runner.Deps) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m, err := newMetrics(deps.Metrics)
	if err != nil {
		return nil, err
	}
	s := &Service{
		cfg:       cfg,
		deps:      deps,
		log:       deps.Log,
		subj:      bus.NewSubjects(deps.Network.Name),
		metrics:   m,
		ready:     runner.NewReadySignal(),
		pool:      newPool(),
		startedCh: make(chan struct{}),
	}
	s.extraNonce.Store(uint64(time.Now().UnixNano()))
	return s, nil
}

// Name is "miner".
func (s *Service) Name() string { return "miner" }

// Ready is closed once the miner serves requests.
func (s *Service) Ready() <-chan struct{} { return s.ready.C() }

// RegisterGRPC registers btcmesh.miner.v1.MinerService.
func (s *Service) RegisterGRPC(srv grpc.ServiceRegistrar) {
	minerv1.RegisterMinerServiceServer(srv, &grpcServer{s: s})
}

// Run connects to the services the miner calls, opens the block store,
// subscribes to relayed transactions and chain-tip events, and serves
// until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	dial := func(name, addr string) (grpc.ClientConnInterface, func() error, error) {
		cc, closeFn, err := grpcclient.Connect(addr, s.deps.Local)
		if err != nil {
			return nil, nil, fmt.Errorf("%s client: %w", name, err)
		}
		return cc, closeFn, nil
	}
	hc, closeH, err := dial("headers", s.cfg.HeadersAddr)
	if err != nil {
		return err
	}
	defer closeH()
	uc, closeU, err := dial("utxostore", s.cfg.UtxoStoreAddr)
	if err != nil {
		return err
	}
	defer closeU()
	bc, closeB, err := dial("blockvalidator", s.cfg.BlockValidatorAddr)
	if err != nil {
		return err
	}
	defer closeB()
	s.headers = headersv1.NewHeaderServiceClient(hc)
	s.utxos = utxostorev1.NewUtxoStoreServiceClient(uc)
	s.blocks = blockvalidatorv1.NewBlockValidatorServiceClient(bc)
	pool := scriptpool.New(s.deps.NATS, s.subj, s.cfg.ScriptTimeout, scriptAttempts)
	if err := pool.CountRetries(s.deps.Metrics); err != nil {
		return err
	}
	s.scripts = pool
	if s.deps.Scripts != nil {
		s.scripts = s.deps.Scripts
	}

	js, err := jetstream.New(s.deps.NATS)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	octx, cancel := context.WithTimeout(ctx, callTimeout)
	s.store, err = blockstore.Open(octx, js, s.subj.BlockBucket(), 1, s.deps.Blocks)
	cancel()
	if err != nil {
		return err
	}

	// Relayed transactions are handled one at a time, in arrival order, so
	// a parent relayed before its child is accepted first.
	txSub, err := s.deps.NATS.QueueSubscribe(s.subj.TxReceived(), bus.MempoolQueue, func(msg *nats.Msg) {
		s.handleTxReceived(ctx, msg.Data)
	})
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", s.subj.TxReceived(), err)
	}
	defer func() { _ = txSub.Unsubscribe() }()
	tipSub, err := s.deps.NATS.Subscribe(s.subj.ChainTip(), func(msg *nats.Msg) {
		s.handleChainTip(ctx, msg.Data)
	})
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", s.subj.ChainTip(), err)
	}
	defer func() { _ = tipSub.Unsubscribe() }()
	if err := s.deps.NATS.Flush(); err != nil {
		return fmt.Errorf("nats flush: %w", err)
	}

	close(s.startedCh)
	s.ready.Set()
	s.log.Info("miner ready", "max_mempool_mb", s.cfg.MaxMempoolMB, "min_relay_fee", s.cfg.MinRelayFee,
		"workers", s.cfg.Workers)
	<-ctx.Done()
	return nil
}

// started tells gRPC handlers whether Run has set up the clients.
func (s *Service) started() bool {
	select {
	case <-s.startedCh:
		return true
	default:
		return false
	}
}

// updateGauges refreshes the mempool gauges; call with s.mu held.
func (s *Service) updateGauges() {
	s.metrics.mempoolTxs.Set(float64(len(s.pool.entries)))
	s.metrics.mempoolBytes.Set(float64(s.pool.bytes))
}

// removeBlockTxs takes a block's transactions and their conflicts out of
// the mempool. It is idempotent.
func (s *Service) removeBlockTxs(block *wire.MsgBlock, hash chainhash.Hash) {
	s.mu.Lock()
	mined, conflicts := s.pool.removeForBlock(block.Transactions)
	s.generation++
	s.updateGauges()
	s.mu.Unlock()
	if mined > 0 || conflicts > 0 {
		s.log.Debug("mempool updated for block", "hash", hash.String(), "mined", mined, "conflicts", conflicts)
	}
}
