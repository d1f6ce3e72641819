package headers

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/dgraph-io/badger/v4"
	"github.com/nats-io/nats.go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/btcmesh/btcmesh/proto/btcmesh/events/v1"
	headersv1 "github.com/btcmesh/btcmesh/proto/btcmesh/headers/v1"

	"github.com/btcmesh/btcmesh/internal/bus"
	"github.com/btcmesh/btcmesh/internal/chain"
	"github.com/btcmesh/btcmesh/internal/runner"
)

// Service is the headers service: the block index.
type Service struct {
	cfg        Config
	log        *slog.Logger
	nc         *nats.Conn
	network    chain.Network
	subjects   bus.Subjects
	metrics    *metrics
	ready      *runner.ReadySignal
	timeSource blockchain.MedianTimeSource

	// mu guards the index and the store; badger writes happen inside the
	// same critical section so that memory and disk agree.
	mu  sync.RWMutex
	db  *badger.DB
	idx *index
	// lazy holds index changes not written yet (see deferredWrites).
	lazy deferredWrites
}

// New builds the service; the store is opened by Run.
func New(cfg Config, deps runner.Deps) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Network.Params == nil {
		return nil, fmt.Errorf("headers: no network parameters")
	}
	log := deps.Logger()
	m, err := newMetrics(deps.Metrics)
	if err != nil {
		return nil, err
	}
	return &Service{
		cfg:        cfg,
		log:        log,
		nc:         deps.NATS,
		network:    deps.Network,
		subjects:   bus.NewSubjects(deps.Network.Name),
		metrics:    m,
		ready:      runner.NewReadySignal(),
		timeSource: blockchain.NewMedianTime(),
	}, nil
}

// Name returns "headers".
func (s *Service) Name() string { return "headers" }

// Ready is closed once the index is loaded.
func (s *Service) Ready() <-chan struct{} { return s.ready.C() }

// RegisterGRPC registers btcmesh.headers.v1.HeaderService.
func (s *Service) RegisterGRPC(srv grpc.ServiceRegistrar) {
	headersv1.RegisterHeaderServiceServer(srv, &grpcServer{s: s})
}

// Run opens the store, loads the index, serves until ctx ends, then closes
// the store.
func (s *Service) Run(ctx context.Context) error {
	db, err := openStore(s.cfg.DataDir, s.log)
	if err != nil {
		return err
	}
	idx, err := loadIndex(db, s.network.Params)
	if err != nil {
		_ = db.Close()
		return err
	}
	s.mu.Lock()
	s.db, s.idx = db, idx
	s.updateGauges()
	s.mu.Unlock()
	s.log.Info("block index loaded", "entries", len(idx.nodes),
		"tip_height", idx.tip().height, "tip", idx.tip().hash.String(),
		"best_height", idx.best.height, "best", idx.best.hash.String())
	s.ready.Set()

	<-ctx.Done()

	s.mu.Lock()
	if err := s.flushDeferred(); err != nil {
		s.log.Error("store deferred index changes failed", "err", err)
	}
	s.db, s.idx = nil, nil
	s.mu.Unlock()
	s.lazy.syncs.Wait()
	if err := db.Close(); err != nil {
		return fmt.Errorf("close headers store: %w", err)
	}
	return nil
}

// errNotReady answers calls that arrive before the index is loaded.
func errNotReady() error {
	return status.Error(codes.Unavailable, "headers: block index not loaded yet")
}

// updateGauges sets the height gauges; call with mu held.
func (s *Service) updateGauges() {
	s.metrics.bestHeight.Set(float64(s.idx.best.height))
	s.metrics.tipHeight.Set(float64(s.idx.tip().height))
}

// publish sends an event on core NATS; failures are logged, not fatal,
// because the index (the source of truth) is already updated.
func (s *Service) publish(subject string, msg proto.Message) {
	if s.nc == nil {
		return
	}
	if err := bus.Publish(s.nc, subject, msg); err != nil {
		s.log.Warn("publish failed", "subject", subject, "err", err)
	}
}

// publishHeaderTip announces the best header; call with mu held.
func (s *Service) publishHeaderTip() {
	b := s.idx.best
	s.log.Info("best header changed", "height", b.height, "hash", b.hash.String())
	s.publish(s.subjects.HeaderTip(), &eventsv1.HeaderTip{Hash: b.hash[:], Height: b.height})
}
