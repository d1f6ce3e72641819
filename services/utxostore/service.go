package utxostore

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"google.golang.org/grpc"

	utxostorev1 "github.com/btcmesh/btcmesh/proto/btcmesh/utxostore/v1"

	"github.com/btcmesh/btcmesh/internal/runner"
)

// Service is the UTXO store service.
type Service struct {
	cfg     Config
	deps    runner.Deps
	metrics *metrics
	ready   *runner.ReadySignal

	// mu guards st: handlers hold it shared while they use the store, Run
	// holds it exclusively to open and close it.
	mu sync.RWMutex
	st *store
}

// New builds the service; it does no I/O. Run opens the store.
func New(cfg Config, deps runner.Deps) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Log == nil {
		return nil, errors.New("utxostore: deps.Log is nil")
	}
	if deps.Network.Params == nil || deps.Network.Params.GenesisHash == nil {
		return nil, errors.New("utxostore: deps.Network has no genesis hash")
	}
	m, err := newMetrics(deps.Metrics)
	if err != nil {
		return nil, err
	}
	return &Service{cfg: cfg, deps: deps, metrics: m, ready: runner.NewReadySignal()}, nil
}

// Name is "utxostore".
func (s *Service) Name() string { return "utxostore" }

// Ready is closed once the store is open.
func (s *Service) Ready() <-chan struct{} { return s.ready.C() }

// RegisterGRPC registers btcmesh.utxostore.v1.UtxoStoreService.
func (s *Service) RegisterGRPC(srv grpc.ServiceRegistrar) {
	utxostorev1.RegisterUtxoStoreServiceServer(srv, &grpcServer{svc: s})
}

// Run opens the store, marks the service ready, and closes the store when
// ctx ends.
func (s *Service) Run(ctx context.Context) error {
	st, err := openStore(storeOptions{
		dir:         s.cfg.DataDir,
		cacheMB:     s.cfg.CacheMB,
		memTableMB:  s.cfg.MemTableMB,
		flushEvery:  s.cfg.FlushInterval,
		coinCacheMB: s.cfg.CoinCacheMB,
		filterBytes: s.cfg.FilterMB << 20,
		filterSkips: s.metrics.filterSkips,
		genesis:     *s.deps.Network.Params.GenesisHash,
	}, s.deps.Log)
	if err != nil {
		return err
	}
	tip, err := st.tip()
	if err != nil {
		_ = st.close()
		return err
	}
	s.metrics.setTip(tip)
	s.mu.Lock()
	s.st = st
	s.mu.Unlock()
	s.deps.Log.Info("utxo store open", "dir", s.cfg.DataDir, "height", tip.height,
		"tip", tip.hash.String(), "txouts", tip.txouts)
	s.ready.Set()

	<-ctx.Done()

	s.mu.Lock()
	defer s.mu.Unlock()
	s.st = nil
	if err := st.close(); err != nil {
		return fmt.Errorf("close utxo store: %w", err)
	}
	s.deps.Log.Info("utxo store closed")
	return nil
}

// acquire returns the open store with the shared lock held; release must
// be called when done. It fails while the store is not open.
func (s *Service) acquire() (*store, bool) {
	s.mu.RLock()
	if s.st == nil {
		s.mu.RUnlock()
		return nil, false
	}
	return s.st, true
}

func (s *Service) release() { s.mu.RUnlock() }
