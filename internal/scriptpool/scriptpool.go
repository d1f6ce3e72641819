// Package scriptpool is the client side of the txvalidator pool on NATS:
// it sends txvalidator.v1.ValidateRequest batches to the queue group,
// spreading large batches over several workers and retrying work whose
// worker died or timed out.
//
// A batch is cut into requests of about the same script work, counted in
// inputs rather than jobs: a transaction with many inputs is split into
// input ranges (TxJob.input_start/input_end) that run on different
// workers, and the answers for its ranges are merged back into one result.
package scriptpool

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	txvalidatorv1 "github.com/btcmesh/btcmesh/proto/btcmesh/txvalidator/v1"

	"github.com/btcmesh/btcmesh/internal/bus"
)

const (
	// defaultParts is how many requests a large batch is cut into, so that
	// a pool of several workers (each verifying on all its cores) is busy.
	defaultParts = 32
	// defaultMinChunk is the least script work (in inputs) worth one
	// request: below it the round trip costs more than the parallelism
	// gains.
	defaultMinChunk = 48
	// defaultMinSplit is the least inputs a range of one transaction
	// covers: every range sends the whole transaction and its prevouts.
	defaultMinSplit = 128
)

// Client sends validation batches to the pool.
type Client struct {
	nc       *nats.Conn
	subject  string
	timeout  time.Duration
	attempts int
	// parts is how many requests a large batch is cut into.
	parts int
	// minChunk is the least work (inputs) one request carries, unless the
	// batch is smaller.
	minChunk int
	// minSplit is the least inputs one range of a split transaction has.
	minSplit int
	// onRetry, when set, is told of each request sent again.
	onRetry bus.RetryHook
}

// New returns a client for the network's pool. timeout bounds one request;
// a request that times out is sent again (attempts in all).
func New(nc *nats.Conn, s bus.Subjects, timeout time.Duration, attempts int) *Client {
	return &Client{
		nc: nc, subject: s.ScriptValidate(), timeout: timeout, attempts: attempts,
		parts: defaultParts, minChunk: defaultMinChunk, minSplit: defaultMinSplit,
	}
}

// CountRetries makes the client count the requests it sends again (a
// worker timed out or none was listening) in
// btcmesh_bus_request_retries_total{subject,reason}, registered on reg.
// Several clients of one process (blockvalidator and miner in a single
// node) share the collector. A nil reg counts nothing.
func (c *Client) CountRetries(reg prometheus.Registerer) error {
	if reg == nil {
		return nil
	}
	retries := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "btcmesh_bus_request_retries_total",
		Help: "NATS requests sent again after a timeout or with no worker listening, by subject and reason.",
	}, []string{"subject", "reason"})
	if err := reg.Register(retries); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return fmt.Errorf("register script pool metrics: %w", err)
		}
		existing, ok := are.ExistingCollector.(*prometheus.CounterVec)
		if !ok {
			return fmt.Errorf("register script pool metrics: %w", err)
		}
		retries = existing
	}
	// The children exist from the start, so a rate() over them is 0, not absent.
	for _, r := range []string{bus.RetryTimeout, bus.RetryNoResponders, bus.RetryError} {
		retries.WithLabelValues(c.subject, r)
	}
	c.onRetry = func(subject, reason string) { retries.WithLabelValues(subject, reason).Inc() }
	return nil
}

// piece is one job, or one input range of a job, placed in a chunk.
type piece struct {
	job int // index of the caller's job
	// split is true when the job travels as several ranges.
	split bool
}

// chunk is one request's jobs and where their answers go.
type chunk struct {
	jobs   []*txvalidatorv1.TxJob
	pieces []piece
}

// inputRange is the job's script range (the whole transaction when unset).
func inputRange(j *txvalidatorv1.TxJob) (int, int) {
	start, end := int(j.GetInputStart()), int(j.GetInputEnd())
	if start == 0 && end == 0 {
		end = len(j.GetPrevouts())
	}
	return start, end
}

// cost is a job's script work in inputs; a job whose scripts are skipped
// still costs its non-script checks, counted as one input.
func cost(j *txvalidatorv1.TxJob) int {
	if j.GetSkipScripts() {
		return 1
	}
	start, end := inputRange(j)
	return max(1, end-start)
}

// plan cuts jobs into chunks of about equal work, splitting jobs with many
// inputs into ranges. A chunk holds at most one range of any transaction,
// so a worker computes each transaction's sighash midstate once.
func (c *Client) plan(jobs []*txvalidatorv1.TxJob) []*chunk {
	total := 0
	for _, j := range jobs {
		total += cost(j)
	}
	size := max(c.minChunk, (total+c.parts-1)/max(c.parts, 1))
	var chunks []*chunk
	cur := &chunk{}
	room := size
	flush := func() {
		if len(cur.jobs) > 0 {
			chunks = append(chunks, cur)
		}
		cur, room = &chunk{}, size
	}
	for i, j := range jobs {
		w := cost(j)
		start, end := inputRange(j)
		splittable := !j.GetSkipScripts() && end-start >= 2*c.minSplit && start >= 0 && end <= len(j.GetPrevouts())
		if !splittable || w <= room+room/2 {
			// Whole job: it fits (or is not worth splitting).
			if w > room && len(cur.jobs) > 0 {
				flush()
			}
			cur.jobs = append(cur.jobs, j)
			cur.pieces = append(cur.pieces, piece{job: i})
			room -= w
			if room <= 0 {
				flush()
			}
			continue
		}
		// Split into ranges: the first fills this chunk's room, the
		// others fill whole chunks; no range is shorter than minSplit.
		for lo := start; lo < end; {
			n := max(room, c.minSplit)
			if end-lo-n < c.minSplit {
				n = end - lo // the rest would be too short: take it all
			}
			if n > room && len(cur.jobs) > 0 && room < c.minSplit {
				flush()
				continue
			}
			part := &txvalidatorv1.TxJob{
				Tx: j.GetTx(), Prevouts: j.GetPrevouts(),
				InputStart: uint32(lo), InputEnd: uint32(lo + n),
			}
			cur.jobs = append(cur.jobs, part)
			cur.pieces = append(cur.pieces, piece{job: i, split: true})
			room -= n
			lo += n
			flush() // a chunk holds at most one range of this transaction
		}
	}
	flush()
	return chunks
}

// Validate runs req's jobs on the pool and returns one result per job, in
// order. Jobs are split into chunks of about equal script work (large
// transactions into input ranges) that run on different workers at once.
func (c *Client) Validate(ctx context.Context, req *txvalidatorv1.ValidateRequest) (*txvalidatorv1.ValidateResponse, error) {
	jobs := req.GetJobs()
	results := make([]*txvalidatorv1.TxResult, len(jobs))
	chunks := c.plan(jobs)
	// parts[i] collects the range results of split job i, in range order.
	parts := make([][]*txvalidatorv1.TxResult, len(jobs))
	for _, ch := range chunks {
		for _, p := range ch.pieces {
			if p.split {
				parts[p.job] = append(parts[p.job], nil)
			}
		}
	}
	// slot[k] of chunk k's piece p is its index in parts[p.job].
	next := make([]int, len(jobs))
	slots := make([][]int, len(chunks))
	for k, ch := range chunks {
		slots[k] = make([]int, len(ch.pieces))
		for n, p := range ch.pieces {
			if p.split {
				slots[k][n] = next[p.job]
				next[p.job]++
			}
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	for k, ch := range chunks {
		creq := &txvalidatorv1.ValidateRequest{
			Jobs: ch.jobs, Context: req.GetContext(), Mode: req.GetMode(),
			Flags: req.GetFlags(), Policy: req.GetPolicy(),
		}
		g.Go(func() error {
			resp := &txvalidatorv1.ValidateResponse{}
			if err := bus.RequestWithRetryHook(gctx, c.nc, c.subject, creq, resp, c.timeout, c.attempts, c.onRetry); err != nil {
				return err
			}
			if len(resp.GetResults()) != len(ch.jobs) {
				return fmt.Errorf("validator answered %d results for %d jobs", len(resp.GetResults()), len(ch.jobs))
			}
			for n, p := range ch.pieces {
				if p.split {
					parts[p.job][slots[k][n]] = resp.GetResults()[n]
				} else {
					results[p.job] = resp.GetResults()[n]
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("script pool: %w", err)
	}
	for i, ps := range parts {
		if len(ps) > 0 {
			results[i] = merge(ps)
		}
	}
	return &txvalidatorv1.ValidateResponse{Results: results}, nil
}

// merge combines the results of one transaction's input ranges into the
// result the whole transaction would have had: a failure of the non-script
// checks (failed_input -1, the same in every range) first, else the script
// failure at the lowest input, else the first range's result (every range
// reports the same fee, sigop cost and weight).
func merge(ps []*txvalidatorv1.TxResult) *txvalidatorv1.TxResult {
	var worst *txvalidatorv1.TxResult
	for _, r := range ps {
		if r.GetValid() {
			continue
		}
		switch {
		case worst == nil:
			worst = r
		case r.GetFailedInput() < 0:
			if worst.GetFailedInput() >= 0 {
				worst = r
			}
		case worst.GetFailedInput() >= 0 && r.GetFailedInput() < worst.GetFailedInput():
			worst = r
		}
	}
	if worst != nil {
		return worst
	}
	return ps[0]
}
