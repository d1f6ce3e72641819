package txvalidator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	txvalidatorv1 "github.com/btcmesh/btcmesh/proto/btcmesh/txvalidator/v1"

	"github.com/btcmesh/btcmesh/internal/bus"
	"github.com/btcmesh/btcmesh/internal/libsecp"
	"github.com/btcmesh/btcmesh/internal/runner"
)

// ErrorHeader is the NATS reply header that carries the reason when a
// request is malformed; the reply then holds an empty ValidateResponse.
const ErrorHeader = bus.ErrorHeader

// Service is the txvalidator: gRPC TxValidatorService plus a worker in the
// NATS queue group.
type Service struct {
	cfg   Config
	deps  runner.Deps
	log   *slog.Logger
	eng   *engine
	ready *runner.ReadySignal
}

// New builds the service; it does no I/O.
func New(cfg Config, deps runner.Deps) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Network.Params == nil {
		return nil, errors.New("txvalidator: deps.Network is not set")
	}
	log := deps.Logger()
	m, err := newMetrics(deps.Metrics)
	if err != nil {
		return nil, err
	}
	return &Service{
		cfg:   cfg,
		deps:  deps,
		log:   log,
		eng:   newEngine(deps.Network, cfg, m),
		ready: runner.NewReadySignal(),
	}, nil
}

// Name is "txvalidator".
func (s *Service) Name() string { return "txvalidator" }

// Ready is closed once the NATS worker is subscribed.
func (s *Service) Ready() <-chan struct{} { return s.ready.C() }

// Validate runs req in this process, for services of the same process
// (runner.Deps.Scripts): the same checks as the pool and the gRPC API,
// without encoding the batch. Its batches count with transport "local".
func (s *Service) Validate(ctx context.Context, req *txvalidatorv1.ValidateRequest) (*txvalidatorv1.ValidateResponse, error) {
	return s.eng.validate(ctx, req, "local")
}

// RegisterGRPC registers TxValidatorService on srv.
func (s *Service) RegisterGRPC(srv grpc.ServiceRegistrar) {
	txvalidatorv1.RegisterTxValidatorServiceServer(srv, &grpcServer{s: s})
}

// Run subscribes to the validator queue group, marks the service ready and
// serves until ctx ends, then drains the subscription.
func (s *Service) Run(ctx context.Context) error {
	if s.deps.NATS == nil {
		return errors.New("txvalidator: no NATS connection")
	}
	subject := bus.NewSubjects(s.deps.Network.Name).ScriptValidate()
	// In-flight batches outlive ctx so that draining answers them; they
	// are cut off only if the drain takes longer than drainTimeout.
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	var inflight sync.WaitGroup
	sub, err := s.deps.NATS.QueueSubscribe(subject, bus.ValidatorQueue, func(msg *nats.Msg) {
		inflight.Add(1)
		go func() {
			defer inflight.Done()
			s.handleMsg(workCtx, msg)
		}()
	})
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", subject, err)
	}
	if err := s.deps.NATS.FlushTimeout(10 * time.Second); err != nil {
		_ = sub.Unsubscribe()
		return fmt.Errorf("flush subscription %s: %w", subject, err)
	}
	s.log.Info("worker subscribed", "subject", subject, "queue", bus.ValidatorQueue,
		"workers", s.cfg.Workers, "sigcache_entries", s.cfg.SigCacheEntries, "ecdsa_preverifier", libsecp.Name)
	s.ready.Set()
	<-ctx.Done()
	if err := sub.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		s.log.Warn("drain subscription failed", "subject", subject, "err", err)
	}
	deadline := time.Now().Add(drainTimeout)
	for sub.IsValid() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	done := make(chan struct{})
	go func() { inflight.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Until(deadline)):
		s.log.Warn("in-flight batches cut off at shutdown")
		cancelWork()
		<-done
	}
	s.log.Info("worker stopped", "subject", subject)
	return nil
}

// drainTimeout bounds how long shutdown waits for in-flight batches.
const drainTimeout = 20 * time.Second

// handleMsg answers one NATS request. The subscription callback runs it on
// its own goroutine (one subscription delivers messages one at a time), so
// parallelism is bounded by the engine's worker slots.
func (s *Service) handleMsg(ctx context.Context, msg *nats.Msg) {
	req := &txvalidatorv1.ValidateRequest{}
	if err := proto.Unmarshal(msg.Data, req); err != nil {
		s.respondError(msg, fmt.Sprintf("decode request: %v", err))
		return
	}
	resp, err := s.eng.validate(ctx, req, "nats")
	if err != nil {
		if ctx.Err() != nil {
			// Cut off at shutdown: no reply, the client retries elsewhere.
			return
		}
		s.respondError(msg, err.Error())
		return
	}
	data, err := proto.Marshal(resp)
	if err != nil {
		s.respondError(msg, fmt.Sprintf("marshal response: %v", err))
		return
	}
	if err := msg.Respond(data); err != nil {
		s.log.Warn("reply failed", "err", err)
	}
}

// respondError answers a malformed request with an empty response (so that
// the client fails on the result count rather than waiting for a timeout)
// and the reason in ErrorHeader.
func (s *Service) respondError(msg *nats.Msg, reason string) {
	s.log.Warn("bad validate request", "reason", reason)
	reply := nats.NewMsg(msg.Reply)
	reply.Header.Set(ErrorHeader, reason)
	if err := msg.RespondMsg(reply); err != nil {
		s.log.Warn("reply failed", "err", err)
	}
}
