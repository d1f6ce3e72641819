package txvalidator

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/btcutil/v2"
	"github.com/btcsuite/btcd/txscript/v2"
	"github.com/btcsuite/btcd/wire/v2"

	commonv1 "github.com/btcmesh/btcmesh/proto/btcmesh/common/v1"
	txvalidatorv1 "github.com/btcmesh/btcmesh/proto/btcmesh/txvalidator/v1"

	"github.com/btcmesh/btcmesh/internal/chain"
	"github.com/btcmesh/btcmesh/internal/libsecp"
	"github.com/btcmesh/btcmesh/internal/rules"
	"github.com/btcmesh/btcmesh/internal/txcheck"
)

// CoinbaseJob is the rule a coinbase transaction breaks when it is
// submitted as a job: coinbases are checked by the block path itself.
const CoinbaseJob = txcheck.CoinbaseJob

// TooManySigops is Core's policy rule for a transaction whose sigop cost
// is above MaxStandardTxSigOpsCost.
const TooManySigops rules.Kind = "bad-txns-too-many-sigops"

// MaxStandardTxSigOpsCost is Core's policy limit on one transaction's
// sigop cost (a fifth of the block limit).
const MaxStandardTxSigOpsCost = blockchain.MaxBlockSigOpsCost / 5

// argError is a request that is wrong in itself (not a rule violation);
// gRPC answers it with InvalidArgument.
type argError struct{ msg string }

func (e *argError) Error() string { return e.msg }

func argErrorf(format string, args ...any) error {
	return &argError{msg: fmt.Sprintf(format, args...)}
}

// engine validates batches. It is shared by the gRPC and NATS paths and is
// safe for concurrent use.
type engine struct {
	net      chain.Network
	sigCache *txscript.SigCache
	// slots bounds how many goroutines verify at once, process-wide.
	slots   chan struct{}
	workers int
	m       *metrics
}

func newEngine(net chain.Network, cfg Config, m *metrics) *engine {
	var sc *txscript.SigCache
	if cfg.SigCacheEntries > 0 {
		sc = txscript.NewSigCache(uint(cfg.SigCacheEntries))
	}
	return &engine{
		net:      net,
		sigCache: sc,
		slots:    make(chan struct{}, cfg.Workers),
		workers:  cfg.Workers,
		m:        m,
	}
}

// batch is one request's settings, resolved.
type batch struct {
	mode      txvalidatorv1.Mode
	height    int32
	mtp       int64
	blockTime int64
	// flags run the scripts; consensus re-checks a policy failure.
	flags, consensus txscript.ScriptFlags
	policy           bool
}

// job is one transaction that passed the non-script checks and waits for
// its scripts to be verified.
type job struct {
	tx        *wire.MsgTx
	prevouts  []*txvalidatorv1.Prevout
	fetcher   *txscript.MultiPrevOutFetcher
	sigHashes *txscript.TxSigHashes
	// sigCache is the engine's, or one of the job's own when the engine
	// has none and libsecp256k1 pre-verifies (see preverify).
	sigCache   *txscript.SigCache
	start, end int
	res        *txvalidatorv1.TxResult

	// minFail is the lowest failing input index seen so far; inputs above
	// it need not run. failErr is that input's rejection.
	minFail atomic.Int64
	mu      sync.Mutex
	failErr error
}

// validate runs req and answers one result per job. It returns an
// *argError for malformed requests and the context's error when cancelled.
func (e *engine) validate(ctx context.Context, req *txvalidatorv1.ValidateRequest, transport string) (*txvalidatorv1.ValidateResponse, error) {
	began := time.Now()
	b, err := e.resolve(req)
	if err != nil {
		return nil, err
	}
	pjs := req.GetJobs()
	results := make([]*txvalidatorv1.TxResult, len(pjs))
	argErrs := make([]error, len(pjs))
	jobs := make([]*job, len(pjs))
	e.fanOut(ctx, len(pjs), func(i int) {
		j, res, aerr := e.prepare(pjs[i], b)
		if aerr != nil {
			argErrs[i] = fmt.Errorf("job %d: %w", i, aerr)
			return
		}
		jobs[i], results[i] = j, res
	})
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, aerr := range argErrs {
		if aerr != nil {
			return nil, aerr
		}
	}
	chunks := e.chunks(jobs)
	e.fanOut(ctx, len(chunks), func(i int) { e.runScripts(ctx, chunks[i], b) })
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for i, j := range jobs {
		if j != nil {
			results[i] = j.finish()
		}
	}
	modeName := b.mode.String()
	for _, r := range results {
		e.m.jobs.WithLabelValues(modeName, transport).Inc()
		if !r.GetValid() {
			e.m.rejected.WithLabelValues(r.GetRejection().GetRule()).Inc()
		}
	}
	e.m.batchSeconds.WithLabelValues(transport).Observe(time.Since(began).Seconds())
	return &txvalidatorv1.ValidateResponse{Results: results}, nil
}

// fanOut runs f(0), …, f(n-1) on up to Workers goroutines of its own,
// each holding one of the engine's process-wide slots while it runs an
// item; it returns when all have run or ctx is done. Long-lived loops
// rather than a goroutine per item: an item's stack grows once per
// loop, not once per item.
func (e *engine) fanOut(ctx context.Context, n int, f func(int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(e.workers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || !e.acquire(ctx) {
					return
				}
				f(i)
				e.release()
			}
		}()
	}
	wg.Wait()
}

func (e *engine) acquire(ctx context.Context) bool {
	select {
	case e.slots <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (e *engine) release() { <-e.slots }

// resolve checks the request-wide settings and picks the script flags.
func (e *engine) resolve(req *txvalidatorv1.ValidateRequest) (*batch, error) {
	b := &batch{
		mode:      req.GetMode(),
		height:    req.GetContext().GetHeight(),
		mtp:       req.GetContext().GetMedianTimePast(),
		blockTime: req.GetContext().GetBlockTime(),
		policy:    req.GetPolicy(),
	}
	switch b.mode {
	case txvalidatorv1.Mode_MODE_UNSPECIFIED:
		b.mode = txvalidatorv1.Mode_MODE_FULL
	case txvalidatorv1.Mode_MODE_FULL, txvalidatorv1.Mode_MODE_SCRIPTS_ONLY:
	default:
		return nil, argErrorf("unknown mode %v", b.mode)
	}
	if b.mode == txvalidatorv1.Mode_MODE_FULL && req.GetContext() == nil {
		return nil, argErrorf("MODE_FULL needs a chain context")
	}
	if len(req.GetFlags()) == 0 {
		b.consensus = e.net.ScriptFlags(b.height)
		b.flags = b.consensus
		if b.policy {
			b.flags = e.net.PolicyScriptFlags(b.height)
		}
	} else {
		f, err := FlagsFromProto(req.GetFlags())
		if err != nil {
			return nil, argErrorf("%v", err)
		}
		b.consensus = f
		b.flags = f
		if b.policy {
			b.flags |= txscript.StandardVerifyFlags
		}
	}
	return b, nil
}

// reject builds a failed result from a rule error.
func reject(res *txvalidatorv1.TxResult, err error) *txvalidatorv1.TxResult {
	kind, detail := txcheck.Rejection(err)
	res.Valid = false
	res.Rejection = &commonv1.Rejection{Rule: string(kind), Detail: detail}
	return res
}

// prepare runs every check but the scripts. It returns the job to run
// scripts for, or the final result when the transaction was rejected, or
// an argument error.
func (e *engine) prepare(pj *txvalidatorv1.TxJob, b *batch) (*job, *txvalidatorv1.TxResult, error) {
	res := &txvalidatorv1.TxResult{FailedInput: -1}
	tx := &wire.MsgTx{}
	r := bytes.NewReader(pj.GetTx())
	if err := tx.Deserialize(r); err != nil {
		return nil, reject(res, rules.New(rules.Malformed, "transaction does not decode: %v", err)), nil
	}
	if r.Len() != 0 {
		return nil, reject(res, rules.New(rules.Malformed, "%d trailing bytes after the transaction", r.Len())), nil
	}
	if len(pj.GetPrevouts()) != len(tx.TxIn) {
		return nil, nil, argErrorf("%d prevouts for %d inputs", len(pj.GetPrevouts()), len(tx.TxIn))
	}
	start, end := int(pj.GetInputStart()), int(pj.GetInputEnd())
	if start == 0 && end == 0 {
		end = len(tx.TxIn)
	}
	if start < 0 || start >= end || end > len(tx.TxIn) {
		return nil, nil, argErrorf("input range [%d,%d) outside the transaction's %d inputs", start, end, len(tx.TxIn))
	}
	prevOuts := make(map[wire.OutPoint]*wire.TxOut, len(tx.TxIn))
	spent := make([]txcheck.Prevout, len(tx.TxIn))
	for i, in := range tx.TxIn {
		p := pj.GetPrevouts()[i]
		out := p.GetOutput()
		if out == nil {
			return nil, nil, argErrorf("prevout %d has no output", i)
		}
		txOut := &wire.TxOut{Value: out.GetValue(), PkScript: out.GetPkScript()}
		prevOuts[in.PreviousOutPoint] = txOut
		spent[i] = txcheck.Prevout{Output: txOut, Height: p.GetHeight(), Coinbase: p.GetCoinbase(), MedianTimePast: p.GetMedianTimePast()}
	}
	utx := btcutil.NewTx(tx)
	weight := blockchain.GetTransactionWeight(utx)
	res.Weight = weight

	sanity := txcheck.NotCoinbase(tx)
	if b.mode == txvalidatorv1.Mode_MODE_FULL {
		sanity = txcheck.Sanity(utx)
	}
	if sanity != nil {
		return nil, reject(res, sanity), nil
	}
	if b.mode == txvalidatorv1.Mode_MODE_FULL {
		if err := e.checkFull(utx, spent, b, res); err != nil {
			return nil, reject(res, err), nil
		}
	}
	if pj.GetSkipScripts() {
		// The caller's script-execution cache vouches for the scripts.
		res.Valid = true
		return nil, res, nil
	}
	fetcher := txscript.NewMultiPrevOutFetcher(prevOuts)
	j := &job{
		tx:        tx,
		prevouts:  pj.GetPrevouts(),
		fetcher:   fetcher,
		sigHashes: txscript.NewTxSigHashes(tx, fetcher),
		sigCache:  e.sigCache,
		start:     start,
		end:       end,
		res:       res,
	}
	if j.sigCache == nil && libsecp.Linked {
		j.sigCache = txscript.NewSigCache(uint(end - start))
	}
	j.minFail.Store(math.MaxInt64)
	return j, nil, nil
}

// checkFull runs the MODE_FULL checks after sanity and other than scripts,
// in Bitcoin Core's order (policy's standardness first when asked for),
// filling fee and sigop cost.
func (e *engine) checkFull(utx *btcutil.Tx, spent []txcheck.Prevout, b *batch, res *txvalidatorv1.TxResult) error {
	if b.policy {
		if err := checkStandard(utx.MsgTx(), res.Weight); err != nil {
			return err
		}
	}
	cc := txcheck.Context{Height: b.height, MedianTimePast: b.mtp, BlockTime: b.blockTime}
	r, err := txcheck.Contextual(utx, spent, cc, e.net)
	res.Fee, res.SigopCost = r.Fee, r.SigopCost
	if err != nil {
		return err
	}
	if b.policy && r.SigopCost > MaxStandardTxSigOpsCost {
		return rules.New(TooManySigops, "sigop cost %d > %d", r.SigopCost, MaxStandardTxSigOpsCost)
	}
	return nil
}

// chunk is a run of one job's inputs whose scripts one goroutine checks.
type chunk struct {
	j      *job
	lo, hi int
}

// chunks splits the jobs' input ranges so that every worker gets several
// pieces: a batch of many small transactions becomes a chunk per
// transaction, one large transaction several chunks.
func (e *engine) chunks(jobs []*job) []chunk {
	total := 0
	for _, j := range jobs {
		if j != nil {
			total += j.end - j.start
		}
	}
	parts := e.workers * 4
	size := max(1, (total+parts-1)/parts)
	var cs []chunk
	for _, j := range jobs {
		if j == nil {
			continue
		}
		for lo := j.start; lo < j.end; lo += size {
			cs = append(cs, chunk{j: j, lo: lo, hi: min(lo+size, j.end)})
		}
	}
	return cs
}

// runScripts verifies c's inputs in order and records the job's lowest
// failing input; it stops at a failure, and skips inputs above one
// another chunk found.
func (e *engine) runScripts(ctx context.Context, c chunk, b *batch) {
	j := c.j
	for i := c.lo; i < c.hi; i++ {
		if int64(i) > j.minFail.Load() || ctx.Err() != nil {
			return
		}
		if e.preverify(j, i, b.flags) {
			continue
		}
		if err := e.verifyInput(j, i, b); err != nil {
			j.fail(i, err)
			return
		}
	}
}

// finish fills the job's result once all its chunks ran.
func (j *job) finish() *txvalidatorv1.TxResult {
	if f := j.minFail.Load(); f != math.MaxInt64 {
		j.res.FailedInput = int32(f)
		return reject(j.res, j.failErr)
	}
	j.res.Valid = true
	return j.res
}

func (j *job) fail(i int, err error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if int64(i) < j.minFail.Load() {
		j.minFail.Store(int64(i))
		j.failErr = err
	}
}

// verifyInput runs input i's scripts; a failure under policy flags is
// re-checked under consensus flags to tell the two apart.
func (e *engine) verifyInput(j *job, i int, b *batch) error {
	err := e.execute(j, i, b.flags)
	if err == nil {
		return nil
	}
	if b.flags != b.consensus {
		if cerr := e.execute(j, i, b.consensus); cerr == nil {
			return rules.New(rules.PolicyScriptFailed, "input %d: %v", i, err)
		} else {
			err = cerr
		}
	}
	return rules.New(rules.ScriptFailed, "input %d: %v", i, err)
}

func (e *engine) execute(j *job, i int, flags txscript.ScriptFlags) error {
	e.m.inputsVerified.Inc()
	out := j.prevouts[i].GetOutput()
	vm, err := txscript.NewEngine(out.GetPkScript(), j.tx, i, flags, j.sigCache, j.sigHashes, out.GetValue(), j.fetcher)
	if err != nil {
		return err
	}
	return vm.Execute()
}
