package blockvalidator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/btcutil/v2"
	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	blockvalidatorv1 "github.com/btcmesh/btcmesh/proto/btcmesh/blockvalidator/v1"
	eventsv1 "github.com/btcmesh/btcmesh/proto/btcmesh/events/v1"
	headersv1 "github.com/btcmesh/btcmesh/proto/btcmesh/headers/v1"
	utxostorev1 "github.com/btcmesh/btcmesh/proto/btcmesh/utxostore/v1"

	"github.com/btcmesh/btcmesh/internal/blockstore"
	"github.com/btcmesh/btcmesh/internal/bus"
	"github.com/btcmesh/btcmesh/internal/grpcclient"
	"github.com/btcmesh/btcmesh/internal/runner"
	"github.com/btcmesh/btcmesh/internal/scriptpool"
)

const (
	// rpcTimeout bounds one call to headers or utxostore.
	rpcTimeout = 2 * time.Minute
	// scriptAttempts is how often a script batch is sent before giving up.
	scriptAttempts = 3
	// planMaxConnect caps the blocks one connect plan lists; the
	// activation loop asks again until the plan is empty.
	planMaxConnect = 500
	// blockAckWait is how long JetStream waits for an ack before
	// redelivering a block.received event.
	blockAckWait = 10 * time.Minute
	// blockMaxAckPending bounds the block.received events delivered and
	// not yet acked (the intake queue never holds more).
	blockMaxAckPending = 256
	// intakeBatch caps the block.received events processed as one batch
	// (one activateBestChain, so one connect plan spanning them).
	intakeBatch = 128
)

// Service is the block validator.
type Service struct {
	cfg      Config
	deps     runner.Deps
	log      *slog.Logger
	subjects bus.Subjects
	metrics  *metrics
	ready    *runner.ReadySignal

	// closeHeaders and closeUtxo release the two channels.
	closeHeaders, closeUtxo func() error
	headers                 headersv1.HeaderServiceClient
	utxo                    utxostorev1.UtxoStoreServiceClient
	// pool validates scripts: the NATS pool, or deps.Scripts.
	pool       runner.ScriptValidator
	scripts    *scriptCache // script-execution cache fed by tx.accepted
	timeSource blockchain.MedianTimeSource

	// set in Run before ready
	runCtx context.Context
	store  *blockstore.Store

	// mu serializes block processing and guards orphans and specs.
	mu      sync.Mutex
	orphans *orphanPool
	// specs are the speculative validations running, by block hash.
	specs map[chainhash.Hash]*spec

	// mtpCache holds the median time past of the active chain's blocks
	// by height (0: not known), under mtpMu.
	mtpMu    sync.Mutex
	mtpCache []int64

	// tip is the active tip as last told to headers (under tipMu).
	tipMu     sync.Mutex
	tipHash   chainhash.Hash
	tipHeight int32
	// tipUnsent counts blocks connected since the headers index last
	// learned the tip (syncTip); guarded by mu.
	tipUnsent int
	connected atomic.Int64
	// orphanCount mirrors orphans.len() for GetStatus without s.mu.
	orphanCount atomic.Int64
}

// New creates the block validator. It does no blocking I/O: gRPC clients
// connect lazily and stores open in Run.
func New(cfg Config, deps runner.Deps) (*Service, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.HeadersAddr == "" {
		return nil, errors.New("blockvalidator: headers address is not set")
	}
	if cfg.UtxoStoreAddr == "" {
		return nil, errors.New("blockvalidator: utxostore address is not set")
	}
	if deps.NATS == nil || deps.Network.Params == nil || deps.Log == nil {
		return nil, errors.New("blockvalidator: deps need NATS, Network and Log")
	}
	m, err := newMetrics(deps.Metrics)
	if err != nil {
		return nil, err
	}
	scripts, err := newScriptCache(deps.Network, deps.Metrics)
	if err != nil {
		return nil, err
	}
	subjects := bus.NewSubjects(deps.Network.Name)
	pool := scriptpool.New(deps.NATS, subjects, cfg.ScriptTimeout, scriptAttempts)
	if err := pool.CountRetries(deps.Metrics); err != nil {
		return nil, err
	}
	var scriptsVia runner.ScriptValidator = pool
	if deps.Scripts != nil {
		scriptsVia = deps.Scripts
	}
	hc, closeH, err := grpcclient.Connect(cfg.HeadersAddr, deps.Local)
	if err != nil {
		return nil, fmt.Errorf("headers client: %w", err)
	}
	uc, closeU, err := grpcclient.Connect(cfg.UtxoStoreAddr, deps.Local)
	if err != nil {
		_ = closeH()
		return nil, fmt.Errorf("utxostore client: %w", err)
	}
	return &Service{
		cfg:          cfg,
		deps:         deps,
		log:          deps.Log,
		subjects:     subjects,
		metrics:      m,
		ready:        runner.NewReadySignal(),
		closeHeaders: closeH,
		closeUtxo:    closeU,
		headers:      headersv1.NewHeaderServiceClient(hc),
		utxo:         utxostorev1.NewUtxoStoreServiceClient(uc),
		pool:         scriptsVia,
		timeSource:   blockchain.NewMedianTime(),
		orphans:      newOrphanPool(cfg.MaxOrphans),
		specs:        make(map[chainhash.Hash]*spec),
		scripts:      scripts,
		tipHeight:    -1,
	}, nil
}

// Name is "blockvalidator".
func (s *Service) Name() string { return "blockvalidator" }

// RegisterGRPC registers BlockValidatorService on srv.
func (s *Service) RegisterGRPC(srv grpc.ServiceRegistrar) {
	blockvalidatorv1.RegisterBlockValidatorServiceServer(srv, &grpcServer{s: s})
}

// Ready is closed once the chain is reconciled and block events are consumed.
func (s *Service) Ready() <-chan struct{} { return s.ready.C() }

// Run opens the block store, reconciles the header index with the UTXO
// set, activates the best chain, consumes block.received events and
// blocks until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	defer func() {
		_ = s.closeHeaders()
		_ = s.closeUtxo()
	}()
	js, err := jetstream.New(s.deps.NATS)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	opts := bus.StreamOptions{Replicas: s.cfg.Replicas}
	if _, err := bus.EnsureBlockStream(ctx, js, s.subjects, opts); err != nil {
		return err
	}
	store, err := blockstore.Open(ctx, js, s.subjects.BlockBucket(), s.cfg.Replicas, s.deps.Blocks)
	if err != nil {
		return err
	}
	s.store = store
	s.runCtx = ctx
	unsubscribe, err := s.subscribeAccepted(s.deps.NATS)
	if err != nil {
		return err
	}
	defer unsubscribe()

	genesis := s.deps.Network.Params.GenesisBlock
	var buf bytes.Buffer
	if err := genesis.Serialize(&buf); err != nil {
		return fmt.Errorf("serialize genesis block: %w", err)
	}
	if err := store.Put(ctx, genesis.BlockHash(), buf.Bytes()); err != nil {
		return fmt.Errorf("store genesis block: %w", err)
	}

	// Dependencies started in the same process may still be opening their
	// stores (they answer Unavailable): retry until they are up.
	for attempt := 1; ; attempt++ {
		s.mu.Lock()
		err = s.reconcile(ctx, buf.Bytes())
		if err == nil {
			_, err = s.activateBestChain(ctx, nil)
		}
		s.mu.Unlock()
		if err == nil {
			break
		}
		if status.Code(err) != codes.Unavailable || ctx.Err() != nil {
			return fmt.Errorf("start: %w", err)
		}
		if attempt%20 == 1 {
			s.log.Info("waiting for headers and utxostore", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}

	cons, err := js.CreateOrUpdateConsumer(ctx, s.subjects.BlockStream(), jetstream.ConsumerConfig{
		Durable:       bus.BlockConsumer,
		FilterSubject: s.subjects.BlockReceived(),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       blockAckWait,
		MaxAckPending: blockMaxAckPending,
	})
	if err != nil {
		return fmt.Errorf("block consumer: %w", err)
	}
	// The consumer's callback only queues (it never blocks: the queue
	// holds every unacked event); one goroutine takes what has queued up
	// in batches, so that during a sync one connect plan spans many blocks
	// and the pipeline overlaps their validation with their commits.
	intake := make(chan jetstream.Msg, blockMaxAckPending)
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		select {
		case intake <- msg:
		case <-ctx.Done():
		}
	})
	if err != nil {
		return fmt.Errorf("consume %s: %w", s.subjects.BlockReceived(), err)
	}
	defer cc.Stop()
	intakeDone := make(chan struct{})
	go func() {
		defer close(intakeDone)
		s.intakeLoop(ctx, intake)
	}()

	tipHash, tipHeight := s.tip()
	s.log.Info("blockvalidator ready", "tip", tipHash.String(), "height", tipHeight)
	s.ready.Set()
	<-ctx.Done()
	<-intakeDone
	return nil
}

// intakeLoop processes queued block.received events until ctx ends, in
// two stages: a loader takes one event, then whatever else has queued (up
// to intakeBatch) without waiting, so a lone relayed block is not
// delayed, and reads, decodes and sanity-checks the batch's blocks in
// parallel; meanwhile the previous batch goes through the header steps
// and chain activation here.
func (s *Service) intakeLoop(ctx context.Context, intake <-chan jetstream.Msg) {
	loaded := make(chan []*received, 1)
	go func() {
		defer close(loaded)
		for {
			batch := nextBatch(ctx, intake)
			if batch == nil {
				return
			}
			s.metrics.intakeBatch.Observe(float64(len(batch)))
			select {
			case loaded <- s.loadBatch(ctx, batch):
			case <-ctx.Done():
				return
			}
		}
	}()
	for items := range loaded {
		s.handleBlocksReceived(ctx, items)
	}
}

// nextBatch waits for one event, then takes what else has queued (up to
// intakeBatch); nil once ctx ends.
func nextBatch(ctx context.Context, intake <-chan jetstream.Msg) []jetstream.Msg {
	var batch []jetstream.Msg
	select {
	case <-ctx.Done():
		return nil
	case msg := <-intake:
		batch = append(batch, msg)
	}
	for len(batch) < intakeBatch {
		select {
		case msg := <-intake:
			batch = append(batch, msg)
		default:
			return batch
		}
	}
	return batch
}

// loadBatch loads the batch's blocks (loadReceived) and runs their
// sanity checks on all cores; events it cannot use are settled and left
// out.
func (s *Service) loadBatch(ctx context.Context, msgs []jetstream.Msg) []*received {
	items := make([]*received, len(msgs))
	sem := make(chan struct{}, max(2, runtime.GOMAXPROCS(0)))
	var wg sync.WaitGroup
	for i, msg := range msgs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			it := s.loadReceived(ctx, msg)
			if it != nil {
				// A failure is left for prepare to report in its place.
				it.sane = s.checkSanity(it.block) == nil
			}
			items[i] = it
		}()
	}
	wg.Wait()
	out := items[:0]
	for _, it := range items {
		if it != nil {
			out = append(out, it)
		}
	}
	return out
}

// received is one block.received event of a batch and what became of it.
type received struct {
	msg    jetstream.Msg
	hash   chainhash.Hash
	source string
	block  *btcutil.Block
	raw    []byte
	// sane: the block passed the context-free sanity checks.
	sane bool
	resp *blockvalidatorv1.SubmitBlockResponse
	// pending: stored with HAVE_DATA, its fate decided by the batch's
	// activation.
	pending bool
	err     error // a dependency failed: redeliver
}

// handleBlocksReceived processes a loaded batch of block.received events. Each
// block gets the steps before activation (prepare: sanity, header,
// contextual checks, stored with HAVE_DATA), then the best chain is
// activated once for the batch. An event is acked once its block was
// processed: rejected, held as an orphan, or known and the chain
// activated after it was stored; it is redelivered later when a
// dependency failed (an activation failure redelivers the whole batch:
// the redelivered blocks are duplicates and activate the chain again).
func (s *Service) handleBlocksReceived(ctx context.Context, items []*received) {
	if len(items) == 0 {
		return
	}
	activateErr := s.processReceived(ctx, items)
	if ctx.Err() != nil {
		return // redelivered after restart
	}
	for _, it := range items {
		err := it.err
		if err == nil {
			err = activateErr
		}
		if err != nil {
			s.log.Error("block processing failed, will retry", "hash", it.hash.String(), "err", err)
			_ = it.msg.NakWithDelay(5 * time.Second)
			continue
		}
		s.log.Debug("received block processed", "hash", it.hash.String(), "source", it.source,
			"result", it.resp.GetResult().String(), "reason", it.resp.GetRejectReason())
		_ = it.msg.Ack()
	}
}

// loadReceived decodes one event and reads and decodes its block; it
// settles (terms or naks) events it cannot use and returns nil for them.
func (s *Service) loadReceived(ctx context.Context, msg jetstream.Msg) *received {
	ev := &eventsv1.BlockReceived{}
	if err := proto.Unmarshal(msg.Data(), ev); err != nil || len(ev.GetHash()) != chainhash.HashSize {
		s.log.Warn("bad block.received event dropped", "err", err, "hash_len", len(ev.GetHash()))
		_ = msg.Term()
		return nil
	}
	hash, _ := chainhash.NewHash(ev.GetHash())
	raw, err := s.store.Get(ctx, *hash)
	if errors.Is(err, blockstore.ErrNotFound) {
		s.log.Warn("announced block not in block store", "hash", hash.String(), "source", ev.GetSource())
		_ = msg.Term()
		return nil
	}
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error("block processing failed, will retry", "hash", hash.String(), "err", err)
			_ = msg.NakWithDelay(5 * time.Second)
		}
		return nil
	}
	block, err := decodeBlock(raw)
	if err != nil {
		s.log.Warn("undecodable block dropped", "hash", hash.String(), "err", err)
		_ = msg.Term()
		return nil
	}
	return &received{msg: msg, hash: *hash, source: ev.GetSource(), block: block, raw: raw}
}

// batchState is what preparing a batch of received blocks collects: the
// blocks awaiting activation, and the stored blocks to mark HAVE_DATA,
// which one headers write marks together before the batch activates
// (one write instead of one a block).
type batchState struct {
	cache    blockCache
	haveData []chainhash.Hash
}

// markHaveData records hashes (stored blocks) as HAVE_DATA in one call.
func (s *Service) markHaveData(ctx context.Context, hashes []chainhash.Hash) error {
	if len(hashes) == 0 {
		return nil
	}
	req := &headersv1.SetBlockStatusRequest{Hash: hashes[0][:], Status: headersv1.BlockStatus_BLOCK_STATUS_HAVE_DATA}
	for _, h := range hashes[1:] {
		req.MoreHashes = append(req.MoreHashes, h[:])
	}
	cctx, cancel := callCtx(ctx)
	defer cancel()
	if _, err := s.headers.SetBlockStatus(cctx, req); err != nil {
		return fmt.Errorf("headers.SetBlockStatus HAVE_DATA for %d blocks: %w", len(hashes), err)
	}
	return nil
}

// processReceived prepares each block of the batch (and the orphans they
// unblock), then activates the best chain once: the connect plan spans
// the batch. It returns the activation's error.
func (s *Service) processReceived(ctx context.Context, items []*received) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.dropSpecs()
	b := &batchState{cache: make(blockCache, len(items))}
	activate := false
	for _, it := range items {
		resp, indexed, pending, err := s.prepare(ctx, it.block, it.raw, true, it.sane, b, s.newTrace())
		if err != nil {
			it.err = err
			continue
		}
		it.resp, it.pending = resp, pending
		if pending {
			b.cache[it.hash] = it.block
		}
		if indexed {
			// Known blocks activate too: a redelivery after a failed
			// activation must move the chain.
			activate = true
			s.processOrphans(ctx, it.hash, b)
		}
	}
	s.noteOrphans()
	if err := s.markHaveData(ctx, b.haveData); err != nil {
		return err
	}
	if !activate {
		return nil
	}
	failures, err := s.activateBestChain(ctx, b.cache)
	if err != nil {
		return err
	}
	if !s.log.Enabled(ctx, slog.LevelDebug) {
		return nil
	}
	// Where each block ended up, for the debug log only.
	for _, it := range items {
		if it.pending {
			if resp, err := s.outcome(ctx, it.hash, it.resp, failures); err == nil {
				it.resp = resp
			}
		}
	}
	return nil
}

// noteOrphans publishes the orphan pool's size; the caller holds s.mu.
func (s *Service) noteOrphans() {
	n := s.orphans.len()
	s.orphanCount.Store(int64(n))
	s.metrics.orphans.Set(float64(n))
}

// tip returns the active tip as last set.
func (s *Service) tip() (chainhash.Hash, int32) {
	s.tipMu.Lock()
	defer s.tipMu.Unlock()
	return s.tipHash, s.tipHeight
}

// setTipLocal records a block just connected as the tip.
func (s *Service) setTipLocal(hash chainhash.Hash, height int32) {
	s.tipMu.Lock()
	s.tipHash, s.tipHeight = hash, height
	s.tipMu.Unlock()
	s.metrics.tipHeight.Set(float64(height))
}

// setTip records the active tip from a headers answer.
func (s *Service) setTip(info *headersv1.HeaderInfo) {
	if info == nil || len(info.GetHash()) != chainhash.HashSize {
		return
	}
	s.tipMu.Lock()
	copy(s.tipHash[:], info.GetHash())
	s.tipHeight = info.GetHeight()
	s.tipMu.Unlock()
	s.metrics.tipHeight.Set(float64(info.GetHeight()))
}
